//! `sunstorm sim octane` and `sunstorm sp …` as processes: the SP side of a pair and a
//! signature across processes, with this test playing the phone and appliance over HTTP.

// Test helpers outside #[test] functions may unwrap too (clippy.toml covers only the tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::process::{Command, Output, Stdio};

use common::{start_octane as start_sim_octane, Octane, BIN};

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::AccountId;
use sunstorm_core::envelope::{Domain, SignedEnvelope};
use sunstorm_core::model::{AppEndorsement, PairAttestation, SignRequest, STATEMENT_VERSION};
use sunstorm_core::octane::api::{paths, PendingSignRequests};
use sunstorm_core::octane::app_auth;
use uuid::Uuid;

/// `sunstorm sim octane` with a fixed seed.
fn start_octane() -> Octane {
    start_sim_octane(&["--seed", &"07".repeat(32)])
}

fn sp(o: &Octane, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("sp")
        .args(args)
        .args(["--octane", &o.url, "--api-key", &o.api_key, "--json"])
        .env_remove("SUNSTORM_LOG")
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("not JSON: {out:?}"))
}

/// The phone (endorsed app key) and appliance (identity and an EVM wallet) in one.
struct Phone {
    http: reqwest::Client,
    base: String,
    app_key: SigningKey,
    appliance: SigningKey,
    endorsement: SignedEnvelope,
    wallet: k256::ecdsa::SigningKey,
}

impl Phone {
    fn new(base: &str) -> Self {
        let appliance = SigningKey::from_bytes(&[1; 32]);
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
        let wallet = k256::ecdsa::SigningKey::from_bytes(&[0x11; 32].into()).unwrap();
        Phone { http: reqwest::Client::new(), base: base.into(), app_key, appliance, endorsement, wallet }
    }

    fn account(&self) -> AccountId {
        AccountId::evm(1, sunstorm_core::payload::address_of(self.wallet.verifying_key()))
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        let url = reqwest::Url::parse(&format!("{}{}", self.base, path)).unwrap();
        let h = app_auth::sign_app_request(
            &self.app_key,
            &self.endorsement,
            method,
            &app_auth::path_and_query(&url),
            &body,
            sunstorm_core::clock::now_unix(),
        )
        .unwrap();
        let mut req = self.http.request(method.parse().unwrap(), url).body(body);
        for (k, v) in h.pairs() {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "{method} {path}: {}", resp.status());
        resp.json().await.unwrap()
    }
}

