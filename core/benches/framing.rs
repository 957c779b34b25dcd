//! Framing benchmark: efficiency of our BLE framing against models of Ledger's and CTAP's
//! BLE framings on the same payloads, and segment + reassemble throughput.
//!
//! Run: `cargo bench -p sunstorm-core --bench framing`. Prints Markdown tables (pasted in
//! `docs/ble-protocol.md`).

#![allow(clippy::indexing_slicing)] // reference models over known-length buffers, bench only

use std::hint::black_box;
use std::time::{Duration, Instant};

use sunstorm_core::ble::framing::{segment, Reassembler, MAX_MESSAGE_LEN};
use sunstorm_core::ble::transport::ATT_HEADER;

// ---------------------------------------------------------------------------------------
// REFERENCE MODELS FOR COMPARISON ONLY (never used by Sunstorm). Written from the public
// descriptions: Ledger's `sendAPDU` in ledgerjs (devices/src/ble/sendAPDU.ts: first chunk
// header tag 0x05 | index u16 BE | APDU length u16 BE, later chunks tag 0x05 | index u16 BE,
// chunk size = MTU size - header) and the FIDO CTAP 2.x BLE framing (initialization
// fragment CMD | HLEN | LLEN | DATA, continuation fragment SEQ | DATA, fragment size up to
// the control point length, here the full ATT payload mtu - 3).
// ---------------------------------------------------------------------------------------

/// Model of Ledger's BLE APDU chunking.
fn ledger_model(payload: &[u8], max_pdu: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = payload;
    let mut index: u16 = 0;
    loop {
        let header = if index == 0 { 5 } else { 3 };
        let take = (max_pdu - header).min(rest.len());
        let mut pdu = vec![0x05];
        pdu.extend_from_slice(&index.to_be_bytes());
        if index == 0 {
            pdu.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        pdu.extend_from_slice(&rest[..take]);
        out.push(pdu);
        rest = &rest[take..];
        index += 1;
        if rest.is_empty() {
            return out;
        }
    }
}

/// Model of CTAP's BLE framing (CMD = MSG 0x83).
fn ctap_model(payload: &[u8], max_pdu: usize) -> Vec<Vec<u8>> {
    let len = payload.len() as u16;
    let take = (max_pdu - 3).min(payload.len());
    let mut first = vec![0x83, (len >> 8) as u8, len as u8];
    first.extend_from_slice(&payload[..take]);
    let mut out = vec![first];
    let mut seq: u8 = 0;
    for chunk in payload[take..].chunks(max_pdu - 1) {
        let mut pdu = vec![seq];
        pdu.extend_from_slice(chunk);
        out.push(pdu);
        seq = (seq + 1) & 0x7F;
    }
    out
}

fn ours(payload: &[u8], max_pdu: usize) -> Vec<Vec<u8>> {
    segment(payload, 0, max_pdu).unwrap_or_default()
}

/// (payload / PDU bytes, payload / on-air bytes incl. the 3-byte ATT header, fragments).
fn measure(pdus: &[Vec<u8>], payload_len: usize) -> (f64, f64, usize) {
    let bytes: usize = pdus.iter().map(Vec::len).sum();
    let air = bytes + ATT_HEADER * pdus.len();
    (100.0 * payload_len as f64 / bytes as f64, 100.0 * payload_len as f64 / air as f64, pdus.len())
}

fn main() {
    let sizes = [32usize, 256, 1024, 4096];
    let mtus = [23usize, 185, 247, 517];
    println!("## Efficiency (payload bytes / bytes, %): excluding ATT header | including ATT header | PDUs\n");
    println!("| payload | MTU | ours | Ledger (model) | CTAP (model) |");
    println!("|--------:|----:|------|----------------|--------------|");
    for &len in &sizes {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        for &mtu in &mtus {
            let p = mtu - ATT_HEADER;
            let cell = |pdus: Vec<Vec<u8>>| {
                assert!(pdus.iter().all(|x| x.len() <= p));
                let (a, b, n) = measure(&pdus, len);
                format!("{a:.2} \\| {b:.2} \\| {n}")
            };
            println!(
                "| {len} | {mtu} | {} | {} | {} |",
                cell(ours(&payload, p)),
                cell(ledger_model(&payload, p)),
                cell(ctap_model(&payload, p))
            );
        }
    }

    println!("\n## Segment + reassemble throughput (ours)\n");
    println!("| message | MTU | iterations | MB/s | µs/message |");
    println!("|--------:|----:|-----------:|-----:|-----------:|");
    for (len, mtu) in [(1024usize, 23usize), (1024, 247), (65536, 247), (65536, 517)] {
        let len = len.min(MAX_MESSAGE_LEN);
        let payload: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
        let mut r = Reassembler::new(MAX_MESSAGE_LEN, Duration::from_secs(10));
        let budget = Duration::from_millis(700);
        let start = Instant::now();
        let mut iters = 0u64;
        while start.elapsed() < budget {
            let now = tokio::time::Instant::now();
            let pdus = segment(black_box(&payload), iters as u8, mtu - ATT_HEADER).unwrap_or_default();
            for pdu in &pdus {
                r.push(pdu, now);
            }
            let got = r.pop();
            assert!(matches!(got, Some(Ok(ref m)) if m.len() == len));
            black_box(got);
            iters += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        let mbs = (len as f64 * iters as f64) / secs / 1e6;
        println!("| {len} | {mtu} | {iters} | {mbs:.0} | {:.1} |", secs * 1e6 / iters as f64);
    }
}
