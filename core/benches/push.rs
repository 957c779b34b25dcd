//! The notification extension's path (issue 17, item 6): open → unseal → verify → decode →
//! guardrails → render, on a database with 1,000 pairs and 10,000 history rows.
//!
//! Measures, in the `bench` (= release) profile:
//! - cold open (`NotificationExtension::open`: read-only SQLite, push key, address book,
//!   the metadata index's key and header) — goal ≤ 20 ms;
//! - per push after open (`handle_push` of a sealed, countersigned request) — goal ≤ 10 ms;
//! - peak RSS of a fresh process that opens the extension and handles 100 pushes
//!   (`VmHWM` from `/proc/self/status`, the bench re-run as a child) — goal ≤ 8 MiB;
//!
//! Each with and without the metadata bundle shipped in `metadata/bundle.cbor`. With it, the
//! app has put the bundle in use first (which writes the index the extension reads: its
//! time is printed too); the extension reads only the index rows each push needs.
//!
//! Run: `cargo bench -p sunstorm-core --bench push`. Prints a Markdown table (pasted in
//! `docs/push.md` and `docs/performance.md`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, TxKind, U256};
use ed25519_dalek::SigningKey;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::clock::{Clock, ManualClock};
use sunstorm_core::envelope::{sign_bytes, Domain, SignedEnvelope};
use sunstorm_core::guardrails::{Guardrails, NativeLimits};
use sunstorm_core::metadata::{LiveMetadata, DEV_METADATA_PUBLIC_KEY};
use sunstorm_core::model::{CountersignedRequest, PayloadKind, SignRequest, SpProfile, STATEMENT_VERSION};
use sunstorm_core::octane::api::PendingSignRequest;
use sunstorm_core::push::payload::unseal;
use sunstorm_core::push::{seal_for_push, ExtensionConfig, NotificationExtension, NotificationOutcome, PushKeyPair};
use sunstorm_core::secrets::FileSecretStore;
use sunstorm_core::store::{
    BondedAppliance, PairRecord, PairStatus, SignOutcome, SignRecord, SqliteBundleStore, Store,
};
use uuid::Uuid;

const PAIRS: u128 = 1_000;
const HISTORY_PER_PAIR: u128 = 10;
const NOW: u64 = 1_800_000_000;
const WALLET: [u8; 20] = [0x42; 20];
const USDC: &str = "A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
/// Aave v3's pool on Ethereum (clear-signed by `registry/aave/calldata-lpv3.json`).
const AAVE_V3_POOL: &str = "87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2";
const OPENS: usize = 30;
const PUSHES: usize = 1_000;

fn sp_key() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}
fn octane_key() -> SigningKey {
    SigningKey::from_bytes(&[3; 32])
}
fn pair_id(i: u128) -> Uuid {
    Uuid::from_u128(0x1000 + i)
}

/// 1,000 active pairs, each bound to the wallet on Ethereum, with 10 completed history rows.
fn build_db(path: &Path) {
    let store = Store::open(path).unwrap();
    let identity = Key32([9; 32]);
    store
        .put_appliance(&BondedAppliance {
            identity,
            static_key: Key32([8; 32]),
            name: "Sigil".into(),
            endorsement: SignedEnvelope { body: vec![1], sig: vec![2; 64] },
            bonded_at: NOW - 86_400,
        })
        .unwrap();
    let sp_public = Key32(sp_key().verifying_key().to_bytes());
    let account = AccountId::evm(1, WALLET);
    for i in 0..PAIRS {
        store
            .insert_pair(&PairRecord {
                pair_id: pair_id(i),
                appliance_identity: identity,
                session_id: format!("s-{i}"),
                sp: SpProfile {
                    sp_id: format!("sp-{i}"),
                    name: format!("Service {i}"),
                    logo_url: "https://acme.example/logo.png".into(),
                    homepage: "https://acme.example".into(),
                    public_key: sp_public,
                    allowed_return_origins: vec![],
                },
                sp_user_ref: "alice".into(),
                sp_public_key: sp_public,
                bindings: vec![account.clone()],
                status: PairStatus::Active,
                created_at: NOW - 86_400,
                revoked_at: None,
            })
            .unwrap();
    }
    let summary = r#"{"title":"Send ETH"}"#;
    store
        .transaction(|tx| {
            for i in 0..PAIRS {
                for j in 0..HISTORY_PER_PAIR {
                    let request_id = Uuid::from_u128((i << 32) | j | (1 << 100));
                    let at = NOW - 3_600 - u64::try_from(j).unwrap() * 60;
                    tx.note_request(request_id, &[j as u8; 32], pair_id(i), at)?;
                    let record = SignRecord {
                        request_id,
                        pair_id: pair_id(i),
                        chain: ChainId::Evm(1),
                        account: account.clone(),
                        kind: PayloadKind::EvmTransaction,
                        summary: serde_json::Value::Null,
                        native_value: Some(1_000_000_000_000_000),
                        spend: Some(1_000_630_000_000_000),
                        outcome: SignOutcome::Completed,
                        reason: None,
                        appliance_signature: Some(vec![7; 65]),
                        received_at: at,
                        decided_at: Some(at + 5),
                        expires_at: Some(at + 120),
                        display_digest: None,
                    };
                    tx.put_sign_with_summary(&record, summary)?;
                }
            }
            Ok(())
        })
        .unwrap();
    let limits = [(ChainId::Evm(1), NativeLimits { per_pair: None, per_day: Some(100 * 10u128.pow(18)) })];
    sunstorm_core::sign::save_guardrails(&store, &Guardrails { limits: limits.into(), ..Default::default() }).unwrap();
}

