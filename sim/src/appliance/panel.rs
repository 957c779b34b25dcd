//! The appliance's screen and buttons: what it shows for each request it verified, the
//! answer (a press through the control API, an automation rule, or the simulated user),
//! and a numbered log of what happened (screens, answers, bonding, signatures).
//!
//! Screens are computed here from what the appliance itself verified — the payload of the
//! countersigned request, decoded by `sunstorm_core::decode`, the SP's name from the pair
//! record pinned at pair time — never from anything the phone showed. Every string comes
//! out of the core's decoder or goes through `sunstorm_core::display::sanitize`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sunstorm_core::caip::AccountId;
use sunstorm_core::decode::{self, DisplayDigest};
use sunstorm_core::display::{sanitize, TextKind};
use sunstorm_core::model::{PairSessionDetails, SignRequest};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use super::control::api::present;
use super::lock;

/// Events kept in the log; older ones are dropped (a reader sees `truncated`).
pub const MAX_EVENTS: usize = 1024;
/// Automation rules kept at once.
pub const MAX_RULES: usize = 64;
/// Longest `after_ms` of a rule (10 minutes).
pub const MAX_RULE_DELAY_MS: u64 = 600_000;
/// Longest text a rule may match on.
pub const MAX_MATCH_CHARS: usize = 512;

/// What a screen asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScreenKind {
    /// Approve a pair with a service.
    Pair,
    /// Sign a payload.
    Sign,
    /// Forget a bonded phone (asked by another bonded phone).
    ForgetPhone,
    /// Enrol a new approval key for the phone that asks (after its old one was invalidated).
    EnrolApprovalKey,
    /// Change a pair's approval policy.
    SetApprovalPolicy,
}

/// One labelled row of a sign screen (from the core's decoder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenField {
    /// Stable key (`to`, `value`, `amount`, `message.<path>`…).
    pub key: String,
    /// English label.
    pub label: String,
    /// The value as shown.
    pub value: String,
}

/// A warning on a screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenWarning {
    /// Stable snake_case code.
    pub code: String,
    /// The sentence shown.
    pub message: String,
}

/// What the appliance shows for one request waiting for its user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screen {
    /// Screen number (unique for the simulator's life, never reused after a reset).
    pub id: u64,
    /// Pair or sign.
    pub kind: ScreenKind,
    /// The request id on the link (for a sign: the sign request's id).
    pub request_id: Uuid,
    /// The service's name (sign: pinned in the pair record; pair: octane's session;
    /// empty for forget_phone).
    pub sp_name: String,
    /// One line saying what this is ("Send ETH", "Token transfer", "Pair with Demo SP").
    pub action: String,
    /// CAIP-2 chain of a sign request (`null` for a pair).
    pub chain: Option<String>,
    /// Human chain name of a sign request.
    pub chain_name: Option<String>,
    /// Accounts involved (CAIP-10): the signing account, or the wallets to bind.
    pub accounts: Vec<String>,
    /// Amounts shown (native value, token amounts, allowances), as displayed.
    pub amounts: Vec<String>,
    /// Addresses receiving value or spending rights (the decoder's facts).
    pub recipients: Vec<String>,
    /// Labelled rows in display order.
    pub fields: Vec<ScreenField>,
    /// Warnings, most serious first.
    pub warnings: Vec<ScreenWarning>,
    /// Part of the payload is not understood.
    pub blind: bool,
    /// SHA-256 of the payload, hex (sign only).
    pub payload_hash: Option<String>,
    /// Fingerprint of the display digest the phone sent with a sign request
    /// ([`DisplayDigest::fingerprint`], e.g. `3F9A-12C4`): the person compares it with the
    /// one on the phone's review screen. `null` for other screens and from older phones.
    pub fingerprint: Option<String>,
    /// The display digest in full (64 hex digits), as the appliance's receipt names it;
    /// `null` when the phone sent none.
    #[serde(default)]
    pub display_digest: Option<String>,
    /// The lines a device would show, top to bottom.
    pub text: Vec<String>,
    /// Unix seconds when it was shown.
    pub shown_at: u64,
    /// Unix seconds when the request expires (the screen is then answered `expired`).
    pub expires_at: u64,
}

