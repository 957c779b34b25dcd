//! The control API's messages: what clients send (each parsed strictly, with limits, into a
//! specific [`ApiError`]) and what the server answers. `docs/openapi/appliance-control.yaml`
//! describes the same shapes; the server and the Rust [`super::Client`] share these types.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::appliance::{Answer, Rule, RuleSpec, Screen, UserScript, MAX_RULE_DELAY_MS};

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024;
/// Longest long-poll of `GET /screen/events` (`wait_ms`).
pub const MAX_WAIT_MS: u64 = 10_000;
/// Most events one page returns (`limit`).
pub const MAX_PAGE: usize = 500;
/// Events a page returns when `limit` is absent.
pub const DEFAULT_PAGE: usize = 100;
/// Longest bonding window the API opens, in seconds.
pub const MAX_BONDING_SECS: u64 = 3600;
/// Largest injected one-way latency, in milliseconds.
pub const MAX_LATENCY_MS: u64 = 10_000;
/// Largest `times` of a rule.
pub const MAX_RULE_TIMES: u32 = 1_000_000;
/// Largest integer the API accepts anywhere (2^53 − 1, exact in every JSON parser).
pub const MAX_INT: u64 = (1 << 53) - 1;

/// Stable error codes. Client mistakes are 4xx; nothing a client sends yields a 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlErrorCode {
    /// The body is not JSON of the expected shape (syntax, a wrong type, an unknown or
    /// missing field).
    MalformedJson,
    /// A field is out of range or contradicts another.
    InvalidField,
    /// A query parameter is missing its value, out of range or unknown.
    InvalidQuery,
    /// A path parameter is not of the expected form.
    InvalidPath,
    /// No such endpoint.
    NotFound,
    /// The endpoint exists but not for this method.
    MethodNotAllowed,
    /// The body is larger than [`MAX_BODY`].
    PayloadTooLarge,
    /// The `Host` header names something other than a loopback address (DNS rebinding).
    ForbiddenHost,
    /// Nothing is on the appliance's screen.
    NoScreen,
    /// No screen with that id or request id is waiting.
    UnknownScreen,
    /// No rule with that id.
    UnknownRule,
    /// The rule limit is reached.
    TooManyRules,
    /// No bonded phone has that app key (never bonded, or already forgotten).
    UnknownPhone,
    /// The server failed (a bug).
    Internal,
}

impl ControlErrorCode {
    /// The HTTP status that carries this code.
    pub fn http_status(self) -> u16 {
        match self {
            ControlErrorCode::MalformedJson
            | ControlErrorCode::InvalidField
            | ControlErrorCode::InvalidQuery
            | ControlErrorCode::InvalidPath => 400,
            ControlErrorCode::ForbiddenHost => 403,
            ControlErrorCode::NotFound
            | ControlErrorCode::UnknownScreen
            | ControlErrorCode::UnknownRule
            | ControlErrorCode::UnknownPhone => 404,
            ControlErrorCode::MethodNotAllowed => 405,
            ControlErrorCode::NoScreen | ControlErrorCode::TooManyRules => 409,
            ControlErrorCode::PayloadTooLarge => 413,
            ControlErrorCode::Internal => 500,
        }
    }
}

/// A refused request: a code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    /// What went wrong.
    pub code: ControlErrorCode,
    /// A sentence for people.
    pub message: String,
}

impl ApiError {
    /// An error with this code and sentence.
    pub fn new(code: ControlErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// An [`ControlErrorCode::InvalidField`].
    pub fn field(message: impl Into<String>) -> Self {
        Self::new(ControlErrorCode::InvalidField, message)
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// See [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// Stable code.
    pub code: ControlErrorCode,
    /// A sentence.
    pub message: String,
}

/// Parses a JSON body strictly; an empty body is `{}` for endpoints whose fields are all
/// optional (`allow_empty`).
pub fn parse_body<T: DeserializeOwned>(body: &[u8], allow_empty: bool) -> Result<T, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::new(
            ControlErrorCode::PayloadTooLarge,
            format!("the body is larger than {MAX_BODY} bytes"),
        ));
    }
    let body: &[u8] = if allow_empty && body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    let bad = |m: String| ApiError::new(ControlErrorCode::MalformedJson, m);
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))?;
    // serde would read a struct from an array too; no request of this API has an array
    // anywhere, so any array is refused (nesting is bounded by serde_json's recursion limit).
    fn has_array(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Array(_) => true,
            serde_json::Value::Object(m) => m.values().any(has_array),
            _ => false,
        }
    }
    if !v.is_object() {
        return Err(bad("the body must be a JSON object".into()));
    }
    if has_array(&v) {
        return Err(bad("no field of this API is an array".into()));
    }
    serde_json::from_value(v).map_err(|e| bad(format!("invalid JSON body: {e}")))
}

