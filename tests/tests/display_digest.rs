//! What the user saw, kept and proven, end to end: the display digest of the phone's review
//! screen is the same in the phone's sign history, its audit log (with the appliance's
//! receipt), on the appliance's screen (as its fingerprint, recorded by the simulator) and
//! in the result the SP verified (three signatures and the receipt, with the appliance
//! identity of the pair attestation the SP checked at pair time). A tampered receipt, one
//! over another digest and one for another request are refused by the SP, and by octane
//! when a phone posts them. A contract call rendered from its ERC-7730 descriptor (with the
//! repository's signed metadata bundle, as octane serves it) reaches the SP with the digest
//! of that screen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, TxKind, U256};
use sunstorm_core::audit::AuditEvent;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::decode::DisplayDigest;
use sunstorm_core::envelope::{Domain, SignedEnvelope};
use sunstorm_core::metadata::DEV_METADATA_PUBLIC_KEY;
use sunstorm_core::model::{PayloadKind, SignRequest};
use sunstorm_core::octane::api::{SignResult, SignatureBundle};
use sunstorm_core::receipt::{ReceiptError, ReceiptField, SignReceipt};
use sunstorm_core::sign::PendingSignature;
use sunstorm_core::sunstorm::Sunstorm;
use sunstorm_e2e::{ready_to_approve, World};
use sunstorm_sim::appliance::{EventType, SimKeys, UserScript, MAX_EVENTS};
use sunstorm_sim::samples::{aave_supply, USDC};
use sunstorm_sim::sp::{verify_pair_result, verify_signed, ExpectedPair, SpCheckError};
use uuid::Uuid;

/// Pairs on chain 1 and returns the pair id, the bound account and the appliance identity
/// the SP took from the attestation it checked.
async fn pair(w: &World, phone: &Sunstorm) -> (Uuid, AccountId, Key32) {
    let chains = [ChainId::Evm(1)];
    let s = w.session(&chains, None).await;
    let flow = ready_to_approve(phone, &s, &chains).await;
    phone.approve_pair(flow).await.unwrap();
    let result = w.sim.sp.pair_result(&s.session_id, 5).await.unwrap();
    let expected = ExpectedPair {
        session_id: &s.session_id,
        validation_code: Some(&s.validation_code),
        sp_public_key: Some(&w.sim.demo.profile.public_key),
    };
    let att = verify_pair_result(&result, &expected).unwrap().expect("paired");
    let account = att.bindings.iter().find(|a| a.chain == ChainId::Evm(1)).cloned().unwrap();
    (att.pair_id, account, att.appliance_identity)
}

fn transfer(pair_id: Uuid, account: &AccountId) -> SignRequest {
    request(pair_id, account, eip1559_transfer())
}

fn eip1559_transfer() -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: 1,
        nonce: 3,
        gas_limit: 21_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::from([0x22; 20])),
        value: U256::from(5 * 10u128.pow(16)),
        access_list: Default::default(),
        input: Default::default(),
    };
    let mut payload = Vec::new();
    tx.encode_for_signing(&mut payload);
    payload
}

fn request(pair_id: Uuid, account: &AccountId, payload: Vec<u8>) -> SignRequest {
    sunstorm_e2e::sign_request(pair_id, account, PayloadKind::EvmTransaction, payload)
}

/// Submits, shows, approves; returns what the phone showed and what the SP received.
async fn sign_one(w: &World, phone: &Sunstorm, req: SignRequest) -> (SignRequest, PendingSignature, SignatureBundle) {
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    let shown = sunstorm_e2e::shown(phone, req.request_id).await;
    phone.approve_sign(req.request_id).await.unwrap();
    let bundle = match w.sim.sp.await_sign(&req.request_id, Duration::from_secs(5)).await.unwrap() {
        SignResult::Signed { bundle } => *bundle,
        other => panic!("not signed: {other:?}"),
    };
    (req, shown, bundle)
}

