//! Wallet approval lists: which of the appliance's wallets (CAIP-10 accounts) the user may
//! bind to a service provider that asked for some chains (CAIP-2), and validation of the
//! user's choice into one canonical, sorted list of bindings.

use std::collections::BTreeSet;

use crate::caip::{AccountId, ChainId};

/// How a row of the approval list may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    /// On a requested chain, not chosen (yet).
    Selectable,
    /// On a requested chain and chosen.
    Selected,
    /// On a chain the service provider did not ask for: shown greyed out, never bindable.
    NotRequested,
}

/// One wallet of the appliance, as a UI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletRow {
    /// The chain the wallet is on.
    pub chain: ChainId,
    /// A human name for the chain ("Ethereum", "Solana", or the CAIP-2 id).
    pub chain_name: String,
    /// The account, canonical.
    pub account: AccountId,
    /// A shortened address for small screens.
    pub short_address: String,
    /// Whether it can be / is selected.
    pub state: RowState,
}

/// What the approval screen shows: one row per appliance wallet (requested chains first, in
/// the order asked), and the requested chains for which the appliance has no wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalList {
    /// Requested chains, deduplicated, in the order the service provider gave them.
    pub requested: Vec<ChainId>,
    /// The appliance's wallets.
    pub rows: Vec<WalletRow>,
    /// Requested chains with no wallet on the appliance.
    pub chains_without_wallet: Vec<ChainId>,
}

/// Why a selection of wallets cannot be bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// The service provider asked for no chain.
    #[error("the service asked for no chain")]
    NoChainsRequested,
    /// No wallet was chosen.
    #[error("choose at least one wallet")]
    NothingSelected,
    /// The same wallet was chosen twice.
    #[error("the wallet {0} was chosen twice")]
    Duplicate(AccountId),
    /// A wallet on a chain the service provider did not ask for.
    #[error("the service did not ask for {chain} (wallet {0})", chain = .0.chain)]
    ChainNotRequested(AccountId),
    /// A wallet the appliance does not have.
    #[error("the wallet {0} is not on this appliance")]
    NotOnAppliance(AccountId),
    /// An account whose address is not in a valid form.
    #[error("the wallet {0} is not a valid account")]
    InvalidAccount(String),
}

impl SelectionError {
    /// A stable snake_case identifier for this rejection.
    pub fn code(&self) -> &'static str {
        match self {
            SelectionError::NoChainsRequested => "no_chains_requested",
            SelectionError::NothingSelected => "nothing_selected",
            SelectionError::Duplicate(_) => "duplicate_wallet",
            SelectionError::ChainNotRequested(_) => "chain_not_requested",
            SelectionError::NotOnAppliance(_) => "not_on_appliance",
            SelectionError::InvalidAccount(_) => "invalid_account",
        }
    }
}

/// Re-derives the canonical form of an account (EIP-55, base58); `None` if it has none.
fn canonical(account: &AccountId) -> Option<AccountId> {
    account.to_string().parse().ok()
}

fn dedup_chains(requested: &[ChainId]) -> Vec<ChainId> {
    let mut seen = BTreeSet::new();
    requested.iter().filter(|c| seen.insert((*c).clone())).cloned().collect()
}

/// Builds the approval list. `preselected` wallets on requested chains start `Selected`
/// (e.g. the bindings of an earlier pair); everything else bindable starts `Selectable`.
pub fn approval_list(requested: &[ChainId], available: &[AccountId], preselected: &[AccountId]) -> ApprovalList {
    let requested = dedup_chains(requested);
    let pre: BTreeSet<AccountId> = preselected.iter().filter_map(canonical).collect();
    let mut seen = BTreeSet::new();
    let wallets: Vec<AccountId> = available.iter().filter_map(canonical).filter(|a| seen.insert(a.clone())).collect();
    let mut rows = Vec::with_capacity(wallets.len());
    for chain in &requested {
        for account in wallets.iter().filter(|a| &a.chain == chain) {
            let state = if pre.contains(account) { RowState::Selected } else { RowState::Selectable };
            rows.push(row(account, state));
        }
    }
    for account in wallets.iter().filter(|a| !requested.contains(&a.chain)) {
        rows.push(row(account, RowState::NotRequested));
    }
    let chains_without_wallet = requested.iter().filter(|c| !wallets.iter().any(|a| &a.chain == *c)).cloned().collect();
    ApprovalList { requested, rows, chains_without_wallet }
}

