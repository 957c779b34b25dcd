//! EIP-712 typed data on arbitrary bytes (seeds: real and adversarial documents; dictionary:
//! `fuzz/dicts/eip712.dict`), through the phone's whole path: `signing_target` (bounded
//! parse, hash) and `decode` (display, meanings, sanitiser). Run with a per-input time
//! limit (`-timeout=`): a slow input is a finding, like a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sunstorm_core::caip::AccountId;
use sunstorm_core::decode::{decode, MESSAGE_LABEL_PREFIX};
use sunstorm_core::display::{must_escape, TextKind};
use sunstorm_core::model::PayloadKind;
use sunstorm_core::payload::signing_target;

fuzz_target!(|data: &[u8]| {
    let account = AccountId::evm(1, [0x11; 20]);
    let target = signing_target(PayloadKind::Eip712TypedData, data, &account.chain);
    let decoded = decode(PayloadKind::Eip712TypedData, data, &account);
    assert_eq!(target.is_ok(), decoded.is_ok());
    if let Err(e) = &decoded {
        assert!(!e.code().is_empty());
    }
    let Ok(d) = decoded else { return };
    assert_eq!(d.blind, d.has_warning("blind_signing"));
    for f in &d.fields {
        // Message fields never look like the phone's rows.
        assert_eq!(f.key.starts_with("message"), f.label.starts_with(MESSAGE_LABEL_PREFIX), "{f:?}");
        // Nothing invisible or line-breaking reaches a row.
        for c in f.label.chars().chain(f.value.chars()) {
            assert!(!must_escape(c, TextKind::Value) || matches!(c, '\u{fe0e}' | '\u{fe0f}'), "{c:?} in {f:?}");
        }
    }
    for w in &d.warnings {
        let m = w.message();
        assert!(!m.chars().any(|c| must_escape(c, TextKind::Value) && !matches!(c, '\u{fe0e}' | '\u{fe0f}')), "{m:?}");
    }
    // Unlimited approvals and recipients come with what the guardrails need.
    if d.facts.unlimited_approval {
        assert!(d.has_warning("unlimited_approval"));
    }
});
