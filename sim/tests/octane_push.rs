//! Octane pushes routed sign requests through the push gateway simulator: the phone
//! registers a push target with core's octane client, the SP submits, and the gateway
//! records an APNs- or FCM-shaped request whose sealed payload opens (core's `unseal`, the
//! phone's push key) to the very request the phone would poll — or to its ids when it is
//! too big. The gateway's failures drive octane: 410 drops the token, 429/503 are retried,
//! 413 sends the ids only.

// Test helpers outside #[test] functions may unwrap too (clippy.toml covers only the tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use ed25519_dalek::SigningKey;
use serde_json::json;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::AccountId;
use sunstorm_core::envelope::{Domain, SignedEnvelope};
use sunstorm_core::model::{AppEndorsement, PairAttestation, PayloadKind, SignRequest, STATEMENT_VERSION};
use sunstorm_core::octane::api::{CreateSessionRequest, PendingSignRequest, PushPlatform, PushTargetRequest};
use sunstorm_core::octane::client::{AppCredentials, OctaneClient, OctaneConfig, OctaneError};
use sunstorm_core::push::{unseal, PushContent, PushKeyPair};
use sunstorm_sim::octane::{ManualClock, OctaneSim, OctaneSimConfig, OctaneSimHandle, PushConfig};
use sunstorm_sim::push_gateway::{
    FailureKind, FailureRule, PushGatewayConfig, PushGatewayHandle, PushGatewaySim, ReceivedPush,
};
use sunstorm_sim::sp::SpClient;
use uuid::Uuid;

const NOW: u64 = 1_800_000_000;
/// Longest a test waits for the gateway to see a push (a bound, not a timing goal).
const WAIT: Duration = Duration::from_secs(20);

struct Env {
    octane: OctaneSimHandle,
    gateway: PushGatewayHandle,
    clock: Arc<ManualClock>,
    sp: SpClient,
    sp_key: SigningKey,
}

async fn env_with(max_attempts: u32) -> Env {
    env_with_backoff(max_attempts, Duration::from_millis(20)).await
}

async fn env_with_backoff(max_attempts: u32, first_backoff: Duration) -> Env {
    let gateway = PushGatewaySim::start(PushGatewayConfig::default()).await.unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let push = PushConfig { first_backoff, max_attempts, ..PushConfig::new(url::Url::parse(&gateway.url).unwrap()) };
    let octane = OctaneSim::start(OctaneSimConfig {
        seed: Some([7; 32]),
        clock: clock.clone(),
        push: Some(push),
        ..Default::default()
    })
    .await
    .unwrap();
    let demo = octane.demo_sp.clone();
    let sp = SpClient::new(&octane.url, &demo.api_key).unwrap();
    Env { octane, gateway, clock, sp, sp_key: demo.signing_key }
}

async fn env() -> Env {
    env_with(5).await
}

/// A phone of the test appliance: its octane client (core's) and its push key.
struct Phone {
    client: OctaneClient,
    push_key: PushKeyPair,
    app_key: Key32,
}

fn appliance() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn wallet() -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_bytes(&[0x11; 32].into()).unwrap()
}

fn account() -> AccountId {
    AccountId::evm(1, sunstorm_core::payload::address_of(wallet().verifying_key()))
}

fn phone(e: &Env, seed: u8) -> Phone {
    let app_key = SigningKey::from_bytes(&[seed; 32]);
    let endorsement = SignedEnvelope::seal(
        Domain::AppEndorsement,
        &appliance(),
        &AppEndorsement {
            v: STATEMENT_VERSION,
            app_key: Key32(app_key.verifying_key().to_bytes()),
            appliance_identity: Key32(appliance().verifying_key().to_bytes()),
            issued_at: NOW,
        },
    )
    .unwrap();
    let cfg = OctaneConfig::new(url::Url::parse(&e.octane.url).unwrap(), e.octane.octane_public_key);
    let http = OctaneClient::reqwest_transport(&cfg).unwrap();
    let pk = Key32(app_key.verifying_key().to_bytes());
    let client = OctaneClient::new(cfg, AppCredentials { app_key, endorsement }, e.clock.clone(), http).unwrap();
    Phone { client, push_key: PushKeyPair::generate().unwrap(), app_key: pk }
}

