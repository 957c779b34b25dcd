//! The metadata index: the bundle in use, cut into rows a notification extension can read
//! one at a time (ADR 0032, docs/metadata.md "The extension's index").
//!
//! Verifying and parsing a whole bundle costs hundreds of milliseconds and tens of MiB,
//! more than a notification extension may spend. So when the **app** puts a verified bundle
//! in use (the shipped one or an update from octane) it also writes, in its database, one
//! row per lookup a render makes — the descriptors deployed at a contract
//! (`c:eip155:<chain>:<address>`), the EIP-712 descriptors of a verifying contract
//! (`m:…`) or of none (`u:`), a descriptor's files (`d:<path>`: it and its includes, as
//! the bundle carries them), a token (`t:eip155:<chain>/erc20:<address>`), a contract name
//! (`n:eip155:<chain>:<address>`) — plus a header (key `''`: format, bundle version,
//! SHA-256 and metadata key).
//!
//! Each row carries an HMAC-SHA256 over (the bundle's SHA-256 and version, its key, the
//! next key in order, its value) under a random **index key** that never leaves the
//! device: it lives in the [`SecretStore`] (under [`INDEX_SECRET_NAME`], shared with the
//! extension like the push key) together with the bundle's SHA-256, version and metadata
//! key. A fresh index key is drawn for every index written, so rows of an earlier index
//! (an older bundle, a rolled-back database) do not verify. The next key in each row makes
//! absence provable: a key not in the index falls strictly between a row's key and its
//! next key, so deleting a row is as visible as changing one.
//!
//! The extension ([`MetadataIndex::open`], read-only) checks the secret against its pinned
//! metadata key and the header; [`MetadataIndex::render_with`] then renders against a
//! partial [`DescriptorSet`], reads and checks the rows of the lookups it missed, and
//! renders again until nothing is missed — the render of the whole bundle, having read a
//! handful of rows. A row that does not authenticate is never used.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{name_key, parse_name_key, parse_token_key, token_key, verify_body, BundleBody, LoadedBundle};
use crate::cbor;
use crate::decode::erc7730::model::{include_paths, load_merged, Context};
use crate::decode::erc7730::{Descriptor, DescriptorSet, Lookup, TokenInfo};
use crate::secrets::{SecretError, SecretStore};
use crate::store::{MetadataIndexRow, Store, StoreError};

/// The secret store entry holding the index key and the bundle it indexes.
pub const INDEX_SECRET_NAME: &str = "metadata.index";

/// Version of the index layout.
const INDEX_FORMAT: u32 = 1;
/// Domain tag of the rows' MAC.
const MAC_DOMAIN: &[u8] = b"sigil/v1/metadata-index";
/// The header's key (sorts first).
const HEADER_KEY: &str = "";
/// The last row's next key: sorts after every key (they start with a lowercase letter).
const END_KEY: &str = "~";
/// Most render rounds [`MetadataIndex::render_with`] runs (each answers what the last one
/// missed; embedded calls nest at most 3 deep, so a handful suffice).
const MAX_ROUNDS: usize = 16;

/// Why the index cannot be used. `code()` is stable.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// No index (the app has not written one since it put a bundle in use).
    #[error("there is no metadata index")]
    Missing,
    /// The index is for another bundle or metadata key than the one the app uses.
    #[error("the metadata index is not the one of the bundle in use")]
    Stale,
    /// A row does not authenticate, or the rows do not form the chain they must.
    #[error("a metadata index row does not authenticate: {0}")]
    BadRow(String),
    /// An authenticated row does not decode (a bug of the writer, never trusted data).
    #[error("metadata index content: {0}")]
    Content(String),
    /// The lookups did not settle within the rounds allowed.
    #[error("the render kept asking for more metadata")]
    Unsettled,
    /// The database could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The secret store failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl IndexError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            IndexError::Missing => "metadata_index_missing",
            IndexError::Stale => "metadata_index_stale",
            IndexError::BadRow(_) => "metadata_index_bad_row",
            IndexError::Content(_) => "metadata_index_content",
            IndexError::Unsettled => "metadata_index_unsettled",
            IndexError::Store(_) => "store_error",
            IndexError::Secret(_) => "secret_store_error",
        }
    }
}

fn content(e: impl std::fmt::Display) -> IndexError {
    IndexError::Content(e.to_string())
}

