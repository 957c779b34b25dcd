//! The pair flow as an explicit state machine a UI can follow, persisted at every step so a
//! killed app resumes where it stopped:
//!
//! ```text
//! LinkOpened → SessionLoaded → CodeNeeded | CodePrefilled → CodeVerified → WalletsChosen
//!            → WaitingForAppliance → Paired | Rejected | Expired | Failed
//! ```
//!
//! The final submission is idempotent: the approve request id is persisted before the
//! appliance is asked (a retry with the same id gets the appliance's first answer, never a
//! second approval), and the attestation is persisted as soon as it arrives, so a restart
//! posts the stored attestation to octane without asking the appliance again.
//!
//! The validation code is a secret: it lives in the [`SecretStore`] for the flow's lifetime
//! (needed again by the appliance), never in SQLite, and is wiped when the flow ends. So
//! does the appliance's attestation, which binds the code: it is kept in the
//! [`SecretStore`] until octane accepts it, and the stored pair keeps only what later steps
//! need (pair id, SP key, bindings, appliance identity) — the SP verifies the attestation
//! from octane's copy.

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use crate::appliance::ApplianceError;
use crate::audit::{Actor, AuditEvent};
use crate::bytes::Key32;
use crate::caip::{AccountId, ChainId};
use crate::clock::Clock;
use crate::code::{CodeError, ValidationCode};
use crate::display::{clean, TextKind};
use crate::envelope::{Domain, SignedEnvelope};
use crate::link::{parse_link, LinkConfig, PairLinkError};
use crate::model::{PairAttestation, PairSessionDetails, SpProfile, STATEMENT_VERSION};
use crate::octane::client::OctaneError;
use crate::ports::{ApplianceApi, OctaneApi, ProgressFn};
use crate::return_url::{check_return_url, ReturnUrlError};
use crate::secrets::{SecretError, SecretStore};
use crate::store::{FlowRecord, FlowStage, PairRecord, PairStatus, Store, StoreError};
use crate::wallets::{approval_list, validate_selection, ApprovalList, SelectionError};

/// What the approval card shows about a pair session (all of it signed by octane).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionCard {
    /// The session id.
    pub session_id: String,
    /// Who asks to pair.
    pub sp: SpProfile,
    /// A short fingerprint of the SP's key, for people.
    pub sp_key_fingerprint: String,
    /// The SP's reference for its user.
    pub sp_user_ref: String,
    /// Chains the SP asks a wallet for.
    pub requested_chains: Vec<ChainId>,
    /// Unix seconds; after this the session cannot be approved.
    pub expires_at: u64,
    /// Single-device flow: where the user goes back after approval (already validated).
    pub return_url: Option<String>,
}

impl SessionCard {
    /// The card shown: the SP's name and user reference pass the display sanitiser.
    fn from_details(d: &PairSessionDetails) -> Self {
        let mut sp = d.sp.clone();
        sp.name = clean(&sp.name, TextKind::Name);
        Self {
            session_id: d.session_id.clone(),
            sp,
            sp_key_fingerprint: d.sp.public_key.fingerprint(),
            sp_user_ref: clean(&d.sp_user_ref, TextKind::UserRef),
            requested_chains: d.requested_chains.clone(),
            expires_at: d.expires_at,
            return_url: d.return_url.clone(),
        }
    }
}

/// Where the user goes once paired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PairOutcome {
    /// Single-device flow: open this validated HTTPS URL (on one of the SP's origins).
    ReturnTo {
        /// The URL.
        url: String,
    },
    /// Two-device flow: show "done"; the SP's page continues on the other device.
    Done,
}

/// The state of one pair flow, as a UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PairState {
    /// The link was accepted; the session is being loaded.
    LinkOpened {
        /// The flow.
        flow_id: Uuid,
        /// The session id from the link.
        session_id: String,
    },
    /// The session was loaded and octane's signature checked (transient: the flow moves on
    /// to `CodeNeeded` or `CodePrefilled` at once).
    SessionLoaded {
        /// The flow.
        flow_id: Uuid,
        /// What to show.
        card: SessionCard,
    },
    /// Two-device flow: ask the user for the code shown on the SP's page.
    CodeNeeded {
        /// The flow.
        flow_id: Uuid,
        /// What to show.
        card: SessionCard,
        /// Wrong attempts octane still allows, when known.
        attempts_left: Option<u32>,
    },
    /// Single-device flow: the link carried the code; submit it (no typing).
    CodePrefilled {
        /// The flow.
        flow_id: Uuid,
        /// What to show.
        card: SessionCard,
    },
    /// Octane accepted the code: let the user choose wallets.
    CodeVerified {
        /// The flow.
        flow_id: Uuid,
        /// What to show.
        card: SessionCard,
    },
    /// The user chose wallets: ready to ask the appliance.
    WalletsChosen {
        /// The flow.
        flow_id: Uuid,
        /// What to show.
        card: SessionCard,
        /// The chosen wallets, canonical and sorted.
        bindings: Vec<AccountId>,
    },
    /// The appliance was asked ("confirm on your appliance"), or its answer is being
    /// delivered to octane.
    WaitingForAppliance {
        /// The flow.
        flow_id: Uuid,
        /// What to show.
        card: SessionCard,
        /// The wallets being approved.
        bindings: Vec<AccountId>,
        /// Whether the appliance already approved (only octane's answer is missing).
        approved_by_appliance: bool,
    },
    /// Paired.
    Paired {
        /// The flow.
        flow_id: Uuid,
        /// The durable pair id.
        pair_id: Uuid,
        /// The approved wallets.
        bindings: Vec<AccountId>,
        /// Where the user goes next.
        outcome: PairOutcome,
    },
    /// The user declined (on the phone or on the appliance).
    Rejected {
        /// The flow.
        flow_id: Uuid,
    },
    /// The session expired.
    Expired {
        /// The flow.
        flow_id: Uuid,
    },
    /// The flow failed for good.
    Failed {
        /// The flow.
        flow_id: Uuid,
        /// Stable code of the error.
        code: String,
        /// A sentence for a person.
        error: String,
    },
}

