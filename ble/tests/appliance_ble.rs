//! The appliance protocol end to end over a user-space BlueZ: the phone's `ApplianceClient`
//! on a btleplug central (hci0) and `ApplianceSim::serve` behind a bluer peripheral (hci1) —
//! the same code below the GATT seam as the socket mode.
#![cfg(target_os = "linux")] // BlueZ (the peripheral side and the mock) is Linux-only
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, U256};
use async_trait::async_trait;
use common::{BluezMock, CENTRAL_ADAPTER, PERIPHERAL_ADAPTER};
use ed25519_dalek::SigningKey;
use sunstorm_ble::{
    serve_ble_appliance, BleTarget, BluezPeripheral, BtleplugConnector, CentralConfig, PeripheralConfig,
};
use sunstorm_core::appliance::client::{bond, ApplianceClient, ClientConfig};
use sunstorm_core::appliance::{ApplianceApi, ApplianceError};
use sunstorm_core::ble::channel::BondRecord;
use sunstorm_core::ble::transport::{GattError, GattLink};
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::envelope::{self, Domain, SignedEnvelope};
use sunstorm_core::model::{
    CountersignedRequest, PairAttestation, PairSessionDetails, PayloadKind, SignRequest, SpProfile,
};
use sunstorm_core::payload;
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_sim::appliance::{ApplianceSim, ApplianceSimConfig, UserScript};
use uuid::Uuid;

const NAME: &str = "Sigil BLE test";

fn octane() -> SigningKey {
    SigningKey::from_bytes(&[1u8; 32])
}
fn sp() -> SigningKey {
    SigningKey::from_bytes(&[2u8; 32])
}
fn now() -> u64 {
    sunstorm_core::clock::now_unix()
}

fn sim() -> ApplianceSim {
    ApplianceSim::new(ApplianceSimConfig {
        seed: vec![9; 32],
        pin: Some("123456".into()),
        octane_key: Key32(octane().verifying_key().to_bytes()),
        name: NAME.into(),
        keepalive: Duration::from_millis(200),
        ..ApplianceSimConfig::default()
    })
    .unwrap()
}

fn client_cfg(max_retries: u32) -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(15),
        max_retries,
        retry_backoff: Duration::from_millis(100),
        ..ClientConfig::default()
    }
}

async fn serve(sim: &ApplianceSim, mtu: Option<u16>) -> BluezPeripheral {
    let sim = sim.clone();
    let cfg = PeripheralConfig {
        adapter: Some(PERIPHERAL_ADAPTER.into()),
        name: NAME.into(),
        max_mtu: mtu,
        ..Default::default()
    };
    serve_ble_appliance(cfg, move |link| {
        let sim = sim.clone();
        async move {
            let _ = sim.serve(link).await;
        }
    })
    .await
    .unwrap()
}

async fn central(mtu: Option<u16>) -> Arc<BtleplugConnector> {
    let cfg = CentralConfig { adapter: Some(CENTRAL_ADAPTER.into()), max_mtu: mtu, ..CentralConfig::default() };
    Arc::new(BtleplugConnector::new(BleTarget::Name(NAME.into()), cfg).await.unwrap())
}

async fn bonded_client(
    sim: &ApplianceSim,
    connector: Arc<BtleplugConnector>,
    retries: u32,
) -> (ApplianceClient, BondRecord) {
    let store = MemorySecretStore::default();
    let rec = bond(connector.as_ref(), &sim.pin(), &store, "BLE test phone").await.unwrap();
    let client = ApplianceClient::new(connector, rec.clone(), &store, client_cfg(retries)).unwrap();
    (client, rec)
}

fn evm_account(sim: &ApplianceSim) -> AccountId {
    sim.wallets().into_iter().find(|a| a.chain == ChainId::Evm(1)).unwrap()
}

