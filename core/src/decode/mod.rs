//! Decoding for display: turns a sign request's payload into rows a person can read, plus
//! the facts the guardrails need. **Never used for trust**: what is signed is decided by
//! [`crate::payload::signing_target`], which [`decode`] derives first so that a payload that
//! cannot be signed is never shown as if it could.
//!
//! Anything the decoder does not fully understand is marked `blind` with a
//! [`Warning::BlindSigning`] and the payload hash; the guardrails refuse blind signing
//! unless the user allowed it.
//!
//! Every row has a stable `key` (shells translate by key; the English label is the
//! fallback). The phone's own rows have plain keys (`network`, `to`, `value`, `max_fee`,
//! `max_total`, …); rows copied from an EIP-712 message have keys `message.<path>` and
//! labels that start with [`MESSAGE_LABEL_PREFIX`], so a message field can never look like
//! one of the phone's rows; rows rendered from an ERC-7730 descriptor have keys
//! `clear.<path>` ([`CLEAR_KEY_PREFIX`], see `clear.rs`). Every label and value passes
//! [`crate::display::sanitize()`].
//!
//! With a verified metadata bundle in the [`DecodeContext`], a call or typed data that a
//! descriptor covers is shown from the descriptor (its intent as the title, its rows, then
//! the phone's envelope rows); everything else keeps the decoders below, which use the
//! bundle's token list and names too.

mod clear;
pub mod digest;
mod eip712;
pub mod erc7730;
mod evm;
mod names;
mod solana;
mod tokens;
pub mod units;

pub use clear::CLEAR_KEY_PREFIX;
pub use digest::{display_digest, display_digest_of_summary, DisplayDigest};
pub use names::{short_address, AddressName, USER_LABEL_MARK};
pub use tokens::{DecodeContext, KnownTokens, TokenInfo, TokenLookup, TokenStandard};

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::caip::{AccountId, ChainId};
use crate::decode::erc7730::ClearWarning;
use crate::display::{sanitize, sanitize_string, TextKind};
use crate::model::PayloadKind;
use crate::payload::{prepare, ParsedPayload, PayloadError, SigningTarget};

/// Most rows a decoded payload shows; beyond it the payload is treated as blind.
pub const MAX_FIELDS: usize = 256;

/// How the label of a row copied from an EIP-712 message starts (`Message › from.name`).
/// No row of the phone's own starts like this.
pub const MESSAGE_LABEL_PREFIX: &str = "Message › ";

/// Why a payload could not be decoded (and therefore must not be signed).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The payload is not signable for this chain (malformed, chain mismatch, …).
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

impl DecodeError {
    /// A stable snake_case code: the payload error's.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Payload(e) => e.code(),
        }
    }
}

/// One labelled row on the review screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    /// Stable key: `network`, `to`, `value`, `max_fee`, … for the phone's own rows,
    /// `ix.<n>.<name>` for Solana instruction rows, `message.<path>` for EIP-712 message
    /// fields. Shells translate by key.
    pub key: String,
    /// What the value is, in English ("To", "Amount", `Message › from.name`…), sanitised.
    pub label: String,
    /// The value, already formatted (exact decimals, canonical addresses), sanitised.
    pub value: String,
}

