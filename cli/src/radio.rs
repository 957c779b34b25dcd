//! The simulated radio's options, shared by `sunstorm demo` and `sunstorm sim appliance`:
//! a phone profile (`--central`) and overrides of its connection interval and per-event
//! PDU cap (the model: `sunstorm_sim::link`, figures in `docs/performance.md`).

use std::time::Duration;

use sunstorm_sim::link::{Central, SimLinkConfig};

/// Longest connection interval BLE allows (4 s).
const MAX_INTERVAL_MS: f64 = 4000.0;
/// Shortest non-zero connection interval BLE allows (7.5 ms).
const MIN_INTERVAL_MS: f64 = 7.5;

/// Parses `--central`.
pub fn parse_central(s: &str) -> Result<Central, String> {
    Central::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Central::ALL.iter().map(|c| c.name()).collect();
        format!("unknown central {s:?}: one of {}", names.join(", "))
    })
}

/// Parses `--connection-interval-ms`: 0, or 7.5..=4000 milliseconds (fractions allowed).
pub fn parse_interval_ms(s: &str) -> Result<f64, String> {
    let ms: f64 = s.parse().map_err(|_| format!("not a number of milliseconds: {s:?}"))?;
    if ms == 0.0 || (MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!("a connection interval is 0 or {MIN_INTERVAL_MS}..={MAX_INTERVAL_MS} ms, not {s}"))
    }
}

/// A fault-free link at `mtu` with `central`'s radio, its interval and cap overridden
/// where given.
pub fn link_config(central: Central, mtu: u16, interval_ms: Option<f64>, pdus_per_event: Option<u32>) -> SimLinkConfig {
    let mut cfg = SimLinkConfig::central(central, mtu);
    if let Some(ms) = interval_ms {
        cfg.connection_interval = Duration::from_secs_f64(ms / 1000.0);
    }
    if let Some(n) = pdus_per_event {
        cfg.pdus_per_event = n;
    }
    cfg
}

/// "4 PDUs per connection event", or "no per-event cap".
pub fn cap_words(pdus_per_event: u32) -> String {
    match pdus_per_event {
        0 => "no per-event cap".into(),
        n => format!("{n} PDUs per connection event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_zero_or_within_what_ble_allows() {
        assert_eq!(parse_interval_ms("7.5"), Ok(7.5));
        assert_eq!(parse_interval_ms("0"), Ok(0.0));
        assert_eq!(parse_interval_ms("30"), Ok(30.0));
        for bad in ["5", "4001", "-1", "NaN", "fast"] {
            assert!(parse_interval_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overrides_replace_the_central_s_figures() {
        let c = link_config(Central::Ios, 247, Some(7.5), Some(6));
        assert_eq!((c.mtu, c.connection_interval, c.pdus_per_event), (247, Duration::from_micros(7_500), 6));
        let c = link_config(Central::Android, 23, None, None);
        assert_eq!((c.connection_interval, c.pdus_per_event), (Duration::from_millis(30), 8));
        assert!(parse_central("ios").is_ok() && parse_central("nokia").is_err());
    }
}
