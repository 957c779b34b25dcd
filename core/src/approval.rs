//! Approvals the appliance can verify: the phone's platform approval key (P-256, usable
//! only after a biometric check, kept in the Android Keystore or the Secure Enclave) signs
//! what the user approved, and the appliance checks that signature against the key the
//! phone enrolled at bonding before it signs, according to the policy it holds for the
//! pair.
//!
//! Everything both sides must agree on is here, once: the signed statement and its bytes
//! ([`ApprovalStatement::message`]: `"sigil/v1/approval-proof" || 0x00 || canonical CBOR`
//! of request id, pair id, payload SHA-256 and display digest), the policy
//! ([`ApprovalPolicy`]) and the appliance's check ([`check_approval`]) with its refusals
//! ([`ApprovalRefusal`]). The platform key is a port ([`ApprovalKey`]); the shells implement
//! it, tests use `crate::fakes::FakeApprovalKey`. See `docs/signing.md` ("Approvals the
//! appliance can verify") and ADR 0029.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::bytes::Key32;
use crate::decode::DisplayDigest;
use crate::envelope::{self, Domain};
use crate::guardrails::worst_case_spend;
use crate::model::{SignRequest, STATEMENT_VERSION};
use crate::secrets::{SecretError, SecretStore};
use zeroize::Zeroizing;

/// Longest SEC1 public key accepted (uncompressed P-256: `0x04 || x || y`).
pub const MAX_APPROVAL_KEY_LEN: usize = 65;
/// Longest approval signature accepted (DER ECDSA P-256 is at most 72 bytes).
pub const MAX_APPROVAL_SIGNATURE_LEN: usize = 72;

/// Why the platform approval key could not sign (or give its public key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalKeyError {
    /// The user dismissed the biometric prompt.
    #[error("the approval was cancelled at the biometric prompt")]
    Cancelled,
    /// Too many failed biometric attempts: the platform locked biometrics for a while.
    #[error("biometrics are locked after too many attempts")]
    LockedOut,
    /// The key was invalidated (biometrics were added or removed): the phone must enrol a
    /// new key with the appliance, which its user confirms.
    #[error("the approval key was invalidated by a change of biometrics; enrol a new key with the appliance")]
    KeyInvalidated,
    /// No biometrics are enrolled on the phone, so the key cannot be used.
    #[error("no biometrics are enrolled on this phone")]
    NoBiometrics,
    /// Any other failure of the platform key.
    #[error("the approval key failed: {0}")]
    Other(String),
}

impl ApprovalKeyError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ApprovalKeyError::Cancelled => "approval_cancelled",
            ApprovalKeyError::LockedOut => "approval_locked_out",
            ApprovalKeyError::KeyInvalidated => "approval_key_invalidated",
            ApprovalKeyError::NoBiometrics => "approval_no_biometrics",
            ApprovalKeyError::Other(_) => "approval_key_failed",
        }
    }
}

/// The phone's platform approval key: a P-256 key that requires user authentication
/// (biometrics) for every use. Synchronous like the other platform ports (ADR 0009): the
/// core calls it on a blocking thread.
pub trait ApprovalKey: Send + Sync {
    /// The key's public half, SEC1-encoded (uncompressed, 65 bytes), created on first use.
    fn public_key(&self) -> Result<Vec<u8>, ApprovalKeyError>;

    /// Signs `message` with ECDSA P-256 over its SHA-256 (the platform hashes), after the
    /// user's biometric check; returns the DER signature.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ApprovalKeyError>;
}

/// Secret-store name of [`SoftwareApprovalKey`]'s 32-byte P-256 scalar.
pub const SOFTWARE_APPROVAL_KEY_NAME: &str = "approval.p256";

/// An approval key kept in the phone's [`SecretStore`] as plain software — for desktop
/// tools (the CLI's phone) and demos. **No biometric gate**: whoever runs the tool can
/// sign, so it proves only that this installation approved; phones use the platform's
/// biometric-bound key (Android Keystore, Secure Enclave).
pub struct SoftwareApprovalKey {
    key: p256::ecdsa::SigningKey,
}

impl SoftwareApprovalKey {
    /// The key in `store`, if one was created.
    pub fn load(store: &dyn SecretStore) -> Result<Option<Self>, SecretError> {
        let Some(bytes) = store.get(SOFTWARE_APPROVAL_KEY_NAME)? else { return Ok(None) };
        let key = p256::ecdsa::SigningKey::from_slice(bytes.as_slice())
            .map_err(|_| SecretError::Corrupt { name: SOFTWARE_APPROVAL_KEY_NAME.to_string() })?;
        Ok(Some(Self { key }))
    }

