//! Push through the FFI (`docs/push.md`): the notification extension's object
//! ([`NotificationExtension`]: `open(config, secrets)`, `handle_push(payload)`), and on
//! [`SunstormCore`] the push key, the push a running app received (turned into the pending
//! request without a second fetch) and the registration of this phone's push target.

use std::sync::Arc;

use sunstorm_core::bytes::Key32;
use sunstorm_core::metadata::ShippedBundle;
use sunstorm_core::push::{
    ExtensionConfig, ExtensionError, NotificationExtension as CoreExtension, NotificationOutcome, PushError,
};

use crate::cancel::CancelHandle;
use crate::error::{details_of, SunstormError};
use crate::flow_views::SignRequestView;
use crate::platform::SecretStore;
use crate::secrets::ForeignSecretStore;
use crate::sunstorm::SunstormCore;

/// What the notification extension is configured with: the same values as the app's
/// [`crate::CoreConfig`] (the database in the shared container, the pinned keys). The
/// extension reads the metadata the app uses through the authenticated index the app
/// writes for it (docs/metadata.md), never the bundle file.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NotificationExtensionConfig {
    /// The app's SQLite file, as in `CoreConfig.database_path` (iOS: in the App Group
    /// container both processes see). Opened read-only.
    pub database_path: String,
    /// Octane's pinned Ed25519 public key, 64 hex characters (as the app's).
    pub octane_public_key_hex: String,
    /// The pinned metadata key, as `CoreConfig.metadata_public_key_hex`.
    #[uniffi(default = None)]
    pub metadata_public_key_hex: Option<String>,
    /// Not read: leave it out (reading the bundle file would only cost the extension
    /// memory; it uses the app's index). Kept for configurations written before.
    #[uniffi(default = None)]
    pub metadata_bundle: Option<Vec<u8>>,
}

/// What a push shows.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum NotificationOutcomeView {
    /// Post this notification: every text already checked and sanitised by the core.
    Show {
        /// Names the service ("Acme Exchange asks you to sign").
        title: String,
        /// The action and the amount ("Send ETH: 0.5 ETH. Review it in Sunstorm.").
        body: String,
        /// The category the shell registered its approve/reject actions under
        /// (`sign_request`).
        category: String,
        /// The request: the notification's identifier (and what the review screen opens).
        request_id: String,
        /// Its pair.
        pair_id: String,
        /// Unix seconds: remove the notification then.
        expires_at: i64,
    },
    /// The push carried only the request's id (too large for a push): nothing was
    /// verified, so show no text of the request; wake the app, whose fetch checks it.
    Fetch {
        /// The pair.
        pair_id: String,
        /// The request.
        request_id: String,
    },
    /// Show nothing.
    Suppress {
        /// Stable snake_case code: `blocked`, `expired`, `not_yet_valid`, `revoked`,
        /// `replayed`, `tampered`, `unknown_pair`, `not_bound`, `undecodable`.
        reason: String,
        /// For `blocked`: the guardrail codes it breaks; empty otherwise.
        violations: Vec<String>,
        /// The request, when the push could be opened.
        request_id: Option<String>,
    },
}

impl From<NotificationOutcome> for NotificationOutcomeView {
    fn from(o: NotificationOutcome) -> Self {
        match o {
            NotificationOutcome::Show(n) => NotificationOutcomeView::Show {
                title: n.title,
                body: n.body,
                category: n.category,
                request_id: n.request_id.to_string(),
                pair_id: n.pair_id.to_string(),
                expires_at: i64::try_from(n.expires_at).unwrap_or(i64::MAX),
            },
            NotificationOutcome::Fetch { pair_id, request_id } => {
                NotificationOutcomeView::Fetch { pair_id: pair_id.to_string(), request_id: request_id.to_string() }
            }
            NotificationOutcome::Suppress { reason, request_id } => NotificationOutcomeView::Suppress {
                reason: reason.code().to_string(),
                violations: match &reason {
                    sunstorm_core::push::SuppressReason::Blocked(v) => v.clone(),
                    _ => Vec::new(),
                },
                request_id: request_id.map(|r| r.to_string()),
            },
        }
    }
}

/// The push service a device token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PushPlatform {
    /// Apple Push Notification service (iOS): the token as hex.
    Apns,
    /// Firebase Cloud Messaging (Android): the registration token.
    Fcm,
}

impl From<PushPlatform> for sunstorm_core::octane::api::PushPlatform {
    fn from(p: PushPlatform) -> Self {
        match p {
            PushPlatform::Apns => Self::Apns,
            PushPlatform::Fcm => Self::Fcm,
        }
    }
}

fn hex_key(h: &str, what: &str) -> Result<Key32, SunstormError> {
    let bad = || SunstormError::InvalidConfig { reason: format!("{what} must be 64 hex characters") };
    let k = hex::decode(h.trim()).map_err(|_| bad())?;
    let k: [u8; 32] = k.try_into().map_err(|_| bad())?;
    Ok(Key32(k))
}

