//! EIP-712 typed data for display: the domain, what the data means when the phone knows it
//! (recognised by primary type **and** the exact declared shape of every type involved),
//! then every message field as it is hashed, under `Message › …` labels.
//!
//! Known meanings — each sets the facts the guardrails use:
//!
//! | primary type | shape | facts |
//! |---|---|---|
//! | `Permit` (ERC-2612) | owner, spender, value, nonce, deadline | spender; approval of `value` of the verifying contract's token |
//! | `Permit` (DAI) | holder, spender, nonce, expiry, allowed | `allowed = true`: spender, unlimited approval |
//! | `PermitSingle` / `PermitBatch` (Permit2) | details (token, amount, expiration, nonce), spender, sigDeadline | spender; approval per token |
//! | `PermitTransferFrom` / `PermitBatchTransferFrom` (Permit2) | permitted (token, amount), spender, nonce, deadline | spender; transfer of up to `amount` per token |
//! | `TransferWithAuthorization` / `ReceiveWithAuthorization` (EIP-3009) | from, to, value, validAfter, validBefore, nonce | `to`; transfer of `value` |
//! | `CancelAuthorization` (EIP-3009) | authorizer, nonce | none |
//!
//! Amounts at or above 2^160 − 1 (Permit2's maximum) are unlimited. Anything else is blind.

use std::collections::BTreeMap;

use alloy_dyn_abi::eip712::Eip712Types;
use alloy_dyn_abi::{DynSolValue, TypedData};
use alloy_primitives::{Address, U256};

use super::evm::{addr, token_amount, unlimited_amount};
use super::units::format_unix_time;
use super::{DecodeContext, DecodeError, DecodedPayload, TokenAction, TokenFact, Warning, MESSAGE_LABEL_PREFIX};
use crate::caip::ChainId;
use crate::display::TextKind;

/// Deepest nesting shown (the payload limits keep typed data shallower; this is a guard).
const MAX_DEPTH: usize = 16;

pub(super) fn decode_typed_data(
    td: &TypedData,
    payload: &[u8],
    chain: &ChainId,
    ctx: &DecodeContext<'_>,
) -> Result<DecodedPayload, DecodeError> {
    // `decode` derived the signing target first: `td` is parsed, bounded, hashed and on
    // the request's chain.
    let mut d = DecodedPayload::new(chain, payload, "Sign typed data");
    d.push("network", "Network", format!("{} ({chain})", chain.display_name()));
    let dom = &td.domain;
    if let Some(n) = &dom.name {
        d.push_text("domain.name".into(), "Domain name".into(), n, TextKind::Name);
    }
    if let Some(v) = &dom.version {
        d.push_text("domain.version".into(), "Domain version".into(), v, TextKind::Name);
    }
    match dom.chain_id {
        Some(c) => d.push("domain.chain_id", "Domain chain ID", c.to_string()),
        None => d.warn(Warning::TypedDataWithoutChain),
    }
    if let Some(c) = &dom.verifying_contract {
        let shown = d.address(ctx, c);
        d.push("domain.verifying_contract", "Verifying contract", shown);
        d.facts.contracts.push(addr(c));
    }
    if let Some(s) = &dom.salt {
        d.push("domain.salt", "Domain salt", s.to_string());
    }
    let primary = d.sanitized(&td.primary_type, TextKind::Name);
    d.push("primary_type", "Primary type", primary.clone());
    // Show the message as it is hashed (coerced to the declared types, in declaration
    // order): JSON keys the types do not declare are not signed, so they are not shown.
    let value = match td.coerce() {
        Ok(v) => v,
        Err(e) => {
            d.title = format!("Sign typed data: {primary}");
            d.mark_blind(format!("typed data message cannot be shown ({})", crate::payload::eip712::bad(e)));
            return Ok(d);
        }
    };
    let known = Meaning::of(td).and_then(|m| m.show(&mut d, td, &value, ctx));
    if known.is_none() {
        d.title = format!("Sign typed data: {primary}");
        d.mark_blind(format!("the phone does not know what signing {primary} typed data does"));
    }
    flatten(&mut d, &value);
    Ok(d)
}

