//! The user's own signing rules, evaluated on the phone before the appliance is asked
//! (like a co-signer's policy). [`evaluate`] reports every rule a request breaks, each as
//! a [`Violation`] with a stable code the SP sees as the rejection reason.
//!
//! Guardrails work on the decoded facts ([`crate::decode::PayloadFacts`]), which are
//! display-grade; that is fine here because guardrails only ever *refuse* — a payload the
//! decoder does not understand is blind, and blind signing is refused by default.
//!
//! The sign engine evaluates them twice: when a request arrives and again when the user
//! approves it (with the settings and spend of that moment). Spend limits count the worst
//! case ([`worst_case_spend`]: value plus the most the network fee can be) of every request
//! signed, approved or still waiting — see [`SpendContext`]. Limits are **per phone**: this
//! phone's store is what is counted, so requests signed through another phone bonded to the
//! same appliance are not.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::caip::ChainId;
use crate::decode::units::format_native;
use crate::decode::{DecodedPayload, PayloadFacts, Warning};
use crate::risk::{RiskAction, RiskRules};
use alloy_primitives::U256;

/// Native-value limits on one chain, in its smallest unit (wei, lamports). What counts is
/// value plus the worst-case network fee ([`worst_case_spend`]). Limits are per phone: they
/// count what this phone signed, approved or has waiting, not other phones' requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NativeLimits {
    /// Most native value that may leave the account through one pair, ever.
    #[serde(with = "opt_u128_string", skip_serializing_if = "Option::is_none")]
    pub per_pair: Option<u128>,
    /// Most native value that may leave the account per UTC day, across pairs.
    #[serde(with = "opt_u128_string", skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u128>,
}

/// The user's guardrails (stored as JSON by the settings store). Every list is optional:
/// `None` means "no such rule"; `Some(vec![])` means "nothing is allowed".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Guardrails {
    /// Native-value limits per CAIP-2 chain.
    pub limits: BTreeMap<ChainId, NativeLimits>,
    /// If set, only these recipients (canonical addresses) may receive value or rights.
    pub recipient_allowlist: Option<Vec<String>>,
    /// If set, only these contracts / programs may be called.
    pub contract_allowlist: Option<Vec<String>>,
    /// If set, only these chains may be signed for.
    pub chain_allowlist: Option<Vec<ChainId>>,
    /// Refuse unlimited token approvals and approvals for all.
    pub block_unlimited_approvals: bool,
    /// Allow payloads the phone cannot fully decode (default: refused).
    pub allow_blind_signing: bool,
    /// What to do about each warning from the phone's own history (default: ask).
    pub risk: RiskRules,
}

impl Default for Guardrails {
    /// The defaults: no limits or lists, unlimited approvals blocked, blind signing refused.
    fn default() -> Self {
        Guardrails {
            limits: BTreeMap::new(),
            recipient_allowlist: None,
            contract_allowlist: None,
            chain_allowlist: None,
            block_unlimited_approvals: true,
            allow_blind_signing: false,
            risk: RiskRules::default(),
        }
    }
}

/// What has already been spent, supplied by the caller from the store (same chain and
/// unit as the request; see `store::StoreTx::spend`). Each amount is a request's
/// [`worst_case_spend`]; requests still waiting for the user or the appliance count, and
/// the request being evaluated does not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpendContext {
    /// Signed through this pair on this chain, ever, plus this pair's requests still
    /// waiting there.
    pub spent_by_pair: u128,
    /// Signed today (UTC) on this chain through any pair, plus every request still waiting
    /// there.
    pub spent_today: u128,
}