#[test]
fn sp_commands_refuse_bad_input_with_stable_codes() {
    let o = start_octane();
    let out = sp(&o, &["create-session", "--chains", "eip155:1", "--return-url", "https://evil.example/"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_of(&out)["error"]["code"], "return_url_not_allowed");
    let out = sp(&o, &["create-session", "--chains", "bitcoin:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_of(&out)["error"]["code"], "bad_chain");
    let out = sp(
        &o,
        &[
            "sign",
            "--sp-key",
            &o.sp_seed,
            "--pair",
            &Uuid::new_v4().to_string(),
            "--account",
            "eip155:1:0x1111111111111111111111111111111111111111",
            "--message",
            "hi",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_of(&out)["error"]["code"], "not_found");
    let s = json_of(&sp(&o, &["create-session", "--chains", "eip155:1"]));
    let out = sp(&o, &["await", "--session", s["ok"]["session_id"].as_str().unwrap(), "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["error"]["code"], "timed_out");
}

#[test]
fn sp_pairs_and_signs_across_processes() {
    let o = start_octane();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let phone = Phone::new(&o.url);

    let out = sp(&o, &["create-session", "--chains", "eip155:1", "--user-ref", "alice"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let s = json_of(&out)["ok"].clone();
    let sid = s["session_id"].as_str().unwrap().to_string();
    let code = s["validation_code"].as_str().unwrap().to_string();

    // The phone verifies the code; the appliance attests; the app posts it.
    let pair_id = Uuid::new_v4();
    rt.block_on(async {
        phone.call("POST", &paths::app_pair_session_code(&sid), Some(json!({"code": code}))).await;
        let att = PairAttestation {
            v: STATEMENT_VERSION,
            pair_id,
            session_id: sid.clone(),
            validation_code: code.clone(),
            sp_id: "demo-sp".into(),
            sp_public_key: Key32::from_hex(&o.sp_public_key).unwrap(),
            bindings: vec![phone.account()],
            appliance_identity: Key32(phone.appliance.verifying_key().to_bytes()),
            approved_at: 0,
        };
        let env = SignedEnvelope::seal(Domain::PairAttestation, &phone.appliance, &att).unwrap();
        phone.call("POST", &paths::app_pair_session_approve(&sid), Some(json!({"attestation": env}))).await;
    });

    // The SP awaits and checks the attestation itself, code and key included.
    let out =
        sp(&o, &["await", "--session", &sid, "--code", &code, "--sp-public-key", &o.sp_public_key, "--timeout", "10"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_of(&out);
    assert_eq!(v["ok"]["pair_id"], pair_id.to_string());
    assert_eq!(v["ok"]["bindings"], json!([phone.account().to_string()]));
    assert!(v["ok"]["verified"].as_array().unwrap().contains(&json!("validation_code")));
    // With a wrong code the CLI refuses the attestation.
    let out = sp(&o, &["await", "--session", &sid, "--code", "000000", "--timeout", "5"]);
    if code != "000000" {
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(json_of(&out)["error"]["code"], "attestation_refused");
    }

    // The SP signs a message; the phone relays it and the appliance signs.
    let screen = sunstorm_core::decode::DisplayDigest([0x5c; 32]);
    let signer = {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "sp",
            "sign",
            "--octane",
            &o.url,
            "--api-key",
            &o.api_key,
            "--sp-key",
            &o.sp_seed,
            "--pair",
            &pair_id.to_string(),
            "--account",
            &phone.account().to_string(),
            "--message",
            "hello from the SP",
            "--octane-key",
            &o.octane_key,
            "--appliance",
            &Key32(phone.appliance.verifying_key().to_bytes()).to_hex(),
            "--timeout",
            "20",
            "--json",
        ]);
        cmd.env_remove("SUNSTORM_LOG").stdout(Stdio::piped()).stderr(Stdio::null());
        cmd.spawn().unwrap()
    };
    rt.block_on(async {
        let v = phone.call("GET", &format!("{}?timeout_secs=15", paths::APP_SIGN_PENDING), None).await;
        let pending: PendingSignRequests = serde_json::from_value(v).unwrap();
        let item = pending.requests.first().expect("a pending request");
        let req: SignRequest = item
            .request
            .verify(&Key32::from_hex(&o.sp_public_key).unwrap(), &Key32::from_hex(&o.octane_key).unwrap())
            .unwrap();
        let target = sunstorm_core::payload::signing_target(req.kind, &req.payload, &req.chain).unwrap();
        let sunstorm_core::payload::SigningTarget::EvmDigest { digest, v_style } = target else { panic!() };
        let (sig, recid) = phone.wallet.sign_prehash_recoverable(&digest).unwrap();
        let sig = sunstorm_core::payload::encode_evm_signature(&sig, recid, v_style);
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig);
        // With the display digest of the phone's screen and the appliance's receipt over it.
        let identity = Key32(phone.appliance.verifying_key().to_bytes());
        let receipt = sunstorm_core::receipt::SignReceipt::for_request(&req, screen, identity);
        let receipt = SignedEnvelope::seal(Domain::SignReceipt, &phone.appliance, &receipt).unwrap();
        let body = json!({"signature": b64, "display_digest": screen.hex(), "receipt": receipt});
        phone.call("POST", &paths::app_sign_result(&item.request_id), Some(body)).await;
    });
    let out = signer.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_of(&out);
    assert_eq!(v["ok"]["status"], "signed");
    assert_eq!(v["ok"]["octane_key_pinned"], true);
    assert_eq!(v["ok"]["appliance_sig"].as_str().unwrap().len(), 130);
    assert_eq!(v["ok"]["display_digest"], screen.hex());
    assert_eq!(v["ok"]["display_fingerprint"], "5C5C-5C5C");
    assert_eq!(v["ok"]["appliance_pinned"], true);

    // The SP revokes; signing is then refused with 403 pair_revoked (exit 2).
    let out = sp(&o, &["revoke", "--pair", &pair_id.to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let out = sp(
        &o,
        &[
            "sign",
            "--sp-key",
            &o.sp_seed,
            "--pair",
            &pair_id.to_string(),
            "--account",
            &phone.account().to_string(),
            "--message",
            "again",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_of(&out)["error"]["code"], "pair_revoked");
}