/// What the secret store keeps: the index key and what it indexes.
#[derive(Serialize, Deserialize)]
struct IndexSecret {
    #[serde(with = "serde_bytes")]
    key: Vec<u8>,
    header: IndexHeader,
}

/// The header row's value; also what the secret pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IndexHeader {
    format: u32,
    version: u64,
    /// SHA-256 of the bundle file, lowercase hex.
    sha256: String,
    #[serde(with = "serde_bytes")]
    metadata_key: Vec<u8>,
}

type HmacSha256 = Hmac<Sha256>;

fn mac_of(
    key: &[u8],
    header: &IndexHeader,
    row_key: &str,
    next_key: &str,
    value: &[u8],
) -> Result<HmacSha256, IndexError> {
    // HMAC takes a key of any length: this does not fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).map_err(|_| content("the index key"))?;
    m.update(MAC_DOMAIN);
    m.update(&[0]);
    m.update(&header.version.to_be_bytes());
    for part in [header.sha256.as_bytes(), row_key.as_bytes(), next_key.as_bytes(), value] {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part);
    }
    Ok(m)
}

fn call_key(chain: u64, a: &alloy_primitives::Address) -> String {
    format!("c:{}", name_key(chain, a))
}
fn message_key(chain: u64, a: &alloy_primitives::Address) -> String {
    format!("m:{}", name_key(chain, a))
}
const UNBOUND_KEY: &str = "u:";
fn descriptor_key(path: &str) -> String {
    format!("d:{path}")
}
fn lookup_key(l: &Lookup) -> String {
    match l {
        Lookup::Call(c, a) => call_key(*c, a),
        Lookup::Message(c, a) => message_key(*c, a),
        Lookup::UnboundMessages => UNBOUND_KEY.to_string(),
        Lookup::Token(c, a) => format!("t:{}", token_key(*c, a)),
        Lookup::Name(c, a) => format!("n:{}", name_key(*c, a)),
    }
}

/// The index's entries (key → value) for a verified bundle: `descriptors` are `body`'s,
/// parsed, in `body.descriptors`' order.
fn entries(
    body: &BundleBody,
    descriptors: &[Descriptor],
    header: &IndexHeader,
) -> Result<BTreeMap<String, Vec<u8>>, IndexError> {
    if descriptors.len() != body.descriptors.len() {
        return Err(content("the parsed descriptors are not the bundle's"));
    }
    let mut lists: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (path, d) in body.descriptors.iter().zip(descriptors) {
        match &d.context {
            Context::Contract { deployments, .. } => {
                for dep in deployments {
                    lists.entry(call_key(dep.chain_id, &dep.address)).or_default().push(path);
                }
            }
            Context::Eip712 { deployments, .. } => {
                if deployments.is_empty() {
                    lists.entry(UNBOUND_KEY.to_string()).or_default().push(path);
                }
                for dep in deployments {
                    lists.entry(message_key(dep.chain_id, &dep.address)).or_default().push(path);
                }
            }
        }
        let mut files = BTreeMap::new();
        for p in include_paths(&body.files, path).map_err(content)? {
            let text = body.files.get(&p).ok_or_else(|| content(format!("missing {p}")))?;
            files.insert(p, text.as_str());
        }
        out.insert(descriptor_key(path), cbor::to_vec(&files).map_err(content)?);
    }
    for (k, list) in lists {
        out.insert(k, cbor::to_vec(&list).map_err(content)?);
    }
    for (k, t) in &body.tokens {
        let (c, a) = parse_token_key(k).ok_or_else(|| content(format!("token key {k}")))?;
        out.insert(lookup_key(&Lookup::Token(c, a)), cbor::to_vec(t).map_err(content)?);
    }
    for (k, n) in &body.names {
        let (c, a) = parse_name_key(k).ok_or_else(|| content(format!("name key {k}")))?;
        out.insert(lookup_key(&Lookup::Name(c, a)), cbor::to_vec(n).map_err(content)?);
    }
    out.insert(HEADER_KEY.to_string(), cbor::to_vec(header).map_err(content)?);
    Ok(out)
}

