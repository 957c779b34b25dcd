//! The sign engine's guardrails over fakes ([`crate::fakes`]): guardrails at arrival and at
//! approval, what counts as spent, and the store's work per request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use super::test_phone::{codes, Phone, ETH, FEE, GWEI};
use super::*;

// ---- attack 2: guardrails hold at approval ----

#[tokio::test]
async fn two_pending_requests_share_the_daily_limit() {
    let phone = Phone::new();
    phone.limits(1, None, Some(ETH));
    let first = phone.send(phone.pair_a, 6 * ETH / 10);
    assert!(!phone.ingest(&first).await.blocked());
    // Still waiting for the user: 0.6 ETH is already promised.
    let second = phone.send(phone.pair_b, 6 * ETH / 10);
    let view = phone.ingest(&second).await;
    assert_eq!(codes(&view), ["per_day_limit_exceeded"]);
    assert_eq!(phone.rejections(&second), ["guardrail"]);
    assert_eq!(phone.outcome(&second), SignOutcome::Blocked);
    // Once the first is declined it no longer counts.
    phone.engine.reject(first.request_id).await.unwrap();
    let third = phone.send(phone.pair_b, 6 * ETH / 10);
    assert!(!phone.ingest(&third).await.blocked());
    phone.approve(&third).await.unwrap();
}

#[tokio::test]
async fn a_request_approved_but_not_yet_signed_still_counts() {
    let phone = Phone::new();
    phone.limits(1, None, Some(ETH));
    let (asked, release) = phone.appliance.hold_signing();
    let first = phone.send(phone.pair_a, 6 * ETH / 10);
    phone.ingest(&first).await;
    let second = phone.send(phone.pair_a, 6 * ETH / 10);
    let (signed, view) = tokio::join!(phone.approve(&first), async {
        // The user approved the first; the appliance has it and has not answered yet.
        asked.notified().await;
        let view = phone.ingest(&second).await;
        release.notify_one();
        view
    });
    signed.unwrap();
    assert_eq!(codes(&view), ["per_day_limit_exceeded"]);
    assert_eq!(phone.outcome(&first), SignOutcome::Completed);
}

#[tokio::test]
async fn the_worst_case_network_fee_counts_as_spend() {
    let phone = Phone::new();
    phone.limits(1, Some(ETH / 100), Some(ETH / 100));
    // No value, but 7,000,000 gas at 30,000 gwei: up to 210 ETH of fees.
    let r = phone.tx(phone.pair_a, 1, 0, 7_000_000, 30_000 * GWEI);
    let view = phone.ingest(&r).await;
    assert_eq!(codes(&view), ["per_pair_limit_exceeded", "per_day_limit_exceeded"]);
    assert!(view.violations[1].message.contains("210 ETH"), "{}", view.violations[1].message);
    assert_eq!(phone.rejections(&r), ["guardrail"]);
    assert!(phone.approve(&r).await.is_err());
    assert!(!phone.asked(&r));
}

#[tokio::test]
async fn tightened_limits_apply_to_requests_already_waiting() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, ETH / 2);
    assert!(!phone.ingest(&r).await.blocked());
    // While it waits, the user lowers the daily limit under it.
    phone.limits(1, None, Some(ETH / 10));
    match phone.approve(&r).await {
        Err(SignError::Blocked(rules)) => assert_eq!(rules, ["per_day_limit_exceeded"]),
        other => panic!("approved over the new limit: {other:?}"),
    }
    assert!(!phone.asked(&r), "the appliance was asked");
    assert_eq!(phone.outcome(&r), SignOutcome::Blocked);
    assert_eq!(phone.rejections(&r), ["guardrail"]);
    let blocked: Vec<_> = phone
        .store
        .audit_log(10)
        .unwrap()
        .into_iter()
        .filter(|e| {
            matches!(e.event, crate::audit::AuditEvent::SignBlocked { .. }) && e.subject == r.request_id.to_string()
        })
        .collect();
    assert_eq!(blocked.len(), 1);
    // Asked again, it stays blocked with the same rules.
    let again = phone.approve(&r).await;
    assert!(matches!(again, Err(SignError::Blocked(r)) if r == ["per_day_limit_exceeded"]));
}

#[tokio::test]
async fn tightened_allowlists_apply_to_requests_already_waiting() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    let mut g = phone.engine.guardrails().unwrap();
    g.recipient_allowlist = Some(vec![]);
    phone.engine.set_guardrails(&g).unwrap();
    let approved = phone.approve(&r).await;
    assert!(matches!(approved, Err(SignError::Blocked(r)) if r == ["recipient_not_allowed"]));
    assert!(!phone.asked(&r));
}

