//! Decoding for display: turns a sign request's payload into rows a person can read, plus
//! the facts the guardrails need. **Never used for trust**: what is signed is decided by
//! [`crate::payload::signing_target`], which [`decode`] calls first so that a payload that
//! cannot be signed is never shown as if it could.
//!
//! Anything the decoder does not fully understand is marked `blind` with a
//! [`Warning::BlindSigning`] and the payload hash; the guardrails refuse blind signing
//! unless the user allowed it.

mod evm;
mod solana;
pub mod units;
pub mod erc7730;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::caip::{AccountId, ChainId};
use crate::model::PayloadKind;
use crate::payload::{signing_target, PayloadError};

/// Most rows a decoded payload shows; beyond it the payload is treated as blind.
pub const MAX_FIELDS: usize = 256;

/// Why a payload could not be decoded (and therefore must not be signed).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The payload is not signable for this chain (malformed, chain mismatch, …).
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

/// One labelled row on the review screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    /// What the value is ("To", "Amount", …).
    pub label: String,
    /// The value, already formatted (exact decimals, canonical addresses).
    pub value: String,
}

impl Field {
    fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Field { label: label.into(), value: value.into() }
    }
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
        }
    }

    /// Human text for the review screen.
    pub fn message(&self) -> String {
        match self {
            Warning::BlindSigning { reason } => format!(
                "Blind signing: {reason}. Check the payload hash with the requester before approving."
            ),
            Warning::UnlimitedApproval { token, spender } => {
                format!("Unlimited approval: {spender} may spend all of your {token} tokens, now and later.")
            }
            Warning::ApprovalForAll { contract, operator } => format!(
                "{operator} may transfer every token you hold in collection {contract}."
            ),
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
            Warning::AccountNotSigner => {
                "Your account is not a signer of this Solana message.".into()
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

/// Machine-readable facts about a payload, for the guardrails.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
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
}

mod u128_string {
    use serde::Serializer;
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
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
        }
    }

    fn push(&mut self, label: impl Into<String>, value: impl Into<String>) {
        if self.fields.len() < MAX_FIELDS {
            self.fields.push(Field::new(label, value));
        } else if !self.blind {
            self.mark_blind(format!("more than {MAX_FIELDS} fields to show"));
        }
    }

    fn warn(&mut self, w: Warning) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    fn mark_blind(&mut self, reason: impl Into<String>) {
        self.blind = true;
        self.warn(Warning::BlindSigning { reason: reason.into() });
    }

    /// True if a warning with this code is present.
    pub fn has_warning(&self, code: &str) -> bool {
        self.warnings.iter().any(|w| w.code() == code)
    }

    /// The value of the first field with this label.
    pub fn field(&self, label: &str) -> Option<&str> {
        self.fields.iter().find(|f| f.label == label).map(|f| f.value.as_str())
    }
}

/// Decodes `payload` for display to the owner of `account` (whose chain is the request's
/// chain). Fails exactly when [`signing_target`] fails, so nothing unsignable is shown.
pub fn decode(
    kind: PayloadKind,
    payload: &[u8],
    account: &AccountId,
) -> Result<DecodedPayload, DecodeError> {
    let chain = &account.chain;
    signing_target(kind, payload, chain)?;
    let span = tracing::debug_span!("decode", ?kind, chain = %chain, len = payload.len());
    let _g = span.enter();
    let decoded = match kind {
        PayloadKind::EvmTransaction => evm::decode_tx(payload, chain)?,
        PayloadKind::Eip191Message => evm::decode_eip191(payload, chain),
        PayloadKind::Eip712TypedData => evm::decode_eip712(payload, chain)?,
        PayloadKind::SolanaTransaction => solana::decode_message(payload, account)?,
    };
    if decoded.blind {
        tracing::debug!(hash = %decoded.payload_hash, "payload decoded as blind");
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests;
