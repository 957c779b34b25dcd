//! Pair flow end to end: the core's `Sunstorm` against the octane simulator over loopback
//! HTTP and the appliance simulator over a simulated GATT link.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{ChainId, SOLANA_MAINNET};
use sunstorm_core::envelope::{Domain, SignedEnvelope};
use sunstorm_core::model::{PairSessionDetails, STATEMENT_VERSION};
use sunstorm_core::octane::api::{AppSessionResponse, OctaneErrorCode, PairResult, SessionStatus};
use sunstorm_core::octane::client::OctaneError;
use sunstorm_core::pair::{CrashPoint, PairError, PairOutcome, PairState};
use sunstorm_core::store::PairStatus;
use sunstorm_core::sunstorm::CoreError;
use sunstorm_e2e::{ready_to_approve, World, PIN};
use sunstorm_sim::appliance::UserScript;
use sunstorm_sim::octane::DEMO_SP_ORIGIN;
use sunstorm_sim::sp::{verify_pair_result, ExpectedPair, SpCheckError, SpClientError};

fn chains() -> Vec<ChainId> {
    vec![ChainId::Evm(1), ChainId::Solana(SOLANA_MAINNET.into())]
}

fn pair_err(r: Result<PairState, CoreError>) -> PairError {
    match r {
        Err(CoreError::Pair(e)) => e,
        other => panic!("expected a pair error, got {other:?}"),
    }
}

#[tokio::test]
async fn two_device_pair_end_to_end_and_the_sp_checks_the_attestation() {
    let w = World::new(UserScript::Approve).await;
    let s = w.session(&chains(), None).await;
    let st = w.phone.open_link(&s.link, None).await.unwrap();
    let PairState::CodeNeeded { flow_id, card, attempts_left } = st else { panic!("{st:?}") };
    assert_eq!(card.sp.name, "Demo SP");
    assert_eq!(card.sp_user_ref, "alice@sp");
    assert_eq!(card.requested_chains, chains());
    assert_eq!(attempts_left, Some(5));

    let st = w.phone.submit_code(flow_id, Some(&s.validation_code)).await.unwrap();
    assert_eq!(st.name(), "code_verified");
    let list = w.phone.approval_list(flow_id).await.unwrap();
    assert!(list.can_approve());
    let wallets = w.phone.appliance_wallets(None, &chains()).await.unwrap();
    assert!(wallets.len() >= 2);
    let st = w.phone.choose_wallets(flow_id, &wallets).await.unwrap();
    assert_eq!(st.name(), "wallets_chosen");
    let st = w.phone.approve_pair(flow_id).await.unwrap();
    let PairState::Paired { pair_id, bindings, outcome, .. } = st else { panic!("{st:?}") };
    assert_eq!(outcome, PairOutcome::Done);

    // The SP gets pair_id and bindings and verifies the appliance's attestation itself.
    let result = w.sim.sp.await_pair(&s.session_id, Duration::from_secs(5)).await.unwrap();
    let sp_key = w.sim.demo.profile.public_key;
    let expected = ExpectedPair {
        session_id: &s.session_id,
        validation_code: Some(&s.validation_code),
        sp_public_key: Some(&sp_key),
    };
    let att = verify_pair_result(&result, &expected).unwrap().unwrap();
    assert_eq!(att.pair_id, pair_id);
    assert_eq!(att.bindings, bindings);
    assert_eq!(att.appliance_identity, w.sim.appliance.identity());

    // The phone stored the pair with the SP key pinned, and the appliance holds one pair.
    let pairs = w.phone.list_pairs().unwrap();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].pair_id, pair_id);
    assert_eq!(pairs[0].sp_public_key, sp_key);
    assert_eq!(pairs[0].status, PairStatus::Active);
    assert_eq!(w.sim.appliance.pairs().len(), 1);
    assert!(w.phone.audit_log(10).unwrap().iter().any(|e| e.event.kind() == "pair_approved"));
}

