//! The phone's appliance client against the appliance simulator, in process, over the
//! simulated GATT link: bonding, impostors, faults with exactly-once signing, keep-alives,
//! garbage input, restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use sunstorm_core::appliance::client::{app_signing_key, bond, bond_with_config, ApplianceClient, ClientConfig};
use sunstorm_core::appliance::proto::{
    ApplianceErrorCode, Request, RequestBody, Response, ResponseBody, PROTOCOL_VERSION,
};
use sunstorm_core::appliance::{ApplianceApi, ApplianceError, ApplianceProgress, ProgressFn};
use sunstorm_core::ble::channel::{self, BondRecord, PhoneKeys};
use sunstorm_core::ble::framing::{FramedLink, FramingConfig};
use sunstorm_core::ble::transport::Connector;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{AccountId, ChainId, SOLANA_MAINNET};
use sunstorm_core::envelope::{self, Domain, SignedEnvelope};
use sunstorm_core::model::{
    CountersignedRequest, PairAttestation, PairRevocation, PairSessionDetails, PayloadKind, SignRequest, SpProfile,
};
use sunstorm_core::payload;
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_sim::appliance::{ApplianceSim, ApplianceSimConfig, UserScript};
use sunstorm_sim::link::{SimConnector, SimLinkConfig};
use sunstorm_sim::octane::ManualClock;
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

fn fast_framing() -> FramingConfig {
    FramingConfig { reassembly_timeout: Duration::from_millis(100), ..FramingConfig::default() }
}

fn sim_cfg(seed: u8) -> ApplianceSimConfig {
    ApplianceSimConfig {
        seed: vec![seed; 32],
        pin: Some("123456".into()),
        octane_key: Key32(octane().verifying_key().to_bytes()),
        framing: fast_framing(),
        keepalive: Duration::from_millis(200),
        handshake_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(5),
        ..ApplianceSimConfig::default()
    }
}

fn client_cfg() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_millis(400),
        handshake_timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_secs(2),
        max_retries: 8,
        max_resends: 8,
        retry_backoff: Duration::from_millis(5),
        framing: fast_framing(),
        bond_retry: channel::BondRetry { resend_after: Duration::from_millis(300), max_resends: 8 },
    }
}

/// A connector to `sim` over a link with `link` faults, served in the background.
fn connect(sim: &ApplianceSim, link: SimLinkConfig) -> Arc<SimConnector> {
    let (c, acceptor) = SimConnector::new(link);
    sim.spawn_acceptor(acceptor);
    Arc::new(c)
}

async fn bonded(sim: &ApplianceSim) -> (MemorySecretStore, BondRecord) {
    let store = MemorySecretStore::default();
    let c = connect(sim, SimLinkConfig::default());
    let rec = bond(c.as_ref(), &sim.pin(), &store, "test phone").await.unwrap();
    (store, rec)
}

fn session(chains: Vec<ChainId>, expires_at: u64) -> SignedEnvelope {
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
        expires_at,
    };
    SignedEnvelope::seal(Domain::OctaneSession, &octane(), &details).unwrap()
}

fn sign_request(pair_id: Uuid, account: &AccountId, msg: &[u8]) -> (CountersignedRequest, SignRequest) {
    sign_request_of(pair_id, account, PayloadKind::Eip191Message, msg)
}

fn sign_request_of(
    pair_id: Uuid,
    account: &AccountId,
    kind: PayloadKind,
    msg: &[u8],
) -> (CountersignedRequest, SignRequest) {
    let req = SignRequest {
        v: 1,
        request_id: Uuid::new_v4(),
        pair_id,
        chain: account.chain.clone(),
        account: account.clone(),
        kind,
        payload: msg.to_vec(),
        created_at: now(),
        expires_at: now() + 300,
    };
    let body = sunstorm_core::cbor::to_vec(&req).unwrap();
    let sp_sig = envelope::sign_bytes(Domain::SpSignRequest, &sp(), &body).to_vec();
    let octane_sig = envelope::sign_bytes(Domain::OctaneSignRequest, &octane(), &body).to_vec();
    (CountersignedRequest { body, sp_sig, octane_sig }, req)
}

