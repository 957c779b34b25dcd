//! The one signature checker: domain-separated Ed25519 signatures over canonical CBOR bodies.
//!
//! Every signed object in Sigil (octane's session details, the SP's sign request, octane's
//! countersignature, the appliance's pair attestation, revocation and sign receipt, the app
//! endorsement) is a [`SignedEnvelope`]: the deterministic CBOR `body` and a signature over
//! `domain tag || 0x00 || body`. The domain tag makes a signature for one purpose useless
//! for any other. Verification uses `verify_strict` (no malleable or small-order keys).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::cbor::{self, CborError};

/// What a signature is for. Each purpose has its own tag; a signature never crosses purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// Octane's signature over a pair session's details, as shown to the user.
    OctaneSession,
    /// The SP's signature over a sign request.
    SpSignRequest,
    /// Octane's countersignature over the same sign request body.
    OctaneSignRequest,
    /// The appliance's pair attestation (session, code, SP key, bindings, pair id).
    PairAttestation,
    /// The appliance's signed revocation of a pair.
    PairRevocation,
    /// The appliance's endorsement of a phone's app key, made at bonding.
    AppEndorsement,
    /// A phone's signature over one request to octane's app API.
    AppRequest,
    /// The appliance's identity signature over a bonding transcript.
    BondTranscript,
    /// Octane's signature over a pair's revocation notice.
    OctaneRevocation,
    /// The metadata key's signature over a metadata bundle (descriptors, tokens, names).
    MetadataBundle,
    /// The appliance's signed statement that it forgot a phone.
    PhoneForgotten,
    /// The appliance's receipt for a signature: the request, pair, payload hash and the
    /// display digest of the screen the phone showed ([`crate::receipt::SignReceipt`]).
    SignReceipt,
    /// The phone's approval key (P-256, biometric-bound) over what the user approved: the
    /// request, pair, payload hash and display digest ([`crate::approval::ApprovalStatement`]).
    ApprovalProof,
}

impl Domain {
    /// The tag prefixed to the body before signing.
    pub fn tag(self) -> &'static [u8] {
        match self {
            Domain::OctaneSession => b"sigil/v1/octane-session",
            Domain::SpSignRequest => b"sigil/v1/sp-sign-request",
            Domain::OctaneSignRequest => b"sigil/v1/octane-sign-request",
            Domain::PairAttestation => b"sigil/v1/pair-attestation",
            Domain::PairRevocation => b"sigil/v1/pair-revocation",
            Domain::AppEndorsement => b"sigil/v1/app-endorsement",
            Domain::AppRequest => b"sigil/v1/app-request",
            Domain::BondTranscript => b"sigil/v1/bond-transcript",
            Domain::OctaneRevocation => b"sigil/v1/octane-revocation",
            Domain::MetadataBundle => b"sigil/v1/metadata-bundle",
            Domain::PhoneForgotten => b"sigil/v1/phone-forgotten",
            Domain::SignReceipt => b"sigil/v1/sign-receipt",
            Domain::ApprovalProof => b"sigil/v1/approval-proof",
        }
    }
}

/// Why a signed object was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The signature does not verify under the expected key and purpose.
    #[error("signature does not verify")]
    BadSignature,
    /// The public key is not a valid (strict) Ed25519 key.
    #[error("invalid public key")]
    BadKey,
    /// The signature bytes are not 64 bytes.
    #[error("invalid signature encoding")]
    BadSignatureEncoding,
    /// The body is not canonical CBOR of the expected shape.
    #[error("invalid signed body: {0}")]
    Body(#[from] CborError),
}

/// A body and its domain-separated Ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEnvelope {
    /// Deterministic CBOR of the signed value.
    #[serde(with = "crate::bytes::b64")]
    pub body: Vec<u8>,
    /// Ed25519 signature over `tag || 0x00 || body`.
    #[serde(with = "crate::bytes::b64")]
    pub sig: Vec<u8>,
}

/// The bytes a signature for `domain` covers: `tag || 0x00 || body` (every signer in the
/// system, Ed25519 or P-256, signs this form).
pub fn message(domain: Domain, body: &[u8]) -> Vec<u8> {
    let tag = domain.tag();
    let mut m = Vec::with_capacity(tag.len() + 1 + body.len());
    m.extend_from_slice(tag);
    m.push(0);
    m.extend_from_slice(body);
    m
}