impl PairState {
    /// The flow this state belongs to.
    pub fn flow_id(&self) -> Uuid {
        match self {
            PairState::LinkOpened { flow_id, .. }
            | PairState::SessionLoaded { flow_id, .. }
            | PairState::CodeNeeded { flow_id, .. }
            | PairState::CodePrefilled { flow_id, .. }
            | PairState::CodeVerified { flow_id, .. }
            | PairState::WalletsChosen { flow_id, .. }
            | PairState::WaitingForAppliance { flow_id, .. }
            | PairState::Paired { flow_id, .. }
            | PairState::Rejected { flow_id }
            | PairState::Expired { flow_id }
            | PairState::Failed { flow_id, .. } => *flow_id,
        }
    }

    /// A stable snake_case name of the state.
    pub fn name(&self) -> &'static str {
        match self {
            PairState::LinkOpened { .. } => "link_opened",
            PairState::SessionLoaded { .. } => "session_loaded",
            PairState::CodeNeeded { .. } => "code_needed",
            PairState::CodePrefilled { .. } => "code_prefilled",
            PairState::CodeVerified { .. } => "code_verified",
            PairState::WalletsChosen { .. } => "wallets_chosen",
            PairState::WaitingForAppliance { .. } => "waiting_for_appliance",
            PairState::Paired { .. } => "paired",
            PairState::Rejected { .. } => "rejected",
            PairState::Expired { .. } => "expired",
            PairState::Failed { .. } => "failed",
        }
    }
}

/// Why a pair flow step failed.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// The link was refused.
    #[error("pair link refused: {0}")]
    Link(#[from] PairLinkError),
    /// What was typed is not a code.
    #[error("{0}")]
    Code(#[from] CodeError),
    /// Octane rejected the code; the flow stays open for another try.
    #[error("wrong code ({attempts_left} attempts left)")]
    CodeRejected {
        /// Wrong attempts still allowed.
        attempts_left: u32,
    },
    /// Too many wrong codes: the session is burnt (flow failed).
    #[error("too many wrong codes; ask the service for a new pairing")]
    SessionLocked,
    /// The session expired (flow expired).
    #[error("the pair session expired")]
    SessionExpired,
    /// The session was already used (flow failed).
    #[error("the pair session was already used")]
    SessionUsed,
    /// Octane failed or refused.
    #[error(transparent)]
    Octane(OctaneError),
    /// The appliance failed or refused.
    #[error(transparent)]
    Appliance(ApplianceError),
    /// The user declined on the appliance (flow rejected).
    #[error("declined on the appliance")]
    RejectedOnAppliance,
    /// The wallet selection is not valid.
    #[error("{0}")]
    Selection(#[from] SelectionError),
    /// The session's return URL is not safe to open (flow failed).
    #[error("the service's return address is refused: {0}")]
    ReturnUrl(#[from] ReturnUrlError),
    /// The appliance's attestation does not match what was asked (flow failed).
    #[error("the appliance's attestation does not match the request: {0}")]
    BadAttestation(String),
    /// The session details are not usable (no chains, wrong version…).
    #[error("the pair session is invalid: {0}")]
    BadSession(String),
    /// No such flow.
    #[error("no such pair flow")]
    UnknownFlow,
    /// The step does not fit the flow's current state.
    #[error("cannot {action} in state {state}")]
    WrongState {
        /// What was attempted.
        action: &'static str,
        /// The state the flow is in.
        state: &'static str,
    },
    /// No appliance is bonded.
    #[error("no appliance is bonded with this phone")]
    NotBonded,
    /// The flow was interrupted on purpose (test fault injection).
    #[error("interrupted")]
    Interrupted,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The secret store failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl PairError {
    /// A stable snake_case code for UIs and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            PairError::Link(e) => e.code(),
            PairError::Code(e) => e.code(),
            PairError::CodeRejected { .. } => "code_rejected",
            PairError::SessionLocked => "session_locked",
            PairError::SessionExpired => "session_expired",
            PairError::SessionUsed => "session_used",
            PairError::Octane(e) => e.code(),
            PairError::Appliance(_) => "appliance_error",
            PairError::RejectedOnAppliance => "rejected_on_appliance",
            PairError::Selection(e) => e.code(),
            PairError::ReturnUrl(_) => "return_url_refused",
            PairError::BadAttestation(_) => "bad_attestation",
            PairError::BadSession(_) => "bad_session",
            PairError::UnknownFlow => "unknown_flow",
            PairError::WrongState { .. } => "wrong_state",
            PairError::NotBonded => "not_bonded",
            PairError::Interrupted => "interrupted",
            PairError::Store(_) => "store_error",
            PairError::Secret(_) => "secret_store_error",
        }
    }

    /// Whether the user's input was refused (as opposed to a failure elsewhere).
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            PairError::Link(_)
                | PairError::Code(_)
                | PairError::CodeRejected { .. }
                | PairError::Selection(_)
                | PairError::ReturnUrl(_)
        )
    }
}

