//! Scriptable fakes of the engines' ports (the core's own tests, and feature `testing`;
//! never in a shipped build): a
//! [`FakeOctane`] and a [`FakeAppliance`] that answer like the real ones by default and
//! take queued answers or errors per call, recording every call; plus a [`FakeSecrets`]
//! store that can be made to fail. The tests move time with [`crate::clock::ManualClock`].
//!
//! Defaults: octane accepts every code, approval, rejection, revocation and signature, has
//! no queued sign requests and no pairs, and answers `session` with
//! [`OctaneError::NotFound`]; the appliance approves honestly (a correct attestation signed
//! with its identity key), signs EVM requests with its wallet key and signs revocations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use sha3::{Digest as _, Keccak256};
use tokio::sync::Notify;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::appliance::{ApplianceError, ApplianceInfo, ApplianceSignature};
use crate::approval::{ApprovalPolicy, ApprovalProof, ApprovalPublicKey};
use crate::bytes::Key32;
use crate::caip::{AccountId, ChainId};
use crate::code::ValidationCode;
use crate::decode::DisplayDigest;
use crate::envelope::{Domain, SignedEnvelope};
use crate::model::STATEMENT_VERSION;
use crate::model::{CountersignedRequest, PairAttestation, PairRevocation, PairSessionDetails, SignRequest};
use crate::octane::api::{AppPairInfo, PendingSignRequest, PushTarget, PushTargetRequest, SessionStatus};
use crate::octane::client::{LoadedSession, OctaneError};
use crate::payload::{encode_evm_signature, signing_target, SigningTarget};
use crate::ports::{ApplianceApi, OctaneApi, ProgressFn};
use crate::receipt::{DisplayProof, SignReceipt};
use crate::secrets::{MemorySecretStore, SecretError, SecretStore};

/// A memory secret store whose writes can be made to fail.
#[derive(Default)]
pub struct FakeSecrets {
    inner: MemorySecretStore,
    /// When set, every `put` fails with a backend error.
    pub fail_puts: AtomicBool,
    /// When set, every `get` fails with a backend error.
    pub fail_gets: AtomicBool,
}

impl SecretStore for FakeSecrets {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecretError> {
        if self.fail_gets.load(Ordering::SeqCst) {
            return Err(SecretError::Backend("keychain locked".into()));
        }
        self.inner.get(name)
    }
    fn put(&self, name: &str, value: &[u8]) -> Result<(), SecretError> {
        if self.fail_puts.load(Ordering::SeqCst) {
            return Err(SecretError::Backend("keychain locked".into()));
        }
        self.inner.put(name, value)
    }
    fn delete(&self, name: &str) -> Result<(), SecretError> {
        self.inner.delete(name)
    }
}

/// Answers queued for one kind of call, taken in order; when empty, the fake's default.
#[derive(Debug)]
pub struct Script<T>(Mutex<VecDeque<T>>);

impl<T> Default for Script<T> {
    fn default() -> Self {
        Self(Mutex::new(VecDeque::new()))
    }
}

impl<T> Script<T> {
    /// Queues the next answer.
    pub fn push(&self, answer: T) {
        self.0.lock().unwrap().push_back(answer);
    }

    fn next(&self) -> Option<T> {
        self.0.lock().unwrap().pop_front()
    }
}

/// One call the engines made to octane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OctaneCall {
    /// `session(id)`.
    Session(String),
    /// `check_code(session, code)`.
    CheckCode(String, String),
    /// `approve_session(session)`.
    ApproveSession(String),
    /// `reject_session(session, reason)`.
    RejectSession(String, Option<String>),
    /// `pairs()`.
    Pairs,
    /// `revoke(pair)`.
    Revoke(Uuid),
    /// `pending_sign_requests(wait)`.
    PendingSignRequests,
    /// `deliver_signature(request, signature, display digest and receipt)`.
    DeliverSignature(Uuid, Vec<u8>, Option<DisplayProof>),
    /// `reject_sign(request, reason_code)`.
    RejectSign(Uuid, String),
    /// `register_push_target(target)`.
    RegisterPushTarget(PushTargetRequest),
    /// `push_target()`.
    PushTarget,
    /// `remove_push_target()`.
    RemovePushTarget,
}

