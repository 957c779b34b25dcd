//! The review screen with a metadata bundle: descriptors drive the screen, the decoders use
//! the bundle's tokens and names, and the facts for the guardrails do not change.

use std::collections::BTreeMap;

use alloy_primitives::{address, Address, TxKind, U256};
use alloy_sol_types::SolCall;
use proptest::prelude::*;

use super::erc7730::tests::{calldata, permit, set as bundle, Book, ALICE, ROUTER, USDC};
use super::erc7730::{AddressBook, DescriptorSet, NoAddressBook, TokenInfo as BundleToken};
use super::evm::ITokenCalls;
use super::tests::tx_1559;
use super::*;

use alloy_dyn_abi::DynSolValue as V;

const DAI: Address = address!("6B175474E89094C44Da98b954EedeAC495271d0F");
const BOB: Address = address!("00000000219ab540356cBB839Cbe05303d7705Fa");
const UNKNOWN_TOKEN: Address = address!("0000000000000000000000000000000000001234");

/// A bundle with the token list and names only (no descriptor applies to anything).
fn tokens_only() -> DescriptorSet {
    let tokens = [
        ((1, USDC), BundleToken { symbol: "USDC".into(), decimals: 6, name: "USD Coin".into() }),
        ((1, DAI), BundleToken { symbol: "DAI".into(), decimals: 18, name: "Dai Stablecoin".into() }),
    ];
    DescriptorSet::new(Vec::new(), tokens, [((1, ROUTER), "1inch Aggregation Router".to_string())])
}

fn signer() -> AccountId {
    AccountId::evm(1, BOB.into_array())
}

fn tx(to: Address, value: U256, input: Vec<u8>) -> Vec<u8> {
    tx_1559(TxKind::Call(to), value, input)
}

fn show(payload: &[u8], set: &DescriptorSet, book: &dyn AddressBook) -> DecodedPayload {
    let ctx = DecodeContext { clear: Some(set), book, ..DecodeContext::default() };
    decode_with(PayloadKind::EvmTransaction, payload, &signer(), &ctx).unwrap()
}

fn plain(payload: &[u8]) -> DecodedPayload {
    decode(PayloadKind::EvmTransaction, payload, &signer()).unwrap()
}

fn transfer(to: Address, amount: u128) -> Vec<u8> {
    ITokenCalls::transferCall { to, amount: U256::from(amount) }.abi_encode()
}

fn keys(d: &DecodedPayload) -> Vec<&str> {
    d.fields.iter().map(|f| f.key.as_str()).collect()
}

#[test]
fn a_usdc_transfer_is_shown_from_its_descriptor() {
    let payload = tx(USDC, U256::ZERO, transfer(ALICE, 1_500_000));
    let d = show(&payload, &bundle(), &Book);
    assert_eq!(d.title, "Send");
    assert!(!d.blind);
    assert_eq!(d.descriptor.as_deref(), Some("registry/circle/usdc.json"));
    assert_eq!(d.field_by_key("clear.contract"), Some("Circle"));
    assert_eq!(d.field_by_key("clear._value"), Some("1.5 USDC"));
    // The user's label, marked as theirs, with the address to check.
    assert_eq!(d.field_by_key("clear._to"), Some("Alice (your label, 0xd8dA…6045)"));
    // The descriptor's rows first, then the phone's envelope under the phone's keys.
    assert_eq!(
        keys(&d),
        ["clear.contract", "clear._value", "clear._to", "to", "value", "network", "max_fee", "max_total"]
    );
    assert_eq!(d.field_by_key("to"), Some("USD Coin (0xA0b8…eB48)"));
    assert_eq!(d.field_by_key("max_total"), Some("0.0018 ETH"));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    // The guardrails see exactly what they see without the bundle.
    assert_eq!(d.facts, plain(&payload).facts);
    assert_eq!(d.facts.tokens[0].amount.as_deref(), Some("1500000"));
}