#[tokio::test]
async fn single_device_pair_hands_back_the_validated_return_url() {
    let w = World::new(UserScript::Approve).await;
    let ret = format!("{DEMO_SP_ORIGIN}/paired?u=alice");
    let s = w.session(&chains(), Some(&ret)).await;
    let st = w.phone.open_link(&s.link_with_code, None).await.unwrap();
    let PairState::CodePrefilled { flow_id, card } = st else { panic!("{st:?}") };
    assert_eq!(card.return_url.as_deref(), Some(ret.as_str()));
    w.phone.submit_code(flow_id, None).await.unwrap();
    let wallets = w.phone.appliance_wallets(None, &[ChainId::Evm(1)]).await.unwrap();
    w.phone.choose_wallets(flow_id, &wallets).await.unwrap();
    let st = w.phone.approve_pair(flow_id).await.unwrap();
    let PairState::Paired { outcome, bindings, .. } = st else { panic!("{st:?}") };
    assert_eq!(outcome, PairOutcome::ReturnTo { url: ret });
    let r = w.sim.sp.await_pair(&s.session_id, Duration::from_secs(5)).await.unwrap();
    let PairResult::Paired { bindings: sp_bindings, .. } = r else { panic!("{r:?}") };
    assert_eq!(sp_bindings, bindings);
}

#[tokio::test]
async fn wrong_code_says_attempts_left_and_the_flow_stays_retryable() {
    let w = World::new(UserScript::Approve).await;
    let s = w.session(&chains(), None).await;
    let flow = w.phone.open_link(&s.link, None).await.unwrap().flow_id();
    let wrong = if s.validation_code == "000000" { "111111" } else { "000000" };
    let e = pair_err(w.phone.submit_code(flow, Some(wrong)).await);
    assert!(matches!(e, PairError::CodeRejected { attempts_left: 4 }), "{e:?}");
    assert_eq!(w.phone.pair_state(flow).await.unwrap().name(), "code_needed");
    // Not a code at all: refused locally, no attempt spent.
    let e = pair_err(w.phone.submit_code(flow, Some("12a456")).await);
    assert!(matches!(e, PairError::Code(_)));
    let st = w.phone.submit_code(flow, Some(&s.validation_code)).await.unwrap();
    assert_eq!(st.name(), "code_verified");
}

#[tokio::test]
async fn too_many_wrong_codes_lock_the_session() {
    let w = World::new(UserScript::Approve).await;
    let s = w.session(&chains(), None).await;
    let flow = w.phone.open_link(&s.link, None).await.unwrap().flow_id();
    let wrong = if s.validation_code == "000000" { "111111" } else { "000000" };
    let mut lefts = Vec::new();
    let last = loop {
        match pair_err(w.phone.submit_code(flow, Some(wrong)).await) {
            PairError::CodeRejected { attempts_left } => lefts.push(attempts_left),
            other => break other,
        }
        assert!(lefts.len() <= 5, "never locked: {lefts:?}");
    };
    assert_eq!(lefts, vec![4, 3, 2, 1, 0][..lefts.len()].to_vec());
    assert!(matches!(last, PairError::SessionLocked | PairError::WrongState { .. }), "{last:?}");
    assert_eq!(w.phone.pair_state(flow).await.unwrap().name(), "failed");
    // Even the right code no longer works, on a fresh flow too.
    let e = pair_err(w.phone.open_link(&s.link, None).await);
    assert!(matches!(e, PairError::SessionLocked), "{e:?}");
}

#[tokio::test]
async fn an_expired_session_is_refused_at_every_step() {
    let w = World::new(UserScript::Approve).await;
    // Expired on octane before the link is opened.
    let s = w.session(&chains(), None).await;
    w.octane_clock.advance(301);
    w.phone_clock.advance(301);
    let e = pair_err(w.phone.open_link(&s.link, None).await);
    assert!(matches!(e, PairError::SessionExpired), "{e:?}");

    // Expired on the phone's clock between the code and the approval: the appliance is
    // never asked.
    let w = World::new(UserScript::Approve).await;
    let s = w.session(&chains(), None).await;
    let flow = ready_to_approve(&w.phone, &s, &chains()).await;
    w.phone_clock.advance(301);
    let e = pair_err(w.phone.approve_pair(flow).await);
    assert!(matches!(e, PairError::SessionExpired), "{e:?}");
    assert_eq!(w.phone.pair_state(flow).await.unwrap().name(), "expired");
    assert!(w.sim.appliance.pairs().is_empty());
}

