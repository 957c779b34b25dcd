//! Byte fields that serialize well in both of the project's formats: raw byte strings in
//! CBOR, base64url (no padding) or hex text in JSON.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A 32-byte value (an Ed25519 or X25519 public key, a hash): bytes in CBOR, hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Key32(pub [u8; 32]);

impl Key32 {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s).ok()?;
        Some(Key32(v.as_slice().try_into().ok()?))
    }
    /// A short fingerprint for people: the first 8 bytes in hex, grouped.
    pub fn fingerprint(&self) -> String {
        self.0
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|c| c.concat())
            .collect::<Vec<_>>()
            .join(":")
    }
}

impl From<[u8; 32]> for Key32 {
    fn from(b: [u8; 32]) -> Self {
        Key32(b)
    }
}

impl fmt::Debug for Key32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key32({})", self.to_hex())
    }
}

impl fmt::Display for Key32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Key32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Key32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Key32::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
        } else {
            let b: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
            let arr: [u8; 32] = b.as_slice().try_into().map_err(|_| serde::de::Error::custom("expected 32 bytes"))?;
            Ok(Key32(arr))
        }
    }
}

/// `#[serde(with = "sunstorm_core::bytes::b64")]` for `Vec<u8>`: bytes in CBOR, base64url
/// without padding in JSON.
pub mod b64 {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes bytes (see module docs).
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&URL_SAFE_NO_PAD.encode(v))
        } else {
            s.serialize_bytes(v)
        }
    }

    /// Deserializes bytes (see module docs).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            URL_SAFE_NO_PAD.decode(s.as_bytes()).map_err(serde::de::Error::custom)
        } else {
            let b: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
            Ok(b.into_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct T {
        k: Key32,
        #[serde(with = "b64")]
        b: Vec<u8>,
    }

    #[test]
    fn json_is_text_and_cbor_is_bytes() {
        let t = T { k: Key32([0xab; 32]), b: vec![1, 2, 3] };
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(j, format!("{{\"k\":\"{}\",\"b\":\"AQID\"}}", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<T>(&j).unwrap(), t);
        let c = crate::cbor::to_vec(&t).unwrap();
        assert_eq!(crate::cbor::from_canonical_slice::<T>(&c).unwrap(), t);
        assert!(c.len() < 50);
    }
}