/// The rows of `entries`, chained in key order and authenticated under `key`.
fn rows(
    entries: BTreeMap<String, Vec<u8>>,
    key: &[u8],
    header: &IndexHeader,
) -> Result<Vec<MetadataIndexRow>, IndexError> {
    let keys: Vec<String> = entries.keys().cloned().collect();
    entries
        .into_iter()
        .enumerate()
        .map(|(i, (k, value))| {
            let next_key = keys.get(i + 1).cloned().unwrap_or_else(|| END_KEY.to_string());
            let mac = mac_of(key, header, &k, &next_key, &value)?.finalize().into_bytes().to_vec();
            Ok(MetadataIndexRow { key: k, next_key, value, mac })
        })
        .collect()
}

fn header_of(metadata_key: &[u8; 32], bundle: &LoadedBundle) -> IndexHeader {
    IndexHeader {
        format: INDEX_FORMAT,
        version: bundle.version,
        sha256: bundle.sha256.clone(),
        metadata_key: metadata_key.to_vec(),
    }
}

fn read_secret(secrets: &dyn SecretStore) -> Result<Option<IndexSecret>, IndexError> {
    let Some(bytes) = secrets.get(INDEX_SECRET_NAME)? else { return Ok(None) };
    let secret: IndexSecret =
        cbor::from_slice(&bytes).map_err(|_| SecretError::Corrupt { name: INDEX_SECRET_NAME.into() })?;
    if secret.key.len() != 32 {
        return Err(SecretError::Corrupt { name: INDEX_SECRET_NAME.into() }.into());
    }
    Ok(Some(secret))
}

/// The app's side: makes the index in `store` (and its key in `secrets`) the one of
/// `bundle` (whose file is `bytes`, verified under `metadata_key`), unless it already is.
/// Returns whether it wrote a new index. A new index key is drawn; the rows are written in
/// one transaction, then the secret: an extension reading in between finds the index
/// stale and does not use it.
#[tracing::instrument(skip_all, fields(version = bundle.version))]
pub fn ensure_index(
    store: &Store,
    secrets: &dyn SecretStore,
    metadata_key: &[u8; 32],
    bytes: &[u8],
    bundle: &LoadedBundle,
) -> Result<bool, IndexError> {
    let header = header_of(metadata_key, bundle);
    if let Some(secret) = read_secret(secrets)? {
        if secret.header == header && read_header(store, &secret).is_ok() {
            return Ok(false);
        }
    }
    let body = verify_body(bytes, metadata_key).map_err(content)?;
    if body.version != bundle.version {
        return Err(content("the bundle file is not the bundle in use"));
    }
    let entries = entries(&body, bundle.set.descriptors(), &header)?;
    let mut key = Zeroizing::new(vec![0u8; 32]);
    OsRng.fill_bytes(&mut key);
    let rows = rows(entries, &key, &header)?;
    store.replace_metadata_index(&rows)?;
    let secret =
        Zeroizing::new(cbor::to_vec(&IndexSecret { key: key.to_vec(), header: header.clone() }).map_err(content)?);
    secrets.put(INDEX_SECRET_NAME, &secret)?;
    tracing::info!(rows = rows.len(), "metadata: index written for the extension");
    Ok(true)
}

/// The app's side when no bundle is in use: forgets the index key, so no extension uses
/// the index left in the database.
pub fn forget_index(secrets: &dyn SecretStore) -> Result<(), IndexError> {
    Ok(secrets.delete(INDEX_SECRET_NAME)?)
}

/// Reads and checks the header row against `secret`.
fn read_header(store: &Store, secret: &IndexSecret) -> Result<(), IndexError> {
    let row = store.metadata_index_floor(HEADER_KEY)?.ok_or(IndexError::Missing)?;
    if row.key != HEADER_KEY {
        return Err(IndexError::Missing);
    }
    check_mac(&secret.key, &secret.header, &row)?;
    let header: IndexHeader = cbor::from_slice(&row.value).map_err(content)?;
    if header != secret.header {
        return Err(IndexError::Stale);
    }
    Ok(())
}

fn check_mac(key: &[u8], header: &IndexHeader, row: &MetadataIndexRow) -> Result<(), IndexError> {
    mac_of(key, header, &row.key, &row.next_key, &row.value)?
        .verify_slice(&row.mac)
        .map_err(|_| IndexError::BadRow(format!("row `{}`", row.key)))
}

/// The extension's side: the index of the bundle the app uses, read row by row.
pub struct MetadataIndex {
    store: Arc<Store>,
    secret: IndexSecret,
}

