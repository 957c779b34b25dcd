//! The sign engine over fakes ([`crate::fakes`]): every state change of a request and every
//! error branch, each asserting what a user would notice (what is shown, the error, the
//! outcome in the history, what octane was told, whether the appliance was asked). The
//! guardrails' arithmetic and the store's work per request are in `guardrail_tests`.
//!
//! | Branch | Test |
//! |---|---|
//! | `fetch`: each delivered request checked on its own; refused ones never shown | `fetched_requests_are_shown_once_verified_and_refused_ones_are_not` |
//! | `fetch`: octane offline / timeout / refusing the phone | `an_unreachable_octane_shows_no_new_requests` |
//! | `pending`: soonest expiry first | `waiting_requests_are_listed_soonest_expiry_first` |
//! | `ingest`: unknown pair | `a_request_for_a_pair_this_phone_does_not_have_is_not_shown` |
//! | `ingest`: SP signature tampered / by another key | `a_request_the_service_did_not_sign_is_not_shown` |
//! | `ingest`: octane countersignature tampered / by another key | `a_request_octane_did_not_countersign_is_not_shown` |
//! | `ingest`: not canonical CBOR, wrong version, envelope names another pair or id | `a_signed_body_that_is_not_this_request_is_not_shown` |
//! | `ingest`: same id and body again while waiting → the same card | `a_request_delivered_twice_is_shown_once` |
//! | `ingest`: same id, another body → `Replay` | `a_request_id_reused_with_another_body_is_refused_as_a_replay` |
//! | `ingest`: already completed → `Replay`, nothing repeated | `a_request_already_signed_is_not_signed_again` |
//! | `ingest`: signed, octane never acknowledged → delivered again, appliance not asked | `a_signature_octane_missed_is_delivered_again_without_asking_the_appliance` |
//! | `ingest`: already declined → `Replay`, the rejection repeated | `declining_while_octane_is_unreachable_is_kept_and_repeated_later` |
//! | `ingest`: refused before it reached the history, passes now → still `Replay` | `a_request_refused_once_stays_refused_when_delivered_again` |
//! | `ingest`: pair revoked → `PairRevoked`, octane told | `a_request_for_a_revoked_pair_is_refused_and_octane_told` |
//! | `ingest`: account not bound, or on another chain → `AccountNotBound` | `a_request_for_an_account_not_bound_to_the_pair_is_refused` |
//! | `ingest`: expired / implausible times | `guardrail_tests::freshness_follows_the_one_validity_rule` |
//! | `ingest`: payload cannot be decoded for display → `Undecodable` | `a_payload_that_cannot_be_shown_is_refused` |
//! | `ingest`: guardrails at arrival → blocked card; approve/reject say `Blocked` | `a_request_over_the_limits_is_shown_blocked_and_cannot_be_decided` |
//! | `ingest`: guardrail settings unreadable → `Store`, nothing recorded | `unreadable_guardrail_settings_hold_requests_back_instead_of_skipping_the_rules` |
//! | `ingest`: the arrival cannot be recorded → `Store`, shown when delivered again | `a_request_the_phone_cannot_record_is_not_shown_and_comes_back` |
//! | `approve`: Pending → Signed → Completed, signature verified and delivered | `approving_signs_on_the_appliance_and_delivers_the_verified_signature` |
//! | `approve` / `reject`: not waiting → `UnknownRequest` | `approving_or_declining_an_unknown_request_says_so` |
//! | `approve`: expired while waiting | `guardrail_tests::a_request_that_expires_while_waiting_is_not_sent_to_the_appliance` |
//! | `approve`: pair revoked while waiting → `PairRevoked`, appliance not asked | `a_pair_revoked_while_the_request_waits_is_not_signed` |
//! | `approve`: guardrails at approval | `guardrail_tests::tightened_limits_apply_to_requests_already_waiting` |
//! | `approve`: approval cannot be recorded → still waiting, appliance not asked | `approving_when_the_store_cannot_record_it_leaves_the_request_waiting` |
//! | `approve`: declined on the appliance → `Rejected`, octane told | `declined_on_the_appliance_is_recorded_and_octane_told` |
//! | `approve`: the appliance refuses → `Failed` with its reason, octane told | `an_appliance_refusal_fails_the_request_with_its_reason` |
//! | `approve`: link, timeout, cancelled on the appliance, phone forgotten → still waiting | `an_unreachable_or_forgetting_appliance_leaves_the_request_waiting` |
//! | `approve`: the caller drops the approval (cancel) → still waiting | `cancelling_an_approval_keeps_the_request_waiting` |
//! | `approve`: signature does not verify → `Failed`, octane told | `a_signature_that_does_not_verify_fails_the_request` |
//! | `ingest` / `approve`: the display digest in the view, history, audit log, appliance request; the receipt verified and kept | `the_screen_shown_is_committed_to_everywhere_and_the_appliance_receipts_it` |
//! | `approve`: receipt missing / over another screen / tampered / by another key / for another request → `Failed`, octane told | `a_missing_or_wrong_receipt_fails_the_request` |
//! | `approve`: signature cannot be recorded → waiting, asked again with the same id | `a_signature_the_phone_cannot_record_is_asked_for_again` |
//! | `approve`: octane says revoked on delivery → pair revoked, appliance drops it | `a_pair_the_service_revoked_is_dropped_when_octane_refuses_the_signature` |
//! | `approve`: octane offline / timeout on delivery → `Signed`, delivered later | `a_signature_octane_missed_is_delivered_again_without_asking_the_appliance` |
//! | `reject`: `Rejected`, octane told | `declining_on_the_phone_records_it_and_tells_octane` |
//! | `reject`: octane unreachable → recorded, repeated when delivered again | `declining_while_octane_is_unreachable_is_kept_and_repeated_later` |
//! | `reject`: cannot be recorded → still waiting, octane not told | `declining_when_the_store_cannot_record_it_leaves_the_request_waiting` |
//! | `revoke`: appliance signs, octane told, pair revoked | `revoking_a_pair_drops_it_on_the_appliance_and_tells_octane` |
//! | `revoke`: unknown pair / appliance unreachable | `revoking_needs_a_known_pair_and_the_appliance` |
//! | `revoke`: revocation by another key / of another pair / naming another appliance | `a_revocation_the_appliance_did_not_sign_is_refused` |
//! | `revoke`: octane already revoked it → done; octane offline → revoked here, queued for sync | `revoking_while_octane_is_unreachable_revokes_here_and_waits_for_sync` |
//! | `revoke`: the appliance already dropped the pair → revoked here; other refusals kept | `a_pair_the_appliance_already_dropped_is_revoked_here_too` |
//! | `sync`: SP-side revocations learnt, appliance told (or not reachable) | `pairs_the_service_revoked_are_revoked_here_and_on_the_appliance` |
//! | `sync`: octane unreachable | `an_unreachable_octane_revokes_nothing` |
//! | `guardrails`: read on every request, cached by text | `changed_guardrail_settings_apply_to_the_next_request` |
//! | `SignError::code` and conversions | `error_codes_are_stable` |
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ed25519_dalek::SigningKey;

