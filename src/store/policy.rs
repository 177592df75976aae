//! SQL for the policy model as the index reads it: [`load`] builds everything the in-memory index is
//! compiled from (roles, grants, accounts, resource groups); beside it, the role links of users and
//! API keys that the account methods change. Roles and grants as the `role.*` methods change them
//! are in [`super::roles`], the inventory and groups in [`super::resources`].

use crate::authz;
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

/// Takes roles from a user (those it does not hold are passed over).
pub fn remove_user_roles(tx: &Connection, user_id: i64, role_ids: &[i64]) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached("DELETE FROM user_roles WHERE user_id = ?1 AND role_id = ?2")?;
    for id in role_ids {
        st.execute(params![user_id, id])?;
    }
    Ok(())
}

/// The id of the API key of this name.
pub fn api_key_id(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM api_keys WHERE name = ?1")?.query_row([name], |r| r.get(0)).optional()
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

/// The grants of one role.
pub fn role_grants(conn: &Connection, role_id: i64) -> rusqlite::Result<Vec<authz::Grant>> {
    super::roles::grants(conn, super::roles::Holder::Role(role_id))
}

/// Loads everything the authorization index is built from. Runs inside the transaction that changed
/// the policy, so the new index reflects exactly what is being committed.
pub fn load(conn: &Connection) -> rusqlite::Result<authz::Policy> {
    use std::collections::HashMap;
    let mut role_grants: HashMap<i64, Vec<authz::Grant>> = HashMap::new();
    let mut user_grants: HashMap<i64, Vec<authz::Grant>> = HashMap::new();
    let mut st = conn.prepare_cached(
        "SELECT id, permission, can_read, can_write, selector, effect, role_id, user_id FROM grants ORDER BY id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let Some(grant) = super::roles::grant_row(r)? else { continue };
        match (r.get::<_, Option<i64>>(6)?, r.get::<_, Option<i64>>(7)?) {
            (Some(role), _) => role_grants.entry(role).or_default().push(grant),
            (None, Some(user)) => user_grants.entry(user).or_default().push(grant),
            (None, None) => {}
        }
    }
    let mut roles = Vec::new();
    let mut st = conn.prepare_cached("SELECT id, name FROM roles ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        roles.push(authz::Role { id, name: r.get(1)?, grants: role_grants.remove(&id).unwrap_or_default() });
    }
    let links = |sql: &str| -> rusqlite::Result<HashMap<i64, Vec<i64>>> {
        let mut map: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut st = conn.prepare_cached(sql)?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            map.entry(r.get(0)?).or_default().push(r.get(1)?);
        }
        Ok(map)
    };
    let mut user_roles = links("SELECT user_id, role_id FROM user_roles")?;
    let mut key_roles = links("SELECT key_id, role_id FROM key_roles")?;
    let mut subjects = Vec::new();
    // The built-in admin is the one builtin user, and a superuser.
    let mut st = conn.prepare_cached("SELECT id, name, enabled, expires_at, builtin FROM users")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        subjects.push(authz::Subject {
            key: authz::SubjectKey::User(id),
            name: r.get(1)?,
            enabled: r.get(2)?,
            expires_at: r.get(3)?,
            roles: user_roles.remove(&id).unwrap_or_default(),
            direct: user_grants.remove(&id).unwrap_or_default(),
            superuser: r.get(4)?,
            owner: None,
        });
    }
    // A key lives no longer than its owner: disabled with it, expired at the earlier of both dates.
    let mut st = conn.prepare_cached(
        "SELECT k.id, k.name, u.enabled, k.expires_at, u.expires_at, k.master, k.owner_id
         FROM api_keys k JOIN users u ON u.id = k.owner_id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let expires = [r.get::<_, Option<i64>>(3)?, r.get::<_, Option<i64>>(4)?].into_iter().flatten().min();
        subjects.push(authz::Subject {
            key: authz::SubjectKey::Key(id),
            name: r.get(1)?,
            enabled: r.get(2)?,
            expires_at: expires,
            roles: key_roles.remove(&id).unwrap_or_default(),
            direct: Vec::new(),
            superuser: r.get(5)?,
            owner: Some(r.get(6)?),
        });
    }
    let mut groups: Vec<authz::Group> = Vec::new();
    let mut st = conn.prepare_cached(
        "SELECT g.name, m.resource_id FROM resource_groups g LEFT JOIN group_members m ON m.group_id = g.id
         ORDER BY g.name",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let name: String = r.get(0)?;
        let member: Option<String> = r.get(1)?;
        if groups.last().is_none_or(|g| g.name != name) {
            groups.push(authz::Group { name, members: Vec::new() });
        }
        if let (Some(m), Some(g)) = (member, groups.last_mut()) {
            g.members.push(m);
        }
    }
    Ok(authz::Policy { roles, subjects, groups })
}