/// Something the user should notice before approving. `code()` is stable (UI, logs, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The payload (or part of it) is not understood: the user would sign blind.
    BlindSigning {
        /// What was not understood.
        reason: String,
    },
    /// An approval of an unlimited (or effectively unlimited) token amount.
    UnlimitedApproval {
        /// The token contract, mint or account.
        token: String,
        /// Who may spend.
        spender: String,
    },
    /// An operator approved for every token of a collection (`setApprovalForAll(true)`).
    ApprovalForAll {
        /// The collection contract.
        contract: String,
        /// The operator.
        operator: String,
    },
    /// A transaction that deploys a contract.
    ContractCreation,
    /// An SPL Token `Approve`: a delegate may move tokens out of the account.
    TokenDelegate {
        /// The token account.
        account: String,
        /// The delegate.
        delegate: String,
    },
    /// An SPL Token `SetAuthority`: control of an account or mint changes hands.
    SetAuthority {
        /// The account or mint.
        account: String,
        /// The new authority, or `None` to remove it for good.
        new_authority: Option<String>,
    },
    /// An SPL Token `CloseAccount`: the account is closed and its rent sent elsewhere.
    CloseAccount {
        /// The token account closed.
        account: String,
        /// Who receives its lamports.
        destination: String,
    },
    /// A v0 Solana message loads addresses from lookup tables the phone cannot read.
    UnresolvedAddresses,
    /// EIP-712 typed data without a chain id: a signature could be replayed on other chains.
    TypedDataWithoutChain,
    /// An EIP-191 message that is not printable text (shown as hex).
    MessageNotText,
    /// The bound account is not one of the Solana message's signers.
    AccountNotSigner,
    /// Text contained characters that are invisible, reorder text or break lines; they are
    /// shown escaped as `⟨U+202E⟩`.
    TextEscaped,
    /// Text longer than a row allows was cut; the rest is not shown.
    TextTruncated,
    /// `approve` / `transferFrom` mean different things for ERC-20 and ERC-721 tokens, and
    /// the phone does not know which standard the contract follows.
    AmbiguousTokenCall {
        /// The contract called.
        contract: String,
    },
    /// A token amount of a token the phone does not know: shown in base units, without
    /// decimals or symbol.
    UnknownToken {
        /// The token contract.
        token: String,
    },
    /// Something to notice on a screen rendered from an ERC-7730 descriptor (its code is
    /// the engine's: `unlimited_amount`, `unknown_enum_value`, `unresolved_field`,
    /// `nested_call_not_clear`, `trailing_calldata`, `encrypted_value`, `invalid_date`,
    /// `too_many_rows`, `sender_unknown`; texts sanitised).
    Clear(ClearWarning),
    /// An ERC-7730 descriptor covers this call or message, but the data does not fit it:
    /// the payload is shown by the phone's own decoders instead, never as clear.
    DescriptorMismatch {
        /// The engine's error code (`calldata_mismatch`, `constraint_violated`, …).
        error_code: &'static str,
        /// What did not fit (sanitised).
        reason: String,
    },
    /// From the phone's own history ([`crate::risk`]): this account never signed a payment
    /// to this recipient.
    FirstRecipient {
        /// The recipient.
        recipient: String,
    },
    /// From the phone's own history: this account never approved this spender.
    FirstSpender {
        /// The spender, delegate or operator.
        spender: String,
    },
    /// Tokens are sent to a token contract (the token's own address, or a contract the
    /// phone knows as a token): they are most likely lost.
    TokensToTokenContract {
        /// The recipient, a token contract.
        recipient: String,
    },
    /// From the phone's own history: far more native value than this pair usually moves.
    UnusualValue {
        /// This request's native value, formatted ("5 ETH").
        value: String,
        /// The pair's usual value (its average), formatted.
        usual: String,
    },
    /// From the phone's own history: this pair signed nothing (and was not paired) for a
    /// long time.
    IdlePair {
        /// Whole days since its last signed request or its pairing.
        days: u64,
    },
}

