//! The review screen from an ERC-7730 descriptor (clear signing), when the verified
//! metadata bundle ([`DecodeContext::clear`]) has one for the payload.
//!
//! The phone's own decoders always run first: they compute the facts the guardrails use,
//! and they are the screen whenever no descriptor applies. When one applies:
//!
//! - **clear** (`Ok(Some(screen))`): the title is the descriptor's intent (interpolated
//!   when it can be), the rows are the descriptor's, keyed `clear.<path>` (the engine's
//!   key: the data path, or `contract` for "Interaction with") so that none can pass for a
//!   row of the phone's own, followed by the phone's envelope rows under their own keys
//!   (transactions: `to` — labelled "Contract called", as descriptors often label a
//!   recipient "To" —, `value`, `network`, `max_fee`, `max_total`; typed data:
//!   `network`, `domain.verifying_contract`). The engine's warnings become
//!   [`Warning::UnknownToken`] and [`Warning::Clear`]; of the decoders' warnings only those
//!   about what the payload grants are kept ([`Warning::UnlimitedApproval`],
//!   [`Warning::ApprovalForAll`], [`Warning::TypedDataWithoutChain`]). `blind` is false.
//!   The facts are the decoders', unchanged.
//! - **no descriptor** (`Ok(None)`): the decoders' screen.
//! - **the data does not fit the descriptor** (`Err`): the decoders' screen plus
//!   [`Warning::DescriptorMismatch`]; never shown as clear.
//!
//! The engine names addresses by itself (the user's label, else the bundle's name); the
//! user's labels reach it marked as theirs (`Alice (your label, 0xd8dA…6045)`, as on the
//! decoders' rows), so a label cannot pass for a bundle name.
//!
//! Calls are rendered with [`DescriptorSet::render_call`] (what `render_transaction` does
//! before it adds its own envelope rows, which the phone's replace) and typed data with
//! [`DescriptorSet::render_typed_data_on`], both for the signing account.

use std::cell::Cell;

use alloy_primitives::{Address, TxKind};

use super::erc7730::{AddressBook, CallInput, ClearError, ClearWarning, DescriptorSet, Screen};
use super::names::marked_label;
use super::{DecodeContext, DecodedPayload, Warning};
use crate::caip::{AccountId, ChainId};
use crate::display::{sanitize, TextKind};
use crate::payload::{EvmTx, ParsedPayload};

/// How the key of a row rendered from a descriptor starts (`clear._value`,
/// `clear.contract`). No row of the phone's own starts like this.
pub const CLEAR_KEY_PREFIX: &str = "clear.";

/// The label of the `to` row on a clear transaction screen.
const CONTRACT_LABEL: &str = "Contract called";

/// The phone's rows kept under a clear transaction screen, in this order.
const TX_ENVELOPE: &[&str] = &["to", "value", "network", "max_fee", "max_total"];
/// The phone's rows kept under a clear typed-data screen, in this order.
const TYPED_DATA_ENVELOPE: &[&str] = &["network", "domain.verifying_contract"];

/// `decoded` (the decoders' screen of `parsed`) as the descriptor shows it, when one
/// applies; see the module documentation.
pub(super) fn with_descriptor(
    decoded: DecodedPayload,
    parsed: &ParsedPayload,
    account: &AccountId,
    ctx: &DecodeContext<'_>,
) -> DecodedPayload {
    let Some(set) = ctx.clear else { return decoded };
    let ChainId::Evm(chain_id) = account.chain else { return decoded };
    let from = account.evm_address().map(Address::from);
    let book = MarkedBook { inner: ctx.book, escaped: Cell::new(false), truncated: Cell::new(false) };
    let (rendered, envelope) = match parsed {
        ParsedPayload::EvmTx(tx) => (render_tx(set, tx, chain_id, from, &book), TX_ENVELOPE),
        ParsedPayload::Eip712(td) => {
            let screen = set.render_typed_data_on(td, chain_id, from, &book);
            (screen.map(|s| s.map(without_engine_network)), TYPED_DATA_ENVELOPE)
        }
        ParsedPayload::Eip191 | ParsedPayload::Solana(_) => return decoded,
    };
    match rendered {
        Ok(None) => decoded,
        Ok(Some(screen)) => {
            let mut d = clear_screen(decoded, screen, envelope);
            if book.escaped.get() {
                d.warn(Warning::TextEscaped);
            }
            if book.truncated.get() {
                d.warn(Warning::TextTruncated);
            }
            d
        }
        Err(e) => mismatch(decoded, &e),
    }
}

/// The user's address book as the engine sees it: every label sanitised as a name and
/// marked as the user's; whether the sanitiser changed one is noted for the screen's
/// warnings.
struct MarkedBook<'a> {
    inner: &'a dyn AddressBook,
    escaped: Cell<bool>,
    truncated: Cell<bool>,
}

