use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use super::*;

const DESCRIPTOR: &str = r#"{
  "context": {"contract": {"deployments": [{"chainId": 1, "address": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"}]}},
  "metadata": {"owner": "Circle", "contractName": "USD Coin"},
  "display": {"formats": {"transfer(address to, uint256 value)": {"intent": "Send", "fields": [
    {"path": "value", "label": "Amount", "format": "tokenAmount", "params": {"tokenPath": "@.to"}},
    {"path": "to", "label": "To", "format": "addressName", "params": {"types": ["eoa"], "sources": ["local"]}}
  ]}}}
}"#;

const TOKENS: &str = r#"{"tokens": [
  {"chainId": 1, "address": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "symbol": "USDC", "name": "USD Coin", "decimals": 6},
  {"chainId": 501000101, "address": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "symbol": "USDC", "name": "USD Coin", "decimals": 6},
  {"chainId": 1, "address": "0x0000000000000000000000000000000000000001", "symbol": "BAD\u0007", "name": "x", "decimals": 6}
]}"#;

pub(crate) fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

pub(crate) fn pk() -> [u8; 32] {
    key().verifying_key().to_bytes()
}

fn input(version: u64) -> BuildInput {
    let mut files = BTreeMap::new();
    files.insert("registry/circle/calldata-usdc.json".to_string(), DESCRIPTOR.as_bytes().to_vec());
    files.insert("registry/circle/tests/calldata-usdc.tests.json".to_string(), b"{}".to_vec());
    BuildInput {
        version,
        registry: Source { name: "registry".into(), version: "abc".into(), licence: "CC0-1.0".into() },
        registry_files: files,
        token_lists: vec![TokenListSource {
            source: Source { name: "tokens".into(), version: "1".into(), licence: "MIT".into() },
            json: TOKENS.as_bytes().to_vec(),
            capitalised_tickers: false,
        }],
    }
}

/// A bundle of `version` (a USDC `transfer` descriptor, USDC in the token list) signed by
/// [`key`].
pub(crate) fn bundle(version: u64) -> Vec<u8> {
    seal(&build_body(&input(version)).unwrap().body, &key()).unwrap()
}

#[test]
fn a_built_bundle_verifies_and_renders() {
    let built = build_body(&input(3)).unwrap();
    assert_eq!(built.body.descriptors, vec!["registry/circle/calldata-usdc.json".to_string()]);
    // Test files are not carried; non-EVM and control-character tokens are dropped.
    assert_eq!(built.body.files.len(), 1);
    assert_eq!(built.body.tokens.len(), 1);
    assert!(built.body.tokens.contains_key("eip155:1/erc20:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"));
    assert_eq!(
        built.body.names.get("eip155:1:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48").map(String::as_str),
        Some("USD Coin")
    );
    let b = open_bundle(&bundle(3), &pk(), None).unwrap();
    assert_eq!(b.version, 3);
    assert_eq!(b.set.len(), 1);
}

#[test]
fn the_encoding_is_deterministic() {
    assert_eq!(bundle(1), bundle(1));
    assert_eq!(minify_json("{ \"a b\" : [1, 2],\n \"c\":\"x\\\" y\" }").unwrap(), "{\"a b\":[1,2],\"c\":\"x\\\" y\"}");
    assert!(minify_json("{").is_err());
}

#[test]
fn a_tampered_bundle_is_refused() {
    let good = bundle(1);
    let mut signed: SignedBundle = cbor::from_canonical_slice(&good).unwrap();
    let i = signed.body.len() / 2;
    signed.body[i] ^= 1;
    let bad = cbor::to_vec(&signed).unwrap();
    assert_eq!(open_bundle(&bad, &pk(), None).unwrap_err(), MetadataError::BadSignature);
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
    assert_eq!(open_bundle(&good, &other, None).unwrap_err(), MetadataError::BadSignature);
}

#[test]
fn an_unsigned_bundle_is_refused() {
    let body = build_body(&input(1)).unwrap().body;
    let bare = cbor::to_vec(&body).unwrap();
    assert_eq!(open_bundle(&bare, &pk(), None).unwrap_err(), MetadataError::Unsigned);
    let body_bytes = cbor::to_vec(&body).unwrap();
    let empty = cbor::to_vec(&SignedBundle { body: body_bytes, sig: Vec::new() }).unwrap();
    assert_eq!(open_bundle(&empty, &pk(), None).unwrap_err(), MetadataError::Unsigned);
    assert_eq!(open_bundle(&empty, &pk(), None).unwrap_err().code(), "metadata_unsigned");
}

#[test]
fn garbage_and_oversized_input_are_refused() {
    assert!(matches!(open_bundle(b"not cbor", &pk(), None), Err(MetadataError::Malformed(_))));
    assert!(matches!(open_bundle(&[], &pk(), None), Err(MetadataError::Malformed(_))));
    let huge = vec![0u8; MAX_BUNDLE_LEN + 1];
    assert_eq!(open_bundle(&huge, &pk(), None).unwrap_err(), MetadataError::TooLarge(MAX_BUNDLE_LEN + 1));
}

#[test]
fn a_signed_bundle_with_bad_content_is_refused() {
    let mut body = build_body(&input(1)).unwrap().body;
    body.files.insert("registry/circle/calldata-usdc.json".into(), "{\"context\":{}}".into());
    let bytes = seal(&body, &key()).unwrap();
    let refused = open_bundle(&bytes, &pk(), None).unwrap_err();
    assert!(matches!(refused, MetadataError::Descriptor(_)), "{refused:?}");
    assert_eq!(refused.code(), "metadata_bad_content");
    let mut body = build_body(&input(1)).unwrap().body;
    body.format = 99;
    let bytes = seal(&body, &key()).unwrap();
    assert_eq!(open_bundle(&bytes, &pk(), None).unwrap_err(), MetadataError::UnsupportedFormat(99));
}

#[derive(Default)]
struct MemStore(RefCell<Option<Vec<u8>>>);

impl BundleStore for MemStore {
    fn load(&self) -> Result<Option<Vec<u8>>, MetadataError> {
        Ok(self.0.borrow().clone())
    }
    fn save(&self, bytes: &[u8], _bundle: &LoadedBundle) -> Result<(), MetadataError> {
        *self.0.borrow_mut() = Some(bytes.to_vec());
        Ok(())
    }
}

#[test]
fn older_tampered_or_unsigned_offers_keep_the_previous_bundle() {
    let store = MemStore::default();
    let mut state = MetadataState::start(pk(), &store, Some(&bundle(2)));
    assert_eq!(state.version(), Some(2));
    assert_eq!(state.origin(), Some(BundleOrigin::Shipped));
    // The shipped bundle is always on the phone: it is not copied into the cache.
    assert_eq!(store.load().unwrap(), None);

    assert_eq!(
        state.offer(&bundle(1), BundleOrigin::Octane).unwrap_err(),
        MetadataError::NotNewer { current: 2, offered: 1 }
    );
    assert_eq!(
        state.offer(&bundle(2), BundleOrigin::Octane).unwrap_err(),
        MetadataError::NotNewer { current: 2, offered: 2 }
    );
    let mut tampered = bundle(5);
    let n = tampered.len();
    tampered[n - 1] ^= 1;
    assert!(state.offer_and_store(&tampered, &store).is_err());
    let unsigned = cbor::to_vec(&build_body(&input(6)).unwrap().body).unwrap();
    assert_eq!(state.offer(&unsigned, BundleOrigin::Octane).unwrap_err(), MetadataError::Unsigned);
    assert_eq!(state.version(), Some(2));
    assert_eq!(store.load().unwrap(), None);

    assert_eq!(state.offer_and_store(&bundle(3), &store).unwrap(), 3);
    assert_eq!(state.version(), Some(3));
    assert_eq!(store.load().unwrap(), Some(bundle(3)));
    // A restart picks the stored (newer) bundle over the shipped one.
    let restarted = MetadataState::start(pk(), &store, Some(&bundle(2)));
    assert_eq!((restarted.version(), restarted.origin()), (Some(3), Some(BundleOrigin::Octane)));
    // A newer app asset wins over the cached update.
    let upgraded = MetadataState::start(pk(), &store, Some(&bundle(4)));
    assert_eq!((upgraded.version(), upgraded.origin()), (Some(4), Some(BundleOrigin::Shipped)));
    // A cache that no longer verifies (edited on disk) is ignored, the shipped one used.
    *store.0.borrow_mut() = Some(tampered);
    let after_tamper = MetadataState::start(pk(), &store, Some(&bundle(2)));
    assert_eq!((after_tamper.version(), after_tamper.origin()), (Some(2), Some(BundleOrigin::Shipped)));
}

proptest! {
    #[test]
    fn any_bytes_are_refused_or_opened_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = open_bundle(&bytes, &pk(), None);
    }

    #[test]
    fn any_flipped_byte_is_refused(pos in 0usize..4096, bit in 0u8..8) {
        let mut b = bundle(1);
        let i = pos % b.len();
        b[i] ^= 1 << bit;
        prop_assert!(open_bundle(&b, &pk(), None).is_err());
    }
}

