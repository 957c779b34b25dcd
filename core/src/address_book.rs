//! The user's address book: their own names for addresses, per chain, shown instead of the
//! address on review screens (before the metadata bundle's contract names).
//!
//! Labels are checked when set — trimmed, non-empty, at most [`MAX_LABEL_CHARS`] characters,
//! nothing the display sanitiser would escape — and sanitised again when shown. The book
//! holds at most [`MAX_ENTRIES`] labels. Rows live in the store's `address_book` table; an
//! in-memory copy, refreshed on every change, answers the decoder
//! ([`crate::decode::erc7730::AddressBook`]) without touching SQLite.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use alloy_primitives::Address;

use crate::caip::{CaipError, ChainId};
use crate::clock::Clock;
use crate::decode::erc7730::AddressBook;
use crate::display::{clean, must_escape, TextKind};
use crate::store::{AddressBookRow, Store, StoreError};

/// Most characters in a label.
pub const MAX_LABEL_CHARS: usize = 64;

/// Most labels in the book.
pub const MAX_ENTRIES: usize = 1000;

/// Why an address book call was refused. `code()` is stable.
#[derive(Debug, thiserror::Error)]
pub enum AddressBookError {
    /// The chain is not a CAIP-2 chain id.
    #[error("not a chain id: {0}")]
    BadChain(CaipError),
    /// Labels are kept for EVM chains only (the only ones whose screens name addresses).
    #[error("address labels are only kept for EVM chains (eip155:…)")]
    UnsupportedChain,
    /// The address is not an EVM address (0x + 40 hex digits, a valid checksum if mixed case).
    #[error("not an EVM address (0x and 40 hex digits, with a valid checksum when mixed case)")]
    BadAddress,
    /// The label is empty once trimmed.
    #[error("the label is empty")]
    EmptyLabel,
    /// The label is longer than [`MAX_LABEL_CHARS`].
    #[error("the label is longer than {max} characters")]
    LabelTooLong {
        /// The most allowed.
        max: usize,
    },
    /// The label holds a character screens do not show as is (control, invisible, bidi).
    #[error("the label holds an invisible or control character (U+{0:04X})")]
    LabelCharacter(u32),
    /// The book already holds [`MAX_ENTRIES`] labels.
    #[error("the address book is full ({max} labels); remove one first")]
    Full {
        /// The most allowed.
        max: usize,
    },
    /// The address has no label on that chain.
    #[error("that address has no label on that chain")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AddressBookError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            AddressBookError::BadChain(_) => "address_book_bad_chain",
            AddressBookError::UnsupportedChain => "address_book_unsupported_chain",
            AddressBookError::BadAddress => "address_book_bad_address",
            AddressBookError::EmptyLabel => "address_book_empty_label",
            AddressBookError::LabelTooLong { .. } => "address_book_label_too_long",
            AddressBookError::LabelCharacter(_) => "address_book_label_character",
            AddressBookError::Full { .. } => "address_book_full",
            AddressBookError::NotFound => "address_book_not_found",
            AddressBookError::Store(_) => "store_error",
        }
    }
}

/// One label as the app lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressLabel {
    /// The chain.
    pub chain: ChainId,
    /// The address, EIP-55 checksummed.
    pub address: Address,
    /// The label, sanitised for display.
    pub label: String,
    /// When it was first added (Unix seconds).
    pub added_at: u64,
}

/// The user's address book: the store's rows and an in-memory copy for the decoder.
pub struct UserAddressBook {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    labels: RwLock<HashMap<(u64, Address), String>>,
}

impl std::fmt::Debug for UserAddressBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAddressBook").finish_non_exhaustive()
    }
}

/// An EVM chain id from CAIP-2 text.
fn evm_chain(chain: &str) -> Result<u64, AddressBookError> {
    match ChainId::from_str(chain.trim()).map_err(AddressBookError::BadChain)? {
        ChainId::Evm(id) => Ok(id),
        ChainId::Solana(_) => Err(AddressBookError::UnsupportedChain),
    }
}

/// An EVM address from text: 0x + 40 hex digits; a mixed-case one must be EIP-55.
fn evm_address(address: &str) -> Result<Address, AddressBookError> {
    let a = address.trim();
    let body = a.strip_prefix("0x").ok_or(AddressBookError::BadAddress)?;
    if body.len() != 40 || !body.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AddressBookError::BadAddress);
    }
    let single_case = !body.bytes().any(|b| b.is_ascii_uppercase()) || !body.bytes().any(|b| b.is_ascii_lowercase());
    if single_case {
        Address::from_str(a).map_err(|_| AddressBookError::BadAddress)
    } else {
        Address::parse_checksummed(a, None).map_err(|_| AddressBookError::BadAddress)
    }
}