impl Screen {
    /// The screen for a verified sign request of a pair with service `sp_name`, with the
    /// fingerprint of the phone's display digest when it sent one.
    pub(crate) fn sign(req: &SignRequest, sp_name: &str, display_digest: Option<DisplayDigest>) -> Self {
        let sp_name = sanitize(sp_name, TextKind::Name).text;
        let (action, fields, warnings, blind, hash, amounts, recipients) =
            match decode::decode(req.kind, &req.payload, &req.account) {
                Ok(d) => {
                    let amounts = d.fields.iter().filter(|f| is_amount_key(&f.key)).map(|f| f.value.clone()).collect();
                    let fields: Vec<ScreenField> = d
                        .fields
                        .iter()
                        .map(|f| ScreenField { key: f.key.clone(), label: f.label.clone(), value: f.value.clone() })
                        .collect();
                    let warnings = d
                        .warnings
                        .iter()
                        .map(|w| ScreenWarning { code: w.code().to_string(), message: w.message() })
                        .collect();
                    (d.title, fields, warnings, d.blind, Some(d.payload_hash), amounts, d.facts.recipients)
                }
                // Unreachable for a verified request (decode fails exactly when
                // signing_target does), but never show a blank screen.
                Err(e) => (
                    "Unreadable payload".to_string(),
                    Vec::new(),
                    vec![ScreenWarning { code: e.code().to_string(), message: e.to_string() }],
                    true,
                    None,
                    Vec::new(),
                    Vec::new(),
                ),
            };
        let mut text = vec![format!("{sp_name} asks you to sign"), action.clone()];
        text.extend(fields.iter().map(|f| format!("{}: {}", f.label, f.value)));
        text.extend(warnings.iter().map(|w| format!("Warning: {}", w.message)));
        text.push(format!("Account: {}", req.account));
        let fingerprint = display_digest.map(|d| d.fingerprint());
        if let Some(fp) = &fingerprint {
            text.push(format!("Phone screen: {fp}"));
        }
        Screen {
            id: 0,
            kind: ScreenKind::Sign,
            request_id: req.request_id,
            sp_name,
            action,
            chain: Some(req.chain.to_string()),
            chain_name: Some(req.chain.display_name()),
            accounts: vec![req.account.to_string()],
            amounts,
            recipients,
            fields,
            warnings,
            blind,
            payload_hash: hash,
            fingerprint,
            display_digest: display_digest.map(|d| d.hex()),
            text,
            shown_at: 0,
            expires_at: req.expires_at,
        }
    }

    /// The screen for a verified pair session (octane's signature checked).
    pub(crate) fn pair(request_id: Uuid, s: &PairSessionDetails, code: &str, bindings: &[AccountId]) -> Self {
        let sp_name = sanitize(&s.sp.name, TextKind::Name).text;
        let user_ref = sanitize(&s.sp_user_ref, TextKind::UserRef).text;
        let accounts: Vec<String> = bindings.iter().map(|a| a.to_string()).collect();
        let fields = vec![
            ScreenField { key: "sp_user_ref".into(), label: "Your account there".into(), value: user_ref },
            ScreenField { key: "validation_code".into(), label: "Code".into(), value: code.to_string() },
            ScreenField { key: "sp_key".into(), label: "Service key".into(), value: s.sp.public_key.fingerprint() },
            ScreenField { key: "wallets".into(), label: "Wallets".into(), value: accounts.join(", ") },
        ];
        let action = format!("Pair with {sp_name}");
        let mut text = vec![action.clone()];
        text.extend(fields.iter().map(|f| format!("{}: {}", f.label, f.value)));
        Screen {
            id: 0,
            kind: ScreenKind::Pair,
            request_id,
            sp_name,
            action,
            chain: None,
            chain_name: None,
            accounts,
            amounts: Vec::new(),
            recipients: Vec::new(),
            fields,
            warnings: Vec::new(),
            blind: false,
            payload_hash: None,
            fingerprint: None,
            display_digest: None,
            text,
            shown_at: 0,
            expires_at: s.expires_at,
        }
    }

    /// The screen asking whether to forget the phone `name` (app key `app_key`, hex), at
    /// the request of the phone `by`; it waits at most `ttl_secs`.
    pub(crate) fn forget_phone(request_id: Uuid, name: &str, app_key: &str, by: &str, now: u64, ttl_secs: u64) -> Self {
        let name = sanitize(name, TextKind::Name).text;
        let by = sanitize(by, TextKind::Name).text;
        let fields = vec![
            ScreenField { key: "phone".into(), label: "Phone".into(), value: name.clone() },
            ScreenField { key: "app_key".into(), label: "Phone key".into(), value: app_key.to_string() },
            ScreenField { key: "asked_by".into(), label: "Asked by".into(), value: by },
        ];
        Self::confirm(ScreenKind::ForgetPhone, request_id, format!("Forget phone {name}"), fields, now, ttl_secs)
    }

