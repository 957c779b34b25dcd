//! Approvals the appliance can verify, end to end: a phone with a (software) approval key
//! bonds with the appliance simulator (the key is enrolled inside the bonding exchange),
//! pairs (policy `always`), and every approval carries the key's signature over the
//! request and the screen the user saw. The appliance refuses forged, misdirected,
//! replayed and missing proofs with their reasons and signs nothing; the SP sees the
//! reason. After a biometric change invalidates the key, a new key enrolled with the
//! appliance user's confirmation restores signing; the policy changes only with that
//! confirmation too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, TxKind, U256};
use sunstorm_core::appliance::client::{ApplianceClient, ClientConfig};
use sunstorm_core::appliance::{ApplianceApi, ApplianceError};
use sunstorm_core::approval::{
    ApprovalKey, ApprovalKeyError, ApprovalPolicy, ApprovalProof, ApprovalPublicKey, ApprovalStatement,
};
use sunstorm_core::audit::AuditEvent;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::decode::DisplayDigest;
use sunstorm_core::envelope::{self, Domain};
use sunstorm_core::fakes::FakeApprovalKey;
use sunstorm_core::model::{CountersignedRequest, PayloadKind, SignRequest};
use sunstorm_core::octane::api::SignResult;
use sunstorm_core::sign::{PendingSignature, SignError};
use sunstorm_core::sunstorm::CoreError;
use sunstorm_e2e::World;
use sunstorm_sim::appliance::UserScript;
use uuid::Uuid;

const ETH: u128 = 1_000_000_000_000_000_000;

async fn world(key: &Arc<FakeApprovalKey>) -> (World, Uuid, AccountId) {
    let k: Arc<dyn ApprovalKey> = key.clone();
    let w = World::new_with(UserScript::Approve, move |c| c.approval_key = Some(k)).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = bindings.into_iter().find(|a| a.chain == ChainId::Evm(1)).unwrap();
    (w, pair_id, acct)
}

fn public(key: &FakeApprovalKey) -> ApprovalPublicKey {
    ApprovalPublicKey(key.public_key().unwrap())
}

/// A request to send `wei` on Ethereum from `acct`.
fn transfer(pair_id: Uuid, acct: &AccountId, wei: u128) -> SignRequest {
    let tx = TxEip1559 {
        chain_id: 1,
        nonce: 1,
        gas_limit: 21_000,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::from([0x22; 20])),
        value: U256::from(wei),
        access_list: Default::default(),
        input: Default::default(),
    };
    let mut payload = Vec::new();
    tx.encode_for_signing(&mut payload);
    sunstorm_e2e::sign_request(pair_id, acct, PayloadKind::EvmTransaction, payload)
}

/// `req` as octane delivers it (the SP's signature and octane's, by the simulator's keys):
/// what a phone that bypasses the core could send the appliance.
fn countersigned(w: &World, req: &SignRequest) -> CountersignedRequest {
    let body = sunstorm_core::cbor::to_vec(req).unwrap();
    let octane = sunstorm_sim::octane::octane_signing_key(&[7; 32]);
    CountersignedRequest {
        sp_sig: envelope::sign_bytes(Domain::SpSignRequest, &w.sim.demo.signing_key, &body).to_vec(),
        octane_sig: envelope::sign_bytes(Domain::OctaneSignRequest, &octane, &body).to_vec(),
        body,
    }
}

/// A client of the appliance on the phone's bond that sends whatever the test says.
async fn direct(w: &World) -> ApplianceClient {
    let bond = w.phone.bond_record(None).await.unwrap();
    ApplianceClient::new(w.sim.connector.clone(), bond, w.secrets.as_ref(), ClientConfig::default()).unwrap()
}

/// `key`'s proof for `req` shown with `digest`.
fn proof(key: &FakeApprovalKey, req: &SignRequest, digest: DisplayDigest) -> ApprovalProof {
    let message = ApprovalStatement::for_request(req, digest).message().unwrap();
    ApprovalProof { signature: key.sign(&message).unwrap() }
}