/// Copies the message into rows `Message › path` (keys `message.path`), in declared order,
/// with an explicit stack.
fn flatten(d: &mut DecodedPayload, root: &DynSolValue) {
    let mut stack: Vec<(String, &DynSolValue, usize)> = vec![(String::new(), root, 0)];
    while let Some((path, v, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            d.mark_blind(format!("typed data nested deeper than {MAX_DEPTH} levels"));
            continue;
        }
        let shown = if path.is_empty() { "(empty)" } else { path.as_str() };
        let (key, label) = (format!("message.{path}"), format!("{MESSAGE_LABEL_PREFIX}{shown}"));
        let key = key.trim_end_matches('.').to_string();
        match v {
            DynSolValue::CustomStruct { prop_names, tuple, .. } => {
                if tuple.is_empty() {
                    d.push(key, label, "{}");
                }
                for (k, child) in prop_names.iter().zip(tuple).rev() {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    stack.push((p, child, depth + 1));
                }
            }
            DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => {
                if items.is_empty() {
                    d.push(key, label, "[]");
                }
                for (i, child) in items.iter().enumerate().rev() {
                    stack.push((format!("{path}[{i}]"), child, depth + 1));
                }
            }
            DynSolValue::Address(a) => d.push(key, label, addr(a)),
            DynSolValue::Uint(n, _) => d.push(key, label, n.to_string()),
            DynSolValue::Int(n, _) => d.push(key, label, n.to_string()),
            DynSolValue::Bool(b) => d.push(key, label, b.to_string()),
            DynSolValue::String(s) => d.push(key, label, s.clone()),
            DynSolValue::Bytes(b) => d.push(key, label, format!("0x{}", hex::encode(b))),
            DynSolValue::FixedBytes(w, n) => {
                d.push(key, label, format!("0x{}", hex::encode(w.get(..*n).unwrap_or(w.as_slice()))))
            }
            DynSolValue::Function(f) => d.push(key, label, format!("0x{}", hex::encode(f.as_slice()))),
        }
    }
}

// ---- known meanings ----

type Shape = &'static [(&'static str, &'static str)];

const ERC2612_PERMIT: Shape = &[
    ("owner", "address"),
    ("spender", "address"),
    ("value", "uint256"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
];
const DAI_PERMIT: Shape =
    &[("holder", "address"), ("spender", "address"), ("nonce", "uint256"), ("expiry", "uint256"), ("allowed", "bool")];
const PERMIT_DETAILS: Shape =
    &[("token", "address"), ("amount", "uint160"), ("expiration", "uint48"), ("nonce", "uint48")];
const PERMIT_SINGLE: Shape = &[("details", "PermitDetails"), ("spender", "address"), ("sigDeadline", "uint256")];
const PERMIT_BATCH: Shape = &[("details", "PermitDetails[]"), ("spender", "address"), ("sigDeadline", "uint256")];
const TOKEN_PERMISSIONS: Shape = &[("token", "address"), ("amount", "uint256")];
const PERMIT_TRANSFER_FROM: Shape =
    &[("permitted", "TokenPermissions"), ("spender", "address"), ("nonce", "uint256"), ("deadline", "uint256")];
const PERMIT_BATCH_TRANSFER_FROM: Shape =
    &[("permitted", "TokenPermissions[]"), ("spender", "address"), ("nonce", "uint256"), ("deadline", "uint256")];
const EIP3009_TRANSFER: Shape = &[
    ("from", "address"),
    ("to", "address"),
    ("value", "uint256"),
    ("validAfter", "uint256"),
    ("validBefore", "uint256"),
    ("nonce", "bytes32"),
];
const EIP3009_CANCEL: Shape = &[("authorizer", "address"), ("nonce", "bytes32")];

/// What a recognised piece of typed data does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    Erc2612Permit,
    DaiPermit,
    Permit2Allowance { batch: bool },
    Permit2Transfer { batch: bool },
    Eip3009 { receive: bool },
    Eip3009Cancel,
}

