//! Routing, authentication, JSON in and out, long-polls. Every failure is a JSON error body
//! with a stable code; client mistakes are 4xx, never 500.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ed25519_dalek::SigningKey;
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sunstorm_core::bytes::Key32;
use sunstorm_core::clock::Clock;
use sunstorm_core::octane::api::{
    AppForgetPhoneRequest, AppPairsResponse, AppRevokeRequest, ApproveRequest, CheckCodeRequest, CreateSessionRequest,
    ErrorBody, ErrorDetail, OctaneErrorCode, PairResult, PendingSignRequest, PendingSignRequests, PostSignatureRequest,
    PushTargetRemoved, PushTargetRequest, PushTargetResponse, RejectSessionRequest, RejectSignRequest, SignResult,
    SpSignSubmit, WaitQuery, MAX_LONG_POLL_SECS,
};
use sunstorm_core::octane::app_auth::{self, AppRequestHeaders, VerifiedAppRequest, MAX_APP_REQUEST_SKEW_SECS};
use sunstorm_core::receipt::DisplayProof;
use tokio::sync::Notify;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::logic::{self, ApiError, AppAnswer, SpRecord};

/// Largest request body accepted.
const MAX_BODY: usize = 256 * 1024;

/// Shared server state.
pub struct AppState {
    pub db: Mutex<Connection>,
    pub key: SigningKey,
    pub code_mac_key: Zeroizing<[u8; 32]>,
    pub clock: Arc<dyn Clock>,
    pub link_host: String,
    /// Woken on every state change, for long-polls.
    pub notify: Notify,
    /// The signed metadata bundle served to phones, if any.
    pub(crate) metadata: super::metadata::Slot,
    /// Where sign requests are pushed; `None`: no push (phones poll).
    pub(crate) pusher: Option<super::push::Pusher>,
}

impl AppState {
    pub(crate) fn db(&self) -> Result<MutexGuard<'_, Connection>, ApiError> {
        self.db.lock().map_err(|_| ApiError::new(OctaneErrorCode::Internal, "state lock poisoned"))
    }
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_unix()
    }
    fn public_key(&self) -> Key32 {
        Key32(self.key.verifying_key().to_bytes())
    }
    fn changed(&self) {
        self.notify.notify_waiters();
    }
}

type S = State<Arc<AppState>>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail { code: self.code, message: self.message, attempts_left: self.attempts_left },
        };
        (status, Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

fn ok<T: Serialize>(status: StatusCode, v: T) -> ApiResult {
    Ok((status, Json(v)).into_response())
}

fn body_of(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(OctaneErrorCode::PayloadTooLarge, format!("body larger than {MAX_BODY} bytes"))
        } else {
            ApiError::bad(format!("cannot read body: {e}"))
        }
    })
}

/// Parses a request body, which must be one JSON object (serde would otherwise read a
/// struct from an array, so `[]` would pass as a body whose fields are all optional).
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad("invalid JSON body: expected a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
}

fn path_str(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(s) = p.map_err(|e| ApiError::bad(format!("bad path: {e}")))?;
    if s.is_empty() || s.len() > 128 {
        return Err(ApiError::not_found("object"));
    }
    Ok(s)
}

fn path_uuid(p: Result<Path<String>, PathRejection>, what: &str) -> Result<Uuid, ApiError> {
    let s = path_str(p)?;
    Uuid::parse_str(&s).map_err(|_| ApiError::not_found(what))
}

fn wait_secs(q: Result<Query<WaitQuery>, QueryRejection>) -> Result<u64, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad(format!("bad query: {e}")))?;
    Ok(q.timeout_secs.unwrap_or(0).min(MAX_LONG_POLL_SECS))
}

/// Bearer API key → SP.
fn sp_auth(state: &AppState, headers: &HeaderMap) -> Result<SpRecord, ApiError> {
    let unauth = || ApiError::new(OctaneErrorCode::Unauthenticated, "missing or unknown bearer API key");
    let value = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(unauth)?;
    let key = value.strip_prefix("Bearer ").ok_or_else(unauth)?.trim();
    if key.is_empty() || key.len() > 256 {
        return Err(unauth());
    }
    logic::sp_by_api_key(&*state.db()?, key)?.ok_or_else(unauth)
}

