//! The sign engine renders with the metadata bundle in use and the user's address book:
//! what the review screen shows, request by request, as both change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use alloy_primitives::{address, Address};

use super::test_phone::Phone;
use super::*;
use crate::address_book::UserAddressBook;
use crate::metadata::tests::{bundle, pk};
use crate::store::SqliteBundleStore;

const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
const ALICE: Address = address!("d8dA6BF26964aF9D7eEd9e03E53415D37aA96045");

struct Rig {
    phone: Phone,
    engine: SignEngine,
    metadata: Arc<LiveMetadata>,
    book: Arc<UserAddressBook>,
}

/// The test phone's sign engine with the bundle `shipped` (if any) and an empty book.
fn rig(shipped: Option<Vec<u8>>) -> Rig {
    let phone = Phone::new();
    let cache = Arc::new(SqliteBundleStore::new(phone.store.clone(), phone.clock.clone()));
    let metadata = Arc::new(LiveMetadata::start(pk(), cache, shipped.as_deref()));
    let book = Arc::new(UserAddressBook::load(phone.store.clone(), phone.clock.clone()).unwrap());
    let engine = SignEngine::new(phone.store.clone(), phone.octane.clone(), phone.clock.clone())
        .with_clear_signing(Some(metadata.clone()), book.clone());
    Rig { phone, engine, metadata, book }
}

impl Rig {
    /// The review screen of a USDC transfer of 1.5 USDC to Alice.
    async fn usdc_to_alice(&self) -> DecodedPayload {
        // transfer(address,uint256): selector, the address and the amount as 32-byte words.
        let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
        data.extend_from_slice(&[0; 12]);
        data.extend_from_slice(ALICE.as_slice());
        data.extend_from_slice(&[0; 24]);
        data.extend_from_slice(&1_500_000u64.to_be_bytes());
        let req = self.phone.call(self.phone.pair_a, USDC, 0, data);
        self.engine.ingest(&req).await.unwrap().decoded
    }
}

#[tokio::test]
async fn the_bundle_in_use_renders_the_call_and_the_users_label_names_the_recipient() {
    let r = rig(Some(bundle(1)));
    let d = r.usdc_to_alice().await;
    assert_eq!(d.title, "Send");
    assert_eq!(d.descriptor.as_deref(), Some("registry/circle/calldata-usdc.json"));
    assert_eq!(d.field_by_key("clear.value"), Some("1.5 USDC"));
    assert_eq!(d.field_by_key("clear.to"), Some(ALICE.to_checksum(None).as_str()));

    // A label applies from the next request on, marked as the user's.
    r.book.set("eip155:1", &ALICE.to_checksum(None), "Alice").unwrap();
    let d = r.usdc_to_alice().await;
    assert_eq!(d.field_by_key("clear.to"), Some("Alice (your label, 0xd8dA…6045)"));
    r.book.set("eip155:1", &ALICE.to_checksum(None), "Alice (work)").unwrap();
    assert_eq!(r.usdc_to_alice().await.field_by_key("clear.to"), Some("Alice (work) (your label, 0xd8dA…6045)"));
    // A label on another chain does not apply on Ethereum.
    r.book.remove("eip155:1", &ALICE.to_checksum(None)).unwrap();
    r.book.set("eip155:10", &ALICE.to_checksum(None), "Alice on Optimism").unwrap();
    assert_eq!(r.usdc_to_alice().await.field_by_key("clear.to"), Some(ALICE.to_checksum(None).as_str()));
}

#[tokio::test]
async fn a_newly_verified_bundle_is_used_by_the_next_request() {
    let r = rig(None);
    let before = r.usdc_to_alice().await;
    assert_eq!(before.title, "Token transfer");
    assert_eq!(before.descriptor, None);
    assert!(before.has_warning("unknown_token"), "{:?}", before.warnings);

    assert_eq!(r.metadata.accept_update(&bundle(2)).unwrap(), 2);
    let after = r.usdc_to_alice().await;
    assert_eq!(after.title, "Send");
    assert_eq!(after.field_by_key("clear.value"), Some("1.5 USDC"));
    assert!(!after.has_warning("unknown_token"));
    // The facts the guardrails read are the same either way.
    assert_eq!(after.facts, before.facts);
}
