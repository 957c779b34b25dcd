//! Issue 13, attacks 3, 4 and 5 (and the fee of attack 2 on the review screen): each test
//! shows the attack a malicious service provider could make with the old decoder.

use serde_json::{json, Value};

use super::*;
use crate::caip::SOLANA_MAINNET;
use crate::payload::solana::encode_compact_u16;

const ME: &str = "0x001e2b7dE757bA469a57bF6b23d982458a07eFcE";
const THIEF: &str = "0x5eee75727d804a2b13038928d36F8B188945A57A";
const TOKEN: &str = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
const PERMIT2: &str = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
/// 2^256 − 1.
const MAX_U256: &str = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
/// 2^160 − 1 (Permit2's "unlimited").
const MAX_U160: &str = "1461501637330902918203684832716283019655932542975";

fn me() -> AccountId {
    format!("eip155:1:{ME}").parse().unwrap()
}

fn fields(spec: &[(&str, &str)]) -> Value {
    Value::Array(spec.iter().map(|(n, t)| json!({"name": n, "type": t})).collect())
}

/// Typed data on chain 1 with the given types (besides `EIP712Domain`) and domain contract.
fn typed(types: &[(&str, &[(&str, &str)])], primary: &str, contract: &str, message: Value) -> Vec<u8> {
    let mut t = serde_json::Map::new();
    t.insert(
        "EIP712Domain".into(),
        fields(&[("name", "string"), ("chainId", "uint256"), ("verifyingContract", "address")]),
    );
    for (name, spec) in types {
        t.insert((*name).into(), fields(spec));
    }
    serde_json::to_vec(&json!({
        "types": t, "primaryType": primary,
        "domain": {"name": "Token", "chainId": 1, "verifyingContract": contract},
        "message": message,
    }))
    .unwrap()
}

fn decode712(payload: &[u8]) -> DecodedPayload {
    decode(PayloadKind::Eip712TypedData, payload, &me()).unwrap()
}

fn lower(a: &str) -> String {
    a.to_lowercase()
}

fn has_recipient(d: &DecodedPayload, who: &str) -> bool {
    d.facts.recipients.iter().any(|r| lower(r) == lower(who))
}

// ---- attack 3: unlimited token authority through EIP-712 ----

const DAI_PERMIT: &[(&str, &str)] =
    &[("holder", "address"), ("spender", "address"), ("nonce", "uint256"), ("expiry", "uint256"), ("allowed", "bool")];

#[test]
fn dai_style_permit_allowed_is_an_unlimited_approval() {
    let p = typed(
        &[("Permit", DAI_PERMIT)],
        "Permit",
        TOKEN,
        json!({"holder": ME, "spender": THIEF, "nonce": 0, "expiry": 0, "allowed": true}),
    );
    let d = decode712(&p);
    assert!(d.facts.unlimited_approval, "block_unlimited_approvals must see it");
    assert!(d.has_warning("unlimited_approval"));
    assert!(has_recipient(&d, THIEF), "the recipient allowlist must see the spender");
    assert!(!d.blind);
    // allowed = false revokes: nothing is granted.
    let p = typed(
        &[("Permit", DAI_PERMIT)],
        "Permit",
        TOKEN,
        json!({"holder": ME, "spender": THIEF, "nonce": 0, "expiry": 0, "allowed": false}),
    );
    let d = decode712(&p);
    assert!(!d.facts.unlimited_approval && !d.blind);
}

const EIP3009: &[(&str, &str)] = &[
    ("from", "address"),
    ("to", "address"),
    ("value", "uint256"),
    ("validAfter", "uint256"),
    ("validBefore", "uint256"),
    ("nonce", "bytes32"),
];

