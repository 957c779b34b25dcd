//! Solana messages for display: System transfers, SPL Token `Transfer`, `TransferChecked`,
//! `Approve`, `SetAuthority`, `CloseAccount`, Compute Budget settings; anything else blind.
//!
//! Instruction layouts are the programs' documented fixed layouts (System: u32 LE tag;
//! SPL Token: u8 tag, u64 LE amounts, `COption<Pubkey>` as a tag byte + 32 bytes). Data
//! must have exactly the expected length, else the instruction counts as not understood.

use alloy_primitives::U256;

use super::units::{format_native, format_units};
use super::{DecodeError, DecodedPayload, TokenAction, TokenFact, Warning};
use crate::caip::AccountId;
use crate::payload::solana::{AccountRef, CompiledInstruction, MessageVersion, SolanaMessage};

/// The System program.
pub const SYSTEM_PROGRAM: &str = "11111111111111111111111111111111";
/// The SPL Token program.
pub const TOKEN_PROGRAM: &str = "TokenkegQfeYyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
/// The SPL Token-2022 program (same layout for the instructions decoded here).
pub const TOKEN_2022_PROGRAM: &str = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb";
/// The Compute Budget program.
pub const COMPUTE_BUDGET_PROGRAM: &str = "ComputeBudget111111111111111111111111111111";
/// Precompiles whose verified signatures count towards the fee (first data byte = count).
const SIGNATURE_PRECOMPILES: [&str; 3] = [
    "Ed25519SigVerify111111111111111111111111111",
    "KeccakSecp256k11111111111111111111111111111",
    "Secp256r1SigVerify1111111111111111111111111",
];

/// Lamports per signature (the base fee).
pub const LAMPORTS_PER_SIGNATURE: u64 = 5_000;
/// Compute units the runtime allows an instruction when no `SetComputeUnitLimit` is given
/// (counted for every instruction other than Compute Budget ones: the worst case).
pub const DEFAULT_INSTRUCTION_COMPUTE_UNITS: u64 = 200_000;
/// Most compute units a transaction may request.
pub const MAX_COMPUTE_UNITS: u64 = 1_400_000;

/// Worst-case fee of `msg` in lamports: 5,000 per signature (the message's required
/// signatures and those its signature precompiles verify) plus the priority fee,
/// ceil(compute-unit price in micro-lamports × compute-unit limit / 10^6), where the limit
/// is `SetComputeUnitLimit`'s (largest, if repeated) or 200,000 per instruction other than
/// Compute Budget ones, and at most 1,400,000.
/// `keys` are the message's static keys in base58 (`keys[i]` for key `i`).
fn max_fee(msg: &SolanaMessage, keys: &[String]) -> u128 {
    let (mut limit, mut price, mut others, mut signatures) =
        (None::<u64>, 0u64, 0u64, u64::from(msg.header.num_required_signatures));
    for ix in &msg.instructions {
        let program = keys.get(usize::from(ix.program_id_index)).map(String::as_str).unwrap_or_default();
        let data = ix.data.as_slice();
        if program == COMPUTE_BUDGET_PROGRAM {
            match (data.first(), data.get(1..5), data.len()) {
                (Some(2), Some(units), 5) => {
                    let units = units.try_into().map(u32::from_le_bytes).unwrap_or(u32::MAX);
                    limit = Some(limit.unwrap_or(0).max(u64::from(units)));
                }
                (Some(3), _, 9) => price = price.max(u64_le(data.get(1..9)).unwrap_or(u64::MAX)),
                _ => {}
            }
            continue;
        }
        others += 1;
        if SIGNATURE_PRECOMPILES.contains(&program) {
            signatures += u64::from(data.first().copied().unwrap_or(0));
        }
    }
    let default_units = others.saturating_mul(DEFAULT_INSTRUCTION_COMPUTE_UNITS);
    let units = limit.unwrap_or(default_units).min(MAX_COMPUTE_UNITS);
    let priority = (u128::from(price) * u128::from(units)).div_ceil(1_000_000);
    u128::from(signatures) * u128::from(LAMPORTS_PER_SIGNATURE) + priority
}

fn b58(k: &[u8; 32]) -> String {
    bs58::encode(k).into_string()
}

struct Ctx<'a> {
    msg: &'a SolanaMessage,
    d: DecodedPayload,
    account: String,
    /// The static keys in base58, encoded once.
    keys: Vec<String>,
}

/// Where an instruction's rows go: keys `ix.<n>.<name>`, labels prefixed `#n ` when the
/// message has several instructions.
struct Rows {
    key: String,
    label: String,
}

