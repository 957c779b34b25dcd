//! The sign pipeline: from octane's queue to the appliance and back, with every check the
//! trust model asks of the phone before a user is shown anything:
//!
//! 1. both signatures over the one canonical body — the SP's with the key pinned at pair
//!    time (from the store), octane's with the pinned octane key (`verify_strict`);
//! 2. the pair is known and active, the request names it, the account is bound to it and
//!    on the request's chain;
//! 3. freshness by the one validity rule ([`crate::validity::check_validity`]: a positive
//!    lifetime of at most [`crate::model::MAX_TTL_SECS`], not created in the future beyond
//!    [`DEFAULT_MAX_SKEW_SECS`], not expired), and a request id never seen before (persisted);
//! 4. decoding for display and the user's guardrails, with what is already spent from the
//!    store's running totals and the requests still waiting (never by reading the history).
//!
//! Only then is a [`PendingSignature`] shown, with the display digest of its screen
//! ([`crate::decode::display_digest`], recorded in the history with it). When the user approves, the validity rule and
//! the guardrails run again — with the settings and spend of that moment, the request's own
//! amount left out — and a request they now refuse is recorded as blocked, octane is told
//! (`guardrail`) and the appliance is never asked. Otherwise the request goes to the
//! appliance with the display digest, its signature is verified against the bound account
//! (`payload::verify_appliance_signature`), its receipt over the digest against the pair's
//! appliance identity ([`SignReceipt::verify`]), and the signature is posted to octane. Violations, user rejections
//! and appliance rejections are posted to octane as rejections with a stable reason code.
//! Each state change of a request (arrival, approval, signed, completed, rejected, blocked,
//! failed) is one store transaction. Revocation lives here too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::appliance::ApplianceError;
use crate::approval::{ApprovalKey, ApprovalKeyError, ApprovalProof, ApprovalStatement};
use crate::audit::{Actor, AuditEvent, BlockedAt};
use crate::bytes::Key32;
use crate::caip::{AccountId, ChainId};
use crate::clock::Clock;
use crate::decode::erc7730::{AddressBook, DescriptorSet, NoAddressBook};
use crate::decode::{decode_with_target, display_digest, DecodeContext, DecodedPayload, DisplayDigest, KnownTokens};
use crate::envelope::{Domain, SignedEnvelope};
use crate::guardrails::{evaluate, worst_case_spend, Guardrails, SpendContext, Violation};
use crate::metadata::LiveMetadata;
use crate::model::{CountersignedRequest, PairRevocation, PayloadKind, SignRequest, STATEMENT_VERSION};
use crate::octane::api::{OctanePairStatus, PendingSignRequest};
use crate::octane::client::OctaneError;
use crate::payload::{verify_appliance_signature, PayloadError, SigningTarget};
use crate::ports::{ApplianceApi, OctaneApi, ProgressFn};
use crate::receipt::{DisplayProof, ReceiptError, SignReceipt};
use crate::store::{PairRecord, PairStatus, Seen, SignOutcome, SignRecord, Store, StoreError, StoreTx};
use crate::validity::{check_validity, ValidityError};

pub use crate::validity::DEFAULT_MAX_SKEW_SECS;

/// Outbox kind of an appliance's signed `PairRevocation` octane has not taken yet (subject:
/// the pair id); the facade's `sync` relays it ([`SignEngine::relay_revocation`]).
pub const PAIR_REVOKED: &str = "pair_revoked";

/// The user's guardrails as stored in `store` (a typed settings record; defaults when
/// never set). Needs no bond.
pub fn load_guardrails(store: &Store) -> Result<Guardrails, StoreError> {
    store.setting::<Guardrails>()
}

/// Replaces the user's guardrails in `store` (read by every later sign request).
pub fn save_guardrails(store: &Store, g: &Guardrails) -> Result<(), StoreError> {
    store.put_setting(g)
}

/// The phone's check of a sign request's times, at arrival and again at approval: the one
/// rule ([`check_validity`]), expiry as [`SignError::Expired`], every other failure as
/// [`SignError::BadValidity`].
pub fn check_freshness(req: &SignRequest, now: u64, max_skew_secs: u64) -> Result<(), SignError> {
    Ok(check_validity(req.created_at, req.expires_at, now, max_skew_secs)?)
}