    /// Creates a new random key in `store`, replacing any (what a phone does when a
    /// biometric change invalidated its key; it then enrols the new one).
    pub fn create(store: &dyn SecretStore) -> Result<Self, SecretError> {
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        store.put(SOFTWARE_APPROVAL_KEY_NAME, &Zeroizing::new(key.to_bytes().to_vec()))?;
        Ok(Self { key })
    }

    /// The key in `store`, created when there is none.
    pub fn load_or_create(store: &dyn SecretStore) -> Result<Self, SecretError> {
        match Self::load(store)? {
            Some(k) => Ok(k),
            None => Self::create(store),
        }
    }
}

impl ApprovalKey for SoftwareApprovalKey {
    fn public_key(&self) -> Result<Vec<u8>, ApprovalKeyError> {
        Ok(self.key.verifying_key().to_encoded_point(false).as_bytes().to_vec())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ApprovalKeyError> {
        use p256::ecdsa::signature::Signer;
        let sig: Signature = self.key.sign(message);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// A phone's approval public key as enrolled with the appliance: SEC1 P-256 (uncompressed,
/// 65 bytes), base64url in JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPublicKey(#[serde(with = "crate::bytes::b64")] pub Vec<u8>);

impl std::fmt::Debug for ApprovalPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApprovalPublicKey({})", self.fingerprint())
    }
}

impl ApprovalPublicKey {
    /// Whether it is a valid SEC1 P-256 public key (checked at enrolment).
    pub fn is_valid(&self) -> bool {
        self.0.len() <= MAX_APPROVAL_KEY_LEN && VerifyingKey::from_sec1_bytes(&self.0).is_ok()
    }

    /// The first 8 bytes of its SHA-256 in hex: what the appliance's screen shows when a
    /// phone enrols it.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.0).get(..8).unwrap_or_default())
    }
}

impl std::fmt::Debug for dyn ApprovalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApprovalKey")
    }
}

/// What the phone's approval key signs: the request the user approved, on the screen they
/// saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalStatement {
    /// Always [`STATEMENT_VERSION`].
    pub v: u8,
    /// The sign request's id (a proof never serves another request).
    pub request_id: Uuid,
    /// The pair it belongs to.
    pub pair_id: Uuid,
    /// SHA-256 of the request's payload (the bytes to be signed, as the SP sent them).
    pub payload_sha256: Key32,
    /// The display digest of the screen the user approved.
    pub display_digest: DisplayDigest,
}

impl ApprovalStatement {
    /// The statement for `req` approved on the screen with `display_digest`.
    pub fn for_request(req: &SignRequest, display_digest: DisplayDigest) -> Self {
        ApprovalStatement {
            v: STATEMENT_VERSION,
            request_id: req.request_id,
            pair_id: req.pair_id,
            payload_sha256: Key32(Sha256::digest(&req.payload).into()),
            display_digest,
        }
    }

    /// The bytes the approval key signs: `"sigil/v1/approval-proof" || 0x00 || body`, the
    /// body the canonical CBOR of this statement.
    pub fn message(&self) -> Result<Vec<u8>, crate::cbor::CborError> {
        Ok(envelope::message(Domain::ApprovalProof, &crate::cbor::to_vec(self)?))
    }
}

/// The phone's proof that its user approved: the approval key's signature over the
/// request's [`ApprovalStatement`]. Sent with the appliance `Sign` request and kept in the
/// phone's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalProof {
    /// DER ECDSA P-256 / SHA-256 signature over [`ApprovalStatement::message`].
    #[serde(with = "crate::bytes::b64")]
    pub signature: Vec<u8>,
}

/// When the appliance asks for an approval proof before it signs for a pair. Held by the
/// appliance per pair; changed only with its user's confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalPolicy {
    /// Every signature needs a valid proof.
    Always,
    /// Only requests that can move more than this much native value (value plus the
    /// worst-case fee, in the chain's smallest unit) need a valid proof.
    Above {
        /// The threshold (exclusive), in the chain's smallest unit.
        native: u128,
    },
    /// No proof is needed (one that is sent is still checked).
    Never,
}

