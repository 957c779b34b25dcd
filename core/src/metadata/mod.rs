//! The signed metadata bundle: ERC-7730 descriptors, a token list and contract names in one
//! versioned file, signed with Ed25519 by the metadata key (separate from octane's key).
//!
//! Encoding: deterministic CBOR ([`crate::cbor`]) of a [`SignedBundle`] `{body, sig}`, where
//! `body` is the deterministic CBOR of a [`BundleBody`] and `sig` is the
//! [`Domain::MetadataBundle`] signature over it ([`crate::envelope`], `verify_strict`).
//! Descriptor files travel as minified JSON text (their own standard format, key order
//! kept) and are parsed only after the signature holds. One value has one encoding, so the
//! bundle tool rebuilds the committed bundle byte for byte.
//!
//! [`open_bundle`] verifies and parses bytes; [`MetadataState`] keeps the newest verified
//! bundle and refuses tampered, unsigned and not-newer ones, keeping the previous one.

mod build;
pub mod index;
mod live;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::decode::erc7730::{ClearError, DescriptorSet, TokenInfo};
use crate::envelope::{verify_bytes, Domain, EnvelopeError};

pub use build::{
    build_body, minify_json, read_manifest, read_seed_hex, seal, BuildInput, Built, Manifest, ManifestRegistry,
    ManifestTokenList, TokenListSource,
};
pub use index::{IndexError, MetadataIndex, INDEX_SECRET_NAME};
pub use live::{LiveMetadata, MetadataStatus, ShippedBundle};
pub use state::{BundleOrigin, BundleStore, MetadataState};

/// Version of the bundle format (not of its content).
pub const BUNDLE_FORMAT: u32 = 1;

/// Largest bundle accepted, in bytes (checked before decoding).
pub const MAX_BUNDLE_LEN: usize = 16 * 1024 * 1024;

/// Public key of the documented **development** metadata key (seed in
/// `metadata/dev-metadata-key.hex`, signing the bundle committed in the repository).
/// Production builds pin the key of a metadata signer held outside the repository.
pub const DEV_METADATA_PUBLIC_KEY: [u8; 32] = [
    0xeb, 0xfe, 0x46, 0x19, 0xb3, 0x74, 0xc5, 0x65, 0xc8, 0x62, 0x9e, 0x2a, 0x7f, 0x1c, 0xb1, 0x01, 0x8e, 0x8c, 0x11,
    0x57, 0x88, 0x55, 0xd6, 0x5f, 0x0d, 0xf0, 0x9d, 0x0d, 0xfa, 0x4a, 0x88, 0xec,
];

/// Where part of a bundle came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// What it is ("LedgerHQ/clear-signing-erc7730-registry").
    pub name: String,
    /// Commit or package version.
    pub version: String,
    /// SPDX licence of the source.
    pub licence: String,
}

/// The signed content of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleBody {
    /// [`BUNDLE_FORMAT`].
    pub format: u32,
    /// Content version; a phone only accepts a bundle newer than the one it has.
    pub version: u64,
    /// Provenance.
    pub sources: Vec<Source>,
    /// Registry files by path (`registry/aave/calldata-lpv3.json`): minified JSON text.
    pub files: BTreeMap<String, String>,
    /// The files that are descriptors (the others are only included).
    pub descriptors: Vec<String>,
    /// Tokens by CAIP-19 id `eip155:<chain>/erc20:<lowercase address>`.
    pub tokens: BTreeMap<String, TokenInfo>,
    /// Contract names by CAIP-10 id `eip155:<chain>:<lowercase address>`.
    pub names: BTreeMap<String, String>,
}

/// The file: a body and the metadata key's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBundle {
    /// Deterministic CBOR of a [`BundleBody`].
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    /// Ed25519 signature over `"sigil/v1/metadata-bundle" || 0x00 || body`.
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
}

/// Why a bundle was refused. `code()` is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// Larger than [`MAX_BUNDLE_LEN`].
    #[error("the bundle is {0} bytes, more than allowed")]
    TooLarge(usize),
    /// Not a bundle file at all.
    #[error("not a metadata bundle: {0}")]
    Malformed(String),
    /// A bundle body without a signature.
    #[error("the metadata bundle is not signed")]
    Unsigned,
    /// The signature does not verify under the pinned metadata key.
    #[error("the metadata bundle's signature does not verify")]
    BadSignature,
    /// A format this build does not read.
    #[error("unsupported metadata bundle format {0}")]
    UnsupportedFormat(u32),
    /// Not newer than the bundle in use.
    #[error("metadata bundle version {offered} is not newer than {current}")]
    NotNewer {
        /// The version in use.
        current: u64,
        /// The version offered.
        offered: u64,
    },
    /// Signed, but its content does not parse (a bad descriptor, key or token).
    #[error("metadata bundle content: {0}")]
    BadContent(String),
    /// Signed, but a descriptor in it is not usable.
    #[error("a clear-signing descriptor in the metadata bundle is not usable")]
    Descriptor(#[from] ClearError),
    /// Signed, but its body is not canonical CBOR of a bundle.
    #[error("the metadata bundle's body does not decode")]
    Body(#[from] crate::cbor::CborError),
    /// The bundle could not be built (the tool), or the pinned key is not a key.
    #[error("metadata bundle: {0}")]
    Build(String),
    /// This build pins no metadata key: clear signing from a bundle is off.
    #[error("no metadata key is configured: clear signing from a metadata bundle is off")]
    NotConfigured,
    /// The phone's cache of the bundle could not be read or written.
    #[error("the metadata cache failed: {0}")]
    Storage(String),
}

impl MetadataError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            MetadataError::TooLarge(_) => "metadata_too_large",
            MetadataError::Malformed(_) => "metadata_malformed",
            MetadataError::Unsigned => "metadata_unsigned",
            MetadataError::BadSignature => "metadata_bad_signature",
            MetadataError::UnsupportedFormat(_) => "metadata_unsupported_format",
            MetadataError::NotNewer { .. } => "metadata_not_newer",
            MetadataError::BadContent(_) | MetadataError::Descriptor(_) | MetadataError::Body(_) => {
                "metadata_bad_content"
            }
            MetadataError::Build(_) => "metadata_build",
            MetadataError::Storage(_) => "metadata_storage",
            MetadataError::NotConfigured => "metadata_not_configured",
        }
    }
}

