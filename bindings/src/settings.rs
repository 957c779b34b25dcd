//! The guardrails settings screen: [`GuardrailSettings`], checked and converted to and from
//! the core's [`Guardrails`] (stored in the core's database, so they survive a restart).
//!
//! Amounts are shown and typed in the chain's native currency ("0.5" ETH), exactly: no
//! floats, at most the currency's decimals. Addresses are canonicalised (EIP-55 for EVM,
//! base58 for Solana).

use std::collections::BTreeMap;
use std::str::FromStr;

use alloy_primitives::U256;
use sunstorm_core::caip::{AccountId, ChainId, SOLANA_MAINNET};
use sunstorm_core::decode::units::{format_units, native_currency};
use sunstorm_core::guardrails::{Guardrails, NativeLimits};
use sunstorm_core::risk::{RiskAction, RiskRules};

use crate::error::SunstormError;
use crate::sunstorm::SunstormCore;

/// Most chains with limits, and most entries in one allowlist, `set_guardrails` accepts.
pub(crate) const MAX_ENTRIES: usize = 500;

/// Native-value limits on one chain (Kotlin: `ChainLimitSetting("eip155:1", perDay = "0.5")`).
/// What counts against them is each request's worst case: its value plus the most its
/// network fee can be. Limits are **per phone**: they count what this phone signed,
/// approved or has waiting for the user, not requests signed through another phone bonded
/// to the same appliance. They are checked when a request arrives and again when the user
/// approves it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChainLimitSetting {
    /// CAIP-2 chain (`eip155:1`).
    pub chain: String,
    /// Most that may leave an account through one pair, ever (value plus worst-case fees
    /// of what this phone signed or has waiting), in the chain's currency (`"0.5"`);
    /// `None` (the default): no limit. Per phone.
    #[uniffi(default = None)]
    pub per_pair: Option<String>,
    /// Most that may leave per UTC day across pairs (value plus worst-case fees of what
    /// this phone signed that day or has waiting), in the chain's currency; `None` (the
    /// default): no limit. Per phone.
    #[uniffi(default = None)]
    pub per_day: Option<String>,
    /// Human chain name ("Ethereum"). Filled by `guardrails`; ignored by `set_guardrails`.
    #[uniffi(default = "")]
    pub chain_name: String,
    /// The currency the amounts are in ("ETH", "SOL"). Filled by `guardrails`; ignored by
    /// `set_guardrails`.
    #[uniffi(default = "")]
    pub currency: String,
}

/// The user's signing rules, for the settings screen. Every list is optional: `None` means
/// "no such rule", an empty list means "nothing is allowed".
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GuardrailSettings {
    /// Refuse unlimited token approvals and approvals for all (default: on).
    #[uniffi(default = true)]
    pub block_unlimited_approvals: bool,
    /// Allow payloads the phone cannot fully decode (default: off).
    #[uniffi(default = false)]
    pub allow_blind_signing: bool,
    /// Spending limits per chain (at most one entry per chain; default none); per phone,
    /// see [`ChainLimitSetting`].
    #[uniffi(default = [])]
    pub limits: Vec<ChainLimitSetting>,
    /// If set, only these CAIP-2 chains may be signed for (default: no such rule).
    #[uniffi(default = None)]
    pub chain_allowlist: Option<Vec<String>>,
    /// If set, only these addresses may receive value or rights (default: no such rule).
    #[uniffi(default = None)]
    pub recipient_allowlist: Option<Vec<String>>,
    /// If set, only these contracts / programs may be called (default: no such rule).
    #[uniffi(default = None)]
    pub contract_allowlist: Option<Vec<String>>,
    /// Warnings from the phone's own history that block a request instead of asking: such
    /// a request is refused like any guardrail violation (octane is told `guardrail`).
    /// Every other one is shown as a warning and the user decides (default: none blocks).
    #[uniffi(default = [])]
    pub block_history_warnings: Vec<HistoryWarning>,
}