fn check_int(name: &str, v: u64, min: u64, max: u64) -> Result<(), ApiError> {
    if v < min || v > max {
        return Err(ApiError::field(format!("{name} must be within {min}..={max}")));
    }
    Ok(())
}

/// `POST /screen/approve`, `POST /screen/reject`: which screen (the current one when both
/// are absent; when both are given they must name the same screen).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressRequest {
    /// The screen's id.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub screen_id: Option<u64>,
    /// The request id on the screen (hyphenated form).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "hyphenated_uuid")]
    pub request_id: Option<Uuid>,
}

/// An optional field that, when present, must hold a value: `null` is refused like any
/// other wrong type (the document lists no request field as nullable).
pub fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A UUID in its hyphenated form only (`8-4-4-4-12` hex digits), as the document says.
fn hyphenated_uuid<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
    let s = String::deserialize(d)?;
    if s.len() != 36 {
        return Err(serde::de::Error::custom("request_id must be a hyphenated UUID"));
    }
    Uuid::parse_str(&s).map(Some).map_err(serde::de::Error::custom)
}

impl PressRequest {
    /// Parses and checks a press body.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let p: Self = parse_body(body, true)?;
        if let Some(id) = p.screen_id {
            check_int("screen_id", id, 0, MAX_INT)?;
        }
        Ok(p)
    }
}

/// What a press did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pressed {
    /// The screen answered.
    pub screen: Screen,
    /// `approved` or `rejected`.
    pub answer: Answer,
}

/// `GET /screen`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenNow {
    /// The screen shown (the oldest request waiting), or `null` when idle.
    pub screen: Option<Screen>,
    /// Every screen waiting for an answer, oldest (the one shown) first.
    pub waiting: Vec<Screen>,
}

/// `GET /screen/events` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Events after this `seq` (0: from the start of the log).
    pub after: Option<u64>,
    /// Wait up to this long for an event when there is none yet (0..=10000 ms).
    pub wait_ms: Option<u64>,
    /// Most events returned (1..=500, default 100).
    pub limit: Option<usize>,
}

impl EventsQuery {
    /// Checks the ranges; returns `(after, wait_ms, limit)`.
    pub fn checked(&self) -> Result<(u64, u64, usize), ApiError> {
        let q = |m: String| ApiError::new(ControlErrorCode::InvalidQuery, m);
        let after = self.after.unwrap_or(0);
        if after > MAX_INT {
            return Err(q(format!("after must be within 0..={MAX_INT}")));
        }
        let wait = self.wait_ms.unwrap_or(0);
        if wait > MAX_WAIT_MS {
            return Err(q(format!("wait_ms must be within 0..={MAX_WAIT_MS}")));
        }
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(q(format!("limit must be within 1..={MAX_PAGE}")));
        }
        Ok((after, wait, limit))
    }
}

/// Parses a rule body and checks its limits.
pub fn parse_rule(body: &[u8]) -> Result<RuleSpec, ApiError> {
    let spec: RuleSpec = parse_body(body, false)?;
    if let Some(t) = spec.times {
        check_int("times", u64::from(t), 1, u64::from(MAX_RULE_TIMES))?;
    }
    check_int("after_ms", spec.after_ms, 0, MAX_RULE_DELAY_MS)?;
    spec.validate().map_err(ApiError::field)?;
    Ok(spec)
}

/// `GET /rules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleList {
    /// In the order they are tried.
    pub rules: Vec<Rule>,
}

/// `DELETE /rules`, `DELETE /rules/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// How many rules were removed.
    pub removed: usize,
}

/// The simulated user's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserMode {
    /// Approves at once.
    Approve,
    /// Rejects at once.
    Reject,
    /// Approves after `delay_ms`.
    Delay,
    /// Asks on the simulator's terminal (set by `--user prompt` only).
    Prompt,
    /// Waits for the control API.
    Api,
}