fn evm_account(sim: &ApplianceSim) -> AccountId {
    sim.wallets().into_iter().find(|a| a.chain == ChainId::Evm(1)).unwrap()
}

async fn pair(sim: &ApplianceSim, client: &ApplianceClient) -> Uuid {
    let env = session(vec![ChainId::Evm(1), ChainId::Evm(8453)], now() + 300);
    let att = client.approve_pair(Uuid::new_v4(), &env, "123456", &[evm_account(sim)], None).await.unwrap();
    let att: PairAttestation = att.open(Domain::PairAttestation, sim.identity().as_bytes()).unwrap();
    assert_eq!(att.bindings, vec![evm_account(sim)]);
    att.pair_id
}

fn check_signature(req: &SignRequest, sig: &[u8]) {
    let target = payload::signing_target(req.kind, &req.payload, &req.chain).unwrap();
    payload::verify_appliance_signature(&target, sig, &req.account).unwrap();
}

#[tokio::test]
async fn bonding_with_the_right_pin_then_info_and_wallets() {
    let sim = ApplianceSim::new(sim_cfg(7)).unwrap();
    let (store, rec) = bonded(&sim).await;
    assert_eq!(rec.appliance_identity, sim.identity());
    assert_eq!(rec.appliance_static, sim.channel_public());
    let keys = PhoneKeys::load(&store).unwrap().unwrap();
    assert_eq!(sim.bonded_phones()[0].channel_static, keys.channel_public());
    assert_eq!(app_signing_key(&store).unwrap().verifying_key().to_bytes(), keys.app_public().0);

    let client = ApplianceClient::new(connect(&sim, SimLinkConfig::default()), rec, &store, client_cfg()).unwrap();
    let info = client.info().await.unwrap();
    assert_eq!(info.identity, sim.identity());
    assert_eq!(info.protocol_version, PROTOCOL_VERSION);
    let all = client.wallets(&[]).await.unwrap();
    assert_eq!(all, sim.wallets());
    assert_eq!(all.len(), 3);
    let sol = client.wallets(&[ChainId::Solana(SOLANA_MAINNET.into())]).await.unwrap();
    assert_eq!(sol.len(), 1);
    assert!(sol[0].solana_pubkey().is_some());
    let base = client.wallets(&[ChainId::Evm(8453)]).await.unwrap();
    assert_eq!(base[0].address, evm_account(&sim).address);
}

#[tokio::test]
async fn wrong_pins_until_lockout_then_a_new_pin() {
    let clock = Arc::new(ManualClock::new(now()));
    let sim = ApplianceSim::new(ApplianceSimConfig { clock: clock.clone(), ..sim_cfg(8) }).unwrap();
    let c = connect(&sim, SimLinkConfig::default());
    let store = MemorySecretStore::default();
    let first_pin = sim.pin();
    let wrong = if first_pin == "000000" { "111111" } else { "000000" };
    assert_eq!(bond(c.as_ref(), wrong, &store, "p").await, Err(ApplianceError::WrongPin { attempts_left: 2 }));
    assert_eq!(bond(c.as_ref(), wrong, &store, "p").await, Err(ApplianceError::WrongPin { attempts_left: 1 }));
    assert_eq!(bond(c.as_ref(), wrong, &store, "p").await, Err(ApplianceError::PinLocked));
    let new_pin = sim.pin();
    assert_ne!(new_pin, first_pin, "a lockout shows a new PIN");
    // Bonding waits out the lockout, then the old PIN is worthless.
    assert_eq!(
        bond(c.as_ref(), &new_pin, &store, "p").await,
        Err(ApplianceError::BondingTryLater { retry_after_secs: 30 })
    );
    clock.advance(30);
    assert_eq!(bond(c.as_ref(), &first_pin, &store, "p").await, Err(ApplianceError::WrongPin { attempts_left: 2 }));
    let rec = bond(c.as_ref(), &new_pin, &store, "p").await.unwrap();
    assert_eq!(rec.appliance_identity, sim.identity());
    assert_eq!(sim.bonded_phones().len(), 1);
}

