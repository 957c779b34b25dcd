//! The facade's bonds: several appliances per phone, choosing between them, forgetting one,
//! and a single-bond database from before (schema 3) carried over.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::sync::Mutex;

use async_trait::async_trait;
use ed25519_dalek::SigningKey;
use rusqlite::{params, Connection};

use super::*;
use crate::ble::channel::PhoneKeys;
use crate::ble::transport::{Connector, GattError, GattLink};
use crate::envelope::{Domain, SignedEnvelope};
use crate::model::{AppEndorsement, STATEMENT_VERSION};
use crate::secrets::MemorySecretStore;

/// A connector that reaches nothing, remembering the route it was made for.
struct Nowhere {
    route: Option<String>,
    tried: Arc<Mutex<Vec<Option<String>>>>,
}

#[async_trait]
impl Connector for Nowhere {
    async fn connect(&self) -> Result<Box<dyn GattLink>, GattError> {
        self.tried.lock().unwrap().push(self.route.clone());
        Err(GattError::NotFound)
    }
}

struct Phone {
    dir: tempfile::TempDir,
    secrets: Arc<MemorySecretStore>,
    tried: Arc<Mutex<Vec<Option<String>>>>,
}

impl Phone {
    fn new() -> Self {
        let secrets = Arc::new(MemorySecretStore::default());
        PhoneKeys::load_or_create(secrets.as_ref()).unwrap();
        Self { dir: tempfile::tempdir().unwrap(), secrets, tried: Arc::default() }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("phone.db")
    }

    fn open(&self) -> Sunstorm {
        let mut cfg = SunstormConfig::new(Url::parse("http://127.0.0.1:9").unwrap(), Key32([9; 32]));
        cfg.db_path = Some(self.db());
        cfg.appliance.max_retries = 0;
        let tried = self.tried.clone();
        let factory = move |route: Option<&str>| -> Arc<dyn Connector> {
            Arc::new(Nowhere { route: route.map(str::to_string), tried: tried.clone() })
        };
        Sunstorm::open(cfg, self.secrets.clone(), Arc::new(factory), None).unwrap()
    }

    fn app_key(&self) -> Key32 {
        Key32(app_signing_key(self.secrets.as_ref()).unwrap().verifying_key().to_bytes())
    }

    /// The bond record appliance `seed` would hand this phone.
    fn record(&self, seed: u8, name: &str) -> BondRecord {
        let id = SigningKey::from_bytes(&[seed; 32]);
        let identity = Key32(id.verifying_key().to_bytes());
        let endorsement = SignedEnvelope::seal(
            Domain::AppEndorsement,
            &id,
            &AppEndorsement {
                v: STATEMENT_VERSION,
                app_key: self.app_key(),
                appliance_identity: identity,
                issued_at: 1,
            },
        )
        .unwrap();
        BondRecord {
            appliance_identity: identity,
            appliance_static: Key32([seed.wrapping_add(100); 32]),
            appliance_name: name.into(),
            endorsement,
        }
    }
}

fn ids(s: &Sunstorm) -> Vec<(String, Option<String>)> {
    s.bonded_appliances().unwrap().into_iter().map(|b| (b.appliance.name, b.peripheral)).collect()
}

const LINK: &str = "https://sigilvault.xyz/pair?session=abc";

#[tokio::test]
async fn a_phone_holds_several_bonds_and_each_call_names_or_implies_one() {
    let phone = Phone::new();
    let s = phone.open();
    assert!(matches!(s.open_link(LINK, None).await, Err(CoreError::NotBonded)));

    let kitchen = phone.record(1, "Kitchen");
    let office = phone.record(2, "Office");
    s.adopt_bond(kitchen.clone(), Some("peripheral-k")).await.unwrap();
    // With one bond, calls that name no appliance use it.
    assert_eq!(s.bond_record(None).await.unwrap(), kitchen);
    s.adopt_bond(office.clone(), Some("peripheral-o")).await.unwrap();

    let mut listed = ids(&s);
    listed.sort();
    assert_eq!(
        listed,
        vec![("Kitchen".into(), Some("peripheral-k".into())), ("Office".into(), Some("peripheral-o".into()))]
    );
    // Ambiguous: the user must pick; unknown: said so.
    assert!(matches!(s.open_link(LINK, None).await, Err(CoreError::ChooseAppliance)));
    assert!(matches!(s.appliance_wallets(None, &[]).await, Err(CoreError::ChooseAppliance)));
    assert!(matches!(s.forget_appliance(None).await, Err(CoreError::ChooseAppliance)));
    let stranger = phone.record(3, "Stranger").appliance_identity;
    assert!(matches!(s.appliance_info(Some(&stranger)).await, Err(CoreError::NoSuchAppliance)));
    assert_eq!(s.bond_record(Some(&office.appliance_identity)).await.unwrap(), office);

    // Talking to one appliance goes over its own route.
    let e = s.appliance_info(Some(&office.appliance_identity)).await.unwrap_err();
    assert!(matches!(e, CoreError::Appliance(_)), "{e:?}");
    assert_eq!(phone.tried.lock().unwrap().clone(), vec![Some("peripheral-o".to_string())]);

    // The bonds survive a restart, routes included.
    drop(s);
    let s = phone.open();
    assert_eq!(s.bonded_appliances().unwrap().len(), 2);
    phone.tried.lock().unwrap().clear();
    let _ = s.appliance_wallets(Some(&kitchen.appliance_identity), &[]).await.unwrap_err();
    assert_eq!(phone.tried.lock().unwrap().clone(), vec![Some("peripheral-k".to_string())]);
}

