//! Warnings from the phone's own history (issue 15): nothing leaves the phone.
//!
//! When a request arrives, after it is decoded and before the guardrails run, [`assess`]
//! adds these [`Warning`]s to what the user is shown (so they are part of the display
//! digest):
//!
//! - `first_recipient`: this account never signed a payment to this recipient;
//! - `first_spender`: this account never approved this spender (delegate, operator);
//! - `tokens_to_token_contract`: tokens are sent to a token contract — the token's own
//!   address, a token of the phone's token list, or a contract this phone has signed token
//!   calls to on the chain;
//! - `unusual_value`: the native value is more than [`UNUSUAL_FACTOR`] times the pair's
//!   average on the chain (the mean over its signed requests that moved native value),
//!   once it has at least [`UNUSUAL_MIN_SIGNED`] of them;
//! - `idle_pair`: the pair signed nothing and was not paired within [`IDLE_SECS`] (by the
//!   engine's clock).
//!
//! What the checks need lives in two small tables the store updates in the transaction
//! that records a request as signed (`store::risk`), so the check reads a fixed number of
//! rows per counterparty, whatever the size of the history. The guardrail settings
//! ([`RiskRules`]) turn each into "ask" (shown, the user decides) or "block" (a guardrail
//! violation).

use std::collections::BTreeSet;

use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};

use crate::caip::{AccountId, ChainId};
use crate::decode::units::format_native;
use crate::decode::{DecodeContext, DecodedPayload, PayloadFacts, TokenAction, Warning};
use crate::store::{PairRecord, Store, StoreError};

/// "Much larger": more than this many times the pair's average native value.
pub const UNUSUAL_FACTOR: u128 = 10;

/// The pair's average counts once it has this many signed requests that moved native value.
pub const UNUSUAL_MIN_SIGNED: u64 = 3;

/// "Idle": no signed request and no pairing for longer than this (30 days).
pub const IDLE_SECS: u64 = 30 * 86_400;

/// Whether a history warning asks the user or blocks the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskAction {
    /// Shown as a warning; the user decides (the default).
    #[default]
    Ask,
    /// A guardrail violation: the request is blocked and octane told (`guardrail`).
    Block,
}

/// What to do about each history warning (part of [`crate::guardrails::Guardrails`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskRules {
    /// `first_recipient`.
    pub first_recipient: RiskAction,
    /// `first_spender`.
    pub first_spender: RiskAction,
    /// `tokens_to_token_contract`.
    pub tokens_to_token_contract: RiskAction,
    /// `unusual_value`.
    pub unusual_value: RiskAction,
    /// `idle_pair`.
    pub idle_pair: RiskAction,
}

impl RiskRules {
    /// The action for `w` if it is a history warning (`None` for the decoder's own).
    pub fn action(&self, w: &Warning) -> Option<RiskAction> {
        match w {
            Warning::FirstRecipient { .. } => Some(self.first_recipient),
            Warning::FirstSpender { .. } => Some(self.first_spender),
            Warning::TokensToTokenContract { .. } => Some(self.tokens_to_token_contract),
            Warning::UnusualValue { .. } => Some(self.unusual_value),
            Warning::IdlePair { .. } => Some(self.idle_pair),
            _ => None,
        }
    }
}

/// How a counterparty is known to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Received value or tokens (or other rights than an approval).
    Recipient,
    /// Was approved to spend tokens (spender, delegate, operator).
    Spender,
    /// A token contract (or mint) the account moved or approved.
    Token,
}

impl Role {
    /// Its name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Recipient => "recipient",
            Role::Spender => "spender",
            Role::Token => "token",
        }
    }
}

/// How the store keys an address: EVM hex in lowercase, others (base58) as they are.
pub fn normal_address(chain: &ChainId, address: &str) -> String {
    if chain.is_evm() {
        address.to_ascii_lowercase()
    } else {
        address.to_string()
    }
}

/// The counterparties of a payload, normalised and without repeats: spenders are the
/// `to` of approvals, recipients every other address that receives value or rights, tokens
/// the token contracts named. Unresolved addresses are left out. The store records these
/// when a request is signed; [`assess`] looks them up.
pub fn counterparties(chain: &ChainId, facts: &PayloadFacts) -> BTreeSet<(Role, String)> {
    let mut out = BTreeSet::new();
    let usable = |a: &str| !a.is_empty() && !a.starts_with("unresolved:");
    let paid: BTreeSet<String> = facts
        .tokens
        .iter()
        .filter(|t| t.action == TokenAction::Transfer)
        .map(|t| normal_address(chain, &t.to))
        .collect();
    let mut spenders = BTreeSet::new();
    for t in &facts.tokens {
        if usable(&t.token) {
            out.insert((Role::Token, normal_address(chain, &t.token)));
        }
        if t.action == TokenAction::Approve && usable(&t.to) {
            spenders.insert(normal_address(chain, &t.to));
        }
    }
    for r in facts.recipients.iter().filter(|r| usable(r)) {
        let r = normal_address(chain, r);
        if paid.contains(&r) || !spenders.contains(&r) {
            out.insert((Role::Recipient, r));
        }
    }
    out.extend(spenders.into_iter().map(|s| (Role::Spender, s)));
    out
}