#[tokio::test]
async fn an_impostor_appliance_is_refused() {
    let real = ApplianceSim::new(sim_cfg(9)).unwrap();
    let (store, rec) = bonded(&real).await;
    // The impostor even bonded this very phone, so it knows the phone's public key.
    let impostor = ApplianceSim::new(sim_cfg(10)).unwrap();
    bond(connect(&impostor, SimLinkConfig::default()).as_ref(), &impostor.pin(), &store, "p").await.unwrap();
    let client = ApplianceClient::new(connect(&impostor, SimLinkConfig::default()), rec, &store, client_cfg()).unwrap();
    assert_eq!(client.info().await, Err(ApplianceError::UnknownAppliance));
    assert_eq!(client.list_pairs().await, Err(ApplianceError::UnknownAppliance));

    // A phone the appliance never bonded is refused too.
    let stranger = MemorySecretStore::default();
    PhoneKeys::load_or_create(&stranger).unwrap();
    let fake_bond = BondRecord { ..real_bond_of(&real) };
    let client =
        ApplianceClient::new(connect(&real, SimLinkConfig::default()), fake_bond, &stranger, client_cfg()).unwrap();
    assert_eq!(client.info().await, Err(ApplianceError::UnknownAppliance));
}

fn real_bond_of(sim: &ApplianceSim) -> BondRecord {
    BondRecord {
        appliance_identity: sim.identity(),
        appliance_static: sim.channel_public(),
        appliance_name: "x".into(),
        endorsement: SignedEnvelope { body: vec![], sig: vec![] },
    }
}