/// Why a sign request was refused or a step failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The request names a pair this phone does not have.
    #[error("unknown pair {0}")]
    UnknownPair(Uuid),
    /// The pair is revoked.
    #[error("the pair is revoked")]
    PairRevoked,
    /// The SP's signature does not verify with the key pinned at pair time.
    #[error("the service's signature does not verify")]
    BadSpSignature,
    /// Octane's countersignature does not verify with the pinned octane key.
    #[error("octane's countersignature does not verify")]
    BadOctaneSignature,
    /// The signed body is not a valid request, or does not match its envelope.
    #[error("malformed sign request: {0}")]
    Malformed(String),
    /// The request expired.
    #[error("the request expired")]
    Expired,
    /// The request's times are not plausible (from the future, or a lifetime that is not
    /// positive or too long).
    #[error("the request's validity period is not acceptable: {0}")]
    BadValidity(ValidityError),
    /// This request id was seen before (a replay).
    #[error("this request was already handled (replay)")]
    Replay,
    /// The account is not one of the pair's bindings, or not on the request's chain.
    #[error("the account {0} is not bound to this pair")]
    AccountNotBound(String),
    /// The payload cannot be decoded for display, so it must not be signed.
    #[error("the payload cannot be shown: {0}")]
    Undecodable(String),
    /// The user's guardrails block it.
    #[error("blocked by your rules: {}", .0.join(", "))]
    Blocked(Vec<String>),
    /// No such pending request.
    #[error("no such pending request")]
    UnknownRequest,
    /// The person at the appliance declined.
    #[error("declined on the appliance")]
    RejectedOnAppliance,
    /// The appliance's signature does not verify for the bound account.
    #[error("the appliance's signature does not verify: {0}")]
    BadApplianceSignature(PayloadError),
    /// The appliance signed but sent no receipt for the display digest it was sent: it
    /// cannot show it saw the screen's fingerprint, so the signature is not used.
    #[error("the appliance sent no receipt for the screen you reviewed")]
    MissingReceipt,
    /// The appliance's receipt does not verify, or names another request, pair, payload
    /// or screen: the signature is not used.
    #[error("the appliance's receipt is not valid: {0}")]
    BadReceipt(ReceiptError),
    /// The phone's approval key could not sign the approval (the biometric prompt was
    /// cancelled, biometrics are locked or not enrolled, the key was invalidated): the
    /// appliance was not asked and the request still waits for the user.
    #[error(transparent)]
    Approval(ApprovalKeyError),
    /// The appliance's revocation does not verify.
    #[error("the appliance's revocation does not verify: {0}")]
    BadRevocation(String),
    /// Octane failed or refused.
    #[error(transparent)]
    Octane(#[from] OctaneError),
    /// The appliance failed or refused.
    #[error(transparent)]
    Appliance(ApplianceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SignError {
    /// A stable snake_case code (also the rejection reason sent to octane, where one is).
    pub fn code(&self) -> &'static str {
        match self {
            SignError::UnknownPair(_) => "unknown_pair",
            SignError::PairRevoked => "pair_revoked",
            SignError::BadSpSignature => "bad_sp_signature",
            SignError::BadOctaneSignature => "bad_octane_signature",
            SignError::Malformed(_) => "malformed_request",
            SignError::Expired => "expired",
            SignError::BadValidity(_) => "bad_validity",
            SignError::Replay => "replay",
            SignError::AccountNotBound(_) => "account_not_bound",
            SignError::Undecodable(_) => "undecodable",
            SignError::Blocked(_) => "guardrail",
            SignError::UnknownRequest => "unknown_request",
            SignError::RejectedOnAppliance => "appliance_rejected",
            SignError::BadApplianceSignature(_) => "bad_appliance_signature",
            SignError::MissingReceipt => "missing_receipt",
            SignError::BadReceipt(_) => "bad_receipt",
            SignError::Approval(e) => e.code(),
            SignError::BadRevocation(_) => "bad_revocation",
            SignError::Octane(e) => e.code(),
            SignError::Appliance(_) => "appliance_error",
            SignError::Store(_) => "store_error",
        }
    }
}

impl From<ValidityError> for SignError {
    fn from(e: ValidityError) -> Self {
        match e {
            ValidityError::Expired { .. } => SignError::Expired,
            other => SignError::BadValidity(other),
        }
    }
}

impl From<ApplianceError> for SignError {
    fn from(e: ApplianceError) -> Self {
        match e {
            ApplianceError::UserRejected => SignError::RejectedOnAppliance,
            other => SignError::Appliance(other),
        }
    }
}

/// One broken guardrail, as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViolationView {
    /// Stable code.
    pub code: String,
    /// A sentence.
    pub message: String,
}

impl From<&Violation> for ViolationView {
    fn from(v: &Violation) -> Self {
        Self { code: v.code().to_string(), message: v.message() }
    }
}

/// A verified sign request as the user is shown it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingSignature {
    /// The request id.
    pub request_id: Uuid,
    /// The pair.
    pub pair_id: Uuid,
    /// The SP's name (from the pair, as octane vouched for it at pair time).
    pub sp_name: String,
    /// The chain.
    pub chain: ChainId,
    /// The bound account that would sign.
    pub account: AccountId,
    /// The payload kind.
    pub kind: PayloadKind,
    /// The decoded payload: title, rows, warnings.
    pub decoded: DecodedPayload,
    /// The commitment to exactly this screen (`decoded`, for this request id): recorded in
    /// the history and the audit log, sent to the appliance (which shows its fingerprint
    /// and signs a receipt over it) and returned to the SP.
    pub display_digest: DisplayDigest,
    /// Broken guardrails (non-empty = blocked; octane was already told).
    pub violations: Vec<ViolationView>,
    /// The most native value this can take from the account: value plus the worst-case
    /// network fee, in the chain's smallest unit — what the spend limits count.
    #[serde(serialize_with = "u128_string")]
    pub worst_case_spend: u128,
    /// Unix seconds.
    pub expires_at: u64,
}

fn u128_string<S: serde::Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl PendingSignature {
    /// Whether the guardrails block it.
    pub fn blocked(&self) -> bool {
        !self.violations.is_empty()
    }

    /// [`PendingSignature::worst_case_spend`] in the chain's currency ("0.60063 ETH"), for
    /// the review screen.
    pub fn worst_case_total(&self) -> String {
        let spend = alloy_primitives::U256::from(self.worst_case_spend);
        crate::decode::units::format_native(&self.chain, spend)
    }
}

/// The result of an approved request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedOutcome {
    /// The request id.
    pub request_id: Uuid,
    /// The appliance's verified signature.
    #[serde(with = "crate::bytes::b64")]
    pub signature: Vec<u8>,
}

/// A request shown to the user and waiting for a decision: what octane delivered, the
/// verified request, what the user sees, and what the appliance must sign (derived once,
/// when the request arrived).
struct Waiting {
    cs: CountersignedRequest,
    req: SignRequest,
    view: PendingSignature,
    target: SigningTarget,
    /// The pair's appliance identity (pinned at pair time): its receipt must verify under it.
    appliance: Key32,
}

