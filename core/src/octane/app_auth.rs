//! App-request authentication (contract E): the phone signs every app API request with its
//! app key, endorsed by the appliance, and octane verifies it — one implementation for both
//! ends (the phone's client and the octane simulator).
//!
//! Headers: [`HEADER_ENDORSEMENT`], [`HEADER_TIMESTAMP`], [`HEADER_NONCE`],
//! [`HEADER_SIGNATURE`]; the signature covers [`canonical_app_request`].

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ed25519_dalek::SigningKey;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use super::api::OctaneErrorCode;
use crate::bytes::Key32;
use crate::envelope::{self, Domain, SignedEnvelope};
use crate::model::{AppEndorsement, STATEMENT_VERSION};

/// How far an app request's timestamp may be from octane's clock (either way).
pub const MAX_APP_REQUEST_SKEW_SECS: u64 = 120;

/// Header: base64url(no pad) of the CBOR of the [`SignedEnvelope`] holding the appliance's
/// [`AppEndorsement`] of the app key.
pub const HEADER_ENDORSEMENT: &str = "x-sigil-endorsement";
/// Header: Unix seconds, decimal.
pub const HEADER_TIMESTAMP: &str = "x-sigil-timestamp";
/// Header: 16 random bytes, base64url; octane refuses a nonce it has seen.
pub const HEADER_NONCE: &str = "x-sigil-nonce";
/// Header: base64url of the Ed25519 signature under [`Domain::AppRequest`] over
/// [`canonical_app_request`].
pub const HEADER_SIGNATURE: &str = "x-sigil-signature";

/// Longest accepted value of any auth header (bytes).
pub const MAX_AUTH_HEADER_LEN: usize = 2048;

/// Why an app request's authentication was refused (all map to 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppAuthError {
    /// A header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is not of the expected form.
    #[error("malformed header {0}")]
    BadHeader(&'static str),
    /// The endorsement does not decode or its signature does not verify.
    #[error("invalid app endorsement")]
    BadEndorsement,
    /// The request signature does not verify under the endorsed app key (an unendorsed key).
    #[error("request not signed by the endorsed app key")]
    BadSignature,
    /// The timestamp is too far from the server's clock.
    #[error("request timestamp outside the allowed clock skew")]
    Stale,
    /// The endorsement could not be encoded (client side).
    #[error("could not encode the endorsement")]
    Encode,
}

impl AppAuthError {
    /// The error code octane answers with.
    pub fn code(&self) -> OctaneErrorCode {
        match self {
            AppAuthError::Stale => OctaneErrorCode::StaleRequest,
            _ => OctaneErrorCode::Unauthenticated,
        }
    }
}

/// The four authentication headers of one app request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRequestHeaders {
    /// [`HEADER_ENDORSEMENT`] value.
    pub endorsement: String,
    /// [`HEADER_TIMESTAMP`] value.
    pub timestamp: String,
    /// [`HEADER_NONCE`] value.
    pub nonce: String,
    /// [`HEADER_SIGNATURE`] value.
    pub signature: String,
}

impl AppRequestHeaders {
    /// `(name, value)` pairs to add to the HTTP request.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (HEADER_ENDORSEMENT, self.endorsement.as_str()),
            (HEADER_TIMESTAMP, self.timestamp.as_str()),
            (HEADER_NONCE, self.nonce.as_str()),
            (HEADER_SIGNATURE, self.signature.as_str()),
        ]
    }

    /// Reads the four headers through `get(name)` (server side), bounding their length.
    pub fn from_lookup<'a>(get: impl Fn(&'static str) -> Option<&'a str>) -> Result<Self, AppAuthError> {
        let one = |name: &'static str| -> Result<String, AppAuthError> {
            let v = get(name).ok_or(AppAuthError::MissingHeader(name))?;
            if v.is_empty() || v.len() > MAX_AUTH_HEADER_LEN {
                return Err(AppAuthError::BadHeader(name));
            }
            Ok(v.to_string())
        };
        Ok(Self {
            endorsement: one(HEADER_ENDORSEMENT)?,
            timestamp: one(HEADER_TIMESTAMP)?,
            nonce: one(HEADER_NONCE)?,
            signature: one(HEADER_SIGNATURE)?,
        })
    }
}

/// What octane learns from a verified app request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAppRequest {
    /// The app key that signed the request.
    pub app_key: Key32,
    /// The appliance that endorsed it: the request may only concern this appliance.
    pub appliance_identity: Key32,
    /// When the appliance endorsed the app key (the bond's time, Unix seconds).
    pub endorsed_at: u64,
    /// The request's timestamp.
    pub timestamp: u64,
    /// The request's nonce (the server refuses repeats within the skew window).
    pub nonce: String,
}

