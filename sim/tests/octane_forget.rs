//! Octane told that an appliance forgot a phone: the phone's client (core's
//! `OctaneClient`) against the octane simulator over HTTP on loopback. Two phones of one
//! appliance see its pending sign requests; one relays the appliance's signed
//! `PhoneForgotten` about the other; octane then refuses the forgotten phone
//! (`phone_forgotten`), even in a long-poll already waiting, and routes the requests only
//! to the phone that remains — until the forgotten phone bonds again (a newer
//! endorsement).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::code::ValidationCode;
use sunstorm_core::envelope::{Domain, SignedEnvelope};
use sunstorm_core::model::{
    AppEndorsement, PairAttestation, PayloadKind, PhoneForgotten, SignRequest, STATEMENT_VERSION,
};
use sunstorm_core::octane::api::{CreateSessionRequest, OctaneErrorCode};
use sunstorm_core::octane::client::{AppCredentials, OctaneClient, OctaneConfig, OctaneError};
use sunstorm_core::octane::transport::ReqwestTransport;
use sunstorm_sim::octane::{ManualClock, OctaneSim, OctaneSimConfig, OctaneSimHandle};
use sunstorm_sim::sp::SpClient;
use uuid::Uuid;

const NOW: u64 = 1_800_000_000;

fn appliance() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn identity(k: &SigningKey) -> Key32 {
    Key32(k.verifying_key().to_bytes())
}

/// The appliance's endorsement of `app_key`, issued at `at` (its bond).
fn endorse(app_key: &SigningKey, at: u64) -> SignedEnvelope {
    let e = AppEndorsement {
        v: STATEMENT_VERSION,
        app_key: identity(app_key),
        appliance_identity: identity(&appliance()),
        issued_at: at,
    };
    SignedEnvelope::seal(Domain::AppEndorsement, &appliance(), &e).unwrap()
}

fn phone(octane: &OctaneSimHandle, clock: &Arc<ManualClock>, seed: u8, endorsed_at: u64) -> OctaneClient {
    let app_key = SigningKey::from_bytes(&[seed; 32]);
    let endorsement = endorse(&app_key, endorsed_at);
    let mut cfg = OctaneConfig::new(octane.url.parse().unwrap(), octane.octane_public_key);
    cfg.max_attempts = 1;
    let http = Arc::new(ReqwestTransport::new(Duration::from_secs(2), false).unwrap());
    OctaneClient::new(cfg, AppCredentials { app_key, endorsement }, clock.clone(), http).unwrap()
}

fn forgotten(app_key_seed: u8, by_seed: Option<u8>, at: u64) -> SignedEnvelope {
    let st = PhoneForgotten {
        v: STATEMENT_VERSION,
        app_key: identity(&SigningKey::from_bytes(&[app_key_seed; 32])),
        appliance_identity: identity(&appliance()),
        forgotten_by: by_seed.map(|s| identity(&SigningKey::from_bytes(&[s; 32]))),
        forgotten_at: at,
    };
    SignedEnvelope::seal(Domain::PhoneForgotten, &appliance(), &st).unwrap()
}

fn account() -> AccountId {
    AccountId::evm(1, [0x11; 20])
}

/// A pair between the demo SP and the appliance, approved through phone `a`.
async fn pair(octane: &OctaneSimHandle, sp: &SpClient, a: &OctaneClient) -> Uuid {
    let s = sp
        .create_session(&CreateSessionRequest {
            sp_user_ref: "alice@sp".into(),
            chains: vec![ChainId::Evm(1)],
            return_url: None,
            ttl_secs: None,
        })
        .await
        .unwrap();
    a.check_code(&s.session_id, &ValidationCode::parse(&s.validation_code).unwrap()).await.unwrap();
    let att = PairAttestation {
        v: STATEMENT_VERSION,
        pair_id: Uuid::new_v4(),
        session_id: s.session_id.clone(),
        validation_code: s.validation_code.clone(),
        sp_id: octane.demo_sp.profile.sp_id.clone(),
        sp_public_key: identity(&octane.demo_sp.signing_key),
        bindings: vec![account()],
        appliance_identity: identity(&appliance()),
        approved_at: NOW,
    };
    a.approve(&s.session_id, &SignedEnvelope::seal(Domain::PairAttestation, &appliance(), &att).unwrap())
        .await
        .unwrap();
    att.pair_id
}