    /// The screen for a phone enrolling a new approval key (`fingerprint`: the key's).
    pub(crate) fn enrol_approval_key(request_id: Uuid, phone: &str, fingerprint: &str, now: u64, ttl: u64) -> Self {
        let phone = sanitize(phone, TextKind::Name).text;
        let fields = vec![
            ScreenField { key: "phone".into(), label: "Phone".into(), value: phone.clone() },
            ScreenField { key: "approval_key".into(), label: "Approval key".into(), value: fingerprint.to_string() },
        ];
        let action = format!("New approval key for phone {phone}");
        Self::confirm(ScreenKind::EnrolApprovalKey, request_id, action, fields, now, ttl)
    }

    /// The screen for changing the approval policy of the pair with service `sp_name`.
    pub(crate) fn set_approval_policy(
        request_id: Uuid,
        sp_name: &str,
        from: &str,
        to: &str,
        now: u64,
        ttl: u64,
    ) -> Self {
        let sp_name = sanitize(sp_name, TextKind::Name).text;
        let fields = vec![
            ScreenField { key: "service".into(), label: "Service".into(), value: sp_name.clone() },
            ScreenField { key: "from".into(), label: "Phone approval now".into(), value: from.to_string() },
            ScreenField { key: "to".into(), label: "Phone approval from now on".into(), value: to.to_string() },
        ];
        let action = format!("Change phone approval for {sp_name}");
        let mut s = Self::confirm(ScreenKind::SetApprovalPolicy, request_id, action, fields, now, ttl);
        s.sp_name = sp_name;
        s
    }

    /// A confirmation screen of `kind` with a title and rows (no chain, amounts or digest).
    fn confirm(
        kind: ScreenKind,
        request_id: Uuid,
        action: String,
        fields: Vec<ScreenField>,
        now: u64,
        ttl: u64,
    ) -> Self {
        let mut text = vec![action.clone()];
        text.extend(fields.iter().map(|f| format!("{}: {}", f.label, f.value)));
        Screen {
            id: 0,
            kind,
            request_id,
            sp_name: String::new(),
            action,
            chain: None,
            chain_name: None,
            accounts: Vec::new(),
            amounts: Vec::new(),
            recipients: Vec::new(),
            fields,
            warnings: Vec::new(),
            blind: false,
            payload_hash: None,
            fingerprint: None,
            display_digest: None,
            text,
            shown_at: 0,
            expires_at: now.saturating_add(ttl),
        }
    }

    /// Every line of text on the screen.
    fn all_text(&self) -> impl Iterator<Item = &str> {
        self.text.iter().map(String::as_str)
    }
}

fn is_amount_key(key: &str) -> bool {
    matches!(key, "value" | "amount" | "allowance") || key.ends_with(".amount")
}

/// How a screen was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The approve button.
    Approved,
    /// The reject button.
    Rejected,
    /// The phone cancelled the request.
    Cancelled,
    /// The request expired on screen.
    Expired,
}

/// Who answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    /// A press through the control API.
    Api,
    /// An automation rule.
    Rule,
    /// The simulated user of `--user` / [`super::UserScript`].
    UserScript,
    /// The phone (a `Cancel`).
    Phone,
    /// The appliance itself (expiry, reset).
    Appliance,
}

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// The simulator started (always the first event).
    Started,
    /// A request was put on screen.
    ScreenShown,
    /// A screen was answered (see `answer` and `by`).
    ScreenAnswered,
    /// Bonding mode opened.
    BondingOpened,
    /// Bonding mode closed.
    BondingClosed,
    /// A new PIN is shown.
    PinChanged,
    /// A phone bonded.
    PhoneBonded,
    /// A phone was forgotten (from another phone or through the control API).
    PhoneForgotten,
    /// A pair was approved and attested.
    PairApproved,
    /// A pair was revoked.
    PairRevoked,
    /// A signature was made.
    SignatureMade,
    /// A sign request was refused for its approval proof (missing, invalid, no key).
    ApprovalRefused,
    /// A phone enrolled a new approval key.
    ApprovalKeyEnrolled,
    /// A pair's approval policy changed.
    ApprovalPolicyChanged,
    /// Link faults changed.
    FaultsChanged,
    /// The simulator was reset.
    Reset,
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log (1, 2, …; never reused, even after a reset).
    pub seq: u64,
    /// Unix milliseconds.
    pub at_ms: u64,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The screen (`screen_shown`, `screen_answered`).
    pub screen: Option<Screen>,
    /// The answer (`screen_answered`).
    pub answer: Option<Answer>,
    /// Who answered (`screen_answered`).
    pub by: Option<AnsweredBy>,
    /// The request id (`screen_*`, `signature_made`, `pair_approved`).
    pub request_id: Option<Uuid>,
    /// The pair (`pair_approved`, `pair_revoked`, `signature_made`).
    pub pair_id: Option<Uuid>,
    /// The PIN now on screen (`pin_changed`, `bonding_opened`).
    pub pin: Option<String>,
    /// A sentence for people.
    pub detail: Option<String>,
}

