//! Accounts: users, the built-in admin, login tokens, API keys and failed-login lockout.
//!
//! Must never happen: the built-in admin deleted, disabled or stripped of its rights; a secret stored
//! or logged in clear; a disabled, expired or deleted account (or its token or key) accepted; a
//! password check that answers faster for unknown users; a lockout counter lost by a restart.

pub mod credentials;
pub mod lockout;
pub mod password;
pub mod secret;

use crate::config::{AccountsConfig, Argon2Config};
use crate::protocol::{ApiError, ErrorCode};
use crate::store::audit::{self, Actor, Outcome};
use crate::store::now_ms;
pub use credentials::Credentials;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;

/// Who is calling, once credentials are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    /// A user: by login token (`token_id`), by password, or by the socket's peer credentials.
    User {
        id: i64,
        name: String,
        token_id: Option<i64>,
    },
    /// An API key, acting with its own roles (a master key passes every check).
    Key {
        id: i64,
        name: String,
        owner_id: i64,
        master: bool,
    },
}

/// The built-in administrator. Root on the control socket acts as this account.
pub const ADMIN_ID: i64 = 1;
pub const ADMIN_NAME: &str = "admin";

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub display_name: Option<String>,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub enabled: bool,
    pub builtin: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip)]
    pub failed_count: i64,
    #[serde(skip)]
    pub failed_window_start: Option<i64>,
    pub locked_until: Option<i64>,
    /// `local`, or `directory` for an account the plant directory created (migration 7).
    pub source: String,
}

const USER_COLUMNS: &str = "id, name, display_name, password_hash, enabled, builtin, expires_at, created_at, \
                            updated_at, failed_count, failed_window_start, locked_until, source";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        display_name: r.get(2)?,
        password_hash: r.get(3)?,
        enabled: r.get(4)?,
        builtin: r.get(5)?,
        expires_at: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        failed_count: r.get(9)?,
        failed_window_start: r.get(10)?,
        source: r.get(12)?,
        locked_until: r.get(11)?,
    })
}

impl User {
    /// Refuses a disabled or expired account.
    pub fn check_active(&self, now: i64) -> Result<(), ApiError> {
        if !self.enabled {
            return Err(ApiError::new(ErrorCode::AccountDisabled, format!("account {} is disabled", self.name)));
        }
        if self.expires_at.is_some_and(|t| t <= now) {
            return Err(ApiError::new(ErrorCode::AccountDisabled, format!("account {} has expired", self.name)));
        }
        Ok(())
    }
}

pub fn find_user(conn: &Connection, name: &str) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"))?
        .query_row([name], user_row)
        .optional()
}

pub fn user_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
        .query_row([id], user_row)
        .optional()
}

pub fn list_users(conn: &Connection) -> rusqlite::Result<Vec<User>> {
    let mut st = conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))?;
    let rows = st.query_map([], user_row)?;
    rows.collect()
}

/// Finds a user or answers `not_found` naming it.
pub fn require_user(conn: &Connection, name: &str) -> Result<User, ApiError> {
    find_user(conn, name)?.ok_or_else(|| ApiError::not_found(format!("no user named {name:?}")))
}

/// Account names: 1-64 characters of letters, digits, `.`, `_`, `-`, starting with a letter or digit
/// (so they can double as unix user names for console mapping).
pub fn validate_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} {name:?} is not valid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

pub fn validate_password(password: &str, cfg: &AccountsConfig) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < cfg.password_min_length {
        return Err(ApiError::bad_request(format!(
            "password is too short: {n} characters, at least {} required",
            cfg.password_min_length
        )));
    }
    if n > 1024 {
        return Err(ApiError::bad_request("password is too long: at most 1024 characters"));
    }
    Ok(())
}

/// Inserts a user. The caller validated the name and hashed the password.
pub fn insert_user(
    tx: &Connection,
    name: &str,
    display_name: Option<&str>,
    password_hash: Option<&str>,
    expires_at: Option<i64>,
) -> Result<i64, ApiError> {
    if find_user(tx, name)?.is_some() {
        return Err(ApiError::conflict(format!("a user named {name:?} already exists")));
    }
    let now = now_ms();
    // Ids only grow (the trigger of migration 5 keeps the mark): a deleted account's id is never
    // handed to a new one.
    tx.execute(
        "INSERT INTO users (id, name, display_name, password_hash, expires_at, created_at, updated_at)
         VALUES ((SELECT last + 1 FROM id_highwater WHERE kind = 'users'), ?1, ?2, ?3, ?4, ?5, ?5)",
        params![name, display_name, password_hash, expires_at, now],
    )?;
    Ok(tx.last_insert_rowid())
}

