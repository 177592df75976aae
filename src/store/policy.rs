//! SQL for the policy model: roles, grants, role links of users and API keys, resources and
//! resource groups. The in-memory index that answers checks is built from what this module loads.

use crate::protocol::ApiError;
use rusqlite::{Connection, OptionalExtension, params};

/// Resolves role names to ids; every unknown name is reported at once.
pub fn role_ids(conn: &Connection, names: &[String]) -> Result<Vec<i64>, ApiError> {
    let mut ids = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    for name in names {
        let id: Option<i64> =
            conn.prepare_cached("SELECT id FROM roles WHERE name = ?1")?.query_row([name], |r| r.get(0)).optional()?;
        match id {
            Some(id) if !ids.contains(&id) => ids.push(id),
            Some(_) => {}
            None => missing.push(name.as_str()),
        }
    }
    if missing.is_empty() { Ok(ids) } else { Err(ApiError::not_found(format!("no role named {}", missing.join(", ")))) }
}

pub fn add_user_roles(tx: &Connection, user_id: i64, role_ids: &[i64]) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached("INSERT OR IGNORE INTO user_roles (user_id, role_id) VALUES (?1, ?2)")?;
    for id in role_ids {
        st.execute(params![user_id, id])?;
    }
    Ok(())
}

pub fn clear_user_roles(tx: &Connection, user_id: i64) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM user_roles WHERE user_id = ?1", [user_id])?;
    Ok(())
}

pub fn add_key_roles(tx: &Connection, key_id: i64, role_ids: &[i64]) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached("INSERT OR IGNORE INTO key_roles (key_id, role_id) VALUES (?1, ?2)")?;
    for id in role_ids {
        st.execute(params![key_id, id])?;
    }
    Ok(())
}

pub fn user_role_names(conn: &Connection, user_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = ?1 ORDER BY r.name",
    )?;
    let rows = st.query_map([user_id], |r| r.get(0))?;
    rows.collect()
}