impl Event {
    pub(crate) fn new(kind: EventType) -> Self {
        Self {
            seq: 0,
            at_ms: 0,
            kind,
            screen: None,
            answer: None,
            by: None,
            request_id: None,
            pair_id: None,
            pin: None,
            detail: None,
        }
    }
    pub(crate) fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
    pub(crate) fn request(mut self, id: Uuid) -> Self {
        self.request_id = Some(id);
        self
    }
    pub(crate) fn pair(mut self, id: Uuid) -> Self {
        self.pair_id = Some(id);
        self
    }
    pub(crate) fn pin(mut self, pin: &str) -> Self {
        self.pin = Some(pin.to_string());
        self
    }
}

/// What a rule does to a screen it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Press approve (after `after_ms`).
    Approve,
    /// Press reject (after `after_ms`).
    Reject,
    /// Never answer: the screen stays until a press, a cancel or its expiry.
    Ignore,
}

/// Which screens a rule applies to. Every given condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMatch {
    /// Only screens of this kind.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub kind: Option<ScreenKind>,
    /// Only screens one of whose text lines contains this (case-sensitive).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub text_contains: Option<String>,
    /// Only screens of this service name (exact).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub sp_name: Option<String>,
    /// Only screens for this CAIP-2 chain.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub chain: Option<String>,
    /// Only screens involving this CAIP-10 account.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub account: Option<String>,
}

impl RuleMatch {
    /// Whether `s` matches.
    pub fn matches(&self, s: &Screen) -> bool {
        self.kind.is_none_or(|k| k == s.kind)
            && self.text_contains.as_deref().is_none_or(|t| s.all_text().any(|l| l.contains(t)))
            && self.sp_name.as_deref().is_none_or(|n| n == s.sp_name)
            && self.chain.as_deref().is_none_or(|c| s.chain.as_deref() == Some(c))
            && self.account.as_deref().is_none_or(|a| s.accounts.iter().any(|x| x == a))
    }
}

/// An automation rule as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Conditions (all screens when absent).
    #[serde(default, rename = "match")]
    pub matcher: RuleMatch,
    /// What to do.
    pub action: RuleAction,
    /// Wait this long first, in milliseconds (0..=600000).
    #[serde(default)]
    pub after_ms: u64,
    /// Apply to this many screens, then drop the rule (unlimited when absent).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub times: Option<u32>,
}

impl RuleSpec {
    /// A rule doing `action` at once to every screen.
    pub fn always(action: RuleAction) -> Self {
        Self { matcher: RuleMatch::default(), action, after_ms: 0, times: None }
    }
}

impl RuleSpec {
    /// Checks the limits; `Err` says which.
    pub fn validate(&self) -> Result<(), String> {
        if self.after_ms > MAX_RULE_DELAY_MS {
            return Err(format!("after_ms must be at most {MAX_RULE_DELAY_MS}"));
        }
        if self.times == Some(0) {
            return Err("times must be at least 1 (omit it for a rule without limit)".into());
        }
        let m = &self.matcher;
        for (name, v) in [
            ("match.text_contains", &m.text_contains),
            ("match.sp_name", &m.sp_name),
            ("match.chain", &m.chain),
            ("match.account", &m.account),
        ] {
            if let Some(v) = v {
                if v.is_empty() || v.chars().count() > MAX_MATCH_CHARS {
                    return Err(format!("{name} must be 1 to {MAX_MATCH_CHARS} characters"));
                }
            }
        }
        Ok(())
    }
}

