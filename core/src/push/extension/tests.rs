#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use super::*;
use crate::bytes::Key32;
use crate::model::{CountersignedRequest, SignRequest};
use crate::push::payload::{seal, seal_for_push};
use crate::secrets::MemorySecretStore;
use crate::sign::test_phone::{Phone, ETH};

/// The app's phone (pairs A and B, on a database file) and a notification extension opened
/// on the same file, with the same clock.
struct Setup {
    _dir: tempfile::TempDir,
    phone: Phone,
    secrets: MemorySecretStore,
    key: PushKeyPair,
    ext: NotificationExtension,
}

fn octane_key(phone: &Phone) -> Key32 {
    Key32(phone.octane.key.verifying_key().to_bytes())
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sunstorm.db");
    let phone = Phone::on(Arc::new(Store::open(&path).unwrap()), true);
    let secrets = MemorySecretStore::default();
    let key = PushKeyPair::create(&secrets).unwrap();
    let cfg = ExtensionConfig::new(&path, octane_key(&phone));
    let ext = NotificationExtension::open_with_clock(cfg, &secrets, phone.clock.clone()).unwrap();
    Setup { _dir: dir, phone, secrets, key, ext }
}

impl Setup {
    fn push(&self, r: &PendingSignRequest) -> NotificationOutcome {
        let sealed = seal_for_push(&self.key.public_key(), r).unwrap();
        assert!(sealed.carries_request);
        self.ext.handle_push(&sealed.bytes).unwrap()
    }

    fn suppressed(&self, r: &PendingSignRequest) -> SuppressReason {
        match self.push(r) {
            NotificationOutcome::Suppress { reason, request_id } => {
                assert_eq!(request_id, Some(r.request_id));
                reason
            }
            other => panic!("expected a suppression, got {other:?}"),
        }
    }

    /// `req` signed by the SP and countersigned by octane.
    fn signed(&self, req: &SignRequest) -> PendingSignRequest {
        self.phone.countersigned(req)
    }
}

#[tokio::test]
async fn a_verified_request_notifies_with_the_service_the_action_and_the_amount() {
    let s = setup();
    let r = s.phone.send(s.phone.pair_a, ETH / 2);
    let NotificationOutcome::Show(n) = s.push(&r) else { panic!("not shown") };
    assert_eq!(n.title, "Acme asks you to sign");
    // A first payment to this recipient: the history warning `first_recipient` is counted.
    assert_eq!(n.body, "Send ETH: 0.5 ETH. 1 warning: review it in Sunstorm.");
    assert_eq!(n.category, SIGN_REQUEST_CATEGORY);
    assert_eq!((n.request_id, n.pair_id), (r.request_id, s.phone.pair_a));
    assert_eq!(n.expires_at, s.phone.now() + 120);
    // The extension wrote nothing: the app still sees a new request, and takes it.
    assert!(!s.phone.store.was_seen(r.request_id).unwrap());
    assert!(s.phone.store.sign_record(r.request_id).unwrap().is_none());
    s.phone.ingest(&r).await;
    assert!(s.phone.waiting(&r));
}

#[test]
fn a_service_name_with_control_characters_is_shown_escaped() {
    let s = setup();
    let mut pair = s.phone.store.pair(s.phone.pair_a).unwrap().unwrap();
    pair.pair_id = Uuid::from_u128(0xc);
    pair.session_id = "s-c".into();
    pair.sp.name = "Ac\u{202e}me".into();
    s.phone.store.insert_pair(&pair).unwrap();
    let r = s.phone.send(pair.pair_id, ETH);
    let NotificationOutcome::Show(n) = s.push(&r) else { panic!("not shown") };
    assert_eq!(n.title, "Ac⟨U+202E⟩me asks you to sign");
}