/// Sends `req` straight to the appliance with `digest` and `approval`; the refusal code,
/// or `None` when it signed.
async fn send(w: &World, req: &SignRequest, digest: DisplayDigest, approval: Option<ApprovalProof>) -> Option<String> {
    let cs = countersigned(w, req);
    match direct(w).await.sign_request(req.request_id, &cs, Some(digest), approval, None).await {
        Ok(_) => None,
        Err(ApplianceError::Refused { code, .. }) => Some(code),
        Err(e) => panic!("unexpected appliance error {e:?}"),
    }
}

/// The SP submits `req`; the phone shows it.
async fn submit(w: &World, req: &SignRequest) -> PendingSignature {
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, req).await.unwrap();
    sunstorm_e2e::shown(&w.phone, req.request_id).await
}

async fn sp_result(w: &World, request_id: Uuid) -> SignResult {
    w.sim.sp.await_sign(&request_id, Duration::from_secs(5)).await.unwrap()
}

fn approval_logged(w: &World, request_id: Uuid) -> Option<ApprovalProof> {
    w.phone.audit_log(100).unwrap().into_iter().find_map(|e| match e.event {
        AuditEvent::SignApproved { approval, .. } if e.subject == request_id.to_string() => approval,
        _ => None,
    })
}

fn refusal_code<T: std::fmt::Debug>(r: Result<T, CoreError>) -> String {
    match r {
        Err(CoreError::Sign(SignError::Appliance(ApplianceError::Refused { code, .. }))) => code,
        other => panic!("expected the appliance's refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn with_policy_always_only_a_valid_proof_over_this_request_and_screen_is_signed() {
    let key = Arc::new(FakeApprovalKey::new());
    let (w, pair_id, acct) = world(&key).await;
    // Enrolled at bonding; the pair asks for proofs.
    assert_eq!(w.sim.appliance.bonded_phones()[0].approval_key, Some(public(&key)));
    let pair = w.sim.appliance.pairs().into_iter().find(|p| p.pair_id == pair_id).unwrap();
    assert_eq!(pair.approval_policy(), ApprovalPolicy::Always);

    // A valid proof: signed, delivered, the proof in the audit log.
    let first = transfer(pair_id, &acct, ETH / 100);
    let shown = submit(&w, &first).await;
    w.phone.approve_sign(first.request_id).await.unwrap();
    assert!(matches!(sp_result(&w, first.request_id).await, SignResult::Signed { .. }));
    let logged = approval_logged(&w, first.request_id).expect("the proof is in the audit log");
    assert_eq!(w.sim.appliance.total_signatures(), 1);

    // A cancelled prompt: nothing reaches the appliance; the request still waits.
    let cancelled = transfer(pair_id, &acct, ETH / 100);
    submit(&w, &cancelled).await;
    key.errors.push(ApprovalKeyError::Cancelled);
    let e = w.phone.approve_sign(cancelled.request_id).await.unwrap_err();
    assert!(matches!(e, CoreError::Sign(SignError::Approval(ApprovalKeyError::Cancelled))), "{e:?}");
    assert_eq!(w.sim.appliance.signatures_made(cancelled.request_id), 0);
    let waiting = w.phone.pending_sign_requests(Duration::ZERO).await.unwrap();
    assert!(waiting.iter().any(|p| p.request_id == cancelled.request_id));

    // A phone that bypasses the core: forged, misdirected, replayed, missing proofs.
    let req = transfer(pair_id, &acct, ETH / 100);
    let digest = DisplayDigest([0x5a; 32]);
    let stranger = FakeApprovalKey::new();
    assert_eq!(send(&w, &req, digest, Some(proof(&stranger, &req, digest))).await.as_deref(), Some("approval_invalid"));
    let other_screen = proof(&key, &req, DisplayDigest([0xa5; 32]));
    assert_eq!(send(&w, &req, digest, Some(other_screen)).await.as_deref(), Some("approval_invalid"));
    let replayed = send(&w, &req, shown.display_digest, Some(logged.clone())).await;
    assert_eq!(replayed.as_deref(), Some("approval_invalid"), "the first request's proof serves no other");
    assert_eq!(send(&w, &req, digest, None).await.as_deref(), Some("approval_missing"));
    assert_eq!(w.sim.appliance.total_signatures(), 1, "nothing was signed");
    // The same request with its own valid proof is signed: the proofs made the difference.
    assert_eq!(send(&w, &req, digest, Some(proof(&key, &req, digest))).await, None);
    assert_eq!(w.sim.appliance.total_signatures(), 2);

    // Through the phone, a proof the appliance cannot verify reaches the SP as the reason.
    key.renew();
    let unknown_key = transfer(pair_id, &acct, ETH / 100);
    submit(&w, &unknown_key).await;
    assert_eq!(refusal_code(w.phone.approve_sign(unknown_key.request_id).await), "approval_invalid");
    match sp_result(&w, unknown_key.request_id).await {
        SignResult::Rejected { reason_code, .. } => assert_eq!(reason_code, "approval_invalid"),
        other => panic!("not rejected: {other:?}"),
    }
    assert_eq!(w.sim.appliance.signatures_made(unknown_key.request_id), 0);
}

#[tokio::test]
async fn after_invalidation_a_new_key_confirmed_on_the_appliance_restores_signing() {
    let key = Arc::new(FakeApprovalKey::new());
    let (w, pair_id, acct) = world(&key).await;
    let req = transfer(pair_id, &acct, ETH / 100);
    submit(&w, &req).await;
    key.invalidate();
    let e = w.phone.approve_sign(req.request_id).await.unwrap_err();
    assert!(matches!(e, CoreError::Sign(SignError::Approval(ApprovalKeyError::KeyInvalidated))), "{e:?}");
    assert_eq!(w.sim.appliance.total_signatures(), 0);

    // The app makes a new key; the person at the appliance declines it first.
    let old = public(&key);
    key.renew();
    w.sim.appliance.set_user(UserScript::Reject);
    let e = w.phone.enrol_approval_key(None).await.unwrap_err();
    assert!(matches!(e, CoreError::Appliance(ApplianceError::UserRejected)), "{e:?}");
    assert_eq!(w.sim.appliance.bonded_phones()[0].approval_key, Some(old));
    // Confirmed: the request that waited is signed with the new key's proof.
    w.sim.appliance.set_user(UserScript::Approve);
    w.phone.enrol_approval_key(None).await.unwrap();
    assert_eq!(w.sim.appliance.bonded_phones()[0].approval_key, Some(public(&key)));
    w.phone.approve_sign(req.request_id).await.unwrap();
    assert!(matches!(sp_result(&w, req.request_id).await, SignResult::Signed { .. }));
    assert!(approval_logged(&w, req.request_id).is_some());
}

#[tokio::test]
async fn the_policy_changes_only_with_the_appliances_confirmation() {
    let key = Arc::new(FakeApprovalKey::new());
    let (w, pair_id, acct) = world(&key).await;
    let policy =
        |w: &World| w.sim.appliance.pairs().into_iter().find(|p| p.pair_id == pair_id).unwrap().approval_policy();
    let digest = DisplayDigest([1; 32]);

    w.sim.appliance.set_user(UserScript::Reject);
    let e = w.phone.set_approval_policy(pair_id, ApprovalPolicy::Never).await.unwrap_err();
    assert!(matches!(e, CoreError::Appliance(ApplianceError::UserRejected)), "{e:?}");
    assert_eq!(policy(&w), ApprovalPolicy::Always);
    assert_eq!(send(&w, &transfer(pair_id, &acct, 1), digest, None).await.as_deref(), Some("approval_missing"));

    // "never": no proof needed.
    w.sim.appliance.set_user(UserScript::Approve);
    assert_eq!(w.phone.set_approval_policy(pair_id, ApprovalPolicy::Never).await.unwrap(), ApprovalPolicy::Never);
    assert_eq!(policy(&w), ApprovalPolicy::Never);
    assert_eq!(send(&w, &transfer(pair_id, &acct, ETH), digest, None).await, None);

    // "above 0.05 ETH": only requests that can move more need one.
    let above = ApprovalPolicy::Above { native: ETH / 20 };
    assert_eq!(w.phone.set_approval_policy(pair_id, above).await.unwrap(), above);
    assert_eq!(send(&w, &transfer(pair_id, &acct, ETH / 100), digest, None).await, None);
    let large = transfer(pair_id, &acct, ETH / 10);
    assert_eq!(send(&w, &large, digest, None).await.as_deref(), Some("approval_missing"));
    assert_eq!(send(&w, &large, digest, Some(proof(&key, &large, digest))).await, None);
    assert_eq!(w.sim.appliance.total_signatures(), 3);
}