/// Pairs the test appliance with the demo SP through `p` (code, then attestation).
async fn pair(e: &Env, p: &Phone) -> Uuid {
    let s =
        e.sp.create_session(&CreateSessionRequest {
            sp_user_ref: "alice@sp".into(),
            chains: vec![sunstorm_core::caip::ChainId::Evm(1)],
            return_url: None,
            ttl_secs: None,
        })
        .await
        .unwrap();
    p.client
        .check_code(&s.session_id, &sunstorm_core::code::ValidationCode::parse(&s.validation_code).unwrap())
        .await
        .unwrap();
    let att = PairAttestation {
        v: STATEMENT_VERSION,
        pair_id: Uuid::new_v4(),
        session_id: s.session_id.clone(),
        validation_code: s.validation_code.clone(),
        sp_id: "demo-sp".into(),
        sp_public_key: Key32(e.sp_key.verifying_key().to_bytes()),
        bindings: vec![account()],
        appliance_identity: Key32(appliance().verifying_key().to_bytes()),
        approved_at: NOW,
    };
    let env = SignedEnvelope::seal(Domain::PairAttestation, &appliance(), &att).unwrap();
    p.client.approve(&s.session_id, &env).await.unwrap().pair_id
}

fn request(pair_id: Uuid, payload: Vec<u8>) -> SignRequest {
    SignRequest {
        v: STATEMENT_VERSION,
        request_id: Uuid::new_v4(),
        pair_id,
        chain: account().chain.clone(),
        account: account(),
        kind: PayloadKind::Eip191Message,
        payload,
        created_at: NOW,
        expires_at: NOW + 120,
    }
}

const APNS_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const APNS_TOKEN_2: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
const FCM_TOKEN: &str = "cT9x-fcm:APA91bH_example.token-1234567890";

async fn register(p: &Phone, platform: PushPlatform, token: &str) {
    let req = PushTargetRequest { platform, token: token.into(), push_key: p.push_key.public_key() };
    let got = p.client.register_push_target(&req).await.unwrap();
    assert_eq!(got.target.as_ref().map(|t| t.token.as_str()), Some(token));
}

/// Submits `req` as the SP and returns what the phone would poll for it.
async fn submit(e: &Env, req: &SignRequest) -> PendingSignRequest {
    let accepted = e.sp.submit_sign(&e.sp_key, req).await.unwrap();
    PendingSignRequest { pair_id: req.pair_id, request_id: req.request_id, request: accepted.countersigned }
}

fn opened(p: &Phone, r: &ReceivedPush) -> PushContent {
    let text = r.sealed.as_deref().expect("a sealed payload in the push");
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).unwrap();
    unseal(&p.push_key, &bytes).unwrap()
}

