//! The appliance simulator's control API: HTTP/JSON on a loopback address, for tests that
//! read the appliance's screen, press its buttons, script its user, change link faults,
//! open bonding mode, and assert on its state. Described by
//! `docs/openapi/appliance-control.yaml`; guide in `docs/ble-testing.md`.
//!
//! * Loopback only: [`serve`] refuses any other address, and a request whose `Host` header
//!   names something else is refused (`forbidden_host`), so a web page cannot reach it
//!   through DNS rebinding.
//! * Every input is checked ([`api`]); every failure is a JSON [`api::ErrorBody`] with a
//!   stable code and a sentence; client mistakes are 4xx. Bodies are capped at
//!   [`api::MAX_BODY`], long-polls at [`api::MAX_WAIT_MS`].

pub mod api;
mod client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use sunstorm_core::approval::ApprovalPolicy;
use sunstorm_core::display::{clean, TextKind};
use tokio::task::JoinHandle;

use super::{Answer, ApplianceSim, Event, EventType, PanelError, SimError};
use crate::link::{LiveSettings, SimLinkConfig};
use api::{
    ApiError, BondingOpen, BondingView, ControlErrorCode, Disconnected, ErrorBody, ErrorDetail, EventsQuery,
    FaultSettings, FaultsView, ForgottenView, LinkFaults, PairView, PhoneForgottenView, PhoneView, PhonesView,
    PressRequest, Pressed, Removed, ResetDone, RuleList, ScreenNow, SignatureCount, StateView, UserSetting,
};
pub use client::{Client, ClientError};

/// A running control server.
pub struct ControlServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ControlServer {
    /// The address it listens on (with the port the OS chose for `:0`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Ctl {
    sim: ApplianceSim,
    link: SimLinkConfig,
}

type S = State<Arc<Ctl>>;

impl From<PanelError> for ApiError {
    fn from(e: PanelError) -> Self {
        let code = match e {
            PanelError::NoScreen => ControlErrorCode::NoScreen,
            PanelError::UnknownScreen(_) => ControlErrorCode::UnknownScreen,
            PanelError::UnknownRule(_) => ControlErrorCode::UnknownRule,
            PanelError::TooManyRules => ControlErrorCode::TooManyRules,
        };
        ApiError::new(code, e.to_string())
    }
}

/// An [`ApiError`] as an HTTP answer.
struct Refusal(ApiError);

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal(e)
    }
}

impl From<PanelError> for Refusal {
    fn from(e: PanelError) -> Self {
        Refusal(e.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody { error: ErrorDetail { code: self.0.code, message: self.0.message } };
        (status, Json(body)).into_response()
    }
}

type ApiResult = Result<Response, Refusal>;

fn ok<T: Serialize>(v: T) -> ApiResult {
    Ok((StatusCode::OK, Json(v)).into_response())
}

fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ControlErrorCode::PayloadTooLarge, format!("the body is larger than {} bytes", api::MAX_BODY))
        } else {
            ApiError::new(ControlErrorCode::MalformedJson, format!("cannot read the body: {e}"))
        }
    })
}

/// Parses a path id: decimal digits, at most [`api::MAX_INT`].
pub fn parse_id(s: &str) -> Result<u64, ApiError> {
    let bad =
        || ApiError::new(ControlErrorCode::InvalidPath, "the id must be a decimal integer within 0..=9007199254740991");
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    s.parse::<u64>().ok().filter(|v| *v <= api::MAX_INT).ok_or_else(bad)
}

/// Whether a `Host` header value names a loopback address (`127.x.y.z`, `localhost`,
/// `[::1]`, with or without a port).
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, tail)) if tail.is_empty() || tail.starts_with(':') => ip,
            _ => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

async fn loopback_only(req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).map(|h| h.to_str().unwrap_or(""));
    if let Some(h) = host {
        if !is_loopback_host(h) {
            tracing::warn!("control API: refused a request for another host");
            return Refusal(ApiError::new(
                ControlErrorCode::ForbiddenHost,
                "the control API answers requests for loopback hosts only (127.0.0.1, localhost, [::1])",
            ))
            .into_response();
        }
    }
    next.run(req).await
}

