//! The application protocol between phone and appliance: versioned requests with an id,
//! responses, keep-alive status and stable error codes, in deterministic CBOR
//! ([`crate::cbor`]) inside the secure channel. See `docs/ble-protocol.md` (`## Messages`).
//!
//! Enums use serde's external tagging: a unit variant is a text string (`"get_info"`), a
//! variant with fields is a one-entry map (`{"sign": {...}}`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::appliance::{ApplianceError, ApplianceInfo, PhoneEntry};
use crate::approval::{ApprovalPolicy, ApprovalProof, ApprovalPublicKey, ApprovalRefusal};
use crate::bytes::Key32;
use crate::caip::{AccountId, ChainId};
use crate::cbor::{self, CborError};
use crate::decode::DisplayDigest;
use crate::envelope::SignedEnvelope;
use crate::model::CountersignedRequest;

/// The application protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// Largest encoded request or response (checked before decoding, and before sending).
pub const MAX_MESSAGE_LEN: usize = 32 * 1024;
/// How often the appliance sends `Status{WaitingForUser}` while its user decides.
pub const KEEPALIVE_INTERVAL_MS: u64 = 1000;
/// Most `PhoneForgotten` statements a `Phones` answer carries (the newest the appliance
/// made on its own side); a phone refuses an answer with more.
pub const MAX_OWN_FORGETS: usize = 16;

/// A request from the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version, [`PROTOCOL_VERSION`].
    pub v: u16,
    /// Request id; retried requests keep it (for `sign`, the sign request's own id).
    pub id: Uuid,
    /// What is asked.
    pub body: RequestBody,
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestBody {
    /// Name, firmware, protocol version, identity key.
    GetInfo,
    /// The appliance's wallets on these chains (all when empty).
    ListWallets {
        /// CAIP-2 chains.
        chains: Vec<ChainId>,
    },
    /// Approve a pair: verify octane's session, ask the user, mint and attest a pair.
    ApprovePair {
        /// Octane's signed `PairSessionDetails`.
        session: SignedEnvelope,
        /// The six-digit validation code of the session.
        validation_code: String,
        /// The wallets the user chose.
        bindings: Vec<AccountId>,
    },
    /// Sign a countersigned request.
    Sign {
        /// The SP- and octane-signed request.
        request: CountersignedRequest,
        /// The display digest of the phone's review screen: the appliance shows its
        /// fingerprint and answers with a receipt over it. Absent from older phones (and
        /// then left out of the encoding, so an older appliance reads the request).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_digest: Option<DisplayDigest>,
        /// The phone's approval key's signature over the request and the display digest
        /// ([`crate::approval`]): the appliance checks it against the key this phone
        /// enrolled, as the pair's approval policy asks. Absent from older phones (and then
        /// left out of the encoding).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approval: Option<ApprovalProof>,
    },
    /// Enrol a new approval key for the phone that asks, replacing the one it enrolled at
    /// bonding (after a biometric change invalidated it). The appliance's user confirms.
    EnrolApprovalKey {
        /// SEC1 P-256 public key.
        public_key: ApprovalPublicKey,
    },
    /// Change a pair's approval policy. The appliance's user confirms.
    SetApprovalPolicy {
        /// The pair.
        pair_id: Uuid,
        /// The new policy.
        policy: ApprovalPolicy,
    },
    /// Drop a pair and sign its revocation.
    RevokePair {
        /// The pair.
        pair_id: Uuid,
    },
    /// The pair ids the appliance holds.
    ListPairs,
    /// Cancel the pending request with this id (its user prompt is withdrawn).
    Cancel {
        /// The request to cancel.
        id: Uuid,
    },
    /// The phones bonded with the appliance.
    ListPhones,
    /// Forget another bonded phone (its user confirms on the appliance): the appliance
    /// drops its channel key, cuts its session, refuses it from then on, and signs a
    /// `PhoneForgotten` statement. Refused for the phone that asks (`cannot_forget_self`).
    ForgetPhone {
        /// The phone's Ed25519 app key.
        app_key: Key32,
    },
}