/// Amounts at or above this are unlimited (Permit2's `type(uint160).max`).
fn unlimited(amount: U256) -> bool {
    amount >= (U256::from(1u8) << 160) - U256::from(1u8)
}

/// Whether `name` is declared with exactly these fields, in this order.
fn declared(types: &BTreeMap<String, Vec<alloy_dyn_abi::eip712::PropertyDef>>, name: &str, shape: Shape) -> bool {
    types.get(name).is_some_and(|props| {
        props.len() == shape.len() && props.iter().zip(shape).all(|(p, (n, t))| p.name() == *n && p.type_name() == *t)
    })
}

impl Meaning {
    fn of(td: &TypedData) -> Option<Meaning> {
        let types = Eip712Types::from(&td.resolver);
        let t = &*types;
        let has = |name, shape| declared(t, name, shape);
        let token_is_contract = td.domain.verifying_contract.is_some();
        Some(match td.primary_type.as_str() {
            "Permit" if token_is_contract && has("Permit", ERC2612_PERMIT) => Meaning::Erc2612Permit,
            "Permit" if token_is_contract && has("Permit", DAI_PERMIT) => Meaning::DaiPermit,
            "PermitSingle" if has("PermitSingle", PERMIT_SINGLE) && has("PermitDetails", PERMIT_DETAILS) => {
                Meaning::Permit2Allowance { batch: false }
            }
            "PermitBatch" if has("PermitBatch", PERMIT_BATCH) && has("PermitDetails", PERMIT_DETAILS) => {
                Meaning::Permit2Allowance { batch: true }
            }
            "PermitTransferFrom"
                if has("PermitTransferFrom", PERMIT_TRANSFER_FROM) && has("TokenPermissions", TOKEN_PERMISSIONS) =>
            {
                Meaning::Permit2Transfer { batch: false }
            }
            "PermitBatchTransferFrom"
                if has("PermitBatchTransferFrom", PERMIT_BATCH_TRANSFER_FROM)
                    && has("TokenPermissions", TOKEN_PERMISSIONS) =>
            {
                Meaning::Permit2Transfer { batch: true }
            }
            p @ ("TransferWithAuthorization" | "ReceiveWithAuthorization")
                if token_is_contract && has(p, EIP3009_TRANSFER) =>
            {
                Meaning::Eip3009 { receive: p == "ReceiveWithAuthorization" }
            }
            "CancelAuthorization" if token_is_contract && has("CancelAuthorization", EIP3009_CANCEL) => {
                Meaning::Eip3009Cancel
            }
            _ => return None,
        })
    }