use super::test_phone::{codes, sp_key, Phone, ETH};
use super::*;
use crate::bytes::Key32;
use crate::fakes::{ApplianceCall, OctaneCall};
use crate::octane::api::{AppPairInfo, RevokedBy};

fn body(r: &PendingSignRequest) -> SignRequest {
    crate::cbor::from_canonical_slice(&r.request.body).unwrap()
}

fn signed_by(
    body: Vec<u8>,
    sp: &SigningKey,
    octane: &SigningKey,
    pair_id: Uuid,
    request_id: Uuid,
) -> PendingSignRequest {
    PendingSignRequest {
        pair_id,
        request_id,
        request: CountersignedRequest {
            sp_sig: crate::envelope::sign_bytes(Domain::SpSignRequest, sp, &body).to_vec(),
            octane_sig: crate::envelope::sign_bytes(Domain::OctaneSignRequest, octane, &body).to_vec(),
            body,
        },
    }
}

fn other_key() -> SigningKey {
    SigningKey::from_bytes(&[0x77; 32])
}

fn revoked(phone: &Phone, pair_id: Uuid, at: Option<u64>) -> AppPairInfo {
    AppPairInfo {
        pair_id,
        sp: phone.store.pair(phone.pair_a).unwrap().unwrap().sp,
        bindings: vec![phone.account(1)],
        status: OctanePairStatus::Revoked,
        created_at: 1,
        revoked_at: at,
        revoked_by: Some(RevokedBy::Sp),
    }
}

fn deliveries(phone: &Phone, r: &PendingSignRequest) -> Vec<Vec<u8>> {
    phone
        .octane
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            OctaneCall::DeliverSignature(id, sig, _) if id == r.request_id => Some(sig),
            _ => None,
        })
        .collect()
}

/// The display digest and receipt posted with each delivery of `r`'s signature.
fn delivered_proofs(phone: &Phone, r: &PendingSignRequest) -> Vec<Option<DisplayProof>> {
    phone
        .octane
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            OctaneCall::DeliverSignature(id, _, proof) if id == r.request_id => Some(proof),
            _ => None,
        })
        .collect()
}

fn sign_asks(phone: &Phone, r: &PendingSignRequest) -> usize {
    phone.appliance.calls().iter().filter(|c| **c == ApplianceCall::Sign(r.request_id)).count()
}

fn audit_kinds(phone: &Phone, subject: &str) -> Vec<String> {
    let mut kinds: Vec<_> = phone
        .store
        .audit_log(100)
        .unwrap()
        .into_iter()
        .filter(|e| e.subject == subject)
        .map(|e| e.event.kind().to_string())
        .collect();
    kinds.reverse();
    kinds
}

// ---- fetching ----

#[tokio::test]
async fn fetched_requests_are_shown_once_verified_and_refused_ones_are_not() {
    let phone = Phone::new();
    let good = phone.send(phone.pair_a, ETH / 10);
    let req = phone.tx_request(phone.pair_a, 1, 1, 21_000, 1);
    let forged =
        signed_by(crate::cbor::to_vec(&req).unwrap(), &other_key(), &phone.octane.key, req.pair_id, req.request_id);
    let stranger = phone.send(Uuid::from_bytes([0xc; 16]), 1);
    phone.octane.pending.push(Ok(vec![good.clone(), forged.clone(), stranger.clone()]));

    let results = phone.engine.fetch(std::time::Duration::from_secs(1)).await.unwrap();
    let codes: Vec<&str> = results.iter().map(|r| r.as_ref().map(|_| "shown").unwrap_or_else(|e| e.code())).collect();
    assert_eq!(codes, ["shown", "bad_sp_signature", "unknown_pair"]);
    let shown: Vec<Uuid> = phone.engine.pending().iter().map(|p| p.request_id).collect();
    assert_eq!(shown, [good.request_id]);
    let waiting = phone.engine.pending();
    let card = &waiting[0];
    assert_eq!(card.sp_name, "Acme");
    assert_eq!(card.account, phone.account(1));
    assert!(!card.blocked());
    assert_eq!(phone.outcome(&good), SignOutcome::Pending);
}

