//! SQL for the policy model as the index reads it: [`load`] builds everything the in-memory index is
//! compiled from (roles, grants, accounts, resource groups); [`watch`] and [`apply_changes`] keep an
//! index up to date with what each transaction changed, read back from that transaction (see
//! [`watch`]); beside them, the role links of users and
//! API keys that the account methods change. Roles and grants as the `role.*` methods change them
//! are in [`super::roles`], the inventory and groups in [`super::resources`].

use crate::authz;
use crate::objects::history::{Entity, EntityKey};
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

/// Makes `conn` note, in a table of its own, every role, account (user or API key) and resource group
/// that any statement on it changes, whichever method or helper ran it: temporary triggers (they live
/// with the connection, in the `temp` schema, and are never stored in the database) on every table
/// the index is built from, foreign-key cascades included. The notes are written in the changing
/// transaction and so share its fate: a rollback takes them away with the change.
/// [`apply_changes`] reads them back (and clears them) inside the next policy transaction.
pub fn watch(conn: &Connection) -> rusqlite::Result<()> {
    let mut sql = String::from(
        "CREATE TEMP TABLE IF NOT EXISTS policy_changed (
            kind TEXT    NOT NULL,
            id   INTEGER NOT NULL DEFAULT 0,
            name TEXT    NOT NULL DEFAULT '',
            PRIMARY KEY (kind, id, name)
        ) WITHOUT ROWID;\n",
    );
    // (table, [(kind, id expression, name expression)] for the old or new row).
    type Notes = &'static [(&'static str, &'static str, &'static str)];
    let watched: [(&str, Notes); 8] = [
        ("users", &[("user", "id", "''")]),
        ("api_keys", &[("key", "id", "''")]),
        ("roles", &[("role", "id", "''")]),
        ("grants", &[("role", "coalesce(role_id, 0)", "''"), ("user", "coalesce(user_id, 0)", "''")]),
        ("user_roles", &[("user", "user_id", "''")]),
        ("key_roles", &[("key", "key_id", "''")]),
        ("resource_groups", &[("group", "id", "''"), ("group_name", "0", "name")]),
        ("group_members", &[("group", "group_id", "''")]),
    ];
    for (table, notes) in watched {
        for (event, rows) in [("INSERT", &["NEW"][..]), ("DELETE", &["OLD"][..]), ("UPDATE", &["OLD", "NEW"][..])] {
            sql.push_str(&format!(
                "CREATE TEMP TRIGGER IF NOT EXISTS policy_changed_{table}_{e} AFTER {event} ON main.{table} BEGIN\n",
                e = event.to_lowercase()
            ));
            for row in rows {
                for (kind, id, name) in notes {
                    let qualify = |expr: &str| {
                        // Column names get the row prefix; literals and function calls keep theirs.
                        expr.replace("role_id", &format!("{row}.role_id"))
                            .replace("user_id", &format!("{row}.user_id"))
                            .replace("key_id", &format!("{row}.key_id"))
                            .replace("group_id", &format!("{row}.group_id"))
                    };
                    let id = if *id == "id" { format!("{row}.id") } else { qualify(id) };
                    let name = if *name == "name" { format!("{row}.name") } else { (*name).to_owned() };
                    sql.push_str(&format!(
                        "  INSERT OR IGNORE INTO policy_changed (kind, id, name) VALUES ('{kind}', {id}, {name});\n"
                    ));
                }
            }
            sql.push_str("END;\n");
        }
    }
    conn.execute_batch(&sql)
}

/// What was changed since the last [`apply_changes`], as [`watch`] noted it.
#[derive(Debug, Default)]
pub struct Changed {
    users: Vec<i64>,
    keys: Vec<i64>,
    roles: Vec<i64>,
    groups: Vec<i64>,
    group_names: Vec<String>,
}

