//! What the audit log records: one typed [`AuditEvent`] per entry, stored as its JSON
//! (serde, tagged by `kind`) in the store's `audit_log` table. The core never writes a
//! sentence: the FFI maps each event to a view enum and the shells word it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::approval::ApprovalProof;
use crate::bytes::Key32;
use crate::caip::AccountId;
use crate::decode::DisplayDigest;
use crate::envelope::SignedEnvelope;
use crate::guardrails::Guardrails;

/// Who took an action the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The user, on this phone.
    Phone,
    /// The user, on the appliance.
    Appliance,
    /// The service provider.
    Sp,
}

/// When the guardrails blocked a sign request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockedAt {
    /// When it arrived, before the user saw it.
    Arrival,
    /// When the user approved it (the rules or the spend had changed meanwhile).
    Approval,
}

/// One thing the audit log records. Serialised with its snake_case `kind` beside its
/// fields (`{"kind": "sign_blocked", "violations": [...], "at": "arrival"}`); kinds and
/// fields are only ever added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A pair was made (subject: the pair session id).
    PairApproved {
        /// The new pair.
        pair_id: Uuid,
        /// The service's name as octane vouched for it.
        sp: String,
        /// The accounts approved for it.
        bindings: Vec<AccountId>,
    },
    /// A pair request was declined (subject: the pair session id).
    PairRejected {
        /// Where it was declined.
        by: Actor,
    },
    /// A pair was revoked (subject: the pair id).
    PairRevoked {
        /// Who revoked it.
        by: Actor,
    },
    /// The user approved a sign request on the phone (subject: the request id).
    SignApproved {
        /// Its one-line summary as shown for review.
        title: String,
        /// The display digest of the screen the user approved (absent from entries of
        /// older versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_digest: Option<DisplayDigest>,
        /// The phone's approval key's signature over the request and display digest
        /// ([`crate::approval::ApprovalStatement`]), sent to the appliance; absent without an
        /// approval key (and from entries of older versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approval: Option<ApprovalProof>,
    },
    /// The appliance signed and its signature verified (subject: the request id).
    SignSigned {
        /// The display digest the appliance was sent (absent from entries of older
        /// versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_digest: Option<DisplayDigest>,
        /// The appliance's verified receipt over it ([`crate::receipt::SignReceipt`]):
        /// an auditor checks it with the pair's appliance identity.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<SignedEnvelope>,
    },
    /// A sign request was declined (subject: the request id).
    SignRejected {
        /// Where it was declined.
        by: Actor,
    },
    /// The guardrails blocked a sign request (subject: the request id).
    SignBlocked {
        /// The rules it broke (stable codes, e.g. `per_day_limit_exceeded`).
        violations: Vec<String>,
        /// When it was blocked.
        at: BlockedAt,
    },
    /// The user replaced the guardrails (subject: `guardrails`).
    GuardrailsChanged {
        /// The guardrails as set.
        guardrails: Guardrails,
    },
    /// An appliance was forgotten on this phone (subject: its identity key, hex).
    ApplianceForgotten {
        /// Its user-visible name.
        name: String,
        /// How the platform reached it, if recorded.
        peripheral: Option<String>,
    },
    /// A phone (perhaps lost) was forgotten by an appliance, asked from this phone
    /// (subject: the forgotten phone's app key, hex).
    PhoneForgotten {
        /// The appliance that forgot it (its identity key; hex in JSON).
        appliance: Key32,
        /// When the appliance forgot it (Unix seconds, the appliance's clock).
        forgotten_at: u64,
    },
    /// A newer metadata bundle from octane verified and is in use (subject: `metadata`).
    MetadataUpdated {
        /// Its content version.
        version: u64,
        /// SHA-256 of the bundle file, hex.
        sha256: String,
    },
    /// The user set or removed an address label (subject: the CAIP-10 account labelled,
    /// `eip155:<chain>:<EIP-55 address>`).
    AddressLabelChanged {
        /// The label as set; `None`: removed.
        label: Option<String>,
    },
    /// An entry written by an older version that this one could not type when it migrated
    /// the log (kept for the record).
    Other {
        /// The kind it was written with.
        legacy_kind: String,
    },
}

impl AuditEvent {
    /// The kind `sign_blocked` ([`AuditEvent::SignBlocked`]), as [`AuditEvent::kind`] names it.
    pub const SIGN_BLOCKED: &'static str = "sign_blocked";

    /// The kind `sign_signed` ([`AuditEvent::SignSigned`]), as [`AuditEvent::kind`] names it.
    pub const SIGN_SIGNED: &'static str = "sign_signed";

    /// The kind `phone_forgotten` ([`AuditEvent::PhoneForgotten`]), as [`AuditEvent::kind`] names it.
    pub const PHONE_FORGOTTEN: &'static str = "phone_forgotten";

