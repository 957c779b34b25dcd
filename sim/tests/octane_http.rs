//! The octane simulator over real HTTP on loopback: SP API, app API, auth, limits, errors.

// Test helpers outside #[test] functions may unwrap too (clippy.toml covers only the tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{AccountId, ChainId, SOLANA_MAINNET};
use sunstorm_core::envelope::{Domain, SignedEnvelope};
use sunstorm_core::model::{
    AppEndorsement, PairAttestation, PairRevocation, PairSessionDetails, PayloadKind, SignRequest, STATEMENT_VERSION,
};
use sunstorm_core::octane::api::{
    paths, AppPairsResponse, AppSessionResponse, CreateSessionRequest, CreateSessionResponse, OctaneErrorCode,
    OctanePairStatus, PairResult, PendingSignRequests, SignResult,
};
use sunstorm_core::octane::app_auth;
use sunstorm_sim::octane::{ManualClock, OctaneSim, OctaneSimConfig, OctaneSimHandle};
use sunstorm_sim::sp::{self, ExpectedPair, SpClient};
use uuid::Uuid;

const NOW: u64 = 1_800_000_000;

struct Env {
    octane: OctaneSimHandle,
    clock: Arc<ManualClock>,
    sp: SpClient,
    sp_key: SigningKey,
}

async fn env() -> Env {
    let clock = Arc::new(ManualClock::new(NOW));
    let octane = OctaneSim::start(OctaneSimConfig { seed: Some([7; 32]), clock: clock.clone(), ..Default::default() })
        .await
        .unwrap();
    let demo = octane.demo_sp.clone();
    let sp = SpClient::new(&octane.url, &demo.api_key).unwrap();
    Env { octane, clock, sp, sp_key: demo.signing_key }
}

/// A phone app endorsed by a test appliance.
struct App {
    http: reqwest::Client,
    base: String,
    app_key: SigningKey,
    appliance: SigningKey,
    endorsement: SignedEnvelope,
    clock: Arc<ManualClock>,
}

impl App {
    fn new(e: &Env, appliance_seed: u8) -> Self {
        let appliance = SigningKey::from_bytes(&[appliance_seed; 32]);
        let app_key = SigningKey::from_bytes(&[appliance_seed.wrapping_add(100); 32]);
        let endorsement = SignedEnvelope::seal(
            Domain::AppEndorsement,
            &appliance,
            &AppEndorsement {
                v: STATEMENT_VERSION,
                app_key: Key32(app_key.verifying_key().to_bytes()),
                appliance_identity: Key32(appliance.verifying_key().to_bytes()),
                issued_at: NOW,
            },
        )
        .unwrap();
        App {
            http: reqwest::Client::new(),
            base: e.octane.url.clone(),
            app_key,
            appliance,
            endorsement,
            clock: e.clock.clone(),
        }
    }

    fn identity(&self) -> Key32 {
        Key32(self.appliance.verifying_key().to_bytes())
    }

    async fn call_raw(&self, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let url = reqwest::Url::parse(&format!("{}{}", self.base, path)).unwrap();
        let target = app_auth::path_and_query(&url);
        let h = app_auth::sign_app_request(
            &self.app_key,
            &self.endorsement,
            method,
            &target,
            &body,
            sunstorm_core::clock::Clock::now_unix(&*self.clock),
        )
        .unwrap();
        let mut req = self.http.request(method.parse().unwrap(), url);
        for (k, v) in h.pairs() {
            req = req.header(k, v);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, v)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        self.call_raw(method, path, bytes).await
    }

    fn attestation(
        &self,
        s: &CreateSessionResponse,
        sp_key: &SigningKey,
        bindings: Vec<AccountId>,
    ) -> (PairAttestation, SignedEnvelope) {
        let att = PairAttestation {
            v: STATEMENT_VERSION,
            pair_id: Uuid::new_v4(),
            session_id: s.session_id.clone(),
            validation_code: s.validation_code.clone(),
            sp_id: "demo-sp".into(),
            sp_public_key: Key32(sp_key.verifying_key().to_bytes()),
            bindings,
            appliance_identity: self.identity(),
            approved_at: NOW,
        };
        let env = SignedEnvelope::seal(Domain::PairAttestation, &self.appliance, &att).unwrap();
        (att, env)
    }
}

fn evm_key() -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_bytes(&[0x11; 32].into()).unwrap()
}

fn evm_account() -> AccountId {
    AccountId::evm(1, sunstorm_core::payload::address_of(evm_key().verifying_key()))
}

/// What the appliance would answer: the chain signature over the re-parsed payload.
fn appliance_sign(req: &SignRequest, key: &k256::ecdsa::SigningKey) -> Vec<u8> {
    use sunstorm_core::payload::{encode_evm_signature, signing_target, SigningTarget};
    let SigningTarget::EvmDigest { digest, v_style } = signing_target(req.kind, &req.payload, &req.chain).unwrap()
    else {
        panic!("not an EVM target")
    };
    let (sig, recid) = key.sign_prehash_recoverable(&digest).unwrap();
    encode_evm_signature(&sig, recid, v_style).to_vec()
}

fn sol_account() -> AccountId {
    AccountId::solana(SOLANA_MAINNET, &[0x22; 32])
}