#[test]
fn eip3009_authorizations_name_their_recipient() {
    for primary in ["TransferWithAuthorization", "ReceiveWithAuthorization"] {
        let p = typed(
            &[(primary, EIP3009)],
            primary,
            TOKEN,
            json!({"from": ME, "to": THIEF, "value": "5000000", "validAfter": 0,
                   "validBefore": 1_900_000_000u64, "nonce": format!("0x{}", "ab".repeat(32))}),
        );
        let d = decode712(&p);
        assert!(has_recipient(&d, THIEF), "{primary}: the recipient allowlist must see `to`");
        assert!(!d.blind, "{primary}");
    }
}

const TOKEN_PERMISSIONS: &[(&str, &str)] = &[("token", "address"), ("amount", "uint256")];

#[test]
fn permit2_signature_transfers_name_their_spender() {
    let single = typed(
        &[
            ("TokenPermissions", TOKEN_PERMISSIONS),
            (
                "PermitTransferFrom",
                &[
                    ("permitted", "TokenPermissions"),
                    ("spender", "address"),
                    ("nonce", "uint256"),
                    ("deadline", "uint256"),
                ],
            ),
        ],
        "PermitTransferFrom",
        PERMIT2,
        json!({"permitted": {"token": TOKEN, "amount": MAX_U256}, "spender": THIEF, "nonce": 1, "deadline": 1_900_000_000u64}),
    );
    let batch = typed(
        &[
            ("TokenPermissions", TOKEN_PERMISSIONS),
            (
                "PermitBatchTransferFrom",
                &[
                    ("permitted", "TokenPermissions[]"),
                    ("spender", "address"),
                    ("nonce", "uint256"),
                    ("deadline", "uint256"),
                ],
            ),
        ],
        "PermitBatchTransferFrom",
        PERMIT2,
        json!({"permitted": [{"token": TOKEN, "amount": "1"}, {"token": THIEF, "amount": MAX_U256}],
               "spender": THIEF, "nonce": 1, "deadline": 1_900_000_000u64}),
    );
    for p in [single, batch] {
        let d = decode712(&p);
        assert!(has_recipient(&d, THIEF));
        assert!(d.facts.unlimited_approval);
        assert!(!d.blind);
    }
}

#[test]
fn permit2_allowances_at_uint160_max_are_unlimited() {
    const DETAILS: &[(&str, &str)] =
        &[("token", "address"), ("amount", "uint160"), ("expiration", "uint48"), ("nonce", "uint48")];
    let detail = |amount: &str| json!({"token": TOKEN, "amount": amount, "expiration": 1_900_000_000u64, "nonce": 0});
    let single = typed(
        &[
            ("PermitDetails", DETAILS),
            ("PermitSingle", &[("details", "PermitDetails"), ("spender", "address"), ("sigDeadline", "uint256")]),
        ],
        "PermitSingle",
        PERMIT2,
        json!({"details": detail(MAX_U160), "spender": THIEF, "sigDeadline": 1_900_000_000u64}),
    );
    let d = decode712(&single);
    assert!(d.facts.unlimited_approval && has_recipient(&d, THIEF) && !d.blind);
    assert_eq!(d.field_by_key("allowance"), Some("unlimited"));
    assert_eq!(d.field_by_key("allowance_expires"), Some("2030-03-17 17:46:40 UTC (1900000000)"));
    let batch = typed(
        &[
            ("PermitDetails", DETAILS),
            ("PermitBatch", &[("details", "PermitDetails[]"), ("spender", "address"), ("sigDeadline", "uint256")]),
        ],
        "PermitBatch",
        PERMIT2,
        json!({"details": [detail("5"), detail(MAX_U160)], "spender": THIEF, "sigDeadline": 1_900_000_000u64}),
    );
    let d = decode712(&batch);
    assert!(d.facts.unlimited_approval && has_recipient(&d, THIEF) && !d.blind);
    assert_eq!(d.field_by_key("allowance.1"), Some("5 (base units; token decimals not known)"));
    assert_eq!(d.field_by_key("allowance.2"), Some("unlimited"));
    assert_eq!(d.facts.tokens.len(), 2);
}

