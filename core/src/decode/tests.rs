//! Decoder tests on mainnet transactions, the EIP-712 example and built Solana messages.

use super::*;
use crate::caip::SOLANA_MAINNET;
use crate::payload::tests::{strip_signature, system_transfer_message, EIP712_MAIL, MAINNET_1559, MAINNET_LEGACY};
use alloy_consensus::{SignableTransaction, TxEip1559, TxLegacy};
use alloy_primitives::{address, hex, Address, TxKind, U256};
use alloy_sol_types::SolCall;
use proptest::prelude::*;

use super::evm::ITokenCalls;

fn evm_account() -> AccountId {
    "eip155:1:0x001e2b7dE757bA469a57bF6b23d982458a07eFcE".parse().unwrap()
}

pub(super) fn tx_1559(to: TxKind, value: U256, input: Vec<u8>) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: 1,
        nonce: 7,
        gas_limit: 60_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_500_000_000,
        to,
        value,
        input: input.into(),
        access_list: Default::default(),
    };
    let mut p = Vec::new();
    tx.encode_for_signing(&mut p);
    p
}

const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
const SPENDER: Address = address!("1111111254EEB25477B68fb85Ed929f73A960582");

#[test]
fn mainnet_eip1559_transaction_is_shown_as_a_contract_call() {
    // The alloy live EIP-1559 vector calls 0xD9e1…9C96 with selector 0x1b55ba3a.
    let (payload, _) = strip_signature(MAINNET_1559);
    let d = decode(PayloadKind::EvmTransaction, &payload, &evm_account()).unwrap();
    assert_eq!(d.field("Chain ID"), Some("1"));
    assert_eq!(d.field("To"), Some("0xD9e1459A7A482635700cBc20BBAF52D495Ab9C96"));
    assert_eq!(d.field("Transaction type"), Some("EIP-1559"));
    assert_eq!(d.field("Nonce"), Some("2"));
    assert_eq!(d.field("Gas limit"), Some("39152"));
    // RLP fields: gas 0x98f0 = 39152 × max fee 0x029e7822d6 = 11248607958 wei.
    assert_eq!(d.field("Max network fee"), Some("0.000440405498771616 ETH"));
    assert_eq!(d.field("Max fee per gas"), Some("11.248607958 gwei"));
    assert_eq!(d.field("Max priority fee per gas"), Some("1 gwei"));
    assert_eq!(d.field("Data"), Some("0x1b55ba3a (4 bytes)"));
    assert!(d.blind);
    assert!(d.has_warning("blind_signing"));
    assert_eq!(d.facts.contracts, vec!["0xD9e1459A7A482635700cBc20BBAF52D495Ab9C96"]);
}

#[test]
fn mainnet_legacy_transaction_fields() {
    // 0x280cde7c…: RLP fields nonce 0x078b, gas price 0x05d21dba00, value 0x0c46549a521b13d8.
    let (payload, _) = strip_signature(MAINNET_LEGACY);
    let d = decode(PayloadKind::EvmTransaction, &payload, &evm_account()).unwrap();
    assert_eq!(d.field("Transaction type"), Some("Legacy (EIP-155)"));
    assert_eq!(d.field("Nonce"), Some("1931"));
    assert_eq!(d.field("Gas price"), Some("25 gwei"));
    assert_eq!(d.field("Value"), Some("0.884487398604084184 ETH"));
    assert_eq!(d.field("Gas limit"), Some("143089"));
    assert_eq!(d.facts.native_value, 884_487_398_604_084_184);
    assert_eq!(d.field("To"), Some("0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"));
    assert!(d.blind, "swapExactETHForTokens is not a recognised call");
}

#[test]
fn plain_transfer_is_not_blind() {
    let p = tx_1559(TxKind::Call(SPENDER), U256::from(10u64.pow(16)), vec![]);
    let d = decode(PayloadKind::EvmTransaction, &p, &evm_account()).unwrap();
    assert_eq!(d.title, "Send ETH");
    assert_eq!(d.field("Value"), Some("0.01 ETH"));
    assert_eq!(d.field("Max network fee"), Some("0.0018 ETH"));
    assert_eq!(d.field("Max fee per gas"), Some("30 gwei"));
    assert!(!d.blind);
    assert!(d.warnings.is_empty());
    assert_eq!(d.facts.recipients, vec![SPENDER.to_checksum(None)]);
    assert_eq!(d.facts.native_value, 10u128.pow(16));
    assert_eq!(d.payload_hash.len(), 64);
}