#[tokio::test]
async fn a_request_is_not_counted_against_itself() {
    let phone = Phone::new();
    phone.limits(1, Some(ETH), Some(ETH));
    let r = phone.send(phone.pair_a, 9 * ETH / 10);
    assert!(!phone.ingest(&r).await.blocked());
    // Delivered again (the app restarted before the user decided): the same request.
    let again = Phone::on(phone.store.clone(), false);
    again.clock.set(phone.now() + 5);
    assert!(!again.ingest(&r).await.blocked());
    again.approve(&r).await.unwrap();
    assert_eq!(again.outcome(&r), SignOutcome::Completed);
}

#[tokio::test]
async fn signed_spend_counts_per_pair_ever_and_per_day_across_pairs() {
    let phone = Phone::new();
    phone.limits(1, Some(ETH), Some(3 * ETH / 2));
    // Pair A sends 0.6 ETH, pair B 0.6 ETH: both signed.
    let a1 = phone.send(phone.pair_a, 6 * ETH / 10);
    let view = phone.ingest(&a1).await;
    assert_eq!(view.worst_case_spend, 6 * ETH / 10 + FEE);
    assert!(view.worst_case_total().contains("0.60063"), "{}", view.worst_case_total());
    phone.approve(&a1).await.unwrap();
    let b1 = phone.send(phone.pair_b, 6 * ETH / 10);
    assert!(!phone.ingest(&b1).await.blocked());
    phone.approve(&b1).await.unwrap();
    // 0.35 ETH more through A fits A's 1 ETH, not the day's 1.5 ETH (both pairs count).
    let a2 = phone.send(phone.pair_a, 35 * ETH / 100);
    assert_eq!(codes(&phone.ingest(&a2).await), ["per_day_limit_exceeded"]);
    // Another chain has no limits and is not counted on this one.
    let op = phone.tx(phone.pair_a, 10, 5 * ETH, 21_000, 30 * GWEI);
    assert!(!phone.ingest(&op).await.blocked());
    phone.approve(&op).await.unwrap();
    // The next UTC day: the daily total starts again, the pair's does not.
    phone.advance(86_400);
    let a3 = phone.send(phone.pair_a, 35 * ETH / 100);
    assert!(!phone.ingest(&a3).await.blocked());
    phone.approve(&a3).await.unwrap();
    let a4 = phone.send(phone.pair_a, ETH / 10);
    assert_eq!(codes(&phone.ingest(&a4).await), ["per_pair_limit_exceeded"]);
    let b2 = phone.send(phone.pair_b, ETH / 10);
    assert!(!phone.ingest(&b2).await.blocked());
    let spent = phone.store.spend(phone.pair_a, &ChainId::Evm(1), phone.now(), None).unwrap();
    assert_eq!(spent.spent_by_pair, 95 * ETH / 100 + 2 * FEE);
    assert_eq!(spent.spent_today, 35 * ETH / 100 + ETH / 10 + 2 * FEE, "a3 signed today, b2 waiting");
}

#[tokio::test]
async fn expired_and_refused_requests_stop_counting() {
    let mut phone = Phone::new();
    phone.limits(1, None, Some(ETH));
    let old = phone.send(phone.pair_a, 6 * ETH / 10);
    phone.ingest(&old).await;
    // Never decided, and now expired (a request expires at `expires_at` itself).
    phone.advance(120);
    let next = phone.send(phone.pair_a, 6 * ETH / 10);
    assert!(!phone.ingest(&next).await.blocked());
    // The appliance refuses it: failed, no longer counted.
    phone.appliance.wallet = k256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
    assert!(matches!(phone.approve(&next).await, Err(SignError::BadApplianceSignature(_))));
    assert_eq!(phone.outcome(&next), SignOutcome::Failed);
    let third = phone.send(phone.pair_a, 6 * ETH / 10);
    assert!(!phone.ingest(&third).await.blocked());
}

#[tokio::test]
async fn a_request_that_expires_while_waiting_is_not_sent_to_the_appliance() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    phone.advance(120);
    assert!(matches!(phone.approve(&r).await, Err(SignError::Expired)));
    assert!(!phone.asked(&r));
    assert_eq!(phone.outcome(&r), SignOutcome::Failed);
    assert_eq!(phone.rejections(&r), ["expired"]);
}

