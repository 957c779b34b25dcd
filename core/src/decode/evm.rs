//! EVM payloads for display: transactions (with ERC-20 / ERC-721 token calls) and EIP-191
//! messages. EIP-712 typed data is in `eip712.rs`.

use alloy_primitives::{Address, TxKind, U256};
use alloy_sol_types::{sol, SolInterface};

use super::erc7730::format::decimal_amount;
use super::units::{format_native, format_units};
use super::{DecodeContext, DecodeError, DecodedPayload, TokenAction, TokenFact, TokenStandard, Warning};
use crate::caip::ChainId;
use crate::display::TextKind;
use crate::payload::EvmTx;

sol! {
    /// The token calls the decoder recognises (ERC-20, plus ERC-721/1155 `setApprovalForAll`).
    /// `approve` and `transferFrom` have the same selectors in ERC-721 (token ID instead of
    /// amount).
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

pub(super) fn addr(a: &Address) -> String {
    a.to_checksum(None)
}

fn gwei(v: u128) -> String {
    format!("{} gwei", format_units(U256::from(v), 9))
}

/// A token amount for display: exact, grouped, with the symbol when the token is a known
/// ERC-20 (`1,500.25 USDC`), else in base units with [`Warning::UnknownToken`].
pub(super) fn token_amount(d: &mut DecodedPayload, ctx: &DecodeContext<'_>, token: &str, amount: U256) -> String {
    let chain = d.chain.clone();
    match ctx.token_of(&chain, token, TokenStandard::Erc20) {
        Some(t) => {
            let symbol = d.sanitized(&t.symbol, TextKind::Name);
            match t.decimals {
                Some(dec) => format!("{} {symbol}", decimal_amount(amount, dec)),
                None => format!("{amount} {symbol} (base units)"),
            }
        }
        None => {
            d.warn(Warning::UnknownToken { token: token.to_string() });
            format!("{amount} (base units; token decimals not known)")
        }
    }
}

/// An unlimited allowance for display: `Unlimited USDC` when the token's symbol is known,
/// else `unlimited`.
pub(super) fn unlimited_amount(d: &mut DecodedPayload, ctx: &DecodeContext<'_>, token: &str) -> String {
    let chain = d.chain.clone();
    match ctx.token_of(&chain, token, TokenStandard::Erc20) {
        Some(t) => format!("Unlimited {}", d.sanitized(&t.symbol, TextKind::Name)),
        None => "unlimited".into(),
    }
}

pub(super) fn decode_tx(
    tx: &EvmTx,
    payload: &[u8],
    chain: &ChainId,
    ctx: &DecodeContext<'_>,
) -> Result<DecodedPayload, DecodeError> {
    let mut d = DecodedPayload::new(chain, payload, "Transaction");
    let (kind_name, nonce, gas_limit, to, value, input) = match tx {
        EvmTx::Legacy(t) => ("Legacy (EIP-155)", t.nonce, t.gas_limit, t.to, t.value, &t.input),
        EvmTx::Eip2930(t) => ("EIP-2930", t.nonce, t.gas_limit, t.to, t.value, &t.input),
        EvmTx::Eip1559(t) => ("EIP-1559", t.nonce, t.gas_limit, t.to, t.value, &t.input),
    };
    d.push("network", "Network", format!("{} ({chain})", chain.display_name()));
    d.push("chain_id", "Chain ID", tx.chain_id().to_string());
    d.push("tx_type", "Transaction type", kind_name);
    match to {
        TxKind::Call(a) => {
            let shown = d.address(ctx, &a);
            d.push("to", "To", shown);
        }
        TxKind::Create => d.push("to", "To", "new contract"),
    }
    d.push("value", "Value", format_native(chain, value));
    d.push("nonce", "Nonce", nonce.to_string());
    d.push("gas_limit", "Gas limit", gas_limit.to_string());
    let max_fee = match &tx {
        EvmTx::Legacy(t) => {
            d.push("gas_price", "Gas price", gwei(t.gas_price));
            t.gas_price
        }
        EvmTx::Eip2930(t) => {
            d.push("gas_price", "Gas price", gwei(t.gas_price));
            t.gas_price
        }
        EvmTx::Eip1559(t) => {
            d.push("max_fee_per_gas", "Max fee per gas", gwei(t.max_fee_per_gas));
            d.push("max_priority_fee_per_gas", "Max priority fee per gas", gwei(t.max_priority_fee_per_gas));
            t.max_fee_per_gas
        }
    };
    let worst_fee = U256::from(gas_limit).saturating_mul(U256::from(max_fee));
    d.push("max_fee", "Max network fee", format_native(chain, worst_fee));
    d.push_max_total(value, worst_fee);
    d.push("data", "Data", hex_preview(input));
    let access_list_len = match &tx {
        EvmTx::Legacy(_) => 0,
        EvmTx::Eip2930(t) => t.access_list.len(),
        EvmTx::Eip1559(t) => t.access_list.len(),
    };
    if access_list_len > 0 {
        d.push("access_list", "Access list", format!("{access_list_len} entries"));
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
            decode_call(&mut d, ctx, &to, input);
        }
    }
    Ok(d)
}

