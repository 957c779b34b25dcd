//! Sign flow end to end: SP → octane simulator (loopback HTTP) → core → appliance simulator
//! (simulated GATT link) → octane → SP, with the three signatures checked by code that does
//! not share the signing path (raw ed25519-dalek, k256 recovery, alloy hashing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, TxKind, U256};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use sha3::Keccak256;
use sunstorm_core::appliance::client::{ApplianceClient, ClientConfig};
use sunstorm_core::appliance::{ApplianceApi, ApplianceError};
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{AccountId, ChainId, SOLANA_MAINNET};
use sunstorm_core::envelope::{self, Domain};
use sunstorm_core::guardrails::{Guardrails, NativeLimits};
use sunstorm_core::model::{CountersignedRequest, PayloadKind, SignRequest};
use sunstorm_core::octane::api::{OctaneErrorCode, PendingSignRequest, SignResult, SignatureBundle};
use sunstorm_core::sign::{PendingSignature, SignError};
use sunstorm_core::store::{PairStatus, SignOutcome};
use sunstorm_core::sunstorm::CoreError;
use sunstorm_e2e::World;
use sunstorm_sim::appliance::UserScript;
use sunstorm_sim::sp::{verify_bundle_cosigners, SpClientError};
use uuid::Uuid;

fn sol() -> ChainId {
    ChainId::Solana(SOLANA_MAINNET.into())
}

fn account(bindings: &[AccountId], chain: &ChainId) -> AccountId {
    bindings.iter().find(|a| &a.chain == chain).cloned().unwrap()
}

use sunstorm_e2e::sign_request as request;

fn eip1559(to: [u8; 20], value_wei: u128) -> (TxEip1559, Vec<u8>) {
    eip1559_fee(to, value_wei, 21_000, 30_000_000_000)
}

/// An EIP-1559 transaction whose worst-case fee is `gas_limit × max_fee_per_gas`.
fn eip1559_fee(to: [u8; 20], value_wei: u128, gas_limit: u64, max_fee_per_gas: u128) -> (TxEip1559, Vec<u8>) {
    let tx = TxEip1559 {
        chain_id: 1,
        nonce: 7,
        gas_limit,
        max_fee_per_gas,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::from(to)),
        value: U256::from(value_wei),
        access_list: Default::default(),
        input: Default::default(),
    };
    let mut bytes = Vec::new();
    tx.encode_for_signing(&mut bytes);
    (tx, bytes)
}

/// A legacy Solana message: `from` sends `lamports` to `to` with the System program.
fn solana_transfer(from: [u8; 32], to: [u8; 32], lamports: u64) -> Vec<u8> {
    let mut m = vec![1u8, 0, 1, 3];
    m.extend(from);
    m.extend(to);
    m.extend([0u8; 32]);
    m.extend([9u8; 32]);
    m.extend([1, 2, 2, 0, 1, 12]);
    m.extend(2u32.to_le_bytes());
    m.extend(lamports.to_le_bytes());
    m
}

/// Octane's signing key, derived the way the simulator derives it from its seed — lets a
/// test play a compromised octane that countersigns anything.
fn octane_signing_key() -> SigningKey {
    let mut h = Sha256::new();
    h.update(b"sunstorm-sim/octane/");
    h.update(b"octane-key");
    h.update([0u8]);
    h.update([7u8; 32]);
    SigningKey::from_bytes(&h.finalize().into())
}

/// Signs `req` as the SP and as (a compromised) octane.
fn forge(w: &World, req: &SignRequest) -> PendingSignRequest {
    let body = sunstorm_core::cbor::to_vec(req).unwrap();
    let sp_sig = envelope::sign_bytes(Domain::SpSignRequest, &w.sim.demo.signing_key, &body).to_vec();
    let octane_sig = envelope::sign_bytes(Domain::OctaneSignRequest, &octane_signing_key(), &body).to_vec();
    PendingSignRequest {
        pair_id: req.pair_id,
        request_id: req.request_id,
        request: CountersignedRequest { body, sp_sig, octane_sig },
    }
}