impl AddressBook for MarkedBook<'_> {
    fn label(&self, chain_id: u64, address: &Address) -> Option<String> {
        let label = self.inner.label(chain_id, address).filter(|l| !l.trim().is_empty())?;
        let clean = sanitize(&label, TextKind::Name);
        if clean.was_escaped() {
            self.escaped.set(true);
        }
        if clean.was_truncated() {
            self.truncated.set(true);
        }
        Some(marked_label(&clean.text, chain_id, address))
    }
}

/// The call of a transaction, rendered from its descriptor. `Ok(None)` for deployments,
/// plain transfers and calls without a descriptor.
fn render_tx(
    set: &DescriptorSet,
    tx: &EvmTx,
    chain_id: u64,
    from: Option<Address>,
    book: &dyn AddressBook,
) -> Result<Option<Screen>, ClearError> {
    let (kind, value, input) = match tx {
        EvmTx::Legacy(t) => (t.to, t.value, &t.input),
        EvmTx::Eip2930(t) => (t.to, t.value, &t.input),
        EvmTx::Eip1559(t) => (t.to, t.value, &t.input),
    };
    let TxKind::Call(to) = kind else { return Ok(None) };
    set.render_call(&CallInput { chain_id, to, data: input, value, from }, book)
}

/// A typed-data screen without the engine's closing `network` row (the phone's own
/// replaces it). The engine adds it last unless the screen was cut at its row cap.
fn without_engine_network(mut screen: Screen) -> Screen {
    let cut = screen.warnings.contains(&ClearWarning::TooManyRows);
    if !cut && screen.rows.last().is_some_and(|r| r.key == "network") {
        screen.rows.pop();
    }
    screen
}

/// The engine's warning as one of the phone's, its texts through the sanitiser.
fn warning_of(w: ClearWarning) -> Warning {
    let clean = |s: String| sanitize(&s, TextKind::Label).text;
    match w {
        ClearWarning::UnknownToken { token } => Warning::UnknownToken { token: clean(token) },
        ClearWarning::UnlimitedAmount { label } => {
            Warning::Clear(ClearWarning::UnlimitedAmount { label: clean(label) })
        }
        ClearWarning::UnknownEnumValue { label } => {
            Warning::Clear(ClearWarning::UnknownEnumValue { label: clean(label) })
        }
        ClearWarning::UnresolvedField { label } => {
            Warning::Clear(ClearWarning::UnresolvedField { label: clean(label) })
        }
        ClearWarning::NestedCallNotClear { callee } => {
            Warning::Clear(ClearWarning::NestedCallNotClear { callee: clean(callee) })
        }
        ClearWarning::EncryptedValue { label } => Warning::Clear(ClearWarning::EncryptedValue { label: clean(label) }),
        ClearWarning::InvalidDate { label } => Warning::Clear(ClearWarning::InvalidDate { label: clean(label) }),
        w @ (ClearWarning::TrailingCalldata { .. } | ClearWarning::TooManyRows | ClearWarning::SenderUnknown) => {
            Warning::Clear(w)
        }
    }
}

/// Warnings of the decoders that still hold on a clear screen: what the payload grants.
fn kept(w: &Warning) -> bool {
    matches!(w, Warning::UnlimitedApproval { .. } | Warning::ApprovalForAll { .. } | Warning::TypedDataWithoutChain)
}

fn clear_screen(decoded: DecodedPayload, screen: Screen, envelope: &[&str]) -> DecodedPayload {
    let span = tracing::debug_span!("clear_screen", descriptor = %screen.descriptor, rows = screen.rows.len());
    let _g = span.enter();
    let mut d = DecodedPayload {
        chain: decoded.chain.clone(),
        title: String::new(),
        fields: Vec::new(),
        warnings: Vec::new(),
        blind: false,
        payload_hash: decoded.payload_hash.clone(),
        facts: decoded.facts.clone(),
        descriptor: Some(sanitize(&screen.descriptor, TextKind::Value).text),
    };
    for w in decoded.warnings.iter().filter(|w| kept(w)) {
        d.warn(w.clone());
    }
    for w in screen.warnings {
        d.warn(warning_of(w));
    }
    d.title = d.sanitized(&screen.intent, TextKind::Label);
    for row in screen.rows {
        d.push_owned(format!("{CLEAR_KEY_PREFIX}{}", row.key), row.label, row.value, TextKind::Value);
    }
    for key in envelope {
        if let Some(f) = decoded.fields.iter().find(|f| f.key == *key) {
            // Descriptors often label a recipient "To": the called contract is named so.
            let label = if f.key == "to" { CONTRACT_LABEL.to_string() } else { f.label.clone() };
            d.push_owned(f.key.clone(), label, f.value.clone(), TextKind::Value);
        }
    }
    d
}

fn mismatch(mut decoded: DecodedPayload, e: &ClearError) -> DecodedPayload {
    tracing::debug!(code = e.code(), "a descriptor applies but the data does not fit it");
    let reason = sanitize(&e.to_string(), TextKind::Value).text;
    decoded.warn(Warning::DescriptorMismatch { error_code: e.code(), reason });
    decoded
}
