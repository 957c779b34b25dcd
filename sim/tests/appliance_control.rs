//! The appliance simulator's control API over real loopback HTTP, with the phone's appliance
//! client on the simulated GATT link: the screen the appliance computes, presses, rules,
//! run-time faults (a disconnect during a sign, refused connections), bonding mode, state,
//! reset, and the API's refusals of bad input (with property tests of its parsers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use sunstorm_core::appliance::client::{bond, ApplianceClient, ClientConfig};
use sunstorm_core::appliance::{ApplianceApi, ApplianceError};
use sunstorm_core::ble::channel::{self, BondRecord};
use sunstorm_core::ble::framing::FramingConfig;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::envelope::{self, Domain, SignedEnvelope};
use sunstorm_core::model::{CountersignedRequest, PairSessionDetails, PayloadKind, SignRequest, SpProfile};
use sunstorm_core::payload;
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_sim::appliance::control::api::{
    self, BondingOpen, ControlErrorCode, FaultSettings, PressRequest, UserMode, UserSetting,
};
use sunstorm_sim::appliance::control::{self, is_loopback_host, parse_id, Client, ClientError, ControlServer};
use sunstorm_sim::appliance::{
    Answer, AnsweredBy, ApplianceSim, ApplianceSimConfig, EventType, RuleAction, RuleMatch, RuleSpec, ScreenKind,
    UserScript,
};
use sunstorm_sim::link::{SimConnector, SimLinkConfig};
use sunstorm_sim::samples;
use uuid::Uuid;

fn octane() -> SigningKey {
    SigningKey::from_bytes(&[1u8; 32])
}
fn sp() -> SigningKey {
    SigningKey::from_bytes(&[2u8; 32])
}
fn now() -> u64 {
    sunstorm_core::clock::now_unix()
}

/// The recipient of the sample transfer: 0x4242…4242.
const TO: [u8; 20] = [0x42; 20];

fn fast_framing() -> FramingConfig {
    FramingConfig { reassembly_timeout: Duration::from_millis(100), ..FramingConfig::default() }
}

fn client_cfg() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_millis(600),
        handshake_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(2),
        max_retries: 8,
        max_resends: 8,
        retry_backoff: Duration::from_millis(20),
        framing: fast_framing(),
        bond_retry: channel::BondRetry { resend_after: Duration::from_millis(300), max_resends: 8 },
    }
}

/// An appliance whose user waits for the API, its control server, the link it serves, and
/// a bonded phone's client.
struct Rig {
    sim: ApplianceSim,
    link: SimLinkConfig,
    server: ControlServer,
    api: Client,
    connector: Arc<SimConnector>,
    store: MemorySecretStore,
    bond: BondRecord,
}