/// Independent Ed25519 check over `tag || 0x00 || body`.
fn ed25519_ok(tag: &[u8], key: &Key32, body: &[u8], sig: &[u8]) -> bool {
    let mut msg = tag.to_vec();
    msg.push(0);
    msg.extend_from_slice(body);
    let vk = VerifyingKey::from_bytes(key.as_bytes()).unwrap();
    vk.verify_strict(&msg, &Signature::from_slice(sig).unwrap()).is_ok()
}

/// Independent secp256k1 recovery: the address that signed `digest` with `sig` (r‖s‖v).
fn recover(digest: &[u8; 32], sig: &[u8], v_offset: u8) -> [u8; 20] {
    let s = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
    assert!(s.normalize_s().is_none(), "high-s signature");
    let recid = k256::ecdsa::RecoveryId::from_byte(sig[64] - v_offset).unwrap();
    let vk = k256::ecdsa::VerifyingKey::recover_from_prehash(digest, &s, recid).unwrap();
    let point = vk.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    hash[12..].try_into().unwrap()
}

/// Waits for the request on the phone and returns its view.
async fn fetch(w: &World, request_id: Uuid) -> PendingSignature {
    sunstorm_e2e::shown(&w.phone, request_id).await
}

async fn bundle(w: &World, request_id: Uuid) -> SignatureBundle {
    match w.sim.sp.await_sign(&request_id, Duration::from_secs(5)).await.unwrap() {
        SignResult::Signed { bundle } => *bundle,
        other => panic!("not signed: {other:?}"),
    }
}

async fn rejection(w: &World, request_id: Uuid) -> String {
    match w.sim.sp.await_sign(&request_id, Duration::from_secs(5)).await.unwrap() {
        SignResult::Rejected { reason_code, .. } => reason_code,
        other => panic!("not rejected: {other:?}"),
    }
}

fn sign_err(r: Result<impl std::fmt::Debug, CoreError>) -> SignError {
    match r {
        Err(CoreError::Sign(e)) => e,
        other => panic!("expected a sign error, got {other:?}"),
    }
}

#[tokio::test]
async fn eip1559_transaction_signed_with_all_three_signatures_checked_independently() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = account(&bindings, &ChainId::Evm(1));
    let (tx, payload) = eip1559([0x11; 20], 10u128.pow(16));
    let req = request(pair_id, &acct, PayloadKind::EvmTransaction, payload);
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();

    let p = fetch(&w, req.request_id).await;
    assert!(!p.blocked());
    assert_eq!(p.account, acct);
    assert_eq!(p.sp_name, "Demo SP");
    assert!(!p.decoded.fields.is_empty());
    let out = w.phone.approve_sign(req.request_id).await.unwrap();

    let b = bundle(&w, req.request_id).await;
    assert_eq!(b.appliance_sig, out.signature);
    // 1. The SP's signature, 2. octane's, over the very body the SP built.
    assert_eq!(b.body, sunstorm_core::cbor::to_vec(&req).unwrap());
    assert!(ed25519_ok(b"sigil/v1/sp-sign-request", &w.sim.demo.profile.public_key, &b.body, &b.sp_sig));
    assert!(ed25519_ok(b"sigil/v1/octane-sign-request", &w.sim.octane.octane_public_key, &b.body, &b.octane_sig));
    assert!(!ed25519_ok(b"sigil/v1/octane-sign-request", &w.sim.demo.profile.public_key, &b.body, &b.sp_sig));
    // 3. The appliance's: recovers (alloy's signing hash, k256 recovery) to the bound address.
    let digest: [u8; 32] = tx.signature_hash().0;
    assert!(b.appliance_sig[64] <= 1, "typed transactions use y-parity");
    assert_eq!(recover(&digest, &b.appliance_sig, 0), acct.evm_address().unwrap());
    // The simulator's own bundle check agrees.
    verify_bundle_cosigners(&b, &w.sim.demo.profile.public_key, &w.sim.octane.octane_public_key).unwrap();
    // History and counters.
    let rec = w.phone.store().sign_record(req.request_id).unwrap().unwrap();
    assert_eq!(rec.outcome, SignOutcome::Completed);
    assert_eq!(rec.native_value, Some(10u128.pow(16)));
    assert_eq!(w.sim.appliance.signatures_made(req.request_id), 1);
}