/// `GET /user`, and the body of `PUT /user` (`prompt` cannot be set through the API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSetting {
    /// The mode.
    pub mode: UserMode,
    /// The delay of `delay` (required with it, refused with any other mode).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub delay_ms: Option<u64>,
}

impl UserSetting {
    /// What `user` looks like through the API.
    pub fn of(user: &UserScript) -> Self {
        let (mode, delay_ms) = match user {
            UserScript::Approve => (UserMode::Approve, None),
            UserScript::Reject => (UserMode::Reject, None),
            UserScript::Delay(ms) => (UserMode::Delay, Some(*ms)),
            UserScript::Prompt => (UserMode::Prompt, None),
            UserScript::Api => (UserMode::Api, None),
        };
        Self { mode, delay_ms }
    }

    /// Parses a `PUT /user` body into the script it sets.
    pub fn parse(body: &[u8]) -> Result<UserScript, ApiError> {
        let s: Self = parse_body(body, false)?;
        match (s.mode, s.delay_ms) {
            (UserMode::Delay, Some(ms)) => {
                check_int("delay_ms", ms, 0, MAX_RULE_DELAY_MS)?;
                Ok(UserScript::Delay(ms))
            }
            (UserMode::Delay, None) => Err(ApiError::field("mode delay needs delay_ms")),
            (_, Some(_)) => Err(ApiError::field("delay_ms goes only with mode delay")),
            (UserMode::Approve, None) => Ok(UserScript::Approve),
            (UserMode::Reject, None) => Ok(UserScript::Reject),
            (UserMode::Api, None) => Ok(UserScript::Api),
            (UserMode::Prompt, None) => {
                Err(ApiError::field("prompt needs the simulator's terminal; start it with --user prompt"))
            }
        }
    }
}

/// `PUT /faults`: the run-time fault settings. An absent field falls back to the value the
/// simulator was started with; `refuse_connections` defaults to `false`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    /// Probability (0..=1) that a PDU is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub drop: Option<f64>,
    /// Probability that a PDU is delivered twice.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub duplicate: Option<f64>,
    /// Probability that a PDU is held back behind the next.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub reorder: Option<f64>,
    /// One-way latency per PDU, ms (0..=10000).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub latency_ms: Option<u64>,
    /// Refuse new connections.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub refuse_connections: Option<bool>,
}

impl FaultSettings {
    /// Parses and checks a `PUT /faults` body.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let f: Self = parse_body(body, true)?;
        for (name, p) in [("drop", f.drop), ("duplicate", f.duplicate), ("reorder", f.reorder)] {
            if let Some(p) = p {
                if !(0.0..=1.0).contains(&p) {
                    return Err(ApiError::field(format!("{name} must be a probability within 0..=1")));
                }
            }
        }
        if let Some(l) = f.latency_ms {
            check_int("latency_ms", l, 0, MAX_LATENCY_MS)?;
        }
        Ok(f)
    }
}

/// Probabilities and latency of the link.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkFaults {
    /// Drop probability.
    pub drop: f64,
    /// Duplicate probability.
    pub duplicate: f64,
    /// Reorder probability.
    pub reorder: f64,
    /// One-way latency, ms.
    pub latency_ms: u64,
}

/// `GET /faults`, `PUT /faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultsView {
    /// What PDUs see now.
    pub effective: LinkFaults,
    /// What the simulator was started with.
    pub configured: LinkFaults,
    /// New connections are refused.
    pub refuse_connections: bool,
    /// Connections open now.
    pub open_connections: usize,
}

/// `POST /faults/disconnect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnected {
    /// Connections that were open and are now closed.
    pub disconnected: usize,
}

/// `POST /bonding/open`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BondingOpen {
    /// How long it stays open, seconds (1..=3600; the simulator's `--bonding-window` when
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub secs: Option<u64>,
}

impl BondingOpen {
    /// Parses and checks the body.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let b: Self = parse_body(body, true)?;
        if let Some(s) = b.secs {
            check_int("secs", s, 1, MAX_BONDING_SECS)?;
        }
        Ok(b)
    }
}