fn countersigned(pair: Uuid, payload: Vec<u8>) -> PendingSignRequest {
    let req = SignRequest {
        v: STATEMENT_VERSION,
        request_id: Uuid::new_v4(),
        pair_id: pair,
        chain: ChainId::Evm(1),
        account: AccountId::evm(1, WALLET),
        kind: PayloadKind::EvmTransaction,
        payload,
        created_at: NOW,
        expires_at: NOW + 120,
    };
    let body = sunstorm_core::cbor::to_vec(&req).unwrap();
    PendingSignRequest {
        pair_id: req.pair_id,
        request_id: req.request_id,
        request: CountersignedRequest {
            sp_sig: sign_bytes(Domain::SpSignRequest, &sp_key(), &body).to_vec(),
            octane_sig: sign_bytes(Domain::OctaneSignRequest, &octane_key(), &body).to_vec(),
            body,
        },
    }
}

fn tx(to: Address, value: u128, input: Vec<u8>) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: 1,
        nonce: 3,
        gas_limit: 60_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        access_list: Default::default(),
        input: input.into(),
    };
    let mut out = Vec::new();
    tx.encode_for_signing(&mut out);
    out
}

/// The pushes measured, on pair 500: an ETH transfer, a USDC transfer and (with the
/// bundle: without it the call is blind) an Aave v3 `supply` of 250 USDC.
fn pushes(with_bundle: bool) -> Vec<(&'static str, PendingSignRequest)> {
    let pair = pair_id(500);
    let word = |a: &[u8]| [vec![0u8; 32 - a.len()], a.to_vec()].concat();
    let usdc: Address = USDC.parse().unwrap();
    let mut erc20 = hex::decode("a9059cbb").unwrap();
    erc20.extend(word(&[0x11u8; 20]));
    erc20.extend(U256::from(25_000_000u64).to_be_bytes::<32>());
    let mut supply = hex::decode("617ba037").unwrap();
    supply.extend(word(usdc.as_slice()));
    supply.extend(word(&250_000_000u64.to_be_bytes()));
    supply.extend(word(&WALLET));
    supply.extend(word(&[0]));
    let mut out = vec![
        ("ETH transfer", countersigned(pair, tx(Address::from([0x11; 20]), 10u128.pow(17), vec![]))),
        ("USDC transfer", countersigned(pair, tx(usdc, 0, erc20))),
    ];
    if with_bundle {
        out.push(("Aave v3 supply (clear-signed)", countersigned(pair, tx(AAVE_V3_POOL.parse().unwrap(), 0, supply))));
    }
    out
}

fn bundle_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../metadata/bundle.cbor")
}

/// The extension's configuration: with the bundle, only the pinned metadata key (the
/// extension reads the index the app wrote, never the bundle file).
fn config(dir: &Path, with_bundle: bool) -> ExtensionConfig {
    let mut cfg = ExtensionConfig::new(dir.join("sunstorm.db"), Key32(octane_key().verifying_key().to_bytes()));
    if with_bundle {
        cfg.metadata_key = Some(Key32(DEV_METADATA_PUBLIC_KEY));
    }
    cfg
}

/// The app puts the shipped bundle in use, which writes the extension's index; returns
/// how long that took.
fn app_puts_bundle_in_use(dir: &Path, secrets: FileSecretStore) -> Duration {
    let bundle = std::fs::read(bundle_path()).unwrap();
    let store = Arc::new(Store::open(&dir.join("sunstorm.db")).unwrap());
    let t = Instant::now();
    let cache = SqliteBundleStore::new(store, clock()).with_index(Arc::new(secrets));
    let live = LiveMetadata::start(DEV_METADATA_PUBLIC_KEY, Arc::new(cache), Some(&bundle));
    let took = t.elapsed();
    assert!(live.version().is_some());
    took
}

fn clock() -> Arc<dyn Clock> {
    Arc::new(ManualClock::new(NOW + 10))
}

