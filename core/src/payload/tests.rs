//! Contract D tests on published vectors, round trips and refusals.

use super::*;
use alloy_consensus::{Signed, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::hex;
use k256::ecdsa::SigningKey;
use proptest::prelude::*;

use crate::caip::SOLANA_MAINNET;

/// EIP-1559 mainnet transaction, from alloy-consensus `test_decode_live_1559_tx`
/// (sender 0x001e2b7dE757bA469a57bF6b23d982458a07eFcE).
pub(crate) const MAINNET_1559: &str = "02f86f0102843b9aca0085029e7822d68298f094d9e1459a7a482635700cbc20bbaf52d495ab9c9680841b55ba3ac080a0c199674fcb29f353693dd779c017823b954b3c69dffa3cd6b2a6ff7888798039a028ca912de909e7e6cdef9cdcaf24c54dd8c1032946dfa1d85c206b32a9064fe8";
pub(crate) const MAINNET_1559_FROM: &str = "0x001e2b7dE757bA469a57bF6b23d982458a07eFcE";

/// Legacy EIP-155 mainnet transaction 0x280cde7cdefe4b188750e76c888f13bd05ce9a4d7767730feefe8a0e50ca6fc4
/// (Uniswap V2 router swapExactETHForTokens), from alloy-consensus `test_decode_live_legacy_tx`.
pub(crate) const MAINNET_LEGACY: &str = "f9015482078b8505d21dba0083022ef1947a250d5630b4cf539739df2c5dacb4c659f2488d880c46549a521b13d8b8e47ff36ab50000000000000000000000000000000000000000000066ab5a608bd00a23f2fe000000000000000000000000000000000000000000000000000000000000008000000000000000000000000048c04ed5691981c42154c6167398f95e8f38a7ff00000000000000000000000000000000000000000000000000000000632ceac70000000000000000000000000000000000000000000000000000000000000002000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc20000000000000000000000006c6ee5e31d828de241282b9606c8e98ea48526e225a0c9077369501641a92ef7399ff81c21639ed4fd8fc69cb793cfa1dbfab342e10aa0615facb2f1bcf3274a354cfe384a38d0cc008a11c2dd23a69111bc6930ba27a8";
pub(crate) const MAINNET_LEGACY_FROM: &str = "0xa12e1462d0ceD572f396F58B6E2D03894cD7C8a4";

/// The "Mail" example of EIP-712 (https://eips.ethereum.org/EIPS/eip-712, `Example.js`).
pub(crate) const EIP712_MAIL: &str = r#"{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"},
      {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"},
      {"name": "verifyingContract", "type": "address"}
    ],
    "Person": [
      {"name": "name", "type": "string"},
      {"name": "wallet", "type": "address"}
    ],
    "Mail": [
      {"name": "from", "type": "Person"},
      {"name": "to", "type": "Person"},
      {"name": "contents", "type": "string"}
    ]
  },
  "primaryType": "Mail",
  "domain": {
    "name": "Ether Mail",
    "version": "1",
    "chainId": 1,
    "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
  },
  "message": {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!"
  }
}"#;