/// A warning the phone raises from its own history (nothing leaves the phone); each can
/// ask (the default) or block ([`GuardrailSettings::block_history_warnings`]). The
/// warning's code on the review screen is given with each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum HistoryWarning {
    /// `first_recipient`: the account never signed a payment to this recipient.
    FirstRecipient,
    /// `first_spender`: the account never approved this spender.
    FirstSpender,
    /// `tokens_to_token_contract`: tokens are sent to a token contract.
    TokensToTokenContract,
    /// `unusual_value`: more than ten times the pair's average native value (after three
    /// signed requests that moved value).
    UnusualValue,
    /// `idle_pair`: the pair signed nothing and was not paired for more than 30 days.
    IdlePair,
}

impl HistoryWarning {
    /// Every one, in the order the settings screen lists them.
    const ALL: [HistoryWarning; 5] = [
        HistoryWarning::FirstRecipient,
        HistoryWarning::FirstSpender,
        HistoryWarning::TokensToTokenContract,
        HistoryWarning::UnusualValue,
        HistoryWarning::IdlePair,
    ];

    /// Its choice in the core's rules.
    fn choice(self, rules: &mut RiskRules) -> &mut RiskAction {
        match self {
            HistoryWarning::FirstRecipient => &mut rules.first_recipient,
            HistoryWarning::FirstSpender => &mut rules.first_spender,
            HistoryWarning::TokensToTokenContract => &mut rules.tokens_to_token_contract,
            HistoryWarning::UnusualValue => &mut rules.unusual_value,
            HistoryWarning::IdlePair => &mut rules.idle_pair,
        }
    }
}

fn risk_rules(block: &[HistoryWarning]) -> RiskRules {
    let mut rules = RiskRules::default();
    for w in block {
        *w.choice(&mut rules) = RiskAction::Block;
    }
    rules
}

fn blocked_warnings(rules: &RiskRules) -> Vec<HistoryWarning> {
    let mut rules = *rules;
    HistoryWarning::ALL.into_iter().filter(|w| *w.choice(&mut rules) == RiskAction::Block).collect()
}

fn bad(field: &str, reason: impl std::fmt::Display) -> SunstormError {
    SunstormError::InvalidSelection { reason: format!("{field}: {reason}") }
}

/// `amount` base units as an exact decimal of the chain's currency ("0.05").
pub(crate) fn format_amount(chain: &ChainId, amount: u128) -> String {
    format_units(U256::from(amount), native_currency(chain).1)
}

/// Parses an exact decimal amount ("0.05", "12", ".5") into base units with `decimals`
/// decimals. Refuses signs, exponents, separators, more decimals than the currency has,
/// and amounts that do not fit.
pub(crate) fn parse_amount(text: &str, decimals: u8) -> Result<u128, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err("must not be negative".into());
    }
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() {
        return Err("is not an amount".into());
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(format!("`{t}` is not a decimal amount (digits and one `.`)"));
    }
    if frac.len() > usize::from(decimals) {
        return Err(format!("at most {decimals} decimals"));
    }
    let too_large = || "is too large".to_string();
    let scale = 10u128.checked_pow(u32::from(decimals)).ok_or_else(too_large)?;
    let int_v = if int.is_empty() { 0 } else { int.parse::<u128>().map_err(|_| too_large())? };
    let frac_v = if frac.is_empty() {
        0
    } else {
        // frac.len() <= decimals (checked above), so this neither fails nor underflows.
        let missing = u32::from(decimals).saturating_sub(u32::try_from(frac.len()).map_err(|_| too_large())?);
        let pad = 10u128.checked_pow(missing).ok_or_else(too_large)?;
        frac.parse::<u128>().map_err(|_| too_large())?.checked_mul(pad).ok_or_else(too_large)?
    };
    int_v.checked_mul(scale).and_then(|v| v.checked_add(frac_v)).ok_or_else(too_large)
}

/// An address in canonical form: EIP-55 for `0x…` addresses, base58 (32 bytes) otherwise.
fn canonical_address(field: &str, text: &str) -> Result<String, SunstormError> {
    let t = text.trim();
    let full = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => format!("eip155:1:0x{hex}"),
        None => format!("solana:{SOLANA_MAINNET}:{t}"),
    };
    AccountId::from_str(&full).map(|a| a.address).map_err(|e| bad(field, format!("`{t}`: {e}")))
}

