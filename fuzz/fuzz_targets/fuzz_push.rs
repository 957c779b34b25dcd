//! Push payloads on arbitrary bytes: `unseal` never panics, whatever arrives. With the first
//! byte even the input is taken as sealed bytes (it never opens: the fuzzer cannot forge a
//! tag); odd, the rest is sealed as a push *plaintext* first, so the CBOR content parser
//! behind the AEAD is fuzzed too, and a content that opens seals back to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sunstorm_core::push::payload::fuzz_seal_plaintext;
use sunstorm_core::push::{seal, unseal, PushKeyPair};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else { return };
    let Ok(phone) = PushKeyPair::from_secret_bytes(&[0x42; 32]) else { return };
    if mode % 2 == 0 {
        assert!(unseal(&phone, rest).is_err());
        return;
    }
    let Ok(sealed) = fuzz_seal_plaintext(&phone.public_key(), rest) else { return };
    if let Ok(content) = unseal(&phone, &sealed) {
        let again = seal(&phone.public_key(), &content).expect("seals");
        assert_eq!(unseal(&phone, &again).ok(), Some(content));
    }
});
