//! The `seen_sign_requests` and `sign_history` tables: request ids already seen (replay
//! refusal) and what became of each sign request, with the spend they count for.

use std::str::FromStr;

use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{as_i64, corrupt, from_json, risk, secs, spend, to_json, uuid, Store, StoreError, StoreTx};
use crate::caip::{AccountId, ChainId};
use crate::decode::DisplayDigest;
use crate::guardrails::SpendContext;
use crate::model::PayloadKind;

/// What became of a sign request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignOutcome {
    /// Verified and shown; the user has not decided yet.
    Pending,
    /// The appliance signed (signature verified) but octane has not acknowledged it yet.
    Signed,
    /// The signature was delivered to octane.
    Completed,
    /// The user (phone or appliance) declined; the rejection was or will be posted.
    Rejected,
    /// A guardrail or a check blocked it; the rejection was or will be posted.
    Blocked,
    /// It failed (appliance or network error) and was not signed.
    Failed,
}

impl SignOutcome {
    /// Whether its spend counts as spent for good (the appliance signed it).
    pub fn is_spent(self) -> bool {
        matches!(self, SignOutcome::Signed | SignOutcome::Completed)
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            SignOutcome::Pending => "pending",
            SignOutcome::Signed => "signed",
            SignOutcome::Completed => "completed",
            SignOutcome::Rejected => "rejected",
            SignOutcome::Blocked => "blocked",
            SignOutcome::Failed => "failed",
        }
    }
    pub(super) fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => SignOutcome::Pending,
            "signed" => SignOutcome::Signed,
            "completed" => SignOutcome::Completed,
            "rejected" => SignOutcome::Rejected,
            "blocked" => SignOutcome::Blocked,
            "failed" => SignOutcome::Failed,
            other => return Err(corrupt("sign_history.outcome", other)),
        })
    }
}

/// One sign request in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRecord {
    /// The request id.
    pub request_id: Uuid,
    /// The pair it was made under.
    pub pair_id: Uuid,
    /// CAIP-2 chain.
    pub chain: ChainId,
    /// CAIP-10 account.
    pub account: AccountId,
    /// Payload kind.
    pub kind: PayloadKind,
    /// The decoded summary shown to the user (JSON).
    pub summary: serde_json::Value,
    /// Native value moved, in the chain's smallest unit, when the decoder knows it.
    pub native_value: Option<u128>,
    /// What the guardrails count for it: native value plus the worst-case network fee, in
    /// the chain's smallest unit (`None` on rows from before it was recorded).
    pub spend: Option<u128>,
    /// What became of it.
    pub outcome: SignOutcome,
    /// Reason code for a rejection, block or failure.
    pub reason: Option<String>,
    /// The appliance's signature, once made.
    pub appliance_signature: Option<Vec<u8>>,
    /// Unix seconds.
    pub received_at: u64,
    /// Unix seconds, when decided.
    pub decided_at: Option<u64>,
    /// Unix seconds: the request's own expiry (`None` on rows from before it was
    /// recorded). A pending row counts as spend until then.
    pub expires_at: Option<u64>,
    /// The display digest of the screen the user was shown ([`crate::decode::display_digest`]
    /// over `summary`; `None` on rows from before it was recorded).
    #[serde(default)]
    pub display_digest: Option<DisplayDigest>,
}

/// Whether a sign request id was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time: now recorded.
    New,
    /// Seen before with the very same body (octane delivering it again).
    SameBody,
    /// Seen before with a different body: a replay or a forgery.
    DifferentBody,
}

fn kind_str(k: PayloadKind) -> Result<String, StoreError> {
    match serde_json::to_value(k) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(StoreError::Encode("payload kind")),
    }
}

impl Store {
    /// Records a sign request id as seen (with the SHA-256 of its signed body) and says
    /// whether it was new, the same request again, or a different body under a known id.
    pub fn note_request(
        &self,
        request_id: Uuid,
        body_sha256: &[u8; 32],
        pair_id: Uuid,
        now: u64,
    ) -> Result<Seen, StoreError> {
        self.transaction(|tx| tx.note_request(request_id, body_sha256, pair_id, now))
    }

    /// Whether `request_id` was seen before, and with the same body, without recording it
    /// (`None`: never seen).
    pub fn seen(&self, request_id: Uuid, body_sha256: &[u8; 32]) -> Result<Option<Seen>, StoreError> {
        let conn = self.lock()?;
        let stored: Option<Vec<u8>> = conn
            .prepare_cached("SELECT body_sha256 FROM seen_sign_requests WHERE request_id = ?1")?
            .query_row(params![request_id.to_string()], |r| r.get(0))
            .optional()?;
        Ok(stored.map(|s| same_body(&s, body_sha256)))
    }

