//! Framing: segmentation/reassembly round trips at every MTU, specific errors for lost,
//! duplicated and reordered fragments, limits checked before allocation, efficiency.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::time::Duration;

use proptest::prelude::*;
use sunstorm_core::ble::framing::{framed_size, segment, FramingError, Reassembler, MAX_MESSAGE_LEN};
use tokio::time::Instant;

const TIMEOUT: Duration = Duration::from_secs(10);

fn reasm() -> Reassembler {
    Reassembler::new(MAX_MESSAGE_LEN, TIMEOUT)
}

/// Feeds all `pdus` and returns everything the reassembler produced.
fn feed(r: &mut Reassembler, pdus: &[Vec<u8>]) -> Vec<Result<Vec<u8>, FramingError>> {
    let now = Instant::now();
    let mut out = Vec::new();
    for p in pdus {
        r.push(p, now);
        while let Some(x) = r.pop() {
            out.push(x);
        }
    }
    out
}

fn msg(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn round_trip_any_mtu(mtu in 23usize..=517, data in proptest::collection::vec(any::<u8>(), 0..4000), id in any::<u8>()) {
        let pdus = segment(&data, id, mtu - 3).unwrap();
        prop_assert!(pdus.iter().all(|p| p.len() <= mtu - 3 && !p.is_empty()));
        prop_assert_eq!(framed_size(data.len(), mtu - 3), (pdus.len(), pdus.iter().map(Vec::len).sum()));
        let mut r = reasm();
        let out = feed(&mut r, &pdus);
        prop_assert_eq!(out, vec![Ok(data)]);
    }

    /// The fuzz target's invariant: after any input, a timeout and two clean messages,
    /// the second is delivered intact.
    #[test]
    fn always_recovers_after_garbage(pdus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..30), 0..30), id in 0u8..128) {
        let mut r = Reassembler::new(1000, TIMEOUT);
        let _ = feed(&mut r, &pdus);
        r.expire(Instant::now() + TIMEOUT);
        while r.pop().is_some() {}
        let a = segment(b"first", id, 20).unwrap();
        let b = segment(b"second message", id.wrapping_add(1), 20).unwrap();
        let out = feed(&mut r, &[a, b].concat());
        prop_assert_eq!(out.last(), Some(&Ok(b"second message".to_vec())));
    }

    #[test]
    fn arbitrary_pdus_never_panic(pdus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..40)) {
        let mut r = Reassembler::new(1000, TIMEOUT);
        for m in feed(&mut r, &pdus).into_iter().flatten() {
            prop_assert!(m.len() <= 1000);
        }
    }
}

#[test]
fn every_mtu_round_trips_a_few_sizes() {
    for mtu in 23..=517usize {
        for len in [0, 1, mtu - 6, mtu - 5, mtu - 4, 3 * mtu, 130 * (mtu - 4)] {
            let data = msg(len.min(MAX_MESSAGE_LEN));
            let pdus = segment(&data, (mtu % 128) as u8, mtu - 3).unwrap();
            let mut r = reasm();
            assert_eq!(feed(&mut r, &pdus), vec![Ok(data)], "mtu {mtu} len {len}");
        }
    }
}

#[test]
fn many_messages_in_a_row_and_seq_wraparound() {
    let mut r = reasm();
    for i in 0..300u32 {
        let data = msg(300 + i as usize * 7);
        let pdus = segment(&data, i as u8, 20).unwrap();
        assert_eq!(feed(&mut r, &pdus), vec![Ok(data)]);
    }
    // More than 128 continuations: seq wraps.
    let big = msg(MAX_MESSAGE_LEN);
    let pdus = segment(&big, 5, 20).unwrap();
    assert!(pdus.len() > 3000);
    assert_eq!(feed(&mut r, &pdus), vec![Ok(big)]);
}

fn three_messages() -> (Vec<Vec<u8>>, Vec<Vec<Vec<u8>>>) {
    let msgs = vec![msg(200), msg(150), msg(90)];
    let pdus = msgs.iter().enumerate().map(|(i, m)| segment(m, i as u8, 20).unwrap()).collect();
    (msgs, pdus)
}