fn session() -> SignedEnvelope {
    let details = PairSessionDetails {
        v: 1,
        session_id: "sess-ble".into(),
        sp: SpProfile {
            sp_id: "sp-1".into(),
            name: "Example SP".into(),
            logo_url: "https://sp.example/logo.png".into(),
            homepage: "https://sp.example".into(),
            public_key: Key32(sp().verifying_key().to_bytes()),
            allowed_return_origins: vec!["https://sp.example".into()],
        },
        sp_user_ref: "alice".into(),
        requested_chains: vec![ChainId::Evm(1)],
        return_url: None,
        created_at: now(),
        expires_at: now() + 300,
    };
    SignedEnvelope::seal(Domain::OctaneSession, &octane(), &details).unwrap()
}

async fn pair(sim: &ApplianceSim, client: &ApplianceClient) -> Uuid {
    let att = client.approve_pair(Uuid::new_v4(), &session(), "123456", &[evm_account(sim)], None).await.unwrap();
    let att: PairAttestation = att.open(Domain::PairAttestation, sim.identity().as_bytes()).unwrap();
    assert_eq!(att.bindings, vec![evm_account(sim)]);
    att.pair_id
}

/// An EIP-1559 transfer on mainnet, countersigned by the SP and octane.
fn evm_tx_request(pair_id: Uuid, account: &AccountId) -> (CountersignedRequest, SignRequest) {
    let tx = TxEip1559 {
        chain_id: 1,
        nonce: 7,
        gas_limit: 21_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: Address::from([0x11; 20]).into(),
        value: U256::from(10_000_000_000_000_000u64),
        ..Default::default()
    };
    let mut payload = Vec::new();
    tx.encode_for_signing(&mut payload);
    let req = SignRequest {
        v: 1,
        request_id: Uuid::new_v4(),
        pair_id,
        chain: account.chain.clone(),
        account: account.clone(),
        kind: PayloadKind::EvmTransaction,
        payload,
        created_at: now(),
        expires_at: now() + 300,
    };
    let body = sunstorm_core::cbor::to_vec(&req).unwrap();
    let sp_sig = envelope::sign_bytes(Domain::SpSignRequest, &sp(), &body).to_vec();
    let octane_sig = envelope::sign_bytes(Domain::OctaneSignRequest, &octane(), &body).to_vec();
    (CountersignedRequest { body, sp_sig, octane_sig }, req)
}

