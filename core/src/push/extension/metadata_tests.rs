//! The extension renders with the bundle the app uses, read through the app's metadata
//! index: the same text and display digest as the app, never from a row that does not
//! authenticate, never from the index of an older bundle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use alloy_primitives::{address, Address};

use super::*;
use crate::address_book::UserAddressBook;
use crate::decode::display_digest;
use crate::metadata::tests::{bundle, pk};
use crate::metadata::{LiveMetadata, DEV_METADATA_PUBLIC_KEY};
use crate::push::payload::seal_for_push;
use crate::secrets::MemorySecretStore;
use crate::sign::test_phone::Phone;
use crate::sign::{verify_delivered, SignEngine};
use crate::store::SqliteBundleStore;

const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
const ALICE: Address = address!("d8dA6BF26964aF9D7eEd9e03E53415D37aA96045");
const AAVE_V3_POOL: Address = address!("87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2");

/// The app (a phone whose sign engine renders with the bundle `shipped`, verified under
/// `key`, on a database file) and what the extension needs to open on the same file.
struct App {
    dir: tempfile::TempDir,
    phone: Phone,
    secrets: Arc<MemorySecretStore>,
    key: PushKeyPair,
    metadata_key: [u8; 32],
    metadata: Arc<LiveMetadata>,
    engine: SignEngine,
}

fn app(metadata_key: [u8; 32], shipped: &[u8]) -> App {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sunstorm.db");
    let phone = Phone::on(Arc::new(Store::open(&path).unwrap()), true);
    let secrets = Arc::new(MemorySecretStore::default());
    let key = PushKeyPair::create(secrets.as_ref()).unwrap();
    let cache = Arc::new(SqliteBundleStore::new(phone.store.clone(), phone.clock.clone()).with_index(secrets.clone()));
    let metadata = Arc::new(LiveMetadata::start(metadata_key, cache, Some(shipped)));
    let book = Arc::new(UserAddressBook::load(phone.store.clone(), phone.clock.clone()).unwrap());
    let engine = SignEngine::new(phone.store.clone(), phone.octane.clone(), phone.clock.clone())
        .with_clear_signing(Some(metadata.clone()), book);
    App { dir, phone, secrets, key, metadata_key, metadata, engine }
}

impl App {
    fn path(&self) -> PathBuf {
        self.dir.path().join("sunstorm.db")
    }

    /// An extension opened now on the app's file and secrets.
    fn extension(&self) -> NotificationExtension {
        let mut cfg = ExtensionConfig::new(self.path(), Key32(self.phone.octane.key.verifying_key().to_bytes()));
        cfg.metadata_key = Some(Key32(self.metadata_key));
        NotificationExtension::open_with_clock(cfg, self.secrets.as_ref(), self.phone.clock.clone()).unwrap()
    }

    fn push(&self, ext: &NotificationExtension, r: &PendingSignRequest) -> NotificationOutcome {
        ext.handle_push(&seal_for_push(&self.key.public_key(), r).unwrap().bytes).unwrap()
    }

    /// The screen the extension renders for `r` (what its notification is made of).
    fn extension_screen(&self, ext: &NotificationExtension, r: &PendingSignRequest) -> DecodedPayload {
        let pair = self.phone.store.pair(r.pair_id).unwrap().unwrap();
        let req = verify_delivered(r, &pair, self.phone.octane.key.verifying_key().as_bytes()).unwrap();
        ext.screen(&pair, &req, self.phone.now()).unwrap().expect("rendered in the extension")
    }

    /// A USDC transfer of 1.5 USDC to Alice.
    fn usdc_to_alice(&self) -> PendingSignRequest {
        let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
        data.extend_from_slice(&[0; 12]);
        data.extend_from_slice(ALICE.as_slice());
        data.extend_from_slice(&[0; 24]);
        data.extend_from_slice(&1_500_000u64.to_be_bytes());
        self.phone.call(self.phone.pair_a, USDC, 0, data)
    }

    /// Aave v3 `supply(USDC, 250 USDC, the wallet, 0)` on Ethereum.
    fn aave_supply(&self) -> PendingSignRequest {
        let word = |a: &[u8]| {
            let mut w = vec![0u8; 32 - a.len()];
            w.extend_from_slice(a);
            w
        };
        let mut data = vec![0x61, 0x7b, 0xa0, 0x37];
        data.extend(word(USDC.as_slice()));
        data.extend(word(&250_000_000u64.to_be_bytes()));
        data.extend(word(&self.phone.wallet));
        data.extend(word(&[0]));
        self.phone.call(self.phone.pair_a, AAVE_V3_POOL, 0, data)
    }

    /// Rewrites the index rows through a writable connection of the test's own (what an
    /// attacker with the file could do).
    fn sql(&self, sql: &str, params: impl rusqlite::Params) -> usize {
        rusqlite::Connection::open(self.path()).unwrap().execute(sql, params).unwrap()
    }
}

fn shown(o: NotificationOutcome) -> Notification {
    match o {
        NotificationOutcome::Show(n) => n,
        other => panic!("expected a notification, got {other:?}"),
    }
}

fn shipped_bundle() -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../metadata/bundle.cbor")).unwrap()
}

#[tokio::test]
async fn the_extension_shows_what_the_app_shows_with_the_shipped_bundle() {
    let a = app(DEV_METADATA_PUBLIC_KEY, &shipped_bundle());
    let ext = a.extension();
    for (r, descriptor, text) in [
        // The shipped registry has no USDC descriptor: the token list names the token.
        (a.usdc_to_alice(), None, "Token transfer: 1.5 USDC. 1 warning: review it in Sunstorm."),
        (a.aave_supply(), Some("registry/aave/calldata-lpv3.json"), "Supply: 250 USDC. Review it in Sunstorm."),
    ] {
        let n = shown(a.push(&ext, &r));
        let screen = a.extension_screen(&ext, &r);
        // The app renders the same screen: the same digest, so the same text.
        let app_view = a.engine.ingest(&r).await.unwrap();
        assert_eq!(app_view.decoded, screen);
        assert_eq!(display_digest(&r.request_id, &screen), app_view.display_digest);
        assert_eq!(screen.descriptor.as_deref(), descriptor, "{screen:?}");
        assert_eq!(n.body, text);
    }
}