/// The most native value a request can take from the account: its value plus the
/// worst-case network fee, saturated. This is what the spend limits count, and what the
/// review screen shows as the worst-case total.
pub fn worst_case_spend(facts: &PayloadFacts) -> u128 {
    facts.native_value.saturating_add(facts.max_fee)
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The chain is not in the chain allowlist.
    ChainNotAllowed {
        /// The request's chain.
        chain: ChainId,
    },
    /// This request would take the pair's total over its limit.
    PerPairLimitExceeded {
        /// The chain.
        chain: ChainId,
        /// The limit.
        limit: u128,
        /// Spent and waiting before, plus this request's worst case (value + max fee).
        would_be: u128,
    },
    /// This request would take today's total over the daily limit.
    PerDayLimitExceeded {
        /// The chain.
        chain: ChainId,
        /// The limit.
        limit: u128,
        /// Spent today and waiting, plus this request's worst case (value + max fee).
        would_be: u128,
    },
    /// A recipient is not in the recipient allowlist.
    RecipientNotAllowed {
        /// The recipient.
        recipient: String,
    },
    /// A contract is not in the contract allowlist.
    ContractNotAllowed {
        /// The contract or program.
        contract: String,
    },
    /// A contract deployment while a contract allowlist is set.
    ContractCreationNotAllowed,
    /// An unlimited approval while those are blocked.
    UnlimitedApprovalBlocked,
    /// A payload the phone cannot decode while blind signing is off.
    BlindSigningDisabled,
    /// A warning from the phone's own history ([`crate::risk`]) the user set to "block";
    /// its code is the warning's.
    HistoryWarning(Warning),
}