fn row(account: &AccountId, state: RowState) -> WalletRow {
    WalletRow {
        chain: account.chain.clone(),
        chain_name: account.chain.display_name(),
        account: account.clone(),
        short_address: account.short_address(),
        state,
    }
}

impl ApprovalList {
    /// Flips the selection of a bindable wallet; returns false when the account is not a
    /// selectable row.
    pub fn toggle(&mut self, account: &AccountId) -> bool {
        let Some(account) = canonical(account) else {
            return false;
        };
        match self.rows.iter_mut().find(|r| r.account == account) {
            Some(r) if r.state == RowState::Selectable => {
                r.state = RowState::Selected;
                true
            }
            Some(r) if r.state == RowState::Selected => {
                r.state = RowState::Selectable;
                true
            }
            _ => false,
        }
    }

    /// Selects every bindable wallet.
    pub fn select_all(&mut self) {
        for r in &mut self.rows {
            if r.state == RowState::Selectable {
                r.state = RowState::Selected;
            }
        }
    }

    /// The currently selected accounts, in row order.
    pub fn selected(&self) -> Vec<AccountId> {
        self.rows.iter().filter(|r| r.state == RowState::Selected).map(|r| r.account.clone()).collect()
    }

    /// True when at least one wallet can be bound.
    pub fn can_approve(&self) -> bool {
        self.rows.iter().any(|r| r.state != RowState::NotRequested)
    }
}