const VAULT: &str = r#"{
  "context": {"contract": {"deployments": [{"chainId": 1, "address": "0xdd0f28e19C1780eb6396170735D45153D261490d"}]}},
  "metadata": {"owner": "Gauntlet", "constants": {
    "underlyingToken": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "underlyingTicker": "UsDc",
    "vaultTicker": "gtUSDC"}},
  "display": {"formats": {"redeem(uint256 shares)": {"intent": "Redeem", "fields": [
    {"path": "shares", "label": "Shares", "format": "tokenAmount", "params": {"tokenPath": "@.to"}}
  ]}}}
}"#;

const WCT: &str = r#"{
  "context": {"contract": {"deployments": [{"chainId": 1, "address": "0xeF4461891DfB3AC8572cCf7C794664A8DD927945"}]}},
  "metadata": {"owner": "WalletConnect", "token": {"ticker": "WCT", "name": "WalletConnect Token", "decimals": 18}},
  "display": {"formats": {"burn(uint256 v)": {"intent": "Burn", "fields": []}}}
}"#;

/// A list in capitals, as Ledger's public list is, with a native-currency placeholder.
const CAPS: &str = r#"{"tokens": [
  {"chainId": 1, "address": "0xdd0f28e19C1780eb6396170735D45153D261490d", "symbol": "GTUSDC", "name": "Gauntlet USDC Prime", "decimals": 18},
  {"chainId": 1, "address": "0xeF4461891DfB3AC8572cCf7C794664A8DD927945", "symbol": "WCTX", "name": "Other", "decimals": 6},
  {"chainId": 1, "address": "0xFAe103DC9cf190eD75350761e95403b7b8aFa6c0", "symbol": "RSWETH", "name": "rswETH", "decimals": 18},
  {"chainId": 1, "address": "0x0000000000000000000000000000000000000000", "symbol": "ETH", "name": "Ether", "decimals": 18},
  {"chainId": 1, "address": "0xEeeeeEeeeEeEeeEeEeEeeEEEeeeeEeeeeeeeEEeE", "symbol": "ETH", "name": "Ether", "decimals": 18}
]}"#;

