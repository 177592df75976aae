//! SQL for roles and the grants held by roles or by users directly. What the index is built from is
//! read by [`super::policy::load`]; here: the rows the `role.*` methods look up, show and change.

use crate::authz::Grant;
use crate::contract::policy::{Effect, GrantAccess, GrantView, RoleSummary};
use rusqlite::{Connection, OptionalExtension, params};

/// One row of `roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRow {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// The built-in `supervisor` role: never changed or deleted.
    pub builtin: bool,
}

/// The role of this name.
pub fn find(conn: &Connection, name: &str) -> rusqlite::Result<Option<RoleRow>> {
    conn.prepare_cached("SELECT id, name, description, builtin FROM roles WHERE name = ?1")?
        .query_row([name], |r| {
            Ok(RoleRow { id: r.get(0)?, name: r.get(1)?, description: r.get(2)?, builtin: r.get(3)? })
        })
        .optional()
}

/// Adds a role without grants; its id.
pub fn insert(tx: &Connection, name: &str, description: Option<&str>, now: i64) -> rusqlite::Result<i64> {
    tx.prepare_cached("INSERT INTO roles (name, description, created_at) VALUES (?1, ?2, ?3)")?.execute(params![
        name,
        description,
        now
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Deletes a role; its grants and its links to users and keys go with it (foreign keys cascade).
pub fn delete(tx: &Connection, role_id: i64) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM roles WHERE id = ?1", [role_id]).map(drop)
}

/// Every role with its grant and user counts, by name.
pub fn summaries(conn: &Connection) -> rusqlite::Result<Vec<RoleSummary>> {
    let mut st = conn.prepare_cached(
        "SELECT r.name, r.description, r.builtin,
                (SELECT count(*) FROM grants g WHERE g.role_id = r.id),
                (SELECT count(*) FROM user_roles u WHERE u.role_id = r.id)
         FROM roles r ORDER BY r.name",
    )?;
    let rows = st.query_map([], |r| {
        Ok(RoleSummary {
            name: r.get(0)?,
            description: r.get(1)?,
            builtin: r.get(2)?,
            grants: r.get(3)?,
            users: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// The users holding a role, by name.
pub fn user_names(conn: &Connection, role_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT u.name FROM user_roles ur JOIN users u ON u.id = ur.user_id WHERE ur.role_id = ?1 ORDER BY u.name",
    )?;
    let rows = st.query_map([role_id], |r| r.get(0))?;
    rows.collect()
}

/// The API keys holding a role, by name.
pub fn key_names(conn: &Connection, role_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT k.name FROM key_roles kr JOIN api_keys k ON k.id = kr.key_id WHERE kr.role_id = ?1 ORDER BY k.name",
    )?;
    let rows = st.query_map([role_id], |r| r.get(0))?;
    rows.collect()
}

/// Who holds a grant: a role, or one user directly (by row id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Role(i64),
    User(i64),
}

impl Holder {
    /// The column of `grants` that names this holder, and the id in it. The column is one of two
    /// fixed names, never text from a request.
    pub(super) fn column(self) -> (&'static str, i64) {
        match self {
            Holder::Role(id) => ("role_id", id),
            Holder::User(id) => ("user_id", id),
        }
    }
}

/// The grants of a holder, as the engine reads them, oldest first. A selector the engine cannot
/// read (written by an older version) is left out, with a warning.
pub fn grants(conn: &Connection, holder: Holder) -> rusqlite::Result<Vec<Grant>> {
    let (column, id) = holder.column();
    let mut st = conn.prepare_cached(&format!(
        "SELECT id, permission, can_read, can_write, selector, effect FROM grants WHERE {column} = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([id], grant_row)?;
    rows.filter_map(Result::transpose).collect()
}

/// The grants of a holder as people read them (`role.show`, `user.show`), oldest first. The
/// selector is shown as stored, whether the engine can read it or not.
pub fn grant_views(conn: &Connection, holder: Holder) -> rusqlite::Result<Vec<GrantView>> {
    let (column, id) = holder.column();
    let mut st = conn.prepare_cached(&format!(
        "SELECT id, permission, can_read, can_write, selector, effect FROM grants WHERE {column} = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([id], |r| {
        let effect: String = r.get(5)?;
        Ok(GrantView {
            id: r.get(0)?,
            permission: r.get(1)?,
            access: GrantAccess::of(r.get(2)?, r.get(3)?),
            resource: r.get(4)?,
            effect: if effect == "deny" { Effect::Deny } else { Effect::Allow },
        })
    })?;
    rows.collect()
}

/// Whether the holder already has this very grant (permission, accesses, selector and effect).
pub fn holds(conn: &Connection, holder: Holder, g: &Grant) -> rusqlite::Result<bool> {
    let (column, id) = holder.column();
    let n: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM grants WHERE {column} = ?1 AND permission = ?2 AND can_read = ?3
         AND can_write = ?4 AND selector = ?5 AND effect = ?6"
        ))?
        .query_row(params![id, g.permission, g.read, g.write, g.selector.as_text(), g.effect.as_str()], |r| r.get(0))?;
    Ok(n > 0)
}

/// Adds a grant to a holder (the grant's own `id` is ignored); the new grant's id.
pub fn insert_grant(tx: &Connection, holder: Holder, g: &Grant, now: i64) -> rusqlite::Result<i64> {
    let (column, id) = holder.column();
    tx.prepare_cached(&format!(
        "INSERT INTO grants ({column}, permission, can_read, can_write, selector, effect, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))?
    .execute(params![id, g.permission, g.read, g.write, g.selector.as_text(), g.effect.as_str(), now])?;
    Ok(tx.last_insert_rowid())
}

/// Removes one grant of a holder; whether it was there.
pub fn delete_grant(tx: &Connection, holder: Holder, grant_id: i64) -> rusqlite::Result<bool> {
    let (column, id) = holder.column();
    let n = tx
        .prepare_cached(&format!("DELETE FROM grants WHERE {column} = ?1 AND id = ?2"))?
        .execute(params![id, grant_id])?;
    Ok(n > 0)
}

/// One grant row as the engine reads it: `SELECT id, permission, can_read, can_write, selector, effect`.
/// A selector the engine cannot read (written by an older version) is left out, with a warning.
pub(super) fn grant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<crate::authz::Grant>> {
    let text: String = r.get(4)?;
    // Stored rows keep the rules they were written under: a deny written then must keep denying.
    let Ok(selector) = crate::authz::Selector::parse_stored(&text) else {
        tracing::warn!("grant {} has an unreadable selector {text:?}; ignored", r.get::<_, i64>(0)?);
        return Ok(None);
    };
    let effect: String = r.get(5)?;
    Ok(Some(crate::authz::Grant {
        id: r.get(0)?,
        permission: r.get(1)?,
        read: r.get(2)?,
        write: r.get(3)?,
        selector,
        effect: if effect == "deny" { crate::authz::Effect::Deny } else { crate::authz::Effect::Allow },
    }))
}