/// What a pair has signed on one chain (the store's running summary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairUsage {
    /// Signed requests that moved native value.
    pub valued: u64,
    /// Their native value, added up (saturating), in the chain's smallest unit.
    pub value_sum: u128,
}

/// What the store knows for one request's checks ([`Store::risk_history`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskHistory {
    /// The asked counterparties the account already signed for (recipients and spenders
    /// of this account; tokens of anyone on the chain).
    pub known: BTreeSet<(Role, String)>,
    /// The pair's usage on the request's chain.
    pub usage: PairUsage,
    /// When the pair last had a request signed, on any chain.
    pub last_signed_at: Option<u64>,
}

/// The history warnings for a payload, given what the store knows. Pure: the caller reads
/// `history` for exactly [`counterparties`] of the payload and the recipients of its token
/// transfers (as [`Role::Token`]).
pub fn warnings(
    payload: &DecodedPayload,
    account: &AccountId,
    history: &RiskHistory,
    paired_at: u64,
    now: u64,
    ctx: &DecodeContext<'_>,
) -> Vec<Warning> {
    let chain = &payload.chain;
    let facts = &payload.facts;
    let own = normal_address(chain, &account.address);
    let mut out = Vec::new();
    let mut push = |w: Warning| {
        if !out.contains(&w) {
            out.push(w);
        }
    };
    for (role, address) in counterparties(chain, facts) {
        if address == own || history.known.contains(&(role, address.clone())) {
            continue;
        }
        let shown = shown_address(facts, &address);
        match role {
            Role::Recipient => push(Warning::FirstRecipient { recipient: shown }),
            Role::Spender => push(Warning::FirstSpender { spender: shown }),
            Role::Token => {}
        }
    }
    for t in facts.tokens.iter().filter(|t| t.action == TokenAction::Transfer) {
        let to = normal_address(chain, &t.to);
        let is_token = to == normal_address(chain, &t.token)
            || listed_token(ctx, chain, &t.to)
            || history.known.contains(&(Role::Token, to));
        if is_token {
            push(Warning::TokensToTokenContract { recipient: t.to.clone() });
        }
    }
    let usage = history.usage;
    if facts.native_value > 0 && usage.valued >= UNUSUAL_MIN_SIGNED {
        // value > FACTOR × sum / count, without dividing or overflowing.
        let value = U256::from(facts.native_value) * U256::from(usage.valued);
        if value > U256::from(usage.value_sum) * U256::from(UNUSUAL_FACTOR) {
            let usual = usage.value_sum / u128::from(usage.valued);
            push(Warning::UnusualValue {
                value: format_native(chain, U256::from(facts.native_value)),
                usual: format_native(chain, U256::from(usual)),
            });
        }
    }
    let last = history.last_signed_at.map_or(paired_at, |s| s.max(paired_at));
    let idle = now.saturating_sub(last);
    if idle > IDLE_SECS {
        push(Warning::IdlePair { days: idle / 86_400 });
    }
    out
}

/// Whether `address` is a token of the phone's token list or of the metadata bundle.
fn listed_token(ctx: &DecodeContext<'_>, chain: &ChainId, address: &str) -> bool {
    if ctx.tokens.token(chain, address).is_some() {
        return true;
    }
    match (chain, ctx.clear, address.parse::<Address>()) {
        (ChainId::Evm(id), Some(set), Ok(a)) => set.token(*id, &a).is_some(),
        _ => false,
    }
}

/// The address as the payload's facts spell it (checksummed), for the warning's text.
fn shown_address(facts: &PayloadFacts, normal: &str) -> String {
    let same = |a: &&String| a.eq_ignore_ascii_case(normal);
    facts
        .recipients
        .iter()
        .find(same)
        .or_else(|| facts.tokens.iter().map(|t| &t.to).find(same))
        .cloned()
        .unwrap_or_else(|| normal.to_string())
}

