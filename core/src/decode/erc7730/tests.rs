//! Engine tests on small hand-written descriptors (the fixtures serve the decoder's
//! clear-signing tests too).

use std::collections::BTreeMap;

use alloy_dyn_abi::TypedData;
use alloy_primitives::{address, Address, U256};
use proptest::prelude::*;

use super::abi::parse_signature;
use super::*;

pub(crate) const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
pub(crate) const ROUTER: Address = address!("1111111254EEB25477B68fb85Ed929f73A960582");
pub(crate) const ALICE: Address = address!("d8dA6BF26964aF9D7eEd9e03E53415D37aA96045");

const ERC20: &str = r#"{
  "context": {"contract": {}},
  "display": {"formats": {
    "transfer(address _to, uint256 _value)": {
      "intent": "Send",
      "fields": [
        {"path": "_value", "label": "Amount", "format": "tokenAmount", "params": {"tokenPath": "@.to"}},
        {"path": "_to", "label": "To", "format": "addressName", "params": {"sources": ["local"]}}
      ]
    },
    "approve(address _spender, uint256 _value)": {
      "intent": "Approve",
      "interpolatedIntent": "Approve {_spender} for {_value}",
      "fields": [
        {"path": "_spender", "label": "Spender", "format": "addressName"},
        {"path": "_value", "label": "Amount", "format": "tokenAmount",
         "params": {"tokenPath": "@.to", "threshold": "0x8000000000000000000000000000000000000000000000000000000000000000"}}
      ]
    }
  }}
}"#;

const USDC_FILE: &str = r#"{
  "includes": "../../ercs/erc20.json",
  "context": {"contract": {"deployments": [{"chainId": 1, "address": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"}]}},
  "metadata": {"owner": "Circle", "contractName": "USD Coin"}
}"#;

/// A router whose `call(address target, bytes data)` embeds a call, and which can call
/// itself (to test the nesting cap), plus a `mustBe` constraint and dates.
const ROUTER_FILE: &str = r#"{
  "context": {"contract": {"deployments": [{"chainId": 1, "address": "0x1111111254EEB25477B68fb85Ed929f73A960582"}]}},
  "metadata": {"owner": "Router Inc", "enums": {"mode": {"1": "stable", "2": "variable"}}},
  "display": {"formats": {
    "call(address target, bytes data)": {
      "intent": "Execute",
      "fields": [{"path": "data", "label": "Action", "format": "calldata", "params": {"calleePath": "target"}}]
    },
    "lock(uint256 until, uint256 period, uint8 mode, uint256 version)": {
      "intent": "Lock",
      "fields": [
        {"path": "until", "label": "Until", "format": "date", "params": {"encoding": "timestamp"}},
        {"path": "period", "label": "Period", "format": "duration"},
        {"path": "mode", "label": "Mode", "format": "enum", "params": {"$ref": "$.metadata.enums.mode"}},
        {"path": "version", "visible": {"mustBe": [2]}}
      ]
    }
  }}
}"#;

const PERMIT_FILE: &str = r#"{
  "context": {"eip712": {
    "deployments": [{"chainId": 1, "address": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"}],
    "domain": {"name": "USD Coin", "version": "2"}
  }},
  "metadata": {"owner": "Circle"},
  "display": {"formats": {
    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)": {
      "intent": "Authorize spending of tokens",
      "fields": [
        {"path": "spender", "label": "Spender", "format": "raw"},
        {"path": "value", "label": "Max spending amount", "format": "tokenAmount", "params": {"tokenPath": "@.to"}},
        {"path": "deadline", "label": "Valid until", "format": "date", "params": {"encoding": "timestamp"}},
        {"path": "nonce", "visible": "never"},
        {"path": "owner", "visible": "never"}
      ]
    }
  }}
}"#;

pub(crate) fn set() -> DescriptorSet {
    let mut files = BTreeMap::new();
    files.insert("ercs/erc20.json".to_string(), ERC20.to_string());
    files.insert("registry/circle/usdc.json".to_string(), USDC_FILE.to_string());
    files.insert("registry/r/router.json".to_string(), ROUTER_FILE.to_string());
    files.insert("registry/circle/permit.json".to_string(), PERMIT_FILE.to_string());
    let entry =
        ["registry/circle/usdc.json", "registry/r/router.json", "registry/circle/permit.json"].map(String::from);
    let descriptors = DescriptorSet::parse_files(&files, &entry).unwrap();
    let (_, names) = declared_tokens_and_names(&descriptors);
    let tokens = [((1, USDC), TokenInfo { symbol: "USDC".into(), decimals: 6, name: "USD Coin".into() })];
    DescriptorSet::new(descriptors, tokens, names)
}

pub(crate) fn calldata(sig: &str, args: &[alloy_dyn_abi::DynSolValue]) -> Vec<u8> {
    let f = parse_signature(sig).unwrap();
    let mut out = f.selector().to_vec();
    out.extend(alloy_dyn_abi::DynSolValue::Tuple(args.to_vec()).abi_encode_params());
    out
}

fn call(to: Address, data: &[u8]) -> CallInput<'_> {
    CallInput { chain_id: 1, to, data, value: U256::ZERO, from: Some(ALICE) }
}

