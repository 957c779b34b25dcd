use super::*;
use crate::clock::ManualClock;

const USDC: &str = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";

fn book() -> (Arc<Store>, Arc<ManualClock>, UserAddressBook) {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let b = UserAddressBook::load(store.clone(), clock.clone()).unwrap();
    (store, clock, b)
}

fn usdc() -> Address {
    USDC.parse().unwrap()
}

#[test]
fn a_label_is_found_by_chain_and_address_in_any_case_and_renamed_in_place() {
    let (store, clock, b) = book();
    let set = b.set("eip155:1", &USDC.to_lowercase(), "  Circle's USDC  ").unwrap();
    assert_eq!(set.label, "Circle's USDC");
    assert_eq!(set.address.to_checksum(None), USDC);
    assert_eq!(b.label(1, &usdc()).as_deref(), Some("Circle's USDC"));
    // Per chain: the same address on another chain has no label.
    assert_eq!(b.label(10, &usdc()), None);

    clock.advance(60);
    b.set("eip155:1", USDC, "My USDC").unwrap();
    let all = b.list(None).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].label.as_str(), all[0].added_at), ("My USDC", 1_700_000_000));
    assert_eq!(b.label(1, &usdc()).as_deref(), Some("My USDC"));
    // The row is canonical: lowercase hex.
    assert_eq!(store.address_book().unwrap()[0].address, USDC.to_lowercase());

    // A restart reads the book back.
    let again = UserAddressBook::load(store, clock).unwrap();
    assert_eq!(again.label(1, &usdc()).as_deref(), Some("My USDC"));

    b.remove("eip155:1", USDC).unwrap();
    assert_eq!(b.label(1, &usdc()), None);
    assert!(b.list(None).unwrap().is_empty());
}

#[test]
fn list_filters_by_chain() {
    let (_, _, b) = book();
    b.set("eip155:1", USDC, "mainnet").unwrap();
    b.set("eip155:8453", USDC, "base").unwrap();
    let base: Vec<_> = b.list(Some("eip155:8453")).unwrap().into_iter().map(|l| l.label).collect();
    assert_eq!(base, vec!["base".to_string()]);
    assert_eq!(b.list(None).unwrap().len(), 2);
}

#[test]
fn bad_chains_addresses_and_labels_are_refused_with_their_own_code() {
    let (_, _, b) = book();
    let code = |r: Result<AddressLabel, AddressBookError>| r.unwrap_err().code();
    assert_eq!(code(b.set("ethereum", USDC, "x")), "address_book_bad_chain");
    assert_eq!(code(b.set("eip155:01", USDC, "x")), "address_book_bad_chain");
    let sol = format!("solana:{}", crate::caip::SOLANA_MAINNET);
    assert_eq!(code(b.set(&sol, USDC, "x")), "address_book_unsupported_chain");
    assert_eq!(code(b.set("eip155:1", "0x1234", "x")), "address_book_bad_address");
    // Mixed case with a wrong checksum.
    let bad_sum = USDC.replace("A0b8", "a0B8");
    assert_eq!(code(b.set("eip155:1", &bad_sum, "x")), "address_book_bad_address");
    assert_eq!(code(b.set("eip155:1", USDC, "   ")), "address_book_empty_label");
    assert_eq!(code(b.set("eip155:1", USDC, &"a".repeat(MAX_LABEL_CHARS + 1))), "address_book_label_too_long");
    assert!(b.set("eip155:1", USDC, &"é".repeat(MAX_LABEL_CHARS)).is_ok());
    // A right-to-left override would make the label read differently than typed.
    assert!(matches!(b.set("eip155:1", USDC, "Mom\u{202E}evil"), Err(AddressBookError::LabelCharacter(0x202E))));
    assert_eq!(code(b.set("eip155:1", USDC, "line\nbreak")), "address_book_label_character");
    assert_eq!(b.remove("eip155:5", USDC).unwrap_err().code(), "address_book_not_found");
    assert_eq!(b.list(Some("nope")).unwrap_err().code(), "address_book_bad_chain");
}

#[test]
fn a_full_book_refuses_new_addresses_but_renames_existing_ones() {
    let (_, _, b) = book();
    for i in 0..MAX_ENTRIES {
        b.set("eip155:1", &format!("0x{i:040x}"), &format!("n{i}")).unwrap();
    }
    let next = format!("0x{:040x}", MAX_ENTRIES);
    assert!(matches!(b.set("eip155:1", &next, "one too many"), Err(AddressBookError::Full { max: MAX_ENTRIES })));
    assert_eq!(b.label(1, &next.parse().unwrap()), None);
    b.set("eip155:1", &format!("0x{:040x}", 7), "renamed").unwrap();
    assert_eq!(b.label(1, &format!("0x{:040x}", 7).parse().unwrap()).as_deref(), Some("renamed"));
}

#[test]
fn a_row_written_with_invisible_characters_is_shown_escaped() {
    let (store, clock, _) = book();
    let row = AddressBookRow {
        chain: "eip155:1".into(),
        address: USDC.to_lowercase(),
        label: "a\u{200B}b".into(),
        added_at: 1,
    };
    assert!(store.put_address_label(&row, MAX_ENTRIES).unwrap());
    let b = UserAddressBook::load(store, clock).unwrap();
    assert_eq!(b.label(1, &usdc()).as_deref(), Some("a⟨U+200B⟩b"));
}
