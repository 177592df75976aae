//! The append-only audit trail. Every privileged action, every refusal of one and every failed login
//! lands here, in the same transaction as the change it records.

use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// Who did it and through what, as the audit trail names them.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub source: String,
}

impl Actor {
    pub fn system() -> Actor {
        Actor { name: "system".into(), source: "daemon".into() }
    }
}

pub fn record(
    tx: &Connection,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    outcome: Outcome,
    detail: Option<&Value>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (ts, actor, source, action, target, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            super::now_ms(),
            actor.name,
            actor.source,
            action,
            target,
            outcome.as_str(),
            detail.map(|d| d.to_string())
        ],
    )?;
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub id: i64,
    pub ts: i64,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub detail: Option<Value>,
}

/// Newest first, at most `limit`, optionally only entries at or after `since_ms`.
pub fn list(conn: &Connection, since_ms: Option<i64>, limit: u32) -> rusqlite::Result<Vec<Entry>> {
    let mut st = conn.prepare_cached(
        "SELECT id, ts, actor, source, action, target, outcome, detail FROM audit
         WHERE ts >= ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![since_ms.unwrap_or(i64::MIN), limit], |r| {
        let detail: Option<String> = r.get(7)?;
        Ok(Entry {
            id: r.get(0)?,
            ts: r.get(1)?,
            actor: r.get(2)?,
            source: r.get(3)?,
            action: r.get(4)?,
            target: r.get(5)?,
            outcome: r.get(6)?,
            detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
        })
    })?;
    rows.collect()
}

/// Retention: drops entries older than `max_age_ms` and all but the newest `max_rows`.
pub fn prune(conn: &Connection, max_age_ms: i64, max_rows: u64) -> rusqlite::Result<usize> {
    let cutoff = super::now_ms().saturating_sub(max_age_ms);
    let by_age = conn.execute("DELETE FROM audit WHERE ts < ?1", params![cutoff])?;
    let by_count = conn.execute(
        "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?1)",
        params![max_rows as i64],
    )?;
    Ok(by_age + by_count)
}