#[tokio::test]
async fn pair_sign_revoke_and_the_checks_the_appliance_makes() {
    let sim = ApplianceSim::new(sim_cfg(11)).unwrap();
    let (store, rec) = bonded(&sim).await;
    let client = ApplianceClient::new(connect(&sim, SimLinkConfig::default()), rec, &store, client_cfg()).unwrap();

    // Session checks.
    let forged = {
        let mut e = session(vec![ChainId::Evm(1)], now() + 300);
        e.sig[0] ^= 1;
        e
    };
    fn refused(code: &'static str) -> impl Fn(Result<SignedEnvelope, ApplianceError>) {
        move |r| match r {
            Err(ApplianceError::Refused { code: c, .. }) => assert_eq!(c, code),
            other => panic!("expected {code}, got {other:?}"),
        }
    }
    refused("bad_session_signature")(
        client.approve_pair(Uuid::new_v4(), &forged, "123456", &[evm_account(&sim)], None).await,
    );
    refused("session_expired")(
        client
            .approve_pair(
                Uuid::new_v4(),
                &session(vec![ChainId::Evm(1)], now() - 1),
                "123456",
                &[evm_account(&sim)],
                None,
            )
            .await,
    );
    let sol = sim.wallets().into_iter().find(|a| !a.chain.is_evm()).unwrap();
    refused("binding_not_requested")(
        client.approve_pair(Uuid::new_v4(), &session(vec![ChainId::Evm(1)], now() + 300), "123456", &[sol], None).await,
    );
    let stranger = AccountId::evm(1, [7u8; 20]);
    refused("not_own_account")(
        client
            .approve_pair(Uuid::new_v4(), &session(vec![ChainId::Evm(1)], now() + 300), "123456", &[stranger], None)
            .await,
    );
    assert!(sim.pairs().is_empty());

    let pair_id = pair(&sim, &client).await;
    assert_eq!(client.list_pairs().await.unwrap(), vec![pair_id]);

    // A good signature, verified like the core will.
    let (csr, req) = sign_request(pair_id, &evm_account(&sim), b"hello sigil");
    let sig = client.sign(&csr, None).await.unwrap();
    check_signature(&req, &sig);
    // Asked again with the same id: the first answer, no second signature.
    assert_eq!(client.sign(&csr, None).await.unwrap(), sig);
    assert_eq!(sim.signatures_made(req.request_id), 1);

    // Sign checks.
    let mut bad_sp = sign_request(pair_id, &evm_account(&sim), b"x").0;
    bad_sp.sp_sig[5] ^= 1;
    assert!(
        matches!(client.sign(&bad_sp, None).await, Err(ApplianceError::Refused { code, .. }) if code == "bad_sp_signature")
    );
    let mut bad_oct = sign_request(pair_id, &evm_account(&sim), b"x").0;
    bad_oct.octane_sig[5] ^= 1;
    assert!(
        matches!(client.sign(&bad_oct, None).await, Err(ApplianceError::Refused { code, .. }) if code == "bad_octane_signature")
    );
    let base = sim.wallets().into_iter().find(|a| a.chain == ChainId::Evm(8453)).unwrap();
    let unbound = sign_request(pair_id, &base, b"x").0;
    assert!(
        matches!(client.sign(&unbound, None).await, Err(ApplianceError::Refused { code, .. }) if code == "account_not_bound")
    );
    let unknown = sign_request(Uuid::new_v4(), &evm_account(&sim), b"x").0;
    assert!(
        matches!(client.sign(&unknown, None).await, Err(ApplianceError::Refused { code, .. }) if code == "unknown_pair")
    );

    // The user says no.
    sim.set_user(UserScript::Reject);
    let (csr2, req2) = sign_request(pair_id, &evm_account(&sim), b"no");
    assert_eq!(client.sign(&csr2, None).await, Err(ApplianceError::UserRejected));
    sim.set_user(UserScript::Approve);
    // The first answer stands for that id.
    assert_eq!(client.sign(&csr2, None).await, Err(ApplianceError::UserRejected));
    assert_eq!(sim.signatures_made(req2.request_id), 0);

    // Revoke: a signed revocation, then signing under the pair fails.
    let rev = client.revoke_pair(Uuid::new_v4(), pair_id).await.unwrap();
    let rev: PairRevocation = rev.open(Domain::PairRevocation, sim.identity().as_bytes()).unwrap();
    assert_eq!(rev.pair_id, pair_id);
    assert!(client.list_pairs().await.unwrap().is_empty());
    let after = sign_request(pair_id, &evm_account(&sim), b"late").0;
    assert!(
        matches!(client.sign(&after, None).await, Err(ApplianceError::Refused { code, .. }) if code == "pair_revoked")
    );
    assert_eq!(sim.total_signatures(), 1);
}

#[tokio::test]
async fn a_waiting_user_never_times_out_a_silent_appliance_does() {
    let sim = ApplianceSim::new(ApplianceSimConfig { keepalive: Duration::from_millis(300), ..sim_cfg(12) }).unwrap();
    let (store, rec) = bonded(&sim).await;
    let cfg = ClientConfig { request_timeout: Duration::from_secs(1), ..client_cfg() };
    let client =
        ApplianceClient::new(connect(&sim, SimLinkConfig::default()), rec.clone(), &store, cfg.clone()).unwrap();
    let pair_id = pair(&sim, &client).await;
    sim.set_user(UserScript::Delay(3000));
    let seen: Arc<Mutex<Vec<ApplianceProgress>>> = Arc::default();
    let s2 = seen.clone();
    let progress: ProgressFn = Arc::new(move |p| s2.lock().unwrap().push(p));
    let (csr, req) = sign_request(pair_id, &evm_account(&sim), b"slow user");
    let sig = client.sign(&csr, Some(progress)).await.unwrap();
    check_signature(&req, &sig);
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().filter(|p| **p == ApplianceProgress::WaitingForUser).count() >= 3);
    assert!(seen.iter().any(|p| matches!(p, ApplianceProgress::Sending { sent, total } if sent == total)));
    assert!(!seen.iter().any(|p| matches!(p, ApplianceProgress::Reconnecting { .. })));

    // Nobody answers at all: a timeout, after the bounded retries.
    let (mute, _acceptor_never_served) = SimConnector::new(SimLinkConfig::default());
    let client = ApplianceClient::new(
        Arc::new(mute),
        rec,
        &store,
        ClientConfig {
            request_timeout: Duration::from_millis(200),
            handshake_timeout: Duration::from_millis(200),
            max_retries: 1,
            ..client_cfg()
        },
    )
    .unwrap();
    assert_eq!(client.info().await, Err(ApplianceError::Timeout));
}