fn token_fact(action: TokenAction, token: &str, to: &str, amount: U256) -> TokenFact {
    TokenFact {
        action,
        token: token.into(),
        to: to.into(),
        amount: Some(amount.to_string()),
        unlimited: false,
        maybe_token_id: false,
    }
}

fn decode_call(d: &mut DecodedPayload, ctx: &DecodeContext<'_>, contract: &Address, input: &[u8]) {
    use ITokenCalls::ITokenCallsCalls as C;
    let token = addr(contract);
    let chain = d.chain.clone();
    // Validating decode: the calldata must be exactly the canonical encoding of the call,
    // so what is shown is all there is.
    let call = C::abi_decode_validate(input).ok().filter(|c| c.abi_encode() == input);
    let Some(call) = call else {
        let selector = input.get(..4).map(hex::encode).unwrap_or_default();
        d.title = "Contract call".into();
        d.mark_blind(format!("unrecognised contract call (selector 0x{selector})"));
        return;
    };
    let standard = ctx.token(&chain, &token).map(|t| t.standard);
    let token_shown = d.address(ctx, contract);
    match call {
        C::transfer(c) => {
            let to = addr(&c.to);
            d.title = "Token transfer".into();
            d.push("token_contract", "Token contract", token_shown);
            let shown = d.address(ctx, &c.to);
            d.push("recipient", "Recipient", shown);
            let amount = token_amount(d, ctx, &token, c.amount);
            d.push("amount", "Amount", amount);
            d.facts.recipients.push(to.clone());
            d.facts.tokens.push(token_fact(TokenAction::Transfer, &token, &to, c.amount));
        }
        C::transferFrom(c) => {
            let to = addr(&c.to);
            d.push("token_contract", "Token contract", token_shown);
            let shown = d.address(ctx, &c.from);
            d.push("from", "From", shown);
            let shown = d.address(ctx, &c.to);
            d.push("recipient", "Recipient", shown);
            let mut fact = token_fact(TokenAction::Transfer, &token, &to, c.amount);
            match standard {
                Some(TokenStandard::Erc20) => {
                    d.title = "Token transfer from another account".into();
                    let amount = token_amount(d, ctx, &token, c.amount);
                    d.push("amount", "Amount", amount);
                }
                Some(TokenStandard::Erc721) => {
                    d.title = "NFT transfer".into();
                    d.push("token_id", "Token ID", c.amount.to_string());
                    fact.maybe_token_id = true;
                }
                _ => {
                    d.title = "Token transfer from another account".into();
                    ambiguous(d, &token, c.amount);
                    fact.maybe_token_id = true;
                }
            }
            d.facts.recipients.push(to);
            d.facts.tokens.push(fact);
        }
        C::approve(c) => match standard {
            Some(TokenStandard::Erc20) => {
                approval(d, ctx, contract, &c.spender, c.amount, "Token approval", ("allowance", "Allowance"))
            }
            Some(TokenStandard::Erc721) => {
                let spender = addr(&c.spender);
                d.title = "Approve an NFT transfer".into();
                d.push("token_contract", "Token contract", token_shown);
                let shown = d.address(ctx, &c.spender);
                d.push("spender", "Approved address", shown);
                d.push("token_id", "Token ID", c.amount.to_string());
                let mut fact = token_fact(TokenAction::Approve, &token, &spender, c.amount);
                fact.maybe_token_id = true;
                d.facts.recipients.push(spender);
                d.facts.tokens.push(fact);
            }
            _ => {
                // Unknown standard: show the number as what it may be, and keep the facts
                // conservative (a huge number counts as an unlimited ERC-20 approval).
                let spender = addr(&c.spender);
                d.title = "Token approval".into();
                d.push("token_contract", "Token contract", token_shown);
                let shown = d.address(ctx, &c.spender);
                d.push("spender", "Spender", shown);
                ambiguous(d, &token, c.amount);
                let unlimited = is_unlimited(c.amount);
                if unlimited {
                    d.facts.unlimited_approval = true;
                    d.warn(Warning::UnlimitedApproval { token: token.clone(), spender: spender.clone() });
                }
                let mut fact = token_fact(TokenAction::Approve, &token, &spender, c.amount);
                fact.unlimited = unlimited;
                fact.maybe_token_id = true;
                d.facts.recipients.push(spender);
                d.facts.tokens.push(fact);
            }
        },
        C::increaseAllowance(c) => approval(
            d,
            ctx,
            contract,
            &c.spender,
            c.addedValue,
            "Token allowance increase",
            ("added_allowance", "Added allowance"),
        ),
        C::setApprovalForAll(c) => {
            let operator = addr(&c.operator);
            d.push("collection_contract", "Collection contract", token_shown);
            let shown = d.address(ctx, &c.operator);
            d.push("operator", "Operator", shown);
            d.push("approved", "Approved", if c.approved { "yes (all tokens)" } else { "no (revoke)" });
            if c.approved {
                d.title = "Approve an operator for all tokens".into();
                d.facts.recipients.push(operator.clone());
                d.facts.unlimited_approval = true;
                d.facts.tokens.push(TokenFact {
                    action: TokenAction::Approve,
                    token: token.clone(),
                    to: operator.clone(),
                    amount: None,
                    unlimited: true,
                    maybe_token_id: false,
                });
                d.warn(Warning::ApprovalForAll { contract: token, operator });
            } else {
                d.title = "Revoke an operator".into();
            }
        }
    }
}