pub(crate) struct Book;
impl AddressBook for Book {
    fn label(&self, chain_id: u64, address: &Address) -> Option<String> {
        (chain_id == 1 && *address == ALICE).then(|| "Alice".to_string())
    }
}

use alloy_dyn_abi::DynSolValue as V;

#[test]
fn a_usdc_transfer_reads_as_an_amount_with_symbol_and_a_named_recipient() {
    let data = calldata("transfer(address,uint256)", &[V::Address(ALICE), V::Uint(U256::from(1_500_000u64), 256)]);
    let s = set().render_call(&call(USDC, &data), &Book).unwrap().unwrap();
    assert_eq!(s.intent, "Send");
    assert_eq!(s.value("contract"), Some("Circle"));
    assert_eq!(s.value("_value"), Some("1.5 USDC"));
    assert_eq!(s.value("_to"), Some("Alice"));
    assert!(s.warnings.is_empty());
    let big =
        calldata("transfer(address,uint256)", &[V::Address(ROUTER), V::Uint(U256::from(1_000_000_000_000u64), 256)]);
    let s = set().render_call(&call(USDC, &big), &NoAddressBook).unwrap().unwrap();
    assert_eq!(s.value("_value"), Some("1,000,000 USDC"));
    assert_eq!(s.value("_to"), Some(ROUTER.to_checksum(None).as_str()));
}

#[test]
fn an_approval_above_the_threshold_is_unlimited_and_warned() {
    let data = calldata("approve(address,uint256)", &[V::Address(ROUTER), V::Uint(U256::MAX, 256)]);
    let s = set().render_call(&call(USDC, &data), &NoAddressBook).unwrap().unwrap();
    assert_eq!(s.value("_value"), Some("Unlimited USDC"));
    assert!(s.has_warning("unlimited_amount"));
    assert_eq!(s.intent, format!("Approve {} for Unlimited USDC", ROUTER.to_checksum(None)));
}

#[test]
fn no_descriptor_for_another_contract_or_function() {
    let data = calldata("transfer(address,uint256)", &[V::Address(ALICE), V::Uint(U256::from(1), 256)]);
    assert_eq!(set().render_call(&call(ALICE, &data), &NoAddressBook).unwrap(), None);
    let other = calldata("mint(uint256)", &[V::Uint(U256::from(1), 256)]);
    assert_eq!(set().render_call(&call(USDC, &other), &NoAddressBook).unwrap(), None);
    assert_eq!(set().render_call(&call(USDC, &[0xa9]), &NoAddressBook).unwrap(), None);
}

#[test]
fn calldata_that_does_not_fit_the_descriptor_is_an_error_not_a_screen() {
    let mut data = calldata("transfer(address,uint256)", &[V::Address(ALICE), V::Uint(U256::from(1), 256)]);
    data.truncate(30);
    let e = set().render_call(&call(USDC, &data), &NoAddressBook).unwrap_err();
    assert_eq!(e.code(), "calldata_mismatch");
}