#[tokio::test]
async fn history_warnings_are_counted_in_the_text() {
    let s = setup();
    // The first payment to a recipient carries `first_recipient` (the default: ask).
    let r = s.phone.send(s.phone.pair_a, ETH);
    let NotificationOutcome::Show(n) = s.push(&r) else { panic!("not shown") };
    let expected = s.phone.ingest(&r).await.decoded.warnings.len();
    assert!(expected >= 1);
    let word = if expected == 1 { "warning" } else { "warnings" };
    assert!(n.body.ends_with(&format!("{expected} {word}: review it in Sunstorm.")), "{}", n.body);
}

#[test]
fn a_tampered_push_is_suppressed() {
    let s = setup();
    let r = s.phone.send(s.phone.pair_a, ETH);
    // A byte changed on the way: the AEAD refuses it.
    let mut sealed = seal_for_push(&s.key.public_key(), &r).unwrap().bytes;
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    assert_eq!(
        s.ext.handle_push(&sealed).unwrap(),
        NotificationOutcome::Suppress { reason: SuppressReason::Tampered, request_id: None }
    );
    // Sealed to another phone's key.
    let other = PushKeyPair::generate().unwrap();
    let sealed = seal_for_push(&other.public_key(), &r).unwrap().bytes;
    assert!(matches!(
        s.ext.handle_push(&sealed).unwrap(),
        NotificationOutcome::Suppress { reason: SuppressReason::Tampered, .. }
    ));
    // Sealed properly (anyone can seal to the public key) but the body was changed: the
    // signatures do not verify.
    let mut forged = r.clone();
    let mut req: SignRequest = crate::cbor::from_slice(&forged.request.body).unwrap();
    req.expires_at += 60;
    forged.request.body = crate::cbor::to_vec(&req).unwrap();
    assert_eq!(s.suppressed(&forged), SuppressReason::Tampered);
    // Octane's countersignature missing.
    let bare = PendingSignRequest {
        request: CountersignedRequest { octane_sig: vec![0; 64], ..r.request.clone() },
        ..r.clone()
    };
    assert_eq!(s.suppressed(&bare), SuppressReason::Tampered);
    // A properly signed request delivered under another request id.
    let moved = PendingSignRequest { request_id: Uuid::from_u128(7), ..r.clone() };
    assert_eq!(s.suppressed(&moved), SuppressReason::Tampered);
}

#[tokio::test]
async fn a_request_the_app_already_handled_is_suppressed_as_replayed() {
    let s = setup();
    let r = s.phone.send(s.phone.pair_a, ETH);
    s.phone.ingest(&r).await;
    // Still waiting for the user: a re-sent push notifies again.
    assert!(matches!(s.push(&r), NotificationOutcome::Show(_)));
    s.phone.engine.reject(r.request_id).await.unwrap();
    assert_eq!(s.suppressed(&r), SuppressReason::Replayed);
    // The same id with another (properly signed) body.
    let mut req: SignRequest = crate::cbor::from_slice(&r.request.body).unwrap();
    req.expires_at -= 1;
    assert_eq!(s.suppressed(&s.signed(&req)), SuppressReason::Replayed);
}

#[test]
fn an_expired_or_future_request_is_suppressed() {
    let s = setup();
    let r = s.phone.send(s.phone.pair_a, ETH);
    s.phone.advance(121);
    assert_eq!(s.suppressed(&r), SuppressReason::Expired);
    let mut req: SignRequest = crate::cbor::from_slice(&s.phone.send(s.phone.pair_a, ETH).request.body).unwrap();
    req.created_at = s.phone.now() + 3_600;
    req.expires_at = req.created_at + 60;
    assert_eq!(s.suppressed(&s.signed(&req)), SuppressReason::NotYetValid);
}

#[test]
fn a_request_of_a_revoked_or_unknown_pair_is_suppressed() {
    let s = setup();
    let r = s.phone.send(s.phone.pair_b, ETH);
    s.phone.store.revoke_pair(s.phone.pair_b, s.phone.now()).unwrap();
    assert_eq!(s.suppressed(&r), SuppressReason::Revoked);
    let stranger = s.phone.send(Uuid::from_u128(0xdead), ETH);
    assert_eq!(s.suppressed(&stranger), SuppressReason::UnknownPair);
    // An account the pair is not bound to.
    let mut req: SignRequest = crate::cbor::from_slice(&s.phone.send(s.phone.pair_a, ETH).request.body).unwrap();
    req.account = crate::caip::AccountId::evm(1, [0x99; 20]);
    assert_eq!(s.suppressed(&s.signed(&req)), SuppressReason::NotBound);
}