#[tokio::test]
async fn a_used_session_cannot_pair_again() {
    let w = World::new(UserScript::Approve).await;
    let s = w.session(&chains(), None).await;
    let flow = ready_to_approve(&w.phone, &s, &chains()).await;
    let paired = w.phone.approve_pair(flow).await.unwrap();
    let PairState::Paired { pair_id, .. } = paired else { panic!("{paired:?}") };
    // The same phone opening the link again (tapped twice, or after being killed before it
    // could show the result) is shown the pair it holds: no second pair, no return URL.
    match w.phone.open_link(&s.link, None).await.unwrap() {
        PairState::Paired { pair_id: again, outcome, flow_id, .. } => {
            assert_eq!((again, flow_id, outcome), (pair_id, flow, PairOutcome::Done));
        }
        other => panic!("reopened a paired session: {other:?}"),
    }
    assert_eq!(w.phone.list_pairs().unwrap().len(), 1);
    assert_eq!(w.sim.appliance.pairs().len(), 1);
    // Once that pair is revoked, the used session cannot pair again.
    w.phone.revoke(pair_id).await.unwrap();
    let e = pair_err(w.phone.open_link(&s.link, None).await);
    assert!(matches!(e, PairError::SessionUsed), "{e:?}");
    assert_eq!(w.phone.list_pairs().unwrap().len(), 1);
}

#[tokio::test]
async fn the_user_can_decline_on_the_phone_or_on_the_appliance() {
    let w = World::new(UserScript::Reject).await;
    let s = w.session(&chains(), None).await;
    let flow = ready_to_approve(&w.phone, &s, &chains()).await;
    let e = pair_err(w.phone.approve_pair(flow).await);
    assert!(matches!(e, PairError::RejectedOnAppliance), "{e:?}");
    assert_eq!(w.phone.pair_state(flow).await.unwrap().name(), "rejected");
    let r = w.sim.sp.await_pair(&s.session_id, Duration::from_secs(5)).await.unwrap();
    assert!(matches!(r, PairResult::Rejected { .. }), "{r:?}");

    // Declined on the phone after the code: octane and the SP learn it.
    let s = w.session(&chains(), None).await;
    let flow = w.phone.open_link(&s.link, None).await.unwrap().flow_id();
    w.phone.submit_code(flow, Some(&s.validation_code)).await.unwrap();
    let st = w.phone.reject_pair(flow).await.unwrap();
    assert_eq!(st.name(), "rejected");
    let r = w.sim.sp.await_pair(&s.session_id, Duration::from_secs(5)).await.unwrap();
    assert!(matches!(r, PairResult::Rejected { .. }), "{r:?}");

    // Declined before the code: the flow ends locally (octane takes rejections only from
    // the app that proved the code).
    let s = w.session(&chains(), None).await;
    let flow = w.phone.open_link(&s.link, None).await.unwrap().flow_id();
    assert_eq!(w.phone.reject_pair(flow).await.unwrap().name(), "rejected");
    assert_eq!(w.sim.sp.pair_result(&s.session_id, 0).await.unwrap(), PairResult::Pending);
    assert!(w.phone.list_pairs().unwrap().is_empty());
}

