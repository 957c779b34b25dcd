//! The appliance's sign receipt: its identity key's signature (under
//! [`Domain::SignReceipt`]) over the request id, the pair, the SHA-256 of the payload it
//! signed and the display digest the phone sent with the request — the commitment to the
//! screen the user reviewed on the phone ([`crate::decode::display_digest`]), whose
//! fingerprint the appliance showed beside its own screen.
//!
//! The phone checks the receipt under the pair's appliance identity before it accepts the
//! signature; octane keeps it and hands it to the SP with the three signatures, and the SP
//! checks it with the appliance identity of the pair attestation. Both use
//! [`SignReceipt::verify`]. `docs/signing.md` says how an SP or an auditor checks it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::bytes::Key32;
use crate::decode::DisplayDigest;
use crate::envelope::{Domain, EnvelopeError, SignedEnvelope};
use crate::model::{SignRequest, STATEMENT_VERSION};

/// What the appliance signs when it signs a request that came with a display digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignReceipt {
    /// Always [`STATEMENT_VERSION`].
    pub v: u8,
    /// The sign request's id.
    pub request_id: Uuid,
    /// The pair it was made under.
    pub pair_id: Uuid,
    /// SHA-256 of the request's payload (the bytes signed, as the SP sent them).
    pub payload_sha256: Key32,
    /// The display digest the phone sent with the request.
    pub display_digest: DisplayDigest,
    /// The appliance's identity key (the signer).
    pub appliance_identity: Key32,
}

/// A part of a receipt that does not name what it should.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptField {
    /// The statement version.
    Version,
    /// The request id.
    RequestId,
    /// The pair id.
    PairId,
    /// The payload hash.
    PayloadHash,
    /// The display digest.
    DisplayDigest,
    /// The appliance identity.
    ApplianceIdentity,
}

impl ReceiptField {
    /// Its snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptField::Version => "version",
            ReceiptField::RequestId => "request_id",
            ReceiptField::PairId => "pair_id",
            ReceiptField::PayloadHash => "payload_sha256",
            ReceiptField::DisplayDigest => "display_digest",
            ReceiptField::ApplianceIdentity => "appliance_identity",
        }
    }
}

/// Why a receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The signature does not verify under the appliance's identity key.
    #[error("the appliance's receipt does not verify under its identity key")]
    BadSignature,
    /// The signed body is not a receipt.
    #[error("the appliance's receipt is malformed: {0}")]
    Malformed(String),
    /// The receipt is genuine but names another request, pair, payload or screen.
    #[error("the appliance's receipt names another {}", .0.as_str())]
    Mismatch(ReceiptField),
}

impl ReceiptError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ReceiptError::BadSignature => "bad_receipt_signature",
            ReceiptError::Malformed(_) => "malformed_receipt",
            ReceiptError::Mismatch(_) => "receipt_mismatch",
        }
    }
}

/// The display digest and the appliance's receipt over it: what the phone posts to octane
/// beside the signature, and octane returns to the SP in the [`SignatureBundle`].
///
/// [`SignatureBundle`]: crate::octane::api::SignatureBundle
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayProof {
    /// The display digest of the screen the user approved.
    pub display_digest: DisplayDigest,
    /// The appliance's signed [`SignReceipt`] naming it.
    pub receipt: SignedEnvelope,
}

impl SignReceipt {
    /// The receipt for `req` shown with `display_digest`, by the appliance `appliance_identity`.
    pub fn for_request(req: &SignRequest, display_digest: DisplayDigest, appliance_identity: Key32) -> Self {
        SignReceipt {
            v: STATEMENT_VERSION,
            request_id: req.request_id,
            pair_id: req.pair_id,
            payload_sha256: Key32(Sha256::digest(&req.payload).into()),
            display_digest,
            appliance_identity,
        }
    }