#[tokio::test]
async fn solana_transfer_is_signed_and_verifies_under_the_bound_key() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[sol()]).await;
    let acct = account(&bindings, &sol());
    let from = acct.solana_pubkey().unwrap();
    let msg = solana_transfer(from, [0x33; 32], 1_500_000);
    let req = request(pair_id, &acct, PayloadKind::SolanaTransaction, msg.clone());
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    let p = fetch(&w, req.request_id).await;
    assert_eq!(p.decoded.facts.native_value, 1_500_000);
    w.phone.approve_sign(req.request_id).await.unwrap();
    let b = bundle(&w, req.request_id).await;
    let vk = VerifyingKey::from_bytes(&from).unwrap();
    vk.verify_strict(&msg, &Signature::from_slice(&b.appliance_sig).unwrap()).unwrap();
}

#[tokio::test]
async fn eip191_and_eip712_messages_are_signed_as_published() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = account(&bindings, &ChainId::Evm(1));

    // EIP-191 personal_sign.
    let text = b"Sign in to Demo SP: nonce 42".to_vec();
    let req = request(pair_id, &acct, PayloadKind::Eip191Message, text.clone());
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    fetch(&w, req.request_id).await;
    w.phone.approve_sign(req.request_id).await.unwrap();
    let b = bundle(&w, req.request_id).await;
    let mut prefixed = format!("\x19Ethereum Signed Message:\n{}", text.len()).into_bytes();
    prefixed.extend(&text);
    let digest: [u8; 32] = Keccak256::digest(&prefixed).into();
    assert!(b.appliance_sig[64] == 27 || b.appliance_sig[64] == 28);
    assert_eq!(recover(&digest, &b.appliance_sig, 27), acct.evm_address().unwrap());

    // EIP-712: the "Mail" example of the EIP, whose digest the EIP publishes. The phone
    // does not know what signing a Mail means, so it is blind: the user allows it first.
    let g = Guardrails { allow_blind_signing: true, ..Guardrails::default() };
    w.phone.set_guardrails(&g).await.unwrap();
    let mail = serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [
                {"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"}
            ]
        },
        "primaryType": "Mail",
        "domain": {
            "name": "Ether Mail", "version": "1", "chainId": 1,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
        },
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    });
    let req = request(pair_id, &acct, PayloadKind::Eip712TypedData, serde_json::to_vec(&mail).unwrap());
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    fetch(&w, req.request_id).await;
    w.phone.approve_sign(req.request_id).await.unwrap();
    let b = bundle(&w, req.request_id).await;
    let published: [u8; 32] =
        hex::decode("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2").unwrap().try_into().unwrap();
    assert_eq!(recover(&published, &b.appliance_sig, 27), acct.evm_address().unwrap());
}

#[tokio::test]
async fn tampered_requests_are_refused_before_the_appliance_is_asked() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = account(&bindings, &ChainId::Evm(1));
    let (_, payload) = eip1559([0x11; 20], 1);
    let req = request(pair_id, &acct, PayloadKind::EvmTransaction, payload);
    let accepted = w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    let genuine = PendingSignRequest { pair_id, request_id: req.request_id, request: accepted.countersigned.clone() };
    let before = w.sim.appliance.total_signatures();

    // Payload (any byte of the signed body).
    let mut t = genuine.clone();
    let n = t.request.body.len();
    t.request.body[n - 3] ^= 0x01;
    assert!(matches!(sign_err(w.phone.receive_sign_request(&t).await), SignError::BadSpSignature));
    // The SP's signature.
    let mut t = genuine.clone();
    t.request.sp_sig[5] ^= 0x01;
    assert!(matches!(sign_err(w.phone.receive_sign_request(&t).await), SignError::BadSpSignature));
    // Octane's signature.
    let mut t = genuine.clone();
    t.request.octane_sig[5] ^= 0x01;
    assert!(matches!(sign_err(w.phone.receive_sign_request(&t).await), SignError::BadOctaneSignature));
    // Signatures swapped between purposes.
    let mut t = genuine.clone();
    std::mem::swap(&mut t.request.sp_sig, &mut t.request.octane_sig);
    assert!(sign_err(w.phone.receive_sign_request(&t).await).code().starts_with("bad_"));
    // An envelope claiming another pair.
    let mut t = genuine.clone();
    t.pair_id = Uuid::new_v4();
    assert!(matches!(sign_err(w.phone.receive_sign_request(&t).await), SignError::UnknownPair(_)));
    assert_eq!(w.sim.appliance.total_signatures(), before);

    // The genuine one still goes through.
    let p = w.phone.receive_sign_request(&genuine).await.unwrap();
    assert!(!p.blocked());
    w.phone.approve_sign(req.request_id).await.unwrap();
    assert_eq!(w.sim.appliance.total_signatures(), before + 1);
}