/// App-request signature + endorsement + nonce → the appliance this request is about.
fn app_auth(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<VerifiedAppRequest, ApiError> {
    let h = AppRequestHeaders::from_lookup(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .map_err(|e| ApiError::new(e.code(), e.to_string()))?;
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or_else(|| uri.path());
    let now = state.now();
    let v = app_auth::verify_app_request(&h, method.as_str(), target, body, now, MAX_APP_REQUEST_SKEW_SECS)
        .map_err(|e| ApiError::new(e.code(), e.to_string()))?;
    let db = state.db()?;
    if !logic::fresh_nonce(&db, &v.nonce, now, MAX_APP_REQUEST_SKEW_SECS)? {
        return Err(ApiError::new(OctaneErrorCode::StaleRequest, "this request was already received (nonce replay)"));
    }
    // A phone its appliance forgot is refused everything about that appliance.
    logic::check_not_forgotten(&db, &v)?;
    Ok(v)
}

/// Extractor: the SP whose bearer API key the request carries ([`sp_auth`]).
struct SpCaller(SpRecord);

impl FromRequestParts<Arc<AppState>> for SpCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, ApiError> {
        sp_auth(st, &parts.headers).map(SpCaller)
    }
}

/// Extractor: a signed app request without a body ([`app_auth`] over an empty body).
struct AppCaller(VerifiedAppRequest);

impl FromRequestParts<Arc<AppState>> for AppCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, ApiError> {
        app_auth(st, &parts.method, &parts.uri, &parts.headers, b"").map(AppCaller)
    }
}

/// Extractor: a signed app request with its body, read ([`body_of`]) before the signature
/// over it is checked ([`app_auth`]).
struct AppCall {
    who: VerifiedAppRequest,
    body: Bytes,
}

impl FromRequest<Arc<AppState>> for AppCall {
    type Rejection = ApiError;

    async fn from_request(req: Request, st: &Arc<AppState>) -> Result<Self, ApiError> {
        let (method, uri, headers) = (req.method().clone(), req.uri().clone(), req.headers().clone());
        let body = body_of(Bytes::from_request(req, st).await)?;
        let who = app_auth(st, &method, &uri, &headers, &body)?;
        Ok(AppCall { who, body })
    }
}

/// Wakes the long-polls (the state changed) and answers 200 with `v`.
fn changed_ok<T: Serialize>(st: &AppState, v: T) -> ApiResult {
    st.changed();
    ok(StatusCode::OK, v)
}

