//! Exact decimal formatting of on-chain integers (no floats), and native currency names.

use alloy_primitives::U256;

use crate::caip::{ChainId, SOLANA_DEVNET, SOLANA_MAINNET};

/// Formats `amount` base units with `decimals` decimals, exactly, without trailing zeros:
/// `format_units(1_500_000_000_000_000_000, 18) == "1.5"`, `format_units(0, 18) == "0"`.
pub fn format_units(amount: U256, decimals: u8) -> String {
    if decimals == 0 {
        return amount.to_string();
    }
    match alloy_primitives::utils::format_units(amount, decimals) {
        Ok(s) => {
            let s = s.trim_end_matches('0');
            s.strip_suffix('.').unwrap_or(s).to_string()
        }
        // More than 77 decimals: show base units rather than guess.
        Err(_) => format!("{amount} base units"),
    }
}

/// The native currency's symbol and decimals on `chain` (EVM chains use 18 decimals).
pub fn native_currency(chain: &ChainId) -> (&'static str, u8) {
    match chain {
        ChainId::Evm(137) => ("POL", 18),
        ChainId::Evm(56) => ("BNB", 18),
        ChainId::Evm(100) => ("xDAI", 18),
        ChainId::Evm(43114) => ("AVAX", 18),
        ChainId::Evm(_) => ("ETH", 18),
        ChainId::Solana(r) if r == SOLANA_MAINNET || r == SOLANA_DEVNET => ("SOL", 9),
        ChainId::Solana(_) => ("SOL", 9),
    }
}

/// `amount` of the native currency, e.g. `"0.01 ETH"`.
pub fn format_native(chain: &ChainId, amount: U256) -> String {
    let (sym, dec) = native_currency(chain);
    format!("{} {sym}", format_units(amount, dec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_decimals() {
        assert_eq!(format_units(U256::from(1_500_000_000_000_000_000u128), 18), "1.5");
        assert_eq!(format_units(U256::ZERO, 18), "0");
        assert_eq!(format_units(U256::from(1u8), 18), "0.000000000000000001");
        assert_eq!(format_units(U256::from(1_000_000u32), 6), "1");
        assert_eq!(format_units(U256::from(1234u32), 0), "1234");
        assert_eq!(
            format_units(U256::MAX, 18),
            "115792089237316195423570985008687907853269984665640564039457.584007913129639935"
        );
        assert_eq!(format_native(&ChainId::Evm(1), U256::from(10u64.pow(16))), "0.01 ETH");
    }

    proptest! {
        #[test]
        fn formatting_is_lossless(v: u128, d in 0u8..=30) {
            let s = format_units(U256::from(v), d);
            let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
            let digits = format!("{int}{frac:0<width$}", width = usize::from(d));
            prop_assert_eq!(digits.trim_start_matches('0').parse::<u128>().unwrap_or(0), v);
        }
    }
}
