//! Sign requests by push, end to end with the simulators: the SP signs → octane (simulator,
//! loopback HTTP) countersigns → the push is sealed to the phone's push key as octane seals
//! it → a notification extension, on the app's database read-only, shows text naming the
//! SP, the action and the amount → the app takes the same push as its pending request
//! without fetching it again → the user approves → the SP gets the three signatures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, TxKind, U256};
use sunstorm_core::caip::ChainId;
use sunstorm_core::clock::Clock;
use sunstorm_core::model::PayloadKind;
use sunstorm_core::octane::api::{PendingSignRequest, SignResult};
use sunstorm_core::push::{
    seal, seal_for_push, ExtensionConfig, NotificationExtension, NotificationOutcome, PushContent, SuppressReason,
};
use sunstorm_e2e::{sign_request, World};
use sunstorm_sim::appliance::UserScript;

fn send(value_wei: u128) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: 1,
        nonce: 7,
        gas_limit: 21_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::from([0x11; 20])),
        value: U256::from(value_wei),
        access_list: Default::default(),
        input: Default::default(),
    };
    let mut bytes = Vec::new();
    tx.encode_for_signing(&mut bytes);
    bytes
}

fn extension(w: &World) -> NotificationExtension {
    let cfg = w.config();
    let ext = ExtensionConfig {
        db_path: cfg.db_path.clone().unwrap(),
        octane_key: cfg.octane_key,
        metadata_key: cfg.metadata_key,
        shipped_metadata: cfg.shipped_metadata.clone(),
        max_skew_secs: cfg.sign_max_skew_secs,
    };
    NotificationExtension::open_with_clock(ext, w.secrets.as_ref(), w.phone_clock.clone() as std::sync::Arc<dyn Clock>)
        .unwrap()
}

#[tokio::test]
async fn a_pushed_request_notifies_verified_text_and_is_approved_without_a_second_fetch() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = bindings.iter().find(|a| a.chain == ChainId::Evm(1)).unwrap().clone();
    let push_key = w.phone.push_public_key().unwrap();
    let ext = extension(&w);

    let req = sign_request(pair_id, &acct, PayloadKind::EvmTransaction, send(250_000_000_000_000_000));
    let accepted = w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    let delivered = PendingSignRequest { pair_id, request_id: req.request_id, request: accepted.countersigned };
    let sealed = seal_for_push(&push_key, &delivered).unwrap();
    assert!(sealed.carries_request);

    let NotificationOutcome::Show(n) = ext.handle_push(&sealed.bytes).unwrap() else { panic!("not shown") };
    assert_eq!(n.title, format!("{} asks you to sign", w.sim.demo.profile.name));
    assert!(n.body.starts_with("Send ETH: 0.25 ETH."), "{}", n.body);
    assert_eq!((n.request_id, n.expires_at), (req.request_id, req.expires_at));

    // The app takes the push itself: no long-poll happens.
    let pending = w.phone.receive_push(&sealed.bytes).await.unwrap();
    assert_eq!(pending.request_id, req.request_id);
    assert!(!pending.blocked());
    w.phone.approve_sign(req.request_id).await.unwrap();
    match w.sim.sp.await_sign(&req.request_id, Duration::from_secs(5)).await.unwrap() {
        SignResult::Signed { bundle } => {
            assert!(!bundle.sp_sig.is_empty() && !bundle.octane_sig.is_empty() && bundle.appliance_sig.len() == 65)
        }
        other => panic!("not signed: {other:?}"),
    }
    // Handled: the same push again shows nothing, and the extension reads the app's
    // newest writes.
    assert_eq!(
        ext.handle_push(&sealed.bytes).unwrap(),
        NotificationOutcome::Suppress { reason: SuppressReason::Replayed, request_id: Some(req.request_id) }
    );
}

#[tokio::test]
async fn a_push_with_only_the_id_makes_the_app_fetch_it() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = bindings.iter().find(|a| a.chain == ChainId::Evm(1)).unwrap().clone();
    let push_key = w.phone.push_public_key().unwrap();
    let ext = extension(&w);
    let req = sign_request(pair_id, &acct, PayloadKind::EvmTransaction, send(1));
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    let sealed = seal(&push_key, &PushContent::RequestId { pair_id, request_id: req.request_id }).unwrap();
    assert_eq!(ext.handle_push(&sealed).unwrap(), NotificationOutcome::Fetch { pair_id, request_id: req.request_id });
    let pending = w.phone.receive_push(&sealed).await.unwrap();
    assert_eq!(pending.request_id, req.request_id);
}
