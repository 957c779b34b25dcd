//! The BLE reassembler on arbitrary PDUs: never a panic, never a message above the limit,
//! and it always recovers: after any input, a timeout and two clean messages, the second
//! is delivered intact.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sunstorm_core::ble::framing::{segment, Instant, Reassembler};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else { return };
    let max_len = 1 + usize::from(sel) * 16;
    let timeout = Duration::from_secs(10);
    let mut r = Reassembler::new(max_len, timeout);
    let t0 = Instant::now();
    let mut now = t0;
    // Records: [len: u8][pdu bytes]; len 0xFF means "time passes past the deadline".
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0xFF {
            now += timeout;
            r.expire(now);
            rest = tail;
            continue;
        }
        let n = usize::from(len).min(tail.len());
        let (pdu, tail) = tail.split_at(n);
        r.push(pdu, now);
        rest = tail;
        while let Some(item) = r.pop() {
            if let Ok(m) = item {
                assert!(m.len() <= max_len);
            }
        }
    }
    now += timeout;
    r.expire(now);
    while r.pop().is_some() {}
    let a = b"first".to_vec();
    let b = b"second message".to_vec();
    let id = sel & 0x7F;
    let mut last = None;
    for (m, id) in [(&a, id), (&b, id.wrapping_add(1))] {
        for pdu in segment(m, id, 20).unwrap_or_default() {
            r.push(&pdu, now);
        }
        while let Some(item) = r.pop() {
            last = Some(item);
        }
    }
    if b.len() <= max_len {
        assert_eq!(last, Some(Ok(b)));
    }
});