#[tokio::test]
async fn forgetting_one_appliance_keeps_the_other_and_bonding_again_restores_it() {
    let phone = Phone::new();
    let s = phone.open();
    let kitchen = phone.record(1, "Kitchen");
    let office = phone.record(2, "Office");
    s.adopt_bond(kitchen.clone(), Some("k")).await.unwrap();
    s.adopt_bond(office.clone(), Some("o")).await.unwrap();

    assert_eq!(s.forget_appliance(Some(&office.appliance_identity)).await.unwrap(), office.appliance_identity);
    assert_eq!(ids(&s), vec![("Kitchen".into(), Some("k".into()))]);
    assert!(matches!(s.appliance_info(Some(&office.appliance_identity)).await, Err(CoreError::NoSuchAppliance)));
    assert!(matches!(s.forget_appliance(Some(&office.appliance_identity)).await, Err(CoreError::NoSuchAppliance)));
    // One bond left: calls naming none use it (the link is refused for what it is).
    let e = s.open_link("https://evil.example/pair?session=abc", None).await.unwrap_err();
    assert!(matches!(e, CoreError::Pair(PairError::Link(_))), "{e:?}");
    let audit = s.audit_log(10).unwrap();
    assert!(audit
        .iter()
        .any(|a| a.event.kind() == "appliance_forgotten" && a.subject == office.appliance_identity.to_hex()));

    // Forgotten across a restart too; bonding again brings it back with its new route.
    drop(s);
    let s = phone.open();
    assert_eq!(ids(&s), vec![("Kitchen".into(), Some("k".into()))]);
    s.adopt_bond(office.clone(), Some("o2")).await.unwrap();
    assert_eq!(s.bonded_appliances().unwrap().len(), 2);
    assert_eq!(s.bond_record(Some(&office.appliance_identity)).await.unwrap(), office);
}

/// A database written before several bonds existed (schema 3: one appliance, one pair) is
/// migrated on open: the bond is listed (with no route yet), its pair still names it, and
/// calls naming no appliance use it.
#[tokio::test]
async fn a_single_bond_database_from_schema_3_migrates() {
    let phone = Phone::new();
    let old = phone.record(1, "Sigil");
    {
        let conn = Connection::open(phone.db()).unwrap();
        crate::store::create_at_version(&conn, 3).unwrap();
        conn.execute(
            "INSERT INTO appliances VALUES (?1, ?2, 'Sigil', ?3, 7)",
            params![
                old.appliance_identity.to_hex(),
                old.appliance_static.to_hex(),
                serde_json::to_string(&old.endorsement).unwrap()
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO pairs VALUES ('00000000-0000-0000-0000-000000000001', ?1, 's1', ?2, 'u', ?3, '[]',
               'active', 5, NULL)",
            params![
                old.appliance_identity.to_hex(),
                serde_json::json!({
                    "sp_id": "sp", "name": "Acme", "logo_url": "https://acme.example/logo.png",
                    "homepage": "https://acme.example", "public_key": Key32([7; 32]).to_hex(),
                    "allowed_return_origins": ["https://acme.example"]
                })
                .to_string(),
                Key32([7; 32]).to_hex()
            ],
        )
        .unwrap();
    }
    let s = phone.open();
    assert!(s.store().schema_version().unwrap() >= 4, "migrated past the several-bonds migration");
    let bonds = s.bonded_appliances().unwrap();
    assert_eq!(bonds.len(), 1);
    assert_eq!(bonds[0].id(), old.appliance_identity);
    assert_eq!(bonds[0].appliance.bonded_at, 7);
    assert_eq!(bonds[0].peripheral, None);
    assert_eq!(s.bond_record(None).await.unwrap(), old);
    let pairs = s.list_pairs().unwrap();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].appliance_identity, old.appliance_identity);
    // The shells' migration of their old copy records the route.
    s.adopt_bond(old.clone(), Some("peripheral-1")).await.unwrap();
    assert_eq!(ids(&s), vec![("Sigil".into(), Some("peripheral-1".into()))]);
}