/// 1,000 sign round trips over MTU 23, 185 and 247 with 5 % drop, duplicates, reordering
/// and random disconnects: each completes exactly once or fails with a specific error and
/// then succeeds when retried; the simulator's counters show no request signed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sign_round_trips_over_faulty_links_sign_each_request_once() {
    let sim = ApplianceSim::new(sim_cfg(13)).unwrap();
    let (store, rec) = bonded(&sim).await;
    let setup =
        ApplianceClient::new(connect(&sim, SimLinkConfig::default()), rec.clone(), &store, client_cfg()).unwrap();
    let pair_id = pair(&sim, &setup).await;
    let account = evm_account(&sim);
    let store = Arc::new(store);

    const CLIENTS: usize = 25;
    // Fewer at MTU 23, where a sign request is ~25 PDUs and 5 % loss breaks most attempts.
    let plan = [(23u16, 100usize), (185, 450), (247, 450)];
    let started = Instant::now();
    let mut all_ids = Vec::new();
    let mut app_retries = 0usize;
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    let mut reconnects = 0usize;
    let scale: usize = std::env::var("FAULT_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    for (mtu, n) in plan {
        let n = n / scale;
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let link = SimLinkConfig {
                mtu,
                drop: 0.05,
                duplicate: 0.02,
                reorder: 0.02,
                disconnect: 0.003,
                seed: 1000 * u64::from(mtu) + c as u64 * 97,
                ..SimLinkConfig::default()
            };
            let client = ApplianceClient::new(connect(&sim, link), rec.clone(), store.as_ref(), client_cfg()).unwrap();
            let account = account.clone();
            let share = n / CLIENTS + usize::from(c < n % CLIENTS);
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                let mut retries = 0usize;
                let mut errs: Vec<String> = Vec::new();
                let reconnecting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                for i in 0..share {
                    let (csr, req) = sign_request(pair_id, &account, format!("msg {mtu}/{c}/{i}").as_bytes());
                    let r2 = reconnecting.clone();
                    let progress: ProgressFn = Arc::new(move |p| {
                        if matches!(p, ApplianceProgress::Reconnecting { .. }) {
                            r2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    });
                    let mut tries = 0;
                    let sig = loop {
                        match client.sign(&csr, Some(progress.clone())).await {
                            Ok(sig) => break sig,
                            Err(e) => {
                                // Only link-level failures are acceptable here, never a refusal.
                                assert!(
                                    matches!(
                                        e,
                                        ApplianceError::Link(_) | ApplianceError::Timeout | ApplianceError::Channel(_)
                                    ),
                                    "unexpected {e:?}"
                                );
                                errs.push(format!("{e:?}").split('(').next().unwrap().to_string());
                                tries += 1;
                                retries += 1;
                                assert!(tries < 30, "request {} never completed", req.request_id);
                            }
                        }
                    };
                    check_signature(&req, &sig);
                    ids.push(req.request_id);
                }
                (ids, retries, errs, reconnecting.load(std::sync::atomic::Ordering::Relaxed))
            }));
        }
        for t in tasks {
            let (ids, retries, errs, rc) = t.await.unwrap();
            all_ids.extend(ids);
            app_retries += retries;
            reconnects += rc;
            for e in errs {
                *errors.entry(e).or_default() += 1;
            }
        }
        eprintln!(
            "MTU {mtu}: {n} round trips in {:?}, reconnects so far {reconnects}, errors so far {errors:?}",
            t0.elapsed()
        );
    }
    assert_eq!(all_ids.len(), 1000 / scale);
    for id in &all_ids {
        assert_eq!(sim.signatures_made(*id), 1, "request {id} signed once");
    }
    assert_eq!(sim.total_signatures() as usize, 1000 / scale);
    assert_eq!(sim.max_signatures_per_request(), 1);
    eprintln!(
        "1000 round trips in {:?}: {reconnects} reconnects inside the client, {app_retries} caller retries {errors:?}",
        started.elapsed()
    );
    assert!(reconnects > 0, "the faults were real");
}