#[tokio::test]
async fn a_routed_request_is_pushed_in_apns_shape_and_opens_to_the_same_signed_request() {
    let e = env().await;
    let p = phone(&e, 2);
    let pair_id = pair(&e, &p).await;
    register(&p, PushPlatform::Apns, APNS_TOKEN).await;

    let req = request(pair_id, b"hello sigil".to_vec());
    let pending = submit(&e, &req).await;
    let got = e.gateway.wait_received(1, WAIT).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let push = &got[0];
    assert!(push.delivered());
    assert_eq!((push.platform, push.token.as_str()), (PushPlatform::Apns, APNS_TOKEN));
    assert_eq!(push.headers["apns-push-type"], "alert");
    assert_eq!(push.headers["apns-priority"], "10");
    assert_eq!(push.headers["apns-collapse-id"], req.request_id.to_string());
    assert_eq!(push.headers["apns-expiration"], req.expires_at.to_string());
    assert_eq!(push.headers["apns-topic"], sunstorm_sim::octane::DEFAULT_APNS_TOPIC);
    assert_eq!(push.body["aps"]["mutable-content"], 1);
    // The push service sees no request detail: only placeholder text and sealed bytes.
    assert!(!push.body.to_string().contains("hello"));
    assert!(serde_json::to_vec(&push.body).unwrap().len() <= 4096);

    // The phone opens it to exactly what polling gives, both signatures intact.
    assert_eq!(opened(&p, push), PushContent::Request(pending.clone()));
    let polled = p.client.pending_sign_requests(Duration::ZERO).await.unwrap();
    assert_eq!(polled, vec![pending.clone()]);
    let sp_pk = Key32(e.sp_key.verifying_key().to_bytes());
    assert_eq!(pending.request.verify(&sp_pk, &e.octane.octane_public_key).unwrap(), req);
    // Another phone's key does not open it.
    let stranger = PushKeyPair::generate().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD.decode(push.sealed.as_deref().unwrap()).unwrap();
    assert!(unseal(&stranger, &bytes).is_err());
}

#[tokio::test]
async fn fcm_targets_get_a_high_priority_data_message_with_the_request_ttl() {
    let e = env().await;
    let p = phone(&e, 2);
    let pair_id = pair(&e, &p).await;
    register(&p, PushPlatform::Fcm, FCM_TOKEN).await;
    let req = request(pair_id, b"hello fcm".to_vec());
    let pending = submit(&e, &req).await;
    let got = e.gateway.wait_received(1, WAIT).await;
    let push = &got[0];
    assert!(push.delivered(), "{push:?}");
    assert_eq!(
        (push.platform, push.project.as_deref()),
        (PushPlatform::Fcm, Some(sunstorm_sim::octane::DEFAULT_FCM_PROJECT))
    );
    let m = &push.body["message"];
    assert_eq!(m["token"], FCM_TOKEN);
    assert_eq!(m["android"]["priority"], "high");
    assert_eq!(m["android"]["ttl"], "120s");
    assert_eq!(m["android"]["collapse_key"], req.request_id.to_string());
    assert!(m.get("notification").is_none(), "a data message: the app verifies before showing anything");
    assert_eq!(opened(&p, push), PushContent::Request(pending));
}

#[tokio::test]
async fn a_request_too_big_for_4_kb_goes_as_its_ids_only() {
    let e = env().await;
    let p = phone(&e, 2);
    let pair_id = pair(&e, &p).await;
    register(&p, PushPlatform::Apns, APNS_TOKEN).await;
    let req = request(pair_id, vec![b'x'; 6000]);
    submit(&e, &req).await;
    let got = e.gateway.wait_received(1, WAIT).await;
    assert!(got[0].delivered(), "{:?}", got[0]);
    assert_eq!(opened(&p, &got[0]), PushContent::RequestId { pair_id, request_id: req.request_id });
    // The phone then fetches it by polling.
    let polled = p.client.pending_sign_requests(Duration::ZERO).await.unwrap();
    assert_eq!(polled.iter().map(|r| r.request_id).collect::<Vec<_>>(), vec![req.request_id]);
}

#[tokio::test]
async fn payload_too_large_from_the_service_is_sent_again_as_ids() {
    let e = env().await;
    let p = phone(&e, 2);
    let pair_id = pair(&e, &p).await;
    register(&p, PushPlatform::Fcm, FCM_TOKEN).await;
    e.gateway.inject(FailureRule { kind: FailureKind::TooLarge, token: Some(FCM_TOKEN.into()), count: Some(1) });
    let req = request(pair_id, b"small".to_vec());
    submit(&e, &req).await;
    let got = e.gateway.wait_received(2, WAIT).await;
    assert_eq!(got.iter().map(|r| r.status).collect::<Vec<_>>(), vec![400, 200]);
    assert_eq!(
        opened(&p, &got[0]),
        PushContent::Request(PendingSignRequest {
            pair_id,
            request_id: req.request_id,
            request: p.client.pending_sign_requests(Duration::ZERO).await.unwrap()[0].request.clone(),
        })
    );
    assert_eq!(opened(&p, &got[1]), PushContent::RequestId { pair_id, request_id: req.request_id });
}

