//! SQL for objects (`object.*`), their explicit readers, the policy epoch and the policy's history
//! (the versions [`crate::objects::history`] replays). Everything here runs inside the caller's
//! transaction.

use crate::authz::SubjectKey;
use crate::objects::history::{Entity, EntityKey, Version};
use rusqlite::{Connection, OptionalExtension, params};

/// An object as stored, with its owner's name.
#[derive(Debug, Clone)]
pub struct ObjectRow {
    pub id: i64,
    pub kind: String,
    pub resource: String,
    pub name: String,
    /// JSON text.
    pub data: Option<String>,
    pub owner_id: i64,
    pub owner: String,
    pub epoch: i64,
    pub created_at: i64,
}

const COLUMNS: &str = "o.id, o.kind, o.resource, o.name, o.data, o.owner_id, u.name, o.epoch, o.created_at";

fn object_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectRow> {
    Ok(ObjectRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        resource: r.get(2)?,
        name: r.get(3)?,
        data: r.get(4)?,
        owner_id: r.get(5)?,
        owner: r.get(6)?,
        epoch: r.get(7)?,
        created_at: r.get(8)?,
    })
}

/// The current policy epoch.
pub fn epoch(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT epoch FROM policy_epoch WHERE id = 1")?.query_row([], |r| r.get(0))
}

fn bump(tx: &Connection) -> rusqlite::Result<i64> {
    tx.prepare_cached("UPDATE policy_epoch SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch")?
        .query_row([], |r| r.get(0))
}

fn to_json(e: &Entity) -> rusqlite::Result<String> {
    serde_json::to_string(e).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn open_state(tx: &Connection, kind: &str, key: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT state FROM policy_history WHERE kind = ?1 AND key = ?2 AND to_epoch IS NULL")?
        .query_row(params![kind, key], |r| r.get(0))
        .optional()
}

/// Records a policy change: bumps the epoch and writes the new version of every entity it changed
/// (None: the entity is gone), then prunes the history no live object can ask about. An entity whose
/// state is what its open version says already (a display name changed, a row rewritten as it was)
/// is passed over, and a change that changed nothing the index is built from bumps nothing. Returns
/// the epoch after the change. Runs in the changing transaction.
pub fn record_change(tx: &Connection, changed: &[(EntityKey, Option<Entity>)]) -> rusqlite::Result<i64> {
    // Written as found, the epoch bumped at the first real change: a bulk load's hundred thousand
    // versions are never all held in memory at once.
    let mut bumped = None;
    for (key, entity) in changed {
        let (kind, key) = key.columns();
        let state = entity.as_ref().map(to_json).transpose()?;
        if open_state(tx, kind, &key)? == state {
            continue;
        }
        let epoch = match bumped {
            Some(epoch) => epoch,
            None => *bumped.insert(bump(tx)?),
        };
        tx.prepare_cached("UPDATE policy_history SET to_epoch = ?3 WHERE kind = ?1 AND key = ?2 AND to_epoch IS NULL")?
            .execute(params![kind, key, epoch])?;
        if let Some(state) = state {
            tx.prepare_cached(
                "INSERT INTO policy_history (kind, key, from_epoch, to_epoch, state) VALUES (?1, ?2, ?3, NULL, ?4)",
            )?
            .execute(params![kind, key, epoch, state])?;
        }
    }
    match bumped {
        None => epoch(tx),
        Some(epoch) => {
            prune_history(tx)?;
            Ok(epoch)
        }
    }
}

/// Makes the open versions say what the policy tables hold (`current`: every entity, normalized):
/// on the first start after the migration it writes them all; afterwards it finds nothing to do
/// unless a change bypassed the policy transaction. Returns how many entities it wrote.
///
/// A merge of the two sides in `(kind, key)` order, one open version in memory at a time: run at
/// every start, it must not hold a second copy of a plant's policy.
pub fn reconcile(tx: &Connection, current: &[Entity]) -> rusqlite::Result<usize> {
    let mut ours: Vec<((&'static str, String), &Entity)> = current.iter().map(|e| (e.key().columns(), e)).collect();
    ours.sort_by(|a, b| a.0.cmp(&b.0));
    let mut changed: Vec<(EntityKey, Option<Entity>)> = Vec::new();
    let mut st = tx.prepare_cached(
        "SELECT kind, key, state FROM policy_history WHERE to_epoch IS NULL ORDER BY kind COLLATE BINARY, key COLLATE BINARY",
    )?;
    let mut rows = st.query([])?;
    let mut next = ours.iter().peekable();
    let mut differs = |e: &Entity, stored: Option<&str>| -> rusqlite::Result<()> {
        if stored != Some(to_json(e)?.as_str()) {
            changed.push((e.key(), Some(e.clone())));
        }
        Ok(())
    };
    let mut gone: Vec<(String, String)> = Vec::new();
    while let Some(r) = rows.next()? {
        let stored = (r.get::<_, String>(0)?, r.get::<_, String>(1)?);
        while let Some(((kind, key), e)) = next.peek() {
            if (*kind, key.as_str()) < (stored.0.as_str(), stored.1.as_str()) {
                differs(e, None)?;
                next.next();
            } else {
                break;
            }
        }
        match next.peek() {
            Some(((kind, key), e)) if (*kind, key.as_str()) == (stored.0.as_str(), stored.1.as_str()) => {
                differs(e, Some(r.get_ref(2)?.as_str()?))?;
                next.next();
            }
            _ => gone.push(stored),
        }
    }
    for (_, e) in next {
        differs(e, None)?;
    }
    for (kind, key) in gone {
        let key = match kind.as_str() {
            "user" => key.parse().ok().map(|id| EntityKey::Subject(SubjectKey::User(id))),
            "key" => key.parse().ok().map(|id| EntityKey::Subject(SubjectKey::Key(id))),
            "role" => key.parse().ok().map(EntityKey::Role),
            _ => Some(EntityKey::Group(key)),
        };
        changed.extend(key.map(|k| (k, None)));
    }
    drop(rows);
    drop(st);
    if !changed.is_empty() {
        record_change(tx, &changed)?;
    }
    Ok(changed.len())
}

/// Deletes the versions that ended at or before the oldest live object's epoch (all that ended,
/// when there are no objects).
pub fn prune_history(tx: &Connection) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "DELETE FROM policy_history WHERE to_epoch IS NOT NULL AND to_epoch <=
            coalesce((SELECT min(epoch) FROM objects), (SELECT epoch + 1 FROM policy_epoch WHERE id = 1))",
    )?
    .execute([])
}

/// How many versions the history holds (open and closed).
pub fn history_rows(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    conn.prepare_cached("SELECT count(*), count(to_epoch) FROM policy_history")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
}

/// Every version that may answer about an epoch at or after `from` (what [`crate::objects::history::replay`]
/// needs for the live objects' epochs).
pub fn versions(conn: &Connection, from: i64) -> rusqlite::Result<Vec<Version>> {
    let mut st = conn.prepare_cached(
        "SELECT from_epoch, to_epoch, state FROM policy_history WHERE to_epoch IS NULL OR to_epoch > ?1",
    )?;
    let mut rows = st.query([from])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let text: String = r.get(2)?;
        let entity: Entity = serde_json::from_str(&text)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?;
        out.push(Version { entity, from: r.get(0)?, to: r.get(1)? });
    }
    Ok(out)
}