fn address_list(field: &str, list: Option<Vec<String>>) -> Result<Option<Vec<String>>, SunstormError> {
    let Some(list) = list else { return Ok(None) };
    if list.len() > MAX_ENTRIES {
        return Err(bad(field, format!("at most {MAX_ENTRIES} entries")));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for a in &list {
        let c = canonical_address(field, a)?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(Some(out))
}

fn chain(field: &str, text: &str) -> Result<ChainId, SunstormError> {
    ChainId::from_str(text.trim()).map_err(|e| bad(field, format!("`{}`: {e}", text.trim())))
}

impl TryFrom<GuardrailSettings> for Guardrails {
    type Error = SunstormError;

    /// Checks every field; the error names the first one to fix.
    fn try_from(s: GuardrailSettings) -> Result<Self, SunstormError> {
        if s.limits.len() > MAX_ENTRIES {
            return Err(bad("limits", format!("at most {MAX_ENTRIES} chains")));
        }
        let mut limits = BTreeMap::new();
        for l in s.limits {
            let c = chain("limits", &l.chain)?;
            let decimals = native_currency(&c).1;
            let amount = |what: &str, v: Option<String>| {
                v.map(|t| parse_amount(&t, decimals).map_err(|e| bad(&format!("{what} limit on {c}"), e))).transpose()
            };
            let nl = NativeLimits { per_pair: amount("per-pair", l.per_pair)?, per_day: amount("daily", l.per_day)? };
            if limits.contains_key(&c) {
                return Err(bad("limits", format!("{c} is listed twice")));
            }
            if nl != NativeLimits::default() {
                limits.insert(c, nl);
            }
        }
        let chain_allowlist = match s.chain_allowlist {
            None => None,
            Some(list) if list.len() > MAX_ENTRIES => {
                return Err(bad("chain_allowlist", format!("at most {MAX_ENTRIES} entries")))
            }
            Some(list) => {
                let mut out: Vec<ChainId> = Vec::with_capacity(list.len());
                for t in &list {
                    let c = chain("chain_allowlist", t)?;
                    if !out.contains(&c) {
                        out.push(c);
                    }
                }
                Some(out)
            }
        };
        Ok(Guardrails {
            limits,
            recipient_allowlist: address_list("recipient_allowlist", s.recipient_allowlist)?,
            contract_allowlist: address_list("contract_allowlist", s.contract_allowlist)?,
            chain_allowlist,
            block_unlimited_approvals: s.block_unlimited_approvals,
            allow_blind_signing: s.allow_blind_signing,
            risk: risk_rules(&s.block_history_warnings),
        })
    }
}

impl From<&Guardrails> for GuardrailSettings {
    fn from(g: &Guardrails) -> Self {
        GuardrailSettings {
            block_unlimited_approvals: g.block_unlimited_approvals,
            allow_blind_signing: g.allow_blind_signing,
            limits: g
                .limits
                .iter()
                .map(|(c, l)| ChainLimitSetting {
                    chain: c.to_string(),
                    per_pair: l.per_pair.map(|v| format_amount(c, v)),
                    per_day: l.per_day.map(|v| format_amount(c, v)),
                    chain_name: c.display_name(),
                    currency: native_currency(c).0.to_string(),
                })
                .collect(),
            chain_allowlist: g.chain_allowlist.as_ref().map(|l| l.iter().map(ToString::to_string).collect()),
            recipient_allowlist: g.recipient_allowlist.clone(),
            contract_allowlist: g.contract_allowlist.clone(),
            block_history_warnings: blocked_warnings(&g.risk),
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl SunstormCore {
    /// The user's guardrails for the settings screen. Until first set: unlimited approvals
    /// blocked, blind signing refused, no limits, no allowlists. Works before bonding.
    pub async fn guardrails(&self) -> Result<GuardrailSettings, SunstormError> {
        let facade = self.facade.clone();
        self.run(None, async move { Ok(GuardrailSettings::from(&facade.guardrails().await?)) }).await
    }

    /// Checks and replaces the user's guardrails; they apply to every request received
    /// afterwards and to requests already waiting (checked again when the user approves),
    /// are kept in the database (they survive a restart) and the change is audited. Spend
    /// limits are per phone: another phone bonded to the same appliance has its own, and
    /// what it signs is not counted here. Returns them as stored (canonical addresses and
    /// chains, amounts normalised).
    /// `InvalidSelection { reason }` names the field to fix (a negative, malformed or
    /// too-precise amount, an unknown chain, a bad address, a chain listed twice…); nothing
    /// is changed then.
    pub async fn set_guardrails(&self, settings: GuardrailSettings) -> Result<GuardrailSettings, SunstormError> {
        let rules = Guardrails::try_from(settings).inspect_err(|e| {
            tracing::info!(target: "sunstorm_ffi", error = %e, "guardrail settings refused");
        })?;
        let facade = self.facade.clone();
        self.run(None, async move {
            facade.set_guardrails(&rules).await?;
            Ok(GuardrailSettings::from(&facade.guardrails().await?))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ETH: u128 = 1_000_000_000_000_000_000;

    fn limit(chain: &str, per_pair: Option<&str>, per_day: Option<&str>) -> ChainLimitSetting {
        ChainLimitSetting {
            chain: chain.into(),
            per_pair: per_pair.map(Into::into),
            per_day: per_day.map(Into::into),
            chain_name: String::new(),
            currency: String::new(),
        }
    }

    fn settings() -> GuardrailSettings {
        GuardrailSettings::from(&Guardrails::default())
    }

    fn reason(r: Result<Guardrails, SunstormError>) -> String {
        match r {
            Err(SunstormError::InvalidSelection { reason }) => reason,
            other => panic!("expected InvalidSelection, got {other:?}"),
        }
    }

    #[test]
    fn defaults_block_unlimited_approvals_and_blind_signing() {
        let s = settings();
        assert!(s.block_unlimited_approvals && !s.allow_blind_signing);
        assert!(s.limits.is_empty() && s.chain_allowlist.is_none());
        assert!(s.recipient_allowlist.is_none() && s.contract_allowlist.is_none());
        assert!(s.block_history_warnings.is_empty(), "history warnings ask by default");
    }

    #[test]
    fn each_history_warning_can_block_and_round_trips() {
        for w in HistoryWarning::ALL {
            let mut s = settings();
            s.block_history_warnings = vec![w, w];
            let g = Guardrails::try_from(s).unwrap();
            let blocking = serde_json::to_value(g.risk).unwrap();
            let blocking: Vec<_> = blocking.as_object().unwrap().iter().filter(|(_, v)| *v == "block").collect();
            assert_eq!(blocking.len(), 1, "{w:?}: {blocking:?}");
            assert_eq!(GuardrailSettings::from(&g).block_history_warnings, [w]);
        }
        let mut s = settings();
        s.block_history_warnings = HistoryWarning::ALL.iter().rev().copied().collect();
        let g = Guardrails::try_from(s).unwrap();
        assert_eq!(GuardrailSettings::from(&g).block_history_warnings, HistoryWarning::ALL);
    }

    #[test]
    fn amounts_are_exact_decimals_of_the_currency() {
        assert_eq!(parse_amount("0.05", 18), Ok(ETH / 20));
        assert_eq!(parse_amount(" 12 ", 18), Ok(12 * ETH));
        assert_eq!(parse_amount(".5", 9), Ok(500_000_000));
        assert_eq!(parse_amount("0", 18), Ok(0));
        assert_eq!(parse_amount("0.000000000000000001", 18), Ok(1));
        for bad in ["", ".", "-1", "1e18", "1,5", "0x10", "1.2.3", "+1", "١"] {
            assert!(parse_amount(bad, 18).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_amount("0.0000000000000000001", 18), Err("at most 18 decimals".into()));
        assert_eq!(parse_amount("340282366920938463464", 18), Err("is too large".into()));
    }

    proptest! {
        #[test]
        fn amounts_round_trip_through_the_display(v: u128, evm: bool) {
            let c = if evm { ChainId::Evm(1) } else { ChainId::Solana(SOLANA_MAINNET.into()) };
            prop_assert_eq!(parse_amount(&format_amount(&c, v), native_currency(&c).1), Ok(v));
        }

        #[test]
        fn any_text_is_refused_or_parsed_never_a_panic(s in "\\PC{0,40}") {
            let _ = parse_amount(&s, 18);
        }
    }

    #[test]
    fn settings_round_trip_with_canonical_addresses() {
        let mut s = settings();
        s.block_unlimited_approvals = false;
        s.allow_blind_signing = true;
        s.limits = vec![limit("eip155:1", Some("1.5"), Some("0.01")), limit(" eip155:10 ", None, Some("2"))];
        s.chain_allowlist = Some(vec!["eip155:1".into(), "eip155:1".into()]);
        s.recipient_allowlist = Some(vec!["0x52908400098527886e0f7030069857d2e4169ee7".into()]);
        s.contract_allowlist = Some(vec![]);
        let g = Guardrails::try_from(s).unwrap();
        assert_eq!(g.limits[&ChainId::Evm(1)], NativeLimits { per_pair: Some(3 * ETH / 2), per_day: Some(ETH / 100) });
        assert_eq!(g.limits[&ChainId::Evm(10)], NativeLimits { per_pair: None, per_day: Some(2 * ETH) });
        assert_eq!(g.chain_allowlist, Some(vec![ChainId::Evm(1)]));
        assert_eq!(g.recipient_allowlist, Some(vec!["0x52908400098527886E0F7030069857D2E4169EE7".to_string()]));
        assert_eq!(g.contract_allowlist, Some(vec![]));
        let back = GuardrailSettings::from(&g);
        assert_eq!(
            back.limits[0],
            ChainLimitSetting {
                chain: "eip155:1".into(),
                per_pair: Some("1.5".into()),
                per_day: Some("0.01".into()),
                chain_name: ChainId::Evm(1).display_name(),
                currency: "ETH".into(),
            }
        );
        assert_eq!(Guardrails::try_from(back).unwrap(), g);
    }

    #[test]
    fn a_limit_without_amounts_is_no_rule() {
        let mut s = settings();
        s.limits = vec![limit("eip155:1", None, None)];
        assert!(Guardrails::try_from(s).unwrap().limits.is_empty());
    }

    /// Platform services for a core that never reaches a radio or the network.
    struct Offline;
    impl crate::platform::BleCentral for Offline {
        fn scan(&self, _: String, _: i32) -> Result<Vec<crate::ble::BlePeripheral>, crate::error::BleError> {
            Err(crate::error::BleError::Unavailable { reason: "test".into() })
        }
        fn connect(
            &self,
            _: String,
            _: std::sync::Arc<crate::ble::BleEvents>,
            _: i32,
        ) -> Result<i64, crate::error::BleError> {
            Err(crate::error::BleError::Unavailable { reason: "test".into() })
        }
        fn request_mtu(&self, _: i64, _: i32) -> Result<i32, crate::error::BleError> {
            Ok(23)
        }
        fn write(&self, _: i64, _: Vec<u8>) -> Result<(), crate::error::BleError> {
            Ok(())
        }
        fn disconnect(&self, _: i64) -> Result<(), crate::error::BleError> {
            Ok(())
        }
    }
    impl crate::http::HttpClient for Offline {
        fn send(&self, _: crate::http::HttpRequest) -> Result<crate::http::HttpResponse, crate::error::HttpError> {
            Err(crate::error::HttpError::Offline { reason: "test".into() })
        }
    }
    impl crate::platform::SecretStore for Offline {
        fn get(&self, _: String) -> Result<Option<Vec<u8>>, crate::error::SecretStoreError> {
            Ok(None)
        }
        fn put(&self, _: String, _: Vec<u8>) -> Result<(), crate::error::SecretStoreError> {
            Ok(())
        }
        fn delete(&self, _: String) -> Result<(), crate::error::SecretStoreError> {
            Ok(())
        }
    }
    impl crate::platform::UserPresence for Offline {
        fn verify(&self, _: String) -> Result<bool, crate::error::UserPresenceError> {
            Ok(false)
        }
    }

    fn core(db: &std::path::Path) -> std::sync::Arc<SunstormCore> {
        let p = std::sync::Arc::new(Offline);
        let config = crate::sunstorm::CoreConfig {
            octane_url: "http://127.0.0.1:1".into(),
            octane_public_key_hex: "11".repeat(32),
            accepted_link_hosts: vec!["sigilvault.xyz".into()],
            database_path: db.to_string_lossy().into_owned(),
            phone_name: "test".into(),
            metadata_public_key_hex: None,
            metadata_bundle: None,
        };
        SunstormCore::new(config, p.clone(), p.clone(), p.clone(), p, None).unwrap()
    }

    #[tokio::test]
    async fn guardrails_work_before_bonding_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("core.db");
        let c = core(&db);
        assert_eq!(c.guardrails().await.unwrap(), settings());
        let mut s = settings();
        s.limits = vec![limit("eip155:1", None, Some("0.010"))];
        s.recipient_allowlist = Some(vec!["0x52908400098527886e0f7030069857d2e4169ee7".into()]);
        let stored = c.set_guardrails(s).await.unwrap();
        assert_eq!(stored.limits[0].per_day.as_deref(), Some("0.01"));
        assert_eq!(stored.limits[0].currency, "ETH");
        let mut refused = stored.clone();
        refused.limits[0].per_pair = Some("-5".into());
        assert!(matches!(c.set_guardrails(refused).await, Err(SunstormError::InvalidSelection { .. })));
        drop(c);

        let c = core(&db);
        assert_eq!(c.guardrails().await.unwrap(), stored, "a refused change changed nothing; a restart keeps them");
        let log = c.audit_log(10).await.unwrap();
        assert_eq!(log.len(), 1);
        let crate::activity::AuditEventView::GuardrailsChanged { settings } = &log[0].event else {
            panic!("{:?}", log[0])
        };
        assert_eq!(settings, &stored, "the audit log shows the guardrails as set");
        assert!(c.sign_history(10).await.unwrap().is_empty());
    }

    #[test]
    fn bad_settings_name_the_field_to_fix() {
        let with = |f: &dyn Fn(&mut GuardrailSettings)| {
            let mut s = settings();
            f(&mut s);
            reason(Guardrails::try_from(s))
        };
        let r = with(&|s| s.limits = vec![limit("eip155:1", Some("-1"), None)]);
        assert!(r.contains("per-pair limit on eip155:1") && r.contains("negative"), "{r}");
        let r = with(&|s| s.limits = vec![limit("eip155:1", None, Some("1e40"))]);
        assert!(r.contains("daily limit"), "{r}");
        let r = with(&|s| s.limits = vec![limit("eip155:1", None, Some("999999999999999999999999"))]);
        assert!(r.contains("too large"), "{r}");
        let r = with(&|s| s.limits = vec![limit("bitcoin:1", Some("1"), None)]);
        assert!(r.starts_with("limits:"), "{r}");
        let r = with(&|s| s.limits = vec![limit("eip155:1", Some("1"), None), limit("eip155:1", None, Some("1"))]);
        assert!(r.contains("twice"), "{r}");
        let r = with(&|s| s.chain_allowlist = Some(vec!["eip155:01".into()]));
        assert!(r.starts_with("chain_allowlist:"), "{r}");
        let r = with(&|s| s.recipient_allowlist = Some(vec!["0x1234".into()]));
        assert!(r.starts_with("recipient_allowlist:"), "{r}");
        let r = with(&|s| s.contract_allowlist = Some(vec!["not base58 0OIl".into()]));
        assert!(r.starts_with("contract_allowlist:"), "{r}");
        let r = with(&|s| s.recipient_allowlist = Some(vec!["0x52908400098527886E0F7030069857D2E4169Ee7".into()]));
        assert!(r.contains("EIP-55"), "{r}");
        let r = with(&|s| s.chain_allowlist = Some(vec!["eip155:1".into(); MAX_ENTRIES + 1]));
        assert!(r.contains("at most"), "{r}");
    }
}
