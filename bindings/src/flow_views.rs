//! View-model records of the pair and sign flows: what the pairing, wallet, pairs and
//! review screens show. Each has a `From` the core type it presents.

use sunstorm_core::display::{clean, TextKind};
use sunstorm_core::pair::{PairOutcome, PairState, SessionCard};
use sunstorm_core::sign::PendingSignature;
use sunstorm_core::store::{PairRecord, PairStatus};
use sunstorm_core::sunstorm::SyncReport;
use sunstorm_core::wallets::{RowState, WalletRow};

use crate::error::SunstormError;
use crate::views::unix;

/// The service provider's card on the pairing screen (everything in it signed by octane).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SpCardView {
    /// The pair session id.
    pub session_id: String,
    /// The service's display name.
    pub sp_name: String,
    /// HTTPS URL of its logo.
    pub logo_url: String,
    /// HTTPS URL of its homepage.
    pub homepage: String,
    /// Short fingerprint of the service's signing key.
    pub key_fingerprint: String,
    /// The service's reference for its user ("alice@example").
    pub user_ref: String,
    /// CAIP-2 chains the service asks a wallet for.
    pub requested_chains: Vec<String>,
    /// Human names of those chains, in the same order.
    pub requested_chain_names: Vec<String>,
    /// Unix seconds; after this the session cannot be approved.
    pub expires_at: i64,
    /// Single-device flow: where the user goes back after approval (already validated).
    pub return_url: Option<String>,
}

impl From<&SessionCard> for SpCardView {
    fn from(c: &SessionCard) -> Self {
        SpCardView {
            session_id: c.session_id.clone(),
            sp_name: c.sp.name.clone(),
            logo_url: c.sp.logo_url.clone(),
            homepage: c.sp.homepage.clone(),
            key_fingerprint: c.sp_key_fingerprint.clone(),
            user_ref: c.sp_user_ref.clone(),
            requested_chains: c.requested_chains.iter().map(ToString::to_string).collect(),
            requested_chain_names: c.requested_chains.iter().map(|c| c.display_name()).collect(),
            expires_at: unix(c.expires_at),
            return_url: c.return_url.clone(),
        }
    }
}

/// Where the user goes once paired.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PairOutcomeView {
    /// Single-device flow: open this validated HTTPS URL.
    ReturnTo {
        /// The URL (on one of the service's registered origins).
        url: String,
    },
    /// Two-device flow: show "done"; the service's page continues on the other device.
    Done,
}

impl From<&PairOutcome> for PairOutcomeView {
    fn from(o: &PairOutcome) -> Self {
        match o {
            PairOutcome::ReturnTo { url } => PairOutcomeView::ReturnTo { url: url.clone() },
            PairOutcome::Done => PairOutcomeView::Done,
        }
    }
}