/// Adds the history warnings of a request that just arrived to `decoded` (the sign engine
/// calls it after decoding, before the guardrails, which may block on them). Reads a fixed
/// number of rows per counterparty ([`Store::risk_history`]).
pub fn assess(
    store: &Store,
    pair: &PairRecord,
    account: &AccountId,
    now: u64,
    ctx: &DecodeContext<'_>,
    decoded: &mut DecodedPayload,
) -> Result<(), StoreError> {
    let chain = &decoded.chain;
    let mut wanted = counterparties(chain, &decoded.facts);
    for t in decoded.facts.tokens.iter().filter(|t| t.action == TokenAction::Transfer) {
        wanted.insert((Role::Token, normal_address(chain, &t.to)));
    }
    let history = store.risk_history(pair.pair_id, account, &wanted)?;
    let found = warnings(decoded, account, &history, pair.created_at, now, ctx);
    if !found.is_empty() {
        let codes: Vec<&str> = found.iter().map(Warning::code).collect();
        tracing::debug!(?codes, "sign: warnings from the phone's history");
    }
    for w in found {
        if !decoded.warnings.contains(&w) {
            decoded.warnings.push(w);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::decode::{KnownTokens, TokenFact, TokenInfo, TokenStandard};

    const ME: &str = "0x001e2b7dE757bA469a57bF6b23d982458a07eFcE";
    const USDC: &str = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
    const DAI: &str = "0x6B175474E89094C44Da98b954EedeAC495271d0F";
    const BOB: &str = "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB";

    fn account() -> AccountId {
        format!("eip155:1:{ME}").parse().unwrap()
    }

    fn payload(native_value: u128, recipients: &[&str], tokens: Vec<TokenFact>) -> DecodedPayload {
        DecodedPayload {
            chain: ChainId::Evm(1),
            title: "t".into(),
            fields: vec![],
            warnings: vec![],
            blind: false,
            payload_hash: String::new(),
            facts: PayloadFacts {
                native_value,
                recipients: recipients.iter().map(|r| r.to_string()).collect(),
                tokens,
                ..Default::default()
            },
            descriptor: None,
        }
    }

    fn send_token(token: &str, to: &str) -> TokenFact {
        TokenFact {
            action: TokenAction::Transfer,
            token: token.into(),
            to: to.into(),
            amount: Some("1".into()),
            unlimited: false,
            maybe_token_id: false,
        }
    }

    fn codes(w: &[Warning]) -> Vec<&'static str> {
        w.iter().map(Warning::code).collect()
    }

    #[test]
    fn a_token_of_the_token_list_is_a_token_contract() {
        let mut list = KnownTokens::new();
        let info = TokenInfo { standard: TokenStandard::Erc20, symbol: "DAI".into(), decimals: Some(18) };
        list.insert(&ChainId::Evm(1), DAI, info);
        let ctx = DecodeContext { tokens: &list, ..Default::default() };
        let p = payload(0, &[DAI], vec![send_token(USDC, DAI)]);
        let known =
            RiskHistory { known: [(Role::Recipient, DAI.to_lowercase())].into_iter().collect(), ..Default::default() };
        assert_eq!(codes(&warnings(&p, &account(), &known, 0, 0, &ctx)), ["tokens_to_token_contract"]);
        // Without the list, a contract the phone never saw as a token is a person.
        let none = DecodeContext::default();
        assert!(warnings(&p, &account(), &known, 0, 0, &none).is_empty());
    }

    #[test]
    fn sending_to_yourself_is_never_a_first_payment() {
        let p = payload(5, &[&ME.to_lowercase(), BOB], vec![]);
        let w = warnings(&p, &account(), &RiskHistory::default(), 0, 0, &DecodeContext::default());
        assert_eq!(w, [Warning::FirstRecipient { recipient: BOB.into() }]);
    }

    #[test]
    fn idle_counts_from_the_later_of_pairing_and_last_signature() {
        let p = payload(0, &[], vec![]);
        let ctx = DecodeContext::default();
        let signed_long_ago = RiskHistory { last_signed_at: Some(0), ..Default::default() };
        let now = IDLE_SECS + 1;
        assert!(warnings(&p, &account(), &signed_long_ago, 1, now, &ctx).is_empty(), "paired recently");
        assert_eq!(warnings(&p, &account(), &signed_long_ago, 0, now, &ctx), [Warning::IdlePair { days: 30 }]);
    }

    #[test]
    fn huge_values_neither_overflow_nor_divide_by_zero() {
        let ctx = DecodeContext::default();
        let p = payload(u128::MAX, &[BOB], vec![]);
        let h = RiskHistory {
            known: [(Role::Recipient, BOB.to_lowercase())].into_iter().collect(),
            usage: PairUsage { valued: 3, value_sum: u128::MAX },
            last_signed_at: None,
        };
        assert!(warnings(&p, &account(), &h, 0, 0, &ctx).is_empty());
        let h = RiskHistory { usage: PairUsage { valued: 3, value_sum: 0 }, ..h };
        assert_eq!(codes(&warnings(&p, &account(), &h, 0, 0, &ctx)), ["unusual_value"]);
    }

    #[test]
    fn json_defaults_to_ask_and_refuses_unknown_names() {
        let r: RiskRules = serde_json::from_str(r#"{"idle_pair":"block"}"#).unwrap();
        assert_eq!(r, RiskRules { idle_pair: RiskAction::Block, ..Default::default() });
        assert!(serde_json::from_str::<RiskRules>(r#"{"idle":"block"}"#).is_err());
        assert!(serde_json::from_str::<RiskRules>(r#"{"idle_pair":"maybe"}"#).is_err());
    }
}