#[tokio::test]
async fn an_unreachable_octane_shows_no_new_requests() {
    let phone = Phone::new();
    for (answer, code) in [
        (
            OctaneError::Offline(crate::octane::transport::TransportError::Offline("no network".into())),
            "octane_offline",
        ),
        (OctaneError::Timeout, "octane_timeout"),
        (OctaneError::PhoneForgotten, "phone_forgotten"),
    ] {
        phone.octane.pending.push(Err(answer));
        let e = phone.engine.fetch(std::time::Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(e.code(), code);
    }
    assert!(phone.engine.pending().is_empty());
}

#[tokio::test]
async fn waiting_requests_are_listed_soonest_expiry_first() {
    let phone = Phone::new();
    let late = phone.send(phone.pair_a, 1);
    phone.advance(30);
    let soon_req = SignRequest { expires_at: phone.now() + 10, ..phone.tx_request(phone.pair_b, 1, 2, 21_000, 1) };
    let soon = phone.countersigned(&soon_req);
    phone.ingest(&late).await;
    phone.ingest(&soon).await;
    let order: Vec<Uuid> = phone.engine.pending().iter().map(|p| p.request_id).collect();
    assert_eq!(order, [soon.request_id, late.request_id]);
}

// ---- the signatures and the body ----

#[tokio::test]
async fn a_request_for_a_pair_this_phone_does_not_have_is_not_shown() {
    let phone = Phone::new();
    let r = phone.send(Uuid::from_bytes([0xc; 16]), 1);
    let e = phone.engine.ingest(&r).await.unwrap_err();
    assert!(matches!(e, SignError::UnknownPair(id) if id == r.pair_id), "{e:?}");
    assert!(!phone.waiting(&r));
    assert!(phone.store.sign_record(r.request_id).unwrap().is_none());
}

#[tokio::test]
async fn a_request_the_service_did_not_sign_is_not_shown() {
    let phone = Phone::new();
    let req = phone.tx_request(phone.pair_a, 1, ETH, 21_000, 1);
    let by_another_sp =
        signed_by(crate::cbor::to_vec(&req).unwrap(), &other_key(), &phone.octane.key, req.pair_id, req.request_id);
    // The body changed after both signed it (octane's signature fails too; the SP's is
    // checked first, so the error names the SP).
    let mut edited = phone.countersigned(&req);
    let last = edited.request.body.len() - 1;
    edited.request.body[last] ^= 1;
    for r in [by_another_sp, edited] {
        let e = phone.engine.ingest(&r).await.unwrap_err();
        assert!(matches!(e, SignError::BadSpSignature), "{e:?}");
        assert!(!phone.waiting(&r));
        assert!(phone.rejections(&r).is_empty(), "a forged request is not answered");
        assert!(!phone.store.was_seen(r.request_id).unwrap(), "a forgery cannot burn a request id");
    }
}

#[tokio::test]
async fn a_request_octane_did_not_countersign_is_not_shown() {
    let phone = Phone::new();
    let req = phone.tx_request(phone.pair_a, 1, ETH, 21_000, 1);
    let by_another_octane =
        signed_by(crate::cbor::to_vec(&req).unwrap(), &sp_key(), &other_key(), req.pair_id, req.request_id);
    let mut truncated = phone.countersigned(&req);
    truncated.request.octane_sig.truncate(10);
    for r in [by_another_octane, truncated] {
        let e = phone.engine.ingest(&r).await.unwrap_err();
        assert!(matches!(e, SignError::BadOctaneSignature), "{e:?}");
        assert!(!phone.waiting(&r));
        assert!(phone.rejections(&r).is_empty());
    }
}

#[tokio::test]
async fn a_signed_body_that_is_not_this_request_is_not_shown() {
    let phone = Phone::new();
    let req = phone.tx_request(phone.pair_a, 1, ETH, 21_000, 1);
    let key = &phone.octane.key;
    let not_cbor = signed_by(b"not a request".to_vec(), &sp_key(), key, req.pair_id, req.request_id);
    let newer = phone.countersigned(&SignRequest { v: STATEMENT_VERSION + 1, ..req.clone() });
    let mut other_pair = phone.countersigned(&req);
    other_pair.pair_id = phone.pair_b;
    let mut other_id = phone.countersigned(&req);
    other_id.request_id = Uuid::new_v4();
    for r in [not_cbor, newer, other_pair, other_id] {
        let e = phone.engine.ingest(&r).await.unwrap_err();
        assert_eq!(e.code(), "malformed_request", "{e:?}");
        assert!(!phone.waiting(&r));
    }
    assert!(phone.engine.pending().is_empty());
}

// ---- replays ----

#[tokio::test]
async fn a_request_delivered_twice_is_shown_once() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, ETH / 10);
    let first = phone.ingest(&r).await;
    let again = phone.ingest(&r).await;
    assert_eq!(first, again);
    assert_eq!(phone.engine.pending().len(), 1);
    phone.approve(&r).await.unwrap();
    assert_eq!(sign_asks(&phone, &r), 1);
}

#[tokio::test]
async fn a_request_id_reused_with_another_body_is_refused_as_a_replay() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, ETH / 10);
    phone.ingest(&r).await;
    let twin =
        phone.countersigned(&SignRequest { payload: body(&phone.send(phone.pair_a, 5 * ETH)).payload, ..body(&r) });
    assert_eq!(twin.request_id, r.request_id);
    assert!(matches!(phone.engine.ingest(&twin).await, Err(SignError::Replay)));
    // The first stays as it was.
    let waiting = phone.engine.pending();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].decoded, phone.ingest(&r).await.decoded);
}

#[tokio::test]
async fn a_request_already_signed_is_not_signed_again() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, ETH / 10);
    phone.ingest(&r).await;
    phone.approve(&r).await.unwrap();
    assert!(matches!(phone.engine.ingest(&r).await, Err(SignError::Replay)));
    assert!(!phone.waiting(&r));
    assert_eq!(sign_asks(&phone, &r), 1);
    assert_eq!(deliveries(&phone, &r).len(), 1, "a completed request is not delivered twice");
    assert_eq!(phone.outcome(&r), SignOutcome::Completed);
}

#[tokio::test]
async fn a_signature_octane_missed_is_delivered_again_without_asking_the_appliance() {
    let phone = Phone::new();
    for failure in [
        OctaneError::Offline(crate::octane::transport::TransportError::Offline("no network".into())),
        OctaneError::Timeout,
    ] {
        let r = phone.send(phone.pair_a, ETH / 10);
        phone.ingest(&r).await;
        phone.octane.deliver.push(Err(failure.clone()));
        let e = phone.approve(&r).await.unwrap_err();
        assert_eq!(e.code(), failure.code());
        // Signed and kept; the user is not asked again.
        assert_eq!(phone.outcome(&r), SignOutcome::Signed);
        assert!(!phone.waiting(&r));
        let kept = phone.store.sign_record(r.request_id).unwrap().unwrap().appliance_signature.unwrap();
        // Octane delivers the request again: the kept signature goes, the appliance is not asked.
        assert!(matches!(phone.engine.ingest(&r).await, Err(SignError::Replay)));
        assert_eq!(deliveries(&phone, &r), [kept.clone(), kept]);
        // With the same display digest and receipt, kept in the audit log meanwhile.
        let proofs = delivered_proofs(&phone, &r);
        assert!(proofs[0].is_some(), "the first delivery carries the receipt");
        assert_eq!(proofs[0], proofs[1]);
        assert_eq!(sign_asks(&phone, &r), 1);
        assert_eq!(phone.outcome(&r), SignOutcome::Completed);
    }
}