impl RequestBody {
    /// A short name for logs and spans.
    pub fn op(&self) -> &'static str {
        match self {
            RequestBody::GetInfo => "get_info",
            RequestBody::ListWallets { .. } => "list_wallets",
            RequestBody::ApprovePair { .. } => "approve_pair",
            RequestBody::Sign { .. } => "sign",
            RequestBody::RevokePair { .. } => "revoke_pair",
            RequestBody::ListPairs => "list_pairs",
            RequestBody::Cancel { .. } => "cancel",
            RequestBody::ListPhones => "list_phones",
            RequestBody::ForgetPhone { .. } => "forget_phone",
            RequestBody::EnrolApprovalKey { .. } => "enrol_approval_key",
            RequestBody::SetApprovalPolicy { .. } => "set_approval_policy",
        }
    }

    /// True for requests that change state and are answered exactly once per id.
    pub fn is_exactly_once(&self) -> bool {
        matches!(
            self,
            RequestBody::ApprovePair { .. }
                | RequestBody::Sign { .. }
                | RequestBody::RevokePair { .. }
                | RequestBody::ForgetPhone { .. }
                | RequestBody::EnrolApprovalKey { .. }
                | RequestBody::SetApprovalPolicy { .. }
        )
    }
}

/// A response from the appliance (`id` echoes the request's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version, [`PROTOCOL_VERSION`].
    pub v: u16,
    /// The request this answers.
    pub id: Uuid,
    /// The answer, a keep-alive, or an error.
    pub body: ResponseBody,
}

/// The status a keep-alive reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    /// The appliance shows the request and waits for its user.
    WaitingForUser,
}

/// What the appliance answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseBody {
    /// Answer to `GetInfo`.
    Info(ApplianceInfo),
    /// Answer to `ListWallets`.
    Wallets {
        /// CAIP-10 accounts.
        accounts: Vec<AccountId>,
    },
    /// Answer to `ApprovePair`: the signed `PairAttestation`.
    PairApproved {
        /// The attestation envelope.
        attestation: SignedEnvelope,
    },
    /// Answer to `Sign`: EVM 65 bytes `r‖s‖v`, Solana 64 bytes Ed25519.
    Signature {
        /// The signature.
        #[serde(with = "crate::bytes::b64")]
        signature: Vec<u8>,
        /// The signed [`crate::receipt::SignReceipt`] when the request carried a display
        /// digest (absent otherwise, and from older appliances).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<SignedEnvelope>,
    },
    /// Answer to `RevokePair`: the signed `PairRevocation`.
    PairRevoked {
        /// The revocation envelope.
        revocation: SignedEnvelope,
    },
    /// Answer to `ListPairs`.
    Pairs {
        /// Pair ids.
        pair_ids: Vec<Uuid>,
    },
    /// Answer to `Cancel`.
    Cancelled,
    /// Answer to `ListPhones`, in bonding order.
    Phones {
        /// The bonded phones.
        phones: Vec<PhoneEntry>,
        /// The signed `PhoneForgotten` statements of the phones the appliance forgot on its
        /// own side (no phone asked), oldest first, at most [`MAX_OWN_FORGETS`]: the
        /// appliance has no network, so its phones relay them to octane. Absent from older
        /// appliances' answers.
        #[serde(default)]
        forgotten: Vec<SignedEnvelope>,
    },
    /// Answer to `EnrolApprovalKey`: the key is enrolled for the phone that asked.
    ApprovalKeyEnrolled,
    /// Answer to `SetApprovalPolicy`: the pair's policy from now on.
    ApprovalPolicySet {
        /// The pair.
        pair_id: Uuid,
        /// Its policy.
        policy: ApprovalPolicy,
    },
    /// Answer to `ForgetPhone`: the signed `PhoneForgotten` statement (for octane).
    Forgotten {
        /// The statement envelope.
        statement: SignedEnvelope,
    },
    /// Keep-alive: not an answer yet; the phone keeps waiting without a timeout.
    Status {
        /// What the appliance is doing.
        status: StatusKind,
    },
    /// The request failed.
    Error {
        /// Stable code.
        code: ApplianceErrorCode,
        /// A sentence for a person.
        message: String,
    },
}

