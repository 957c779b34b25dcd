//! The activity screen: what was signed, when, for whom ([`SignHistoryRow`]), and the
//! audit log of pairs, signatures and settings changes ([`AuditRow`], each with a typed
//! [`AuditEventView`] the shell words). Read from the core's
//! database; nothing here is secret (no keys, no signatures).

use std::collections::HashMap;

use serde_json::Value;
use sunstorm_core::audit::{Actor, AuditEvent, BlockedAt};
use sunstorm_core::store::{AuditEntry, SignOutcome, SignRecord};
use uuid::Uuid;

use crate::error::SunstormError;
use crate::flow_views::{kind_name, FieldRow};
use crate::settings::{format_amount, GuardrailSettings};
use crate::sunstorm::SunstormCore;
use crate::views::unix;
use sunstorm_core::display::{clean, TextKind};

/// What became of a sign request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SignOutcomeView {
    /// Shown to the user, not decided yet.
    Pending,
    /// The appliance signed; the signature is not yet confirmed delivered to the service.
    Signed,
    /// Signed and delivered to the service.
    Completed,
    /// Declined by the user (on the phone or the appliance).
    Rejected,
    /// Refused by the user's guardrails before anyone was asked.
    Blocked,
    /// Not signed because of an error (expired, appliance refused, bad signature…).
    Failed,
}

impl From<SignOutcome> for SignOutcomeView {
    fn from(o: SignOutcome) -> Self {
        match o {
            SignOutcome::Pending => SignOutcomeView::Pending,
            SignOutcome::Signed => SignOutcomeView::Signed,
            SignOutcome::Completed => SignOutcomeView::Completed,
            SignOutcome::Rejected => SignOutcomeView::Rejected,
            SignOutcome::Blocked => SignOutcomeView::Blocked,
            SignOutcome::Failed => SignOutcomeView::Failed,
        }
    }
}

/// One sign request on the activity screen.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SignHistoryRow {
    /// The request id.
    pub request_id: String,
    /// The pair it came through.
    pub pair_id: String,
    /// The service's name (as vouched for at pair time).
    pub sp_name: String,
    /// CAIP-2 chain.
    pub chain: String,
    /// Human chain name.
    pub chain_name: String,
    /// The account asked to sign (CAIP-10).
    pub account: String,
    /// Shortened address for small screens.
    pub short_address: String,
    /// Payload kind (`evm_transaction`, `eip191_message`, `eip712_typed_data`,
    /// `solana_transaction`).
    pub kind: String,
    /// One line saying what it was ("Send ETH"), as shown at review time.
    pub title: String,
    /// The decoded payload, row by row, as shown at review time.
    pub fields: Vec<FieldRow>,
    /// Native value it moves ("0.05 ETH"), when non-zero and known.
    pub value: Option<String>,
    /// What became of it.
    pub outcome: SignOutcomeView,
    /// Stable snake_case reason for a rejection, block or failure (`user_rejected`,
    /// `guardrail`, `expired`…).
    pub reason: Option<String>,
    /// Unix seconds, when the phone received it.
    pub received_at: i64,
    /// Unix seconds, when it was decided.
    pub decided_at: Option<i64>,
    /// The display digest of the screen shown for review (64 hex digits); `None` for
    /// requests recorded before it was kept.
    #[uniffi(default = None)]
    pub display_digest: Option<String>,
    /// Its short fingerprint ("3F9A-12C4"), as the appliance showed it.
    #[uniffi(default = None)]
    pub display_fingerprint: Option<String>,
}