#[test]
fn descriptors_come_first_restore_ticker_case_and_placeholders_are_no_tokens() {
    let mut i = input(1);
    i.registry_files.insert("registry/g/vault.json".into(), VAULT.as_bytes().to_vec());
    i.registry_files.insert("registry/w/wct.json".into(), WCT.as_bytes().to_vec());
    i.token_lists.push(TokenListSource {
        source: Source { name: "caps".into(), version: "1".into(), licence: "MIT".into() },
        json: CAPS.as_bytes().to_vec(),
        capitalised_tickers: true,
    });
    let t = build_body(&i).unwrap().body.tokens;
    let get = |a: &str| t.get(&format!("eip155:1/erc20:{a}")).cloned();
    // The vault's own constant spells the list's "GTUSDC"; decimals stay the list's.
    let vault = get("0xdd0f28e19c1780eb6396170735d45153d261490d").unwrap();
    assert_eq!((vault.symbol.as_str(), vault.decimals), ("gtUSDC", 18));
    // Only tickers of a list in capitals take the descriptor's case: USDC comes from a
    // list that keeps case, and stays "USDC" although the vault spells it "UsDc".
    assert_eq!(get("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48").unwrap().symbol, "USDC");
    // A capitalised list's name is no guide to case ("EIGEN" is named "Eigen").
    assert_eq!(get("0xfae103dc9cf190ed75350761e95403b7b8afa6c0").unwrap().symbol, "RSWETH");
    // `metadata.token` of a descriptor wins over every list.
    let wct = get("0xef4461891dfb3ac8572ccf7c794664a8dd927945").unwrap();
    assert_eq!((wct.symbol.as_str(), wct.decimals), ("WCT", 18));
    // The zero address and 0xEeee… are native-currency placeholders, not tokens.
    assert_eq!(get("0x0000000000000000000000000000000000000000"), None);
    assert_eq!(get("0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"), None);
}

