//! Several phones per appliance, and a lost phone, through the facade: three phones bond
//! one appliance; phone A lists them and forgets B — the appliance refuses B's approval and
//! octane stops routing the appliance's requests to B — and, with octane unreachable,
//! forgets C: the statement waits in A's store until `sync` delivers it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use sunstorm_core::appliance::ApplianceError;
use sunstorm_core::audit::AuditEvent;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::model::{PayloadKind, SignRequest, STATEMENT_VERSION};
use sunstorm_core::octane::client::OctaneError;
use sunstorm_core::pair::PairState;
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_core::sign::SignError;
use sunstorm_core::sunstorm::{CoreError, Sunstorm};
use sunstorm_e2e::{now, open_phone, ready_to_approve, World, PIN};
use sunstorm_sim::appliance::UserScript;
use uuid::Uuid;

/// Another phone (its own keys and database) bonded with the world's appliance.
async fn phone(w: &World, name: &str) -> (Sunstorm, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemorySecretStore::default());
    let p = open_phone(&w.sim, &secrets, &dir, &w.phone_clock, None, |c| c.phone_name = name.into());
    w.sim.appliance.open_bonding_window(Duration::from_secs(60));
    p.bond_appliance(None, PIN).await.unwrap();
    (p, dir)
}

async fn pair(w: &World, phone: &Sunstorm) -> (Uuid, AccountId) {
    let s = w.session(&[ChainId::Evm(1)], None).await;
    let flow = ready_to_approve(phone, &s, &[ChainId::Evm(1)]).await;
    let PairState::Paired { pair_id, bindings, .. } = phone.approve_pair(flow).await.unwrap() else { panic!() };
    (pair_id, bindings[0].clone())
}

fn request(pair_id: Uuid, account: &AccountId) -> SignRequest {
    SignRequest {
        v: STATEMENT_VERSION,
        request_id: Uuid::new_v4(),
        pair_id,
        chain: account.chain.clone(),
        account: account.clone(),
        kind: PayloadKind::Eip191Message,
        payload: b"hello".to_vec(),
        created_at: now(),
        expires_at: now() + 120,
    }
}

