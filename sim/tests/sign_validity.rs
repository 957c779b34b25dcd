//! The appliance simulator applies the one sign-request validity rule
//! (`sunstorm_core::validity`) when a request arrives and again when its user answers: a
//! request from the future is refused, and a user answering after `expires_at` gets no
//! signature (issue 13, attack 7).
// Test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use sunstorm_core::appliance::client::{bond, ApplianceClient, ClientConfig};
use sunstorm_core::appliance::{ApplianceApi, ApplianceError};
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::envelope::{self, Domain, SignedEnvelope};
use sunstorm_core::model::{
    CountersignedRequest, PairAttestation, PairSessionDetails, PayloadKind, SignRequest, SpProfile,
};
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_sim::appliance::{ApplianceSim, ApplianceSimConfig, UserScript};
use sunstorm_sim::link::{SimConnector, SimLinkConfig};
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

fn account(sim: &ApplianceSim) -> AccountId {
    sim.wallets().into_iter().find(|a| a.chain == ChainId::Evm(1)).unwrap()
}

/// A bonded client and a pair bound to the appliance's Ethereum wallet.
async fn paired(sim: &ApplianceSim) -> (ApplianceClient, Uuid) {
    let (c, acceptor) = SimConnector::new(SimLinkConfig::default());
    sim.spawn_acceptor(acceptor);
    let c = Arc::new(c);
    let store = MemorySecretStore::default();
    let rec = bond(c.as_ref(), &sim.pin(), &store, "test phone").await.unwrap();
    let cfg = ClientConfig { request_timeout: Duration::from_secs(2), ..ClientConfig::default() };
    let client = ApplianceClient::new(c, rec, &store, cfg).unwrap();
    let details = PairSessionDetails {
        v: 1,
        session_id: "sess-validity".into(),
        sp: SpProfile {
            sp_id: "sp-1".into(),
            name: "Example SP".into(),
            logo_url: "https://sp.example/logo.png".into(),
            homepage: "https://sp.example".into(),
            public_key: Key32(sp().verifying_key().to_bytes()),
            allowed_return_origins: vec![],
        },
        sp_user_ref: "alice".into(),
        requested_chains: vec![ChainId::Evm(1)],
        return_url: None,
        created_at: now(),
        expires_at: now() + 300,
    };
    let session = SignedEnvelope::seal(Domain::OctaneSession, &octane(), &details).unwrap();
    let att = client.approve_pair(Uuid::new_v4(), &session, "123456", &[account(sim)], None).await.unwrap();
    let att: PairAttestation = att.open(Domain::PairAttestation, sim.identity().as_bytes()).unwrap();
    (client, att.pair_id)
}

fn request(sim: &ApplianceSim, pair_id: Uuid, created_at: u64, expires_at: u64) -> (CountersignedRequest, Uuid) {
    let req = SignRequest {
        v: 1,
        request_id: Uuid::new_v4(),
        pair_id,
        chain: ChainId::Evm(1),
        account: account(sim),
        kind: PayloadKind::Eip191Message,
        payload: b"hello".to_vec(),
        created_at,
        expires_at,
    };
    let body = sunstorm_core::cbor::to_vec(&req).unwrap();
    let sp_sig = envelope::sign_bytes(Domain::SpSignRequest, &sp(), &body).to_vec();
    let octane_sig = envelope::sign_bytes(Domain::OctaneSignRequest, &octane(), &body).to_vec();
    (CountersignedRequest { body, sp_sig, octane_sig }, req.request_id)
}

fn sim() -> ApplianceSim {
    ApplianceSim::new(ApplianceSimConfig {
        seed: vec![0x17; 32],
        pin: Some("123456".into()),
        octane_key: Key32(octane().verifying_key().to_bytes()),
        keepalive: Duration::from_millis(200),
        ..ApplianceSimConfig::default()
    })
    .unwrap()
}

fn refused_as_invalid(r: Result<Vec<u8>, ApplianceError>) -> String {
    match r {
        Err(ApplianceError::Refused { code, message }) => {
            assert_eq!(code, "request_expired", "{message}");
            message
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_created_in_the_future_is_refused() {
    let sim = sim();
    let (client, pair_id) = paired(&sim).await;
    let month = 30 * 86_400;
    let (csr, id) = request(&sim, pair_id, now() + month, now() + month + 60);
    let message = refused_as_invalid(client.sign(&csr, None).await);
    assert!(message.contains("created_in_future"), "{message}");
    assert_eq!(sim.signatures_made(id), 0);
    // A zero lifetime is refused too, as the phone and octane refuse it.
    let t = now() + 10;
    let (csr, id) = request(&sim, pair_id, t, t);
    let message = refused_as_invalid(client.sign(&csr, None).await);
    assert!(message.contains("non_positive_lifetime"), "{message}");
    assert_eq!(sim.signatures_made(id), 0);
    assert_eq!(sim.total_signatures(), 0);
}

#[tokio::test]
async fn a_user_answering_after_expiry_gets_no_signature() {
    let sim = sim();
    let (client, pair_id) = paired(&sim).await;
    // The person at the appliance takes 3.5 s; the request is valid for 2 s more.
    sim.set_user(UserScript::Delay(3_500));
    let t = now();
    let (csr, id) = request(&sim, pair_id, t, t + 2);
    let message = refused_as_invalid(client.sign(&csr, None).await);
    assert!(message.contains("expired"), "{message}");
    assert_eq!(sim.signatures_made(id), 0);
    // Asked again with the same id: the same answer, still no signature.
    refused_as_invalid(client.sign(&csr, None).await);
    // An answer in time is signed.
    sim.set_user(UserScript::Delay(200));
    let t = now();
    let (csr, id) = request(&sim, pair_id, t, t + 60);
    assert_eq!(client.sign(&csr, None).await.unwrap().len(), 65);
    assert_eq!(sim.signatures_made(id), 1);
}
