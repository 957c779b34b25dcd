//! Chain and account names: CAIP-2 chain ids (`eip155:1`, `solana:5eykt4Us…`) and CAIP-10
//! accounts (`eip155:1:0xAbC…`), in one canonical form (EIP-55 for EVM, base58 for Solana).

use std::fmt;
use std::str::FromStr;

use alloy_primitives::Address;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Solana mainnet-beta's CAIP-2 reference (genesis hash prefix).
pub const SOLANA_MAINNET: &str = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";
/// Solana devnet's CAIP-2 reference.
pub const SOLANA_DEVNET: &str = "EtWTRABZaYq6iMfeYKouRu166VU2xqa1";

/// Why a chain id or account was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CaipError {
    /// Not of the form `namespace:reference`.
    #[error("not a CAIP-2 chain id (namespace:reference)")]
    BadChainId,
    /// A namespace other than `eip155` or `solana`.
    #[error("unsupported chain namespace `{0}`")]
    UnsupportedNamespace(String),
    /// An `eip155` reference that is not a decimal chain id without leading zeros.
    #[error("bad EVM chain id")]
    BadEvmChainId,
    /// A `solana` reference that is not a 32-character base58 genesis hash prefix.
    #[error("bad Solana cluster reference")]
    BadSolanaReference,
    /// Not of the form `chain_id:address`.
    #[error("not a CAIP-10 account (namespace:reference:address)")]
    BadAccount,
    /// An EVM address that is not 0x + 40 hex digits, or whose mixed case fails EIP-55.
    #[error("bad EVM address (expected 0x + 40 hex digits with a valid EIP-55 checksum)")]
    BadEvmAddress,
    /// A Solana address that is not base58 of 32 bytes.
    #[error("bad Solana address (expected base58 of 32 bytes)")]
    BadSolanaAddress,
}

/// A CAIP-2 chain id the project supports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChainId {
    /// An EVM chain, by its EIP-155 chain id.
    Evm(u64),
    /// A Solana cluster, by its genesis-hash reference.
    Solana(String),
}

impl ChainId {
    /// The CAIP-2 namespace (`eip155` or `solana`).
    pub fn namespace(&self) -> &'static str {
        match self {
            ChainId::Evm(_) => "eip155",
            ChainId::Solana(_) => "solana",
        }
    }

    /// True for EVM chains.
    pub fn is_evm(&self) -> bool {
        matches!(self, ChainId::Evm(_))
    }

    /// A short human name for well-known chains, else the CAIP-2 id.
    pub fn display_name(&self) -> String {
        match self {
            ChainId::Evm(1) => "Ethereum".into(),
            ChainId::Evm(10) => "Optimism".into(),
            ChainId::Evm(137) => "Polygon".into(),
            ChainId::Evm(8453) => "Base".into(),
            ChainId::Evm(42161) => "Arbitrum One".into(),
            ChainId::Evm(11155111) => "Sepolia".into(),
            ChainId::Solana(r) if r == SOLANA_MAINNET => "Solana".into(),
            ChainId::Solana(r) if r == SOLANA_DEVNET => "Solana devnet".into(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainId::Evm(id) => write!(f, "eip155:{id}"),
            ChainId::Solana(r) => write!(f, "solana:{r}"),
        }
    }
}

impl FromStr for ChainId {
    type Err = CaipError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ns, reference) = s.split_once(':').ok_or(CaipError::BadChainId)?;
        let ns_ok = (3..=8).contains(&ns.len())
            && ns.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ref_ok = (1..=32).contains(&reference.len())
            && reference.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ns_ok || !ref_ok {
            return Err(CaipError::BadChainId);
        }
        match ns {
            "eip155" => {
                if reference.starts_with('0') || !reference.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CaipError::BadEvmChainId);
                }
                let id: u64 = reference.parse().map_err(|_| CaipError::BadEvmChainId)?;
                Ok(ChainId::Evm(id))
            }
            "solana" => {
                // Base58 of anything: only its alphabet can fail (no need to decode it).
                if reference.len() != 32 || !reference.bytes().all(is_base58) {
                    return Err(CaipError::BadSolanaReference);
                }
                Ok(ChainId::Solana(reference.to_string()))
            }
            other => Err(CaipError::UnsupportedNamespace(other.to_string())),
        }
    }
}

/// A CAIP-10 account: a chain and an address on it, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId {
    /// The chain the account lives on.
    pub chain: ChainId,
    /// The canonical address: EIP-55 `0x…` for EVM, base58 for Solana.
    pub address: String,
}

impl AccountId {
    /// Builds an EVM account from a 20-byte address.
    pub fn evm(chain_id: u64, address: [u8; 20]) -> Self {
        AccountId { chain: ChainId::Evm(chain_id), address: Address::from(address).to_checksum(None) }
    }

    /// Builds a Solana account from a 32-byte public key.
    pub fn solana(reference: &str, pubkey: &[u8; 32]) -> Self {
        AccountId { chain: ChainId::Solana(reference.to_string()), address: bs58::encode(pubkey).into_string() }
    }

    /// The 20 address bytes of an EVM account.
    pub fn evm_address(&self) -> Option<[u8; 20]> {
        match self.chain {
            ChainId::Evm(_) => Address::from_str(&self.address).ok().map(|a| a.into_array()),
            ChainId::Solana(_) => None,
        }
    }

