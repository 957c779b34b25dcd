//! The push gateway simulator: stands in for Apple's APNs and Google's FCM HTTP v1 so octane's
//! pushes can be tested on loopback. It answers the shapes of both services' send requests
//! (paths, headers, JSON bodies, the 4 KB payload limit, their error bodies), records every
//! request it receives, and injects the services' real failures on request: a token gone
//! (APNs 410 `Unregistered`, FCM 404 `UNREGISTERED`), throttling (429), outages (500, 503)
//! and a payload too large (APNs 413, FCM 400 "Message is too big").
//!
//! It speaks HTTP/1.1 (axum), not APNs' HTTP/2, and checks no credentials; the request and
//! answer shapes are the services'. See `docs/push-gateway.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sunstorm_sim::push_gateway::PushGatewayError> {
//! use sunstorm_sim::push_gateway::{PushGatewayConfig, PushGatewaySim};
//! let gateway = PushGatewaySim::start(PushGatewayConfig::default()).await?;
//! println!("push gateway at {}", gateway.url);
//! gateway.shutdown().await;
//! # Ok(()) }
//! ```

pub mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sunstorm_core::octane::api::PushPlatform;
use tokio::sync::Notify;

use crate::http_server::ServerTask;

use wire::{ApnsError, FcmErrorBody, MAX_COLLAPSE_ID, MAX_PUSH_PAYLOAD, SEALED_KEY};

/// Largest request body the gateway reads (larger answers 413 before it is parsed).
const MAX_BODY: usize = 64 * 1024;
/// Most requests kept in the record (older ones are dropped first).
const MAX_RECORDED: usize = 10_000;
/// Most failure rules at once.
const MAX_RULES: usize = 256;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum PushGatewayError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// How to run the gateway.
#[derive(Debug, Clone)]
pub struct PushGatewayConfig {
    /// Where to listen; default `127.0.0.1:0` (an ephemeral port).
    pub listen: SocketAddr,
}

impl Default for PushGatewayConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 0)) }
    }
}

/// A failure the gateway answers with instead of accepting a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The token is no longer valid: APNs 410 `Unregistered`, FCM 404 `UNREGISTERED`.
    Unregistered,
    /// Throttled: 429 (APNs `TooManyRequests`, FCM `QUOTA_EXCEEDED`).
    TooManyRequests,
    /// An outage: 503 (APNs `ServiceUnavailable`, FCM `UNAVAILABLE`).
    Unavailable,
    /// A server error: 500 (APNs `InternalServerError`, FCM `INTERNAL`).
    Internal,
    /// The payload is too large: APNs 413 `PayloadTooLarge`, FCM 400 "Message is too big".
    TooLarge,
}

/// A rule injecting failures: for `token` (or any token), the next `count` requests (or
/// every one, while the rule stands) fail with `kind`. Rules are tried in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRule {
    /// The failure.
    pub kind: FailureKind,
    /// Only requests to this device token; absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// How many requests it applies to; absent: all, until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// One request the gateway received, and what it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivedPush {
    /// Order of arrival, from 1.
    pub seq: u64,
    /// Which service's shape the request had.
    pub platform: PushPlatform,
    /// The device token it was for (APNs: from the path; FCM: `message.token`).
    pub token: String,
    /// FCM: the project in the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// APNs: the `apns-*` headers as sent.
    pub headers: BTreeMap<String, String>,
    /// The JSON body as sent.
    pub body: serde_json::Value,
    /// The sealed payload (base64url): APNs `sigil` next to `aps`, FCM `data.sigil`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    /// The HTTP status the gateway answered (200: accepted for delivery).
    pub status: u16,
    /// The error reason answered (APNs `reason`, FCM `errorCode`), when not 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ReceivedPush {
    /// Whether the gateway accepted it for delivery.
    pub fn delivered(&self) -> bool {
        self.status == 200
    }
}

/// `GET /sim/deliveries` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deliveries {
    /// Every request received, oldest first (accepted ones have `status` 200).
    pub deliveries: Vec<ReceivedPush>,
}

#[derive(Default)]
struct Record {
    received: Vec<ReceivedPush>,
    seq: u64,
    rules: Vec<FailureRule>,
}

struct GwState {
    record: Mutex<Record>,
    notify: Notify,
}

