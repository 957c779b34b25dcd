//! Unsigned EVM transactions on arbitrary bytes (seeds: mainnet transactions and token
//! calls), through `signing_target` and `decode` (calldata, token calls, fees, sanitiser).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sunstorm_core::caip::AccountId;
use sunstorm_core::decode::decode;
use sunstorm_core::model::PayloadKind;
use sunstorm_core::payload::signing_target;

fuzz_target!(|data: &[u8]| {
    for chain_id in [1u64, 56] {
        let account = AccountId::evm(chain_id, [0x11; 20]);
        let target = signing_target(PayloadKind::EvmTransaction, data, &account.chain);
        let decoded = decode(PayloadKind::EvmTransaction, data, &account);
        assert_eq!(target.is_ok(), decoded.is_ok());
        let Ok(d) = decoded else { continue };
        assert_eq!(d.blind, d.has_warning("blind_signing"));
        // The review shows the worst case, and it is value + fee.
        assert!(d.field_by_key("max_total").is_some());
        if d.facts.unlimited_approval {
            assert!(d.has_warning("unlimited_approval") || d.has_warning("approval_for_all"));
        }
        assert!(d.fields.iter().all(|f| !f.key.is_empty() && !f.key.starts_with("message")));
    }
});