impl From<OctaneError> for PairError {
    fn from(e: OctaneError) -> Self {
        match e {
            OctaneError::CodeRejected { attempts_left } => PairError::CodeRejected { attempts_left },
            OctaneError::SessionLocked => PairError::SessionLocked,
            OctaneError::SessionExpired => PairError::SessionExpired,
            OctaneError::SessionUsed => PairError::SessionUsed,
            other => PairError::Octane(other),
        }
    }
}

impl From<ApplianceError> for PairError {
    fn from(e: ApplianceError) -> Self {
        match e {
            ApplianceError::UserRejected => PairError::RejectedOnAppliance,
            other => PairError::Appliance(other),
        }
    }
}

/// Listener for flow state changes.
pub type StateListener = Arc<dyn Fn(&PairState) + Send + Sync>;

/// Test-only fault injection points (feature `testing`).
#[cfg(feature = "testing")]
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CrashPoint {
    /// No fault.
    #[default]
    None,
    /// Stop right after the attestation is persisted, before octane is told.
    AfterAttestationStored,
}

/// Runs pair flows: octane, the store, the secret store and the clock it needs.
pub struct PairEngine {
    store: Arc<Store>,
    octane: Arc<dyn OctaneApi>,
    secrets: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    links: LinkConfig,
    listener: Option<StateListener>,
    #[cfg(feature = "testing")]
    crash: CrashPoint,
}

fn code_secret_name(flow_id: Uuid) -> String {
    format!("pairflow.{}.code", flow_id.simple())
}

/// The appliance's attestation binds the validation code, so it lives beside the code in
/// the `SecretStore` (never in SQLite) until the flow ends.
fn attestation_secret_name(flow_id: Uuid) -> String {
    format!("pairflow.{}.attestation", flow_id.simple())
}

impl PairEngine {
    /// A pair engine.
    pub fn new(
        store: Arc<Store>,
        octane: Arc<dyn OctaneApi>,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
        links: LinkConfig,
    ) -> Self {
        Self {
            store,
            octane,
            secrets,
            clock,
            links,
            listener: None,
            #[cfg(feature = "testing")]
            crash: CrashPoint::None,
        }
    }

    /// Sets the listener told of every state change.
    pub fn with_listener(mut self, listener: Option<StateListener>) -> Self {
        self.listener = listener;
        self
    }

    /// Test-only: inject a fault (feature `testing`).
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn with_crash_point(mut self, crash: CrashPoint) -> Self {
        self.crash = crash;
        self
    }

    fn load(&self, flow_id: Uuid) -> Result<FlowRecord, PairError> {
        let mut flow = self.store.flow(flow_id)?.ok_or(PairError::UnknownFlow)?;
        self.load_attestation(&mut flow)?;
        Ok(flow)
    }

    /// Fills `flow.attestation` from the `SecretStore` (the store never holds it).
    fn load_attestation(&self, flow: &mut FlowRecord) -> Result<(), PairError> {
        if flow.stage.is_final() {
            return Ok(());
        }
        flow.attestation = match self.secrets.get(&attestation_secret_name(flow.flow_id))? {
            None => None,
            Some(raw) => match serde_json::from_slice::<SignedEnvelope>(&raw) {
                Ok(env) => Some(env),
                Err(e) => {
                    // Unreadable: ask the appliance again (same request id, same answer).
                    tracing::warn!(error = %e, "pair: stored attestation unreadable; dropped");
                    None
                }
            },
        };
        Ok(())
    }

    fn details(&self, flow: &FlowRecord) -> Result<PairSessionDetails, PairError> {
        let env = flow.session.as_ref().ok_or(PairError::WrongState { action: "continue", state: "link_opened" })?;
        // Verified when loaded; verified again when read back, so an edited database
        // cannot change what the user is shown or what the appliance is asked.
        env.open(Domain::OctaneSession, self.octane.octane_key().as_bytes())
            .map_err(|_| PairError::Octane(OctaneError::BadSignature("the stored pair session".into())))
    }

    fn code(&self, flow_id: Uuid) -> Result<Option<ValidationCode>, PairError> {
        let Some(raw) = self.secrets.get(&code_secret_name(flow_id))? else {
            return Ok(None);
        };
        let text = std::str::from_utf8(&raw).map_err(|_| PairError::BadSession("stored code".into()))?;
        Ok(ValidationCode::from_ascii_digits(text))
    }