/// Octane as the engines see it: scripted answers, recorded calls, and a signing key to
/// make sessions and countersign requests with.
pub struct FakeOctane {
    /// Octane's signing key (its public half is what the engines pin).
    pub key: SigningKey,
    /// Answers to `session`.
    pub sessions: Script<Result<LoadedSession, OctaneError>>,
    /// Answers to `check_code`.
    pub check_code: Script<Result<(), OctaneError>>,
    /// Answers to `approve_session` (default: the attestation's pair id).
    pub approve: Script<Result<Uuid, OctaneError>>,
    /// Answers to `reject_session`.
    pub reject_session: Script<Result<(), OctaneError>>,
    /// Answers to `pairs`.
    pub pairs: Script<Result<Vec<AppPairInfo>, OctaneError>>,
    /// Answers to `revoke`.
    pub revoke: Script<Result<(), OctaneError>>,
    /// Answers to `pending_sign_requests`.
    pub pending: Script<Result<Vec<PendingSignRequest>, OctaneError>>,
    /// Answers to `deliver_signature`.
    pub deliver: Script<Result<(), OctaneError>>,
    /// Answers to `reject_sign`.
    pub reject_sign: Script<Result<(), OctaneError>>,
    /// Failures of the push-target calls (default: they succeed, and the fake keeps the
    /// registered target like octane does).
    pub push_target_errors: Script<OctaneError>,
    push_target: Mutex<Option<PushTarget>>,
    calls: Mutex<Vec<OctaneCall>>,
}

impl Default for FakeOctane {
    fn default() -> Self {
        Self::new(SigningKey::from_bytes(&[1; 32]))
    }
}

impl FakeOctane {
    /// An octane that signs with `key`.
    pub fn new(key: SigningKey) -> Self {
        Self {
            key,
            sessions: Script::default(),
            check_code: Script::default(),
            approve: Script::default(),
            reject_session: Script::default(),
            pairs: Script::default(),
            revoke: Script::default(),
            pending: Script::default(),
            deliver: Script::default(),
            reject_sign: Script::default(),
            push_target_errors: Script::default(),
            push_target: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// `details` signed by this octane, as `session` returns them.
    pub fn loaded(&self, details: &PairSessionDetails, status: SessionStatus, attempts_left: u32) -> LoadedSession {
        LoadedSession {
            envelope: SignedEnvelope::seal(Domain::OctaneSession, &self.key, details).unwrap(),
            details: details.clone(),
            status,
            attempts_left,
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<OctaneCall> {
        self.calls.lock().unwrap().clone()
    }

    /// The reason codes of the sign rejections posted for `request_id`.
    pub fn sign_rejections(&self, request_id: Uuid) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                OctaneCall::RejectSign(id, code) if id == request_id => Some(code),
                _ => None,
            })
            .collect()
    }

    /// How many calls matched `f`.
    pub fn count(&self, f: impl Fn(&OctaneCall) -> bool) -> usize {
        self.calls().iter().filter(|c| f(c)).count()
    }

    fn note(&self, call: OctaneCall) {
        self.calls.lock().unwrap().push(call);
    }
}

#[async_trait::async_trait]
impl OctaneApi for FakeOctane {
    fn octane_key(&self) -> Key32 {
        Key32(self.key.verifying_key().to_bytes())
    }

    async fn session(&self, session_id: &str) -> Result<LoadedSession, OctaneError> {
        self.note(OctaneCall::Session(session_id.to_string()));
        self.sessions.next().unwrap_or(Err(OctaneError::NotFound))
    }

    async fn check_code(&self, session_id: &str, code: &ValidationCode) -> Result<(), OctaneError> {
        self.note(OctaneCall::CheckCode(session_id.to_string(), code.as_str().to_string()));
        self.check_code.next().unwrap_or(Ok(()))
    }

    async fn approve_session(&self, session_id: &str, attestation: &SignedEnvelope) -> Result<Uuid, OctaneError> {
        self.note(OctaneCall::ApproveSession(session_id.to_string()));
        match self.approve.next() {
            Some(answer) => answer,
            None => attestation
                .peek::<PairAttestation>()
                .map(|a| a.pair_id)
                .map_err(|e| OctaneError::Protocol(e.to_string())),
        }
    }

