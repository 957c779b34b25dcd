//! UI-style tests through the appliance simulator's control API, end to end: the SP asks
//! octane for a signature, the phone reviews it, the user approves on the phone, the test
//! reads the appliance's own screen, checks it names the same amount and recipient as the
//! phone's review, and presses the appliance's button through the API; the SP gets its
//! signatures (or its rejection). Also: a disconnect during a sign, then recovery.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::model::{PayloadKind, SignRequest, STATEMENT_VERSION};
use sunstorm_core::octane::api::SignResult;
use sunstorm_core::sign::{PendingSignature, SignError};
use sunstorm_core::sunstorm::CoreError;
use sunstorm_e2e::World;
use sunstorm_sim::appliance::control::api::PressRequest;
use sunstorm_sim::appliance::control::{self, Client, ControlServer};
use sunstorm_sim::appliance::{RuleAction, RuleMatch, RuleSpec, Screen, ScreenKind, UserScript};
use sunstorm_sim::samples;
use uuid::Uuid;

/// A world whose appliance waits for the control API, which approves pair screens by rule.
async fn world() -> (World, ControlServer, Client) {
    let w = World::new(UserScript::Api).await;
    let server =
        control::serve(w.sim.appliance.clone(), w.sim.link.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let api = Client::new(&server.url()).unwrap();
    api.add_rule(&RuleSpec {
        matcher: RuleMatch { kind: Some(ScreenKind::Pair), ..Default::default() },
        action: RuleAction::Approve,
        after_ms: 0,
        times: None,
    })
    .await
    .unwrap();
    (w, server, api)
}

/// The SP asks `account` to sign 0.05 ETH to 0x4242…4242.
async fn submit_transfer(w: &World, pair_id: Uuid, account: &AccountId) -> SignRequest {
    let now = sunstorm_e2e::now();
    let req = SignRequest {
        v: STATEMENT_VERSION,
        request_id: Uuid::new_v4(),
        pair_id,
        chain: account.chain.clone(),
        account: account.clone(),
        kind: PayloadKind::EvmTransaction,
        payload: samples::eip1559_transfer(1, 0, [0x42; 20], samples::ETHER / 20),
        created_at: now,
        expires_at: now + 300,
    };
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    req
}

/// The phone's review screen of `request_id`.
async fn review(w: &World, request_id: Uuid) -> PendingSignature {
    for _ in 0..10 {
        let pending = w.phone.pending_sign_requests(Duration::from_secs(2)).await.unwrap();
        if let Some(p) = pending.into_iter().find(|p| p.request_id == request_id) {
            return p;
        }
    }
    panic!("request {request_id} never reached the phone");
}

fn phone_row<'a>(p: &'a PendingSignature, key: &str) -> &'a str {
    p.decoded.field_by_key(key).unwrap_or_else(|| panic!("no {key} row on the phone: {:?}", p.decoded.fields))
}

fn appliance_row<'a>(s: &'a Screen, key: &str) -> &'a str {
    s.fields.iter().find(|f| f.key == key).map(|f| f.value.as_str()).unwrap_or_else(|| panic!("no {key} row: {s:?}"))
}

/// The appliance's screen names the same action, amount, recipient and payload as the
/// phone's review — computed by each side from the bytes it verified.
fn same_as_phone(screen: &Screen, p: &PendingSignature) {
    assert_eq!(screen.kind, ScreenKind::Sign);
    assert_eq!(screen.request_id, p.request_id);
    assert_eq!(screen.sp_name, p.sp_name);
    assert_eq!(screen.action, p.decoded.title);
    assert_eq!(appliance_row(screen, "value"), phone_row(p, "value"));
    assert_eq!(appliance_row(screen, "to"), phone_row(p, "to"));
    assert_eq!(screen.amounts, vec![phone_row(p, "value").to_string()]);
    assert_eq!(screen.recipients, p.decoded.facts.recipients);
    assert_eq!(screen.payload_hash.as_deref(), Some(p.decoded.payload_hash.as_str()));
    assert_eq!(screen.accounts, vec![p.account.to_string()]);
}

