//! Clear signing from ERC-7730 descriptors (schema v1 and v2).
//!
//! A [`DescriptorSet`] holds parsed descriptors (includes merged), a token list and contract
//! names, normally from a verified [`crate::metadata`] bundle. Given a contract call
//! ([`CallInput`], or a whole transaction) or EIP-712 typed data, it finds the descriptor
//! whose binding context matches (chain and contract, EIP-712 domain and encoded type) and
//! renders a neutral [`Screen`]: the intent, rows with a stable `key`, an English label and
//! a formatted value, and [`ClearWarning`]s with stable codes. `Ok(None)` means no
//! descriptor applies: the caller keeps today's decoders. An `Err` means a descriptor
//! applies but the data does not fit it (the caller must not show it as clear).
//!
//! Everything is bounded: signatures and values nest at most [`value::MAX_TYPE_DEPTH`]
//! levels, one call decodes to at most [`value::MAX_VALUES`] values, embedded calls nest at
//! most [`MAX_NESTED_CALLS`] deep, a screen has at most [`MAX_ROWS`] rows.

pub mod abi;
pub mod format;
pub mod model;
mod render;
pub mod value;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use alloy_dyn_abi::TypedData;
use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};

use crate::payload::EvmTx;

pub use model::{Deployment, Descriptor};

/// Deepest chain of embedded `calldata` fields rendered.
pub const MAX_NESTED_CALLS: usize = 3;
/// Most rows on one screen; the rest is cut with [`ClearWarning::TooManyRows`].
pub const MAX_ROWS: usize = 256;

/// A token's display metadata (from the token list or a descriptor's `metadata.token`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Ticker ("USDC").
    pub symbol: String,
    /// Decimals of its base unit.
    pub decimals: u8,
    /// Name ("USD Coin").
    pub name: String,
}

/// The user's own names for addresses, per chain (implemented by the caller; the store
/// backs it in the app).
pub trait AddressBook {
    /// The user's label for `address` on `chain_id`, if any.
    fn label(&self, chain_id: u64, address: &Address) -> Option<String>;
}

/// An address book with no entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAddressBook;

impl AddressBook for NoAddressBook {
    fn label(&self, _chain_id: u64, _address: &Address) -> Option<String> {
        None
    }
}

/// One row of a clear-signing screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Stable key for translation and digests: the concrete data path (`details.1.amount`,
    /// `@.to`), prefixed by the embedding field for nested calls; `contract`, `network`,
    /// `max_fee` and `native_value` for the envelope rows (`network` also on EIP-712
    /// screens whose chain is known); a field group's heading row has the group's path
    /// (or `group`) as key and an empty value.
    pub key: String,
    /// English label (from the descriptor, or ours for envelope rows).
    pub label: String,
    /// The formatted value.
    pub value: String,
}

/// Something the user should notice on a clear-signing screen. `code()` is stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClearWarning {
    /// A token amount whose token is not in the metadata: shown in base units.
    UnknownToken {
        /// The token contract (checksummed), or `unknown` when the descriptor names none.
        token: String,
    },
    /// An amount at or above the descriptor's threshold, shown as "Unlimited".
    UnlimitedAmount {
        /// The row's label.
        label: String,
    },
    /// An enum value the descriptor does not list: shown raw.
    UnknownEnumValue {
        /// The row's label.
        label: String,
    },
    /// A field the descriptor shows could not be found in the data.
    UnresolvedField {
        /// The row's label.
        label: String,
    },
    /// An embedded call without a descriptor (or nested too deeply): shown as a summary.
    NestedCallNotClear {
        /// The called contract (checksummed), or `unknown`.
        callee: String,
    },
    /// Bytes after the call's arguments that no field shows.
    TrailingCalldata {
        /// How many.
        bytes: usize,
    },
    /// An encrypted value, shown as a placeholder.
    EncryptedValue {
        /// The row's label.
        label: String,
    },
    /// A number shown as a date is beyond year 9999.
    InvalidDate {
        /// The row's label.
        label: String,
    },
    /// More rows than [`MAX_ROWS`]: the rest is not shown.
    TooManyRows,
    /// The descriptor uses `@.from` but the signing account is not known.
    SenderUnknown,
}