#[tokio::test]
async fn garbage_frames_and_cbor_are_refused_without_harm() {
    let sim = ApplianceSim::new(sim_cfg(14)).unwrap();
    let (store, rec) = bonded(&sim).await;
    let c = connect(&sim, SimLinkConfig { mtu: 23, ..SimLinkConfig::default() });

    // Raw garbage PDUs and garbage first messages: the appliance drops the connection.
    for junk in [vec![0xffu8; 20], vec![0x80, 0xff, 0xff, 0xff, 0x0f], vec![], vec![0x00, 0x01]] {
        let link = c.connect().await.unwrap();
        let _ = link.send(junk).await;
        link.close().await;
    }
    for msg in [vec![0x99u8, 1, 2], vec![0x10, 0xff], vec![0x20; 3], vec![0x30; 40]] {
        let link = FramedLink::new(c.connect().await.unwrap(), fast_framing());
        link.send_message(&msg, None).await.unwrap();
        let _ = link.recv_message(Duration::from_millis(300)).await;
        link.close().await;
    }

    // Inside an authenticated channel: undecodable, truncated, oversize, other versions.
    let keys = PhoneKeys::load(&store).unwrap().unwrap();
    let link = Arc::new(FramedLink::new(c.connect().await.unwrap(), fast_framing()));
    let ch = channel::connect_phone(link, &keys, &rec, Duration::from_secs(1)).await.unwrap();
    let good = Request::new(Uuid::new_v4(), RequestBody::GetInfo).encode().unwrap();
    let mut v2 = Request::new(Uuid::new_v4(), RequestBody::ListPairs);
    v2.v = 2;
    let v2 = sunstorm_core::cbor::to_vec(&v2).unwrap();
    let cases: Vec<(Vec<u8>, ApplianceErrorCode)> = vec![
        (vec![0xff, 0x00, 0x13], ApplianceErrorCode::BadRequest),
        (good[..good.len() - 3].to_vec(), ApplianceErrorCode::BadRequest),
        (vec![0xa0; 40_000], ApplianceErrorCode::TooLarge),
        (v2, ApplianceErrorCode::UnsupportedVersion),
    ];
    for (msg, want) in cases {
        ch.send(&msg, None).await.unwrap();
        let resp = Response::decode(&ch.recv(Duration::from_secs(2)).await.unwrap()).unwrap();
        assert!(matches!(resp.body, ResponseBody::Error { code, .. } if code == want), "{resp:?}");
    }
    ch.send(&good, None).await.unwrap();
    let resp = Response::decode(&ch.recv(Duration::from_secs(2)).await.unwrap()).unwrap();
    assert!(matches!(resp.body, ResponseBody::Info(_)));
    ch.close().await;

    // The appliance is unharmed.
    let client = ApplianceClient::new(c, rec, &store, client_cfg()).unwrap();
    assert_eq!(client.info().await.unwrap().identity, sim.identity());
}

