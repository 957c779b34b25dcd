//! The sign engine with a platform approval key ([`crate::approval`]) over fakes: the proof
//! it makes for each approval, where it goes (the appliance request, the audit log), what
//! the appliance's refusals do (the request fails with their reason, octane is told,
//! nothing is delivered), and what the key's own failures do (the appliance is not asked,
//! the request waits). The appliance's checks are `FakeAppliance::require_approval`, the
//! same `check_approval` the simulator runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use super::test_phone::{Phone, ETH};
use super::*;
use crate::approval::{verify_proof, ApprovalPolicy, ApprovalPublicKey};
use crate::fakes::FakeApprovalKey;

/// A phone whose engine signs approvals with `key`; its appliance holds `policy` with
/// `enrolled` as the phone's key.
fn phone_with(key: &Arc<FakeApprovalKey>, policy: ApprovalPolicy, enrolled: Option<ApprovalPublicKey>) -> Phone {
    let mut phone = Phone::new();
    let key: Arc<dyn ApprovalKey> = key.clone();
    phone.engine =
        SignEngine::new(phone.store.clone(), phone.octane.clone(), phone.clock.clone()).with_approval_key(Some(key));
    phone.appliance.require_approval(policy, enrolled);
    phone
}

fn public(key: &FakeApprovalKey) -> ApprovalPublicKey {
    ApprovalPublicKey(key.public_key().unwrap())
}

fn delivered(phone: &Phone, r: &PendingSignRequest) -> bool {
    phone
        .octane
        .calls()
        .iter()
        .any(|c| matches!(c, crate::fakes::OctaneCall::DeliverSignature(id, ..) if *id == r.request_id))
}

fn approved_event(phone: &Phone, r: &PendingSignRequest) -> AuditEvent {
    phone.store.last_audit(&r.request_id.to_string(), "sign_approved").unwrap().unwrap().event
}

#[tokio::test]
async fn an_approval_proof_over_the_screen_is_sent_verified_and_kept_in_the_audit_log() {
    let key = Arc::new(FakeApprovalKey::new());
    let phone = phone_with(&key, ApprovalPolicy::Always, Some(public(&key)));
    let r = phone.send(phone.pair_a, ETH / 10);
    let view = phone.ingest(&r).await;
    phone.approve(&r).await.unwrap();
    assert!(delivered(&phone, &r));
    let sent = phone.appliance.proof_sent(r.request_id).expect("a proof went with the request");
    let statement = ApprovalStatement::for_request(
        &crate::cbor::from_canonical_slice::<SignRequest>(&r.request.body).unwrap(),
        view.display_digest,
    );
    assert!(verify_proof(&public(&key), &statement, &sent), "over this request and the screen shown");
    let AuditEvent::SignApproved { approval, display_digest, .. } = approved_event(&phone, &r) else { panic!() };
    assert_eq!((approval, display_digest), (Some(sent), Some(view.display_digest)));
    assert_eq!(key.signed().len(), 1, "one biometric prompt per approval");
}

#[tokio::test]
async fn a_proof_by_a_key_the_appliance_did_not_enrol_fails_the_request_with_its_reason() {
    let key = Arc::new(FakeApprovalKey::new());
    let stranger = FakeApprovalKey::new();
    let phone = phone_with(&key, ApprovalPolicy::Always, Some(public(&stranger)));
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    let e = phone.approve(&r).await.unwrap_err();
    assert!(matches!(&e, SignError::Appliance(ApplianceError::Refused { code, .. }) if code == "approval_invalid"));
    assert_eq!(phone.rejections(&r), ["approval_invalid"]);
    let record = phone.store.sign_record(r.request_id).unwrap().unwrap();
    assert_eq!((record.outcome, record.reason.as_deref()), (SignOutcome::Failed, Some("approval_invalid")));
    assert!(!delivered(&phone, &r));
    assert!(!phone.waiting(&r));
}