#[tokio::test]
async fn a_return_url_off_the_sp_origins_is_refused_by_octane_and_by_the_core() {
    let w = World::new(UserScript::Approve).await;
    // Octane refuses it at creation.
    let e = w
        .sim
        .sp
        .create_session(&sunstorm_core::octane::api::CreateSessionRequest {
            sp_user_ref: "alice".into(),
            chains: chains(),
            return_url: Some("https://evil.example/x".into()),
            ttl_secs: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, SpClientError::Api { code: OctaneErrorCode::ReturnUrlNotAllowed, .. }), "{e:?}");

    // A (compromised) octane that signs such a session anyway: the core refuses it.
    let octane_key = ed25519_dalek::SigningKey::from_bytes(&[0x55; 32]);
    let mut sp = w.sim.demo.profile.clone();
    sp.allowed_return_origins = vec![DEMO_SP_ORIGIN.into()];
    let details = PairSessionDetails {
        v: STATEMENT_VERSION,
        session_id: "S".repeat(22),
        sp,
        sp_user_ref: "alice".into(),
        requested_chains: chains(),
        return_url: Some("https://evil.example/steal".into()),
        created_at: sunstorm_e2e::now(),
        expires_at: sunstorm_e2e::now() + 300,
    };
    let env = SignedEnvelope::seal(Domain::OctaneSession, &octane_key, &details).unwrap();
    let body = serde_json::to_vec(&AppSessionResponse { details: env, status: SessionStatus::Open, attempts_left: 5 })
        .unwrap();
    let fake = fake_octane(200, body).await;
    let phone = w.reopen(|c| {
        c.octane_url = url::Url::parse(&fake).unwrap();
        c.octane_key = Key32(octane_key.verifying_key().to_bytes());
    });
    let link = format!("https://sigilvault.xyz/pair?session={}", "S".repeat(22));
    let e = pair_err(phone.open_link(&link, None).await);
    assert!(matches!(e, PairError::ReturnUrl(_)), "{e:?}");
}

#[tokio::test]
async fn an_octane_signing_with_another_key_is_refused() {
    let w = World::new(UserScript::Approve).await;
    let s = w.session(&chains(), None).await;
    let phone =
        w.reopen(|c| c.octane_key = Key32(ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes()));
    let e = pair_err(phone.open_link(&s.link, None).await);
    assert!(matches!(e, PairError::Octane(OctaneError::BadSignature(_))), "{e:?}");
    assert_eq!(e.code(), "octane_bad_signature");
}

/// A tiny HTTP server answering every request with `status` and `body`.
async fn fake_octane(status: u16, body: Vec<u8>) -> String {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move {
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn octane_down_slow_or_failing_gives_specific_errors_in_bounded_time() {
    let w = World::new(UserScript::Approve).await;
    let link = format!("https://sigilvault.xyz/pair?session={}", "A".repeat(22));
    let bound = Duration::from_secs(20);

    // Down: nothing listens on the port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let phone = w.reopen(|c| c.octane_url = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap());
    let e = pair_err(tokio::time::timeout(bound, phone.open_link(&link, None)).await.unwrap());
    assert!(matches!(e, PairError::Octane(OctaneError::Offline(_))), "{e:?}");
    drop(phone);

    // Slow: accepts the connection and never answers.
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_addr = slow.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = slow.accept().await {
            held.push(sock);
        }
    });
    let phone = w.reopen(|c| {
        c.octane_url = url::Url::parse(&format!("http://{slow_addr}")).unwrap();
        c.octane_request_timeout = Duration::from_millis(500);
    });
    let e = pair_err(tokio::time::timeout(bound, phone.open_link(&link, None)).await.unwrap());
    assert!(matches!(e, PairError::Octane(OctaneError::Timeout)), "{e:?}");
    drop(phone);

    // Failing: answers 500 (retried, then reported).
    let failing = fake_octane(500, b"{\"error\":{\"code\":\"internal\",\"message\":\"boom\"}}".to_vec()).await;
    let phone = w.reopen(|c| c.octane_url = url::Url::parse(&failing).unwrap());
    let e = pair_err(tokio::time::timeout(bound, phone.open_link(&link, None)).await.unwrap());
    assert!(matches!(e, PairError::Octane(OctaneError::ServerError { status: 500 })), "{e:?}");
}

