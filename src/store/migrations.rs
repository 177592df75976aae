//! Versioned schema migrations. Entry N (0-based) takes the database from `user_version` N to N+1.
//! Never edit a shipped entry: append a new one.

pub const MIGRATIONS: &[&str] = &[
    // 1: the frame: append-only audit trail, the MQTT outbox, runtime settings.
    r#"
    CREATE TABLE audit (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        ts      INTEGER NOT NULL,            -- unix ms
        actor   TEXT    NOT NULL,            -- who: "admin", "user:alice", "key:plc1", "system"
        source  TEXT    NOT NULL,            -- how: "socket uid=0", "mqtt client=hmi7", "daemon"
        action  TEXT    NOT NULL,            -- what: the method or event name
        target  TEXT,                        -- on what
        outcome TEXT    NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
        detail  TEXT                         -- JSON, never a secret
    );
    CREATE INDEX audit_ts ON audit (ts);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

    CREATE TABLE outbox (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        ts      INTEGER NOT NULL,
        topic   TEXT    NOT NULL,            -- below the site prefix: "events/session.opened"
        payload TEXT    NOT NULL,
        retain  INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE settings (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL,            -- JSON
        updated_at INTEGER NOT NULL
    );
    "#,
];