/// `eip155:<chain>/erc20:<lowercase address>`.
pub fn token_key(chain_id: u64, address: &Address) -> String {
    format!("eip155:{chain_id}/erc20:{address:#x}")
}

/// `eip155:<chain>:<lowercase address>`.
pub fn name_key(chain_id: u64, address: &Address) -> String {
    format!("eip155:{chain_id}:{address:#x}")
}

fn parse_token_key(k: &str) -> Option<(u64, Address)> {
    let rest = k.strip_prefix("eip155:")?;
    let (chain, addr) = rest.split_once("/erc20:")?;
    Some((chain.parse().ok()?, addr.parse().ok()?))
}

fn parse_name_key(k: &str) -> Option<(u64, Address)> {
    let rest = k.strip_prefix("eip155:")?;
    let (chain, addr) = rest.split_once(':')?;
    Some((chain.parse().ok()?, addr.parse().ok()?))
}

/// A verified, parsed bundle.
#[derive(Debug, Clone)]
pub struct LoadedBundle {
    /// Its content version.
    pub version: u64,
    /// Its provenance.
    pub sources: Vec<Source>,
    /// SHA-256 of the whole file, lowercase hex (for logs and the audit trail).
    pub sha256: String,
    /// The descriptors, tokens and names, ready to render.
    pub set: Arc<DescriptorSet>,
}

/// Verifies `bytes` under `key` and parses them. `current`: the version in use, which the
/// bundle must exceed. Nothing is parsed before the signature holds.
pub fn open_bundle(bytes: &[u8], key: &[u8; 32], current: Option<u64>) -> Result<LoadedBundle, MetadataError> {
    let result = open_inner(bytes, key, current);
    match &result {
        Ok(b) => {
            tracing::info!(version = b.version, sha256 = %b.sha256, "metadata bundle verified")
        }
        Err(e) => tracing::warn!(code = e.code(), error = %e, "metadata bundle refused"),
    }
    result
}

fn open_inner(bytes: &[u8], key: &[u8; 32], current: Option<u64>) -> Result<LoadedBundle, MetadataError> {
    let body = verify_body(bytes, key)?;
    if let Some(cur) = current {
        if body.version <= cur {
            return Err(MetadataError::NotNewer { current: cur, offered: body.version });
        }
    }
    load_body(bytes, body)
}

/// Checks `bytes`' size, signature under `key` and format, and decodes the body without
/// parsing its descriptors (cheap: tells which of several bundles is newest).
pub(crate) fn verify_body(bytes: &[u8], key: &[u8; 32]) -> Result<BundleBody, MetadataError> {
    if bytes.len() > MAX_BUNDLE_LEN {
        return Err(MetadataError::TooLarge(bytes.len()));
    }
    let signed: SignedBundle = match cbor::from_canonical_slice(bytes) {
        Ok(s) => s,
        Err(e) => {
            // A bare body is an unsigned bundle, not garbage: say so.
            if cbor::from_slice::<BundleBody>(bytes).is_ok() {
                return Err(MetadataError::Unsigned);
            }
            return Err(MetadataError::Malformed(e.to_string()));
        }
    };
    if signed.sig.is_empty() {
        return Err(MetadataError::Unsigned);
    }
    verify_bytes(Domain::MetadataBundle, key, &signed.body, &signed.sig).map_err(|e| match e {
        EnvelopeError::BadKey => MetadataError::Build("the pinned metadata key is invalid".into()),
        _ => MetadataError::BadSignature,
    })?;
    let body: BundleBody = cbor::from_canonical_slice(&signed.body)?;
    if body.format != BUNDLE_FORMAT {
        return Err(MetadataError::UnsupportedFormat(body.format));
    }
    Ok(body)
}

/// Parses a verified body (from [`verify_body`] over `bytes`) into a [`LoadedBundle`].
pub(crate) fn load_body(bytes: &[u8], body: BundleBody) -> Result<LoadedBundle, MetadataError> {
    let set = descriptor_set(&body)?;
    use sha2::Digest;
    Ok(LoadedBundle {
        version: body.version,
        sources: body.sources,
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        set: Arc::new(set),
    })
}

/// Parses a body's descriptors, tokens and names into a [`DescriptorSet`].
pub fn descriptor_set(body: &BundleBody) -> Result<DescriptorSet, MetadataError> {
    let descriptors = DescriptorSet::parse_files(&body.files, &body.descriptors)?;
    let mut tokens = Vec::with_capacity(body.tokens.len());
    for (k, t) in &body.tokens {
        let id = parse_token_key(k).ok_or_else(|| MetadataError::BadContent(format!("token key {k}")))?;
        tokens.push((id, t.clone()));
    }
    let mut names = Vec::with_capacity(body.names.len());
    for (k, n) in &body.names {
        let id = parse_name_key(k).ok_or_else(|| MetadataError::BadContent(format!("name key {k}")))?;
        names.push((id, n.clone()));
    }
    Ok(DescriptorSet::new(descriptors, tokens, names))
}

#[cfg(test)]
pub(crate) mod tests;