#[tokio::test]
async fn killed_between_the_appliance_approval_and_octane_resumes_without_asking_again() {
    let w = World::new(UserScript::Approve).await;
    let s = w.session(&chains(), None).await;
    let crashing = w.reopen(|c| c.crash_point = CrashPoint::AfterAttestationStored);
    let flow = ready_to_approve(&crashing, &s, &chains()).await;
    let e = pair_err(crashing.approve_pair(flow).await);
    assert!(matches!(e, PairError::Interrupted));
    // The appliance approved once; octane knows nothing yet.
    assert_eq!(w.sim.appliance.pairs().len(), 1);
    assert_eq!(w.sim.sp.pair_result(&s.session_id, 0).await.unwrap(), PairResult::Pending);
    drop(crashing);

    // The app restarts on the same database.
    let phone = w.reopen(|_| {});
    let st = phone.pair_state(flow).await.unwrap();
    assert!(matches!(st, PairState::WaitingForAppliance { approved_by_appliance: true, .. }), "{st:?}");
    let resumed = phone.resume_pending().await.unwrap();
    assert_eq!(resumed.len(), 1);
    let st = resumed.into_iter().next().unwrap().unwrap();
    let PairState::Paired { pair_id, .. } = st else { panic!("{st:?}") };
    // Exactly one approval on the appliance, one pair everywhere.
    assert_eq!(w.sim.appliance.pairs().len(), 1);
    assert_eq!(phone.list_pairs().unwrap().len(), 1);
    let r = w.sim.sp.await_pair(&s.session_id, Duration::from_secs(5)).await.unwrap();
    let PairResult::Paired { pair_id: sp_pair, .. } = r else { panic!("{r:?}") };
    assert_eq!(sp_pair, pair_id);
    // Nothing left to resume; a second resume is a no-op.
    assert!(phone.resume_pending().await.unwrap().is_empty());
}

#[tokio::test]
async fn resuming_after_a_finished_pair_changes_nothing() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, _) = w.pair(&chains()).await;
    // Resuming a finished world changes nothing.
    let phone = w.reopen(|_| {});
    assert!(phone.resume_pending().await.unwrap().is_empty());
    assert_eq!(phone.list_pairs().unwrap()[0].pair_id, pair_id);
    assert_eq!(w.sim.appliance.pairs().len(), 1);
}

#[tokio::test]
async fn altering_any_bound_field_breaks_the_sps_attestation_check() {
    let w = World::new(UserScript::Approve).await;
    let s = w.session(&chains(), None).await;
    let flow = ready_to_approve(&w.phone, &s, &chains()).await;
    w.phone.approve_pair(flow).await.unwrap();
    let result = w.sim.sp.await_pair(&s.session_id, Duration::from_secs(5)).await.unwrap();
    let sp_key = w.sim.demo.profile.public_key;
    let good = ExpectedPair {
        session_id: &s.session_id,
        validation_code: Some(&s.validation_code),
        sp_public_key: Some(&sp_key),
    };
    assert!(verify_pair_result(&result, &good).unwrap().is_some());

    let other_session = format!("{}x", s.session_id);
    let e = verify_pair_result(&result, &ExpectedPair { session_id: &other_session, ..good.clone() });
    assert_eq!(e.unwrap_err(), SpCheckError::Mismatch("session_id"));
    let other_code = if s.validation_code == "999999" { "999998" } else { "999999" };
    let e = verify_pair_result(&result, &ExpectedPair { validation_code: Some(other_code), ..good.clone() });
    assert_eq!(e.unwrap_err(), SpCheckError::Mismatch("validation_code"));
    let other_key = Key32([1; 32]);
    let e = verify_pair_result(&result, &ExpectedPair { sp_public_key: Some(&other_key), ..good.clone() });
    assert_eq!(e.unwrap_err(), SpCheckError::Mismatch("sp_public_key"));

    let PairResult::Paired { pair_id, bindings, attestation, appliance_identity } = result else { panic!() };
    let mk = |p, b, a, i| PairResult::Paired { pair_id: p, bindings: b, attestation: a, appliance_identity: i };
    let e =
        verify_pair_result(&mk(uuid::Uuid::new_v4(), bindings.clone(), attestation.clone(), appliance_identity), &good);
    assert_eq!(e.unwrap_err(), SpCheckError::Mismatch("pair_id"));
    let e = verify_pair_result(&mk(pair_id, bindings[..1].to_vec(), attestation.clone(), appliance_identity), &good);
    assert_eq!(e.unwrap_err(), SpCheckError::Mismatch("bindings"));
    let e = verify_pair_result(&mk(pair_id, bindings.clone(), attestation.clone(), Key32([2; 32])), &good);
    assert!(e.is_err());
    // Every byte of the signed body matters.
    for i in 0..attestation.body.len() {
        let mut a = attestation.clone();
        a.body[i] ^= 0x01;
        assert!(verify_pair_result(&mk(pair_id, bindings.clone(), a, appliance_identity), &good).is_err(), "byte {i}");
    }
    let _ = PIN;
}

