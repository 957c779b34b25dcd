//! The one CBOR codec of the project: deterministic encoding (RFC 8949 §4.2.1) and strict,
//! bounded decoding. Used by the appliance protocol, signed envelopes, the simulators and
//! the CLI alike.

use ciborium::value::Value;
use serde::{de::DeserializeOwned, Serialize};

/// Deepest nesting a decoded item may have; deeper input is refused, not recursed into.
pub const MAX_DEPTH: usize = 32;

/// Why a CBOR item could not be encoded or decoded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CborError {
    /// The value could not be encoded (a type CBOR cannot carry, e.g. a non-finite float).
    #[error("could not encode CBOR: {0}")]
    Encode(String),
    /// The bytes are not one well-formed CBOR item of the expected shape.
    #[error("malformed CBOR: {0}")]
    Malformed(String),
    /// Bytes remained after the single top-level item.
    #[error("{0} trailing bytes after the CBOR item")]
    TrailingBytes(usize),
    /// The item decoded but is not in deterministic (canonical) form.
    #[error("CBOR is not in deterministic encoding")]
    NotCanonical,
}

/// Encodes `value` in deterministic CBOR: definite lengths, shortest integer forms (ciborium
/// always does both) and map keys sorted by their encoded bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CborError> {
    let v = Value::serialized(value).map_err(|e| CborError::Encode(e.to_string()))?;
    encode_value(canonicalize(v))
}

/// Decodes exactly one CBOR item from `bytes` into `T`, refusing trailing bytes and nesting
/// deeper than [`MAX_DEPTH`].
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CborError> {
    let mut reader = bytes;
    let value: T = ciborium::de::from_reader_with_recursion_limit(&mut reader, MAX_DEPTH)
        .map_err(|e| CborError::Malformed(e.to_string()))?;
    if !reader.is_empty() {
        return Err(CborError::TrailingBytes(reader.len()));
    }
    Ok(value)
}

/// Like [`from_slice`], and additionally requires `bytes` to be the deterministic encoding
/// of what they decode to. Used for everything that is signed, so one value has one encoding.
pub fn from_canonical_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CborError> {
    let value: Value = from_slice(bytes)?;
    // Canonical bytes have every map's keys in order already (checked without copying
    // or sorting), and encode back to themselves.
    if !maps_in_order(&value) {
        return Err(CborError::NotCanonical);
    }
    let mut again = Vec::with_capacity(bytes.len());
    ciborium::ser::into_writer(&value, &mut again).map_err(|e| CborError::Encode(e.to_string()))?;
    if again != bytes {
        return Err(CborError::NotCanonical);
    }
    value.deserialized().map_err(|e| CborError::Malformed(e.to_string()))
}

fn encode_value(v: Value) -> Result<Vec<u8>, CborError> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(&v, &mut out).map_err(|e| CborError::Encode(e.to_string()))?;
    Ok(out)
}

/// Sorts every map's entries by the bytewise order of their encoded keys (RFC 8949 §4.2.1).
fn canonicalize(v: Value) -> Value {
    match v {
        Value::Map(entries) => {
            let mut keyed: Vec<(Vec<u8>, (Value, Value))> = entries
                .into_iter()
                .map(|(k, val)| {
                    let k = canonicalize(k);
                    let enc = encode_value(k.clone()).unwrap_or_default();
                    (enc, (k, canonicalize(val)))
                })
                .collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(keyed.into_iter().map(|(_, kv)| kv).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonicalize).collect()),
        Value::Tag(t, inner) => Value::Tag(t, Box::new(canonicalize(*inner))),
        other => other,
    }
}

/// The order of two map keys in deterministic encoding: by their encoded bytes, which for
/// two text keys is by length, then bytes (the length is in the header).
fn key_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => x.len().cmp(&y.len()).then_with(|| x.as_bytes().cmp(y.as_bytes())),
        _ => encode_value(a.clone()).unwrap_or_default().cmp(&encode_value(b.clone()).unwrap_or_default()),
    }
}