#[test]
fn without_a_descriptor_the_decoders_use_the_bundle_tokens_and_names() {
    let set = tokens_only();
    let d = show(&tx(USDC, U256::ZERO, transfer(BOB, 1_500_000)), &set, &NoAddressBook);
    assert_eq!(d.title, "Token transfer");
    assert_eq!(d.field_by_key("amount"), Some("1.5 USDC"));
    assert_eq!(d.field_by_key("token_contract"), Some("USD Coin (0xA0b8…eB48)"));
    assert_eq!(d.field_by_key("recipient"), Some(BOB.to_checksum(None).as_str()));
    assert_eq!(d.descriptor, None);
    assert!(!d.blind && d.warnings.is_empty(), "{:?}", d.warnings);
    // Exact decimals, grouped.
    let d = show(&tx(DAI, U256::ZERO, transfer(BOB, 1_234_567_000_000_000_000_000_000)), &set, &NoAddressBook);
    assert_eq!(d.field_by_key("amount"), Some("1,234,567 DAI"));
    // A maximal approval of a known token to a named spender.
    let approve = ITokenCalls::approveCall { spender: ROUTER, amount: U256::MAX }.abi_encode();
    let d = show(&tx(USDC, U256::ZERO, approve.clone()), &set, &NoAddressBook);
    assert_eq!(d.title, "Token approval");
    assert_eq!(d.field_by_key("allowance"), Some("Unlimited USDC"));
    assert_eq!(d.field_by_key("spender"), Some("1inch Aggregation Router (0x1111…0582)"));
    assert!(d.has_warning("unlimited_approval"));
    assert!(!d.has_warning("ambiguous_token_call"));
    // The bundle's token list says USDC is an ERC-20 token: the number is an amount, not
    // possibly a token ID (unknown, the decoders could not tell).
    let fact = &d.facts.tokens[0];
    assert!(fact.unlimited && !fact.maybe_token_id && d.facts.unlimited_approval);
    assert!(plain(&tx(USDC, U256::ZERO, approve)).facts.tokens[0].maybe_token_id);
}

#[test]
fn unknown_tokens_stay_in_base_units_with_a_warning() {
    let d = show(&tx(UNKNOWN_TOKEN, U256::ZERO, transfer(BOB, 1_500_000)), &tokens_only(), &NoAddressBook);
    assert_eq!(d.field_by_key("amount"), Some("1500000 (base units; token decimals not known)"));
    assert!(d.has_warning("unknown_token"));
    assert_eq!(d.field_by_key("token_contract"), Some(UNKNOWN_TOKEN.to_checksum(None).as_str()));
}

#[test]
fn a_user_label_is_marked_and_wins_over_a_bundle_name() {
    struct RouterLabel;
    impl AddressBook for RouterLabel {
        fn label(&self, _: u64, a: &Address) -> Option<String> {
            (*a == ROUTER).then(|| "my router".to_string())
        }
    }
    let approve = ITokenCalls::approveCall { spender: ROUTER, amount: U256::from(5u8) }.abi_encode();
    let d = show(&tx(DAI, U256::ZERO, approve), &tokens_only(), &RouterLabel);
    assert_eq!(d.field_by_key("spender"), Some("my router (your label, 0x1111…0582)"));
    assert_eq!(d.field_by_key("allowance"), Some("0.000000000000000005 DAI"));
    // The same label on another chain does not apply (labels are bound per chain).
    assert_eq!(ctx_name(&RouterLabel, 10), None);
    assert_eq!(ctx_name(&RouterLabel, 1), Some(AddressName::User("my router".into())));
}

