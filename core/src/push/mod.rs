//! Sign requests by push (docs/push.md): the one sealed payload format octane sends through
//! APNs/FCM ([`payload`]), and the phone's push key that opens it.

pub mod payload;

pub use payload::{
    seal, seal_for_push, unseal, PushContent, PushError, PushKeyPair, PushPublicKey, SealedPush, MAX_SEALED_LEN,
    PUSH_KEY_SECRET_NAME,
};