static USDC_LIST: std::sync::LazyLock<KnownTokens> = std::sync::LazyLock::new(|| {
    let mut t = KnownTokens::new();
    t.insert(
        &ChainId::Evm(1),
        &USDC.to_checksum(None),
        TokenInfo { standard: TokenStandard::Erc20, symbol: "USDC".into(), decimals: Some(6) },
    );
    t
});

fn usdc_known() -> DecodeContext<'static> {
    DecodeContext { tokens: &*USDC_LIST, ..Default::default() }
}

#[test]
fn known_erc20_amounts_have_decimals_and_unknown_standards_are_ambiguous() {
    let data = ITokenCalls::approveCall { spender: SPENDER, amount: U256::from(2_500_000u64) }.abi_encode();
    let p = tx_1559(TxKind::Call(USDC), U256::ZERO, data);
    let d = decode_with(PayloadKind::EvmTransaction, &p, &evm_account(), &usdc_known()).unwrap();
    assert_eq!(d.field_by_key("allowance"), Some("2.5 USDC"));
    assert!(!d.has_warning("ambiguous_token_call"));
    let d = decode(PayloadKind::EvmTransaction, &p, &evm_account()).unwrap();
    assert_eq!(d.field_by_key("allowance"), None);
    assert_eq!(
        d.field_by_key("amount_or_token_id"),
        Some("2500000 (ERC-20 amount in base units, or ERC-721 token ID)")
    );
    assert!(d.has_warning("ambiguous_token_call"));
    assert!(d.facts.tokens[0].maybe_token_id);
    // Unknown standard, huge number: the guardrail facts stay conservative.
    let data = ITokenCalls::approveCall { spender: SPENDER, amount: U256::MAX }.abi_encode();
    let d =
        decode(PayloadKind::EvmTransaction, &tx_1559(TxKind::Call(USDC), U256::ZERO, data), &evm_account()).unwrap();
    assert!(d.facts.unlimited_approval && d.has_warning("unlimited_approval"));
    // A token known to be ERC-721: a token ID, never an amount.
    let mut nft = KnownTokens::new();
    nft.insert(
        &ChainId::Evm(1),
        &format!("{USDC:#x}"),
        TokenInfo { standard: TokenStandard::Erc721, symbol: "NFT".into(), decimals: None },
    );
    let ctx = DecodeContext { tokens: &nft, ..Default::default() };
    let data = ITokenCalls::transferFromCall { from: SPENDER, to: SPENDER, amount: U256::MAX }.abi_encode();
    let d =
        decode_with(PayloadKind::EvmTransaction, &tx_1559(TxKind::Call(USDC), U256::ZERO, data), &evm_account(), &ctx)
            .unwrap();
    assert_eq!(d.title, "NFT transfer");
    assert_eq!(d.field_by_key("token_id"), Some(U256::MAX.to_string().as_str()));
    assert!(!d.facts.unlimited_approval);
}

#[test]
fn erc20_approve_max_uint_warns_unlimited() {
    let data = ITokenCalls::approveCall { spender: SPENDER, amount: U256::MAX }.abi_encode();
    let p = tx_1559(TxKind::Call(USDC), U256::ZERO, data);
    let d = decode_with(PayloadKind::EvmTransaction, &p, &evm_account(), &usdc_known()).unwrap();
    assert_eq!(d.title, "Token approval");
    assert_eq!(d.field("Allowance"), Some("Unlimited USDC"));
    assert_eq!(d.field("Spender"), Some("0x1111111254EEB25477B68fb85Ed929f73A960582"));
    assert!(d.has_warning("unlimited_approval"));
    assert!(d.facts.unlimited_approval);
    assert!(!d.blind);
    // The same at 2^255 (effectively unlimited), not at 2^255 - 1.
    for (amount, unlimited) in [(U256::from(1u8) << 255, true), ((U256::from(1u8) << 255) - U256::from(1u8), false)] {
        let data = ITokenCalls::increaseAllowanceCall { spender: SPENDER, addedValue: amount }.abi_encode();
        let d = decode(PayloadKind::EvmTransaction, &tx_1559(TxKind::Call(USDC), U256::ZERO, data), &evm_account())
            .unwrap();
        assert_eq!(d.facts.tokens[0].unlimited, unlimited);
        assert_eq!(d.has_warning("unlimited_approval"), unlimited);
    }
}