impl Warning {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Warning::BlindSigning { .. } => "blind_signing",
            Warning::UnlimitedApproval { .. } => "unlimited_approval",
            Warning::ApprovalForAll { .. } => "approval_for_all",
            Warning::ContractCreation => "contract_creation",
            Warning::TokenDelegate { .. } => "token_delegate",
            Warning::SetAuthority { .. } => "set_authority",
            Warning::CloseAccount { .. } => "close_account",
            Warning::UnresolvedAddresses => "unresolved_addresses",
            Warning::TypedDataWithoutChain => "typed_data_without_chain",
            Warning::MessageNotText => "message_not_text",
            Warning::AccountNotSigner => "account_not_signer",
            Warning::TextEscaped => "text_escaped",
            Warning::TextTruncated => "text_truncated",
            Warning::AmbiguousTokenCall { .. } => "ambiguous_token_call",
            Warning::UnknownToken { .. } => "unknown_token",
            Warning::Clear(w) => w.code(),
            Warning::DescriptorMismatch { .. } => "descriptor_mismatch",
            Warning::FirstRecipient { .. } => "first_recipient",
            Warning::FirstSpender { .. } => "first_spender",
            Warning::TokensToTokenContract { .. } => "tokens_to_token_contract",
            Warning::UnusualValue { .. } => "unusual_value",
            Warning::IdlePair { .. } => "idle_pair",
        }
    }

    /// Human text for the review screen.
    pub fn message(&self) -> String {
        match self {
            Warning::BlindSigning { reason } => {
                format!("Blind signing: {reason}. Check the payload hash with the requester before approving.")
            }
            Warning::UnlimitedApproval { token, spender } => {
                format!("Unlimited approval: {spender} may spend all of your {token} tokens, now and later.")
            }
            Warning::ApprovalForAll { contract, operator } => {
                format!("{operator} may transfer every token you hold in collection {contract}.")
            }
            Warning::ContractCreation => {
                "This transaction deploys a new contract; its code cannot be reviewed here.".into()
            }
            Warning::TokenDelegate { account, delegate } => {
                format!("{delegate} may move tokens out of token account {account}.")
            }
            Warning::SetAuthority { account, new_authority: Some(to) } => {
                format!("Control of {account} passes to {to}.")
            }
            Warning::SetAuthority { account, new_authority: None } => {
                format!("An authority of {account} is removed for good.")
            }
            Warning::CloseAccount { account, destination } => {
                format!("Token account {account} is closed; its balance of SOL goes to {destination}.")
            }
            Warning::UnresolvedAddresses => "Some accounts come from address lookup tables and cannot be shown.".into(),
            Warning::TypedDataWithoutChain => {
                "This typed data names no chain: the signature may be valid on other chains.".into()
            }
            Warning::MessageNotText => "This message is not readable text; it is shown as hex.".into(),
            Warning::AccountNotSigner => "Your account is not a signer of this Solana message.".into(),
            Warning::TextEscaped => "Some text contains invisible or direction-changing \
                characters; they are shown as ⟨U+…⟩ codes."
                .into(),
            Warning::TextTruncated => "Some text is too long to show in full; the rest is cut off.".into(),
            Warning::AmbiguousTokenCall { contract } => format!(
                "The phone does not know whether {contract} is an ERC-20 or an ERC-721 \
                 contract: the number is an amount for one and a token ID for the other."
            ),
            Warning::UnknownToken { token } => ClearWarning::UnknownToken { token: token.clone() }.message(),
            Warning::Clear(w) => w.message(),
            Warning::DescriptorMismatch { error_code, reason } => format!(
                "A clear-signing descriptor covers this, but the data does not fit it ({error_code}: {reason}); \
                 it is not shown in clear. Check it with the requester."
            ),
            Warning::FirstRecipient { recipient } => {
                format!("You have never sent anything to {recipient} from this account.")
            }
            Warning::FirstSpender { spender } => {
                format!("You have never approved {spender} to spend tokens of this account.")
            }
            Warning::TokensToTokenContract { recipient } => format!(
                "The tokens go to {recipient}, which is a token contract: tokens sent there are \
                 usually lost for good."
            ),
            Warning::UnusualValue { value, usual } => format!(
                "This moves {value}, more than ten times what you usually sign through this \
                 service ({usual} on average)."
            ),
            Warning::IdlePair { days } => {
                format!("This service has not asked you to sign anything for {days} days.")
            }
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl Serialize for Warning {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Warning", 2)?;
        st.serialize_field("code", self.code())?;
        st.serialize_field("message", &self.message())?;
        st.end()
    }
}

/// Machine-readable facts about a payload, for the guardrails (and, read back from the
/// sign history's summary, for the history-based warnings of [`crate::risk`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PayloadFacts {
    /// Native value leaving the bound account, in the chain's smallest unit (wei,
    /// lamports), saturated at `u128::MAX`.
    #[serde(with = "u128_string")]
    pub native_value: u128,
    /// Worst-case network fee the bound account pays, in the same unit, saturated
    /// (EVM: gas limit × max fee per gas or gas price; Solana: base fee + compute-unit
    /// price × limit). Guardrails count `native_value + max_fee` as spend.
    #[serde(with = "u128_string")]
    pub max_fee: u128,
    /// Canonical addresses receiving value or spending rights (EVM `to` of a plain
    /// transfer, token recipients, spenders, operators, delegates, new authorities).
    /// Addresses that cannot be resolved appear as `unresolved:…` and never match a list.
    pub recipients: Vec<String>,
    /// Contracts called (EVM `to` with calldata, EIP-712 verifying contract, Solana
    /// programs other than System, Compute Budget and the SPL Token programs).
    pub contracts: Vec<String>,
    /// The transaction deploys a contract.
    pub contract_creation: bool,
    /// An unlimited token approval or an approval for all.
    pub unlimited_approval: bool,
    /// Token rights granted or tokens moved (ERC-20 calls, permits, EIP-3009, SPL Token).
    pub tokens: Vec<TokenFact>,
}