/// The exact bytes an app request signature covers:
/// `sigil-app-request/v1\n{METHOD}\n{path_and_query}\n{timestamp}\n{nonce}\n{hex sha256(body)}`.
/// `path_and_query` is the request target as sent (`/app/sign/pending?timeout_secs=20`).
pub fn canonical_app_request(method: &str, path_and_query: &str, timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let digest = hex::encode(Sha256::digest(body));
    format!(
        "sigil-app-request/v1\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path_and_query,
        timestamp,
        nonce,
        digest
    )
    .into_bytes()
}

/// The request target (`path` plus `?query` when present) of a URL, as
/// [`canonical_app_request`] wants it.
pub fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{}", url.path(), q),
        None => url.path().to_string(),
    }
}

/// Signs one app request (phone side) with a fresh random nonce.
pub fn sign_app_request(
    app_key: &SigningKey,
    endorsement: &SignedEnvelope,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now_unix: u64,
) -> Result<AppRequestHeaders, AppAuthError> {
    let mut nonce = [0u8; 16];
    OsRng.fill_bytes(&mut nonce);
    sign_app_request_with_nonce(
        app_key,
        endorsement,
        method,
        path_and_query,
        body,
        now_unix,
        &URL_SAFE_NO_PAD.encode(nonce),
    )
}

/// Like [`sign_app_request`] with a caller-chosen nonce (tests).
pub fn sign_app_request_with_nonce(
    app_key: &SigningKey,
    endorsement: &SignedEnvelope,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now_unix: u64,
    nonce: &str,
) -> Result<AppRequestHeaders, AppAuthError> {
    let endorsement_cbor = crate::cbor::to_vec(endorsement).map_err(|_| AppAuthError::Encode)?;
    let timestamp = now_unix.to_string();
    let msg = canonical_app_request(method, path_and_query, &timestamp, nonce, body);
    let sig = envelope::sign_bytes(Domain::AppRequest, app_key, &msg);
    Ok(AppRequestHeaders {
        endorsement: URL_SAFE_NO_PAD.encode(endorsement_cbor),
        timestamp,
        nonce: nonce.to_string(),
        signature: URL_SAFE_NO_PAD.encode(sig),
    })
}

/// Decodes and checks an endorsement: canonical body, known version, signed under
/// [`Domain::AppEndorsement`] by the appliance identity it names.
pub fn verify_endorsement(env: &SignedEnvelope) -> Result<AppEndorsement, AppAuthError> {
    let e: AppEndorsement = env.peek().map_err(|_| AppAuthError::BadEndorsement)?;
    if e.v != STATEMENT_VERSION {
        return Err(AppAuthError::BadEndorsement);
    }
    env.verify(Domain::AppEndorsement, e.appliance_identity.as_bytes()).map_err(|_| AppAuthError::BadEndorsement)?;
    Ok(e)
}