#[tokio::test]
async fn the_listener_sees_every_state_and_the_appliance_progress() {
    use std::sync::{Arc, Mutex};
    use sunstorm_core::appliance::ApplianceProgress;
    use sunstorm_core::sunstorm::Event;
    let w = World::new(UserScript::Delay(1500)).await;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = seen.clone();
    let phone = w.reopen_listening(Arc::new(move |e: &Event| {
        let name = match e {
            Event::PairState(s) => s.name().to_string(),
            Event::Progress { progress: ApplianceProgress::WaitingForUser, .. } => "progress:waiting_for_user".into(),
            Event::Progress { .. } => "progress".into(),
        };
        sink.lock().unwrap().push(name);
    }));
    let s = w.session(&chains(), Some(&format!("{DEMO_SP_ORIGIN}/back"))).await;
    let flow = phone.open_link(&s.link_with_code, None).await.unwrap().flow_id();
    phone.submit_code(flow, None).await.unwrap();
    let wallets = phone.appliance_wallets(None, &chains()).await.unwrap();
    phone.choose_wallets(flow, &wallets).await.unwrap();
    phone.approve_pair(flow).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let states: Vec<&str> = seen.iter().map(String::as_str).filter(|n| !n.starts_with("progress")).collect();
    assert_eq!(
        states,
        [
            "link_opened",
            "session_loaded",
            "code_prefilled",
            "code_verified",
            "wallets_chosen",
            "waiting_for_appliance",
            "waiting_for_appliance",
            "paired"
        ]
    );
    assert!(seen.iter().any(|n| n == "progress:waiting_for_user"), "{seen:?}");
}

/// A fake octane: GETs answer `get`, POSTs answer 500; counts both.
async fn counting_octane(get: (u16, Vec<u8>)) -> (String, std::sync::Arc<[std::sync::atomic::AtomicUsize; 2]>) {
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let counts: std::sync::Arc<[AtomicUsize; 2]> = std::sync::Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let c = counts.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move |method: axum::http::Method| {
        let c = c.clone();
        let get = get.clone();
        async move {
            let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
            if method == axum::http::Method::GET {
                c[0].fetch_add(1, Ordering::SeqCst);
                (axum::http::StatusCode::from_u16(get.0).unwrap(), json, get.1).into_response()
            } else {
                c[1].fetch_add(1, Ordering::SeqCst);
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, json, b"{}".to_vec()).into_response()
            }
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), counts)
}