/// What a payload does with a token, for guardrails and tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFact {
    /// `approve` (rights to spend are granted) or `transfer` (tokens move).
    pub action: TokenAction,
    /// The token contract or mint (or, for SPL `Transfer`, the source token account).
    pub token: String,
    /// The spender, delegate or recipient.
    pub to: String,
    /// The amount in base units, decimal (`None` when unlimited or unknown).
    #[serde(default)]
    pub amount: Option<String>,
    /// An unlimited (or effectively unlimited) approval.
    #[serde(default)]
    pub unlimited: bool,
    /// The number may be an ERC-721 token ID rather than an amount (ambiguous selector).
    #[serde(default)]
    pub maybe_token_id: bool,
}

/// See [`TokenFact::action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAction {
    /// Rights to spend are granted (approve, permit).
    Approve,
    /// Tokens move (transfer, transfer authorization).
    Transfer,
}

mod u128_string {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A payload as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecodedPayload {
    /// The chain the request is for.
    pub chain: ChainId,
    /// One line saying what this is ("Send ETH", "ERC-20 approval", …).
    pub title: String,
    /// Labelled rows, in display order.
    pub fields: Vec<Field>,
    /// Things to notice, most serious first as found.
    pub warnings: Vec<Warning>,
    /// True when some part of the payload is not understood.
    pub blind: bool,
    /// SHA-256 of the payload bytes, lowercase hex (for comparing with the requester).
    pub payload_hash: String,
    /// Facts for the guardrails.
    pub facts: PayloadFacts,
    /// The ERC-7730 descriptor the screen was rendered from (its registry path), when the
    /// payload is shown in clear from the metadata bundle.
    pub descriptor: Option<String>,
}

impl DecodedPayload {
    fn new(chain: &ChainId, payload: &[u8], title: impl Into<String>) -> Self {
        DecodedPayload {
            chain: chain.clone(),
            title: title.into(),
            fields: Vec::new(),
            warnings: Vec::new(),
            blind: false,
            payload_hash: hex::encode(Sha256::digest(payload)),
            facts: PayloadFacts::default(),
            descriptor: None,
        }
    }

    /// Adds a row whose value is one line ([`TextKind::Value`]).
    fn push(&mut self, key: impl Into<String>, label: impl Into<String>, value: impl Into<String>) {
        self.push_owned(key.into(), label.into(), value.into(), TextKind::Value);
    }

    /// Adds a row; label and value pass the sanitiser (`text_escaped` / `text_truncated`
    /// warnings when they change). Keys are sanitised too, without a warning.
    fn push_text(&mut self, key: String, label: String, value: &str, kind: TextKind) {
        self.push_owned(key, label, value.to_string(), kind);
    }

    fn push_owned(&mut self, key: String, label: String, value: String, kind: TextKind) {
        if self.fields.len() >= MAX_FIELDS {
            if !self.blind {
                self.mark_blind(format!("more than {MAX_FIELDS} fields to show"));
            }
            return;
        }
        let key = sanitize_string(key, TextKind::Label).text;
        let label = self.sanitized_owned(label, TextKind::Label);
        let value = self.sanitized_owned(value, kind);
        self.fields.push(Field { key, label, value });
    }