#[test]
fn extra_bytes_after_the_arguments_are_warned_about() {
    let mut data = calldata("transfer(address,uint256)", &[V::Address(ALICE), V::Uint(U256::from(1), 256)]);
    data.extend_from_slice(b"hidden");
    let s = set().render_call(&call(USDC, &data), &NoAddressBook).unwrap().unwrap();
    assert!(s.has_warning("trailing_calldata"));
}

#[test]
fn embedded_calls_render_with_prefixed_keys_and_their_nesting_is_capped() {
    let inner = calldata("transfer(address,uint256)", &[V::Address(ALICE), V::Uint(U256::from(2_000_000u64), 256)]);
    let outer = calldata("call(address,bytes)", &[V::Address(USDC), V::Bytes(inner)]);
    let s = set().render_call(&call(ROUTER, &outer), &NoAddressBook).unwrap().unwrap();
    assert_eq!(s.value("data"), Some("Send"));
    assert_eq!(s.value("data._value"), Some("2 USDC"));

    // The router calling itself, deeper than the cap: summarised, warned, no overflow.
    let mut data = calldata(
        "lock(uint256,uint256,uint8,uint256)",
        &[V::Uint(U256::ZERO, 256), V::Uint(U256::ZERO, 256), V::Uint(U256::from(1), 8), V::Uint(U256::from(2), 256)],
    );
    for _ in 0..(MAX_NESTED_CALLS + 3) {
        data = calldata("call(address,bytes)", &[V::Address(ROUTER), V::Bytes(data)]);
    }
    let s = set().render_call(&call(ROUTER, &data), &NoAddressBook).unwrap().unwrap();
    assert!(s.has_warning("nested_call_not_clear"));
    let depth = s.rows.iter().map(|r| r.key.matches("data").count()).max().unwrap();
    assert!(depth <= MAX_NESTED_CALLS + 1, "{depth}");
}

#[test]
fn dates_durations_enums_and_constraints() {
    let args = |version: u64| {
        calldata(
            "lock(uint256,uint256,uint8,uint256)",
            &[
                V::Uint(U256::from(1_777_000_000u64), 256),
                V::Uint(U256::from(90_061u64), 256),
                V::Uint(U256::from(2), 8),
                V::Uint(U256::from(version), 256),
            ],
        )
    };
    let s = set().render_call(&call(ROUTER, &args(2)), &NoAddressBook).unwrap().unwrap();
    assert_eq!(s.value("until"), Some("2026-04-24 03:06:40 AM UTC"));
    assert_eq!(s.value("period"), Some("1 day, 1 hour, 1 minute, 1 second"));
    assert_eq!(s.value("mode"), Some("variable"));
    assert_eq!(s.value("version"), None);
    let e = set().render_call(&call(ROUTER, &args(3)), &NoAddressBook).unwrap_err();
    assert_eq!(e.code(), "constraint_violated");
}

pub(crate) fn permit(name: &str, chain: u64, value: &str) -> TypedData {
    serde_json::from_value(serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "Permit": [
                {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"}
            ]
        },
        "primaryType": "Permit",
        "domain": {"name": name, "version": "2", "chainId": chain, "verifyingContract": USDC},
        "message": {"owner": ALICE, "spender": ROUTER, "value": value, "nonce": "0", "deadline": "1777000000"}
    }))
    .unwrap()
}

#[test]
fn an_eip712_permit_binds_to_its_domain() {
    let s = set().render_typed_data(&permit("USD Coin", 1, "250000000"), Some(ALICE), &NoAddressBook);
    let s = s.unwrap().unwrap();
    assert_eq!(s.intent, "Authorize spending of tokens");
    assert_eq!(s.value("value"), Some("250 USDC"));
    assert_eq!(s.value("deadline"), Some("2026-04-24 03:06:40 AM UTC"));
    assert_eq!(s.value("nonce"), None);
    // Another domain name, or another chain: the descriptor does not apply.
    assert_eq!(set().render_typed_data(&permit("Fake", 1, "1"), None, &NoAddressBook).unwrap(), None);
    assert_eq!(set().render_typed_data(&permit("USD Coin", 5, "1"), None, &NoAddressBook).unwrap(), None);
}

