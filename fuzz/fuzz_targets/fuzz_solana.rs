//! Serialized Solana messages on arbitrary bytes (seeds: transfers, SPL Token, v0 with
//! lookups), through `signing_target` and `decode`, for the fee payer and for a stranger.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sunstorm_core::caip::{AccountId, SOLANA_MAINNET};
use sunstorm_core::decode::decode;
use sunstorm_core::model::PayloadKind;
use sunstorm_core::payload::{parse_solana_message, signing_target};

fuzz_target!(|data: &[u8]| {
    let payer = parse_solana_message(data).ok().and_then(|m| m.fee_payer().copied());
    for key in [payer.unwrap_or([0x22; 32]), [0x22; 32]] {
        let account = AccountId::solana(SOLANA_MAINNET, &key);
        let target = signing_target(PayloadKind::SolanaTransaction, data, &account.chain);
        let decoded = decode(PayloadKind::SolanaTransaction, data, &account);
        assert_eq!(target.is_ok(), decoded.is_ok());
        let Ok(d) = decoded else { continue };
        assert_eq!(d.blind, d.has_warning("blind_signing"));
        // Only the fee payer pays the fee, and the worst case is bounded by the runtime's
        // limits: 5,000 per signature (≤ 255 + precompile counts) plus 1.4M units at most.
        if Some(key) != payer {
            assert_eq!(d.facts.max_fee, 0);
        }
        assert!(d.field_by_key("max_total").is_some());
    }
});
