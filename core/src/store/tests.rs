use super::*;
use crate::caip::{AccountId, ChainId};
use crate::envelope::{Domain, SignedEnvelope};
use crate::guardrails::SpendContext;
use crate::model::{AppEndorsement, PayloadKind, SpProfile, STATEMENT_VERSION};
use ed25519_dalek::SigningKey;
use rusqlite::params;

fn sk(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn appliance(seed: u8) -> BondedAppliance {
    let id = sk(seed);
    let endorsement = SignedEnvelope::seal(
        Domain::AppEndorsement,
        &id,
        &AppEndorsement {
            v: STATEMENT_VERSION,
            app_key: Key32(sk(seed + 1).verifying_key().to_bytes()),
            appliance_identity: Key32(id.verifying_key().to_bytes()),
            issued_at: 1,
        },
    )
    .unwrap();
    BondedAppliance {
        identity: Key32(id.verifying_key().to_bytes()),
        static_key: Key32([seed + 100; 32]),
        name: "Sigil".into(),
        endorsement,
        bonded_at: 10,
    }
}

fn pair(app: &BondedAppliance, n: u8) -> PairRecord {
    PairRecord {
        pair_id: Uuid::from_bytes([n; 16]),
        appliance_identity: app.identity,
        session_id: format!("s{n}"),
        sp: SpProfile {
            sp_id: "sp".into(),
            name: "Acme".into(),
            logo_url: "https://acme.example/logo.png".into(),
            homepage: "https://acme.example".into(),
            public_key: Key32([7; 32]),
            allowed_return_origins: vec!["https://acme.example".into()],
        },
        sp_user_ref: "user-1".into(),
        sp_public_key: Key32([7; 32]),
        bindings: vec![AccountId::evm(1, [0x11; 20])],
        status: PairStatus::Active,
        created_at: 100 + u64::from(n),
        revoked_at: None,
    }
}

#[test]
fn migrates_to_latest_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len() as i64);
    s.put_appliance(&appliance(1)).unwrap();
    drop(s);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.appliances().unwrap().len(), 1);
    let mode: String = s.lock().unwrap().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = s.lock().unwrap().query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 1);
}

#[test]
fn a_newer_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    assert!(matches!(Store::open(&path), Err(StoreError::TooNew { found: 99, .. })));
}

#[test]
fn pairs_round_trip_and_revoke_is_idempotent() {
    let s = Store::open_in_memory().unwrap();
    let a = appliance(1);
    s.put_appliance(&a).unwrap();
    let p = pair(&a, 1);
    s.insert_pair(&p).unwrap();
    s.insert_pair(&p).unwrap();
    assert_eq!(s.pairs().unwrap(), vec![p.clone()]);
    assert!(s.revoke_pair(p.pair_id, 500).unwrap());
    assert!(!s.revoke_pair(p.pair_id, 600).unwrap());
    let r = s.pair(p.pair_id).unwrap().unwrap();
    assert_eq!(r.status, PairStatus::Revoked);
    assert_eq!(r.revoked_at, Some(500));
    assert!(matches!(s.revoke_pair(Uuid::nil(), 1), Err(StoreError::NotFound(_))));
}

#[test]
fn a_pair_needs_a_bonded_appliance() {
    let s = Store::open_in_memory().unwrap();
    let p = pair(&appliance(1), 1);
    assert!(matches!(s.insert_pair(&p), Err(StoreError::Sqlite(_))));
}