/// The state of one pair flow, mirroring the core's state machine
/// (`LinkOpened → SessionLoaded → CodeNeeded | CodePrefilled → CodeVerified →
/// WalletsChosen → WaitingForAppliance → Paired | Rejected | Expired | Failed`).
/// `flow_id` is the id to pass to the next call.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PairStateView {
    /// The link was accepted; the session is being loaded.
    LinkOpened {
        /// The flow.
        flow_id: String,
        /// The session id from the link.
        session_id: String,
    },
    /// The session was loaded and octane's signature checked.
    SessionLoaded {
        /// The flow.
        flow_id: String,
        /// What to show.
        card: SpCardView,
    },
    /// Two-device flow: ask for the code shown on the service's page.
    CodeNeeded {
        /// The flow.
        flow_id: String,
        /// What to show.
        card: SpCardView,
        /// Wrong attempts still allowed, when known.
        attempts_left: Option<i32>,
    },
    /// Single-device flow: the link carried the code; submit it with `None`.
    CodePrefilled {
        /// The flow.
        flow_id: String,
        /// What to show.
        card: SpCardView,
    },
    /// The code was accepted: let the user choose wallets (`wallet_choices`).
    CodeVerified {
        /// The flow.
        flow_id: String,
        /// What to show.
        card: SpCardView,
    },
    /// Wallets chosen: ready to approve.
    WalletsChosen {
        /// The flow.
        flow_id: String,
        /// What to show.
        card: SpCardView,
        /// The chosen accounts (CAIP-10), canonical and sorted.
        accounts: Vec<String>,
    },
    /// "Confirm on your appliance", or its answer is being delivered to octane.
    WaitingForAppliance {
        /// The flow.
        flow_id: String,
        /// What to show.
        card: SpCardView,
        /// The accounts being approved.
        accounts: Vec<String>,
        /// Whether the appliance already approved (only octane's answer is missing).
        approved_by_appliance: bool,
    },
    /// Paired.
    Paired {
        /// The flow.
        flow_id: String,
        /// The durable pair id (for `revoke_pair`).
        pair_id: String,
        /// The approved accounts.
        accounts: Vec<String>,
        /// Where the user goes next.
        outcome: PairOutcomeView,
    },
    /// Declined (on the phone or on the appliance).
    Rejected {
        /// The flow.
        flow_id: String,
    },
    /// The session expired.
    Expired {
        /// The flow.
        flow_id: String,
    },
    /// The flow failed for good.
    Failed {
        /// The flow.
        flow_id: String,
        /// Stable snake_case code.
        code: String,
        /// A sentence for a person.
        message: String,
    },
}

fn accounts(a: &[sunstorm_core::caip::AccountId]) -> Vec<String> {
    a.iter().map(ToString::to_string).collect()
}

impl From<&PairState> for PairStateView {
    fn from(s: &PairState) -> Self {
        let id = s.flow_id().to_string();
        match s {
            PairState::LinkOpened { session_id, .. } => {
                PairStateView::LinkOpened { flow_id: id, session_id: session_id.clone() }
            }
            PairState::SessionLoaded { card, .. } => PairStateView::SessionLoaded { flow_id: id, card: card.into() },
            PairState::CodeNeeded { card, attempts_left, .. } => {
                let attempts_left = attempts_left.map(crate::error::count);
                PairStateView::CodeNeeded { flow_id: id, card: card.into(), attempts_left }
            }
            PairState::CodePrefilled { card, .. } => PairStateView::CodePrefilled { flow_id: id, card: card.into() },
            PairState::CodeVerified { card, .. } => PairStateView::CodeVerified { flow_id: id, card: card.into() },
            PairState::WalletsChosen { card, bindings, .. } => {
                PairStateView::WalletsChosen { flow_id: id, card: card.into(), accounts: accounts(bindings) }
            }
            PairState::WaitingForAppliance { card, bindings, approved_by_appliance, .. } => {
                PairStateView::WaitingForAppliance {
                    flow_id: id,
                    card: card.into(),
                    accounts: accounts(bindings),
                    approved_by_appliance: *approved_by_appliance,
                }
            }
            PairState::Paired { pair_id, bindings, outcome, .. } => PairStateView::Paired {
                flow_id: id,
                pair_id: pair_id.to_string(),
                accounts: accounts(bindings),
                outcome: outcome.into(),
            },
            PairState::Rejected { .. } => PairStateView::Rejected { flow_id: id },
            PairState::Expired { .. } => PairStateView::Expired { flow_id: id },
            PairState::Failed { code, error, .. } => {
                PairStateView::Failed { flow_id: id, code: code.clone(), message: error.clone() }
            }
        }
    }
}

/// How a wallet row may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum WalletRowState {
    /// On a requested chain, not chosen.
    Selectable,
    /// On a requested chain and chosen.
    Selected,
    /// On a chain the service did not ask for: greyed out, never bindable.
    NotRequested,
}

