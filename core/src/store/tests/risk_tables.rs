//! The history warnings' tables (issue 15): what was signed is known afterwards and what
//! was not is not, a check does the same work over 1,000 or 10,000 history rows, and a
//! schema-7 database is filled from its history by migration 8.

use std::collections::BTreeSet;

use super::*;
use crate::decode::{PayloadFacts, TokenAction, TokenFact};
use crate::risk::{PairUsage, Role};

const T0: u64 = 1_799_971_200;
const PAIR: Uuid = Uuid::from_bytes([0xa; 16]);

fn account() -> AccountId {
    AccountId::evm(1, [0x33; 20])
}

/// An address as a decoder shows it (upper-case hex digits: the store keys it in lower case).
fn address(n: u64) -> String {
    format!("0x{n:040X}")
}
fn recipient(n: u64) -> String {
    address(0x1000 + n)
}
fn spender(n: u64) -> String {
    address(0x2000 + n)
}
fn token(n: u64) -> String {
    address(0x3000 + n)
}

fn token_fact(action: TokenAction, token: String, to: String) -> TokenFact {
    TokenFact { action, token, to, amount: Some("5".into()), unlimited: false, maybe_token_id: false }
}

/// What request `i` does: a payment of native value, a token transfer or an approval.
fn facts(i: u64) -> PayloadFacts {
    let mut f = PayloadFacts::default();
    match i % 3 {
        0 => {
            f.native_value = u128::from(i + 1) * 1_000;
            f.recipients.push(recipient(i % 40));
        }
        1 => {
            f.recipients.push(recipient(100 + i % 40));
            f.tokens.push(token_fact(TokenAction::Transfer, token(i % 5), recipient(100 + i % 40)));
        }
        _ => {
            f.recipients.push(spender(i % 7));
            f.tokens.push(token_fact(TokenAction::Approve, token(i % 5), spender(i % 7)));
        }
    }
    f
}

/// `n` history rows of one pair and account, a minute apart: even ones signed, odd ones
/// rejected (which never count).
fn rows(n: u64) -> Vec<SignRecord> {
    (0..n)
        .map(|i| {
            let f = facts(i);
            let outcome = if i % 2 == 0 { SignOutcome::Completed } else { SignOutcome::Rejected };
            SignRecord {
                request_id: Uuid::from_u128(u128::from(i) + 1),
                pair_id: PAIR,
                chain: ChainId::Evm(1),
                account: account(),
                kind: PayloadKind::EvmTransaction,
                native_value: Some(f.native_value),
                summary: serde_json::json!({"title": "Something", "facts": f}),
                spend: Some(f.native_value),
                outcome,
                reason: None,
                appliance_signature: None,
                received_at: T0 + i * 60,
                decided_at: Some(T0 + i * 60 + 5),
                expires_at: Some(T0 + i * 60 + 120),
                display_digest: None,
            }
        })
        .collect()
}

fn fill(s: &Store, rows: &[SignRecord]) {
    s.transaction(|tx| {
        for r in rows {
            tx.note_request(r.request_id, &[1; 32], r.pair_id, r.received_at)?;
            tx.put_sign(r)?;
        }
        Ok(())
    })
    .unwrap();
}

/// Asks about both kinds of every role: signed for before, and never.
fn wanted() -> BTreeSet<(Role, String)> {
    [
        (Role::Recipient, recipient(6)),   // paid (row 6 is even and a payment)
        (Role::Recipient, recipient(999)), // never
        (Role::Recipient, spender(2)),     // approved, never paid
        (Role::Spender, spender(2)),       // approved (row 2)
        (Role::Spender, spender(99)),      // never
        (Role::Token, token(1)),           // a token contract
        (Role::Token, recipient(6)),       // not a token
    ]
    .into_iter()
    .map(|(r, a)| (r, a.to_lowercase()))
    .collect()
}

/// What the rules say from the rows themselves.
fn expected(rows: &[SignRecord]) -> (BTreeSet<(Role, String)>, PairUsage, Option<u64>) {
    let signed: Vec<(u64, &SignRecord)> =
        rows.iter().enumerate().filter(|(_, r)| r.outcome.is_spent()).map(|(i, r)| (i as u64, r)).collect();
    let mut known = BTreeSet::new();
    for (i, _) in &signed {
        let f = facts(*i);
        for t in &f.tokens {
            known.insert((Role::Token, t.token.to_lowercase()));
            let role = if t.action == TokenAction::Approve { Role::Spender } else { Role::Recipient };
            known.insert((role, t.to.to_lowercase()));
        }
        if f.tokens.is_empty() {
            known.insert((Role::Recipient, f.recipients[0].to_lowercase()));
        }
    }
    let known = known.intersection(&wanted()).cloned().collect();
    let valued: Vec<u128> = signed.iter().map(|(_, r)| r.native_value.unwrap()).filter(|v| *v > 0).collect();
    let usage = PairUsage { valued: valued.len() as u64, value_sum: valued.iter().sum() };
    (known, usage, signed.iter().map(|(_, r)| r.decided_at.unwrap()).max())
}

fn check(s: &Store, rows: &[SignRecord]) {
    let got = s.risk_history(PAIR, &account(), &wanted()).unwrap();
    let (known, usage, last) = expected(rows);
    assert_eq!(got.known, known);
    assert_eq!(got.usage, usage);
    assert_eq!(got.last_signed_at, last);
    // Another account on the same chain shares only the token contracts.
    let other = AccountId::evm(1, [0x44; 20]);
    let theirs = s.risk_history(PAIR, &other, &wanted()).unwrap();
    assert!(theirs.known.iter().all(|(r, _)| *r == Role::Token), "{:?}", theirs.known);
}