impl Rig {
    async fn new(seed: u8) -> Rig {
        let sim = ApplianceSim::new(ApplianceSimConfig {
            seed: vec![seed; 32],
            pin: Some("123456".into()),
            octane_key: Key32(octane().verifying_key().to_bytes()),
            user: UserScript::Api,
            framing: fast_framing(),
            keepalive: Duration::from_millis(200),
            handshake_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(5),
            ..ApplianceSimConfig::default()
        })
        .unwrap();
        let link = SimLinkConfig::default();
        let (connector, acceptor) = SimConnector::new(link.clone());
        sim.spawn_acceptor(acceptor);
        let server = control::serve(sim.clone(), link.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let api = Client::new(&server.url()).unwrap();
        let connector = Arc::new(connector);
        let store = MemorySecretStore::default();
        let bond = bond(connector.as_ref(), "123456", &store, "test phone").await.unwrap();
        Rig { sim, link, server, api, connector, store, bond }
    }

    fn phone(&self) -> ApplianceClient {
        ApplianceClient::new(self.connector.clone(), self.bond.clone(), &self.store, client_cfg()).unwrap()
    }

    fn evm(&self) -> AccountId {
        self.sim.wallets().into_iter().find(|a| a.chain == ChainId::Evm(1)).unwrap()
    }
}

fn session(chains: Vec<ChainId>) -> SignedEnvelope {
    let details = PairSessionDetails {
        v: 1,
        session_id: "sess-1".into(),
        sp: SpProfile {
            sp_id: "sp-1".into(),
            name: "Example SP".into(),
            logo_url: "https://sp.example/logo.png".into(),
            homepage: "https://sp.example".into(),
            public_key: Key32(sp().verifying_key().to_bytes()),
            allowed_return_origins: vec!["https://sp.example".into()],
        },
        sp_user_ref: "alice".into(),
        requested_chains: chains,
        return_url: None,
        created_at: now(),
        expires_at: now() + 300,
    };
    SignedEnvelope::seal(Domain::OctaneSession, &octane(), &details).unwrap()
}

fn sign_request(
    pair_id: Uuid,
    account: &AccountId,
    kind: PayloadKind,
    payload: Vec<u8>,
) -> (CountersignedRequest, SignRequest) {
    let req = SignRequest {
        v: 1,
        request_id: Uuid::new_v4(),
        pair_id,
        chain: account.chain.clone(),
        account: account.clone(),
        kind,
        payload,
        created_at: now(),
        expires_at: now() + 300,
    };
    let body = sunstorm_core::cbor::to_vec(&req).unwrap();
    let sp_sig = envelope::sign_bytes(Domain::SpSignRequest, &sp(), &body).to_vec();
    let octane_sig = envelope::sign_bytes(Domain::OctaneSignRequest, &octane(), &body).to_vec();
    (CountersignedRequest { body, sp_sig, octane_sig }, req)
}

/// 0.05 ETH to 0x4242…4242 on Ethereum.
fn transfer(pair_id: Uuid, acct: &AccountId) -> (CountersignedRequest, SignRequest) {
    sign_request(pair_id, acct, PayloadKind::EvmTransaction, samples::eip1559_transfer(1, 0, TO, samples::ETHER / 20))
}

fn check_signature(req: &SignRequest, sig: &[u8]) {
    let target = payload::signing_target(req.kind, &req.payload, &req.chain).unwrap();
    payload::verify_appliance_signature(&target, sig, &req.account).unwrap();
}

const RECIPIENT: &str = "0x4242424242424242424242424242424242424242";

#[tokio::test]
async fn the_appliance_shows_what_it_verified_and_signs_once_when_approved_through_the_api() {
    let rig = Rig::new(21).await;
    let phone = Arc::new(rig.phone());
    let pair_id = pair_with(&rig, &phone).await;

    let (csr, req) = transfer(pair_id, &rig.evm());
    let p = phone.clone();
    let c = csr.clone();
    let signing = tokio::spawn(async move { p.sign(&c, None).await });
    let screen = rig.api.wait_for_screen(|s| s.request_id == req.request_id, Duration::from_secs(10)).await.unwrap();
    // Computed by the appliance from the payload it verified.
    assert_eq!(screen.kind, ScreenKind::Sign);
    assert_eq!(screen.sp_name, "Example SP");
    assert_eq!(screen.action, "Send ETH");
    assert_eq!(screen.chain.as_deref(), Some("eip155:1"));
    assert_eq!(screen.accounts, vec![rig.evm().to_string()]);
    assert_eq!(screen.amounts, vec!["0.05 ETH".to_string()]);
    assert_eq!(screen.recipients.len(), 1);
    assert_eq!(screen.recipients[0].to_lowercase(), RECIPIENT);
    assert!(screen.text.iter().any(|l| l == "Value: 0.05 ETH"), "{:?}", screen.text);
    assert!(!screen.blind);
    // The same rows the core's decoder gives for these bytes (what a phone shows).
    let decoded = sunstorm_core::decode::decode(req.kind, &req.payload, &req.account).unwrap();
    assert_eq!(screen.payload_hash.as_deref(), Some(decoded.payload_hash.as_str()));
    assert_eq!(screen.fields.len(), decoded.fields.len());
    let (shown, waiting) = rig.sim.screen();
    assert_eq!(shown.map(|s| s.id), Some(screen.id));
    assert_eq!(waiting, 0);

    // Nothing answers until the API does.
    assert!(!signing.is_finished());
    let pressed =
        rig.api.approve(&PressRequest { request_id: Some(req.request_id), ..Default::default() }).await.unwrap();
    assert_eq!(pressed.answer, Answer::Approved);
    assert_eq!(pressed.screen.id, screen.id);
    let sig = signing.await.unwrap().unwrap();
    check_signature(&req, &sig);
    assert!(rig.api.screen().await.unwrap().screen.is_none());

    // Asked again with the same id: the first answer, nothing shown, no second signature.
    assert_eq!(phone.sign(&csr, None).await.unwrap(), sig);
    let state = rig.api.state().await.unwrap();
    let mine: Vec<_> = state.signatures.iter().filter(|s| s.request_id == req.request_id).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].count, 1);
    assert_eq!(state.total_signatures, 1);
    assert_eq!(state.pairs.len(), 1);
    assert_eq!(state.pairs[0].pair_id, pair_id);
    assert_eq!(state.bonded_phones.len(), 1);
    assert_eq!(state.bonded_phones[0].name, "test phone");
    // A phone that enrolled no approval key: its pairs need no approval proof.
    assert_eq!(state.bonded_phones[0].approval_key, None);
    assert_eq!((state.pairs[0].approval_policy.as_str(), state.pairs[0].approval_above.as_deref()), ("never", None));

    // The log tells the story in order.
    let page = rig.api.events(0, 0).await.unwrap();
    let kinds: Vec<EventType> = page.events.iter().map(|e| e.kind).collect();
    let pos = |k: EventType, from: usize| kinds.iter().skip(from).position(|x| *x == k).map(|p| p + from);
    let shown_at = pos(EventType::ScreenShown, pos(EventType::PairApproved, 0).unwrap()).unwrap();
    let answered_at = pos(EventType::ScreenAnswered, shown_at).unwrap();
    let signed_at = pos(EventType::SignatureMade, answered_at).unwrap();
    assert!(shown_at < answered_at && answered_at < signed_at, "{kinds:?}");
    let answered = &page.events[answered_at];
    assert_eq!((answered.answer, answered.by), (Some(Answer::Approved), Some(AnsweredBy::Api)));
    assert_eq!(page.events[signed_at].request_id, Some(req.request_id));
}

