//! The statements Sigil's parties sign and exchange, shared by the core, both simulators and
//! the CLI. Each signed statement travels as a [`SignedEnvelope`] under its own [`Domain`].
//!
//! | statement            | signer    | domain                                 |
//! |----------------------|-----------|----------------------------------------|
//! | [`PairSessionDetails`] | octane    | [`Domain::OctaneSession`]            |
//! | [`PairAttestation`]  | appliance | [`Domain::PairAttestation`]            |
//! | [`SignRequest`]      | SP, then octane over the same body | [`Domain::SpSignRequest`], [`Domain::OctaneSignRequest`] |
//! | [`PairRevocation`]   | appliance | [`Domain::PairRevocation`]             |
//! | [`AppEndorsement`]   | appliance | [`Domain::AppEndorsement`]             |
//! | [`PhoneForgotten`]   | appliance | [`Domain::PhoneForgotten`]             |

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bytes::Key32;
use crate::caip::{AccountId, ChainId};
use crate::envelope::{self, Domain, EnvelopeError, SignedEnvelope};

/// Version of every statement below; a receiver refuses versions it does not know.
pub const STATEMENT_VERSION: u8 = 1;

/// Longest a pair session may live, and a sign request may be valid for: 5 minutes.
pub const MAX_TTL_SECS: u64 = 300;

/// A service provider's public profile, as octane registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpProfile {
    /// Octane's stable id for the SP.
    pub sp_id: String,
    /// Display name.
    pub name: String,
    /// HTTPS URL of the SP's logo.
    pub logo_url: String,
    /// HTTPS URL of the SP's homepage.
    pub homepage: String,
    /// The SP's Ed25519 public key; pinned at pair time, it verifies every sign request.
    pub public_key: Key32,
    /// Origins (`https://host[:port]`) a `return_url` may point to.
    pub allowed_return_origins: Vec<String>,
}

/// A pair session's details as octane vouches for them (signed under
/// [`Domain::OctaneSession`]). The phone shows these to the user; the appliance re-verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairSessionDetails {
    /// Always [`STATEMENT_VERSION`].
    pub v: u8,
    /// The session id carried by the pair link.
    pub session_id: String,
    /// Who asks to pair.
    pub sp: SpProfile,
    /// The SP's opaque reference for its own user, shown on the approval card.
    pub sp_user_ref: String,
    /// Chains the SP asks a wallet for (CAIP-2), in the SP's order.
    pub requested_chains: Vec<ChainId>,
    /// Where to send the user after approval (single-device flow), already checked by octane
    /// against the SP's allowed origins; the core checks it again.
    pub return_url: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; after this the session cannot be approved.
    pub expires_at: u64,
}

/// The appliance's signed approval of a pair (signed under [`Domain::PairAttestation`]).
/// Binds everything the SP needs to check that this appliance approved this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairAttestation {
    /// Always [`STATEMENT_VERSION`].
    pub v: u8,
    /// The durable pair id the appliance minted.
    pub pair_id: Uuid,
    /// The session this approves.
    pub session_id: String,
    /// The six-digit validation code of that session.
    pub validation_code: String,
    /// The SP's id.
    pub sp_id: String,
    /// The SP's public key the appliance pinned for this pair.
    pub sp_public_key: Key32,
    /// The approved wallets, canonical and sorted.
    pub bindings: Vec<AccountId>,
    /// The appliance's Ed25519 identity key (the signer of this statement).
    pub appliance_identity: Key32,
    /// Unix seconds.
    pub approved_at: u64,
}

/// What kind of bytes a sign request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// An unsigned EVM transaction: EIP-2718 typed (EIP-1559) or legacy RLP.
    EvmTransaction,
    /// An EIP-191 `personal_sign` message (raw bytes).
    Eip191Message,
    /// EIP-712 typed data as its JSON text.
    Eip712TypedData,
    /// A serialized Solana message (legacy or v0) to be signed.
    SolanaTransaction,
}