fn sqlite_cache(path: &std::path::Path) -> Arc<crate::store::SqliteBundleStore> {
    let store = Arc::new(crate::store::Store::open(path).unwrap());
    Arc::new(crate::store::SqliteBundleStore::new(store, Arc::new(crate::clock::ManualClock::new(1_700_000_000))))
}

#[test]
fn an_update_cached_in_sqlite_survives_a_restart_and_a_newer_shipped_bundle_wins() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("phone.db");
    let live = LiveMetadata::start(pk(), sqlite_cache(&db), Some(&bundle(2)));
    assert_eq!(live.status().map(|s| (s.version, s.origin)), Some((2, BundleOrigin::Shipped)));
    assert_eq!(live.accept_update(&bundle(3)).unwrap(), 3);
    assert_eq!(live.status().map(|s| (s.version, s.origin)), Some((3, BundleOrigin::Octane)));
    assert_eq!(live.etag(), Some(crate::store::bundle_etag(&live.status().unwrap().sha256)));
    drop(live);

    // Restart with the same app asset: the cached update is newer and stays in use.
    let cache = sqlite_cache(&db);
    let row = cache.load().unwrap().unwrap();
    assert_eq!(row, bundle(3));
    let live = LiveMetadata::start(pk(), cache, Some(&bundle(2)));
    assert_eq!(live.status().map(|s| (s.version, s.origin)), Some((3, BundleOrigin::Octane)));
    assert!(live.descriptors().is_some());

    // An app update ships version 4: it wins over the cached 3.
    let live = LiveMetadata::start(pk(), sqlite_cache(&db), Some(&bundle(4)));
    assert_eq!(live.status().map(|s| (s.version, s.origin)), Some((4, BundleOrigin::Shipped)));
    // Without any shipped bundle the cache alone is used.
    let live = LiveMetadata::start(pk(), sqlite_cache(&db), None);
    assert_eq!(live.version(), Some(3));
}

#[test]
fn a_refused_update_keeps_the_bundle_in_use_and_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("phone.db");
    let cache = sqlite_cache(&db);
    let live = LiveMetadata::start(pk(), cache.clone(), Some(&bundle(3)));
    let mut tampered = bundle(5);
    let n = tampered.len();
    tampered[n - 1] ^= 1;
    assert_eq!(live.accept_update(&tampered).unwrap_err(), MetadataError::BadSignature);
    let unsigned = cbor::to_vec(&build_body(&input(6)).unwrap().body).unwrap();
    assert_eq!(live.accept_update(&unsigned).unwrap_err(), MetadataError::Unsigned);
    assert_eq!(live.accept_update(&bundle(2)).unwrap_err(), MetadataError::NotNewer { current: 3, offered: 2 });
    // Signed by another key.
    let other = seal(&build_body(&input(7)).unwrap().body, &SigningKey::from_bytes(&[9; 32])).unwrap();
    assert_eq!(live.accept_update(&other).unwrap_err(), MetadataError::BadSignature);
    assert_eq!(live.status().map(|s| (s.version, s.origin)), Some((3, BundleOrigin::Shipped)));
    assert_eq!(cache.load().unwrap(), None);
}