#[test]
fn unknown_tokens_keep_base_units_with_a_warning() {
    let data = calldata("transfer(address,uint256)", &[V::Address(ALICE), V::Uint(U256::from(7), 256)]);
    let descriptors = set().descriptors.clone();
    let bare = DescriptorSet::new(descriptors, [], []);
    let s = bare.render_call(&call(USDC, &data), &NoAddressBook).unwrap().unwrap();
    assert_eq!(s.value("_value"), Some("7 base units"));
    assert!(s.has_warning("unknown_token"));
}

#[test]
fn a_transaction_adds_value_network_and_fee_rows() {
    use alloy_consensus::TxEip1559;
    let data = calldata("transfer(address,uint256)", &[V::Address(ALICE), V::Uint(U256::from(1_500_000u64), 256)]);
    let tx = crate::payload::EvmTx::Eip1559(TxEip1559 {
        chain_id: 1,
        nonce: 0,
        gas_limit: 100_000,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1,
        to: alloy_primitives::TxKind::Call(USDC),
        value: U256::from(10u64.pow(16)),
        access_list: Default::default(),
        input: data.into(),
    });
    let s = set().render_transaction(&tx, Some(ALICE), &NoAddressBook).unwrap().unwrap();
    assert_eq!(s.value("native_value"), Some("0.01 ETH"));
    assert_eq!(s.value("network"), Some("Ethereum"));
    assert_eq!(s.value("max_fee"), Some("0.002 ETH"));
}

/// A permit whose domain names no chain (as some meta-transaction domains do).
fn permit_without_chain() -> TypedData {
    serde_json::from_value(serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Permit": [
                {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"}
            ]
        },
        "primaryType": "Permit",
        "domain": {"name": "USD Coin", "version": "2", "verifyingContract": USDC},
        "message": {"owner": ALICE, "spender": ROUTER, "value": "2500000", "nonce": "0", "deadline": "0"}
    }))
    .unwrap()
}

#[test]
fn typed_data_shows_its_network_and_uses_the_request_chain_when_the_domain_has_none() {
    let s = set().render_typed_data(&permit("USD Coin", 1, "1"), None, &NoAddressBook);
    assert_eq!(s.unwrap().unwrap().value("network"), Some("Ethereum"));
    // Before: a domain without chainId rendered on chain 0 and matched no deployment.
    let td = permit_without_chain();
    assert_eq!(set().render_typed_data(&td, None, &NoAddressBook).unwrap(), None);
    let s = set().render_typed_data_on(&td, 1, None, &NoAddressBook).unwrap().unwrap();
    assert_eq!(s.value("value"), Some("2.5 USDC"));
    assert_eq!(s.value("network"), Some("Ethereum"));
    // The request's chain binds like the domain's: no deployment on chain 5.
    assert_eq!(set().render_typed_data_on(&td, 5, None, &NoAddressBook).unwrap(), None);
    // A domain naming its chain keeps it.
    let s = set().render_typed_data_on(&permit("USD Coin", 1, "1"), 5, None, &NoAddressBook);
    assert_eq!(s.unwrap().unwrap().value("network"), Some("Ethereum"));
}

const STAKING_FILE: &str = r#"{
  "context": {"contract": {"deployments": [{"chainId": 1, "address": "0x1111111254EEB25477B68fb85Ed929f73A960582"}]}},
  "metadata": {"owner": "Staker"},
  "display": {"formats": {
    "claim(uint256 a,(address to,uint256 amount)[] outs)": {
      "intent": {"Native Staking": "Withdraw", "Rewards": "Consensus", "Also": "Exec"},
      "fields": [
        {"path": "a", "label": "A"},
        {"path": "outs.[]", "label": "Payout", "fields": [
          {"path": "to", "label": "To"},
          {"path": "amount", "label": "Amount"}
        ]}
      ]
    }
  }}
}"#;

