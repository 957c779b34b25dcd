//! The appliance's rules for bonding attempts: when it listens at all (the bonding window)
//! and how fast a stranger may guess its PIN (wrong-PIN back-off and an hourly cap).
//!
//! Sans-I/O and clock-free: every call takes the current Unix time, so the appliance (and
//! its simulator) decides what clock to use and tests move time by hand. [`BondGuard`] is
//! the state that must survive a restart (the appliance persists it), [`BondingWindow`] the
//! state that must not (a restart closes bonding mode). The rules and the expected time to
//! guess a PIN under them are in `docs/ble-protocol.md` ("Bonding mode and PIN guessing").

use serde::{Deserialize, Serialize};

use super::channel::MAX_PIN_ATTEMPTS;

/// How long bonding mode stays open once the user opens it (unless a bond completes first).
pub const BONDING_WINDOW_SECS: u64 = 120;
/// Length of the first lockout after [`MAX_PIN_ATTEMPTS`] wrong PINs; each further lockout
/// (until a bond succeeds) doubles it.
pub const LOCKOUT_BASE_SECS: u64 = 30;
/// The longest a single lockout lasts.
pub const LOCKOUT_MAX_SECS: u64 = 3600;
/// Wrong PINs the appliance evaluates in any rolling hour, lockouts or not.
pub const MAX_WRONG_PINS_PER_HOUR: u32 = 10;
/// The rolling window of [`MAX_WRONG_PINS_PER_HOUR`].
pub const HOUR_SECS: u64 = 3600;

/// The numbers of the wrong-PIN rules (defaults: the constants of this module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondPolicy {
    /// Wrong PINs per PIN; the last one locks bonding and replaces the PIN.
    pub max_attempts: u32,
    /// First lockout, in seconds; doubled by each further lockout.
    pub lockout_base_secs: u64,
    /// Longest lockout, in seconds.
    pub lockout_max_secs: u64,
    /// Wrong PINs evaluated per rolling hour.
    pub max_wrong_per_hour: u32,
}

impl Default for BondPolicy {
    fn default() -> Self {
        Self {
            max_attempts: MAX_PIN_ATTEMPTS,
            lockout_base_secs: LOCKOUT_BASE_SECS,
            lockout_max_secs: LOCKOUT_MAX_SECS,
            max_wrong_per_hour: MAX_WRONG_PINS_PER_HOUR,
        }
    }
}

impl BondPolicy {
    /// Length of lockout number `n` (1 for the first): `base · 2^(n−1)`, at most the maximum.
    pub fn lockout_secs(&self, n: u32) -> u64 {
        let doublings = n.saturating_sub(1).min(63);
        self.lockout_base_secs.saturating_mul(1u64 << doublings).min(self.lockout_max_secs)
    }
}

/// What a wrong PIN leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrongPinVerdict {
    /// The PIN on screen stays; this many tries are left for it.
    TryAgain {
        /// Wrong PINs the current PIN still allows.
        attempts_left: u32,
    },
    /// That was the last try: show a new PIN, and refuse bonding for this long.
    Locked {
        /// Seconds until bonding is accepted again.
        retry_after_secs: u64,
    },
}

/// The wrong-PIN state the appliance persists: it must survive a restart, or a power cycle
/// would reset the back-off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondGuard {
    /// Wrong PINs counted against the PIN on screen.
    #[serde(default)]
    pub failures: u32,
    /// Lockouts since the last successful bond (the next lockout lasts longer).
    #[serde(default)]
    pub lockouts: u32,
    /// Unix second before which bonding is refused (0: no lockout).
    #[serde(default)]
    pub locked_until: u64,
    /// Unix seconds of the wrong PINs of the last hour, oldest first (at most the cap).
    #[serde(default)]
    pub recent_wrong: Vec<u64>,
}

impl BondGuard {
    /// Seconds to wait before a bonding attempt is accepted, or `None` when it may go on
    /// now. Time read from a clock that went backwards never makes a wait longer than the
    /// policy allows.
    pub fn wait_secs(&mut self, policy: &BondPolicy, now: u64) -> Option<u64> {
        self.tidy(policy, now);
        let lockout = self.locked_until.saturating_sub(now);
        let hourly = if self.recent_wrong.len() >= policy.max_wrong_per_hour as usize {
            self.recent_wrong.first().map_or(0, |t| t.saturating_add(HOUR_SECS).saturating_sub(now))
        } else {
            0
        };
        Some(lockout.max(hourly)).filter(|w| *w > 0)
    }

