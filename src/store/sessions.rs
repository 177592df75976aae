//! SQL for HMI client sessions (migration 3): every statement about the `sessions` table, and the two
//! lookups a seat decision needs (the opener's name and roles). What the rows mean, when they are
//! written and what must never happen is [`crate::sessions`]'s; here only how.
//!
//! A row is written on open, on its end (close, expiry, terminate) and, for `last_seen`, in batches
//! (`license.persist_interval`); ended rows stay for the terminate cooldown and `session list --all`.

use crate::config::CooldownScope;
use crate::contract::Actor;
use crate::contract::sessions::{SessionState, SessionView};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A session row as `session.open` inserts it.
#[derive(Debug)]
pub struct NewSession<'a> {
    pub user_id: i64,
    pub user_name: &'a str,
    /// The API key it was opened with (its row id), if any.
    pub key_row: Option<i64>,
    /// The login token it was opened with (its row id), if any.
    pub token_id: Option<i64>,
    pub digest: &'a [u8],
    pub client_type: &'a str,
    pub project: Option<&'a str>,
    pub host: Option<&'a str>,
    pub address: Option<&'a str>,
    pub opened_at: i64,
}

/// Inserts an open session; returns its id.
pub fn insert(tx: &Connection, s: &NewSession<'_>) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO sessions (user_id, user_name, key_id, digest, client_type, project, host, address,
                               opened_at, last_seen, state, token_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 'open', ?10)",
        params![
            s.user_id,
            s.user_name,
            s.key_row,
            s.digest,
            s.client_type,
            s.project,
            s.host,
            s.address,
            s.opened_at,
            s.token_id
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Records the seat a session took: the pool it came from, and whether it is read-only.
pub fn set_seat(tx: &Connection, id: i64, pool: Option<&str>, read_only: bool) -> rusqlite::Result<()> {
    tx.execute("UPDATE sessions SET pool = ?2, read_only = ?3 WHERE id = ?1", params![id, pool, read_only]).map(|_| ())
}

/// The name of a user, by id (the owner of the API key a session is opened with).
pub fn user_name(conn: &Connection, user_id: i64) -> rusqlite::Result<String> {
    conn.query_row("SELECT name FROM users WHERE id = ?1", [user_id], |r| r.get(0))
}

/// The names of the roles a user holds.
pub fn user_roles(conn: &Connection, user_id: i64) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached("SELECT r.name FROM user_roles x JOIN roles r ON r.id = x.role_id WHERE x.user_id = ?1")?
        .query_map([user_id], |r| r.get(0))?
        .collect()
}

/// The names of the roles an API key holds (by the key's row id).
pub fn key_roles(conn: &Connection, key_row: i64) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached("SELECT r.name FROM key_roles x JOIN roles r ON r.id = x.role_id WHERE x.key_id = ?1")?
        .query_map([key_row], |r| r.get(0))?
        .collect()
}

/// When a session of `user_id` was last terminated (unix ms): on any host (`user`), or on `host`,
/// compared without case (`user_host`).
pub fn last_terminated(
    conn: &Connection,
    user_id: i64,
    host: Option<&str>,
    scope: CooldownScope,
) -> rusqlite::Result<Option<i64>> {
    match scope {
        CooldownScope::User => conn.query_row(
            "SELECT max(ended_at) FROM sessions WHERE state = 'terminated' AND user_id = ?1",
            params![user_id],
            |r| r.get(0),
        ),
        CooldownScope::UserHost => conn.query_row(
            "SELECT max(ended_at) FROM sessions
             WHERE state = 'terminated' AND user_id = ?1 AND lower(host) IS lower(?2)",
            params![user_id, host],
            |r| r.get(0),
        ),
    }
}

/// Marks an open session ended; `ended_by` is kept for a terminate only.
pub fn end(
    tx: &Connection,
    id: i64,
    state: SessionState,
    at: i64,
    last_seen: i64,
    ended_by: Option<&Actor>,
    reason: Option<&str>,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE sessions SET state = ?2, ended_at = ?3, last_seen = ?4, ended_by = ?5, end_reason = ?6
         WHERE id = ?1 AND state = 'open'",
        params![id, state.as_str(), at, last_seen, ended_by.map(Actor::to_text), reason],
    )
    .map(|_| ())
}

/// The state of a session row, if it exists.
pub fn state(conn: &Connection, id: i64) -> rusqlite::Result<Option<SessionState>> {
    let s: Option<String> =
        conn.query_row("SELECT state FROM sessions WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    Ok(s.as_deref().and_then(SessionState::parse))
}

/// How a session row says it ended, for the refusal of its token.
#[derive(Debug)]
pub struct Ending {
    /// The digest of the token's secret, to check before saying anything.
    pub digest: Vec<u8>,
    pub state: Option<SessionState>,
    pub ended_by: Option<Actor>,
    pub reason: Option<String>,
}

/// How a session ended (or that it is open), by id.
pub fn ending(conn: &Connection, id: i64) -> rusqlite::Result<Option<Ending>> {
    conn.prepare_cached("SELECT digest, state, ended_by, end_reason FROM sessions WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(Ending {
                digest: r.get(0)?,
                state: SessionState::parse(&r.get::<_, String>(1)?),
                ended_by: r.get::<_, Option<String>>(2)?.as_deref().map(Actor::from_text),
                reason: r.get(3)?,
            })
        })
        .optional()
}