#[tokio::test]
async fn a_tampered_or_missing_index_row_is_never_used() {
    let a = app(pk(), &bundle(1));
    let r = a.usdc_to_alice();
    let ext = a.extension();
    assert_eq!(shown(a.push(&ext, &r)).body, "Send: 1.5 USDC. 1 warning: review it in Sunstorm.");
    let usdc = "t:eip155:1/erc20:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

    // USDC's token row says 18 decimals: it no longer authenticates, so the extension does
    // not show "0.0000000000015 USDC" — it leaves the request to the app.
    let forged = crate::cbor::to_vec(&crate::decode::erc7730::TokenInfo {
        symbol: "USDC".into(),
        decimals: 18,
        name: "USD Coin".into(),
    })
    .unwrap();
    assert_eq!(a.sql("UPDATE metadata_index SET value = ?1 WHERE key = ?2", rusqlite::params![forged, usdc]), 1);
    let ext = a.extension();
    assert_eq!(a.push(&ext, &r), NotificationOutcome::Fetch { pair_id: r.pair_id, request_id: r.request_id });

    // Deleted (and the previous row's chain left as it was): absence is not provable.
    a.sql("DELETE FROM metadata_index WHERE key = ?1", [usdc]);
    assert!(matches!(a.push(&ext, &r), NotificationOutcome::Fetch { .. }));
    // Deleted with the chain mended (the forger has no key to re-MAC the previous row).
    a.sql("UPDATE metadata_index SET next_key = COALESCE((SELECT MIN(key) FROM metadata_index WHERE key > ?1), '~') WHERE key = (SELECT MAX(key) FROM metadata_index WHERE key < ?1)", [usdc]);
    assert!(matches!(a.push(&ext, &r), NotificationOutcome::Fetch { .. }));

    // A header that does not authenticate: the index is not used at all.
    a.sql("UPDATE metadata_index SET value = x'00' WHERE key = ''", []);
    let ext = a.extension();
    assert!(matches!(ext.metadata, Clear::Unusable("metadata_index_bad_row")), "{:?}", ext.metadata);
    assert!(matches!(a.push(&ext, &r), NotificationOutcome::Fetch { .. }));
    // Nothing else changes: a tampered push is still suppressed, not left to the app.
    let mut sealed = seal_for_push(&a.key.public_key(), &r).unwrap().bytes;
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    assert!(matches!(
        ext.handle_push(&sealed).unwrap(),
        NotificationOutcome::Suppress { reason: SuppressReason::Tampered, .. }
    ));
}

#[test]
fn the_index_of_an_older_bundle_is_not_used_after_an_update() {
    let a = app(pk(), &bundle(1));
    let before = a.extension();
    assert!(matches!(&before.metadata, Clear::Index(i) if i.version() == 1));
    let old_rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = {
        let c = rusqlite::Connection::open(a.path()).unwrap();
        let mut st = c.prepare("SELECT key, next_key, value, mac FROM metadata_index").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect()
    };

    assert_eq!(a.metadata.accept_update(&bundle(2)).unwrap(), 2);
    let r = a.usdc_to_alice();
    // An extension opened after the update reads the new index.
    let after = a.extension();
    assert!(matches!(&after.metadata, Clear::Index(i) if i.version() == 2));
    assert!(matches!(a.push(&after, &r), NotificationOutcome::Show(_)));
    // One opened before it holds the old key: the new rows do not verify under it, and it
    // leaves the request to the app rather than guess.
    assert_eq!(a.push(&before, &r), NotificationOutcome::Fetch { pair_id: r.pair_id, request_id: r.request_id });

    // The old index put back (a rolled-back database): its rows verified once, but not
    // under the key the app now holds for bundle 2.
    a.sql("DELETE FROM metadata_index", []);
    let c = rusqlite::Connection::open(a.path()).unwrap();
    for (k, n, v, m) in &old_rows {
        c.execute("INSERT INTO metadata_index VALUES (?1, ?2, ?3, ?4)", rusqlite::params![k, n, v, m]).unwrap();
    }
    let ext = a.extension();
    assert!(matches!(ext.metadata, Clear::Unusable(_)), "{:?}", ext.metadata);
    assert!(matches!(a.push(&ext, &r), NotificationOutcome::Fetch { .. }));
}

#[test]
fn without_an_index_a_request_that_needs_the_bundle_is_left_to_the_app() {
    let a = app(pk(), &bundle(1));
    a.secrets.delete(crate::metadata::INDEX_SECRET_NAME).unwrap();
    let ext = a.extension();
    assert!(matches!(ext.metadata, Clear::Unusable("metadata_index_missing")), "{:?}", ext.metadata);
    let r = a.usdc_to_alice();
    assert_eq!(a.push(&ext, &r), NotificationOutcome::Fetch { pair_id: r.pair_id, request_id: r.request_id });
    // The app's next start writes it again.
    let cache =
        Arc::new(SqliteBundleStore::new(a.phone.store.clone(), a.phone.clock.clone()).with_index(a.secrets.clone()));
    let _ = LiveMetadata::start(pk(), cache, Some(&bundle(1)));
    assert!(matches!(a.push(&a.extension(), &r), NotificationOutcome::Show(_)));
}