#[test]
fn erc20_transfer_and_transfer_from() {
    let data = ITokenCalls::transferCall { to: SPENDER, amount: U256::from(2_500_000u64) }.abi_encode();
    let d =
        decode(PayloadKind::EvmTransaction, &tx_1559(TxKind::Call(USDC), U256::ZERO, data), &evm_account()).unwrap();
    assert_eq!(d.title, "Token transfer");
    assert_eq!(d.field("Amount"), Some("2500000 (base units; token decimals not known)"));
    assert_eq!(d.facts.recipients, vec![SPENDER.to_checksum(None)]);
    assert_eq!(d.facts.contracts, vec![USDC.to_checksum(None)]);
    let data = ITokenCalls::transferFromCall { from: USDC, to: SPENDER, amount: U256::from(1u8) }.abi_encode();
    let d =
        decode(PayloadKind::EvmTransaction, &tx_1559(TxKind::Call(USDC), U256::ZERO, data), &evm_account()).unwrap();
    assert_eq!(d.field("From"), Some(USDC.to_checksum(None).as_str()));
    // Calldata with a trailing byte is not the canonical call: blind.
    let mut data = ITokenCalls::transferCall { to: SPENDER, amount: U256::from(1u8) }.abi_encode();
    data.push(0);
    let d =
        decode(PayloadKind::EvmTransaction, &tx_1559(TxKind::Call(USDC), U256::ZERO, data), &evm_account()).unwrap();
    assert!(d.blind);
}

#[test]
fn set_approval_for_all_mainnet_vector_and_approve_true() {
    // alloy's mainnet vector 0x0ec0b6a2…: setApprovalForAll(0x5eee…, false) — a revoke.
    let input = hex!("a22cb4650000000000000000000000005eee75727d804a2b13038928d36f8b188945a57a0000000000000000000000000000000000000000000000000000000000000000");
    let d =
        decode(PayloadKind::EvmTransaction, &tx_1559(TxKind::Call(USDC), U256::ZERO, input.to_vec()), &evm_account())
            .unwrap();
    assert_eq!(d.title, "Revoke an operator");
    assert!(d.warnings.is_empty());
    let data = ITokenCalls::setApprovalForAllCall { operator: SPENDER, approved: true }.abi_encode();
    let d =
        decode(PayloadKind::EvmTransaction, &tx_1559(TxKind::Call(USDC), U256::ZERO, data), &evm_account()).unwrap();
    assert!(d.has_warning("approval_for_all"));
    assert!(d.facts.unlimited_approval);
}

#[test]
fn contract_creation_warns() {
    let d = decode(PayloadKind::EvmTransaction, &tx_1559(TxKind::Create, U256::ZERO, vec![0x60, 0x80]), &evm_account())
        .unwrap();
    assert!(d.has_warning("contract_creation"));
    assert!(d.facts.contract_creation);
    assert_eq!(d.field("To"), Some("new contract"));
}

#[test]
fn chain_mismatch_is_an_error_not_a_display() {
    let (payload, _) = strip_signature(MAINNET_1559);
    let on_base: AccountId = "eip155:8453:0x001e2b7dE757bA469a57bF6b23d982458a07eFcE".parse().unwrap();
    assert!(matches!(
        decode(PayloadKind::EvmTransaction, &payload, &on_base),
        Err(DecodeError::Payload(PayloadError::ChainMismatch { .. }))
    ));
    assert!(matches!(
        decode(PayloadKind::Eip712TypedData, EIP712_MAIL.as_bytes(), &on_base),
        Err(DecodeError::Payload(PayloadError::ChainMismatch { .. }))
    ));
    // A legacy tx for chain 56 on chain 1.
    let tx = TxLegacy { chain_id: Some(56), gas_limit: 21000, ..Default::default() };
    let mut p = Vec::new();
    tx.encode_for_signing(&mut p);
    assert!(decode(PayloadKind::EvmTransaction, &p, &evm_account()).is_err());
}