#[test]
fn flows_persist_every_field_but_the_attestation_and_finished_ones_are_not_resumed() {
    let s = Store::open_in_memory().unwrap();
    let mut f = FlowRecord {
        flow_id: Uuid::from_bytes([9; 16]),
        stage: FlowStage::WaitingForAppliance,
        link: "https://sigilvault.xyz/pair?session=abc".into(),
        session_id: "abc".into(),
        session: Some(SignedEnvelope { body: vec![1], sig: vec![2; 64] }),
        code_prefilled: true,
        code_verified: true,
        bindings: vec![AccountId::evm(1, [0x22; 20])],
        appliance_identity: Some(Key32([5; 32])),
        approve_request_id: Some(Uuid::from_bytes([3; 16])),
        attestation: Some(SignedEnvelope { body: vec![4], sig: vec![5; 64] }),
        pair_id: None,
        return_url: None,
        error: None,
        created_at: 1,
        updated_at: 2,
    };
    s.put_flow(&f).unwrap();
    // The attestation binds the validation code: the store never keeps it.
    let stored = FlowRecord { attestation: None, ..f.clone() };
    assert_eq!(s.flow(f.flow_id).unwrap().unwrap(), stored);
    assert_eq!(s.open_flows().unwrap(), vec![stored]);
    f.stage = FlowStage::Paired;
    f.pair_id = Some(Uuid::from_bytes([8; 16]));
    s.put_flow(&f).unwrap();
    assert!(s.open_flows().unwrap().is_empty());
    assert_eq!(s.flow(f.flow_id).unwrap().unwrap().pair_id, f.pair_id);
}

#[test]
fn seen_request_ids_distinguish_redelivery_from_replay() {
    let s = Store::open_in_memory().unwrap();
    let id = Uuid::from_bytes([1; 16]);
    let pid = Uuid::from_bytes([2; 16]);
    assert_eq!(s.note_request(id, &[1; 32], pid, 1).unwrap(), Seen::New);
    assert_eq!(s.note_request(id, &[1; 32], pid, 2).unwrap(), Seen::SameBody);
    assert_eq!(s.note_request(id, &[2; 32], pid, 3).unwrap(), Seen::DifferentBody);
    assert!(s.was_seen(id).unwrap());
    assert!(!s.was_seen(pid).unwrap());
}

#[test]
fn sign_history_round_trips_and_filters() {
    let s = Store::open_in_memory().unwrap();
    let id = Uuid::from_bytes([1; 16]);
    let pid = Uuid::from_bytes([2; 16]);
    s.note_request(id, &[1; 32], pid, 1).unwrap();
    let rec = SignRecord {
        request_id: id,
        pair_id: pid,
        chain: ChainId::Evm(1),
        account: AccountId::evm(1, [0x33; 20]),
        kind: PayloadKind::EvmTransaction,
        summary: serde_json::json!({"to": "0x"}),
        native_value: Some(10u128.pow(18)),
        spend: None,
        outcome: SignOutcome::Pending,
        reason: None,
        appliance_signature: None,
        received_at: 50,
        decided_at: None,
        expires_at: None,
        display_digest: Some(crate::decode::DisplayDigest([0xd1; 32])),
    };
    s.insert_sign(&rec).unwrap();
    s.set_sign_outcome(id, SignOutcome::Completed, None, Some(&[9; 65]), 60).unwrap();
    let got = s.sign_record(id).unwrap().unwrap();
    assert_eq!(got.outcome, SignOutcome::Completed);
    assert_eq!(got.appliance_signature, Some(vec![9; 65]));
    assert_eq!(got.native_value, Some(10u128.pow(18)));
    assert_eq!(got.display_digest, rec.display_digest, "the digest of the screen shown is kept");
    assert_eq!(s.sign_history(Some(pid), 0).unwrap()[0].display_digest, rec.display_digest);
    assert!(s.sign_history(Some(pid), 51).unwrap().is_empty());
    assert!(s.sign_history(Some(id), 0).unwrap().is_empty());
    assert!(matches!(s.set_sign_outcome(pid, SignOutcome::Failed, None, None, 1), Err(StoreError::NotFound(_))));
}

#[test]
fn recent_signs_are_newest_first_and_limited() {
    let s = Store::open_in_memory().unwrap();
    let pid = Uuid::from_bytes([2; 16]);
    // Two rows in the same second: the later insert comes first.
    for (i, at) in [(1u8, 10u64), (2, 30), (3, 30), (4, 20)] {
        let id = Uuid::from_bytes([i; 16]);
        s.note_request(id, &[i; 32], pid, at).unwrap();
        s.insert_sign(&SignRecord {
            request_id: id,
            pair_id: pid,
            chain: ChainId::Evm(1),
            account: AccountId::evm(1, [0x33; 20]),
            kind: PayloadKind::EvmTransaction,
            summary: serde_json::json!({"title": "Send ETH"}),
            native_value: None,
            spend: None,
            outcome: SignOutcome::Pending,
            reason: None,
            appliance_signature: None,
            received_at: at,
            decided_at: None,
            expires_at: None,
            display_digest: None,
        })
        .unwrap();
    }
    let ids = |v: Vec<SignRecord>| v.iter().map(|r| r.request_id.as_bytes()[0]).collect::<Vec<_>>();
    assert_eq!(ids(s.recent_signs(10).unwrap()), [3, 2, 4, 1]);
    assert_eq!(ids(s.recent_signs(2).unwrap()), [3, 2]);
    assert!(s.recent_signs(0).unwrap().is_empty());
}

