//! Issue 13, attack 1, end to end: typed data built to freeze or crash a decoder is refused
//! by the phone (as `undecodable`, which the SP learns) and by the appliance itself when a
//! compromised phone forwards it anyway — the same bounded check in `payload::signing_target`
//! runs on both sides before anything is hashed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use serde_json::{json, Map, Value};
use sunstorm_core::appliance::client::{ApplianceClient, ClientConfig};
use sunstorm_core::appliance::{ApplianceApi, ApplianceError};
use sunstorm_core::caip::ChainId;
use sunstorm_core::model::{PayloadKind, SignRequest, STATEMENT_VERSION};
use sunstorm_core::octane::api::{PendingSignRequest, SignResult};
use sunstorm_core::sign::SignError;
use sunstorm_core::sunstorm::CoreError;
use sunstorm_e2e::World;
use sunstorm_sim::appliance::UserScript;
use uuid::Uuid;

fn typed(types: Map<String, Value>, primary: &str) -> Vec<u8> {
    let mut types = types;
    types.insert("EIP712Domain".into(), json!([{"name": "chainId", "type": "uint256"}]));
    serde_json::to_vec(&json!({"types": types, "primaryType": primary, "domain": {"chainId": 1}, "message": {}}))
        .unwrap()
}

/// 2^40 leaves once expanded (the old decoder never finished).
fn diamond() -> Vec<u8> {
    let mut types = Map::new();
    for i in 0..40 {
        let next = format!("T{}", i + 1);
        types.insert(format!("T{i}"), json!([{"name": "a", "type": next}, {"name": "b", "type": next}]));
    }
    types.insert("T40".into(), json!([{"name": "x", "type": "uint256"}]));
    typed(types, "T0")
}

/// 800 nested types, as many as fit the appliance link's 32 KiB messages (the old decoder
/// recursed once per type; 1,500 overflowed a 2 MiB stack and aborted).
fn chain() -> Vec<u8> {
    let mut types = Map::new();
    for i in 0..800 {
        types.insert(format!("T{i}"), json!([{"name": "a", "type": format!("T{}", i + 1)}]));
    }
    types.insert("T800".into(), json!([{"name": "x", "type": "uint256"}]));
    typed(types, "T0")
}

#[tokio::test]
async fn adversarial_typed_data_is_refused_by_the_phone_and_by_the_appliance() {
    let w = World::new(UserScript::Approve).await;
    let (pair_id, bindings) = w.pair(&[ChainId::Evm(1)]).await;
    let acct = bindings.iter().find(|a| a.chain == ChainId::Evm(1)).cloned().unwrap();
    // A second client under the phone's bond: what a compromised phone could send.
    let bond = w.phone.bond_record(None).await.unwrap();
    let client =
        ApplianceClient::new(w.sim.connector.clone(), bond, w.secrets.as_ref(), ClientConfig::default()).unwrap();

    for (what, payload) in [("diamond", diamond()), ("chain", chain())] {
        let now = sunstorm_e2e::now();
        let req = SignRequest {
            v: STATEMENT_VERSION,
            request_id: Uuid::new_v4(),
            pair_id,
            chain: acct.chain.clone(),
            account: acct.clone(),
            kind: PayloadKind::Eip712TypedData,
            payload,
            created_at: now,
            expires_at: now + 120,
        };
        // Octane countersigns without parsing the payload.
        let accepted = w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();

        let refused = client.sign(&accepted.countersigned, None).await.unwrap_err();
        match refused {
            ApplianceError::Refused { code, message } => {
                assert_eq!(code, "bad_payload", "{what}");
                assert!(message.contains("too complex"), "{what}: {message}");
            }
            other => panic!("{what}: the appliance answered {other:?}"),
        }

        let delivery = PendingSignRequest { pair_id, request_id: req.request_id, request: accepted.countersigned };
        match w.phone.receive_sign_request(&delivery).await {
            Err(CoreError::Sign(SignError::Undecodable(m))) => {
                assert!(m.contains("too complex"), "{what}: {m}")
            }
            other => panic!("{what}: the phone answered {other:?}"),
        }
        match w.sim.sp.await_sign(&req.request_id, Duration::from_secs(5)).await.unwrap() {
            SignResult::Rejected { reason_code, .. } => {
                assert_eq!(reason_code, "undecodable", "{what}")
            }
            other => panic!("{what}: the SP saw {other:?}"),
        }
    }
    assert_eq!(w.sim.appliance.total_signatures(), 0);
}