#[tokio::test]
async fn a_request_refused_once_stays_refused_when_delivered_again() {
    let phone = Phone::new();
    // Made 10 minutes in the future: refused, its id remembered.
    let ahead = phone.now() + 600;
    let req =
        SignRequest { created_at: ahead, expires_at: ahead + 120, ..phone.tx_request(phone.pair_a, 1, 1, 21_000, 1) };
    let r = phone.countersigned(&req);
    assert_eq!(phone.engine.ingest(&r).await.unwrap_err().code(), "bad_validity");
    assert_eq!(phone.rejections(&r), ["bad_validity"]);
    // Its time comes; delivered again it still is not shown.
    phone.advance(600);
    assert!(matches!(phone.engine.ingest(&r).await, Err(SignError::Replay)));
    assert!(!phone.waiting(&r));
}

// ---- refused on arrival ----

#[tokio::test]
async fn a_request_for_a_revoked_pair_is_refused_and_octane_told() {
    let phone = Phone::new();
    phone.store.revoke_pair(phone.pair_a, phone.now()).unwrap();
    let r = phone.send(phone.pair_a, 1);
    assert!(matches!(phone.engine.ingest(&r).await, Err(SignError::PairRevoked)));
    assert_eq!(phone.rejections(&r), ["pair_revoked"]);
    assert!(!phone.waiting(&r));
    // The other pair is unaffected.
    assert!(!phone.ingest(&phone.send(phone.pair_b, 1)).await.blocked());
}

#[tokio::test]
async fn a_request_for_an_account_not_bound_to_the_pair_is_refused() {
    let phone = Phone::new();
    let base = phone.tx_request(phone.pair_a, 1, 1, 21_000, 1);
    let stranger = SignRequest { account: AccountId::evm(1, [0x99; 20]), ..base.clone() };
    // A bound account, but on another chain than the request's.
    let other_chain = SignRequest { request_id: Uuid::new_v4(), account: phone.account(10), ..base };
    for req in [stranger, other_chain] {
        let r = phone.countersigned(&req);
        let e = phone.engine.ingest(&r).await.unwrap_err();
        assert!(matches!(e, SignError::AccountNotBound(ref a) if *a == req.account.to_string()), "{e:?}");
        assert_eq!(phone.rejections(&r), ["account_not_bound"]);
        assert!(!phone.waiting(&r));
    }
}

#[tokio::test]
async fn a_payload_that_cannot_be_shown_is_refused() {
    let phone = Phone::new();
    let req = SignRequest { payload: vec![0x02, 0xff, 0x00], ..phone.tx_request(phone.pair_a, 1, 1, 21_000, 1) };
    let r = phone.countersigned(&req);
    let e = phone.engine.ingest(&r).await.unwrap_err();
    assert!(matches!(e, SignError::Undecodable(_)), "{e:?}");
    assert_eq!(phone.rejections(&r), ["undecodable"]);
    assert!(!phone.waiting(&r));
    assert!(!phone.asked(&r));
}

#[tokio::test]
async fn a_request_over_the_limits_is_shown_blocked_and_cannot_be_decided() {
    let phone = Phone::new();
    phone.limits(1, Some(ETH), None);
    let r = phone.send(phone.pair_a, 2 * ETH);
    let card = phone.ingest(&r).await;
    assert!(card.blocked());
    assert_eq!(codes(&card), ["per_pair_limit_exceeded"]);
    assert_eq!(phone.rejections(&r), ["guardrail"]);
    assert_eq!(phone.outcome(&r), SignOutcome::Blocked);
    assert!(!phone.waiting(&r), "a blocked request is not in the list to decide");
    for e in [phone.approve(&r).await.unwrap_err(), phone.engine.reject(r.request_id).await.unwrap_err()] {
        assert!(matches!(&e, SignError::Blocked(rules) if rules == &["per_pair_limit_exceeded"]), "{e:?}");
    }
    assert!(!phone.asked(&r));
    assert_eq!(audit_kinds(&phone, &r.request_id.to_string()), ["sign_blocked"]);
}

#[tokio::test]
async fn unreadable_guardrail_settings_hold_requests_back_instead_of_skipping_the_rules() {
    let phone = Phone::new();
    phone.store.put_setting_text::<Guardrails>(r#""not rules""#).unwrap();
    let r = phone.send(phone.pair_a, 100 * ETH);
    let e = phone.engine.ingest(&r).await.unwrap_err();
    assert_eq!(e.code(), "store_error");
    assert!(!phone.waiting(&r));
    assert!(phone.store.sign_record(r.request_id).unwrap().is_none());
    // Once the settings are readable, the same delivery is checked against them.
    phone.engine.set_guardrails(&Guardrails::default()).unwrap();
    phone.limits(1, None, Some(ETH));
    assert_eq!(codes(&phone.ingest(&r).await), ["per_day_limit_exceeded"]);
}

#[tokio::test]
async fn a_request_the_phone_cannot_record_is_not_shown_and_comes_back() {
    let phone = Phone::new();
    phone.store.fail_writes("sign_history").unwrap();
    let r = phone.send(phone.pair_a, ETH / 10);
    assert_eq!(phone.engine.ingest(&r).await.unwrap_err().code(), "store_error");
    assert!(!phone.waiting(&r));
    assert!(phone.rejections(&r).is_empty(), "nothing was decided");
    assert!(!phone.store.was_seen(r.request_id).unwrap(), "the arrival rolled back whole");
    phone.store.heal_writes("sign_history").unwrap();
    assert!(!phone.ingest(&r).await.blocked());
    assert!(phone.waiting(&r));
}

// ---- approving ----

#[tokio::test]
async fn approving_signs_on_the_appliance_and_delivers_the_verified_signature() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, ETH / 10);
    phone.ingest(&r).await;
    let signed = phone.approve(&r).await.unwrap();
    assert_eq!(signed.request_id, r.request_id);
    assert_eq!(signed.signature.len(), 65);
    assert_eq!(deliveries(&phone, &r), std::slice::from_ref(&signed.signature));
    let record = phone.store.sign_record(r.request_id).unwrap().unwrap();
    assert_eq!(record.outcome, SignOutcome::Completed);
    assert_eq!(record.appliance_signature.as_deref(), Some(signed.signature.as_slice()));
    assert_eq!(audit_kinds(&phone, &r.request_id.to_string()), ["sign_approved", "sign_signed"]);
    assert!(!phone.waiting(&r));
    assert!(phone.rejections(&r).is_empty());
}