/// Stable error codes (snake_case on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplianceErrorCode {
    /// The request could not be decoded or is malformed.
    BadRequest,
    /// The request's protocol version is not supported.
    UnsupportedVersion,
    /// The request exceeds [`MAX_MESSAGE_LEN`].
    TooLarge,
    /// The appliance's user declined.
    UserRejected,
    /// The request was cancelled by the phone.
    Cancelled,
    /// Octane's signature on the pair session does not verify.
    BadSessionSignature,
    /// The pair session expired.
    SessionExpired,
    /// A chosen wallet is on a chain the SP did not ask for (or none was chosen).
    BindingNotRequested,
    /// A chosen wallet is not one of the appliance's own.
    NotOwnAccount,
    /// No such pair on this appliance.
    UnknownPair,
    /// The pair was revoked.
    PairRevoked,
    /// The SP's signature on the sign request does not verify.
    BadSpSignature,
    /// Octane's countersignature on the sign request does not verify.
    BadOctaneSignature,
    /// The account is not bound to the pair.
    AccountNotBound,
    /// The request's chain does not match its account's chain.
    ChainMismatch,
    /// The sign request expired or has an invalid lifetime.
    RequestExpired,
    /// The payload cannot be parsed for its kind and chain.
    BadPayload,
    /// The appliance is busy with another request.
    Busy,
    /// An internal failure on the appliance.
    Internal,
    /// The appliance forgot the phone that asks: it must bond again.
    PhoneForgotten,
    /// `ForgetPhone` names the phone that asks.
    CannotForgetSelf,
    /// `ForgetPhone` names no phone bonded with the appliance.
    UnknownPhone,
    /// The pair's approval policy asks for the phone's approval proof and none was sent.
    ApprovalMissing,
    /// The approval proof does not verify under the phone's enrolled key for this request
    /// and display digest.
    ApprovalInvalid,
    /// The pair's approval policy asks for a proof and the phone enrolled no approval key.
    ApprovalNotEnrolled,
    /// `EnrolApprovalKey` carries no valid P-256 public key.
    BadApprovalKey,
    /// A code this build does not know (newer appliance).
    #[serde(other)]
    Unknown,
}

impl ApplianceErrorCode {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ApplianceErrorCode::BadRequest => "bad_request",
            ApplianceErrorCode::UnsupportedVersion => "unsupported_version",
            ApplianceErrorCode::TooLarge => "too_large",
            ApplianceErrorCode::UserRejected => "user_rejected",
            ApplianceErrorCode::Cancelled => "cancelled",
            ApplianceErrorCode::BadSessionSignature => "bad_session_signature",
            ApplianceErrorCode::SessionExpired => "session_expired",
            ApplianceErrorCode::BindingNotRequested => "binding_not_requested",
            ApplianceErrorCode::NotOwnAccount => "not_own_account",
            ApplianceErrorCode::UnknownPair => "unknown_pair",
            ApplianceErrorCode::PairRevoked => "pair_revoked",
            ApplianceErrorCode::BadSpSignature => "bad_sp_signature",
            ApplianceErrorCode::BadOctaneSignature => "bad_octane_signature",
            ApplianceErrorCode::AccountNotBound => "account_not_bound",
            ApplianceErrorCode::ChainMismatch => "chain_mismatch",
            ApplianceErrorCode::RequestExpired => "request_expired",
            ApplianceErrorCode::BadPayload => "bad_payload",
            ApplianceErrorCode::Busy => "busy",
            ApplianceErrorCode::Internal => "internal",
            ApplianceErrorCode::PhoneForgotten => "phone_forgotten",
            ApplianceErrorCode::CannotForgetSelf => "cannot_forget_self",
            ApplianceErrorCode::UnknownPhone => "unknown_phone",
            ApplianceErrorCode::ApprovalMissing => "approval_missing",
            ApplianceErrorCode::ApprovalInvalid => "approval_invalid",
            ApplianceErrorCode::ApprovalNotEnrolled => "approval_not_enrolled",
            ApplianceErrorCode::BadApprovalKey => "bad_approval_key",
            ApplianceErrorCode::Unknown => "unknown",
        }
    }

    /// The error a phone UI shows for this code.
    pub fn to_appliance_error(self, message: String) -> ApplianceError {
        match self {
            ApplianceErrorCode::UserRejected => ApplianceError::UserRejected,
            ApplianceErrorCode::Cancelled => ApplianceError::Cancelled,
            ApplianceErrorCode::PhoneForgotten => ApplianceError::PhoneForgotten,
            ApplianceErrorCode::CannotForgetSelf => ApplianceError::CannotForgetSelf,
            ApplianceErrorCode::UnknownPhone => ApplianceError::UnknownPhone,
            other => ApplianceError::Refused { code: other.as_str().to_string(), message },
        }
    }
}