    /// Persists `flow` (stamping `updated_at`), tells the listener, and returns the state.
    fn save(&self, flow: &mut FlowRecord) -> Result<PairState, PairError> {
        flow.updated_at = self.clock.now_unix();
        if let (Some(att), false) = (&flow.attestation, flow.stage.is_final()) {
            // Before the row: a restart that sees the row also finds the attestation.
            let json = serde_json::to_vec(att).map_err(|e| PairError::BadAttestation(e.to_string()))?;
            self.secrets.put(&attestation_secret_name(flow.flow_id), &json)?;
        }
        self.store.put_flow(flow)?;
        if flow.stage.is_final() {
            // The code is worthless now; do not keep a secret longer than needed.
            for name in [code_secret_name(flow.flow_id), attestation_secret_name(flow.flow_id)] {
                if let Err(e) = self.secrets.delete(&name) {
                    tracing::warn!(error = %e, "pair: could not wipe the flow's code or attestation");
                }
            }
        }
        let state = self.state_of(flow)?;
        tracing::info!(flow = %flow.flow_id, state = state.name(), "pair: state");
        if let Some(l) = &self.listener {
            l(&state);
        }
        Ok(state)
    }

    /// Ends the flow in `stage` with `err` recorded, and returns `err`.
    fn finish_with(&self, flow: &mut FlowRecord, stage: FlowStage, err: PairError) -> PairError {
        flow.stage = stage;
        flow.error = Some(format!("{}|{}", err.code(), err));
        if let Err(e) = self.save(flow) {
            return e;
        }
        err
    }

    /// The UI state of a stored flow.
    pub fn state(&self, flow_id: Uuid) -> Result<PairState, PairError> {
        let flow = self.load(flow_id)?;
        self.state_of(&flow)
    }

    fn state_of(&self, flow: &FlowRecord) -> Result<PairState, PairError> {
        let flow_id = flow.flow_id;
        let card = || -> Result<SessionCard, PairError> { Ok(SessionCard::from_details(&self.details(flow)?)) };
        Ok(match flow.stage {
            FlowStage::LinkOpened => PairState::LinkOpened { flow_id, session_id: flow.session_id.clone() },
            FlowStage::SessionLoaded => {
                if flow.code_prefilled {
                    PairState::CodePrefilled { flow_id, card: card()? }
                } else {
                    PairState::CodeNeeded { flow_id, card: card()?, attempts_left: None }
                }
            }
            FlowStage::CodeVerified => PairState::CodeVerified { flow_id, card: card()? },
            FlowStage::WalletsChosen => {
                PairState::WalletsChosen { flow_id, card: card()?, bindings: flow.bindings.clone() }
            }
            FlowStage::WaitingForAppliance => PairState::WaitingForAppliance {
                flow_id,
                card: card()?,
                bindings: flow.bindings.clone(),
                approved_by_appliance: flow.attestation.is_some(),
            },
            FlowStage::Paired => PairState::Paired {
                flow_id,
                pair_id: flow.pair_id.ok_or(PairError::BadSession("paired without a pair id".into()))?,
                bindings: flow.bindings.clone(),
                outcome: match &flow.return_url {
                    Some(url) => PairOutcome::ReturnTo { url: url.clone() },
                    None => PairOutcome::Done,
                },
            },
            FlowStage::Rejected => PairState::Rejected { flow_id },
            FlowStage::Expired => PairState::Expired { flow_id },
            FlowStage::Failed => {
                let raw = flow.error.clone().unwrap_or_default();
                let (code, error) = raw.split_once('|').unwrap_or(("failed", raw.as_str()));
                PairState::Failed { flow_id, code: code.to_string(), error: error.to_string() }
            }
        })
    }

    /// Checks expiry; an expired flow is marked so and `SessionExpired` returned.
    fn check_expiry(&self, flow: &mut FlowRecord) -> Result<(), PairError> {
        if let Some(env) = &flow.session {
            let d: PairSessionDetails = env.peek().map_err(|e| PairError::BadSession(e.to_string()))?;
            if self.clock.now_unix() >= d.expires_at {
                return Err(self.finish_with(flow, FlowStage::Expired, PairError::SessionExpired));
            }
        }
        Ok(())
    }