fn ctx_name(book: &dyn AddressBook, chain: u64) -> Option<AddressName> {
    struct OnChainOne<'a>(&'a dyn AddressBook);
    impl AddressBook for OnChainOne<'_> {
        fn label(&self, chain_id: u64, a: &Address) -> Option<String> {
            (chain_id == 1).then(|| self.0.label(chain_id, a)).flatten()
        }
    }
    let book = OnChainOne(book);
    let ctx = DecodeContext { book: &book, ..DecodeContext::default() };
    ctx.address_name(&ChainId::Evm(chain), &ROUTER)
}

#[test]
fn data_that_does_not_fit_its_descriptor_is_never_shown_as_clear() {
    // The router's descriptor requires `version` 2.
    let lock = |version: u64| {
        let args = [1_777_000_000u64, 8250, 1, version].map(|n| V::Uint(U256::from(n), 256));
        calldata("lock(uint256,uint256,uint8,uint256)", &args)
    };
    let d = show(&tx(ROUTER, U256::ZERO, lock(3)), &bundle(), &NoAddressBook);
    assert!(d.blind);
    assert_eq!(d.title, "Contract call");
    assert_eq!(d.descriptor, None);
    assert!(d.has_warning("descriptor_mismatch"));
    assert!(d.has_warning("blind_signing"));
    assert!(d.fields.iter().all(|f| !f.key.starts_with(CLEAR_KEY_PREFIX)));
    let w = d.warnings.iter().find(|w| w.code() == "descriptor_mismatch").unwrap();
    assert!(w.message().contains("constraint_violated"), "{}", w.message());
    // With the constrained value the descriptor applies.
    let d = show(&tx(ROUTER, U256::ZERO, lock(2)), &bundle(), &NoAddressBook);
    assert_eq!(d.title, "Lock");
    assert!(!d.blind && d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(d.field("Period"), Some("2 hours, 17 minutes, 30 seconds"));
    assert_eq!(d.field_by_key("clear.contract"), Some("Router Inc"));
}

#[test]
fn descriptor_text_passes_the_sanitiser() {
    const FILE: &str = r#"{
      "context": {"contract": {"deployments": [{"chainId": 1, "address": "0x6B175474E89094C44Da98b954EedeAC495271d0F"}]}},
      "metadata": {"owner": "Maker \u202eevil"},
      "display": {"formats": {"burn(uint256 wad)": {"intent": "Burn \u202etxet", "fields": [
        {"path": "wad", "label": "Amount \u202e", "format": "raw"}]}}}
    }"#;
    let files = BTreeMap::from([("registry/x/dai.json".to_string(), FILE.to_string())]);
    let set =
        DescriptorSet::new(DescriptorSet::parse_files(&files, &["registry/x/dai.json".to_string()]).unwrap(), [], []);
    let data = calldata("burn(uint256)", &[V::Uint(U256::from(7u8), 256)]);
    let d = show(&tx(DAI, U256::ZERO, data), &set, &NoAddressBook);
    assert_eq!(d.title, "Burn ⟨U+202E⟩txet");
    assert_eq!(d.field("Amount ⟨U+202E⟩"), Some("7"));
    assert_eq!(d.field_by_key("clear.contract"), Some("Maker ⟨U+202E⟩evil"));
    assert!(d.has_warning("text_escaped"));
}

#[test]
fn a_permit_is_shown_from_its_descriptor_with_the_facts_of_today() {
    let typed = serde_json::to_vec(&permit("USD Coin", 1, "2500000")).unwrap();
    let set = bundle();
    let ctx = DecodeContext { clear: Some(&set), book: &NoAddressBook, ..DecodeContext::default() };
    let d = decode_with(PayloadKind::Eip712TypedData, &typed, &signer(), &ctx).unwrap();
    assert_eq!(d.title, "Authorize spending of tokens");
    assert!(!d.blind);
    assert_eq!(d.field("Max spending amount"), Some("2.5 USDC"));
    assert_eq!(d.field("Valid until"), Some("2026-04-24 03:06:40 AM UTC"));
    assert_eq!(
        keys(&d),
        ["clear.contract", "clear.spender", "clear.value", "clear.deadline", "network", "domain.verifying_contract"]
    );
    assert_eq!(d.field_by_key("domain.verifying_contract"), Some("USD Coin (0xA0b8…eB48)"));
    let today = decode(PayloadKind::Eip712TypedData, &typed, &signer()).unwrap();
    assert_eq!(d.facts, today.facts);
    assert_eq!(today.title, "Token spending permit (ERC-2612)");
}

