//! One phone, two appliances, two services: the phone bonds both (each reached over its
//! own simulated link, chosen by the route kept with its bond), pairs each appliance with
//! a different SP, and signs on both; every flow goes to the appliance of its pair, and a
//! call that needs an appliance and names none asks the user to choose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use sunstorm_core::ble::transport::Connector;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::clock::Clock;
use sunstorm_core::model::{PayloadKind, SignRequest, STATEMENT_VERSION};
use sunstorm_core::octane::api::{CreateSessionRequest, SignResult};
use sunstorm_core::pair::PairState;
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_core::sunstorm::{ApplianceId, CoreError, Sunstorm};
use sunstorm_e2e::{appliance_config, config, now, sim_world, PIN};
use sunstorm_sim::appliance::{ApplianceSim, ApplianceSimConfig, UserScript};
use sunstorm_sim::link::SimLinkConfig;
use sunstorm_sim::octane::{DemoSp, ManualClock};
use sunstorm_sim::sp::{verify_bundle, SpClient};
use sunstorm_sim::world::World as SimWorld;
use uuid::Uuid;

struct Home {
    world: SimWorld,
    sps: [(DemoSp, SpClient); 2],
    appliances: [ApplianceSim; 2],
    /// The office appliance's link (for a second phone).
    to_office: Arc<dyn Connector>,
    phone: Sunstorm,
    _dir: tempfile::TempDir,
}

