//! The pair and sign flows on [`SunstormCore`], bound through the core's
//! [`sunstorm_core::Sunstorm`] facade (no flow logic lives here). The facade owns the bonds
//! and sends each flow to its pair's appliance (ADR 0023).

use std::str::FromStr;
use std::sync::Arc;

use sunstorm_core::caip::AccountId;
use uuid::Uuid;

use crate::appliance::parse_appliance_id;
use crate::cancel::CancelHandle;
use crate::error::SunstormError;
use crate::flow_views::{PairStateView, PairView, SignRequestView, SyncReportView, WalletRowView};
use crate::platform::{FlowListener, UserPresence};
use crate::sunstorm::SunstormCore;

fn parse_id(what: &str, id: &str) -> Result<Uuid, SunstormError> {
    Uuid::parse_str(id.trim()).map_err(|_| SunstormError::NotFound).inspect_err(|_| {
        tracing::warn!(target: "sunstorm_ffi", what, "malformed id passed by the app");
    })
}

/// Asks the platform for a biometric / passcode check; `UserPresenceFailed` unless passed.
async fn check_presence(presence: Arc<dyn UserPresence>, reason: String) -> Result<(), SunstormError> {
    let r = crate::blocking::on_blocking_pool(move || presence.verify(reason))
        .await
        .map_err(|e| SunstormError::internal(format!("presence check task failed: {e}")))?;
    match r {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::info!(target: "sunstorm_ffi", "user presence check not passed");
            Err(SunstormError::UserPresenceFailed)
        }
        Err(e) => {
            tracing::warn!(target: "sunstorm_ffi", error = %e, "user presence check failed");
            Err(SunstormError::UserPresenceFailed)
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl SunstormCore {
    /// Sets (or clears, with `None`) the listener told of every pair-flow state change
    /// (`on_pair_state`) and of appliance progress during approvals (`on_progress`).
    pub fn set_flow_listener(&self, listener: Option<Arc<dyn FlowListener>>) {
        if let Ok(mut slot) = self.listener.write() {
            *slot = listener;
        }
    }

    /// Opens a pair link (tapped Universal Link / App Link or scanned QR) for the appliance
    /// `appliance_id` (from `bonded_appliances`; may be omitted when one is bonded, else
    /// `ChooseAppliance`): loads the session from octane and checks its signature. Returns
    /// `CodeNeeded` (two-device) or `CodePrefilled` (single-device) with the service's card.
    /// The flow's later steps go to that appliance.
    #[uniffi::method(default(appliance_id = None, cancel = None))]
    pub async fn open_pair_link(
        &self,
        link: String,
        appliance_id: Option<String>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<PairStateView, SunstormError> {
        let id = parse_appliance_id(appliance_id.as_deref())?;
        let s = self.facade.clone();
        self.run(cancel, async move { Ok(PairStateView::from(&s.open_link(&link, id.as_ref()).await?)) }).await
    }

    /// Submits the validation code (`None`: the one the link carried). `WrongCode
    /// { attempts_left }` leaves the flow open for another try; `CodeLocked` ends it.
    #[uniffi::method(default(code = None, cancel = None))]
    pub async fn submit_code(
        &self,
        flow_id: String,
        code: Option<String>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<PairStateView, SunstormError> {
        let id = parse_id("flow_id", &flow_id)?;
        let s = self.facade.clone();
        self.run(cancel, async move { Ok(PairStateView::from(&s.submit_code(id, code.as_deref()).await?)) }).await
    }

    /// The appliance's wallets for a code-verified flow, with their selected state
    /// (wallets on chains the service did not ask for come back `NotRequested`).
    #[uniffi::method(default(cancel = None))]
    pub async fn wallet_choices(
        &self,
        flow_id: String,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<Vec<WalletRowView>, SunstormError> {
        let id = parse_id("flow_id", &flow_id)?;
        let s = self.facade.clone();
        self.run(cancel, async move { Ok(s.approval_list(id).await?.rows.iter().map(WalletRowView::from).collect()) })
            .await
    }

    /// Records the user's choice of wallets (CAIP-10 accounts from `wallet_choices`).
    #[uniffi::method(default(cancel = None))]
    pub async fn choose_wallets(
        &self,
        flow_id: String,
        accounts: Vec<String>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<PairStateView, SunstormError> {
        let id = parse_id("flow_id", &flow_id)?;
        let accounts = accounts
            .iter()
            .map(|a| {
                AccountId::from_str(a).map_err(|e| SunstormError::InvalidSelection { reason: format!("{a}: {e}") })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let s = self.facade.clone();
        self.run(cancel, async move { Ok(PairStateView::from(&s.choose_wallets(id, &accounts).await?)) }).await
    }

    /// Approves the pair: first the platform's `UserPresence` check, then the appliance is
    /// asked ("confirm on your appliance", reported to the flow listener) and octane told.
    /// Returns `Paired`; `ApplianceDeclined` if declined on the appliance. Cancelling
    /// while the appliance waits ends with `Cancelled` (the flow stays resumable).
    #[uniffi::method(default(cancel = None))]
    pub async fn approve_pair(
        &self,
        flow_id: String,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<PairStateView, SunstormError> {
        let id = parse_id("flow_id", &flow_id)?;
        let s = self.facade.clone();
        let presence = self.presence.clone();
        self.run(cancel, async move {
            let name = match s.pair_state(id).await? {
                sunstorm_core::pair::PairState::WalletsChosen { card, .. } => card.sp.name,
                _ => "this service".to_string(),
            };
            check_presence(presence, format!("Approve pairing with {name}")).await?;
            Ok(PairStateView::from(&s.approve_pair(id).await?))
        })
        .await
    }

    /// The user declines the pair on the phone.
    pub async fn reject_pair(&self, flow_id: String) -> Result<PairStateView, SunstormError> {
        let id = parse_id("flow_id", &flow_id)?;
        let s = self.facade.clone();
        self.run(None, async move { Ok(PairStateView::from(&s.reject_pair(id).await?)) }).await
    }

    /// The current state of a pair flow (e.g. to redraw its screen after a restart).
    pub async fn pair_state(&self, flow_id: String) -> Result<PairStateView, SunstormError> {
        let id = parse_id("flow_id", &flow_id)?;
        let s = self.facade.clone();
        self.run(None, async move { Ok(PairStateView::from(&s.pair_state(id).await?)) }).await
    }

    /// Resumes unfinished pair flows after a restart (e.g. an approval that reached the
    /// appliance but not octane); returns the state of each flow that could be resumed.
    #[uniffi::method(default(cancel = None))]
    pub async fn resume_pending_pairs(
        &self,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<Vec<PairStateView>, SunstormError> {
        let s = self.facade.clone();
        self.run(cancel, async move {
            let mut out = Vec::new();
            for r in s.resume_pending().await? {
                match r {
                    Ok(state) => out.push(PairStateView::from(&state)),
                    Err(e) => tracing::warn!(target: "sunstorm_ffi", code = e.code(), "a pair flow could not resume"),
                }
            }
            Ok(out)
        })
        .await
    }

    /// Every pair this phone holds, newest first.
    pub async fn list_pairs(&self) -> Result<Vec<PairView>, SunstormError> {
        let facade = self.facade.clone();
        self.run(None, async move { Ok(facade.list_pairs()?.iter().map(PairView::from).collect()) }).await
    }

    /// Revokes a pair from the phone: the appliance drops it and signs the revocation,
    /// octane is told (when octane cannot be reached, `sync` tells it later; the pair is
    /// revoked on the phone at once). Needs the appliance.
    #[uniffi::method(default(cancel = None))]
    pub async fn revoke_pair(&self, pair_id: String, cancel: Option<Arc<CancelHandle>>) -> Result<(), SunstormError> {
        let id = parse_id("pair_id", &pair_id)?;
        let s = self.facade.clone();
        self.run(cancel, async move { Ok(s.revoke(id).await?) }).await
    }

    /// Learns revocations made by services and tells the appliances, for every bonded
    /// appliance; returns the pair ids newly revoked and the appliances that could not be
    /// synced (one failing does not stop the others). Throws only when none could be.
    #[uniffi::method(default(cancel = None))]
    pub async fn sync_pairs(&self, cancel: Option<Arc<CancelHandle>>) -> Result<SyncReportView, SunstormError> {
        let s = self.facade.clone();
        self.run(cancel, async move { Ok(SyncReportView::from(s.sync().await?)) }).await
    }

    /// Waits up to `wait_ms` (default 25 s; 0 asks once) for octane to deliver sign
    /// requests and returns every verified request awaiting the user (decoded rows,
    /// warnings, guardrail violations). Requests failing the phone's checks are refused
    /// and never returned.
    #[uniffi::method(default(wait_ms = 25000, cancel = None))]
    pub async fn pending_sign_requests(
        &self,
        wait_ms: i32,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<Vec<SignRequestView>, SunstormError> {
        let s = self.facade.clone();
        self.run(cancel, async move {
            let pending = s.pending_sign_requests(crate::views::millis(wait_ms)).await?;
            Ok(pending.iter().map(SignRequestView::from).collect())
        })
        .await
    }

    /// Approves a sign request: the platform's `UserPresence` check first (with an
    /// approval key instead its biometric prompt, which signs the request and the screen
    /// for the appliance to check), then the appliance signs (progress goes to the flow
    /// listener), the signature is verified for the bound account and sent to octane.
    /// `GuardrailBlocked` if rules block it. The approval key's failures
    /// (`ApprovalCancelled`, `BiometricsLockedOut`, `ApprovalKeyInvalidated`,
    /// `NoBiometrics`) send nothing and leave the request waiting; an appliance that
    /// refuses the proof (`ApplianceRefused` with code `approval_invalid`,
    /// `approval_missing` or `approval_not_enrolled`) ends it, and the service sees that
    /// code.
    #[uniffi::method(default(cancel = None))]
    pub async fn approve_sign(
        &self,
        request_id: String,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<(), SunstormError> {
        let id = parse_id("request_id", &request_id)?;
        let s = self.facade.clone();
        let presence = self.presence.clone();
        let keyed = self.approval_key.is_some();
        self.run(cancel, async move {
            if !keyed {
                check_presence(presence, "Approve the signature request".to_string()).await?;
            }
            s.approve_sign(id).await?;
            Ok(())
        })
        .await
    }

    /// The user declines a sign request (octane tells the service).
    pub async fn reject_sign(&self, request_id: String) -> Result<(), SunstormError> {
        let id = parse_id("request_id", &request_id)?;
        let s = self.facade.clone();
        self.run(None, async move { Ok(s.reject_sign(id).await?) }).await
    }
}