#[tokio::test]
async fn approving_or_declining_an_unknown_request_says_so() {
    let phone = Phone::new();
    let never = Uuid::new_v4();
    assert!(matches!(phone.engine.approve(never, &phone.appliance, None).await, Err(SignError::UnknownRequest)));
    assert!(matches!(phone.engine.reject(never).await, Err(SignError::UnknownRequest)));
    // Decided already: no longer waiting.
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    phone.engine.reject(r.request_id).await.unwrap();
    assert!(matches!(phone.approve(&r).await, Err(SignError::UnknownRequest)));
    assert!(phone.appliance.calls().is_empty());
}

#[tokio::test]
async fn a_pair_revoked_while_the_request_waits_is_not_signed() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    phone.octane.pairs.push(Ok(vec![revoked(&phone, phone.pair_a, Some(phone.now()))]));
    phone.engine.sync(None).await.unwrap();
    assert!(matches!(phone.approve(&r).await, Err(SignError::PairRevoked)));
    assert!(!phone.asked(&r));
    assert_eq!(phone.outcome(&r), SignOutcome::Failed);
    assert!(!phone.waiting(&r));
}

#[tokio::test]
async fn approving_when_the_store_cannot_record_it_leaves_the_request_waiting() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    phone.store.fail_writes("audit_log").unwrap();
    assert_eq!(phone.approve(&r).await.unwrap_err().code(), "store_error");
    assert!(!phone.asked(&r), "the appliance is asked only once the approval is recorded");
    assert!(phone.waiting(&r));
    assert_eq!(phone.outcome(&r), SignOutcome::Pending);
    phone.store.heal_writes("audit_log").unwrap();
    phone.approve(&r).await.unwrap();
    assert_eq!(phone.outcome(&r), SignOutcome::Completed);
}

#[tokio::test]
async fn declined_on_the_appliance_is_recorded_and_octane_told() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    phone.appliance.sign.push(Err(ApplianceError::UserRejected));
    assert!(matches!(phone.approve(&r).await, Err(SignError::RejectedOnAppliance)));
    assert_eq!(phone.outcome(&r), SignOutcome::Rejected);
    assert_eq!(phone.rejections(&r), ["user_rejected"]);
    assert!(!phone.waiting(&r));
    let entry = phone.store.last_audit(&r.request_id.to_string(), "sign_rejected").unwrap().unwrap();
    assert_eq!(entry.event, AuditEvent::SignRejected { by: Actor::Appliance });
}

#[tokio::test]
async fn an_appliance_refusal_fails_the_request_with_its_reason() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    let refusal = ApplianceError::Refused { code: "unbound_account".into(), message: "not this wallet".into() };
    phone.appliance.sign.push(Err(refusal.clone()));
    let e = phone.approve(&r).await.unwrap_err();
    assert!(matches!(&e, SignError::Appliance(a) if *a == refusal), "{e:?}");
    let record = phone.store.sign_record(r.request_id).unwrap().unwrap();
    assert_eq!((record.outcome, record.reason.as_deref()), (SignOutcome::Failed, Some("unbound_account")));
    assert_eq!(phone.rejections(&r), ["unbound_account"]);
    assert!(!phone.waiting(&r));
}

#[tokio::test]
async fn an_unreachable_or_forgetting_appliance_leaves_the_request_waiting() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    for failure in [
        ApplianceError::Link(crate::ble::transport::GattError::Timeout),
        ApplianceError::Timeout,
        ApplianceError::Cancelled,
        ApplianceError::Channel(crate::ble::channel::ChannelError::Decrypt),
        ApplianceError::PhoneForgotten,
        ApplianceError::UnknownAppliance,
    ] {
        phone.appliance.sign.push(Err(failure.clone()));
        let e = phone.approve(&r).await.unwrap_err();
        assert!(matches!(&e, SignError::Appliance(a) if *a == failure), "{e:?}");
        assert!(phone.waiting(&r), "{failure}: the user can try again");
        assert_eq!(phone.outcome(&r), SignOutcome::Pending);
        assert!(phone.rejections(&r).is_empty(), "{failure}: octane is not told");
    }
    // Once reachable again, the same request signs (the appliance signs an id once).
    phone.approve(&r).await.unwrap();
    assert_eq!(phone.outcome(&r), SignOutcome::Completed);
}

#[tokio::test]
async fn cancelling_an_approval_keeps_the_request_waiting() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    let (asked, release) = phone.appliance.hold_signing();
    tokio::select! {
        done = phone.approve(&r) => panic!("the appliance answered while held: {done:?}"),
        // The user cancels while the appliance waits for its user: the approval is dropped.
        () = asked.notified() => {}
    }
    assert!(phone.waiting(&r), "a cancelled approval leaves the request to decide");
    assert_eq!(phone.outcome(&r), SignOutcome::Pending);
    assert!(phone.rejections(&r).is_empty());
    // Approved again: the appliance is asked with the same request and signs.
    release.notify_one();
    phone.approve(&r).await.unwrap();
    assert_eq!(sign_asks(&phone, &r), 2);
    assert_eq!(phone.outcome(&r), SignOutcome::Completed);
}

#[tokio::test]
async fn a_signature_that_does_not_verify_fails_the_request() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    phone.appliance.sign.push(Ok(vec![0x42; 65]));
    assert!(matches!(phone.approve(&r).await, Err(SignError::BadApplianceSignature(_))));
    assert_eq!(phone.outcome(&r), SignOutcome::Failed);
    assert_eq!(phone.rejections(&r), ["bad_appliance_signature"]);
    assert!(deliveries(&phone, &r).is_empty(), "an unverified signature never reaches octane");
    assert!(!phone.waiting(&r));
}