impl GwState {
    fn lock(&self) -> MutexGuard<'_, Record> {
        // The record holds no invariant a panic elsewhere could break: keep serving.
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the failure the rules hold for `token`, counting it down.
    fn take_failure(&self, token: &str) -> Option<FailureKind> {
        let mut rec = self.lock();
        let i = rec.rules.iter().position(|r| r.token.as_deref().is_none_or(|t| t == token))?;
        let rule = rec.rules.get_mut(i)?;
        let kind = rule.kind;
        match rule.count {
            Some(n) if n <= 1 => {
                rec.rules.remove(i);
            }
            Some(n) => rule.count = Some(n - 1),
            None => {}
        }
        Some(kind)
    }

    fn record(&self, mut push: ReceivedPush) {
        {
            let mut rec = self.lock();
            rec.seq += 1;
            push.seq = rec.seq;
            tracing::info!(
                seq = push.seq,
                platform = push.platform.as_str(),
                status = push.status,
                "push gateway: request received"
            );
            if rec.received.len() >= MAX_RECORDED {
                rec.received.remove(0);
            }
            rec.received.push(push);
        }
        self.notify.notify_waiters();
    }
}

/// The running gateway. Dropping it stops the server.
pub struct PushGatewayHandle {
    /// Base URL, `http://127.0.0.1:<port>` (no trailing slash): octane's `--push-gateway`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    state: Arc<GwState>,
    server: ServerTask,
}

impl std::fmt::Debug for PushGatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushGatewayHandle").field("url", &self.url).finish_non_exhaustive()
    }
}

impl PushGatewayHandle {
    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedPush> {
        self.state.lock().received.clone()
    }

    /// The requests accepted for delivery (status 200), oldest first.
    pub fn delivered(&self) -> Vec<ReceivedPush> {
        self.received().into_iter().filter(ReceivedPush::delivered).collect()
    }

    /// Adds a failure rule (after the existing ones).
    pub fn inject(&self, rule: FailureRule) {
        let mut rec = self.state.lock();
        if rec.rules.len() < MAX_RULES {
            rec.rules.push(rule);
        }
    }

    /// Removes every failure rule.
    pub fn clear_failures(&self) {
        self.state.lock().rules.clear();
    }

    /// Waits until at least `n` requests were received (all of them then), or `within`
    /// passes (what arrived by then).
    pub async fn wait_received(&self, n: usize, within: Duration) -> Vec<ReceivedPush> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.state.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.received();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Stops accepting connections and ends the server.
    pub async fn shutdown(mut self) {
        self.server.stop().await;
    }

    /// Serves until Ctrl-C (or the server fails), then stops.
    pub async fn run_until_ctrl_c(mut self) {
        self.server.run_until_ctrl_c().await;
    }
}

/// Entry point of the push gateway simulator.
#[derive(Debug)]
pub struct PushGatewaySim;

impl PushGatewaySim {
    /// Binds the listener and serves in a background task.
    pub async fn start(config: PushGatewayConfig) -> Result<PushGatewayHandle, PushGatewayError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| PushGatewayError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| PushGatewayError::Bind { addr: config.listen, source })?;
        let state = Arc::new(GwState { record: Mutex::new(Record::default()), notify: Notify::new() });
        let app = router(state.clone());
        let server = ServerTask::spawn(listener, app, "push gateway");
        tracing::info!(%addr, "push gateway simulator listening");
        Ok(PushGatewayHandle { url: format!("http://{addr}"), addr, state, server })
    }
}

type S = State<Arc<GwState>>;

fn router(state: Arc<GwState>) -> Router {
    Router::new()
        .route("/3/device/{token}", post(apns_send))
        .route("/v1/projects/{project}/messages:send", post(fcm_send))
        .route("/sim/deliveries", get(list_deliveries))
        .route("/sim/failures", post(add_failure))
        .route("/sim/failures/clear", post(clear_failures))
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(serde_json::json!({"reason": "BadPath"}))) })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

// ----------------------------------------------------------------------------- control

async fn list_deliveries(State(st): S) -> Response {
    Json(Deliveries { deliveries: st.lock().received.clone() }).into_response()
}

fn control_error(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": message}))).into_response()
}