/// The router (exposed for tests that drive it without a socket).
pub fn router(sim: ApplianceSim, link: SimLinkConfig) -> Router {
    let st = Arc::new(Ctl { sim, link });
    Router::new()
        .route("/screen", get(get_screen))
        .route("/screen/events", get(get_events))
        .route("/screen/approve", post(press_approve))
        .route("/screen/reject", post(press_reject))
        .route("/rules", get(get_rules).post(post_rule).delete(delete_rules))
        .route("/rules/{id}", delete(delete_rule))
        .route("/user", get(get_user).put(put_user))
        .route("/faults", get(get_faults).put(put_faults))
        .route("/faults/disconnect", post(post_disconnect))
        .route("/bonding", get(get_bonding))
        .route("/bonding/open", post(post_bonding_open))
        .route("/bonding/close", post(post_bonding_close))
        .route("/phones", get(get_phones))
        .route("/phones/{app_key}/forget", post(post_forget_phone))
        .route("/state", get(get_state))
        .route("/reset", post(post_reset))
        .fallback(|| async { Refusal(ApiError::new(ControlErrorCode::NotFound, "no such endpoint")) })
        .method_not_allowed_fallback(|| async {
            Refusal(ApiError::new(ControlErrorCode::MethodNotAllowed, "this endpoint does not take this method"))
        })
        .layer(DefaultBodyLimit::max(api::MAX_BODY))
        .layer(middleware::from_fn(loopback_only))
        .with_state(st)
}

/// Serves the control API for `sim` (and the link faults of `link`) on `addr`, which must
/// be a loopback address (`127.0.0.1:0` picks a free port).
pub async fn serve(sim: ApplianceSim, link: SimLinkConfig, addr: SocketAddr) -> Result<ControlServer, SimError> {
    if !addr.ip().is_loopback() {
        return Err(SimError::Config(format!(
            "the control API listens on loopback addresses only (127.0.0.1, [::1]), not {addr}"
        )));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| SimError::Config(format!("cannot listen on {addr}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| SimError::Config(e.to_string()))?;
    let app = router(sim, link);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "control API stopped");
        }
    });
    tracing::info!(%addr, "control API listening");
    Ok(ControlServer { addr, task })
}

// ------------------------------------------------------------------------------ screen

async fn get_screen(State(c): S) -> ApiResult {
    let waiting = c.sim.waiting_screens();
    ok(ScreenNow { screen: waiting.first().cloned(), waiting })
}

async fn get_events(State(c): S, q: Result<Query<EventsQuery>, QueryRejection>) -> ApiResult {
    let Query(q) =
        q.map_err(|e| ApiError::new(ControlErrorCode::InvalidQuery, format!("bad query: {}", e.body_text())))?;
    let (after, wait, limit) = q.checked()?;
    if wait > 0 && after == c.sim.last_event_seq() {
        c.sim.wait_for_event(after, Duration::from_millis(wait)).await;
    }
    ok(c.sim.events_after(after, limit))
}

fn press(c: &Ctl, b: Result<Bytes, BytesRejection>, approve: bool) -> ApiResult {
    let p = PressRequest::parse(&body(b)?)?;
    let screen = c.sim.press(p.screen_id, p.request_id, approve)?;
    ok(Pressed { screen, answer: if approve { Answer::Approved } else { Answer::Rejected } })
}

async fn press_approve(State(c): S, b: Result<Bytes, BytesRejection>) -> ApiResult {
    press(&c, b, true)
}

async fn press_reject(State(c): S, b: Result<Bytes, BytesRejection>) -> ApiResult {
    press(&c, b, false)
}

// ------------------------------------------------------------------------------- rules

async fn get_rules(State(c): S) -> ApiResult {
    ok(RuleList { rules: c.sim.rules() })
}

