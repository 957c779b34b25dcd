//! The display digest: a commitment to exactly the screen the user reviewed (title, every
//! row's key, label and value, every warning's code and text), bound to the request id and
//! the payload hash. The phone records it in the sign history and the audit log, sends it to
//! the appliance with the request (which shows a short fingerprint and signs a receipt over
//! it) and returns it to the SP beside the three signatures. Anyone holding the screen (the
//! history's summary) can recompute it; `docs/signing.md` gives the encoding.
//!
//! Encoding: SHA-256 over [`DIGEST_DOMAIN`], then each item as a 4-byte big-endian length
//! and its bytes, in this order: the request id (16 bytes), the payload hash (32 bytes),
//! the title (UTF-8), the row count (4 bytes big-endian) and for each row its key, label
//! and value, then the warning count and for each warning its code and its text.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::DecodedPayload;

/// Domain separator of the display digest.
pub const DIGEST_DOMAIN: &[u8] = b"sigil/v1/display-digest";

/// SHA-256 commitment to one review screen (see the module documentation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DisplayDigest(pub [u8; 32]);

impl DisplayDigest {
    /// Lowercase hex (64 characters), as stored, sent and shown in full.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses [`DisplayDigest::hex`] (either case); `None` unless exactly 32 bytes of hex.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(DisplayDigest(out))
    }

    /// A short fingerprint for a person to compare between two screens: the first four
    /// bytes as uppercase hex in two groups ("3F9A-12C4").
    pub fn fingerprint(&self) -> String {
        let h = hex::encode_upper(&self.0[..4]);
        format!("{}-{}", &h[..4], &h[4..])
    }
}

impl fmt::Debug for DisplayDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DisplayDigest({})", self.hex())
    }
}

impl fmt::Display for DisplayDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

/// Hex text in JSON, 32 raw bytes in CBOR (as [`crate::bytes::Key32`]).
impl Serialize for DisplayDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for DisplayDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            DisplayDigest::from_hex(&s).ok_or_else(|| serde::de::Error::custom("a display digest is 64 hex digits"))
        } else {
            let b: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
            let arr: [u8; 32] =
                b.as_slice().try_into().map_err(|_| serde::de::Error::custom("a display digest is 32 bytes"))?;
            Ok(DisplayDigest(arr))
        }
    }
}

struct Hasher(Sha256);

impl Hasher {
    fn item(&mut self, bytes: &[u8]) {
        // Rows and labels are bounded far below 4 GiB (MAX_FIELDS, the sanitiser's caps).
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.0.update(len.to_be_bytes());
        self.0.update(bytes);
    }

    fn count(&mut self, n: usize) {
        self.item(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
    }
}

/// The display digest of `screen` as shown for request `request_id`.
pub fn display_digest(request_id: &Uuid, screen: &DecodedPayload) -> DisplayDigest {
    let rows: Vec<[&str; 3]> = screen.fields.iter().map(|f| [f.key.as_str(), &f.label, &f.value]).collect();
    let messages: Vec<String> = screen.warnings.iter().map(|w| w.message()).collect();
    let warnings: Vec<[&str; 2]> = screen.warnings.iter().zip(&messages).map(|(w, m)| [w.code(), m.as_str()]).collect();
    digest_of(request_id, &screen.payload_hash, &screen.title, &rows, &warnings)
}

/// The display digest recomputed from a screen as the sign history keeps it (the JSON
/// `summary` of a `SignRecord`: `title`, `payload_hash`, `fields` of `key`, `label`,
/// `value`, `warnings` of `code`, `message`) — what an auditor holding the history does.
/// `None` when the summary lacks one of these.
pub fn display_digest_of_summary(request_id: &Uuid, summary: &serde_json::Value) -> Option<DisplayDigest> {
    let list = |k: &str| summary.get(k).and_then(serde_json::Value::as_array);
    let rows = list("fields")?
        .iter()
        .map(|f| Some([text(f, "key")?, text(f, "label")?, text(f, "value")?]))
        .collect::<Option<Vec<_>>>()?;
    let warnings =
        list("warnings")?.iter().map(|w| Some([text(w, "code")?, text(w, "message")?])).collect::<Option<Vec<_>>>()?;
    Some(digest_of(request_id, text(summary, "payload_hash")?, text(summary, "title")?, &rows, &warnings))
}

/// The text of `v`'s field `k`.
fn text<'v>(v: &'v serde_json::Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(serde_json::Value::as_str)
}