    /// Records a wrong PIN at `now` (the caller checked [`BondGuard::wait_secs`] first).
    pub fn record_wrong(&mut self, policy: &BondPolicy, now: u64) -> WrongPinVerdict {
        self.tidy(policy, now);
        self.recent_wrong.push(now);
        let cap = (policy.max_wrong_per_hour as usize).max(1);
        if self.recent_wrong.len() > cap {
            let extra = self.recent_wrong.len() - cap;
            self.recent_wrong.drain(..extra);
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures < policy.max_attempts {
            return WrongPinVerdict::TryAgain { attempts_left: policy.max_attempts - self.failures };
        }
        self.failures = 0;
        self.lockouts = self.lockouts.saturating_add(1);
        self.locked_until = now.saturating_add(policy.lockout_secs(self.lockouts));
        let retry_after_secs = self.wait_secs(policy, now).unwrap_or(0);
        WrongPinVerdict::Locked { retry_after_secs }
    }

    /// Records a successful bond: the PIN's failures and the lockout count start again
    /// (the wrong PINs of the last hour still count against the hourly cap).
    pub fn record_bond(&mut self) {
        self.failures = 0;
        self.lockouts = 0;
    }

    /// Wrong PINs the PIN on screen still allows.
    pub fn attempts_left(&self, policy: &BondPolicy) -> u32 {
        policy.max_attempts.saturating_sub(self.failures)
    }

    /// Forgets wrong PINs older than an hour and pulls times from the future (a clock set
    /// back) to at most the longest wait the policy allows.
    fn tidy(&mut self, policy: &BondPolicy, now: u64) {
        self.locked_until = self.locked_until.min(now.saturating_add(policy.lockout_max_secs));
        for t in &mut self.recent_wrong {
            *t = (*t).min(now);
        }
        self.recent_wrong.retain(|t| t.saturating_add(HOUR_SECS) > now);
    }
}

/// Bonding mode: the appliance answers `BondHello` only while the window its user opened is
/// open. It closes when its time runs out, when a bond completes, or by hand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BondingWindow {
    open_until: Option<u64>,
}

impl BondingWindow {
    /// Opens (or reopens) bonding mode for `secs` seconds from `now`.
    pub fn open(&mut self, now: u64, secs: u64) {
        self.open_until = Some(now.saturating_add(secs));
    }

    /// Closes bonding mode.
    pub fn close(&mut self) {
        self.open_until = None;
    }

    /// Seconds bonding mode stays open, `None` when it is closed.
    pub fn remaining(&self, now: u64) -> Option<u64> {
        self.open_until.map(|t| t.saturating_sub(now)).filter(|s| *s > 0)
    }

    /// Whether bonding mode is open at `now`.
    pub fn is_open(&self, now: u64) -> bool {
        self.remaining(now).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    #[test]
    fn three_wrong_pins_lock_for_a_time_that_doubles_up_to_the_maximum() {
        let p = BondPolicy::default();
        assert_eq!(
            (1..=9).map(|n| p.lockout_secs(n)).collect::<Vec<_>>(),
            vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
        );
        assert_eq!(p.lockout_secs(u32::MAX), 3600);
        let mut g = BondGuard::default();
        let mut now = T0;
        for lockout in 1..=3u32 {
            assert_eq!(g.wait_secs(&p, now), None);
            assert_eq!(g.record_wrong(&p, now), WrongPinVerdict::TryAgain { attempts_left: 2 });
            assert_eq!(g.record_wrong(&p, now), WrongPinVerdict::TryAgain { attempts_left: 1 });
            let want = p.lockout_secs(lockout);
            assert_eq!(g.record_wrong(&p, now), WrongPinVerdict::Locked { retry_after_secs: want });
            assert_eq!(g.wait_secs(&p, now + want - 1), Some(1));
            now += want;
        }
        // Nine wrong PINs in 210 s: a tenth is still evaluated within the hour.
        assert_eq!(g.wait_secs(&p, now), None);
        assert_eq!(g.record_wrong(&p, now), WrongPinVerdict::TryAgain { attempts_left: 2 });
        // The tenth wrong PIN of the hour: the next waits until the first is an hour old.
        assert_eq!(now, T0 + 210);
        assert_eq!(g.wait_secs(&p, now), Some(HOUR_SECS - 210));
        g.record_bond();
        assert_eq!(g.wait_secs(&p, now + 10), Some(HOUR_SECS - 220), "a bond does not reset the hourly cap");
        assert_eq!(g.wait_secs(&p, T0 + HOUR_SECS), None);
        assert_eq!(g.lockouts, 0);
    }

    #[test]
    fn a_clock_set_back_never_lengthens_a_wait_beyond_the_policy() {
        let p = BondPolicy::default();
        let mut g = BondGuard {
            locked_until: T0 + 10 * 365 * 86_400,
            recent_wrong: vec![T0 + 99_999; 10],
            ..BondGuard::default()
        };
        let w = g.wait_secs(&p, T0).unwrap();
        assert!(w <= LOCKOUT_MAX_SECS.max(HOUR_SECS), "{w}");
    }

    #[test]
    fn the_window_opens_for_a_time_and_closes() {
        let mut w = BondingWindow::default();
        assert!(!w.is_open(T0));
        w.open(T0, BONDING_WINDOW_SECS);
        assert_eq!(w.remaining(T0 + 20), Some(100));
        assert!(w.is_open(T0 + 119));
        assert!(!w.is_open(T0 + 120));
        w.open(T0, 5);
        w.close();
        assert!(!w.is_open(T0));
    }

    #[test]
    fn the_persisted_guard_reads_back_and_old_files_read_as_empty() {
        let g = BondGuard { failures: 2, lockouts: 3, locked_until: T0, recent_wrong: vec![T0 - 5, T0] };
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(serde_json::from_str::<BondGuard>(&json).unwrap(), g);
        assert_eq!(serde_json::from_str::<BondGuard>("{}").unwrap(), BondGuard::default());
    }
}