impl std::fmt::Debug for MetadataIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataIndex").field("version", &self.secret.header.version).finish_non_exhaustive()
    }
}

impl Drop for IndexSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

impl MetadataIndex {
    /// Opens the index in `store` with the key from `secrets`: refused when there is none
    /// ([`IndexError::Missing`]), when it indexes a bundle under another metadata key than
    /// `metadata_key` or is not the one the secret names ([`IndexError::Stale`]), or when its
    /// header does not authenticate.
    #[tracing::instrument(skip_all)]
    pub fn open(store: Arc<Store>, secrets: &dyn SecretStore, metadata_key: &[u8; 32]) -> Result<Self, IndexError> {
        let secret = read_secret(secrets)?.ok_or(IndexError::Missing)?;
        if secret.header.metadata_key != metadata_key.as_slice() || secret.header.format != INDEX_FORMAT {
            return Err(IndexError::Stale);
        }
        read_header(&store, &secret)?;
        Ok(MetadataIndex { store, secret })
    }

    /// The indexed bundle's version.
    pub fn version(&self) -> u64 {
        self.secret.header.version
    }

    /// The authenticated value at `key`, or `None` when the index proves there is none.
    fn value(&self, key: &str) -> Result<Option<Vec<u8>>, IndexError> {
        let row = self.store.metadata_index_floor(key)?.ok_or(IndexError::Missing)?;
        check_mac(&self.secret.key, &self.secret.header, &row)?;
        if row.key == key {
            return Ok(Some(row.value));
        }
        if row.key.as_str() < key && key < row.next_key.as_str() {
            return Ok(None);
        }
        Err(IndexError::BadRow(format!("no row proves whether `{key}` is indexed")))
    }

    /// Runs `render` against a partial set, answers from the index the lookups it missed,
    /// and runs it again until it misses nothing; returns that last result, which is what
    /// `render` gives with the whole bundle.
    pub fn render_with<T>(&self, mut render: impl FnMut(&DescriptorSet) -> T) -> Result<T, IndexError> {
        let mut set = DescriptorSet::partial();
        let mut loaded = HashMap::new();
        for _ in 0..MAX_ROUNDS {
            let out = render(&set);
            let misses = set.take_misses();
            if misses.is_empty() {
                return Ok(out);
            }
            for m in misses {
                self.answer(&mut set, &mut loaded, m)?;
            }
        }
        Err(IndexError::Unsettled)
    }

    fn answer(
        &self,
        set: &mut DescriptorSet,
        loaded: &mut HashMap<String, usize>,
        lookup: Lookup,
    ) -> Result<(), IndexError> {
        let value = self.value(&lookup_key(&lookup))?;
        match lookup {
            Lookup::Token(c, a) => {
                let t: Option<TokenInfo> = value.map(|v| cbor::from_slice(&v)).transpose().map_err(content)?;
                set.answer_token(c, a, t);
            }
            Lookup::Name(c, a) => {
                let n: Option<String> = value.map(|v| cbor::from_slice(&v)).transpose().map_err(content)?;
                set.answer_name(c, a, n);
            }
            Lookup::Call(..) | Lookup::Message(..) | Lookup::UnboundMessages => {
                let paths: Vec<String> =
                    value.map(|v| cbor::from_slice(&v)).transpose().map_err(content)?.unwrap_or_default();
                let mut ids = Vec::with_capacity(paths.len());
                for path in paths {
                    let id = match loaded.get(&path) {
                        Some(id) => *id,
                        None => {
                            let id = set.add_descriptor(self.descriptor(&path)?);
                            loaded.insert(path, id);
                            id
                        }
                    };
                    ids.push(id);
                }
                set.answer_descriptors(lookup, ids);
            }
        }
        Ok(())
    }

    /// Parses the descriptor at `path` from its indexed files, as the whole bundle does.
    fn descriptor(&self, path: &str) -> Result<Descriptor, IndexError> {
        let v = self
            .value(&descriptor_key(path))?
            .ok_or_else(|| IndexError::BadRow(format!("descriptor `{path}` is listed but not indexed")))?;
        let files: BTreeMap<String, String> = cbor::from_slice(&v).map_err(content)?;
        Descriptor::from_json(path, &load_merged(&files, path).map_err(content)?).map_err(content)
    }
}