/// Waits until octane holds `n` push targets.
async fn wait_targets(e: &Env, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while e.octane.push_targets().len() != n {
        assert!(tokio::time::Instant::now() < deadline, "octane still holds {:?}", e.octane.push_targets());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unregistered_drops_the_token_and_later_requests_are_not_pushed_to_it() {
    let e = env().await;
    let p = phone(&e, 2);
    let pair_id = pair(&e, &p).await;
    register(&p, PushPlatform::Apns, APNS_TOKEN).await;
    e.gateway.inject(FailureRule { kind: FailureKind::Unregistered, token: Some(APNS_TOKEN.into()), count: None });
    submit(&e, &request(pair_id, b"one".to_vec())).await;
    let got = e.gateway.wait_received(1, WAIT).await;
    assert_eq!((got[0].status, got[0].reason.as_deref()), (410, Some("Unregistered")));
    wait_targets(&e, 0).await;
    // The app learns it and can register its new token.
    assert_eq!(p.client.push_target().await.unwrap().target, None);

    // A second phone of the same appliance still gets pushes; the dropped token none.
    let q = phone(&e, 3);
    register(&q, PushPlatform::Fcm, FCM_TOKEN).await;
    let second = request(pair_id, b"two".to_vec());
    submit(&e, &second).await;
    let got = e.gateway.wait_received(2, WAIT).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[1].token.as_str(), got[1].status), (FCM_TOKEN, 200));
    assert_eq!(opened(&q, &got[1]).request_id(), second.request_id);
    assert_eq!(e.gateway.received().iter().filter(|r| r.token == APNS_TOKEN).count(), 1);
}

#[tokio::test]
async fn throttling_and_outages_are_retried_then_delivered() {
    let e = env().await;
    let p = phone(&e, 2);
    let pair_id = pair(&e, &p).await;
    register(&p, PushPlatform::Apns, APNS_TOKEN).await;
    e.gateway.inject(FailureRule { kind: FailureKind::TooManyRequests, token: None, count: Some(1) });
    e.gateway.inject(FailureRule { kind: FailureKind::Unavailable, token: None, count: Some(1) });
    let req = request(pair_id, b"retry me".to_vec());
    let pending = submit(&e, &req).await;
    let got = e.gateway.wait_received(3, WAIT).await;
    assert_eq!(got.iter().map(|r| r.status).collect::<Vec<_>>(), vec![429, 503, 200]);
    assert_eq!(opened(&p, &got[2]), PushContent::Request(pending));
    // The target stays.
    assert_eq!(e.octane.push_targets().len(), 1);
}

#[tokio::test]
async fn retries_are_bounded_and_keep_the_target() {
    let e = env_with(3).await;
    let p = phone(&e, 2);
    let pair_id = pair(&e, &p).await;
    register(&p, PushPlatform::Fcm, FCM_TOKEN).await;
    e.gateway.inject(FailureRule { kind: FailureKind::Internal, token: Some(FCM_TOKEN.into()), count: None });
    let first = request(pair_id, b"never arrives".to_vec());
    submit(&e, &first).await;
    let got = e.gateway.wait_received(3, WAIT).await;
    assert_eq!(got.iter().map(|r| r.status).collect::<Vec<_>>(), vec![500, 500, 500]);
    assert_eq!(e.octane.push_targets().len(), 1);
    // The service recovers: the next request arrives, and the first is still there to poll.
    e.gateway.clear_failures();
    let second = request(pair_id, b"arrives".to_vec());
    submit(&e, &second).await;
    let got = e.gateway.wait_received(4, WAIT).await;
    assert_eq!(got.len(), 4, "no fourth attempt at the first request: {got:?}");
    assert_eq!((got[3].status, opened(&p, &got[3]).request_id()), (200, second.request_id));
    let polled = p.client.pending_sign_requests(Duration::ZERO).await.unwrap();
    assert_eq!(polled.len(), 2);
}

