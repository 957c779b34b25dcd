//! Sign-request payloads on arbitrary bytes: the first byte picks the payload kind, the
//! rest is the payload. `signing_target` and `decode` never panic, agree on what is
//! signable, and a decoded payload keeps its documented invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sunstorm_core::caip::{AccountId, SOLANA_MAINNET};
use sunstorm_core::decode::decode;
use sunstorm_core::guardrails::{evaluate, Guardrails, SpendContext};
use sunstorm_core::model::PayloadKind;
use sunstorm_core::payload::{signing_target, verify_appliance_signature, SigningTarget};

fuzz_target!(|data: &[u8]| {
    let Some((kind, payload)) = data.split_first() else { return };
    let kind = match kind % 4 {
        0 => PayloadKind::EvmTransaction,
        1 => PayloadKind::Eip191Message,
        2 => PayloadKind::Eip712TypedData,
        _ => PayloadKind::SolanaTransaction,
    };
    let accounts = [AccountId::evm(1, [0x11; 20]), AccountId::solana(SOLANA_MAINNET, &[0x22; 32])];
    for account in &accounts {
        let target = signing_target(kind, payload, &account.chain);
        let decoded = decode(kind, payload, account);
        // Nothing unsignable is shown, nothing shown is unsignable.
        assert_eq!(target.is_ok(), decoded.is_ok());
        if let Ok(t) = &target {
            if let SigningTarget::Ed25519Message(m) = t {
                assert_eq!(m.as_slice(), payload);
            }
            // Garbage is never a valid signature.
            assert!(verify_appliance_signature(t, payload, account).is_err());
        }
        if let Ok(d) = decoded {
            assert_eq!(d.payload_hash.len(), 64);
            assert_eq!(d.blind, d.has_warning("blind_signing"));
            let v = evaluate(&Guardrails::default(), &d, &SpendContext::default());
            assert_eq!(d.blind, v.iter().any(|x| x.code() == "blind_signing_disabled"));
        }
    }
});