    /// Opens a pair link: parses it strictly, loads the session from octane, checks
    /// octane's signature with the pinned key, the expiry and the return URL, and returns
    /// `CodeNeeded` (two-device) or `CodePrefilled` (single-device).
    #[tracing::instrument(skip_all)]
    pub async fn open_link(&self, link: &str, appliance_identity: Key32) -> Result<PairState, PairError> {
        let intent = parse_link(link, &self.links)?;
        // A session this phone already paired (the link tapped again after success, or after
        // the app was killed between storing the pair and showing it): show it as paired,
        // without handing out the return URL again. Octane would only answer "session used".
        for flow in self.store.flows_for_session(&intent.session_id)? {
            let Some(pair_id) = flow.pair_id.filter(|_| flow.stage == FlowStage::Paired) else { continue };
            if self.store.pair(pair_id)?.is_some_and(|p| p.status == PairStatus::Active) {
                tracing::info!(flow = %flow.flow_id, pair = %pair_id, "pair: session already paired on this phone");
                return Ok(PairState::Paired {
                    flow_id: flow.flow_id,
                    pair_id,
                    bindings: flow.bindings.clone(),
                    outcome: PairOutcome::Done,
                });
            }
        }
        // The same session opened again (the user tapped the link twice, or after a crash):
        // a flow already waiting on the appliance is continued, never duplicated; any other
        // open flow for it is superseded by this one.
        for mut old in self.store.open_flows()?.into_iter().filter(|f| f.session_id == intent.session_id) {
            if old.stage == FlowStage::WaitingForAppliance {
                return self.state_of(&old);
            }
            old.stage = FlowStage::Failed;
            old.error = Some("superseded|opened again".into());
            self.save(&mut old)?;
        }
        let now = self.clock.now_unix();
        let flow_id = Uuid::new_v4();
        if let Some(code) = &intent.code {
            self.secrets.put(&code_secret_name(flow_id), code.as_str().as_bytes())?;
        }
        let mut flow = FlowRecord {
            flow_id,
            stage: FlowStage::LinkOpened,
            // Never keep the code in SQLite: store the link without it.
            link: crate::link::PairIntent { session_id: intent.session_id.clone(), code: None }
                .render(self.links.accepted_hosts.first().map(String::as_str).unwrap_or(crate::link::DEFAULT_HOST)),
            session_id: intent.session_id.clone(),
            session: None,
            code_prefilled: intent.code.is_some(),
            code_verified: false,
            bindings: Vec::new(),
            appliance_identity: Some(appliance_identity),
            approve_request_id: None,
            attestation: None,
            pair_id: None,
            return_url: None,
            error: None,
            created_at: now,
            updated_at: now,
        };
        self.save(&mut flow)?;
        self.load_session(&mut flow).await
    }

    async fn load_session(&self, flow: &mut FlowRecord) -> Result<PairState, PairError> {
        let loaded = match self.octane.session(&flow.session_id).await {
            Ok(l) => l,
            Err(e @ OctaneError::BadSignature(_)) => {
                return Err(self.finish_with(flow, FlowStage::Failed, PairError::Octane(e)))
            }
            Err(e) => return Err(self.fail_if_final(flow, e.into())),
        };
        let d = &loaded.details;
        if d.requested_chains.is_empty() {
            return Err(self.finish_with(flow, FlowStage::Failed, PairError::BadSession("no chains requested".into())));
        }
        if let Some(url) = &d.return_url {
            if let Err(e) = check_return_url(url, &d.sp.allowed_return_origins) {
                return Err(self.finish_with(flow, FlowStage::Failed, e.into()));
            }
        }
        flow.session = Some(loaded.envelope.clone());
        self.check_expiry(flow)?;
        match loaded.status {
            crate::octane::api::SessionStatus::Open | crate::octane::api::SessionStatus::CodeVerified => {}
            crate::octane::api::SessionStatus::Expired => {
                return Err(self.finish_with(flow, FlowStage::Expired, PairError::SessionExpired))
            }
            crate::octane::api::SessionStatus::Locked => {
                return Err(self.finish_with(flow, FlowStage::Failed, PairError::SessionLocked))
            }
            _ => return Err(self.finish_with(flow, FlowStage::Failed, PairError::SessionUsed)),
        }
        flow.stage = FlowStage::SessionLoaded;
        let card = SessionCard::from_details(d);
        if let Some(l) = &self.listener {
            l(&PairState::SessionLoaded { flow_id: flow.flow_id, card: card.clone() });
        }
        self.save(flow)?;
        Ok(if flow.code_prefilled {
            PairState::CodePrefilled { flow_id: flow.flow_id, card }
        } else {
            PairState::CodeNeeded { flow_id: flow.flow_id, card, attempts_left: Some(loaded.attempts_left) }
        })
    }

    /// Ends the flow when the error is final for the session (expired, locked, used);
    /// otherwise leaves it as is for a retry.
    fn fail_if_final(&self, flow: &mut FlowRecord, e: PairError) -> PairError {
        match e {
            PairError::SessionExpired => self.finish_with(flow, FlowStage::Expired, e),
            PairError::SessionLocked | PairError::SessionUsed => self.finish_with(flow, FlowStage::Failed, e),
            PairError::Octane(OctaneError::NotFound) => self.finish_with(flow, FlowStage::Failed, e),
            other => other,
        }
    }