#[test]
fn settings_are_typed_records_and_audit_entries_typed_events() {
    use crate::audit::{Actor, AuditEvent};
    use crate::guardrails::Guardrails;
    let s = Store::open_in_memory().unwrap();
    assert_eq!(s.setting::<Guardrails>().unwrap(), Guardrails::default(), "never set: the defaults");
    assert_eq!(s.setting_text::<Guardrails>().unwrap(), None);
    let g = Guardrails { allow_blind_signing: true, ..Guardrails::default() };
    s.put_setting(&Guardrails::default()).unwrap();
    s.put_setting(&g).unwrap();
    assert_eq!(s.setting::<Guardrails>().unwrap(), g);
    s.audit(1, "p1", &AuditEvent::PairRejected { by: Actor::Phone }).unwrap();
    s.audit(2, "r1", &AuditEvent::SignRejected { by: Actor::Appliance }).unwrap();
    s.audit(3, "r2", &AuditEvent::SignSigned { display_digest: None, receipt: None }).unwrap();
    let log = s.audit_log(10).unwrap();
    let events: Vec<_> = log.iter().map(|e| (e.subject.as_str(), e.event.clone())).collect();
    assert_eq!(
        events,
        [
            ("r2", AuditEvent::SignSigned { display_digest: None, receipt: None }),
            ("r1", AuditEvent::SignRejected { by: Actor::Appliance }),
            ("p1", AuditEvent::PairRejected { by: Actor::Phone })
        ]
    );
    let last = s.last_audit("r1", "sign_rejected").unwrap().unwrap();
    assert_eq!((last.at, last.event), (2, AuditEvent::SignRejected { by: Actor::Appliance }));
    assert_eq!(s.last_audit("r1", "sign_signed").unwrap(), None);
}

