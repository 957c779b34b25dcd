//! The notification entry point: what a notification extension process (iOS Notification
//! Service Extension, Android `FirebaseMessagingService`) calls for each push, so that the
//! text a person sees comes from a request the core has checked (docs/push.md).
//!
//! [`NotificationExtension::open`] opens the app's database **read-only**
//! ([`Store::open_read_only`]: no migration, no write; refused unless at this build's schema
//! version) and the push key from the shared [`SecretStore`]. [`NotificationExtension::handle_push`]
//! then unseals, verifies the SP's and octane's signatures (the sign engine's own check),
//! the pair and binding, the validity window and replay (request ids the app already
//! handled), decodes with the metadata bundle and address book the app uses, adds the
//! history warnings and evaluates the guardrails — and answers [`NotificationOutcome::Show`]
//! with plain-language text, or [`NotificationOutcome::Suppress`] with a reason. It never
//! contacts the appliance or octane: when the push carries only the request id (the
//! request did not fit the platform limit) it answers [`NotificationOutcome::Fetch`] and
//! the app fetches the request itself (the long-poll), so the extension never blocks on
//! the network.

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::payload::{unseal, PushContent, PushError, PushKeyPair};
use crate::address_book::UserAddressBook;
use crate::bytes::Key32;
use crate::clock::{Clock, SystemClock};
use crate::decode::erc7730::DescriptorSet;
use crate::decode::DecodedPayload;
use crate::display::{clean, TextKind};
use crate::guardrails::{evaluate, SpendContext};
use crate::metadata::{IndexError, MetadataIndex, ShippedBundle};
use crate::model::SignRequest;
use crate::octane::api::PendingSignRequest;
use crate::secrets::SecretStore;
use crate::sign::{check_binding, check_freshness, load_guardrails, render, verify_delivered, SignError};
use crate::store::{PairRecord, Seen, SignOutcome, Store, StoreError};

/// The notification category of a verified sign request (the shells register their
/// approve/reject actions under it).
pub const SIGN_REQUEST_CATEGORY: &str = "sign_request";

/// What the extension needs to know: the same values the app is configured with.
#[derive(Debug, Clone)]
pub struct ExtensionConfig {
    /// The app's SQLite file (in the App Group container on iOS).
    pub db_path: PathBuf,
    /// Octane's pinned Ed25519 public key.
    pub octane_key: Key32,
    /// The pinned metadata signing key (as the app's); `None`: no bundle. The extension
    /// reads the bundle the app uses through the index the app writes for it
    /// ([`MetadataIndex`], docs/metadata.md), never the whole bundle.
    pub metadata_key: Option<Key32>,
    /// Not read by the extension (it reads the app's index): leave it `None`, reading the
    /// file would only cost the extension memory. Kept so one configuration type serves
    /// both sides.
    pub shipped_metadata: Option<ShippedBundle>,
    /// Tolerated clock skew for sign requests (seconds), as the app's.
    pub max_skew_secs: u64,
}

impl ExtensionConfig {
    /// A configuration for the database at `db_path`, with the default skew and no bundle.
    pub fn new(db_path: impl Into<PathBuf>, octane_key: Key32) -> Self {
        Self {
            db_path: db_path.into(),
            octane_key,
            metadata_key: None,
            shipped_metadata: None,
            max_skew_secs: crate::sign::DEFAULT_MAX_SKEW_SECS,
        }
    }
}

/// Why the extension could not open or read its state (not about a push: those are
/// [`SuppressReason`]s). The shell shows no notification of its own making.
#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    /// There is no push key in the secret store: the app never registered for push (or the
    /// keychain access group / app is not shared).
    #[error("no push key in the secret store")]
    NoPushKey,
    /// The push key could not be read.
    #[error(transparent)]
    Push(#[from] PushError),
    /// The database could not be opened or read (including
    /// [`StoreError::SchemaMismatch`]: the app must open it first after an update).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ExtensionError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ExtensionError::NoPushKey => "no_push_key",
            ExtensionError::Push(_) => "push_key_error",
            ExtensionError::Store(StoreError::SchemaMismatch { .. }) => "schema_mismatch",
            ExtensionError::Store(_) => "store_error",
        }
    }
}