    /// Submits the validation code (`None`: the one the link carried). A wrong code gives
    /// [`PairError::CodeRejected`] and the flow stays open for another try.
    #[tracing::instrument(skip(self, typed))]
    pub async fn submit_code(&self, flow_id: Uuid, typed: Option<&str>) -> Result<PairState, PairError> {
        let mut flow = self.load(flow_id)?;
        if flow.stage != FlowStage::SessionLoaded {
            return Err(PairError::WrongState { action: "submit a code", state: self.state_of(&flow)?.name() });
        }
        self.check_expiry(&mut flow)?;
        let code = match typed {
            Some(t) => ValidationCode::parse(t)?,
            None => self.code(flow_id)?.ok_or(CodeError::Empty)?,
        };
        match self.octane.check_code(&flow.session_id, &code).await {
            Ok(_) => {}
            Err(e) => return Err(self.fail_if_final(&mut flow, e.into())),
        }
        self.secrets.put(&code_secret_name(flow_id), code.as_str().as_bytes())?;
        flow.code_verified = true;
        flow.stage = FlowStage::CodeVerified;
        self.save(&mut flow)
    }

    /// The approval list for a code-verified flow: the appliance's wallets against the
    /// chains the SP asked for.
    pub async fn approval_list(&self, flow_id: Uuid, appliance: &dyn ApplianceApi) -> Result<ApprovalList, PairError> {
        let flow = self.load(flow_id)?;
        let d = self.details(&flow)?;
        let available = appliance.wallets(&d.requested_chains).await?;
        Ok(approval_list(&d.requested_chains, &available, &flow.bindings))
    }

    /// Records the user's choice of wallets after validating it against the appliance's
    /// wallets and the requested chains.
    #[tracing::instrument(skip_all, fields(flow = %flow_id))]
    pub async fn choose_wallets(
        &self,
        flow_id: Uuid,
        selected: &[AccountId],
        appliance: &dyn ApplianceApi,
    ) -> Result<PairState, PairError> {
        let mut flow = self.load(flow_id)?;
        if !matches!(flow.stage, FlowStage::CodeVerified | FlowStage::WalletsChosen) {
            return Err(PairError::WrongState { action: "choose wallets", state: self.state_of(&flow)?.name() });
        }
        self.check_expiry(&mut flow)?;
        let d = self.details(&flow)?;
        let available = appliance.wallets(&d.requested_chains).await?;
        let bindings = validate_selection(&d.requested_chains, &available, selected)?;
        flow.bindings = bindings;
        flow.stage = FlowStage::WalletsChosen;
        self.save(&mut flow)
    }

    /// Asks the appliance to approve, then delivers its attestation to octane and stores the
    /// pair. Safe to call again after any failure or restart (same request id; a stored
    /// attestation is posted without asking the appliance again).
    #[tracing::instrument(skip_all, fields(flow = %flow_id))]
    pub async fn approve(
        &self,
        flow_id: Uuid,
        appliance: &dyn ApplianceApi,
        progress: Option<ProgressFn>,
    ) -> Result<PairState, PairError> {
        let mut flow = self.load(flow_id)?;
        if !matches!(flow.stage, FlowStage::WalletsChosen | FlowStage::WaitingForAppliance) {
            return Err(PairError::WrongState { action: "approve", state: self.state_of(&flow)?.name() });
        }
        let d = self.details(&flow)?;
        let identity = flow.appliance_identity.ok_or(PairError::NotBonded)?;
        if flow.attestation.is_none() {
            self.check_expiry(&mut flow)?;
            let code = self
                .code(flow_id)?
                .ok_or_else(|| PairError::BadSession("the validation code is no longer available".into()))?;
            let request_id = match flow.approve_request_id {
                Some(id) => id,
                None => {
                    let id = Uuid::new_v4();
                    flow.approve_request_id = Some(id);
                    flow.stage = FlowStage::WaitingForAppliance;
                    // Persisted BEFORE asking: a retry reuses the id, never a second approval.
                    self.save(&mut flow)?;
                    id
                }
            };
            let session = flow.session.clone().ok_or(PairError::BadSession("no session".into()))?;
            let attestation =
                match appliance.approve_pair(request_id, &session, code.as_str(), &flow.bindings, progress).await {
                    Ok(a) => a,
                    Err(ApplianceError::UserRejected) => {
                        if let Err(e) =
                            self.octane.reject_session(&flow.session_id, Some("declined on the appliance".into())).await
                        {
                            tracing::warn!(error = %e, "pair: could not tell octane about the rejection");
                        }
                        self.audit(&flow, AuditEvent::PairRejected { by: Actor::Appliance });
                        return Err(self.finish_with(&mut flow, FlowStage::Rejected, PairError::RejectedOnAppliance));
                    }
                    Err(e) => return Err(e.into()),
                };
            if let Err(reason) = check_attestation(&attestation, &d, &code, &flow.bindings, &identity) {
                return Err(self.finish_with(&mut flow, FlowStage::Failed, PairError::BadAttestation(reason)));
            }
            flow.attestation = Some(attestation);
            flow.stage = FlowStage::WaitingForAppliance;
            // Persisted as soon as it arrives: a restart posts it without asking again.
            self.save(&mut flow)?;
            #[cfg(feature = "testing")]
            if self.crash == CrashPoint::AfterAttestationStored {
                return Err(PairError::Interrupted);
            }
        }
        self.deliver(&mut flow, &d, &identity).await
    }