impl Changed {
    /// How many roles, accounts and groups were noted.
    pub fn len(&self) -> usize {
        self.users.len() + self.keys.len() + self.roles.len() + self.groups.len() + self.group_names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads (and clears) the notes [`watch`] made. Run inside the policy transaction: the clearing
/// commits or rolls back with it.
pub fn take_changes(conn: &Connection) -> rusqlite::Result<Changed> {
    let mut changed = Changed::default();
    let mut st = conn.prepare_cached("SELECT kind, id, name FROM temp.policy_changed")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(0)?;
        let id: i64 = r.get(1)?;
        match kind.as_str() {
            "user" => changed.users.push(id),
            "key" => changed.keys.push(id),
            "role" => changed.roles.push(id),
            "group" => changed.groups.push(id),
            _ => changed.group_names.push(r.get(2)?),
        }
    }
    conn.prepare_cached("DELETE FROM temp.policy_changed")?.execute([])?;
    Ok(changed)
}

/// Reads back every role, account and group in `changed` as the transaction now holds it and puts it
/// into `index` (or takes it out, if it is gone): afterwards `index` answers like
/// `Index::build(&load(conn))`, at the cost of what changed.
pub fn apply_changes(conn: &Connection, changed: &Changed, index: &mut authz::Index) -> rusqlite::Result<()> {
    apply_entities(&changed_entities(conn, changed)?, index);
    Ok(())
}

/// Every role, account and group in `changed` as the transaction now holds it (None: gone), keys of a
/// changed user included (a key lives no longer than its owner).
pub fn changed_entities(conn: &Connection, changed: &Changed) -> rusqlite::Result<Vec<(EntityKey, Option<Entity>)>> {
    use authz::SubjectKey;
    let mut out = Vec::with_capacity(changed.len());
    let mut keys = changed.keys.clone();
    for &id in changed.users.iter().filter(|&&id| id != 0) {
        out.push((EntityKey::Subject(SubjectKey::User(id)), user(conn, id)?.map(Entity::Subject)));
        let mut st = conn.prepare_cached("SELECT id FROM api_keys WHERE owner_id = ?1")?;
        for key in st.query_map([id], |r| r.get(0))? {
            keys.push(key?);
        }
    }
    keys.sort_unstable();
    keys.dedup();
    for id in keys {
        out.push((EntityKey::Subject(SubjectKey::Key(id)), key(conn, id)?.map(Entity::Subject)));
    }
    for &id in changed.roles.iter().filter(|&&id| id != 0) {
        out.push((EntityKey::Role(id), role(conn, id)?.map(Entity::Role)));
    }
    for name in changed_group_names(conn, changed)? {
        let members = group_members(conn, &name)?;
        out.push((
            EntityKey::Group(name.clone()),
            members.map(|members| Entity::Group(authz::Group { name, members })),
        ));
    }
    Ok(out.into_iter().map(|(k, e)| (k, e.map(Entity::normalized))).collect())
}

/// The names of the groups `changed` names, by name or by row id (a group deleted since has no
/// row and no name), sorted, without duplicates.
fn changed_group_names(conn: &Connection, changed: &Changed) -> rusqlite::Result<Vec<String>> {
    let mut names = changed.group_names.clone();
    for &id in &changed.groups {
        let name: Option<String> = conn
            .prepare_cached("SELECT name FROM resource_groups WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        names.extend(name);
    }
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

/// [`changed_entities`] for a change to most of the policy (a bulk load): the entities taken out of
/// `loaded` (what [`load`] read in this transaction, consumed: a bulk load's policy is not held twice)
/// instead of read one by one.
pub fn changed_entities_in(
    conn: &Connection,
    loaded: authz::Policy,
    changed: &Changed,
) -> rusqlite::Result<Vec<(EntityKey, Option<Entity>)>> {
    use authz::SubjectKey;
    use std::collections::{BTreeSet, HashMap};
    let users: BTreeSet<i64> = changed.users.iter().copied().filter(|&id| id != 0).collect();
    let mut keys: BTreeSet<i64> = changed.keys.iter().copied().collect();
    keys.extend(loaded.subjects.iter().filter(|s| s.owner.is_some_and(|o| users.contains(&o))).filter_map(|s| {
        match s.key {
            SubjectKey::Key(id) => Some(id),
            SubjectKey::User(_) => None,
        }
    }));
    let mut subjects: HashMap<SubjectKey, authz::Subject> = loaded.subjects.into_iter().map(|s| (s.key, s)).collect();
    let mut roles: HashMap<i64, authz::Role> = loaded.roles.into_iter().map(|r| (r.id, r)).collect();
    let mut groups: HashMap<String, authz::Group> = loaded.groups.into_iter().map(|g| (g.name.clone(), g)).collect();
    let mut out = Vec::with_capacity(changed.len());
    for key in users.iter().map(|&id| SubjectKey::User(id)).chain(keys.iter().map(|&id| SubjectKey::Key(id))) {
        out.push((EntityKey::Subject(key), subjects.remove(&key).map(Entity::Subject)));
    }
    drop(subjects);
    for &id in changed.roles.iter().filter(|&&id| id != 0) {
        out.push((EntityKey::Role(id), roles.remove(&id).map(Entity::Role)));
    }
    for name in changed_group_names(conn, changed)? {
        let group = groups.remove(&name).map(Entity::Group);
        out.push((EntityKey::Group(name), group));
    }
    Ok(out.into_iter().map(|(k, e)| (k, e.map(Entity::normalized))).collect())
}

/// Puts what [`changed_entities`] read into `index`.
pub fn apply_entities(entities: &[(EntityKey, Option<Entity>)], index: &mut authz::Index) {
    for (key, entity) in entities {
        match entity {
            Some(e) => e.apply(index),
            None => crate::objects::history::remove(key, index),
        }
    }
}

/// One user as [`load`] reads it, or None if there is no such user.
fn user(conn: &Connection, id: i64) -> rusqlite::Result<Option<authz::Subject>> {
    let row = conn
        .prepare_cached("SELECT name, enabled, expires_at, builtin FROM users WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((name, enabled, expires_at, superuser)) = row else { return Ok(None) };
    let roles = ids(conn, "SELECT role_id FROM user_roles WHERE user_id = ?1", id)?;
    let mut st = conn.prepare_cached(
        "SELECT id, permission, can_read, can_write, selector, effect FROM grants
         WHERE user_id = ?1 AND role_id IS NULL ORDER BY id",
    )?;
    let direct =
        st.query_map([id], super::roles::grant_row)?.filter_map(Result::transpose).collect::<Result<_, _>>()?;
    Ok(Some(authz::Subject {
        key: authz::SubjectKey::User(id),
        name,
        enabled,
        expires_at,
        roles,
        direct,
        superuser,
        owner: None,
    }))
}

/// One API key as [`load`] reads it (living no longer than its owner), or None.
fn key(conn: &Connection, id: i64) -> rusqlite::Result<Option<authz::Subject>> {
    let row = conn
        .prepare_cached(
            "SELECT k.name, u.enabled, k.expires_at, u.expires_at, k.master, k.owner_id
             FROM api_keys k JOIN users u ON u.id = k.owner_id WHERE k.id = ?1",
        )?
        .query_row([id], |r| {
            let expires = [r.get::<_, Option<i64>>(2)?, r.get::<_, Option<i64>>(3)?].into_iter().flatten().min();
            Ok((r.get(0)?, r.get(1)?, expires, r.get(4)?, r.get(5)?))
        })
        .optional()?;
    let Some((name, enabled, expires_at, superuser, owner)) = row else { return Ok(None) };
    Ok(Some(authz::Subject {
        key: authz::SubjectKey::Key(id),
        name,
        enabled,
        expires_at,
        roles: ids(conn, "SELECT role_id FROM key_roles WHERE key_id = ?1", id)?,
        direct: Vec::new(),
        superuser,
        owner: Some(owner),
    }))
}

/// One role with its grants, or None.
fn role(conn: &Connection, id: i64) -> rusqlite::Result<Option<authz::Role>> {
    let name: Option<String> =
        conn.prepare_cached("SELECT name FROM roles WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()?;
    let Some(name) = name else { return Ok(None) };
    Ok(Some(authz::Role { id, name, grants: role_grants(conn, id)? }))
}

/// The members of the group of this name, or None if there is no such group.
fn group_members(conn: &Connection, name: &str) -> rusqlite::Result<Option<Vec<String>>> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM resource_groups WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    let Some(id) = id else { return Ok(None) };
    let mut st = conn.prepare_cached("SELECT resource_id FROM group_members WHERE group_id = ?1")?;
    let members = st.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(Some(members))
}

fn ids(conn: &Connection, sql: &str, id: i64) -> rusqlite::Result<Vec<i64>> {
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map([id], |r| r.get(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{Access, Index, SubjectKey};

    /// Every question the index answers, asked of both, over every account the database holds.
    fn same(a: &Index, b: &Index, conn: &Connection) {
        let mut keys: Vec<SubjectKey> = Vec::new();
        for (sql, make) in [
            ("SELECT id FROM users", SubjectKey::User as fn(i64) -> SubjectKey),
            ("SELECT id FROM api_keys", SubjectKey::Key),
        ] {
            let mut st = conn.prepare(sql).unwrap();
            keys.extend(st.query_map([], |r| r.get(0)).unwrap().map(|id| make(id.unwrap())));
        }
        keys.extend([SubjectKey::User(999), SubjectKey::Key(999)]);
        assert_eq!(a.accounts(), b.accounts());
        for k in keys {
            assert_eq!(a.principal(k, 5), b.principal(k, 5), "{k:?}");
            assert_eq!(a.grants_of(k), b.grants_of(k), "{k:?}");
            for (perm, res) in [("tag.write", "line1/press3"), ("tag.write", "line2/x"), ("p", "*")] {
                assert_eq!(a.explain(k, perm, Access::Write, res, 5), b.explain(k, perm, Access::Write, res, 5));
            }
        }
    }

    /// Runs `sql` as a policy transaction would: the index follows by the noted changes only, and
    /// answers like one built from the whole database.
    fn step(conn: &mut Connection, index: &mut Index, sql: &str) {
        let tx = conn.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        let changed = take_changes(&tx).unwrap();
        assert!(!changed.is_empty(), "nothing noted for {sql}");
        // The history records the same entities whether they are read one by one or picked out of
        // a whole load (the bulk path).
        let mut one_by_one = changed_entities(&tx, &changed).unwrap();
        let mut picked = changed_entities_in(&tx, load(&tx).unwrap(), &changed).unwrap();
        one_by_one.sort_by(|a, b| a.0.cmp(&b.0));
        picked.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(one_by_one, picked, "{sql}");
        apply_changes(&tx, &changed, index).unwrap();
        let fresh = Index::build(&load(&tx).unwrap());
        tx.commit().unwrap();
        same(index, &fresh, conn);
    }

    #[test]
    fn the_changes_a_transaction_makes_are_noted_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::Store::open(&dir.path().join("g.db")).unwrap();
        let conn = &mut store.conn;
        watch(conn).unwrap();
        let mut index = Index::build(&load(conn).unwrap());
        let _ = take_changes(conn).unwrap();
        let now = "1";
        for sql in [
            format!("INSERT INTO users (id, name, created_at, updated_at) VALUES (10, 'ann', {now}, {now}), (11, 'bob', {now}, {now})"),
            format!("INSERT INTO roles (id, name, created_at) VALUES (10, 'ops', {now}), (11, 'maint', {now})"),
            "INSERT INTO grants (role_id, permission, can_read, can_write, selector, effect, created_at) VALUES (10, 'tag.write', 1, 1, 'line1/*', 'allow', 1)".into(),
            "INSERT INTO user_roles (user_id, role_id) VALUES (10, 10), (11, 10), (11, 11)".into(),
            "INSERT INTO grants (user_id, permission, can_read, can_write, selector, effect, created_at) VALUES (11, 'tag.write', 1, 1, 'line1/press3', 'deny', 1)".into(),
            format!("INSERT INTO api_keys (id, name, owner_id, digest, created_at) VALUES (5, 'hmi', 10, x'00', {now})"),
            "INSERT INTO key_roles (key_id, role_id) VALUES (5, 10)".into(),
            format!("INSERT INTO resources (id, kind, created_at, updated_at) VALUES ('line2/x', 'tag', {now}, {now}), ('line1/press3', 'tag', {now}, {now});
                     INSERT INTO resource_groups (id, name, created_at) VALUES (3, 'presses', {now})"),
            "INSERT INTO group_members (group_id, resource_id) VALUES (3, 'line2/x')".into(),
            "INSERT INTO grants (role_id, permission, can_read, can_write, selector, effect, created_at) VALUES (11, 'tag.write', 0, 1, '@presses', 'allow', 1)".into(),
            "UPDATE users SET enabled = 0 WHERE id = 10".into(),
            "UPDATE users SET enabled = 1, expires_at = 3 WHERE id = 10".into(),
            "UPDATE roles SET name = 'operators' WHERE id = 10".into(),
            "DELETE FROM user_roles WHERE user_id = 11 AND role_id = 10".into(),
            // Cascades: the resource leaves its group, the role leaves its holders, the user takes its keys.
            "DELETE FROM resources WHERE id = 'line2/x'".into(),
            "UPDATE resource_groups SET name = 'machines' WHERE id = 3".into(),
            "DELETE FROM roles WHERE id = 11".into(),
            "DELETE FROM resource_groups WHERE id = 3".into(),
            "DELETE FROM users WHERE id = 10".into(),
        ] {
            step(conn, &mut index, &sql);
        }
    }

    #[test]
    fn a_rolled_back_change_leaves_no_note() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::Store::open(&dir.path().join("g.db")).unwrap();
        watch(&store.conn).unwrap();
        let _ = take_changes(&store.conn).unwrap();
        let tx = store.conn.transaction().unwrap();
        tx.execute("INSERT INTO users (id, name, created_at, updated_at) VALUES (10, 'ann', 1, 1)", []).unwrap();
        drop(tx);
        assert!(take_changes(&store.conn).unwrap().is_empty());
    }
}
