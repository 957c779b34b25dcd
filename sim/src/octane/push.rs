//! Octane's push sender: on each routed sign request, a push to every registered phone of the
//! pair's appliance, through a push gateway speaking APNs' and FCM HTTP v1's request shapes
//! (the gateway simulator in tests, `sunstorm sim push-gateway` on a laptop).
//!
//! The payload is [`sunstorm_core::push::seal_for_push`]'s: the octane-signed request sealed
//! to the phone's push key when it fits the platform's 4 KB limit, otherwise only its ids.
//! The push service's answers decide what happens next ([`classify`]): a token gone drops the
//! target, throttling and outages are retried with doubling back-off within a deadline, a
//! payload over the limit is sent again with the ids only.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use sunstorm_core::octane::api::{PendingSignRequest, PushPlatform};
use sunstorm_core::push::{seal, seal_for_push, PushContent};
use url::Url;

use super::http::AppState;
use super::logic::{self, RoutedTarget};
use crate::push_gateway::wire::{self, classify, PushOutcome, MAX_PUSH_PAYLOAD, SEALED_KEY};

/// How octane reaches the push services.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// The gateway's base URL (APNs and FCM requests go to its paths), without a path.
    pub gateway_url: Url,
    /// `apns-topic`: the app's bundle id.
    pub apns_topic: String,
    /// The FCM project id (`/v1/projects/<project>/messages:send`).
    pub fcm_project: String,
    /// Attempts per push in total (throttling and outages are retried).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled after each.
    pub first_backoff: Duration,
    /// Longest a push may take, retries included.
    pub deadline: Duration,
    /// Longest wait for one answer.
    pub request_timeout: Duration,
}

/// `apns-topic` when none is given.
pub const DEFAULT_APNS_TOPIC: &str = "org.sigil.sunstorm";
/// FCM project when none is given.
pub const DEFAULT_FCM_PROJECT: &str = "sunstorm-sim";

impl PushConfig {
    /// Pushes through `gateway_url` with the defaults: 5 attempts, back-off 200 ms doubling,
    /// 30 s in all, 5 s per answer.
    pub fn new(gateway_url: Url) -> Self {
        Self {
            gateway_url,
            apns_topic: DEFAULT_APNS_TOPIC.into(),
            fcm_project: DEFAULT_FCM_PROJECT.into(),
            max_attempts: 5,
            first_backoff: Duration::from_millis(200),
            deadline: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// The sender: a pooled HTTP client, its configuration, and the signal that octane is
/// stopping (in-flight pushes and their retries end then, not after octane is gone).
pub(crate) struct Pusher {
    http: reqwest::Client,
    cfg: PushConfig,
    stopping: tokio::sync::watch::Sender<bool>,
}

/// What became of one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Accepted by the push service (with the request inside, or only its ids).
    Delivered { carried_request: bool },
    /// The token is gone; the target was dropped.
    Unregistered,
    /// Not delivered (refused, or retries and deadline exhausted).
    Failed,
}

impl Pusher {
    pub(crate) fn new(cfg: PushConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.request_timeout)
            .timeout(cfg.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http, cfg, stopping: tokio::sync::watch::Sender::new(false) })
    }

    /// Ends every push in flight (a retry waiting for its back-off included) and every
    /// push started later.
    pub(crate) fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once [`Self::stop`] was called.
    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.subscribe();
        async move {
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }
}

/// Pushes `request` to every phone its pair routes to, in the background (the SP's call does
/// not wait). Nothing happens without a push gateway configured.
pub(crate) fn spawn_push(state: &Arc<AppState>, request: PendingSignRequest, expires_at: u64) {
    let Some(stopped) = state.pusher.as_ref().map(Pusher::stopped) else { return };
    let state = state.clone();
    tokio::spawn(async move {
        let work = async {
            let targets = match state.db().and_then(|db| logic::targets_for_pair(&db, &request.pair_id)) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e.message, "push: cannot read the push targets");
                    return;
                }
            };
            let Some(pusher) = state.pusher.as_ref() else { return };
            let pushes = targets.iter().map(|t| push_one(&state, pusher, t, &request, expires_at));
            futures::future::join_all(pushes).await;
        };
        tokio::select! {
            () = stopped => tracing::info!(request = %request.request_id, "push: octane stopping, push abandoned"),
            () = work => {}
        }
    });
}