async fn home() -> Home {
    // The world's appliance is the kitchen's; the office's is added beside it.
    let named =
        |seed: u8, name: &str| ApplianceSimConfig { name: name.into(), ..appliance_config(seed, UserScript::Approve) };
    let (world, _octane_clock) = sim_world(named(0x42, "Kitchen"), 1).await;
    let first = world.demo.clone();
    let second = world.octane.extra_sps[0].clone();
    let second_client = world.sp_client(&second).unwrap();
    let sps = [(first, world.sp.clone()), (second, second_client)];
    let kitchen = world.appliance.clone();
    let office = world.add_appliance(named(0x43, "Office"), SimLinkConfig::default()).unwrap();
    let to_kitchen: Arc<dyn Connector> = world.connector.clone();
    let to_office: Arc<dyn Connector> = office.connector.clone();
    let office_link = to_office.clone();
    // The phone's radio: each route reaches one appliance; an unknown route reaches none.
    let radio = move |route: Option<&str>| -> Arc<dyn Connector> {
        match route {
            Some("kitchen") => to_kitchen.clone(),
            Some("office") => to_office.clone(),
            other => panic!("no appliance at {other:?}"),
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let phone = Sunstorm::open_with_clock(
        config(&world, &dir),
        Arc::new(MemorySecretStore::default()),
        Arc::new(radio),
        None,
        Arc::new(ManualClock::new(now())) as Arc<dyn Clock>,
    )
    .unwrap();
    Home { world, sps, appliances: [kitchen, office.appliance], to_office: office_link, phone, _dir: dir }
}

/// Pairs appliance `id` with `sp` for Ethereum; returns the pair and its account.
async fn pair(h: &Home, sp: &SpClient, id: &ApplianceId) -> (Uuid, AccountId) {
    let s = sp
        .create_session(&CreateSessionRequest {
            sp_user_ref: "alice".into(),
            chains: vec![ChainId::Evm(1)],
            return_url: None,
            ttl_secs: None,
        })
        .await
        .unwrap();
    // Several appliances are bonded: a link opened without naming one asks the user.
    assert!(matches!(h.phone.open_link(&s.link, None).await, Err(CoreError::ChooseAppliance)));
    let flow = h.phone.open_link(&s.link, Some(id)).await.unwrap().flow_id();
    h.phone.submit_code(flow, Some(&s.validation_code)).await.unwrap();
    // The flow's wallet list comes from its own appliance.
    let rows = h.phone.approval_list(flow).await.unwrap().rows;
    let wallets = h.phone.appliance_wallets(Some(id), &[ChainId::Evm(1)]).await.unwrap();
    let mut listed: Vec<_> = rows.iter().filter(|r| r.chain == ChainId::Evm(1)).map(|r| r.account.clone()).collect();
    let mut own = wallets.clone();
    listed.sort();
    own.sort();
    assert_eq!(listed, own);
    let account = wallets[0].clone();
    h.phone.choose_wallets(flow, std::slice::from_ref(&account)).await.unwrap();
    match h.phone.approve_pair(flow).await.unwrap() {
        PairState::Paired { pair_id, .. } => (pair_id, account),
        other => panic!("not paired: {other:?}"),
    }
}

fn transfer(pair_id: Uuid, account: &AccountId) -> SignRequest {
    // EIP-1559 transfer of 0.01 ETH to 0x11…11 (nonce 7), as `sunstorm_sim::samples` builds it.
    let payload = sunstorm_sim::samples::eip1559_transfer(1, 7, [0x11; 20], 10u128.pow(16));
    let t = now();
    SignRequest {
        v: STATEMENT_VERSION,
        request_id: Uuid::new_v4(),
        pair_id,
        chain: account.chain.clone(),
        account: account.clone(),
        kind: PayloadKind::EvmTransaction,
        payload,
        created_at: t,
        expires_at: t + 120,
    }
}

#[tokio::test]
async fn two_appliances_two_services_each_flow_goes_to_its_own_appliance() {
    let h = home().await;
    let kitchen = h.appliances[0].identity();
    let office = h.appliances[1].identity();
    assert!(matches!(h.phone.appliance_wallets(None, &[]).await, Err(CoreError::NotBonded)));

    h.phone.bond_appliance(Some("kitchen"), PIN).await.unwrap();
    h.phone.bond_appliance(Some("office"), PIN).await.unwrap();
    let mut bonded: Vec<_> =
        h.phone.bonded_appliances().unwrap().into_iter().map(|b| (b.id(), b.appliance.name, b.peripheral)).collect();
    bonded.sort();
    let mut expected = vec![
        (kitchen, "Kitchen".to_string(), Some("kitchen".into())),
        (office, "Office".into(), Some("office".into())),
    ];
    expected.sort();
    assert_eq!(bonded, expected);
    assert_eq!(h.phone.appliance_info(Some(&office)).await.unwrap().identity, office);
    assert!(matches!(h.phone.appliance_info(None).await, Err(CoreError::ChooseAppliance)));

    // The kitchen appliance pairs with the first service, the office one with the second.
    let (pair_k, acct_k) = pair(&h, &h.sps[0].1, &kitchen).await;
    let (pair_o, acct_o) = pair(&h, &h.sps[1].1, &office).await;
    assert!(h.appliances[0].wallets().contains(&acct_k) && h.appliances[1].wallets().contains(&acct_o));
    let pairs = h.phone.list_pairs().unwrap();
    let owner = |id: Uuid| pairs.iter().find(|p| p.pair_id == id).unwrap().appliance_identity;
    assert_eq!((owner(pair_k), owner(pair_o)), (kitchen, office));

    // Both services ask at once; one poll brings both requests, each approval goes to the
    // appliance holding the account (its signature verifies for that account).
    let req_k = transfer(pair_k, &acct_k);
    let req_o = transfer(pair_o, &acct_o);
    h.sps[0].1.submit_sign(&h.sps[0].0.signing_key, &req_k).await.unwrap();
    h.sps[1].1.submit_sign(&h.sps[1].0.signing_key, &req_o).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        for p in h.phone.pending_sign_requests(Duration::from_secs(2)).await.unwrap() {
            if !seen.contains(&p.request_id) {
                seen.push(p.request_id);
            }
        }
        if seen.len() == 2 {
            break;
        }
    }
    seen.sort();
    let mut want = vec![req_k.request_id, req_o.request_id];
    want.sort();
    assert_eq!(seen, want, "both requests reach the phone");
    for (i, req) in [(1, &req_o), (0, &req_k)] {
        h.phone.approve_sign(req.request_id).await.unwrap();
        let (sp, client) = &h.sps[i];
        match client.await_sign(&req.request_id, Duration::from_secs(5)).await.unwrap() {
            SignResult::Signed { bundle } => {
                let checked =
                    verify_bundle(&bundle, &sp.profile.public_key, &h.world.octane.octane_public_key).unwrap();
                assert_eq!(checked.account, req.account);
            }
            other => panic!("not signed: {other:?}"),
        }
    }

    // Forgetting the office appliance leaves the kitchen one working as the only bond.
    h.phone.forget_appliance(Some(&office)).await.unwrap();
    assert!(matches!(h.phone.appliance_info(Some(&office)).await, Err(CoreError::NoSuchAppliance)));
    assert_eq!(h.phone.appliance_info(None).await.unwrap().identity, kitchen);
    let req_k2 = transfer(pair_k, &acct_k);
    h.sps[0].1.submit_sign(&h.sps[0].0.signing_key, &req_k2).await.unwrap();
    let mut got = false;
    for _ in 0..5 {
        if h.phone
            .pending_sign_requests(Duration::from_secs(2))
            .await
            .unwrap()
            .iter()
            .any(|p| p.request_id == req_k2.request_id)
        {
            got = true;
            break;
        }
    }
    assert!(got, "the kitchen appliance's requests still arrive");
    h.phone.approve_sign(req_k2.request_id).await.unwrap();
    assert!(matches!(
        h.sps[0].1.await_sign(&req_k2.request_id, Duration::from_secs(5)).await.unwrap(),
        SignResult::Signed { .. }
    ));
}

/// One appliance refusing the phone does not stop `sync` for the others: another phone of
/// the office appliance forgets this one (octane is told), the kitchen's service revokes
/// its pair, and this phone's sync still learns the revocation and names the office as
/// the appliance it could not sync.
#[tokio::test]
async fn sync_carries_on_over_the_other_appliances_when_one_forgot_the_phone() {
    let h = home().await;
    let kitchen = h.appliances[0].identity();
    let office = h.appliances[1].identity();
    h.phone.bond_appliance(Some("kitchen"), PIN).await.unwrap();
    h.phone.bond_appliance(Some("office"), PIN).await.unwrap();
    let (pair_k, _) = pair(&h, &h.sps[0].1, &kitchen).await;

    // A second phone, bonded with the office appliance only, forgets this one.
    let dir = tempfile::tempdir().unwrap();
    let to_office = h.to_office.clone();
    let other = Sunstorm::open_with_clock(
        config(&h.world, &dir),
        Arc::new(MemorySecretStore::default()),
        Arc::new(move |_: Option<&str>| to_office.clone()),
        None,
        Arc::new(ManualClock::new(now())) as Arc<dyn Clock>,
    )
    .unwrap();
    h.appliances[1].open_bonding_window(Duration::from_secs(60));
    other.bond_appliance(None, PIN).await.unwrap();
    let phones = other.bonded_phones(None).await.unwrap();
    let this_one = phones.iter().find(|p| !p.this_phone).unwrap().app_key;
    assert!(other.forget_phone(None, this_one).await.unwrap().octane_told);

    h.sps[0].1.revoke(&pair_k).await.unwrap();
    let report = h.phone.sync().await.unwrap();
    assert_eq!(report.revoked, vec![pair_k], "the kitchen's revocation is learned");
    let failed: Vec<_> = report.failed.iter().map(|f| (f.appliance, f.error.code())).collect();
    assert_eq!(failed, vec![(office, "phone_forgotten")], "the office is named as failed");
    assert!(h.phone.list_pairs().unwrap().iter().any(|p| p.pair_id == pair_k && p.revoked_at.is_some()));
}