impl ClearWarning {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ClearWarning::UnknownToken { .. } => "unknown_token",
            ClearWarning::UnlimitedAmount { .. } => "unlimited_amount",
            ClearWarning::UnknownEnumValue { .. } => "unknown_enum_value",
            ClearWarning::UnresolvedField { .. } => "unresolved_field",
            ClearWarning::NestedCallNotClear { .. } => "nested_call_not_clear",
            ClearWarning::TrailingCalldata { .. } => "trailing_calldata",
            ClearWarning::EncryptedValue { .. } => "encrypted_value",
            ClearWarning::InvalidDate { .. } => "invalid_date",
            ClearWarning::TooManyRows => "too_many_rows",
            ClearWarning::SenderUnknown => "sender_unknown",
        }
    }

    /// English text for the screen.
    pub fn message(&self) -> String {
        match self {
            ClearWarning::UnknownToken { token } => {
                format!("Unknown token {token}: the amount is shown in base units, without decimals or symbol.")
            }
            ClearWarning::UnlimitedAmount { label } => {
                format!("{label}: the amount is unlimited (at or above the descriptor's threshold).")
            }
            ClearWarning::UnknownEnumValue { label } => {
                format!("{label}: a value the descriptor does not name is shown as a number.")
            }
            ClearWarning::UnresolvedField { label } => {
                format!("{label}: this field could not be found in the data.")
            }
            ClearWarning::NestedCallNotClear { callee } => {
                format!("An embedded call to {callee} cannot be shown in clear; check it with the requester.")
            }
            ClearWarning::TrailingCalldata { bytes } => {
                format!("{bytes} extra bytes after the call's arguments are not shown.")
            }
            ClearWarning::EncryptedValue { label } => {
                format!("{label}: the value is encrypted and cannot be shown.")
            }
            ClearWarning::InvalidDate { label } => {
                format!("{label}: the value is not a valid date and is shown as a number.")
            }
            ClearWarning::TooManyRows => format!("Only the first {MAX_ROWS} rows are shown."),
            ClearWarning::SenderUnknown => "The signing account is not known here.".into(),
        }
    }
}

impl Serialize for ClearWarning {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ClearWarning", 2)?;
        st.serialize_field("code", self.code())?;
        st.serialize_field("message", &self.message())?;
        st.end()
    }
}

/// A call or message rendered from a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Screen {
    /// What the user is doing ("Supply", "Swap 1 WETH for USDC").
    pub intent: String,
    /// Rows, in display order.
    pub rows: Vec<Row>,
    /// Warnings, in the order found, without duplicates.
    pub warnings: Vec<ClearWarning>,
    /// The descriptor used (its registry path).
    pub descriptor: String,
}

impl Screen {
    /// The value of the first row with this key.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.rows.iter().find(|r| r.key == key).map(|r| r.value.as_str())
    }

    /// The value of the first row with this label.
    pub fn value_by_label(&self, label: &str) -> Option<&str> {
        self.rows.iter().find(|r| r.label == label).map(|r| r.value.as_str())
    }

    /// True if a warning with this code is present.
    pub fn has_warning(&self, code: &str) -> bool {
        self.warnings.iter().any(|w| w.code() == code)
    }
}

/// Why a descriptor could not be used. `code()` is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClearError {
    /// The descriptor itself is malformed.
    #[error("bad descriptor: {0}")]
    BadDescriptor(String),
    /// A descriptor matches the contract and selector, but the calldata does not decode
    /// against it (or is not canonically encoded).
    #[error("calldata does not match the descriptor: {0}")]
    CalldataMismatch(String),
    /// The data is larger or deeper than the engine's caps.
    #[error("too complex to show: {0}")]
    TooComplex(String),
    /// A value the descriptor constrains (`visible.mustBe`) has another value.
    #[error("a constrained value differs from the descriptor: {0}")]
    ConstraintViolated(String),
}

impl ClearError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ClearError::BadDescriptor(_) => "bad_descriptor",
            ClearError::CalldataMismatch(_) => "calldata_mismatch",
            ClearError::TooComplex(_) => "too_complex",
            ClearError::ConstraintViolated(_) => "constraint_violated",
        }
    }
}