/// The encoding of the module documentation.
fn digest_of(
    request_id: &Uuid,
    payload_hash: &str,
    title: &str,
    rows: &[[&str; 3]],
    warnings: &[[&str; 2]],
) -> DisplayDigest {
    let mut h = Hasher(Sha256::new());
    h.0.update(DIGEST_DOMAIN);
    h.item(request_id.as_bytes());
    let mut hash = [0u8; 32];
    // `payload_hash` is always our own SHA-256 hex; a malformed one commits as zeros plus
    // its text, so two different values can never collide.
    if hex::decode_to_slice(payload_hash, &mut hash).is_ok() {
        h.item(&hash);
    } else {
        h.item(payload_hash.as_bytes());
    }
    h.item(title.as_bytes());
    h.count(rows.len());
    for row in rows {
        for part in row {
            h.item(part.as_bytes());
        }
    }
    h.count(warnings.len());
    for w in warnings {
        for part in w {
            h.item(part.as_bytes());
        }
    }
    DisplayDigest(h.0.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caip::AccountId;
    use crate::decode::{decode, Field, Warning};
    use crate::model::PayloadKind;

    fn screen() -> DecodedPayload {
        let account: AccountId = "eip155:1:0x000000000000000000000000000000000000dEaD".parse().unwrap();
        decode(PayloadKind::Eip191Message, b"hello", &account).unwrap()
    }

    #[test]
    fn every_part_of_the_screen_changes_the_digest() {
        let id = Uuid::from_u128(7);
        let base = screen();
        let d = display_digest(&id, &base);
        assert_eq!(d, display_digest(&id, &base.clone()), "deterministic");
        assert_ne!(d, display_digest(&Uuid::from_u128(8), &base), "request id");
        let mut s = base.clone();
        s.title.push('!');
        assert_ne!(d, display_digest(&id, &s), "title");
        let mut s = base.clone();
        s.fields.push(Field { key: "k".into(), label: "L".into(), value: "v".into() });
        assert_ne!(d, display_digest(&id, &s), "a row");
        let mut s = base.clone();
        s.payload_hash = hex::encode([1u8; 32]);
        assert_ne!(d, display_digest(&id, &s), "payload hash");
        let mut s = base.clone();
        s.warnings.push(Warning::ContractCreation);
        assert_ne!(d, display_digest(&id, &s), "a warning");
    }

    #[test]
    fn the_history_summary_recomputes_the_same_digest() {
        let id = Uuid::from_u128(7);
        let mut s = screen();
        s.fields.push(Field { key: "k".into(), label: "L".into(), value: "v".into() });
        s.warnings.push(Warning::ContractCreation);
        let summary = serde_json::to_value(&s).unwrap();
        assert_eq!(display_digest_of_summary(&id, &summary), Some(display_digest(&id, &s)));
        let mut edited = summary.clone();
        edited["fields"][0]["value"] = "w".into();
        assert_ne!(display_digest_of_summary(&id, &edited), Some(display_digest(&id, &s)));
        let mut broken = summary;
        broken["warnings"] = serde_json::Value::Null;
        assert_eq!(display_digest_of_summary(&id, &broken), None);
    }

    #[test]
    fn rows_cannot_be_shifted_between_key_label_and_value() {
        let id = Uuid::from_u128(7);
        let mut a = screen();
        a.fields = vec![Field { key: "ab".into(), label: "c".into(), value: String::new() }];
        let mut b = screen();
        b.fields = vec![Field { key: "a".into(), label: "bc".into(), value: String::new() }];
        assert_ne!(display_digest(&id, &a), display_digest(&id, &b));
    }

    #[test]
    fn hex_and_fingerprint_round_trip() {
        let d = DisplayDigest([
            0x3f, 0x9a, 0x12, 0xc4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
        ]);
        assert_eq!(d.fingerprint(), "3F9A-12C4");
        assert_eq!(DisplayDigest::from_hex(&d.hex()), Some(d));
        assert_eq!(DisplayDigest::from_hex(&d.hex().to_uppercase()), Some(d));
        assert_eq!(DisplayDigest::from_hex("3f9a"), None);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{}\"", d.hex()));
        assert_eq!(serde_json::from_str::<DisplayDigest>(&json).unwrap(), d);
        let cbor = crate::cbor::to_vec(&d).unwrap();
        assert_eq!(cbor.len(), 2 + 32, "a byte string in CBOR");
        assert_eq!(crate::cbor::from_canonical_slice::<DisplayDigest>(&cbor).unwrap(), d);
    }
}