#[test]
fn a_user_label_in_a_descriptor_row_is_marked_and_sanitised() {
    struct Tricky;
    impl AddressBook for Tricky {
        fn label(&self, _: u64, a: &Address) -> Option<String> {
            (*a == ALICE).then(|| "Al\u{202e}ice".to_string())
        }
    }
    let d = show(&tx(USDC, U256::ZERO, transfer(ALICE, 1)), &bundle(), &Tricky);
    assert_eq!(d.field_by_key("clear._to"), Some("Al⟨U+202E⟩ice (your label, 0xd8dA…6045)"));
    assert!(d.has_warning("text_escaped"));
}

/// Calldata to the described contracts: a known selector (or none) and 32-byte words, some
/// small (so that addresses and amounts decode), some arbitrary, then maybe stray bytes.
fn any_call() -> impl Strategy<Value = Vec<u8>> {
    let selectors = prop::sample::select(vec![
        ITokenCalls::transferCall::SELECTOR,
        ITokenCalls::approveCall::SELECTOR,
        alloy_primitives::keccak256("lock(uint256,uint256,uint8,uint256)").0[..4].try_into().unwrap_or([0; 4]),
        [0xde, 0xad, 0xbe, 0xef],
    ]);
    let word = prop_oneof![
        4 => any::<u64>().prop_map(|n| U256::from(n).to_be_bytes::<32>().to_vec()),
        1 => Just(U256::MAX.to_be_bytes::<32>().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 32),
    ];
    (selectors, prop::collection::vec(word, 1..5), prop::collection::vec(any::<u8>(), 0..2)).prop_map(
        |(sel, words, tail)| {
            let mut data = sel.to_vec();
            data.extend(words.concat());
            data.extend(tail);
            data
        },
    )
}

proptest! {
    #[test]
    fn descriptors_change_the_screen_never_the_facts(data in any_call(), to_router: bool) {
        let to = if to_router { ROUTER } else { USDC };
        let payload = tx(to, U256::ZERO, data);
        let with = show(&payload, &bundle(), &Book);
        // The same token list and address book, without descriptors.
        let tokens = [((1, USDC), BundleToken { symbol: "USDC".into(), decimals: 6, name: "USD Coin".into() })];
        let names = [((1, USDC), "USD Coin".to_string())];
        let without = show(&payload, &DescriptorSet::new(Vec::new(), tokens, names), &Book);
        prop_assert_eq!(&with.facts, &without.facts);
        prop_assert_eq!(&with.payload_hash, &without.payload_hash);
        if with.descriptor.is_some() {
            prop_assert!(!with.blind);
            prop_assert!(!with.has_warning("blind_signing") && !with.has_warning("descriptor_mismatch"));
            let envelope = ["to", "value", "network", "max_fee", "max_total"];
            prop_assert!(with.fields.iter().all(|f| f.key.starts_with(CLEAR_KEY_PREFIX) || envelope.contains(&f.key.as_str())));
        } else {
            // Not clear: exactly the decoders' screen, at most with the mismatch warning.
            prop_assert_eq!(&with.title, &without.title);
            prop_assert_eq!(&with.fields, &without.fields);
            prop_assert_eq!(with.blind, without.blind);
            let rest: Vec<&Warning> = with.warnings.iter().filter(|w| w.code() != "descriptor_mismatch").collect();
            prop_assert_eq!(rest, without.warnings.iter().collect::<Vec<_>>());
        }
    }
}