impl ApprovalPolicy {
    /// A stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ApprovalPolicy::Always => "always",
            ApprovalPolicy::Above { .. } => "above",
            ApprovalPolicy::Never => "never",
        }
    }

    /// Whether a request that can move `worst_case_native` needs a proof.
    pub fn requires_proof(&self, worst_case_native: u128) -> bool {
        match self {
            ApprovalPolicy::Always => true,
            ApprovalPolicy::Above { native } => worst_case_native > *native,
            ApprovalPolicy::Never => false,
        }
    }
}

impl std::fmt::Display for ApprovalPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApprovalPolicy::Always => f.write_str("always"),
            ApprovalPolicy::Above { native } => write!(f, "above {native} (smallest unit)"),
            ApprovalPolicy::Never => f.write_str("never"),
        }
    }
}

/// Why the appliance refused a request's approval proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRefusal {
    /// The policy asks for a proof and the request carried none.
    #[error("this appliance requires the phone's biometric approval for this request, and none was sent")]
    Missing,
    /// The policy asks for a proof and the phone that asks enrolled no approval key.
    #[error("this phone has no approval key enrolled with this appliance")]
    NotEnrolled,
    /// The proof does not verify under the enrolled key for this request, pair, payload
    /// and display digest (another key, another request, another screen, or garbage).
    #[error("the phone's approval does not verify for this request and screen")]
    Invalid,
}

impl ApprovalRefusal {
    /// A stable snake_case code (the appliance's error code and the SP's rejection reason).
    pub fn code(&self) -> &'static str {
        match self {
            ApprovalRefusal::Missing => "approval_missing",
            ApprovalRefusal::NotEnrolled => "approval_not_enrolled",
            ApprovalRefusal::Invalid => "approval_invalid",
        }
    }
}

/// Whether `proof` is the key `public_key`'s signature over `statement` (DER, or the
/// 64-byte fixed form).
pub fn verify_proof(public_key: &ApprovalPublicKey, statement: &ApprovalStatement, proof: &ApprovalProof) -> bool {
    if public_key.0.len() > MAX_APPROVAL_KEY_LEN || proof.signature.len() > MAX_APPROVAL_SIGNATURE_LEN {
        return false;
    }
    let Ok(key) = VerifyingKey::from_sec1_bytes(&public_key.0) else { return false };
    let Ok(sig) = Signature::from_der(&proof.signature).or_else(|_| Signature::from_slice(&proof.signature)) else {
        return false;
    };
    let Ok(message) = statement.message() else { return false };
    key.verify(&message, &sig).is_ok()
}

/// The most native value a request can take from its account (value plus worst-case fee),
/// as the policy compares it; a payload that cannot be decoded counts as unlimited.
pub fn worst_case_native(req: &SignRequest) -> u128 {
    crate::decode::decode(req.kind, &req.payload, &req.account).map_or(u128::MAX, |d| worst_case_spend(&d.facts))
}