/// A rule in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Its id (for `DELETE /rules/{id}`).
    pub id: u64,
    /// Conditions.
    #[serde(rename = "match")]
    pub matcher: RuleMatch,
    /// What it does.
    pub action: RuleAction,
    /// Delay before it answers, ms.
    pub after_ms: u64,
    /// Screens it still applies to (`null`: no limit).
    pub times_left: Option<u32>,
}

/// An automatic answer decided when a screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Auto {
    pub(crate) answer: Option<Answer>,
    pub(crate) after: Duration,
    pub(crate) rule: Option<u64>,
}

/// Why a press or rule change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PanelError {
    /// Nothing is on screen.
    #[error("nothing is on the appliance's screen")]
    NoScreen,
    /// No screen with that id or request id is waiting.
    #[error("no screen {0} is waiting for an answer")]
    UnknownScreen(String),
    /// No rule with that id.
    #[error("no rule {0}")]
    UnknownRule(u64),
    /// [`MAX_RULES`] rules already.
    #[error("at most {MAX_RULES} rules at once")]
    TooManyRules,
}

struct Pending {
    screen: Screen,
    tx: Option<oneshot::Sender<Answer>>,
}

struct PanelState {
    next_screen: u64,
    next_rule: u64,
    seq: u64,
    events: VecDeque<Event>,
    pending: Vec<Pending>,
    rules: Vec<Rule>,
}

/// The screen, its buttons, the rules and the log. One per simulator.
pub(crate) struct Panel {
    st: Mutex<PanelState>,
    seq_tx: watch::Sender<u64>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A page of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPage {
    /// Events after the cursor, oldest first.
    pub events: Vec<Event>,
    /// The cursor for the next call (`after=`): the last event's `seq`.
    pub next: u64,
    /// Events after the cursor were dropped from the log (it keeps [`MAX_EVENTS`]).
    pub truncated: bool,
}

impl Panel {
    pub(crate) fn new() -> Self {
        let p = Self {
            st: Mutex::new(PanelState {
                next_screen: 1,
                next_rule: 1,
                seq: 0,
                events: VecDeque::new(),
                pending: Vec::new(),
                rules: Vec::new(),
            }),
            seq_tx: watch::Sender::new(0),
        };
        p.log(Event::new(EventType::Started).detail("the appliance simulator started"));
        p
    }

    fn push(&self, st: &mut PanelState, mut e: Event) {
        st.seq += 1;
        e.seq = st.seq;
        e.at_ms = now_ms();
        if st.events.len() >= MAX_EVENTS {
            st.events.pop_front();
        }
        st.events.push_back(e);
        self.seq_tx.send_replace(st.seq);
    }

    /// Appends an event.
    pub(crate) fn log(&self, e: Event) {
        let mut st = lock(&self.st);
        self.push(&mut st, e);
    }

    /// The last event's seq.
    pub(crate) fn last_seq(&self) -> u64 {
        lock(&self.st).seq
    }

    /// Events after `after` (at most `limit`).
    pub(crate) fn events_after(&self, after: u64, limit: usize) -> EventPage {
        let st = lock(&self.st);
        let first = st.events.front().map_or(st.seq + 1, |e| e.seq);
        let truncated = after.saturating_add(1) < first;
        let events: Vec<Event> = st.events.iter().filter(|e| e.seq > after).take(limit).cloned().collect();
        let next = events.last().map_or(after.max(first.saturating_sub(1)).min(st.seq), |e| e.seq);
        EventPage { events, next, truncated }
    }