#[tokio::test]
async fn a_restarted_simulator_keeps_bonds_pairs_and_answered_ids() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ApplianceSimConfig { state_dir: Some(dir.path().to_path_buf()), ..sim_cfg(15) };
    let sim = ApplianceSim::new(cfg.clone()).unwrap();
    let (store, rec) = bonded(&sim).await;
    let client =
        ApplianceClient::new(connect(&sim, SimLinkConfig::default()), rec.clone(), &store, client_cfg()).unwrap();
    let pair_id = pair(&sim, &client).await;
    let (csr, req) = sign_request(pair_id, &evm_account(&sim), b"before restart");
    let sig = client.sign(&csr, None).await.unwrap();
    drop(client);
    drop(sim);

    let sim = ApplianceSim::new(cfg).unwrap();
    let client = ApplianceClient::new(connect(&sim, SimLinkConfig::default()), rec, &store, client_cfg()).unwrap();
    assert_eq!(client.info().await.unwrap().identity, sim.identity(), "the bond survived");
    assert_eq!(client.list_pairs().await.unwrap(), vec![pair_id]);
    assert_eq!(client.sign(&csr, None).await.unwrap(), sig, "the first answer survived");
    assert_eq!(sim.signatures_made(req.request_id), 1);
    assert_eq!(sim.total_signatures(), 1);
    let (csr2, req2) = sign_request(pair_id, &evm_account(&sim), b"after restart");
    check_signature(&req2, &client.sign(&csr2, None).await.unwrap());
}

#[tokio::test]
async fn bonding_over_a_small_mtu_link_with_a_bad_pin_format_is_refused_locally() {
    let sim = ApplianceSim::new(sim_cfg(16)).unwrap();
    let c = connect(&sim, SimLinkConfig { mtu: 23, ..SimLinkConfig::default() });
    let store = MemorySecretStore::default();
    assert!(matches!(bond(c.as_ref(), "12ab", &store, "p").await, Err(ApplianceError::Channel(_))));
    let rec = bond_with_config(c.as_ref(), &sim.pin(), &store, "p", &client_cfg()).await.unwrap();
    assert_eq!(rec.appliance_identity, sim.identity());
}