fn map_extension(e: ExtensionError) -> SunstormError {
    match e {
        ExtensionError::Store(s) => s.into(),
        ExtensionError::Push(PushError::Secret(s)) => s.into(),
        other @ (ExtensionError::NoPushKey | ExtensionError::Push(_)) => SunstormError::PushNotSetUp {
            code: other.code().to_string(),
            reason: "push is not set up on this phone: open the app once to register for notifications".into(),
            details: details_of(&other),
        },
    }
}

/// The notification extension's core (iOS Notification Service Extension, Android
/// messaging service): opened once per process, then [`NotificationExtension::handle_push`]
/// for each push. It reads the app's database read-only (never migrates or writes), never
/// contacts the appliance, and never waits on the network.
#[derive(uniffi::Object)]
pub struct NotificationExtension {
    inner: CoreExtension,
}

impl std::fmt::Debug for NotificationExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationExtension").finish_non_exhaustive()
    }
}

#[uniffi::export]
impl NotificationExtension {
    /// Opens the app's database read-only and the push key from `secrets` (the store the
    /// app shares with its extension: iOS keychain access group; Android the same app).
    /// `PushNotSetUp` when the app never created a push key; `Storage` when the database is
    /// missing or at another schema version (the app must open it first after an update).
    #[uniffi::constructor]
    pub fn open(
        config: NotificationExtensionConfig,
        secrets: Arc<dyn SecretStore>,
    ) -> Result<Arc<Self>, SunstormError> {
        if config.database_path.trim().is_empty() {
            return Err(SunstormError::InvalidConfig { reason: "database_path is empty".into() });
        }
        let mut cfg = ExtensionConfig::new(
            config.database_path,
            hex_key(&config.octane_public_key_hex, "octane_public_key_hex")?,
        );
        cfg.metadata_key = match &config.metadata_public_key_hex {
            Some(h) => Some(hex_key(h, "metadata_public_key_hex")?),
            None => None,
        };
        cfg.shipped_metadata = config.metadata_bundle.map(ShippedBundle::new);
        let secrets = ForeignSecretStore::new(secrets);
        let inner = CoreExtension::open(cfg, &secrets).map_err(map_extension)?;
        Ok(Arc::new(Self { inner }))
    }

    /// Decides what one push shows: the push's data as delivered (the sealed bytes, after
    /// base64-decoding the `sigil` field). A push that does not open, fails a signature or a
    /// check, or that the guardrails would block is `Suppress`ed with its reason; `Err` only
    /// when the database cannot be read.
    pub fn handle_push(&self, payload: Vec<u8>) -> Result<NotificationOutcomeView, SunstormError> {
        Ok(self.inner.handle_push(&payload).map_err(map_extension)?.into())
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl SunstormCore {
    /// This phone's push public key (X25519, 64 hex characters), created on first use and
    /// kept in the secret store: octane seals pushes to it.
    pub fn push_public_key_hex(&self) -> Result<String, SunstormError> {
        Ok(hex::encode(self.facade.push_public_key()?.0.as_bytes()))
    }

    /// Registers this phone for push with octane, for every bonded appliance: the
    /// platform's device token (APNs hex token / FCM registration token) and the push key.
    /// Call it when the platform hands the app a token, again when it rotates it, and after
    /// bonding another appliance. Returns how many appliances push to this phone.
    /// `OctaneRejected` (`bad_request`) for a token not of the platform's form.
    #[uniffi::method(default(cancel = None))]
    pub async fn register_push_target(
        &self,
        platform: PushPlatform,
        device_token: String,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<u32, SunstormError> {
        let s = self.facade.clone();
        self.run(cancel, async move { Ok(s.register_push_target(platform.into(), &device_token).await?) }).await
    }

    /// Stops push for this phone (the user turned notifications off): octane forgets the
    /// target for every bonded appliance; `pendingSignRequests` keeps working. Returns how
    /// many targets were removed.
    #[uniffi::method(default(cancel = None))]
    pub async fn remove_push_target(&self, cancel: Option<Arc<CancelHandle>>) -> Result<u32, SunstormError> {
        let s = self.facade.clone();
        self.run(cancel, async move { Ok(s.remove_push_target().await?) }).await
    }

    /// A push the running app received (in the foreground, or the notification the user
    /// tapped): the sealed bytes become the pending request with every check of the poll,
    /// without fetching it again (a push that carried only the id fetches its pair's queue
    /// once). The same errors as `pending_sign_requests` (`RequestRefused` for a tampered,
    /// replayed or expired request, `GuardrailBlocked`…).
    #[uniffi::method(default(cancel = None))]
    pub async fn receive_push(
        &self,
        payload: Vec<u8>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<SignRequestView, SunstormError> {
        let s = self.facade.clone();
        self.run(cancel, async move { Ok(SignRequestView::from(&s.receive_push(&payload).await?)) }).await
    }
}