/// Validates the user's selection: only requested chains, at least one wallet, no
/// duplicates, every account really on the appliance. Returns the bindings in canonical
/// form, sorted (chain, then address), which is what gets signed.
pub fn validate_selection(
    requested: &[ChainId],
    available: &[AccountId],
    selected: &[AccountId],
) -> Result<Vec<AccountId>, SelectionError> {
    if requested.is_empty() {
        return Err(SelectionError::NoChainsRequested);
    }
    if selected.is_empty() {
        return Err(SelectionError::NothingSelected);
    }
    let on_appliance: BTreeSet<AccountId> = available.iter().filter_map(canonical).collect();
    let mut out = BTreeSet::new();
    for account in selected {
        let account = canonical(account).ok_or_else(|| SelectionError::InvalidAccount(account.to_string()))?;
        if !requested.contains(&account.chain) {
            return Err(SelectionError::ChainNotRequested(account));
        }
        if !on_appliance.contains(&account) {
            return Err(SelectionError::NotOnAppliance(account));
        }
        if out.contains(&account) {
            return Err(SelectionError::Duplicate(account));
        }
        out.insert(account);
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caip::SOLANA_MAINNET;

    fn evm(chain: u64, b: u8) -> AccountId {
        AccountId::evm(chain, [b; 20])
    }
    fn sol(b: u8) -> AccountId {
        AccountId::solana(SOLANA_MAINNET, &[b; 32])
    }
    fn solana() -> ChainId {
        ChainId::Solana(SOLANA_MAINNET.into())
    }

    #[test]
    fn list_orders_requested_first_and_flags_missing_chains() {
        let wallets = vec![sol(1), evm(1, 0xaa), evm(137, 0xbb), evm(1, 0xcc)];
        let req = vec![ChainId::Evm(1), ChainId::Evm(8453), ChainId::Evm(1), solana()];
        let list = approval_list(&req, &wallets, &[evm(1, 0xcc)]);
        assert_eq!(list.requested, vec![ChainId::Evm(1), ChainId::Evm(8453), solana()]);
        let states: Vec<_> = list.rows.iter().map(|r| (r.account.clone(), r.state)).collect();
        assert_eq!(
            states,
            vec![
                (evm(1, 0xaa), RowState::Selectable),
                (evm(1, 0xcc), RowState::Selected),
                (sol(1), RowState::Selectable),
                (evm(137, 0xbb), RowState::NotRequested),
            ]
        );
        assert_eq!(list.chains_without_wallet, vec![ChainId::Evm(8453)]);
        assert_eq!(list.rows[0].chain_name, "Ethereum");
        assert!(list.rows[0].short_address.contains('…'));
        assert!(list.can_approve());
    }

    #[test]
    fn toggle_and_select_all() {
        let wallets = vec![evm(1, 1), evm(137, 2)];
        let mut list = approval_list(&[ChainId::Evm(1)], &wallets, &[]);
        assert!(list.selected().is_empty());
        assert!(list.toggle(&evm(1, 1)));
        assert_eq!(list.selected(), vec![evm(1, 1)]);
        assert!(list.toggle(&evm(1, 1)));
        assert!(list.selected().is_empty());
        assert!(!list.toggle(&evm(137, 2)), "not requested");
        assert!(!list.toggle(&evm(1, 9)), "not on appliance");
        list.select_all();
        assert_eq!(list.selected(), vec![evm(1, 1)]);
        let v = validate_selection(&list.requested, &wallets, &list.selected()).unwrap();
        assert_eq!(v, vec![evm(1, 1)]);
    }

    #[test]
    fn nothing_bindable() {
        let list = approval_list(&[ChainId::Evm(10)], &[evm(1, 1)], &[]);
        assert!(!list.can_approve());
        assert_eq!(list.chains_without_wallet, vec![ChainId::Evm(10)]);
    }

    #[test]
    fn validation_rejections() {
        let wallets = vec![evm(1, 1), evm(1, 2), evm(137, 3), sol(4)];
        let req = vec![ChainId::Evm(1), solana()];
        assert_eq!(validate_selection(&[], &wallets, &[evm(1, 1)]), Err(SelectionError::NoChainsRequested));
        assert_eq!(validate_selection(&req, &wallets, &[]), Err(SelectionError::NothingSelected));
        assert_eq!(
            validate_selection(&req, &wallets, &[evm(1, 1), evm(1, 1)]),
            Err(SelectionError::Duplicate(evm(1, 1)))
        );
        assert_eq!(
            validate_selection(&req, &wallets, &[evm(137, 3)]),
            Err(SelectionError::ChainNotRequested(evm(137, 3)))
        );
        assert_eq!(validate_selection(&req, &wallets, &[evm(1, 9)]), Err(SelectionError::NotOnAppliance(evm(1, 9))));
        // Same address, other chain: not the same account.
        assert_eq!(
            validate_selection(&[ChainId::Evm(10)], &wallets, &[evm(10, 1)]),
            Err(SelectionError::NotOnAppliance(evm(10, 1)))
        );
        let bad = AccountId { chain: ChainId::Evm(1), address: "0xnothex".into() };
        assert_eq!(validate_selection(&req, &wallets, &[bad]).unwrap_err().code(), "invalid_account");
    }

    #[test]
    fn bindings_are_canonical_and_sorted() {
        let wallets = vec![evm(1, 0xab), evm(1, 0x01), sol(4)];
        let req = vec![solana(), ChainId::Evm(1)];
        // A lower-case address given by a UI is canonicalised to EIP-55 and deduplicated
        // against its checksummed form.
        let lower = AccountId { chain: ChainId::Evm(1), address: evm(1, 0xab).address.to_lowercase() };
        let out = validate_selection(&req, &wallets, &[sol(4), lower.clone(), evm(1, 0x01)]).unwrap();
        assert_eq!(out, vec![evm(1, 0x01), evm(1, 0xab), sol(4)]);
        assert_eq!(
            validate_selection(&req, &wallets, &[lower, evm(1, 0xab)]),
            Err(SelectionError::Duplicate(evm(1, 0xab)))
        );
    }

    proptest::proptest! {
        #[test]
        fn valid_selection_is_sorted_unique_subset(
            picks in proptest::collection::vec((0usize..6, proptest::bool::ANY), 0..8)
        ) {
            let wallets: Vec<AccountId> =
                (0u8..6).map(|i| if i % 3 == 2 { sol(i) } else { evm(1 + u64::from(i % 2) * 136, i) }).collect();
            let req = vec![ChainId::Evm(1), solana()];
            let selected: Vec<AccountId> =
                picks.iter().filter(|(_, keep)| *keep).map(|(i, _)| wallets[*i].clone()).collect();
            match validate_selection(&req, &wallets, &selected) {
                Ok(out) => {
                    proptest::prop_assert!(!out.is_empty());
                    proptest::prop_assert!(out.windows(2).all(|w| w[0] < w[1]));
                    proptest::prop_assert!(out.iter().all(|a| wallets.contains(a) && req.contains(&a.chain)));
                    proptest::prop_assert_eq!(out.len(), selected.len());
                }
                Err(e) => proptest::prop_assert!(!e.code().is_empty()),
            }
        }
    }
}