    /// Posts the stored attestation to octane and records the pair.
    async fn deliver(
        &self,
        flow: &mut FlowRecord,
        d: &PairSessionDetails,
        identity: &Key32,
    ) -> Result<PairState, PairError> {
        let attestation = flow.attestation.clone().ok_or(PairError::BadSession("no attestation".into()))?;
        let att: PairAttestation = attestation
            .open(Domain::PairAttestation, identity.as_bytes())
            .map_err(|e| PairError::BadAttestation(e.to_string()))?;
        let answer = match self.octane.approve_session(&flow.session_id, &attestation).await {
            Ok(a) => a,
            Err(e) => return Err(self.fail_if_final(flow, e.into())),
        };
        if answer != att.pair_id {
            return Err(self.finish_with(
                flow,
                FlowStage::Failed,
                PairError::Octane(OctaneError::Protocol("octane answered another pair id".into())),
            ));
        }
        // The signed session's return URL, not octane's unsigned echo; checked again.
        let return_url = match (&d.return_url, flow.code_prefilled) {
            (Some(url), true) => match check_return_url(url, &d.sp.allowed_return_origins) {
                Ok(u) => Some(u.to_string()),
                Err(e) => return Err(self.finish_with(flow, FlowStage::Failed, e.into())),
            },
            _ => None,
        };
        self.store.insert_pair(&PairRecord {
            pair_id: att.pair_id,
            appliance_identity: *identity,
            session_id: flow.session_id.clone(),
            sp: d.sp.clone(),
            sp_user_ref: d.sp_user_ref.clone(),
            sp_public_key: att.sp_public_key,
            bindings: att.bindings.clone(),
            status: PairStatus::Active,
            created_at: self.clock.now_unix(),
            revoked_at: None,
        })?;
        flow.pair_id = Some(att.pair_id);
        flow.return_url = return_url;
        flow.stage = FlowStage::Paired;
        let event =
            AuditEvent::PairApproved { pair_id: att.pair_id, sp: d.sp.name.clone(), bindings: att.bindings.clone() };
        self.audit(flow, event);
        self.save(flow)
    }

    /// The user declines on the phone: octane is told, the flow ends `Rejected`.
    #[tracing::instrument(skip(self))]
    pub async fn reject(&self, flow_id: Uuid) -> Result<PairState, PairError> {
        let mut flow = self.load(flow_id)?;
        if flow.stage.is_final() {
            return self.state_of(&flow);
        }
        if flow.attestation.is_some() {
            return Err(PairError::WrongState { action: "reject", state: "waiting_for_appliance" });
        }
        // Octane only takes a rejection from the app that proved the code (otherwise anyone
        // holding the link could kill the session); before that, the flow ends locally.
        if flow.code_verified {
            if let Err(e) = self.octane.reject_session(&flow.session_id, Some("declined on the phone".into())).await {
                tracing::warn!(error = %e, "pair: could not tell octane about the rejection");
            }
        }
        self.audit(&flow, AuditEvent::PairRejected { by: Actor::Phone });
        flow.stage = FlowStage::Rejected;
        self.save(&mut flow)
    }

    /// Resumes every unfinished flow after a restart: expired ones are closed, a flow whose
    /// attestation is stored is delivered to octane (without asking the appliance again), a
    /// flow whose appliance request was sent is retried with the same request id, and the
    /// others are returned for the UI to continue. Per-flow failures are reported in place.
    pub async fn resume_pending(
        &self,
        appliance: Option<&dyn ApplianceApi>,
    ) -> Result<Vec<Result<PairState, PairError>>, PairError> {
        self.resume_flows(self.store.open_flows()?, appliance).await
    }

    /// [`PairEngine::resume_pending`] for the flows of one appliance (`identity`, which
    /// `appliance` reaches) only: with several bonded, each flow resumes with its own.
    pub async fn resume_pending_for(
        &self,
        identity: &Key32,
        appliance: Option<&dyn ApplianceApi>,
    ) -> Result<Vec<Result<PairState, PairError>>, PairError> {
        let mut flows = self.store.open_flows()?;
        flows.retain(|f| f.appliance_identity.as_ref() == Some(identity));
        self.resume_flows(flows, appliance).await
    }

    async fn resume_flows(
        &self,
        flows: Vec<FlowRecord>,
        appliance: Option<&dyn ApplianceApi>,
    ) -> Result<Vec<Result<PairState, PairError>>, PairError> {
        let mut out = Vec::new();
        for mut flow in flows {
            self.load_attestation(&mut flow)?;
            tracing::info!(flow = %flow.flow_id, stage = ?flow.stage, "pair: resuming");
            let r = match flow.stage {
                FlowStage::LinkOpened => self.load_session(&mut flow).await,
                FlowStage::WaitingForAppliance if flow.attestation.is_some() => {
                    let d = self.details(&flow);
                    let id = flow.appliance_identity.ok_or(PairError::NotBonded);
                    match (d, id) {
                        (Ok(d), Ok(id)) => self.deliver(&mut flow, &d, &id).await,
                        (Err(e), _) | (_, Err(e)) => Err(e),
                    }
                }
                FlowStage::WaitingForAppliance => match appliance {
                    Some(a) => self.approve(flow.flow_id, a, None).await,
                    None => self.state_of(&flow),
                },
                _ => match self.check_expiry(&mut flow) {
                    Ok(()) => self.state_of(&flow),
                    Err(e) => Err(e),
                },
            };
            out.push(r);
        }
        Ok(out)
    }