/// A waiting request taken out of the waiting list while the user's decision on it runs
/// (so it cannot be decided twice at once). Unless [`Claim::settle`] says the decision was
/// recorded, it goes back on drop: after a store failure, a transient appliance failure, or
/// the caller dropping the future (a cancelled approval), the user can decide again.
struct Claim<'e> {
    engine: &'e SignEngine,
    waiting: Arc<Waiting>,
    settled: bool,
}

impl Claim<'_> {
    /// The decision is recorded in the store: the request leaves the waiting list.
    fn settle(mut self) {
        self.settled = true;
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.engine.keep_waiting(Arc::clone(&self.waiting));
        }
    }
}

/// Runs sign requests through the checks, the user, the appliance and back to octane.
pub struct SignEngine {
    store: Arc<Store>,
    octane: Arc<dyn OctaneApi>,
    clock: Arc<dyn Clock>,
    max_skew_secs: u64,
    pending: Mutex<HashMap<Uuid, Arc<Waiting>>>,
    /// The guardrails as last parsed, with the settings text they came from.
    rules: Mutex<Option<(String, Guardrails)>>,
    /// The verified metadata bundle in use (read for each request), if any.
    metadata: Option<Arc<LiveMetadata>>,
    /// The user's own names for addresses.
    book: Arc<dyn AddressBook + Send + Sync>,
    /// The platform approval key that signs each approval for the appliance, if any.
    approval_key: Option<Arc<dyn ApprovalKey>>,
}