    /// Rows and facts; `None` if the coerced value does not have the expected parts (it
    /// always does once the shape matched; the caller then treats the data as blind).
    fn show(self, d: &mut DecodedPayload, td: &TypedData, msg: &DynSolValue, ctx: &DecodeContext<'_>) -> Option<()> {
        let contract_address = td.domain.verifying_contract;
        let contract = contract_address.map(|a| addr(&a));
        // A row showing an address: named when the phone knows a name.
        let named = |d: &mut DecodedPayload, v: &DynSolValue| -> Option<String> { Some(d.address(ctx, &addr_of(v)?)) };
        match self {
            Meaning::Erc2612Permit | Meaning::DaiPermit => {
                let token = contract?;
                let dai = self == Meaning::DaiPermit;
                let owner = named(d, field(msg, if dai { "holder" } else { "owner" })?)?;
                let spender = address(field(msg, "spender")?)?;
                let spender_shown = named(d, field(msg, "spender")?)?;
                let nonce = uint(field(msg, "nonce")?)?;
                let (grant, unlimited_grant, deadline) = if dai {
                    let allowed = matches!(field(msg, "allowed")?, DynSolValue::Bool(true));
                    let expiry = uint(field(msg, "expiry")?)?;
                    (allowed.then_some(U256::MAX), allowed, expiry)
                } else {
                    let value = uint(field(msg, "value")?)?;
                    (Some(value).filter(|v| !v.is_zero()), unlimited(value), uint(field(msg, "deadline")?)?)
                };
                d.title =
                    if dai { "Token spending permit (DAI-style)" } else { "Token spending permit (ERC-2612)" }.into();
                let token_shown = d.address(ctx, &contract_address?);
                d.push("token", "Token", token_shown);
                d.push("owner", "Owner", owner);
                d.push("spender", "Spender", spender_shown);
                let shown = match grant {
                    None => "none (removes the spender's allowance)".to_string(),
                    Some(_) if unlimited_grant => unlimited_amount(d, ctx, &token),
                    Some(v) => token_amount(d, ctx, &token, v),
                };
                d.push("allowance", "Allowance", shown);
                let until = if dai && deadline.is_zero() { "no expiry".into() } else { time(deadline) };
                d.push("deadline", "Signature valid until", until);
                d.push("nonce", "Nonce", nonce.to_string());
                if let Some(amount) = grant {
                    grant_fact(d, TokenAction::Approve, &token, &spender, amount, unlimited_grant);
                }
            }
            Meaning::Permit2Allowance { batch } => {
                let spender = address(field(msg, "spender")?)?;
                let spender_shown = named(d, field(msg, "spender")?)?;
                let details: Vec<&DynSolValue> =
                    if batch { items(field(msg, "details")?)? } else { vec![field(msg, "details")?] };
                d.title = if batch {
                    format!("Permit2 allowance for {} tokens", details.len())
                } else {
                    "Permit2 allowance".into()
                };
                for (i, det) in details.iter().enumerate() {
                    let (key, label) = numbered(batch, i);
                    let token = address(field(det, "token")?)?;
                    let amount = uint(field(det, "amount")?)?;
                    let expires = uint(field(det, "expiration")?)?;
                    let all = unlimited(amount);
                    let token_shown = named(d, field(det, "token")?)?;
                    d.push(format!("token{key}"), format!("Token{label}"), token_shown);
                    let shown =
                        if all { unlimited_amount(d, ctx, &token) } else { token_amount(d, ctx, &token, amount) };
                    d.push(format!("allowance{key}"), format!("Allowance{label}"), shown);
                    d.push(format!("allowance_expires{key}"), format!("Allowance expires{label}"), time(expires));
                    if !amount.is_zero() {
                        grant_fact(d, TokenAction::Approve, &token, &spender, amount, all);
                    }
                }
                d.push("spender", "Spender", spender_shown);
                d.push("deadline", "Signature valid until", time(uint(field(msg, "sigDeadline")?)?));
            }
            Meaning::Permit2Transfer { batch } => {
                let spender = address(field(msg, "spender")?)?;
                let spender_shown = named(d, field(msg, "spender")?)?;
                let permitted: Vec<&DynSolValue> =
                    if batch { items(field(msg, "permitted")?)? } else { vec![field(msg, "permitted")?] };
                d.title = if batch {
                    format!("Permit2 transfer of {} tokens", permitted.len())
                } else {
                    "Permit2 transfer".into()
                };
                for (i, p) in permitted.iter().enumerate() {
                    let (key, label) = numbered(batch, i);
                    let token = address(field(p, "token")?)?;
                    let amount = uint(field(p, "amount")?)?;
                    let all = unlimited(amount);
                    let token_shown = named(d, field(p, "token")?)?;
                    d.push(format!("token{key}"), format!("Token{label}"), token_shown);
                    let shown = if all {
                        "all of your balance (unlimited)".into()
                    } else {
                        format!("up to {}", token_amount(d, ctx, &token, amount))
                    };
                    d.push(format!("amount{key}"), format!("Amount{label}"), shown);
                    if !amount.is_zero() {
                        grant_fact(d, TokenAction::Transfer, &token, &spender, amount, all);
                    }
                }
                d.push("spender", "Spender (chooses the recipient)", spender_shown);
                d.push("deadline", "Signature valid until", time(uint(field(msg, "deadline")?)?));
                d.push("nonce", "Nonce", uint(field(msg, "nonce")?)?.to_string());
            }
            Meaning::Eip3009 { receive } => {
                let token = contract?;
                let to = address(field(msg, "to")?)?;
                let value = uint(field(msg, "value")?)?;
                d.title = if receive {
                    "Token receive authorization (EIP-3009)"
                } else {
                    "Token transfer authorization (EIP-3009)"
                }
                .into();
                let token_shown = d.address(ctx, &contract_address?);
                d.push("token", "Token", token_shown);
                let from = named(d, field(msg, "from")?)?;
                d.push("from", "From", from);
                let to_shown = named(d, field(msg, "to")?)?;
                d.push("recipient", "Recipient", to_shown);
                let amount = token_amount(d, ctx, &token, value);
                d.push("amount", "Amount", amount);
                d.push("valid_after", "Valid from", time(uint(field(msg, "validAfter")?)?));
                d.push("valid_before", "Valid until", time(uint(field(msg, "validBefore")?)?));
                grant_fact(d, TokenAction::Transfer, &token, &to, value, unlimited(value));
            }
            Meaning::Eip3009Cancel => {
                d.title = "Cancel a token authorization (EIP-3009)".into();
                let token_shown = d.address(ctx, &contract_address?);
                d.push("token", "Token", token_shown);
                let authorizer = named(d, field(msg, "authorizer")?)?;
                d.push("authorizer", "Authorizer", authorizer);
            }
        }
        Some(())
    }
}