/// The label as stored: trimmed, non-empty, short, nothing a screen would escape.
fn checked_label(label: &str) -> Result<String, AddressBookError> {
    let l = label.trim();
    if l.is_empty() {
        return Err(AddressBookError::EmptyLabel);
    }
    if l.chars().count() > MAX_LABEL_CHARS {
        return Err(AddressBookError::LabelTooLong { max: MAX_LABEL_CHARS });
    }
    if let Some(c) = l.chars().find(|c| must_escape(*c, TextKind::Name)) {
        return Err(AddressBookError::LabelCharacter(u32::from(c)));
    }
    Ok(l.to_string())
}

/// A stored row parsed back (`None` for a row this build cannot use, logged).
fn parse_row(row: &AddressBookRow) -> Option<AddressLabel> {
    let parsed = (ChainId::from_str(&row.chain).ok(), Address::from_str(&row.address).ok());
    match parsed {
        (Some(chain @ ChainId::Evm(_)), Some(address)) => {
            Some(AddressLabel { chain, address, label: clean(&row.label, TextKind::Name), added_at: row.added_at })
        }
        _ => {
            tracing::warn!("address book: a stored row is not an EVM label; skipped");
            None
        }
    }
}

impl UserAddressBook {
    /// The book kept in `store`, read into memory; `clock` dates new labels.
    pub fn load(store: Arc<Store>, clock: Arc<dyn Clock>) -> Result<Self, AddressBookError> {
        let book = UserAddressBook { store, clock, labels: RwLock::new(HashMap::new()) };
        book.refresh()?;
        Ok(book)
    }

    fn refresh(&self) -> Result<(), AddressBookError> {
        let mut fresh = HashMap::new();
        for l in self.store.address_book()?.iter().filter_map(parse_row) {
            if let ChainId::Evm(id) = l.chain {
                fresh.insert((id, l.address), l.label);
            }
        }
        match self.labels.write() {
            Ok(mut labels) => *labels = fresh,
            Err(_) => return Err(StoreError::Poisoned.into()),
        }
        Ok(())
    }

    /// Labels `address` on `chain` (CAIP-2) as `label`, replacing its label if it has one.
    #[tracing::instrument(skip_all)]
    pub fn set(&self, chain: &str, address: &str, label: &str) -> Result<AddressLabel, AddressBookError> {
        let id = evm_chain(chain)?;
        let address = evm_address(address)?;
        let label = checked_label(label)?;
        let row = AddressBookRow {
            chain: ChainId::Evm(id).to_string(),
            address: format!("{address:#x}"),
            label,
            added_at: self.clock.now_unix(),
        };
        if !self.store.put_address_label(&row, MAX_ENTRIES)? {
            return Err(AddressBookError::Full { max: MAX_ENTRIES });
        }
        self.refresh()?;
        tracing::info!("address book: label set");
        self.list(Some(&row.chain))?.into_iter().find(|l| l.address == address).ok_or(AddressBookError::NotFound)
    }

    /// Removes the label of `address` on `chain`; returns the label removed.
    #[tracing::instrument(skip_all)]
    pub fn remove(&self, chain: &str, address: &str) -> Result<AddressLabel, AddressBookError> {
        let id = evm_chain(chain)?;
        let address = evm_address(address)?;
        let chain = ChainId::Evm(id);
        let old = self.list(Some(&chain.to_string()))?.into_iter().find(|l| l.address == address);
        let Some(old) = old else { return Err(AddressBookError::NotFound) };
        if !self.store.remove_address_label(&chain.to_string(), &format!("{address:#x}"))? {
            return Err(AddressBookError::NotFound);
        }
        self.refresh()?;
        tracing::info!("address book: label removed");
        Ok(old)
    }

    /// Every label, or those of `chain` (CAIP-2), by chain then address.
    pub fn list(&self, chain: Option<&str>) -> Result<Vec<AddressLabel>, AddressBookError> {
        let only = chain.map(evm_chain).transpose()?.map(ChainId::Evm);
        let rows = self.store.address_book()?;
        Ok(rows.iter().filter_map(parse_row).filter(|l| only.as_ref().is_none_or(|c| *c == l.chain)).collect())
    }
}

impl AddressBook for UserAddressBook {
    fn label(&self, chain_id: u64, address: &Address) -> Option<String> {
        self.labels.read().ok()?.get(&(chain_id, *address)).cloned()
    }
}

#[cfg(test)]
mod tests;
