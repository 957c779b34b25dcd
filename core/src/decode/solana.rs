//! Solana messages for display: System transfers, SPL Token `Transfer`, `TransferChecked`,
//! `Approve`, `SetAuthority`, `CloseAccount`, Compute Budget settings; anything else blind.
//!
//! Instruction layouts are the programs' documented fixed layouts (System: u32 LE tag;
//! SPL Token: u8 tag, u64 LE amounts, `COption<Pubkey>` as a tag byte + 32 bytes). Data
//! must have exactly the expected length, else the instruction counts as not understood.

use alloy_primitives::U256;

use super::units::{format_native, format_units};
use super::{DecodeError, DecodedPayload, Warning};
use crate::caip::AccountId;
use crate::payload::solana::{AccountRef, CompiledInstruction, MessageVersion, SolanaMessage};
use crate::payload::parse_solana_message;

/// The System program.
pub const SYSTEM_PROGRAM: &str = "11111111111111111111111111111111";
/// The SPL Token program.
pub const TOKEN_PROGRAM: &str = "TokenkegQfeYyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
/// The SPL Token-2022 program (same layout for the instructions decoded here).
pub const TOKEN_2022_PROGRAM: &str = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb";
/// The Compute Budget program.
pub const COMPUTE_BUDGET_PROGRAM: &str = "ComputeBudget111111111111111111111111111111";

fn b58(k: &[u8; 32]) -> String {
    bs58::encode(k).into_string()
}

struct Ctx<'a> {
    msg: &'a SolanaMessage,
    d: DecodedPayload,
    account: String,
}

impl Ctx<'_> {
    /// The display form of an instruction's n-th account; lookups cannot be resolved.
    fn acc(&mut self, ix: &CompiledInstruction, n: usize) -> Option<String> {
        let i = *ix.accounts.get(n)?;
        match self.msg.account(i)? {
            AccountRef::Static(k) => Some(b58(&k)),
            AccountRef::Lookup { table, index } => {
                self.d.warn(Warning::UnresolvedAddresses);
                Some(format!("unresolved:{}#{index}", b58(&table)))
            }
        }
    }
}

fn u64_le(b: Option<&[u8]>) -> Option<u64> {
    b.and_then(|s| s.try_into().ok()).map(u64::from_le_bytes)
}

pub(super) fn decode_message(
    payload: &[u8],
    account: &AccountId,
) -> Result<DecodedPayload, DecodeError> {
    let msg = parse_solana_message(payload)?;
    let chain = &account.chain;
    let mut c = Ctx {
        msg: &msg,
        d: DecodedPayload::new(chain, payload, "Solana transaction"),
        account: account.address.clone(),
    };
    c.d.push("Network", format!("{} ({chain})", chain.display_name()));
    c.d.push(
        "Message version",
        match msg.version {
            MessageVersion::Legacy => "legacy",
            MessageVersion::V0 => "v0",
        },
    );
    if let Some(fp) = msg.fee_payer() {
        c.d.push("Fee payer", b58(fp));
    }
    let signers: Vec<String> = msg.signers().iter().map(b58).collect();
    if !signers.contains(&account.address) {
        c.d.warn(Warning::AccountNotSigner);
    }
    c.d.push("Signers", signers.join(", "));
    c.d.push("Recent blockhash", b58(&msg.recent_blockhash));
    if !msg.address_table_lookups.is_empty() {
        c.d.push("Address lookup tables", msg.address_table_lookups.len().to_string());
    }
    let n = msg.instructions.len();
    let mut titles = Vec::new();
    for (i, ix) in msg.instructions.iter().enumerate() {
        let prefix = if n > 1 { format!("#{} ", i + 1) } else { String::new() };
        if let Some(t) = instruction(&mut c, ix, &prefix) {
            titles.push(t);
        }
    }
    if n == 0 {
        c.d.push("Instructions", "none");
    }
    c.d.title = match titles.as_slice() {
        [] => "Solana transaction".into(),
        [one] => one.clone(),
        many => many.join(" + "),
    };
    Ok(c.d)
}