/// A contract call to render.
#[derive(Debug, Clone, Copy)]
pub struct CallInput<'a> {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The called contract.
    pub to: Address,
    /// Calldata, selector first.
    pub data: &'a [u8],
    /// Native value sent with the call, in wei.
    pub value: U256,
    /// The signing account, when known (`@.from`).
    pub from: Option<Address>,
}

/// One question a render asks of a [`DescriptorSet`]: the unit a partial set answers or
/// misses ([`DescriptorSet::partial`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lookup {
    /// The contract descriptors deployed at `(chain id, address)`.
    Call(u64, Address),
    /// The EIP-712 descriptors whose domain names `(chain id, verifying contract)`.
    Message(u64, Address),
    /// The EIP-712 descriptors bound to no deployment.
    UnboundMessages,
    /// The token at `(chain id, address)`.
    Token(u64, Address),
    /// The contract name of `(chain id, address)`.
    Name(u64, Address),
}

/// Parsed descriptors with the token list and contract names they render with.
///
/// A set is either whole (a bundle's every descriptor, token and name: [`DescriptorSet::new`])
/// or **partial** ([`DescriptorSet::partial`]): it holds the answers to some [`Lookup`]s
/// only, and records each lookup a render makes that it cannot answer
/// ([`DescriptorSet::take_misses`]). A caller renders, answers the misses, and renders again
/// until nothing is missed: the last render asked only questions the set answers as the
/// whole bundle would, so it is the whole bundle's render.
#[derive(Debug, Clone, Default)]
pub struct DescriptorSet {
    descriptors: Vec<Descriptor>,
    calls: HashMap<(u64, Address), Vec<usize>>,
    messages: HashMap<(u64, Address), Vec<usize>>,
    unbound_messages: Vec<usize>,
    tokens: HashMap<(u64, Address), TokenInfo>,
    names: HashMap<(u64, Address), String>,
    /// `Some` for a partial set: the lookups it answers.
    answered: Option<HashSet<Lookup>>,
    /// The lookups a partial set was asked and could not answer.
    misses: Arc<Mutex<BTreeSet<Lookup>>>,
}

impl DescriptorSet {
    /// Indexes `descriptors` by deployment. `tokens` and `names` are keyed by
    /// `(chain id, address)`.
    pub fn new(
        descriptors: Vec<Descriptor>,
        tokens: impl IntoIterator<Item = ((u64, Address), TokenInfo)>,
        names: impl IntoIterator<Item = ((u64, Address), String)>,
    ) -> Self {
        let mut set = DescriptorSet {
            tokens: tokens.into_iter().collect(),
            names: names.into_iter().collect(),
            ..Default::default()
        };
        for (i, d) in descriptors.iter().enumerate() {
            match &d.context {
                model::Context::Contract { deployments, .. } => {
                    for dep in deployments {
                        set.calls.entry((dep.chain_id, dep.address)).or_default().push(i);
                    }
                }
                model::Context::Eip712 { deployments, .. } => {
                    if deployments.is_empty() {
                        set.unbound_messages.push(i);
                    }
                    for dep in deployments {
                        set.messages.entry((dep.chain_id, dep.address)).or_default().push(i);
                    }
                }
            }
        }
        set.descriptors = descriptors;
        set
    }

    /// Reads and parses the descriptors at `entry_points` from `files` (registry paths →
    /// JSON text), merging their includes.
    pub fn parse_files(
        files: &BTreeMap<String, String>,
        entry_points: &[String],
    ) -> Result<Vec<Descriptor>, ClearError> {
        entry_points.iter().map(|p| Descriptor::from_json(p, &model::load_merged(files, p)?)).collect()
    }

    /// A partial set that answers nothing yet.
    pub fn partial() -> Self {
        DescriptorSet { answered: Some(HashSet::new()), ..Default::default() }
    }

    /// The lookups this partial set was asked and could not answer since the last call
    /// (always empty for a whole set).
    pub fn take_misses(&self) -> Vec<Lookup> {
        match self.misses.lock() {
            Ok(mut m) => std::mem::take(&mut *m).into_iter().collect(),
            Err(p) => std::mem::take(&mut *p.into_inner()).into_iter().collect(),
        }
    }

