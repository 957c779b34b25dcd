//! Spend totals for the guardrails, kept so that the sign path never reads the history.
//!
//! - Signed spend is a running total, updated in the transaction that records a request as
//!   signed: `spend_by_pair (pair_id, chain)` and `spend_by_day (chain, day)`, read by key.
//! - Spend still waiting (requests shown or approved, not yet signed, not expired) is read
//!   from the partial index `sign_history_live` over pending rows by chain and expiry; the
//!   range `expires_at > now` holds only requests received in the last few minutes
//!   (lifetimes are at most `MAX_TTL_SECS`).
//!
//! Amounts are wei / lamports (`u128`); SQLite integers are `i64`, so they are stored as
//! decimal text and added in Rust, saturating.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use uuid::Uuid;

use super::{as_i64, corrupt, SignOutcome, StoreError};
use crate::caip::ChainId;
use crate::guardrails::SpendContext;

/// Seconds in a UTC day.
const DAY_SECS: u64 = 86_400;

/// Most requests waiting at once on one chain whose spend is added up. More is a flood
/// (they all arrived within a few minutes): the totals are then reported saturated, so any
/// limit on that chain refuses further requests until they expire or are decided.
pub const MAX_LIVE_REQUESTS: i64 = 1_000;

/// The UTC day number of `at` (Unix seconds / 86,400).
pub(crate) fn utc_day(at: u64) -> i64 {
    as_i64(at / DAY_SECS)
}

/// Parses a stored decimal amount.
pub(crate) fn parse_amount(what: &'static str, s: &str) -> Result<u128, StoreError> {
    s.parse::<u128>().map_err(|e| corrupt(what, e))
}

fn total(conn: &Connection, sql: &str, p: impl rusqlite::Params, what: &'static str) -> Result<u128, StoreError> {
    let v: Option<String> = conn.prepare_cached(sql)?.query_row(p, |r| r.get(0)).optional()?;
    v.map(|s| parse_amount(what, &s)).transpose().map(|v| v.unwrap_or(0))
}

const PAIR_TOTAL: &str = "SELECT amount FROM spend_by_pair WHERE pair_id = ?1 AND chain = ?2";
const DAY_TOTAL: &str = "SELECT amount FROM spend_by_day WHERE chain = ?1 AND day = ?2";

/// See [`super::StoreTx::spend`].
pub(crate) fn spend(
    conn: &Connection,
    pair_id: Uuid,
    chain: &ChainId,
    now: u64,
    exclude: Option<Uuid>,
) -> Result<SpendContext, StoreError> {
    let chain = chain.to_string();
    let pair = pair_id.to_string();
    let mut ctx = SpendContext {
        spent_by_pair: total(conn, PAIR_TOTAL, params![pair, chain], "spend_by_pair.amount")?,
        spent_today: total(conn, DAY_TOTAL, params![chain, utc_day(now)], "spend_by_day.amount")?,
    };
    // The LIMIT is a literal: a bound LIMIT makes SQLite prepare the statement anew at
    // every call (its plan depends on the value).
    let mut stmt = conn.prepare_cached(
        "SELECT pair_id, spend FROM sign_history
         WHERE outcome = 'pending' AND chain = ?1 AND expires_at > ?2 AND request_id <> ?3
         LIMIT 1001",
    )?;
    const _: () = assert!(MAX_LIVE_REQUESTS + 1 == 1001, "the LIMIT above");
    let exclude = exclude.map(|u| u.to_string()).unwrap_or_default();
    let mut rows = stmt.query(params![chain, as_i64(now), exclude])?;
    let mut seen = 0i64;
    while let Some(row) = rows.next()? {
        seen += 1;
        if seen > MAX_LIVE_REQUESTS {
            tracing::warn!(%chain, "store: more requests waiting than the spend check adds up");
            return Ok(SpendContext { spent_by_pair: u128::MAX, spent_today: u128::MAX });
        }
        let row_pair: String = row.get(0)?;
        let amount: Option<String> = row.get(1)?;
        let amount = amount.map(|a| parse_amount("sign_history.spend", &a)).transpose()?.unwrap_or(0);
        ctx.spent_today = ctx.spent_today.saturating_add(amount);
        if row_pair == pair {
            ctx.spent_by_pair = ctx.spent_by_pair.saturating_add(amount);
        }
    }
    Ok(ctx)
}

/// Adds `amount`, signed at `at`, to the running totals of its pair and its UTC day.
pub(crate) fn commit(conn: &Connection, pair_id: &str, chain: &str, at: u64, amount: u128) -> Result<(), StoreError> {
    let by_pair = total(conn, PAIR_TOTAL, params![pair_id, chain], "spend_by_pair.amount")?;
    conn.prepare_cached(
        "INSERT INTO spend_by_pair (pair_id, chain, amount) VALUES (?1, ?2, ?3)
         ON CONFLICT(pair_id, chain) DO UPDATE SET amount = excluded.amount",
    )?
    .execute(params![pair_id, chain, by_pair.saturating_add(amount).to_string()])?;
    let day = utc_day(at);
    let by_day = total(conn, DAY_TOTAL, params![chain, day], "spend_by_day.amount")?;
    conn.prepare_cached(
        "INSERT INTO spend_by_day (chain, day, amount) VALUES (?1, ?2, ?3)
         ON CONFLICT(chain, day) DO UPDATE SET amount = excluded.amount",
    )?
    .execute(params![chain, day, by_day.saturating_add(amount).to_string()])?;
    Ok(())
}

/// Migration 2: fills `sign_history.spend` (native value + the worst-case fee when the
/// stored summary has one) and the running totals from the rows already signed, on the day
/// each was decided. Runs once, inside the migration's transaction; a damaged row counts
/// as zero (with a warning) rather than leaving the app unable to open its database.
pub(crate) fn backfill(tx: &Transaction<'_>) -> Result<(), StoreError> {
    type Row = (String, String, String, String, Option<String>, String, i64, Option<i64>);
    let rows: Vec<Row> = {
        let mut stmt = tx.prepare(
            "SELECT request_id, pair_id, chain, summary, native_value, outcome, received_at,
               decided_at FROM sign_history",
        )?;
        let mapped = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
        })?;
        mapped.collect::<Result<_, _>>()?
    };
    let lenient = |what: &str, id: &str, v: Option<&str>| -> u128 {
        match v.map(str::parse::<u128>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                tracing::warn!(request = %id, what, error = %e, "store: unreadable amount, zero");
                0
            }
        }
    };
    for (id, pair_id, chain, summary, native, outcome, received_at, decided_at) in rows {
        let fee = serde_json::from_str::<serde_json::Value>(&summary)
            .ok()
            .and_then(|v| v.pointer("/facts/max_fee").and_then(|f| f.as_str().map(str::to_string)));
        let spend =
            lenient("native_value", &id, native.as_deref()).saturating_add(lenient("max_fee", &id, fee.as_deref()));
        tx.execute("UPDATE sign_history SET spend = ?2 WHERE request_id = ?1", params![id, spend.to_string()])?;
        if SignOutcome::parse(&outcome).is_ok_and(SignOutcome::is_spent) {
            let at = decided_at.unwrap_or(received_at);
            commit(tx, &pair_id, &chain, u64::try_from(at).unwrap_or(0), spend)?;
        }
    }
    Ok(())
}
