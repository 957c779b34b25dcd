//! The push services' wire shapes, shared by the gateway simulator (which answers them) and
//! octane's push sender (which reads the answers): paths, headers, limits, error bodies, and
//! how an answer is classified ([`classify`]).

use serde::{Deserialize, Serialize};
use sunstorm_core::octane::api::PushPlatform;

/// Largest APNs payload (the JSON body) and FCM `data` (keys and values), in bytes.
pub const MAX_PUSH_PAYLOAD: usize = 4096;

/// APNs path prefix: `POST /3/device/<hex token>`.
pub const APNS_PATH_PREFIX: &str = "/3/device/";

/// `POST` path of an APNs push to `token`.
pub fn apns_path(token: &str) -> String {
    format!("{APNS_PATH_PREFIX}{token}")
}

/// `POST` path of an FCM HTTP v1 send in `project`.
pub fn fcm_path(project: &str) -> String {
    format!("/v1/projects/{project}/messages:send")
}

/// APNs header: `alert` or `background`.
pub const APNS_PUSH_TYPE: &str = "apns-push-type";
/// APNs header: `10` (now) or `5` (power-considerate).
pub const APNS_PRIORITY: &str = "apns-priority";
/// APNs header: notifications with the same id replace each other (≤ 64 bytes).
pub const APNS_COLLAPSE_ID: &str = "apns-collapse-id";
/// APNs header: Unix seconds after which APNs stops trying (0: once).
pub const APNS_EXPIRATION: &str = "apns-expiration";
/// APNs header: the app's bundle id.
pub const APNS_TOPIC: &str = "apns-topic";
/// APNs answer header: the notification's id.
pub const APNS_ID: &str = "apns-id";

/// Longest `apns-collapse-id` (bytes).
pub const MAX_COLLAPSE_ID: usize = 64;

/// The key of the sealed payload (base64url): a member of the APNs body next to `aps`, and a
/// key of the FCM message's `data`.
pub const SEALED_KEY: &str = "sigil";

/// An APNs error body: `{"reason": "...", "timestamp": ms}` (timestamp with 410 only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApnsError {
    /// APNs' reason string (`Unregistered`, `PayloadTooLarge`, `TooManyRequests`, …).
    pub reason: String,
    /// With 410: when APNs learnt the token is no longer valid (milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
}

/// An FCM HTTP v1 error body (Google's error model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FcmErrorBody {
    /// The error.
    pub error: FcmError,
}

/// The error of an [`FcmErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FcmError {
    /// The HTTP status.
    pub code: u16,
    /// A sentence.
    pub message: String,
    /// The canonical status (`INVALID_ARGUMENT`, `NOT_FOUND`, `RESOURCE_EXHAUSTED`, …).
    pub status: String,
    /// FCM's own error code, as a `google.firebase.fcm.v1.FcmError` detail.
    #[serde(default)]
    pub details: Vec<FcmErrorDetail>,
}

/// One detail of an [`FcmError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FcmErrorDetail {
    /// `type.googleapis.com/google.firebase.fcm.v1.FcmError`.
    #[serde(rename = "@type")]
    pub kind: String,
    /// `UNREGISTERED`, `INVALID_ARGUMENT`, `QUOTA_EXCEEDED`, `UNAVAILABLE`, `INTERNAL`, …
    #[serde(rename = "errorCode")]
    pub error_code: String,
}

/// The `@type` of FCM's error detail.
pub const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";

/// FCM's message when a message exceeds [`MAX_PUSH_PAYLOAD`] (400 `INVALID_ARGUMENT`).
pub const FCM_TOO_BIG: &str = "Message is too big";

impl FcmErrorBody {
    /// An error body with FCM's error code `error_code`.
    pub fn new(code: u16, status: &str, error_code: &str, message: &str) -> Self {
        FcmErrorBody {
            error: FcmError {
                code,
                message: message.to_string(),
                status: status.to_string(),
                details: vec![FcmErrorDetail { kind: FCM_ERROR_TYPE.into(), error_code: error_code.into() }],
            },
        }
    }
}

