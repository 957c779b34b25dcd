//! The review screen with the committed, signed metadata bundle (`metadata/bundle.cbor`,
//! verified under the pinned development key): calls the registry describes are shown
//! from their descriptor, others by the phone's decoders with the bundle's tokens and
//! names, and the user's own labels are marked as theirs.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // test helpers outside #[test] fns

use std::path::Path;
use std::sync::OnceLock;

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{address, Address, TxKind, U256};
use sunstorm_core::caip::AccountId;
use sunstorm_core::decode::erc7730::{AddressBook, DescriptorSet, NoAddressBook};
use sunstorm_core::decode::{decode, decode_with, DecodeContext, DecodedPayload};
use sunstorm_core::metadata::{open_bundle, DEV_METADATA_PUBLIC_KEY};
use sunstorm_core::model::PayloadKind;

const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
const USDT: Address = address!("dAC17F958D2ee523a2206206994597C13D831ec7");
const UNISWAP_V3_ROUTER_02: Address = address!("68b3465833fb72A70ecDF485E0e4C7bD8665Fc45");
const ME: Address = address!("00000000219ab540356cBB839Cbe05303d7705Fa");
const FRIEND: Address = address!("d8dA6BF26964aF9D7eEd9e03E53415D37aA96045");

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The committed bundle, opened as the phone opens it (once for all tests).
fn bundle() -> &'static DescriptorSet {
    static SET: OnceLock<DescriptorSet> = OnceLock::new();
    SET.get_or_init(|| {
        let bytes = std::fs::read(repo().join("metadata/bundle.cbor")).unwrap();
        let loaded = open_bundle(&bytes, &DEV_METADATA_PUBLIC_KEY, None).unwrap();
        (*loaded.set).clone()
    })
}

struct Book;
impl AddressBook for Book {
    fn label(&self, chain_id: u64, address: &Address) -> Option<String> {
        (chain_id == 1 && *address == FRIEND).then(|| "Friend".to_string())
    }
}

fn tx(to: Address, value: U256, input: Vec<u8>) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: 1,
        nonce: 4,
        gas_limit: 200_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value,
        input: input.into(),
        access_list: Default::default(),
    };
    let mut p = Vec::new();
    tx.encode_for_signing(&mut p);
    p
}

fn show(payload: &[u8], book: &dyn AddressBook) -> DecodedPayload {
    let ctx = DecodeContext { clear: Some(bundle()), book, ..DecodeContext::default() };
    decode_with(PayloadKind::EvmTransaction, payload, &AccountId::evm(1, ME.into_array()), &ctx).unwrap()
}

/// `transfer(address,uint256)` / `approve(address,uint256)` calldata.
fn erc20_call(selector: [u8; 4], who: Address, amount: U256) -> Vec<u8> {
    let mut data = selector.to_vec();
    data.extend([0u8; 12]);
    data.extend(who.as_slice());
    data.extend(amount.to_be_bytes::<32>());
    data
}
const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];

fn me() -> AccountId {
    AccountId::evm(1, ME.into_array())
}