#[test]
fn complex_intents_keep_file_order_and_group_labels_head_their_fields() {
    let mut files = BTreeMap::new();
    files.insert("registry/s/staking.json".to_string(), STAKING_FILE.to_string());
    let d = DescriptorSet::parse_files(&files, &["registry/s/staking.json".to_string()]).unwrap();
    let set = DescriptorSet::new(d, [], []);
    let out = |to: Address, n: u64| V::Tuple(vec![V::Address(to), V::Uint(U256::from(n), 256)]);
    let data = calldata(
        "claim(uint256,(address,uint256)[])",
        &[V::Uint(U256::from(7), 256), V::Array(vec![out(ALICE, 1), out(ROUTER, 2)])],
    );
    let s = set.render_call(&call(ROUTER, &data), &NoAddressBook).unwrap().unwrap();
    // serde_json sorts object keys; the descriptor's order is the one shown.
    assert_eq!(s.intent, "Native Staking: Withdraw, Rewards: Consensus, Also: Exec");
    let rows: Vec<(&str, &str, &str)> =
        s.rows.iter().map(|r| (r.key.as_str(), r.label.as_str(), r.value.as_str())).collect();
    let alice = ALICE.to_checksum(None);
    let router = ROUTER.to_checksum(None);
    assert_eq!(
        rows,
        [
            ("contract", "Interaction with", "Staker"),
            ("a", "A", "7"),
            ("outs.0", "Payout", ""),
            ("outs.0.to", "To", alice.as_str()),
            ("outs.0.amount", "Amount", "1"),
            ("outs.1", "Payout", ""),
            ("outs.1.to", "To", router.as_str()),
            ("outs.1.amount", "Amount", "2"),
        ]
    );
}

#[test]
fn an_including_file_replaces_an_included_complex_intent_whole() {
    let mut files = BTreeMap::new();
    files.insert(
        "c.json".to_string(),
        r#"{"context":{"contract":{"deployments":[{"chainId":1,"address":"0x0000000000000000000000000000000000000002"}]}},"display":{"formats":{"f(uint256 a)":{"intent":{"Z":"1","A":"2"}}}}}"#
            .to_string(),
    );
    files.insert(
        "t.json".to_string(),
        r#"{"includes":"c.json","context":{"contract":{"deployments":[{"chainId":1,"address":"0x0000000000000000000000000000000000000001"}]}},"display":{"formats":{"f(uint256 a)":{"intent":{"Y":"3"}}}}}"#
            .to_string(),
    );
    let d = DescriptorSet::parse_files(&files, &["t.json".to_string()]).unwrap();
    let f = d.first().unwrap().formats.first().unwrap();
    assert_eq!(f.intent, Some(model::Intent::Complex(vec![("Y".into(), "3".into())])));
    let d = DescriptorSet::parse_files(&files, &["c.json".to_string()]).unwrap();
    let f = d.first().unwrap().formats.first().unwrap();
    let z_then_a = vec![("Z".to_string(), "1".to_string()), ("A".to_string(), "2".to_string())];
    assert_eq!(f.intent, Some(model::Intent::Complex(z_then_a)));
}

#[test]
fn eip712_descriptors_name_their_verifying_contracts_after_contract_descriptors() {
    let mut files = BTreeMap::new();
    files.insert(
        "m.json".to_string(),
        r#"{"context":{"$id":"Permit2","eip712":{"deployments":[{"chainId":1,"address":"0x000000000022D473030F116dDEE9F6B43aC78BA3"},{"chainId":1,"address":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"}]}},"display":{"formats":{}}}"#
            .to_string(),
    );
    let mut entries = set().descriptors.clone();
    entries.extend(DescriptorSet::parse_files(&files, &["m.json".to_string()]).unwrap());
    let (_, names) = declared_tokens_and_names(&entries);
    let permit2 = address!("000000000022D473030F116dDEE9F6B43aC78BA3");
    assert_eq!(names.get(&(1, permit2)).map(String::as_str), Some("Permit2"));
    // USDC keeps the name its contract descriptor gives.
    assert_eq!(names.get(&(1, USDC)).map(String::as_str), Some("USD Coin"));
}