/// Signs raw `body` bytes for `domain`.
pub fn sign_bytes(domain: Domain, key: &SigningKey, body: &[u8]) -> [u8; 64] {
    key.sign(&message(domain, body)).to_bytes()
}

/// Verifies a signature over raw `body` bytes for `domain` with `verify_strict`.
pub fn verify_bytes(domain: Domain, key: &[u8; 32], body: &[u8], sig: &[u8]) -> Result<(), EnvelopeError> {
    let vk = VerifyingKey::from_bytes(key).map_err(|_| EnvelopeError::BadKey)?;
    let sig: [u8; 64] = sig.try_into().map_err(|_| EnvelopeError::BadSignatureEncoding)?;
    vk.verify_strict(&message(domain, body), &Signature::from_bytes(&sig)).map_err(|_| EnvelopeError::BadSignature)
}

impl SignedEnvelope {
    /// Encodes `value` canonically and signs it for `domain`.
    pub fn seal<T: Serialize>(domain: Domain, key: &SigningKey, value: &T) -> Result<Self, EnvelopeError> {
        let body = cbor::to_vec(value)?;
        let sig = sign_bytes(domain, key, &body).to_vec();
        Ok(Self { body, sig })
    }

    /// Checks the signature for `domain` under `key`, then decodes the canonical body.
    /// Nothing is decoded before the signature holds.
    pub fn open<T: DeserializeOwned>(&self, domain: Domain, key: &[u8; 32]) -> Result<T, EnvelopeError> {
        self.verify(domain, key)?;
        Ok(cbor::from_canonical_slice(&self.body)?)
    }

    /// Checks the signature only.
    pub fn verify(&self, domain: Domain, key: &[u8; 32]) -> Result<(), EnvelopeError> {
        verify_bytes(domain, key, &self.body, &self.sig)
    }

    /// Decodes the body WITHOUT checking the signature: only for data whose signer is not
    /// known until the body is read (the caller must verify before trusting anything).
    pub fn peek<T: DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        Ok(cbor::from_canonical_slice(&self.body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn seal_open_round_trip() {
        let k = key(1);
        let env = SignedEnvelope::seal(Domain::PairAttestation, &k, &("pair", 42u32)).unwrap();
        let v: (String, u32) = env.open(Domain::PairAttestation, &k.verifying_key().to_bytes()).unwrap();
        assert_eq!(v, ("pair".to_string(), 42));
    }

    #[test]
    fn a_signature_never_crosses_purposes() {
        let k = key(2);
        let env = SignedEnvelope::seal(Domain::SpSignRequest, &k, &"x").unwrap();
        assert_eq!(
            env.verify(Domain::OctaneSignRequest, &k.verifying_key().to_bytes()),
            Err(EnvelopeError::BadSignature)
        );
    }

    #[test]
    fn tampered_body_or_wrong_key_is_refused() {
        let k = key(3);
        let mut env = SignedEnvelope::seal(Domain::OctaneSession, &k, &"hello").unwrap();
        assert!(env.verify(Domain::OctaneSession, &key(4).verifying_key().to_bytes()).is_err());
        let last = env.body.len() - 1;
        env.body[last] ^= 1;
        assert_eq!(env.verify(Domain::OctaneSession, &k.verifying_key().to_bytes()), Err(EnvelopeError::BadSignature));
        env.sig.truncate(10);
        assert_eq!(
            env.verify(Domain::OctaneSession, &k.verifying_key().to_bytes()),
            Err(EnvelopeError::BadSignatureEncoding)
        );
    }

    #[test]
    fn domain_tags_are_distinct() {
        use std::collections::HashSet;
        let all = [
            Domain::OctaneSession,
            Domain::SpSignRequest,
            Domain::OctaneSignRequest,
            Domain::PairAttestation,
            Domain::PairRevocation,
            Domain::AppEndorsement,
            Domain::AppRequest,
            Domain::BondTranscript,
            Domain::OctaneRevocation,
            Domain::MetadataBundle,
            Domain::PhoneForgotten,
            Domain::SignReceipt,
            Domain::ApprovalProof,
        ];
        let tags: HashSet<_> = all.iter().map(|d| d.tag()).collect();
        assert_eq!(tags.len(), all.len());
    }
}