#[tokio::test]
async fn approve_on_the_phone_then_on_the_appliance_through_the_api_and_the_sp_gets_its_signatures() {
    let (w, _server, api) = world().await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let req = submit_transfer(&w, pair_id, &bindings[0]).await;

    // The phone's review screen.
    let p = review(&w, req.request_id).await;
    assert_eq!(phone_row(&p, "value"), "0.05 ETH");
    assert!(phone_row(&p, "to").eq_ignore_ascii_case("0x4242424242424242424242424242424242424242"));

    // The user approves on the phone; the appliance shows the request and waits for the
    // person at the appliance, who approves after checking the screen.
    let appliance_user = async {
        let screen = api.wait_for_screen(|s| s.request_id == req.request_id, Duration::from_secs(20)).await.unwrap();
        same_as_phone(&screen, &p);
        assert!(screen.text.iter().any(|l| l == "Value: 0.05 ETH"), "{:?}", screen.text);
        assert_eq!(w.sim.appliance.signatures_made(req.request_id), 0, "nothing signs before the press");
        api.approve(&PressRequest { screen_id: Some(screen.id), ..Default::default() }).await.unwrap();
    };
    let (out, ()) = tokio::join!(w.phone.approve_sign(req.request_id), appliance_user);
    let out = out.unwrap();
    match w.sim.sp.await_sign(&req.request_id, Duration::from_secs(10)).await.unwrap() {
        SignResult::Signed { bundle } => assert_eq!(bundle.appliance_sig, out.signature),
        other => panic!("not signed: {other:?}"),
    }
    // Exactly one signature for the approved request id.
    let state = api.state().await.unwrap();
    assert_eq!(state.signatures.len(), 1);
    assert_eq!((state.signatures[0].request_id, state.signatures[0].count), (req.request_id, 1));
}

#[tokio::test]
async fn a_reject_through_the_api_reaches_the_sp_as_a_rejection() {
    let (w, _server, api) = world().await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let req = submit_transfer(&w, pair_id, &bindings[0]).await;
    let p = review(&w, req.request_id).await;
    let appliance_user = async {
        let screen = api.wait_for_screen(|s| s.request_id == req.request_id, Duration::from_secs(20)).await.unwrap();
        same_as_phone(&screen, &p);
        api.reject(&PressRequest::default()).await.unwrap();
    };
    let (approved, ()) = tokio::join!(w.phone.approve_sign(req.request_id), appliance_user);
    match approved {
        Err(CoreError::Sign(SignError::RejectedOnAppliance)) => {}
        other => panic!("expected a rejection on the appliance, got {other:?}"),
    }
    match w.sim.sp.await_sign(&req.request_id, Duration::from_secs(10)).await.unwrap() {
        SignResult::Rejected { reason_code, .. } => assert_eq!(reason_code, "user_rejected"),
        other => panic!("not rejected: {other:?}"),
    }
    assert!(api.state().await.unwrap().signatures.is_empty());
    assert_eq!(w.sim.appliance.signatures_made(req.request_id), 0);
}

#[tokio::test]
async fn a_disconnect_during_a_sign_then_recovery_the_sp_gets_one_signature() {
    let (w, _server, api) = world().await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let req = submit_transfer(&w, pair_id, &bindings[0]).await;
    review(&w, req.request_id).await;
    let appliance_user = async {
        api.wait_for_screen(|s| s.request_id == req.request_id, Duration::from_secs(20)).await.unwrap();
        // The link drops while the appliance waits for its user; the phone reconnects and
        // sends the same request again; the screen stayed.
        assert!(api.disconnect().await.unwrap() >= 1);
        let mut back = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if api.faults().await.unwrap().open_connections > 0 {
                back = true;
                break;
            }
        }
        assert!(back, "the phone did not reconnect");
        assert_eq!(api.screen().await.unwrap().screen.map(|s| s.request_id), Some(req.request_id));
        api.approve(&PressRequest { request_id: Some(req.request_id), ..Default::default() }).await.unwrap();
    };
    let (approved, ()) = tokio::join!(w.phone.approve_sign(req.request_id), appliance_user);
    approved.unwrap();
    assert!(matches!(
        w.sim.sp.await_sign(&req.request_id, Duration::from_secs(10)).await.unwrap(),
        SignResult::Signed { .. }
    ));
    assert_eq!(w.sim.appliance.signatures_made(req.request_id), 1);
    assert_eq!(w.sim.appliance.total_signatures(), 1);
}