#[tokio::test]
async fn only_idempotent_calls_are_retried_and_the_code_is_never_resent() {
    use std::sync::atomic::Ordering;
    let w = World::new(UserScript::Approve).await;
    let link = format!("https://sigilvault.xyz/pair?session={}", "S".repeat(22));

    // GET (idempotent): tried max_attempts times, then reported.
    let (url, counts) = counting_octane((503, b"{}".to_vec())).await;
    let phone = w.reopen(|c| {
        c.octane_url = url::Url::parse(&url).unwrap();
        c.octane_max_attempts = 3;
    });
    let e = pair_err(phone.open_link(&link, None).await);
    assert!(matches!(e, PairError::Octane(OctaneError::ServerError { status: 503 })), "{e:?}");
    assert_eq!(counts[0].load(Ordering::SeqCst), 3);

    // POST of the code (every attempt counts on octane): sent exactly once.
    let key = ed25519_dalek::SigningKey::from_bytes(&[0x56; 32]);
    let details = PairSessionDetails {
        v: STATEMENT_VERSION,
        session_id: "S".repeat(22),
        sp: w.sim.demo.profile.clone(),
        sp_user_ref: "alice".into(),
        requested_chains: chains(),
        return_url: None,
        created_at: sunstorm_e2e::now(),
        expires_at: sunstorm_e2e::now() + 300,
    };
    let env = SignedEnvelope::seal(Domain::OctaneSession, &key, &details).unwrap();
    let body = serde_json::to_vec(&AppSessionResponse { details: env, status: SessionStatus::Open, attempts_left: 5 })
        .unwrap();
    let (url, counts) = counting_octane((200, body)).await;
    let phone = w.reopen(|c| {
        c.octane_url = url::Url::parse(&url).unwrap();
        c.octane_key = Key32(key.verifying_key().to_bytes());
        c.octane_max_attempts = 3;
    });
    let flow = phone.open_link(&link, None).await.unwrap().flow_id();
    let e = pair_err(phone.submit_code(flow, Some("123456")).await);
    assert!(matches!(e, PairError::Octane(OctaneError::ServerError { .. })), "{e:?}");
    assert_eq!(counts[1].load(Ordering::SeqCst), 1);
    // The flow is still there to retry.
    assert_eq!(phone.pair_state(flow).await.unwrap().name(), "code_needed");
}

#[tokio::test]
async fn opening_the_same_link_twice_never_makes_two_flows_for_the_appliance() {
    let w = World::new(UserScript::Approve).await;
    let s = w.session(&chains(), None).await;
    // Opened twice before the code: the first flow is superseded.
    let first = w.phone.open_link(&s.link, None).await.unwrap().flow_id();
    let second = w.phone.open_link(&s.link, None).await.unwrap().flow_id();
    assert_ne!(first, second);
    assert_eq!(w.phone.pair_state(first).await.unwrap().name(), "failed");
    // Waiting on the appliance (crash after its approval): opening again continues it.
    let crashing = w.reopen(|c| c.crash_point = CrashPoint::AfterAttestationStored);
    crashing.submit_code(second, Some(&s.validation_code)).await.unwrap();
    let wallets = crashing.appliance_wallets(None, &chains()).await.unwrap();
    crashing.choose_wallets(second, &wallets).await.unwrap();
    assert!(matches!(pair_err(crashing.approve_pair(second).await), PairError::Interrupted));
    drop(crashing);
    let phone = w.reopen(|_| {});
    let st = phone.open_link(&s.link, None).await.unwrap();
    assert_eq!(st.flow_id(), second);
    let st = phone.approve_pair(second).await.unwrap();
    assert_eq!(st.name(), "paired");
    assert_eq!(w.sim.appliance.pairs().len(), 1);
}

/// True if `code` appears in `bytes` as text, or inside any base64 / base64url / hex run
/// (how the store writes binary values such as signed envelopes into JSON columns).
fn leaks_code(bytes: &[u8], code: &str) -> bool {
    use base64::Engine as _;
    let needle = code.as_bytes();
    let has = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    if has(bytes) {
        return true;
    }
    let is_b64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/');
    for run in bytes.split(|b| !is_b64(*b)).filter(|r| r.len() >= 8) {
        let text: Vec<u8> = run
            .iter()
            .map(|b| match b {
                b'+' => b'-',
                b'/' => b'_',
                other => *other,
            })
            .collect();
        // Every start offset, so a run glued to its neighbours still decodes.
        for start in 0..4.min(text.len()) {
            let mut t = &text[start..];
            if t.len() % 4 == 1 {
                t = &t[..t.len() - 1];
            }
            if let Ok(decoded) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t) {
                if has(&decoded) {
                    return true;
                }
            }
        }
        for start in 0..2.min(run.len()) {
            let mut t = &run[start..];
            if t.len() % 2 == 1 {
                t = &t[..t.len() - 1];
            }
            if let Ok(decoded) = hex::decode(t) {
                if has(&decoded) {
                    return true;
                }
            }
        }
    }
    false
}