    /// Its stable snake_case kind (the serde tag; also its own column, indexed).
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::PairApproved { .. } => "pair_approved",
            AuditEvent::PairRejected { .. } => "pair_rejected",
            AuditEvent::PairRevoked { .. } => "pair_revoked",
            AuditEvent::SignApproved { .. } => "sign_approved",
            AuditEvent::SignSigned { .. } => Self::SIGN_SIGNED,
            AuditEvent::SignRejected { .. } => "sign_rejected",
            AuditEvent::SignBlocked { .. } => Self::SIGN_BLOCKED,
            AuditEvent::GuardrailsChanged { .. } => "guardrails_changed",
            AuditEvent::ApplianceForgotten { .. } => "appliance_forgotten",
            AuditEvent::PhoneForgotten { .. } => Self::PHONE_FORGOTTEN,
            AuditEvent::MetadataUpdated { .. } => "metadata_updated",
            AuditEvent::AddressLabelChanged { .. } => "address_label_changed",
            AuditEvent::Other { .. } => "other",
        }
    }

    /// The event an older version recorded as `kind` with the JSON `detail` (the audit
    /// log's layout before events were typed): [`AuditEvent::Other`] when it does not fit.
    pub fn from_legacy(kind: &str, detail: serde_json::Value) -> AuditEvent {
        let typed = match (kind, detail) {
            // Guardrails were recorded as the detail itself.
            ("guardrails_changed", d) => {
                serde_json::from_value(d).ok().map(|guardrails| AuditEvent::GuardrailsChanged { guardrails })
            }
            (_, serde_json::Value::Object(mut fields)) => {
                fields.insert("kind".into(), kind.into());
                serde_json::from_value(serde_json::Value::Object(fields)).ok()
            }
            _ => None,
        };
        typed.unwrap_or_else(|| AuditEvent::Other { legacy_kind: kind.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn every_kind() -> Vec<AuditEvent> {
        vec![
            AuditEvent::PairApproved { pair_id: Uuid::nil(), sp: "Acme".into(), bindings: vec![] },
            AuditEvent::PairRejected { by: Actor::Appliance },
            AuditEvent::PairRevoked { by: Actor::Sp },
            AuditEvent::SignApproved { title: "Send ETH".into(), display_digest: None, approval: None },
            AuditEvent::SignApproved {
                title: "Send ETH".into(),
                display_digest: Some(DisplayDigest([3; 32])),
                approval: Some(ApprovalProof { signature: vec![0x30, 2, 1, 1] }),
            },
            AuditEvent::SignSigned { display_digest: None, receipt: None },
            AuditEvent::SignSigned {
                display_digest: Some(DisplayDigest([3; 32])),
                receipt: Some(SignedEnvelope { body: vec![1], sig: vec![2; 64] }),
            },
            AuditEvent::SignRejected { by: Actor::Phone },
            AuditEvent::SignBlocked { violations: vec!["per_day_limit_exceeded".into()], at: BlockedAt::Arrival },
            AuditEvent::GuardrailsChanged { guardrails: Guardrails::default() },
            AuditEvent::ApplianceForgotten { name: "Kitchen".into(), peripheral: None },
            AuditEvent::PhoneForgotten { appliance: Key32([7; 32]), forgotten_at: 1_700_000_000 },
            AuditEvent::MetadataUpdated { version: 3, sha256: "ab".repeat(32) },
            AuditEvent::AddressLabelChanged { label: Some("Alice".into()) },
            AuditEvent::AddressLabelChanged { label: None },
            AuditEvent::Other { legacy_kind: "something_old".into() },
        ]
    }

    #[test]
    fn the_stored_kind_is_the_serde_tag_and_events_round_trip() {
        for e in every_kind() {
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["kind"], e.kind(), "{e:?}");
            assert_eq!(serde_json::from_value::<AuditEvent>(v).unwrap(), e);
        }
    }

    #[test]
    fn entries_of_the_old_layout_become_typed_events() {
        let pair = Uuid::from_u128(7);
        let cases = [
            ("pair_rejected", json!({"by": "phone"}), AuditEvent::PairRejected { by: Actor::Phone }),
            ("pair_revoked", json!({"by": "sp"}), AuditEvent::PairRevoked { by: Actor::Sp }),
            (
                "sign_signed",
                json!({"signature_verified": true}),
                AuditEvent::SignSigned { display_digest: None, receipt: None },
            ),
            (
                "sign_blocked",
                json!({"violations": ["blind_signing"], "at": "approval"}),
                AuditEvent::SignBlocked { violations: vec!["blind_signing".into()], at: BlockedAt::Approval },
            ),
            (
                "pair_approved",
                json!({"pair_id": pair, "sp": "Acme", "bindings": ["eip155:1:0x1111111111111111111111111111111111111111"]}),
                AuditEvent::PairApproved {
                    pair_id: pair,
                    sp: "Acme".into(),
                    bindings: vec![AccountId::evm(1, [0x11; 20])],
                },
            ),
            (
                "guardrails_changed",
                serde_json::to_value(Guardrails::default()).unwrap(),
                AuditEvent::GuardrailsChanged { guardrails: Guardrails::default() },
            ),
            (
                "phone_forgotten",
                json!({"appliance": Key32([9; 32]).to_hex(), "forgotten_at": 42}),
                AuditEvent::PhoneForgotten { appliance: Key32([9; 32]), forgotten_at: 42 },
            ),
            ("sign_rejected", json!("not an object"), AuditEvent::Other { legacy_kind: "sign_rejected".into() }),
            ("made_up", json!({}), AuditEvent::Other { legacy_kind: "made_up".into() }),
        ];
        for (kind, detail, want) in cases {
            assert_eq!(AuditEvent::from_legacy(kind, detail), want, "{kind}");
        }
    }
}