#[tracing::instrument(name = "octane.push", skip_all, fields(request = %request.request_id, platform = t.target.platform.as_str(), phone = %t.app_key.fingerprint()))]
async fn push_one(state: &AppState, pusher: &Pusher, t: &RoutedTarget, request: &PendingSignRequest, expires_at: u64) {
    let outcome = deliver(state, pusher, t, request, expires_at).await;
    match outcome {
        Delivery::Delivered { carried_request } => {
            tracing::info!(carried_request, "push delivered to the push service")
        }
        Delivery::Unregistered => tracing::info!("push token unregistered; target dropped"),
        Delivery::Failed => tracing::warn!("push not delivered; the phone will find the request by polling"),
    }
}

/// Seals the request for `t`: whole when it fits, otherwise (or when `ids_only`) its ids.
/// The base64 text (standard alphabet, padded) and whether the request is inside.
fn sealed_text(t: &RoutedTarget, request: &PendingSignRequest, ids_only: bool) -> Option<(String, bool)> {
    let sealed = if ids_only {
        let ids = PushContent::RequestId { pair_id: request.pair_id, request_id: request.request_id };
        seal(&t.target.push_key, &ids).map(|bytes| (bytes, false))
    } else {
        seal_for_push(&t.target.push_key, request).map(|s| (s.bytes, s.carries_request))
    };
    match sealed {
        Ok((bytes, carried)) => Some((base64::engine::general_purpose::STANDARD.encode(bytes), carried)),
        Err(e) => {
            tracing::warn!(error = %e, "push: cannot seal to the registered push key");
            None
        }
    }
}

