//! Sign requests by push (docs/push.md): the one sealed payload format octane sends through
//! APNs/FCM ([`payload`]), the phone's push key that opens it, and the notification entry
//! point a notification extension process calls ([`extension`]).

pub mod extension;
pub mod payload;

pub use extension::{
    ExtensionConfig, ExtensionError, Notification, NotificationExtension, NotificationOutcome, SuppressReason,
    SIGN_REQUEST_CATEGORY,
};
pub use payload::{
    seal, seal_for_push, unseal, PushContent, PushError, PushKeyPair, PushPublicKey, SealedPush, MAX_SEALED_LEN,
    PUSH_KEY_SECRET_NAME,
};
