//! Rendering rules: exact decimal amounts with thousands separators, UTC dates, durations in
//! words, units with SI prefixes, chain names. No floating point anywhere.

use alloy_primitives::U256;

use crate::decode::units::format_units;

/// Inserts `,` every three digits of the integer part: `1234567.5` → `1,234,567.5`.
pub fn group_thousands(s: &str) -> String {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", s),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    if !int.bytes().all(|b| b.is_ascii_digit()) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + int.len() / 3);
    out.push_str(sign);
    let n = int.len();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (n - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// `amount` base units with `decimals` decimals, exact, grouped: `1,000,000` / `0.30817074`.
pub fn decimal_amount(amount: U256, decimals: u8) -> String {
    group_thousands(&format_units(amount, decimals))
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Latest timestamp shown as a date (9999-12-31T23:59:59Z).
pub const MAX_DATE_SECS: u64 = 253_402_300_799;

/// A unix timestamp as `2024-02-29 08:27:12 AM UTC`, or `None` past year 9999.
pub fn utc_date(secs: U256) -> Option<String> {
    let secs = u64::try_from(secs).ok().filter(|s| *s <= MAX_DATE_SECS)?;
    let secs = i64::try_from(secs).ok()?;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let (h12, ampm) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    Some(format!("{y:04}-{m:02}-{d:02} {h12:02}:{min:02}:{s:02} {ampm} UTC"))
}

/// A number of seconds in words: `2 hours, 17 minutes, 30 seconds`.
pub fn duration_words(secs: U256) -> String {
    let Ok(total) = u64::try_from(secs) else {
        return format!("{secs} seconds");
    };
    if total == 0 {
        return "0 seconds".into();
    }
    let units: [(u64, &str); 4] = [(86_400, "day"), (3600, "hour"), (60, "minute"), (1, "second")];
    let mut rest = total;
    let mut parts = Vec::new();
    for (size, name) in units {
        let n = rest / size;
        rest %= size;
        if n > 0 {
            parts.push(format!("{n} {name}{}", if n == 1 { "" } else { "s" }));
        }
    }
    parts.join(", ")
}

const SI_PREFIXES: [(u8, &str); 6] = [(18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")];

/// A value with a unit: `value / 10^decimals` exactly, with an SI prefix when asked
/// (`36000`, base `s`, prefix → `36ks`; `3000`, 4 decimals, `%` → `0.3%`).
pub fn unit_value(value: U256, decimals: u8, base: &str, prefix: bool) -> String {
    let mut shown = format_units(value, decimals);
    let mut pre = "";
    if prefix {
        for (exp, p) in SI_PREFIXES {
            let scale = U256::from(10u8).pow(U256::from(exp));
            let whole = value / U256::from(10u8).pow(U256::from(decimals));
            if whole >= scale {
                shown = format_units(value, decimals.saturating_add(exp));
                pre = p;
                break;
            }
        }
    }
    let sep = if base == "%" || base.is_empty() { "" } else { " " };
    format!("{}{sep}{pre}{base}", group_thousands(&shown))
}

/// EIP-155 chain names and native currencies the engine knows.
const CHAINS: &[(u64, &str, &str)] = &[
    (1, "Ethereum", "ETH"),
    (10, "OP Mainnet", "ETH"),
    (25, "Cronos", "CRO"),
    (56, "BNB Smart Chain", "BNB"),
    (100, "Gnosis", "xDAI"),
    (130, "Unichain", "ETH"),
    (137, "Polygon", "POL"),
    (143, "Monad", "MON"),
    (146, "Sonic", "S"),
    (250, "Fantom", "FTM"),
    (324, "zkSync Era", "ETH"),
    (480, "World Chain", "ETH"),
    (999, "HyperEVM", "HYPE"),
    (1101, "Polygon zkEVM", "ETH"),
    (1135, "Lisk", "ETH"),
    (1329, "Sei", "SEI"),
    (1868, "Soneium", "ETH"),
    (1923, "Swellchain", "ETH"),
    (5000, "Mantle", "MNT"),
    (8217, "Kaia", "KAIA"),
    (8453, "Base", "ETH"),
    (34443, "Mode", "ETH"),
    (42161, "Arbitrum One", "ETH"),
    (42170, "Arbitrum Nova", "ETH"),
    (42220, "Celo", "CELO"),
    (43114, "Avalanche C-Chain", "AVAX"),
    (57073, "Ink", "ETH"),
    (59144, "Linea", "ETH"),
    (60808, "BOB", "ETH"),
    (80094, "Berachain", "BERA"),
    (81457, "Blast", "ETH"),
    (534352, "Scroll", "ETH"),
    (7777777, "Zora", "ETH"),
    (11155111, "Ethereum Sepolia", "ETH"),
    (17000, "Ethereum Holesky", "ETH"),
];

/// The chain's name, or `Chain <id>`.
pub fn chain_name(id: u64) -> String {
    CHAINS.iter().find(|(c, _, _)| *c == id).map(|(_, n, _)| (*n).to_string()).unwrap_or_else(|| format!("Chain {id}"))
}

/// The chain's native currency symbol (18 decimals on every EVM chain listed); `ETH` when
/// the chain is not listed.
pub fn native_symbol(id: u64) -> &'static str {
    CHAINS.iter().find(|(c, _, _)| *c == id).map(|(_, _, s)| *s).unwrap_or("ETH")
}

/// `amount` wei of `chain`'s native currency: `0.0075 ETH`.
pub fn native_amount(chain: u64, amount: U256) -> String {
    format!("{} {}", decimal_amount(amount, 18), native_symbol(chain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn amounts_are_exact_and_grouped() {
        assert_eq!(decimal_amount(U256::from(1_000_000_000_000u64), 6), "1,000,000");
        assert_eq!(decimal_amount(U256::from(30_817_074u64), 8), "0.30817074");
        assert_eq!(decimal_amount(U256::from(22_213_170_518u64), 6), "22,213.170518");
        assert_eq!(decimal_amount(U256::ZERO, 18), "0");
        assert_eq!(group_thousands("123"), "123");
        assert_eq!(group_thousands("1234"), "1,234");
    }

    #[test]
    fn dates_are_utc_with_twelve_hour_clock() {
        assert_eq!(utc_date(U256::from(1_709_191_632u64)).unwrap(), "2024-02-29 07:27:12 AM UTC");
        assert_eq!(utc_date(U256::ZERO).unwrap(), "1970-01-01 12:00:00 AM UTC");
        assert_eq!(utc_date(U256::from(1_777_000_000u64)).unwrap(), "2026-04-24 03:06:40 AM UTC");
        assert_eq!(utc_date(U256::from(43_200u64)).unwrap(), "1970-01-01 12:00:00 PM UTC");
        assert_eq!(utc_date(U256::from(MAX_DATE_SECS)).unwrap(), "9999-12-31 11:59:59 PM UTC");
        assert_eq!(utc_date(U256::from(MAX_DATE_SECS + 1)), None);
        assert_eq!(utc_date(U256::MAX), None);
    }

    #[test]
    fn durations_and_units_read_naturally() {
        assert_eq!(duration_words(U256::from(8250)), "2 hours, 17 minutes, 30 seconds");
        assert_eq!(duration_words(U256::from(86_401)), "1 day, 1 second");
        assert_eq!(unit_value(U256::from(36_000), 0, "s", true), "36 ks");
        assert_eq!(unit_value(U256::from(15), 1, "d", false), "1.5 d");
        assert_eq!(unit_value(U256::from(3000), 4, "%", false), "0.3%");
        assert_eq!(unit_value(U256::from(9300), 0, "bps", false), "9,300 bps");
    }

    proptest! {
        #[test]
        fn any_timestamp_formats_without_panicking(secs: u64) {
            let _ = utc_date(U256::from(secs));
            let _ = duration_words(U256::from(secs));
        }

        #[test]
        fn grouping_only_adds_commas(v: u128, d in 0u8..40) {
            let plain = format_units(U256::from(v), d);
            prop_assert_eq!(decimal_amount(U256::from(v), d).replace(',', ""), plain);
        }
    }
}
