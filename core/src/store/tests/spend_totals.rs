//! Spend totals (issue 18): the running totals and the index of waiting requests give
//! exactly what the rules say, over a large history, after a migration, and under a flood.

use super::*;
use rand::{Rng, SeedableRng};

const DAY: u64 = 86_400;
const T0: u64 = 1_799_971_200;
const OUTCOMES: [SignOutcome; 6] = [
    SignOutcome::Pending,
    SignOutcome::Signed,
    SignOutcome::Completed,
    SignOutcome::Rejected,
    SignOutcome::Blocked,
    SignOutcome::Failed,
];

/// `n` history rows over 30 days, two pairs, two chains, every outcome, amounts far
/// beyond an i64 (up to 2^100), the last 40 received in the last two minutes.
fn rows(n: usize) -> Vec<SignRecord> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(18);
    let pairs = [Uuid::from_bytes([0xa; 16]), Uuid::from_bytes([0xb; 16])];
    (0..n)
        .map(|i| {
            let chain_id = if rng.gen_bool(0.5) { 1 } else { 10 };
            let received_at =
                if i + 40 >= n { T0 + 30 * DAY - rng.gen_range(0..120) } else { T0 + rng.gen_range(0..30 * DAY) };
            let outcome = OUTCOMES[rng.gen_range(0..OUTCOMES.len())];
            let amount = rng.gen_range(0..1u128 << 100);
            SignRecord {
                request_id: Uuid::from_u128(u128::try_from(i).unwrap() + 1),
                pair_id: pairs[rng.gen_range(0..2)],
                chain: ChainId::Evm(chain_id),
                account: AccountId::evm(chain_id, [0x33; 20]),
                kind: PayloadKind::EvmTransaction,
                summary: serde_json::json!({"title": "Send ETH", "facts": {"max_fee": "7"}}),
                native_value: Some(amount),
                spend: Some(amount + 7),
                outcome,
                reason: None,
                appliance_signature: None,
                received_at,
                decided_at: (outcome != SignOutcome::Pending).then(|| received_at + rng.gen_range(0..600)),
                expires_at: Some(received_at + 120),
                display_digest: None,
            }
        })
        .collect()
}

/// The totals by the rules, from the rows themselves.
fn expected(rows: &[SignRecord], pair: Uuid, chain: &ChainId, now: u64, exclude: Option<Uuid>) -> SpendContext {
    let mut ctx = SpendContext::default();
    for r in rows.iter().filter(|r| &r.chain == chain && Some(r.request_id) != exclude) {
        let amount = r.spend.unwrap();
        let waiting = r.outcome == SignOutcome::Pending && r.expires_at.unwrap() > now;
        let signed = r.outcome.is_spent();
        let signed_today = signed && r.decided_at.unwrap() / DAY == now / DAY;
        if (signed || waiting) && r.pair_id == pair {
            ctx.spent_by_pair += amount;
        }
        if signed_today || waiting {
            ctx.spent_today += amount;
        }
    }
    ctx
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

fn check(s: &Store, rows: &[SignRecord]) {
    let now = T0 + 30 * DAY;
    let waiting = rows.iter().rev().find(|r| r.outcome == SignOutcome::Pending && r.expires_at.unwrap() > now);
    let waiting = waiting.map(|r| r.request_id);
    assert!(waiting.is_some(), "the sample has requests still waiting");
    for pair in [Uuid::from_bytes([0xa; 16]), Uuid::from_bytes([0xb; 16])] {
        for chain in [ChainId::Evm(1), ChainId::Evm(10)] {
            for at in [now, now - DAY, now - 17 * DAY] {
                for exclude in [None, waiting] {
                    let got = s.spend(pair, &chain, at, exclude).unwrap();
                    assert_eq!(got, expected(rows, pair, &chain, at, exclude), "{pair} {chain} {at} {exclude:?}");
                }
            }
        }
    }
    assert!(
        expected(rows, Uuid::from_bytes([0xa; 16]), &ChainId::Evm(1), now, None).spent_by_pair > u128::from(u64::MAX)
    );
}

#[test]
fn spend_totals_stay_right_over_10_000_history_rows() {
    let s = Store::open_in_memory().unwrap();
    let rows = rows(10_000);
    fill(&s, &rows);
    check(&s, &rows);
    // Deciding the waiting requests moves their spend from waiting to signed (or away).
    let now = T0 + 30 * DAY;
    let mut rows = rows;
    for (i, r) in rows.iter_mut().filter(|r| r.outcome == SignOutcome::Pending).enumerate() {
        let outcome = if i % 2 == 0 { SignOutcome::Signed } else { SignOutcome::Rejected };
        s.set_sign_outcome(r.request_id, outcome, None, None, now).unwrap();
        // Completing a signed request adds nothing more.
        if outcome == SignOutcome::Signed {
            s.set_sign_outcome(r.request_id, SignOutcome::Completed, None, None, now + 1).unwrap();
        }
        r.outcome = outcome;
        r.decided_at = Some(now);
    }
    check_decided(&s, &rows, now);
}

fn check_decided(s: &Store, rows: &[SignRecord], now: u64) {
    for pair in [Uuid::from_bytes([0xa; 16]), Uuid::from_bytes([0xb; 16])] {
        for chain in [ChainId::Evm(1), ChainId::Evm(10)] {
            assert_eq!(s.spend(pair, &chain, now, None).unwrap(), expected(rows, pair, &chain, now, None));
        }
    }
}

#[test]
fn a_version_1_database_migrates_and_keeps_its_spend() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let rows = rows(2_000);
    write_history_at_version(&path, 1, &rows);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len() as i64);
    // Every row got its spend (value + the max fee its summary recorded); rows from
    // before had no expiry, so only what was signed counts.
    let first = s.sign_record(rows[0].request_id).unwrap().unwrap();
    assert_eq!(first.spend, rows[0].spend);
    assert_eq!(first.expires_at, None);
    let signed: Vec<SignRecord> = rows.iter().filter(|r| r.outcome.is_spent()).cloned().collect();
    let now = T0 + 30 * DAY;
    for pair in [Uuid::from_bytes([0xa; 16]), Uuid::from_bytes([0xb; 16])] {
        for at in [now, now - 3 * DAY] {
            let got = s.spend(pair, &ChainId::Evm(1), at, None).unwrap();
            assert_eq!(got, expected(&signed, pair, &ChainId::Evm(1), at, None));
        }
    }
    drop(s);
    // Opening again migrates nothing and counts nothing twice.
    let s = Store::open(&path).unwrap();
    let pair = Uuid::from_bytes([0xa; 16]);
    assert_eq!(
        s.spend(pair, &ChainId::Evm(10), now, None).unwrap(),
        expected(&signed, pair, &ChainId::Evm(10), now, None)
    );
}