/// What a push service's answer means for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Accepted for delivery.
    Delivered,
    /// The token is no longer valid (APNs 410 `Unregistered`, FCM 404 `UNREGISTERED`):
    /// drop the target.
    Unregistered,
    /// The payload is over the limit (APNs 413, FCM 400 "too big"): send less.
    TooLarge,
    /// Try again later (429, 5xx).
    Retry,
    /// Refused for another reason (bad token, bad request): do not retry.
    Refused(String),
}

/// Reads a push service's answer (`status`, `body`) for `platform`.
pub fn classify(platform: PushPlatform, status: u16, body: &[u8]) -> PushOutcome {
    if (200..300).contains(&status) {
        return PushOutcome::Delivered;
    }
    if status == 429 || (500..600).contains(&status) {
        return PushOutcome::Retry;
    }
    match platform {
        PushPlatform::Apns => {
            let reason = serde_json::from_slice::<ApnsError>(body).map(|e| e.reason).unwrap_or_default();
            match (status, reason.as_str()) {
                (410, _) | (400, "BadDeviceToken") => PushOutcome::Unregistered,
                (413, _) => PushOutcome::TooLarge,
                _ => PushOutcome::Refused(format!("APNs {status} {reason}")),
            }
        }
        PushPlatform::Fcm => {
            let err = serde_json::from_slice::<FcmErrorBody>(body).ok().map(|b| b.error);
            let fcm_code = err.as_ref().and_then(|e| e.details.iter().find(|d| d.kind == FCM_ERROR_TYPE));
            let fcm_code = fcm_code.map(|d| d.error_code.as_str()).unwrap_or("");
            let message = err.as_ref().map(|e| e.message.as_str()).unwrap_or("");
            match (status, fcm_code) {
                (404, "UNREGISTERED") => PushOutcome::Unregistered,
                (413, _) => PushOutcome::TooLarge,
                (400, "INVALID_ARGUMENT") if message.starts_with(FCM_TOO_BIG) => PushOutcome::TooLarge,
                _ => PushOutcome::Refused(format!("FCM {status} {fcm_code}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn answers_read_as_the_providers_mean_them() {
        let apns = |s: u16, reason: &str| {
            classify(
                PushPlatform::Apns,
                s,
                &serde_json::to_vec(&ApnsError { reason: reason.into(), timestamp: None }).unwrap(),
            )
        };
        assert_eq!(apns(200, ""), PushOutcome::Delivered);
        assert_eq!(apns(410, "Unregistered"), PushOutcome::Unregistered);
        assert_eq!(apns(400, "BadDeviceToken"), PushOutcome::Unregistered);
        assert_eq!(apns(413, "PayloadTooLarge"), PushOutcome::TooLarge);
        assert_eq!(apns(429, "TooManyRequests"), PushOutcome::Retry);
        assert_eq!(apns(503, "ServiceUnavailable"), PushOutcome::Retry);
        assert!(matches!(apns(400, "MissingTopic"), PushOutcome::Refused(_)));
        let fcm = |s: u16, status: &str, code: &str, msg: &str| {
            classify(PushPlatform::Fcm, s, &serde_json::to_vec(&FcmErrorBody::new(s, status, code, msg)).unwrap())
        };
        assert_eq!(fcm(404, "NOT_FOUND", "UNREGISTERED", "gone"), PushOutcome::Unregistered);
        assert_eq!(fcm(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", FCM_TOO_BIG), PushOutcome::TooLarge);
        assert!(matches!(fcm(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "bad ttl"), PushOutcome::Refused(_)));
        assert_eq!(fcm(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "slow down"), PushOutcome::Retry);
        assert_eq!(classify(PushPlatform::Fcm, 502, b"<html>"), PushOutcome::Retry);
    }
}