#[test]
fn lost_middle_fragment_fails_only_that_message() {
    let (msgs, mut pdus) = three_messages();
    pdus[1].remove(3);
    let mut r = reasm();
    let out = feed(&mut r, &pdus.concat());
    assert_eq!(out, vec![Ok(msgs[0].clone()), Err(FramingError::LostFragment), Ok(msgs[2].clone())]);
}

#[test]
fn lost_tail_fails_by_next_start_or_timeout() {
    let (msgs, mut pdus) = three_messages();
    pdus[1].pop();
    let mut r = reasm();
    let out = feed(&mut r, &pdus.concat());
    assert_eq!(out, vec![Ok(msgs[0].clone()), Err(FramingError::LostFragment), Ok(msgs[2].clone())]);

    // The last message's tail: only the timeout can tell.
    let mut r = reasm();
    let mut last = segment(&msgs[0], 0, 20).unwrap();
    last.pop();
    let t0 = Instant::now();
    for p in &last {
        r.push(p, t0);
    }
    assert!(r.pop().is_none());
    assert!(r.in_progress());
    assert_eq!(r.deadline(), Some(t0 + TIMEOUT));
    r.expire(t0 + TIMEOUT - Duration::from_millis(1));
    assert!(r.pop().is_none());
    r.expire(t0 + TIMEOUT);
    assert_eq!(r.pop(), Some(Err(FramingError::ReassemblyTimeout)));
    assert!(!r.in_progress());
    // Still usable.
    assert_eq!(feed(&mut r, &segment(b"next", 1, 20).unwrap()), vec![Ok(b"next".to_vec())]);
}

#[test]
fn lost_start_is_reported() {
    let (msgs, mut pdus) = three_messages();
    pdus[1].remove(0);
    let mut r = reasm();
    let out = feed(&mut r, &pdus.concat());
    assert_eq!(out.first(), Some(&Ok(msgs[0].clone())));
    assert_eq!(out.last(), Some(&Ok(msgs[2].clone())));
    assert_eq!(out.len(), 3);
    assert!(matches!(out[1], Err(FramingError::LostFragment)), "{out:?}");
}

#[test]
fn duplicated_fragment_fails_with_duplicate() {
    let (msgs, mut pdus) = three_messages();
    let dup = pdus[1][4].clone();
    pdus[1].insert(5, dup);
    let mut r = reasm();
    let out = feed(&mut r, &pdus.concat());
    assert_eq!(out, vec![Ok(msgs[0].clone()), Err(FramingError::DuplicateFragment), Ok(msgs[2].clone())]);

    // A duplicated start while assembling.
    let (msgs, mut pdus) = three_messages();
    let dup = pdus[1][0].clone();
    pdus[1].insert(2, dup);
    let out = feed(&mut reasm(), &pdus.concat());
    assert_eq!(out, vec![Ok(msgs[0].clone()), Err(FramingError::DuplicateFragment), Ok(msgs[2].clone())]);
}

#[test]
fn late_duplicate_of_a_delivered_message_is_dropped_not_delivered_twice() {
    let single = segment(b"hello", 9, 20).unwrap();
    let mut r = reasm();
    let mut pdus = single.clone();
    pdus.extend(single);
    let out = feed(&mut r, &pdus);
    assert_eq!(out, vec![Ok(b"hello".to_vec())]);
    assert_eq!(r.duplicates_dropped(), 1);
}

#[test]
fn swapped_fragments_fail_with_out_of_order() {
    let (msgs, mut pdus) = three_messages();
    pdus[1].swap(3, 4);
    let out = feed(&mut reasm(), &pdus.concat());
    assert_eq!(out, vec![Ok(msgs[0].clone()), Err(FramingError::OutOfOrder), Ok(msgs[2].clone())]);

    // The start overtaken by its first continuation (fresh link).
    let (msgs, mut pdus) = three_messages();
    pdus[0].swap(0, 1);
    let out = feed(&mut reasm(), &pdus.concat());
    assert_eq!(out, vec![Err(FramingError::OutOfOrder), Ok(msgs[1].clone()), Ok(msgs[2].clone())]);
}