fn check_signature(req: &SignRequest, sig: &[u8]) {
    assert_eq!(sig.len(), 65);
    let target = payload::signing_target(req.kind, &req.payload, &req.chain).unwrap();
    payload::verify_appliance_signature(&target, sig, &req.account).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bond_info_wallets_pair_and_sign_an_evm_transaction_over_ble() {
    common::logs();
    let Some(_mock) = BluezMock::start("bond_info_wallets_pair_and_sign").await else {
        return;
    };
    let sim = sim();
    // A small MTU on both ends: every message is segmented.
    let _p = serve(&sim, Some(64)).await;
    let (client, rec) = bonded_client(&sim, central(Some(64)).await, 3).await;
    assert_eq!(rec.appliance_identity, sim.identity());
    assert_eq!(rec.appliance_name, NAME);

    let info = client.info().await.unwrap();
    assert_eq!(info.identity, sim.identity());
    assert_eq!(client.wallets(&[]).await.unwrap(), sim.wallets());

    let pair_id = pair(&sim, &client).await;
    let (cs, req) = evm_tx_request(pair_id, &evm_account(&sim));
    let sig = client.sign(&cs, None).await.unwrap();
    check_signature(&req, &sig);
    assert_eq!(sim.signatures_made(req.request_id), 1);
    client.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peripheral_restart_mid_request_is_survived_and_signs_once() {
    common::logs();
    let Some(_mock) = BluezMock::start("peripheral_restart_mid_request").await else {
        return;
    };
    let sim = sim();
    let p = serve(&sim, None).await;
    let (client, _) = bonded_client(&sim, central(None).await, 5).await;
    let pair_id = pair(&sim, &client).await;

    // The user takes a while; the appliance restarts while the request waits on them.
    sim.set_user(UserScript::Delay(1500));
    let (cs, req) = evm_tx_request(pair_id, &evm_account(&sim));
    let signing = tokio::spawn(async move { (client.sign(&cs, None).await, client) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    p.stop().await;
    let _p = serve(&sim, None).await;

    let (sig, client) = signing.await.unwrap();
    let sig = sig.unwrap();
    check_signature(&req, &sig);
    assert_eq!(sim.signatures_made(req.request_id), 1, "one signature despite the restart");
    assert_eq!(client.info().await.unwrap().identity, sim.identity());
}

/// Appliance-side link that hangs up in the middle of the first message it sends after
/// the appliance has signed (once).
struct DropMidResponse {
    inner: Box<dyn GattLink>,
    sim: ApplianceSim,
    armed: Arc<AtomicBool>,
    sent_after_signing: AtomicU32,
}

#[async_trait]
impl GattLink for DropMidResponse {
    fn mtu(&self) -> u16 {
        self.inner.mtu()
    }
    async fn send(&self, pdu: Vec<u8>) -> Result<(), GattError> {
        if self.armed.load(Ordering::SeqCst)
            && self.sim.total_signatures() > 0
            && self.sent_after_signing.fetch_add(1, Ordering::SeqCst) >= 1
        {
            self.armed.store(false, Ordering::SeqCst);
            self.inner.close().await;
            return Err(GattError::Disconnected);
        }
        self.inner.send(pdu).await
    }
    async fn recv(&self, timeout: Duration) -> Result<Vec<u8>, GattError> {
        self.inner.recv(timeout).await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_mid_response_is_a_clean_error_and_the_retry_does_not_sign_twice() {
    common::logs();
    let Some(_mock) = BluezMock::start("drop_mid_response").await else {
        return;
    };
    let sim = sim();
    let armed = Arc::new(AtomicBool::new(true));
    let cfg = PeripheralConfig {
        adapter: Some(PERIPHERAL_ADAPTER.into()),
        name: NAME.into(),
        max_mtu: Some(23),
        ..Default::default()
    };
    let (s, a) = (sim.clone(), armed.clone());
    let _p = serve_ble_appliance(cfg, move |link| {
        let sim = s.clone();
        let link =
            DropMidResponse { inner: link, sim: sim.clone(), armed: a.clone(), sent_after_signing: AtomicU32::new(0) };
        async move {
            let _ = sim.serve(Box::new(link)).await;
        }
    })
    .await
    .unwrap();
    let connector = central(Some(23)).await;
    let store = MemorySecretStore::default();
    let rec = bond(connector.as_ref(), &sim.pin(), &store, "BLE test phone").await.unwrap();
    let setup = ApplianceClient::new(connector.clone(), rec.clone(), &store, client_cfg(3)).unwrap();
    let pair_id = pair(&sim, &setup).await;
    setup.disconnect().await;

    // No automatic retry: the drop surfaces as a link error the UI can show.
    let once = ApplianceClient::new(connector.clone(), rec.clone(), &store, client_cfg(0)).unwrap();
    let (cs, req) = evm_tx_request(pair_id, &evm_account(&sim));
    let err = once.sign(&cs, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            ApplianceError::Link(GattError::Disconnected)
                | ApplianceError::Link(GattError::Timeout)
                | ApplianceError::Timeout
        ),
        "{err:?}"
    );
    assert!(!armed.load(Ordering::SeqCst), "the link was dropped mid-response");
    assert_eq!(sim.signatures_made(req.request_id), 1);
    once.disconnect().await;

    // The app retries the same request: the appliance answers with the signature it made.
    let again = ApplianceClient::new(connector, rec, &store, client_cfg(3)).unwrap();
    let sig = again.sign(&cs, None).await.unwrap();
    check_signature(&req, &sig);
    assert_eq!(sim.signatures_made(req.request_id), 1, "no double signature");
    assert_eq!(sim.total_signatures(), 1);
}
