//! The core's [`sunstorm_core::secrets::SecretStore`] over the platform's [`SecretStore`].

use std::sync::Arc;

use sunstorm_core::secrets::{SecretError, SecretStore as CoreSecretStore};
use zeroize::Zeroizing;

use crate::platform::SecretStore;

/// Adapts the platform's secret store to the core's trait, checking names before they
/// reach the platform.
pub struct ForeignSecretStore {
    inner: Arc<dyn SecretStore>,
}

impl ForeignSecretStore {
    /// Wraps the platform's store.
    pub fn new(inner: Arc<dyn SecretStore>) -> Self {
        Self { inner }
    }
}

fn check_name(name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SecretError::BadName)
    }
}

impl CoreSecretStore for ForeignSecretStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecretError> {
        check_name(name)?;
        Ok(self.inner.get(name.to_string())?.map(Zeroizing::new))
    }
    fn put(&self, name: &str, value: &[u8]) -> Result<(), SecretError> {
        check_name(name)?;
        Ok(self.inner.put(name.to_string(), value.to_vec())?)
    }
    fn delete(&self, name: &str) -> Result<(), SecretError> {
        check_name(name)?;
        Ok(self.inner.delete(name.to_string())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SecretStoreError;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct MapStore(Mutex<HashMap<String, Vec<u8>>>);
    impl SecretStore for MapStore {
        fn get(&self, name: String) -> Result<Option<Vec<u8>>, SecretStoreError> {
            if name == "locked" {
                return Err(SecretStoreError::Unavailable { reason: "device locked".into() });
            }
            Ok(self.0.lock().unwrap().get(&name).cloned())
        }
        fn put(&self, name: String, value: Vec<u8>) -> Result<(), SecretStoreError> {
            self.0.lock().unwrap().insert(name, value);
            Ok(())
        }
        fn delete(&self, name: String) -> Result<(), SecretStoreError> {
            self.0.lock().unwrap().remove(&name);
            Ok(())
        }
    }

    #[test]
    fn round_trips_and_maps_platform_errors() {
        let s = ForeignSecretStore::new(Arc::new(MapStore::default()));
        assert_eq!(s.get("app.ed25519").unwrap(), None);
        s.put("app.ed25519", b"k").unwrap();
        assert_eq!(s.get("app.ed25519").unwrap().unwrap().as_slice(), b"k");
        s.delete("app.ed25519").unwrap();
        assert_eq!(s.get("app.ed25519").unwrap(), None);
        assert_eq!(s.put("../x", b"k"), Err(SecretError::BadName));
        assert!(matches!(s.get("locked"), Err(SecretError::Backend(r)) if r.contains("device locked")));
    }
}
