//! SQL for the plant's inventory (`resources`) and resource groups (`resource_groups`,
//! `group_members`). Attributes are kept as JSON text; what the index needs of groups is read by
//! [`super::policy::load`].

use crate::contract::policy::{GroupSummary, ResourceView};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

/// The kind of a resource, if the inventory holds it.
pub fn kind_of(conn: &Connection, id: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT kind FROM resources WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()
}

/// Whether the inventory holds a resource.
pub fn exists(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    kind_of(conn, id).map(|k| k.is_some())
}

/// Adds a resource.
pub fn insert(
    tx: &Connection,
    id: &str,
    kind: &str,
    attributes: &Map<String, Value>,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO resources (id, kind, attributes, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![id, kind, Value::Object(attributes.clone()).to_string(), now])
    .map(drop)
}

/// Replaces a resource's attributes.
pub fn set_attributes(tx: &Connection, id: &str, attributes: &Map<String, Value>, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE resources SET attributes = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, Value::Object(attributes.clone()).to_string(), now])
        .map(drop)
}

/// Removes a resource (and its group memberships); whether it was there.
pub fn delete(tx: &Connection, id: &str) -> rusqlite::Result<bool> {
    Ok(tx.execute("DELETE FROM resources WHERE id = ?1", [id])? > 0)
}

/// The inventory, by id: all of it, or of one kind, or in one group.
pub fn list(conn: &Connection, kind: Option<&str>, group: Option<&str>) -> rusqlite::Result<Vec<ResourceView>> {
    let mut st = conn.prepare_cached(
        "SELECT r.id, r.kind, r.attributes,
                (SELECT group_concat(g.name, ',') FROM group_members m JOIN resource_groups g ON g.id = m.group_id
                  WHERE m.resource_id = r.id)
         FROM resources r
         WHERE (?1 IS NULL OR r.kind = ?1)
           AND (?2 IS NULL OR r.id IN (SELECT m.resource_id FROM group_members m
                                       JOIN resource_groups g ON g.id = m.group_id WHERE g.name = ?2))
         ORDER BY r.id",
    )?;
    let rows = st.query_map(params![kind, group], |r| {
        let attributes: Option<String> = r.get(2)?;
        let groups: Option<String> = r.get(3)?;
        Ok(ResourceView {
            id: r.get(0)?,
            kind: r.get(1)?,
            // Group names cannot hold a comma, so the concatenation splits back exactly.
            groups: groups.map(|g| g.split(',').map(str::to_string).collect()).unwrap_or_default(),
            attributes: attributes.and_then(|a| serde_json::from_str(&a).ok()).unwrap_or_default(),
        })
    })?;
    rows.collect()
}

/// The id of the group of this name.
pub fn group_id(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM resource_groups WHERE name = ?1")?.query_row([name], |r| r.get(0)).optional()
}

/// Adds an empty group.
pub fn insert_group(tx: &Connection, name: &str, description: Option<&str>, now: i64) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO resource_groups (name, description, created_at) VALUES (?1, ?2, ?3)",
        params![name, description, now],
    )?;
    Ok(tx.last_insert_rowid())
}

/// The resource ids in a group.
pub fn members(conn: &Connection, group_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare_cached("SELECT resource_id FROM group_members WHERE group_id = ?1")?;
    let rows = st.query_map([group_id], |r| r.get(0))?;
    rows.collect()
}

/// Deletes a group (its members stay in the inventory).
pub fn delete_group(tx: &Connection, group_id: i64) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM resource_groups WHERE id = ?1", [group_id]).map(drop)
}

/// Every group with its member count, by name.
pub fn groups(conn: &Connection) -> rusqlite::Result<Vec<GroupSummary>> {
    let mut st = conn.prepare_cached(
        "SELECT g.name, g.description, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)
         FROM resource_groups g ORDER BY g.name",
    )?;
    let rows =
        st.query_map([], |r| Ok(GroupSummary { name: r.get(0)?, description: r.get(1)?, members: r.get(2)? }))?;
    rows.collect()
}

/// Puts a resource into a group; whether it was not there yet.
pub fn add_member(tx: &Connection, group_id: i64, resource_id: &str) -> rusqlite::Result<bool> {
    let n = tx
        .prepare_cached("INSERT OR IGNORE INTO group_members (group_id, resource_id) VALUES (?1, ?2)")?
        .execute(params![group_id, resource_id])?;
    Ok(n > 0)
}

/// Takes a resource out of a group; whether it was in it.
pub fn remove_member(tx: &Connection, group_id: i64, resource_id: &str) -> rusqlite::Result<bool> {
    let n = tx
        .prepare_cached("DELETE FROM group_members WHERE group_id = ?1 AND resource_id = ?2")?
        .execute(params![group_id, resource_id])?;
    Ok(n > 0)
}