impl SignHistoryRow {
    /// A row for `r`, naming the service from `sp_names` (pair id → name).
    pub(crate) fn new(r: &SignRecord, sp_names: &HashMap<Uuid, String>) -> Self {
        let s = &r.summary;
        let fields = s
            .get("fields")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .filter_map(|f| {
                        Some(FieldRow {
                            label: f.get("label")?.as_str()?.to_string(),
                            value: f.get("value")?.as_str()?.to_string(),
                            key: f.get("key").and_then(Value::as_str).unwrap_or_default().to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        SignHistoryRow {
            request_id: r.request_id.to_string(),
            pair_id: r.pair_id.to_string(),
            sp_name: sp_names
                .get(&r.pair_id)
                .map(|n| clean(n, TextKind::Name))
                .unwrap_or_else(|| "Unknown service".into()),
            chain: r.chain.to_string(),
            chain_name: r.chain.display_name(),
            account: r.account.to_string(),
            short_address: r.account.short_address(),
            kind: kind_name(&r.kind),
            title: s.get("title").and_then(Value::as_str).unwrap_or("Signature request").to_string(),
            fields,
            value: r.native_value.filter(|v| *v > 0).map(|v| {
                format!("{} {}", format_amount(&r.chain, v), sunstorm_core::decode::units::native_currency(&r.chain).0)
            }),
            outcome: r.outcome.into(),
            reason: r.reason.clone(),
            received_at: unix(r.received_at),
            decided_at: r.decided_at.map(unix),
            display_digest: r.display_digest.map(|d| d.hex()),
            display_fingerprint: r.display_digest.map(|d| d.fingerprint()),
        }
    }
}

/// Who took an action in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AuditActor {
    /// The user, on this phone.
    Phone,
    /// The user, on the appliance.
    Appliance,
    /// The service.
    Service,
}

impl From<Actor> for AuditActor {
    fn from(a: Actor) -> Self {
        match a {
            Actor::Phone => AuditActor::Phone,
            Actor::Appliance => AuditActor::Appliance,
            Actor::Sp => AuditActor::Service,
        }
    }
}

/// What an audit log entry records, for the shell to word ("Paired with Acme (2
/// accounts)"). Strings meant for a person are already sanitised.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum AuditEventView {
    /// A pair was made.
    PairApproved {
        /// The new pair's id.
        pair_id: String,
        /// The service's name.
        sp_name: String,
        /// The accounts approved (CAIP-10).
        accounts: Vec<String>,
    },
    /// A pair request was declined.
    PairRejected {
        /// Where.
        by: AuditActor,
    },
    /// A pair was revoked.
    PairRevoked {
        /// By whom.
        by: AuditActor,
    },
    /// The user approved a sign request on the phone.
    SignApproved {
        /// Its one-line summary as shown for review.
        title: String,
        /// The short fingerprint of the screen the user approved ("3F9A-12C4"); empty for
        /// entries written before display digests.
        display_fingerprint: String,
    },
    /// The appliance signed and its signature verified.
    SignSigned {
        /// The short fingerprint of the screen the appliance was sent and signed a receipt
        /// over; empty for entries written before display digests.
        display_fingerprint: String,
    },
    /// A sign request was declined.
    SignRejected {
        /// Where.
        by: AuditActor,
    },
    /// The guardrails blocked a sign request.
    SignBlocked {
        /// The rules it broke (stable codes, e.g. `per_day_limit_exceeded`).
        violations: Vec<String>,
        /// `true` when blocked at approval (the rules or spend changed meanwhile), `false`
        /// when blocked on arrival.
        at_approval: bool,
    },
    /// The user replaced the guardrails.
    GuardrailsChanged {
        /// The guardrails as set.
        settings: GuardrailSettings,
    },
    /// An appliance was forgotten on this phone.
    ApplianceForgotten {
        /// Its name.
        name: String,
    },
    /// A phone (perhaps lost) was forgotten by a bonded appliance, asked from this phone;
    /// the row's subject is the forgotten phone's app key (hex).
    PhoneForgotten {
        /// Short fingerprint of the identity key of the appliance that forgot it (as on
        /// the appliance's screen and in its `identity_fingerprint`).
        appliance_fingerprint: String,
        /// Unix seconds (the appliance's clock), when the appliance forgot it.
        forgotten_at: i64,
    },
    /// A newer metadata bundle (what review screens are rendered from) was fetched from
    /// octane, verified and is in use.
    MetadataUpdated {
        /// Its content version.
        version: i64,
    },
    /// The user labelled an address or removed its label; the row's subject is the
    /// account (CAIP-10, `eip155:1:0xAbC…`).
    AddressLabelChanged {
        /// The label as set (sanitised); `None`: removed.
        label: Option<String>,
    },
    /// An entry from an older version that could not be typed (kept for the record).
    Other {
        /// The kind it was recorded with.
        kind: String,
    },
}

impl From<&AuditEvent> for AuditEventView {
    fn from(e: &AuditEvent) -> Self {
        let name = |s: &str| clean(s, TextKind::Name);
        match e {
            AuditEvent::PairApproved { pair_id, sp, bindings } => AuditEventView::PairApproved {
                pair_id: pair_id.to_string(),
                sp_name: name(sp),
                accounts: bindings.iter().map(ToString::to_string).collect(),
            },
            AuditEvent::PairRejected { by } => AuditEventView::PairRejected { by: (*by).into() },
            AuditEvent::PairRevoked { by } => AuditEventView::PairRevoked { by: (*by).into() },
            AuditEvent::SignApproved { title, display_digest, .. } => AuditEventView::SignApproved {
                title: clean(title, TextKind::Value),
                display_fingerprint: display_digest.as_ref().map(|d| d.fingerprint()).unwrap_or_default(),
            },
            AuditEvent::SignSigned { display_digest, .. } => AuditEventView::SignSigned {
                display_fingerprint: display_digest.as_ref().map(|d| d.fingerprint()).unwrap_or_default(),
            },
            AuditEvent::SignRejected { by } => AuditEventView::SignRejected { by: (*by).into() },
            AuditEvent::SignBlocked { violations, at } => {
                AuditEventView::SignBlocked { violations: violations.clone(), at_approval: *at == BlockedAt::Approval }
            }
            AuditEvent::GuardrailsChanged { guardrails } => {
                AuditEventView::GuardrailsChanged { settings: GuardrailSettings::from(guardrails) }
            }
            AuditEvent::ApplianceForgotten { name: n, .. } => AuditEventView::ApplianceForgotten { name: name(n) },
            AuditEvent::PhoneForgotten { appliance, forgotten_at } => AuditEventView::PhoneForgotten {
                appliance_fingerprint: appliance.fingerprint(),
                forgotten_at: unix(*forgotten_at),
            },
            AuditEvent::MetadataUpdated { version, .. } => AuditEventView::MetadataUpdated { version: unix(*version) },
            AuditEvent::AddressLabelChanged { label } => {
                AuditEventView::AddressLabelChanged { label: label.as_deref().map(name) }
            }
            AuditEvent::Other { legacy_kind } => AuditEventView::Other { kind: legacy_kind.clone() },
        }
    }
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuditRow {
    /// Increasing row id.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// What it is about: the pair session id (pair approved/rejected), the pair id
    /// (revoked), the sign request id, `guardrails`, the forgotten appliance's identity
    /// key or the forgotten phone's app key (hex).
    pub subject: String,
    /// What happened.
    pub event: AuditEventView,
    /// The recorded event as JSON (for a details view or a bug report).
    pub detail_json: String,
}

impl From<&AuditEntry> for AuditRow {
    fn from(e: &AuditEntry) -> Self {
        AuditRow {
            id: e.id,
            at: unix(e.at),
            subject: e.subject.clone(),
            event: AuditEventView::from(&e.event),
            detail_json: serde_json::to_string(&e.event).unwrap_or_default(),
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl SunstormCore {
    /// The newest `limit` sign requests, newest first, whatever became of them (signed,
    /// declined, blocked by guardrails, failed), with the service, account and summary the
    /// user was shown. `limit` defaults to 100; a negative one counts as 0.
    #[uniffi::method(default(limit = 100))]
    pub async fn sign_history(&self, limit: i32) -> Result<Vec<SignHistoryRow>, SunstormError> {
        let limit = u32::try_from(limit).unwrap_or(0);
        let facade = self.facade.clone();
        self.run(None, async move {
            let names: HashMap<Uuid, String> =
                facade.list_pairs()?.into_iter().map(|p| (p.pair_id, p.sp.name)).collect();
            Ok(facade.recent_signs(limit)?.iter().map(|r| SignHistoryRow::new(r, &names)).collect())
        })
        .await
    }

    /// The newest `limit` audit log entries, newest first: pairs approved, declined and
    /// revoked, signatures approved, declined and blocked, guardrail changes. `limit`
    /// defaults to 100; a negative one counts as 0.
    #[uniffi::method(default(limit = 100))]
    pub async fn audit_log(&self, limit: i32) -> Result<Vec<AuditRow>, SunstormError> {
        let limit = u32::try_from(limit).unwrap_or(0);
        let facade = self.facade.clone();
        self.run(None, async move { Ok(facade.audit_log(limit)?.iter().map(AuditRow::from).collect()) }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sunstorm_core::bytes::Key32;
    use sunstorm_core::caip::{AccountId, ChainId};
    use sunstorm_core::model::PayloadKind;

    fn record(outcome: SignOutcome) -> SignRecord {
        SignRecord {
            request_id: Uuid::from_bytes([1; 16]),
            pair_id: Uuid::from_bytes([2; 16]),
            chain: ChainId::Evm(1),
            account: AccountId::evm(1, [0x33; 20]),
            kind: PayloadKind::EvmTransaction,
            summary: serde_json::json!({
                "title": "Send ETH",
                "fields": [{"label": "To", "value": "0x11"}, {"label": "Amount", "value": "0.05 ETH"}, {"bogus": 1}],
            }),
            native_value: Some(50_000_000_000_000_000),
            spend: None,
            outcome,
            reason: None,
            appliance_signature: Some(vec![7; 65]),
            received_at: 100,
            decided_at: Some(110),
            expires_at: None,
            display_digest: Some(sunstorm_core::decode::DisplayDigest([0x3f; 32])),
        }
    }

    #[test]
    fn history_rows_show_service_account_summary_and_outcome() {
        let names: HashMap<Uuid, String> = [(Uuid::from_bytes([2; 16]), "Acme".to_string())].into();
        let row = SignHistoryRow::new(&record(SignOutcome::Completed), &names);
        assert_eq!(row.sp_name, "Acme");
        assert_eq!(row.account, "eip155:1:0x3333333333333333333333333333333333333333");
        assert_eq!(row.chain_name, ChainId::Evm(1).display_name());
        assert_eq!(row.kind, "evm_transaction");
        assert_eq!(row.title, "Send ETH");
        assert_eq!(row.fields.len(), 2, "malformed field rows are skipped");
        assert_eq!(row.value.as_deref(), Some("0.05 ETH"));
        assert_eq!(row.outcome, SignOutcomeView::Completed);
        assert_eq!((row.received_at, row.decided_at), (100, Some(110)));
        assert_eq!(row.display_digest.as_deref(), Some("3f".repeat(32).as_str()));
        assert_eq!(row.display_fingerprint.as_deref(), Some("3F3F-3F3F"));

        let mut odd = record(SignOutcome::Blocked);
        odd.summary = Value::Null;
        odd.native_value = Some(0);
        let row = SignHistoryRow::new(&odd, &HashMap::new());
        assert_eq!((row.sp_name.as_str(), row.title.as_str()), ("Unknown service", "Signature request"));
        assert!(row.fields.is_empty() && row.value.is_none());
        assert_eq!(row.outcome, SignOutcomeView::Blocked);
    }

    #[test]
    fn audit_rows_carry_the_typed_event_with_sanitised_names() {
        let row = |event: AuditEvent| AuditRow::from(&AuditEntry { id: 1, at: 5, subject: "s".into(), event });
        let pair = row(AuditEvent::PairApproved {
            pair_id: Uuid::nil(),
            sp: "Acme\u{202e}gnp".into(),
            bindings: vec![AccountId::evm(1, [0x11; 20])],
        });
        let AuditEventView::PairApproved { sp_name, accounts, .. } = &pair.event else { panic!("{pair:?}") };
        assert!(!sp_name.contains('\u{202e}'), "a bidi override never reaches the screen: {sp_name:?}");
        assert_eq!(accounts, &["eip155:1:0x1111111111111111111111111111111111111111"]);
        assert!(pair.detail_json.contains("\"kind\":\"pair_approved\""), "{}", pair.detail_json);
        let blocked =
            row(AuditEvent::SignBlocked { violations: vec!["blind_signing".into()], at: BlockedAt::Approval });
        assert_eq!(
            blocked.event,
            AuditEventView::SignBlocked { violations: vec!["blind_signing".into()], at_approval: true }
        );
        assert_eq!(
            row(AuditEvent::PairRevoked { by: Actor::Sp }).event,
            AuditEventView::PairRevoked { by: AuditActor::Service }
        );
        let forgotten = row(AuditEvent::PhoneForgotten { appliance: Key32([0xab; 32]), forgotten_at: 9 }).event;
        assert_eq!(
            forgotten,
            AuditEventView::PhoneForgotten { appliance_fingerprint: Key32([0xab; 32]).fingerprint(), forgotten_at: 9 }
        );
        assert_eq!(
            row(AuditEvent::Other { legacy_kind: "old".into() }).event,
            AuditEventView::Other { kind: "old".into() }
        );
        assert_eq!(
            row(AuditEvent::MetadataUpdated { version: 3, sha256: "ab".repeat(32) }).event,
            AuditEventView::MetadataUpdated { version: 3 }
        );
        assert_eq!(
            row(AuditEvent::AddressLabelChanged { label: Some("Mom\u{202e}".into()) }).event,
            AuditEventView::AddressLabelChanged { label: Some("Mom⟨U+202E⟩".into()) }
        );
    }
}