    async fn reject_session(&self, session_id: &str, reason: Option<String>) -> Result<(), OctaneError> {
        self.note(OctaneCall::RejectSession(session_id.to_string(), reason));
        self.reject_session.next().unwrap_or(Ok(()))
    }

    async fn pairs(&self) -> Result<Vec<AppPairInfo>, OctaneError> {
        self.note(OctaneCall::Pairs);
        self.pairs.next().unwrap_or(Ok(Vec::new()))
    }

    async fn revoke(&self, pair_id: Uuid, _revocation: &SignedEnvelope) -> Result<(), OctaneError> {
        self.note(OctaneCall::Revoke(pair_id));
        self.revoke.next().unwrap_or(Ok(()))
    }

    async fn pending_sign_requests(&self, _wait: Duration) -> Result<Vec<PendingSignRequest>, OctaneError> {
        self.note(OctaneCall::PendingSignRequests);
        self.pending.next().unwrap_or(Ok(Vec::new()))
    }

    async fn deliver_signature(
        &self,
        request_id: Uuid,
        signature: &[u8],
        proof: Option<&DisplayProof>,
    ) -> Result<(), OctaneError> {
        self.note(OctaneCall::DeliverSignature(request_id, signature.to_vec(), proof.cloned()));
        self.deliver.next().unwrap_or(Ok(()))
    }

    async fn reject_sign(&self, request_id: Uuid, reason_code: &str, _message: &str) -> Result<(), OctaneError> {
        self.note(OctaneCall::RejectSign(request_id, reason_code.to_string()));
        self.reject_sign.next().unwrap_or(Ok(()))
    }

    async fn register_push_target(&self, target: &PushTargetRequest) -> Result<PushTarget, OctaneError> {
        self.note(OctaneCall::RegisterPushTarget(target.clone()));
        if let Some(e) = self.push_target_errors.next() {
            return Err(e);
        }
        let t = PushTarget {
            platform: target.platform,
            token: target.token.clone(),
            push_key: target.push_key,
            registered_at: 0,
        };
        *self.push_target.lock().unwrap() = Some(t.clone());
        Ok(t)
    }

    async fn push_target(&self) -> Result<Option<PushTarget>, OctaneError> {
        self.note(OctaneCall::PushTarget);
        if let Some(e) = self.push_target_errors.next() {
            return Err(e);
        }
        Ok(self.push_target.lock().unwrap().clone())
    }

    async fn remove_push_target(&self) -> Result<bool, OctaneError> {
        self.note(OctaneCall::RemovePushTarget);
        if let Some(e) = self.push_target_errors.next() {
            return Err(e);
        }
        Ok(self.push_target.lock().unwrap().take().is_some())
    }
}

/// One call the engines made to the appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplianceCall {
    /// `wallets(chains)`.
    Wallets,
    /// `approve_pair(request id, code, bindings)`.
    ApprovePair(Uuid, String, Vec<AccountId>),
    /// `sign(request id)`.
    Sign(Uuid),
    /// `revoke_pair(pair)`.
    RevokePair(Uuid),
}

/// The bonded appliance as the engines see it: honest by default, scripted when asked.
pub struct FakeAppliance {
    /// Its Ed25519 identity key (signs attestations and revocations).
    pub identity: SigningKey,
    /// Its secp256k1 wallet key (signs EVM requests).
    pub wallet: k256::ecdsa::SigningKey,
    /// The pair id it mints on approval.
    pub pair_id: Uuid,
    /// Answers to `wallets` (default: the wallet's address on every chain asked).
    pub wallets: Script<Result<Vec<AccountId>, ApplianceError>>,
    /// Answers to `approve_pair` (default: an honest attestation).
    pub approve: Script<Result<SignedEnvelope, ApplianceError>>,
    /// Answers to `sign` (default: the wallet key's signature).
    pub sign: Script<Result<Vec<u8>, ApplianceError>>,
    /// Answers to `revoke_pair` (default: an honest revocation).
    pub revoke: Script<Result<SignedEnvelope, ApplianceError>>,
    /// Receipts `sign_request` answers with (default: an honest receipt over the display
    /// digest sent; none when none was sent).
    pub receipts: Script<Option<SignedEnvelope>>,
    /// The display digest each `sign_request` carried, in order.
    digests: Mutex<Vec<(Uuid, Option<DisplayDigest>)>>,
    /// The approval policy and enrolled key it checks proofs with
    /// ([`crate::approval::check_approval`]); `None`: it checks nothing.
    approval: Mutex<Option<(ApprovalPolicy, Option<ApprovalPublicKey>)>>,
    /// The approval proof each `sign_request` carried, in order.
    proofs: Mutex<Vec<(Uuid, Option<ApprovalProof>)>>,
    /// While set, `sign` holds its answer ([`FakeAppliance::hold_signing`]).
    sign_hold: Mutex<Option<(Arc<Notify>, Arc<Notify>)>>,
    calls: Mutex<Vec<ApplianceCall>>,
}

