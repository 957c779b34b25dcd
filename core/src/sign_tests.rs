//! The sign pipeline against an in-process octane (a transport that answers every post and
//! records what the phone told it) and an in-process appliance that signs with a real key:
//! guardrails at arrival and at approval, what counts as spent, and the store's work per
//! request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, TxKind, U256};
use ed25519_dalek::SigningKey;
use sha3::{Digest as _, Keccak256};
use tokio::sync::Notify;
use url::Url;

use super::*;
use crate::appliance::ApplianceInfo;
use crate::bytes::Key32;
use crate::guardrails::NativeLimits;
use crate::model::SpProfile;
use crate::octane::client::{AppCredentials, OctaneConfig};
use crate::octane::transport::{HttpRequest, HttpResponse, HttpTransport, TransportError};
use crate::payload::{encode_evm_signature, signing_target, SigningTarget};
use crate::store::BondedAppliance;

const ETH: u128 = 1_000_000_000_000_000_000;
const GWEI: u128 = 1_000_000_000;
/// 01:00 UTC.
const T0: u64 = 1_799_971_200 + 3_600;
/// The fee of [`Phone::send`]'s transactions: 21,000 gas × 30 gwei.
const FEE: u128 = 21_000 * 30 * GWEI;

#[derive(Debug)]
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now_unix(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Octane as the phone sees it: every post is answered and recorded.
#[derive(Debug, Default)]
struct FakeOctane {
    posts: Mutex<Vec<(String, serde_json::Value)>>,
}

#[async_trait::async_trait]
impl HttpTransport for FakeOctane {
    async fn send(&self, r: HttpRequest) -> Result<HttpResponse, TransportError> {
        let path = r.url.path().to_string();
        let body = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
        self.posts.lock().unwrap().push((path.clone(), body));
        let id = path.split('/').nth(3).unwrap_or_default().to_string();
        let ack = serde_json::json!({"request_id": id, "result": {"status": "pending"}});
        Ok(HttpResponse { status: 200, body: serde_json::to_vec(&ack).unwrap() })
    }
}

/// An appliance that signs EVM requests with one real key; it can be held mid-request
/// (after the user approved, before the signature comes back).
struct FakeAppliance {
    key: k256::ecdsa::SigningKey,
    asked: Mutex<Vec<Uuid>>,
    hold: Option<(Arc<Notify>, Arc<Notify>)>,
}

#[async_trait::async_trait]
impl ApplianceApi for FakeAppliance {
    async fn info(&self) -> Result<ApplianceInfo, ApplianceError> {
        Err(ApplianceError::Timeout)
    }
    async fn wallets(&self, _: &[ChainId]) -> Result<Vec<AccountId>, ApplianceError> {
        Err(ApplianceError::Timeout)
    }
    async fn approve_pair(
        &self,
        _: Uuid,
        _: &SignedEnvelope,
        _: &str,
        _: &[AccountId],
        _: Option<ProgressFn>,
    ) -> Result<SignedEnvelope, ApplianceError> {
        Err(ApplianceError::Timeout)
    }
    async fn sign(&self, request: &CountersignedRequest, _: Option<ProgressFn>) -> Result<Vec<u8>, ApplianceError> {
        let req: SignRequest = crate::cbor::from_canonical_slice(&request.body).unwrap();
        self.asked.lock().unwrap().push(req.request_id);
        if let Some((asked, release)) = &self.hold {
            asked.notify_one();
            release.notified().await;
        }
        let SigningTarget::EvmDigest { digest, v_style } = signing_target(req.kind, &req.payload, &req.chain).unwrap()
        else {
            panic!("EVM only")
        };
        let (sig, recid) = self.key.sign_prehash_recoverable(&digest).unwrap();
        Ok(encode_evm_signature(&sig, recid, v_style).to_vec())
    }
    async fn revoke_pair(&self, _: Uuid, _: Uuid) -> Result<SignedEnvelope, ApplianceError> {
        Err(ApplianceError::Timeout)
    }
    async fn list_pairs(&self) -> Result<Vec<Uuid>, ApplianceError> {
        Err(ApplianceError::Timeout)
    }
}

fn sp_key() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

fn octane_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn wallet_key() -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap()
}

fn wallet_address() -> [u8; 20] {
    let point = wallet_key().verifying_key().to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    hash[12..].try_into().unwrap()
}

/// A phone with two pairs (A and B) on one bonded appliance, both bound to the wallet on
/// Ethereum and Optimism.
struct Phone {
    store: Arc<Store>,
    clock: Arc<TestClock>,
    octane: Arc<FakeOctane>,
    engine: SignEngine,
    appliance: FakeAppliance,
    pair_a: Uuid,
    pair_b: Uuid,
}

impl Phone {
    fn new() -> Phone {
        Phone::on(Arc::new(Store::open_in_memory().unwrap()), true)
    }