#[test]
fn eip191_text_and_hex() {
    let d = decode(PayloadKind::Eip191Message, b"Sign in to example.org\nNonce: 42", &evm_account()).unwrap();
    assert_eq!(d.field("Message"), Some("Sign in to example.org\nNonce: 42"));
    assert!(!d.blind && d.warnings.is_empty());
    let d = decode(PayloadKind::Eip191Message, &[0xde, 0xad, 0xbe, 0xef], &evm_account()).unwrap();
    assert_eq!(d.field("Message (hex)"), Some("0xdeadbeef"));
    assert!(d.has_warning("message_not_text"));
    // A right-to-left override is shown escaped, with a warning.
    let d = decode(PayloadKind::Eip191Message, "pay \u{202e}evil".as_bytes(), &evm_account()).unwrap();
    assert_eq!(d.field("Message"), Some("pay ⟨U+202E⟩evil"));
    assert!(d.has_warning("text_escaped"));
    // Binary that happens to be UTF-8 is still hex.
    let d = decode(PayloadKind::Eip191Message, b"\x01\x02abc", &evm_account()).unwrap();
    assert_eq!(d.field_by_key("message_hex"), Some("0x0102616263"));
}

#[test]
fn eip712_mail_is_flattened() {
    let d = decode(PayloadKind::Eip712TypedData, EIP712_MAIL.as_bytes(), &evm_account()).unwrap();
    assert_eq!(d.title, "Sign typed data: Mail");
    assert_eq!(d.field("Domain name"), Some("Ether Mail"));
    assert_eq!(d.field("Domain version"), Some("1"));
    assert_eq!(d.field("Domain chain ID"), Some("1"));
    assert_eq!(d.field("Verifying contract"), Some("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"));
    assert_eq!(d.field_by_key("message.from.name"), Some("Cow"));
    assert_eq!(d.field("Message › from.name"), Some("Cow"));
    assert_eq!(d.field_by_key("message.to.wallet"), Some("0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"));
    assert_eq!(d.field_by_key("message.contents"), Some("Hello, Bob!"));
    // Rows follow the declared field order, not JSON key order.
    let keys: Vec<&str> = d.fields.iter().skip(6).map(|f| f.key.as_str()).collect();
    assert_eq!(
        keys,
        ["message.from.name", "message.from.wallet", "message.to.name", "message.to.wallet", "message.contents"]
    );
    // A JSON key the types do not declare is not signed, so it is not shown.
    let extra =
        EIP712_MAIL.replace("\"contents\": \"Hello, Bob!\"", "\"contents\": \"Hello, Bob!\", \"amount\": \"1000 ETH\"");
    assert_ne!(extra, EIP712_MAIL);
    let d2 = decode(PayloadKind::Eip712TypedData, extra.as_bytes(), &evm_account()).unwrap();
    assert_eq!(d2.field_by_key("message.amount"), None);
    // The phone does not know what a Mail means: blind, and nothing else to warn about.
    assert!(d.blind);
    assert_eq!(d.warnings.iter().map(Warning::code).collect::<Vec<_>>(), ["blind_signing"]);
}

#[test]
fn eip712_permit_with_max_value_warns() {
    let permit = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
      "Permit":[{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]},
      "primaryType":"Permit","domain":{"name":"USD Coin","chainId":1,"verifyingContract":"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"},
      "message":{"owner":"0x001e2b7dE757bA469a57bF6b23d982458a07eFcE","spender":"0x1111111254eeb25477b68fb85ed929f73a960582",
      "value":"115792089237316195423570985008687907853269984665640564039457584007913129639935","nonce":"0","deadline":"1700000000"}}"#;
    let d = decode(PayloadKind::Eip712TypedData, permit.as_bytes(), &evm_account()).unwrap();
    assert!(d.has_warning("unlimited_approval"));
    assert_eq!(d.facts.recipients, vec![SPENDER.to_checksum(None)]);
    // Without a chain id it still decodes, with a warning.
    let no_chain =
        EIP712_MAIL.replace("\"chainId\": 1,", "").replace("{\"name\": \"chainId\", \"type\": \"uint256\"},", "");
    let d = decode(PayloadKind::Eip712TypedData, no_chain.as_bytes(), &evm_account()).unwrap();
    assert!(d.has_warning("typed_data_without_chain"));
}