#[test]
fn a_usdc_transfer_reads_one_point_five_usdc_with_named_addresses() {
    // The registry has no descriptor for USDC's calls: the phone's ERC-20 decoder shows
    // it, with the bundle's token list and names, and the user's label for the recipient.
    let payload = tx(USDC, U256::ZERO, erc20_call(TRANSFER, FRIEND, U256::from(1_500_000u64)));
    let d = show(&payload, &Book);
    assert_eq!(d.title, "Token transfer");
    assert_eq!(d.field("Amount"), Some("1.5 USDC"));
    assert_eq!(d.field("Token contract"), Some("USD Coin (0xA0b8…eB48)"));
    assert_eq!(d.field("Recipient"), Some("Friend (your label, 0xd8dA…6045)"));
    assert!(!d.blind && d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(d.descriptor, None);
    // Without the bundle: base units, the full address, and a warning.
    let before = decode(PayloadKind::EvmTransaction, &payload, &me()).unwrap();
    assert_eq!(before.field("Amount"), Some("1500000 (base units; token decimals not known)"));
    assert!(before.has_warning("unknown_token"));
    assert_eq!(d.facts, before.facts);
}

#[test]
fn a_max_usdc_approval_reads_unlimited_usdc() {
    let payload = tx(USDC, U256::ZERO, erc20_call(APPROVE, UNISWAP_V3_ROUTER_02, U256::MAX));
    let d = show(&payload, &NoAddressBook);
    assert_eq!(d.field("Allowance"), Some("Unlimited USDC"));
    assert_eq!(d.field("Spender"), Some("Uniswap v3 Router 2 (0x68b3…Fc45)"));
    assert!(d.has_warning("unlimited_approval"));
    assert!(d.facts.unlimited_approval);
}

#[test]
fn a_usdt_transfer_and_approval_are_shown_from_tethers_descriptor() {
    let payload = tx(USDT, U256::ZERO, erc20_call(TRANSFER, FRIEND, U256::from(1_500_000u64)));
    let d = show(&payload, &Book);
    assert_eq!(d.title, "Send");
    assert_eq!(d.descriptor.as_deref(), Some("registry/tether/calldata-usdt.json"));
    assert_eq!(d.field("Interaction with"), Some("Tether Limited"));
    assert_eq!(d.field("Amount"), Some("1.5 USDT"));
    assert_eq!(d.field("To"), Some("Friend (your label, 0xd8dA…6045)"));
    // The descriptor's rows are keyed apart from the phone's; the called contract is not
    // labelled "To" like the descriptor's recipient.
    assert!(d.fields.iter().filter(|f| f.label == "Amount" || f.label == "To").all(|f| f.key.starts_with("clear.")));
    assert_eq!(d.field("Contract called"), Some("Tether USD (0xdAC1…1ec7)"));
    assert!(!d.blind);
    let payload = tx(USDT, U256::ZERO, erc20_call(APPROVE, UNISWAP_V3_ROUTER_02, U256::MAX));
    let d = show(&payload, &NoAddressBook);
    assert_eq!(d.title, "Approve");
    assert_eq!(d.field("Amount"), Some("Unlimited USDT"));
    assert!(d.has_warning("unlimited_amount"), "{:?}", d.warnings);
    assert!(d.has_warning("unlimited_approval"));
}

#[test]
fn a_uniswap_swap_from_the_registry_tests_shows_its_named_fields() {
    let cases = std::fs::read_to_string(
        repo().join("metadata/erc7730-registry/registry/uniswap/tests/calldata-UniswapV3Router02.tests.json"),
    )
    .unwrap();
    let cases: serde_json::Value = serde_json::from_str(&cases).unwrap();
    let case = &cases["tests"][1];
    assert_eq!(case["description"], "swap - chain 1");
    // An unsigned EIP-1559 transaction to the router, as a wallet asks the phone to sign it.
    let payload = hex::decode(case["rawTx"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    struct Beneficiary;
    impl AddressBook for Beneficiary {
        fn label(&self, chain_id: u64, a: &Address) -> Option<String> {
            (chain_id == 1 && *a == address!("EceD4025456B6c2987faC2e4c829889e681986a7")).then(|| "Savings".into())
        }
    }
    let d = show(&payload, &Beneficiary);
    assert_eq!(d.title, "swap");
    assert_eq!(d.descriptor.as_deref(), Some("registry/uniswap/calldata-UniswapV3Router02.json"));
    assert!(!d.blind && d.warnings.is_empty(), "{:?}", d.warnings);
    let rows: Vec<(&str, &str, &str)> =
        d.fields.iter().map(|f| (f.key.as_str(), f.label.as_str(), f.value.as_str())).collect();
    assert_eq!(
        rows,
        [
            ("clear.contract", "Interaction with", "Uniswap Labs"),
            ("clear.params.amountIn", "Send", "0.006471375668623977 WETH"),
            ("clear.params.amountOutMinimum", "Minimum to Receive", "13.901216 USDT"),
            ("clear.params.fee", "Uniswap fee", "0.3%"),
            ("clear.params.recipient", "Beneficiary", "Savings (your label, 0xEceD…86a7)"),
            ("to", "Contract called", "Uniswap v3 Router 2 (0x68b3…Fc45)"),
            ("value", "Value", "0 ETH"),
            ("network", "Network", "Ethereum (eip155:1)"),
            ("max_fee", "Max network fee", "0.00032 ETH"),
            ("max_total", "Max total", "0.00032 ETH"),
        ]
    );
    // Today's decoder cannot read the call: blind, and the same facts.
    let before = decode(PayloadKind::EvmTransaction, &payload, &me()).unwrap();
    assert!(before.blind);
    assert_eq!(d.facts, before.facts);
}

#[test]
fn calldata_that_does_not_fit_the_descriptor_is_not_shown_in_clear() {
    // Tether's `transfer` with its amount cut off.
    let mut data = erc20_call(TRANSFER, FRIEND, U256::from(1u8));
    data.truncate(4 + 32 + 10);
    let d = show(&tx(USDT, U256::ZERO, data), &Book);
    assert!(d.has_warning("descriptor_mismatch"), "{:?}", d.warnings);
    assert!(d.blind);
    assert_eq!(d.descriptor, None);
    assert!(d.fields.iter().all(|f| !f.key.starts_with("clear.")));
}