/// A legacy Solana message: `from` transfers `lamports` to `to` (System program).
fn system_transfer_message(from: [u8; 32], to: [u8; 32], lamports: u64) -> Vec<u8> {
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

#[tokio::test]
async fn solana_and_evm_wallets_sign_what_the_core_verifies() {
    let sim = ApplianceSim::new(sim_cfg(17)).unwrap();
    let (store, rec) = bonded(&sim).await;
    let client = ApplianceClient::new(connect(&sim, SimLinkConfig::default()), rec, &store, client_cfg()).unwrap();
    let sol_chain = ChainId::Solana(SOLANA_MAINNET.into());
    let sol = sim.wallets().into_iter().find(|a| a.chain == sol_chain).unwrap();
    let env = session(vec![ChainId::Evm(8453), sol_chain], now() + 300);
    let base = sim.wallets().into_iter().find(|a| a.chain == ChainId::Evm(8453)).unwrap();
    let att = client.approve_pair(Uuid::new_v4(), &env, "654321", &[sol.clone(), base.clone()], None).await.unwrap();
    let att: PairAttestation = att.open(Domain::PairAttestation, sim.identity().as_bytes()).unwrap();
    assert_eq!(att.validation_code, "654321");
    assert_eq!(att.bindings.len(), 2);

    let msg = system_transfer_message(sol.solana_pubkey().unwrap(), [5u8; 32], 1_000);
    let (csr, req) = sign_request_of(att.pair_id, &sol, PayloadKind::SolanaTransaction, &msg);
    let sig = client.sign(&csr, None).await.unwrap();
    assert_eq!(sig.len(), 64);
    check_signature(&req, &sig);

    let (csr, req) = sign_request(att.pair_id, &base, b"on base");
    let sig = client.sign(&csr, None).await.unwrap();
    assert_eq!(sig.len(), 65);
    check_signature(&req, &sig);

    // A Solana payload for an EVM account is refused, not signed.
    let (csr, _) = sign_request_of(att.pair_id, &base, PayloadKind::SolanaTransaction, &msg);
    assert!(
        matches!(client.sign(&csr, None).await, Err(ApplianceError::Refused { code, .. }) if code == "bad_payload")
    );
    assert_eq!(sim.total_signatures(), 2);
}

#[tokio::test]
async fn the_same_request_from_two_connections_while_the_user_decides_is_signed_once() {
    let sim = ApplianceSim::new(sim_cfg(18)).unwrap();
    let (store, rec) = bonded(&sim).await;
    let a = ApplianceClient::new(connect(&sim, SimLinkConfig::default()), rec.clone(), &store, client_cfg()).unwrap();
    let b = ApplianceClient::new(connect(&sim, SimLinkConfig::default()), rec, &store, client_cfg()).unwrap();
    let pair_id = pair(&sim, &a).await;
    sim.set_user(UserScript::Delay(800));
    let (csr, req) = sign_request(pair_id, &evm_account(&sim), b"twice?");
    let (ra, rb) = tokio::join!(a.sign(&csr, None), b.sign(&csr, None));
    let (sa, sb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(sa, sb, "one signature, delivered to both");
    check_signature(&req, &sa);
    assert_eq!(sim.signatures_made(req.request_id), 1);
    assert_eq!(sim.total_signatures(), 1);
}

#[tokio::test]
async fn a_cancel_withdraws_the_pending_prompt() {
    let sim = ApplianceSim::new(sim_cfg(19)).unwrap();
    let (store, rec) = bonded(&sim).await;
    let a = ApplianceClient::new(connect(&sim, SimLinkConfig::default()), rec.clone(), &store, client_cfg()).unwrap();
    let b = ApplianceClient::new(connect(&sim, SimLinkConfig::default()), rec, &store, client_cfg()).unwrap();
    let pair_id = pair(&sim, &a).await;
    sim.set_user(UserScript::Delay(60_000));
    let (csr, req) = sign_request(pair_id, &evm_account(&sim), b"never mind");
    let pending = a.sign(&csr, None);
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.request(Uuid::new_v4(), RequestBody::Cancel { id: req.request_id }, None).await
    };
    let (signed, cancelled) = tokio::join!(pending, cancel);
    assert_eq!(cancelled.unwrap(), ResponseBody::Cancelled);
    assert_eq!(signed, Err(ApplianceError::Cancelled));
    assert_eq!(sim.signatures_made(req.request_id), 0);
    // The first answer stands for that id.
    sim.set_user(UserScript::Approve);
    assert_eq!(a.sign(&csr, None).await, Err(ApplianceError::Cancelled));
}

#[tokio::test]
async fn an_appliance_without_an_octane_key_says_so_when_asked_to_pair() {
    let sim = ApplianceSim::new(ApplianceSimConfig { octane_key: Key32::default(), ..sim_cfg(12) }).unwrap();
    let (store, rec) = bonded(&sim).await;
    let client = ApplianceClient::new(connect(&sim, SimLinkConfig::default()), rec, &store, client_cfg()).unwrap();
    // A genuine session: the refusal is about the missing setup, not about the signature.
    let genuine = session(vec![ChainId::Evm(1)], now() + 300);
    let r = client.approve_pair(Uuid::new_v4(), &genuine, "123456", &[evm_account(&sim)], None).await;
    match r {
        Err(ApplianceError::Refused { code, message }) => {
            assert_eq!(code, "bad_session_signature");
            assert!(message.contains("no octane key") && message.contains("--octane-key"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
