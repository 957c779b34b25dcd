//! The sign pipeline: from octane's queue to the appliance and back, with every check the
//! trust model asks of the phone before a user is shown anything:
//!
//! 1. both signatures over the one canonical body — the SP's with the key pinned at pair
//!    time (from the store), octane's with the pinned octane key (`verify_strict`);
//! 2. the pair is known and active, the request names it, the account is bound to it and
//!    on the request's chain;
//! 3. freshness: not created in the future (beyond [`DEFAULT_MAX_SKEW_SECS`]), not expired,
//!    a lifetime of at most [`MAX_TTL_SECS`], and a request id never seen before (persisted);
//! 4. decoding for display and the user's guardrails (amounts spent come from the history).
//!
//! Only then is a [`PendingSignature`] shown. On approval the request goes to the appliance,
//! its signature is verified against the bound account (`payload::verify_appliance_signature`)
//! and posted to octane. Violations, user rejections and appliance rejections are posted to
//! octane as rejections with a stable reason code. Revocation lives here too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::appliance::{ApplianceApi, ApplianceError, ProgressFn};
use crate::caip::{AccountId, ChainId};
use crate::clock::Clock;
use crate::decode::{decode, DecodedPayload};
use crate::envelope::{Domain, SignedEnvelope};
use crate::guardrails::{evaluate, Guardrails, SpendContext, Violation};
use crate::model::{CountersignedRequest, PairRevocation, PayloadKind, SignRequest, MAX_TTL_SECS, STATEMENT_VERSION};
use crate::octane::api::{PairStatus as OctanePairStatus, PendingSignRequest};
use crate::octane::client::{OctaneClient, OctaneError};
use crate::payload::{signing_target, verify_appliance_signature, PayloadError};
use crate::store::{PairRecord, PairStatus, Seen, SignOutcome, SignRecord, Store, StoreError};

/// How far in the future a request's `created_at` may be (clock skew between SP and phone).
pub const DEFAULT_MAX_SKEW_SECS: u64 = 60;

/// Settings key of the user's guardrails (JSON of [`Guardrails`]).
pub const GUARDRAILS_SETTING: &str = "guardrails";

/// The user's guardrails as stored in `store` (defaults when never set). Needs no bond.
pub fn load_guardrails(store: &Store) -> Result<Guardrails, StoreError> {
    match store.setting(GUARDRAILS_SETTING)? {
        None => Ok(Guardrails::default()),
        Some(v) => serde_json::from_value(v)
            .map_err(|e| StoreError::Corrupt { what: "settings.guardrails", detail: e.to_string() }),
    }
}

/// Replaces the user's guardrails in `store` (read by every later sign request).
pub fn save_guardrails(store: &Store, g: &Guardrails) -> Result<(), StoreError> {
    let v = serde_json::to_value(g).map_err(|_| StoreError::Encode("guardrails"))?;
    store.put_setting(GUARDRAILS_SETTING, &v)
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
    /// The request's times are not plausible (from the future, or lives too long).
    #[error("the request's validity period is not acceptable")]
    BadValidity,
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
            SignError::BadValidity => "bad_validity",
            SignError::Replay => "replay",
            SignError::AccountNotBound(_) => "account_not_bound",
            SignError::Undecodable(_) => "undecodable",
            SignError::Blocked(_) => "guardrail",
            SignError::UnknownRequest => "unknown_request",
            SignError::RejectedOnAppliance => "appliance_rejected",
            SignError::BadApplianceSignature(_) => "bad_appliance_signature",
            SignError::BadRevocation(_) => "bad_revocation",
            SignError::Octane(e) => e.code(),
            SignError::Appliance(_) => "appliance_error",
            SignError::Store(_) => "store_error",
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
    /// Broken guardrails (non-empty = blocked; octane was already told).
    pub violations: Vec<ViolationView>,
    /// Unix seconds.
    pub expires_at: u64,
}

