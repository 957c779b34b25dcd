//! The appliance protocol decoder on arbitrary bytes (what arrives inside the secure
//! channel): never a panic; whatever decodes re-encodes and decodes back to the same value
//! (unknown map keys are ignored, so the bytes may differ).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sunstorm_core::appliance::proto::{decode_header, Request, Response};

fuzz_target!(|data: &[u8]| {
    let _ = decode_header(data);
    if let Ok(req) = Request::decode(data) {
        let again = req.encode().expect("a decoded request re-encodes");
        assert_eq!(Request::decode(&again).expect("round trip"), req);
    }
    if let Ok(resp) = Response::decode(data) {
        let again = resp.encode().expect("a decoded response re-encodes");
        assert_eq!(Response::decode(&again).expect("round trip"), resp);
    }
});
