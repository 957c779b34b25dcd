//! What the phone knows about tokens while decoding: the caller's [`TokenLookup`] first,
//! then the token list of the verified metadata bundle ([`DecodeContext::clear`], whose
//! CAIP-19 keys are all ERC-20 tokens). The decoder never guesses: a number whose meaning
//! depends on a token's standard the phone does not know is shown as "amount or token ID",
//! and amounts of unknown tokens stay in base units.

use std::collections::BTreeMap;

use alloy_primitives::Address;

use crate::caip::ChainId;

use super::erc7730::{AddressBook, DescriptorSet, NoAddressBook};

/// The standard a token contract follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenStandard {
    /// ERC-20 (fungible; `approve`/`transferFrom` carry amounts).
    Erc20,
    /// ERC-721 (non-fungible; `approve`/`transferFrom` carry token IDs).
    Erc721,
    /// ERC-1155 (multi-token).
    Erc1155,
}

/// What is known about one token contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its standard.
    pub standard: TokenStandard,
    /// Its symbol ("USDC"); shown through the sanitiser.
    pub symbol: String,
    /// Decimals of its amounts (ERC-20), if known.
    pub decimals: Option<u8>,
}

/// A source of token facts (a signed token list, later).
pub trait TokenLookup: Send + Sync {
    /// What is known about `contract` on `chain` (EVM: any case; Solana: base58).
    fn token(&self, chain: &ChainId, contract: &str) -> Option<TokenInfo>;
}

/// An in-memory token list (tests, tools; the empty list is the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownTokens {
    tokens: BTreeMap<(String, String), TokenInfo>,
}

fn normal(chain: &ChainId, contract: &str) -> (String, String) {
    let c = if chain.is_evm() { contract.to_ascii_lowercase() } else { contract.to_string() };
    (chain.to_string(), c)
}

impl KnownTokens {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a token.
    pub fn insert(&mut self, chain: &ChainId, contract: &str, info: TokenInfo) {
        self.tokens.insert(normal(chain, contract), info);
    }
}

impl TokenLookup for KnownTokens {
    fn token(&self, chain: &ChainId, contract: &str) -> Option<TokenInfo> {
        self.tokens.get(&normal(chain, contract)).cloned()
    }
}

/// Everything [`super::decode_with`] may consult besides the payload.
#[derive(Clone, Copy)]
pub struct DecodeContext<'a> {
    /// Token facts.
    pub tokens: &'a dyn TokenLookup,
    /// ERC-7730 descriptors, tokens and contract names of the verified metadata bundle, if
    /// one is loaded.
    pub clear: Option<&'a DescriptorSet>,
    /// The user's own names for addresses.
    pub book: &'a dyn AddressBook,
}

static NO_TOKENS: KnownTokens = KnownTokens { tokens: BTreeMap::new() };

impl Default for DecodeContext<'_> {
    fn default() -> Self {
        DecodeContext { tokens: &NO_TOKENS, clear: None, book: &NoAddressBook }
    }
}

impl std::fmt::Debug for DecodeContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeContext").finish_non_exhaustive()
    }
}

impl DecodeContext<'_> {
    /// What is known about `contract` on `chain`: the caller's token facts, else the
    /// metadata bundle's token list (an ERC-20 token with its symbol and decimals).
    pub fn token(&self, chain: &ChainId, contract: &str) -> Option<TokenInfo> {
        self.tokens.token(chain, contract).or_else(|| self.bundle_token(chain, contract))
    }

    /// The token's info if it is known to follow `standard`.
    pub fn token_of(&self, chain: &ChainId, contract: &str, standard: TokenStandard) -> Option<TokenInfo> {
        self.token(chain, contract).filter(|t| t.standard == standard)
    }

    /// The bundle's entry for an EVM token contract.
    fn bundle_token(&self, chain: &ChainId, contract: &str) -> Option<TokenInfo> {
        let ChainId::Evm(id) = chain else { return None };
        let address: Address = contract.parse().ok()?;
        let t = self.clear?.token(*id, &address)?;
        Some(TokenInfo { standard: TokenStandard::Erc20, symbol: t.symbol.clone(), decimals: Some(t.decimals) })
    }
}