/// One push service request: its path, headers and JSON body.
struct Message {
    path: String,
    headers: Vec<(&'static str, String)>,
    body: serde_json::Value,
}

/// Placeholder alert text: the notification service extension replaces it with what the core
/// says after verifying the request (the push service sees only this).
const ALERT_TITLE: &str = "Sign request";
const ALERT_BODY: &str = "Open Sunstorm to review it.";

fn message(
    cfg: &PushConfig,
    t: &RoutedTarget,
    request: &PendingSignRequest,
    sealed: String,
    expires_at: u64,
    now: u64,
) -> Message {
    let collapse = request.request_id.to_string();
    match t.target.platform {
        PushPlatform::Apns => Message {
            path: wire::apns_path(&t.target.token),
            headers: vec![
                (wire::APNS_PUSH_TYPE, "alert".into()),
                (wire::APNS_PRIORITY, "10".into()),
                (wire::APNS_COLLAPSE_ID, collapse),
                (wire::APNS_EXPIRATION, expires_at.to_string()),
                (wire::APNS_TOPIC, cfg.apns_topic.clone()),
            ],
            body: serde_json::json!({
                "aps": {
                    "mutable-content": 1,
                    "alert": { "title": ALERT_TITLE, "body": ALERT_BODY },
                    "category": "SIGN_REQUEST",
                },
                SEALED_KEY: sealed,
            }),
        },
        // A data message: the app's messaging service verifies before anything is shown.
        PushPlatform::Fcm => Message {
            path: wire::fcm_path(&cfg.fcm_project),
            headers: Vec::new(),
            body: serde_json::json!({
                "message": {
                    "token": t.target.token,
                    "data": { SEALED_KEY: sealed },
                    "android": {
                        "priority": "high",
                        "ttl": format!("{}s", expires_at.saturating_sub(now).max(1)),
                        "collapse_key": collapse,
                    },
                }
            }),
        },
    }
}

/// The size the push service counts: APNs the JSON body, FCM the data's keys and values.
fn counted_size(platform: PushPlatform, body: &serde_json::Value) -> usize {
    match platform {
        PushPlatform::Apns => serde_json::to_vec(body).map(|b| b.len()).unwrap_or(usize::MAX),
        PushPlatform::Fcm => body
            .pointer("/message/data")
            .and_then(|d| d.as_object())
            .map(|d| d.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum())
            .unwrap_or(0),
    }
}

/// Pushes once, retrying what the push service asks to retry, within the deadline.
async fn deliver(
    state: &AppState,
    pusher: &Pusher,
    t: &RoutedTarget,
    request: &PendingSignRequest,
    expires_at: u64,
) -> Delivery {
    let cfg = &pusher.cfg;
    let deadline = tokio::time::Instant::now() + cfg.deadline;
    let mut ids_only = false;
    let mut backoff = cfg.first_backoff;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let Some((sealed, carried)) = sealed_text(t, request, ids_only) else { return Delivery::Failed };
        let msg = message(cfg, t, request, sealed, expires_at, state.now());
        if counted_size(t.target.platform, &msg.body) > MAX_PUSH_PAYLOAD && !ids_only {
            ids_only = true;
            attempt -= 1;
            continue;
        }
        let outcome = match send(pusher, &msg, deadline).await {
            Ok((status, retry_after, body)) => (classify(t.target.platform, status, &body), retry_after),
            Err(e) => {
                tracing::info!(attempt, error = %e, "push: gateway unreachable");
                (PushOutcome::Retry, None)
            }
        };
        match outcome {
            (PushOutcome::Delivered, _) => return Delivery::Delivered { carried_request: carried },
            (PushOutcome::Unregistered, _) => {
                match state.db().and_then(|db| logic::drop_unregistered(&db, &t.appliance, &t.app_key, &t.target.token))
                {
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e.message, "push: cannot drop the unregistered target"),
                }
                return Delivery::Unregistered;
            }
            (PushOutcome::TooLarge, _) if !ids_only => {
                tracing::info!(attempt, "push: payload too large; sending the ids only");
                ids_only = true;
            }
            (PushOutcome::TooLarge, _) => return Delivery::Failed,
            (PushOutcome::Refused(why), _) => {
                tracing::warn!(attempt, reason = %why, "push: refused by the push service");
                return Delivery::Failed;
            }
            (PushOutcome::Retry, retry_after) => {
                let wait = retry_after.map_or(backoff, |r| r.max(backoff));
                if attempt >= cfg.max_attempts || tokio::time::Instant::now() + wait >= deadline {
                    tracing::warn!(attempt, "push: giving up (attempts or deadline exhausted)");
                    return Delivery::Failed;
                }
                tracing::info!(attempt, wait_ms = wait.as_millis() as u64, "push: retrying after back-off");
                tokio::time::sleep(wait).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        if attempt >= cfg.max_attempts.saturating_add(1) {
            return Delivery::Failed;
        }
    }
}

/// Largest answer body read from the gateway.
const MAX_ANSWER: usize = 64 * 1024;

/// Sends one request; its status, `retry-after` and body.
async fn send(
    pusher: &Pusher,
    msg: &Message,
    deadline: tokio::time::Instant,
) -> Result<(u16, Option<Duration>, Vec<u8>), String> {
    let url = pusher.cfg.gateway_url.join(&msg.path).map_err(|e| e.to_string())?;
    let mut req = pusher.http.post(url).json(&msg.body);
    for (name, value) in &msg.headers {
        req = req.header(*name, value);
    }
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    let exchange = async {
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        let body = body.get(..MAX_ANSWER.min(body.len())).unwrap_or_default().to_vec();
        Ok((status, retry_after, body))
    };
    tokio::time::timeout(remaining.min(pusher.cfg.request_timeout), exchange)
        .await
        .map_err(|_| "no answer in time".to_string())?
}