/// Live objects per epoch, oldest epoch first.
pub fn epoch_counts(conn: &Connection) -> rusqlite::Result<Vec<(i64, u64)>> {
    let mut st = conn.prepare_cached("SELECT epoch, count(*) FROM objects GROUP BY epoch ORDER BY epoch")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Whether some grant (of a role or a user) names permission `kind`.
pub fn kind_granted(conn: &Connection, kind: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM grants WHERE permission = ?1)")?.query_row([kind], |r| r.get(0))
}

/// (objects owned by `owner`, objects in all).
pub fn counts(conn: &Connection, owner: i64) -> rusqlite::Result<(u64, u64)> {
    conn.prepare_cached("SELECT count(*) FILTER (WHERE owner_id = ?1), count(*) FROM objects")?
        .query_row([owner], |r| Ok((r.get(0)?, r.get(1)?)))
}

#[allow(clippy::too_many_arguments)]
pub fn insert(
    tx: &Connection,
    kind: &str,
    resource: &str,
    name: &str,
    data: Option<&str>,
    owner: i64,
    epoch: i64,
    now: i64,
) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO objects (kind, resource, name, data, owner_id, epoch, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
    )?
    .query_row(params![kind, resource, name, data, owner, epoch, now], |r| r.get(0))
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<ObjectRow>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM objects o JOIN users u ON u.id = o.owner_id WHERE o.id = ?1"))?
        .query_row([id], object_row)
        .optional()
}

/// What `object.list` filters by.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub kind: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub owner: Option<i64>,
}

/// Objects with ids above `after`, oldest first, at most `limit`.
pub fn page(conn: &Connection, f: &Filter<'_>, after: i64, limit: u32) -> rusqlite::Result<Vec<ObjectRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM objects o JOIN users u ON u.id = o.owner_id
         WHERE o.id > ?1 AND (?2 IS NULL OR o.kind = ?2) AND (?3 IS NULL OR o.resource = ?3)
           AND (?4 IS NULL OR o.owner_id = ?4)
         ORDER BY o.id LIMIT ?5"
    ))?;
    let rows = st.query_map(params![after, f.kind, f.resource, f.owner, limit], object_row)?;
    rows.collect()
}

