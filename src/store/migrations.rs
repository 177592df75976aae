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
    // 2: accounts and the policy model: users, login tokens, API keys, roles, grants, resources, groups.
    r#"
    CREATE TABLE users (
        id                  INTEGER PRIMARY KEY,
        name                TEXT    NOT NULL UNIQUE COLLATE NOCASE,
        display_name        TEXT,
        password_hash       TEXT,                 -- argon2id PHC string; NULL: no password login
        enabled             INTEGER NOT NULL DEFAULT 1,
        builtin             INTEGER NOT NULL DEFAULT 0,
        expires_at          INTEGER,              -- unix ms; past it the account acts as disabled
        created_at          INTEGER NOT NULL,
        updated_at          INTEGER NOT NULL,
        failed_count        INTEGER NOT NULL DEFAULT 0,
        failed_window_start INTEGER,
        locked_until        INTEGER
    );

    -- Failed logins per network source (MQTT client), so one attacker cannot spray many accounts.
    CREATE TABLE source_failures (
        source              TEXT PRIMARY KEY,
        failed_count        INTEGER NOT NULL DEFAULT 0,
        failed_window_start INTEGER NOT NULL,
        locked_until        INTEGER
    );

    CREATE TABLE login_tokens (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        digest     BLOB    NOT NULL,              -- SHA-256 of the secret
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        source     TEXT
    );
    CREATE INDEX login_tokens_user ON login_tokens (user_id);

    CREATE TABLE api_keys (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        name       TEXT    NOT NULL UNIQUE COLLATE NOCASE,
        owner_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        digest     BLOB    NOT NULL,
        master     INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        expires_at INTEGER
    );
    CREATE INDEX api_keys_owner ON api_keys (owner_id);

    CREATE TABLE roles (
        id          INTEGER PRIMARY KEY,
        name        TEXT    NOT NULL UNIQUE COLLATE NOCASE,
        description TEXT,
        builtin     INTEGER NOT NULL DEFAULT 0,
        created_at  INTEGER NOT NULL
    );

    CREATE TABLE grants (
        id         INTEGER PRIMARY KEY,
        role_id    INTEGER REFERENCES roles (id) ON DELETE CASCADE,
        user_id    INTEGER REFERENCES users (id) ON DELETE CASCADE,
        permission TEXT    NOT NULL,
        can_read   INTEGER NOT NULL,
        can_write  INTEGER NOT NULL,
        selector   TEXT    NOT NULL,
        effect     TEXT    NOT NULL CHECK (effect IN ('allow', 'deny')),
        created_at INTEGER NOT NULL,
        CHECK ((role_id IS NULL) <> (user_id IS NULL)),
        CHECK (can_read OR can_write)
    );
    CREATE INDEX grants_role ON grants (role_id);
    CREATE INDEX grants_user ON grants (user_id);

    CREATE TABLE user_roles (
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        role_id INTEGER NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
        PRIMARY KEY (user_id, role_id)
    ) WITHOUT ROWID;

    CREATE TABLE key_roles (
        key_id  INTEGER NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
        role_id INTEGER NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
        PRIMARY KEY (key_id, role_id)
    ) WITHOUT ROWID;

    CREATE TABLE resources (
        id         TEXT    PRIMARY KEY,           -- the identifier: "line1/press3", "SN-0042"
        kind       TEXT    NOT NULL,              -- the identifier kind: device, serial, tag ...
        attributes TEXT,                          -- JSON object
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );

    CREATE TABLE resource_groups (
        id          INTEGER PRIMARY KEY,
        name        TEXT    NOT NULL UNIQUE,
        description TEXT,
        created_at  INTEGER NOT NULL
    );

    CREATE TABLE group_members (
        group_id    INTEGER NOT NULL REFERENCES resource_groups (id) ON DELETE CASCADE,
        resource_id TEXT    NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, resource_id)
    ) WITHOUT ROWID;
    CREATE INDEX group_members_resource ON group_members (resource_id);

    -- The built-in supervisor role: exactly the four supervisor permissions, on everything.
    INSERT INTO roles (id, name, description, builtin, created_at)
        VALUES (1, 'supervisor', 'see and terminate HMI sessions, set the supervisor lock, broadcast', 1, 0);
    INSERT INTO grants (role_id, permission, can_read, can_write, selector, effect, created_at) VALUES
        (1, 'sessions.view',        1, 1, '*', 'allow', 0),
        (1, 'sessions.terminate',   1, 1, '*', 'allow', 0),
        (1, 'supervisor.lock',      1, 1, '*', 'allow', 0),
        (1, 'supervisor.broadcast', 1, 1, '*', 'allow', 0);
    "#,
    // 3: HMI client sessions. Live state (heartbeats) is in memory; rows are written on open, close,
    // terminate, expiry and every `license.persist_interval`. Ended rows stay for the terminate
    // cooldown and for `session list --all`, and are pruned with the audit trail's retention.
    r#"
    CREATE TABLE sessions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id     INTEGER REFERENCES users (id) ON DELETE SET NULL,
        user_name   TEXT    NOT NULL,               -- kept when the account is deleted
        key_id      INTEGER REFERENCES api_keys (id) ON DELETE SET NULL,
        digest      BLOB    NOT NULL,               -- SHA-256 of the session token's secret
        client_type TEXT    NOT NULL,
        project     TEXT,
        host        TEXT,
        address     TEXT,
        pool        TEXT,                           -- reserved role whose seat it holds; NULL: general
        opened_at   INTEGER NOT NULL,
        last_seen   INTEGER NOT NULL,
        state       TEXT    NOT NULL CHECK (state IN ('open', 'closed', 'expired', 'terminated')),
        ended_at    INTEGER,
        ended_by    TEXT,                           -- actor of a terminate
        end_reason  TEXT
    );
    CREATE INDEX sessions_open ON sessions (state) WHERE state = 'open';
    CREATE INDEX sessions_cooldown ON sessions (user_id, host, ended_at) WHERE state = 'terminated';
    CREATE INDEX sessions_ended ON sessions (ended_at) WHERE state <> 'open';
    "#,
    // 4: the supervisor lock: at most one row. Kept over a restart only with
    // `supervisor.lock_survives_restart`; otherwise cleared (and audited) at start.
    r#"
    CREATE TABLE supervisor_lock (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        owner_user    TEXT,
        owner_user_id INTEGER,
        owner_key     TEXT,
        owner_key_id  INTEGER,
        l             TEXT CHECK (l IN ('k', 'u')),  -- NULL: any supervisor
        c             TEXT CHECK (c IN ('k', 'u')),
        since         INTEGER NOT NULL,
        reason        TEXT,
        expires_at    INTEGER
    );
    "#,
    // 5: account ids are never reused, so nothing that names an account by id (a supervisor lock's
    // owner, an ended session) passes to the next account created; the high-water mark is kept by a
    // trigger, whatever inserts the row. Per-source failed-login counters move to memory
    // (accounts::lockout), and their table goes.
    r#"
    CREATE TABLE id_highwater (
        kind TEXT PRIMARY KEY,
        last INTEGER NOT NULL
    );
    INSERT INTO id_highwater (kind, last) VALUES ('users', (SELECT coalesce(max(id), 0) FROM users));
    CREATE TRIGGER users_highwater AFTER INSERT ON users
        BEGIN UPDATE id_highwater SET last = max(last, NEW.id) WHERE kind = 'users'; END;
    DROP TABLE source_failures;
    -- Failed logins by name, whether an account has the name or not (the same work either way, so the
    -- answer's timing tells nothing); the columns in users stay unused. Bounded and pruned.
    CREATE TABLE login_failures (
        name         TEXT    PRIMARY KEY COLLATE NOCASE,
        failed_count INTEGER NOT NULL,
        window_start INTEGER NOT NULL,
        locked_until INTEGER,
        updated_at   INTEGER NOT NULL
    );
    CREATE INDEX login_failures_updated ON login_failures (updated_at);
    INSERT INTO login_failures (name, failed_count, window_start, locked_until, updated_at)
        SELECT name, failed_count, coalesce(failed_window_start, 0), locked_until, updated_at FROM users
        WHERE failed_count > 0 OR locked_until IS NOT NULL;
    "#,
    // 6: objects (SPEC "Objects and historical access"): things users create on a resource, owned by
    // a user, stamped with the policy epoch current at their creation; explicit readers; the policy's
    // history as versions valid over [from_epoch, to_epoch), pruned to what live objects may ask
    // about (see objects::history).
    r#"
    CREATE TABLE policy_epoch (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        epoch INTEGER NOT NULL
    );
    INSERT INTO policy_epoch (id, epoch) VALUES (1, 0);

    CREATE TABLE policy_history (
        kind       TEXT    NOT NULL CHECK (kind IN ('user', 'key', 'role', 'group')),
        key        TEXT    NOT NULL,          -- the row id, or the group's name
        from_epoch INTEGER NOT NULL,
        to_epoch   INTEGER,                   -- NULL: the current version
        state      TEXT    NOT NULL,          -- JSON: the entity as the index is built from it
        PRIMARY KEY (kind, key, from_epoch)
    ) WITHOUT ROWID;
    CREATE INDEX policy_history_open ON policy_history (kind, key) WHERE to_epoch IS NULL;
    CREATE INDEX policy_history_closed ON policy_history (to_epoch) WHERE to_epoch IS NOT NULL;

    CREATE TABLE objects (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        kind       TEXT    NOT NULL,          -- a permission name
        resource   TEXT    NOT NULL,          -- a resource id of the inventory (kept if it goes)
        name       TEXT    NOT NULL,
        data       TEXT,                      -- JSON, bounded by the API
        owner_id   INTEGER NOT NULL REFERENCES users (id),
        epoch      INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX objects_owner ON objects (owner_id);
    CREATE INDEX objects_epoch ON objects (epoch);
    CREATE INDEX objects_resource ON objects (resource, kind);

    CREATE TABLE object_readers (
        object_id  INTEGER NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
        user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        granted_at INTEGER NOT NULL,
        granted_by TEXT    NOT NULL,
        PRIMARY KEY (object_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX object_readers_user ON object_readers (user_id);
    "#,
    // 7: the plant directory (SPEC "Plant directory"): where an account comes from, and for each
    // directory person its DN, the groups and the roles the mapping gave it (so a sync takes back only
    // those), and the offline verifier: an argon2id hash of the last password the directory accepted,
    // never the password, usable until `verified_at + directory.cache_ttl`.
    r#"
    ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'directory'));
    CREATE TABLE directory_people (
        user_id      INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        dn           TEXT    NOT NULL,
        groups       TEXT    NOT NULL,       -- JSON array of group DNs
        mapped_roles TEXT    NOT NULL,       -- JSON array of role names given by directory.group_roles
        verifier     TEXT,                   -- argon2id PHC string of the last accepted password
        verified_at  INTEGER,                -- unix ms of the last login the directory accepted
        synced_at    INTEGER                 -- unix ms of the last sync that found the person
    );
    "#,
    // 8: the plant directory's own disabling, told apart from an administrator's: a person disabled
    // here because the directory disabled or removed them is enabled again when the directory has them
    // back; one disabled by hand (`user.disable`) stays disabled.
    r#"
    ALTER TABLE directory_people ADD COLUMN disabled_by_directory INTEGER NOT NULL DEFAULT 0;
    "#,
    // 9: read-only seats (`license.read_only_seats`): whether a session holds one, so a restart gives
    // it back the same kind of seat.
    r#"
    ALTER TABLE sessions ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0;
    "#,
    // 10: the login token a session was opened with, if any: revoking that token (logout) ends the
    // session, after a restart too (SPEC "Trust rules": a credential is exactly as good as what it
    // came from).
    r#"
    ALTER TABLE sessions ADD COLUMN token_id INTEGER;
    "#,
];
