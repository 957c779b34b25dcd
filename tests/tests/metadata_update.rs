//! The metadata bundle update end to end: the phone (`Sunstorm`) asks the octane simulator
//! for its bundle over loopback HTTP, verifies it under the pinned metadata key, caches it
//! in SQLite and uses it; a tampered, unsigned, older or foreign-signed bundle is refused
//! with its own error and the bundle in use stays — also across a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use sunstorm_core::audit::AuditEvent;
use sunstorm_core::bytes::Key32;
use sunstorm_core::metadata::{
    build_body, seal, BuildInput, BundleOrigin, MetadataError, ShippedBundle, Source, TokenListSource,
};
use sunstorm_core::octane::client::OctaneError;
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_core::sunstorm::{CoreError, MetadataUpdate, Sunstorm};
use sunstorm_e2e::{appliance_config, now, open_phone, sim_world};
use sunstorm_sim::appliance::UserScript;
use sunstorm_sim::octane::{ManualClock, METADATA_VERSION_HEADER};
use sunstorm_sim::world::World as SimWorld;

/// A descriptor for USDC's `approve` (the bundle's content matters only as a parseable set).
const DESCRIPTOR: &str = r#"{"context": {"contract": {"deployments": [
    {"chainId": 1, "address": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"}]}},
  "metadata": {"owner": "Circle"},
  "display": {"formats": {"approve(address spender, uint256 value)": {"intent": "Approve",
    "fields": [{"path": "spender", "label": "Spender", "format": "addressName"}]}}}}"#;

const TOKENS: &str = r#"{"tokens": [
  {"chainId": 1, "address": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "symbol": "USDC", "name": "USD Coin", "decimals": 6}
]}"#;

fn metadata_key() -> SigningKey {
    SigningKey::from_bytes(&[0x5a; 32])
}

fn body(version: u64) -> sunstorm_core::metadata::BundleBody {
    let mut files = BTreeMap::new();
    files.insert("registry/circle/calldata-usdc.json".to_string(), DESCRIPTOR.as_bytes().to_vec());
    let input = BuildInput {
        version,
        registry: Source { name: "test registry".into(), version: format!("v{version}"), licence: "CC0-1.0".into() },
        registry_files: files,
        token_lists: vec![TokenListSource {
            source: Source { name: "test tokens".into(), version: "1".into(), licence: "MIT".into() },
            json: TOKENS.as_bytes().to_vec(),
            capitalised_tickers: false,
        }],
    };
    build_body(&input).unwrap().body
}

/// A bundle of `version` signed by the pinned key.
fn bundle(version: u64) -> Vec<u8> {
    seal(&body(version), &metadata_key()).unwrap()
}

struct Rig {
    sim: SimWorld,
    secrets: Arc<MemorySecretStore>,
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
}

impl Rig {
    async fn new() -> Rig {
        let (sim, _) = sim_world(appliance_config(0x42, UserScript::Approve), 0).await;
        Rig {
            sim,
            secrets: Arc::new(MemorySecretStore::default()),
            dir: tempfile::tempdir().unwrap(),
            clock: Arc::new(ManualClock::new(now())),
        }
    }

    /// The phone (an app start) with `shipped` as its asset and the test key pinned.
    fn phone(&self, shipped: Option<Vec<u8>>) -> Sunstorm {
        open_phone(&self.sim, &self.secrets, &self.dir, &self.clock, None, |cfg| {
            cfg.metadata_key = Some(Key32(metadata_key().verifying_key().to_bytes()));
            cfg.shipped_metadata = shipped.map(ShippedBundle::new);
            cfg.metadata_timeout = Duration::from_secs(5);
        })
    }

    fn serve(&self, bytes: Vec<u8>) {
        self.sim.octane.serve_metadata(Some(bytes));
    }
}

fn in_use(phone: &Sunstorm) -> Option<(u64, BundleOrigin)> {
    phone.metadata_status().map(|s| (s.version, s.origin))
}

