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

/// Unix seconds as a UTC date and time with the number itself:
/// `format_unix_time(1_700_000_000) == "2023-11-14 22:13:20 UTC (1700000000)"`.
/// Past the year 9999 only the number is shown.
pub fn format_unix_time(secs: u64) -> String {
    const YEAR_10000: u64 = 253_402_300_800;
    if secs >= YEAR_10000 {
        return format!("{secs} (after the year 9999)");
    }
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (H. Hinnant), for days since 1970-01-01; all values stay positive.
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC ({secs})", rest / 3_600, rest % 3_600 / 60, rest % 60)
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

    #[test]
    fn unix_times() {
        assert_eq!(format_unix_time(0), "1970-01-01 00:00:00 UTC (0)");
        assert_eq!(format_unix_time(1_700_000_000), "2023-11-14 22:13:20 UTC (1700000000)");
        assert_eq!(format_unix_time(951_782_400), "2000-02-29 00:00:00 UTC (951782400)");
        assert_eq!(format_unix_time(253_402_300_799), "9999-12-31 23:59:59 UTC (253402300799)");
        assert_eq!(format_unix_time(u64::MAX), "18446744073709551615 (after the year 9999)");
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