/// Splits a published signed transaction into (unsigned payload, r‖s‖v as the appliance
/// would return it), using alloy's own decoder.
pub(crate) fn strip_signature(raw_hex: &str) -> (Vec<u8>, [u8; 65]) {
    let raw = hex::decode(raw_hex).unwrap();
    let env = TxEnvelope::decode_2718(&mut raw.as_slice()).unwrap();
    fn split<T: SignableTransaction<alloy_primitives::Signature>>(
        s: &Signed<T>,
        style: EvmVStyle,
    ) -> (Vec<u8>, [u8; 65]) {
        let mut payload = Vec::new();
        s.tx().encode_for_signing(&mut payload);
        let sig = s.signature();
        let mut out = [0u8; 65];
        out[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
        out[32..64].copy_from_slice(&sig.s().to_be_bytes::<32>());
        out[64] = v_byte(style, sig.v());
        (payload, out)
    }
    match &env {
        TxEnvelope::Legacy(s) => split(s, EvmVStyle::Eip155 { chain_id: s.tx().chain_id.unwrap() }),
        TxEnvelope::Eip2930(s) => split(s, EvmVStyle::YParity),
        TxEnvelope::Eip1559(s) => split(s, EvmVStyle::YParity),
        _ => panic!("unexpected type"),
    }
}

fn acct(s: &str) -> AccountId {
    format!("eip155:1:{s}").parse().unwrap()
}

#[test]
fn mainnet_eip1559_signature_recovers_to_published_sender() {
    let (payload, sig) = strip_signature(MAINNET_1559);
    assert_eq!(payload.first(), Some(&0x02));
    let target = signing_target(PayloadKind::EvmTransaction, &payload, &ChainId::Evm(1)).unwrap();
    let SigningTarget::EvmDigest { digest, v_style } = &target else { panic!() };
    assert_eq!(*v_style, EvmVStyle::YParity);
    assert_eq!(*digest, keccak256(&payload).0);
    verify_appliance_signature(&target, &sig, &acct(MAINNET_1559_FROM)).unwrap();
    assert_eq!(verify_appliance_signature(&target, &sig, &acct(MAINNET_LEGACY_FROM)), Err(PayloadError::WrongSigner));
}

#[test]
fn mainnet_legacy_signature_recovers_to_published_sender() {
    let (payload, sig) = strip_signature(MAINNET_LEGACY);
    let target = signing_target(PayloadKind::EvmTransaction, &payload, &ChainId::Evm(1)).unwrap();
    let SigningTarget::EvmDigest { v_style, .. } = &target else { panic!() };
    assert_eq!(*v_style, EvmVStyle::Eip155 { chain_id: 1 });
    assert_eq!(sig[64], 37, "published v = 0x25");
    verify_appliance_signature(&target, &sig, &acct(MAINNET_LEGACY_FROM)).unwrap();
    assert_eq!(evm_signer_address(&target, &sig).unwrap(), acct(MAINNET_LEGACY_FROM).evm_address().unwrap());
}

#[test]
fn alloy_eip1559_signature_hash_vector() {
    // alloy-consensus `recover_signer_eip1559`: mainnet tx 0x0ec0b6a2…, setApprovalForAll.
    let tx = TxEip1559 {
        chain_id: 1,
        nonce: 0x42,
        gas_limit: 44386,
        to: alloy_primitives::address!("6069a6c32cf691f5982febae4faf8a6f3ab2f0f6").into(),
        value: U256::ZERO,
        input: hex!("a22cb4650000000000000000000000005eee75727d804a2b13038928d36f8b188945a57a0000000000000000000000000000000000000000000000000000000000000000").into(),
        max_fee_per_gas: 0x4a817c800,
        max_priority_fee_per_gas: 0x3b9aca00,
        access_list: Default::default(),
    };
    let mut payload = Vec::new();
    tx.encode_for_signing(&mut payload);
    let target = signing_target(PayloadKind::EvmTransaction, &payload, &ChainId::Evm(1)).unwrap();
    assert_eq!(
        target,
        SigningTarget::EvmDigest {
            digest: hex!("0d5688ac3897124635b6cf1bc0e29d6dfebceebdc10a54d74f2ef8b56535b682"),
            v_style: EvmVStyle::YParity
        }
    );
    let mut sig = [0u8; 65];
    sig[..32].copy_from_slice(&hex!("840cfc572845f5786e702984c2a582528cad4b49b2a10b9db1be7fca90058565"));
    sig[32..64].copy_from_slice(&hex!("25e7109ceb98168d95b09b18bbf6b685130e0562f233877d492b94eee0c5b6d1"));
    verify_appliance_signature(&target, &sig, &acct("0xdd6b8b3dc6b7ad97db52f08a275ff4483e024cea")).unwrap();
}

#[test]
fn transaction_for_another_chain_is_refused() {
    let (payload, _) = strip_signature(MAINNET_1559);
    assert_eq!(
        signing_target(PayloadKind::EvmTransaction, &payload, &ChainId::Evm(10)),
        Err(PayloadError::ChainMismatch { payload: "eip155:1".into(), request: "eip155:10".into() })
    );
    let (legacy, _) = strip_signature(MAINNET_LEGACY);
    assert!(matches!(
        signing_target(PayloadKind::EvmTransaction, &legacy, &ChainId::Evm(137)),
        Err(PayloadError::ChainMismatch { .. })
    ));
    let sol = ChainId::Solana(SOLANA_MAINNET.into());
    assert!(matches!(
        signing_target(PayloadKind::EvmTransaction, &payload, &sol),
        Err(PayloadError::WrongNamespace { .. })
    ));
}

#[test]
fn signed_or_non_canonical_transactions_are_refused() {
    // The signed form is not a signing payload.
    let raw = hex::decode(MAINNET_1559).unwrap();
    assert!(matches!(
        signing_target(PayloadKind::EvmTransaction, &raw, &ChainId::Evm(1)),
        Err(PayloadError::BadTransaction(_))
    ));
    // Trailing garbage.
    let (mut payload, _) = strip_signature(MAINNET_1559);
    payload.push(0);
    assert!(matches!(
        signing_target(PayloadKind::EvmTransaction, &payload, &ChainId::Evm(1)),
        Err(PayloadError::BadTransaction(_))
    ));
    // A bare 32-byte hash is never a payload.
    assert!(signing_target(PayloadKind::EvmTransaction, &[0x11; 32], &ChainId::Evm(1)).is_err());
    // Blob transactions are not supported.
    assert_eq!(
        signing_target(PayloadKind::EvmTransaction, &[0x03, 0xc0], &ChainId::Evm(1)),
        Err(PayloadError::UnsupportedTxType(3))
    );
}

#[test]
fn legacy_without_chain_id_or_with_huge_chain_id_is_refused() {
    let mut tx = TxLegacy { chain_id: None, gas_limit: 21000, ..Default::default() };
    let mut p = Vec::new();
    tx.encode_for_signing(&mut p);
    assert_eq!(signing_target(PayloadKind::EvmTransaction, &p, &ChainId::Evm(1)), Err(PayloadError::MissingChainId));
    tx.chain_id = Some(137);
    let mut p = Vec::new();
    tx.encode_for_signing(&mut p);
    assert_eq!(
        signing_target(PayloadKind::EvmTransaction, &p, &ChainId::Evm(137)),
        Err(PayloadError::LegacyChainIdTooLarge(137))
    );
}

#[test]
fn eip191_hello_world_vector() {
    // alloy-primitives / ethers `hashMessage("Hello World")`.
    let t = signing_target(PayloadKind::Eip191Message, b"Hello World", &ChainId::Evm(1)).unwrap();
    assert_eq!(
        t,
        SigningTarget::EvmDigest {
            digest: hex!("a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2"),
            v_style: EvmVStyle::Legacy27
        }
    );
}

#[test]
fn eip191_web3js_signature_vector() {
    // web3.js docs, `web3.eth.accounts.sign('Some data', '0x4c0883a6…362318')`.
    let t = signing_target(PayloadKind::Eip191Message, b"Some data", &ChainId::Evm(1)).unwrap();
    let SigningTarget::EvmDigest { digest, .. } = &t else { panic!() };
    assert_eq!(*digest, hex!("1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655"));
    let sig = hex!("b91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c");
    verify_appliance_signature(&t, &sig, &acct("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23")).unwrap();
}

#[test]
fn eip712_mail_vector_digest_and_signature() {
    let t = signing_target(PayloadKind::Eip712TypedData, EIP712_MAIL.as_bytes(), &ChainId::Evm(1)).unwrap();
    let SigningTarget::EvmDigest { digest, v_style } = &t else { panic!() };
    assert_eq!(*digest, hex!("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"));
    assert_eq!(*v_style, EvmVStyle::Legacy27);
    // The EIP's signature by keccak256("cow"): v = 28.
    let mut sig = [0u8; 65];
    sig[..32].copy_from_slice(&hex!("4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"));
    sig[32..64].copy_from_slice(&hex!("07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562"));
    sig[64] = 28;
    verify_appliance_signature(&t, &sig, &acct("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")).unwrap();
    let cow = SigningKey::from_slice(keccak256(b"cow").as_slice()).unwrap();
    assert_eq!(address_of(cow.verifying_key()), hex!("CD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"));
}

#[test]
fn eip712_chain_mismatch_is_refused() {
    assert_eq!(
        signing_target(PayloadKind::Eip712TypedData, EIP712_MAIL.as_bytes(), &ChainId::Evm(5)),
        Err(PayloadError::ChainMismatch { payload: "eip155:1".into(), request: "eip155:5".into() })
    );
    assert!(matches!(
        signing_target(PayloadKind::Eip712TypedData, b"{not json", &ChainId::Evm(1)),
        Err(PayloadError::BadTypedData(_))
    ));
}

/// A legacy Solana message: `from` transfers `lamports` to `to` (System program).
pub(crate) fn system_transfer_message(from: [u8; 32], to: [u8; 32], lamports: u64) -> Vec<u8> {
    let mut m = vec![1u8, 0, 1]; // 1 signer, 0 ro-signed, 1 ro-unsigned (the program)
    m.push(3);
    m.extend(from);
    m.extend(to);
    m.extend([0u8; 32]); // System program
    m.extend([9u8; 32]); // recent blockhash
    m.push(1); // one instruction
    m.push(2); // program index
    m.extend([2, 0, 1]); // accounts [from, to]
    m.push(12);
    m.extend(2u32.to_le_bytes());
    m.extend(lamports.to_le_bytes());
    m
}

#[test]
fn solana_message_is_signed_as_is_and_verified_strictly() {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let pk = sk.verifying_key().to_bytes();
    let msg = system_transfer_message(pk, [5u8; 32], 1_000_000);
    let chain = ChainId::Solana(SOLANA_MAINNET.into());
    let t = signing_target(PayloadKind::SolanaTransaction, &msg, &chain).unwrap();
    assert_eq!(t, SigningTarget::Ed25519Message(msg.clone()));
    use ed25519_dalek::Signer;
    let sig = sk.sign(&msg).to_bytes();
    let account = AccountId::solana(SOLANA_MAINNET, &pk);
    verify_appliance_signature(&t, &sig, &account).unwrap();
    let other = AccountId::solana(SOLANA_MAINNET, &[5u8; 32]);
    assert!(verify_appliance_signature(&t, &sig, &other).is_err());
    assert!(matches!(
        verify_appliance_signature(&t, &sig, &acct(MAINNET_1559_FROM)),
        Err(PayloadError::WrongAccountKind(_))
    ));
    // On an EVM chain, or with a byte cut off, it is refused.
    assert!(matches!(
        signing_target(PayloadKind::SolanaTransaction, &msg, &ChainId::Evm(1)),
        Err(PayloadError::WrongNamespace { .. })
    ));
    assert!(matches!(
        signing_target(PayloadKind::SolanaTransaction, &msg[..msg.len() - 1], &chain),
        Err(PayloadError::BadSolanaMessage(_))
    ));
}

fn sign_with(key: &SigningKey, target: &SigningTarget) -> [u8; 65] {
    let SigningTarget::EvmDigest { digest, v_style } = target else { panic!() };
    let (sig, recid) = key.sign_prehash_recoverable(digest).unwrap();
    encode_evm_signature(&sig, recid, *v_style)
}

#[test]
fn high_s_and_wrong_v_are_refused() {
    let key = SigningKey::from_slice(&[3u8; 32]).unwrap();
    let account = AccountId::evm(1, address_of(key.verifying_key()));
    let t = signing_target(PayloadKind::Eip191Message, b"hi", &ChainId::Evm(1)).unwrap();
    let sig = sign_with(&key, &t);
    verify_appliance_signature(&t, &sig, &account).unwrap();
    // Flip s to n - s and the parity: same key mathematically, but high-s is refused.
    let parsed = Signature::from_slice(&sig[..64]).unwrap();
    let (r, s) = parsed.split_scalars();
    let high = Signature::from_scalars(r, -*s).unwrap();
    let mut bad = [0u8; 65];
    bad[..64].copy_from_slice(&high.to_bytes());
    bad[64] = if sig[64] == 27 { 28 } else { 27 };
    assert_eq!(verify_appliance_signature(&t, &bad, &account), Err(PayloadError::HighS));
    // encode_evm_signature normalises that high-s signature back.
    let recid = RecoveryId::new(bad[64] == 28, false);
    assert_eq!(encode_evm_signature(&high, recid, EvmVStyle::Legacy27), sig);
    // v in another style.
    let mut v0 = sig;
    v0[64] -= 27;
    assert_eq!(verify_appliance_signature(&t, &v0, &account), Err(PayloadError::BadRecoveryByte(v0[64])));
    assert!(matches!(verify_appliance_signature(&t, &sig[..64], &account), Err(PayloadError::MalformedSignature(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_and_any_flipped_byte_refuses(seed: [u8; 32], nonce: u64, value: u64, flip in 0usize..65, bit in 0u8..8) {
        let Ok(key) = SigningKey::from_slice(&seed) else { return Ok(()) };
        let account = AccountId::evm(1, address_of(key.verifying_key()));
        let tx = TxEip1559 { chain_id: 1, nonce, value: U256::from(value), gas_limit: 21000, ..Default::default() };
        let mut payload = Vec::new();
        tx.encode_for_signing(&mut payload);
        for (kind, p) in [(PayloadKind::EvmTransaction, payload.as_slice()), (PayloadKind::Eip191Message, &seed[..])] {
            let t = signing_target(kind, p, &ChainId::Evm(1)).unwrap();
            let sig = sign_with(&key, &t);
            prop_assert!(verify_appliance_signature(&t, &sig, &account).is_ok());
            let mut bad = sig;
            bad[flip] ^= 1 << bit;
            prop_assert!(verify_appliance_signature(&t, &bad, &account).is_err());
        }
    }

    #[test]
    fn legacy_round_trip_uses_eip155_v(seed: [u8; 32], chain_id in 1u64..=MAX_LEGACY_CHAIN_ID) {
        let Ok(key) = SigningKey::from_slice(&seed) else { return Ok(()) };
        let account = AccountId::evm(chain_id, address_of(key.verifying_key()));
        let tx = TxLegacy { chain_id: Some(chain_id), gas_limit: 21000, ..Default::default() };
        let mut payload = Vec::new();
        tx.encode_for_signing(&mut payload);
        let t = signing_target(PayloadKind::EvmTransaction, &payload, &ChainId::Evm(chain_id)).unwrap();
        let sig = sign_with(&key, &t);
        prop_assert!(sig[64] == (35 + 2 * chain_id) as u8 || sig[64] == (36 + 2 * chain_id) as u8);
        prop_assert!(verify_appliance_signature(&t, &sig, &account).is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(kind in 0u8..4, bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let kind = [PayloadKind::EvmTransaction, PayloadKind::Eip191Message, PayloadKind::Eip712TypedData, PayloadKind::SolanaTransaction][usize::from(kind)];
        for chain in [ChainId::Evm(1), ChainId::Solana(SOLANA_MAINNET.into())] {
            if let Ok(t) = signing_target(kind, &bytes, &chain) {
                let _ = verify_appliance_signature(&t, &bytes, &AccountId::evm(1, [1; 20]));
            }
        }
    }

    #[test]
    fn solana_parser_never_panics_on_mutations(pos in 0usize..200, b: u8) {
        let mut m = system_transfer_message([1; 32], [2; 32], 5);
        if let Some(x) = m.get_mut(pos) { *x = b; }
        let _ = SolanaMessage::parse(&m);
    }
}