#[tokio::test]
async fn the_screen_shown_is_committed_to_everywhere_and_the_appliance_receipts_it() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, ETH / 10);
    let view = phone.ingest(&r).await;
    let digest = view.display_digest;
    assert_eq!(digest, crate::decode::display_digest(&r.request_id, &view.decoded), "over the screen shown");
    let recorded = phone.store.sign_record(r.request_id).unwrap().unwrap();
    assert_eq!(recorded.display_digest, Some(digest), "kept in the history from arrival");
    // The same screen for another request id commits to something else.
    assert_ne!(crate::decode::display_digest(&Uuid::from_u128(1), &view.decoded), digest);

    phone.approve(&r).await.unwrap();
    assert_eq!(phone.appliance.digest_sent(r.request_id), Some(digest), "sent to the appliance");
    let events: Vec<AuditEvent> = phone
        .store
        .audit_log(100)
        .unwrap()
        .into_iter()
        .filter(|e| e.subject == r.request_id.to_string())
        .map(|e| e.event)
        .collect();
    assert!(events.contains(&AuditEvent::SignApproved {
        title: view.decoded.title.clone(),
        display_digest: Some(digest),
        approval: None
    }));
    let receipt = events
        .iter()
        .find_map(|e| match e {
            AuditEvent::SignSigned { display_digest, receipt } => {
                assert_eq!(*display_digest, Some(digest));
                receipt.clone()
            }
            _ => None,
        })
        .expect("the signed entry keeps the appliance's receipt");
    // An auditor checks it with the pair's appliance identity.
    let expected = SignReceipt::for_request(&body(&r), digest, phone.appliance.identity_key());
    assert_eq!(SignReceipt::verify(&receipt, &expected).unwrap().display_digest, digest);
    assert_eq!(phone.store.sign_record(r.request_id).unwrap().unwrap().display_digest, Some(digest));
    // Octane gets the digest and the same receipt with the signature.
    assert_eq!(delivered_proofs(&phone, &r), [Some(DisplayProof { display_digest: digest, receipt })]);
}

#[tokio::test]
async fn a_missing_or_wrong_receipt_fails_the_request() {
    let phone = Phone::new();
    let identity = phone.appliance.identity.clone();
    type Receipt<'a> = Box<dyn Fn(&SignRequest, DisplayDigest) -> Option<SignedEnvelope> + 'a>;
    let cases: Vec<(&str, Receipt, &str)> = vec![
        ("missing", Box::new(|_, _| None), "missing_receipt"),
        (
            "over another screen",
            Box::new(|req, _| Some(phone.appliance.receipt(req, DisplayDigest([0xee; 32]), &identity))),
            "bad_receipt",
        ),
        (
            "tampered",
            Box::new(|req, d| {
                let mut env = phone.appliance.receipt(req, d, &identity);
                let last = env.sig.len() - 1;
                env.sig[last] ^= 1;
                Some(env)
            }),
            "bad_receipt",
        ),
        ("by another key", Box::new(|req, d| Some(phone.appliance.receipt(req, d, &other_key()))), "bad_receipt"),
        (
            "for another request",
            Box::new(|req, d| {
                let other = SignRequest { request_id: Uuid::from_u128(5), ..req.clone() };
                Some(phone.appliance.receipt(&other, d, &identity))
            }),
            "bad_receipt",
        ),
    ];
    for (case, receipt, code) in cases {
        let r = phone.send(phone.pair_a, 1);
        let view = phone.ingest(&r).await;
        phone.appliance.receipts.push(receipt(&body(&r), view.display_digest));
        let e = phone.approve(&r).await.unwrap_err();
        assert_eq!(e.code(), code, "{case}: {e}");
        assert_eq!(phone.outcome(&r), SignOutcome::Failed, "{case}");
        assert_eq!(phone.store.sign_record(r.request_id).unwrap().unwrap().reason.as_deref(), Some(code));
        assert_eq!(phone.rejections(&r), [code], "{case}: octane is told");
        assert!(deliveries(&phone, &r).is_empty(), "{case}: the signature never reaches octane");
        assert!(!phone.waiting(&r), "{case}");
        assert!(!audit_kinds(&phone, &r.request_id.to_string()).contains(&"sign_signed".to_string()), "{case}");
    }
}

#[tokio::test]
async fn a_signature_the_phone_cannot_record_is_asked_for_again() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    // The approval is recorded (audit); the signature (history) cannot be.
    phone.store.fail_writes("sign_history").unwrap();
    assert_eq!(phone.approve(&r).await.unwrap_err().code(), "store_error");
    assert!(deliveries(&phone, &r).is_empty());
    assert!(phone.waiting(&r));
    phone.store.heal_writes("sign_history").unwrap();
    phone.approve(&r).await.unwrap();
    assert_eq!(sign_asks(&phone, &r), 2, "asked again with the same request (the appliance answers it once)");
    assert_eq!(phone.outcome(&r), SignOutcome::Completed);
}

#[tokio::test]
async fn a_pair_the_service_revoked_is_dropped_when_octane_refuses_the_signature() {
    let phone = Phone::new();
    for appliance_answer in [None, Some(ApplianceError::Timeout)] {
        let pair = if appliance_answer.is_none() { phone.pair_a } else { phone.pair_b };
        let r = phone.send(pair, 1);
        phone.ingest(&r).await;
        phone.octane.deliver.push(Err(OctaneError::Revoked));
        if let Some(e) = appliance_answer {
            phone.appliance.revoke.push(Err(e));
        }
        assert!(matches!(phone.approve(&r).await, Err(SignError::PairRevoked)));
        assert_eq!(phone.store.pair_status(pair).unwrap(), Some(PairStatus::Revoked));
        assert!(phone.appliance.calls().contains(&ApplianceCall::RevokePair(pair)));
        assert_eq!(phone.outcome(&r), SignOutcome::Signed, "signed, never delivered");
    }
}

// ---- declining ----

#[tokio::test]
async fn declining_on_the_phone_records_it_and_tells_octane() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    phone.engine.reject(r.request_id).await.unwrap();
    assert_eq!(phone.outcome(&r), SignOutcome::Rejected);
    assert_eq!(phone.rejections(&r), ["user_rejected"]);
    assert!(!phone.waiting(&r));
    assert!(!phone.asked(&r));
    let entry = phone.store.last_audit(&r.request_id.to_string(), "sign_rejected").unwrap().unwrap();
    assert_eq!(entry.event, AuditEvent::SignRejected { by: Actor::Phone });
}

#[tokio::test]
async fn declining_while_octane_is_unreachable_is_kept_and_repeated_later() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    phone
        .octane
        .reject_sign
        .push(Err(OctaneError::Offline(crate::octane::transport::TransportError::Offline("no network".into()))));
    assert_eq!(phone.engine.reject(r.request_id).await.unwrap_err().code(), "octane_offline");
    assert_eq!(phone.outcome(&r), SignOutcome::Rejected, "declined on the phone all the same");
    assert!(!phone.waiting(&r));
    // Octane delivers it again: the rejection is repeated, the request not shown.
    assert!(matches!(phone.engine.ingest(&r).await, Err(SignError::Replay)));
    assert_eq!(phone.rejections(&r), ["user_rejected", "user_rejected"]);
    assert!(!phone.waiting(&r));
}