/// Decodes one instruction into rows; returns a title for known actions.
fn instruction(c: &mut Ctx<'_>, ix: &CompiledInstruction, p: &str) -> Option<String> {
    let program = c.msg.program_id(ix).map(b58).unwrap_or_default();
    let data = ix.data.as_slice();
    match program.as_str() {
        SYSTEM_PROGRAM => {
            let tag = data.get(..4).and_then(|t| t.try_into().ok()).map(u32::from_le_bytes);
            if tag == Some(2) && data.len() == 12 {
                if let (Some(lamports), Some(from), Some(to)) =
                    (u64_le(data.get(4..12)), c.acc(ix, 0), c.acc(ix, 1))
                {
                    let amount = format_native(&c.d.chain, U256::from(lamports));
                    c.d.push(format!("{p}Action"), "Transfer SOL");
                    c.d.push(format!("{p}From"), from.clone());
                    c.d.push(format!("{p}To"), to.clone());
                    c.d.push(format!("{p}Amount"), amount);
                    if from == c.account {
                        c.d.facts.native_value =
                            c.d.facts.native_value.saturating_add(u128::from(lamports));
                    }
                    c.d.facts.recipients.push(to);
                    return Some("Send SOL".into());
                }
            }
            unknown(c, ix, &program, p, "unrecognised System instruction")
        }
        COMPUTE_BUDGET_PROGRAM => match (data.first(), data.len()) {
            (Some(2), 5) => {
                let units = data.get(1..5).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
                c.d.push(format!("{p}Compute unit limit"), units.unwrap_or(0).to_string());
                None
            }
            (Some(3), 9) => {
                let price = u64_le(data.get(1..9)).unwrap_or(0);
                c.d.push(format!("{p}Priority fee"), format!("{price} micro-lamports per compute unit"));
                None
            }
            _ => unknown(c, ix, &program, p, "unrecognised Compute Budget instruction"),
        },
        TOKEN_PROGRAM | TOKEN_2022_PROGRAM => token(c, ix, &program, p),
        _ => {
            c.d.facts.contracts.push(program.clone());
            unknown(c, ix, &program, p, "instruction of a program the phone cannot decode")
        }
    }
}

fn unknown(
    c: &mut Ctx<'_>,
    ix: &CompiledInstruction,
    program: &str,
    p: &str,
    reason: &str,
) -> Option<String> {
    c.d.push(format!("{p}Program"), program.to_string());
    c.d.push(format!("{p}Instruction data"), format!("{} bytes", ix.data.len()));
    c.d.mark_blind(reason.to_string());
    None
}