impl Ctx<'_> {
    fn put(&mut self, p: &Rows, name: &str, label: &str, value: impl Into<String>) {
        self.d.push(format!("{}{name}", p.key), format!("{}{label}", p.label), value);
    }

    /// The display form of an instruction's n-th account; lookups cannot be resolved.
    fn acc(&mut self, ix: &CompiledInstruction, n: usize) -> Option<String> {
        let i = *ix.accounts.get(n)?;
        match self.msg.account(i)? {
            AccountRef::Static(k) => Some(self.keys.get(usize::from(i)).cloned().unwrap_or_else(|| b58(&k))),
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
    msg: &SolanaMessage,
    payload: &[u8],
    account: &AccountId,
) -> Result<DecodedPayload, DecodeError> {
    let chain = &account.chain;
    let mut c = Ctx {
        msg,
        d: DecodedPayload::new(chain, payload, "Solana transaction"),
        account: account.address.clone(),
        keys: msg.account_keys.iter().map(b58).collect(),
    };
    c.d.push("network", "Network", format!("{} ({chain})", chain.display_name()));
    c.d.push(
        "message_version",
        "Message version",
        match msg.version {
            MessageVersion::Legacy => "legacy",
            MessageVersion::V0 => "v0",
        },
    );
    // The fee payer and the signers are the first account keys, already encoded.
    let fee_payer = msg.fee_payer().and(c.keys.first().cloned());
    if let Some(fp) = &fee_payer {
        c.d.push("fee_payer", "Fee payer", fp.clone());
    }
    let signers: Vec<String> = c.keys.iter().take(msg.signers().len()).cloned().collect();
    if !signers.contains(&account.address) {
        c.d.warn(Warning::AccountNotSigner);
    }
    c.d.push("signers", "Signers", signers.join(", "));
    c.d.push("recent_blockhash", "Recent blockhash", b58(&msg.recent_blockhash));
    if !msg.address_table_lookups.is_empty() {
        let tables = msg.address_table_lookups.len().to_string();
        c.d.push("lookup_tables", "Address lookup tables", tables);
    }
    let n = msg.instructions.len();
    let mut titles = Vec::new();
    for (i, ix) in msg.instructions.iter().enumerate() {
        let rows =
            Rows { key: format!("ix.{}.", i + 1), label: if n > 1 { format!("#{} ", i + 1) } else { String::new() } };
        if let Some(t) = instruction(&mut c, ix, &rows) {
            titles.push(t);
        }
    }
    if n == 0 {
        c.d.push("instructions", "Instructions", "none");
    }
    // The fee payer pays the fee; the bound account's worst case counts it only if it is
    // the fee payer.
    let fee = max_fee(msg, &c.keys);
    let pays = fee_payer.as_deref() == Some(account.address.as_str());
    c.d.facts.max_fee = if pays { fee } else { 0 };
    c.d.push("max_fee", "Max network fee", format_native(chain, U256::from(fee)));
    let (value, own_fee) = (U256::from(c.d.facts.native_value), U256::from(c.d.facts.max_fee));
    c.d.push_max_total(value, own_fee);
    c.d.title = match titles.as_slice() {
        [] => "Solana transaction".into(),
        [one] => one.clone(),
        many => many.join(" + "),
    };
    Ok(c.d)
}

/// Decodes one instruction into rows; returns a title for known actions.
fn instruction(c: &mut Ctx<'_>, ix: &CompiledInstruction, p: &Rows) -> Option<String> {
    let program = c.keys.get(usize::from(ix.program_id_index)).cloned().unwrap_or_default();
    let data = ix.data.as_slice();
    match program.as_str() {
        SYSTEM_PROGRAM => {
            let tag = data.get(..4).and_then(|t| t.try_into().ok()).map(u32::from_le_bytes);
            if tag == Some(2) && data.len() == 12 {
                if let (Some(lamports), Some(from), Some(to)) = (u64_le(data.get(4..12)), c.acc(ix, 0), c.acc(ix, 1)) {
                    let amount = format_native(&c.d.chain, U256::from(lamports));
                    c.put(p, "action", "Action", "Transfer SOL");
                    c.put(p, "from", "From", from.clone());
                    c.put(p, "to", "To", to.clone());
                    c.put(p, "amount", "Amount", amount);
                    if from == c.account {
                        c.d.facts.native_value = c.d.facts.native_value.saturating_add(u128::from(lamports));
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
                c.put(p, "compute_unit_limit", "Compute unit limit", units.unwrap_or(0).to_string());
                None
            }
            (Some(3), 9) => {
                let price = u64_le(data.get(1..9)).unwrap_or(0);
                c.put(p, "priority_fee", "Priority fee", format!("{price} micro-lamports per compute unit"));
                None
            }
            _ => unknown(c, ix, &program, p, "unrecognised Compute Budget instruction"),
        },
        TOKEN_PROGRAM | TOKEN_2022_PROGRAM => token(c, ix, &program, p),
        _ => {
            if !c.d.facts.contracts.contains(&program) {
                c.d.facts.contracts.push(program.clone());
            }
            unknown(c, ix, &program, p, "instruction of a program the phone cannot decode")
        }
    }
}

fn unknown(c: &mut Ctx<'_>, ix: &CompiledInstruction, program: &str, p: &Rows, reason: &str) -> Option<String> {
    c.put(p, "program", "Program", program.to_string());
    c.put(p, "data", "Instruction data", format!("{} bytes", ix.data.len()));
    c.d.mark_blind(reason.to_string());
    None
}

fn spl_fact(action: TokenAction, token: String, to: &str, amount: u64, unlimited: bool) -> TokenFact {
    TokenFact {
        action,
        token,
        to: to.to_string(),
        amount: (!unlimited).then(|| amount.to_string()),
        unlimited,
        maybe_token_id: false,
    }
}

fn token(c: &mut Ctx<'_>, ix: &CompiledInstruction, program: &str, p: &Rows) -> Option<String> {
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
            c.put(p, "action", "Action", "Transfer tokens");
            c.put(p, "from_token_account", "From token account", src.clone());
            c.put(p, "to_token_account", "To token account", dst.clone());
            c.put(p, "owner", "Owner", owner);
            c.put(p, "amount", "Amount", format!("{amount} (base units; decimals not given)"));
            c.d.facts.tokens.push(spl_fact(TokenAction::Transfer, src, &dst, amount, false));
            c.d.facts.recipients.push(dst);
            Some("Send tokens".into())
        }
        // TransferChecked { amount, decimals } — [source, mint, destination, owner, ...]
        (Some(12), 10) => {
            let (Some(amount), Some(&decimals), Some(src), Some(mint), Some(dst), Some(owner)) =
                (u64_le(data.get(1..9)), data.get(9), acc(c, 0), acc(c, 1), acc(c, 2), acc(c, 3))
            else {
                return unknown(c, ix, program, p, "SPL Token transfer with missing accounts");
            };
            c.put(p, "action", "Action", "Transfer tokens");
            c.put(p, "mint", "Mint", mint.clone());
            c.put(p, "from_token_account", "From token account", src);
            c.put(p, "to_token_account", "To token account", dst.clone());
            c.put(p, "owner", "Owner", owner);
            c.put(p, "amount", "Amount", format_units(U256::from(amount), decimals));
            c.d.facts.tokens.push(spl_fact(TokenAction::Transfer, mint, &dst, amount, false));
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
            c.put(p, "action", "Action", "Approve a delegate");
            c.put(p, "token_account", "Token account", src.clone());
            c.put(p, "delegate", "Delegate", delegate.clone());
            c.put(p, "owner", "Owner", owner);
            if amount == u64::MAX {
                c.put(p, "allowance", "Allowance", "unlimited");
                c.d.facts.unlimited_approval = true;
                c.d.warn(Warning::UnlimitedApproval { token: src.clone(), spender: delegate.clone() });
            } else {
                c.put(p, "allowance", "Allowance", format!("{amount} (base units; decimals not given)"));
            }
            let fact = spl_fact(TokenAction::Approve, src.clone(), &delegate, amount, amount == u64::MAX);
            c.d.facts.tokens.push(fact);
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
            let (Some(new_authority), Some(target), Some(current)) = (new_authority, acc(c, 0), acc(c, 1)) else {
                return unknown(c, ix, program, p, "malformed SPL Token SetAuthority");
            };
            let kind_name = match kind {
                0 => "mint tokens".to_string(),
                1 => "freeze account".to_string(),
                2 => "account owner".to_string(),
                3 => "close account".to_string(),
                other => format!("authority type {other}"),
            };
            c.put(p, "action", "Action", "Change authority");
            c.put(p, "account", "Account", target.clone());
            c.put(p, "authority", "Authority", kind_name);
            c.put(p, "current_authority", "Current authority", current);
            let shown = new_authority.clone().unwrap_or_else(|| "none (removed)".into());
            c.put(p, "new_authority", "New authority", shown);
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
            c.put(p, "action", "Action", "Close token account");
            c.put(p, "account", "Account", target.clone());
            c.put(p, "rent_to", "Rent goes to", dst.clone());
            c.put(p, "owner", "Owner", owner);
            c.d.facts.recipients.push(dst.clone());
            c.d.warn(Warning::CloseAccount { account: target, destination: dst });
            Some("Close token account".into())
        }
        _ => unknown(c, ix, program, p, "unrecognised SPL Token instruction"),
    }
}