/// The row for a number that is an ERC-20 amount or an ERC-721 token ID.
fn ambiguous(d: &mut DecodedPayload, token: &str, n: U256) {
    d.push(
        "amount_or_token_id",
        "Amount or token ID",
        format!("{n} (ERC-20 amount in base units, or ERC-721 token ID)"),
    );
    d.warn(Warning::AmbiguousTokenCall { contract: token.into() });
}

fn approval(
    d: &mut DecodedPayload,
    ctx: &DecodeContext<'_>,
    contract: &Address,
    spender_address: &Address,
    amount: U256,
    title: &str,
    (key, label): (&str, &str),
) {
    let token = addr(contract);
    let spender = addr(spender_address);
    d.title = title.into();
    let shown = d.address(ctx, contract);
    d.push("token_contract", "Token contract", shown);
    let shown = d.address(ctx, spender_address);
    d.push("spender", "Spender", shown);
    let unlimited = is_unlimited(amount);
    if unlimited {
        let shown = unlimited_amount(d, ctx, &token);
        d.push(key, label, shown);
        d.facts.unlimited_approval = true;
        d.warn(Warning::UnlimitedApproval { token: token.clone(), spender: spender.clone() });
    } else {
        let shown = token_amount(d, ctx, &token, amount);
        d.push(key, label, shown);
    }
    let mut fact = token_fact(TokenAction::Approve, &token, &spender, amount);
    fact.unlimited = unlimited;
    if unlimited {
        fact.amount = None;
    }
    d.facts.recipients.push(spender);
    d.facts.tokens.push(fact);
}

/// The message as text when it is UTF-8 without C0/C1 control characters other than tab,
/// line feed and carriage return (which the sanitiser shows escaped, except line feeds).
fn text_of(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    let binary = s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
    (!binary && !s.trim().is_empty()).then_some(s)
}

pub(super) fn decode_eip191(payload: &[u8], chain: &ChainId) -> DecodedPayload {
    let mut d = DecodedPayload::new(chain, payload, "Sign a message");
    d.push("network", "Network", format!("{} ({chain})", chain.display_name()));
    match text_of(payload) {
        Some(text) => d.push_text("message".into(), "Message".into(), text, TextKind::Message),
        None => {
            d.push("message_hex", "Message (hex)", format!("0x{}", hex::encode(payload)));
            d.warn(Warning::MessageNotText);
        }
    }
    d
}