/// Runs the check once to learn its statements, then again counting each statement's
/// virtual-machine steps.
fn work(s: &Store) -> Vec<(String, i32)> {
    let log = std::sync::Arc::new(Mutex::new(Vec::new()));
    s.trace_statements(Some(log.clone()));
    s.risk_history(PAIR, &account(), &wanted()).unwrap();
    s.trace_statements(None);
    let mut sqls: Vec<String> = std::mem::take(&mut *log.lock().unwrap());
    sqls.sort();
    sqls.dedup();
    for sql in &sqls {
        s.statement_steps(sql).unwrap();
    }
    s.risk_history(PAIR, &account(), &wanted()).unwrap();
    sqls.into_iter()
        .map(|sql| {
            let steps = s.statement_steps(&sql).unwrap();
            (sql, steps)
        })
        .collect()
}

#[test]
fn the_check_does_the_same_work_over_1_000_or_10_000_history_rows() {
    let (small, large) = (rows(1_000), rows(10_000));
    let (a, b) = (Store::open_in_memory().unwrap(), Store::open_in_memory().unwrap());
    fill(&a, &small);
    fill(&b, &large);
    check(&a, &small);
    check(&b, &large);
    // The pattern of who was paid repeats well within 1,000 rows: the same answers...
    assert_eq!(expected(&small).0, expected(&large).0);
    // ...from the same statements, each taking the same number of steps: a fixed number
    // of rows, read by key, whatever the size of the history.
    let (wa, wb) = (work(&a), work(&b));
    assert!(!wa.is_empty() && wa.iter().all(|(_, n)| *n > 0), "{wa:#?}");
    assert_eq!(wa, wb);
    for (sql, _) in &wa {
        let plan = b.query_plan(sql).unwrap();
        assert!(plan.iter().all(|d| !d.starts_with("SCAN")), "{sql}: {plan:?}");
        assert!(!sql.contains("sign_history"), "the check read the history: {sql}");
    }
}

#[test]
fn only_signed_requests_count_and_each_once() {
    let s = Store::open_in_memory().unwrap();
    let mut r = rows(1).remove(0);
    r.outcome = SignOutcome::Pending;
    r.decided_at = None;
    fill(&s, std::slice::from_ref(&r));
    let paid = BTreeSet::from([(Role::Recipient, recipient(0).to_lowercase())]);
    assert!(s.risk_history(PAIR, &account(), &paid).unwrap().known.is_empty(), "pending counts for nothing");
    s.set_sign_outcome(r.request_id, SignOutcome::Signed, None, Some(&[1; 65]), T0 + 9).unwrap();
    s.set_sign_outcome(r.request_id, SignOutcome::Completed, None, None, T0 + 10).unwrap();
    // Redelivered as pending: the decided row stays, nothing counts twice.
    s.insert_sign(&r).unwrap();
    let h = s.risk_history(PAIR, &account(), &paid).unwrap();
    assert_eq!(h.known, paid);
    assert_eq!(h.usage, PairUsage { valued: 1, value_sum: 1_000 });
    assert_eq!(h.last_signed_at, Some(T0 + 9));
    let times: i64 =
        s.lock().unwrap().query_row("SELECT SUM(times) FROM risk_counterparties", [], |r| r.get(0)).unwrap();
    assert_eq!(times, 1);
    // A rejected request is never recorded.
    let mut other = rows(2).remove(1);
    other.outcome = SignOutcome::Pending;
    other.decided_at = None;
    fill(&s, std::slice::from_ref(&other));
    s.set_sign_outcome(other.request_id, SignOutcome::Rejected, Some("user_rejected"), None, T0 + 70).unwrap();
    let theirs = BTreeSet::from([(Role::Recipient, recipient(101).to_lowercase())]);
    assert!(s.risk_history(PAIR, &account(), &theirs).unwrap().known.is_empty());
    // A summary without readable facts still counts its value (and names nobody).
    s.lock().unwrap().execute("UPDATE sign_history SET summary = '[1]', outcome = 'pending'", []).unwrap();
    s.set_sign_outcome(other.request_id, SignOutcome::Signed, None, None, T0 + 80).unwrap();
    assert_eq!(s.risk_history(PAIR, &account(), &theirs).unwrap().last_signed_at, Some(T0 + 80));
}

#[test]
fn a_version_7_database_learns_its_history_in_migration_8() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v7.db");
    let rows = rows(2_000);
    // Rows as the app wrote them up to schema 7 (no spend or expiry: they are not needed).
    write_history_at_version(&path, 7, &rows);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len() as i64);
    check(&s, &rows);
    let count = |s: &Store| -> i64 {
        s.lock().unwrap().query_row("SELECT SUM(times) FROM risk_counterparties", [], |r| r.get(0)).unwrap()
    };
    let before = count(&s);
    drop(s);
    // Opening again migrates nothing and counts nothing twice.
    let s = Store::open(&path).unwrap();
    check(&s, &rows);
    assert_eq!(count(&s), before);
    // The same history recorded live gives the same tables.
    let live = Store::open_in_memory().unwrap();
    fill(&live, &rows);
    assert_eq!(count(&live), before);
}