/// Deletes one object (its explicit readers go with it). Returns its epoch, if it was there.
pub fn delete(tx: &Connection, id: i64) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached("DELETE FROM objects WHERE id = ?1 RETURNING epoch")?.query_row([id], |r| r.get(0)).optional()
}

/// An object deleted with its owner.
#[derive(Debug, Clone)]
pub struct Gone {
    pub id: i64,
    pub kind: String,
    pub resource: String,
    pub epoch: i64,
}

/// Deletes every object `owner` owns (their explicit readers go with them).
pub fn delete_owned(tx: &Connection, owner: i64) -> rusqlite::Result<Vec<Gone>> {
    let mut st = tx.prepare_cached("DELETE FROM objects WHERE owner_id = ?1 RETURNING id, kind, resource, epoch")?;
    let rows =
        st.query_map([owner], |r| Ok(Gone { id: r.get(0)?, kind: r.get(1)?, resource: r.get(2)?, epoch: r.get(3)? }))?;
    let mut out: Vec<Gone> = rows.collect::<Result<_, _>>()?;
    out.sort_by_key(|g| g.id);
    Ok(out)
}

/// Gives every object of `owner` to `to`; returns how many.
pub fn reassign(tx: &Connection, owner: i64, to: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached("UPDATE objects SET owner_id = ?2 WHERE owner_id = ?1")?.execute([owner, to])
}

/// Whether `user` was given object `id`.
pub fn is_reader(conn: &Connection, id: i64, user: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM object_readers WHERE object_id = ?1 AND user_id = ?2)")?
        .query_row([id, user], |r| r.get(0))
}

/// The users given object `id`: (id, name), by id.
pub fn readers(conn: &Connection, id: i64) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT u.id, u.name FROM object_readers r JOIN users u ON u.id = r.user_id WHERE r.object_id = ?1 ORDER BY u.id",
    )?;
    let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Gives object `id` to `user`; false if it had it already.
pub fn add_reader(tx: &Connection, id: i64, user: i64, now: i64, by: &str) -> rusqlite::Result<bool> {
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO object_readers (object_id, user_id, granted_at, granted_by) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, user, now, by])?;
    Ok(n == 1)
}

/// Takes object `id` from `user`; false if it did not have it.
pub fn remove_reader(tx: &Connection, id: i64, user: i64) -> rusqlite::Result<bool> {
    let n =
        tx.prepare_cached("DELETE FROM object_readers WHERE object_id = ?1 AND user_id = ?2")?.execute([id, user])?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{Group, Policy, Role, Subject};

    fn subject(id: i64, enabled: bool) -> Subject {
        Subject {
            key: SubjectKey::User(id),
            name: format!("u{id}"),
            enabled,
            expires_at: None,
            roles: vec![],
            direct: vec![],
            superuser: false,
            owner: None,
        }
    }

    fn open_versions(conn: &Connection) -> u64 {
        conn.query_row("SELECT count(*) FROM policy_history WHERE to_epoch IS NULL", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn reconcile_writes_what_differs_and_closes_what_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::Store::open(&dir.path().join("g.db")).unwrap();
        // Users 2 and 10 sort differently as text and as numbers: the merge must follow the text.
        let mut policy = Policy {
            roles: vec![Role { id: 1, name: "r".into(), grants: vec![] }],
            subjects: vec![subject(2, true), subject(10, true)],
            groups: vec![Group { name: "g".into(), members: vec!["b".into(), "a".into()] }],
        };
        let all = |p: &Policy| Entity::all_of(p);
        let tx = store.conn.transaction().unwrap();
        assert_eq!(reconcile(&tx, &all(&policy)).unwrap(), 4);
        assert_eq!(reconcile(&tx, &all(&policy)).unwrap(), 0, "nothing changed");
        let e = epoch(&tx).unwrap();
        policy.subjects[1].enabled = false;
        policy.subjects.remove(0);
        policy.subjects.push(subject(3, true));
        assert_eq!(reconcile(&tx, &all(&policy)).unwrap(), 3, "10 changed, 2 gone, 3 new");
        assert_eq!(epoch(&tx).unwrap(), e + 1);
        assert_eq!(open_versions(&tx), 4);
        assert_eq!(reconcile(&tx, &all(&policy)).unwrap(), 0);
        tx.commit().unwrap();
    }
}