/// Holds the request until `check` has an answer, the state changes, or `secs` pass.
async fn long_poll<T>(
    state: &AppState,
    secs: u64,
    mut check: impl FnMut() -> Result<Option<T>, ApiError>,
) -> Result<Option<T>, ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let notified = state.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(v) = check()? {
            return Ok(Some(v));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        // Also wake periodically: expiry is a change no one notifies.
        let tick = deadline.min(now + Duration::from_millis(500));
        let _ = tokio::time::timeout_at(tick, notified).await;
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/sp/pair/sessions", post(sp_create_session))
        .route("/sp/pair/sessions/{id}/result", get(sp_pair_result))
        .route("/sp/pairs/{id}/revoke", post(sp_revoke))
        .route("/sp/sign", post(sp_sign))
        .route("/sp/sign/{id}/result", get(sp_sign_result))
        .route("/app/pair/sessions/{id}", get(app_get_session))
        .route("/app/pair/sessions/{id}/code", post(app_code))
        .route("/app/pair/sessions/{id}/approve", post(app_approve))
        .route("/app/pair/sessions/{id}/reject", post(app_reject))
        .route("/app/pairs", get(app_pairs))
        .route("/app/pairs/{id}/revoke", post(app_revoke))
        .route("/app/sign/pending", get(app_pending))
        .route("/app/sign/{id}/result", post(app_sign_result))
        .route("/app/sign/{id}/reject", post(app_sign_reject))
        .route("/app/phones/forget", post(app_forget_phone))
        .route("/app/push/target", post(app_register_push_target).get(app_push_target))
        .route("/app/push/target/remove", post(app_remove_push_target))
        .route("/metadata/bundle", get(metadata_bundle))
        .fallback(|| async { ApiError::new(OctaneErrorCode::NotFound, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(OctaneErrorCode::NotFound, "no such endpoint for this method")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

// ----------------------------------------------------------------------------- metadata

#[tracing::instrument(name = "octane.metadata_bundle", skip_all)]
async fn metadata_bundle(State(st): S, headers: HeaderMap) -> ApiResult {
    super::metadata::answer(&st.metadata, &headers).ok_or_else(|| ApiError::not_found("metadata bundle"))
}

// ----------------------------------------------------------------------------- SP API

#[tracing::instrument(name = "octane.sp_create_session", skip_all)]
async fn sp_create_session(State(st): S, SpCaller(sp): SpCaller, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let req: CreateSessionRequest = parse_json(&body_of(body)?)?;
    let res = logic::create_session(&mut *st.db()?, &st.key, &st.code_mac_key, &st.link_host, &sp, req, st.now())?;
    ok(StatusCode::CREATED, res)
}

#[tracing::instrument(name = "octane.sp_pair_result", skip_all)]
async fn sp_pair_result(
    State(st): S,
    SpCaller(sp): SpCaller,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<WaitQuery>, QueryRejection>,
) -> ApiResult {
    let id = path_str(id)?;
    let secs = wait_secs(q)?;
    let r = long_poll(&st, secs, || logic::pair_result(&*st.db()?, &sp.profile.sp_id, &id, st.now())).await?;
    ok(StatusCode::OK, r.unwrap_or(PairResult::Pending))
}

#[tracing::instrument(name = "octane.sp_revoke", skip_all)]
async fn sp_revoke(State(st): S, SpCaller(sp): SpCaller, id: Result<Path<String>, PathRejection>) -> ApiResult {
    let pair_id = path_uuid(id, "pair")?;
    let r = logic::sp_revoke(&mut *st.db()?, &sp.profile.sp_id, &pair_id, st.now())?;
    changed_ok(&st, r)
}

#[tracing::instrument(name = "octane.sp_sign", skip_all)]
async fn sp_sign(State(st): S, SpCaller(sp): SpCaller, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let req: SpSignSubmit = parse_json(&body_of(body)?)?;
    let r = logic::submit_sign(&mut *st.db()?, &st.key, &sp, &req.pair_id, &req.request, st.now())?;
    st.changed();
    let routed =
        PendingSignRequest { pair_id: req.pair_id, request_id: r.request_id, request: r.countersigned.clone() };
    super::push::spawn_push(&st, routed, r.expires_at);
    ok(StatusCode::ACCEPTED, r)
}

#[tracing::instrument(name = "octane.sp_sign_result", skip_all)]
async fn sp_sign_result(
    State(st): S,
    SpCaller(sp): SpCaller,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<WaitQuery>, QueryRejection>,
) -> ApiResult {
    let rid = path_uuid(id, "sign request")?;
    let secs = wait_secs(q)?;
    let pk = st.public_key();
    let r = long_poll(&st, secs, || logic::sign_result(&*st.db()?, &sp.profile.sp_id, &pk, &rid, st.now())).await?;
    ok(StatusCode::OK, r.unwrap_or(SignResult::Pending))
}

// ----------------------------------------------------------------------------- App API

#[tracing::instrument(name = "octane.app_get_session", skip_all)]
async fn app_get_session(
    State(st): S,
    AppCaller(who): AppCaller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path_str(id)?;
    let r = logic::app_session(&*st.db()?, &who.appliance_identity, &id, st.now())?;
    ok(StatusCode::OK, r)
}

#[tracing::instrument(name = "octane.app_code", skip_all)]
async fn app_code(State(st): S, id: Result<Path<String>, PathRejection>, AppCall { who, body }: AppCall) -> ApiResult {
    let id = path_str(id)?;
    let req: CheckCodeRequest = parse_json(&body)?;
    let code = Zeroizing::new(req.code);
    let r = logic::check_code(&mut *st.db()?, &st.code_mac_key, &who.appliance_identity, &id, &code, st.now());
    st.changed();
    ok(StatusCode::OK, r?)
}

#[tracing::instrument(name = "octane.app_approve", skip_all)]
async fn app_approve(
    State(st): S,
    id: Result<Path<String>, PathRejection>,
    AppCall { who, body }: AppCall,
) -> ApiResult {
    let id = path_str(id)?;
    let req: ApproveRequest = parse_json(&body)?;
    let r = logic::approve(&mut *st.db()?, &st.code_mac_key, &who.appliance_identity, &id, &req.attestation, st.now())?;
    changed_ok(&st, r)
}

#[tracing::instrument(name = "octane.app_reject", skip_all)]
async fn app_reject(
    State(st): S,
    id: Result<Path<String>, PathRejection>,
    AppCall { who, body }: AppCall,
) -> ApiResult {
    let id = path_str(id)?;
    let req: RejectSessionRequest = if body.is_empty() { RejectSessionRequest::default() } else { parse_json(&body)? };
    let r = logic::reject_session(&mut *st.db()?, &who.appliance_identity, &id, req.reason, st.now())?;
    changed_ok(&st, r)
}

#[tracing::instrument(name = "octane.app_pairs", skip_all)]
async fn app_pairs(State(st): S, AppCaller(who): AppCaller) -> ApiResult {
    let pairs = logic::app_pairs(&*st.db()?, &who.appliance_identity)?;
    ok(StatusCode::OK, AppPairsResponse { pairs })
}

#[tracing::instrument(name = "octane.app_revoke", skip_all)]
async fn app_revoke(
    State(st): S,
    id: Result<Path<String>, PathRejection>,
    AppCall { who, body }: AppCall,
) -> ApiResult {
    let pair_id = path_uuid(id, "pair")?;
    let req: AppRevokeRequest = parse_json(&body)?;
    let r = logic::app_revoke(&mut *st.db()?, &who.appliance_identity, &pair_id, &req.revocation, st.now())?;
    changed_ok(&st, r)
}

#[tracing::instrument(name = "octane.app_forget_phone", skip_all)]
async fn app_forget_phone(State(st): S, AppCall { who, body }: AppCall) -> ApiResult {
    let req: AppForgetPhoneRequest = parse_json(&body)?;
    let r = logic::forget_phone(&*st.db()?, &who, &req.statement)?;
    // Wakes the forgotten phone's long-poll, which then ends refused.
    changed_ok(&st, r)
}

#[tracing::instrument(name = "octane.app_register_push_target", skip_all)]
async fn app_register_push_target(State(st): S, AppCall { who, body }: AppCall) -> ApiResult {
    let req: PushTargetRequest = parse_json(&body)?;
    let target = logic::register_push_target(&mut *st.db()?, &who, &req, st.now())?;
    ok(StatusCode::OK, PushTargetResponse { target: Some(target) })
}

#[tracing::instrument(name = "octane.app_push_target", skip_all)]
async fn app_push_target(State(st): S, AppCaller(who): AppCaller) -> ApiResult {
    let target = logic::push_target(&*st.db()?, &who)?;
    ok(StatusCode::OK, PushTargetResponse { target })
}

#[tracing::instrument(name = "octane.app_remove_push_target", skip_all)]
async fn app_remove_push_target(State(st): S, AppCall { who, body }: AppCall) -> ApiResult {
    // No body, or an empty JSON object.
    if !body.is_empty() {
        let fields: serde_json::Map<String, serde_json::Value> = parse_json(&body)?;
        if !fields.is_empty() {
            return Err(ApiError::bad("invalid JSON body: this call takes no fields"));
        }
    }
    let removed = logic::remove_push_target(&*st.db()?, &who)?;
    ok(StatusCode::OK, PushTargetRemoved { removed })
}

#[tracing::instrument(name = "octane.app_pending", skip_all)]
async fn app_pending(
    State(st): S,
    AppCaller(who): AppCaller,
    q: Result<Query<WaitQuery>, QueryRejection>,
) -> ApiResult {
    let secs = wait_secs(q)?;
    let r = long_poll(&st, secs, || {
        let db = st.db()?;
        // Forgotten while it waits: no request is routed to it any more.
        logic::check_not_forgotten(&db, &who)?;
        let list = logic::pending_for(&db, &who.appliance_identity, st.now())?;
        Ok((!list.is_empty()).then_some(list))
    })
    .await?;
    ok(StatusCode::OK, PendingSignRequests { requests: r.unwrap_or_default() })
}

#[tracing::instrument(name = "octane.app_sign_result", skip_all)]
async fn app_sign_result(
    State(st): S,
    id: Result<Path<String>, PathRejection>,
    AppCall { who, body }: AppCall,
) -> ApiResult {
    let rid = path_uuid(id, "sign request")?;
    let req: PostSignatureRequest = parse_json(&body)?;
    let proof = match (req.display_digest, req.receipt) {
        (Some(display_digest), Some(receipt)) => Some(DisplayProof { display_digest, receipt }),
        (None, None) => None,
        _ => return Err(ApiError::bad("display_digest and receipt come together")),
    };
    let r = logic::answer_sign(
        &mut *st.db()?,
        &who.appliance_identity,
        &st.public_key(),
        &rid,
        AppAnswer::Signature { signature: req.signature, proof },
        st.now(),
    )?;
    changed_ok(&st, r)
}

#[tracing::instrument(name = "octane.app_sign_reject", skip_all)]
async fn app_sign_reject(
    State(st): S,
    id: Result<Path<String>, PathRejection>,
    AppCall { who, body }: AppCall,
) -> ApiResult {
    let rid = path_uuid(id, "sign request")?;
    let req: RejectSignRequest = parse_json(&body)?;
    let r = logic::answer_sign(
        &mut *st.db()?,
        &who.appliance_identity,
        &st.public_key(),
        &rid,
        AppAnswer::Reject { reason_code: req.reason_code, message: req.message },
        st.now(),
    )?;
    changed_ok(&st, r)
}