/// `GET /bonding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondingView {
    /// Bonding mode is open.
    pub open: bool,
    /// Seconds it stays open (`null` when closed).
    pub remaining_secs: Option<u64>,
    /// The PIN the appliance shows.
    pub pin: String,
    /// Wrong PINs counted against this PIN.
    pub pin_failures: u32,
    /// Seconds before a bonding attempt is accepted again after wrong PINs (`null`: now).
    pub retry_after_secs: Option<u64>,
    /// Lockouts since the last bond.
    pub lockouts: u32,
}

/// A bonded phone in `GET /state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneView {
    /// The name it gave (sanitised).
    pub name: String,
    /// Its X25519 channel key, hex.
    pub channel_static: String,
    /// Its Ed25519 app key, hex.
    pub app_key: String,
    /// Short fingerprint of the channel key.
    pub fingerprint: String,
    /// Unix seconds.
    pub bonded_at: u64,
    /// Fingerprint of its enrolled approval key (`null`: none enrolled).
    pub approval_key: Option<String>,
}

/// A forgotten phone in `GET /phones`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgottenView {
    /// The name it gave (sanitised).
    pub name: String,
    /// Its Ed25519 app key, hex.
    pub app_key: String,
    /// Short fingerprint of its channel key.
    pub fingerprint: String,
    /// The app key of the phone that asked, hex; `null` when forgotten on the appliance.
    pub forgotten_by: Option<String>,
    /// Unix seconds.
    pub forgotten_at: u64,
}

/// `GET /phones`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhonesView {
    /// Bonded phones, in bonding order.
    pub phones: Vec<PhoneView>,
    /// Forgotten phones the appliance still recognises (to refuse them), oldest first.
    pub forgotten: Vec<ForgottenView>,
}

/// `POST /phones/{app_key}/forget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneForgottenView {
    /// The forgotten phone's app key, hex.
    pub app_key: String,
    /// Unix seconds.
    pub forgotten_at: u64,
    /// The appliance's signed `PhoneForgotten` statement (CBOR body and Ed25519
    /// signature, base64), which any bonded phone can relay to octane.
    pub statement: sunstorm_core::envelope::SignedEnvelope,
}

/// Parses an app key in a path: 64 hex digits.
pub fn parse_app_key(s: &str) -> Result<sunstorm_core::bytes::Key32, ApiError> {
    if s.len() != 64 {
        return Err(ApiError::new(ControlErrorCode::InvalidPath, "the app key must be 64 hex digits"));
    }
    sunstorm_core::bytes::Key32::from_hex(s)
        .ok_or_else(|| ApiError::new(ControlErrorCode::InvalidPath, "the app key must be 64 hex digits"))
}

/// A pair in `GET /state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairView {
    /// The pair id.
    pub pair_id: Uuid,
    /// Octane's session it came from.
    pub session_id: String,
    /// The SP's id.
    pub sp_id: String,
    /// The SP's name (sanitised).
    pub sp_name: String,
    /// The SP key pinned, hex.
    pub sp_public_key: String,
    /// Bound accounts (CAIP-10).
    pub accounts: Vec<String>,
    /// Unix seconds.
    pub approved_at: u64,
    /// When a proof of the phone's approval is needed: `always`, `above` or `never`.
    pub approval_policy: String,
    /// With `above`, the threshold in the chain's smallest unit (decimal).
    pub approval_above: Option<String>,
}

/// Signatures made for one request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureCount {
    /// The sign request id.
    pub request_id: Uuid,
    /// Signatures made for it (never above 1).
    pub count: u32,
}

/// `GET /state`: what a test asserts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateView {
    /// The appliance's Ed25519 identity, hex.
    pub identity: String,
    /// Its name.
    pub name: String,
    /// Its wallets (CAIP-10).
    pub wallets: Vec<String>,
    /// Bonded phones.
    pub bonded_phones: Vec<PhoneView>,
    /// Active pairs.
    pub pairs: Vec<PairView>,
    /// Revoked pair ids.
    pub revoked_pairs: Vec<Uuid>,
    /// Signatures per request id.
    pub signatures: Vec<SignatureCount>,
    /// Signatures in total.
    pub total_signatures: u64,
    /// State-changing requests answered (their first answer is kept).
    pub answered_requests: usize,
}

/// `POST /reset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetDone {
    /// The `seq` of the `reset` event (read the log after it).
    pub seq: u64,
}
