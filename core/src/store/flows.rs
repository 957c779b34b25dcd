//! The `pair_flows` table: in-flight pair flows, so a killed app resumes where it was.

use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{as_i64, from_json, key, secs, to_json, uuid, Store, StoreError};
use crate::bytes::Key32;
use crate::caip::AccountId;
use crate::envelope::SignedEnvelope;

/// Where an in-flight pair flow stands (the persisted part of `pair::PairState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowStage {
    /// The link was parsed; the session is not loaded yet.
    LinkOpened,
    /// Octane's signed session details were loaded and verified.
    SessionLoaded,
    /// Octane accepted the validation code.
    CodeVerified,
    /// The user chose the wallets to approve.
    WalletsChosen,
    /// The appliance was asked (approve request id persisted); may hold its attestation.
    WaitingForAppliance,
    /// Done: octane accepted the attestation and the pair is stored.
    Paired,
    /// The user (on the phone or the appliance) declined.
    Rejected,
    /// The session expired before completion.
    Expired,
    /// A failure that cannot be retried.
    Failed,
}

impl FlowStage {
    /// Whether the flow is over (nothing left to resume).
    pub fn is_final(self) -> bool {
        matches!(self, FlowStage::Paired | FlowStage::Rejected | FlowStage::Expired | FlowStage::Failed)
    }
}

/// An in-flight (or finished) pair flow with everything needed to resume it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// The flow's local id.
    pub flow_id: Uuid,
    /// Where it stands.
    pub stage: FlowStage,
    /// The pair link as opened.
    pub link: String,
    /// The session id from the link.
    pub session_id: String,
    /// Octane's signed session details, once loaded.
    pub session: Option<SignedEnvelope>,
    /// Whether the link carried the code (single-device flow).
    pub code_prefilled: bool,
    /// Whether octane accepted the code.
    pub code_verified: bool,
    /// The wallets the user chose.
    pub bindings: Vec<AccountId>,
    /// The appliance asked.
    pub appliance_identity: Option<Key32>,
    /// The approve request id, persisted before the appliance is asked.
    pub approve_request_id: Option<Uuid>,
    /// The appliance's attestation once it arrived. It binds the validation code, so it is
    /// **never written to SQLite**: the pair engine keeps it in the `SecretStore` beside the
    /// code for the flow's lifetime. Always `None` when read from the store.
    pub attestation: Option<SignedEnvelope>,
    /// The pair id, once paired.
    pub pair_id: Option<Uuid>,
    /// The validated return URL (single-device), once paired.
    pub return_url: Option<String>,
    /// Why the flow failed, when it did.
    pub error: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub updated_at: u64,
}

impl Store {
    /// Writes a flow's current state (insert or replace), in one transaction.
    pub fn put_flow(&self, f: &FlowRecord) -> Result<(), StoreError> {
        self.lock()?.execute(
            "INSERT INTO pair_flows (flow_id, stage, finished, link, session_id, session,
               code_prefilled, code_verified, bindings, appliance_identity, approve_request_id,
               pair_id, return_url, error, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT(flow_id) DO UPDATE SET stage = excluded.stage,
               finished = excluded.finished, session = excluded.session,
               code_verified = excluded.code_verified, bindings = excluded.bindings,
               appliance_identity = excluded.appliance_identity,
               approve_request_id = excluded.approve_request_id,
               pair_id = excluded.pair_id,
               return_url = excluded.return_url, error = excluded.error,
               updated_at = excluded.updated_at",
            params![
                f.flow_id.to_string(),
                to_json("stage", &f.stage)?,
                f.stage.is_final(),
                f.link,
                f.session_id,
                f.session.as_ref().map(|s| to_json("session", s)).transpose()?,
                f.code_prefilled,
                f.code_verified,
                to_json("bindings", &f.bindings)?,
                f.appliance_identity.map(|k| k.to_hex()),
                f.approve_request_id.map(|u| u.to_string()),
                f.pair_id.map(|u| u.to_string()),
                f.return_url,
                f.error,
                as_i64(f.created_at),
                as_i64(f.updated_at),
            ],
        )?;
        Ok(())
    }