#[tokio::test]
async fn declining_when_the_store_cannot_record_it_leaves_the_request_waiting() {
    let phone = Phone::new();
    let r = phone.send(phone.pair_a, 1);
    phone.ingest(&r).await;
    phone.store.fail_writes("sign_history").unwrap();
    assert_eq!(phone.engine.reject(r.request_id).await.unwrap_err().code(), "store_error");
    assert!(phone.waiting(&r));
    assert!(phone.rejections(&r).is_empty(), "octane is told only what the phone recorded");
    phone.store.heal_writes("sign_history").unwrap();
    phone.engine.reject(r.request_id).await.unwrap();
    assert_eq!(phone.outcome(&r), SignOutcome::Rejected);
}

// ---- revoking ----

#[tokio::test]
async fn revoking_a_pair_drops_it_on_the_appliance_and_tells_octane() {
    let phone = Phone::new();
    phone.engine.revoke(phone.pair_a, &phone.appliance).await.unwrap();
    assert_eq!(phone.store.pair_status(phone.pair_a).unwrap(), Some(PairStatus::Revoked));
    assert!(phone.appliance.calls().contains(&ApplianceCall::RevokePair(phone.pair_a)));
    assert_eq!(phone.octane.count(|c| *c == OctaneCall::Revoke(phone.pair_a)), 1);
    let entry = phone.store.last_audit(&phone.pair_a.to_string(), "pair_revoked").unwrap().unwrap();
    assert_eq!(entry.event, AuditEvent::PairRevoked { by: Actor::Phone });
    // Its next request is refused; the other pair still works.
    assert!(matches!(phone.engine.ingest(&phone.send(phone.pair_a, 1)).await, Err(SignError::PairRevoked)));
    assert_eq!(phone.store.pair_status(phone.pair_b).unwrap(), Some(PairStatus::Active));
}

#[tokio::test]
async fn revoking_needs_a_known_pair_and_the_appliance() {
    let phone = Phone::new();
    let unknown = Uuid::from_bytes([0xc; 16]);
    assert!(
        matches!(phone.engine.revoke(unknown, &phone.appliance).await, Err(SignError::UnknownPair(id)) if id == unknown)
    );
    assert!(phone.appliance.calls().is_empty());
    phone.appliance.revoke.push(Err(ApplianceError::Timeout));
    let e = phone.engine.revoke(phone.pair_a, &phone.appliance).await.unwrap_err();
    assert!(matches!(e, SignError::Appliance(ApplianceError::Timeout)), "{e:?}");
    assert_eq!(phone.store.pair_status(phone.pair_a).unwrap(), Some(PairStatus::Active));
    assert_eq!(phone.octane.count(|c| matches!(c, OctaneCall::Revoke(_))), 0);
}

#[tokio::test]
async fn a_revocation_the_appliance_did_not_sign_is_refused() {
    let phone = Phone::new();
    let a = &phone.appliance;
    let forged = [
        a.revocation(phone.pair_a, a.identity_key(), &other_key()),
        a.revocation(phone.pair_b, a.identity_key(), &a.identity),
        a.revocation(phone.pair_a, Key32([5; 32]), &a.identity),
    ];
    for env in forged {
        phone.appliance.revoke.push(Ok(env));
        let e = phone.engine.revoke(phone.pair_a, &phone.appliance).await.unwrap_err();
        assert!(matches!(e, SignError::BadRevocation(_)), "{e:?}");
    }
    assert_eq!(phone.store.pair_status(phone.pair_a).unwrap(), Some(PairStatus::Active));
    assert_eq!(phone.store.pair_status(phone.pair_b).unwrap(), Some(PairStatus::Active));
    assert_eq!(phone.octane.count(|c| matches!(c, OctaneCall::Revoke(_))), 0, "octane is never shown a forgery");
    assert!(phone.store.octane_outbox().unwrap().is_empty(), "nor is one kept for it");
}

#[tokio::test]
async fn revoking_while_octane_is_unreachable_revokes_here_and_waits_for_sync() {
    let phone = Phone::new();
    // Octane already knew (the SP revoked it first): done, nothing waits.
    phone.octane.revoke.push(Err(OctaneError::Revoked));
    phone.engine.revoke(phone.pair_a, &phone.appliance).await.unwrap();
    assert_eq!(phone.store.pair_status(phone.pair_a).unwrap(), Some(PairStatus::Revoked));
    assert!(phone.store.octane_outbox().unwrap().is_empty());
    // Octane unreachable: revoked here all the same (the appliance dropped the pair), and
    // the appliance's statement waits for sync.
    phone
        .octane
        .revoke
        .push(Err(OctaneError::Offline(crate::octane::transport::TransportError::Offline("no network".into()))));
    phone.engine.revoke(phone.pair_b, &phone.appliance).await.unwrap();
    assert_eq!(phone.store.pair_status(phone.pair_b).unwrap(), Some(PairStatus::Revoked));
    assert!(matches!(phone.engine.ingest(&phone.send(phone.pair_b, 1)).await, Err(SignError::PairRevoked)));
    let waiting = phone.store.octane_outbox().unwrap();
    assert_eq!(waiting.len(), 1);
    let e = &waiting[0];
    assert_eq!(
        (e.kind.as_str(), e.subject.clone(), e.appliance),
        (PAIR_REVOKED, phone.pair_b.to_string(), phone.appliance.identity_key())
    );
    let statement: PairRevocation = e.statement.open(Domain::PairRevocation, e.appliance.as_bytes()).unwrap();
    assert_eq!(statement.pair_id, phone.pair_b);
    // What sync does with it: octane is told.
    phone.engine.relay_revocation(phone.pair_b, &e.statement).await.unwrap();
    assert_eq!(phone.octane.count(|c| *c == OctaneCall::Revoke(phone.pair_b)), 2);
}

