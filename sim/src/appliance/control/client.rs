//! A small Rust client of the control API, for tests: every call has a timeout and every
//! failure is a [`ClientError`] (the server's own error code when it answered one).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use super::api::{
    BondingOpen, BondingView, ControlErrorCode, Disconnected, ErrorBody, FaultSettings, FaultsView, PhoneForgottenView,
    PhonesView, PressRequest, Pressed, Removed, ResetDone, RuleList, ScreenNow, StateView, UserSetting, MAX_WAIT_MS,
};
use crate::appliance::{EventPage, Rule, RuleSpec, Screen};

/// Why a control call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not an `http://` URL.
    #[error("bad control URL: {0}")]
    BadUrl(String),
    /// No answer (connection refused, reset, or the timeout passed).
    #[error("control API unreachable: {0}")]
    Unreachable(String),
    /// The server refused the request.
    #[error("control API refused ({status} {code:?}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's code.
        code: ControlErrorCode,
        /// The server's sentence.
        message: String,
    },
    /// The answer was not what the API documents.
    #[error("unexpected control API answer: {0}")]
    Unexpected(String),
    /// [`Client::wait_for_screen`] saw no matching screen in time.
    #[error("no matching screen within {0:?}")]
    NoScreen(Duration),
}

impl ClientError {
    /// The server's error code, when it answered one.
    pub fn code(&self) -> Option<ControlErrorCode> {
        match self {
            ClientError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A client of one simulator's control API.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
}

type R<T> = Result<T, ClientError>;

impl Client {
    /// A client of the API at `base_url` (`http://127.0.0.1:PORT`, as the simulator prints).
    pub fn new(base_url: &str) -> R<Self> {
        let base = Url::parse(base_url).map_err(|e| ClientError::BadUrl(e.to_string()))?;
        if base.scheme() != "http" {
            return Err(ClientError::BadUrl(format!("{base_url}: the control API speaks plain http on loopback")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            // Longer than the longest long-poll.
            .timeout(Duration::from_millis(MAX_WAIT_MS + 5_000))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        Ok(Self { base, http })
    }

    fn url(&self, path: &str) -> R<Url> {
        self.base.join(path).map_err(|e| ClientError::BadUrl(e.to_string()))
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> R<T> {
        let resp = req.send().await.map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| ClientError::Unreachable(e.to_string()))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected(e.to_string()));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => Err(ClientError::Refused { status, code: b.error.code, message: b.error.message }),
            Err(_) => Err(ClientError::Unexpected(format!("HTTP {status} without an error body"))),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> R<T> {
        self.send(self.http.get(self.url(path)?)).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> R<T> {
        self.send(self.http.post(self.url(path)?).json(body)).await
    }

    async fn put<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> R<T> {
        self.send(self.http.put(self.url(path)?).json(body)).await
    }

    /// The screen shown now.
    pub async fn screen(&self) -> R<ScreenNow> {
        self.get("/screen").await
    }

    /// Log events after `after`, waiting up to `wait_ms` (≤ 10000) when there is none yet.
    pub async fn events(&self, after: u64, wait_ms: u64) -> R<EventPage> {
        self.get(&format!("/screen/events?after={after}&wait_ms={}", wait_ms.min(MAX_WAIT_MS))).await
    }

    /// Waits until a screen for which `pred` holds is shown (current or waiting behind),
    /// at most `timeout`.
    pub async fn wait_for_screen(&self, pred: impl Fn(&Screen) -> bool, timeout: Duration) -> R<Screen> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut after = 0;
        loop {
            if let Some(s) = self.screen().await?.waiting.into_iter().find(|s| pred(s)) {
                return Ok(s);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(ClientError::NoScreen(timeout));
            }
            // Sleep until something is logged (a screen shown), at most a second.
            let wait = u64::try_from(left.as_millis()).unwrap_or(MAX_WAIT_MS).min(1_000);
            after = self.events(after, wait).await?.next;
        }
    }

    /// Presses approve on the screen `which` names (the current one by default).
    pub async fn approve(&self, which: &PressRequest) -> R<Pressed> {
        self.post("/screen/approve", which).await
    }

    /// Presses reject on the screen `which` names (the current one by default).
    pub async fn reject(&self, which: &PressRequest) -> R<Pressed> {
        self.post("/screen/reject", which).await
    }

    /// Adds an automation rule.
    pub async fn add_rule(&self, spec: &RuleSpec) -> R<Rule> {
        self.post("/rules", spec).await
    }

    /// The rules in force.
    pub async fn rules(&self) -> R<Vec<Rule>> {
        self.get::<RuleList>("/rules").await.map(|l| l.rules)
    }

    /// Removes rule `id`.
    pub async fn remove_rule(&self, id: u64) -> R<()> {
        self.send::<Removed>(self.http.delete(self.url(&format!("/rules/{id}"))?)).await.map(|_| ())
    }

    /// Removes every rule; returns how many there were.
    pub async fn clear_rules(&self) -> R<usize> {
        self.send::<Removed>(self.http.delete(self.url("/rules")?)).await.map(|r| r.removed)
    }

    /// The simulated user's mode.
    pub async fn user(&self) -> R<UserSetting> {
        self.get("/user").await
    }

    /// Sets the simulated user's mode.
    pub async fn set_user(&self, user: &UserSetting) -> R<UserSetting> {
        self.put("/user", user).await
    }

    /// The link faults now.
    pub async fn faults(&self) -> R<FaultsView> {
        self.get("/faults").await
    }

    /// Replaces the run-time link faults.
    pub async fn set_faults(&self, f: &FaultSettings) -> R<FaultsView> {
        self.put("/faults", f).await
    }

    /// Disconnects every open connection now; returns how many.
    pub async fn disconnect(&self) -> R<usize> {
        self.post::<_, Disconnected>("/faults/disconnect", &serde_json::json!({})).await.map(|d| d.disconnected)
    }

    /// Bonding mode and the PIN shown.
    pub async fn bonding(&self) -> R<BondingView> {
        self.get("/bonding").await
    }

    /// Opens bonding mode for `secs` (the simulator's window when `None`).
    pub async fn open_bonding(&self, secs: Option<u64>) -> R<BondingView> {
        self.post("/bonding/open", &BondingOpen { secs }).await
    }

    /// Closes bonding mode.
    pub async fn close_bonding(&self) -> R<BondingView> {
        self.post("/bonding/close", &serde_json::json!({})).await
    }

    /// Bonded phones and the phones forgotten.
    pub async fn phones(&self) -> R<PhonesView> {
        self.get("/phones").await
    }

    /// Forgets the bonded phone with this app key (hex) from the appliance's side.
    pub async fn forget_phone(&self, app_key_hex: &str) -> R<PhoneForgottenView> {
        self.post(&format!("/phones/{app_key_hex}/forget"), &serde_json::json!({})).await
    }

    /// Bonded phones, pairs, revocations and signature counts.
    pub async fn state(&self) -> R<StateView> {
        self.get("/state").await
    }

    /// Resets the simulator (same keys, nothing remembered).
    pub async fn reset(&self) -> R<ResetDone> {
        self.post("/reset", &serde_json::json!({})).await
    }
}