/// Why a push shows nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuppressReason {
    /// The guardrails block the request (their codes).
    Blocked(Vec<String>),
    /// The request expired.
    Expired,
    /// The request's times are not acceptable (created in the future, lifetime not
    /// positive or too long).
    NotYetValid,
    /// The pair is revoked on this phone.
    Revoked,
    /// The request id was already handled here (or reused with another body).
    Replayed,
    /// The payload does not open with this phone's push key, a signature does not verify,
    /// or the signed body is malformed or does not match its envelope.
    Tampered,
    /// The request names a pair this phone does not have.
    UnknownPair,
    /// The account is not bound to the pair on the request's chain.
    NotBound,
    /// The payload cannot be decoded for display (it would be refused in the app).
    Undecodable,
}

impl SuppressReason {
    /// A stable snake_case code (logs, the shells, tests).
    pub fn code(&self) -> &'static str {
        match self {
            SuppressReason::Blocked(_) => "blocked",
            SuppressReason::Expired => "expired",
            SuppressReason::NotYetValid => "not_yet_valid",
            SuppressReason::Revoked => "revoked",
            SuppressReason::Replayed => "replayed",
            SuppressReason::Tampered => "tampered",
            SuppressReason::UnknownPair => "unknown_pair",
            SuppressReason::NotBound => "not_bound",
            SuppressReason::Undecodable => "undecodable",
        }
    }

    fn of(e: &SignError) -> Option<Self> {
        Some(match e {
            SignError::UnknownPair(_) => SuppressReason::UnknownPair,
            SignError::PairRevoked => SuppressReason::Revoked,
            SignError::BadSpSignature | SignError::BadOctaneSignature | SignError::Malformed(_) => {
                SuppressReason::Tampered
            }
            SignError::Expired => SuppressReason::Expired,
            SignError::BadValidity(_) => SuppressReason::NotYetValid,
            SignError::Replay => SuppressReason::Replayed,
            SignError::AccountNotBound(_) => SuppressReason::NotBound,
            SignError::Undecodable(_) => SuppressReason::Undecodable,
            SignError::Blocked(rules) => SuppressReason::Blocked(rules.clone()),
            _ => return None,
        })
    }
}

/// A notification to show, in plain language, every string through the display
/// sanitiser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Names the service: "Acme asks you to sign".
    pub title: String,
    /// The action and the amount: "Send ETH: 0.5 ETH on Ethereum. Review it in Sunstorm."
    pub body: String,
    /// [`SIGN_REQUEST_CATEGORY`].
    pub category: String,
    /// The request (the notification's identifier and collapse id).
    pub request_id: Uuid,
    /// Its pair.
    pub pair_id: Uuid,
    /// Unix seconds; the shell removes the notification then.
    pub expires_at: u64,
}

/// What to do with a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// Show this notification.
    Show(Notification),
    /// The push carried only the id (the request was too large for a push): nothing was
    /// verified. The shell wakes the app to fetch it (the app's long-poll, which runs every
    /// check) and shows no request text of its own; the pair is known and active.
    Fetch {
        /// The pair.
        pair_id: Uuid,
        /// The request.
        request_id: Uuid,
    },
    /// Show nothing.
    Suppress {
        /// Why.
        reason: SuppressReason,
        /// The request, when the push could be opened.
        request_id: Option<Uuid>,
    },
}

impl NotificationOutcome {
    fn suppress(reason: SuppressReason, request_id: Option<Uuid>) -> Self {
        NotificationOutcome::Suppress { reason, request_id }
    }
}

/// How the extension reads the metadata bundle the app uses.
#[derive(Debug)]
enum Clear {
    /// No metadata key is configured: the built-in decoders only (as the app without one).
    Off,
    /// Through the app's authenticated index.
    Index(MetadataIndex),
    /// A key is configured but the index cannot be used (its error code): a request that
    /// needs the bundle is left to the app ([`NotificationOutcome::Fetch`]).
    Unusable(&'static str),
}

/// The notification extension's core: opened once per extension process, then
/// [`NotificationExtension::handle_push`] per push.
pub struct NotificationExtension {
    store: Arc<Store>,
    key: PushKeyPair,
    octane_key: Key32,
    max_skew_secs: u64,
    metadata: Clear,
    book: UserAddressBook,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for NotificationExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationExtension").field("key", &self.key).finish_non_exhaustive()
    }
}

impl NotificationExtension {
    /// Opens the app's database read-only and the push key from `secrets`.
    pub fn open(cfg: ExtensionConfig, secrets: &dyn SecretStore) -> Result<Self, ExtensionError> {
        Self::open_with_clock(cfg, secrets, Arc::new(SystemClock))
    }