/// Whether every map in `v` has its keys in deterministic order ([`canonicalize`] would
/// leave it as it is).
fn maps_in_order(v: &Value) -> bool {
    match v {
        Value::Map(entries) => {
            entries.windows(2).all(|w| match w {
                [a, b] => key_order(&a.0, &b.0) != std::cmp::Ordering::Greater,
                _ => true,
            }) && entries.iter().all(|(k, val)| maps_in_order(k) && maps_in_order(val))
        }
        Value::Array(items) => items.iter().all(maps_in_order),
        Value::Tag(_, inner) => maps_in_order(inner),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Msg {
        zeta: u64,
        alpha: String,
        #[serde(with = "serde_bytes")]
        blob: Vec<u8>,
        opt: Option<i32>,
    }

    #[test]
    fn keys_are_sorted_whatever_the_field_order() {
        let m = Msg { zeta: 1, alpha: "a".into(), blob: vec![1, 2], opt: None };
        let bytes = to_vec(&m).unwrap();
        // Map of 4; first key is "opt" (shortest encoding first), then "blob", "zeta", "alpha".
        assert_eq!(bytes[0], 0xa4);
        assert_eq!(&bytes[1..5], &[0x63, b'o', b'p', b't']);
        assert_eq!(from_canonical_slice::<Msg>(&bytes).unwrap(), m);
    }

    #[test]
    fn trailing_bytes_and_garbage_are_refused() {
        let mut bytes = to_vec(&7u8).unwrap();
        bytes.push(0);
        assert_eq!(from_slice::<u8>(&bytes), Err(CborError::TrailingBytes(1)));
        assert!(from_slice::<Msg>(&[0xff, 0x00, 0x13]).is_err());
        assert!(from_slice::<Msg>(&[]).is_err());
    }

    #[test]
    fn non_canonical_encoding_is_refused_for_signed_data() {
        // 1 encoded in a two-byte form instead of the shortest one.
        assert_eq!(from_canonical_slice::<u64>(&[0x18, 0x01]), Err(CborError::NotCanonical));
        assert_eq!(from_slice::<u64>(&[0x18, 0x01]), Ok(1));
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let bytes = vec![0x81; 100_000];
        assert!(from_slice::<Value>(&bytes).is_err());
    }

    proptest! {
        /// The text-key shortcut orders keys exactly as their encodings do.
        #[test]
        fn text_keys_order_as_their_encodings(a in ".{0,40}", b in ".{0,300}") {
            let (x, y) = (Value::Text(a), Value::Text(b));
            let by_bytes = encode_value(x.clone()).unwrap().cmp(&encode_value(y.clone()).unwrap());
            prop_assert_eq!(key_order(&x, &y), by_bytes);
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = from_slice::<Value>(&bytes);
            let _ = from_canonical_slice::<Msg>(&bytes);
        }

        #[test]
        fn round_trip_is_identity_and_canonical(zeta: u64, alpha in ".{0,40}", blob in proptest::collection::vec(any::<u8>(), 0..64), opt: Option<i32>) {
            let m = Msg { zeta, alpha, blob, opt };
            let bytes = to_vec(&m).unwrap();
            prop_assert_eq!(from_canonical_slice::<Msg>(&bytes).unwrap(), m.clone());
            prop_assert_eq!(to_vec(&m).unwrap(), bytes);
        }

        #[test]
        fn map_encoding_does_not_depend_on_insertion_order(entries in proptest::collection::vec((".{0,8}", any::<u32>()), 0..16)) {
            let a: BTreeMap<String, u32> = entries.iter().cloned().collect();
            let mut v = Value::serialized(&a).unwrap();
            if let Value::Map(ref mut m) = v { m.reverse(); }
            prop_assert_eq!(encode_value(canonicalize(v)).unwrap(), to_vec(&a).unwrap());
        }
    }
}