#[tokio::test]
async fn a_pair_the_appliance_already_dropped_is_revoked_here_too() {
    let phone = Phone::new();
    // A revocation whose answer was lost: asked again, the appliance says it is gone.
    let gone = ApplianceError::Refused { code: "pair_revoked".into(), message: "already revoked".into() };
    phone.appliance.revoke.push(Err(gone));
    phone.engine.revoke(phone.pair_a, &phone.appliance).await.unwrap();
    assert_eq!(phone.store.pair_status(phone.pair_a).unwrap(), Some(PairStatus::Revoked));
    let entry = phone.store.last_audit(&phone.pair_a.to_string(), "pair_revoked").unwrap().unwrap();
    assert_eq!(entry.event, AuditEvent::PairRevoked { by: Actor::Appliance });
    // Any other refusal leaves the pair as it was.
    let unknown = ApplianceError::Refused { code: "unknown_pair".into(), message: "no such pair".into() };
    phone.appliance.revoke.push(Err(unknown.clone()));
    let e = phone.engine.revoke(phone.pair_b, &phone.appliance).await.unwrap_err();
    assert!(matches!(&e, SignError::Appliance(a) if *a == unknown), "{e:?}");
    assert_eq!(phone.store.pair_status(phone.pair_b).unwrap(), Some(PairStatus::Active));
}

// ---- sync ----

#[tokio::test]
async fn pairs_the_service_revoked_are_revoked_here_and_on_the_appliance() {
    let phone = Phone::new();
    phone.store.revoke_pair(phone.pair_b, 5).unwrap();
    let mut active = revoked(&phone, phone.pair_a, None);
    active.pair_id = Uuid::from_bytes([0xd; 16]);
    active.status = OctanePairStatus::Active;
    let listing = vec![
        revoked(&phone, phone.pair_a, Some(T0_REVOKED)),
        revoked(&phone, Uuid::from_bytes([0xc; 16]), Some(1)), // not on this phone
        revoked(&phone, phone.pair_b, Some(7)),                // already revoked here
        active,
    ];
    phone.octane.pairs.push(Ok(listing.clone()));
    assert_eq!(phone.engine.sync(Some(&phone.appliance)).await.unwrap(), [phone.pair_a]);
    let pair = phone.store.pair(phone.pair_a).unwrap().unwrap();
    assert_eq!((pair.status, pair.revoked_at), (PairStatus::Revoked, Some(T0_REVOKED)));
    assert_eq!(phone.appliance.calls(), [ApplianceCall::RevokePair(phone.pair_a)]);
    let entry = phone.store.last_audit(&phone.pair_a.to_string(), "pair_revoked").unwrap().unwrap();
    assert_eq!(entry.event, AuditEvent::PairRevoked { by: Actor::Sp });
    // Nothing new the second time.
    phone.octane.pairs.push(Ok(listing));
    assert!(phone.engine.sync(Some(&phone.appliance)).await.unwrap().is_empty());

    // Without the appliance at hand, or with it unreachable, the phone still stops signing.
    let later = Phone::new();
    later.octane.pairs.push(Ok(vec![revoked(&later, later.pair_a, None)]));
    assert_eq!(later.engine.sync(None).await.unwrap(), [later.pair_a]);
    assert_eq!(later.store.pair(later.pair_a).unwrap().unwrap().revoked_at, Some(later.now()));
    later.octane.pairs.push(Ok(vec![revoked(&later, later.pair_b, None)]));
    later.appliance.revoke.push(Err(ApplianceError::Timeout));
    assert_eq!(later.engine.sync(Some(&later.appliance)).await.unwrap(), [later.pair_b]);
}

const T0_REVOKED: u64 = 1_799_900_000;

#[tokio::test]
async fn an_unreachable_octane_revokes_nothing() {
    let phone = Phone::new();
    phone.octane.pairs.push(Err(OctaneError::Timeout));
    assert_eq!(phone.engine.sync(Some(&phone.appliance)).await.unwrap_err().code(), "octane_timeout");
    assert_eq!(phone.store.pair_status(phone.pair_a).unwrap(), Some(PairStatus::Active));
    assert!(phone.appliance.calls().is_empty());
}

// ---- settings and errors ----

#[tokio::test]
async fn changed_guardrail_settings_apply_to_the_next_request() {
    let phone = Phone::new();
    assert_eq!(phone.engine.guardrails().unwrap(), Guardrails::default());
    phone.limits(1, None, Some(ETH));
    assert_eq!(codes(&phone.ingest(&phone.send(phone.pair_a, 2 * ETH)).await), ["per_day_limit_exceeded"]);
    // Changed in the store by another engine (another bond's): read, not the cached copy.
    let other = SignEngine::new(phone.store.clone(), phone.octane.clone(), phone.clock.clone());
    other.set_guardrails(&Guardrails::default()).unwrap();
    assert!(!phone.ingest(&phone.send(phone.pair_a, 2 * ETH)).await.blocked());
    assert_eq!(load_guardrails(&phone.store).unwrap(), Guardrails::default());
}

#[test]
fn error_codes_are_stable() {
    use crate::validity::ValidityError;
    let cases: Vec<(SignError, &str)> = vec![
        (SignError::UnknownPair(Uuid::nil()), "unknown_pair"),
        (SignError::PairRevoked, "pair_revoked"),
        (SignError::BadSpSignature, "bad_sp_signature"),
        (SignError::BadOctaneSignature, "bad_octane_signature"),
        (SignError::Malformed("x".into()), "malformed_request"),
        (SignError::from(ValidityError::Expired { ago: 1 }), "expired"),
        (SignError::from(ValidityError::LifetimeTooLong { lifetime: 9_999 }), "bad_validity"),
        (SignError::Replay, "replay"),
        (SignError::AccountNotBound("a".into()), "account_not_bound"),
        (SignError::Undecodable("x".into()), "undecodable"),
        (SignError::Blocked(vec![]), "guardrail"),
        (SignError::UnknownRequest, "unknown_request"),
        (SignError::from(ApplianceError::UserRejected), "appliance_rejected"),
        (SignError::BadApplianceSignature(PayloadError::Empty), "bad_appliance_signature"),
        (SignError::BadRevocation("x".into()), "bad_revocation"),
        (SignError::MissingReceipt, "missing_receipt"),
        (SignError::BadReceipt(ReceiptError::BadSignature), "bad_receipt"),
        (SignError::from(OctaneError::Timeout), "octane_timeout"),
        (SignError::from(ApplianceError::Timeout), "appliance_error"),
        (SignError::from(StoreError::Poisoned), "store_error"),
    ];
    for (e, code) in cases {
        assert_eq!(e.code(), code, "{e}");
    }
    assert!(matches!(SignError::from(ApplianceError::UserRejected), SignError::RejectedOnAppliance));
}
