//! The supervisor lock as stored: at most one row (migration 4). What a lock means (whom it admits,
//! what it refuses, whether it survives a restart) is [`crate::supervisor`]'s; here only how it is
//! kept.
//!
//! Columns: `owner_user` and `owner_key` are the owner's user and API key *names* (the wire's `o.u`
//! and `o.key_id`); `owner_user_id` and `owner_key_id` are their row ids (the lock's `user_id` and
//! `key_row`), which never reach the wire.

use crate::contract::Actor;
use crate::contract::sessions::{LockState, Scope};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// The lock: its wire state, and the row ids of its owner for matching callers (never on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub state: LockState,
    /// The owner user's row id (`o.u`'s), when set by or for a user.
    pub user_id: Option<i64>,
    /// The owner API key's row id (`o.key_id` is its name), when set by or for a key.
    pub key_row: Option<i64>,
}

/// On the wire a lock is its [`LockState`] alone.
impl Serialize for Lock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.state.serialize(s)
    }
}

/// Replaces the stored lock (none: clears it), in the caller's transaction.
pub fn store_lock(tx: &Connection, lock: Option<&Lock>) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM supervisor_lock", [])?;
    if let Some(k) = lock {
        let s = &k.state;
        tx.execute(
            "INSERT INTO supervisor_lock (id, owner_user, owner_user_id, owner_key, owner_key_id, l, c, since,
                                          reason, expires_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                s.o.u,
                k.user_id,
                s.o.key_id,
                k.key_row,
                s.l.map(Scope::code),
                s.c.map(Scope::code),
                s.since,
                s.reason,
                s.expires_at
            ],
        )?;
    }
    Ok(())
}

/// The stored lock, if any.
pub fn load_lock(conn: &Connection) -> rusqlite::Result<Option<Lock>> {
    let scope = |s: Option<String>| s.as_deref().and_then(Scope::from_code);
    conn.query_row(
        "SELECT owner_user, owner_user_id, owner_key, owner_key_id, l, c, since, reason, expires_at
         FROM supervisor_lock WHERE id = 1",
        [],
        |r| {
            Ok(Lock {
                state: LockState {
                    o: Actor { u: r.get(0)?, key_id: r.get(2)? },
                    l: scope(r.get(4)?),
                    c: scope(r.get(5)?),
                    since: r.get(6)?,
                    reason: r.get(7)?,
                    expires_at: r.get(8)?,
                },
                user_id: r.get(1)?,
                key_row: r.get(3)?,
            })
        },
    )
    .optional()
}

/// The row id of the API key named `name` (a lock owner a master names).
pub fn key_row(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT id FROM api_keys WHERE name = ?1", [name], |r| r.get(0)).optional()
}
