//! What the history warnings ([`crate::risk`]) need, kept so that the sign path never
//! reads the history:
//!
//! - `risk_counterparties (chain, account, role, address)`: every recipient, spender and
//!   token contract an account signed for, with when it first and last did and how often;
//! - `risk_pair_usage (pair_id, chain)`: how many signed requests of a pair moved native
//!   value, their value added up, and when the pair last had a request signed.
//!
//! Both are updated in the transaction that records a request as signed (from the facts
//! in its stored summary), and filled from the history by migration 8. A check reads one
//! row per counterparty by key, the pair's usage row by key and its few per-chain rows
//! (one per bound chain), whatever the size of the history.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use uuid::Uuid;

use super::spend::parse_amount;
use super::{as_i64, SignOutcome, Store, StoreError};
use crate::caip::{AccountId, ChainId};
use crate::decode::PayloadFacts;
use crate::risk::{counterparties, PairUsage, RiskHistory, Role};

/// The part of a stored summary (a serialised `DecodedPayload`) the tables are built from.
#[derive(serde::Deserialize)]
struct Summary {
    #[serde(default)]
    facts: PayloadFacts,
}

/// The facts in a stored summary; a summary without readable facts gives none (with a
/// warning), so one damaged row never stops a request from being recorded as signed.
fn facts_of(request: &str, summary_json: &str) -> PayloadFacts {
    match serde_json::from_str::<Summary>(summary_json) {
        Ok(s) => s.facts,
        Err(e) => {
            tracing::warn!(%request, error = %e, "store: summary facts unreadable; no counterparties recorded");
            PayloadFacts::default()
        }
    }
}

const USAGE: &str = "SELECT valued, value_sum FROM risk_pair_usage WHERE pair_id = ?1 AND chain = ?2";

fn usage(conn: &Connection, pair_id: &str, chain: &str) -> Result<PairUsage, StoreError> {
    let row: Option<(i64, String)> =
        conn.prepare_cached(USAGE)?.query_row(params![pair_id, chain], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    let Some((valued, sum)) = row else { return Ok(PairUsage::default()) };
    Ok(PairUsage {
        valued: u64::try_from(valued).unwrap_or(0),
        value_sum: parse_amount("risk_pair_usage.value_sum", &sum)?,
    })
}

/// One signed request: its pair, chain, account, summary (JSON), native value and the
/// time it was signed.
pub(crate) struct Signed<'a> {
    pub request: &'a str,
    pub pair_id: &'a str,
    pub chain: &'a str,
    pub account: &'a str,
    pub summary_json: &'a str,
    pub native_value: u128,
    pub at: u64,
}

/// Adds a signed request to the counterparties of its account and the usage of its pair.
pub(crate) fn record(conn: &Connection, s: &Signed<'_>) -> Result<(), StoreError> {
    let at = as_i64(s.at);
    let before = usage(conn, s.pair_id, s.chain)?;
    let valued = s.native_value > 0;
    let after = PairUsage {
        valued: before.valued.saturating_add(u64::from(valued)),
        value_sum: before.value_sum.saturating_add(s.native_value),
    };
    conn.prepare_cached(
        "INSERT INTO risk_pair_usage (pair_id, chain, valued, value_sum, last_signed_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(pair_id, chain) DO UPDATE SET valued = excluded.valued,
           value_sum = excluded.value_sum,
           last_signed_at = MAX(last_signed_at, excluded.last_signed_at)",
    )?
    .execute(params![s.pair_id, s.chain, as_i64(after.valued), after.value_sum.to_string(), at])?;
    let Ok(chain) = s.chain.parse::<ChainId>() else {
        tracing::warn!(request = %s.request, "store: unreadable chain; no counterparties recorded");
        return Ok(());
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO risk_counterparties (chain, account, role, address, first_at, last_at, times)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1)
         ON CONFLICT(chain, account, role, address) DO UPDATE SET times = times + 1,
           first_at = MIN(first_at, excluded.first_at), last_at = MAX(last_at, excluded.last_at)",
    )?;
    for (role, address) in counterparties(&chain, &facts_of(s.request, s.summary_json)) {
        insert.execute(params![s.chain, s.account, role.as_str(), address, at])?;
    }
    Ok(())
}

