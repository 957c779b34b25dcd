//! EVM payloads for display: transactions (with ERC-20 / approval calls), EIP-191
//! messages and EIP-712 typed data.

use alloy_dyn_abi::DynSolValue;
use alloy_primitives::{Address, TxKind, U256};
use alloy_sol_types::{sol, SolInterface};

use super::units::{format_native, format_units};
use super::{DecodeError, DecodedPayload, Warning};
use crate::caip::ChainId;
use crate::payload::{check_typed_data_chain, parse_evm_tx, parse_typed_data, EvmTx};

sol! {
    /// The token calls the decoder recognises (ERC-20, plus ERC-721/1155 `setApprovalForAll`).
    interface ITokenCalls {
        function transfer(address to, uint256 amount) external returns (bool);
        function approve(address spender, uint256 amount) external returns (bool);
        function transferFrom(address from, address to, uint256 amount) external returns (bool);
        function increaseAllowance(address spender, uint256 addedValue) external returns (bool);
        function setApprovalForAll(address operator, bool approved) external;
    }
}

/// Approvals at or above 2^255 are "unlimited" in practice (wallets and dapps use
/// `type(uint256).max` or values near it).
pub(crate) fn is_unlimited(amount: U256) -> bool {
    amount >= (U256::from(1u8) << 255) || amount == U256::MAX
}

/// Largest calldata bytes shown in hex before eliding the rest.
const MAX_DATA_SHOWN: usize = 64;

fn hex_preview(data: &[u8]) -> String {
    if data.is_empty() {
        return "none".into();
    }
    match data.get(..MAX_DATA_SHOWN) {
        Some(head) if data.len() > MAX_DATA_SHOWN => {
            format!("0x{}… ({} bytes)", hex::encode(head), data.len())
        }
        _ => format!("0x{} ({} bytes)", hex::encode(data), data.len()),
    }
}

fn addr(a: &Address) -> String {
    a.to_checksum(None)
}

fn gwei(v: u128) -> String {
    format!("{} gwei", format_units(U256::from(v), 9))
}

pub(super) fn decode_tx(payload: &[u8], chain: &ChainId) -> Result<DecodedPayload, DecodeError> {
    let tx = parse_evm_tx(payload)?;
    let mut d = DecodedPayload::new(chain, payload, "Transaction");
    let (kind_name, nonce, gas_limit, to, value, input) = match &tx {
        EvmTx::Legacy(t) => ("Legacy (EIP-155)", t.nonce, t.gas_limit, t.to, t.value, &t.input),
        EvmTx::Eip2930(t) => ("EIP-2930", t.nonce, t.gas_limit, t.to, t.value, &t.input),
        EvmTx::Eip1559(t) => ("EIP-1559", t.nonce, t.gas_limit, t.to, t.value, &t.input),
    };
    d.push("Network", format!("{} ({chain})", chain.display_name()));
    d.push("Chain ID", tx.chain_id().to_string());
    d.push("Transaction type", kind_name);
    match to {
        TxKind::Call(a) => d.push("To", addr(&a)),
        TxKind::Create => d.push("To", "new contract"),
    }
    d.push("Value", format_native(chain, value));
    d.push("Nonce", nonce.to_string());
    d.push("Gas limit", gas_limit.to_string());
    let max_fee = match &tx {
        EvmTx::Legacy(t) => {
            d.push("Gas price", gwei(t.gas_price));
            t.gas_price
        }
        EvmTx::Eip2930(t) => {
            d.push("Gas price", gwei(t.gas_price));
            t.gas_price
        }
        EvmTx::Eip1559(t) => {
            d.push("Max fee per gas", gwei(t.max_fee_per_gas));
            d.push("Max priority fee per gas", gwei(t.max_priority_fee_per_gas));
            t.max_fee_per_gas
        }
    };
    let worst_fee = U256::from(gas_limit).saturating_mul(U256::from(max_fee));
    d.push("Max network fee", format_native(chain, worst_fee));
    d.push("Data", hex_preview(input));
    let access_list_len = match &tx {
        EvmTx::Legacy(_) => 0,
        EvmTx::Eip2930(t) => t.access_list.len(),
        EvmTx::Eip1559(t) => t.access_list.len(),
    };
    if access_list_len > 0 {
        d.push("Access list", format!("{access_list_len} entries"));
    }
    d.facts.native_value = u128::try_from(value).unwrap_or(u128::MAX);
    d.facts.max_fee = u128::try_from(worst_fee).unwrap_or(u128::MAX);

    match to {
        TxKind::Create => {
            d.title = "Deploy a contract".into();
            d.facts.contract_creation = true;
            d.warn(Warning::ContractCreation);
            d.mark_blind("contract deployment code cannot be decoded");
        }
        TxKind::Call(to) if input.is_empty() => {
            let (sym, _) = super::units::native_currency(chain);
            d.title = format!("Send {sym}");
            d.facts.recipients.push(addr(&to));
        }
        TxKind::Call(to) => {
            if !value.is_zero() {
                d.facts.recipients.push(addr(&to));
            }
            d.facts.contracts.push(addr(&to));
            decode_call(&mut d, &to, input);
        }
    }
    Ok(d)
}