/// Verifies one app request (octane side): the endorsement is the appliance's, the request
/// is signed by the endorsed app key over exactly this method, target, timestamp, nonce and
/// body, and the timestamp is within `max_skew_secs` of `now_unix`. Nonce replay is the
/// caller's to track (it holds the state).
pub fn verify_app_request(
    headers: &AppRequestHeaders,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now_unix: u64,
    max_skew_secs: u64,
) -> Result<VerifiedAppRequest, AppAuthError> {
    let cbor = URL_SAFE_NO_PAD
        .decode(headers.endorsement.as_bytes())
        .map_err(|_| AppAuthError::BadHeader(HEADER_ENDORSEMENT))?;
    let env: SignedEnvelope =
        crate::cbor::from_canonical_slice(&cbor).map_err(|_| AppAuthError::BadHeader(HEADER_ENDORSEMENT))?;
    let endorsement = verify_endorsement(&env)?;

    if headers.timestamp.len() > 20 || !headers.timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppAuthError::BadHeader(HEADER_TIMESTAMP));
    }
    let timestamp: u64 = headers.timestamp.parse().map_err(|_| AppAuthError::BadHeader(HEADER_TIMESTAMP))?;
    let nonce = URL_SAFE_NO_PAD.decode(headers.nonce.as_bytes()).map_err(|_| AppAuthError::BadHeader(HEADER_NONCE))?;
    if !(16..=64).contains(&nonce.len()) {
        return Err(AppAuthError::BadHeader(HEADER_NONCE));
    }
    let sig =
        URL_SAFE_NO_PAD.decode(headers.signature.as_bytes()).map_err(|_| AppAuthError::BadHeader(HEADER_SIGNATURE))?;

    let msg = canonical_app_request(method, path_and_query, &headers.timestamp, &headers.nonce, body);
    envelope::verify_bytes(Domain::AppRequest, endorsement.app_key.as_bytes(), &msg, &sig)
        .map_err(|_| AppAuthError::BadSignature)?;

    if timestamp.abs_diff(now_unix) > max_skew_secs {
        return Err(AppAuthError::Stale);
    }
    Ok(VerifiedAppRequest {
        app_key: endorsement.app_key,
        appliance_identity: endorsement.appliance_identity,
        endorsed_at: endorsement.issued_at,
        timestamp,
        nonce: headers.nonce.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endorsed(app_seed: u8, appliance_seed: u8) -> (SigningKey, SigningKey, SignedEnvelope) {
        let app = SigningKey::from_bytes(&[app_seed; 32]);
        let appliance = SigningKey::from_bytes(&[appliance_seed; 32]);
        let e = AppEndorsement {
            v: STATEMENT_VERSION,
            app_key: Key32(app.verifying_key().to_bytes()),
            appliance_identity: Key32(appliance.verifying_key().to_bytes()),
            issued_at: 1,
        };
        let env = SignedEnvelope::seal(Domain::AppEndorsement, &appliance, &e).unwrap();
        (app, appliance, env)
    }

    #[test]
    fn app_request_round_trip_and_tamper() {
        let (app, appliance, env) = endorsed(1, 2);
        let h = sign_app_request(&app, &env, "post", "/app/pairs/x/revoke", b"{}", 1000).unwrap();
        let v = verify_app_request(&h, "POST", "/app/pairs/x/revoke", b"{}", 1010, 120).unwrap();
        assert_eq!(v.appliance_identity.0, appliance.verifying_key().to_bytes());
        assert_eq!(v.app_key.0, app.verifying_key().to_bytes());
        // Any change to what is covered breaks it.
        assert_eq!(
            verify_app_request(&h, "POST", "/app/pairs/y/revoke", b"{}", 1000, 120),
            Err(AppAuthError::BadSignature)
        );
        assert_eq!(
            verify_app_request(&h, "POST", "/app/pairs/x/revoke", b"{ }", 1000, 120),
            Err(AppAuthError::BadSignature)
        );
        assert_eq!(
            verify_app_request(&h, "GET", "/app/pairs/x/revoke", b"{}", 1000, 120),
            Err(AppAuthError::BadSignature)
        );
        assert_eq!(verify_app_request(&h, "POST", "/app/pairs/x/revoke", b"{}", 2000, 120), Err(AppAuthError::Stale));
    }

    #[test]
    fn unendorsed_key_is_refused() {
        let (_app, _appliance, env) = endorsed(1, 2);
        let other = SigningKey::from_bytes(&[9; 32]);
        let h = sign_app_request(&other, &env, "GET", "/app/pairs", b"", 5).unwrap();
        assert_eq!(verify_app_request(&h, "GET", "/app/pairs", b"", 5, 120), Err(AppAuthError::BadSignature));
    }

    #[test]
    fn forged_endorsement_is_refused() {
        let (app, _appliance, mut env) = endorsed(1, 2);
        let last = env.sig.len() - 1;
        env.sig[last] ^= 1;
        let h = sign_app_request(&app, &env, "GET", "/app/pairs", b"", 5).unwrap();
        assert_eq!(verify_app_request(&h, "GET", "/app/pairs", b"", 5, 120), Err(AppAuthError::BadEndorsement));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Whatever the headers hold, verification answers with an error, never a panic.
            #[test]
            fn arbitrary_headers_never_panic(
                e in ".{0,300}", t in ".{0,30}", n in ".{0,80}", s in ".{0,120}",
                body in proptest::collection::vec(any::<u8>(), 0..64),
            ) {
                let h = AppRequestHeaders { endorsement: e, timestamp: t, nonce: n, signature: s };
                prop_assert!(verify_app_request(&h, "POST", "/app/pairs", &body, 0, 120).is_err());
            }

            /// Signing then verifying succeeds for any method, target and body; changing one
            /// byte of the body breaks it.
            #[test]
            fn sign_verify_round_trip(
                method in "(GET|POST)",
                target in "/app/[a-z/]{0,40}(\\?timeout_secs=[0-9]{1,2})?",
                body in proptest::collection::vec(any::<u8>(), 1..256),
                flip in any::<usize>(),
                now in 1_000u64..4_000_000_000u64,
            ) {
                let (app, _appliance, env) = endorsed(5, 6);
                let h = sign_app_request(&app, &env, &method, &target, &body, now).unwrap();
                prop_assert!(verify_app_request(&h, &method, &target, &body, now, 120).is_ok());
                let mut tampered = body.clone();
                let i = flip % tampered.len();
                tampered[i] ^= 1;
                prop_assert_eq!(
                    verify_app_request(&h, &method, &target, &tampered, now, 120),
                    Err(AppAuthError::BadSignature)
                );
            }
        }
    }
}
