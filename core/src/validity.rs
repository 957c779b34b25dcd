//! The one validity rule of a sign request: when it may be acted on. The phone
//! (`core::sign`), the appliance simulator and the octane simulator all call
//! [`check_validity`]; none has a variant of its own, so they agree on every edge.
//!
//! A request `(created_at, expires_at)` is valid at `now` when all of these hold:
//!
//! - `created_at < expires_at` (a lifetime of at least one second);
//! - `expires_at - created_at <= MAX_TTL_SECS` (at most 300 s);
//! - `created_at <= now + max_skew` (not from the future, beyond the clock skew allowed);
//! - `now < expires_at` (a request is expired from the second `expires_at` on).
//!
//! The checks run in that order, so a request that breaks several gets the first error.
//! The appliance checks again when its user's answer arrives: a user answering after
//! `expires_at` gets [`ValidityError::Expired`], never a signature.

pub use crate::model::MAX_TTL_SECS;

/// How far in the future a request's `created_at` may be (clock skew between the SP, octane,
/// the phone and the appliance), in seconds.
pub const DEFAULT_MAX_SKEW_SECS: u64 = 60;

/// Why a sign request is not valid now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValidityError {
    /// `expires_at` is not after `created_at`.
    #[error("the request's lifetime is not positive (created {created_at}, expires {expires_at})")]
    NonPositiveLifetime {
        /// Unix seconds.
        created_at: u64,
        /// Unix seconds.
        expires_at: u64,
    },
    /// The request would be valid for longer than [`MAX_TTL_SECS`].
    #[error("the request would be valid for {lifetime} s, more than {MAX_TTL_SECS} s")]
    LifetimeTooLong {
        /// `expires_at - created_at`, seconds.
        lifetime: u64,
    },
    /// `created_at` is further in the future than the allowed clock skew.
    #[error("the request was created {ahead} s in the future (at most {max_skew} s allowed)")]
    CreatedInFuture {
        /// `created_at - now`, seconds.
        ahead: u64,
        /// The skew allowed.
        max_skew: u64,
    },
    /// `now` is at or after `expires_at`.
    #[error("the request expired {ago} s ago")]
    Expired {
        /// `now - expires_at`, seconds.
        ago: u64,
    },
}

impl ValidityError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ValidityError::NonPositiveLifetime { .. } => "non_positive_lifetime",
            ValidityError::LifetimeTooLong { .. } => "lifetime_too_long",
            ValidityError::CreatedInFuture { .. } => "created_in_future",
            ValidityError::Expired { .. } => "expired",
        }
    }
}

/// Whether a sign request created at `created_at` and expiring at `expires_at` (Unix
/// seconds) may be acted on at `now`, allowing `created_at` up to `max_skew` seconds ahead
/// of `now`. See the module documentation for the rule.
pub fn check_validity(created_at: u64, expires_at: u64, now: u64, max_skew: u64) -> Result<(), ValidityError> {
    if expires_at <= created_at {
        return Err(ValidityError::NonPositiveLifetime { created_at, expires_at });
    }
    let lifetime = expires_at - created_at;
    if lifetime > MAX_TTL_SECS {
        return Err(ValidityError::LifetimeTooLong { lifetime });
    }
    if created_at > now.saturating_add(max_skew) {
        return Err(ValidityError::CreatedInFuture { ahead: created_at - now, max_skew });
    }
    if now >= expires_at {
        return Err(ValidityError::Expired { ago: now - expires_at });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const SKEW: u64 = DEFAULT_MAX_SKEW_SECS;

    fn check(created: u64, expires: u64) -> Result<(), &'static str> {
        check_validity(created, expires, NOW, SKEW).map_err(|e| e.code())
    }

    #[test]
    fn every_edge_of_the_rule() {
        // Lifetime.
        assert_eq!(check(NOW, NOW), Err("non_positive_lifetime"));
        assert_eq!(check(NOW, NOW - 1), Err("non_positive_lifetime"));
        assert_eq!(check(NOW, NOW + 1), Ok(()));
        assert_eq!(check(NOW, NOW + MAX_TTL_SECS), Ok(()));
        assert_eq!(check(NOW, NOW + MAX_TTL_SECS + 1), Err("lifetime_too_long"));
        // Created in the future: up to the skew.
        assert_eq!(check(NOW + SKEW, NOW + SKEW + 10), Ok(()));
        assert_eq!(check(NOW + SKEW + 1, NOW + SKEW + 10), Err("created_in_future"));
        assert_eq!(check(NOW + 30 * 86_400, NOW + 30 * 86_400 + 10), Err("created_in_future"));
        // Expiry: expired from the second `expires_at` on.
        assert_eq!(check(NOW - 10, NOW + 1), Ok(()));
        assert_eq!(check(NOW - 10, NOW), Err("expired"));
        assert_eq!(check(NOW - 10, NOW - 1), Err("expired"));
    }

    #[test]
    fn errors_say_by_how_much() {
        assert_eq!(
            check_validity(NOW + 100, NOW + 110, NOW, SKEW),
            Err(ValidityError::CreatedInFuture { ahead: 100, max_skew: SKEW })
        );
        assert_eq!(check_validity(NOW - 20, NOW - 5, NOW, SKEW), Err(ValidityError::Expired { ago: 5 }));
        assert!(check_validity(NOW - 20, NOW - 5, NOW, SKEW).unwrap_err().to_string().contains("5 s ago"));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        assert_eq!(check_validity(u64::MAX - 1, u64::MAX, u64::MAX, 0).map_err(|e| e.code()), Err("expired"));
        assert_eq!(check_validity(u64::MAX - 1, u64::MAX, u64::MAX - 1, u64::MAX), Ok(()));
        assert_eq!(check_validity(0, u64::MAX, 0, 0).map_err(|e| e.code()), Err("lifetime_too_long"));
        assert_eq!(check_validity(u64::MAX - 1, u64::MAX, 0, 0).map_err(|e| e.code()), Err("created_in_future"));
    }

    proptest::proptest! {
        /// The rule, restated: valid exactly when the four conditions hold.
        #[test]
        fn valid_exactly_when_the_four_conditions_hold(
            now in 0u64..1_000_000,
            created in 0u64..1_000_000,
            lifetime in 0u64..400,
            skew in 0u64..120,
        ) {
            let expires = created + lifetime;
            let ok = created < expires
                && expires - created <= MAX_TTL_SECS
                && created <= now + skew
                && now < expires;
            proptest::prop_assert_eq!(check_validity(created, expires, now, skew).is_ok(), ok);
        }
    }
}