fn decode_call(d: &mut DecodedPayload, contract: &Address, input: &[u8]) {
    use ITokenCalls::ITokenCallsCalls as C;
    let token = addr(contract);
    // Validating decode: the calldata must be exactly the canonical encoding of the call,
    // so what is shown is all there is.
    let call = C::abi_decode_validate(input).ok().filter(|c| c.abi_encode() == input);
    let Some(call) = call else {
        let selector = input.get(..4).map(hex::encode).unwrap_or_default();
        d.title = "Contract call".into();
        d.mark_blind(format!("unrecognised contract call (selector 0x{selector})"));
        return;
    };
    match call {
        C::transfer(c) => {
            d.title = "Token transfer".into();
            d.push("Token contract", token.clone());
            d.push("Recipient", addr(&c.to));
            d.push("Amount", format!("{} (base units; token decimals not known)", c.amount));
            d.facts.recipients.push(addr(&c.to));
        }
        C::transferFrom(c) => {
            d.title = "Token transfer from another account".into();
            d.push("Token contract", token.clone());
            d.push("From", addr(&c.from));
            d.push("Recipient", addr(&c.to));
            d.push("Amount", format!("{} (base units; token decimals not known)", c.amount));
            d.facts.recipients.push(addr(&c.to));
        }
        C::approve(c) => approval(d, &token, &c.spender, c.amount, "Token approval", "Allowance"),
        C::increaseAllowance(c) => approval(
            d,
            &token,
            &c.spender,
            c.addedValue,
            "Token allowance increase",
            "Added allowance",
        ),
        C::setApprovalForAll(c) => {
            let operator = addr(&c.operator);
            d.push("Collection contract", token.clone());
            d.push("Operator", operator.clone());
            d.push("Approved", if c.approved { "yes (all tokens)" } else { "no (revoke)" });
            if c.approved {
                d.title = "Approve an operator for all tokens".into();
                d.facts.recipients.push(operator.clone());
                d.facts.unlimited_approval = true;
                d.warn(Warning::ApprovalForAll { contract: token, operator });
            } else {
                d.title = "Revoke an operator".into();
            }
        }
    }
}

fn approval(
    d: &mut DecodedPayload,
    token: &str,
    spender: &Address,
    amount: U256,
    title: &str,
    label: &str,
) {
    let spender = addr(spender);
    d.title = title.into();
    d.push("Token contract", token);
    d.push("Spender", spender.clone());
    if is_unlimited(amount) {
        d.push(label, "unlimited");
        d.facts.unlimited_approval = true;
        d.warn(Warning::UnlimitedApproval { token: token.into(), spender: spender.clone() });
    } else {
        d.push(label, format!("{amount} (base units; token decimals not known)"));
    }
    d.facts.recipients.push(spender);
}

fn printable_text(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    let ok = s.chars().all(|c| {
        matches!(c, '\n' | '\r' | '\t')
            || !(c.is_control()
                // Bidirectional overrides and isolates can make text read differently.
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c))
    });
    (ok && !s.trim().is_empty()).then_some(s)
}

pub(super) fn decode_eip191(payload: &[u8], chain: &ChainId) -> DecodedPayload {
    let mut d = DecodedPayload::new(chain, payload, "Sign a message");
    d.push("Network", format!("{} ({chain})", chain.display_name()));
    match printable_text(payload) {
        Some(text) => d.push("Message", text),
        None => {
            d.push("Message (hex)", format!("0x{}", hex::encode(payload)));
            d.warn(Warning::MessageNotText);
        }
    }
    d
}