fn refusal(r: Result<MetadataUpdate, CoreError>) -> MetadataError {
    match r {
        Err(CoreError::Metadata(e)) => e,
        other => panic!("expected a metadata refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_bundle_from_octane_is_used_cached_and_kept_over_a_restart() {
    let rig = Rig::new().await;
    let phone = rig.phone(Some(bundle(1)));
    assert_eq!(in_use(&phone), Some((1, BundleOrigin::Shipped)));

    // Octane serves nothing yet.
    assert!(matches!(phone.update_metadata().await, Err(CoreError::Octane(OctaneError::NotFound))));

    rig.serve(bundle(3));
    assert_eq!(phone.update_metadata().await.unwrap(), MetadataUpdate::Updated { from: Some(1), to: 3 });
    let status = phone.metadata_status().unwrap();
    assert_eq!((status.version, status.origin), (3, BundleOrigin::Octane));
    assert_eq!(status.sources[0].version, "v3");
    // The audit log records which bundle the phone trusts from now on.
    let entry = &phone.audit_log(1).unwrap()[0];
    assert_eq!(
        (entry.subject.as_str(), &entry.event),
        ("metadata", &AuditEvent::MetadataUpdated { version: 3, sha256: status.sha256.clone() })
    );
    // Asked again: octane answers 304 to the bundle's entity tag.
    assert_eq!(phone.update_metadata().await.unwrap(), MetadataUpdate::Unchanged { version: 3 });
    drop(phone);

    // A restart with the same (older) app asset keeps the cached update.
    let phone = rig.phone(Some(bundle(1)));
    assert_eq!(in_use(&phone), Some((3, BundleOrigin::Octane)));
    assert_eq!(phone.update_metadata().await.unwrap(), MetadataUpdate::Unchanged { version: 3 });
    drop(phone);
    // An app update shipping a newer bundle wins over the cache.
    let phone = rig.phone(Some(bundle(4)));
    assert_eq!(in_use(&phone), Some((4, BundleOrigin::Shipped)));
    // Octane's version 3 is now older: refused, 4 stays.
    assert_eq!(refusal(phone.update_metadata().await), MetadataError::NotNewer { current: 4, offered: 3 });
    assert_eq!(in_use(&phone), Some((4, BundleOrigin::Shipped)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_unsigned_older_and_foreign_bundles_are_refused_and_the_previous_stays() {
    let rig = Rig::new().await;
    let phone = rig.phone(Some(bundle(2)));

    let mut tampered = bundle(5);
    let n = tampered.len();
    tampered[n - 3] ^= 0x01;
    rig.serve(tampered);
    assert_eq!(refusal(phone.update_metadata().await), MetadataError::BadSignature);

    rig.serve(sunstorm_core::cbor::to_vec(&body(6)).unwrap());
    assert_eq!(refusal(phone.update_metadata().await), MetadataError::Unsigned);

    rig.serve(bundle(1));
    assert_eq!(refusal(phone.update_metadata().await), MetadataError::NotNewer { current: 2, offered: 1 });

    rig.serve(seal(&body(7), &SigningKey::from_bytes(&[0x77; 32])).unwrap());
    assert_eq!(refusal(phone.update_metadata().await), MetadataError::BadSignature);

    rig.serve(b"not a bundle".to_vec());
    assert_eq!(refusal(phone.update_metadata().await).code(), "metadata_malformed");

    assert_eq!(in_use(&phone), Some((2, BundleOrigin::Shipped)));
    drop(phone);
    // Nothing refused reached the cache.
    let phone = rig.phone(None);
    assert_eq!(in_use(&phone), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn octane_answers_with_version_and_etag_and_304_on_if_none_match() {
    let rig = Rig::new().await;
    let bytes = bundle(3);
    rig.serve(bytes.clone());
    let url = format!("{}/metadata/bundle", rig.sim.octane.url);
    let http = reqwest::Client::new();
    let first = http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "application/cbor");
    assert_eq!(first.headers()[METADATA_VERSION_HEADER], "3");
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    use sha2::Digest;
    assert_eq!(etag, format!("\"{}\"", hex::encode(sha2::Sha256::digest(&bytes))));
    assert_eq!(first.bytes().await.unwrap().to_vec(), bytes);
    let again = http.get(&url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    let other = http.get(&url).header("if-none-match", "\"00\"").send().await.unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_octane_that_never_answers_ends_in_a_timeout_and_the_bundle_stays() {
    let rig = Rig::new().await;
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let phone = open_phone(&rig.sim, &rig.secrets, &rig.dir, &rig.clock, None, |cfg| {
        cfg.octane_url = format!("http://{addr}").parse().unwrap();
        cfg.metadata_key = Some(Key32(metadata_key().verifying_key().to_bytes()));
        cfg.shipped_metadata = Some(ShippedBundle::new(bundle(2)));
        cfg.metadata_timeout = Duration::from_millis(300);
    });
    let started = std::time::Instant::now();
    assert!(matches!(phone.update_metadata().await, Err(CoreError::Octane(OctaneError::Timeout))));
    assert!(started.elapsed() < Duration::from_secs(4), "gave up after {:?}", started.elapsed());
    assert_eq!(in_use(&phone), Some((2, BundleOrigin::Shipped)));
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_pinned_key_no_bundle_is_used_and_updates_say_so() {
    let rig = Rig::new().await;
    rig.serve(bundle(3));
    let phone = open_phone(&rig.sim, &rig.secrets, &rig.dir, &rig.clock, None, |cfg| {
        cfg.shipped_metadata = Some(ShippedBundle::new(bundle(2)));
    });
    assert_eq!(in_use(&phone), None);
    assert_eq!(refusal(phone.update_metadata().await), MetadataError::NotConfigured);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_labels_are_kept_across_a_restart_and_every_change_is_audited() {
    let rig = Rig::new().await;
    let phone = rig.phone(None);
    let alice = "0x2222222222222222222222222222222222222222";
    let set = phone.set_address_label("eip155:1", alice, " Alice ").unwrap();
    assert_eq!(set.label, "Alice");
    phone.set_address_label("eip155:1", alice, "Alice B.").unwrap();
    drop(phone);
    let phone = rig.phone(None);
    let labels: Vec<_> = phone.address_labels(None).unwrap().into_iter().map(|l| l.label).collect();
    assert_eq!(labels, ["Alice B."]);
    phone.remove_address_label("eip155:1", alice).unwrap();
    assert!(phone.address_labels(Some("eip155:1")).unwrap().is_empty());
    let refused = phone.set_address_label("eip155:1", alice, "\u{202E}evil").unwrap_err();
    assert_eq!(refused.code(), "address_book_label_character");

    let audit: Vec<_> = phone.audit_log(10).unwrap().into_iter().map(|e| (e.subject, e.event)).collect();
    let subject = format!("eip155:1:{alice}");
    assert_eq!(
        audit,
        [
            (subject.clone(), AuditEvent::AddressLabelChanged { label: None }),
            (subject.clone(), AuditEvent::AddressLabelChanged { label: Some("Alice B.".into()) }),
            (subject, AuditEvent::AddressLabelChanged { label: Some("Alice".into()) }),
        ]
    );
}