#[test]
fn oversize_header_is_refused_before_allocation() {
    // Announces 2^21 - 1 bytes: refused from the header alone.
    let mut r = reasm();
    r.push(&[0x80, 0xFF, 0xFF, 0x7F, 1, 2, 3], Instant::now());
    assert_eq!(r.pop(), Some(Err(FramingError::TooLarge { len: (1 << 21) - 1, max: MAX_MESSAGE_LEN })));
    // A configured lower limit.
    let mut r = Reassembler::new(100, TIMEOUT);
    let pdus = segment(&msg(101), 0, 100).unwrap();
    assert_eq!(feed(&mut r, &pdus), vec![Err(FramingError::TooLarge { len: 101, max: 100 })]);
    // And the sender refuses too.
    assert_eq!(
        segment(&msg(MAX_MESSAGE_LEN + 1), 0, 20),
        Err(FramingError::TooLarge { len: MAX_MESSAGE_LEN + 1, max: MAX_MESSAGE_LEN })
    );
    assert_eq!(segment(b"x", 0, 4), Err(FramingError::MtuTooSmall(7)));
}

#[test]
fn truncated_and_garbage_fragments_are_errors_not_panics() {
    let cases: Vec<Vec<u8>> = vec![
        vec![],                             // empty PDU
        vec![0x80],                         // start without length
        vec![0x80, 0x80],                   // truncated varint
        vec![0x80, 0x80, 0x80, 0x80, 0x01], // varint longer than 3 bytes
        vec![0x80, 0x81, 0x00],             // non-minimal varint
        vec![0x80, 0x02, 1, 2, 3],          // more data than announced
    ];
    for c in cases {
        let mut r = reasm();
        r.push(&c, Instant::now());
        assert!(matches!(r.pop(), Some(Err(FramingError::Malformed(_)))), "{c:?}");
        // Still usable afterwards.
        assert_eq!(feed(&mut r, &segment(b"ok", 1, 20).unwrap()), vec![Ok(b"ok".to_vec())]);
    }
    // A continuation overflowing the announced length.
    let mut r = reasm();
    let out = feed(&mut r, &[vec![0x80, 20, 1, 2, 3], vec![0x00; 20]]);
    assert!(matches!(out.as_slice(), [Err(FramingError::Malformed(_))]), "{out:?}");
}

/// payload bytes / PDU bytes (framing headers included, ATT header excluded), from the
/// actual fragments.
fn efficiency(len: usize, mtu: usize) -> (f64, f64) {
    let data = msg(len);
    let pdus = segment(&data, 0, mtu - 3).unwrap();
    let pdu_bytes: usize = pdus.iter().map(Vec::len).sum();
    let on_air = pdu_bytes + 3 * pdus.len();
    (len as f64 / pdu_bytes as f64, len as f64 / on_air as f64)
}

#[test]
fn efficiency_meets_ctap_thresholds() {
    let (e247, _) = efficiency(1024, 247);
    let (e23, _) = efficiency(1024, 23);
    assert!(e247 >= 0.99, "MTU 247: {e247}");
    assert!(e23 >= 0.94, "MTU 23: {e23}");
    // CTAP's own numbers on the same payload (3-byte init header, 1-byte continuation).
    let ctap = |mtu: usize| {
        let p = mtu - 3;
        let conts = (1024 - (p - 3)).div_ceil(p - 1);
        1024.0 / (1024 + 3 + conts) as f64
    };
    assert!(e247 >= ctap(247) && e23 >= ctap(23), "at least CTAP: {e247} {e23}");
}

#[test]
fn a_gap_is_failed_as_lost_after_the_grace_not_the_full_timeout() {
    use sunstorm_core::ble::framing::GAP_GRACE;
    let mut pdus = segment(&msg(200), 0, 20).unwrap();
    pdus.remove(4);
    pdus.truncate(5); // the fragment after the gap is the last one we see
    let mut r = reasm();
    let t0 = Instant::now();
    for p in &pdus {
        r.push(p, t0);
    }
    assert!(r.pop().is_none());
    assert_eq!(r.deadline(), Some(t0 + GAP_GRACE));
    r.expire(t0 + GAP_GRACE);
    assert_eq!(r.pop(), Some(Err(FramingError::LostFragment)));
}

#[test]
fn huge_timeout_means_never_not_a_panic() {
    let mut r = Reassembler::new(MAX_MESSAGE_LEN, Duration::MAX);
    let pdus = segment(&msg(100), 0, 20).unwrap();
    r.push(&pdus[0], Instant::now());
    assert!(r.in_progress());
    assert_eq!(r.deadline(), None);
    r.expire(Instant::now());
    assert!(r.pop().is_none());
}