impl PendingSignature {
    /// Whether the guardrails block it.
    pub fn blocked(&self) -> bool {
        !self.violations.is_empty()
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

/// Runs sign requests through the checks, the user, the appliance and back to octane.
pub struct SignEngine {
    store: Arc<Store>,
    octane: OctaneClient,
    clock: Arc<dyn Clock>,
    max_skew_secs: u64,
    pending: Mutex<HashMap<Uuid, (CountersignedRequest, SignRequest, PendingSignature)>>,
}

fn today_start(now: u64) -> u64 {
    now - now % 86_400
}

impl SignEngine {
    /// A sign engine.
    pub fn new(store: Arc<Store>, octane: OctaneClient, clock: Arc<dyn Clock>) -> Self {
        Self { store, octane, clock, max_skew_secs: DEFAULT_MAX_SKEW_SECS, pending: Mutex::new(HashMap::new()) }
    }

    /// Overrides the clock-skew bound.
    pub fn with_max_skew(mut self, secs: u64) -> Self {
        self.max_skew_secs = secs;
        self
    }

    /// The user's guardrails (defaults when never set).
    pub fn guardrails(&self) -> Result<Guardrails, SignError> {
        Ok(load_guardrails(&self.store)?)
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

    /// Requests already verified and waiting for the user's decision.
    pub fn pending(&self) -> Vec<PendingSignature> {
        match self.pending.lock() {
            Ok(map) => {
                let mut v: Vec<_> = map.values().map(|(_, _, p)| p.clone()).collect();
                v.sort_by_key(|p| p.expires_at);
                v
            }
            Err(_) => Vec::new(),
        }
    }

    fn take(&self, request_id: Uuid) -> Option<(CountersignedRequest, SignRequest, PendingSignature)> {
        self.pending.lock().ok()?.remove(&request_id)
    }

    /// Why `request_id` cannot be approved or rejected: a request the guardrails blocked
    /// says so (with the rules, from the audit log), anything else is unknown.
    fn not_pending(&self, request_id: Uuid) -> SignError {
        match self.store.sign_record(request_id) {
            Ok(Some(r)) if r.outcome == SignOutcome::Blocked => {
                let subject = request_id.to_string();
                let rules: Vec<String> = self
                    .store
                    .audit_log(500)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|e| e.kind == "sign_blocked" && e.subject == subject)
                    .and_then(|e| e.detail.get("violations").cloned())
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_else(|| vec![r.reason.unwrap_or_else(|| "guardrail".into())]);
                SignError::Blocked(rules)
            }
            _ => SignError::UnknownRequest,
        }
    }

    /// Runs one delivered request (from the long-poll or a push) through every check and
    /// returns what to show the user. Guardrail violations are posted to octane as a
    /// rejection at once (the returned view lists them; it cannot be approved).
    #[tracing::instrument(skip_all, fields(pair = %delivered.pair_id, request = %delivered.request_id))]
    pub async fn ingest(&self, delivered: &PendingSignRequest) -> Result<PendingSignature, SignError> {
        let cs = &delivered.request;
        let pair = self.store.pair(delivered.pair_id)?.ok_or(SignError::UnknownPair(delivered.pair_id))?;
        // 1. Both signatures, before anything in the body is believed.
        let req = verify_signatures(cs, &pair, self.octane.config().octane_key.as_bytes())?;
        if req.v != STATEMENT_VERSION || req.pair_id != delivered.pair_id || req.request_id != delivered.request_id {
            return Err(SignError::Malformed("the envelope does not match the signed request".into()));
        }
        let now = self.clock.now_unix();
        // 2. Replay: one request id, one body, handled once (persisted across restarts).
        let body_hash: [u8; 32] = Sha256::digest(&cs.body).into();
        match self.store.note_request(req.request_id, &body_hash, req.pair_id, now)? {
            Seen::New => {}
            Seen::DifferentBody => {
                tracing::warn!("sign: request id reused with another body");
                return Err(SignError::Replay);
            }
            Seen::SameBody => {
                if let Some(p) = self.pending.lock().ok().and_then(|m| m.get(&req.request_id).map(|e| e.2.clone())) {
                    return Ok(p);
                }
                match self.store.sign_record(req.request_id)? {
                    Some(r) if r.outcome == SignOutcome::Pending => {} // restarted before deciding
                    Some(r) if r.outcome == SignOutcome::Signed => {
                        // Signed but octane never acknowledged: deliver it now, don't re-ask.
                        if let Some(sig) = r.appliance_signature {
                            self.post_signature(&pair, req.request_id, &sig).await?;
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
                    None => {} // refused earlier before it reached the history; refuse again below
                }
            }
        }
        // 3. The pair and the binding.
        if pair.status != PairStatus::Active {
            self.post_rejection(req.request_id, "pair_revoked", "the pair is revoked on this phone").await;
            return Err(SignError::PairRevoked);
        }
        if !pair.bindings.contains(&req.account) || req.account.chain != req.chain {
            self.post_rejection(req.request_id, "account_not_bound", "the account is not bound to this pair").await;
            return Err(SignError::AccountNotBound(req.account.to_string()));
        }
        // 4. Freshness.
        if now >= req.expires_at {
            self.post_rejection(req.request_id, "expired", "the request expired before it was shown").await;
            return Err(SignError::Expired);
        }
        if req.created_at > now.saturating_add(self.max_skew_secs)
            || req.expires_at <= req.created_at
            || req.expires_at - req.created_at > MAX_TTL_SECS
        {
            self.post_rejection(req.request_id, "bad_validity", "the request's validity period is not acceptable").await;
            return Err(SignError::BadValidity);
        }
        // 5. Decode for display (fails exactly when it is not signable).
        let decoded = match decode(req.kind, &req.payload, &req.account) {
            Ok(d) => d,
            Err(e) => {
                self.post_rejection(req.request_id, "undecodable", &e.to_string()).await;
                return Err(SignError::Undecodable(e.to_string()));
            }
        };
        // 6. Guardrails, with amounts already spent from the history.
        let rules = self.guardrails()?;
        let spent = self.spent(&pair, &req.chain, now)?;
        let violations = evaluate(&rules, &decoded, &spent);
        let view = PendingSignature {
            request_id: req.request_id,
            pair_id: req.pair_id,
            sp_name: crate::display::clean(&pair.sp.name, crate::display::TextKind::Name),
            chain: req.chain.clone(),
            account: req.account.clone(),
            kind: req.kind,
            decoded: decoded.clone(),
            violations: violations.iter().map(ViolationView::from).collect(),
            expires_at: req.expires_at,
        };
        let blocked = !violations.is_empty();
        self.store.insert_sign(&SignRecord {
            request_id: req.request_id,
            pair_id: req.pair_id,
            chain: req.chain.clone(),
            account: req.account.clone(),
            kind: req.kind,
            summary: serde_json::to_value(&decoded).unwrap_or(serde_json::Value::Null),
            native_value: Some(decoded.facts.native_value),
            outcome: if blocked { SignOutcome::Blocked } else { SignOutcome::Pending },
            reason: blocked.then(|| "guardrail".to_string()),
            appliance_signature: None,
            received_at: now,
            decided_at: blocked.then_some(now),
        })?;
        if blocked {
            let codes: Vec<&str> = violations.iter().map(Violation::code).collect();
            self.post_rejection(req.request_id, "guardrail", &format!("blocked by the user's rules: {}", codes.join(", ")))
                .await;
            self.audit(now, "sign_blocked", req.request_id, serde_json::json!({"violations": codes}));
            tracing::info!(?codes, "sign: blocked by guardrails");
            return Ok(view);
        }
        tracing::info!(title = %decoded.title, "sign: request verified, waiting for the user");
        if let Ok(mut m) = self.pending.lock() {
            m.insert(req.request_id, (cs.clone(), req, view.clone()));
        }
        Ok(view)
    }

    fn spent(&self, pair: &PairRecord, chain: &ChainId, now: u64) -> Result<SpendContext, SignError> {
        let counts = |r: &SignRecord| {
            matches!(r.outcome, SignOutcome::Signed | SignOutcome::Completed) && &r.chain == chain
        };
        let mut ctx = SpendContext::default();
        for r in self.store.sign_history(Some(pair.pair_id), 0)?.iter().filter(|r| counts(r)) {
            ctx.spent_by_pair = ctx.spent_by_pair.saturating_add(r.native_value.unwrap_or(0));
        }
        for r in self.store.sign_history(None, today_start(now))?.iter().filter(|r| counts(r)) {
            ctx.spent_today = ctx.spent_today.saturating_add(r.native_value.unwrap_or(0));
        }
        Ok(ctx)
    }

    /// The user approves: the appliance signs (it re-verifies everything itself), the
    /// signature is checked against the bound account and delivered to octane.
    #[tracing::instrument(skip(self, appliance, progress))]
    pub async fn approve(
        &self,
        request_id: Uuid,
        appliance: &dyn ApplianceApi,
        progress: Option<ProgressFn>,
    ) -> Result<SignedOutcome, SignError> {
        let Some((cs, req, view)) = self.take(request_id) else {
            return Err(self.not_pending(request_id));
        };
        let now = self.clock.now_unix();
        let pair = self.store.pair(req.pair_id)?.ok_or(SignError::UnknownPair(req.pair_id))?;
        if now >= req.expires_at {
            self.finish(request_id, SignOutcome::Failed, Some("expired"), None)?;
            self.post_rejection(request_id, "expired", "the request expired before approval").await;
            return Err(SignError::Expired);
        }
        if pair.status != PairStatus::Active {
            self.finish(request_id, SignOutcome::Failed, Some("pair_revoked"), None)?;
            return Err(SignError::PairRevoked);
        }
        self.audit(now, "sign_approved", request_id, serde_json::json!({"title": view.decoded.title}));
        let sig = match appliance.sign(&cs, progress).await {
            Ok(s) => s,
            Err(ApplianceError::UserRejected) => {
                self.finish(request_id, SignOutcome::Rejected, Some("user_rejected"), None)?;
                self.post_rejection(request_id, "user_rejected", "declined on the appliance").await;
                self.audit(now, "sign_rejected", request_id, serde_json::json!({"by": "appliance"}));
                return Err(SignError::RejectedOnAppliance);
            }
            Err(ApplianceError::Refused { code, message }) => {
                self.finish(request_id, SignOutcome::Failed, Some(&code), None)?;
                self.post_rejection(request_id, &code, &message).await;
                return Err(SignError::Appliance(ApplianceError::Refused { code, message }));
            }
            Err(e) => {
                // Transient (link, timeout): keep it pending so the user may try again; the
                // appliance signs a request id at most once.
                if let Ok(mut m) = self.pending.lock() {
                    m.insert(request_id, (cs, req, view));
                }
                return Err(e.into());
            }
        };
        let target = signing_target(req.kind, &req.payload, &req.chain).map_err(SignError::BadApplianceSignature)?;
        if let Err(e) = verify_appliance_signature(&target, &sig, &req.account) {
            tracing::error!(error = %e, "sign: the appliance's signature does not verify");
            self.finish(request_id, SignOutcome::Failed, Some("bad_appliance_signature"), None)?;
            self.post_rejection(request_id, "bad_appliance_signature", "the appliance's signature did not verify").await;
            return Err(SignError::BadApplianceSignature(e));
        }
        self.finish(request_id, SignOutcome::Signed, None, Some(&sig))?;
        self.audit(self.clock.now_unix(), "sign_signed", request_id, serde_json::json!({"signature_verified": true}));
        match self.post_signature(&pair, request_id, &sig).await {
            Ok(()) => Ok(SignedOutcome { request_id, signature: sig }),
            Err(SignError::PairRevoked) => {
                // Learnt on a sign attempt: the SP revoked the pair; the appliance drops it.
                if let Err(e) = appliance.revoke_pair(Uuid::new_v4(), pair.pair_id).await {
                    tracing::warn!(error = %e, "sign: the appliance could not drop the revoked pair");
                }
                Err(SignError::PairRevoked)
            }
            Err(e) => Err(e),
        }
    }

    async fn post_signature(&self, pair: &PairRecord, request_id: Uuid, sig: &[u8]) -> Result<(), SignError> {
        match self.octane.post_signature(request_id, sig).await {
            Ok(_) => {
                self.finish(request_id, SignOutcome::Completed, None, None)?;
                tracing::info!("sign: signature delivered");
                Ok(())
            }
            Err(OctaneError::Revoked) => {
                self.store.revoke_pair(pair.pair_id, self.clock.now_unix())?;
                Err(SignError::PairRevoked)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The user declines on the phone: octane is told (reason `user_rejected`).
    #[tracing::instrument(skip(self))]
    pub async fn reject(&self, request_id: Uuid) -> Result<(), SignError> {
        let Some((_, req, _)) = self.take(request_id) else {
            return Err(self.not_pending(request_id));
        };
        self.finish(req.request_id, SignOutcome::Rejected, Some("user_rejected"), None)?;
        self.audit(self.clock.now_unix(), "sign_rejected", request_id, serde_json::json!({"by": "phone"}));
        self.octane.reject_sign(request_id, "user_rejected", "declined on the phone").await?;
        Ok(())
    }

    fn finish(&self, id: Uuid, outcome: SignOutcome, reason: Option<&str>, sig: Option<&[u8]>) -> Result<(), SignError> {
        self.store.set_sign_outcome(id, outcome, reason, sig, self.clock.now_unix())?;
        Ok(())
    }

    async fn post_rejection(&self, request_id: Uuid, code: &str, message: &str) {
        if let Err(e) = self.octane.reject_sign(request_id, code, message).await {
            tracing::warn!(error = %e, code, "sign: could not post the rejection to octane");
        }
    }

    fn audit(&self, at: u64, kind: &str, request_id: Uuid, detail: serde_json::Value) {
        if let Err(e) = self.store.audit(at, kind, &request_id.to_string(), &detail) {
            tracing::warn!(error = %e, "sign: audit log write failed");
        }
    }

    /// Phone-side revocation: the appliance drops the pair and signs a revocation, which is
    /// checked, posted to octane, and the pair marked revoked.
    #[tracing::instrument(skip(self, appliance))]
    pub async fn revoke(&self, pair_id: Uuid, appliance: &dyn ApplianceApi) -> Result<(), SignError> {
        let pair = self.store.pair(pair_id)?.ok_or(SignError::UnknownPair(pair_id))?;
        let env = appliance.revoke_pair(Uuid::new_v4(), pair_id).await?;
        let rev: PairRevocation = env
            .open(Domain::PairRevocation, pair.appliance_identity.as_bytes())
            .map_err(|e| SignError::BadRevocation(e.to_string()))?;
        if rev.pair_id != pair_id || rev.appliance_identity != pair.appliance_identity {
            return Err(SignError::BadRevocation("names another pair or appliance".into()));
        }
        self.post_revocation(pair_id, &env).await?;
        self.store.revoke_pair(pair_id, self.clock.now_unix())?;
        self.audit(self.clock.now_unix(), "pair_revoked", pair_id, serde_json::json!({"by": "phone"}));
        Ok(())
    }

    async fn post_revocation(&self, pair_id: Uuid, env: &SignedEnvelope) -> Result<(), SignError> {
        match self.octane.revoke(pair_id, env).await {
            Ok(_) | Err(OctaneError::Revoked) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Learns SP-side revocations from octane: every pair octane reports revoked is marked
    /// so locally and dropped on the appliance. Returns the pairs newly revoked.
    #[tracing::instrument(skip_all)]
    pub async fn sync(&self, appliance: Option<&dyn ApplianceApi>) -> Result<Vec<Uuid>, SignError> {
        let remote = self.octane.pairs().await?;
        let mut newly = Vec::new();
        for p in remote.pairs.iter().filter(|p| p.status == OctanePairStatus::Revoked) {
            let Some(local) = self.store.pair(p.pair_id)? else { continue };
            if local.status == PairStatus::Revoked {
                continue;
            }
            self.store.revoke_pair(p.pair_id, p.revoked_at.unwrap_or_else(|| self.clock.now_unix()))?;
            self.audit(self.clock.now_unix(), "pair_revoked", p.pair_id, serde_json::json!({"by": "sp"}));
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
/// canonical body, and decodes it.
fn verify_signatures(
    cs: &CountersignedRequest,
    pair: &PairRecord,
    octane_key: &[u8; 32],
) -> Result<SignRequest, SignError> {
    crate::envelope::verify_bytes(Domain::SpSignRequest, pair.sp_public_key.as_bytes(), &cs.body, &cs.sp_sig)
        .map_err(|_| SignError::BadSpSignature)?;
    crate::envelope::verify_bytes(Domain::OctaneSignRequest, octane_key, &cs.body, &cs.octane_sig)
        .map_err(|_| SignError::BadOctaneSignature)?;
    // Both hold: decode (canonical only) with the one checker that does both at once.
    cs.verify(&pair.sp_public_key, &crate::bytes::Key32(*octane_key))
        .map_err(|e| SignError::Malformed(e.to_string()))
}