    /// Waits until an event after `after` exists, or `wait` passes.
    pub(crate) async fn wait_after(&self, after: u64, wait: Duration) {
        let mut rx = self.seq_tx.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|s| *s > after)).await;
    }

    /// Puts `screen` on (behind any screen already waiting); returns its id, the receiver
    /// of its answer and what the first matching rule does.
    pub(crate) fn show(&self, mut screen: Screen, shown_at: u64) -> (Screen, oneshot::Receiver<Answer>, Option<Auto>) {
        let (tx, rx) = oneshot::channel();
        let mut st = lock(&self.st);
        screen.id = st.next_screen;
        screen.shown_at = shown_at;
        st.next_screen += 1;
        let mut auto = None;
        let mut spent = None;
        for (i, r) in st.rules.iter_mut().enumerate() {
            if r.matcher.matches(&screen) {
                auto = Some(Auto {
                    answer: match r.action {
                        RuleAction::Approve => Some(Answer::Approved),
                        RuleAction::Reject => Some(Answer::Rejected),
                        RuleAction::Ignore => None,
                    },
                    after: Duration::from_millis(r.after_ms),
                    rule: Some(r.id),
                });
                if let Some(t) = r.times_left.as_mut() {
                    *t = t.saturating_sub(1);
                    if *t == 0 {
                        spent = Some(i);
                    }
                }
                break;
            }
        }
        if let Some(i) = spent {
            st.rules.remove(i);
        }
        let mut e = Event::new(EventType::ScreenShown).request(screen.request_id);
        e.screen = Some(screen.clone());
        self.push(&mut st, e);
        st.pending.push(Pending { screen: screen.clone(), tx: Some(tx) });
        (screen, rx, auto)
    }

    /// The screen shown now (the oldest waiting) and how many wait behind it.
    pub(crate) fn current(&self) -> (Option<Screen>, usize) {
        let st = lock(&self.st);
        (st.pending.first().map(|p| p.screen.clone()), st.pending.len().saturating_sub(1))
    }

    /// Every screen waiting, oldest first.
    pub(crate) fn waiting(&self) -> Vec<Screen> {
        lock(&self.st).pending.iter().map(|p| p.screen.clone()).collect()
    }

    /// Answers screen `id` (the current one when `None`): logs it and wakes the request.
    pub(crate) fn answer(
        &self,
        id: Option<u64>,
        request: Option<Uuid>,
        answer: Answer,
        by: AnsweredBy,
    ) -> Result<Screen, PanelError> {
        let mut st = lock(&self.st);
        let idx = match (id, request) {
            (Some(id), _) => {
                st.pending.iter().position(|p| p.screen.id == id).ok_or(PanelError::UnknownScreen(id.to_string()))?
            }
            (None, Some(r)) => st
                .pending
                .iter()
                .position(|p| p.screen.request_id == r)
                .ok_or(PanelError::UnknownScreen(format!("for request {r}")))?,
            (None, None) if st.pending.is_empty() => return Err(PanelError::NoScreen),
            (None, None) => 0,
        };
        let mut p = st.pending.remove(idx);
        if let Some(tx) = p.tx.take() {
            let _ = tx.send(answer);
        }
        let mut e = Event::new(EventType::ScreenAnswered).request(p.screen.request_id);
        e.answer = Some(answer);
        e.by = Some(by);
        e.screen = Some(p.screen.clone());
        self.push(&mut st, e);
        Ok(p.screen)
    }

    /// Adds a rule (checked by [`RuleSpec::validate`] first).
    pub(crate) fn add_rule(&self, spec: RuleSpec) -> Result<Rule, PanelError> {
        let mut st = lock(&self.st);
        if st.rules.len() >= MAX_RULES {
            return Err(PanelError::TooManyRules);
        }
        let rule = Rule {
            id: st.next_rule,
            matcher: spec.matcher,
            action: spec.action,
            after_ms: spec.after_ms,
            times_left: spec.times,
        };
        st.next_rule += 1;
        st.rules.push(rule.clone());
        Ok(rule)
    }

    /// The rules in force, in the order they are tried.
    pub(crate) fn rules(&self) -> Vec<Rule> {
        lock(&self.st).rules.clone()
    }

    /// Removes rule `id`.
    pub(crate) fn remove_rule(&self, id: u64) -> Result<(), PanelError> {
        let mut st = lock(&self.st);
        let i = st.rules.iter().position(|r| r.id == id).ok_or(PanelError::UnknownRule(id))?;
        st.rules.remove(i);
        Ok(())
    }

    /// Removes every rule; returns how many there were.
    pub(crate) fn clear_rules(&self) -> usize {
        let mut st = lock(&self.st);
        std::mem::take(&mut st.rules).len()
    }

    /// Forgets the log and the rules (seq and ids go on), answering every waiting screen
    /// `cancelled`; logs `reset`.
    pub(crate) fn reset(&self) {
        let mut st = lock(&self.st);
        for mut p in std::mem::take(&mut st.pending) {
            if let Some(tx) = p.tx.take() {
                let _ = tx.send(Answer::Cancelled);
            }
        }
        st.rules.clear();
        st.events.clear();
        self.push(&mut st, Event::new(EventType::Reset).detail("state, screens, rules, faults and log reset"));
    }
}