fn verify(w: &World, b: &SignatureBundle, appliance: &Key32) -> Result<DisplayDigest, SpCheckError> {
    verify_signed(b, &w.sim.demo.profile.public_key, &w.sim.octane.octane_public_key, appliance)
        .map(|v| v.display_digest)
}

#[tokio::test]
async fn the_screen_the_user_saw_is_the_same_in_history_audit_log_appliance_and_the_sps_result() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, account, appliance) = pair(&w, &w.phone).await;
    let (req, shown, bundle) = sign_one(&w, &w.phone, transfer(pair_id, &account)).await;
    let digest = shown.display_digest;
    assert_eq!(digest, sunstorm_core::decode::display_digest(&req.request_id, &shown.decoded));

    // 1. The phone's sign history.
    let rec = w.phone.store().sign_record(req.request_id).unwrap().unwrap();
    assert_eq!(rec.display_digest, Some(digest));
    // An auditor recomputes it from the screen the history keeps.
    assert_eq!(sunstorm_core::decode::display_digest_of_summary(&req.request_id, &rec.summary), Some(digest));

    // 2. Its audit log: the approval and the signature, with the appliance's receipt.
    let events: Vec<AuditEvent> = w
        .phone
        .audit_log(100)
        .unwrap()
        .into_iter()
        .filter(|e| e.subject == req.request_id.to_string())
        .map(|e| e.event)
        .collect();
    let title = shown.decoded.title.clone();
    assert!(events.contains(&AuditEvent::SignApproved { title, display_digest: Some(digest), approval: None }));
    let kept = events
        .iter()
        .find_map(|e| match e {
            AuditEvent::SignSigned { display_digest: Some(d), receipt: Some(r) } if *d == digest => Some(r.clone()),
            _ => None,
        })
        .expect("the signed entry keeps the digest and the receipt");

    // 3. What the appliance showed: the fingerprint beside its own screen.
    let page = w.sim.appliance.events_after(0, MAX_EVENTS);
    let screen = page
        .events
        .iter()
        .filter(|e| e.kind == EventType::ScreenShown)
        .filter_map(|e| e.screen.as_ref())
        .find(|s| s.request_id == req.request_id)
        .expect("the appliance showed the request");
    assert_eq!(screen.fingerprint.as_deref(), Some(digest.fingerprint().as_str()));
    assert_eq!(screen.display_digest.as_deref(), Some(digest.hex().as_str()));
    assert!(screen.text.contains(&format!("Phone screen: {}", digest.fingerprint())), "{:?}", screen.text);

    // 4. The SP's verified result: three signatures and the receipt, same digest.
    assert_eq!(bundle.display_digest, Some(digest));
    assert_eq!(bundle.receipt.as_ref(), Some(&kept), "octane relays the receipt the phone kept");
    let verified =
        verify_signed(&bundle, &w.sim.demo.profile.public_key, &w.sim.octane.octane_public_key, &appliance).unwrap();
    assert_eq!(verified.request, req);
    assert_eq!(verified.display_digest, digest);
    assert_eq!((verified.receipt.request_id, verified.receipt.pair_id), (req.request_id, pair_id));
}