#[tokio::test]
async fn without_an_approval_key_an_appliance_that_asks_for_proofs_refuses() {
    let phone = Phone::new();
    phone.appliance.require_approval(ApprovalPolicy::Always, None);
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    phone.approve(&r).await.unwrap_err();
    assert_eq!(phone.rejections(&r), ["approval_not_enrolled"]);
    assert!(phone.appliance.proof_sent(r.request_id).is_none());
    let AuditEvent::SignApproved { approval, .. } = approved_event(&phone, &r) else { panic!() };
    assert_eq!(approval, None);
    // Enrolled, but the phone sends nothing: missing.
    let key = FakeApprovalKey::new();
    phone.appliance.require_approval(ApprovalPolicy::Always, Some(public(&key)));
    let r = phone.send(phone.pair_a, 2);
    phone.ingest(&r).await;
    phone.approve(&r).await.unwrap_err();
    assert_eq!(phone.rejections(&r), ["approval_missing"]);
    assert!(!delivered(&phone, &r));
}

#[tokio::test]
async fn a_cancelled_or_locked_prompt_asks_nothing_of_the_appliance_and_the_request_waits() {
    let key = Arc::new(FakeApprovalKey::new());
    let phone = phone_with(&key, ApprovalPolicy::Always, Some(public(&key)));
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    for (err, code) in [
        (ApprovalKeyError::Cancelled, "approval_cancelled"),
        (ApprovalKeyError::LockedOut, "approval_locked_out"),
        (ApprovalKeyError::NoBiometrics, "approval_no_biometrics"),
    ] {
        key.errors.push(err.clone());
        let e = phone.approve(&r).await.unwrap_err();
        assert!(matches!(&e, SignError::Approval(got) if *got == err), "{e:?}");
        assert_eq!(e.code(), code);
        assert!(!phone.asked(&r), "the appliance is not asked");
        assert!(phone.waiting(&r), "the user may try again");
        assert_eq!(phone.outcome(&r), SignOutcome::Pending);
        assert!(phone.rejections(&r).is_empty(), "octane is not told: nothing was decided");
        assert!(phone.store.last_audit(&r.request_id.to_string(), "sign_approved").unwrap().is_none());
    }
    phone.approve(&r).await.unwrap();
    assert!(delivered(&phone, &r));
}

#[tokio::test]
async fn an_invalidated_key_signs_again_once_its_successor_is_enrolled() {
    let key = Arc::new(FakeApprovalKey::new());
    let phone = phone_with(&key, ApprovalPolicy::Always, Some(public(&key)));
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    key.invalidate();
    let e = phone.approve(&r).await.unwrap_err();
    assert_eq!(e.code(), "approval_key_invalidated");
    assert!(!phone.asked(&r) && phone.waiting(&r));
    // A new key, not yet enrolled: the appliance refuses its proof.
    key.renew();
    let r2 = phone.send(phone.pair_a, 2);
    phone.ingest(&r2).await;
    phone.approve(&r2).await.unwrap_err();
    assert_eq!(phone.rejections(&r2), ["approval_invalid"]);
    // Enrolled (the appliance's user confirmed): the waiting request is signed.
    phone.appliance.enrol_approval_key(Uuid::new_v4(), &public(&key), None).await.unwrap();
    phone.approve(&r).await.unwrap();
    assert!(delivered(&phone, &r));
}

#[tokio::test]
async fn the_policy_decides_which_requests_need_a_proof() {
    // "never": a phone without a key signs.
    let phone = Phone::new();
    phone.appliance.require_approval(ApprovalPolicy::Never, None);
    let r = phone.send(phone.pair_a, ETH / 10);
    phone.ingest(&r).await;
    phone.approve(&r).await.unwrap();
    assert!(delivered(&phone, &r));
    // "above 0.5 ETH": 0.1 ETH needs none, 1 ETH is refused without one.
    let key = FakeApprovalKey::new();
    phone.appliance.require_approval(ApprovalPolicy::Above { native: ETH / 2 }, Some(public(&key)));
    let small = phone.send(phone.pair_a, ETH / 10);
    phone.ingest(&small).await;
    phone.approve(&small).await.unwrap();
    assert!(delivered(&phone, &small));
    let large = phone.send(phone.pair_a, ETH);
    phone.ingest(&large).await;
    phone.approve(&large).await.unwrap_err();
    assert_eq!(phone.rejections(&large), ["approval_missing"]);
    assert!(!delivered(&phone, &large));
}