/// [`record`] for the history row of `request_id`, which just became signed at `at`.
pub(crate) fn record_row(conn: &Connection, request_id: &str, at: u64) -> Result<(), StoreError> {
    let row: Option<(String, String, String, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT pair_id, chain, account, summary, native_value FROM sign_history WHERE request_id = ?1",
        )?
        .query_row(params![request_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .optional()?;
    let Some((pair_id, chain, account, summary, native)) = row else {
        return Err(StoreError::NotFound("sign request"));
    };
    let native_value = native.map(|v| parse_amount("sign_history.native_value", &v)).transpose()?.unwrap_or(0);
    let signed = Signed {
        request: request_id,
        pair_id: &pair_id,
        chain: &chain,
        account: &account,
        summary_json: &summary,
        native_value,
        at,
    };
    record(conn, &signed)
}

/// See [`Store::risk_history`].
fn history(
    conn: &Connection,
    pair_id: Uuid,
    account: &AccountId,
    wanted: &BTreeSet<(Role, String)>,
) -> Result<RiskHistory, StoreError> {
    let chain = account.chain.to_string();
    let acct = account.to_string();
    let pair = pair_id.to_string();
    let mut known = BTreeSet::new();
    for (role, address) in wanted {
        let found: Option<i64> = if *role == Role::Token {
            // A token contract of any account on this chain (partial index).
            conn.prepare_cached(
                "SELECT 1 FROM risk_counterparties
                 WHERE chain = ?1 AND address = ?2 AND role = 'token' LIMIT 1",
            )?
            .query_row(params![chain, address], |r| r.get(0))
            .optional()?
        } else {
            conn.prepare_cached(
                "SELECT times FROM risk_counterparties
                 WHERE chain = ?1 AND account = ?2 AND role = ?3 AND address = ?4",
            )?
            .query_row(params![chain, acct, role.as_str(), address], |r| r.get(0))
            .optional()?
        };
        if found.is_some() {
            known.insert((*role, address.clone()));
        }
    }
    let last: Option<i64> = conn
        .prepare_cached("SELECT MAX(last_signed_at) FROM risk_pair_usage WHERE pair_id = ?1")?
        .query_row(params![pair], |r| r.get(0))?;
    Ok(RiskHistory {
        known,
        usage: usage(conn, &pair, &chain)?,
        last_signed_at: last.and_then(|v| u64::try_from(v).ok()),
    })
}

impl Store {
    /// What the history warnings need for one request of `pair_id` from `account`: which
    /// of `wanted` the account already signed for (tokens: any account on the chain), the
    /// pair's usage on the account's chain and when it last had a request signed. One keyed
    /// read per wanted counterparty plus two for the pair: never the history.
    pub fn risk_history(
        &self,
        pair_id: Uuid,
        account: &AccountId,
        wanted: &BTreeSet<(Role, String)>,
    ) -> Result<RiskHistory, StoreError> {
        history(&*self.lock()?, pair_id, account, wanted)
    }
}

/// Migration 8: fills both tables from the requests already signed, in the order they
/// were signed. A damaged amount counts as zero (with a warning) rather than leaving the
/// app unable to open its database.
pub(crate) fn backfill(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let mut stmt = tx.prepare(
        "SELECT request_id, pair_id, chain, account, summary, native_value, outcome, received_at,
           decided_at FROM sign_history ORDER BY COALESCE(decided_at, received_at), rowid",
    )?;
    // Streamed: the summaries of a long history need not fit in memory at once.
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let outcome: String = r.get(6)?;
        if !SignOutcome::parse(&outcome).is_ok_and(SignOutcome::is_spent) {
            continue;
        }
        let request: String = r.get(0)?;
        let native: Option<String> = r.get(5)?;
        let native_value = match native.as_deref().map(str::parse::<u128>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                tracing::warn!(%request, error = %e, "store: unreadable native value, zero");
                0
            }
        };
        let (received_at, decided_at): (i64, Option<i64>) = (r.get(7)?, r.get(8)?);
        let (pair_id, chain, account, summary): (String, String, String, String) =
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let signed = Signed {
            request: &request,
            pair_id: &pair_id,
            chain: &chain,
            account: &account,
            summary_json: &summary,
            native_value,
            at: u64::try_from(decided_at.unwrap_or(received_at)).unwrap_or(0),
        };
        record(tx, &signed)?;
    }
    Ok(())
}