#[tokio::test]
async fn replayed_and_expired_requests_are_refused() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = account(&bindings, &ChainId::Evm(1));
    let (_, payload) = eip1559([0x11; 20], 1);
    let req = request(pair_id, &acct, PayloadKind::EvmTransaction, payload.clone());
    let accepted = w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    fetch(&w, req.request_id).await;
    w.phone.approve_sign(req.request_id).await.unwrap();
    let done = w.sim.appliance.total_signatures();

    // The same request again (after a restart too): refused, the appliance is not asked.
    let again = PendingSignRequest { pair_id, request_id: req.request_id, request: accepted.countersigned };
    assert!(matches!(sign_err(w.phone.receive_sign_request(&again).await), SignError::Replay));
    let phone2 = w.reopen(|_| {});
    assert!(matches!(phone2.receive_sign_request(&again).await, Err(CoreError::Sign(SignError::Replay))));
    // The same id with another body (a compromised octane): refused as a replay.
    let mut other = req.clone();
    other.payload = eip1559([0x22; 20], 5).1;
    assert!(matches!(sign_err(w.phone.receive_sign_request(&forge(&w, &other)).await), SignError::Replay));
    assert_eq!(w.sim.appliance.total_signatures(), done);

    // Expired by the time it reaches the phone: refused, the SP sees why.
    let mut short = request(pair_id, &acct, PayloadKind::EvmTransaction, payload);
    short.expires_at = short.created_at + 30;
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &short).await.unwrap();
    w.phone_clock.advance(60);
    let pending = w.phone.pending_sign_requests(Duration::from_secs(1)).await.unwrap();
    assert!(pending.iter().all(|p| p.request_id != short.request_id));
    assert_eq!(rejection(&w, short.request_id).await, "expired");
    let refused = sign_err(w.phone.receive_sign_request(&forge(&w, &short)).await);
    assert!(matches!(refused, SignError::Replay | SignError::Expired), "{refused:?}");
    assert_eq!(w.sim.appliance.total_signatures(), done);
}

#[tokio::test]
async fn an_unbound_account_is_refused_by_the_core_and_by_the_appliance_itself() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    // An appliance wallet that is NOT bound to this pair (Solana was not requested).
    let unbound = w.sim.appliance.wallets().into_iter().find(|a| !bindings.contains(a) && a.chain == sol()).unwrap();
    let msg = solana_transfer(unbound.solana_pubkey().unwrap(), [1; 32], 5);
    let req = request(pair_id, &unbound, PayloadKind::SolanaTransaction, msg);

    // Octane refuses it from the SP.
    let e = w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap_err();
    assert!(matches!(e, SpClientError::Api { code: OctaneErrorCode::AccountNotBound, .. }), "{e:?}");
    // A compromised octane countersigns it anyway: the core refuses it.
    let forged = forge(&w, &req);
    let e = sign_err(w.phone.receive_sign_request(&forged).await);
    assert!(matches!(e, SignError::AccountNotBound(_)), "{e:?}");
    // With the core bypassed, the appliance refuses it too.
    let bond = w.phone.bond_record(None).await.unwrap();
    let direct =
        ApplianceClient::new(w.sim.connector.clone(), bond, w.secrets.as_ref(), ClientConfig::default()).unwrap();
    let e = direct.sign(&forged.request, None).await.unwrap_err();
    assert!(matches!(&e, ApplianceError::Refused { code, .. } if code.contains("not_bound")), "{e:?}");
    assert_eq!(w.sim.appliance.total_signatures(), 0);
}