/// Pairs `phone` (shared) with the rig's appliance, approving through the API.
async fn pair_with(rig: &Rig, phone: &Arc<ApplianceClient>) -> Uuid {
    let env = session(vec![ChainId::Evm(1)]);
    let acct = rig.evm();
    let p = phone.clone();
    let task = tokio::spawn(async move { p.approve_pair(Uuid::new_v4(), &env, "123456", &[acct], None).await });
    let screen = rig.api.wait_for_screen(|s| s.kind == ScreenKind::Pair, Duration::from_secs(10)).await.unwrap();
    assert_eq!(screen.action, "Pair with Example SP");
    assert!(screen.text.iter().any(|l| l == "Code: 123456"), "{:?}", screen.text);
    assert_eq!(screen.accounts, vec![rig.evm().to_string()]);
    rig.api.approve(&PressRequest::default()).await.unwrap();
    let att = task.await.unwrap().unwrap();
    let att: sunstorm_core::model::PairAttestation =
        att.open(Domain::PairAttestation, rig.sim.identity().as_bytes()).unwrap();
    att.pair_id
}

#[tokio::test]
async fn a_reject_through_the_api_reaches_the_phone_and_nothing_is_signed() {
    let rig = Rig::new(22).await;
    let phone = Arc::new(rig.phone());
    let pair_id = pair_with(&rig, &phone).await;
    let (csr, req) = transfer(pair_id, &rig.evm());
    let p = phone.clone();
    let signing = tokio::spawn(async move { p.sign(&csr, None).await });
    let screen = rig.api.wait_for_screen(|s| s.request_id == req.request_id, Duration::from_secs(10)).await.unwrap();
    let pressed = rig.api.reject(&PressRequest { screen_id: Some(screen.id), ..Default::default() }).await.unwrap();
    assert_eq!(pressed.answer, Answer::Rejected);
    assert_eq!(signing.await.unwrap(), Err(ApplianceError::UserRejected));
    assert_eq!(rig.sim.signatures_made(req.request_id), 0);
    assert!(rig.api.state().await.unwrap().signatures.is_empty());
    // Nothing left to press.
    let e = rig.api.approve(&PressRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(ControlErrorCode::NoScreen));
    let e = rig.api.approve(&PressRequest { screen_id: Some(screen.id), ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), Some(ControlErrorCode::UnknownScreen));
}