#[test]
fn a_decided_row_is_never_rewritten_and_signed_spend_counts_once() {
    let s = Store::open_in_memory().unwrap();
    let mut r = rows(1).remove(0);
    r.outcome = SignOutcome::Pending;
    r.decided_at = None;
    r.received_at = T0;
    r.expires_at = Some(T0 + 120);
    fill(&s, &[r.clone()]);
    let pair = r.pair_id;
    let amount = r.spend.unwrap();
    assert_eq!(s.spend(pair, &r.chain, T0, None).unwrap().spent_today, amount);
    assert_eq!(s.spend(pair, &r.chain, T0, Some(r.request_id)).unwrap().spent_today, 0);
    s.set_sign_outcome(r.request_id, SignOutcome::Signed, None, Some(&[1; 65]), T0 + 5).unwrap();
    s.set_sign_outcome(r.request_id, SignOutcome::Completed, None, None, T0 + 6).unwrap();
    s.set_sign_outcome(r.request_id, SignOutcome::Completed, None, None, T0 + 7).unwrap();
    // Redelivered as pending: the decided row stays as it is.
    s.insert_sign(&r).unwrap();
    assert_eq!(s.sign_record(r.request_id).unwrap().unwrap().outcome, SignOutcome::Completed);
    let got = s.spend(pair, &r.chain, T0 + 10, None).unwrap();
    assert_eq!(got, SpendContext { spent_by_pair: amount, spent_today: amount });
    // Corrupt totals are errors, not panics or zeroes.
    s.lock().unwrap().execute("UPDATE spend_by_day SET amount = 'lots'", []).unwrap();
    assert!(matches!(s.spend(pair, &r.chain, T0 + 10, None), Err(StoreError::Corrupt { .. })));
}

#[test]
fn a_flood_of_waiting_requests_saturates_the_totals() {
    let s = Store::open_in_memory().unwrap();
    let mut all = rows(usize::try_from(MAX_LIVE_REQUESTS).unwrap() + 1);
    for r in &mut all {
        r.chain = ChainId::Evm(1);
        r.account = AccountId::evm(1, [0x33; 20]);
        r.outcome = SignOutcome::Pending;
        r.decided_at = None;
        r.received_at = T0;
        r.expires_at = Some(T0 + 120);
        r.spend = Some(1);
    }
    let (last, rest) = all.split_last().unwrap();
    fill(&s, rest);
    let pair = last.pair_id;
    assert_eq!(s.spend(pair, &ChainId::Evm(1), T0, None).unwrap().spent_today, MAX_LIVE_REQUESTS as u128);
    fill(&s, std::slice::from_ref(last));
    let flood = s.spend(pair, &ChainId::Evm(1), T0, None).unwrap();
    assert_eq!(flood, SpendContext { spent_by_pair: u128::MAX, spent_today: u128::MAX });
    // Once they expire, nothing is waiting.
    assert_eq!(s.spend(pair, &ChainId::Evm(1), T0 + 120, None).unwrap(), SpendContext::default());
}