    /// True when this set answers `lookup` (a whole set answers everything); else records
    /// the miss.
    fn answers(&self, lookup: Lookup) -> bool {
        let Some(answered) = &self.answered else { return true };
        if answered.contains(&lookup) {
            return true;
        }
        match self.misses.lock() {
            Ok(mut m) => m.insert(lookup),
            Err(p) => p.into_inner().insert(lookup),
        };
        false
    }

    /// Adds a descriptor to a partial set; returns its number for
    /// [`DescriptorSet::answer_descriptors`].
    pub fn add_descriptor(&mut self, d: Descriptor) -> usize {
        self.descriptors.push(d);
        self.descriptors.len() - 1
    }

    /// Answers a [`Lookup::Call`], [`Lookup::Message`] or [`Lookup::UnboundMessages`] of a
    /// partial set with descriptors added earlier, in the whole set's order (a token or
    /// name lookup is answered with [`DescriptorSet::answer_token`] /
    /// [`DescriptorSet::answer_name`] and ignored here).
    pub fn answer_descriptors(&mut self, lookup: Lookup, ids: Vec<usize>) {
        match lookup {
            Lookup::Call(c, a) => {
                self.calls.insert((c, a), ids);
            }
            Lookup::Message(c, a) => {
                self.messages.insert((c, a), ids);
            }
            Lookup::UnboundMessages => self.unbound_messages = ids,
            Lookup::Token(..) | Lookup::Name(..) => return,
        }
        self.answered.get_or_insert_with(HashSet::new).insert(lookup);
    }

    /// Answers a [`Lookup::Token`] of a partial set (`None`: the bundle has no such token).
    pub fn answer_token(&mut self, chain_id: u64, address: Address, token: Option<TokenInfo>) {
        if let Some(t) = token {
            self.tokens.insert((chain_id, address), t);
        }
        self.answered.get_or_insert_with(HashSet::new).insert(Lookup::Token(chain_id, address));
    }

    /// Answers a [`Lookup::Name`] of a partial set (`None`: the bundle names no such
    /// contract).
    pub fn answer_name(&mut self, chain_id: u64, address: Address, name: Option<String>) {
        if let Some(n) = name {
            self.names.insert((chain_id, address), n);
        }
        self.answered.get_or_insert_with(HashSet::new).insert(Lookup::Name(chain_id, address));
    }

    /// The descriptors, in the order they were given.
    pub fn descriptors(&self) -> &[Descriptor] {
        &self.descriptors
    }

    /// Number of descriptors.
    pub fn len(&self) -> usize {
        self.descriptors.len()
    }

    /// True when there are no descriptors.
    pub fn is_empty(&self) -> bool {
        self.descriptors.is_empty()
    }

    /// Token metadata for `address` on `chain_id`.
    pub fn token(&self, chain_id: u64, address: &Address) -> Option<&TokenInfo> {
        if !self.answers(Lookup::Token(chain_id, *address)) {
            return None;
        }
        self.tokens.get(&(chain_id, *address))
    }

    /// The contract name known for `address` on `chain_id`.
    pub fn name(&self, chain_id: u64, address: &Address) -> Option<&str> {
        if !self.answers(Lookup::Name(chain_id, *address)) {
            return None;
        }
        self.names.get(&(chain_id, *address)).map(String::as_str)
    }

    fn find_call(&self, chain_id: u64, to: &Address, selector: &[u8]) -> Option<(&Descriptor, &model::Format)> {
        if !self.answers(Lookup::Call(chain_id, *to)) {
            return None;
        }
        let ids = self.calls.get(&(chain_id, *to))?;
        ids.iter().filter_map(|i| self.descriptors.get(*i)).find_map(|d| {
            d.formats
                .iter()
                .find(|f| matches!(&f.target, model::Target::Call(func) if func.selector() == selector))
                .map(|f| (d, f))
        })
    }

    /// Renders a contract call. `Ok(None)`: no descriptor for this contract and function.
    pub fn render_call(&self, call: &CallInput<'_>, book: &dyn AddressBook) -> Result<Option<Screen>, ClearError> {
        render::render_call(self, call, book, 0, "")
    }