    /// [`NotificationExtension::open`] with an explicit clock (tests).
    #[tracing::instrument(skip_all)]
    pub fn open_with_clock(
        cfg: ExtensionConfig,
        secrets: &dyn SecretStore,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ExtensionError> {
        let key = PushKeyPair::load(secrets)?.ok_or(ExtensionError::NoPushKey)?;
        let store = Arc::new(Store::open_read_only(&cfg.db_path)?);
        let metadata = match cfg.metadata_key {
            None => Clear::Off,
            Some(k) => match MetadataIndex::open(store.clone(), secrets, k.as_bytes()) {
                Ok(index) => Clear::Index(index),
                Err(IndexError::Store(e)) => return Err(ExtensionError::Store(e)),
                Err(e) => {
                    tracing::warn!(code = e.code(), error = %e, "push: the metadata index cannot be used");
                    Clear::Unusable(e.code())
                }
            },
        };
        let book = UserAddressBook::load(store.clone(), clock.clone()).map_err(|e| match e {
            crate::address_book::AddressBookError::Store(s) => ExtensionError::Store(s),
            other => ExtensionError::Store(StoreError::Corrupt { what: "address_book", detail: other.to_string() }),
        })?;
        tracing::debug!("push: extension opened");
        Ok(Self { store, key, octane_key: cfg.octane_key, max_skew_secs: cfg.max_skew_secs, metadata, book, clock })
    }

    /// Decides what one push shows. `Err` only when the database cannot be read.
    #[tracing::instrument(skip_all, fields(len = sealed.len()))]
    pub fn handle_push(&self, sealed: &[u8]) -> Result<NotificationOutcome, ExtensionError> {
        let content = match unseal(&self.key, sealed) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "push: payload refused");
                return Ok(NotificationOutcome::suppress(SuppressReason::Tampered, None));
            }
        };
        match content {
            PushContent::Request(delivered) => self.check(&delivered),
            PushContent::RequestId { pair_id, request_id } => {
                let Some(pair) = self.store.pair(pair_id)? else {
                    return Ok(NotificationOutcome::suppress(SuppressReason::UnknownPair, Some(request_id)));
                };
                if pair.status != crate::store::PairStatus::Active {
                    return Ok(NotificationOutcome::suppress(SuppressReason::Revoked, Some(request_id)));
                }
                if self.store.was_seen(request_id)? {
                    return Ok(NotificationOutcome::suppress(SuppressReason::Replayed, Some(request_id)));
                }
                Ok(NotificationOutcome::Fetch { pair_id, request_id })
            }
        }
    }

    /// Every check of the sign engine's arrival path, reading only.
    fn check(&self, delivered: &PendingSignRequest) -> Result<NotificationOutcome, ExtensionError> {
        let id = Some(delivered.request_id);
        match self.verdict(delivered) {
            Ok(Some(n)) => {
                tracing::info!(request = %n.request_id, "push: notify");
                Ok(NotificationOutcome::Show(n))
            }
            Ok(None) => Ok(NotificationOutcome::Fetch { pair_id: delivered.pair_id, request_id: delivered.request_id }),
            Err(SignError::Store(e)) => Err(ExtensionError::Store(e)),
            Err(e) => match SuppressReason::of(&e) {
                Some(reason) => {
                    tracing::info!(reason = reason.code(), error = %e, "push: suppressed");
                    Ok(NotificationOutcome::suppress(reason, id))
                }
                None => {
                    tracing::warn!(code = e.code(), error = %e, "push: unexpected failure");
                    Ok(NotificationOutcome::suppress(SuppressReason::Tampered, id))
                }
            },
        }
    }

    /// The notification for a request that passes every check; `Ok(None)` when it passes
    /// every check made before decoding but the metadata it needs cannot be read here.
    fn verdict(&self, delivered: &PendingSignRequest) -> Result<Option<Notification>, SignError> {
        let pair = self.store.pair(delivered.pair_id)?.ok_or(SignError::UnknownPair(delivered.pair_id))?;
        let req = verify_delivered(delivered, &pair, self.octane_key.as_bytes())?;
        let now = self.clock.now_unix();
        // Replay: a request the app already decided (or refused, or saw with another body)
        // never notifies again; one still waiting for the user may (a re-sent push).
        let body_hash: [u8; 32] = Sha256::digest(&delivered.request.body).into();
        match self.store.seen(req.request_id, &body_hash)? {
            None | Some(Seen::New) => {}
            Some(Seen::DifferentBody) => return Err(SignError::Replay),
            Some(Seen::SameBody) => match self.store.sign_record(req.request_id)? {
                Some(r) if r.outcome == SignOutcome::Pending => {}
                _ => return Err(SignError::Replay),
            },
        }
        check_binding(&pair, &req)?;
        check_freshness(&req, now, self.max_skew_secs)?;
        let Some(decoded) = self.screen(&pair, &req, now)? else { return Ok(None) };
        let rules = load_guardrails(&self.store)?;
        let spent = if rules.limits.contains_key(&req.chain) {
            self.store.spend(req.pair_id, &req.chain, now, Some(req.request_id))?
        } else {
            SpendContext::default()
        };
        let violations = evaluate(&rules, &decoded, &spent);
        if !violations.is_empty() {
            return Err(SignError::Blocked(violations.iter().map(|v| v.code().to_string()).collect()));
        }
        Ok(Some(notification(&pair.sp.name, &decoded, delivered, req.expires_at)))
    }

    /// The screen the app shows for `req` (the same render, with the bundle the app uses
    /// read through its index), with the history warnings. `Ok(None)`: the render needs
    /// metadata the index cannot give (none, stale, or a row that does not authenticate) —
    /// the app must show this one.
    fn screen(&self, pair: &PairRecord, req: &SignRequest, now: u64) -> Result<Option<DecodedPayload>, SignError> {
        let go = |clear: Option<&DescriptorSet>| render(&self.store, pair, req, now, clear, &self.book);
        let rendered = match &self.metadata {
            Clear::Off => go(None),
            Clear::Index(index) => match index.render_with(|set| go(Some(set))) {
                Ok(r) => r,
                Err(IndexError::Store(e)) => return Err(SignError::Store(e)),
                Err(e) => {
                    tracing::warn!(code = e.code(), error = %e, "push: metadata index refused; the app shows it");
                    return Ok(None);
                }
            },
            Clear::Unusable(code) => {
                let set = DescriptorSet::partial();
                let r = go(Some(&set));
                if !set.take_misses().is_empty() {
                    tracing::info!(
                        code,
                        "push: the request needs metadata the extension cannot read; the app shows it"
                    );
                    return Ok(None);
                }
                r
            }
        };
        let (_, decoded, assessed) = rendered.map_err(|e| SignError::Undecodable(e.to_string()))?;
        assessed?;
        Ok(Some(decoded))
    }
}

