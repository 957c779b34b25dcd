//! The simulator's keys, all derived from its seed so tests are reproducible: an Ed25519
//! identity key, an X25519 channel key, and wallets derived with maintained crates —
//! `bip32` (secp256k1, `m/44'/60'/0'/0/i`) and `ed25519-dalek-bip32` (SLIP-10 Ed25519,
//! `m/44'/501'/i'/0'`).

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use sunstorm_core::caip::{AccountId, ChainId, SOLANA_MAINNET};
use sunstorm_core::payload;
use zeroize::Zeroizing;

use super::SimError;

/// EVM chains the simulator has a wallet on.
pub const EVM_CHAINS: [u64; 2] = [1, 8453];

/// One wallet key.
pub enum WalletKey {
    /// secp256k1 (EVM).
    Evm(k256::ecdsa::SigningKey),
    /// Ed25519 (Solana).
    Solana(SigningKey),
}

/// The simulator's key material.
pub struct SimKeys {
    /// Ed25519 identity key.
    pub identity: SigningKey,
    /// X25519 channel private key.
    pub channel_private: Zeroizing<[u8; 32]>,
    /// Wallets: account and its key.
    pub wallets: Vec<(AccountId, WalletKey)>,
}

fn labelled(label: &[u8], seed: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(label);
    h.update(seed);
    Zeroizing::new(h.finalize().into())
}

impl SimKeys {
    /// Derives everything from `seed` (16 to 64 bytes, as BIP-32 requires).
    pub fn derive(seed: &[u8]) -> Result<Self, SimError> {
        if !(16..=64).contains(&seed.len()) {
            return Err(SimError::Config("the seed must be 16 to 64 bytes".into()));
        }
        let identity = SigningKey::from_bytes(&labelled(b"sigil-sim/v1/identity", seed));
        let channel_private = labelled(b"sigil-sim/v1/channel-x25519", seed);

        let mut wallets = Vec::new();
        let path: bip32::DerivationPath =
            "m/44'/60'/0'/0/0".parse().map_err(|e| SimError::Config(format!("derivation path: {e}")))?;
        let xprv = bip32::XPrv::derive_from_path(seed, &path).map_err(|e| SimError::Config(format!("bip32: {e}")))?;
        let evm_key = xprv.private_key().clone();
        let address = payload::address_of(evm_key.verifying_key());
        for chain in EVM_CHAINS {
            wallets.push((AccountId::evm(chain, address), WalletKey::Evm(evm_key.clone())));
        }

        let path: ed25519_dalek_bip32::DerivationPath =
            "m/44'/501'/0'/0'".parse().map_err(|e| SimError::Config(format!("derivation path: {e:?}")))?;
        let sol = ed25519_dalek_bip32::ExtendedSigningKey::from_seed(seed)
            .and_then(|k| k.derive(&path))
            .map_err(|e| SimError::Config(format!("slip10: {e}")))?;
        let sol_key = SigningKey::from_bytes(&sol.signing_key.to_bytes());
        let pubkey = sol_key.verifying_key().to_bytes();
        wallets.push((AccountId::solana(SOLANA_MAINNET, &pubkey), WalletKey::Solana(sol_key)));

        Ok(Self { identity, channel_private, wallets })
    }

    /// The key of one of the simulator's own accounts.
    pub fn key_for(&self, account: &AccountId) -> Option<&WalletKey> {
        self.wallets.iter().find(|(a, _)| a == account).map(|(_, k)| k)
    }

    /// The accounts on the given chains (all when empty).
    pub fn accounts(&self, chains: &[ChainId]) -> Vec<AccountId> {
        self.wallets
            .iter()
            .map(|(a, _)| a)
            .filter(|a| chains.is_empty() || chains.contains(&a.chain))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BIP-39 seed of "abandon abandon … about" (no passphrase), the common wallet vector.
    const ABANDON_SEED: &str = "5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc19a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4";

    #[test]
    fn wallets_match_the_standard_derivation_vectors() {
        let keys = SimKeys::derive(&hex::decode(ABANDON_SEED).unwrap()).unwrap();
        let accounts: Vec<String> = keys.accounts(&[]).iter().map(|a| a.to_string()).collect();
        assert_eq!(
            accounts,
            vec![
                "eip155:1:0x9858EfFD232B4033E47d90003D41EC34EcaEda94".to_string(),
                "eip155:8453:0x9858EfFD232B4033E47d90003D41EC34EcaEda94".to_string(),
                format!("solana:{SOLANA_MAINNET}:HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk"),
            ]
        );
    }

    #[test]
    fn seeds_outside_bip32_bounds_are_refused() {
        assert!(SimKeys::derive(&[1u8; 15]).is_err());
        assert!(SimKeys::derive(&[1u8; 65]).is_err());
        let a = SimKeys::derive(&[1u8; 32]).unwrap();
        let b = SimKeys::derive(&[1u8; 32]).unwrap();
        assert_eq!(a.identity.to_bytes(), b.identity.to_bytes(), "reproducible");
    }
}