#[tokio::test]
async fn guardrail_violations_block_and_the_sp_sees_the_reason() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = account(&bindings, &ChainId::Evm(1));
    let mut g = Guardrails::default();
    g.limits.insert(ChainId::Evm(1), NativeLimits { per_pair: Some(10u128.pow(18)), per_day: None });
    g.recipient_allowlist = Some(vec![Address::from([0x11; 20]).to_checksum(None)]);
    w.phone.set_guardrails(&g).await.unwrap();

    // Within the rules: signed, and counted against the limit.
    let (_, payload) = eip1559([0x11; 20], 6 * 10u128.pow(17));
    let ok = request(pair_id, &acct, PayloadKind::EvmTransaction, payload);
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &ok).await.unwrap();
    assert!(!fetch(&w, ok.request_id).await.blocked());
    w.phone.approve_sign(ok.request_id).await.unwrap();
    let signed: Vec<_> =
        w.phone.audit_log(20).unwrap().into_iter().filter(|e| e.event.kind() == "sign_signed").collect();
    assert_eq!(signed.len(), 1, "one verified signature audited");
    assert_eq!(signed[0].subject, ok.request_id.to_string());

    // Over the per-pair limit AND to a recipient not on the list: both rules named.
    let (_, payload) = eip1559([0x99; 20], 6 * 10u128.pow(17));
    let bad = request(pair_id, &acct, PayloadKind::EvmTransaction, payload);
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &bad).await.unwrap();
    let p = fetch(&w, bad.request_id).await;
    assert!(p.blocked());
    let codes: Vec<&str> = p.violations.iter().map(|v| v.code.as_str()).collect();
    assert_eq!(codes.len(), 2, "{codes:?}");
    // Approving it anyway says why it cannot be signed, naming the same rules.
    match sign_err(w.phone.approve_sign(bad.request_id).await) {
        SignError::Blocked(rules) => assert_eq!(rules, codes, "approve of a blocked request"),
        other => panic!("approve of a blocked request: {other:?}"),
    }
    assert!(matches!(sign_err(w.phone.approve_sign(Uuid::new_v4()).await), SignError::UnknownRequest));
    assert_eq!(rejection(&w, bad.request_id).await, "guardrail");
    assert_eq!(w.sim.appliance.signatures_made(bad.request_id), 0);
    assert_eq!(w.phone.store().sign_record(bad.request_id).unwrap().unwrap().outcome, SignOutcome::Blocked);
}

#[tokio::test]
async fn rejections_on_the_phone_or_the_appliance_reach_the_sp() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = account(&bindings, &ChainId::Evm(1));

    let r1 = request(pair_id, &acct, PayloadKind::Eip191Message, b"hello".to_vec());
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &r1).await.unwrap();
    fetch(&w, r1.request_id).await;
    w.phone.reject_sign(r1.request_id).await.unwrap();
    assert_eq!(rejection(&w, r1.request_id).await, "user_rejected");

    w.sim.appliance.set_user(UserScript::Reject);
    let r2 = request(pair_id, &acct, PayloadKind::Eip191Message, b"hello again".to_vec());
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &r2).await.unwrap();
    fetch(&w, r2.request_id).await;
    assert!(matches!(sign_err(w.phone.approve_sign(r2.request_id).await), SignError::RejectedOnAppliance));
    assert_eq!(rejection(&w, r2.request_id).await, "user_rejected");
    assert_eq!(w.sim.appliance.signatures_made(r2.request_id), 0);
    let log = w.phone.audit_log(20).unwrap();
    assert!(log.iter().filter(|e| e.event.kind() == "sign_rejected").count() >= 2);
}

