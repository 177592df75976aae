//! Plant settings: key/value pairs the HMIs read, values stored as JSON text.

use crate::contract::system::Setting;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

fn setting(key: String, text: String, updated_at: i64) -> Setting {
    Setting { key, value: serde_json::from_str::<Value>(&text).unwrap_or(Value::Null), updated_at }
}

pub fn get(conn: &Connection, key: &str) -> rusqlite::Result<Option<Setting>> {
    conn.prepare_cached("SELECT value, updated_at FROM settings WHERE key = ?1")?
        .query_row([key], |r| Ok(setting(key.to_string(), r.get(0)?, r.get(1)?)))
        .optional()
}

/// Every setting, by key.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Setting>> {
    let mut st = conn.prepare_cached("SELECT key, value, updated_at FROM settings ORDER BY key")?;
    let rows = st.query_map([], |r| Ok(setting(r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Sets `key` to the JSON text `value`.
pub fn set(tx: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![key, value, super::now_ms()],
    )?;
    Ok(())
}