fn sol_account(pk: [u8; 32]) -> AccountId {
    AccountId::solana(SOLANA_MAINNET, &pk)
}

#[test]
fn solana_system_transfer() {
    let from = [1u8; 32];
    let to = [2u8; 32];
    let msg = system_transfer_message(from, to, 1_500_000_000);
    let d = decode(PayloadKind::SolanaTransaction, &msg, &sol_account(from)).unwrap();
    assert_eq!(d.title, "Send SOL");
    assert_eq!(d.field("Amount"), Some("1.5 SOL"));
    assert_eq!(d.field("To"), Some(bs58::encode(to).into_string().as_str()));
    assert_eq!(d.facts.native_value, 1_500_000_000);
    assert!(!d.blind);
    assert!(d.warnings.is_empty());
    // Decoded for another account: not a signer, and its funds do not move.
    let d = decode(PayloadKind::SolanaTransaction, &msg, &sol_account(to)).unwrap();
    assert!(d.has_warning("account_not_signer"));
    assert_eq!(d.facts.native_value, 0);
}

const TOKEN: &str = "TokenkegQfeYyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";

/// One-instruction legacy message calling the SPL Token program: keys are
/// [owner(signer), a, b, c, token program].
fn token_message(data: &[u8], accounts: &[u8]) -> Vec<u8> {
    let token: [u8; 32] = bs58::decode(TOKEN).into_vec().unwrap().try_into().unwrap();
    let mut m = vec![1u8, 0, 1, 5];
    for k in [[1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32], token] {
        m.extend(k);
    }
    m.extend([9u8; 32]);
    m.extend([1, 4]);
    m.push(accounts.len() as u8);
    m.extend(accounts);
    m.push(data.len() as u8);
    m.extend(data);
    m
}

#[test]
fn spl_token_instructions() {
    let owner = sol_account([1u8; 32]);
    let b = |k: u8| bs58::encode([k; 32]).into_string();

    let mut data = vec![3];
    data.extend(250u64.to_le_bytes());
    let d = decode(PayloadKind::SolanaTransaction, &token_message(&data, &[2, 3, 0]), &owner).unwrap();
    assert_eq!(d.title, "Send tokens");
    // Key i of token_message is [i + 1; 32].
    assert_eq!(d.field("To token account"), Some(b(4).as_str()));
    assert!(!d.blind && d.warnings.is_empty());

    let mut data = vec![12];
    data.extend(1_234_500u64.to_le_bytes());
    data.push(6);
    let d = decode(PayloadKind::SolanaTransaction, &token_message(&data, &[2, 4, 3, 0]), &owner).unwrap();
    assert_eq!(d.field("Amount"), Some("1.2345"));
    assert_eq!(d.field("Mint"), Some(TOKEN));

    let mut data = vec![4];
    data.extend(u64::MAX.to_le_bytes());
    let d = decode(PayloadKind::SolanaTransaction, &token_message(&data, &[2, 3, 0]), &owner).unwrap();
    assert!(d.has_warning("token_delegate"));
    assert!(d.has_warning("unlimited_approval"));

    let mut data = vec![6, 2, 1];
    data.extend([3u8; 32]);
    let d = decode(PayloadKind::SolanaTransaction, &token_message(&data, &[2, 0]), &owner).unwrap();
    assert!(d.has_warning("set_authority"));
    assert_eq!(d.field("New authority"), Some(b(3).as_str()));
    assert_eq!(d.field("Authority"), Some("account owner"));

    let d = decode(PayloadKind::SolanaTransaction, &token_message(&[6, 1, 0], &[2, 0]), &owner).unwrap();
    assert_eq!(d.field("New authority"), Some("none (removed)"));

    let d = decode(PayloadKind::SolanaTransaction, &token_message(&[9], &[2, 3, 0]), &owner).unwrap();
    assert!(d.has_warning("close_account"));
    assert_eq!(d.facts.recipients, vec![b(4)]);

    // MintTo (7) is not decoded: blind, with the payload hash.
    let mut data = vec![7];
    data.extend(5u64.to_le_bytes());
    let d = decode(PayloadKind::SolanaTransaction, &token_message(&data, &[2, 3, 0]), &owner).unwrap();
    assert!(d.blind && d.has_warning("blind_signing"));
}