async fn add_failure(State(st): S, body: Bytes) -> Response {
    let rule: FailureRule = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return control_error(format!("invalid failure rule: {e}")),
    };
    if rule.count == Some(0) {
        return control_error("count must be at least 1 (absent: every request)".into());
    }
    let mut rec = st.lock();
    if rec.rules.len() >= MAX_RULES {
        return control_error(format!("at most {MAX_RULES} rules"));
    }
    rec.rules.push(rule);
    Json(serde_json::json!({"rules": rec.rules.len()})).into_response()
}

async fn clear_failures(State(st): S) -> Response {
    st.lock().rules.clear();
    Json(serde_json::json!({"rules": 0})).into_response()
}

// ----------------------------------------------------------------------------- APNs

/// APNs' answer to one failure kind: status and reason.
fn apns_failure(kind: FailureKind) -> (u16, &'static str) {
    match kind {
        FailureKind::Unregistered => (410, "Unregistered"),
        FailureKind::TooManyRequests => (429, "TooManyRequests"),
        FailureKind::Unavailable => (503, "ServiceUnavailable"),
        FailureKind::Internal => (500, "InternalServerError"),
        FailureKind::TooLarge => (413, "PayloadTooLarge"),
    }
}

/// Checks an APNs request the way APNs does; the refusal's status and reason.
fn apns_check(
    token: &str,
    headers: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<serde_json::Value, (u16, &'static str)> {
    if !PushPlatform::Apns.token_is_valid(token) {
        return Err((400, "BadDeviceToken"));
    }
    if headers.get(wire::APNS_TOPIC).is_none_or(|t| t.is_empty()) {
        return Err((400, "MissingTopic"));
    }
    let push_type = headers.get(wire::APNS_PUSH_TYPE).map(String::as_str);
    if !matches!(push_type, Some("alert" | "background")) {
        return Err((400, "InvalidPushType"));
    }
    match headers.get(wire::APNS_PRIORITY).map(String::as_str) {
        None | Some("10") if push_type == Some("alert") => {}
        None | Some("5") => {}
        _ => return Err((400, "BadPriority")),
    }
    if headers.get(wire::APNS_EXPIRATION).is_some_and(|e| e.parse::<u64>().is_err()) {
        return Err((400, "BadExpirationDate"));
    }
    if headers.get(wire::APNS_COLLAPSE_ID).is_some_and(|c| c.len() > MAX_COLLAPSE_ID) {
        return Err((400, "BadCollapseId"));
    }
    if body.is_empty() {
        return Err((400, "PayloadEmpty"));
    }
    if body.len() > MAX_PUSH_PAYLOAD {
        return Err((413, "PayloadTooLarge"));
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| (400, "BadPayload"))?;
    if !v.get("aps").is_some_and(serde_json::Value::is_object) {
        return Err((400, "BadPayload"));
    }
    Ok(v)
}

#[tracing::instrument(name = "push_gateway.apns_send", skip_all)]
async fn apns_send(State(st): S, Path(token): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let apns_headers: BTreeMap<String, String> = headers
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("apns-"))
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let checked = apns_check(&token, &apns_headers, &body);
    let parsed = checked.clone().unwrap_or_else(|_| serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
    let sealed = parsed.get(SEALED_KEY).and_then(|s| s.as_str()).map(str::to_string);
    let answer = checked.map(|_| ()).and_then(|()| match st.take_failure(&token) {
        Some(kind) => Err(apns_failure(kind)),
        None => Ok(()),
    });
    let (status, reason) = match answer {
        Ok(()) => (200, None),
        Err((s, r)) => (s, Some(r)),
    };
    st.record(ReceivedPush {
        seq: 0,
        platform: PushPlatform::Apns,
        token,
        project: None,
        headers: apns_headers,
        body: parsed,
        sealed,
        status,
        reason: reason.map(str::to_string),
    });
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match reason {
        None => (code, [(wire::APNS_ID, uuid::Uuid::new_v4().to_string())]).into_response(),
        Some(reason) => {
            let timestamp = (status == 410).then(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0)
            });
            (code, Json(ApnsError { reason: reason.to_string(), timestamp })).into_response()
        }
    }
}

// ----------------------------------------------------------------------------- FCM