/// Every file of the phone's database (main file, WAL, shared memory), concatenated.
fn database_bytes(w: &World) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(w.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("phone.db") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!all.is_empty(), "no database files found");
    all
}

#[test]
fn the_code_scanner_finds_a_code_in_every_encoding_the_store_uses() {
    use base64::Engine as _;
    let body = [b"\xa2\x66".as_slice(), b"123456", b"\x01\x02\x03"].concat();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&body);
    assert!(leaks_code(format!("{{\"body\":\"{b64}\"}}").as_bytes(), "123456"));
    assert!(leaks_code(hex::encode(&body).as_bytes(), "123456"));
    assert!(leaks_code(b"..123456..", "123456"));
    assert!(!leaks_code(format!("{{\"body\":\"{b64}\"}}").as_bytes(), "654321"));
}

#[tokio::test]
async fn the_validation_code_never_reaches_the_database_file() {
    let w = World::new(UserScript::Approve).await;
    let s = w.session(&chains(), None).await;
    // Killed with the appliance's attestation in hand (it binds the code), before octane.
    let crashing = w.reopen(|c| c.crash_point = CrashPoint::AfterAttestationStored);
    let flow = ready_to_approve(&crashing, &s, &chains()).await;
    assert!(matches!(pair_err(crashing.approve_pair(flow).await), PairError::Interrupted));
    drop(crashing);
    assert!(
        !leaks_code(&database_bytes(&w), &s.validation_code),
        "the validation code is in the database while the flow waits"
    );
    // Resumed and finished: the pair is stored, still without the code.
    let phone = w.reopen(|_| {});
    let st = phone.resume_pending().await.unwrap().into_iter().next().unwrap().unwrap();
    assert!(matches!(st, PairState::Paired { .. }), "{st:?}");
    drop(phone);
    assert!(
        !leaks_code(&database_bytes(&w), &s.validation_code),
        "the validation code is in the database after pairing"
    );
    // The SP still verifies the attestation, code included.
    let result = w.sim.sp.await_pair(&s.session_id, Duration::from_secs(5)).await.unwrap();
    let sp_key = w.sim.demo.profile.public_key;
    let expected = ExpectedPair {
        session_id: &s.session_id,
        validation_code: Some(&s.validation_code),
        sp_public_key: Some(&sp_key),
    };
    assert!(verify_pair_result(&result, &expected).unwrap().is_some());
}

#[tokio::test]
async fn a_flow_whose_stored_attestation_is_gone_asks_the_appliance_again_and_gets_the_same_pair() {
    use sunstorm_core::secrets::SecretStore as _;
    let w = World::new(UserScript::Approve).await;
    let s = w.session(&chains(), None).await;
    let crashing = w.reopen(|c| c.crash_point = CrashPoint::AfterAttestationStored);
    let flow = ready_to_approve(&crashing, &s, &chains()).await;
    assert!(matches!(pair_err(crashing.approve_pair(flow).await), PairError::Interrupted));
    drop(crashing);
    // What a database migrated from schema 1 (or a lost keychain item) looks like.
    w.secrets.delete(&format!("pairflow.{}.attestation", flow.simple())).unwrap();
    let phone = w.reopen(|_| {});
    let st = phone.resume_pending().await.unwrap().into_iter().next().unwrap().unwrap();
    let PairState::Paired { pair_id, .. } = st else { panic!("{st:?}") };
    // The appliance answered the repeated request id with its first approval.
    assert_eq!(w.sim.appliance.pairs().len(), 1);
    let r = w.sim.sp.await_pair(&s.session_id, Duration::from_secs(5)).await.unwrap();
    let PairResult::Paired { pair_id: sp_pair, .. } = r else { panic!("{r:?}") };
    assert_eq!(sp_pair, pair_id);
}