/// Key and label suffixes of the i-th item of a batch (`.1`, ` #1`), or none.
fn numbered(batch: bool, i: usize) -> (String, String) {
    if batch {
        (format!(".{}", i + 1), format!(" #{}", i + 1))
    } else {
        (String::new(), String::new())
    }
}

/// Records rights or a transfer for the guardrails: the counterparty is a recipient, an
/// unlimited amount is an unlimited approval.
fn grant_fact(d: &mut DecodedPayload, action: TokenAction, token: &str, to: &str, amount: U256, all: bool) {
    if !d.facts.recipients.iter().any(|r| r == to) {
        d.facts.recipients.push(to.to_string());
    }
    if all {
        d.facts.unlimited_approval = true;
        d.warn(Warning::UnlimitedApproval { token: token.into(), spender: to.into() });
    }
    d.facts.tokens.push(TokenFact {
        action,
        token: token.into(),
        to: to.into(),
        amount: (!all).then(|| amount.to_string()),
        unlimited: all,
        maybe_token_id: false,
    });
}

fn field<'a>(v: &'a DynSolValue, name: &str) -> Option<&'a DynSolValue> {
    match v {
        DynSolValue::CustomStruct { prop_names, tuple, .. } => {
            prop_names.iter().position(|p| p == name).and_then(|i| tuple.get(i))
        }
        _ => None,
    }
}

fn items(v: &DynSolValue) -> Option<Vec<&DynSolValue>> {
    match v {
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => Some(items.iter().collect()),
        _ => None,
    }
}

fn address(v: &DynSolValue) -> Option<String> {
    addr_of(v).map(|a| addr(&a))
}

fn addr_of(v: &DynSolValue) -> Option<Address> {
    match v {
        DynSolValue::Address(a) => Some(*a),
        _ => None,
    }
}

fn uint(v: &DynSolValue) -> Option<U256> {
    match v {
        DynSolValue::Uint(n, _) => Some(*n),
        _ => None,
    }
}

fn time(t: U256) -> String {
    match u64::try_from(t) {
        Ok(secs) => format_unix_time(secs),
        Err(_) => format!("{t} (never)"),
    }
}
