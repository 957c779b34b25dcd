//! The engines' ports: what the pair and sign engines ask of octane ([`OctaneApi`]) and of
//! the bonded appliance ([`ApplianceApi`]). The engines hold these traits, never the
//! concrete clients, so unit tests drive them with scripted fakes and the shells' clients
//! plug in unchanged: [`OctaneClient`] implements [`OctaneApi`] here, and
//! `appliance::client::ApplianceClient` implements [`ApplianceApi`].

use std::time::Duration;

use uuid::Uuid;

pub use crate::appliance::{ApplianceApi, ProgressFn};
use crate::bytes::Key32;
use crate::code::ValidationCode;
use crate::envelope::SignedEnvelope;
use crate::octane::api::{AppPairInfo, PendingSignRequest, PushTarget, PushTargetRequest};
use crate::octane::client::{LoadedSession, OctaneClient, OctaneError};
use crate::receipt::DisplayProof;

/// The octane calls the pair and sign engines make (the app API, as this phone).
#[async_trait::async_trait]
pub trait OctaneApi: Send + Sync {
    /// Octane's pinned Ed25519 key: stored sessions and sign requests are checked with it.
    fn octane_key(&self) -> Key32;

    /// Loads a pair session, its details verified with the pinned key.
    async fn session(&self, session_id: &str) -> Result<LoadedSession, OctaneError>;

    /// Submits a validation code (every attempt counts against octane's limit).
    async fn check_code(&self, session_id: &str, code: &ValidationCode) -> Result<(), OctaneError>;

    /// Posts the appliance's pair attestation; returns the pair id octane recorded.
    async fn approve_session(&self, session_id: &str, attestation: &SignedEnvelope) -> Result<Uuid, OctaneError>;

    /// Rejects a pair session on the user's behalf.
    async fn reject_session(&self, session_id: &str, reason: Option<String>) -> Result<(), OctaneError>;

    /// The pairs octane knows for this appliance (for revocation sync).
    async fn pairs(&self) -> Result<Vec<AppPairInfo>, OctaneError>;

    /// Posts the appliance's signed revocation of a pair.
    async fn revoke(&self, pair_id: Uuid, revocation: &SignedEnvelope) -> Result<(), OctaneError>;

    /// Long-polls the queued sign requests (unverified: the sign engine checks them).
    async fn pending_sign_requests(&self, wait: Duration) -> Result<Vec<PendingSignRequest>, OctaneError>;

    /// Delivers the appliance's verified signature for a request, with the display digest
    /// and the appliance's verified receipt over it when there are.
    async fn deliver_signature(
        &self,
        request_id: Uuid,
        signature: &[u8],
        proof: Option<&DisplayProof>,
    ) -> Result<(), OctaneError>;

    /// Rejects a sign request with a stable reason code.
    async fn reject_sign(&self, request_id: Uuid, reason_code: &str, message: &str) -> Result<(), OctaneError>;

    /// Registers (or replaces: token rotation) this phone's push target; returns what
    /// octane now holds.
    async fn register_push_target(&self, target: &PushTargetRequest) -> Result<PushTarget, OctaneError>;

    /// This phone's push target as octane holds it (`None` when removed or dropped after
    /// the push service called the token unregistered: register again).
    async fn push_target(&self) -> Result<Option<PushTarget>, OctaneError>;

    /// Removes this phone's push target (octane stops pushing); whether one was there.
    async fn remove_push_target(&self) -> Result<bool, OctaneError>;
}

#[async_trait::async_trait]
impl OctaneApi for OctaneClient {
    fn octane_key(&self) -> Key32 {
        self.config().octane_key
    }

    async fn session(&self, session_id: &str) -> Result<LoadedSession, OctaneError> {
        OctaneClient::session(self, session_id).await
    }

    async fn check_code(&self, session_id: &str, code: &ValidationCode) -> Result<(), OctaneError> {
        OctaneClient::check_code(self, session_id, code).await.map(|_| ())
    }

    async fn approve_session(&self, session_id: &str, attestation: &SignedEnvelope) -> Result<Uuid, OctaneError> {
        OctaneClient::approve(self, session_id, attestation).await.map(|a| a.pair_id)
    }

    async fn reject_session(&self, session_id: &str, reason: Option<String>) -> Result<(), OctaneError> {
        OctaneClient::reject_session(self, session_id, reason).await.map(|_| ())
    }

    async fn pairs(&self) -> Result<Vec<AppPairInfo>, OctaneError> {
        OctaneClient::pairs(self).await.map(|r| r.pairs)
    }

    async fn revoke(&self, pair_id: Uuid, revocation: &SignedEnvelope) -> Result<(), OctaneError> {
        OctaneClient::revoke(self, pair_id, revocation).await.map(|_| ())
    }

    async fn pending_sign_requests(&self, wait: Duration) -> Result<Vec<PendingSignRequest>, OctaneError> {
        OctaneClient::pending_sign_requests(self, wait).await
    }

    async fn deliver_signature(
        &self,
        request_id: Uuid,
        signature: &[u8],
        proof: Option<&DisplayProof>,
    ) -> Result<(), OctaneError> {
        OctaneClient::deliver_signature(self, request_id, signature, proof).await
    }

    async fn reject_sign(&self, request_id: Uuid, reason_code: &str, message: &str) -> Result<(), OctaneError> {
        OctaneClient::reject_sign(self, request_id, reason_code, message).await.map(|_| ())
    }

    async fn register_push_target(&self, target: &PushTargetRequest) -> Result<PushTarget, OctaneError> {
        OctaneClient::register_push_target(self, target)
            .await?
            .target
            .ok_or_else(|| OctaneError::Protocol("octane did not echo the push target".into()))
    }

    async fn push_target(&self) -> Result<Option<PushTarget>, OctaneError> {
        OctaneClient::push_target(self).await.map(|r| r.target)
    }

    async fn remove_push_target(&self) -> Result<bool, OctaneError> {
        OctaneClient::remove_push_target(self).await.map(|r| r.removed)
    }
}
