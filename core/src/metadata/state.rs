//! The bundle in use: where it came from, and the rules for replacing it. A bundle replaces
//! the current one only when it verifies under the pinned key and is newer; on any refusal
//! the previous bundle stays in use.

use super::{load_body, open_bundle, verify_body, LoadedBundle, MetadataError};

/// Where the bundle in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleOrigin {
    /// The app's asset, handed in by the shell at start.
    Shipped,
    /// An update from octane (now, or cached from an earlier run).
    Octane,
}

impl BundleOrigin {
    /// A stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            BundleOrigin::Shipped => "shipped",
            BundleOrigin::Octane => "octane",
        }
    }
}

/// Where the phone keeps the last verified bundle from octane (SQLite in the app:
/// [`crate::store::SqliteBundleStore`]).
pub trait BundleStore {
    /// The stored bundle file, if any.
    fn load(&self) -> Result<Option<Vec<u8>>, MetadataError>;
    /// Replaces the stored bundle file with `bytes`, which opened as `bundle`.
    fn save(&self, bytes: &[u8], bundle: &LoadedBundle) -> Result<(), MetadataError>;
    /// Told which bundle is now in use (its file and what it opened as, verified under
    /// `key`; `None`: none), so the app's store can keep what depends on it — the index the
    /// notification extension reads ([`super::index`]). Never fails the caller: the bundle
    /// is in use either way (a store that cannot follow logs why).
    fn in_use(&self, _key: &[u8; 32], _bundle: Option<(&[u8], &LoadedBundle)>) {}
}

/// The bundle in use, and the rules for replacing it.
#[derive(Debug, Clone)]
pub struct MetadataState {
    key: [u8; 32],
    current: Option<(LoadedBundle, BundleOrigin)>,
}

impl MetadataState {
    /// No bundle yet; bundles must verify under `key`.
    pub fn new(key: [u8; 32]) -> Self {
        MetadataState { key, current: None }
    }

    /// Starts from the newest valid bundle among the stored one (an earlier update) and the
    /// one shipped with the app. Both signatures are checked; only the newest is parsed (the
    /// other one too if the newest's content does not parse). A bundle that does not verify
    /// is ignored and logged; the cached bundle is not rewritten. The store is then told
    /// which bundle is in use ([`BundleStore::in_use`]).
    pub fn start(key: [u8; 32], store: &dyn BundleStore, shipped: Option<&[u8]>) -> Self {
        let stored = match store.load() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(code = e.code(), error = %e, "metadata: the cached bundle could not be read");
                None
            }
        };
        let mut candidates = Vec::new();
        for (bytes, origin) in [(stored.as_deref(), BundleOrigin::Octane), (shipped, BundleOrigin::Shipped)] {
            let Some(bytes) = bytes else { continue };
            match verify_body(bytes, &key) {
                Ok(body) => candidates.push((body, bytes, origin)),
                Err(e) => {
                    tracing::warn!(code = e.code(), error = %e, origin = origin.code(), "metadata: bundle ignored")
                }
            }
        }
        // Newest first; at equal versions the shipped copy (the stored one adds nothing).
        candidates.sort_by_key(|(body, _, origin)| (std::cmp::Reverse(body.version), *origin == BundleOrigin::Octane));
        let mut state = MetadataState::new(key);
        let mut in_use = None;
        for (body, bytes, origin) in candidates {
            match load_body(bytes, body) {
                Ok(b) => {
                    tracing::info!(version = b.version, origin = origin.code(), "metadata: bundle in use");
                    state.current = Some((b, origin));
                    in_use = Some(bytes);
                    break;
                }
                Err(e) => {
                    tracing::warn!(code = e.code(), error = %e, origin = origin.code(), "metadata: bundle ignored")
                }
            }
        }
        store.in_use(&key, in_use.zip(state.current()));
        state
    }

    /// The bundle in use.
    pub fn current(&self) -> Option<&LoadedBundle> {
        self.current.as_ref().map(|(b, _)| b)
    }

    /// Where the bundle in use came from.
    pub fn origin(&self) -> Option<BundleOrigin> {
        self.current.as_ref().map(|(_, o)| *o)
    }

    /// The version in use.
    pub fn version(&self) -> Option<u64> {
        self.current().map(|b| b.version)
    }

    /// The pinned key bundles must verify under.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// Verifies `bytes` and, if it is newer, makes it current. On any error the previous
    /// bundle stays in use.
    pub fn offer(&mut self, bytes: &[u8], origin: BundleOrigin) -> Result<u64, MetadataError> {
        let loaded = open_bundle(bytes, &self.key, self.version())?;
        self.install(loaded, origin)
    }

    /// Like [`MetadataState::offer`] for a bundle from octane, and persists it in `store`
    /// first (a bundle that cannot be cached is not used: a restart would lose it).
    pub fn offer_and_store(&mut self, bytes: &[u8], store: &dyn BundleStore) -> Result<u64, MetadataError> {
        let loaded = open_bundle(bytes, &self.key, self.version())?;
        store.save(bytes, &loaded)?;
        let v = self.install(loaded, BundleOrigin::Octane)?;
        store.in_use(&self.key, Some(bytes).zip(self.current()));
        Ok(v)
    }

    /// Makes a bundle opened earlier (with [`super::open_bundle`] under this state's key)
    /// current, if it is still newer than the one in use: callers open a bundle without
    /// holding the state, then install it.
    pub fn install(&mut self, loaded: LoadedBundle, origin: BundleOrigin) -> Result<u64, MetadataError> {
        if let Some(current) = self.version().filter(|v| *v >= loaded.version) {
            return Err(MetadataError::NotNewer { current, offered: loaded.version });
        }
        let v = loaded.version;
        self.current = Some((loaded, origin));
        Ok(v)
    }
}