fn refused_by_octane(e: &CoreError) -> bool {
    matches!(
        e,
        CoreError::Octane(OctaneError::PhoneForgotten)
            | CoreError::Sign(SignError::Octane(OctaneError::PhoneForgotten))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_forgets_another_which_the_appliance_and_octane_then_refuse() {
    let w = World::new(UserScript::Approve).await;
    let (b, _b_dir) = phone(&w, "phone B").await;
    let (c, _c_dir) = phone(&w, "phone C").await;
    let a = &w.phone;

    let phones = a.bonded_phones(None).await.unwrap();
    assert_eq!(phones.len(), 3);
    assert_eq!(phones.iter().filter(|p| p.this_phone).count(), 1);
    assert!(phones[0].this_phone, "A bonded first");
    let (key_b, key_c) = (phones[1].app_key, phones[2].app_key);
    assert_eq!((phones[1].name.as_str(), phones[2].name.as_str()), ("phone B", "phone C"));

    // B pairs and holds a sign request when A forgets it.
    let (pair_b, account_b) = pair(&w, &b).await;
    let req = request(pair_b, &account_b);
    w.sim.sp.submit_sign(&w.sim.demo.signing_key, &req).await.unwrap();
    assert_eq!(b.pending_sign_requests(Duration::from_secs(5)).await.unwrap().len(), 1);

    let own = a.forget_phone(None, phones[0].app_key).await.unwrap_err();
    assert!(matches!(own, CoreError::Appliance(ApplianceError::CannotForgetSelf)), "{own}");
    let r = a.forget_phone(None, key_b).await.unwrap();
    assert!(r.octane_told);
    assert_eq!(r.app_key, key_b);
    let audit = a.store().last_audit(&key_b.to_hex(), AuditEvent::PHONE_FORGOTTEN).unwrap().unwrap();
    assert!(
        matches!(audit.event, AuditEvent::PhoneForgotten { forgotten_at, .. } if forgotten_at == r.forgotten_at),
        "{audit:?}"
    );

    // The appliance refuses B's approval; octane no longer routes requests to B.
    let e = b.approve_sign(req.request_id).await.unwrap_err();
    assert!(
        matches!(e, CoreError::Sign(SignError::Appliance(ApplianceError::PhoneForgotten))),
        "the appliance refuses: {e}"
    );
    assert_eq!(w.sim.appliance.signatures_made(req.request_id), 0);
    let e = b.pending_sign_requests(Duration::ZERO).await.unwrap_err();
    assert!(refused_by_octane(&e), "octane refuses: {e}");

    // With octane unreachable, A forgets C: the appliance forgets it at once, octane is
    // told when A syncs.
    let offline = w.reopen(|cfg| cfg.octane_url = url::Url::parse("http://127.0.0.1:9").unwrap());
    let r = offline.forget_phone(None, key_c).await.unwrap();
    assert!(!r.octane_told, "the answer says octane was not told");
    assert_eq!(a.store().octane_outbox().unwrap().len(), 1);
    assert!(c.pending_sign_requests(Duration::ZERO).await.is_ok(), "octane does not know yet");
    assert!(matches!(c.appliance_info(None).await.unwrap_err(), CoreError::Appliance(ApplianceError::PhoneForgotten)));
    a.sync().await.unwrap();
    assert!(a.store().octane_outbox().unwrap().is_empty());
    let e = c.pending_sign_requests(Duration::ZERO).await.unwrap_err();
    assert!(refused_by_octane(&e), "octane refuses C after the sync: {e}");

    assert_eq!(a.bonded_phones(None).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_forgotten_on_the_appliance_is_cut_off_at_octane_once_another_phone_syncs() {
    let w = World::new(UserScript::Approve).await;
    let (b, _b_dir) = phone(&w, "phone B").await;
    let a = &w.phone;
    let key_b = a.bonded_phones(None).await.unwrap()[1].app_key;
    assert!(b.pending_sign_requests(Duration::ZERO).await.is_ok(), "octane serves B");

    // The appliance's user forgets B on the appliance itself: it has no network.
    w.sim.appliance.forget_phone(&key_b).unwrap();
    assert!(matches!(b.appliance_info(None).await.unwrap_err(), CoreError::Appliance(ApplianceError::PhoneForgotten)));
    assert!(b.pending_sign_requests(Duration::ZERO).await.is_ok(), "octane does not know yet");

    // A's next sync carries the appliance's statement to octane.
    a.sync().await.unwrap();
    let e = b.pending_sign_requests(Duration::ZERO).await.unwrap_err();
    assert!(refused_by_octane(&e), "octane refuses B after A synced: {e}");
    let audit = a.store().last_audit(&key_b.to_hex(), AuditEvent::PHONE_FORGOTTEN).unwrap().unwrap();
    assert!(matches!(audit.event, AuditEvent::PhoneForgotten { .. }), "A's activity shows it: {audit:?}");
    assert!(a.store().octane_outbox().unwrap().is_empty());

    // Relayed once: the next sync does not queue it again.
    let before = a.store().audit_log(100).unwrap().len();
    a.sync().await.unwrap();
    a.bonded_phones(None).await.unwrap();
    assert_eq!(a.store().audit_log(100).unwrap().len(), before, "no second entry for the same forget");
    assert!(a.store().octane_outbox().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forget_on_the_appliance_waits_in_the_outbox_while_octane_is_unreachable() {
    let w = World::new(UserScript::Approve).await;
    let (b, _b_dir) = phone(&w, "phone B").await;
    let key_b = w.phone.bonded_phones(None).await.unwrap()[1].app_key;
    w.sim.appliance.forget_phone(&key_b).unwrap();

    // Listing the phones with octane out of reach: the appliance's statement is kept.
    let offline = w.reopen(|cfg| cfg.octane_url = url::Url::parse("http://127.0.0.1:9").unwrap());
    assert_eq!(offline.bonded_phones(None).await.unwrap().len(), 1);
    assert_eq!(w.phone.store().octane_outbox().unwrap().len(), 1);
    drop(offline);
    assert!(b.pending_sign_requests(Duration::ZERO).await.is_ok(), "octane does not know yet");

    w.phone.sync().await.unwrap();
    assert!(w.phone.store().octane_outbox().unwrap().is_empty());
    let e = b.pending_sign_requests(Duration::ZERO).await.unwrap_err();
    assert!(refused_by_octane(&e), "octane refuses B after the sync: {e}");
}