#[test]
fn typed_data_of_unknown_meaning_is_blind() {
    let d = decode712(crate::payload::tests::EIP712_MAIL.as_bytes());
    assert!(d.blind, "the phone does not know what signing a Mail does");
    assert!(d.has_warning("blind_signing"));
}

#[test]
fn a_permit_lookalike_is_not_trusted_as_a_permit() {
    // Named Permit, but not ERC-2612's shape: an extra field changes the type hash, so the
    // phone cannot know what a contract does with it.
    let p = typed(
        &[(
            "Permit",
            &[
                ("owner", "address"),
                ("spender", "address"),
                ("value", "uint256"),
                ("nonce", "uint256"),
                ("deadline", "uint256"),
                ("recipient", "address"),
            ],
        )],
        "Permit",
        TOKEN,
        json!({"owner": ME, "spender": THIEF, "value": "1", "nonce": 0, "deadline": 0, "recipient": THIEF}),
    );
    let d = decode712(&p);
    assert!(d.blind);
}

// ---- attack 5: misleading text on the review screen ----

#[test]
fn eip191_invisible_characters_never_reach_the_screen_raw() {
    for c in ['\u{200e}', '\u{200f}', '\u{061c}', '\u{200b}', '\u{2028}', '\u{feff}', '\u{202e}'] {
        let msg = format!("Pay 1 ETH to bob{c}.eth");
        let d = decode(PayloadKind::Eip191Message, msg.as_bytes(), &me()).unwrap();
        for f in &d.fields {
            assert!(!f.value.contains(c), "{c:?} reached the screen in {:?}", f.value);
        }
    }
}

#[test]
fn typed_data_strings_and_field_names_are_escaped() {
    let p = typed(
        &[("Note", &[("text", "string"), ("Network\u{202e}", "string")])],
        "Note",
        TOKEN,
        json!({"text": "safe\u{202e}\nTo: 0xattacker", "Network\u{202e}": "x"}),
    );
    let d = decode712(&p);
    for f in &d.fields {
        for c in ['\u{202e}', '\n'] {
            assert!(!f.value.contains(c) && !f.label.contains(c), "{c:?} in {f:?}");
        }
    }
    assert!(d.has_warning("text_escaped"));
}

#[test]
fn message_fields_cannot_impersonate_the_phones_rows() {
    let spec: &[(&str, &str)] = &[("Network", "string"), ("Verifying contract", "string"), ("To", "string")];
    let p = typed(
        &[("Fake", spec)],
        "Fake",
        TOKEN,
        json!({"Network": "Ethereum (eip155:1)", "Verifying contract": "0x0000000000000000000000000000000000000001", "To": "you"}),
    );
    let d = decode712(&p);
    for label in ["Network", "Verifying contract", "To"] {
        let n = d.fields.iter().filter(|f| f.label == label).count();
        assert!(n <= 1, "{n} rows labelled {label:?}: {:?}", d.fields);
    }
    // The phone's own network row is still the one labelled "Network".
    assert_eq!(d.field("Network"), Some("Ethereum (eip155:1)"));
}

#[test]
fn long_values_are_cut_visibly() {
    let p = typed(&[("Note", &[("text", "string")])], "Note", TOKEN, json!({"text": "A".repeat(5_000)}));
    let d = decode712(&p);
    assert!(d.fields.iter().all(|f| f.value.chars().count() < 1_000));
    assert!(d.has_warning("text_truncated"));
}

fn tx_1559(to: &str, input: Vec<u8>) -> Vec<u8> {
    use alloy_consensus::{SignableTransaction, TxEip1559};
    let tx = TxEip1559 {
        chain_id: 1,
        nonce: 7,
        gas_limit: 60_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_500_000_000,
        to: alloy_primitives::TxKind::Call(to.parse().unwrap()),
        value: alloy_primitives::U256::from(10u64.pow(16)),
        input: input.into(),
        access_list: Default::default(),
    };
    let mut p = Vec::new();
    tx.encode_for_signing(&mut p);
    p
}