fn code_of(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

async fn create(e: &Env, return_url: Option<&str>) -> CreateSessionResponse {
    e.sp.create_session(&CreateSessionRequest {
        sp_user_ref: "alice@sp".into(),
        chains: vec![ChainId::Evm(1), ChainId::Solana(SOLANA_MAINNET.into())],
        return_url: return_url.map(str::to_string),
        ttl_secs: None,
    })
    .await
    .unwrap()
}

/// Creates a session, verifies its code and approves it with both test accounts.
async fn paired(e: &Env, app: &App) -> (CreateSessionResponse, Uuid) {
    let s = create(e, None).await;
    let (st, _) =
        app.call("POST", &paths::app_pair_session_code(&s.session_id), Some(json!({"code": s.validation_code}))).await;
    assert_eq!(st, StatusCode::OK);
    let mut b = vec![evm_account(), sol_account()];
    b.sort();
    let (att, env) = app.attestation(&s, &e.sp_key, b);
    let (st, v) =
        app.call("POST", &paths::app_pair_session_approve(&s.session_id), Some(json!({"attestation": env}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    (s, att.pair_id)
}

#[tokio::test]
async fn create_session_checks_its_input() {
    let e = env().await;
    let s = create(&e, Some("https://sp.example/done?x=1")).await;
    assert!(s.session_id.len() >= 22);
    assert!(sunstorm_core::link::is_valid_session_id(&s.session_id));
    assert_eq!(s.validation_code.len(), 6);
    assert!(s.validation_code.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(s.link, format!("https://sigilvault.xyz/pair?session={}", s.session_id));
    assert_eq!(s.link_with_code, format!("{}&v={}", s.link, s.validation_code));
    assert_eq!(s.expires_at, NOW + 300);
    let intent = sunstorm_core::link::parse_link(&s.link_with_code, &Default::default()).unwrap();
    assert_eq!(intent.session_id, s.session_id);

    let bad = |req: CreateSessionRequest| {
        let sp = e.sp.clone();
        async move { sp.create_session(&req).await.unwrap_err().code() }
    };
    let base = CreateSessionRequest {
        sp_user_ref: "u".into(),
        chains: vec![ChainId::Evm(1)],
        return_url: None,
        ttl_secs: None,
    };
    for url in
        ["https://evil.example/x", "http://sp.example/x", "https://sp.example.evil.example/", "javascript:alert(1)"]
    {
        let r = bad(CreateSessionRequest { return_url: Some(url.into()), ..base.clone() }).await;
        assert_eq!(r, Some(OctaneErrorCode::ReturnUrlNotAllowed), "{url}");
    }
    assert_eq!(
        bad(CreateSessionRequest { ttl_secs: Some(301), ..base.clone() }).await,
        Some(OctaneErrorCode::InvalidTtl)
    );
    assert_eq!(
        bad(CreateSessionRequest { ttl_secs: Some(0), ..base.clone() }).await,
        Some(OctaneErrorCode::InvalidTtl)
    );
    assert_eq!(
        bad(CreateSessionRequest { chains: vec![ChainId::Evm(999)], ..base.clone() }).await,
        Some(OctaneErrorCode::UnsupportedChain)
    );
    assert_eq!(
        bad(CreateSessionRequest { chains: vec![], ..base.clone() }).await,
        Some(OctaneErrorCode::UnsupportedChain)
    );

    let wrong_key = SpClient::new(&e.octane.url, "sk_not_a_real_key_at_all").unwrap();
    let err = wrong_key.create_session(&base).await.unwrap_err();
    assert!(matches!(err, sp::SpClientError::Api { status: 401, code: OctaneErrorCode::Unauthenticated, .. }), "{err}");
}

#[tokio::test]
async fn session_details_are_signed_by_octane() {
    let e = env().await;
    let s = create(&e, Some("https://sp.example/back")).await;
    let app = App::new(&e, 1);
    let (st, v) = app.call("GET", &paths::app_pair_session(&s.session_id), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let r: AppSessionResponse = serde_json::from_value(v).unwrap();
    let d: PairSessionDetails = r.details.open(Domain::OctaneSession, e.octane.octane_public_key.as_bytes()).unwrap();
    assert_eq!(d.session_id, s.session_id);
    assert_eq!(d.sp.name, "Demo SP");
    assert_eq!(d.sp_user_ref, "alice@sp");
    assert_eq!(d.requested_chains.len(), 2);
    assert_eq!(d.return_url.as_deref(), Some("https://sp.example/back"));
    assert_eq!(d.expires_at, s.expires_at);
    assert_eq!(r.attempts_left, 5);
    // Another key does not verify it.
    assert!(r.details.verify(Domain::OctaneSession, &[9; 32]).is_err());

    let (st, v) = app.call("GET", &paths::app_pair_session("AAAAAAAAAAAAAAAAAAAAAA"), None).await;
    assert_eq!((st, code_of(&v)), (StatusCode::NOT_FOUND, "not_found"));
}

fn wrong_code(right: &str) -> String {
    let d = right.as_bytes()[0] - b'0';
    format!("{}{}", (d + 1) % 10, &right[1..])
}

#[tokio::test]
async fn wrong_codes_count_down_then_lock() {
    let e = env().await;
    let s = create(&e, None).await;
    let app = App::new(&e, 1);
    let path = paths::app_pair_session_code(&s.session_id);
    let wrong = wrong_code(&s.validation_code);
    for left in (0..5u64).rev() {
        let (st, v) = app.call("POST", &path, Some(json!({"code": wrong}))).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert_eq!(code_of(&v), "code_rejected");
        assert_eq!(v["error"]["attempts_left"].as_u64(), Some(left));
    }
    // The right code after the lockout is refused.
    let (st, v) = app.call("POST", &path, Some(json!({"code": s.validation_code}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::LOCKED, "session_locked"));
    assert_eq!(e.sp.pair_result(&s.session_id, 0).await.unwrap(), PairResult::Locked);
    // Malformed codes are a 400 that does not count (and never a 500).
    let s2 = create(&e, None).await;
    let (st, v) = app.call("POST", &paths::app_pair_session_code(&s2.session_id), Some(json!({"code": "12a45"}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::BAD_REQUEST, "bad_request"));
    let (_, v) = app.call("GET", &paths::app_pair_session(&s2.session_id), None).await;
    assert_eq!(v["attempts_left"], 5);
}

#[tokio::test]
async fn parallel_wrong_guesses_count_exactly_five() {
    let e = env().await;
    let s = create(&e, None).await;
    let app = Arc::new(App::new(&e, 1));
    let wrong = wrong_code(&s.validation_code);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let app = app.clone();
        let path = paths::app_pair_session_code(&s.session_id);
        let wrong = wrong.clone();
        tasks.push(tokio::spawn(async move {
            let (st, v) = app.call("POST", &path, Some(json!({"code": wrong}))).await;
            (st, code_of(&v).to_string())
        }));
    }
    let mut rejected = 0;
    let mut locked = 0;
    for t in tasks {
        match t.await.unwrap() {
            (StatusCode::BAD_REQUEST, c) if c == "code_rejected" => rejected += 1,
            (StatusCode::LOCKED, c) if c == "session_locked" => locked += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((rejected, locked), (5, 5));
    let (st, _) =
        app.call("POST", &paths::app_pair_session_code(&s.session_id), Some(json!({"code": s.validation_code}))).await;
    assert_eq!(st, StatusCode::LOCKED);
}

#[tokio::test]
async fn expired_sessions_are_refused() {
    let e = env().await;
    let s =
        e.sp.create_session(&CreateSessionRequest {
            sp_user_ref: "u".into(),
            chains: vec![ChainId::Evm(1)],
            return_url: None,
            ttl_secs: Some(5),
        })
        .await
        .unwrap();
    let app = App::new(&e, 1);
    e.clock.advance(6);
    let (st, v) = app.call("GET", &paths::app_pair_session(&s.session_id), None).await;
    assert_eq!((st, code_of(&v)), (StatusCode::GONE, "session_expired"));
    let (st, v) =
        app.call("POST", &paths::app_pair_session_code(&s.session_id), Some(json!({"code": s.validation_code}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::GONE, "session_expired"));
    assert_eq!(e.sp.pair_result(&s.session_id, 0).await.unwrap(), PairResult::Expired);
}

#[tokio::test]
async fn approve_pairs_once_and_the_sp_verifies_it() {
    let e = env().await;
    let s = create(&e, Some("https://sp.example/done")).await;
    let app = App::new(&e, 1);

    // The SP long-polls while the phone works.
    let sp = e.sp.clone();
    let sid = s.session_id.clone();
    let waiter = tokio::spawn(async move { sp.await_pair(&sid, Duration::from_secs(20)).await });

    let mut bindings = vec![sol_account(), evm_account()];
    bindings.sort();
    let (att, env) = app.attestation(&s, &e.sp_key, bindings.clone());
    // Approval before the code is verified is refused.
    let approve = paths::app_pair_session_approve(&s.session_id);
    let (st, v) = app.call("POST", &approve, Some(json!({"attestation": env}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::CONFLICT, "code_not_verified"));

    let (st, v) =
        app.call("POST", &paths::app_pair_session_code(&s.session_id), Some(json!({"code": s.validation_code}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "code_verified");

    let (st, first) = app.call("POST", &approve, Some(json!({"attestation": env}))).await;
    assert_eq!(st, StatusCode::OK, "{first}");
    assert_eq!(first["pair_id"], att.pair_id.to_string());
    assert_eq!(first["return_url"], "https://sp.example/done");
    // Idempotent: the same attestation again answers the same pair.
    let (st, second) = app.call("POST", &approve, Some(json!({"attestation": env}))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(first, second);
    // Another attestation for the used session is refused.
    let (_, env2) = app.attestation(&s, &e.sp_key, bindings.clone());
    let (st, v) = app.call("POST", &approve, Some(json!({"attestation": env2}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::CONFLICT, "session_used"));

    let result = waiter.await.unwrap().unwrap();
    let sp_pk = Key32(e.sp_key.verifying_key().to_bytes());
    let expected = ExpectedPair {
        session_id: &s.session_id,
        validation_code: Some(&s.validation_code),
        sp_public_key: Some(&sp_pk),
    };
    let checked = sp::verify_pair_result(&result, &expected).unwrap().unwrap();
    assert_eq!(checked.pair_id, att.pair_id);
    assert_eq!(checked.bindings, bindings);
    let PairResult::Paired { appliance_identity, .. } = &result else { panic!() };
    assert_eq!(*appliance_identity, app.identity());
    // Altering a bound field breaks the SP's check.
    let wrong_code = wrong_code(&s.validation_code);
    let bad = ExpectedPair { validation_code: Some(&wrong_code), ..expected.clone() };
    assert_eq!(sp::verify_pair_result(&result, &bad), Err(sp::SpCheckError::Mismatch("validation_code")));

    let (st, v) = app.call("GET", paths::APP_PAIRS, None).await;
    assert_eq!(st, StatusCode::OK);
    let pairs: AppPairsResponse = serde_json::from_value(v).unwrap();
    assert_eq!(pairs.pairs.len(), 1);
    assert_eq!(pairs.pairs[0].status, OctanePairStatus::Active);
    // Another appliance sees none of them.
    let (_, v) = App::new(&e, 2).call("GET", paths::APP_PAIRS, None).await;
    assert_eq!(v["pairs"], json!([]));
}

#[tokio::test]
async fn other_appliances_and_bad_attestations_are_refused() {
    let e = env().await;
    let s = create(&e, None).await;
    let a = App::new(&e, 1);
    let b = App::new(&e, 2);
    let (st, _) =
        a.call("POST", &paths::app_pair_session_code(&s.session_id), Some(json!({"code": s.validation_code}))).await;
    assert_eq!(st, StatusCode::OK);
    let approve = paths::app_pair_session_approve(&s.session_id);

    // Appliance B, with its own valid attestation, on a session A's app claimed: 403.
    let (_, env_b) = b.attestation(&s, &e.sp_key, vec![evm_account()]);
    let (st, v) = b.call("POST", &approve, Some(json!({"attestation": env_b}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    let (st, _) = b.call("GET", &paths::app_pair_session(&s.session_id), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // A's app relaying B's attestation: 403.
    let (st, v) = a.call("POST", &approve, Some(json!({"attestation": env_b}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::FORBIDDEN, "forbidden"));

    // Tampered attestation (a binding added after signing, the signature kept): 400.
    let (mut att, mut env) = a.attestation(&s, &e.sp_key, vec![evm_account()]);
    att.bindings.push(sol_account());
    att.bindings.sort();
    env.body = sunstorm_core::cbor::to_vec(&att).unwrap();
    let (st, v) = a.call("POST", &approve, Some(json!({"attestation": env}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::BAD_REQUEST, "attestation_invalid"));

    // Properly signed but binding the wrong things: 400 attestation_mismatch.
    let mut wrong = a.attestation(&s, &e.sp_key, vec![evm_account()]).0;
    wrong.validation_code = wrong_code(&s.validation_code);
    let env = SignedEnvelope::seal(Domain::PairAttestation, &a.appliance, &wrong).unwrap();
    let (st, v) = a.call("POST", &approve, Some(json!({"attestation": env}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::BAD_REQUEST, "attestation_mismatch"));
    let unrequested = AccountId::evm(8453, [0x33; 20]);
    let (_, env) = a.attestation(&s, &e.sp_key, vec![unrequested]);
    let (st, v) = a.call("POST", &approve, Some(json!({"attestation": env}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::BAD_REQUEST, "attestation_mismatch"));
    let (_, env) = a.attestation(&s, &SigningKey::from_bytes(&[42; 32]), vec![evm_account()]);
    let (st, v) = a.call("POST", &approve, Some(json!({"attestation": env}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::BAD_REQUEST, "attestation_mismatch"));

    // After all that, the genuine approval still works.
    let (_, env) = a.attestation(&s, &e.sp_key, vec![evm_account()]);
    let (st, v) = a.call("POST", &approve, Some(json!({"attestation": env}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn app_authentication_is_required() {
    let e = env().await;
    let s = create(&e, None).await;
    let path = paths::app_pair_session(&s.session_id);
    let url = format!("{}{}", e.octane.url, path);
    let http = reqwest::Client::new();

    // No headers at all.
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(code_of(&v), "unauthenticated");

    // A key the appliance never endorsed, presenting someone else's endorsement.
    let mut rogue = App::new(&e, 1);
    rogue.app_key = SigningKey::from_bytes(&[77; 32]);
    let (st, v) = rogue.call("GET", &path, None).await;
    assert_eq!((st, code_of(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"));

    // An endorsement not signed by the appliance it names.
    let mut forged = App::new(&e, 1);
    forged.endorsement.sig[0] ^= 1;
    let (st, v) = forged.call("GET", &path, None).await;
    assert_eq!((st, code_of(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"));

    // Garbage in the headers.
    let r = http
        .get(&url)
        .header(app_auth::HEADER_ENDORSEMENT, "!!!")
        .header(app_auth::HEADER_TIMESTAMP, "x")
        .header(app_auth::HEADER_NONCE, "y")
        .header(app_auth::HEADER_SIGNATURE, "z")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A replayed request (same nonce) and a stale one.
    let app = App::new(&e, 1);
    let h = app_auth::sign_app_request(&app.app_key, &app.endorsement, "GET", &path, b"", NOW).unwrap();
    let send = |h: app_auth::AppRequestHeaders| {
        let mut req = http.get(&url);
        for (k, v) in h.pairs() {
            req = req.header(k, v);
        }
        req.send()
    };
    assert_eq!(send(h.clone()).await.unwrap().status(), StatusCode::OK);
    let r = send(h).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code_of(&r.json().await.unwrap()), "stale_request");
    let old = app_auth::sign_app_request(&app.app_key, &app.endorsement, "GET", &path, b"", NOW - 3600).unwrap();
    let r = send(old).await.unwrap();
    assert_eq!(code_of(&r.json().await.unwrap()), "stale_request");
}

fn sign_request(pair_id: Uuid, account: &AccountId) -> SignRequest {
    SignRequest {
        v: STATEMENT_VERSION,
        request_id: Uuid::new_v4(),
        pair_id,
        chain: account.chain.clone(),
        account: account.clone(),
        kind: PayloadKind::Eip191Message,
        payload: b"hello sigil".to_vec(),
        created_at: NOW,
        expires_at: NOW + 120,
    }
}

#[tokio::test]
async fn sign_requests_are_checked_countersigned_and_answered() {
    let e = env().await;
    let app = App::new(&e, 1);
    let (_s, pair_id) = paired(&e, &app).await;

    // Bad SP signature (signed by another key): 400 bad_signature.
    let req = sign_request(pair_id, &evm_account());
    let forged = SignedEnvelope::seal(Domain::SpSignRequest, &SigningKey::from_bytes(&[5; 32]), &req).unwrap();
    let err = e.sp.submit_sign_envelope(&pair_id, forged).await.unwrap_err();
    assert_eq!(err.code(), Some(OctaneErrorCode::BadSignature));
    // Right key, wrong domain: also refused.
    let wrong_domain = SignedEnvelope::seal(Domain::OctaneSignRequest, &e.sp_key, &req).unwrap();
    let err = e.sp.submit_sign_envelope(&pair_id, wrong_domain).await.unwrap_err();
    assert_eq!(err.code(), Some(OctaneErrorCode::BadSignature));
    // Unbound account, bad expiry.
    let err = e.sp.submit_sign(&e.sp_key, &sign_request(pair_id, &AccountId::evm(1, [0x44; 20]))).await.unwrap_err();
    assert_eq!(err.code(), Some(OctaneErrorCode::AccountNotBound));
    let mut late = sign_request(pair_id, &evm_account());
    late.expires_at = NOW + 301;
    assert_eq!(e.sp.submit_sign(&e.sp_key, &late).await.unwrap_err().code(), Some(OctaneErrorCode::InvalidExpiry));
    let mut past = sign_request(pair_id, &evm_account());
    past.created_at = NOW - 100;
    past.expires_at = NOW - 1;
    assert_eq!(e.sp.submit_sign(&e.sp_key, &past).await.unwrap_err().code(), Some(OctaneErrorCode::InvalidExpiry));

    // A good one: accepted with octane's countersignature.
    let accepted = e.sp.submit_sign(&e.sp_key, &req).await.unwrap();
    let sp_pk = Key32(e.sp_key.verifying_key().to_bytes());
    assert_eq!(accepted.countersigned.verify(&sp_pk, &e.octane.octane_public_key).unwrap(), req);
    // The same request id again: 409.
    assert_eq!(e.sp.submit_sign(&e.sp_key, &req).await.unwrap_err().code(), Some(OctaneErrorCode::DuplicateRequest));
    assert_eq!(e.sp.sign_result(&req.request_id, 0).await.unwrap(), SignResult::Pending);

    // The app picks it up; another appliance does not see it and cannot answer it.
    let (st, v) = app.call("GET", &format!("{}?timeout_secs=5", paths::APP_SIGN_PENDING), None).await;
    assert_eq!(st, StatusCode::OK);
    let pending: PendingSignRequests = serde_json::from_value(v).unwrap();
    assert_eq!(pending.requests.len(), 1);
    assert_eq!(pending.requests[0].request_id, req.request_id);
    assert_eq!(pending.requests[0].request.verify(&sp_pk, &e.octane.octane_public_key).unwrap(), req);
    let other = App::new(&e, 2);
    let (_, v) = other.call("GET", paths::APP_SIGN_PENDING, None).await;
    assert_eq!(v["requests"], json!([]));
    let sig = appliance_sign(&req, &evm_key());
    let body = json!({"signature": base64_url(&sig)});
    let (st, _) = other.call("POST", &paths::app_sign_result(&req.request_id), Some(body.clone())).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Wrong length, garbage, or another key's signature: refused, the request stays pending.
    let other_key = k256::ecdsa::SigningKey::from_bytes(&[0x12; 32].into()).unwrap();
    for bad in [vec![1; 64], vec![0xab; 65], appliance_sign(&req, &other_key)] {
        let (st, v) = app
            .call("POST", &paths::app_sign_result(&req.request_id), Some(json!({"signature": base64_url(&bad)})))
            .await;
        assert_eq!((st, code_of(&v)), (StatusCode::BAD_REQUEST, "signature_invalid"));
    }
    assert_eq!(e.sp.sign_result(&req.request_id, 0).await.unwrap(), SignResult::Pending);
    // The display digest and the appliance's receipt come together, and the receipt must be
    // the pair's appliance's, over this request and this digest.
    let screen = sunstorm_core::decode::DisplayDigest([0x5c; 32]);
    let identity = Key32(app.appliance.verifying_key().to_bytes());
    let receipt = |digest, key: &SigningKey| {
        let r = sunstorm_core::receipt::SignReceipt::for_request(&req, digest, identity);
        SignedEnvelope::seal(Domain::SignReceipt, key, &r).unwrap()
    };
    let with = |digest: Option<sunstorm_core::decode::DisplayDigest>, receipt: Option<SignedEnvelope>| {
        let mut b = json!({"signature": base64_url(&sig)});
        if let Some(d) = digest {
            b["display_digest"] = json!(d.hex());
        }
        if let Some(r) = receipt {
            b["receipt"] = serde_json::to_value(r).unwrap();
        }
        b
    };
    let other_screen = sunstorm_core::decode::DisplayDigest([0x0f; 32]);
    for (bad, code) in [
        (with(Some(screen), None), "bad_request"),
        (with(None, Some(receipt(screen, &app.appliance))), "bad_request"),
        (with(Some(screen), Some(receipt(other_screen, &app.appliance))), "signature_invalid"),
        (with(Some(screen), Some(receipt(screen, &SigningKey::from_bytes(&[0x66; 32])))), "signature_invalid"),
    ] {
        let (st, v) = app.call("POST", &paths::app_sign_result(&req.request_id), Some(bad)).await;
        assert_eq!((st, code_of(&v)), (StatusCode::BAD_REQUEST, code), "{v}");
    }
    assert_eq!(e.sp.sign_result(&req.request_id, 0).await.unwrap(), SignResult::Pending);
    let body = with(Some(screen), Some(receipt(screen, &app.appliance)));

    // The SP long-polls; the app answers.
    let sp = e.sp.clone();
    let rid = req.request_id;
    let waiter = tokio::spawn(async move { sp.await_sign(&rid, Duration::from_secs(20)).await });
    let (st, v) = app.call("POST", &paths::app_sign_result(&req.request_id), Some(body.clone())).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Posting the same signature again is idempotent.
    let (st, _) = app.call("POST", &paths::app_sign_result(&req.request_id), Some(body)).await;
    assert_eq!(st, StatusCode::OK);
    let SignResult::Signed { bundle } = waiter.await.unwrap().unwrap() else { panic!("not signed") };
    assert_eq!(bundle.appliance_sig, sig);
    assert_eq!(bundle.account, evm_account());
    assert_eq!(sp::verify_bundle(&bundle, &sp_pk, &e.octane.octane_public_key).unwrap(), req);
    // The digest and receipt reach the SP, which checks them with the attested identity.
    assert_eq!((bundle.display_digest, bundle.appliance_identity), (Some(screen), Some(identity)));
    let verified = sp::verify_signed(&bundle, &sp_pk, &e.octane.octane_public_key, &identity).unwrap();
    assert_eq!(verified.display_digest, screen);
    // A bundle whose appliance signature was altered fails the SP's own check.
    let mut altered = bundle.clone();
    altered.appliance_sig[10] ^= 1;
    assert!(sp::verify_bundle(&altered, &sp_pk, &e.octane.octane_public_key).is_err());
    // A rejection after the signature is refused.
    let (st, v) = app
        .call(
            "POST",
            &paths::app_sign_reject(&req.request_id),
            Some(json!({"reason_code": "user_rejected", "message": "no"})),
        )
        .await;
    assert_eq!((st, code_of(&v)), (StatusCode::CONFLICT, "request_not_pending"));

    // A rejected request reaches the SP with its reason.
    let req2 = sign_request(pair_id, &sol_account());
    e.sp.submit_sign(&e.sp_key, &req2).await.unwrap();
    let (st, _) = app
        .call(
            "POST",
            &paths::app_sign_reject(&req2.request_id),
            Some(json!({"reason_code": "user_rejected", "message": "no thanks"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        e.sp.sign_result(&req2.request_id, 0).await.unwrap(),
        SignResult::Rejected { reason_code: "user_rejected".into(), message: "no thanks".into() }
    );

    // An unanswered request expires.
    let req3 = sign_request(pair_id, &evm_account());
    e.sp.submit_sign(&e.sp_key, &req3).await.unwrap();
    e.clock.advance(121);
    assert_eq!(e.sp.sign_result(&req3.request_id, 0).await.unwrap(), SignResult::Expired);
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[tokio::test]
async fn revoked_pairs_refuse_sign_requests() {
    let e = env().await;
    let app = App::new(&e, 1);
    let (_s, pair_id) = paired(&e, &app).await;
    let pending = sign_request(pair_id, &evm_account());
    e.sp.submit_sign(&e.sp_key, &pending).await.unwrap();

    let r = e.sp.revoke(&pair_id).await.unwrap();
    assert_eq!(r.status, OctanePairStatus::Revoked);
    let err = e.sp.submit_sign(&e.sp_key, &sign_request(pair_id, &evm_account())).await.unwrap_err();
    assert!(matches!(err, sp::SpClientError::Api { status: 403, code: OctaneErrorCode::PairRevoked, .. }), "{err}");
    // The request that was pending is rejected, and the app learns the pair is revoked.
    assert!(matches!(
        e.sp.sign_result(&pending.request_id, 0).await.unwrap(),
        SignResult::Rejected { reason_code, .. } if reason_code == "pair_revoked"
    ));
    let (_, v) = app.call("GET", paths::APP_PAIRS, None).await;
    assert_eq!(v["pairs"][0]["status"], "revoked");
    assert_eq!(v["pairs"][0]["revoked_by"], "sp");
    // Revoking again is idempotent.
    assert_eq!(e.sp.revoke(&pair_id).await.unwrap().revoked_at, r.revoked_at);
}

#[tokio::test]
async fn the_appliance_revokes_with_a_signed_revocation() {
    let e = env().await;
    let app = App::new(&e, 1);
    let (_s, pair_id) = paired(&e, &app).await;
    let path = paths::app_pair_revoke(&pair_id);
    let rev = PairRevocation { v: STATEMENT_VERSION, pair_id, appliance_identity: app.identity(), revoked_at: NOW };

    // Signed by someone else: 400. Posted by another appliance's app: 403.
    let forged = SignedEnvelope::seal(Domain::PairRevocation, &SigningKey::from_bytes(&[3; 32]), &rev).unwrap();
    let (st, v) = app.call("POST", &path, Some(json!({"revocation": forged}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::BAD_REQUEST, "revocation_invalid"));
    let good = SignedEnvelope::seal(Domain::PairRevocation, &app.appliance, &rev).unwrap();
    let (st, _) = App::new(&e, 2).call("POST", &path, Some(json!({"revocation": good}))).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let (st, v) = app.call("POST", &path, Some(json!({"revocation": good}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["revoked_by"], "appliance");
    let err = e.sp.submit_sign(&e.sp_key, &sign_request(pair_id, &evm_account())).await.unwrap_err();
    assert_eq!(err.code(), Some(OctaneErrorCode::PairRevoked));
}

#[tokio::test]
async fn bad_input_is_a_4xx_never_a_500() {
    let e = env().await;
    let app = App::new(&e, 1);
    let demo = e.octane.demo_sp.clone();
    let http = reqwest::Client::new();
    let s = create(&e, None).await;

    // SP API, bearer-authenticated, with bodies that are not what the API defines.
    for (path, body) in [
        (paths::SP_PAIR_SESSIONS.to_string(), "{not json"),
        (paths::SP_PAIR_SESSIONS.to_string(), r#"{"sp_user_ref": 5, "chains": []}"#),
        (paths::SP_PAIR_SESSIONS.to_string(), r#"{"sp_user_ref": "u", "chains": ["bitcoin:000"]}"#),
        (paths::SP_PAIR_SESSIONS.to_string(), r#"{"sp_user_ref": "u", "chains": ["eip155:1"], "extra": 1}"#),
        (paths::SP_SIGN.to_string(), r#"{"pair_id": "nope", "request": {}}"#),
        (
            paths::SP_SIGN.to_string(),
            r#"{"pair_id": "8c3f0a4e-5c1e-4a57-9d0b-7f6f8e1f2a3b", "request": {"body": "%%%", "sig": ""}}"#,
        ),
        (paths::SP_SIGN.to_string(), ""),
    ] {
        let r = http
            .post(format!("{}{}", e.octane.url, path))
            .bearer_auth(&demo.api_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let st = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(st.is_client_error(), "{path} {body}: {st}");
        assert!(v["error"]["code"].is_string() && v["error"]["message"].is_string(), "{v}");
    }
    // A well-formed sign request for a pair that does not exist: 404.
    let err = e.sp.submit_sign(&e.sp_key, &sign_request(Uuid::new_v4(), &evm_account())).await.unwrap_err();
    assert_eq!(err.code(), Some(OctaneErrorCode::NotFound));
    // Unknown ids and bad ids in paths.
    for path in [
        paths::sp_pair_session_result("unknown-session-id-000000"),
        "/sp/sign/not-a-uuid/result".to_string(),
        format!("/sp/sign/{}/result", Uuid::new_v4()),
        "/nope".to_string(),
    ] {
        let r = http.get(format!("{}{}", e.octane.url, path)).bearer_auth(&demo.api_key).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(code_of(&v), "not_found");
    }
    let r = http
        .get(format!("{}{}?timeout_secs=abc", e.octane.url, paths::sp_pair_session_result(&s.session_id)))
        .bearer_auth(&demo.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // App API with malformed JSON (properly signed).
    for path in [
        paths::app_pair_session_code(&s.session_id),
        paths::app_pair_session_approve(&s.session_id),
        paths::app_pair_revoke(&Uuid::new_v4()),
        paths::app_sign_result(&Uuid::new_v4()),
    ] {
        let (st, v) = app.call_raw("POST", &path, b"{\"x\":".to_vec()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(code_of(&v), "bad_request");
    }
    let (st, v) = app
        .call(
            "POST",
            &paths::app_pair_session_approve(&s.session_id),
            Some(json!({"attestation": {"body": "AAAA", "sig": "AAAA"}})),
        )
        .await;
    assert_eq!((st, code_of(&v)), (StatusCode::BAD_REQUEST, "attestation_invalid"));
    // Oversized bodies: 413 with a JSON error.
    let (st, v) = app.call_raw("POST", &paths::app_pair_session_code(&s.session_id), vec![b' '; 300 * 1024]).await;
    assert_eq!((st, code_of(&v)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
}

#[tokio::test]
async fn state_survives_a_restart_with_a_file_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("octane.sqlite");
    let cfg = || OctaneSimConfig { seed: Some([9; 32]), db_path: Some(db.clone()), ..Default::default() };
    let first = OctaneSim::start(cfg()).await.unwrap();
    let demo = first.demo_sp.clone();
    let key = first.octane_public_key;
    let s = SpClient::new(&first.url, &demo.api_key)
        .unwrap()
        .create_session(&CreateSessionRequest {
            sp_user_ref: "u".into(),
            chains: vec![ChainId::Evm(1)],
            return_url: None,
            ttl_secs: None,
        })
        .await
        .unwrap();
    first.shutdown().await;
    let second = OctaneSim::start(cfg()).await.unwrap();
    assert_eq!(second.octane_public_key, key);
    assert_eq!(second.demo_sp.api_key, demo.api_key);
    let r = SpClient::new(&second.url, &demo.api_key).unwrap().pair_result(&s.session_id, 0).await.unwrap();
    assert_eq!(r, PairResult::Pending);
}

#[tokio::test]
async fn a_rejection_reaches_the_sp_with_its_reason() {
    let e = env().await;
    let s = create(&e, None).await;
    let app = App::new(&e, 1);
    let reject = paths::app_pair_session_reject(&s.session_id);
    // Without the code, a link alone cannot cancel the session.
    let (st, v) = app.call("POST", &reject, Some(json!({"reason": "not me"}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::CONFLICT, "code_not_verified"));
    app.call("POST", &paths::app_pair_session_code(&s.session_id), Some(json!({"code": s.validation_code}))).await;
    let (st, v) = app.call("POST", &reject, Some(json!({"reason": "not me"}))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["status"], "rejected");
    // Idempotent, and the session cannot be approved afterwards.
    let (st, _) = app.call("POST", &reject, None).await;
    assert_eq!(st, StatusCode::OK);
    let (_, env) = app.attestation(&s, &e.sp_key, vec![evm_account()]);
    let (st, v) =
        app.call("POST", &paths::app_pair_session_approve(&s.session_id), Some(json!({"attestation": env}))).await;
    assert_eq!((st, code_of(&v)), (StatusCode::CONFLICT, "session_used"));
    assert_eq!(
        e.sp.await_pair(&s.session_id, Duration::from_secs(5)).await.unwrap(),
        PairResult::Rejected { reason: Some("not me".into()) }
    );
}

#[tokio::test]
async fn random_bodies_never_get_a_500() {
    use rand::{Rng, SeedableRng};
    let e = env().await;
    let app = App::new(&e, 1);
    let demo = e.octane.demo_sp.clone();
    let http = reqwest::Client::new();
    let s = create(&e, None).await;
    let (_s2, pair_id) = paired(&e, &app).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let fragments = [
        "{",
        "}",
        "[",
        "]",
        "\"",
        ":",
        ",",
        "null",
        "1e999",
        "-1",
        "\"AAAA\"",
        "\"body\"",
        "\"sig\"",
        "\"code\"",
        "\"attestation\"",
        "\"revocation\"",
        "\"signature\"",
        "\"pair_id\"",
        "\"request\"",
        "\"eip155:1\"",
        "\u{0}",
        "\u{202e}",
        "true",
    ];
    let app_paths = [
        paths::app_pair_session_code(&s.session_id),
        paths::app_pair_session_approve(&s.session_id),
        paths::app_pair_session_reject(&s.session_id),
        paths::app_pair_revoke(&pair_id),
        paths::app_sign_result(&Uuid::new_v4()),
        paths::app_sign_reject(&Uuid::new_v4()),
    ];
    for i in 0..120 {
        let n = rng.gen_range(0..12);
        let body: String = (0..n).map(|_| fragments[rng.gen_range(0..fragments.len())]).collect();
        let (st, v) = if i % 2 == 0 {
            let path = &app_paths[rng.gen_range(0..app_paths.len())];
            app.call_raw("POST", path, body.clone().into_bytes()).await
        } else {
            let path = if rng.gen_bool(0.5) { paths::SP_SIGN } else { paths::SP_PAIR_SESSIONS };
            let r = http
                .post(format!("{}{}", e.octane.url, path))
                .bearer_auth(&demo.api_key)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let st = r.status();
            (st, r.json().await.unwrap_or(Value::Null))
        };
        assert!(st.is_client_error(), "{body:?} -> {st} {v}");
        assert!(v["error"]["code"].is_string(), "{body:?} -> {v}");
    }
}

// ---------------------------------------------------------------------------------------
// Property: request parsing. Whatever the route, method, id, query, body and authentication
// (none, garbage, a valid bearer key, a correctly signed app request), octane answers JSON:
// a 2xx, or a 4xx whose `error.code` is the one its status stands for. Never a 5xx.
// ---------------------------------------------------------------------------------------

mod request_parsing {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    /// Every route octane serves: (method, path template; `{}` is the id).
    const ROUTES: &[(&str, &str)] = &[
        ("POST", "/sp/pair/sessions"),
        ("GET", "/sp/pair/sessions/{}/result"),
        ("POST", "/sp/pairs/{}/revoke"),
        ("POST", "/sp/sign"),
        ("GET", "/sp/sign/{}/result"),
        ("GET", "/app/pair/sessions/{}"),
        ("POST", "/app/pair/sessions/{}/code"),
        ("POST", "/app/pair/sessions/{}/approve"),
        ("POST", "/app/pair/sessions/{}/reject"),
        ("GET", "/app/pairs"),
        ("POST", "/app/pairs/{}/revoke"),
        ("GET", "/app/sign/pending"),
        ("POST", "/app/sign/{}/result"),
        ("POST", "/app/sign/{}/reject"),
    ];

    /// Field names and values the API uses, so generated bodies get past the first check.
    const FIELDS: &[&str] = &[
        "sp_user_ref",
        "chains",
        "return_url",
        "ttl_secs",
        "pair_id",
        "request",
        "body",
        "sig",
        "code",
        "attestation",
        "reason",
        "revocation",
        "signature",
        "reason_code",
        "message",
        "x",
    ];
    const WORDS: &[&str] = &[
        "",
        "AAAA",
        "A",
        "eip155:1",
        "eip155:01",
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
        "bitcoin:000",
        "https://sp.example/done",
        "http://sp.example/",
        "009042",
        "12345",
        "8c3f0a4e-5c1e-4a57-9d0b-7f6f8e1f2a3b",
        "user_rejected",
        "\u{0}",
        "\u{202e}",
        "%%%",
    ];

    #[derive(Debug, Clone)]
    enum Auth {
        None,
        Garbage(String),
        Bearer,
        Signed,
    }

    #[derive(Debug, Clone)]
    struct Input {
        route: usize,
        /// The other of GET/POST (a route with this method does not exist: 404).
        other_method: bool,
        /// Whether a GET carries the body too (GET requests have none).
        body_on_get: bool,
        id: Id,
        query: Option<String>,
        body: Vec<u8>,
        auth: Auth,
    }

    #[derive(Debug, Clone)]
    enum Id {
        Session,
        Pair,
        Random,
        Text(String),
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e30f64..1e30).prop_map(Value::from),
            prop::sample::select(WORDS).prop_map(Value::from),
            ".{0,40}".prop_map(Value::String),
            "[A-Za-z0-9_-]{0,120}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    fn input() -> impl Strategy<Value = Input> {
        let id = prop_oneof![Just(Id::Session), Just(Id::Pair), Just(Id::Random), ".{1,40}".prop_map(Id::Text),];
        let query = prop::option::of(prop_oneof![
            prop::sample::select(
                &[
                    "timeout_secs=0",
                    "timeout_secs=-1",
                    "timeout_secs=abc",
                    "timeout_secs=",
                    "timeout_secs=99999999999999999999999",
                    "timeout_secs=0&timeout_secs=0",
                    "x=1"
                ][..]
            )
            .prop_map(str::to_string),
            "[ -~]{0,20}",
        ]);
        let body = prop_oneof![
            4 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            1 => prop::collection::vec(any::<u8>(), 0..64),
        ];
        let auth = prop_oneof![
            1 => Just(Auth::None),
            1 => "[ -~]{0,64}".prop_map(Auth::Garbage),
            2 => Just(Auth::Bearer),
            4 => Just(Auth::Signed),
        ];
        (0..ROUTES.len(), prop::bool::weighted(0.1), prop::bool::weighted(0.1), id, query, body, auth).prop_map(
            |(route, other_method, body_on_get, id, query, body, auth)| Input {
                route,
                other_method,
                body_on_get,
                id,
                query,
                body,
                auth,
            },
        )
    }

    struct World {
        e: Env,
        app: App,
        session: String,
        pair: Uuid,
        http: reqwest::Client,
    }

    async fn send(w: &World, i: &Input) -> (StatusCode, Option<String>, String) {
        let (method, template) = ROUTES[i.route];
        let method = match (method, i.other_method) {
            ("GET", true) => "POST",
            ("POST", true) => "GET",
            (m, _) => m,
        };
        let body = if method == "GET" && !i.body_on_get { Vec::new() } else { i.body.clone() };
        let id = match &i.id {
            Id::Session => w.session.clone(),
            Id::Pair => w.pair.to_string(),
            Id::Random => Uuid::new_v4().to_string(),
            Id::Text(t) => url::form_urlencoded::byte_serialize(t.as_bytes()).collect(),
        };
        let mut path = template.replace("{}", &id);
        if let Some(q) = &i.query {
            path.push('?');
            path.extend(
                url::form_urlencoded::byte_serialize(q.as_bytes()).map(|s| s.replace("%3D", "=").replace("%26", "&")),
            );
        }
        let url = reqwest::Url::parse(&format!("{}{}", w.e.octane.url, path)).unwrap();
        let mut req = w.http.request(method.parse().unwrap(), url.clone());
        match &i.auth {
            Auth::None => {}
            Auth::Garbage(g) => {
                for name in [
                    "authorization",
                    app_auth::HEADER_ENDORSEMENT,
                    app_auth::HEADER_TIMESTAMP,
                    app_auth::HEADER_NONCE,
                    app_auth::HEADER_SIGNATURE,
                ] {
                    req = req.header(name, g.as_str());
                }
            }
            Auth::Bearer => req = req.bearer_auth(&w.e.octane.demo_sp.api_key),
            Auth::Signed => {
                let now = sunstorm_core::clock::Clock::now_unix(&*w.app.clock);
                let target = app_auth::path_and_query(&url);
                let h = app_auth::sign_app_request(&w.app.app_key, &w.app.endorsement, method, &target, &body, now)
                    .unwrap();
                for (k, v) in h.pairs() {
                    req = req.header(k, v);
                }
            }
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json").body(body);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
        (status, ct, r.text().await.unwrap_or_default())
    }

    fn judge(i: &Input, (status, ct, text): (StatusCode, Option<String>, String)) -> Result<(), TestCaseError> {
        prop_assert!(!status.is_server_error(), "{i:?} -> {status} {text}");
        prop_assert_eq!(ct.as_deref(), Some("application/json"), "{:?} -> {} {}", i, status, text);
        let v: Value =
            serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{i:?} -> not JSON ({e}): {text}")))?;
        if !status.is_success() {
            let code: OctaneErrorCode = serde_json::from_value(v["error"]["code"].clone())
                .map_err(|e| TestCaseError::fail(format!("{i:?} -> no error code ({e}): {text}")))?;
            prop_assert!(code != OctaneErrorCode::Unknown && v["error"]["message"].is_string(), "{i:?} -> {text}");
            prop_assert_eq!(code.http_status(), status.as_u16(), "{:?} -> {}", i, text);
        }
        Ok(())
    }

    #[test]
    fn arbitrary_requests_get_json_and_never_a_5xx() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let w = rt.block_on(async {
            let e = env().await;
            let app = App::new(&e, 1);
            let (_, pair) = paired(&e, &app).await;
            let session = create(&e, None).await.session_id;
            World { app, session, pair, http: reqwest::Client::new(), e }
        });
        let mut runner = TestRunner::new(Config { cases: 512, failure_persistence: None, ..Config::default() });
        runner.run(&input(), |i| judge(&i, rt.block_on(send(&w, &i)))).unwrap();
    }
}

/// Found by schemathesis (seed 675477920): serde reads a struct from a JSON array, so a body
/// of `[]` passed as an empty rejection and cancelled the session. Bodies are objects.
#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused_and_changes_nothing() {
    let e = env().await;
    let s = create(&e, None).await;
    let app = App::new(&e, 1);
    app.call("POST", &paths::app_pair_session_code(&s.session_id), Some(json!({"code": s.validation_code}))).await;
    let reject = paths::app_pair_session_reject(&s.session_id);
    for body in [json!([]), json!(["not me"]), json!("not me"), json!(7)] {
        let (st, v) = app.call("POST", &reject, Some(body.clone())).await;
        assert_eq!((st, code_of(&v)), (StatusCode::BAD_REQUEST, "bad_request"), "{body}");
    }
    // The session is still open: the user can approve it.
    let (_, env) = app.attestation(&s, &e.sp_key, vec![evm_account()]);
    let (st, v) =
        app.call("POST", &paths::app_pair_session_approve(&s.session_id), Some(json!({"attestation": env}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// Found by schemathesis (seed 242905052): unknown query parameters were ignored while the
/// OpenAPI document allows only `timeout_secs`. They are refused.
#[tokio::test]
async fn unknown_query_parameters_are_refused() {
    let e = env().await;
    let demo = e.octane.demo_sp.clone();
    let s = create(&e, None).await;
    let http = reqwest::Client::new();
    let base = format!("{}{}", e.octane.url, paths::sp_pair_session_result(&s.session_id));
    for (query, want) in [
        ("?timeout_secs=0", StatusCode::OK),
        ("?timeout_secs=0&x=1", StatusCode::BAD_REQUEST),
        ("?%16=N", StatusCode::BAD_REQUEST),
    ] {
        let r = http.get(format!("{base}{query}")).bearer_auth(&demo.api_key).send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, want, "{query}: {v}");
        if want == StatusCode::BAD_REQUEST {
            assert_eq!(code_of(&v), "bad_request", "{query}");
        }
    }
}
