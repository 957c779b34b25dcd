//! The signed metadata bundle and the user's address book at the FFI: updating the bundle
//! from octane (through the app's `HttpClient`, like every octane call), which bundle is in
//! use, and the labels review screens show instead of addresses.

use sunstorm_core::address_book::AddressLabel;
use sunstorm_core::metadata::{BundleOrigin, MetadataStatus};
use sunstorm_core::sunstorm::MetadataUpdate;

use crate::cancel::CancelHandle;
use crate::error::SunstormError;
use crate::sunstorm::SunstormCore;
use crate::views::unix;

use std::sync::Arc;

/// Where the bundle in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MetadataOrigin {
    /// The app's own asset (`CoreConfig.metadata_bundle`).
    Shipped,
    /// An update from octane (`update_metadata`, now or in an earlier run).
    Octane,
}

/// One source the bundle was built from (for an "about" screen: what and under which
/// licence).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MetadataSourceView {
    /// What it is ("LedgerHQ/clear-signing-erc7730-registry").
    pub name: String,
    /// Its commit or package version.
    pub version: String,
    /// Its SPDX licence.
    pub licence: String,
}

/// The metadata bundle in use: the descriptors, tokens and contract names review screens
/// are rendered from.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MetadataStatusView {
    /// Its content version.
    pub version: i64,
    /// SHA-256 of the bundle file, 64 hex digits.
    pub sha256: String,
    /// Where it came from.
    pub origin: MetadataOrigin,
    /// Its provenance.
    pub sources: Vec<MetadataSourceView>,
}

impl From<MetadataStatus> for MetadataStatusView {
    fn from(s: MetadataStatus) -> Self {
        MetadataStatusView {
            version: unix(s.version),
            sha256: s.sha256,
            origin: match s.origin {
                BundleOrigin::Shipped => MetadataOrigin::Shipped,
                BundleOrigin::Octane => MetadataOrigin::Octane,
            },
            sources: s
                .sources
                .into_iter()
                .map(|x| MetadataSourceView { name: x.name, version: x.version, licence: x.licence })
                .collect(),
        }
    }
}

/// What `update_metadata` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MetadataUpdateView {
    /// A newer bundle verified, was stored and is used from the next request on.
    Updated {
        /// The version used before (`None`: none was).
        from: Option<i64>,
        /// The version now in use.
        to: i64,
    },
    /// Octane serves the bundle already in use.
    Unchanged {
        /// The version in use.
        version: i64,
    },
}

impl From<MetadataUpdate> for MetadataUpdateView {
    fn from(u: MetadataUpdate) -> Self {
        match u {
            MetadataUpdate::Updated { from, to } => MetadataUpdateView::Updated { from: from.map(unix), to: unix(to) },
            MetadataUpdate::Unchanged { version } => MetadataUpdateView::Unchanged { version: unix(version) },
        }
    }
}

/// One label of the user's address book.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AddressLabelView {
    /// CAIP-2 chain (`eip155:1`).
    pub chain: String,
    /// The chain's name ("Ethereum").
    pub chain_name: String,
    /// The address, EIP-55 checksummed.
    pub address: String,
    /// The label (sanitised).
    pub label: String,
    /// When it was first added (Unix seconds).
    pub added_at: i64,
}

impl From<AddressLabel> for AddressLabelView {
    fn from(l: AddressLabel) -> Self {
        AddressLabelView {
            chain: l.chain.to_string(),
            chain_name: l.chain.display_name(),
            address: l.address.to_checksum(None),
            label: l.label,
            added_at: unix(l.added_at),
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl SunstormCore {
    /// Asks octane for a newer metadata bundle (through the app's `HttpClient`, with a
    /// timeout), verifies it under the pinned metadata key, stores it and uses it from the
    /// next sign request on. `Unchanged` when octane serves the bundle in use. A tampered,
    /// unsigned or older bundle fails with `MetadataRefused { code }` and the bundle in use
    /// stays; `OctaneUnreachable` when octane cannot be reached; `InvalidConfig` when no
    /// metadata key is configured. Needs no bond. Call it at app start and now and then.
    #[uniffi::method(default(cancel = None))]
    pub async fn update_metadata(
        &self,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<MetadataUpdateView, SunstormError> {
        let s = self.facade.clone();
        self.run(cancel, async move { Ok(s.update_metadata().await?.into()) }).await
    }

    /// The metadata bundle in use (`None`: none, or no metadata key is configured).
    pub fn metadata_status(&self) -> Option<MetadataStatusView> {
        self.facade.metadata_status().map(MetadataStatusView::from)
    }

    /// Labels `address` on `chain` (CAIP-2, EVM chains) as `label` in the user's address
    /// book, replacing its label if it has one. Review screens show "label (your label,
    /// 0x1234…abcd)" instead of the address from the next request on. Fails with
    /// `InvalidAddressLabel { code }` naming what to fix.
    pub fn set_address_label(
        &self,
        chain: String,
        address: String,
        label: String,
    ) -> Result<AddressLabelView, SunstormError> {
        Ok(self.facade.set_address_label(&chain, &address, &label)?.into())
    }

    /// Removes the label of `address` on `chain` (`InvalidAddressLabel` with
    /// `address_book_not_found` when it has none).
    pub fn remove_address_label(&self, chain: String, address: String) -> Result<(), SunstormError> {
        Ok(self.facade.remove_address_label(&chain, &address)?)
    }

    /// The user's labels, all or those of `chain`, by chain then address.
    #[uniffi::method(default(chain = None))]
    pub fn address_labels(&self, chain: Option<String>) -> Result<Vec<AddressLabelView>, SunstormError> {
        Ok(self.facade.address_labels(chain.as_deref())?.into_iter().map(AddressLabelView::from).collect())
    }
}