#[tokio::test]
async fn revoked_pairs_answer_403_from_either_side() {
    let w = World::new(UserScript::Approve).await;
    let (pair_a, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = account(&bindings, &ChainId::Evm(1));

    // Revoked by the SP: octane refuses new requests; the phone learns it on sync and the
    // appliance drops the pair.
    w.sim.sp.revoke(&pair_a).await.unwrap();
    let req = request(pair_a, &acct, PayloadKind::Eip191Message, b"x".to_vec());
    let e = w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap_err();
    assert!(matches!(e, SpClientError::Api { status: 403, code: OctaneErrorCode::PairRevoked, .. }), "{e:?}");
    assert_eq!(w.phone.sync().await.unwrap().revoked, vec![pair_a]);
    assert_eq!(w.phone.list_pairs().unwrap()[0].status, PairStatus::Revoked);
    assert!(w.sim.appliance.pairs().iter().all(|p| p.pair_id != pair_a), "the appliance still holds it");
    assert!(w.phone.sync().await.unwrap().revoked.is_empty());
    // Even a forged request for it is refused by the core.
    let e = sign_err(w.phone.receive_sign_request(&forge(&w, &req)).await);
    assert!(matches!(e, SignError::PairRevoked), "{e:?}");

    // Revoked from the phone: the appliance signs the revocation, octane takes it.
    let (pair_b, _) = w.pair(&[ChainId::Evm(1)]).await;
    w.phone.revoke(pair_b).await.unwrap();
    let p = w.phone.list_pairs().unwrap().into_iter().find(|p| p.pair_id == pair_b).unwrap();
    assert_eq!(p.status, PairStatus::Revoked);
    assert!(w.sim.appliance.pairs().is_empty());
    let req = request(pair_b, &acct, PayloadKind::Eip191Message, b"y".to_vec());
    let e = w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap_err();
    assert!(matches!(e, SpClientError::Api { status: 403, code: OctaneErrorCode::PairRevoked, .. }), "{e:?}");
    let _ = Arc::new(());
}

#[tokio::test]
async fn a_pair_revoked_while_octane_is_unreachable_is_revoked_at_once_and_octane_told_on_sync() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = account(&bindings, &ChainId::Evm(1));
    let offline = w.reopen(|cfg| cfg.octane_url = url::Url::parse("http://127.0.0.1:9").unwrap());
    offline.revoke(pair_id).await.unwrap();
    assert_eq!(w.phone.list_pairs().unwrap()[0].status, PairStatus::Revoked);
    assert!(w.sim.appliance.pairs().is_empty(), "the appliance dropped it");
    assert_eq!(w.phone.store().octane_outbox().unwrap().len(), 1, "the revocation waits for octane");
    // Octane does not know yet: it still takes the SP's request; the phone refuses it.
    let req = request(pair_id, &acct, PayloadKind::Eip191Message, b"x".to_vec());
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    let e = sign_err(w.phone.receive_sign_request(&forge(&w, &req)).await);
    assert!(matches!(e, SignError::PairRevoked), "{e:?}");
    // Back online, sync tells octane: the SP's next request is refused there.
    w.phone.sync().await.unwrap();
    assert!(w.phone.store().octane_outbox().unwrap().is_empty());
    let req = request(pair_id, &acct, PayloadKind::Eip191Message, b"y".to_vec());
    let e = w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap_err();
    assert!(matches!(e, SpClientError::Api { status: 403, code: OctaneErrorCode::PairRevoked, .. }), "{e:?}");
}

#[tokio::test]
async fn no_key_material_lands_in_the_database_after_pair_and_sign() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = account(&bindings, &ChainId::Evm(1));
    let req = request(pair_id, &acct, PayloadKind::Eip191Message, b"hi".to_vec());
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    fetch(&w, req.request_id).await;
    w.phone.approve_sign(req.request_id).await.unwrap();
    let mut bytes = std::fs::read(w.dir.path().join("phone.db")).unwrap();
    if let Ok(wal) = std::fs::read(w.dir.path().join("phone.db-wal")) {
        bytes.extend(wal);
    }
    let text = String::from_utf8_lossy(&bytes).to_lowercase();
    for name in ["app.ed25519", "channel.x25519"] {
        use sunstorm_core::secrets::SecretStore;
        let secret = w.secrets.get(name).unwrap().unwrap();
        assert!(secret.len() >= 32);
        assert!(!bytes.windows(secret.len()).any(|win| win == secret.as_slice()), "{name} raw");
        assert!(!text.contains(&hex::encode(secret.as_slice())), "{name} hex");
    }
}

const ETH: u128 = 1_000_000_000_000_000_000;

fn daily_limit(wei: u128) -> Guardrails {
    let mut g = Guardrails::default();
    g.limits.insert(ChainId::Evm(1), NativeLimits { per_pair: None, per_day: Some(wei) });
    g
}