impl From<ApprovalRefusal> for ApplianceErrorCode {
    fn from(r: ApprovalRefusal) -> Self {
        match r {
            ApprovalRefusal::Missing => ApplianceErrorCode::ApprovalMissing,
            ApprovalRefusal::Invalid => ApplianceErrorCode::ApprovalInvalid,
            ApprovalRefusal::NotEnrolled => ApplianceErrorCode::ApprovalNotEnrolled,
        }
    }
}

/// Why a protocol message was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    /// Longer than [`MAX_MESSAGE_LEN`] (refused before decoding).
    #[error("message of {len} bytes exceeds {max}")]
    TooLarge {
        /// Offered length.
        len: usize,
        /// Largest allowed.
        max: usize,
    },
    /// Another protocol version.
    #[error("protocol version {0} not supported")]
    UnsupportedVersion(u16),
    /// Not CBOR of the expected shape.
    #[error("malformed message: {0}")]
    Malformed(String),
}

impl From<CborError> for ProtoError {
    fn from(e: CborError) -> Self {
        ProtoError::Malformed(e.to_string())
    }
}

/// The version and id of a message, readable even when its body is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Header {
    /// Protocol version.
    pub v: u16,
    /// Request id.
    pub id: Uuid,
}

fn check_len(bytes: &[u8]) -> Result<(), ProtoError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(ProtoError::TooLarge { len: bytes.len(), max: MAX_MESSAGE_LEN });
    }
    Ok(())
}