/// An account to create from a checked import row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub display_name: Option<String>,
    /// An argon2id PHC string checked by [`password::check_phc`].
    pub password_hash: Option<String>,
    pub expires_at: Option<i64>,
}

/// Inserts an account of an import whose name the caller found free in this transaction (the
/// statement is cached: an import inserts up to 100 000 of them).
pub fn insert_new_user(tx: &Connection, u: &NewUser) -> rusqlite::Result<i64> {
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO users (id, name, display_name, password_hash, expires_at, created_at, updated_at)
         VALUES ((SELECT last + 1 FROM id_highwater WHERE kind = 'users'), ?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![u.name, u.display_name, u.password_hash, u.expires_at, now])?;
    Ok(tx.last_insert_rowid())
}

/// Creates the built-in admin on first start. Returns the password when it was generated here, so the
/// caller can show it once.
pub fn ensure_admin(
    tx: &Connection,
    first_password: Option<String>,
    cost: &Argon2Config,
) -> Result<Option<String>, ApiError> {
    let exists = tx.query_row("SELECT count(*) FROM users WHERE id = ?1", [ADMIN_ID], |r| r.get::<_, i64>(0))? > 0;
    if exists {
        return Ok(None);
    }
    let (password, generated) = match first_password {
        Some(p) => (p, false),
        None => (password::generate(), true),
    };
    let hash = password::hash(&password, cost).map_err(ApiError::internal)?;
    let now = now_ms();
    tx.execute(
        "INSERT INTO users (id, name, display_name, password_hash, builtin, created_at, updated_at)
         VALUES (?1, ?2, 'built-in administrator', ?3, 1, ?4, ?4)",
        params![ADMIN_ID, ADMIN_NAME, hash, now],
    )?;
    audit::record(tx, &Actor::system(), "user.create", Some(ADMIN_NAME), Outcome::Ok, Some(&json!({"builtin": true})))?;
    Ok(generated.then_some(password))
}

/// Login tokens one account keeps at most: a login past it revokes the account's oldest token, so
/// a password holder logging in in a loop grows neither the file nor [`Credentials`].
pub const MAX_TOKENS_PER_USER: i64 = 32;