impl Violation {
    /// A stable snake_case code (also the rejection reason sent to the SP).
    pub fn code(&self) -> &'static str {
        match self {
            Violation::ChainNotAllowed { .. } => "chain_not_allowed",
            Violation::PerPairLimitExceeded { .. } => "per_pair_limit_exceeded",
            Violation::PerDayLimitExceeded { .. } => "per_day_limit_exceeded",
            Violation::RecipientNotAllowed { .. } => "recipient_not_allowed",
            Violation::ContractNotAllowed { .. } => "contract_not_allowed",
            Violation::ContractCreationNotAllowed => "contract_creation_not_allowed",
            Violation::UnlimitedApprovalBlocked => "unlimited_approval_blocked",
            Violation::BlindSigningDisabled => "blind_signing_disabled",
            Violation::HistoryWarning(w) => w.code(),
        }
    }

    /// Human text for the phone.
    pub fn message(&self) -> String {
        let amount = |chain: &ChainId, v: u128| format_native(chain, U256::from(v));
        match self {
            Violation::ChainNotAllowed { chain } => {
                format!("{} is not one of your allowed chains.", chain.display_name())
            }
            Violation::PerPairLimitExceeded { chain, limit, would_be } => format!(
                "With the most its network fee can be, this would bring the total sent through \
                 this pair to {}, over your limit of {}.",
                amount(chain, *would_be),
                amount(chain, *limit)
            ),
            Violation::PerDayLimitExceeded { chain, limit, would_be } => format!(
                "With the most its network fee can be, this would bring today's total to {}, \
                 over your daily limit of {}.",
                amount(chain, *would_be),
                amount(chain, *limit)
            ),
            Violation::RecipientNotAllowed { recipient } => {
                format!("{recipient} is not in your list of allowed recipients.")
            }
            Violation::ContractNotAllowed { contract } => {
                format!("{contract} is not in your list of allowed contracts.")
            }
            Violation::ContractCreationNotAllowed => {
                "Deploying contracts is not allowed while you keep a contract allowlist.".into()
            }
            Violation::UnlimitedApprovalBlocked => "Unlimited token approvals are blocked.".into(),
            Violation::BlindSigningDisabled => "This request cannot be fully decoded, and blind signing is off.".into(),
            Violation::HistoryWarning(w) => format!("{} You chose to block such requests.", w.message()),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// Address comparison: EVM hex addresses case-insensitively, others (base58) exactly.
fn same_address(a: &str, b: &str) -> bool {
    if a.starts_with("0x") || a.starts_with("0X") {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn listed(list: &[String], addr: &str) -> bool {
    list.iter().any(|x| same_address(x.trim(), addr))
}

/// Evaluates every rule against a decoded payload and returns every violation (empty =
/// allowed). Deterministic order: chain, limits, recipients, contracts, approvals, blind,
/// then the payload's history warnings ([`crate::risk`]) set to "block", as found.
pub fn evaluate(rules: &Guardrails, payload: &DecodedPayload, spent: &SpendContext) -> Vec<Violation> {
    let chain = &payload.chain;
    let facts = &payload.facts;
    let mut out = Vec::new();
    if let Some(chains) = &rules.chain_allowlist {
        if !chains.contains(chain) {
            out.push(Violation::ChainNotAllowed { chain: chain.clone() });
        }
    }
    if let Some(limits) = rules.limits.get(chain) {
        let spend = worst_case_spend(facts);
        if let Some(limit) = limits.per_pair {
            let would_be = spent.spent_by_pair.saturating_add(spend);
            if would_be > limit {
                out.push(Violation::PerPairLimitExceeded { chain: chain.clone(), limit, would_be });
            }
        }
        if let Some(limit) = limits.per_day {
            let would_be = spent.spent_today.saturating_add(spend);
            if would_be > limit {
                out.push(Violation::PerDayLimitExceeded { chain: chain.clone(), limit, would_be });
            }
        }
    }
    if let Some(list) = &rules.recipient_allowlist {
        for r in &facts.recipients {
            let v = Violation::RecipientNotAllowed { recipient: r.clone() };
            if !listed(list, r) && !out.contains(&v) {
                out.push(v);
            }
        }
    }
    if let Some(list) = &rules.contract_allowlist {
        for c in &facts.contracts {
            let v = Violation::ContractNotAllowed { contract: c.clone() };
            if !listed(list, c) && !out.contains(&v) {
                out.push(v);
            }
        }
        if facts.contract_creation {
            out.push(Violation::ContractCreationNotAllowed);
        }
    }
    if rules.block_unlimited_approvals && facts.unlimited_approval {
        out.push(Violation::UnlimitedApprovalBlocked);
    }
    if payload.blind && !rules.allow_blind_signing {
        out.push(Violation::BlindSigningDisabled);
    }
    for w in &payload.warnings {
        if rules.risk.action(w) == Some(RiskAction::Block) {
            out.push(Violation::HistoryWarning(w.clone()));
        }
    }
    if !out.is_empty() {
        let codes: Vec<&str> = out.iter().map(Violation::code).collect();
        tracing::info!(?codes, "guardrails refused the request");
    }
    out
}

mod opt_u128_string {
    //! Amounts as decimal strings in JSON (wei do not fit a JSON double).
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u128>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.collect_str(n),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u128>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Num {
            S(String),
            N(u64),
        }
        match Option::<Num>::deserialize(d)? {
            None => Ok(None),
            Some(Num::N(n)) => Ok(Some(u128::from(n))),
            Some(Num::S(s)) => s.trim().parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caip::{AccountId, SOLANA_MAINNET};
    use crate::decode::decode;
    use crate::model::PayloadKind;
    use crate::payload::tests::system_transfer_message;
    use alloy_consensus::{SignableTransaction, TxEip1559};
    use alloy_primitives::{address, Address, TxKind};
    use alloy_sol_types::{sol, SolCall};

    sol! {
        function approve(address spender, uint256 amount) external returns (bool);
    }

    const ETH: u128 = 1_000_000_000_000_000_000;
    const BOB: Address = address!("bBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB");
    const TOKEN: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");

    fn account() -> AccountId {
        "eip155:1:0x001e2b7dE757bA469a57bF6b23d982458a07eFcE".parse().unwrap()
    }

    fn tx(to: TxKind, value: u128, input: Vec<u8>) -> DecodedPayload {
        let t = TxEip1559 {
            chain_id: 1,
            gas_limit: 100_000,
            to,
            value: U256::from(value),
            input: input.into(),
            ..Default::default()
        };
        let mut p = Vec::new();
        t.encode_for_signing(&mut p);
        decode(PayloadKind::EvmTransaction, &p, &account()).unwrap()
    }

    fn send(value: u128) -> DecodedPayload {
        tx(TxKind::Call(BOB), value, vec![])
    }

    fn codes(v: &[Violation]) -> Vec<&'static str> {
        v.iter().map(Violation::code).collect()
    }

    fn limits(per_pair: Option<u128>, per_day: Option<u128>) -> Guardrails {
        Guardrails { limits: [(ChainId::Evm(1), NativeLimits { per_pair, per_day })].into(), ..Default::default() }
    }

    #[test]
    fn limit_table() {
        // (per_pair, per_day, spent_by_pair, spent_today, value) -> codes
        type Case = (Option<u128>, Option<u128>, u128, u128, u128, &'static [&'static str]);
        let cases: &[Case] = &[
            (None, None, 0, 0, 100 * ETH, &[]),
            (Some(ETH), None, 0, 0, ETH, &[]),
            (Some(ETH), None, 1, 0, ETH, &["per_pair_limit_exceeded"]),
            (None, Some(2 * ETH), 0, ETH, ETH, &[]),
            (None, Some(2 * ETH), 0, ETH + 1, ETH, &["per_day_limit_exceeded"]),
            (Some(ETH), Some(ETH), ETH, ETH, 1, &["per_pair_limit_exceeded", "per_day_limit_exceeded"]),
            (Some(0), Some(0), 0, 0, 0, &[]),
            (Some(ETH), Some(ETH), u128::MAX, 0, 1, &["per_pair_limit_exceeded"]),
        ];
        for (i, (pp, pd, sp, st, value, want)) in cases.iter().enumerate() {
            let got =
                evaluate(&limits(*pp, *pd), &send(*value), &SpendContext { spent_by_pair: *sp, spent_today: *st });
            assert_eq!(codes(&got), *want, "case {i}");
        }
    }

    #[test]
    fn the_worst_case_fee_counts_against_limits() {
        // No value, 7,000,000 gas at up to 30,000 gwei: up to 210 ETH of fees.
        let t = TxEip1559 {
            chain_id: 1,
            gas_limit: 7_000_000,
            max_fee_per_gas: 30_000_000_000_000,
            to: TxKind::Call(BOB),
            ..Default::default()
        };
        let mut p = Vec::new();
        t.encode_for_signing(&mut p);
        let d = decode(PayloadKind::EvmTransaction, &p, &account()).unwrap();
        assert_eq!(worst_case_spend(&d.facts), 210 * ETH);
        let v = evaluate(&limits(Some(ETH / 100), Some(ETH / 100)), &d, &SpendContext::default());
        assert_eq!(codes(&v), ["per_pair_limit_exceeded", "per_day_limit_exceeded"]);
        assert!(v[1].message().contains("210 ETH"), "{}", v[1]);
        // Value and fee add up: 0.5 ETH + 0.5 ETH of fee fits 1 ETH exactly, one wei more not.
        let mut facts = d.facts.clone();
        facts.native_value = ETH / 2;
        facts.max_fee = ETH / 2;
        assert_eq!(worst_case_spend(&facts), ETH);
        let fits = DecodedPayload { facts, ..d.clone() };
        assert!(evaluate(&limits(None, Some(ETH)), &fits, &SpendContext::default()).is_empty());
        let over = SpendContext { spent_by_pair: 0, spent_today: 1 };
        let v = evaluate(&limits(None, Some(ETH)), &fits, &over);
        assert_eq!(codes(&v), ["per_day_limit_exceeded"]);
        // Saturating: never wraps to a small number.
        let mut huge = d.facts.clone();
        huge.native_value = u128::MAX;
        assert_eq!(worst_case_spend(&huge), u128::MAX);
    }

    #[test]
    fn limits_on_another_chain_do_not_apply() {
        let mut g = limits(Some(0), Some(0));
        g.limits = [(ChainId::Evm(10), NativeLimits { per_pair: Some(0), per_day: Some(0) })].into();
        assert!(evaluate(&g, &send(ETH), &SpendContext::default()).is_empty());
    }

    #[test]
    fn every_broken_rule_is_reported() {
        let g = Guardrails {
            limits: [(ChainId::Evm(1), NativeLimits { per_pair: Some(1), per_day: Some(1) })].into(),
            recipient_allowlist: Some(vec![]),
            contract_allowlist: Some(vec![]),
            chain_allowlist: Some(vec![ChainId::Evm(10)]),
            block_unlimited_approvals: true,
            allow_blind_signing: false,
            risk: RiskRules::default(),
        };
        let data = approveCall { spender: BOB, amount: U256::MAX }.abi_encode();
        let d = tx(TxKind::Call(TOKEN), 5, data);
        let v = evaluate(&g, &d, &SpendContext::default());
        assert_eq!(
            codes(&v),
            [
                "chain_not_allowed",
                "per_pair_limit_exceeded",
                "per_day_limit_exceeded",
                "recipient_not_allowed",
                "recipient_not_allowed",
                "contract_not_allowed",
                "unlimited_approval_blocked",
            ]
        );
        assert!(v.iter().all(|x| !x.message().is_empty()));
        assert!(v[1].message().contains("0.000000000000000005 ETH"), "{}", v[1]);
    }

    #[test]
    fn allowlists_match_case_insensitively_for_evm() {
        let g = Guardrails {
            recipient_allowlist: Some(vec![BOB.to_string().to_lowercase()]),
            contract_allowlist: Some(vec![TOKEN.to_string().to_uppercase().replace("0X", "0x")]),
            ..Default::default()
        };
        assert!(evaluate(&g, &send(ETH), &SpendContext::default()).is_empty());
        let data = approveCall { spender: BOB, amount: U256::from(10u8) }.abi_encode();
        assert!(evaluate(&g, &tx(TxKind::Call(TOKEN), 0, data), &SpendContext::default()).is_empty());
        let other = tx(TxKind::Call(TOKEN), 0, vec![]);
        assert_eq!(codes(&evaluate(&g, &other, &SpendContext::default())), ["recipient_not_allowed"]);
    }

    #[test]
    fn blind_and_creation_rules() {
        let unknown = tx(TxKind::Call(TOKEN), 0, vec![1, 2, 3, 4]);
        assert_eq!(
            codes(&evaluate(&Guardrails::default(), &unknown, &SpendContext::default())),
            ["blind_signing_disabled"]
        );
        let open = Guardrails { allow_blind_signing: true, ..Default::default() };
        assert!(evaluate(&open, &unknown, &SpendContext::default()).is_empty());
        let deploy = tx(TxKind::Create, 0, vec![0x60]);
        let g = Guardrails { contract_allowlist: Some(vec![]), allow_blind_signing: true, ..Default::default() };
        assert_eq!(codes(&evaluate(&g, &deploy, &SpendContext::default())), ["contract_creation_not_allowed"]);
        // Unlimited approvals pass only when the user unblocks them.
        let data = approveCall { spender: BOB, amount: U256::MAX }.abi_encode();
        let d = tx(TxKind::Call(TOKEN), 0, data);
        assert_eq!(
            codes(&evaluate(&Guardrails::default(), &d, &SpendContext::default())),
            ["unlimited_approval_blocked"]
        );
        let g = Guardrails { block_unlimited_approvals: false, ..Default::default() };
        assert!(evaluate(&g, &d, &SpendContext::default()).is_empty());
    }

    #[test]
    fn solana_transfer_limits_and_recipients() {
        let from = [1u8; 32];
        let acct = AccountId::solana(SOLANA_MAINNET, &from);
        let d = decode(PayloadKind::SolanaTransaction, &system_transfer_message(from, [2; 32], 2_000_000_000), &acct)
            .unwrap();
        let g = Guardrails {
            limits: [(acct.chain.clone(), NativeLimits { per_pair: None, per_day: Some(1_000_000_000) })].into(),
            recipient_allowlist: Some(vec![bs58::encode([2u8; 32]).into_string()]),
            ..Default::default()
        };
        let v = evaluate(&g, &d, &SpendContext::default());
        assert_eq!(codes(&v), ["per_day_limit_exceeded"]);
        // 2 SOL plus the worst-case fee: one signature's 5,000-lamport base fee.
        assert!(v[0].message().contains("2.000005 SOL"), "{}", v[0]);
    }

    #[test]
    fn json_round_trip_and_defaults() {
        let g: Guardrails = serde_json::from_str("{}").unwrap();
        assert_eq!(g, Guardrails::default());
        assert!(!g.allow_blind_signing && g.block_unlimited_approvals);
        let json = r#"{"limits":{"eip155:1":{"per_day":"1000000000000000000000","per_pair":5}},
            "chain_allowlist":["eip155:1"],"allow_blind_signing":true}"#;
        let g: Guardrails = serde_json::from_str(json).unwrap();
        assert_eq!(g.limits[&ChainId::Evm(1)].per_day, Some(1000 * ETH));
        assert_eq!(g.limits[&ChainId::Evm(1)].per_pair, Some(5));
        let back: Guardrails = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(back, g);
        assert!(serde_json::from_str::<Guardrails>(r#"{"allow_blind":true}"#).is_err());
        assert!(serde_json::from_str::<Guardrails>(r#"{"limits":{"eip155:1":{"per_day":"-1"}}}"#).is_err());
    }
}