const VIEW_COLUMNS: &str = "id, user_name, client_type, project, host, address, opened_at, last_seen, state, pool, \
                            ended_at, ended_by, end_reason, read_only";

fn view_row(r: &Row<'_>) -> rusqlite::Result<SessionView> {
    let state: String = r.get(8)?;
    Ok(SessionView {
        session_id: r.get(0)?,
        user: r.get(1)?,
        client_type: r.get(2)?,
        project: r.get(3)?,
        host: r.get(4)?,
        address: r.get(5)?,
        opened_at: r.get(6)?,
        last_seen_at: r.get(7)?,
        state: SessionState::parse(&state).unwrap_or(SessionState::Expired),
        shared_seat: false,
        pool: r.get(9)?,
        ended_at: r.get(10)?,
        ended_by: r.get::<_, Option<String>>(11)?.as_deref().map(Actor::from_text),
        reason: r.get(12)?,
        read_only: r.get(13)?,
        gateway: None,
    })
}

/// Ended sessions, newest first.
pub fn list_ended(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<SessionView>> {
    conn.prepare(&format!(
        "SELECT {VIEW_COLUMNS} FROM sessions WHERE state <> 'open' ORDER BY ended_at DESC, id DESC LIMIT ?1"
    ))?
    .query_map([limit], view_row)?
    .collect()
}

/// One ended session.
pub fn ended(conn: &Connection, id: i64) -> rusqlite::Result<Option<SessionView>> {
    conn.query_row(&format!("SELECT {VIEW_COLUMNS} FROM sessions WHERE id = ?1 AND state <> 'open'"), [id], view_row)
        .optional()
}

/// Writes heartbeats: `(id, last_seen)` of open sessions.
pub fn write_last_seen(tx: &Connection, rows: &[(i64, i64)]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached("UPDATE sessions SET last_seen = ?2 WHERE id = ?1 AND state = 'open'")?;
    for (id, seen) in rows {
        stmt.execute(params![id, seen])?;
    }
    Ok(())
}

/// An open session row as a restart reads it back.
#[derive(Debug)]
pub struct OpenRow {
    pub id: i64,
    /// Null when the account was deleted while the daemon was down.
    pub user_id: Option<i64>,
    pub user_name: String,
    /// The API key it was opened with, if it still exists: (row id, name, master).
    pub key: Option<(i64, String, bool)>,
    pub digest: Vec<u8>,
    pub client_type: String,
    pub project: Option<String>,
    pub host: Option<String>,
    pub address: Option<String>,
    pub opened_at: i64,
    pub last_seen: i64,
    pub pool: Option<String>,
    pub read_only: bool,
    /// The login token it was opened with, if any.
    pub token_id: Option<i64>,
}

/// Every open session, oldest first.
pub fn open_rows(conn: &Connection) -> rusqlite::Result<Vec<OpenRow>> {
    let mut stmt = conn.prepare(
        "SELECT s.id, s.user_id, s.user_name, s.key_id, s.digest, s.client_type, s.project, s.host,
                s.address, s.opened_at, s.last_seen, s.pool, k.name, k.master, s.read_only, s.token_id
         FROM sessions s LEFT JOIN api_keys k ON k.id = s.key_id
         WHERE s.state = 'open' ORDER BY s.id",
    )?;
    stmt.query_map([], |r| {
        let key_row: Option<i64> = r.get(3)?;
        let key_name: Option<String> = r.get(12)?;
        let master: Option<bool> = r.get(13)?;
        Ok(OpenRow {
            id: r.get(0)?,
            user_id: r.get(1)?,
            user_name: r.get(2)?,
            key: key_row.zip(key_name).map(|(id, name)| (id, name, master.unwrap_or(false))),
            digest: r.get(4)?,
            client_type: r.get(5)?,
            project: r.get(6)?,
            host: r.get(7)?,
            address: r.get(8)?,
            opened_at: r.get(9)?,
            last_seen: r.get(10)?,
            pool: r.get(11)?,
            read_only: r.get(14)?,
            token_id: r.get(15)?,
        })
    })?
    .collect()
}

/// Deletes ended sessions that ended before `before`, and those beyond the newest `max_rows` ended
/// ones that ended before `keep_after` (the terminate cooldown). Returns how many went.
pub fn prune(conn: &Connection, before: i64, max_rows: u64, keep_after: i64) -> rusqlite::Result<usize> {
    let by_age = conn.execute("DELETE FROM sessions WHERE state <> 'open' AND ended_at < ?1", [before])?;
    let by_count = conn.execute(
        "DELETE FROM sessions WHERE state <> 'open' AND ended_at < ?2 AND id <=
           (SELECT id FROM sessions WHERE state <> 'open' ORDER BY id DESC LIMIT 1 OFFSET ?1)",
        params![max_rows as i64, keep_after],
    )?;
    Ok(by_age + by_count)
}