/// A sign request (signed by the SP under [`Domain::SpSignRequest`], countersigned by
/// octane under [`Domain::OctaneSignRequest`] over the same body bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequest {
    /// Always [`STATEMENT_VERSION`].
    pub v: u8,
    /// Unique per request; the appliance signs each id at most once.
    pub request_id: Uuid,
    /// The pair this request is made under.
    pub pair_id: Uuid,
    /// CAIP-2 chain.
    pub chain: ChainId,
    /// CAIP-10 account that must sign; must be one of the pair's bindings.
    pub account: AccountId,
    /// How to read `payload`.
    pub kind: PayloadKind,
    /// The bytes to sign (never a bare hash).
    #[serde(with = "crate::bytes::b64")]
    pub payload: Vec<u8>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds, at most [`MAX_TTL_SECS`] after `created_at`.
    pub expires_at: u64,
}

/// A sign request with both signatures over one canonical body, as octane delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersignedRequest {
    /// Canonical CBOR of a [`SignRequest`].
    #[serde(with = "crate::bytes::b64")]
    pub body: Vec<u8>,
    /// The SP's signature under [`Domain::SpSignRequest`].
    #[serde(with = "crate::bytes::b64")]
    pub sp_sig: Vec<u8>,
    /// Octane's signature under [`Domain::OctaneSignRequest`].
    #[serde(with = "crate::bytes::b64")]
    pub octane_sig: Vec<u8>,
}

impl CountersignedRequest {
    /// Checks both signatures (SP key pinned at pair time, octane key pinned in config) and
    /// only then decodes the request.
    pub fn verify(&self, sp_key: &Key32, octane_key: &Key32) -> Result<SignRequest, EnvelopeError> {
        envelope::verify_bytes(Domain::SpSignRequest, sp_key.as_bytes(), &self.body, &self.sp_sig)?;
        envelope::verify_bytes(Domain::OctaneSignRequest, octane_key.as_bytes(), &self.body, &self.octane_sig)?;
        Ok(crate::cbor::from_canonical_slice(&self.body)?)
    }

    /// The SP's envelope (body and SP signature) alone.
    pub fn sp_envelope(&self) -> SignedEnvelope {
        SignedEnvelope { body: self.body.clone(), sig: self.sp_sig.clone() }
    }
}

/// The appliance's signed revocation of a pair (signed under [`Domain::PairRevocation`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRevocation {
    /// Always [`STATEMENT_VERSION`].
    pub v: u8,
    /// The revoked pair.
    pub pair_id: Uuid,
    /// The appliance's identity key (the signer).
    pub appliance_identity: Key32,
    /// Unix seconds.
    pub revoked_at: u64,
}

/// The appliance's statement that it forgot a phone (signed under
/// [`Domain::PhoneForgotten`]): it dropped the phone's channel key and refuses it from
/// `forgotten_at` on. Octane, told by any phone, stops accepting that app key for this
/// appliance unless an [`AppEndorsement`] issued later (a new bond) exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneForgotten {
    /// Always [`STATEMENT_VERSION`].
    pub v: u8,
    /// The forgotten phone's Ed25519 app key.
    pub app_key: Key32,
    /// The appliance's identity key (the signer).
    pub appliance_identity: Key32,
    /// The app key of the phone that asked; `None` when forgotten on the appliance itself.
    pub forgotten_by: Option<Key32>,
    /// Unix seconds.
    pub forgotten_at: u64,
}

/// The appliance's endorsement of a phone's app key, made at bonding (signed under
/// [`Domain::AppEndorsement`]). Octane accepts app requests signed by an endorsed key, and
/// only about that appliance's sessions and pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppEndorsement {
    /// Always [`STATEMENT_VERSION`].
    pub v: u8,
    /// The phone's Ed25519 app key.
    pub app_key: Key32,
    /// The endorsing appliance's identity key.
    pub appliance_identity: Key32,
    /// Unix seconds.
    pub issued_at: u64,
}