#[test]
fn migrating_a_schema_3_4_or_5_database_types_its_audit_log_and_settings() {
    use crate::audit::{Actor, AuditEvent, BlockedAt};
    use crate::bytes::Key32;
    use crate::guardrails::Guardrails;
    let appliance = Key32([5; 32]);
    for version in [3, 4, 5] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("v{version}.db"));
        {
            let conn = Connection::open(&path).unwrap();
            super::appliances::create_at_version(&conn, version).unwrap();
            let forgotten = format!(r#"{{"appliance":"{}","forgotten_at":77}}"#, appliance.to_hex());
            let rows = [
                ("pair_rejected", "s1", r#"{"by":"appliance"}"#.to_string()),
                ("sign_blocked", "r1", r#"{"violations":["per_day_limit_exceeded"],"at":"arrival"}"#.into()),
                ("sign_signed", "r2", r#"{"signature_verified":true}"#.into()),
                ("phone_forgotten", "k1", forgotten),
                ("pair_revoked", "p1", "not json".into()),
            ];
            for (i, (kind, subject, detail)) in rows.iter().enumerate() {
                conn.execute(
                    "INSERT INTO audit_log (at, kind, subject, detail) VALUES (?1, ?2, ?3, ?4)",
                    params![i as i64 + 1, kind, subject, detail],
                )
                .unwrap();
            }
            // Guardrails written before a field existed: the migration writes its default.
            conn.execute(
                "INSERT INTO settings (key, value) VALUES ('guardrails', '{\"allow_blind_signing\":true}')",
                [],
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len() as i64, "from {version}");
        let events: Vec<_> = s.audit_log(10).unwrap().into_iter().map(|e| e.event).collect();
        assert_eq!(
            events,
            [
                AuditEvent::Other { legacy_kind: "pair_revoked".into() },
                AuditEvent::PhoneForgotten { appliance, forgotten_at: 77 },
                AuditEvent::SignSigned { display_digest: None, receipt: None },
                AuditEvent::SignBlocked { violations: vec!["per_day_limit_exceeded".into()], at: BlockedAt::Arrival },
                AuditEvent::PairRejected { by: Actor::Appliance },
            ],
            "from {version}"
        );
        assert!(s.last_audit("r1", "sign_blocked").unwrap().is_some(), "the kind column still finds it");
        let g = Guardrails { allow_blind_signing: true, ..Guardrails::default() };
        assert_eq!(s.setting::<Guardrails>().unwrap(), g);
        let text = s.setting_text::<Guardrails>().unwrap().unwrap();
        assert_eq!(text, serde_json::to_string(&g).unwrap(), "re-encoded with every field");
    }
}

#[test]
fn corrupt_rows_are_errors_not_panics() {
    let s = Store::open_in_memory().unwrap();
    let a = appliance(1);
    s.put_appliance(&a).unwrap();
    s.insert_pair(&pair(&a, 1)).unwrap();
    s.lock().unwrap().execute("UPDATE pairs SET bindings = 'not json'", []).unwrap();
    assert!(matches!(s.pairs(), Err(StoreError::Corrupt { what: "pairs.bindings", .. })));
    s.lock().unwrap().execute("UPDATE appliances SET identity = identity", []).unwrap();
    s.lock().unwrap().execute("UPDATE appliances SET static_key = 'zz'", []).unwrap();
    assert!(matches!(s.appliances(), Err(StoreError::Corrupt { .. })));
}

#[test]
fn no_key_material_lands_in_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = Store::open(&path).unwrap();
    let a = appliance(1);
    s.put_appliance(&a).unwrap();
    s.insert_pair(&pair(&a, 1)).unwrap();
    drop(s);
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("s.db-wal")) {
        bytes.extend(wal);
    }
    let text = String::from_utf8_lossy(&bytes).to_lowercase();
    for seed in [1u8, 2u8] {
        let secret = sk(seed).to_bytes();
        assert!(!bytes.windows(32).any(|w| w == secret), "raw secret key {seed} found");
        assert!(!text.contains(&hex::encode(secret)), "hex secret key {seed} found");
    }
    // and the public parts are there, so the scan looks at the right file
    assert!(text.contains(&a.identity.to_hex()));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Whatever text ends up in a column (an edited or damaged file), reading is an error or
    /// a value, never a panic.
    #[test]
    fn reading_arbitrary_column_text_never_panics(
        col in proptest::sample::select(vec![
            "stage", "session", "bindings", "appliance_identity", "approve_request_id",
            "pair_id", "flow_id",
        ]),
        text in ".{0,80}",
    ) {
        let s = Store::open_in_memory().unwrap();
        let f = FlowRecord {
            flow_id: Uuid::from_bytes([9; 16]),
            stage: FlowStage::WalletsChosen,
            link: "l".into(),
            session_id: "s".into(),
            session: None,
            code_prefilled: false,
            code_verified: true,
            bindings: vec![],
            appliance_identity: None,
            approve_request_id: None,
            attestation: None,
            pair_id: None,
            return_url: None,
            error: None,
            created_at: 1,
            updated_at: 1,
        };
        s.put_flow(&f).unwrap();
        s.lock().unwrap().execute(&format!("UPDATE pair_flows SET {col} = ?1"), [&text]).unwrap();
        let _ = s.open_flows();
        let _ = s.flow(f.flow_id);
    }
}

/// A database written by schema 1 kept the pair attestation (which binds the validation
/// code) in two columns. Opening it migrates the columns away and scrubs the file: the code
/// is nowhere in the bytes afterwards, and the pair is still there.
#[test]
fn migrating_a_schema_1_database_removes_every_copy_of_the_attestation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let code = "924713";
    let att_json = format!("{{\"body\":\"{}\",\"sig\":\"x\"}}", code.repeat(3));
    {
        let conn = Connection::open(&path).unwrap();
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0].sql).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let a = appliance(1);
        conn.execute(
            "INSERT INTO appliances VALUES (?1, ?2, 'Sigil', ?3, 1)",
            params![a.identity.to_hex(), a.static_key.to_hex(), to_json("e", &a.endorsement).unwrap()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO pairs VALUES ('00000000-0000-0000-0000-000000000001', ?1, 's1', ?2, 'u',
               ?3, '[]', ?4, 'active', 5, NULL)",
            params![a.identity.to_hex(), to_json("sp", &pair(&a, 1).sp).unwrap(), Key32([7; 32]).to_hex(), att_json],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO pair_flows VALUES ('00000000-0000-0000-0000-000000000002', '\"waiting_for_appliance\"',
               0, 'l', 's2', NULL, 0, 1, '[]', NULL, NULL, ?1, NULL, NULL, NULL, 1, 1)",
            params![att_json],
        )
        .unwrap();
    }
    let file_has_code = |p: &Path| {
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            all.extend(std::fs::read(format!("{}{suffix}", p.display())).unwrap_or_default());
        }
        all.windows(code.len()).any(|w| w == code.as_bytes())
    };
    assert!(file_has_code(&path), "the schema-1 fixture holds the code");
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len() as i64);
    assert_eq!(s.pairs().unwrap().len(), 1);
    let flows = s.open_flows().unwrap();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].attestation, None);
    assert!(!file_has_code(&path), "the code survived the migration somewhere in the file");
}