    /// The 32 public-key bytes of a Solana account.
    pub fn solana_pubkey(&self) -> Option<[u8; 32]> {
        match self.chain {
            ChainId::Solana(_) => {
                bs58::decode(&self.address).into_vec().ok().and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
            }
            ChainId::Evm(_) => None,
        }
    }

    /// A shortened address for small screens: `0x1234…abcd`.
    pub fn short_address(&self) -> String {
        let a = &self.address;
        let n = a.chars().count();
        if n <= 12 {
            return a.clone();
        }
        let head: String = a.chars().take(6).collect();
        let tail: String = a.chars().skip(n - 4).collect();
        format!("{head}…{tail}")
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.chain, self.address)
    }
}

impl FromStr for AccountId {
    type Err = CaipError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (chain, address) = s.rsplit_once(':').ok_or(CaipError::BadAccount)?;
        if !chain.contains(':') || address.is_empty() || address.len() > 128 {
            return Err(CaipError::BadAccount);
        }
        let chain: ChainId = chain.parse()?;
        match chain {
            ChainId::Evm(id) => {
                let body = address.strip_prefix("0x").ok_or(CaipError::BadEvmAddress)?;
                if body.len() != 40 || !body.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(CaipError::BadEvmAddress);
                }
                let all_lower = !body.bytes().any(|b| b.is_ascii_uppercase());
                let all_upper = !body.bytes().any(|b| b.is_ascii_lowercase());
                let addr = if all_lower || all_upper {
                    // No checksum to check: single-case addresses are accepted and canonicalised.
                    Address::from_str(address).map_err(|_| CaipError::BadEvmAddress)?
                } else {
                    Address::parse_checksummed(address, None).map_err(|_| CaipError::BadEvmAddress)?
                };
                Ok(AccountId::evm(id, addr.into_array()))
            }
            ChainId::Solana(r) => {
                let mut key = [0u8; 32];
                match bs58::decode(address).onto(&mut key) {
                    // Base58 is one-to-one (each leading '1' is one leading zero byte, the
                    // rest a number without leading zero digits): a string that decodes is
                    // the canonical encoding of its bytes, so it is kept as given.
                    Ok(32) => Ok(AccountId { chain: ChainId::Solana(r), address: address.to_string() }),
                    _ => Err(CaipError::BadSolanaAddress),
                }
            }
        }
    }
}

/// Whether `b` is in the base58 (Bitcoin) alphabet Solana uses.
fn is_base58(b: u8) -> bool {
    b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l')
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(ChainId);
string_serde!(AccountId);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chain_ids_parse_and_render() {
        assert_eq!("eip155:1".parse::<ChainId>().unwrap(), ChainId::Evm(1));
        assert_eq!(
            format!("solana:{SOLANA_MAINNET}").parse::<ChainId>().unwrap().to_string(),
            format!("solana:{SOLANA_MAINNET}")
        );
        for bad in ["eip155:01", "eip155:", "eip155:x", "cosmos:hub", "EIP155:1", "eip155", "solana:abc"] {
            assert!(bad.parse::<ChainId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn evm_accounts_are_canonicalised_to_eip55() {
        // EIP-55 test vector.
        let a: AccountId = "eip155:1:0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed".parse().unwrap();
        assert_eq!(a.address, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
        assert!("eip155:1:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD".parse::<AccountId>().is_err());
        assert!("eip155:1:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA".parse::<AccountId>().is_err());
    }

    #[test]
    fn solana_accounts_need_32_bytes() {
        let ok = format!("solana:{SOLANA_MAINNET}:{}", bs58::encode([7u8; 32]).into_string());
        assert_eq!(ok.parse::<AccountId>().unwrap().solana_pubkey(), Some([7u8; 32]));
        for key in [[0u8; 32], [7u8; 32], [255u8; 32], {
            let mut k = [0u8; 32];
            k[3] = 9;
            k
        }] {
            let enc = bs58::encode(key).into_string();
            let a: AccountId = format!("solana:{SOLANA_MAINNET}:{enc}").parse().unwrap();
            assert_eq!((a.address.as_str(), a.solana_pubkey()), (enc.as_str(), Some(key)), "kept as canonical");
        }
        let long = format!("solana:{SOLANA_MAINNET}:{}", bs58::encode([7u8; 33]).into_string());
        assert_eq!(long.parse::<AccountId>(), Err(CaipError::BadSolanaAddress));
        assert_eq!(format!("solana:{SOLANA_MAINNET}:0OIl").parse::<AccountId>(), Err(CaipError::BadSolanaAddress));
        assert_eq!("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvd0".parse::<ChainId>(), Err(CaipError::BadSolanaReference));
        let short = format!("solana:{SOLANA_MAINNET}:{}", bs58::encode([7u8; 31]).into_string());
        assert_eq!(short.parse::<AccountId>(), Err(CaipError::BadSolanaAddress));
    }

    proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panic(s in ".{0,200}") {
            let _ = s.parse::<ChainId>();
            let _ = s.parse::<AccountId>();
        }

        #[test]
        fn evm_round_trip(id in 1u64..u64::MAX, addr: [u8; 20]) {
            let a = AccountId::evm(id, addr);
            prop_assert_eq!(a.to_string().parse::<AccountId>().unwrap(), a);
        }
    }
}