#[tokio::test]
async fn automation_rules_answer_screens_that_match_and_leave_the_others() {
    let rig = Rig::new(23).await;
    let phone = Arc::new(rig.phone());
    let pair_id = pair_with(&rig, &phone).await;
    let acct = rig.evm();
    // Approve 0.05 ETH transfers once; reject EIP-191 messages after 50 ms; ignore the rest.
    let approve = rig
        .api
        .add_rule(&RuleSpec {
            matcher: RuleMatch { text_contains: Some("Value: 0.05 ETH".into()), ..Default::default() },
            action: RuleAction::Approve,
            after_ms: 0,
            times: Some(1),
        })
        .await
        .unwrap();
    assert_eq!(approve.times_left, Some(1));
    rig.api
        .add_rule(&RuleSpec {
            matcher: RuleMatch {
                text_contains: Some("Message".into()),
                kind: Some(ScreenKind::Sign),
                ..Default::default()
            },
            action: RuleAction::Reject,
            after_ms: 50,
            times: None,
        })
        .await
        .unwrap();
    let ignore = rig.api.add_rule(&RuleSpec::always(RuleAction::Ignore)).await.unwrap();
    assert_eq!(rig.api.rules().await.unwrap().len(), 3);

    let (csr, req) = transfer(pair_id, &acct);
    check_signature(&req, &phone.sign(&csr, None).await.unwrap());
    // The approve rule was used up.
    assert_eq!(rig.api.rules().await.unwrap().len(), 2);

    let (msg, _) = sign_request(pair_id, &acct, PayloadKind::Eip191Message, b"hello".to_vec());
    assert_eq!(phone.sign(&msg, None).await, Err(ApplianceError::UserRejected));

    // A second transfer matches only the ignore rule: it waits until the API answers.
    let (csr2, req2) = transfer(pair_id, &acct);
    let p = phone.clone();
    let signing = tokio::spawn(async move { p.sign(&csr2, None).await });
    rig.api.wait_for_screen(|s| s.request_id == req2.request_id, Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!signing.is_finished(), "an ignore rule answers nothing");
    rig.api.remove_rule(ignore.id).await.unwrap();
    assert_eq!(rig.api.remove_rule(ignore.id).await.unwrap_err().code(), Some(ControlErrorCode::UnknownRule));
    rig.api.approve(&PressRequest::default()).await.unwrap();
    check_signature(&req2, &signing.await.unwrap().unwrap());
    assert_eq!(rig.api.clear_rules().await.unwrap(), 1);

    // The simulated user can be switched at run time too.
    let u = rig.api.set_user(&UserSetting { mode: UserMode::Reject, delay_ms: None }).await.unwrap();
    assert_eq!(u.mode, UserMode::Reject);
    let (csr3, _) = transfer(pair_id, &acct);
    assert_eq!(phone.sign(&csr3, None).await, Err(ApplianceError::UserRejected));
    assert_eq!(rig.api.state().await.unwrap().total_signatures, 2);
    assert_eq!(rig.sim.max_signatures_per_request(), 1);
}