/// The appliance's check before it signs `req` shown with `display_digest`: under
/// `policy`, with the key `enrolled` by the phone that asks, is `proof` enough? A proof
/// that is sent is always checked (a bad one is refused even where none is needed).
pub fn check_approval(
    policy: ApprovalPolicy,
    enrolled: Option<&ApprovalPublicKey>,
    req: &SignRequest,
    display_digest: Option<DisplayDigest>,
    proof: Option<&ApprovalProof>,
) -> Result<(), ApprovalRefusal> {
    let required = policy.requires_proof(worst_case_native(req));
    match (proof, enrolled, display_digest) {
        (Some(p), Some(key), Some(d)) => {
            if verify_proof(key, &ApprovalStatement::for_request(req, d), p) {
                Ok(())
            } else {
                Err(ApprovalRefusal::Invalid)
            }
        }
        // A proof without a screen to bind it to, or without a key to check it: useless.
        (Some(_), _, None) if required => Err(ApprovalRefusal::Invalid),
        (_, None, _) if required => Err(ApprovalRefusal::NotEnrolled),
        _ if required => Err(ApprovalRefusal::Missing),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::FakeApprovalKey;

    fn request(n: u128, payload: &[u8]) -> SignRequest {
        SignRequest {
            v: STATEMENT_VERSION,
            request_id: Uuid::from_u128(n),
            pair_id: Uuid::from_u128(99),
            chain: crate::caip::ChainId::Evm(1),
            account: crate::caip::AccountId::evm(1, [1; 20]),
            kind: crate::model::PayloadKind::Eip191Message,
            payload: payload.to_vec(),
            created_at: 1,
            expires_at: 2,
        }
    }

    #[test]
    fn a_proof_verifies_only_for_its_key_request_and_screen() {
        let key = FakeApprovalKey::new();
        let other = FakeApprovalKey::new();
        let req = request(1, b"hello");
        let digest = DisplayDigest([7; 32]);
        let st = ApprovalStatement::for_request(&req, digest);
        let proof = ApprovalProof { signature: key.sign(&st.message().unwrap()).unwrap() };
        let pk = ApprovalPublicKey(key.public_key().unwrap());
        assert!(pk.is_valid());
        let always = ApprovalPolicy::Always;
        assert_eq!(check_approval(always, Some(&pk), &req, Some(digest), Some(&proof)), Ok(()));
        // Another key, another screen, another request, no proof, no key.
        let forged = ApprovalProof { signature: other.sign(&st.message().unwrap()).unwrap() };
        assert_eq!(check_approval(always, Some(&pk), &req, Some(digest), Some(&forged)), Err(ApprovalRefusal::Invalid));
        let screen = Some(DisplayDigest([8; 32]));
        assert_eq!(check_approval(always, Some(&pk), &req, screen, Some(&proof)), Err(ApprovalRefusal::Invalid));
        let req2 = request(2, b"hello");
        assert_eq!(check_approval(always, Some(&pk), &req2, Some(digest), Some(&proof)), Err(ApprovalRefusal::Invalid));
        assert_eq!(check_approval(always, Some(&pk), &req, Some(digest), None), Err(ApprovalRefusal::Missing));
        assert_eq!(check_approval(always, None, &req, Some(digest), Some(&proof)), Err(ApprovalRefusal::NotEnrolled));
        // "never" needs nothing, but a bad proof that is sent is still refused.
        assert_eq!(check_approval(ApprovalPolicy::Never, None, &req, Some(digest), None), Ok(()));
        let never = ApprovalPolicy::Never;
        assert_eq!(check_approval(never, Some(&pk), &req, Some(digest), Some(&forged)), Err(ApprovalRefusal::Invalid));
        // Garbage signatures and keys are refusals, never panics.
        let junk = ApprovalProof { signature: vec![0x30; 300] };
        assert_eq!(check_approval(always, Some(&pk), &req, Some(digest), Some(&junk)), Err(ApprovalRefusal::Invalid));
        assert!(!ApprovalPublicKey(vec![4; 65]).is_valid());
    }

    #[test]
    fn the_software_key_is_kept_in_the_secret_store_and_replaced_on_create() {
        let store = crate::secrets::MemorySecretStore::default();
        assert!(SoftwareApprovalKey::load(&store).unwrap().is_none());
        let first = SoftwareApprovalKey::load_or_create(&store).unwrap();
        let again = SoftwareApprovalKey::load_or_create(&store).unwrap();
        assert_eq!(first.public_key().unwrap(), again.public_key().unwrap());
        let req = request(1, b"x");
        let digest = DisplayDigest([2; 32]);
        let st = ApprovalStatement::for_request(&req, digest);
        let proof = ApprovalProof { signature: again.sign(&st.message().unwrap()).unwrap() };
        assert!(verify_proof(&ApprovalPublicKey(first.public_key().unwrap()), &st, &proof));
        let renewed = SoftwareApprovalKey::create(&store).unwrap();
        assert_ne!(renewed.public_key().unwrap(), first.public_key().unwrap());
        assert!(!verify_proof(&ApprovalPublicKey(renewed.public_key().unwrap()), &st, &proof));
    }

    #[test]
    fn above_a_value_only_requests_that_can_move_more_need_a_proof() {
        let policy = ApprovalPolicy::Above { native: 1_000 };
        assert!(!policy.requires_proof(1_000));
        assert!(policy.requires_proof(1_001));
        assert!(ApprovalPolicy::Always.requires_proof(0));
        assert!(!ApprovalPolicy::Never.requires_proof(u128::MAX));
    }

    #[test]
    fn the_signed_bytes_are_the_domain_tag_and_the_canonical_statement() {
        let st = ApprovalStatement::for_request(&request(1, b"x"), DisplayDigest([1; 32]));
        let m = st.message().unwrap();
        assert!(m.starts_with(b"sigil/v1/approval-proof\0"));
        let body = m.get(b"sigil/v1/approval-proof\0".len()..).unwrap();
        assert_eq!(crate::cbor::from_canonical_slice::<ApprovalStatement>(body).unwrap(), st);
    }
}
