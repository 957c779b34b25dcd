use super::*;
use crate::secrets::MemorySecretStore;
use proptest::prelude::*;

fn request(pair: u128, id: u128, body: Vec<u8>, sp_sig: Vec<u8>, octane_sig: Vec<u8>) -> PendingSignRequest {
    PendingSignRequest {
        pair_id: Uuid::from_u128(pair),
        request_id: Uuid::from_u128(id),
        request: CountersignedRequest { body, sp_sig, octane_sig },
    }
}

#[test]
fn a_sealed_request_opens_only_with_the_phone_key() {
    let phone = PushKeyPair::generate().unwrap();
    let other = PushKeyPair::generate().unwrap();
    let req = request(1, 2, vec![0xa1; 300], vec![7; 64], vec![8; 64]);
    let sealed = seal(&phone.public_key(), &PushContent::Request(req.clone())).unwrap();
    assert_eq!(sealed.first(), Some(&VERSION));
    assert_eq!(unseal(&phone, &sealed).unwrap(), PushContent::Request(req));
    assert_eq!(unseal(&other, &sealed), Err(PushError::Open));
}

#[test]
fn two_seals_of_the_same_request_differ() {
    let phone = PushKeyPair::generate().unwrap();
    let c = PushContent::RequestId { pair_id: Uuid::from_u128(1), request_id: Uuid::from_u128(2) };
    let a = seal(&phone.public_key(), &c).unwrap();
    let b = seal(&phone.public_key(), &c).unwrap();
    assert_ne!(a, b);
    assert_eq!(unseal(&phone, &a).unwrap(), c);
    assert_eq!(unseal(&phone, &b).unwrap(), c);
}

#[test]
fn every_flipped_bit_is_refused() {
    let phone = PushKeyPair::generate().unwrap();
    let c = PushContent::RequestId { pair_id: Uuid::from_u128(3), request_id: Uuid::from_u128(4) };
    let sealed = seal(&phone.public_key(), &c).unwrap();
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        if let Some(b) = bad.get_mut(i) {
            *b ^= 0x01;
        }
        let err = unseal(&phone, &bad).unwrap_err();
        if i == 0 {
            assert_eq!(err, PushError::UnsupportedVersion(VERSION ^ 1));
        } else {
            assert_eq!(err, PushError::Open, "byte {i}");
        }
    }
    assert_eq!(unseal(&phone, &sealed[..sealed.len() - 1]), Err(PushError::Open));
    assert_eq!(unseal(&phone, &sealed[..SEAL_OVERHEAD - 1]), Err(PushError::Truncated));
    assert_eq!(unseal(&phone, &[]), Err(PushError::Truncated));
}

#[test]
fn a_big_request_goes_by_id_and_a_small_one_whole() {
    let phone = PushKeyPair::generate().unwrap();
    let small = request(1, 2, vec![1; 400], vec![2; 64], vec![3; 64]);
    let s = seal_for_push(&phone.public_key(), &small).unwrap();
    assert!(s.carries_request);
    assert!(fits_platform_limit(s.bytes.len()));
    assert_eq!(unseal(&phone, &s.bytes).unwrap(), PushContent::Request(small));

    let big = request(1, 5, vec![1; MAX_SEALED_LEN], vec![2; 64], vec![3; 64]);
    let s = seal_for_push(&phone.public_key(), &big).unwrap();
    assert!(!s.carries_request);
    assert_eq!(
        unseal(&phone, &s.bytes).unwrap(),
        PushContent::RequestId { pair_id: Uuid::from_u128(1), request_id: Uuid::from_u128(5) }
    );
}

#[test]
fn the_largest_sealed_payload_fits_the_platform_limit_in_base64() {
    assert!(base64_len(MAX_SEALED_LEN) + JSON_ENVELOPE_ALLOWANCE <= PLATFORM_PAYLOAD_LIMIT);
    assert!(base64_len(MAX_SEALED_LEN + 3) + JSON_ENVELOPE_ALLOWANCE > PLATFORM_PAYLOAD_LIMIT);
    assert!(fits_platform_limit(MAX_SEALED_LEN));
    assert!(!fits_platform_limit(MAX_SEALED_LEN + 1));
    let phone = PushKeyPair::generate().unwrap();
    assert!(matches!(unseal(&phone, &vec![VERSION; MAX_UNSEAL_INPUT + 1]), Err(PushError::TooLarge { .. })));
}

#[test]
fn the_push_key_lives_in_the_secret_store() {
    let store = MemorySecretStore::default();
    assert!(PushKeyPair::load(&store).unwrap().is_none());
    let created = PushKeyPair::load_or_create(&store).unwrap();
    let again = PushKeyPair::load_or_create(&store).unwrap();
    assert_eq!(created.public_key(), again.public_key());
    let sealed =
        seal(&created.public_key(), &PushContent::RequestId { pair_id: Uuid::nil(), request_id: Uuid::nil() }).unwrap();
    assert!(unseal(&again, &sealed).is_ok());
    // Debug shows a fingerprint, never the secret.
    let secret_hex = hex::encode(store.get(PUSH_KEY_SECRET_NAME).unwrap().unwrap().as_slice());
    assert!(!format!("{again:?}").contains(&secret_hex));
    store.put(PUSH_KEY_SECRET_NAME, b"short").unwrap();
    assert!(matches!(PushKeyPair::load(&store), Err(PushError::Secret(SecretError::Corrupt { .. }))));
}

#[test]
fn a_low_order_public_key_is_refused() {
    let zero = PushPublicKey(Key32([0; 32]));
    let c = PushContent::RequestId { pair_id: Uuid::nil(), request_id: Uuid::nil() };
    assert_eq!(seal(&zero, &c), Err(PushError::BadPublicKey));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seal_then_unseal_gives_back_the_content(
        pair in any::<u128>(), id in any::<u128>(), whole in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..1500),
        sp_sig in proptest::collection::vec(any::<u8>(), 0..80),
        octane_sig in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let phone = PushKeyPair::generate().unwrap();
        let content = if whole {
            PushContent::Request(request(pair, id, body, sp_sig, octane_sig))
        } else {
            PushContent::RequestId { pair_id: Uuid::from_u128(pair), request_id: Uuid::from_u128(id) }
        };
        let sealed = seal(&phone.public_key(), &content).unwrap();
        prop_assert_eq!(unseal(&phone, &sealed).unwrap(), content);
    }

    #[test]
    fn unseal_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let phone = PushKeyPair::generate().unwrap();
        prop_assert!(unseal(&phone, &bytes).is_err());
    }

    #[test]
    fn unseal_never_panics_on_a_versioned_prefix(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let phone = PushKeyPair::generate().unwrap();
        let mut input = vec![VERSION];
        input.extend(bytes);
        prop_assert!(unseal(&phone, &input).is_err());
    }
}

#[test]
fn generated_keys_are_usable_and_low_order_points_are_not() {
    let store = MemorySecretStore::default();
    let key = PushKeyPair::load_or_create(&store).unwrap();
    assert!(key.public_key().is_usable());
    let mut one = [0u8; 32];
    one[0] = 1;
    // u = 0, u = 1, and u = p - 1 (order 2).
    let mut p_minus_one = [0xffu8; 32];
    p_minus_one[0] = 0xec;
    p_minus_one[31] = 0x7f;
    for low in [[0u8; 32], one, p_minus_one] {
        assert!(!PushPublicKey(Key32(low)).is_usable(), "{low:?}");
    }
}
