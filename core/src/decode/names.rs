//! Names for addresses on the review screen: the user's own label from the address book
//! ([`DecodeContext::book`]) first, else the verified metadata bundle's name for the
//! address (a contract's name, else a token's name, [`DecodeContext::clear`]).
//!
//! A named address is never shown by its name alone: the shortened checksummed address
//! follows, so the user can still check it against another screen, and a user's label is
//! marked as theirs so it cannot pass for a bundle name:
//!
//! - bundle name: `Uniswap V3 Router (0x68b3…Fc45)`
//! - the user's label: `Alice (your label, 0xd8dA…6045)`
//!
//! An address without a name is shown in full (EIP-55). Names pass the sanitiser as
//! [`TextKind::Name`] before they are put together with the address.

use alloy_primitives::Address;

use super::{DecodeContext, DecodedPayload};
use crate::caip::{AccountId, ChainId};
use crate::display::TextKind;

/// What marks the user's own label on the screen (`Alice (your label, 0xd8dA…6045)`).
pub const USER_LABEL_MARK: &str = "your label";

/// Where the name of an address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressName {
    /// The user's own label, from their address book (bound per chain).
    User(String),
    /// The verified metadata bundle's name of the contract or token.
    Bundle(String),
}

impl DecodeContext<'_> {
    /// The name the phone knows for `address` on `chain`: the user's label, else the
    /// bundle's contract name, else the bundle's token name. Blank names are no names.
    pub fn address_name(&self, chain: &ChainId, address: &Address) -> Option<AddressName> {
        let ChainId::Evm(id) = chain else { return None };
        let filled = |s: &String| !s.trim().is_empty();
        if let Some(label) = self.book.label(*id, address).filter(filled) {
            return Some(AddressName::User(label));
        }
        let set = self.clear?;
        set.name(*id, address)
            .map(str::to_string)
            .filter(filled)
            .or_else(|| set.token(*id, address).map(|t| t.name.clone()).filter(filled))
            .map(AddressName::Bundle)
    }
}

/// `0x68b3…Fc45`: the first four and last four hex digits of the checksummed address.
pub fn short_address(chain_id: u64, address: &Address) -> String {
    AccountId::evm(chain_id, address.into_array()).short_address()
}

/// A user's (already sanitised) label as shown: `Alice (your label, 0xd8dA…6045)`.
pub(super) fn marked_label(label: &str, chain_id: u64, address: &Address) -> String {
    format!("{label} ({USER_LABEL_MARK}, {})", short_address(chain_id, address))
}

impl DecodedPayload {
    /// How `address` is shown: named (see the module documentation) when the phone knows
    /// a name, else in full. The name passes the sanitiser (warnings noted).
    pub(super) fn address(&mut self, ctx: &DecodeContext<'_>, address: &Address) -> String {
        let chain = self.chain.clone();
        let ChainId::Evm(id) = chain else { return address.to_checksum(None) };
        match ctx.address_name(&chain, address) {
            None => address.to_checksum(None),
            Some(AddressName::User(label)) => {
                let label = self.sanitized(&label, TextKind::Name);
                marked_label(&label, id, address)
            }
            Some(AddressName::Bundle(name)) => {
                let name = self.sanitized(&name, TextKind::Name);
                format!("{name} ({})", short_address(id, address))
            }
        }
    }
}