    /// Whether a request id was ever seen.
    pub fn was_seen(&self, request_id: Uuid) -> Result<bool, StoreError> {
        let conn = self.lock()?;
        let v: Option<i64> = conn
            .query_row("SELECT 1 FROM seen_sign_requests WHERE request_id = ?1", params![request_id.to_string()], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.is_some())
    }

    /// Inserts a sign history row (the request id must have been noted as seen), or
    /// replaces a row that is still pending; a decided row is left as it is.
    pub fn insert_sign(&self, s: &SignRecord) -> Result<(), StoreError> {
        self.transaction(|tx| tx.put_sign(s))
    }

    /// Records what became of a sign request (and, when it becomes signed, adds its spend
    /// to the running totals).
    pub fn set_sign_outcome(
        &self,
        request_id: Uuid,
        outcome: SignOutcome,
        reason: Option<&str>,
        appliance_signature: Option<&[u8]>,
        at: u64,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| tx.set_sign_outcome(request_id, outcome, reason, appliance_signature, at))
    }

    /// What the guardrails count as already spent on `chain` at `now`: signed requests
    /// (running totals) plus requests still waiting and not expired, leaving out `exclude`
    /// (the request being evaluated). See [`StoreTx::spend`].
    pub fn spend(
        &self,
        pair_id: Uuid,
        chain: &ChainId,
        now: u64,
        exclude: Option<Uuid>,
    ) -> Result<SpendContext, StoreError> {
        spend::spend(&*self.lock()?, pair_id, chain, now, exclude)
    }

    const SIGN_COLS: &'static str = "request_id, pair_id, chain, account, kind, summary,
        native_value, spend, outcome, reason, appliance_signature, received_at, decided_at,
        expires_at, display_digest";

    fn sign_row(r: &Row<'_>) -> rusqlite::Result<SignRow> {
        Ok(SignRow {
            request_id: r.get(0)?,
            pair_id: r.get(1)?,
            chain: r.get(2)?,
            account: r.get(3)?,
            kind: r.get(4)?,
            summary: r.get(5)?,
            native_value: r.get(6)?,
            spend: r.get(7)?,
            outcome: r.get(8)?,
            reason: r.get(9)?,
            appliance_signature: r.get(10)?,
            received_at: r.get(11)?,
            decided_at: r.get(12)?,
            expires_at: r.get(13)?,
            display_digest: r.get(14)?,
        })
    }

    /// One sign history row.
    pub fn sign_record(&self, request_id: Uuid) -> Result<Option<SignRecord>, StoreError> {
        let conn = self.lock()?;
        let row = conn
            .prepare_cached(&format!("SELECT {} FROM sign_history WHERE request_id = ?1", Self::SIGN_COLS))?
            .query_row(params![request_id.to_string()], Self::sign_row)
            .optional()?;
        row.map(SignRow::parse).transpose()
    }

    /// Sign history received at or after `since` (optionally for one pair), newest first.
    /// Reads every matching row: for screens and exports, never for the sign path.
    pub fn sign_history(&self, pair_id: Option<Uuid>, since: u64) -> Result<Vec<SignRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt;
        let rows = match pair_id {
            Some(p) => {
                stmt = conn.prepare(&format!(
                    "SELECT {} FROM sign_history WHERE pair_id = ?2 AND received_at >= ?1
                     ORDER BY received_at DESC, request_id",
                    Self::SIGN_COLS
                ))?;
                stmt.query_map(params![as_i64(since), p.to_string()], Self::sign_row)?
            }
            None => {
                stmt = conn.prepare(&format!(
                    "SELECT {} FROM sign_history WHERE received_at >= ?1
                     ORDER BY received_at DESC, request_id",
                    Self::SIGN_COLS
                ))?;
                stmt.query_map(params![as_i64(since)], Self::sign_row)?
            }
        };
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse()?);
        }
        Ok(out)
    }

    /// The newest `limit` sign history rows (all pairs), newest first.
    pub fn recent_signs(&self, limit: u32) -> Result<Vec<SignRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {} FROM sign_history ORDER BY received_at DESC, rowid DESC LIMIT ?1",
            Self::SIGN_COLS
        ))?;
        let rows = stmt.query_map(params![limit], Self::sign_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse()?);
        }
        Ok(out)
    }
}