/// A database file at `path` at schema `version` (before the rows' later columns), holding
/// `rows` as an app of that version wrote them: seen ids and history rows with the first
/// schema's columns. Opening it runs the later migrations over them.
fn write_history_at_version(path: &std::path::Path, version: usize, rows: &[SignRecord]) {
    let mut c = rusqlite::Connection::open(path).unwrap();
    create_at_version(&c, version).unwrap();
    let c = c.transaction().unwrap();
    for r in rows {
        c.execute(
            "INSERT INTO seen_sign_requests VALUES (?1, ?2, ?3, ?4)",
            params![r.request_id.to_string(), vec![1u8; 32], r.pair_id.to_string(), r.received_at as i64],
        )
        .unwrap();
        c.execute(
            "INSERT INTO sign_history (request_id, pair_id, chain, account, kind, summary,
               native_value, outcome, reason, appliance_signature, received_at, decided_at)
             VALUES (?1, ?2, ?3, ?4, 'evm_transaction', ?5, ?6, ?7, NULL, NULL, ?8, ?9)",
            params![
                r.request_id.to_string(),
                r.pair_id.to_string(),
                r.chain.to_string(),
                r.account.to_string(),
                r.summary.to_string(),
                r.native_value.unwrap().to_string(),
                r.outcome.as_str(),
                r.received_at as i64,
                r.decided_at.map(|d| d as i64),
            ],
        )
        .unwrap();
    }
    c.commit().unwrap();
}

mod risk_tables;
mod spend_totals;

#[test]
fn migrating_a_schema_8_database_adds_an_empty_metadata_index_the_app_then_fills() {
    use crate::metadata::tests::{bundle, pk};
    use crate::metadata::{LiveMetadata, MetadataIndex};
    use crate::secrets::MemorySecretStore;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v8.db");
    {
        let conn = Connection::open(&path).unwrap();
        super::appliances::create_at_version(&conn, 8).unwrap();
    }
    let store = Arc::new(Store::open(&path).unwrap());
    assert_eq!(store.schema_version().unwrap(), schema::MIGRATIONS.len() as i64);
    assert_eq!(store.metadata_index_floor("t:").unwrap(), None);
    // Nothing to read yet: an extension finds no index.
    let secrets = Arc::new(MemorySecretStore::default());
    let ro = Arc::new(Store::open_read_only(&path).unwrap());
    assert_eq!(MetadataIndex::open(ro.clone(), secrets.as_ref(), &pk()).unwrap_err().code(), "metadata_index_missing");
    // The app's first start with a bundle writes it; the extension then opens it.
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(crate::clock::ManualClock::new(1));
    let cache = SqliteBundleStore::new(store, clock).with_index(secrets.clone());
    let live = LiveMetadata::start(pk(), Arc::new(cache), Some(&bundle(4)));
    assert_eq!(live.version(), Some(4));
    assert_eq!(MetadataIndex::open(ro, secrets.as_ref(), &pk()).unwrap().version(), 4);
}