#[tokio::test]
async fn a_disconnect_during_a_sign_then_recovery_signs_once() {
    let rig = Rig::new(24).await;
    // A patient phone: it keeps reconnecting for several seconds.
    let phone = Arc::new(
        ApplianceClient::new(
            rig.connector.clone(),
            rig.bond.clone(),
            &rig.store,
            ClientConfig { max_retries: 30, retry_backoff: Duration::from_millis(25), ..client_cfg() },
        )
        .unwrap(),
    );
    let pair_id = pair_with(&rig, &phone).await;
    let (csr, req) = transfer(pair_id, &rig.evm());
    let p = phone.clone();
    let signing = tokio::spawn(async move { p.sign(&csr, None).await });
    rig.api.wait_for_screen(|s| s.request_id == req.request_id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(rig.api.faults().await.unwrap().open_connections, 1);

    // The radio drops while the request is on screen, and the appliance refuses new
    // connections for a while: the phone keeps trying.
    rig.api.set_faults(&FaultSettings { refuse_connections: Some(true), ..Default::default() }).await.unwrap();
    assert_eq!(rig.api.disconnect().await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rig.api.faults().await.unwrap().open_connections, 0);
    assert!(!signing.is_finished());
    // The screen stays: the request is still the appliance's to answer.
    assert_eq!(rig.api.screen().await.unwrap().screen.map(|s| s.request_id), Some(req.request_id));

    // Recovery: connections allowed again; the phone reconnects and resends the same id.
    let f = rig.api.set_faults(&FaultSettings::default()).await.unwrap();
    assert!(!f.refuse_connections);
    let mut reconnected = false;
    for _ in 0..100 {
        if rig.api.faults().await.unwrap().open_connections > 0 {
            reconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reconnected, "the phone did not reconnect");
    rig.api.approve(&PressRequest::default()).await.unwrap();
    let sig = signing.await.unwrap().unwrap();
    check_signature(&req, &sig);
    assert_eq!(rig.sim.signatures_made(req.request_id), 1);
    assert_eq!(rig.sim.total_signatures(), 1);
    let log = rig.api.events(0, 0).await.unwrap().events;
    assert!(log.iter().filter(|e| e.kind == EventType::FaultsChanged).count() >= 3);
}

#[tokio::test]
async fn refused_connections_fail_the_phone_until_allowed_again() {
    let rig = Rig::new(25).await;
    rig.api
        .set_faults(&FaultSettings { refuse_connections: Some(true), drop: Some(0.0), ..Default::default() })
        .await
        .unwrap();
    let phone = ApplianceClient::new(
        rig.connector.clone(),
        rig.bond.clone(),
        &rig.store,
        ClientConfig { max_retries: 1, ..client_cfg() },
    )
    .unwrap();
    assert!(matches!(phone.info().await, Err(ApplianceError::Link(_))));
    rig.api.set_faults(&FaultSettings::default()).await.unwrap();
    assert_eq!(phone.info().await.unwrap().identity, rig.sim.identity());
    // Latency set at run time shows in the effective faults, the configured ones stay.
    let f = rig.api.set_faults(&FaultSettings { latency_ms: Some(15), ..Default::default() }).await.unwrap();
    assert_eq!(f.effective.latency_ms, 15);
    assert_eq!(f.configured.latency_ms, 0);
    assert_eq!(rig.link.live.settings().latency, Some(Duration::from_millis(15)));
    assert_eq!(phone.info().await.unwrap().identity, rig.sim.identity());
}

#[tokio::test]
async fn bonding_mode_opens_and_closes_through_the_api_and_shows_its_pin() {
    let rig = Rig::new(26).await;
    // The first bond closed bonding mode.
    let b = rig.api.bonding().await.unwrap();
    assert!(!b.open);
    assert_eq!(b.pin, "123456");
    let second = MemorySecretStore::default();
    assert_eq!(bond(rig.connector.as_ref(), &b.pin, &second, "second").await, Err(ApplianceError::BondingClosed));
    let b = rig.api.open_bonding(Some(60)).await.unwrap();
    assert!(b.open && b.remaining_secs.is_some_and(|s| (59..=60).contains(&s)), "{b:?}");
    bond(rig.connector.as_ref(), &b.pin, &second, "second").await.unwrap();
    assert_eq!(rig.api.state().await.unwrap().bonded_phones.len(), 2);
    rig.api.open_bonding(None).await.unwrap();
    assert!(!rig.api.close_bonding().await.unwrap().open);
    let third = MemorySecretStore::default();
    assert_eq!(bond(rig.connector.as_ref(), "123456", &third, "third").await, Err(ApplianceError::BondingClosed));
    let log = rig.api.events(0, 0).await.unwrap().events;
    assert!(log.iter().any(|e| e.kind == EventType::BondingOpened && e.pin.as_deref() == Some("123456")));
    assert!(log.iter().filter(|e| e.kind == EventType::PhoneBonded).count() == 2);
}

#[tokio::test]
async fn reset_forgets_everything_and_the_log_goes_on() {
    let rig = Rig::new(27).await;
    let phone = Arc::new(rig.phone());
    let pair_id = pair_with(&rig, &phone).await;
    rig.api.add_rule(&RuleSpec::always(RuleAction::Approve)).await.unwrap();
    let (csr, _) = transfer(pair_id, &rig.evm());
    phone.sign(&csr, None).await.unwrap();
    let before = rig.api.events(0, 0).await.unwrap().next;
    let done = rig.api.reset().await.unwrap();
    assert!(done.seq > before);
    let s = rig.api.state().await.unwrap();
    assert!(s.bonded_phones.is_empty() && s.pairs.is_empty() && s.signatures.is_empty());
    assert_eq!(s.total_signatures, 0);
    assert!(rig.api.rules().await.unwrap().is_empty());
    assert_eq!(rig.api.user().await.unwrap().mode, UserMode::Api);
    let page = rig.api.events(0, 0).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].kind, EventType::Reset);
    assert_eq!(page.events[0].seq, done.seq);
    // Bonding mode is open again, as at start, and the phone is a stranger now.
    assert!(rig.api.bonding().await.unwrap().open);
    assert_eq!(phone.info().await, Err(ApplianceError::UnknownAppliance));
}