/// Issue 13, attack 2: two 0.6 ETH requests both passed a 1 ETH daily limit, because a
/// request waiting for the user did not count.
#[tokio::test]
async fn two_waiting_requests_cannot_both_fit_under_one_daily_limit() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = account(&bindings, &ChainId::Evm(1));
    w.phone.set_guardrails(&daily_limit(ETH)).await.unwrap();

    let (_, payload) = eip1559([0x11; 20], 6 * ETH / 10);
    let first = request(pair_id, &acct, PayloadKind::EvmTransaction, payload.clone());
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &first).await.unwrap();
    let shown = fetch(&w, first.request_id).await;
    assert!(!shown.blocked());
    assert_eq!(shown.worst_case_spend, 6 * ETH / 10 + 21_000 * 30_000_000_000);
    // The user has not decided on the first when the second arrives.
    let second = request(pair_id, &acct, PayloadKind::EvmTransaction, payload);
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &second).await.unwrap();
    let p = fetch(&w, second.request_id).await;
    let codes: Vec<&str> = p.violations.iter().map(|v| v.code.as_str()).collect();
    assert_eq!(codes, ["per_day_limit_exceeded"]);
    assert_eq!(rejection(&w, second.request_id).await, "guardrail");
    // The first still goes through.
    w.phone.approve_sign(first.request_id).await.unwrap();
    bundle(&w, first.request_id).await;
    assert_eq!(w.sim.appliance.signatures_made(first.request_id), 1);
    assert_eq!(w.sim.appliance.signatures_made(second.request_id), 0);
}

/// Issue 13, attack 2: a transaction moving no value but allowed 210 ETH of fees passed a
/// 0.01 ETH daily limit.
#[tokio::test]
async fn the_worst_case_fee_counts_against_the_daily_limit() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = account(&bindings, &ChainId::Evm(1));
    w.phone.set_guardrails(&daily_limit(ETH / 100)).await.unwrap();
    // 7,000,000 gas at up to 30,000 gwei.
    let (_, payload) = eip1559_fee([0x11; 20], 0, 7_000_000, 30_000_000_000_000);
    let req = request(pair_id, &acct, PayloadKind::EvmTransaction, payload);
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    let p = fetch(&w, req.request_id).await;
    assert_eq!(p.worst_case_spend, 210 * ETH);
    assert!(p.worst_case_total().starts_with("210"), "{}", p.worst_case_total());
    let codes: Vec<&str> = p.violations.iter().map(|v| v.code.as_str()).collect();
    assert_eq!(codes, ["per_day_limit_exceeded"]);
    assert_eq!(rejection(&w, req.request_id).await, "guardrail");
    assert!(matches!(sign_err(w.phone.approve_sign(req.request_id).await), SignError::Blocked(_)));
    assert_eq!(w.sim.appliance.signatures_made(req.request_id), 0);
}

/// Issue 13, attack 2: settings tightened while a request waited did not apply to it.
#[tokio::test]
async fn tightened_settings_apply_to_a_request_already_waiting() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = account(&bindings, &ChainId::Evm(1));
    let req = request(pair_id, &acct, PayloadKind::EvmTransaction, eip1559([0x11; 20], ETH / 2).1);
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    assert!(!fetch(&w, req.request_id).await.blocked());
    // While it waits, the user sets a 0.1 ETH daily limit; then taps approve.
    w.phone.set_guardrails(&daily_limit(ETH / 10)).await.unwrap();
    match sign_err(w.phone.approve_sign(req.request_id).await) {
        SignError::Blocked(rules) => assert_eq!(rules, ["per_day_limit_exceeded"]),
        other => panic!("approved over the new limit: {other:?}"),
    }
    assert_eq!(rejection(&w, req.request_id).await, "guardrail");
    assert_eq!(w.sim.appliance.signatures_made(req.request_id), 0);
    let rec = w.phone.store().sign_record(req.request_id).unwrap().unwrap();
    assert_eq!(rec.outcome, SignOutcome::Blocked);
    assert!(w.phone.pending_sign_requests(Duration::from_millis(10)).await.unwrap().is_empty());
    let log = w.phone.audit_log(10).unwrap();
    let subject = req.request_id.to_string();
    assert!(log.iter().any(|e| e.event.kind() == "sign_blocked" && e.subject == subject));
    assert!(!log.iter().any(|e| e.event.kind() == "sign_approved"), "blocked before it was approved");
}
