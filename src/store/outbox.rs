//! The outbox: events for the MQTT bridge, written in the same transaction as the change that
//! caused them, published in id order, deleted only after the broker acknowledged them.

use rusqlite::{Connection, params};
use serde_json::Value;

/// Queues an event under `events/<name>` (relative to the site prefix).
pub fn event(tx: &Connection, name: &str, payload: &Value) -> rusqlite::Result<i64> {
    publish(tx, &format!("events/{name}"), payload, false)
}

/// Queues a message for any topic below the site prefix.
pub fn publish(tx: &Connection, topic: &str, payload: &Value, retain: bool) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO outbox (ts, topic, payload, retain) VALUES (?1, ?2, ?3, ?4)",
        params![super::now_ms(), topic, payload.to_string(), retain],
    )?;
    Ok(tx.last_insert_rowid())
}

pub fn depth(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
}