#[tokio::test]
async fn a_long_poll_returns_when_a_screen_is_shown() {
    let rig = Rig::new(28).await;
    let phone = Arc::new(rig.phone());
    let next = rig.api.events(0, 0).await.unwrap().next;
    let env = session(vec![ChainId::Evm(1)]);
    let acct = rig.evm();
    let p = phone.clone();
    let pairing = tokio::spawn(async move { p.approve_pair(Uuid::new_v4(), &env, "123456", &[acct], None).await });
    // Waits (up to 10 s) for the next event, then answers with it.
    let page = rig.api.events(next, 10_000).await.unwrap();
    assert_eq!(page.events.first().map(|e| e.kind), Some(EventType::ScreenShown));
    assert!(!page.truncated);
    rig.api.reject(&PressRequest::default()).await.unwrap();
    assert_eq!(pairing.await.unwrap(), Err(ApplianceError::UserRejected));
    // A cursor beyond the log answers at once, with the last seq.
    let last = rig.api.events(0, 0).await.unwrap().next;
    let ahead = rig.api.events(last + 1000, 10_000).await.unwrap();
    assert!(ahead.events.is_empty());
    assert_eq!(ahead.next, last);
}

// ------------------------------------------------------------------ refusals over HTTP

async fn raw(server: &ControlServer, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, serde_json::Value) {
    raw_host(server, method, path, body, None).await
}

async fn raw_host(
    server: &ControlServer,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
    host: Option<&str>,
) -> (u16, serde_json::Value) {
    let http = reqwest::Client::new();
    let mut req = http.request(method.parse().unwrap(), format!("{}{path}", server.url()));
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    if let Some(h) = host {
        req = req.header("host", h);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    assert_eq!(
        resp.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{method} {path}"
    );
    (status, resp.json().await.unwrap())
}

fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {v}"))
}

