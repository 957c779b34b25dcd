//! The phone's metadata at run time: the bundle in use, shared by the facade (updates,
//! status) and the sign engine (which reads the current descriptor set for each request,
//! so a newly verified bundle is used by the next request).

use std::sync::{Arc, RwLock};

use super::{open_bundle, BundleOrigin, BundleStore, MetadataError, MetadataState, Source};
use crate::decode::erc7730::DescriptorSet;
use crate::store::bundle_etag;

/// The bundle file shipped with the app (an asset the shell reads and hands in; never
/// compiled into the library). Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct ShippedBundle(pub Arc<[u8]>);

impl ShippedBundle {
    /// Wraps the asset's bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        ShippedBundle(bytes.into())
    }
}

impl std::fmt::Debug for ShippedBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShippedBundle({} bytes)", self.0.len())
    }
}

/// What the app shows about the bundle in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataStatus {
    /// Its content version.
    pub version: u64,
    /// SHA-256 of the bundle file, lowercase hex.
    pub sha256: String,
    /// Where it came from.
    pub origin: BundleOrigin,
    /// Its provenance (registry commit, token lists, licences).
    pub sources: Vec<Source>,
}

/// The bundle in use and its cache, behind a lock readers hold only to clone an `Arc`.
pub struct LiveMetadata {
    state: RwLock<MetadataState>,
    store: Arc<dyn BundleStore + Send + Sync>,
}

impl std::fmt::Debug for LiveMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveMetadata").finish_non_exhaustive()
    }
}

fn poisoned() -> MetadataError {
    MetadataError::Storage("the metadata state's lock was poisoned".into())
}

impl LiveMetadata {
    /// Starts from the newest verified of the cached bundle and the shipped one
    /// ([`MetadataState::start`]); `key` is the pinned metadata key.
    pub fn start(key: [u8; 32], store: Arc<dyn BundleStore + Send + Sync>, shipped: Option<&[u8]>) -> Self {
        let state = MetadataState::start(key, store.as_ref(), shipped);
        LiveMetadata { state: RwLock::new(state), store }
    }

    /// The descriptors, tokens and names of the bundle in use (`None`: no bundle).
    pub fn descriptors(&self) -> Option<Arc<DescriptorSet>> {
        self.state.read().ok()?.current().map(|b| Arc::clone(&b.set))
    }

    /// The bundle in use, for the app's status screen.
    pub fn status(&self) -> Option<MetadataStatus> {
        let state = self.state.read().ok()?;
        let b = state.current()?;
        Some(MetadataStatus {
            version: b.version,
            sha256: b.sha256.clone(),
            origin: state.origin()?,
            sources: b.sources.clone(),
        })
    }

    /// Octane's entity tag of the bundle in use, for a conditional update.
    pub fn etag(&self) -> Option<String> {
        let state = self.state.read().ok()?;
        state.current().map(|b| bundle_etag(&b.sha256))
    }

    /// The version in use.
    pub fn version(&self) -> Option<u64> {
        self.state.read().ok()?.version()
    }

    /// Verifies a bundle from octane, caches it and makes it current; returns its version.
    /// Verification runs without holding the state (requests keep decoding meanwhile). On
    /// any refusal (tampered, unsigned, not newer, unreadable content, cache failure) the
    /// previous bundle stays in use.
    pub fn accept_update(&self, bytes: &[u8]) -> Result<u64, MetadataError> {
        let (key, current) = {
            let state = self.state.read().map_err(|_| poisoned())?;
            (*state.key(), state.version())
        };
        let loaded = open_bundle(bytes, &key, current)?;
        let mut state = self.state.write().map_err(|_| poisoned())?;
        if let Some(current) = state.version().filter(|v| *v >= loaded.version) {
            return Err(MetadataError::NotNewer { current, offered: loaded.version });
        }
        self.store.save(bytes, &loaded)?;
        let v = state.install(loaded, BundleOrigin::Octane)?;
        // The index is written without holding the state: requests keep decoding meanwhile.
        let in_use = state.current().cloned();
        drop(state);
        self.store.in_use(&key, Some(bytes).zip(in_use.as_ref()));
        Ok(v)
    }
}