async fn post_rule(State(c): S, b: Result<Bytes, BytesRejection>) -> ApiResult {
    let spec = api::parse_rule(&body(b)?)?;
    let rule = c.sim.add_rule(spec)?;
    Ok((StatusCode::CREATED, Json(rule)).into_response())
}

async fn delete_rules(State(c): S) -> ApiResult {
    ok(Removed { removed: c.sim.clear_rules() })
}

async fn delete_rule(State(c): S, id: Result<Path<String>, PathRejection>) -> ApiResult {
    let Path(id) = id.map_err(|e| ApiError::new(ControlErrorCode::InvalidPath, e.body_text()))?;
    c.sim.remove_rule(parse_id(&id)?)?;
    ok(Removed { removed: 1 })
}

// -------------------------------------------------------------------------------- user

async fn get_user(State(c): S) -> ApiResult {
    ok(UserSetting::of(&c.sim.user()))
}

async fn put_user(State(c): S, b: Result<Bytes, BytesRejection>) -> ApiResult {
    let user = UserSetting::parse(&body(b)?)?;
    c.sim.set_user(user.clone());
    ok(UserSetting::of(&user))
}

// ------------------------------------------------------------------------------ faults

fn faults_view(c: &Ctl) -> FaultsView {
    let cfg = &c.link;
    let live = cfg.live.settings();
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let configured =
        LinkFaults { drop: cfg.drop, duplicate: cfg.duplicate, reorder: cfg.reorder, latency_ms: ms(cfg.latency) };
    FaultsView {
        effective: LinkFaults {
            drop: live.drop.unwrap_or(cfg.drop),
            duplicate: live.duplicate.unwrap_or(cfg.duplicate),
            reorder: live.reorder.unwrap_or(cfg.reorder),
            latency_ms: live.latency.map_or(configured.latency_ms, ms),
        },
        configured,
        refuse_connections: live.refuse_connections,
        open_connections: cfg.live.open_connections(),
    }
}

async fn get_faults(State(c): S) -> ApiResult {
    ok(faults_view(&c))
}

async fn put_faults(State(c): S, b: Result<Bytes, BytesRejection>) -> ApiResult {
    let f = FaultSettings::parse(&body(b)?)?;
    c.link.live.set(LiveSettings {
        drop: f.drop,
        duplicate: f.duplicate,
        reorder: f.reorder,
        latency: f.latency_ms.map(Duration::from_millis),
        refuse_connections: f.refuse_connections.unwrap_or(false),
    });
    let view = faults_view(&c);
    c.sim.log_event(Event::new(EventType::FaultsChanged).detail(format!(
        "drop {}, duplicate {}, reorder {}, latency {} ms, refuse connections {}",
        view.effective.drop,
        view.effective.duplicate,
        view.effective.reorder,
        view.effective.latency_ms,
        view.refuse_connections
    )));
    ok(view)
}

async fn post_disconnect(State(c): S) -> ApiResult {
    let n = c.link.live.disconnect_all();
    c.sim.log_event(Event::new(EventType::FaultsChanged).detail(format!("disconnected {n} connection(s)")));
    ok(Disconnected { disconnected: n })
}

// ----------------------------------------------------------------------------- bonding

fn bonding_view(sim: &ApplianceSim) -> BondingView {
    let remaining = sim.bonding_window_remaining();
    BondingView {
        open: remaining.is_some(),
        remaining_secs: remaining.map(|d| d.as_secs()),
        pin: sim.pin(),
        pin_failures: sim.pin_failures(),
        retry_after_secs: sim.bonding_retry_after(),
        lockouts: sim.bonding_lockouts(),
    }
}

async fn get_bonding(State(c): S) -> ApiResult {
    ok(bonding_view(&c.sim))
}

async fn post_bonding_open(State(c): S, b: Result<Bytes, BytesRejection>) -> ApiResult {
    let o = BondingOpen::parse(&body(b)?)?;
    let secs = o.secs.map_or_else(|| c.sim.bonding_window_length(), Duration::from_secs);
    c.sim.open_bonding_window(secs);
    ok(bonding_view(&c.sim))
}