fn sign_request(pair_id: Uuid) -> SignRequest {
    SignRequest {
        v: STATEMENT_VERSION,
        request_id: Uuid::new_v4(),
        pair_id,
        chain: ChainId::Evm(1),
        account: account(),
        kind: PayloadKind::Eip191Message,
        payload: b"hello sigil".to_vec(),
        created_at: NOW,
        expires_at: NOW + 120,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_phone_gets_no_more_requests_of_its_appliance_until_it_bonds_again() {
    let clock = Arc::new(ManualClock::new(NOW));
    let octane = OctaneSim::start(OctaneSimConfig { seed: Some([7; 32]), clock: clock.clone(), ..Default::default() })
        .await
        .unwrap();
    let sp = SpClient::new(&octane.url, &octane.demo_sp.api_key).unwrap();
    let a = phone(&octane, &clock, 1, NOW - 100);
    let b = phone(&octane, &clock, 2, NOW - 50);
    let pair_id = pair(&octane, &sp, &a).await;

    // Both phones of the appliance see its sign request (A declines it).
    let first = sign_request(pair_id);
    sp.submit_sign(&octane.demo_sp.signing_key, &first).await.unwrap();
    assert_eq!(a.pending_sign_requests(Duration::ZERO).await.unwrap().len(), 1);
    assert_eq!(b.pending_sign_requests(Duration::ZERO).await.unwrap().len(), 1);
    a.reject_sign(first.request_id, "user_rejected", "no").await.unwrap();

    // B waits in a long-poll when A relays the appliance's statement that it forgot B.
    let b_poll = {
        let b = b.clone();
        tokio::spawn(async move { b.pending_sign_requests(Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A statement about another appliance, or not signed by the appliance, is refused.
    let mut forged = forgotten(2, Some(1), NOW);
    forged.sig[0] ^= 1;
    let err = a.forget_phone(&forged).await.unwrap_err();
    assert!(matches!(err, OctaneError::Refused { code: OctaneErrorCode::ForgetInvalid, .. }), "{err}");
    let stranger = SignedEnvelope::seal(
        Domain::PhoneForgotten,
        &SigningKey::from_bytes(&[8; 32]),
        &PhoneForgotten {
            v: STATEMENT_VERSION,
            app_key: identity(&SigningKey::from_bytes(&[2; 32])),
            appliance_identity: identity(&SigningKey::from_bytes(&[8; 32])),
            forgotten_by: None,
            forgotten_at: NOW,
        },
    )
    .unwrap();
    assert!(matches!(
        a.forget_phone(&stranger).await.unwrap_err(),
        OctaneError::Refused { code: OctaneErrorCode::ForgetInvalid, .. }
    ));

    let r = a.forget_phone(&forgotten(2, Some(1), NOW)).await.unwrap();
    assert_eq!((r.app_key, r.forgotten_at), (identity(&SigningKey::from_bytes(&[2; 32])), NOW));
    // Relayed twice (a retry, or both phones relaying): the same answer.
    assert_eq!(a.forget_phone(&forgotten(2, Some(1), NOW)).await.unwrap(), r);

    let polled = tokio::time::timeout(Duration::from_secs(5), b_poll).await.unwrap().unwrap();
    assert_eq!(polled.unwrap_err(), OctaneError::PhoneForgotten, "the waiting long-poll ends refused");

    // The next request goes to A only.
    let req = sign_request(pair_id);
    sp.submit_sign(&octane.demo_sp.signing_key, &req).await.unwrap();
    assert_eq!(b.pending_sign_requests(Duration::ZERO).await.unwrap_err(), OctaneError::PhoneForgotten);
    assert_eq!(b.pairs().await.unwrap_err(), OctaneError::PhoneForgotten);
    assert_eq!(b.post_signature(req.request_id, &[0; 65], None).await.unwrap_err(), OctaneError::PhoneForgotten);
    // The remaining phone still gets the request.
    assert_eq!(a.pending_sign_requests(Duration::ZERO).await.unwrap()[0].request_id, req.request_id);

    // B bonds again: the appliance endorses its key anew, later than the statement.
    let b_again = phone(&octane, &clock, 2, NOW + 10);
    assert_eq!(b_again.pending_sign_requests(Duration::ZERO).await.unwrap().len(), 1);
}
