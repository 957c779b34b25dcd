//! The phones bonded with an appliance, and forgetting one (a lost phone): the facade asks
//! the appliance, then relays its signed `PhoneForgotten` to octane so that octane stops
//! routing the appliance's requests to that phone. When octane cannot be told, the
//! statement waits in the store's outbox and [`Sunstorm::sync`] delivers it (with the pair
//! revocations the sign engine queued there, [`crate::sign::PAIR_REVOKED`]).

use uuid::Uuid;

use super::{ApplianceId, CoreError, Sunstorm};
use crate::appliance::client::{ApplianceClient, ForgottenReceipt};
use crate::appliance::PhoneEntry;
use crate::audit::AuditEvent;
use crate::bytes::Key32;
use crate::octane::client::OctaneError;
use crate::sign::PAIR_REVOKED;

/// Outbox kind of an appliance's `PhoneForgotten` statement.
const PHONE_FORGOTTEN: &str = "phone_forgotten";

/// Failed deliveries after which a statement is dropped from the outbox (octane keeps
/// refusing it; the appliance still refuses the phone).
const MAX_DELIVERY_ATTEMPTS: u32 = 50;

/// What forgetting a phone did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgottenPhone {
    /// The forgotten phone's app key.
    pub app_key: Key32,
    /// When the appliance forgot it (Unix seconds, the appliance's clock).
    pub forgotten_at: u64,
    /// Octane was told at once. When false, the statement waits in the phone's store and
    /// [`Sunstorm::sync`] delivers it; until then octane may still route the appliance's
    /// requests to the forgotten phone (which its appliance refuses).
    pub octane_told: bool,
}

impl Sunstorm {
    /// The phones bonded with appliance `id` (the only one when `None`), in bonding order,
    /// names sanitised; `this_phone` marks this one. Asks the appliance; the phones it forgot
    /// on its own side are queued for octane (delivered now when octane answers, else by
    /// [`Sunstorm::sync`]).
    #[tracing::instrument(skip_all)]
    pub async fn bonded_phones(&self, id: Option<&ApplianceId>) -> Result<Vec<PhoneEntry>, CoreError> {
        let b = self.resolve(id).await?;
        let (phones, own) = b.appliance.phones_and_own_forgets().await?;
        if self.learn_own_forgets(&b.record.appliance_identity, own)? > 0 {
            if let Err(e) = self.relay_outbox().await {
                tracing::warn!(error = %e, "bonded phones: the octane outbox could not be read");
            }
        }
        Ok(phones)
    }

    /// Asks a bonded appliance for the phones it forgot on its own side and queues what
    /// this phone has not relayed yet; returns how many were queued.
    pub(super) async fn fetch_own_forgets(
        &self,
        appliance: &Key32,
        client: &ApplianceClient,
    ) -> Result<usize, CoreError> {
        let (_, own) = client.phones_and_own_forgets().await?;
        self.learn_own_forgets(appliance, own)
    }

    /// Queues for octane the appliance's own forget statements this phone has not seen yet
    /// (its audit log holds the newest forget it learned of per phone); returns how many.
    fn learn_own_forgets(&self, appliance: &Key32, own: Vec<ForgottenReceipt>) -> Result<usize, CoreError> {
        let now = self.clock.now_unix();
        let mut queued = 0;
        for r in own {
            let subject = r.statement.app_key.to_hex();
            let seen = self.store.last_audit(&subject, AuditEvent::PHONE_FORGOTTEN)?.is_some_and(|e| {
                matches!(e.event, AuditEvent::PhoneForgotten { appliance: a, forgotten_at }
                    if a == *appliance && forgotten_at >= r.statement.forgotten_at)
            });
            if seen {
                continue;
            }
            self.store.queue_for_octane(appliance, PHONE_FORGOTTEN, &subject, &r.envelope, now)?;
            let event = AuditEvent::PhoneForgotten { appliance: *appliance, forgotten_at: r.statement.forgotten_at };
            self.store.audit(now, &subject, &event)?;
            tracing::info!(phone = %r.statement.app_key.fingerprint(), "the appliance forgot a phone on its own; octane will be told");
            queued += 1;
        }
        Ok(queued)
    }

    /// Forgets the phone with `app_key` on appliance `id` (the only one when `None`): the
    /// appliance asks its user to confirm, drops the phone's bond, cuts its session and
    /// refuses it from then on (`ApplianceError::CannotForgetSelf` for this phone's own
    /// key). Its signed statement is then relayed to octane, which stops routing the
    /// appliance's requests to that phone; if octane cannot be reached the statement is
    /// queued for [`Sunstorm::sync`] and the answer says so.
    #[tracing::instrument(skip_all, fields(phone = %app_key.fingerprint()))]
    pub async fn forget_phone(&self, id: Option<&ApplianceId>, app_key: Key32) -> Result<ForgottenPhone, CoreError> {
        let b = self.resolve(id).await?;
        let appliance = b.record.appliance_identity;
        let request_id = Uuid::new_v4();
        let receipt = b.appliance.forget_phone(request_id, app_key, self.progress(request_id)).await?;
        let now = self.clock.now_unix();
        let subject = app_key.to_hex();
        let event = AuditEvent::PhoneForgotten { appliance, forgotten_at: receipt.statement.forgotten_at };
        if let Err(e) = self.store.audit(now, &subject, &event) {
            tracing::warn!(error = %e, "forget phone: audit log write failed");
        }
        let octane_told = match b.octane.forget_phone(&receipt.envelope).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "forget phone: octane not told; queued for sync");
                self.store.queue_for_octane(&appliance, PHONE_FORGOTTEN, &subject, &receipt.envelope, now)?;
                false
            }
        };
        tracing::info!(octane_told, "phone forgotten");
        Ok(ForgottenPhone { app_key, forgotten_at: receipt.statement.forgotten_at, octane_told })
    }

    /// Delivers the statements waiting for octane (bounded by the outbox's size); returns
    /// how many were delivered. A statement of an appliance no longer bonded waits.
    pub(super) async fn relay_outbox(&self) -> Result<usize, CoreError> {
        let mut delivered = 0;
        for e in self.store.octane_outbox()? {
            let Ok(b) = self.resolve(Some(&e.appliance)).await else { continue };
            let sent = match e.kind.as_str() {
                PHONE_FORGOTTEN => b.octane.forget_phone(&e.statement).await.map(|_| ()),
                PAIR_REVOKED => match Uuid::parse_str(&e.subject) {
                    Ok(pair_id) => b.sign.relay_revocation(pair_id, &e.statement).await,
                    Err(_) => Err(OctaneError::Protocol(format!("queued revocation of a bad pair id: {}", e.subject))),
                },
                other => {
                    tracing::warn!(kind = other, "sync: a queued statement of an unknown kind waits");
                    continue;
                }
            };
            match sent {
                Ok(()) => {
                    self.store.delivered_to_octane(&e.appliance, &e.kind, &e.subject)?;
                    delivered += 1;
                }
                Err(err) if e.attempts.saturating_add(1) >= MAX_DELIVERY_ATTEMPTS => {
                    tracing::warn!(error = %err, "sync: octane keeps refusing a statement; dropped");
                    self.store.delivered_to_octane(&e.appliance, &e.kind, &e.subject)?;
                }
                Err(err) => {
                    tracing::info!(error = %err, "sync: octane not told yet");
                    self.store.octane_attempt_failed(&e.appliance, &e.kind, &e.subject)?;
                }
            }
        }
        Ok(delivered)
    }
}