/// Deletes rows with a `DELETE ... RETURNING id` statement and returns the ids it deleted.
fn delete_returning(tx: &Connection, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<Vec<i64>> {
    let mut st = tx.prepare_cached(sql)?;
    let ids = st.query_map(p, |r| r.get(0))?;
    ids.collect()
}

/// Revokes every login token of a user, in the database and in memory; returns how many.
pub fn revoke_tokens(tx: &Connection, creds: &Credentials, user_id: i64) -> rusqlite::Result<usize> {
    let ids = delete_returning(tx, "DELETE FROM login_tokens WHERE user_id = ?1 RETURNING id", [user_id])?;
    creds.remove_tokens(&ids);
    Ok(ids.len())
}

/// Issues a login token and returns the secret (shown once) and its expiry. The account's oldest
/// tokens beyond [`MAX_TOKENS_PER_USER`] are revoked.
pub fn issue_token(
    tx: &Connection,
    creds: &Credentials,
    user_id: i64,
    ttl: Duration,
    source: &str,
) -> rusqlite::Result<(String, i64)> {
    let over = delete_returning(
        tx,
        "DELETE FROM login_tokens WHERE user_id = ?1 AND id NOT IN
           (SELECT id FROM login_tokens WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2) RETURNING id",
        params![user_id, MAX_TOKENS_PER_USER - 1],
    )?;
    creds.remove_tokens(&over);
    let body = secret::random_text();
    let digest = credentials::digest_of(&body);
    let now = now_ms();
    let expires = now.saturating_add(ttl.as_millis() as i64);
    tx.prepare_cached(
        "INSERT INTO login_tokens (user_id, digest, created_at, expires_at, source) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![user_id, &digest[..], now, expires, source])?;
    let id = tx.last_insert_rowid();
    creds.put_token(id, credentials::Token { user_id, digest, expires_at: expires });
    Ok((secret::format(secret::TOKEN_PREFIX, id, &body), expires))
}

/// Finds a presented login token in memory: `(user id, token id)` when the secret matches and the
/// token is neither expired nor revoked (deleted). Whether its user is live is not decided here but
/// by `api::auth::live`, like every other credential.
pub fn resolve_token(creds: &Credentials, text: &str) -> Result<(i64, i64), ApiError> {
    let invalid = || ApiError::unauthenticated("token is not valid (expired, revoked, or mistyped): log in again");
    let (id, body) = secret::parse(secret::TOKEN_PREFIX, text).ok_or_else(invalid)?;
    let user_id = creds.token(id, body, now_ms()).ok_or_else(invalid)?;
    Ok((user_id, id))
}

/// Deletes login tokens past their expiry, from the database and from memory: they can never be
/// used again, and the table would otherwise grow with every login. Returns how many went.
pub fn prune_tokens(conn: &Connection, creds: &Credentials, now_ms: i64) -> rusqlite::Result<usize> {
    let ids = delete_returning(conn, "DELETE FROM login_tokens WHERE expires_at <= ?1 RETURNING id", [now_ms])?;
    creds.remove_tokens(&ids);
    Ok(ids.len())
}

/// An API key as listed (never its secret).
pub type ApiKey = crate::contract::accounts::KeyView;

/// Creates an API key and returns `(id, secret)`; the secret is shown once.
pub fn insert_key(
    tx: &Connection,
    creds: &Credentials,
    name: &str,
    owner_id: i64,
    master: bool,
    expires_at: Option<i64>,
) -> Result<(i64, String), ApiError> {
    let exists: i64 = tx.query_row("SELECT count(*) FROM api_keys WHERE name = ?1", [name], |r| r.get(0))?;
    if exists > 0 {
        return Err(ApiError::conflict(format!("an API key named {name:?} already exists")));
    }
    let body = secret::random_text();
    let digest = credentials::digest_of(&body);
    tx.execute(
        "INSERT INTO api_keys (name, owner_id, digest, master, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![name, owner_id, &digest[..], master, now_ms(), expires_at],
    )?;
    let id = tx.last_insert_rowid();
    creds.put_key(id, credentials::Key { owner_id, digest });
    Ok((id, secret::format(secret::KEY_PREFIX, id, &body)))
}

/// Finds a presented API key in memory: its row id when the secret matches. Whether the key is live
/// (unrevoked, unexpired, its owner enabled and unexpired) is decided by `api::auth::live`.
pub fn resolve_key(creds: &Credentials, text: &str) -> Result<i64, ApiError> {
    let invalid = || ApiError::unauthenticated("API key is not valid (revoked, expired, or mistyped)");
    let (id, body) = secret::parse(secret::KEY_PREFIX, text).ok_or_else(invalid)?;
    if creds.key(id, body) { Ok(id) } else { Err(invalid()) }
}

pub fn list_keys(conn: &Connection) -> rusqlite::Result<Vec<ApiKey>> {
    let mut st = conn.prepare_cached(
        "SELECT k.id, k.name, u.name, k.master, k.created_at, k.expires_at,
                (SELECT group_concat(r.name, ',') FROM key_roles kr JOIN roles r ON r.id = kr.role_id
                  WHERE kr.key_id = k.id)
         FROM api_keys k JOIN users u ON u.id = k.owner_id ORDER BY k.name",
    )?;
    let rows = st.query_map([], |r| {
        let roles: Option<String> = r.get(6)?;
        Ok(ApiKey {
            id: r.get(0)?,
            name: r.get(1)?,
            owner: r.get(2)?,
            master: r.get(3)?,
            created_at: r.get(4)?,
            expires_at: r.get(5)?,
            roles: roles.map(|s| s.split(',').map(str::to_string).collect()).unwrap_or_default(),
        })
    })?;
    rows.collect()
}

/// One account's row, changed in the caller's transaction. Each returns how many rows it changed: 0
/// when the account was deleted since it was looked up.
pub mod rows {
    use super::{Credentials, delete_returning};
    use crate::store::now_ms;
    use rusqlite::{Connection, params};

    pub fn set_display_name(tx: &Connection, id: i64, name: Option<&str>) -> rusqlite::Result<usize> {
        tx.execute("UPDATE users SET display_name = ?2, updated_at = ?3 WHERE id = ?1", params![id, name, now_ms()])
    }

    pub fn set_expires_at(tx: &Connection, id: i64, at: Option<i64>) -> rusqlite::Result<usize> {
        tx.execute("UPDATE users SET expires_at = ?2, updated_at = ?3 WHERE id = ?1", params![id, at, now_ms()])
    }

    pub fn set_enabled(tx: &Connection, id: i64, enabled: bool) -> rusqlite::Result<usize> {
        tx.execute("UPDATE users SET enabled = ?2, updated_at = ?3 WHERE id = ?1", params![id, enabled, now_ms()])
    }

    /// A new password hash, from a password change (`updated_at` moves).
    pub fn set_password_hash(tx: &Connection, id: i64, hash: &str) -> rusqlite::Result<usize> {
        tx.execute("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1", params![id, hash, now_ms()])
    }

    /// The same password hashed again under new cost settings, at login (`updated_at` stays).
    pub fn rehash_password(tx: &Connection, id: i64, hash: &str) -> rusqlite::Result<usize> {
        tx.execute("UPDATE users SET password_hash = ?2 WHERE id = ?1", params![id, hash])
    }

    /// Deletes an account. Its login tokens and API keys are deleted first, here, so that memory
    /// ([`Credentials`]) loses exactly the rows the database does; its grants and role links go by
    /// ON DELETE CASCADE.
    pub fn delete_user(tx: &Connection, creds: &Credentials, id: i64) -> rusqlite::Result<usize> {
        let tokens = delete_returning(tx, "DELETE FROM login_tokens WHERE user_id = ?1 RETURNING id", [id])?;
        let keys = delete_returning(tx, "DELETE FROM api_keys WHERE owner_id = ?1 RETURNING id", [id])?;
        creds.remove_tokens(&tokens);
        creds.remove_keys(&keys);
        tx.execute("DELETE FROM users WHERE id = ?1", [id])
    }

    /// Revokes one login token (logout).
    pub fn delete_token(tx: &Connection, creds: &Credentials, token_id: i64) -> rusqlite::Result<usize> {
        let ids = delete_returning(tx, "DELETE FROM login_tokens WHERE id = ?1 RETURNING id", [token_id])?;
        creds.remove_tokens(&ids);
        Ok(ids.len())
    }

    pub fn delete_key(tx: &Connection, creds: &Credentials, key_id: i64) -> rusqlite::Result<usize> {
        let ids = delete_returning(tx, "DELETE FROM api_keys WHERE id = ?1 RETURNING id", [key_id])?;
        creds.remove_keys(&ids);
        Ok(ids.len())
    }
}

/// `gatewarden recover reset-admin-password`: a new admin password, the account re-enabled and
/// unlocked, its tokens revoked. Run by root on the stopped daemon's database.
pub fn reset_admin(tx: &Connection, password_hash: &str) -> Result<(), ApiError> {
    let now = now_ms();
    let n = tx.execute(
        "UPDATE users SET password_hash = ?2, enabled = 1, expires_at = NULL, failed_count = 0,
                failed_window_start = NULL, locked_until = NULL, updated_at = ?3 WHERE id = ?1",
        params![ADMIN_ID, password_hash, now],
    )?;
    if n == 0 {
        return Err(ApiError::not_found("the database has no built-in admin yet: start gatewarden once first"));
    }
    // The daemon is stopped: there is no table in memory to follow, it loads the file at start.
    tx.execute("DELETE FROM login_tokens WHERE user_id = ?1", [ADMIN_ID])?;
    tx.execute("DELETE FROM login_failures WHERE name = ?1", [ADMIN_NAME])?;
    let actor = Actor { who: crate::contract::Actor::nobody(), source: "recover".into() };
    audit::record(tx, &actor, "recover.reset_admin_password", Some(ADMIN_NAME), Outcome::Ok, None)?;
    Ok(())
}

/// The failed-login state saved for a name: failures in the window, window start, lock end.
pub fn saved_lockout(conn: &Connection, name: &str) -> rusqlite::Result<Option<(u32, i64, Option<i64>)>> {
    conn.prepare_cached("SELECT failed_count, window_start, locked_until FROM login_failures WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
}

/// Saves the failed-login state of a name (account or not: the same write either way).
pub fn save_lockout(tx: &Connection, name: &str, state: (u32, i64, Option<i64>)) -> rusqlite::Result<()> {
    let (count, start, locked) = state;
    if count == 0 && locked.is_none() {
        tx.execute("DELETE FROM login_failures WHERE name = ?1", [name])?;
    } else {
        tx.prepare_cached(
            "INSERT INTO login_failures (name, failed_count, window_start, locked_until, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO UPDATE SET failed_count = ?2, window_start = ?3, locked_until = ?4, updated_at = ?5",
        )?
        .execute(params![name, count, start, locked, now_ms()])?;
    }
    Ok(())
}

/// Retention of `login_failures`: rows whose window and lock are over, and beyond the newest
/// [`lockout::MAX_SAVED`].
pub fn prune_lockouts(conn: &Connection, window_ms: i64) -> rusqlite::Result<usize> {
    let now = now_ms();
    let old = conn.execute(
        "DELETE FROM login_failures WHERE window_start + ?1 < ?2 AND (locked_until IS NULL OR locked_until < ?2)",
        params![window_ms, now],
    )?;
    let over = conn.execute(
        "DELETE FROM login_failures WHERE rowid IN
           (SELECT rowid FROM login_failures ORDER BY updated_at DESC LIMIT -1 OFFSET ?1)",
        [lockout::MAX_SAVED as i64],
    )?;
    Ok(old + over)
}