impl SignEngine {
    /// A sign engine.
    pub fn new(store: Arc<Store>, octane: Arc<dyn OctaneApi>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            octane,
            clock,
            max_skew_secs: DEFAULT_MAX_SKEW_SECS,
            pending: Mutex::new(HashMap::new()),
            rules: Mutex::new(None),
            metadata: None,
            book: Arc::new(NoAddressBook),
            approval_key: None,
        }
    }

    /// Signs every approval with the platform approval key (biometric-gated): the proof
    /// goes to the appliance with the request and into the audit log.
    pub fn with_approval_key(mut self, key: Option<Arc<dyn ApprovalKey>>) -> Self {
        self.approval_key = key;
        self
    }

    /// Renders requests with the metadata bundle in use (ERC-7730 descriptors, tokens,
    /// contract names; the newest verified bundle at each request) and the user's address
    /// book.
    pub fn with_clear_signing(
        mut self,
        metadata: Option<Arc<LiveMetadata>>,
        book: Arc<dyn AddressBook + Send + Sync>,
    ) -> Self {
        self.metadata = metadata;
        self.book = book;
        self
    }

    /// Overrides the clock-skew bound.
    pub fn with_max_skew(mut self, secs: u64) -> Self {
        self.max_skew_secs = secs;
        self
    }

    /// The user's guardrails (defaults when never set), as stored now: read on every
    /// request, parsed only when the stored text changed.
    pub fn guardrails(&self) -> Result<Guardrails, SignError> {
        let Some(text) = self.store.setting_text::<Guardrails>()? else {
            return Ok(Guardrails::default());
        };
        if let Ok(cached) = self.rules.lock() {
            if let Some((_, g)) = cached.as_ref().filter(|(seen, _)| *seen == text) {
                return Ok(g.clone());
            }
        }
        let g: Guardrails = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt { what: "settings.guardrails", detail: e.to_string() })?;
        if let Ok(mut cached) = self.rules.lock() {
            *cached = Some((text, g.clone()));
        }
        Ok(g)
    }

    /// Replaces the user's guardrails.
    pub fn set_guardrails(&self, g: &Guardrails) -> Result<(), SignError> {
        Ok(save_guardrails(&self.store, g)?)
    }

    /// Long-polls octane (up to `wait`) and runs every delivered request through the checks.
    /// Each request's outcome is reported on its own; refused ones never reach the user.
    pub async fn fetch(
        &self,
        wait: std::time::Duration,
    ) -> Result<Vec<Result<PendingSignature, SignError>>, SignError> {
        let delivered = self.octane.pending_sign_requests(wait).await?;
        let mut out = Vec::with_capacity(delivered.len());
        for p in delivered {
            out.push(self.ingest(&p).await);
        }
        Ok(out)
    }

    /// Requests already verified and waiting for the user's decision, soonest to expire
    /// first.
    pub fn pending(&self) -> Vec<PendingSignature> {
        match self.pending.lock() {
            Ok(map) => {
                let mut v: Vec<_> = map.values().map(|w| w.view.clone()).collect();
                sort_by_expiry(&mut v);
                v
            }
            Err(_) => Vec::new(),
        }
    }

    /// Takes a waiting request for a decision ([`Claim`]).
    fn claim(&self, request_id: Uuid) -> Option<Claim<'_>> {
        let waiting = self.pending.lock().ok()?.remove(&request_id)?;
        Some(Claim { engine: self, waiting, settled: false })
    }

    /// Puts a request (back) in the waiting list.
    fn keep_waiting(&self, w: Arc<Waiting>) {
        if let Ok(mut m) = self.pending.lock() {
            m.insert(w.req.request_id, w);
        }
    }

    /// Why `request_id` cannot be approved or rejected: a request the guardrails blocked
    /// says so (with the rules, from the audit log), anything else is unknown.
    fn not_pending(&self, request_id: Uuid) -> SignError {
        match self.store.sign_record(request_id) {
            Ok(Some(r)) if r.outcome == SignOutcome::Blocked => {
                let rules: Vec<String> = self
                    .store
                    .last_audit(&request_id.to_string(), AuditEvent::SIGN_BLOCKED)
                    .ok()
                    .flatten()
                    .and_then(|e| match e.event {
                        AuditEvent::SignBlocked { violations, .. } => Some(violations),
                        _ => None,
                    })
                    .unwrap_or_else(|| vec![r.reason.unwrap_or_else(|| "guardrail".into())]);
                SignError::Blocked(rules)
            }
            _ => SignError::UnknownRequest,
        }
    }

    /// What is already spent on `chain` for the guardrails, when they have a limit there
    /// (otherwise nothing is read).
    fn spent(tx: &StoreTx<'_>, rules: &Guardrails, req: &SignRequest, now: u64) -> Result<SpendContext, StoreError> {
        if rules.limits.contains_key(&req.chain) {
            tx.spend(req.pair_id, &req.chain, now, Some(req.request_id))
        } else {
            Ok(SpendContext::default())
        }
    }

    /// Records a refused request's id as seen (so the same id with another body is a
    /// replay) and tells octane why.
    async fn refuse(
        &self,
        req: &SignRequest,
        body_hash: &[u8; 32],
        now: u64,
        err: SignError,
        message: &str,
    ) -> SignError {
        if let Err(e) = self.store.note_request(req.request_id, body_hash, req.pair_id, now) {
            tracing::warn!(error = %e, "sign: could not record a refused request");
        }
        self.post_rejection(req.request_id, err.code(), message).await;
        err
    }

    /// Runs one delivered request (from the long-poll or a push) through every check and
    /// returns what to show the user. Guardrail violations are posted to octane as a
    /// rejection at once (the returned view lists them; it cannot be approved).
    #[tracing::instrument(skip_all, fields(pair = %delivered.pair_id, request = %delivered.request_id))]
    pub async fn ingest(&self, delivered: &PendingSignRequest) -> Result<PendingSignature, SignError> {
        let cs = &delivered.request;
        let pair = self.store.pair(delivered.pair_id)?.ok_or(SignError::UnknownPair(delivered.pair_id))?;
        // 1. Both signatures, before anything in the body is believed.
        let req = verify_delivered(delivered, &pair, self.octane.octane_key().as_bytes())?;
        let now = self.clock.now_unix();
        // 2. Replay: one request id, one body, handled once (persisted across restarts). The
        //    id is recorded below, with the request's outcome, in one transaction.
        let body_hash: [u8; 32] = Sha256::digest(&cs.body).into();
        let mut refused_before = false;
        match self.store.seen(req.request_id, &body_hash)? {
            None | Some(Seen::New) => {}
            Some(Seen::DifferentBody) => {
                tracing::warn!("sign: request id reused with another body");
                return Err(SignError::Replay);
            }
            Some(Seen::SameBody) => {
                if let Some(p) = self.pending.lock().ok().and_then(|m| m.get(&req.request_id).map(|w| w.view.clone())) {
                    return Ok(p);
                }
                match self.store.sign_record(req.request_id)? {
                    Some(r) if r.outcome == SignOutcome::Pending => {} // restarted before deciding
                    Some(r) if r.outcome == SignOutcome::Signed => {
                        // Signed but octane never acknowledged: deliver it now, don't re-ask.
                        if let Some(sig) = r.appliance_signature {
                            let proof = self.kept_proof(req.request_id);
                            self.post_signature(pair.pair_id, req.request_id, &sig, proof.as_ref()).await?;
                        }
                        return Err(SignError::Replay);
                    }
                    Some(r) => {
                        // Already decided; octane may have missed the rejection: repeat it.
                        if matches!(r.outcome, SignOutcome::Rejected | SignOutcome::Blocked | SignOutcome::Failed) {
                            let code = r.reason.unwrap_or_else(|| "rejected".into());
                            self.post_rejection(req.request_id, &code, "already refused on the phone").await;
                        }
                        return Err(SignError::Replay);
                    }
                    // Refused before it reached the history: the checks below say why again,
                    // and it stays refused even if they pass now.
                    None => refused_before = true,
                }
            }
        }
        // 3. The pair and the binding.
        if let Err(err) = check_binding(&pair, &req) {
            let message = match err {
                SignError::PairRevoked => "the pair is revoked on this phone",
                _ => "the account is not bound to this pair",
            };
            return Err(self.refuse(&req, &body_hash, now, err, message).await);
        }
        // 4. Freshness: the one validity rule.
        if let Err(e) = check_freshness(&req, now, self.max_skew_secs) {
            let message = match &e {
                SignError::Expired => "the request expired before it was shown".to_string(),
                other => other.to_string(),
            };
            return Err(self.refuse(&req, &body_hash, now, e, &message).await);
        }
        // 5. Decode for display (fails exactly when it is not signable), deriving what the
        //    appliance must sign on the way: parsed and hashed once, kept until approval.
        //    With the bundle in use now and the user's address book (the context is not
        //    `Send`: it ends before the next await). 5b. The warnings from the phone's own
        //    history (first recipient, unusual value, …) join the screen; the guardrails
        //    block on them where the user chose so.
        let clear = self.metadata.as_deref().and_then(LiveMetadata::descriptors);
        let rendered = render(&self.store, &pair, &req, now, clear.as_deref(), self.book.as_ref());
        let (target, decoded, assessed) = match rendered {
            Ok(d) => d,
            Err(e) => {
                let message = e.to_string();
                let err = SignError::Undecodable(message.clone());
                return Err(self.refuse(&req, &body_hash, now, err, &message).await);
            }
        };
        if refused_before {
            return Err(SignError::Replay);
        }
        assessed?;
        // 6. Guardrails, with what is already spent, and the request's arrival — the seen
        //    row, its history row (which reserves its spend while it waits) and the audit
        //    entry — in one transaction, so two requests cannot both fit under one limit.
        let rules = self.guardrails()?;
        let spend = worst_case_spend(&decoded.facts);
        // The screen is final here (every warning added): commit to it.
        let digest = display_digest(&req.request_id, &decoded);
        let summary = serde_json::to_string(&decoded).map_err(|_| StoreError::Encode("summary"))?;
        let arrival = self.store.transaction(|tx| {
            let seen = tx.note_request(req.request_id, &body_hash, req.pair_id, now)?;
            if seen == Seen::DifferentBody {
                return Ok(None);
            }
            if tx.sign_outcome(req.request_id)?.is_some_and(|o| o != SignOutcome::Pending) {
                return Ok(None); // decided by a concurrent delivery
            }
            let violations = evaluate(&rules, &decoded, &Self::spent(tx, &rules, &req, now)?);
            let blocked = !violations.is_empty();
            let record = SignRecord {
                request_id: req.request_id,
                pair_id: req.pair_id,
                chain: req.chain.clone(),
                account: req.account.clone(),
                kind: req.kind,
                summary: serde_json::Value::Null, // written as `summary`, below
                native_value: Some(decoded.facts.native_value),
                spend: Some(spend),
                outcome: if blocked { SignOutcome::Blocked } else { SignOutcome::Pending },
                reason: blocked.then(|| "guardrail".to_string()),
                appliance_signature: None,
                received_at: now,
                decided_at: blocked.then_some(now),
                expires_at: Some(req.expires_at),
                display_digest: Some(digest),
            };
            tx.put_sign_with_summary(&record, &summary)?;
            if blocked {
                let violations = violations.iter().map(|v| v.code().to_string()).collect();
                let event = AuditEvent::SignBlocked { violations, at: BlockedAt::Arrival };
                tx.audit(now, &req.request_id.to_string(), &event)?;
            }
            Ok(Some(violations))
        })?;
        let Some(violations) = arrival else {
            tracing::warn!("sign: request id reused or decided concurrently");
            return Err(SignError::Replay);
        };
        let view = PendingSignature {
            request_id: req.request_id,
            pair_id: req.pair_id,
            sp_name: crate::display::clean(&pair.sp.name, crate::display::TextKind::Name),
            chain: req.chain.clone(),
            account: req.account.clone(),
            kind: req.kind,
            decoded,
            display_digest: digest,
            violations: violations.iter().map(ViolationView::from).collect(),
            worst_case_spend: spend,
            expires_at: req.expires_at,
        };
        if !violations.is_empty() {
            let codes: Vec<&str> = violations.iter().map(Violation::code).collect();
            self.post_rejection(
                req.request_id,
                "guardrail",
                &format!("blocked by the user's rules: {}", codes.join(", ")),
            )
            .await;
            tracing::info!(?codes, "sign: blocked by guardrails");
            return Ok(view);
        }
        tracing::info!(title = %view.decoded.title, "sign: request verified, waiting for the user");
        let appliance = pair.appliance_identity;
        self.keep_waiting(Arc::new(Waiting { cs: cs.clone(), req, view: view.clone(), target, appliance }));
        Ok(view)
    }

    /// The user approves: the validity rule and the guardrails run again (settings and
    /// spend as they are now); then the appliance signs (it re-verifies everything itself),
    /// the signature is checked against the bound account and delivered to octane.
    ///
    /// Until a decision is recorded the request stays the user's to decide: a store
    /// failure, a transient appliance failure (link, timeout, cancelled on the appliance) or
    /// the caller dropping this future (a cancelled approval) leaves it waiting.
    #[tracing::instrument(skip(self, appliance, progress))]
    pub async fn approve(
        &self,
        request_id: Uuid,
        appliance: &dyn ApplianceApi,
        progress: Option<ProgressFn>,
    ) -> Result<SignedOutcome, SignError> {
        let Some(claim) = self.claim(request_id) else {
            return Err(self.not_pending(request_id));
        };
        let w = Arc::clone(&claim.waiting);
        let now = self.clock.now_unix();
        let (req, view) = (&w.req, &w.view);
        let pair_id = req.pair_id;
        let status = self.store.pair_status(pair_id)?.ok_or(SignError::UnknownPair(pair_id))?;
        if let Err(err) = check_freshness(req, now, self.max_skew_secs) {
            self.record(request_id, SignOutcome::Failed, Some(err.code()), None, None)?;
            claim.settle();
            let message = "the request expired before approval";
            self.post_rejection(request_id, err.code(), message).await;
            return Err(err);
        }
        if status != PairStatus::Active {
            self.record(request_id, SignOutcome::Failed, Some("pair_revoked"), None, None)?;
            claim.settle();
            return Err(SignError::PairRevoked);
        }
        // The user's biometric approval of exactly this request and screen. Failing, it
        // leaves the request waiting (the claim puts it back) and the appliance unasked.
        let approval = self.prove_approval(req, view.display_digest).await?;
        // The guardrails again, as they are now: tightened settings and what was approved
        // or signed meanwhile apply to a request that was waiting. Its own amount is left
        // out of the spend (it is the amount being checked).
        let rules = self.guardrails()?;
        // Nothing is recorded when this fails: the claim puts the request back.
        let violations = self.store.transaction(|tx| {
            let violations = evaluate(&rules, &view.decoded, &Self::spent(tx, &rules, req, now)?);
            let id = request_id.to_string();
            if violations.is_empty() {
                let title = view.decoded.title.clone();
                let display_digest = Some(view.display_digest);
                let event = AuditEvent::SignApproved { title, display_digest, approval: approval.clone() };
                tx.audit(now, &id, &event)?;
            } else {
                let codes = violations.iter().map(|v| v.code().to_string()).collect();
                let blocked = SignOutcome::Blocked;
                tx.set_sign_outcome(request_id, blocked, Some("guardrail"), None, now)?;
                tx.audit(now, &id, &AuditEvent::SignBlocked { violations: codes, at: BlockedAt::Approval })?;
            }
            Ok(violations)
        })?;
        if !violations.is_empty() {
            claim.settle();
            let codes: Vec<String> = violations.iter().map(|v| v.code().to_string()).collect();
            tracing::info!(?codes, "sign: blocked by guardrails at approval");
            let message = format!("blocked by the user's rules at approval: {}", codes.join(", "));
            self.post_rejection(request_id, "guardrail", &message).await;
            return Err(SignError::Blocked(codes));
        }
        let digest = Some(view.display_digest);
        let answer = match appliance.sign_request(request_id, &w.cs, digest, approval, progress).await {
            Ok(s) => s,
            Err(ApplianceError::UserRejected) => {
                let audit = AuditEvent::SignRejected { by: Actor::Appliance };
                let reason = Some("user_rejected");
                self.record(request_id, SignOutcome::Rejected, reason, None, Some(audit))?;
                claim.settle();
                self.post_rejection(request_id, "user_rejected", "declined on the appliance").await;
                return Err(SignError::RejectedOnAppliance);
            }
            Err(ApplianceError::Refused { code, message }) => {
                self.record(request_id, SignOutcome::Failed, Some(&code), None, None)?;
                claim.settle();
                self.post_rejection(request_id, &code, &message).await;
                return Err(SignError::Appliance(ApplianceError::Refused { code, message }));
            }
            // Transient (link, timeout, cancelled): the claim keeps it waiting so the user
            // may try again; the appliance signs a request id at most once.
            Err(e) => return Err(e.into()),
        };
        let sig = answer.signature;
        if let Err(e) = verify_appliance_signature(&w.target, &sig, &w.req.account) {
            tracing::error!(error = %e, "sign: the appliance's signature does not verify");
            let reason = Some("bad_appliance_signature");
            self.record(request_id, SignOutcome::Failed, reason, None, None)?;
            claim.settle();
            self.post_rejection(request_id, "bad_appliance_signature", "the appliance's signature did not verify")
                .await;
            return Err(SignError::BadApplianceSignature(e));
        }
        let receipt = match Self::check_receipt(&w, answer.receipt) {
            Ok(r) => r,
            Err(err) => {
                tracing::error!(error = %err, "sign: the appliance's receipt is missing or wrong");
                self.record(request_id, SignOutcome::Failed, Some(err.code()), None, None)?;
                claim.settle();
                self.post_rejection(request_id, err.code(), &err.to_string()).await;
                return Err(err);
            }
        };
        let proof = DisplayProof { display_digest: view.display_digest, receipt };
        let audit =
            AuditEvent::SignSigned { display_digest: Some(proof.display_digest), receipt: Some(proof.receipt.clone()) };
        self.record(request_id, SignOutcome::Signed, None, Some(&sig), Some(audit))?;
        claim.settle();
        match self.post_signature(pair_id, request_id, &sig, Some(&proof)).await {
            Ok(()) => Ok(SignedOutcome { request_id, signature: sig }),
            Err(SignError::PairRevoked) => {
                // Learnt on a sign attempt: the SP revoked the pair; the appliance drops it.
                if let Err(e) = appliance.revoke_pair(Uuid::new_v4(), pair_id).await {
                    tracing::warn!(error = %e, "sign: the appliance could not drop the revoked pair");
                }
                Err(SignError::PairRevoked)
            }
            Err(e) => Err(e),
        }
    }

    /// The approval key's signature over `req` shown with `display_digest`
    /// ([`ApprovalStatement`]), made on a blocking thread (the platform shows its biometric
    /// prompt); `None` without an approval key.
    async fn prove_approval(
        &self,
        req: &SignRequest,
        display_digest: DisplayDigest,
    ) -> Result<Option<ApprovalProof>, SignError> {
        let Some(key) = self.approval_key.clone() else { return Ok(None) };
        let message = ApprovalStatement::for_request(req, display_digest)
            .message()
            .map_err(|e| SignError::Approval(ApprovalKeyError::Other(e.to_string())))?;
        let signed = tokio::task::spawn_blocking(move || key.sign(&message)).await.map_err(|e| {
            SignError::Approval(ApprovalKeyError::Other(format!("the approval key's thread failed: {e}")))
        })?;
        match signed {
            Ok(signature) => Ok(Some(ApprovalProof { signature })),
            Err(e) => {
                tracing::info!(code = e.code(), "sign: no approval from the approval key");
                Err(SignError::Approval(e))
            }
        }
    }

    /// The appliance's receipt for a waiting request it signed: present, signed by the
    /// pair's appliance identity, over this request, pair, payload and display digest.
    fn check_receipt(w: &Waiting, receipt: Option<SignedEnvelope>) -> Result<SignedEnvelope, SignError> {
        let receipt = receipt.ok_or(SignError::MissingReceipt)?;
        let expected = SignReceipt::for_request(&w.req, w.view.display_digest, w.appliance);
        SignReceipt::verify(&receipt, &expected).map_err(SignError::BadReceipt)?;
        Ok(receipt)
    }

    /// The display digest and receipt kept with a signature octane has not acknowledged
    /// (the audit log's `sign_signed` entry; `None` for one signed before they were kept).
    fn kept_proof(&self, request_id: Uuid) -> Option<DisplayProof> {
        let entry = match self.store.last_audit(&request_id.to_string(), AuditEvent::SIGN_SIGNED) {
            Ok(e) => e?,
            Err(e) => {
                tracing::warn!(error = %e, "sign: the kept receipt cannot be read; delivering without it");
                return None;
            }
        };
        match entry.event {
            AuditEvent::SignSigned { display_digest: Some(display_digest), receipt: Some(receipt) } => {
                Some(DisplayProof { display_digest, receipt })
            }
            _ => None,
        }
    }

    async fn post_signature(
        &self,
        pair_id: Uuid,
        request_id: Uuid,
        sig: &[u8],
        proof: Option<&DisplayProof>,
    ) -> Result<(), SignError> {
        match self.octane.deliver_signature(request_id, sig, proof).await {
            Ok(_) => {
                self.record(request_id, SignOutcome::Completed, None, None, None)?;
                tracing::info!("sign: signature delivered");
                Ok(())
            }
            Err(OctaneError::Revoked) => {
                self.store.revoke_pair(pair_id, self.clock.now_unix())?;
                Err(SignError::PairRevoked)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The user declines on the phone: octane is told (reason `user_rejected`). The decline
    /// is recorded first; when octane cannot be told, the error says so and the rejection
    /// is repeated when octane delivers the request again.
    #[tracing::instrument(skip(self))]
    pub async fn reject(&self, request_id: Uuid) -> Result<(), SignError> {
        let Some(claim) = self.claim(request_id) else {
            return Err(self.not_pending(request_id));
        };
        let audit = AuditEvent::SignRejected { by: Actor::Phone };
        let reason = Some("user_rejected");
        self.record(request_id, SignOutcome::Rejected, reason, None, Some(audit))?;
        claim.settle();
        self.octane.reject_sign(request_id, "user_rejected", "declined on the phone").await?;
        Ok(())
    }

    /// One state change of a request: its outcome (and the running spend totals, when it
    /// becomes signed) and its audit entry, in one transaction.
    fn record(
        &self,
        id: Uuid,
        outcome: SignOutcome,
        reason: Option<&str>,
        sig: Option<&[u8]>,
        audit: Option<AuditEvent>,
    ) -> Result<(), SignError> {
        let at = self.clock.now_unix();
        self.store.transaction(|tx| {
            tx.set_sign_outcome(id, outcome, reason, sig, at)?;
            if let Some(event) = &audit {
                tx.audit(at, &id.to_string(), event)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    async fn post_rejection(&self, request_id: Uuid, code: &str, message: &str) {
        if let Err(e) = self.octane.reject_sign(request_id, code, message).await {
            tracing::warn!(error = %e, code, "sign: could not post the rejection to octane");
        }
    }

    fn audit(&self, at: u64, subject: Uuid, event: AuditEvent) {
        if let Err(e) = self.store.audit(at, &subject.to_string(), &event) {
            tracing::warn!(error = %e, "sign: audit log write failed");
        }
    }

    /// Phone-side revocation: the appliance drops the pair and signs a revocation, which is
    /// checked; the pair is then revoked on this phone and the revocation posted to octane.
    /// When octane cannot take it, it waits in the store's outbox ([`PAIR_REVOKED`]) for
    /// the facade's `sync`, and the revocation still holds here (the appliance has dropped
    /// the pair: the phone refuses its requests from now on). An appliance that already
    /// dropped the pair (`pair_revoked`, e.g. a revocation whose answer was lost) has the
    /// pair revoked here too.
    #[tracing::instrument(skip(self, appliance))]
    pub async fn revoke(&self, pair_id: Uuid, appliance: &dyn ApplianceApi) -> Result<(), SignError> {
        let pair = self.store.pair(pair_id)?.ok_or(SignError::UnknownPair(pair_id))?;
        let env = match appliance.revoke_pair(Uuid::new_v4(), pair_id).await {
            Ok(env) => env,
            Err(ApplianceError::Refused { code, .. }) if code == "pair_revoked" => {
                self.revoked_here(pair_id, Actor::Appliance)?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let rev: PairRevocation = env
            .open(Domain::PairRevocation, pair.appliance_identity.as_bytes())
            .map_err(|e| SignError::BadRevocation(e.to_string()))?;
        if rev.pair_id != pair_id || rev.appliance_identity != pair.appliance_identity {
            return Err(SignError::BadRevocation("names another pair or appliance".into()));
        }
        // Kept for octane before anything else: the appliance no longer holds the pair.
        let now = self.clock.now_unix();
        let subject = pair_id.to_string();
        self.store.queue_for_octane(&pair.appliance_identity, PAIR_REVOKED, &subject, &env, now)?;
        self.revoked_here(pair_id, Actor::Phone)?;
        match self.relay_revocation(pair_id, &env).await {
            Ok(()) => self.store.delivered_to_octane(&pair.appliance_identity, PAIR_REVOKED, &subject)?,
            Err(e) => tracing::warn!(error = %e, "revoke: octane not told; queued for sync"),
        }
        Ok(())
    }

    /// Marks `pair_id` revoked on this phone (and audits who revoked it).
    fn revoked_here(&self, pair_id: Uuid, by: Actor) -> Result<(), SignError> {
        let now = self.clock.now_unix();
        self.store.revoke_pair(pair_id, now)?;
        self.audit(now, pair_id, AuditEvent::PairRevoked { by });
        Ok(())
    }

    /// Posts an appliance's signed revocation of `pair_id` to octane (one octane already
    /// knows counts as delivered). The facade's `sync` relays queued ones with it.
    pub async fn relay_revocation(&self, pair_id: Uuid, revocation: &SignedEnvelope) -> Result<(), OctaneError> {
        match self.octane.revoke(pair_id, revocation).await {
            Ok(()) | Err(OctaneError::Revoked) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Learns SP-side revocations from octane: every pair octane reports revoked is marked
    /// so locally and dropped on the appliance. Returns the pairs newly revoked.
    #[tracing::instrument(skip_all)]
    pub async fn sync(&self, appliance: Option<&dyn ApplianceApi>) -> Result<Vec<Uuid>, SignError> {
        let remote = self.octane.pairs().await?;
        let mut newly = Vec::new();
        for p in remote.iter().filter(|p| p.status == OctanePairStatus::Revoked) {
            let Some(local) = self.store.pair(p.pair_id)? else { continue };
            if local.status == PairStatus::Revoked {
                continue;
            }
            self.store.revoke_pair(p.pair_id, p.revoked_at.unwrap_or_else(|| self.clock.now_unix()))?;
            self.audit(self.clock.now_unix(), p.pair_id, AuditEvent::PairRevoked { by: Actor::Sp });
            if let Some(a) = appliance {
                if let Err(e) = a.revoke_pair(Uuid::new_v4(), p.pair_id).await {
                    tracing::warn!(error = %e, "sync: the appliance could not drop the pair");
                }
            }
            newly.push(p.pair_id);
        }
        Ok(newly)
    }
}

/// Checks the SP's signature (pair-pinned key) and octane's (pinned key) over the same
/// canonical body — each once, so a failure names the signer — and only then decodes it
/// (canonical CBOR only).
/// Step 1 of every delivered request, wherever it came from (the long-poll, the app's
/// push handler, the notification extension): both signatures over the one canonical body,
/// then the body must be this version and name the pair and request id it was delivered as.
pub(crate) fn verify_delivered(
    delivered: &PendingSignRequest,
    pair: &PairRecord,
    octane_key: &[u8; 32],
) -> Result<SignRequest, SignError> {
    let req = verify_signatures(&delivered.request, pair, octane_key)?;
    if req.v != STATEMENT_VERSION || req.pair_id != delivered.pair_id || req.request_id != delivered.request_id {
        return Err(SignError::Malformed("the envelope does not match the signed request".into()));
    }
    Ok(req)
}

/// Step 3: the pair is active, and the request's account is bound to it on its chain
/// ([`SignError::PairRevoked`], [`SignError::AccountNotBound`]).
pub(crate) fn check_binding(pair: &PairRecord, req: &SignRequest) -> Result<(), SignError> {
    if pair.status != PairStatus::Active {
        return Err(SignError::PairRevoked);
    }
    if !pair.bindings.contains(&req.account) || req.account.chain != req.chain {
        return Err(SignError::AccountNotBound(req.account.to_string()));
    }
    Ok(())
}

/// What [`render`] derives from a verified request: what the appliance must sign, the
/// screen, and whether reading the phone's history for its warnings worked.
pub(crate) type Rendered = (SigningTarget, DecodedPayload, Result<(), StoreError>);

/// Step 5: decodes `req` for display with `clear` (the metadata bundle in use, whole or as the
/// extension reads it: [`crate::metadata::MetadataIndex`]) and the user's
/// address book (fails exactly when it is not signable), and adds the warnings from the
/// phone's own history ([`crate::risk::assess`], reads only).
pub(crate) fn render(
    store: &Store,
    pair: &PairRecord,
    req: &SignRequest,
    now: u64,
    clear: Option<&DescriptorSet>,
    book: &(dyn AddressBook + Send + Sync),
) -> Result<Rendered, crate::decode::DecodeError> {
    let tokens = KnownTokens::new();
    let ctx = DecodeContext { tokens: &tokens, clear, book };
    decode_with_target(req.kind, &req.payload, &req.account, &ctx).map(|(target, mut decoded)| {
        let assessed = crate::risk::assess(store, pair, &req.account, now, &ctx, &mut decoded);
        (target, decoded, assessed)
    })
}

fn verify_signatures(
    cs: &CountersignedRequest,
    pair: &PairRecord,
    octane_key: &[u8; 32],
) -> Result<SignRequest, SignError> {
    crate::envelope::verify_bytes(Domain::SpSignRequest, pair.sp_public_key.as_bytes(), &cs.body, &cs.sp_sig)
        .map_err(|_| SignError::BadSpSignature)?;
    crate::envelope::verify_bytes(Domain::OctaneSignRequest, octane_key, &cs.body, &cs.octane_sig)
        .map_err(|_| SignError::BadOctaneSignature)?;
    crate::cbor::from_canonical_slice(&cs.body).map_err(|e| SignError::Malformed(e.to_string()))
}

/// Orders pending requests soonest to expire first (the order the user sees them in); one
/// sort for every list of them (each call site's own sort would be its own copy of the
/// sorting code in the mobile library).
pub fn sort_by_expiry(requests: &mut [PendingSignature]) {
    requests.sort_by_key(|p| p.expires_at);
}

#[cfg(test)]
pub(crate) mod test_phone;

#[cfg(test)]
mod engine_tests;

#[cfg(test)]
mod guardrail_tests;

#[cfg(test)]
mod approval_tests;

#[cfg(test)]
mod risk_tests;

#[cfg(test)]
mod clear_signing_tests;
