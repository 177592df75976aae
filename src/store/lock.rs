//! SQL for the supervisor lock: at most one row (migration 4). The lock itself is
//! [`crate::supervisor::Lock`]; whether it survives a restart is decided by `api::supervisor::restore`.

use crate::supervisor::{Lock, Owner, Scope};
use rusqlite::{Connection, OptionalExtension, params};

/// Replaces the stored lock (none: clears it), in the caller's transaction.
pub fn store_lock(tx: &Connection, lock: Option<&Lock>) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM supervisor_lock", [])?;
    if let Some(k) = lock {
        tx.execute(
            "INSERT INTO supervisor_lock (id, owner_user, owner_user_id, owner_key, owner_key_id, l, c, since,
                                          reason, expires_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                k.o.u,
                k.user_id,
                k.o.key_id,
                k.key,
                k.l.map(Scope::code),
                k.c.map(Scope::code),
                k.since,
                k.reason,
                k.expires_at
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
                o: Owner { u: r.get(0)?, key_id: r.get(2)? },
                user_id: r.get(1)?,
                key: r.get(3)?,
                l: scope(r.get(4)?),
                c: scope(r.get(5)?),
                since: r.get(6)?,
                reason: r.get(7)?,
                expires_at: r.get(8)?,
            })
        },
    )
    .optional()
}