    const FLOW_COLS: &'static str = "flow_id, stage, link, session_id, session, code_prefilled,
        code_verified, bindings, appliance_identity, approve_request_id, pair_id,
        return_url, error, created_at, updated_at";

    fn flow_row(r: &Row<'_>) -> rusqlite::Result<FlowRow> {
        Ok(FlowRow {
            flow_id: r.get(0)?,
            stage: r.get(1)?,
            link: r.get(2)?,
            session_id: r.get(3)?,
            session: r.get(4)?,
            code_prefilled: r.get(5)?,
            code_verified: r.get(6)?,
            bindings: r.get(7)?,
            appliance_identity: r.get(8)?,
            approve_request_id: r.get(9)?,
            pair_id: r.get(10)?,
            return_url: r.get(11)?,
            error: r.get(12)?,
            created_at: r.get(13)?,
            updated_at: r.get(14)?,
        })
    }

    /// One flow by id.
    pub fn flow(&self, flow_id: Uuid) -> Result<Option<FlowRecord>, StoreError> {
        let conn = self.lock()?;
        let row = conn
            .query_row(
                &format!("SELECT {} FROM pair_flows WHERE flow_id = ?1", Self::FLOW_COLS),
                params![flow_id.to_string()],
                Self::flow_row,
            )
            .optional()?;
        row.map(FlowRow::parse).transpose()
    }

    /// Every flow of one pair session, newest first (finished ones included).
    pub fn flows_for_session(&self, session_id: &str) -> Result<Vec<FlowRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {} FROM pair_flows WHERE session_id = ?1 ORDER BY created_at DESC, flow_id",
            Self::FLOW_COLS
        ))?;
        let rows = stmt.query_map(params![session_id], Self::flow_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse()?);
        }
        Ok(out)
    }

    /// Flows not finished yet, oldest first (what `resume_pending` picks up).
    pub fn open_flows(&self) -> Result<Vec<FlowRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {} FROM pair_flows WHERE finished = 0 ORDER BY created_at, flow_id",
            Self::FLOW_COLS
        ))?;
        let rows = stmt.query_map([], Self::flow_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse()?);
        }
        Ok(out)
    }
}

struct FlowRow {
    flow_id: String,
    stage: String,
    link: String,
    session_id: String,
    session: Option<String>,
    code_prefilled: bool,
    code_verified: bool,
    bindings: String,
    appliance_identity: Option<String>,
    approve_request_id: Option<String>,
    pair_id: Option<String>,
    return_url: Option<String>,
    error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl FlowRow {
    fn parse(self) -> Result<FlowRecord, StoreError> {
        Ok(FlowRecord {
            flow_id: uuid("pair_flows.flow_id", &self.flow_id)?,
            stage: from_json("pair_flows.stage", &self.stage)?,
            link: self.link,
            session_id: self.session_id,
            session: self.session.map(|s| from_json("pair_flows.session", &s)).transpose()?,
            code_prefilled: self.code_prefilled,
            code_verified: self.code_verified,
            bindings: from_json("pair_flows.bindings", &self.bindings)?,
            appliance_identity: self
                .appliance_identity
                .map(|s| key("pair_flows.appliance_identity", &s))
                .transpose()?,
            approve_request_id: self
                .approve_request_id
                .map(|s| uuid("pair_flows.approve_request_id", &s))
                .transpose()?,
            attestation: None,
            pair_id: self.pair_id.map(|s| uuid("pair_flows.pair_id", &s)).transpose()?,
            return_url: self.return_url,
            error: self.error,
            created_at: secs("pair_flows.created_at", self.created_at)?,
            updated_at: secs("pair_flows.updated_at", self.updated_at)?,
        })
    }
}