async fn post_bonding_close(State(c): S) -> ApiResult {
    c.sim.close_bonding_window();
    ok(bonding_view(&c.sim))
}

// ------------------------------------------------------------------------------ phones

fn phone_views(sim: &ApplianceSim) -> Vec<PhoneView> {
    sim.bonded_phones()
        .iter()
        .map(|p| PhoneView {
            name: clean(&p.name, TextKind::Name),
            channel_static: p.channel_static.to_hex(),
            app_key: p.app_key.to_hex(),
            fingerprint: p.channel_static.fingerprint(),
            bonded_at: p.bonded_at,
            approval_key: p.approval_key.as_ref().map(|k| k.fingerprint()),
        })
        .collect()
}

async fn get_phones(State(c): S) -> ApiResult {
    let forgotten = c
        .sim
        .forgotten_phones()
        .iter()
        .map(|f| ForgottenView {
            name: clean(&f.name, TextKind::Name),
            app_key: f.app_key.to_hex(),
            fingerprint: f.channel_static.fingerprint(),
            forgotten_by: f.forgotten_by.map(|k| k.to_hex()),
            forgotten_at: f.forgotten_at,
        })
        .collect();
    ok(PhonesView { phones: phone_views(&c.sim), forgotten })
}

async fn post_forget_phone(State(c): S, key: Result<Path<String>, PathRejection>) -> ApiResult {
    let Path(key) = key.map_err(|e| ApiError::new(ControlErrorCode::InvalidPath, e.body_text()))?;
    let app_key = api::parse_app_key(&key)?;
    let statement = c.sim.forget_phone(&app_key).map_err(|e| match e {
        SimError::UnknownPhone => ApiError::new(ControlErrorCode::UnknownPhone, "no bonded phone has this app key"),
        other => ApiError::new(ControlErrorCode::Internal, other.to_string()),
    })?;
    let forgotten_at =
        c.sim.forgotten_phones().iter().rev().find(|f| f.app_key == app_key).map_or(0, |f| f.forgotten_at);
    ok(PhoneForgottenView { app_key: app_key.to_hex(), forgotten_at, statement })
}

// ------------------------------------------------------------------------ state, reset

async fn get_state(State(c): S) -> ApiResult {
    let sim = &c.sim;
    ok(StateView {
        identity: sim.identity().to_hex(),
        name: sim.info().name,
        wallets: sim.wallets().iter().map(|a| a.to_string()).collect(),
        bonded_phones: phone_views(sim),
        pairs: sim
            .pairs()
            .iter()
            .map(|p| PairView {
                pair_id: p.pair_id,
                session_id: clean(&p.session_id, TextKind::Name),
                sp_id: clean(&p.sp_id, TextKind::Name),
                sp_name: clean(&p.sp_name, TextKind::Name),
                sp_public_key: p.sp_public_key.to_hex(),
                accounts: p.bindings.iter().map(|a| a.to_string()).collect(),
                approved_at: p.approved_at,
                approval_policy: p.approval_policy().as_str().to_string(),
                approval_above: match p.approval_policy() {
                    ApprovalPolicy::Above { native } => Some(native.to_string()),
                    _ => None,
                },
            })
            .collect(),
        revoked_pairs: sim.revoked_pairs(),
        signatures: sim
            .signature_counts()
            .into_iter()
            .map(|(request_id, count)| SignatureCount { request_id, count })
            .collect(),
        total_signatures: sim.total_signatures(),
        answered_requests: sim.answered_ids().len(),
    })
}

async fn post_reset(State(c): S) -> ApiResult {
    c.sim.reset();
    c.link.live.set(LiveSettings::default());
    // A factory reset drops every link: phones must bond again.
    c.link.live.disconnect_all();
    ok(ResetDone { seq: c.sim.last_event_seq() })
}
