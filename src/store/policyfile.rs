//! SQL for policy as code (`policy.*`): the whole policy read as one document in one pass per
//! table (an export of 100 000 accounts is a handful of statements, not one per account), and the
//! few single-row changes the other methods never needed (a role's or a group's description, a
//! resource's kind, a setting removed).

use crate::contract::policy::GrantAccess;
use crate::contract::policyfile::{GrantEntry, GroupEntry, PolicyDoc, ResourceEntry, RoleEntry, UserEntry, VERSION};
use rusqlite::{Connection, params};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// How a stored grant is written in a document: the access as `role.show` shows it.
pub fn access_text(read: bool, write: bool) -> &'static str {
    match GrantAccess::of(read, write) {
        GrantAccess::ReadWrite => "read,write",
        GrantAccess::Read => "read",
        GrantAccess::Write => "write",
    }
}

/// A value with the keys of every object in it sorted, as a TOML reader hands them over: so the
/// same setting exports as the same text whatever order it was written in.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The gateway's whole policy as a document, every section present, maps by key and lists sorted.
pub fn read(conn: &Connection) -> rusqlite::Result<PolicyDoc> {
    let mut settings = BTreeMap::new();
    for s in super::settings::list(conn)? {
        settings.insert(s.key, sorted(s.value));
    }

    let mut resources = BTreeMap::new();
    let mut st = conn.prepare_cached("SELECT id, kind, attributes FROM resources")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let attributes: Option<String> = r.get(2)?;
        let attributes = match attributes.and_then(|a| serde_json::from_str(&a).ok()).map(sorted) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        resources.insert(r.get::<_, String>(0)?, ResourceEntry { kind: r.get(1)?, attributes });
    }

    let mut groups: BTreeMap<String, GroupEntry> = BTreeMap::new();
    let mut st = conn.prepare_cached(
        "SELECT g.name, g.description, m.resource_id FROM resource_groups g
         LEFT JOIN group_members m ON m.group_id = g.id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let g = groups.entry(r.get(0)?).or_insert_with(|| GroupEntry { description: None, members: Vec::new() });
        g.description = r.get(1)?;
        if let Some(m) = r.get::<_, Option<String>>(2)? {
            g.members.push(m);
        }
    }
    for g in groups.values_mut() {
        g.members.sort_unstable();
    }

    let mut role_grants: HashMap<i64, Vec<GrantEntry>> = HashMap::new();
    let mut user_grants: HashMap<i64, Vec<GrantEntry>> = HashMap::new();
    let mut st =
        conn.prepare_cached("SELECT role_id, user_id, permission, can_read, can_write, selector, effect FROM grants")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let g = GrantEntry {
            permission: r.get(2)?,
            access: access_text(r.get(3)?, r.get(4)?).into(),
            resource: r.get(5)?,
            effect: r.get(6)?,
        };
        match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?) {
            (Some(role), _) => role_grants.entry(role).or_default().push(g),
            (None, Some(user)) => user_grants.entry(user).or_default().push(g),
            (None, None) => {}
        }
    }

    let mut roles = BTreeMap::new();
    let mut role_names: HashMap<i64, String> = HashMap::new();
    let mut st = conn.prepare_cached("SELECT id, name, description, builtin FROM roles")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let name: String = r.get(1)?;
        let mut grants = role_grants.remove(&id).unwrap_or_default();
        grants.sort_unstable();
        role_names.insert(id, name.clone());
        roles.insert(name, RoleEntry { description: r.get(2)?, builtin: r.get(3)?, grants });
    }

    let mut user_roles: HashMap<i64, Vec<String>> = HashMap::new();
    let mut st = conn.prepare_cached("SELECT user_id, role_id FROM user_roles")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        if let Some(name) = role_names.get(&r.get::<_, i64>(1)?) {
            user_roles.entry(r.get(0)?).or_default().push(name.clone());
        }
    }
    let mut users = BTreeMap::new();
    let mut st =
        conn.prepare_cached("SELECT id, name, display_name, enabled, expires_at, source, builtin FROM users")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let mut roles = user_roles.remove(&id).unwrap_or_default();
        roles.sort_unstable();
        let mut grants = user_grants.remove(&id).unwrap_or_default();
        grants.sort_unstable();
        let entry = UserEntry {
            display_name: r.get(2)?,
            enabled: r.get(3)?,
            expires_at: r.get(4)?,
            source: r.get(5)?,
            builtin: r.get(6)?,
            roles,
            grants,
        };
        users.insert(r.get::<_, String>(1)?, entry);
    }

    Ok(PolicyDoc {
        version: VERSION,
        settings: Some(settings),
        resources: Some(resources),
        groups: Some(groups),
        roles: Some(roles),
        users: Some(users),
    })
}

/// Removes a setting; whether it was there.
pub fn delete_setting(tx: &Connection, key: &str) -> rusqlite::Result<bool> {
    Ok(tx.execute("DELETE FROM settings WHERE key = ?1", [key])? > 0)
}

/// Changes a resource's kind and attributes.
pub fn update_resource(
    tx: &Connection,
    id: &str,
    kind: &str,
    attributes: &Map<String, Value>,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE resources SET kind = ?2, attributes = ?3, updated_at = ?4 WHERE id = ?1")?
        .execute(params![id, kind, Value::Object(attributes.clone()).to_string(), now])
        .map(drop)
}

/// Changes a role's description.
pub fn set_role_description(tx: &Connection, role_id: i64, description: Option<&str>) -> rusqlite::Result<()> {
    tx.execute("UPDATE roles SET description = ?2 WHERE id = ?1", params![role_id, description]).map(drop)
}

/// Changes a resource group's description.
pub fn set_group_description(tx: &Connection, group_id: i64, description: Option<&str>) -> rusqlite::Result<()> {
    tx.execute("UPDATE resource_groups SET description = ?2 WHERE id = ?1", params![group_id, description]).map(drop)
}

/// Every role's id by name (as stored).
pub fn role_ids(conn: &Connection) -> rusqlite::Result<HashMap<String, i64>> {
    let mut st = conn.prepare_cached("SELECT name, id FROM roles")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// The grants of a holder as a document writes them, with their ids.
pub fn grants_of(conn: &Connection, holder: super::roles::Holder) -> rusqlite::Result<Vec<(i64, GrantEntry)>> {
    let (column, id) = holder.column();
    let mut st = conn.prepare_cached(&format!(
        "SELECT id, permission, can_read, can_write, selector, effect FROM grants WHERE {column} = ?1"
    ))?;
    let rows = st.query_map([id], |r| {
        Ok((
            r.get(0)?,
            GrantEntry {
                permission: r.get(1)?,
                access: access_text(r.get(2)?, r.get(3)?).into(),
                resource: r.get(4)?,
                effect: r.get(5)?,
            },
        ))
    })?;
    rows.collect()
}
