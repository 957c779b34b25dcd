//! Where the phone keeps its secrets (its channel and app keys): a [`SecretStore`], never
//! SQLite. The shells provide Keychain / Keystore stores through the FFI; the desktop uses
//! [`FileSecretStore`] (0600 files); tests use [`MemorySecretStore`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use zeroize::Zeroizing;

/// Why the secret store failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// The platform store refused or failed (locked keychain, I/O…).
    #[error("secret store failed: {0}")]
    Backend(String),
    /// A name outside `[A-Za-z0-9._-]{1,64}`.
    #[error("invalid secret name")]
    BadName,
    /// A stored secret is not what was written (wrong length, or gone right after a write).
    #[error("secret `{name}` is corrupt or missing")]
    Corrupt {
        /// The secret's name (never its value).
        name: String,
    },
}

/// A small key-value store for secrets.
pub trait SecretStore: Send + Sync {
    /// Reads a secret; `None` when absent.
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecretError>;
    /// Writes (or replaces) a secret.
    fn put(&self, name: &str, value: &[u8]) -> Result<(), SecretError>;
    /// Removes a secret; absent is not an error.
    fn delete(&self, name: &str) -> Result<(), SecretError>;
}

fn check_name(name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(SecretError::BadName)
    }
}

/// Secrets in memory, for tests.
#[derive(Default)]
pub struct MemorySecretStore {
    map: Mutex<HashMap<String, Zeroizing<Vec<u8>>>>,
}

impl SecretStore for MemorySecretStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecretError> {
        check_name(name)?;
        let map = self.map.lock().map_err(|_| SecretError::Backend("poisoned".into()))?;
        Ok(map.get(name).cloned())
    }
    fn put(&self, name: &str, value: &[u8]) -> Result<(), SecretError> {
        check_name(name)?;
        let mut map = self.map.lock().map_err(|_| SecretError::Backend("poisoned".into()))?;
        map.insert(name.to_string(), Zeroizing::new(value.to_vec()));
        Ok(())
    }
    fn delete(&self, name: &str) -> Result<(), SecretError> {
        check_name(name)?;
        let mut map = self.map.lock().map_err(|_| SecretError::Backend("poisoned".into()))?;
        map.remove(name);
        Ok(())
    }
}

/// Secrets as files with mode 0600 in a directory of mode 0700 (desktop).
#[derive(Debug, Clone)]
pub struct FileSecretStore {
    dir: PathBuf,
}

impl FileSecretStore {
    /// Uses (and creates, 0700) `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, SecretError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| SecretError::Backend(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| SecretError::Backend(e.to_string()))?;
        }
        Ok(Self { dir })
    }
}

impl SecretStore for FileSecretStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecretError> {
        check_name(name)?;
        match std::fs::read(self.dir.join(name)) {
            Ok(v) => Ok(Some(Zeroizing::new(v))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SecretError::Backend(e.to_string())),
        }
    }
    fn put(&self, name: &str, value: &[u8]) -> Result<(), SecretError> {
        use std::io::Write;
        check_name(name)?;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| SecretError::Backend(e.to_string()))?;
        f.write_all(value).map_err(|e| SecretError::Backend(e.to_string()))?;
        f.sync_all().map_err(|e| SecretError::Backend(e.to_string()))?;
        std::fs::rename(&tmp, self.dir.join(name)).map_err(|e| SecretError::Backend(e.to_string()))
    }
    fn delete(&self, name: &str) -> Result<(), SecretError> {
        check_name(name)?;
        match std::fs::remove_file(self.dir.join(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SecretError::Backend(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trip_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileSecretStore::new(dir.path().join("secrets")).unwrap();
        assert_eq!(s.get("phone.static").unwrap(), None);
        s.put("phone.static", b"k").unwrap();
        assert_eq!(s.get("phone.static").unwrap().unwrap().as_slice(), b"k");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secrets/phone.static")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        s.delete("phone.static").unwrap();
        assert_eq!(s.get("phone.static").unwrap(), None);
        assert_eq!(s.put("../x", b"k"), Err(SecretError::BadName));
    }
}