    /// Renders EIP-712 typed data signed by `from` (when known), on the chain its domain
    /// names. `Ok(None)`: no descriptor for this domain and message type.
    pub fn render_typed_data(
        &self,
        td: &TypedData,
        from: Option<Address>,
        book: &dyn AddressBook,
    ) -> Result<Option<Screen>, ClearError> {
        render::render_typed_data(self, td, None, from, book)
    }

    /// Renders EIP-712 typed data of a request for `request_chain`: the domain's `chainId`
    /// when it has one (the payload layer refuses a domain naming another chain than the
    /// request), else the request's chain binds deployments and formats amounts, tokens
    /// and names.
    pub fn render_typed_data_on(
        &self,
        td: &TypedData,
        request_chain: u64,
        from: Option<Address>,
        book: &dyn AddressBook,
    ) -> Result<Option<Screen>, ClearError> {
        render::render_typed_data(self, td, Some(request_chain), from, book)
    }

    /// Renders a transaction's call and adds the envelope rows: the value sent (when the
    /// descriptor does not show it), the network and the maximum fee. `Ok(None)`: a
    /// deployment, a plain transfer, or no descriptor.
    pub fn render_transaction(
        &self,
        tx: &EvmTx,
        from: Option<Address>,
        book: &dyn AddressBook,
    ) -> Result<Option<Screen>, ClearError> {
        render::render_transaction(self, tx, from, book)
    }
}

/// Values keyed by `(chain id, address)`.
pub type ByDeployment<T> = BTreeMap<(u64, Address), T>;

/// Token metadata and contract names declared by descriptors themselves: `metadata.token`
/// of each contract deployment, and `metadata.contractName` (or `context.$id`) of each
/// deployment — contract descriptors first, then EIP-712 descriptors (whose deployments
/// are the verifying contracts), the first name of an address winning.
pub fn declared_tokens_and_names(descriptors: &[Descriptor]) -> (ByDeployment<TokenInfo>, ByDeployment<String>) {
    let mut tokens = BTreeMap::new();
    let mut names = BTreeMap::new();
    for d in descriptors {
        let model::Context::Contract { deployments, .. } = &d.context else { continue };
        for dep in deployments {
            if let Some(t) = &d.metadata.token {
                tokens.entry((dep.chain_id, dep.address)).or_insert_with(|| TokenInfo {
                    symbol: t.ticker.clone(),
                    decimals: t.decimals,
                    name: t.name.clone(),
                });
            }
            if let Some(n) = &d.metadata.contract_name {
                names.entry((dep.chain_id, dep.address)).or_insert_with(|| n.clone());
            }
        }
    }
    for d in descriptors {
        let model::Context::Eip712 { deployments, .. } = &d.context else { continue };
        if let Some(n) = &d.metadata.contract_name {
            for dep in deployments {
                names.entry((dep.chain_id, dep.address)).or_insert_with(|| n.clone());
            }
        }
    }
    (tokens, names)
}

/// Token tickers descriptors spell through the constants of the registry's ERC-4626 vault
/// include (`ercs/calldata-erc4626-vaults.json`): `vaultTicker` for each deployment of the
/// descriptor (the vault's share token) and `underlyingTicker` for `underlyingToken` on
/// each deployment's chain. The bundle tool uses them only to restore a token list's
/// ticker case.
pub fn declared_tickers(descriptors: &[Descriptor]) -> ByDeployment<String> {
    let mut out = BTreeMap::new();
    for d in descriptors {
        let model::Context::Contract { deployments, .. } = &d.context else { continue };
        let c = &d.metadata.constants;
        let text = |k: &str| c.get(k).and_then(|v| v.as_str()).map(str::trim);
        let underlying = text("underlyingToken").and_then(|a| a.parse::<Address>().ok());
        for dep in deployments {
            if let Some(t) = text("vaultTicker").filter(|t| !t.is_empty()) {
                out.entry((dep.chain_id, dep.address)).or_insert_with(|| t.to_string());
            }
            if let (Some(a), Some(t)) = (underlying, text("underlyingTicker")) {
                if !t.is_empty() {
                    out.entry((dep.chain_id, a)).or_insert_with(|| t.to_string());
                }
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