#[test]
fn an_nft_id_is_not_shown_as_a_token_amount() {
    use alloy_sol_types::SolCall;
    // approve(address,uint256) and transferFrom(address,address,uint256) have the same
    // selectors in ERC-20 and ERC-721; the phone does not know which this contract is.
    let spender = THIEF.parse().unwrap();
    let data =
        super::evm::ITokenCalls::approveCall { spender, amount: alloy_primitives::U256::from(1234u32) }.abi_encode();
    let d = decode(PayloadKind::EvmTransaction, &tx_1559(TOKEN, data), &me()).unwrap();
    assert_eq!(d.field("Allowance"), None, "{:?}", d.fields);
    assert!(d.fields.iter().any(|f| f.label.contains("token ID") && f.value.starts_with("1234")));
    let data = super::evm::ITokenCalls::transferFromCall {
        from: ME.parse().unwrap(),
        to: spender,
        amount: alloy_primitives::U256::from(7u8),
    }
    .abi_encode();
    let d = decode(PayloadKind::EvmTransaction, &tx_1559(TOKEN, data), &me()).unwrap();
    assert_eq!(d.field("Amount"), None, "{:?}", d.fields);
    assert!(has_recipient(&d, THIEF));
}

// ---- attack 2 on screen: the worst-case total ----

#[test]
fn evm_review_shows_value_plus_worst_case_fee() {
    let d = decode(PayloadKind::EvmTransaction, &tx_1559(THIEF, vec![]), &me()).unwrap();
    // 0.01 ETH + 60,000 gas × 30 gwei = 0.0118 ETH.
    assert_eq!(d.field("Max total"), Some("0.0118 ETH"));
}

/// A legacy message paying from `payer`: a System transfer of 1 SOL plus the given Compute
/// Budget instructions.
fn solana_with_budget(payer: [u8; 32], budget: &[Vec<u8>]) -> Vec<u8> {
    let compute: [u8; 32] = bs58::decode(super::solana::COMPUTE_BUDGET_PROGRAM).into_vec().unwrap().try_into().unwrap();
    let mut m = vec![1u8, 0, 2, 4];
    for k in [payer, [2u8; 32], [0u8; 32], compute] {
        m.extend(k);
    }
    m.extend([9u8; 32]);
    encode_compact_u16(u16::try_from(budget.len() + 1).unwrap(), &mut m);
    for data in budget {
        m.extend([3u8, 0]);
        m.push(u8::try_from(data.len()).unwrap());
        m.extend(data);
    }
    m.extend([2u8, 2, 0, 1, 12]);
    m.extend(2u32.to_le_bytes());
    m.extend(1_000_000_000u64.to_le_bytes());
    m
}

#[test]
fn solana_worst_case_fee_counts_signatures_and_priority_fee() {
    let payer = [1u8; 32];
    let acct = AccountId::solana(SOLANA_MAINNET, &payer);
    let mut limit = vec![2u8];
    limit.extend(300_000u32.to_le_bytes());
    let mut price = vec![3u8];
    price.extend(1_000_001u64.to_le_bytes());
    let d = decode(PayloadKind::SolanaTransaction, &solana_with_budget(payer, &[limit, price.clone()]), &acct).unwrap();
    // 5,000 × 1 signature + ceil(1,000,001 µlamports × 300,000 / 10^6) = 5,000 + 300,001.
    assert_eq!(d.facts.max_fee, 305_001);
    assert_eq!(d.field("Max total"), Some("1.000305001 SOL"));
    // No unit limit: 200,000 per instruction other than Compute Budget (one transfer).
    let d = decode(PayloadKind::SolanaTransaction, &solana_with_budget(payer, &[price]), &acct).unwrap();
    assert_eq!(d.facts.max_fee, 5_000 + 200_001);
}