impl StoreTx<'_> {
    /// [`Store::note_request`] inside this transaction.
    pub fn note_request(
        &self,
        request_id: Uuid,
        body_sha256: &[u8; 32],
        pair_id: Uuid,
        now: u64,
    ) -> Result<Seen, StoreError> {
        let n = self
            .tx
            .prepare_cached(
                "INSERT INTO seen_sign_requests (request_id, body_sha256, pair_id, first_seen_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT(request_id) DO NOTHING",
            )?
            .execute(params![request_id.to_string(), body_sha256.as_slice(), pair_id.to_string(), as_i64(now)])?;
        if n == 1 {
            return Ok(Seen::New);
        }
        let stored: Vec<u8> = self
            .tx
            .prepare_cached("SELECT body_sha256 FROM seen_sign_requests WHERE request_id = ?1")?
            .query_row(params![request_id.to_string()], |r| r.get(0))?;
        Ok(same_body(&stored, body_sha256))
    }

    /// The outcome recorded for a sign request (`None`: no history row).
    pub fn sign_outcome(&self, request_id: Uuid) -> Result<Option<SignOutcome>, StoreError> {
        let s: Option<String> = self
            .tx
            .prepare_cached("SELECT outcome FROM sign_history WHERE request_id = ?1")?
            .query_row(params![request_id.to_string()], |r| r.get(0))
            .optional()?;
        s.map(|s| SignOutcome::parse(&s)).transpose()
    }

    /// What the guardrails count as already spent on `chain` at `now`, leaving out
    /// `exclude` (the request being evaluated):
    ///
    /// - `spent_by_pair`: signed through `pair_id` on `chain`, ever, plus that pair's
    ///   requests still waiting;
    /// - `spent_today`: signed on `chain` during `now`'s UTC day through any pair (the day
    ///   a request's signature was recorded), plus every request still waiting on `chain`.
    ///
    /// "Waiting" is a history row still `pending` (shown, or approved and at the appliance)
    /// whose `expires_at` is after `now`; blocked, rejected, failed and expired requests
    /// count for nothing. Amounts are native value plus the worst-case fee. Reads two
    /// running totals by key and the index of waiting requests, never the history: more
    /// than [`MAX_LIVE_REQUESTS`](super::MAX_LIVE_REQUESTS) waiting on one chain is a flood, and the totals
    /// then saturate (any limit refuses).
    pub fn spend(
        &self,
        pair_id: Uuid,
        chain: &ChainId,
        now: u64,
        exclude: Option<Uuid>,
    ) -> Result<SpendContext, StoreError> {
        spend::spend(self.tx, pair_id, chain, now, exclude)
    }

    /// Writes a request's history row: inserted, or replacing the row while it is still
    /// pending (a redelivered request evaluated again); a decided row is left alone. A row
    /// written as signed or completed adds its spend to the running totals.
    pub fn put_sign(&self, s: &SignRecord) -> Result<(), StoreError> {
        self.put_sign_with_summary(s, &to_json("summary", &s.summary)?)
    }

    /// [`StoreTx::put_sign`] with the summary given as JSON text (`s.summary` is not
    /// read): the sign engine serialises what it decoded straight to text.
    pub fn put_sign_with_summary(&self, s: &SignRecord, summary_json: &str) -> Result<(), StoreError> {
        // A decided row is left alone: the upsert below only replaces a pending row, so
        // the row only needs reading first when this one would join the spend totals.
        if s.outcome.is_spent() && self.sign_outcome(s.request_id)?.is_some_and(|o| o != SignOutcome::Pending) {
            return Ok(());
        }
        self.tx
            .prepare_cached(
                "INSERT INTO sign_history (request_id, pair_id, chain, account, kind, summary,
                   native_value, spend, outcome, reason, appliance_signature, received_at,
                   decided_at, expires_at, display_digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT(request_id) DO UPDATE SET summary = excluded.summary,
                   native_value = excluded.native_value, spend = excluded.spend,
                   outcome = excluded.outcome, reason = excluded.reason,
                   appliance_signature = excluded.appliance_signature,
                   decided_at = excluded.decided_at, expires_at = excluded.expires_at,
                   display_digest = excluded.display_digest
                 WHERE sign_history.outcome = 'pending'",
            )?
            .execute(params![
                s.request_id.to_string(),
                s.pair_id.to_string(),
                s.chain.to_string(),
                s.account.to_string(),
                kind_str(s.kind)?,
                summary_json,
                s.native_value.map(|v| v.to_string()),
                s.spend.map(|v| v.to_string()),
                s.outcome.as_str(),
                s.reason,
                s.appliance_signature.as_deref(),
                as_i64(s.received_at),
                s.decided_at.map(as_i64),
                s.expires_at.map(as_i64),
                s.display_digest.map(|d| d.hex()),
            ])?;
        if s.outcome.is_spent() {
            let at = s.decided_at.unwrap_or(s.received_at);
            let (pair, chain) = (s.pair_id.to_string(), s.chain.to_string());
            spend::commit(self.tx, &pair, &chain, at, s.spend.unwrap_or(0))?;
            let (request, account) = (s.request_id.to_string(), s.account.to_string());
            let native_value = s.native_value.unwrap_or(0);
            let signed = risk::Signed {
                request: &request,
                pair_id: &pair,
                chain: &chain,
                account: &account,
                summary_json,
                native_value,
                at,
            };
            risk::record(self.tx, &signed)?;
        }
        Ok(())
    }

    /// [`Store::set_sign_outcome`] inside this transaction. The first time a request
    /// becomes signed (or completed), its spend joins the running totals of its pair and of
    /// the UTC day of `at`, and its counterparties and value the history warnings' tables
    /// (`crate::risk`); it never leaves them.
    pub fn set_sign_outcome(
        &self,
        request_id: Uuid,
        outcome: SignOutcome,
        reason: Option<&str>,
        appliance_signature: Option<&[u8]>,
        at: u64,
    ) -> Result<(), StoreError> {
        let id = request_id.to_string();
        let before: Option<(String, String, String, Option<String>)> = self
            .tx
            .prepare_cached("SELECT outcome, pair_id, chain, spend FROM sign_history WHERE request_id = ?1")?
            .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let Some((was, pair_id, chain, amount)) = before else {
            return Err(StoreError::NotFound("sign request"));
        };
        self.tx
            .prepare_cached(
                "UPDATE sign_history SET outcome = ?2, reason = COALESCE(?3, reason),
                   appliance_signature = COALESCE(?4, appliance_signature), decided_at = ?5
                 WHERE request_id = ?1",
            )?
            .execute(params![id, outcome.as_str(), reason, appliance_signature, as_i64(at)])?;
        if outcome.is_spent() && !SignOutcome::parse(&was)?.is_spent() {
            let amount = amount.map(|a| spend::parse_amount("sign_history.spend", &a)).transpose()?;
            let amount = amount.unwrap_or(0);
            spend::commit(self.tx, &pair_id, &chain, at, amount)?;
            risk::record_row(self.tx, &id, at)?;
        }
        Ok(())
    }
}