    /// Checks `envelope` under `expected.appliance_identity` (the one signature checker),
    /// then that it names exactly what `expected` names; returns the receipt as signed.
    pub fn verify(envelope: &SignedEnvelope, expected: &SignReceipt) -> Result<SignReceipt, ReceiptError> {
        let got: SignReceipt =
            envelope.open(Domain::SignReceipt, expected.appliance_identity.as_bytes()).map_err(|e| match e {
                EnvelopeError::Body(b) => ReceiptError::Malformed(b.to_string()),
                _ => ReceiptError::BadSignature,
            })?;
        let checks = [
            (got.v == expected.v, ReceiptField::Version),
            (got.request_id == expected.request_id, ReceiptField::RequestId),
            (got.pair_id == expected.pair_id, ReceiptField::PairId),
            (got.payload_sha256 == expected.payload_sha256, ReceiptField::PayloadHash),
            (got.display_digest == expected.display_digest, ReceiptField::DisplayDigest),
            (got.appliance_identity == expected.appliance_identity, ReceiptField::ApplianceIdentity),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, field)) => Err(ReceiptError::Mismatch(*field)),
            None => Ok(got),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PayloadKind;
    use ed25519_dalek::SigningKey;

    fn request() -> SignRequest {
        SignRequest {
            v: STATEMENT_VERSION,
            request_id: Uuid::from_u128(1),
            pair_id: Uuid::from_u128(2),
            chain: "eip155:1".parse().unwrap(),
            account: "eip155:1:0x000000000000000000000000000000000000dEaD".parse().unwrap(),
            kind: PayloadKind::Eip191Message,
            payload: b"hello".to_vec(),
            created_at: 10,
            expires_at: 70,
        }
    }

    fn sealed(key: &SigningKey, r: &SignReceipt) -> SignedEnvelope {
        SignedEnvelope::seal(Domain::SignReceipt, key, r).unwrap()
    }

    #[test]
    fn an_honest_receipt_verifies_and_any_other_is_refused_with_its_reason() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let identity = Key32(key.verifying_key().to_bytes());
        let digest = DisplayDigest([7; 32]);
        let expected = SignReceipt::for_request(&request(), digest, identity);
        assert_eq!(SignReceipt::verify(&sealed(&key, &expected), &expected), Ok(expected));

        let other_screen = SignReceipt { display_digest: DisplayDigest([8; 32]), ..expected };
        assert_eq!(
            SignReceipt::verify(&sealed(&key, &other_screen), &expected),
            Err(ReceiptError::Mismatch(ReceiptField::DisplayDigest))
        );
        let other_payload = SignReceipt { payload_sha256: Key32([0; 32]), ..expected };
        assert_eq!(
            SignReceipt::verify(&sealed(&key, &other_payload), &expected),
            Err(ReceiptError::Mismatch(ReceiptField::PayloadHash))
        );
        let other_request = SignReceipt { request_id: Uuid::from_u128(9), ..expected };
        assert_eq!(
            SignReceipt::verify(&sealed(&key, &other_request), &expected),
            Err(ReceiptError::Mismatch(ReceiptField::RequestId))
        );

        let mut tampered = sealed(&key, &expected);
        let last = tampered.body.len() - 1;
        tampered.body[last] ^= 1;
        assert_eq!(SignReceipt::verify(&tampered, &expected), Err(ReceiptError::BadSignature));
        let stranger = SigningKey::from_bytes(&[6; 32]);
        assert_eq!(SignReceipt::verify(&sealed(&stranger, &expected), &expected), Err(ReceiptError::BadSignature));
        // A signature made for another purpose never passes as a receipt.
        let revocation = SignedEnvelope::seal(Domain::PairRevocation, &key, &expected).unwrap();
        assert_eq!(SignReceipt::verify(&revocation, &expected), Err(ReceiptError::BadSignature));
    }

    #[test]
    fn the_payload_hash_is_the_one_the_review_screen_commits_to() {
        let req = request();
        let r = SignReceipt::for_request(&req, DisplayDigest([0; 32]), Key32::default());
        let account = req.account.clone();
        let screen = crate::decode::decode(req.kind, &req.payload, &account).unwrap();
        assert_eq!(r.payload_sha256.to_hex(), screen.payload_hash);
    }
}
