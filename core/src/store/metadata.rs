//! The `metadata_bundle` table: one slot holding the last metadata bundle that verified when
//! it arrived from octane, as received. Its signature is checked again on every load
//! ([`crate::metadata::MetadataState::start`]): the row is a cache, never trusted as is.

use std::sync::Arc;

use rusqlite::{params, OptionalExtension};

use super::{as_i64, secs, Store, StoreError};
use crate::clock::Clock;
use crate::metadata::{index, BundleStore, LoadedBundle, MetadataError};
use crate::secrets::SecretStore;

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

/// One row of the metadata index (`crate::metadata::index`), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataIndexRow {
    /// Its lookup key.
    pub key: String,
    /// The next key in order (the last row's is past every key).
    pub next_key: String,
    /// Its value (deterministic CBOR).
    pub value: Vec<u8>,
    /// Its HMAC-SHA256.
    pub mac: Vec<u8>,
}

impl Store {
    /// The metadata index row with the greatest key not above `key` (the row itself when it
    /// is there; else the row whose `next_key` says whether `key` could be).
    pub fn metadata_index_floor(&self, key: &str) -> Result<Option<MetadataIndexRow>, StoreError> {
        let conn = self.lock()?;
        let row = conn
            .prepare_cached(
                "SELECT key, next_key, value, mac FROM metadata_index WHERE key <= ?1 ORDER BY key DESC LIMIT 1",
            )?
            .query_row([key], |r| {
                Ok(MetadataIndexRow { key: r.get(0)?, next_key: r.get(1)?, value: r.get(2)?, mac: r.get(3)? })
            })
            .optional()?;
        Ok(row)
    }

    /// Replaces the whole metadata index with `rows`, in one transaction.
    pub fn replace_metadata_index(&self, rows: &[MetadataIndexRow]) -> Result<(), StoreError> {
        self.transaction(|tx| {
            tx.tx.prepare_cached("DELETE FROM metadata_index")?.execute([])?;
            let mut insert = tx
                .tx
                .prepare_cached("INSERT INTO metadata_index (key, next_key, value, mac) VALUES (?1, ?2, ?3, ?4)")?;
            for r in rows {
                insert.execute(params![r.key, r.next_key, r.value, r.mac])?;
            }
            Ok(())
        })
    }
}

/// Octane's entity tag for a bundle: its SHA-256 in quotes (`docs/octane-api.md`). The phone
/// derives it from the bundle it holds, so a conditional update needs no response header.
pub fn bundle_etag(sha256_hex: &str) -> String {
    format!("\"{sha256_hex}\"")
}

/// [`BundleStore`] over the store's `metadata_bundle` slot; with
/// [`SqliteBundleStore::with_index`] (the app), it also keeps the notification extension's
/// metadata index ([`crate::metadata::index`]) to the bundle in use.
#[derive(Clone)]
pub struct SqliteBundleStore {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    index_secrets: Option<Arc<dyn SecretStore>>,
}

impl std::fmt::Debug for SqliteBundleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteBundleStore")
    }
}

impl SqliteBundleStore {
    /// The cache in `store`; `clock` dates what is saved.
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock, index_secrets: None }
    }

    /// Also writes the metadata index of each bundle put in use, its key in `secrets`.
    pub fn with_index(self, secrets: Arc<dyn SecretStore>) -> Self {
        Self { index_secrets: Some(secrets), ..self }
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

    fn in_use(&self, key: &[u8; 32], bundle: Option<(&[u8], &LoadedBundle)>) {
        let Some(secrets) = &self.index_secrets else { return };
        let done = match bundle {
            Some((bytes, loaded)) => index::ensure_index(&self.store, secrets.as_ref(), key, bytes, loaded).map(|_| ()),
            None => index::forget_index(secrets.as_ref()),
        };
        if let Err(e) = done {
            tracing::warn!(code = e.code(), error = %e, "metadata: the extension's index could not be written");
        }
    }
}
