//! The phone, the appliance simulator and the octane simulator agree on whether a sign
//! request is valid, on every edge of the rule (issue 13, attack 7): each caller's own
//! check — the functions their request paths call — is driven with the same times.

use proptest::prelude::*;
use sunstorm_core::appliance::proto::{ApplianceErrorCode as ApplianceCode, ResponseBody};
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::model::{PayloadKind, SignRequest, MAX_TTL_SECS, STATEMENT_VERSION};
use sunstorm_core::octane::api::OctaneErrorCode as OctaneCode;
use sunstorm_core::sign::{check_freshness, SignError};
use sunstorm_core::validity::DEFAULT_MAX_SKEW_SECS;
use uuid::Uuid;

const NOW: u64 = 1_800_000_000;

fn request(created_at: u64, expires_at: u64) -> SignRequest {
    SignRequest {
        v: STATEMENT_VERSION,
        request_id: Uuid::nil(),
        pair_id: Uuid::nil(),
        chain: ChainId::Evm(1),
        account: AccountId::evm(1, [1; 20]),
        kind: PayloadKind::Eip191Message,
        payload: b"x".to_vec(),
        created_at,
        expires_at,
    }
}

/// `None` when valid, else the reason code each caller gives.
fn phone(req: &SignRequest, now: u64) -> Option<String> {
    match check_freshness(req, now, DEFAULT_MAX_SKEW_SECS) {
        Ok(()) => None,
        Err(SignError::Expired) => Some("expired".into()),
        Err(SignError::BadValidity(e)) => Some(e.code().into()),
        Err(other) => panic!("the phone's freshness check failed otherwise: {other}"),
    }
}

fn appliance(req: &SignRequest, now: u64) -> Option<String> {
    match crate::appliance::sign_validity(req, now) {
        Ok(()) => None,
        Err(ResponseBody::Error { code: ApplianceCode::RequestExpired, message }) => {
            Some(message.split(':').next().unwrap_or_default().to_string())
        }
        Err(other) => panic!("the appliance answered otherwise: {other:?}"),
    }
}

fn octane(req: &SignRequest, now: u64) -> Option<String> {
    match crate::octane::logic::sign_validity(req, now) {
        Ok(()) => None,
        Err(e) if e.code == OctaneCode::InvalidExpiry => {
            Some(e.message.split(':').next().unwrap_or_default().to_string())
        }
        Err(e) => panic!("octane answered otherwise: {e:?}"),
    }
}

fn agree(created_at: u64, expires_at: u64, now: u64) -> Result<Option<String>, TestCaseError> {
    let req = request(created_at, expires_at);
    let p = phone(&req, now);
    prop_assert_eq!(&p, &appliance(&req, now), "phone vs appliance at {} for {}..{}", now, created_at, expires_at);
    prop_assert_eq!(&p, &octane(&req, now), "phone vs octane at {} for {}..{}", now, created_at, expires_at);
    Ok(p)
}

/// Offsets around every edge: 0, ±1 around the skew, the lifetime bounds, far away.
fn offset() -> impl Strategy<Value = i64> {
    let skew = i64::try_from(DEFAULT_MAX_SKEW_SECS).unwrap_or(60);
    let ttl = i64::try_from(MAX_TTL_SECS).unwrap_or(300);
    prop_oneof![
        (-2i64..=2),
        (skew - 2..=skew + 2),
        (-skew - 2..=-skew + 2),
        (ttl - 2..=ttl + 2),
        (-ttl - 2..=-ttl + 2),
        Just(30 * 86_400),
        Just(-30 * 86_400),
        (-1_000i64..1_000),
    ]
}

fn lifetime() -> impl Strategy<Value = i64> {
    let ttl = i64::try_from(MAX_TTL_SECS).unwrap_or(300);
    prop_oneof![Just(0), Just(1), Just(-1), (ttl - 2..=ttl + 2), (0i64..1_000)]
}

fn at(offset: i64) -> u64 {
    NOW.saturating_add_signed(offset)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// `created_at` near `now` (future skew edges), any lifetime.
    #[test]
    fn the_three_agree_around_created_at(created in offset(), lifetime in lifetime()) {
        let created_at = at(created);
        agree(created_at, created_at.saturating_add_signed(lifetime), NOW)?;
    }

    /// `expires_at` near `now` (expiry edges), any lifetime.
    #[test]
    fn the_three_agree_around_expires_at(expires in offset(), lifetime in lifetime()) {
        let expires_at = at(expires);
        agree(expires_at.saturating_add_signed(-lifetime), expires_at, NOW)?;
    }
}

#[test]
fn the_edges_named_in_the_rule() {
    let skew = DEFAULT_MAX_SKEW_SECS;
    let cases: &[(u64, u64, Option<&str>)] = &[
        (NOW, NOW, Some("non_positive_lifetime")),
        (NOW, NOW + 1, None),
        (NOW, NOW + MAX_TTL_SECS, None),
        (NOW, NOW + MAX_TTL_SECS + 1, Some("lifetime_too_long")),
        (NOW + skew, NOW + skew + 1, None),
        (NOW + skew + 1, NOW + skew + 2, Some("created_in_future")),
        (NOW + 30 * 86_400, NOW + 30 * 86_400 + 60, Some("created_in_future")),
        (NOW - 10, NOW, Some("expired")),
        (NOW - 10, NOW + 1, None),
    ];
    for (created_at, expires_at, want) in cases {
        let got = agree(*created_at, *expires_at, NOW).map_err(|e| e.to_string());
        assert_eq!(got, Ok(want.map(str::to_string)), "{created_at}..{expires_at}");
    }
}