#[tokio::test]
async fn freshness_follows_the_one_validity_rule() {
    let phone = Phone::new();
    let base = phone.send(phone.pair_a, 1);
    let req: SignRequest = crate::cbor::from_canonical_slice(&base.request.body).unwrap();
    let now = phone.now();
    let with = |created_at: u64, expires_at: u64| {
        phone.countersigned(&SignRequest { request_id: Uuid::new_v4(), created_at, expires_at, ..req.clone() })
    };
    let cases = [
        (with(now, now), "bad_validity"),
        (with(now - 10, now), "expired"),
        (with(now, now + 301), "bad_validity"),
        (with(now + 30 * 86_400, now + 30 * 86_400 + 60), "bad_validity"),
        (with(now + DEFAULT_MAX_SKEW_SECS + 1, now + 200), "bad_validity"),
    ];
    for (r, code) in &cases {
        let e = phone.engine.ingest(r).await.unwrap_err();
        assert_eq!(e.code(), *code, "{e}");
        assert_eq!(phone.rejections(r), [*code]);
    }
    assert!(!phone.ingest(&with(now + DEFAULT_MAX_SKEW_SECS, now + 200)).await.blocked());
    assert!(!phone.ingest(&with(now - 299, now + 1)).await.blocked());
}

/// Every statement the sign path runs reads through an index (no `SCAN` of a table), and
/// each state change of a request is one transaction.
#[tokio::test]
async fn the_sign_path_reads_by_index_and_changes_state_in_one_transaction_each() {
    let phone = Phone::new();
    phone.limits(1, Some(10 * ETH), Some(10 * ETH));
    let log = Arc::new(Mutex::new(Vec::new()));
    phone.store.trace_statements(Some(log.clone()));
    let take = || std::mem::take(&mut *log.lock().unwrap());

    let ok = phone.send(phone.pair_a, ETH);
    phone.ingest(&ok).await;
    let arrival = take();
    let over = phone.send(phone.pair_a, 100 * ETH);
    assert!(phone.ingest(&over).await.blocked());
    let arrival_blocked = take();
    phone.approve(&ok).await.unwrap();
    let approval_signed_completed = take();
    let declined = phone.send(phone.pair_b, ETH);
    phone.ingest(&declined).await;
    take();
    phone.engine.reject(declined.request_id).await.unwrap();
    let rejected = take();
    let waiting = phone.send(phone.pair_b, 5 * ETH);
    phone.ingest(&waiting).await;
    phone.limits(1, Some(ETH), None);
    take();
    assert!(matches!(phone.approve(&waiting).await, Err(SignError::Blocked(_))));
    let blocked_at_approval = take();
    assert!(matches!(phone.engine.ingest(&ok).await, Err(SignError::Replay)));
    assert!(matches!(phone.approve(&waiting).await, Err(SignError::Blocked(_))));
    let refused = take();
    let late = phone.send(phone.pair_a, 1);
    phone.advance(3600);
    assert!(phone.engine.ingest(&late).await.is_err());
    let refused_late = take();
    phone.store.trace_statements(None);

    let is_write = |s: &str| ["INSERT", "UPDATE", "DELETE", "REPLACE"].iter().any(|w| s.starts_with(w));
    for (what, stmts, transactions) in [
        ("arrival", &arrival, 1),
        ("arrival, blocked", &arrival_blocked, 1),
        ("approval, signed, completed", &approval_signed_completed, 3),
        ("rejected", &rejected, 1),
        ("blocked at approval", &blocked_at_approval, 1),
        ("replay and a blocked request approved again", &refused, 0),
        ("refused on arrival", &refused_late, 1),
    ] {
        assert_eq!(stmts.iter().filter(|s| s.starts_with("BEGIN")).count(), transactions, "{what}: {stmts:#?}");
        let mut open = false;
        for s in stmts.iter() {
            if s.starts_with("BEGIN") {
                open = true;
            } else if s.starts_with("COMMIT") || s.starts_with("ROLLBACK") {
                open = false;
            } else if is_write(s) {
                assert!(open, "{what}: a write outside the state change's transaction: {s}");
            }
        }
    }

    let mut all: Vec<String> =
        [arrival, arrival_blocked, approval_signed_completed, rejected, blocked_at_approval, refused, refused_late]
            .concat();
    all.sort();
    all.dedup();
    all.retain(|s| !["BEGIN", "COMMIT", "ROLLBACK"].iter().any(|k| s.starts_with(k)));
    assert!(all.iter().any(|s| s.contains("spend_by_day")), "the spend queries ran: {all:#?}");
    for sql in &all {
        let plan = phone.store.query_plan(sql).unwrap();
        let scans: Vec<_> = plan.iter().filter(|d| d.starts_with("SCAN")).collect();
        assert!(scans.is_empty(), "{sql}\n  scans: {scans:?}\n  plan: {plan:?}");
    }
}