    fn on(store: Arc<Store>, fresh: bool) -> Phone {
        let clock = Arc::new(TestClock(AtomicU64::new(T0)));
        let identity = Key32([9; 32]);
        let (pair_a, pair_b) = (Uuid::from_bytes([0xa; 16]), Uuid::from_bytes([0xb; 16]));
        if fresh {
            store
                .put_appliance(&BondedAppliance {
                    identity,
                    static_key: Key32([8; 32]),
                    name: "Sigil".into(),
                    endorsement: SignedEnvelope { body: vec![1], sig: vec![2; 64] },
                    bonded_at: 1,
                })
                .unwrap();
            for pair_id in [pair_a, pair_b] {
                let sp_public = Key32(sp_key().verifying_key().to_bytes());
                store
                    .insert_pair(&PairRecord {
                        pair_id,
                        appliance_identity: identity,
                        session_id: format!("s-{pair_id}"),
                        sp: SpProfile {
                            sp_id: "sp".into(),
                            name: "Acme".into(),
                            logo_url: "https://acme.example/logo.png".into(),
                            homepage: "https://acme.example".into(),
                            public_key: sp_public,
                            allowed_return_origins: vec![],
                        },
                        sp_user_ref: "alice".into(),
                        sp_public_key: sp_public,
                        bindings: vec![AccountId::evm(1, wallet_address()), AccountId::evm(10, wallet_address())],
                        status: PairStatus::Active,
                        created_at: 1,
                        revoked_at: None,
                    })
                    .unwrap();
            }
        }
        let octane = Arc::new(FakeOctane::default());
        let cfg = OctaneConfig::new(
            Url::parse("http://127.0.0.1:9").unwrap(),
            Key32(octane_key().verifying_key().to_bytes()),
        );
        let creds = AppCredentials {
            app_key: SigningKey::from_bytes(&[4; 32]),
            endorsement: SignedEnvelope { body: vec![], sig: vec![] },
        };
        let client = OctaneClient::new(cfg, creds, clock.clone(), octane.clone()).unwrap();
        let engine = SignEngine::new(store.clone(), client, clock.clone());
        let appliance = FakeAppliance { key: wallet_key(), asked: Mutex::new(Vec::new()), hold: None };
        Phone { store, clock, octane, engine, appliance, pair_a, pair_b }
    }

    fn now(&self) -> u64 {
        self.clock.now_unix()
    }

    fn advance(&self, secs: u64) {
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }

    fn limits(&self, chain: u64, per_pair: Option<u128>, per_day: Option<u128>) {
        let mut g = self.engine.guardrails().unwrap();
        g.limits.insert(ChainId::Evm(chain), NativeLimits { per_pair, per_day });
        self.engine.set_guardrails(&g).unwrap();
    }

    /// A countersigned EIP-1559 transaction on `chain` sending `value` wei, with a gas
    /// limit and a max fee per gas (the worst-case fee is their product).
    fn tx(&self, pair_id: Uuid, chain: u64, value: u128, gas_limit: u64, max_fee_per_gas: u128) -> PendingSignRequest {
        let tx = TxEip1559 {
            chain_id: chain,
            nonce: 1,
            gas_limit,
            max_fee_per_gas,
            max_priority_fee_per_gas: 1,
            to: TxKind::Call(Address::from([0x11; 20])),
            value: U256::from(value),
            access_list: Default::default(),
            input: Default::default(),
        };
        let mut payload = Vec::new();
        tx.encode_for_signing(&mut payload);
        let now = self.now();
        self.countersigned(&SignRequest {
            v: STATEMENT_VERSION,
            request_id: Uuid::new_v4(),
            pair_id,
            chain: ChainId::Evm(chain),
            account: AccountId::evm(chain, wallet_address()),
            kind: PayloadKind::EvmTransaction,
            payload,
            created_at: now,
            expires_at: now + 120,
        })
    }

    /// [`Phone::tx`] on Ethereum with an ordinary fee ([`FEE`]).
    fn send(&self, pair_id: Uuid, value: u128) -> PendingSignRequest {
        self.tx(pair_id, 1, value, 21_000, 30 * GWEI)
    }

    fn countersigned(&self, req: &SignRequest) -> PendingSignRequest {
        let body = crate::cbor::to_vec(req).unwrap();
        PendingSignRequest {
            pair_id: req.pair_id,
            request_id: req.request_id,
            request: CountersignedRequest {
                sp_sig: crate::envelope::sign_bytes(Domain::SpSignRequest, &sp_key(), &body).to_vec(),
                octane_sig: crate::envelope::sign_bytes(Domain::OctaneSignRequest, &octane_key(), &body).to_vec(),
                body,
            },
        }
    }

    async fn ingest(&self, r: &PendingSignRequest) -> PendingSignature {
        self.engine.ingest(r).await.unwrap()
    }

    async fn approve(&self, r: &PendingSignRequest) -> Result<SignedOutcome, SignError> {
        self.engine.approve(r.request_id, &self.appliance, None).await
    }

    /// The reason codes the phone posted to octane for `r`'s rejection.
    fn rejections(&self, r: &PendingSignRequest) -> Vec<String> {
        let path = format!("/app/sign/{}/reject", r.request_id);
        self.octane
            .posts
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| *p == path)
            .map(|(_, b)| b["reason_code"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn outcome(&self, r: &PendingSignRequest) -> SignOutcome {
        self.store.sign_record(r.request_id).unwrap().unwrap().outcome
    }

    fn asked(&self, r: &PendingSignRequest) -> bool {
        self.appliance.asked.lock().unwrap().contains(&r.request_id)
    }
}

fn codes(p: &PendingSignature) -> Vec<&str> {
    p.violations.iter().map(|v| v.code.as_str()).collect()
}

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
    let mut phone = Phone::new();
    phone.limits(1, None, Some(ETH));
    let (asked, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    phone.appliance.hold = Some((asked.clone(), release.clone()));
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
        .filter(|e| e.kind == "sign_blocked" && e.subject == r.request_id.to_string())
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
    again.clock.0.store(phone.now() + 5, Ordering::SeqCst);
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
    phone.appliance.key = k256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
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