#[tokio::test]
async fn a_stopped_octane_abandons_the_pushes_it_was_retrying() {
    let e = env_with_backoff(5, Duration::from_secs(1)).await;
    let p = phone(&e, 2);
    let pair_id = pair(&e, &p).await;
    register(&p, PushPlatform::Apns, APNS_TOKEN).await;
    e.gateway.inject(FailureRule { kind: FailureKind::Unavailable, token: None, count: None });
    submit(&e, &request(pair_id, b"octane stops meanwhile".to_vec())).await;
    assert_eq!(e.gateway.wait_received(1, WAIT).await.len(), 1);
    let Env { octane, gateway, .. } = e;
    octane.shutdown().await;
    // The retry was due 1 s after the first attempt (a margin for a loaded machine to stop
    // octane before it), the next 2 s after that: a stopped octane sends neither.
    let got = gateway.wait_received(2, Duration::from_millis(2500)).await;
    assert_eq!(got.iter().map(|r| r.status).collect::<Vec<_>>(), vec![503], "{got:?}");
}

#[tokio::test]
async fn rotation_replaces_the_token_and_removal_stops_pushes() {
    let e = env().await;
    let p = phone(&e, 2);
    let pair_id = pair(&e, &p).await;
    register(&p, PushPlatform::Apns, APNS_TOKEN).await;
    register(&p, PushPlatform::Apns, APNS_TOKEN_2).await;
    let held = e.octane.push_targets();
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].1, held[0].2.token.as_str()), (p.app_key, APNS_TOKEN_2));
    let first = request(pair_id, b"to the new token".to_vec());
    submit(&e, &first).await;
    let got = e.gateway.wait_received(1, WAIT).await;
    assert_eq!((got[0].token.as_str(), got[0].status), (APNS_TOKEN_2, 200));

    // Removed: idempotent, and no push for later requests (a second phone shows they are
    // still pushed to phones that kept theirs).
    assert!(p.client.remove_push_target().await.unwrap().removed);
    assert!(!p.client.remove_push_target().await.unwrap().removed);
    assert_eq!(p.client.push_target().await.unwrap().target, None);
    let q = phone(&e, 3);
    register(&q, PushPlatform::Fcm, FCM_TOKEN).await;
    let second = request(pair_id, b"after removal".to_vec());
    submit(&e, &second).await;
    let got = e.gateway.wait_received(2, WAIT).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].token, FCM_TOKEN);
    assert_eq!(
        e.gateway.received().iter().filter(|r| r.token.starts_with("a1b2") || r.token == APNS_TOKEN_2).count(),
        1
    );

    // A token moving to another phone (reinstalled app, new app key) leaves the first one.
    register(&p, PushPlatform::Fcm, FCM_TOKEN).await;
    let held = e.octane.push_targets();
    assert_eq!(held.iter().map(|t| t.1).collect::<Vec<_>>(), vec![p.app_key]);
}