/// The row that says how much: a token amount (a descriptor's `amount` or `value`
/// parameter on a clear-signed screen), else the native value when it is not zero, else an
/// allowance.
fn amount(decoded: &DecodedPayload) -> Option<&str> {
    let by = |want: &dyn Fn(&str) -> bool| decoded.fields.iter().find(|f| want(&f.key)).map(|f| f.value.as_str());
    by(&|k| k == "amount" || k.ends_with(".amount"))
        .or_else(|| by(&|k| k == "clear.value"))
        .or_else(|| by(&|k| k == "value" && decoded.facts.native_value != 0))
        .or_else(|| by(&|k| k == "allowance"))
}

/// The notification's text: the service, the action, the amount (and how many warnings
/// to read), each part and the whole through the display sanitiser.
fn notification(
    sp_name: &str,
    decoded: &DecodedPayload,
    delivered: &PendingSignRequest,
    expires_at: u64,
) -> Notification {
    let sp = clean(sp_name, TextKind::Name);
    let action = clean(&decoded.title, TextKind::Label);
    let mut body = match amount(decoded) {
        Some(a) => format!("{action}: {}.", clean(a, TextKind::Value)),
        None => format!("{action}."),
    };
    match decoded.warnings.len() {
        0 => body.push_str(" Review it in Sunstorm."),
        1 => body.push_str(" 1 warning: review it in Sunstorm."),
        n => body.push_str(&format!(" {n} warnings: review it in Sunstorm.")),
    }
    Notification {
        title: clean(&format!("{sp} asks you to sign"), TextKind::Label),
        body: clean(&body, TextKind::Value),
        category: SIGN_REQUEST_CATEGORY.to_string(),
        request_id: delivered.request_id,
        pair_id: delivered.pair_id,
        expires_at,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod shared_db_tests;

#[cfg(test)]
mod metadata_tests;