/// One appliance wallet on the wallet-choice screen.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WalletRowView {
    /// CAIP-2 chain.
    pub chain: String,
    /// Human chain name.
    pub chain_name: String,
    /// CAIP-10 account, canonical (pass these to `choose_wallets`).
    pub account: String,
    /// Shortened address for small screens.
    pub short_address: String,
    /// Selectable, selected or greyed out.
    pub state: WalletRowState,
}

impl From<&WalletRow> for WalletRowView {
    fn from(r: &WalletRow) -> Self {
        WalletRowView {
            chain: r.chain.to_string(),
            chain_name: r.chain_name.clone(),
            account: r.account.to_string(),
            short_address: r.short_address.clone(),
            state: match r.state {
                RowState::Selectable => WalletRowState::Selectable,
                RowState::Selected => WalletRowState::Selected,
                RowState::NotRequested => WalletRowState::NotRequested,
            },
        }
    }
}

/// What `sync_pairs` did: the pairs newly revoked, and the appliances it could not sync
/// (the others were synced).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReportView {
    /// The pair ids newly revoked.
    pub revoked_pair_ids: Vec<String>,
    /// One entry per appliance that could not be synced.
    pub failed: Vec<SyncFailureView>,
}

/// An appliance `sync_pairs` could not sync.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncFailureView {
    /// The appliance (`appliance_id` of `bonded_appliances`).
    pub appliance_id: String,
    /// The error a call about this appliance alone would have thrown, as its snake_case
    /// variant name (e.g. `phone_forgotten`: bond it again).
    pub error_kind: String,
    /// That error's sentence, for a person.
    pub message: String,
}

impl From<SyncReport> for SyncReportView {
    fn from(r: SyncReport) -> Self {
        SyncReportView {
            revoked_pair_ids: r.revoked.iter().map(ToString::to_string).collect(),
            failed: r
                .failed
                .into_iter()
                .map(|f| {
                    // The same mapping (and log line) as a failed call.
                    let error = SunstormError::from(f.error);
                    SyncFailureView {
                        appliance_id: f.appliance.to_hex(),
                        error_kind: error.kind().to_string(),
                        message: error.to_string(),
                    }
                })
                .collect(),
        }
    }
}

/// A pair this phone holds, for the "connected services" list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PairView {
    /// The durable pair id (for `revoke_pair`).
    pub pair_id: String,
    /// The service's name.
    pub sp_name: String,
    /// Its logo URL.
    pub logo_url: String,
    /// Its homepage.
    pub homepage: String,
    /// Short fingerprint of the service's pinned key.
    pub key_fingerprint: String,
    /// The service's reference for its user.
    pub user_ref: String,
    /// The bound accounts (CAIP-10).
    pub accounts: Vec<String>,
    /// Whether it still accepts sign requests.
    pub active: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// The appliance it belongs to (`appliance_id` of `bonded_appliances`).
    pub appliance_id: String,
}

impl From<&PairRecord> for PairView {
    fn from(p: &PairRecord) -> Self {
        PairView {
            pair_id: p.pair_id.to_string(),
            sp_name: clean(&p.sp.name, TextKind::Name),
            logo_url: p.sp.logo_url.clone(),
            homepage: p.sp.homepage.clone(),
            key_fingerprint: p.sp_public_key.fingerprint(),
            user_ref: clean(&p.sp_user_ref, TextKind::UserRef),
            accounts: accounts(&p.bindings),
            active: p.status == PairStatus::Active,
            created_at: unix(p.created_at),
            revoked_at: p.revoked_at.map(unix),
            appliance_id: p.appliance_identity.to_hex(),
        }
    }
}

/// One labelled row of a decoded payload ("To", "Amount"…), already formatted and
/// sanitised. Shells translate by `key`; `label` is the English fallback.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FieldRow {
    /// What the value is, in English.
    pub label: String,
    /// The value.
    pub value: String,
    /// Stable key: `network`, `to`, `value`, `max_fee`, `max_total`… for the phone's own
    /// rows, `ix.<n>.<name>` for Solana instructions, `message.<path>` for EIP-712 message
    /// fields (empty for history rows stored before keys existed).
    #[uniffi(default = "")]
    pub key: String,
}