    /// `text` through the sanitiser, noting a warning if it changed.
    fn sanitized(&mut self, text: &str, kind: TextKind) -> String {
        self.noted(sanitize(text, kind))
    }

    /// [`Self::sanitized`], taking the text by value (clean text is not copied).
    fn sanitized_owned(&mut self, text: String, kind: TextKind) -> String {
        self.noted(sanitize_string(text, kind))
    }

    /// A sanitiser result's text, noting its warnings.
    fn noted(&mut self, s: crate::display::Sanitized) -> String {
        if s.was_escaped() {
            self.warn(Warning::TextEscaped);
        }
        if s.was_truncated() {
            self.warn(Warning::TextTruncated);
        }
        s.text
    }

    /// The phone's "Max total" row: what leaves the account at worst, native value plus
    /// the worst-case network fee.
    fn push_max_total(&mut self, value: alloy_primitives::U256, fee: alloy_primitives::U256) {
        let shown = units::format_native(&self.chain, value.saturating_add(fee));
        self.push("max_total", "Max total", shown);
    }

    fn warn(&mut self, w: Warning) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// Marks the payload blind; the reason (which may quote the payload) is sanitised.
    fn mark_blind(&mut self, reason: impl Into<String>) {
        self.blind = true;
        let reason = sanitize(&reason.into(), TextKind::Value).text;
        self.warn(Warning::BlindSigning { reason });
    }

    /// True if a warning with this code is present.
    pub fn has_warning(&self, code: &str) -> bool {
        self.warnings.iter().any(|w| w.code() == code)
    }

    /// The value of the first field with this label.
    pub fn field(&self, label: &str) -> Option<&str> {
        self.fields.iter().find(|f| f.label == label).map(|f| f.value.as_str())
    }

    /// The value of the field with this key.
    pub fn field_by_key(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|f| f.key == key).map(|f| f.value.as_str())
    }
}

/// Decodes `payload` for display to the owner of `account` (whose chain is the request's
/// chain), knowing no tokens. Fails exactly when [`signing_target`](crate::payload::signing_target) fails, so nothing
/// unsignable is shown.
pub fn decode(kind: PayloadKind, payload: &[u8], account: &AccountId) -> Result<DecodedPayload, DecodeError> {
    decode_with(kind, payload, account, &DecodeContext::default())
}

/// [`decode`], with what the phone knows about tokens (standards, symbols, decimals).
pub fn decode_with(
    kind: PayloadKind,
    payload: &[u8],
    account: &AccountId,
    ctx: &DecodeContext<'_>,
) -> Result<DecodedPayload, DecodeError> {
    decode_with_target(kind, payload, account, ctx).map(|(_, decoded)| decoded)
}

/// [`decode_with`], also returning what the appliance must sign
/// ([`crate::payload::signing_target`]): the payload is parsed, bounded and hashed once,
/// and the sign engine keeps the target with the request it shows.
pub fn decode_with_target(
    kind: PayloadKind,
    payload: &[u8],
    account: &AccountId,
    ctx: &DecodeContext<'_>,
) -> Result<(SigningTarget, DecodedPayload), DecodeError> {
    let chain = &account.chain;
    let (target, parsed) = prepare(kind, payload, chain)?;
    let span = tracing::debug_span!("decode", ?kind, chain = %chain, len = payload.len());
    let _g = span.enter();
    let decoded = match &parsed {
        ParsedPayload::EvmTx(tx) => evm::decode_tx(tx, payload, chain, ctx)?,
        ParsedPayload::Eip191 => evm::decode_eip191(payload, chain),
        ParsedPayload::Eip712(td) => eip712::decode_typed_data(td, payload, chain, ctx)?,
        ParsedPayload::Solana(msg) => solana::decode_message(msg, payload, account)?,
    };
    let decoded = clear::with_descriptor(decoded, &parsed, account, ctx);
    if decoded.blind {
        tracing::debug!(hash = %decoded.payload_hash, "payload decoded as blind");
    }
    Ok((target, decoded))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod attack_tests;

#[cfg(test)]
mod clear_tests;
