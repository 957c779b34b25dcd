//! The facade's metadata calls: updating the signed metadata bundle from octane, what bundle
//! is in use, and the user's address book. Both feed the sign engine's review screens: a
//! newly verified bundle and every label change apply to the next request decoded.

use super::{default_transport, CoreError, Sunstorm};
use crate::address_book::AddressLabel;
use crate::audit::AuditEvent;
use crate::metadata::{MetadataError, MetadataStatus};
use crate::octane::client::OctaneConfig;
use crate::octane::metadata::{fetch_bundle, BundleFetch};

/// What [`Sunstorm::update_metadata`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataUpdate {
    /// A newer bundle verified, was cached and is in use.
    Updated {
        /// The version used before (`None`: no bundle was in use).
        from: Option<u64>,
        /// The version now in use.
        to: u64,
    },
    /// Octane serves the bundle already in use.
    Unchanged {
        /// The version in use.
        version: u64,
    },
}

impl Sunstorm {
    /// Asks octane for its metadata bundle (conditionally on the one in use, through the
    /// configured transport, within `metadata_timeout`), verifies it under the pinned
    /// metadata key, caches it and uses it from the next request on. A tampered, unsigned,
    /// older or unreadable bundle is refused with its [`MetadataError`] and the previous
    /// one stays in use; octane failures are [`CoreError::Octane`]. Needs no bond.
    #[tracing::instrument(skip_all)]
    pub async fn update_metadata(&self) -> Result<MetadataUpdate, CoreError> {
        let live = self.metadata.as_ref().ok_or(MetadataError::NotConfigured)?;
        let http = match &self.cfg.http {
            Some(h) => h.clone(),
            None => {
                let mut ocfg = OctaneConfig::new(self.cfg.octane_url.clone(), self.cfg.octane_key);
                ocfg.connect_timeout = self.cfg.octane_connect_timeout;
                default_transport(&ocfg)?
            }
        };
        let before = live.version();
        let etag = live.etag();
        let fetched =
            fetch_bundle(http.as_ref(), &self.cfg.octane_url, etag.as_deref(), self.cfg.metadata_timeout).await?;
        let bytes = match fetched {
            BundleFetch::NotModified => {
                return before.map(|version| MetadataUpdate::Unchanged { version }).ok_or_else(|| {
                    // Octane cannot match an entity tag the phone never sent.
                    CoreError::Octane(crate::octane::client::OctaneError::Protocol(
                        "304 without a bundle in use".into(),
                    ))
                });
            }
            BundleFetch::Bundle(bytes) => bytes,
        };
        // The bundle in use, sent again (octane without conditional requests): unchanged.
        if let (Some(version), Some(status)) = (before, live.status()) {
            use sha2::Digest;
            if hex::encode(sha2::Sha256::digest(&bytes)) == status.sha256 {
                return Ok(MetadataUpdate::Unchanged { version });
            }
        }
        let to = live.accept_update(&bytes)?;
        let sha256 = live.status().map(|s| s.sha256).unwrap_or_default();
        self.audit_metadata(AuditEvent::MetadataUpdated { version: to, sha256 }, "metadata");
        tracing::info!(from = ?before, to, "metadata: updated from octane");
        Ok(MetadataUpdate::Updated { from: before, to })
    }

    /// The metadata bundle in use (`None`: none is, or no metadata key is pinned).
    pub fn metadata_status(&self) -> Option<MetadataStatus> {
        self.metadata.as_ref().and_then(|m| m.status())
    }

    /// Labels `address` on `chain` (CAIP-2, EVM) as `label` in the user's address book;
    /// review screens show the label instead of the address from the next request on.
    pub fn set_address_label(&self, chain: &str, address: &str, label: &str) -> Result<AddressLabel, CoreError> {
        let set = self.book.set(chain, address, label)?;
        let event = AuditEvent::AddressLabelChanged { label: Some(set.label.clone()) };
        self.audit_metadata(event, &account_of(&set));
        Ok(set)
    }

    /// Removes the label of `address` on `chain`.
    pub fn remove_address_label(&self, chain: &str, address: &str) -> Result<(), CoreError> {
        let removed = self.book.remove(chain, address)?;
        self.audit_metadata(AuditEvent::AddressLabelChanged { label: None }, &account_of(&removed));
        Ok(())
    }

    /// Records `event` about `subject` in the audit log (a failed write is logged: the
    /// change itself stands).
    fn audit_metadata(&self, event: AuditEvent, subject: &str) {
        if let Err(e) = self.store.audit(self.clock.now_unix(), subject, &event) {
            tracing::warn!(error = %e, kind = event.kind(), "audit log write failed");
        }
    }

    /// The user's labels, all or those of `chain`, by chain then address.
    pub fn address_labels(&self, chain: Option<&str>) -> Result<Vec<AddressLabel>, CoreError> {
        Ok(self.book.list(chain)?)
    }
}

/// The CAIP-10 account a label names (`eip155:1:0xAbC…`), the audit entry's subject.
fn account_of(l: &AddressLabel) -> String {
    format!("{}:{}", l.chain, l.address.to_checksum(None))
}