fn token(c: &mut Ctx<'_>, ix: &CompiledInstruction, program: &str, p: &str) -> Option<String> {
    let data = ix.data.as_slice();
    let acc = |c: &mut Ctx<'_>, n| c.acc(ix, n);
    match (data.first().copied(), data.len()) {
        // Transfer { amount } — [source, destination, owner, ...signers]
        (Some(3), 9) => {
            let (Some(amount), Some(src), Some(dst), Some(owner)) =
                (u64_le(data.get(1..9)), acc(c, 0), acc(c, 1), acc(c, 2))
            else {
                return unknown(c, ix, program, p, "SPL Token transfer with missing accounts");
            };
            c.d.push(format!("{p}Action"), "Transfer tokens");
            c.d.push(format!("{p}From token account"), src);
            c.d.push(format!("{p}To token account"), dst.clone());
            c.d.push(format!("{p}Owner"), owner);
            c.d.push(format!("{p}Amount"), format!("{amount} (base units; decimals not given)"));
            c.d.facts.recipients.push(dst);
            Some("Send tokens".into())
        }
        // TransferChecked { amount, decimals } — [source, mint, destination, owner, ...]
        (Some(12), 10) => {
            let (Some(amount), Some(&decimals), Some(src), Some(mint), Some(dst), Some(owner)) = (
                u64_le(data.get(1..9)),
                data.get(9),
                acc(c, 0),
                acc(c, 1),
                acc(c, 2),
                acc(c, 3),
            ) else {
                return unknown(c, ix, program, p, "SPL Token transfer with missing accounts");
            };
            c.d.push(format!("{p}Action"), "Transfer tokens");
            c.d.push(format!("{p}Mint"), mint);
            c.d.push(format!("{p}From token account"), src);
            c.d.push(format!("{p}To token account"), dst.clone());
            c.d.push(format!("{p}Owner"), owner);
            c.d.push(format!("{p}Amount"), format_units(U256::from(amount), decimals));
            c.d.facts.recipients.push(dst);
            Some("Send tokens".into())
        }
        // Approve { amount } — [source, delegate, owner, ...]
        (Some(4), 9) => {
            let (Some(amount), Some(src), Some(delegate), Some(owner)) =
                (u64_le(data.get(1..9)), acc(c, 0), acc(c, 1), acc(c, 2))
            else {
                return unknown(c, ix, program, p, "SPL Token approve with missing accounts");
            };
            c.d.push(format!("{p}Action"), "Approve a delegate");
            c.d.push(format!("{p}Token account"), src.clone());
            c.d.push(format!("{p}Delegate"), delegate.clone());
            c.d.push(format!("{p}Owner"), owner);
            if amount == u64::MAX {
                c.d.push(format!("{p}Allowance"), "unlimited");
                c.d.facts.unlimited_approval = true;
                c.d.warn(Warning::UnlimitedApproval { token: src.clone(), spender: delegate.clone() });
            } else {
                c.d.push(format!("{p}Allowance"), format!("{amount} (base units; decimals not given)"));
            }
            c.d.facts.recipients.push(delegate.clone());
            c.d.warn(Warning::TokenDelegate { account: src, delegate });
            Some("Approve token delegate".into())
        }
        // SetAuthority { authority_type, new_authority: COption<Pubkey> } — [account, current, ...]
        (Some(6), 3 | 35) => {
            let kind = data.get(1).copied().unwrap_or(u8::MAX);
            let new_authority = match (data.get(2), data.get(3..35)) {
                (Some(0), None) => Some(None),
                (Some(1), Some(k)) => <[u8; 32]>::try_from(k).ok().map(|k| Some(b58(&k))),
                _ => None,
            };
            let (Some(new_authority), Some(target), Some(current)) =
                (new_authority, acc(c, 0), acc(c, 1))
            else {
                return unknown(c, ix, program, p, "malformed SPL Token SetAuthority");
            };
            let kind_name = match kind {
                0 => "mint tokens".to_string(),
                1 => "freeze account".to_string(),
                2 => "account owner".to_string(),
                3 => "close account".to_string(),
                other => format!("authority type {other}"),
            };
            c.d.push(format!("{p}Action"), "Change authority");
            c.d.push(format!("{p}Account"), target.clone());
            c.d.push(format!("{p}Authority"), kind_name);
            c.d.push(format!("{p}Current authority"), current);
            c.d.push(
                format!("{p}New authority"),
                new_authority.clone().unwrap_or_else(|| "none (removed)".into()),
            );
            if let Some(n) = &new_authority {
                c.d.facts.recipients.push(n.clone());
            }
            c.d.warn(Warning::SetAuthority { account: target, new_authority });
            Some("Change token authority".into())
        }
        // CloseAccount — [account, destination, owner, ...]
        (Some(9), 1) => {
            let (Some(target), Some(dst), Some(owner)) = (acc(c, 0), acc(c, 1), acc(c, 2)) else {
                return unknown(c, ix, program, p, "SPL Token close with missing accounts");
            };
            c.d.push(format!("{p}Action"), "Close token account");
            c.d.push(format!("{p}Account"), target.clone());
            c.d.push(format!("{p}Rent goes to"), dst.clone());
            c.d.push(format!("{p}Owner"), owner);
            c.d.facts.recipients.push(dst.clone());
            c.d.warn(Warning::CloseAccount { account: target, destination: dst });
            Some("Close token account".into())
        }
        _ => unknown(c, ix, program, p, "unrecognised SPL Token instruction"),
    }
}