#[tokio::test]
async fn registration_checks_the_token_and_the_caller() {
    let e = env().await;
    let p = phone(&e, 2);
    pair(&e, &p).await;
    for (platform, token) in [
        (PushPlatform::Apns, "not-hex"),
        (PushPlatform::Apns, "abc"),
        (PushPlatform::Apns, ""),
        (PushPlatform::Fcm, "has space"),
        (PushPlatform::Fcm, "a/../b"),
    ] {
        let err = p
            .client
            .register_push_target(&PushTargetRequest {
                platform,
                token: token.into(),
                push_key: p.push_key.public_key(),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, OctaneError::Refused { code, .. } if code.as_str() == "bad_request"),
            "{token}: {err:?}"
        );
    }
    let long = "a".repeat(sunstorm_core::octane::api::MAX_PUSH_TOKEN_LEN + 2);
    let err = p
        .client
        .register_push_target(&PushTargetRequest {
            platform: PushPlatform::Apns,
            token: long,
            push_key: p.push_key.public_key(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, OctaneError::Refused { .. }));
    // A low-order X25519 point as the push key: whatever octane sealed to it would open
    // with an all-zero shared secret anyone can compute. u = 0 and u = 1, and u = 1 with
    // the (ignored) top bit set.
    let mut one_high = [0u8; 32];
    one_high[0] = 1;
    one_high[31] = 0x80;
    let mut one = [0u8; 32];
    one[0] = 1;
    for low_order in [[0u8; 32], one, one_high] {
        let err = p
            .client
            .register_push_target(&PushTargetRequest {
                platform: PushPlatform::Apns,
                token: APNS_TOKEN.into(),
                push_key: sunstorm_core::push::PushPublicKey(Key32(low_order)),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, OctaneError::Refused { code, .. } if code.as_str() == "bad_request"),
            "{low_order:?}: {err:?}"
        );
    }
    assert!(e.octane.push_targets().is_empty());
    // Without the app's signature: 401.
    let resp = reqwest::Client::new()
        .post(format!("{}/app/push/target", e.octane.url))
        .json(&json!({"platform": "apns", "token": APNS_TOKEN, "push_key": "00".repeat(32)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn without_a_gateway_nothing_is_pushed_and_polling_still_works() {
    let e = env().await;
    let plain = OctaneSim::start(OctaneSimConfig { seed: Some([7; 32]), clock: e.clock.clone(), ..Default::default() })
        .await
        .unwrap();
    let sp = SpClient::new(&plain.url, &plain.demo_sp.api_key).unwrap();
    let e2 = Env { octane: plain, gateway: e.gateway, clock: e.clock.clone(), sp, sp_key: e.sp_key.clone() };
    let p = phone(&e2, 2);
    let pair_id = pair(&e2, &p).await;
    register(&p, PushPlatform::Apns, APNS_TOKEN).await;
    let req = request(pair_id, b"poll me".to_vec());
    submit(&e2, &req).await;
    let polled = p.client.pending_sign_requests(Duration::ZERO).await.unwrap();
    assert_eq!(polled.len(), 1);
    assert!(e2.gateway.received().is_empty());
}

#[tokio::test]
async fn a_phone_its_appliance_forgot_gets_no_push() {
    let e = env().await;
    let p = phone(&e, 2);
    let pair_id = pair(&e, &p).await;
    register(&p, PushPlatform::Apns, APNS_TOKEN).await;
    let q = phone(&e, 3);
    register(&q, PushPlatform::Fcm, FCM_TOKEN).await;
    // The appliance forgets phone p; phone q relays its statement.
    let statement = SignedEnvelope::seal(
        Domain::PhoneForgotten,
        &appliance(),
        &sunstorm_core::model::PhoneForgotten {
            v: STATEMENT_VERSION,
            app_key: p.app_key,
            appliance_identity: Key32(appliance().verifying_key().to_bytes()),
            forgotten_by: Some(q.app_key),
            forgotten_at: NOW,
        },
    )
    .unwrap();
    q.client.forget_phone(&statement).await.unwrap();
    let req = request(pair_id, b"only for q".to_vec());
    submit(&e, &req).await;
    let got = e.gateway.wait_received(1, WAIT).await;
    assert_eq!((got[0].token.as_str(), got[0].status), (FCM_TOKEN, 200));
    assert_eq!(opened(&q, &got[0]).request_id(), req.request_id);
    // A second request still reaches q alone.
    submit(&e, &request(pair_id, b"again".to_vec())).await;
    let got = e.gateway.wait_received(2, WAIT).await;
    assert!(got.iter().all(|r| r.token == FCM_TOKEN), "{got:?}");
}