/// FCM's answer to one failure kind: status, canonical status, FCM error code, message.
fn fcm_failure(kind: FailureKind) -> (u16, &'static str, &'static str, &'static str) {
    match kind {
        FailureKind::Unregistered => (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
        FailureKind::TooManyRequests => (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded."),
        FailureKind::Unavailable => (503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
        FailureKind::Internal => (500, "INTERNAL", "INTERNAL", "Internal error encountered."),
        FailureKind::TooLarge => (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", wire::FCM_TOO_BIG),
    }
}

type FcmRefusal = (u16, &'static str, &'static str, String);

fn fcm_invalid(message: impl Into<String>) -> FcmRefusal {
    (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", message.into())
}

/// Checks an FCM v1 send the way FCM does: the token, `data` of strings within the limit,
/// the Android options. The token on success.
fn fcm_check(v: &serde_json::Value) -> Result<String, FcmRefusal> {
    let msg = v.get("message").and_then(|m| m.as_object()).ok_or_else(|| fcm_invalid("message is required"))?;
    let token = msg.get("token").and_then(|t| t.as_str()).ok_or_else(|| fcm_invalid("message.token is required"))?;
    if !PushPlatform::Fcm.token_is_valid(token) {
        return Err(fcm_invalid("The registration token is not a valid FCM registration token"));
    }
    if let Some(data) = msg.get("data") {
        let data = data.as_object().ok_or_else(|| fcm_invalid("message.data must be a map"))?;
        let mut size = 0usize;
        for (k, v) in data {
            let v = v.as_str().ok_or_else(|| fcm_invalid(format!("message.data.{k} must be a string")))?;
            size = size.saturating_add(k.len()).saturating_add(v.len());
        }
        if size > MAX_PUSH_PAYLOAD {
            return Err(fcm_invalid(format!(
                "{} ({size} bytes of data, at most {MAX_PUSH_PAYLOAD})",
                wire::FCM_TOO_BIG
            )));
        }
    }
    if let Some(android) = msg.get("android") {
        let android = android.as_object().ok_or_else(|| fcm_invalid("message.android must be an object"))?;
        if let Some(p) = android.get("priority") {
            if !matches!(p.as_str(), Some("high" | "normal")) {
                return Err(fcm_invalid("message.android.priority must be HIGH or NORMAL"));
            }
        }
        if let Some(ttl) = android.get("ttl") {
            let ok = ttl.as_str().and_then(|t| t.strip_suffix('s')).is_some_and(|n| {
                let (whole, frac) = n.split_once('.').unwrap_or((n, ""));
                !whole.is_empty()
                    && whole.bytes().all(|b| b.is_ascii_digit())
                    && frac.len() <= 9
                    && frac.bytes().all(|b| b.is_ascii_digit())
                    && whole.parse::<u64>().is_ok_and(|s| s <= 2_419_200)
            });
            if !ok {
                return Err(fcm_invalid("message.android.ttl must be a duration like \"300s\", at most 28 days"));
            }
        }
        if let Some(c) = android.get("collapse_key") {
            if !c.as_str().is_some_and(|c| !c.is_empty() && c.len() <= MAX_COLLAPSE_ID) {
                return Err(fcm_invalid("message.android.collapse_key must be a short string"));
            }
        }
    }
    Ok(token.to_string())
}

#[tracing::instrument(name = "push_gateway.fcm_send", skip_all)]
async fn fcm_send(State(st): S, Path(project): Path<String>, body: Bytes) -> Response {
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let token = parsed.pointer("/message/token").and_then(|t| t.as_str()).unwrap_or("").to_string();
    let sealed = parsed.pointer(&format!("/message/data/{SEALED_KEY}")).and_then(|s| s.as_str()).map(str::to_string);
    let answer = fcm_check(&parsed).and_then(|token| match st.take_failure(&token) {
        Some(kind) => {
            let (s, status, code, msg) = fcm_failure(kind);
            Err((s, status, code, msg.to_string()))
        }
        None => Ok(()),
    });
    let (status, reason) = match &answer {
        Ok(()) => (200, None),
        Err((s, _, code, _)) => (*s, Some(code.to_string())),
    };
    st.record(ReceivedPush {
        seq: 0,
        platform: PushPlatform::Fcm,
        token,
        project: Some(project.clone()),
        headers: BTreeMap::new(),
        body: parsed,
        sealed,
        status,
        reason,
    });
    match answer {
        Ok(()) => Json(serde_json::json!({
            "name": format!("projects/{project}/messages/{}", uuid::Uuid::new_v4())
        }))
        .into_response(),
        Err((s, status, code, message)) => (
            StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(FcmErrorBody::new(s, status, code, &message)),
        )
            .into_response(),
    }
}
