//! The store's schema, as an ordered list of migrations. `PRAGMA user_version` records how
//! many have been applied; a database newer than this code is refused, never downgraded.

use rusqlite::Transaction;

use super::StoreError;

/// Rust that fills what a migration's SQL cannot compute.
pub(crate) type Backfill = fn(&Transaction<'_>) -> Result<(), StoreError>;

/// One schema step: SQL, then optionally Rust that fills what SQL cannot compute (run in
/// the same transaction).
pub(crate) struct Migration {
    /// The statements.
    pub sql: &'static str,
    /// Runs after `sql`, before `user_version` moves.
    pub backfill: Option<Backfill>,
}

/// Migration `i` brings a database from `user_version = i` to `i + 1`. Append only: never
/// edit a migration that has shipped.
pub(crate) const MIGRATIONS: &[Migration] = &[
    // 1: the first schema.
    Migration {
        backfill: None,
        sql: r#"
    CREATE TABLE appliances (
        identity      TEXT PRIMARY KEY,          -- Ed25519 identity key, hex
        static_key    TEXT NOT NULL,             -- X25519 channel public key, hex
        name          TEXT NOT NULL,
        endorsement   TEXT NOT NULL,             -- SignedEnvelope (AppEndorsement), JSON
        bonded_at     INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE pairs (
        pair_id            TEXT PRIMARY KEY,     -- UUID
        appliance_identity TEXT NOT NULL REFERENCES appliances(identity),
        session_id         TEXT NOT NULL,
        sp_profile         TEXT NOT NULL,        -- SpProfile, JSON
        sp_user_ref        TEXT NOT NULL,
        sp_public_key      TEXT NOT NULL,        -- pinned at pair time, hex
        bindings           TEXT NOT NULL,        -- [CAIP-10], JSON
        attestation        TEXT NOT NULL,        -- SignedEnvelope (PairAttestation), JSON
        status             TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
        created_at         INTEGER NOT NULL,
        revoked_at         INTEGER
    ) STRICT;

    CREATE TABLE pair_flows (
        flow_id            TEXT PRIMARY KEY,     -- UUID
        stage              TEXT NOT NULL,
        finished           INTEGER NOT NULL CHECK (finished IN (0, 1)),
        link               TEXT NOT NULL,
        session_id         TEXT NOT NULL,
        session            TEXT,                 -- SignedEnvelope (PairSessionDetails), JSON
        code_prefilled     INTEGER NOT NULL CHECK (code_prefilled IN (0, 1)),
        code_verified      INTEGER NOT NULL CHECK (code_verified IN (0, 1)),
        bindings           TEXT NOT NULL,        -- [CAIP-10], JSON
        appliance_identity TEXT,
        approve_request_id TEXT,                 -- UUID, persisted BEFORE asking the appliance
        attestation        TEXT,                 -- SignedEnvelope, persisted as soon as it arrives
        pair_id            TEXT,
        return_url         TEXT,
        error              TEXT,
        created_at         INTEGER NOT NULL,
        updated_at         INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX pair_flows_open ON pair_flows(finished, updated_at);

    CREATE TABLE seen_sign_requests (
        request_id    TEXT PRIMARY KEY,          -- UUID
        body_sha256   BLOB NOT NULL,
        pair_id       TEXT NOT NULL,
        first_seen_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE sign_history (
        request_id          TEXT PRIMARY KEY REFERENCES seen_sign_requests(request_id),
        pair_id             TEXT NOT NULL,
        chain               TEXT NOT NULL,       -- CAIP-2
        account             TEXT NOT NULL,       -- CAIP-10
        kind                TEXT NOT NULL,
        summary             TEXT NOT NULL,       -- decoded summary, JSON
        native_value        TEXT,                -- smallest unit, decimal, when known
        outcome             TEXT NOT NULL,
        reason              TEXT,
        appliance_signature BLOB,
        received_at         INTEGER NOT NULL,
        decided_at          INTEGER
    ) STRICT;
    CREATE INDEX sign_history_pair_time ON sign_history(pair_id, received_at);

    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL                      -- JSON
    ) STRICT;

    CREATE TABLE audit_log (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      INTEGER NOT NULL,
        kind    TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail  TEXT NOT NULL                    -- JSON
    ) STRICT;
    "#,
    },
    // 2: spend totals the guardrails read without touching the history (issue 18): each
    // row's spend (native value + worst-case fee) and expiry, an index over the requests
    // still waiting, and running totals of what was signed, per pair and per UTC day.
    Migration {
        backfill: Some(super::spend::backfill),
        sql: r#"
    ALTER TABLE sign_history ADD COLUMN spend TEXT;        -- native value + max fee, decimal
    ALTER TABLE sign_history ADD COLUMN expires_at INTEGER;
    -- The requests that still reserve spend: pending, by chain and expiry (covering).
    CREATE INDEX sign_history_live ON sign_history(chain, expires_at, pair_id, request_id, spend)
        WHERE outcome = 'pending';
    CREATE INDEX sign_history_received ON sign_history(received_at);
    CREATE INDEX audit_log_subject ON audit_log(subject, kind);

    -- Spend signed through a pair on a chain, ever (signed or completed requests).
    CREATE TABLE spend_by_pair (
        pair_id TEXT NOT NULL,
        chain   TEXT NOT NULL,                   -- CAIP-2
        amount  TEXT NOT NULL,                   -- smallest unit, decimal u128 (saturating)
        PRIMARY KEY (pair_id, chain)
    ) STRICT, WITHOUT ROWID;

    -- Spend signed on a chain per UTC day (day = unix seconds / 86400), across pairs.
    CREATE TABLE spend_by_day (
        chain  TEXT NOT NULL,                    -- CAIP-2
        day    INTEGER NOT NULL,
        amount TEXT NOT NULL,                    -- smallest unit, decimal u128 (saturating)
        PRIMARY KEY (chain, day)
    ) STRICT, WITHOUT ROWID;
    "#,
    },
    // 3: the appliance's pair attestation binds the validation code, and codes never reach
    // SQLite: it moves to the SecretStore for an in-flight flow and is not kept with a pair.
    // (An in-flight flow that held one asks the appliance again with its persisted approve
    // request id; the appliance answers a repeated id with its first attestation.) The store
    // opens with `secure_delete` and vacuums after this migration, so no copy of the old
    // column survives in free pages or in the WAL.
    Migration {
        backfill: None,
        sql: r#"
    ALTER TABLE pairs DROP COLUMN attestation;
    ALTER TABLE pair_flows DROP COLUMN attestation;
    "#,
    },
    // 4: several bonds per phone (issue 14). Each bonded appliance (keyed by its identity
    // key) keeps how the platform reaches it (a BLE peripheral id, an address, a socket
    // path: chosen at run time, not secret) and when it was forgotten (its pairs and
    // history still name it, so the row stays); each pair and pair flow already names its
    // appliance, and these indexes find them by it. A database with one bond keeps it, with
    // no peripheral until the next bond or the shells' migration of their old copy.
    Migration {
        backfill: None,
        sql: r#"
    ALTER TABLE appliances ADD COLUMN peripheral TEXT;
    ALTER TABLE appliances ADD COLUMN forgotten_at INTEGER;
    CREATE INDEX pairs_by_appliance ON pairs(appliance_identity, created_at);
    CREATE INDEX pair_flows_by_appliance ON pair_flows(appliance_identity) WHERE finished = 0;
    "#,
    },
    // 5: signed statements the phone owes octane and could not deliver yet (issue 14: an
    // appliance's `PhoneForgotten` while octane was unreachable); `Sunstorm::sync` retries.
    Migration {
        backfill: None,
        sql: r#"
    CREATE TABLE octane_outbox (
        appliance TEXT NOT NULL,                 -- Ed25519 identity of the signer, hex
        kind      TEXT NOT NULL,                 -- e.g. 'phone_forgotten'
        subject   TEXT NOT NULL,                 -- what it is about (an app key, hex)
        statement TEXT NOT NULL,                 -- SignedEnvelope, JSON
        queued_at INTEGER NOT NULL,
        attempts  INTEGER NOT NULL,
        PRIMARY KEY (appliance, kind, subject)
    ) STRICT;
    "#,
    },
    // 6: typed records (issue 14). Each audit entry's `detail` holds its typed event
    // (`crate::audit::AuditEvent`, JSON tagged by `kind`; `kind` stays a column for the
    // index); the settings rows are re-encoded through their record types. No schema change.
    Migration { backfill: Some(typed_records), sql: "" },
    // 7: clear signing (issue 15). Each history row keeps the display digest of the screen
    // the user reviewed (`crate::decode::display_digest`; none for rows from before). The
    // last verified metadata bundle is cached (one slot; its signature is checked again on
    // every load). The user's address book: their own names for addresses, per chain.
    Migration {
        backfill: None,
        sql: r#"
    ALTER TABLE sign_history ADD COLUMN display_digest TEXT;   -- 64 hex digits
    CREATE TABLE metadata_bundle (
        slot      INTEGER PRIMARY KEY CHECK (slot = 1),
        version   INTEGER NOT NULL,
        sha256    TEXT NOT NULL,                 -- of `bytes`, hex
        etag      TEXT,                          -- octane's, for conditional updates
        bytes     BLOB NOT NULL,                 -- the signed bundle as received
        stored_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE address_book (
        chain    TEXT NOT NULL,                  -- CAIP-2
        address  TEXT NOT NULL,                  -- canonical form (EVM: lowercase 0x hex)
        label    TEXT NOT NULL,                  -- sanitised when stored and when shown
        added_at INTEGER NOT NULL,
        PRIMARY KEY (chain, address)
    ) STRICT, WITHOUT ROWID;
    "#,
    },
    // 8: warnings from the phone's own history (issue 15, `crate::risk`): who each account
    // paid, approved and used as a token, and how much each pair usually moves, updated when
    // a request is signed and filled here from the requests already signed.
    Migration {
        backfill: Some(super::risk::backfill),
        sql: r#"
    CREATE TABLE risk_counterparties (
        chain    TEXT NOT NULL,                  -- CAIP-2
        account  TEXT NOT NULL,                  -- CAIP-10 of the signing account
        role     TEXT NOT NULL CHECK (role IN ('recipient', 'spender', 'token')),
        address  TEXT NOT NULL,                  -- canonical form (EVM: lowercase 0x hex)
        first_at INTEGER NOT NULL,               -- first signed, unix seconds
        last_at  INTEGER NOT NULL,               -- last signed, unix seconds
        times    INTEGER NOT NULL,               -- signed requests naming it
        PRIMARY KEY (chain, account, role, address)
    ) STRICT, WITHOUT ROWID;
    -- Token contracts any account used, by chain and address.
    CREATE INDEX risk_known_tokens ON risk_counterparties(chain, address) WHERE role = 'token';
    CREATE TABLE risk_pair_usage (
        pair_id        TEXT NOT NULL,
        chain          TEXT NOT NULL,            -- CAIP-2
        valued         INTEGER NOT NULL,         -- signed requests that moved native value
        value_sum      TEXT NOT NULL,            -- their value, decimal u128 (saturating)
        last_signed_at INTEGER NOT NULL,         -- unix seconds
        PRIMARY KEY (pair_id, chain)
    ) STRICT, WITHOUT ROWID;
    "#,
    },
    // 9: the metadata index (docs/metadata.md, ADR 0032): the bundle in use, cut into rows
    // the notification extension reads one by one, each authenticated with an HMAC under a
    // device-local key kept in the secret store. Filled by the app when it puts a bundle
    // in use, never by the extension.
    Migration {
        backfill: None,
        sql: r#"
    CREATE TABLE metadata_index (
        key      TEXT PRIMARY KEY,               -- '' (the header), 'c:'/'m:'/'t:'/'n:' + CAIP-10/19, 'u:', 'd:' + path
        next_key TEXT NOT NULL,                  -- the next key in order ('~' after the last): proves absence
        value    BLOB NOT NULL,                  -- deterministic CBOR
        mac      BLOB NOT NULL                   -- HMAC-SHA256 (crate::metadata::index)
    ) STRICT, WITHOUT ROWID;
    "#,
    },
];

fn typed_records(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::audit::backfill(tx)?;
    super::settings::backfill(tx)
}

/// The migration after which the database is vacuumed and its WAL truncated, because it
/// removed secret-bearing data whose old bytes must not linger in free pages.
pub(crate) const SCRUBBING_MIGRATIONS: &[usize] = &[3];
