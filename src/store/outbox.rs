//! The outbox: messages for the MQTT bridge, written in the same transaction as the change that
//! caused them, published in id order, deleted only after the broker acknowledged them.
//!
//! Must never happen: an event published for a change that rolled back (rows are written inside the
//! change's transaction), or a row deleted before the broker has it (the bridge deletes on PUBACK).
//!
//! Conventions for writers:
//! - `topic` is relative to the site prefix (`events/user.disabled`, `supervisor/lock`).
//! - `payload` is JSON text. The JSON value `null` means an *empty* payload on the wire: for a
//!   retained topic, `publish(tx, "supervisor/lock", &Value::Null, true)` clears the retained
//!   message (MQTT's zero-length retained publish). No topic publishes a literal `null`.
//! - After the transaction commits, call `Ctx::outbox_written()` so the bridge wakes at once
//!   (it also polls every few seconds, so a forgotten call only delays delivery).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

/// Queues a typed event (see [`crate::contract::events`]) under `events/<name>`.
pub fn emit<E: crate::contract::events::Event>(tx: &Connection, e: &E) -> rusqlite::Result<i64> {
    debug_assert!(
        crate::contract::catalog::events().any(|d| d.name == E::NAME),
        "event {} is not registered in contract::catalog::events",
        E::NAME
    );
    let payload = serde_json::to_value(e).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    event(tx, E::NAME, &payload)
}

/// Queues an event under `events/<name>` (relative to the site prefix).
pub fn event(tx: &Connection, name: &str, payload: &Value) -> rusqlite::Result<i64> {
    publish(tx, &format!("events/{name}"), payload, false)
}

/// Queues a message for any topic below the site prefix. `Value::Null` is an empty payload.
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

/// One queued message, as the bridge reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: i64,
    pub topic: String,
    /// The bytes to publish: the JSON text, or nothing for a `null` payload.
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// The oldest queued message with an id above `after`.
pub fn next_after(conn: &Connection, after: i64) -> rusqlite::Result<Option<Row>> {
    conn.query_row("SELECT id, topic, payload, retain FROM outbox WHERE id > ?1 ORDER BY id LIMIT 1", [after], |r| {
        let payload: String = r.get(2)?;
        Ok(Row {
            id: r.get(0)?,
            topic: r.get(1)?,
            payload: if payload == "null" { Vec::new() } else { payload.into_bytes() },
            retain: r.get(3)?,
        })
    })
    .optional()
}

/// The newest id queued so far (0 when empty).
pub fn last_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT coalesce(max(id), 0) FROM outbox", [], |r| r.get(0))
}

/// Removes a delivered message.
pub fn delete(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM outbox WHERE id = ?1", [id]).map(drop)
}

/// Drops undelivered messages older than `max_age_ms`, then the oldest beyond `max_rows`, so a
/// gateway whose broker is gone for weeks keeps a bounded file. Returns how many were dropped.
pub fn prune(conn: &Connection, max_age_ms: i64, max_rows: u64) -> rusqlite::Result<usize> {
    let old = conn.execute("DELETE FROM outbox WHERE ts < ?1", [super::now_ms() - max_age_ms])?;
    let over = conn.execute(
        "DELETE FROM outbox WHERE id <= (SELECT id FROM outbox ORDER BY id DESC LIMIT 1 OFFSET ?1)",
        [max_rows as i64],
    )?;
    Ok(old + over)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_come_back_in_order_and_null_is_an_empty_payload() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("g.db")).unwrap();
        let c = &store.conn;
        let a = event(c, "user.created", &json!({"user": "ann"})).unwrap();
        let b = publish(c, "supervisor/lock", &Value::Null, true).unwrap();
        assert_eq!(last_id(c).unwrap(), b);
        let first = next_after(c, 0).unwrap().unwrap();
        assert_eq!((first.id, first.topic.as_str(), first.retain), (a, "events/user.created", false));
        assert_eq!(first.payload, br#"{"user":"ann"}"#);
        let second = next_after(c, a).unwrap().unwrap();
        assert!(second.retain && second.payload.is_empty(), "{second:?}");
        assert_eq!(next_after(c, b).unwrap(), None);
        delete(c, a).unwrap();
        assert_eq!(depth(c).unwrap(), 1);
    }

    #[test]
    fn prune_keeps_the_newest_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("g.db")).unwrap();
        let c = &store.conn;
        for i in 0..10 {
            event(c, "n", &json!(i)).unwrap();
        }
        c.execute("UPDATE outbox SET ts = 0 WHERE payload = '0'", []).unwrap();
        assert_eq!(prune(c, 60_000, 5).unwrap(), 5);
        let first = next_after(c, 0).unwrap().unwrap();
        assert_eq!(first.payload, b"5");
        assert_eq!(depth(c).unwrap(), 5);
    }
}
