//! `sunstorm sim push-gateway` and `sunstorm sim octane --push-gateway` as processes: a
//! phone (this test, over HTTP with core's octane client) registers its push target, the
//! SP signs with `sunstorm sp sign`, and the gateway process records an APNs-shaped push
//! whose sealed payload opens with the phone's push key to the request octane signed. A
//! token the gateway calls unregistered is dropped by octane.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::{start, start_octane, BIN};
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::AccountId;
use sunstorm_core::clock::SystemClock;
use sunstorm_core::code::ValidationCode;
use sunstorm_core::envelope::{Domain, SignedEnvelope};
use sunstorm_core::model::{AppEndorsement, PairAttestation, SignRequest, STATEMENT_VERSION};
use sunstorm_core::octane::api::{PushPlatform, PushTargetRequest};
use sunstorm_core::octane::client::{AppCredentials, OctaneClient, OctaneConfig};
use sunstorm_core::push::{unseal, PushContent, PushKeyPair};
use uuid::Uuid;

const TOKEN: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// Polls the gateway's record until `n` requests are in it (bounded).
async fn deliveries(http: &reqwest::Client, gateway: &str, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let v: Value = http.get(format!("{gateway}/sim/deliveries")).send().await.unwrap().json().await.unwrap();
        let list = v["deliveries"].as_array().unwrap().clone();
        if list.len() >= n {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway did not record {n} pushes");
}

#[test]
fn octane_pushes_through_the_gateway_process() {
    let (_gateway, lines) =
        start(&["sim", "push-gateway", "--listen", "127.0.0.1:0", "--json"], |l| l.starts_with('{'));
    let info: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let gateway = info["ok"]["url"].as_str().unwrap().to_string();
    let o = start_octane(&["--seed", &"07".repeat(32), "--push-gateway", &gateway]);
    let rt = tokio::runtime::Runtime::new().unwrap();

    let appliance = SigningKey::from_bytes(&[1; 32]);
    let wallet = k256::ecdsa::SigningKey::from_bytes(&[0x11; 32].into()).unwrap();
    let account = AccountId::evm(1, sunstorm_core::payload::address_of(wallet.verifying_key()));
    let app_key = SigningKey::from_bytes(&[2; 32]);
    let endorsement = SignedEnvelope::seal(
        Domain::AppEndorsement,
        &appliance,
        &AppEndorsement {
            v: STATEMENT_VERSION,
            app_key: Key32(app_key.verifying_key().to_bytes()),
            appliance_identity: Key32(appliance.verifying_key().to_bytes()),
            issued_at: 0,
        },
    )
    .unwrap();
    let cfg = OctaneConfig::new(url::Url::parse(&o.url).unwrap(), Key32::from_hex(&o.octane_key).unwrap());
    let transport = OctaneClient::reqwest_transport(&cfg).unwrap();
    let client =
        OctaneClient::new(cfg, AppCredentials { app_key, endorsement }, Arc::new(SystemClock), transport).unwrap();
    let push_key = PushKeyPair::generate().unwrap();
    let http = reqwest::Client::new();

    // Pair (the SP side through the CLI), then register the push target.
    let s = o.create_session();
    let sid = s["session_id"].as_str().unwrap().to_string();
    let code = s["validation_code"].as_str().unwrap().to_string();
    let pair_id = Uuid::new_v4();
    rt.block_on(async {
        client.check_code(&sid, &ValidationCode::parse(&code).unwrap()).await.unwrap();
        let att = PairAttestation {
            v: STATEMENT_VERSION,
            pair_id,
            session_id: sid.clone(),
            validation_code: code.clone(),
            sp_id: "demo-sp".into(),
            sp_public_key: Key32::from_hex(&o.sp_public_key).unwrap(),
            bindings: vec![account.clone()],
            appliance_identity: Key32(appliance.verifying_key().to_bytes()),
            approved_at: 0,
        };
        let env = SignedEnvelope::seal(Domain::PairAttestation, &appliance, &att).unwrap();
        client.approve(&sid, &env).await.unwrap();
        let target =
            PushTargetRequest { platform: PushPlatform::Apns, token: TOKEN.into(), push_key: push_key.public_key() };
        client.register_push_target(&target).await.unwrap();
    });

    // The SP signs a message through the CLI (it waits for the result; never answered here).
    let sign = |message: &str| {
        Command::new(BIN)
            .args(["sp", "sign", "--octane", &o.url, "--api-key", &o.api_key, "--sp-key", &o.sp_seed])
            .args(["--pair", &pair_id.to_string(), "--account", &account.to_string(), "--message", message])
            .args(["--timeout", "1", "--json"])
            .env_remove("SUNSTORM_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    };
    sign("pushed to the phone");
    rt.block_on(async {
        let got = deliveries(&http, &gateway, 1).await;
        let push = &got[0];
        assert_eq!((push["status"].as_u64(), push["token"].as_str()), (Some(200), Some(TOKEN)));
        assert_eq!(push["headers"]["apns-push-type"], "alert");
        let sealed = base64::engine::general_purpose::STANDARD.decode(push["sealed"].as_str().unwrap()).unwrap();
        let PushContent::Request(pending) = unseal(&push_key, &sealed).unwrap() else { panic!("ids only") };
        let req: SignRequest = pending
            .request
            .verify(&Key32::from_hex(&o.sp_public_key).unwrap(), &Key32::from_hex(&o.octane_key).unwrap())
            .unwrap();
        assert_eq!(req.payload, b"pushed to the phone");
        let polled = client.pending_sign_requests(Duration::ZERO).await.unwrap();
        assert_eq!(polled, vec![pending]);

        // The gateway process is told the token is gone: octane drops it.
        let rule = json!({"kind": "unregistered", "token": TOKEN});
        let st = http.post(format!("{gateway}/sim/failures")).json(&rule).send().await.unwrap().status();
        assert!(st.is_success());
    });
    sign("to a dead token");
    rt.block_on(async {
        let got = deliveries(&http, &gateway, 2).await;
        assert_eq!((got[1]["status"].as_u64(), got[1]["reason"].as_str()), (Some(410), Some("Unregistered")));
        for _ in 0..100 {
            if client.push_target().await.unwrap().target.is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("octane kept the unregistered token");
    });
}