#[test]
fn unknown_solana_program_is_blind_and_listed_as_contract() {
    let mut m = system_transfer_message([1; 32], [2; 32], 5);
    // Point the instruction at key 1 ([2;32]) as a program instead of the System program.
    let ix_at = m.len() - 17;
    m[ix_at] = 1;
    let d = decode(PayloadKind::SolanaTransaction, &m, &sol_account([1; 32])).unwrap();
    assert!(d.blind);
    assert_eq!(d.facts.contracts, vec![bs58::encode([2u8; 32]).into_string()]);
}

#[test]
fn solana_v0_with_lookup_is_unresolved() {
    // v0: transfer from key 0 to lookup-table entry (index 3 = first writable lookup).
    let mut m = vec![0x80, 1, 0, 1, 3];
    m.extend([1u8; 32]);
    m.extend([5u8; 32]);
    m.extend([0u8; 32]);
    m.extend([9u8; 32]);
    m.extend([1, 2, 2, 0, 3, 12]);
    m.extend(2u32.to_le_bytes());
    m.extend(7u64.to_le_bytes());
    m.push(1);
    m.extend([8u8; 32]);
    m.extend([1, 4, 0]);
    let d = decode(PayloadKind::SolanaTransaction, &m, &sol_account([1; 32])).unwrap();
    assert!(d.has_warning("unresolved_addresses"));
    assert!(d.facts.recipients[0].starts_with("unresolved:"));
}

proptest! {
    #[test]
    fn decode_never_panics(kind in 0u8..4, bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let kind = [PayloadKind::EvmTransaction, PayloadKind::Eip191Message, PayloadKind::Eip712TypedData, PayloadKind::SolanaTransaction][usize::from(kind)];
        for acct in [evm_account(), sol_account([1; 32])] {
            let signable = crate::payload::signing_target(kind, &bytes, &acct.chain).is_ok();
            prop_assert_eq!(decode(kind, &bytes, &acct).is_ok(), signable);
        }
    }

    #[test]
    fn any_erc20_calldata_decodes_without_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let p = tx_1559(TxKind::Call(USDC), U256::ZERO, data);
        prop_assert!(decode(PayloadKind::EvmTransaction, &p, &evm_account()).is_ok());
    }
}

#[test]
fn wallet_core_solana_transfer_vector() {
    // trustwallet/wallet-core tests/chains/Solana/TransactionTests.cpp, TransferMessageData:
    // 42 lamports from 6eoo7i1k… to 56B334Qv…, blockhash 111…1.
    let msg = hex::decode(concat!(
        "0100010353f9d600fe925083bb399907ea648d23a6a081fc7e9059202fd725f7edd281dd3cc1ff9ba3c7a876c8",
        "082df2f8a36ea9342ce3819dd4b6fa72d4a18e04a5363a00000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000010202",
        "00010c020000002a00000000000000"
    ))
    .unwrap();
    let from: AccountId =
        format!("solana:{SOLANA_MAINNET}:6eoo7i1khGhVm8tLBMAdq4ax2FxkKP4G7mCcfHyr3STN").parse().unwrap();
    let d = decode(PayloadKind::SolanaTransaction, &msg, &from).unwrap();
    assert_eq!(d.title, "Send SOL");
    assert_eq!(d.field("From"), Some("6eoo7i1khGhVm8tLBMAdq4ax2FxkKP4G7mCcfHyr3STN"));
    assert_eq!(d.field("To"), Some("56B334QvCDMSirsmtEJGfanZm8GqeQarrSjdAb2MbeNM"));
    assert_eq!(d.field("Amount"), Some("0.000000042 SOL"));
    assert_eq!(d.field("Recent blockhash"), Some("11111111111111111111111111111111"));
    assert_eq!(d.facts.native_value, 42);
    assert!(!d.blind && d.warnings.is_empty());
}