#[test]
fn address_names_come_only_from_the_sources_and_types_the_descriptor_allows() {
    // `types: ["eoa", "wallet"]`: a contract's name would contradict the expected type;
    // `sources: ["ens"]`: no local name (address book or bundle) may be used.
    let mut files = BTreeMap::new();
    files.insert(
        "registry/p/pay.json".to_string(),
        r#"{"context":{"contract":{"deployments":[{"chainId":1,"address":"0x1111111254EEB25477B68fb85Ed929f73A960582"}]}},
           "display":{"formats":{"pay(address who,address what,address ens,address any)":{"intent":"Pay","fields":[
             {"path":"who","label":"Who","format":"addressName","params":{"types":["eoa","wallet"]}},
             {"path":"what","label":"What","format":"addressName","params":{"types":["token"],"sources":["local","ens"]}},
             {"path":"ens","label":"Ens","format":"addressName","params":{"sources":["ens"]}},
             {"path":"any","label":"Any","format":"addressName"}]}}}}"#
            .to_string(),
    );
    let d = DescriptorSet::parse_files(&files, &["registry/p/pay.json".to_string()]).unwrap();
    let names = [((1, USDC), "USD Coin".to_string())];
    let pay = DescriptorSet::new(d, [], names);
    let data = calldata(
        "pay(address,address,address,address)",
        &[V::Address(USDC), V::Address(USDC), V::Address(ALICE), V::Address(USDC)],
    );
    let s = pay.render_call(&call(ROUTER, &data), &Book).unwrap().unwrap();
    assert_eq!(s.value("who"), Some(USDC.to_checksum(None).as_str()));
    assert_eq!(s.value("what"), Some("USD Coin"));
    assert_eq!(s.value("ens"), Some(ALICE.to_checksum(None).as_str()));
    assert_eq!(s.value("any"), Some("USD Coin"));
    let data = calldata(
        "pay(address,address,address,address)",
        &[V::Address(ALICE), V::Address(ALICE), V::Address(ALICE), V::Address(ALICE)],
    );
    let s = pay.render_call(&call(ROUTER, &data), &Book).unwrap().unwrap();
    assert_eq!(s.value("who"), Some("Alice"), "the user's own label names any type");
    assert_eq!(s.value("any"), Some("Alice"));
}

#[test]
fn must_match_is_the_specifications_name_for_must_be() {
    let file = ROUTER_FILE.replace(r#""mustBe""#, r#""mustMatch""#);
    let mut files = BTreeMap::new();
    files.insert("registry/r/router.json".to_string(), file);
    let d = DescriptorSet::parse_files(&files, &["registry/r/router.json".to_string()]).unwrap();
    let set = DescriptorSet::new(d, [], []);
    let data = calldata(
        "lock(uint256,uint256,uint8,uint256)",
        &[V::Uint(U256::ZERO, 256), V::Uint(U256::ZERO, 256), V::Uint(U256::ONE, 8), V::Uint(U256::from(3), 256)],
    );
    let e = set.render_call(&call(ROUTER, &data), &NoAddressBook).unwrap_err();
    assert_eq!(e.code(), "constraint_violated");
}

proptest! {
    #[test]
    fn any_calldata_after_a_known_selector_renders_or_fails_cleanly(
        tail in proptest::collection::vec(any::<u8>(), 0..400),
        which in 0usize..4,
    ) {
        let sigs = ["transfer(address,uint256)", "approve(address,uint256)", "call(address,bytes)",
            "lock(uint256,uint256,uint8,uint256)"];
        let mut data = parse_signature(sigs[which]).unwrap().selector().to_vec();
        data.extend(tail);
        let to = if which < 2 { USDC } else { ROUTER };
        let _ = set().render_call(&call(to, &data), &NoAddressBook);
    }

    #[test]
    fn any_path_text_parses_or_fails_cleanly(s in ".{0,64}") {
        let _ = value::Path::parse(&s);
        let _ = parse_signature(&s);
    }
}