fn same_body(stored: &[u8], body_sha256: &[u8; 32]) -> Seen {
    if subtle::ConstantTimeEq::ct_eq(stored, body_sha256.as_slice()).into() {
        Seen::SameBody
    } else {
        Seen::DifferentBody
    }
}

struct SignRow {
    request_id: String,
    pair_id: String,
    chain: String,
    account: String,
    kind: String,
    summary: String,
    native_value: Option<String>,
    spend: Option<String>,
    outcome: String,
    reason: Option<String>,
    appliance_signature: Option<Vec<u8>>,
    received_at: i64,
    decided_at: Option<i64>,
    expires_at: Option<i64>,
    display_digest: Option<String>,
}

impl SignRow {
    fn parse(self) -> Result<SignRecord, StoreError> {
        Ok(SignRecord {
            request_id: uuid("sign_history.request_id", &self.request_id)?,
            pair_id: uuid("sign_history.pair_id", &self.pair_id)?,
            chain: ChainId::from_str(&self.chain).map_err(|e| corrupt("sign_history.chain", e))?,
            account: AccountId::from_str(&self.account).map_err(|e| corrupt("sign_history.account", e))?,
            kind: serde_json::from_value(serde_json::Value::String(self.kind))
                .map_err(|e| corrupt("sign_history.kind", e))?,
            summary: from_json("sign_history.summary", &self.summary)?,
            native_value: self
                .native_value
                .map(|s| s.parse::<u128>().map_err(|e| corrupt("sign_history.native_value", e)))
                .transpose()?,
            spend: self.spend.map(|s| spend::parse_amount("sign_history.spend", &s)).transpose()?,
            outcome: SignOutcome::parse(&self.outcome)?,
            reason: self.reason,
            appliance_signature: self.appliance_signature,
            received_at: secs("sign_history.received_at", self.received_at)?,
            decided_at: self.decided_at.map(|v| secs("sign_history.decided_at", v)).transpose()?,
            expires_at: self.expires_at.map(|v| secs("sign_history.expires_at", v)).transpose()?,
            display_digest: self
                .display_digest
                .map(|d| DisplayDigest::from_hex(&d).ok_or_else(|| corrupt("sign_history.display_digest", d)))
                .transpose()?,
        })
    }
}