    fn audit(&self, flow: &FlowRecord, event: AuditEvent) {
        if let Err(e) = self.store.audit(self.clock.now_unix(), &flow.session_id, &event) {
            tracing::warn!(error = %e, "pair: audit log write failed");
        }
    }
}

/// Checks that the appliance's attestation is signed by the bonded appliance and binds
/// exactly what was asked: this session, this code, the SP's key, the chosen wallets.
fn check_attestation(
    env: &SignedEnvelope,
    d: &PairSessionDetails,
    code: &ValidationCode,
    bindings: &[AccountId],
    identity: &Key32,
) -> Result<(), String> {
    let a: PairAttestation =
        env.open(Domain::PairAttestation, identity.as_bytes()).map_err(|e| format!("signature: {e}"))?;
    let code_ok: bool = subtle::ConstantTimeEq::ct_eq(a.validation_code.as_bytes(), code.as_str().as_bytes()).into();
    let checks = [
        (a.v == STATEMENT_VERSION, "version"),
        (a.session_id == d.session_id, "session id"),
        (code_ok, "validation code"),
        (a.sp_id == d.sp.sp_id, "SP id"),
        (a.sp_public_key == d.sp.public_key, "SP key"),
        (a.bindings.as_slice() == bindings, "bindings"),
        (&a.appliance_identity == identity, "appliance identity"),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(format!("{what} differs")),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod engine_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn details() -> PairSessionDetails {
        PairSessionDetails {
            v: STATEMENT_VERSION,
            session_id: "s".repeat(22),
            sp: SpProfile {
                sp_id: "sp".into(),
                name: "SP".into(),
                logo_url: "https://sp.example/l.png".into(),
                homepage: "https://sp.example".into(),
                public_key: Key32([3; 32]),
                allowed_return_origins: vec!["https://sp.example".into()],
            },
            sp_user_ref: "u".into(),
            requested_chains: vec![ChainId::Evm(1)],
            return_url: None,
            created_at: 1,
            expires_at: 2,
        }
    }

    #[test]
    fn the_attestation_must_bind_exactly_what_was_asked() {
        let appliance = SigningKey::from_bytes(&[8; 32]);
        let identity = Key32(appliance.verifying_key().to_bytes());
        let d = details();
        let code = ValidationCode::from_ascii_digits("123456").unwrap();
        let bindings = vec![AccountId::evm(1, [0x11; 20])];
        let good = PairAttestation {
            v: STATEMENT_VERSION,
            pair_id: Uuid::from_bytes([1; 16]),
            session_id: d.session_id.clone(),
            validation_code: "123456".into(),
            sp_id: "sp".into(),
            sp_public_key: d.sp.public_key,
            bindings: bindings.clone(),
            appliance_identity: identity,
            approved_at: 1,
        };
        let seal = |a: &PairAttestation, k: &SigningKey| SignedEnvelope::seal(Domain::PairAttestation, k, a).unwrap();
        assert_eq!(check_attestation(&seal(&good, &appliance), &d, &code, &bindings, &identity), Ok(()));

        let variants: Vec<(PairAttestation, &str)> = vec![
            (PairAttestation { session_id: "t".repeat(22), ..good.clone() }, "session id"),
            (PairAttestation { validation_code: "654321".into(), ..good.clone() }, "validation code"),
            (PairAttestation { sp_id: "other".into(), ..good.clone() }, "SP id"),
            (PairAttestation { sp_public_key: Key32([4; 32]), ..good.clone() }, "SP key"),
            (PairAttestation { bindings: vec![AccountId::evm(1, [0x22; 20])], ..good.clone() }, "bindings"),
            (PairAttestation { appliance_identity: Key32([5; 32]), ..good.clone() }, "appliance identity"),
            (PairAttestation { v: 9, ..good.clone() }, "version"),
        ];
        for (a, what) in variants {
            let e = check_attestation(&seal(&a, &appliance), &d, &code, &bindings, &identity).unwrap_err();
            assert_eq!(e, format!("{what} differs"));
        }
        // Signed by another key (an appliance that is not the bonded one).
        let other = SigningKey::from_bytes(&[9; 32]);
        assert!(check_attestation(&seal(&good, &other), &d, &code, &bindings, &identity)
            .unwrap_err()
            .starts_with("signature"));
    }

    #[test]
    fn error_codes_are_stable_and_rejections_are_flagged() {
        assert_eq!(PairError::from(OctaneError::CodeRejected { attempts_left: 2 }).code(), "code_rejected");
        assert!(PairError::from(OctaneError::CodeRejected { attempts_left: 2 }).is_rejection());
        assert_eq!(PairError::from(OctaneError::SessionLocked).code(), "session_locked");
        assert_eq!(PairError::from(ApplianceError::UserRejected).code(), "rejected_on_appliance");
        assert!(!PairError::from(OctaneError::Timeout).is_rejection());
    }
}