#[test]
fn a_request_the_guardrails_block_never_notifies() {
    let s = setup();
    s.phone.limits(1, Some(ETH / 10), None);
    let r = s.phone.send(s.phone.pair_a, ETH);
    let SuppressReason::Blocked(rules) = s.suppressed(&r) else { panic!("not blocked") };
    assert_eq!(rules, vec!["per_pair_limit_exceeded".to_string()]);
    // Under the limit it notifies.
    let small = s.phone.send(s.phone.pair_a, ETH / 100);
    assert!(matches!(s.push(&small), NotificationOutcome::Show(_)));
}

#[test]
fn an_undecodable_payload_never_notifies() {
    let s = setup();
    let mut req: SignRequest = crate::cbor::from_slice(&s.phone.send(s.phone.pair_a, ETH).request.body).unwrap();
    req.payload = vec![0x02, 0xff, 0x00];
    assert_eq!(s.suppressed(&s.signed(&req)), SuppressReason::Undecodable);
}

#[test]
fn a_push_with_only_the_id_asks_the_app_to_fetch() {
    let s = setup();
    let r = s.phone.send(s.phone.pair_a, ETH);
    let ids = PushContent::RequestId { pair_id: r.pair_id, request_id: r.request_id };
    let sealed = seal(&s.key.public_key(), &ids).unwrap();
    assert_eq!(
        s.ext.handle_push(&sealed).unwrap(),
        NotificationOutcome::Fetch { pair_id: r.pair_id, request_id: r.request_id }
    );
    s.phone.store.revoke_pair(s.phone.pair_a, s.phone.now()).unwrap();
    assert_eq!(
        s.ext.handle_push(&sealed).unwrap(),
        NotificationOutcome::Suppress { reason: SuppressReason::Revoked, request_id: Some(r.request_id) }
    );
}

#[test]
fn the_extension_needs_the_push_key_and_this_schema() {
    let s = setup();
    let path = s._dir.path().join("sunstorm.db");
    let none = MemorySecretStore::default();
    let cfg = ExtensionConfig::new(&path, octane_key(&s.phone));
    assert_eq!(NotificationExtension::open(cfg.clone(), &none).unwrap_err().code(), "no_push_key");
    // A file the app has not migrated yet: refused, and left as it is.
    let old = s._dir.path().join("old.db");
    crate::store::create_at_version(&rusqlite::Connection::open(&old).unwrap(), 3).unwrap();
    let cfg = ExtensionConfig { db_path: old.clone(), ..cfg };
    let err = NotificationExtension::open(cfg.clone(), &s.secrets).unwrap_err();
    assert_eq!(err.code(), "schema_mismatch");
    let version: i64 =
        rusqlite::Connection::open(&old).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 3);
    // No file: not created.
    let missing = s._dir.path().join("missing.db");
    assert_eq!(
        NotificationExtension::open(ExtensionConfig { db_path: missing.clone(), ..cfg }, &s.secrets)
            .unwrap_err()
            .code(),
        "store_error"
    );
    assert!(!missing.exists());
}

#[test]
fn the_read_only_store_refuses_every_write() {
    let s = setup();
    let ro = Store::open_read_only(&s._dir.path().join("sunstorm.db")).unwrap();
    assert!(ro.pair(s.phone.pair_a).unwrap().is_some());
    assert!(ro.revoke_pair(s.phone.pair_a, 1).is_err());
    assert!(ro.note_request(Uuid::from_u128(1), &[0; 32], s.phone.pair_a, 1).is_err());
    assert_eq!(s.phone.store.pair(s.phone.pair_a).unwrap().unwrap().status, crate::store::PairStatus::Active);
}