fn median_max(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(v[v.len() / 2]), ms(v[v.len() - 1]))
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// The child: a fresh process that opens the extension once and handles 100 pushes (the
/// measured pushes in turn).
fn rss_child(dir: &Path, with_bundle: bool) {
    let before = vm_hwm_kib();
    let secrets = FileSecretStore::new(dir.join("secrets")).unwrap();
    let t = Instant::now();
    let ext = NotificationExtension::open_with_clock(config(dir, with_bundle), &secrets, clock()).unwrap();
    let open = t.elapsed();
    let label = if with_bundle { "bundle" } else { "none" };
    let sealed: Vec<Vec<u8>> = (0..).map_while(|i| std::fs::read(dir.join(format!("push-{label}-{i}"))).ok()).collect();
    for i in 0..100 {
        let out = ext.handle_push(&sealed[i % sealed.len()]).unwrap();
        assert!(matches!(out, NotificationOutcome::Show(_)), "{out:?}");
    }
    println!("rss {before} {} {}", vm_hwm_kib(), open.as_secs_f64() * 1e3);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rss-child") {
        rss_child(Path::new(&args[i + 1]), args[i + 2] == "bundle");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    build_db(&dir.path().join("sunstorm.db"));
    eprintln!(
        "database: {PAIRS} pairs, {} history rows, built in {:.1} s",
        PAIRS * HISTORY_PER_PAIR,
        t.elapsed().as_secs_f64()
    );
    let secrets = FileSecretStore::new(dir.path().join("secrets")).unwrap();
    let key = PushKeyPair::create(&secrets).unwrap();
    let sealed = |with_bundle: bool| -> Vec<(&str, Vec<u8>, PendingSignRequest)> {
        pushes(with_bundle)
            .into_iter()
            .map(|(n, r)| (n, seal_for_push(&key.public_key(), &r).unwrap().bytes, r))
            .collect()
    };

    println!("| measure | metadata bundle | median | max | goal |");
    println!("|---|---|---:|---:|---|");
    for with_bundle in [false, true] {
        let label = if with_bundle { "shipped (3.4 MB), through the index" } else { "none" };
        if with_bundle {
            let took = app_puts_bundle_in_use(dir.path(), FileSecretStore::new(dir.path().join("secrets")).unwrap());
            println!(
                "| the app puts the bundle in use: verify, parse, write the index (once per bundle) | {label} | {:.0} ms | | |",
                took.as_secs_f64() * 1e3
            );
        }
        let pushes = sealed(with_bundle);
        for (i, (_, bytes, _)) in pushes.iter().enumerate() {
            let tag = if with_bundle { "bundle" } else { "none" };
            std::fs::write(dir.path().join(format!("push-{tag}-{i}")), bytes).unwrap();
        }
        let mut opens = Vec::with_capacity(OPENS);
        for _ in 0..OPENS {
            let t = Instant::now();
            let ext =
                NotificationExtension::open_with_clock(config(dir.path(), with_bundle), &secrets, clock()).unwrap();
            opens.push(t.elapsed());
            black_box(ext);
        }
        let (m, x) = median_max(opens);
        println!(
            "| open (read-only store, push key, address book; with the bundle its index key and header) | {label} | {m:.2} ms | {x:.2} ms | ≤ 20 ms |"
        );
        let ext = NotificationExtension::open_with_clock(config(dir.path(), with_bundle), &secrets, clock()).unwrap();
        for (name, sealed, _) in &pushes {
            let mut times = Vec::with_capacity(PUSHES);
            for _ in 0..PUSHES {
                let t = Instant::now();
                let out = ext.handle_push(black_box(sealed)).unwrap();
                times.push(t.elapsed());
                assert!(matches!(out, NotificationOutcome::Show(_)), "{out:?}");
            }
            let (m, x) = median_max(times);
            println!("| `handle_push`, {name} | {label} | {m:.3} ms | {x:.3} ms | ≤ 10 ms |");
        }
        // The peak RSS of a fresh process.
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--rss-child", dir.path().to_str().unwrap(), if with_bundle { "bundle" } else { "none" }])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8_lossy(&out.stdout).lines().find(|l| l.starts_with("rss ")).unwrap().to_string();
        let f: Vec<f64> = line.split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect();
        let mib = |kib: f64| kib / 1024.0;
        println!(
            "| peak RSS of a fresh process: open + 100 pushes (`VmHWM`; {:.1} MiB before open) | {label} | {:.1} MiB | | ≤ 8 MiB |",
            mib(f[0]),
            mib(f[1])
        );
        println!("| first open in that fresh process | {label} | {:.2} ms | | ≤ 20 ms |", f[2]);
    }
    // The steps alone, for where the time goes.
    let pushes = sealed(false);
    let (_, sealed, delivered) = &pushes[0];
    let mut t_unseal = Vec::with_capacity(PUSHES);
    let mut t_verify = Vec::with_capacity(PUSHES);
    let sp = Key32(sp_key().verifying_key().to_bytes());
    let oc = Key32(octane_key().verifying_key().to_bytes());
    for _ in 0..PUSHES {
        let t = Instant::now();
        black_box(unseal(&key, black_box(sealed)).unwrap());
        t_unseal.push(t.elapsed());
        let t = Instant::now();
        black_box(delivered.request.verify(&sp, &oc).unwrap());
        t_verify.push(t.elapsed());
    }
    let (m, x) = median_max(t_unseal);
    println!("| step: unseal (HPKE X25519, ChaCha20-Poly1305) | – | {m:.3} ms | {x:.3} ms | |");
    let (m, x) = median_max(t_verify);
    println!("| step: both Ed25519 signatures and the canonical body | – | {m:.3} ms | {x:.3} ms | |");
}