#[tokio::test]
async fn the_sp_refuses_a_missing_tampered_or_foreign_receipt() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, account, appliance) = pair(&w, &w.phone).await;
    let (_, _, first) = sign_one(&w, &w.phone, transfer(pair_id, &account)).await;
    let (req, shown, bundle) = sign_one(&w, &w.phone, transfer(pair_id, &account)).await;
    assert_eq!(verify(&w, &bundle, &appliance), Ok(shown.display_digest));
    // The appliance's own key (the simulator's seed), to make receipts it never made.
    let keys = SimKeys::derive(&[0x42; 32]).unwrap();
    assert_eq!(Key32(keys.identity.verifying_key().to_bytes()), appliance);
    let seal = |r: &SignReceipt| SignedEnvelope::seal(Domain::SignReceipt, &keys.identity, r).unwrap();

    let mut missing = bundle.clone();
    missing.receipt = None;
    assert_eq!(verify(&w, &missing, &appliance), Err(SpCheckError::MissingReceipt));

    let mut tampered = bundle.clone();
    tampered.receipt.as_mut().unwrap().sig[5] ^= 1;
    assert_eq!(verify(&w, &tampered, &appliance), Err(SpCheckError::Receipt(ReceiptError::BadSignature)));

    // The bundle names another screen than the receipt does.
    let mut other_screen = bundle.clone();
    other_screen.display_digest = Some(DisplayDigest([0x0f; 32]));
    let e = verify(&w, &other_screen, &appliance);
    assert_eq!(e, Err(SpCheckError::Receipt(ReceiptError::Mismatch(ReceiptField::DisplayDigest))));
    // A genuine receipt over another digest than the one in the bundle.
    let mut over_other = bundle.clone();
    let other = SignReceipt::for_request(&req, DisplayDigest([0x0f; 32]), appliance);
    over_other.receipt = Some(seal(&other));
    let e = verify(&w, &over_other, &appliance);
    assert_eq!(e, Err(SpCheckError::Receipt(ReceiptError::Mismatch(ReceiptField::DisplayDigest))));
    // The previous request's genuine receipt.
    let mut replayed = bundle.clone();
    replayed.receipt = first.receipt.clone();
    let e = verify(&w, &replayed, &appliance);
    assert_eq!(e, Err(SpCheckError::Receipt(ReceiptError::Mismatch(ReceiptField::RequestId))));
    // Checked with another appliance's identity than the attested one.
    let stranger = Key32(SimKeys::derive(&[0x43; 32]).unwrap().identity.verifying_key().to_bytes());
    assert_eq!(verify(&w, &bundle, &stranger), Err(SpCheckError::Receipt(ReceiptError::BadSignature)));
}

/// The signed metadata bundle committed in the repository (development metadata key).
const BUNDLE: &[u8] = include_bytes!("../../metadata/bundle.cbor");

#[tokio::test]
async fn a_contract_call_rendered_from_its_descriptor_reaches_the_sp_with_the_digest_of_that_screen() {
    let w = World::new(UserScript::Approve).await;
    // Octane serves the repository's bundle; the phone pins the development metadata key
    // and takes the bundle from octane.
    w.sim.octane.serve_metadata(Some(BUNDLE.to_vec()));
    let phone = w.reopen(|c| c.metadata_key = Some(Key32(DEV_METADATA_PUBLIC_KEY)));
    phone.update_metadata().await.unwrap();
    let (pair_id, account, appliance) = pair(&w, &phone).await;
    let me = account.evm_address().unwrap();
    let deposit = request(pair_id, &account, aave_supply(0, USDC, 1_000_000_000, me));
    let (req, shown, bundle) = sign_one(&w, &phone, deposit).await;

    // The Aave pool's descriptor drove the screen: its intent and its rows.
    assert_eq!(shown.decoded.descriptor.as_deref(), Some("registry/aave/calldata-lpv3.json"), "{:?}", shown.decoded);
    let values: Vec<&str> = shown.decoded.fields.iter().map(|f| f.value.as_str()).collect();
    assert!(values.iter().any(|v| v.contains("USDC") && v.contains("1,000")), "{values:?}");
    // The SP received the digest of exactly that screen, with the appliance's receipt.
    let verified =
        verify_signed(&bundle, &w.sim.demo.profile.public_key, &w.sim.octane.octane_public_key, &appliance).unwrap();
    assert_eq!(verified.request, req);
    assert_eq!(verified.display_digest, shown.display_digest);
    assert_eq!(verified.display_digest, sunstorm_core::decode::display_digest(&req.request_id, &shown.decoded));
}