impl Default for FakeAppliance {
    fn default() -> Self {
        Self::new(SigningKey::from_bytes(&[8; 32]), Uuid::from_bytes([0xa; 16]))
    }
}

impl FakeAppliance {
    /// An appliance with the identity key `identity` that mints `pair_id` on approval (the
    /// same wallet key as every fake appliance).
    pub fn new(identity: SigningKey, pair_id: Uuid) -> Self {
        Self {
            identity,
            wallet: k256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap(),
            pair_id,
            wallets: Script::default(),
            approve: Script::default(),
            sign: Script::default(),
            revoke: Script::default(),
            receipts: Script::default(),
            digests: Mutex::new(Vec::new()),
            approval: Mutex::new(None),
            proofs: Mutex::new(Vec::new()),
            sign_hold: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Its identity key as the phone pins it.
    pub fn identity_key(&self) -> Key32 {
        Key32(self.identity.verifying_key().to_bytes())
    }

    /// The wallet's 20-byte EVM address.
    pub fn address(&self) -> [u8; 20] {
        let point = self.wallet.verifying_key().to_encoded_point(false);
        let hash = Keccak256::digest(&point.as_bytes()[1..]);
        hash[12..].try_into().unwrap()
    }

    /// An attestation of `session` for `code` and `bindings`, signed with `key`.
    pub fn attestation(
        &self,
        session: &SignedEnvelope,
        code: &str,
        bindings: &[AccountId],
        key: &SigningKey,
    ) -> SignedEnvelope {
        let d: PairSessionDetails = session.peek().unwrap();
        let a = PairAttestation {
            v: STATEMENT_VERSION,
            pair_id: self.pair_id,
            session_id: d.session_id,
            validation_code: code.to_string(),
            sp_id: d.sp.sp_id,
            sp_public_key: d.sp.public_key,
            bindings: bindings.to_vec(),
            appliance_identity: self.identity_key(),
            approved_at: d.created_at,
        };
        SignedEnvelope::seal(Domain::PairAttestation, key, &a).unwrap()
    }

    /// A revocation of `pair_id` naming `identity`, signed with `key`.
    pub fn revocation(&self, pair_id: Uuid, identity: Key32, key: &SigningKey) -> SignedEnvelope {
        let r = PairRevocation { v: STATEMENT_VERSION, pair_id, appliance_identity: identity, revoked_at: 1 };
        SignedEnvelope::seal(Domain::PairRevocation, key, &r).unwrap()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<ApplianceCall> {
        self.calls.lock().unwrap().clone()
    }

    /// From now on `sign` holds each answer as a person at the appliance would: it notifies
    /// the first returned `Notify` once asked, and answers when the second is notified.
    pub fn hold_signing(&self) -> (Arc<Notify>, Arc<Notify>) {
        let gates = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        *self.sign_hold.lock().unwrap() = Some(gates.clone());
        gates
    }

    /// The display digest the phone sent with its request to sign `request_id` (the
    /// last one, when asked more than once); `None` when never asked or sent without one.
    pub fn digest_sent(&self, request_id: Uuid) -> Option<DisplayDigest> {
        self.digests.lock().unwrap().iter().rev().find(|(id, _)| *id == request_id).and_then(|(_, d)| *d)
    }

    /// From now on `sign_request` checks approval proofs as an appliance holding `policy`
    /// with `enrolled` as the phone's key would, and refuses like one.
    pub fn require_approval(&self, policy: ApprovalPolicy, enrolled: Option<ApprovalPublicKey>) {
        *self.approval.lock().unwrap() = Some((policy, enrolled));
    }

    /// The approval proof the phone sent with its request to sign `request_id` (the last).
    pub fn proof_sent(&self, request_id: Uuid) -> Option<ApprovalProof> {
        self.proofs.lock().unwrap().iter().rev().find(|(id, _)| *id == request_id).and_then(|(_, p)| p.clone())
    }

    /// An honest receipt for `req` shown with `digest`, signed with `key`.
    pub fn receipt(&self, req: &SignRequest, digest: DisplayDigest, key: &SigningKey) -> SignedEnvelope {
        let r = SignReceipt::for_request(req, digest, self.identity_key());
        SignedEnvelope::seal(Domain::SignReceipt, key, &r).unwrap()
    }

    /// Whether it was asked to sign `request_id`.
    pub fn asked_to_sign(&self, request_id: Uuid) -> bool {
        self.calls().contains(&ApplianceCall::Sign(request_id))
    }

    fn note(&self, call: ApplianceCall) {
        self.calls.lock().unwrap().push(call);
    }
}

#[async_trait::async_trait]
impl ApplianceApi for FakeAppliance {
    async fn info(&self) -> Result<ApplianceInfo, ApplianceError> {
        Ok(ApplianceInfo {
            name: "Sigil".into(),
            firmware: "fake".into(),
            protocol_version: 1,
            identity: self.identity_key(),
        })
    }

    async fn wallets(&self, chains: &[ChainId]) -> Result<Vec<AccountId>, ApplianceError> {
        self.note(ApplianceCall::Wallets);
        if let Some(answer) = self.wallets.next() {
            return answer;
        }
        let address = self.address();
        Ok(chains
            .iter()
            .filter_map(|c| match c {
                ChainId::Evm(id) => Some(AccountId::evm(*id, address)),
                _ => None,
            })
            .collect())
    }

    async fn approve_pair(
        &self,
        request_id: Uuid,
        session: &SignedEnvelope,
        validation_code: &str,
        bindings: &[AccountId],
        _progress: Option<ProgressFn>,
    ) -> Result<SignedEnvelope, ApplianceError> {
        self.note(ApplianceCall::ApprovePair(request_id, validation_code.to_string(), bindings.to_vec()));
        match self.approve.next() {
            Some(answer) => answer,
            None => Ok(self.attestation(session, validation_code, bindings, &self.identity)),
        }
    }

    async fn sign(
        &self,
        request: &CountersignedRequest,
        _progress: Option<ProgressFn>,
    ) -> Result<Vec<u8>, ApplianceError> {
        let req: SignRequest =
            crate::cbor::from_canonical_slice(&request.body).map_err(|e| ApplianceError::Protocol(e.to_string()))?;
        self.note(ApplianceCall::Sign(req.request_id));
        let hold = self.sign_hold.lock().unwrap().clone();
        if let Some((asked, release)) = hold {
            asked.notify_one();
            release.notified().await;
        }
        if let Some(answer) = self.sign.next() {
            return answer;
        }
        match signing_target(req.kind, &req.payload, &req.chain) {
            Ok(SigningTarget::EvmDigest { digest, v_style }) => {
                let (sig, recid) = self.wallet.sign_prehash_recoverable(&digest).unwrap();
                Ok(encode_evm_signature(&sig, recid, v_style).to_vec())
            }
            _ => Err(ApplianceError::Refused { code: "unsupported".into(), message: "EVM only".into() }),
        }
    }

    async fn sign_request(
        &self,
        request_id: Uuid,
        request: &CountersignedRequest,
        display_digest: Option<DisplayDigest>,
        approval: Option<ApprovalProof>,
        progress: Option<ProgressFn>,
    ) -> Result<ApplianceSignature, ApplianceError> {
        self.digests.lock().unwrap().push((request_id, display_digest));
        self.proofs.lock().unwrap().push((request_id, approval.clone()));
        let checks = self.approval.lock().unwrap().clone();
        if let Some((policy, enrolled)) = checks {
            let req: SignRequest = crate::cbor::from_canonical_slice(&request.body).unwrap();
            if let Err(r) =
                crate::approval::check_approval(policy, enrolled.as_ref(), &req, display_digest, approval.as_ref())
            {
                return Err(crate::appliance::proto::ApplianceErrorCode::from(r).to_appliance_error(r.to_string()));
            }
        }
        let signature = self.sign(request, progress).await?;
        let receipt = match self.receipts.next() {
            Some(scripted) => scripted,
            None => display_digest.map(|d| {
                let req: SignRequest = crate::cbor::from_canonical_slice(&request.body).unwrap();
                self.receipt(&req, d, &self.identity)
            }),
        };
        Ok(ApplianceSignature { signature, receipt })
    }

    async fn enrol_approval_key(
        &self,
        _request_id: Uuid,
        public_key: &ApprovalPublicKey,
        _progress: Option<ProgressFn>,
    ) -> Result<(), ApplianceError> {
        let mut approval = self.approval.lock().unwrap();
        let policy = approval.as_ref().map_or(ApprovalPolicy::Always, |(p, _)| *p);
        *approval = Some((policy, Some(public_key.clone())));
        Ok(())
    }

    async fn set_approval_policy(
        &self,
        _request_id: Uuid,
        _pair_id: Uuid,
        policy: ApprovalPolicy,
        _progress: Option<ProgressFn>,
    ) -> Result<ApprovalPolicy, ApplianceError> {
        let mut approval = self.approval.lock().unwrap();
        let key = approval.as_ref().and_then(|(_, k)| k.clone());
        *approval = Some((policy, key));
        Ok(policy)
    }

    async fn revoke_pair(&self, _request_id: Uuid, pair_id: Uuid) -> Result<SignedEnvelope, ApplianceError> {
        self.note(ApplianceCall::RevokePair(pair_id));
        match self.revoke.next() {
            Some(answer) => answer,
            None => Ok(self.revocation(pair_id, self.identity_key(), &self.identity)),
        }
    }

    async fn list_pairs(&self) -> Result<Vec<Uuid>, ApplianceError> {
        Ok(vec![self.pair_id])
    }
}

/// A software P-256 approval key with a scriptable user: signs by default; queued errors
/// answer the next `sign` calls (a cancelled prompt, a lock-out); [`FakeApprovalKey::invalidate`]
/// makes it behave like a key a biometric change invalidated, [`FakeApprovalKey::renew`]
/// like the new key the app then creates.
pub struct FakeApprovalKey {
    key: Mutex<p256::ecdsa::SigningKey>,
    invalidated: AtomicBool,
    /// Errors the next `sign` calls answer with, in order.
    pub errors: Script<crate::approval::ApprovalKeyError>,
    signed: Mutex<Vec<Vec<u8>>>,
}

impl Default for FakeApprovalKey {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeApprovalKey {
    /// A fresh random key.
    pub fn new() -> Self {
        Self {
            key: Mutex::new(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng)),
            invalidated: AtomicBool::new(false),
            errors: Script::default(),
            signed: Mutex::new(Vec::new()),
        }
    }

    /// From now on the key is unusable: `sign` fails with `KeyInvalidated`.
    pub fn invalidate(&self) {
        self.invalidated.store(true, Ordering::SeqCst);
    }

    /// A new key replaces the invalidated one (what the app does before re-enrolling).
    pub fn renew(&self) {
        *self.key.lock().unwrap() = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        self.invalidated.store(false, Ordering::SeqCst);
    }

    /// Every message signed so far, in order.
    pub fn signed(&self) -> Vec<Vec<u8>> {
        self.signed.lock().unwrap().clone()
    }
}

impl crate::approval::ApprovalKey for FakeApprovalKey {
    fn public_key(&self) -> Result<Vec<u8>, crate::approval::ApprovalKeyError> {
        Ok(self.key.lock().unwrap().verifying_key().to_encoded_point(false).as_bytes().to_vec())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, crate::approval::ApprovalKeyError> {
        if self.invalidated.load(Ordering::SeqCst) {
            return Err(crate::approval::ApprovalKeyError::KeyInvalidated);
        }
        if let Some(e) = self.errors.next() {
            return Err(e);
        }
        use p256::ecdsa::signature::Signer;
        let sig: p256::ecdsa::Signature = self.key.lock().unwrap().sign(message);
        self.signed.lock().unwrap().push(message.to_vec());
        Ok(sig.to_der().as_bytes().to_vec())
    }
}