#[tokio::test]
async fn bad_requests_get_specific_json_errors_and_never_a_5xx() {
    let rig = Rig::new(29).await;
    let s = &rig.server;
    let cases: Vec<(&str, &str, Option<&str>, u16, &str)> = vec![
        ("POST", "/rules", Some("{"), 400, "malformed_json"),
        ("POST", "/rules", Some("{}"), 400, "malformed_json"),
        ("POST", "/rules", Some(r#"{"action":"approve","colour":"red"}"#), 400, "malformed_json"),
        ("POST", "/rules", Some(r#"{"action":"approve","times":null}"#), 400, "malformed_json"),
        ("POST", "/rules", Some(r#"{"action":"approve","times":0}"#), 400, "invalid_field"),
        ("POST", "/rules", Some(r#"{"action":"approve","after_ms":600001}"#), 400, "invalid_field"),
        ("POST", "/rules", Some(r#"{"action":"approve","match":{"text_contains":""}}"#), 400, "invalid_field"),
        ("POST", "/rules", Some(r#"{"action":"dance"}"#), 400, "malformed_json"),
        ("POST", "/screen/approve", Some(r#"{"screen_id":-1}"#), 400, "malformed_json"),
        (
            "POST",
            "/screen/approve",
            Some(r#"{"request_id":"8c2d5f0e4b1a4c3d9e8f7a6b5c4d3e2f"}"#),
            400,
            "malformed_json",
        ),
        ("POST", "/screen/approve", Some(r#"{"screen_id":9007199254740992}"#), 400, "invalid_field"),
        ("POST", "/screen/approve", None, 409, "no_screen"),
        ("POST", "/screen/reject", Some(r#"{"screen_id":7}"#), 404, "unknown_screen"),
        ("PUT", "/user", Some(r#"{"mode":"delay"}"#), 400, "invalid_field"),
        ("PUT", "/user", Some(r#"{"mode":"approve","delay_ms":5}"#), 400, "invalid_field"),
        ("PUT", "/user", Some(r#"{"mode":"prompt"}"#), 400, "invalid_field"),
        ("PUT", "/faults", Some(r#"{"drop":1.5}"#), 400, "invalid_field"),
        ("PUT", "/faults", Some(r#"{"latency_ms":10001}"#), 400, "invalid_field"),
        ("PUT", "/faults", Some(r#"[]"#), 400, "malformed_json"),
        ("POST", "/rules", Some(r#"{"action":"approve","match":[]}"#), 400, "malformed_json"),
        ("POST", "/bonding/open", Some(r#"{"secs":0}"#), 400, "invalid_field"),
        ("POST", "/bonding/open", Some(r#"{"secs":3601}"#), 400, "invalid_field"),
        ("GET", "/screen/events?wait_ms=10001", None, 400, "invalid_query"),
        ("GET", "/screen/events?limit=0", None, 400, "invalid_query"),
        ("GET", "/screen/events?after=x", None, 400, "invalid_query"),
        ("GET", "/screen/events?colour=red", None, 400, "invalid_query"),
        ("DELETE", "/rules/abc", None, 400, "invalid_path"),
        ("DELETE", "/rules/-1", None, 400, "invalid_path"),
        ("DELETE", "/rules/99999999999999999999", None, 400, "invalid_path"),
        ("DELETE", "/rules/42", None, 404, "unknown_rule"),
        ("GET", "/nothing/here", None, 404, "not_found"),
        ("PATCH", "/screen", None, 405, "method_not_allowed"),
        ("GET", "/reset", None, 405, "method_not_allowed"),
    ];
    for (m, p, b, status, c) in cases {
        let (st, v) = raw(s, m, p, b.map(|b| b.as_bytes().to_vec())).await;
        assert_eq!((st, code(&v)), (status, c), "{m} {p} {b:?}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Too large.
    let big = format!(r#"{{"action":"approve","match":{{"text_contains":"{}"}}}}"#, "x".repeat(api::MAX_BODY));
    let (st, v) = raw(s, "POST", "/rules", Some(big.into_bytes())).await;
    assert_eq!((st, code(&v)), (413, "payload_too_large"));
    // DNS rebinding: a request for another host name is refused.
    let (st, v) = raw_host(s, "GET", "/state", None, Some("evil.example:80")).await;
    assert_eq!((st, code(&v)), (403, "forbidden_host"));
    let (st, _) = raw_host(s, "GET", "/state", None, Some("localhost")).await;
    assert_eq!(st, 200);
    // Only loopback addresses can be served.
    let refused = control::serve(rig.sim.clone(), rig.link.clone(), "0.0.0.0:0".parse().unwrap()).await;
    assert!(refused.is_err());
    // 65 rules: the 65th is refused.
    for _ in 0..sunstorm_sim::appliance::MAX_RULES {
        rig.api.add_rule(&RuleSpec::always(RuleAction::Ignore)).await.unwrap();
    }
    let e = rig.api.add_rule(&RuleSpec::always(RuleAction::Ignore)).await.unwrap_err();
    assert!(matches!(e, ClientError::Refused { status: 409, code: ControlErrorCode::TooManyRules, .. }), "{e:?}");
}

#[tokio::test]
async fn arbitrary_bodies_to_every_endpoint_get_a_documented_answer() {
    let rig = Rig::new(30).await;
    let endpoints = [
        ("POST", "/screen/approve"),
        ("POST", "/screen/reject"),
        ("POST", "/rules"),
        ("PUT", "/user"),
        ("PUT", "/faults"),
        ("POST", "/bonding/open"),
    ];
    let mut runner =
        proptest::test_runner::TestRunner::new(proptest::test_runner::Config { cases: 48, ..Default::default() });
    let strategy = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ];
    for _ in 0..48 {
        let tree = strategy.new_tree(&mut runner).unwrap();
        let body = tree.current();
        for (m, p) in endpoints {
            let (st, v) = raw(&rig.server, m, p, Some(body.clone())).await;
            assert!(st < 500, "{m} {p} {body:?} → {st} {v}");
            if st >= 400 {
                code(&v);
            }
        }
        // Leave no state behind that changes the next case.
        rig.api.reset().await.unwrap();
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (-2.0f64..2.0).prop_map(serde_json::Value::from),
        "[a-z_ ]{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("approve")),
        Just(serde_json::Value::from("delay")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("action".to_string()),
                    Just("mode".to_string()),
                    Just("delay_ms".to_string()),
                    Just("match".to_string()),
                    Just("times".to_string()),
                    Just("after_ms".to_string()),
                    Just("screen_id".to_string()),
                    Just("drop".to_string()),
                    Just("secs".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// The parsers never panic; what they accept is within the documented limits, and
    /// what they refuse is refused with a 4xx code.
    #[test]
    fn parsers_accept_only_what_the_document_allows(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let four = |e: &api::ApiError| (400..500).contains(&e.code.http_status());
        match api::parse_rule(&body) {
            Ok(r) => {
                prop_assert!(r.after_ms <= sunstorm_sim::appliance::MAX_RULE_DELAY_MS);
                prop_assert!(r.times.is_none_or(|t| (1..=api::MAX_RULE_TIMES).contains(&t)));
            }
            Err(e) => prop_assert!(four(&e)),
        }
        match PressRequest::parse(&body) {
            Ok(p) => prop_assert!(p.screen_id.is_none_or(|i| i <= api::MAX_INT)),
            Err(e) => prop_assert!(four(&e)),
        }
        if let Err(e) = UserSetting::parse(&body) { prop_assert!(four(&e)); }
        match FaultSettings::parse(&body) {
            Ok(f) => {
                for p in [f.drop, f.duplicate, f.reorder].into_iter().flatten() {
                    prop_assert!((0.0..=1.0).contains(&p));
                }
                prop_assert!(f.latency_ms.is_none_or(|l| l <= api::MAX_LATENCY_MS));
            }
            Err(e) => prop_assert!(four(&e)),
        }
        match BondingOpen::parse(&body) {
            Ok(b) => prop_assert!(b.secs.is_none_or(|s| (1..=api::MAX_BONDING_SECS).contains(&s))),
            Err(e) => prop_assert!(four(&e)),
        }
    }

    /// Every rule within the limits is accepted, and reads back as sent.
    #[test]
    fn valid_rules_round_trip(
        action in prop_oneof![Just(RuleAction::Approve), Just(RuleAction::Reject), Just(RuleAction::Ignore)],
        after_ms in 0..=sunstorm_sim::appliance::MAX_RULE_DELAY_MS,
        times in proptest::option::of(1..=api::MAX_RULE_TIMES),
        text in proptest::option::of("\\PC{1,40}"),
        kind in proptest::option::of(prop_oneof![Just(ScreenKind::Pair), Just(ScreenKind::Sign)]),
    ) {
        let spec = RuleSpec { matcher: RuleMatch { text_contains: text, kind, ..Default::default() }, action, after_ms, times };
        let bytes = serde_json::to_vec(&spec).unwrap();
        prop_assert_eq!(api::parse_rule(&bytes).unwrap(), spec);
    }

    /// Path ids: decimal digits up to 2^53 − 1, nothing else.
    #[test]
    fn path_ids(s in "\\PC{0,24}") {
        match parse_id(&s) {
            Ok(v) => {
                prop_assert!(v <= api::MAX_INT);
                prop_assert_eq!(s.trim_start_matches('0').parse::<u64>().unwrap_or(0), v);
            }
            Err(e) => prop_assert_eq!(e.code, ControlErrorCode::InvalidPath),
        }
    }
}

#[test]
fn host_header_examples() {
    for ok in ["127.0.0.1", "127.0.0.1:8080", "localhost", "LOCALHOST:1", "[::1]", "[::1]:9", "127.9.9.9:1"] {
        assert!(is_loopback_host(ok), "{ok}");
    }
    for bad in [
        "",
        "evil.example",
        "evil.example:80",
        "10.0.0.1",
        "[::2]:1",
        "127.0.0.1.evil.example",
        "[::1]x",
        "localhost.evil",
    ] {
        assert!(!is_loopback_host(bad), "{bad}");
    }
}

#[test]
fn user_settings_follow_the_document() {
    assert_eq!(UserSetting::parse(br#"{"mode":"api"}"#).unwrap(), UserScript::Api);
    assert_eq!(UserSetting::parse(br#"{"mode":"delay","delay_ms":250}"#).unwrap(), UserScript::Delay(250));
    assert_eq!(
        UserSetting::parse(br#"{"mode":"delay","delay_ms":null}"#).unwrap_err().code,
        ControlErrorCode::MalformedJson
    );
    assert_eq!(UserSetting::parse(b"").unwrap_err().code, ControlErrorCode::MalformedJson);
    assert_eq!(PressRequest::parse(b"  ").unwrap(), PressRequest::default());
}

/// The control API can press the appliance's buttons: it never listens beyond loopback.
#[tokio::test]
async fn the_control_api_refuses_to_listen_beyond_loopback() {
    let sim = ApplianceSim::new(ApplianceSimConfig {
        seed: vec![9; 32],
        octane_key: Key32(octane().verifying_key().to_bytes()),
        user: UserScript::Api,
        ..ApplianceSimConfig::default()
    })
    .unwrap();
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        let err = control::serve(sim.clone(), SimLinkConfig::default(), addr.parse().unwrap())
            .await
            .err()
            .unwrap_or_else(|| panic!("{addr} was accepted"));
        assert!(err.to_string().contains("loopback"), "{addr}: {err}");
    }
}