/// Reads only the version and id (to answer an undecodable request with its id).
pub fn decode_header(bytes: &[u8]) -> Result<Header, ProtoError> {
    check_len(bytes)?;
    Ok(cbor::from_slice(bytes)?)
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtoError> {
    let h = decode_header(bytes)?;
    if h.v != PROTOCOL_VERSION {
        return Err(ProtoError::UnsupportedVersion(h.v));
    }
    Ok(cbor::from_canonical_slice(bytes)?)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ProtoError> {
    let bytes = cbor::to_vec(value)?;
    check_len(&bytes)?;
    Ok(bytes)
}

impl Request {
    /// A request of this build's version.
    pub fn new(id: Uuid, body: RequestBody) -> Self {
        Self { v: PROTOCOL_VERSION, id, body }
    }

    /// Deterministic CBOR, at most [`MAX_MESSAGE_LEN`] bytes.
    pub fn encode(&self) -> Result<Vec<u8>, ProtoError> {
        encode(self)
    }

    /// Decodes and checks size, version and canonical form.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        decode(bytes)
    }
}

impl Response {
    /// A response of this build's version.
    pub fn new(id: Uuid, body: ResponseBody) -> Self {
        Self { v: PROTOCOL_VERSION, id, body }
    }

    /// An error response.
    pub fn error(id: Uuid, code: ApplianceErrorCode, message: impl Into<String>) -> Self {
        Self::new(id, ResponseBody::Error { code, message: message.into() })
    }

    /// Deterministic CBOR, at most [`MAX_MESSAGE_LEN`] bytes.
    pub fn encode(&self) -> Result<Vec<u8>, ProtoError> {
        encode(self)
    }

    /// Decodes and checks size, version and canonical form.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Key32;
    use proptest::prelude::*;

    fn samples() -> Vec<Request> {
        let id = Uuid::from_u128(7);
        vec![
            Request::new(id, RequestBody::GetInfo),
            Request::new(id, RequestBody::ListWallets { chains: vec![ChainId::Evm(1)] }),
            Request::new(id, RequestBody::ListPairs),
            Request::new(id, RequestBody::Cancel { id }),
            Request::new(id, RequestBody::RevokePair { pair_id: id }),
            Request::new(id, RequestBody::ListPhones),
            Request::new(id, RequestBody::ForgetPhone { app_key: Key32([9; 32]) }),
            Request::new(
                id,
                RequestBody::Sign {
                    request: CountersignedRequest { body: vec![1, 2], sp_sig: vec![3; 64], octane_sig: vec![4; 64] },
                    display_digest: None,
                    approval: None,
                },
            ),
            Request::new(
                id,
                RequestBody::Sign {
                    request: CountersignedRequest { body: vec![1, 2], sp_sig: vec![3; 64], octane_sig: vec![4; 64] },
                    display_digest: Some(DisplayDigest([5; 32])),
                    approval: Some(ApprovalProof { signature: vec![0x30; 70] }),
                },
            ),
            Request::new(id, RequestBody::EnrolApprovalKey { public_key: ApprovalPublicKey(vec![4; 65]) }),
            Request::new(id, RequestBody::SetApprovalPolicy { pair_id: id, policy: ApprovalPolicy::Always }),
            Request::new(
                id,
                RequestBody::SetApprovalPolicy { pair_id: id, policy: ApprovalPolicy::Above { native: u128::MAX } },
            ),
        ]
    }

    #[test]
    fn requests_and_responses_round_trip() {
        for r in samples() {
            let b = r.encode().unwrap();
            assert_eq!(Request::decode(&b).unwrap(), r);
        }
        let resp = Response::new(
            Uuid::from_u128(1),
            ResponseBody::Info(ApplianceInfo {
                name: "n".into(),
                firmware: "f".into(),
                protocol_version: 1,
                identity: Key32([1; 32]),
            }),
        );
        assert_eq!(Response::decode(&resp.encode().unwrap()).unwrap(), resp);
        let ka = Response::new(Uuid::from_u128(1), ResponseBody::Status { status: StatusKind::WaitingForUser });
        assert_eq!(Response::decode(&ka.encode().unwrap()).unwrap(), ka);
        let phones = Response::new(
            Uuid::from_u128(2),
            ResponseBody::Phones {
                phones: vec![PhoneEntry { app_key: Key32([3; 32]), name: "p".into(), bonded_at: 5, this_phone: true }],
                forgotten: vec![SignedEnvelope { body: vec![1, 2], sig: vec![3; 64] }],
            },
        );
        assert_eq!(Response::decode(&phones.encode().unwrap()).unwrap(), phones);
        // An older appliance's answer has no `forgotten`: it reads as none.
        #[derive(Serialize)]
        enum OldBody {
            #[serde(rename = "phones")]
            Phones { phones: Vec<PhoneEntry> },
        }
        let old = cbor::to_vec(&OldBody::Phones { phones: vec![] }).unwrap();
        let read: ResponseBody = cbor::from_slice(&old).unwrap();
        assert_eq!(read, ResponseBody::Phones { phones: vec![], forgotten: vec![] });
    }

    #[test]
    fn the_display_digest_and_receipt_are_left_out_when_absent_so_older_peers_read_them() {
        // What an appliance or phone of the version before the digest sends and expects.
        #[derive(Serialize)]
        enum OldRequest {
            #[serde(rename = "sign")]
            Sign { request: CountersignedRequest },
        }
        #[derive(Serialize)]
        enum OldResponse {
            #[serde(rename = "signature")]
            Signature {
                #[serde(with = "crate::bytes::b64")]
                signature: Vec<u8>,
            },
        }
        let request = CountersignedRequest { body: vec![1], sp_sig: vec![2; 64], octane_sig: vec![3; 64] };
        let old = cbor::to_vec(&OldRequest::Sign { request: request.clone() }).unwrap();
        let new = RequestBody::Sign { request: request.clone(), display_digest: None, approval: None };
        assert_eq!(cbor::to_vec(&new).unwrap(), old);
        assert_eq!(cbor::from_canonical_slice::<RequestBody>(&old).unwrap(), new);
        let old = cbor::to_vec(&OldResponse::Signature { signature: vec![9; 65] }).unwrap();
        let new = ResponseBody::Signature { signature: vec![9; 65], receipt: None };
        assert_eq!(cbor::to_vec(&new).unwrap(), old);
        assert_eq!(cbor::from_canonical_slice::<ResponseBody>(&old).unwrap(), new);
        let with = ResponseBody::Signature {
            signature: vec![9; 65],
            receipt: Some(SignedEnvelope { body: vec![1], sig: vec![2; 64] }),
        };
        assert_eq!(cbor::from_canonical_slice::<ResponseBody>(&cbor::to_vec(&with).unwrap()).unwrap(), with);
    }

    #[test]
    fn forgetting_codes_reach_the_phone_as_their_own_errors() {
        assert_eq!(
            ApplianceErrorCode::PhoneForgotten.to_appliance_error(String::new()),
            ApplianceError::PhoneForgotten
        );
        assert_eq!(
            ApplianceErrorCode::CannotForgetSelf.to_appliance_error(String::new()),
            ApplianceError::CannotForgetSelf
        );
        assert_eq!(ApplianceErrorCode::UnknownPhone.to_appliance_error(String::new()), ApplianceError::UnknownPhone);
        assert_eq!(cbor::to_vec(&ApplianceErrorCode::PhoneForgotten).unwrap()[1..], *b"phone_forgotten");
    }

    #[test]
    fn version_size_and_garbage_are_refused() {
        let mut r = samples().remove(0);
        r.v = 2;
        let b = cbor::to_vec(&r).unwrap();
        assert_eq!(Request::decode(&b), Err(ProtoError::UnsupportedVersion(2)));
        assert_eq!(decode_header(&b).unwrap().id, Uuid::from_u128(7));
        let big = vec![0u8; MAX_MESSAGE_LEN + 1];
        assert!(matches!(Request::decode(&big), Err(ProtoError::TooLarge { .. })));
        assert!(matches!(Request::decode(&[0xff, 0x00]), Err(ProtoError::Malformed(_))));
        let b = samples().remove(1).encode().unwrap();
        assert!(Request::decode(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn unknown_error_codes_decode_as_unknown() {
        let v = ciborium::value::Value::Text("brand_new".into());
        let code: ApplianceErrorCode = v.deserialized().unwrap();
        assert_eq!(code, ApplianceErrorCode::Unknown);
        assert_eq!(cbor::to_vec(&ApplianceErrorCode::BadSpSignature).unwrap()[1..], *b"bad_sp_signature");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Request::decode(&bytes);
            let _ = Response::decode(&bytes);
        }

        #[test]
        fn mutated_requests_never_panic(idx in 0usize..12, pos: usize, val: u8) {
            let mut b = samples()[idx].encode().unwrap();
            let p = pos % b.len();
            b[p] = val;
            let _ = Request::decode(&b);
        }
    }
}
