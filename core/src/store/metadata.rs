//! The `metadata_bundle` table: one slot holding the last metadata bundle that verified when
//! it arrived from octane, as received. Its signature is checked again on every load
//! ([`crate::metadata::MetadataState::start`]): the row is a cache, never trusted as is.

use std::sync::Arc;

use rusqlite::{params, OptionalExtension};

use super::{as_i64, secs, Store, StoreError};
use crate::clock::Clock;
use crate::metadata::{BundleStore, LoadedBundle, MetadataError};

/// The cached bundle and what was recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBundle {
    /// Its content version.
    pub version: u64,
    /// SHA-256 of `bytes`, lowercase hex.
    pub sha256: String,
    /// Octane's entity tag for it (sent back as `If-None-Match`).
    pub etag: Option<String>,
    /// The signed bundle file, as received.
    pub bytes: Vec<u8>,
    /// When it was stored (Unix seconds).
    pub stored_at: u64,
}

impl Store {
    /// The cached metadata bundle, if any.
    pub fn metadata_bundle(&self) -> Result<Option<StoredBundle>, StoreError> {
        let conn = self.lock()?;
        let row = conn
            .prepare_cached("SELECT version, sha256, etag, bytes, stored_at FROM metadata_bundle WHERE slot = 1")?
            .query_row([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get::<_, Vec<u8>>(3)?, r.get::<_, i64>(4)?))
            })
            .optional()?;
        let Some((version, sha256, etag, bytes, stored_at)) = row else { return Ok(None) };
        Ok(Some(StoredBundle {
            version: secs("metadata_bundle.version", version)?,
            sha256,
            etag,
            bytes,
            stored_at: secs("metadata_bundle.stored_at", stored_at)?,
        }))
    }

    /// Replaces the cached metadata bundle.
    pub fn put_metadata_bundle(&self, b: &StoredBundle) -> Result<(), StoreError> {
        self.lock()?
            .prepare_cached(
                "INSERT INTO metadata_bundle (slot, version, sha256, etag, bytes, stored_at)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(slot) DO UPDATE SET version = excluded.version, sha256 = excluded.sha256,
                   etag = excluded.etag, bytes = excluded.bytes, stored_at = excluded.stored_at",
            )?
            .execute(params![as_i64(b.version), b.sha256, b.etag, b.bytes, as_i64(b.stored_at)])?;
        Ok(())
    }
}

/// Octane's entity tag for a bundle: its SHA-256 in quotes (`docs/octane-api.md`). The phone
/// derives it from the bundle it holds, so a conditional update needs no response header.
pub fn bundle_etag(sha256_hex: &str) -> String {
    format!("\"{sha256_hex}\"")
}

/// [`BundleStore`] over the store's `metadata_bundle` slot.
#[derive(Clone)]
pub struct SqliteBundleStore {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteBundleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteBundleStore")
    }
}

impl SqliteBundleStore {
    /// The cache in `store`; `clock` dates what is saved.
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }
}

fn storage(e: StoreError) -> MetadataError {
    MetadataError::Storage(e.to_string())
}

impl BundleStore for SqliteBundleStore {
    fn load(&self) -> Result<Option<Vec<u8>>, MetadataError> {
        Ok(self.store.metadata_bundle().map_err(storage)?.map(|b| b.bytes))
    }

    fn save(&self, bytes: &[u8], bundle: &LoadedBundle) -> Result<(), MetadataError> {
        let row = StoredBundle {
            version: bundle.version,
            sha256: bundle.sha256.clone(),
            etag: Some(bundle_etag(&bundle.sha256)),
            bytes: bytes.to_vec(),
            stored_at: self.clock.now_unix(),
        };
        self.store.put_metadata_bundle(&row).map_err(storage)
    }
}
