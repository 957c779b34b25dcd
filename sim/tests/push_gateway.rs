//! The push gateway simulator answers like APNs and FCM HTTP v1: it refuses what they
//! refuse (missing topic, bad priority, bad token, over 4 KB, bad TTL), records every
//! request, and injects failures per token or for the next N requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use serde_json::{json, Value};
use sunstorm_core::octane::api::PushPlatform;
use sunstorm_sim::push_gateway::wire::{classify, PushOutcome};
use sunstorm_sim::push_gateway::{Deliveries, PushGatewayConfig, PushGatewaySim};

const TOKEN: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

async fn apns(url: &str, token: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("{url}/3/device/{token}")).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const GOOD: [(&str, &str); 4] =
    [("apns-topic", "org.example.app"), ("apns-push-type", "alert"), ("apns-priority", "10"), ("apns-expiration", "0")];

fn body(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn apns_requests_are_checked_like_apns_and_recorded() {
    let g = PushGatewaySim::start(PushGatewayConfig::default()).await.unwrap();
    let ok = body(json!({"aps": {"mutable-content": 1}, "sigil": "AAAA"}));
    assert_eq!(apns(&g.url, TOKEN, &GOOD, ok.clone()).await.0, 200);
    let reason = |v: (u16, Value)| (v.0, v.1["reason"].as_str().unwrap_or("").to_string());
    assert_eq!(reason(apns(&g.url, "zz", &GOOD, ok.clone()).await), (400, "BadDeviceToken".into()));
    assert_eq!(reason(apns(&g.url, TOKEN, &GOOD[1..], ok.clone()).await), (400, "MissingTopic".into()));
    let background_now = [("apns-topic", "t"), ("apns-push-type", "background"), ("apns-priority", "10")];
    assert_eq!(reason(apns(&g.url, TOKEN, &background_now, ok.clone()).await), (400, "BadPriority".into()));
    let long_collapse = "c".repeat(65);
    let mut h = GOOD.to_vec();
    h.push(("apns-collapse-id", &long_collapse));
    assert_eq!(reason(apns(&g.url, TOKEN, &h, ok.clone()).await), (400, "BadCollapseId".into()));
    let big = body(json!({"aps": {}, "sigil": "A".repeat(4100)}));
    assert_eq!(reason(apns(&g.url, TOKEN, &GOOD, big).await), (413, "PayloadTooLarge".into()));
    assert_eq!(reason(apns(&g.url, TOKEN, &GOOD, body(json!({"x": 1}))).await), (400, "BadPayload".into()));

    let all = g.received();
    assert_eq!(all.len(), 7);
    assert_eq!(all.iter().filter(|r| r.delivered()).count(), 1);
    assert_eq!(all[0].sealed.as_deref(), Some("AAAA"));
    assert_eq!(all[0].headers["apns-topic"], "org.example.app");
    // The same record over HTTP.
    let listed: Deliveries = reqwest::get(format!("{}/sim/deliveries", g.url)).await.unwrap().json().await.unwrap();
    assert_eq!(listed.deliveries, all);
}

#[tokio::test]
async fn fcm_sends_are_checked_like_fcm() {
    let g = PushGatewaySim::start(PushGatewayConfig::default()).await.unwrap();
    let send = |v: Value| {
        let url = format!("{}/v1/projects/demo/messages:send", g.url);
        async move {
            let resp = reqwest::Client::new().post(url).json(&v).send().await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap();
            (status, bytes.to_vec())
        }
    };
    let msg = |data: Value, android: Value| json!({"message": {"token": "tok:1", "data": data, "android": android}});
    let (s, b) =
        send(msg(json!({"sigil": "AAAA"}), json!({"priority": "high", "ttl": "120s", "collapse_key": "k"}))).await;
    assert_eq!(s, 200);
    assert!(serde_json::from_slice::<Value>(&b).unwrap()["name"]
        .as_str()
        .unwrap()
        .starts_with("projects/demo/messages/"));
    for (bad, why) in [
        (msg(json!({"sigil": 5}), json!({})), "data values are strings"),
        (msg(json!({}), json!({"ttl": "12"})), "ttl in seconds with an s"),
        (msg(json!({}), json!({"priority": "urgent"})), "priority high or normal"),
        (json!({"message": {"data": {}}}), "token required"),
    ] {
        let (s, b) = send(bad).await;
        assert_eq!(s, 400, "{why}");
        assert!(matches!(classify(PushPlatform::Fcm, s, &b), PushOutcome::Refused(_)), "{why}");
    }
    let (s, b) = send(msg(json!({"sigil": "A".repeat(4100)}), json!({}))).await;
    assert_eq!((s, classify(PushPlatform::Fcm, s, &b)), (400, PushOutcome::TooLarge));
    assert_eq!(g.received()[0].project.as_deref(), Some("demo"));
}

#[tokio::test]
async fn failures_are_injected_per_token_and_for_the_next_n() {
    let g = PushGatewaySim::start(PushGatewayConfig::default()).await.unwrap();
    let ok = body(json!({"aps": {"alert": "x"}}));
    let http = reqwest::Client::new();
    let inject = |rule: Value| {
        let req = http.post(format!("{}/sim/failures", g.url)).json(&rule);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(inject(json!({"kind": "too_many_requests", "count": 2})).await, 200);
    assert_eq!(inject(json!({"kind": "unregistered", "token": TOKEN})).await, 200);
    assert_eq!(inject(json!({"kind": "sideways"})).await, 400);
    assert_eq!(inject(json!({"kind": "internal", "count": 0})).await, 400);
    let other = "ab".repeat(32);
    let mut statuses = Vec::new();
    for token in [other.as_str(), other.as_str(), other.as_str(), TOKEN, TOKEN] {
        let (s, v) = apns(&g.url, token, &GOOD, ok.clone()).await;
        statuses.push(s);
        if s == 410 {
            assert_eq!(v["reason"], "Unregistered");
            assert!(v["timestamp"].as_u64().is_some());
        }
    }
    assert_eq!(statuses, vec![429, 429, 200, 410, 410]);
    // FCM's shape of the same failure.
    let (s, b) = {
        let resp = http
            .post(format!("{}/v1/projects/p/messages:send", g.url))
            .json(&json!({"message": {"token": "abc", "data": {}}}))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap())
    };
    assert_eq!(s, 200);
    g.inject(sunstorm_sim::push_gateway::FailureRule {
        kind: sunstorm_sim::push_gateway::FailureKind::Unregistered,
        token: Some("abc".into()),
        count: Some(1),
    });
    let resp = http
        .post(format!("{}/v1/projects/p/messages:send", g.url))
        .json(&json!({"message": {"token": "abc", "data": {}}}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap();
    assert_eq!((status, classify(PushPlatform::Fcm, status, &body)), (404, PushOutcome::Unregistered));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["details"][0]["errorCode"], "UNREGISTERED");
    drop(b);
    assert_eq!(http.post(format!("{}/sim/failures/clear", g.url)).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(apns(&g.url, TOKEN, &GOOD, ok).await.0, 200);
}