/// Something to notice before approving, or a guardrail that blocks the request.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NoticeView {
    /// Stable snake_case code (`unlimited_approval`, `daily_limit`…).
    pub code: String,
    /// A sentence for a person.
    pub message: String,
}

/// A verified sign request on the review screen.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SignRequestView {
    /// The request id (for `approve_sign` / `reject_sign`).
    pub request_id: String,
    /// The pair it came through.
    pub pair_id: String,
    /// The service's name.
    pub sp_name: String,
    /// CAIP-2 chain.
    pub chain: String,
    /// Human chain name.
    pub chain_name: String,
    /// The bound account that would sign (CAIP-10).
    pub account: String,
    /// Payload kind (`evm_transaction`, `eip191_message`, `eip712_typed_data`,
    /// `solana_transaction`).
    pub kind: String,
    /// One line saying what this is ("Send ETH").
    pub title: String,
    /// The decoded payload, row by row.
    pub fields: Vec<FieldRow>,
    /// Things to notice, most serious first.
    pub warnings: Vec<NoticeView>,
    /// Guardrails it breaks; non-empty means blocked (octane was already told).
    pub violations: Vec<NoticeView>,
    /// Whether part of the payload is not understood (blind signing).
    pub blind: bool,
    /// Whether the guardrails block it (approve will fail).
    pub blocked: bool,
    /// SHA-256 of the payload, hex, to compare with the requester.
    pub payload_hash: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The most this can take from the account, value plus the worst-case network fee, in
    /// the chain's currency ("0.60063 ETH"): what the spend limits count.
    #[uniffi(default = "")]
    pub worst_case_total: String,
    /// The display digest of exactly this screen (64 hex digits): kept in the history, sent
    /// to the appliance and returned to the service (`docs/signing.md`).
    #[uniffi(default = "")]
    pub display_digest: String,
    /// Its short fingerprint ("3F9A-12C4"): the appliance shows the same one beside its
    /// own screen, for the person to compare before approving there.
    #[uniffi(default = "")]
    pub display_fingerprint: String,
}

/// The stable snake_case name of a payload kind.
pub(crate) fn kind_name(k: &sunstorm_core::model::PayloadKind) -> String {
    use sunstorm_core::model::PayloadKind;
    match k {
        PayloadKind::EvmTransaction => "evm_transaction",
        PayloadKind::Eip191Message => "eip191_message",
        PayloadKind::Eip712TypedData => "eip712_typed_data",
        PayloadKind::SolanaTransaction => "solana_transaction",
    }
    .to_string()
}

impl From<&PendingSignature> for SignRequestView {
    fn from(p: &PendingSignature) -> Self {
        SignRequestView {
            request_id: p.request_id.to_string(),
            pair_id: p.pair_id.to_string(),
            sp_name: p.sp_name.clone(),
            chain: p.chain.to_string(),
            chain_name: p.chain.display_name(),
            account: p.account.to_string(),
            kind: kind_name(&p.kind),
            title: p.decoded.title.clone(),
            fields: p
                .decoded
                .fields
                .iter()
                .map(|f| FieldRow { label: f.label.clone(), value: f.value.clone(), key: f.key.clone() })
                .collect(),
            warnings: p
                .decoded
                .warnings
                .iter()
                .map(|w| NoticeView { code: w.code().to_string(), message: w.message() })
                .collect(),
            violations: p
                .violations
                .iter()
                .map(|v| NoticeView { code: v.code.clone(), message: v.message.clone() })
                .collect(),
            blind: p.decoded.blind,
            blocked: p.blocked(),
            payload_hash: p.decoded.payload_hash.clone(),
            expires_at: unix(p.expires_at),
            worst_case_total: p.worst_case_total(),
            display_digest: p.display_digest.hex(),
            display_fingerprint: p.display_digest.fingerprint(),
        }
    }
}