pub(super) fn decode_eip712(payload: &[u8], chain: &ChainId) -> Result<DecodedPayload, DecodeError> {
    let td = parse_typed_data(payload)?;
    if let ChainId::Evm(id) = chain {
        check_typed_data_chain(&td, *id)?;
    }
    let mut d = DecodedPayload::new(chain, payload, format!("Sign typed data: {}", td.primary_type));
    d.push("Network", format!("{} ({chain})", chain.display_name()));
    let dom = &td.domain;
    if let Some(n) = &dom.name {
        d.push("Domain name", n.to_string());
    }
    if let Some(v) = &dom.version {
        d.push("Domain version", v.to_string());
    }
    match dom.chain_id {
        Some(c) => d.push("Domain chain ID", c.to_string()),
        None => d.warn(Warning::TypedDataWithoutChain),
    }
    if let Some(c) = &dom.verifying_contract {
        d.push("Verifying contract", addr(c));
        d.facts.contracts.push(addr(c));
    }
    if let Some(s) = &dom.salt {
        d.push("Domain salt", s.to_string());
    }
    d.push("Primary type", td.primary_type.clone());
    // Show the message as it is hashed (coerced to the declared types, in declaration
    // order): JSON keys the types do not declare are not signed, so they are not shown.
    match td.coerce() {
        Ok(value) => {
            flatten(&mut d, "", &value, 0);
            if td.primary_type.contains("Permit") {
                permit_facts(&mut d, &value, dom.verifying_contract.map(|a| addr(&a)));
            }
        }
        Err(e) => d.mark_blind(format!("typed data message cannot be shown ({e})")),
    }
    Ok(d)
}

/// Deepest nesting shown; deeper values make the payload blind.
const MAX_DEPTH: usize = 16;

fn flatten(d: &mut DecodedPayload, path: &str, v: &DynSolValue, depth: usize) {
    if depth > MAX_DEPTH {
        d.mark_blind(format!("typed data nested deeper than {MAX_DEPTH} levels"));
        return;
    }
    let label = if path.is_empty() { "message".to_string() } else { path.to_string() };
    match v {
        DynSolValue::CustomStruct { prop_names, tuple, .. } => {
            if tuple.is_empty() {
                d.push(label.clone(), "{}");
            }
            for (k, child) in prop_names.iter().zip(tuple) {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                flatten(d, &p, child, depth + 1);
            }
        }
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => {
            if items.is_empty() {
                d.push(label.clone(), "[]");
            }
            for (i, child) in items.iter().enumerate() {
                flatten(d, &format!("{label}[{i}]"), child, depth + 1);
            }
        }
        DynSolValue::Address(a) => d.push(label, addr(a)),
        DynSolValue::Uint(n, _) => d.push(label, n.to_string()),
        DynSolValue::Int(n, _) => d.push(label, n.to_string()),
        DynSolValue::Bool(b) => d.push(label, b.to_string()),
        DynSolValue::String(s) => d.push(label, s.clone()),
        DynSolValue::Bytes(b) => d.push(label, format!("0x{}", hex::encode(b))),
        DynSolValue::FixedBytes(w, n) => {
            d.push(label, format!("0x{}", hex::encode(w.get(..*n).unwrap_or(w.as_slice()))))
        }
        DynSolValue::Function(f) => d.push(label, format!("0x{}", hex::encode(f.as_slice()))),
    }
}

/// EIP-2612 `Permit` and Permit2 `PermitSingle`/`PermitBatch`/`PermitTransferFrom`: the
/// spender gets rights, and a huge `value`/`amount` (≥ 2^160 − 1, Permit2's maximum) is
/// unlimited.
fn permit_facts(d: &mut DecodedPayload, msg: &DynSolValue, contract: Option<String>) {
    let limit = (U256::from(1u8) << 160) - U256::from(1u8);
    let mut spender = None;
    let mut unlimited = false;
    let mut stack = vec![msg];
    while let Some(v) = stack.pop() {
        match v {
            DynSolValue::CustomStruct { prop_names, tuple, .. } => {
                for (k, child) in prop_names.iter().zip(tuple) {
                    match (k.as_str(), child) {
                        ("spender", DynSolValue::Address(a)) => spender = Some(addr(a)),
                        ("value" | "amount", DynSolValue::Uint(n, _)) if *n >= limit => {
                            unlimited = true
                        }
                        _ => {}
                    }
                    stack.push(child);
                }
            }
            DynSolValue::Array(a) | DynSolValue::FixedArray(a) | DynSolValue::Tuple(a) => {
                stack.extend(a.iter())
            }
            _ => {}
        }
    }
    if let Some(s) = &spender {
        d.facts.recipients.push(s.clone());
    }
    if unlimited {
        d.facts.unlimited_approval = true;
        d.warn(Warning::UnlimitedApproval {
            token: contract.unwrap_or_else(|| "a token".into()),
            spender: spender.unwrap_or_else(|| "the spender".into()),
        });
    }
}
