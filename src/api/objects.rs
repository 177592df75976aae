//! `object.*`: objects users create on a resource, who may read them and why (SPEC "Objects and
//! historical access"), and what deleting their owner does to them.
//!
//! Must never happen: an object shown, listed or answered for to an account the rules of
//! [`crate::objects`] do not let read it (the answer to an unreadable object is the answer to a
//! missing one, so asking tells nothing); an object created without its kind's write access now; an
//! explicit right handed out on an object the caller may not read itself; a change applied in part
//! (every method here is one transaction, `object.grant`/`revoke` over many ids included).
//!
//! The index snapshots of the epochs objects were created in ([`History`]) change only under the
//! store lock, in the transaction's closure; if that transaction then fails to commit they are
//! rebuilt from the database ([`Ctx::reload_history`]), so memory never keeps what the database
//! does not.

use super::auth::{Caller, Principal};
use super::routes::BUILTIN_PERMISSIONS;
use super::{ADMIN_ID, Ctx};
use crate::accounts;
use crate::authz::{Access, Decision, Index, Policy, SubjectKey};
use crate::contract::Method;
use crate::contract::objects::{
    ObjectCreate, ObjectCreated, ObjectDelete, ObjectDeleted, ObjectGrant, ObjectList, ObjectPage, ObjectReaders,
    ObjectReadersChanged, ObjectRemoved, ObjectRevoke, ObjectShow, ObjectView, ObjectWhoCan, ReadReason, Reader,
};
use crate::objects::history::{self, Entity, History};
use crate::objects::{
    self as domain, MAX_DATA_BYTES, MAX_EPOCHS, MAX_IDS, MAX_LIST, MAX_OBJECTS, MAX_PER_OWNER, Object, Why,
};
use crate::protocol::ApiError;
use crate::store::audit::{self, Outcome};
use crate::store::objects::{self as rows, ObjectRow};
use crate::store::{Store, now_ms, outbox, resources};
use rusqlite::Connection;
use serde_json::json;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};

/// At the daemon's start: makes the policy's history agree with the policy tables (the first start
/// after the migration writes every entity's first version), then rebuilds the snapshots of the
/// epochs live objects were created in.
pub fn restore(store: &mut Store, policy: &Policy) -> Result<History, ApiError> {
    let entities = Entity::all_of(policy);
    let written = store.write(|tx| rows::reconcile(tx, &entities))?;
    if written > 0 {
        tracing::info!("policy history: {written} roles, accounts and groups recorded");
    }
    replay(&store.conn)
}

/// The snapshots of the live objects' epochs, from the versions the database holds.
fn replay(conn: &Connection) -> Result<History, ApiError> {
    let counts = rows::epoch_counts(conn)?;
    let Some(&(oldest, _)) = counts.first() else { return Ok(History::default()) };
    let versions = rows::versions(conn, oldest)?;
    let epochs: Vec<i64> = counts.iter().map(|c| c.0).collect();
    Ok(History::restore(history::replay(&versions, &epochs), &counts))
}

impl Ctx {
    /// The snapshots of the live objects' epochs. Lock order: take the store first when you need both.
    pub fn history(&self) -> RwLockReadGuard<'_, History> {
        self.history.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Only under the store lock, inside the transaction that makes the change.
    fn history_mut(&self) -> RwLockWriteGuard<'_, History> {
        self.history.write().unwrap_or_else(|p| p.into_inner())
    }

    /// After a transaction that changed [`Ctx::history_mut`] failed: memory from the database again.
    fn reload_history(&self) {
        let store = self.store();
        match replay(&store.conn) {
            Ok(h) => *self.history_mut() = h,
            Err(e) => tracing::error!("rebuilding the object history after a failed transaction: {e}"),
        }
    }

    /// Runs `f` as [`Ctx::write`] does; if `f` touched the history and the transaction then failed,
    /// rebuilds the history.
    fn write_objects<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>, &Cell<bool>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let touched = Cell::new(false);
        let out = self.write(|tx| f(tx, &touched));
        if out.is_err() && touched.get() {
            self.reload_history();
        }
        out
    }
}

/// The user who owns what `caller` creates: itself, or for an API key the key's owner.
fn owner_of(caller: &Caller) -> Result<(SubjectKey, i64), ApiError> {
    match &caller.principal {
        Principal::User { id, .. } => Ok((SubjectKey::User(*id), *id)),
        Principal::Key { id, owner_id, .. } => Ok((SubjectKey::Key(*id), *owner_id)),
        Principal::Anonymous => Err(ApiError::unauthenticated("objects need credentials: pass --token")),
    }
}

fn view(row: ObjectRow, with_data: bool) -> ObjectView {
    let data = if with_data { row.data.as_deref().and_then(|d| serde_json::from_str(d).ok()) } else { None };
    ObjectView {
        id: row.id,
        kind: row.kind,
        resource: row.resource,
        name: row.name,
        owner: row.owner,
        created_at: row.created_at,
        data,
    }
}

fn object_of(row: &ObjectRow) -> Object<'_> {
    Object { kind: &row.kind, resource: &row.resource, epoch: row.epoch, created_at: row.created_at }
}

/// The one answer to an object that does not exist or that the caller may not read.
fn no_object(id: i64) -> ApiError {
    ApiError::not_found(format!("no object {id} that you may read"))
}

/// May `subject` read `row` now, and why. The one question every method here asks.
fn readable(ctx: &Ctx, conn: &Connection, index: &Index, row: &ObjectRow, subject: SubjectKey) -> Option<Why> {
    let history = ctx.history();
    let then = history.at(row.epoch).map(|i| &**i);
    let explicit = || match subject {
        SubjectKey::User(u) => rows::is_reader(conn, row.id, u).unwrap_or(false),
        SubjectKey::Key(_) => false,
    };
    domain::may_read(index, then, &object_of(row), explicit, subject, now_ms()).ok()
}

/// The object `id`, if `subject` may read it.
fn read_one(ctx: &Ctx, conn: &Connection, index: &Index, id: i64, subject: SubjectKey) -> Result<ObjectRow, ApiError> {
    let row = rows::get(conn, id)?.ok_or_else(|| no_object(id))?;
    readable(ctx, conn, index, &row, subject).map(|_| row).ok_or_else(|| no_object(id))
}

pub fn create(ctx: &Ctx, caller: &Caller, p: ObjectCreate) -> Result<ObjectView, ApiError> {
    let (subject, owner) = owner_of(caller)?;
    super::role::validate_permission(&p.kind).map_err(|e| ApiError::bad_request(format!("kind: {}", e.message)))?;
    if BUILTIN_PERMISSIONS.contains(&p.kind.as_str()) {
        return Err(ApiError::bad_request(format!("kind: {} is a built-in permission, not a kind of object", p.kind)));
    }
    crate::authz::validate_resource_id(&p.resource).map_err(|e| ApiError::bad_request(format!("resource: {e}")))?;
    domain::check_name(&p.name).map_err(ApiError::bad_request)?;
    let data = match &p.data {
        None => None,
        Some(v) => {
            let text = serde_json::to_string(v).map_err(ApiError::internal)?;
            if text.len() > MAX_DATA_BYTES {
                return Err(ApiError::bad_request(format!(
                    "data: at most {MAX_DATA_BYTES} bytes of JSON, got {}",
                    text.len()
                )));
            }
            Some(text)
        }
    };
    let now = now_ms();
    let row = ctx.write_objects(|tx, touched| {
        // What exists first (the inventory and the grants' permission names are no secret from an
        // account), then the caller's right: the clearer error for a typo.
        if !resources::exists(tx, &p.resource)? {
            return Err(ApiError::bad_request(format!("resource: no resource {} in the inventory", p.resource)));
        }
        if !rows::kind_granted(tx, &p.kind)? {
            return Err(ApiError::bad_request(format!(
                "kind: no grant names the permission {} (a kind is a permission that some grant names)",
                p.kind
            )));
        }
        if let Decision::Deny(reason) = domain::may_write(&ctx.index(), &p.kind, &p.resource, subject, now) {
            let err = ApiError::forbidden(format!(
                "creating a {} object on {} needs {} with write access there ({reason})",
                p.kind, p.resource, p.kind
            ));
            ctx.audit_denied(caller, ObjectCreate::NAME, &err);
            return Err(err);
        }
        let (owned, all) = rows::counts(tx, owner)?;
        if owned >= MAX_PER_OWNER {
            return Err(ApiError::bad_request(format!("owner: at most {MAX_PER_OWNER} objects per user")));
        }
        if all >= MAX_OBJECTS {
            return Err(ApiError::bad_request(format!("objects: at most {MAX_OBJECTS} on the gateway")));
        }
        let epoch = rows::epoch(tx)?;
        let mut history = ctx.history_mut();
        if !history.holds(epoch) && history.len() >= MAX_EPOCHS {
            return Err(ApiError::bad_request(format!(
                "objects: live objects span {MAX_EPOCHS} policy epochs, the most the gateway keeps; delete old objects first"
            )));
        }
        let id = rows::insert(tx, &p.kind, &p.resource, &p.name, data.as_deref(), owner, epoch, now)?;
        // Under the store lock the published index is the one of `epoch`.
        history.created(epoch, &ctx.index());
        touched.set(true);
        drop(history);
        let row = rows::get(tx, id)?.ok_or_else(|| ApiError::internal("the object just created is gone"))?;
        let detail = json!({"id": id, "kind": p.kind, "resource": p.resource, "owner": row.owner, "epoch": epoch});
        audit::record(tx, &caller.actor(), ObjectCreate::NAME, Some(&id.to_string()), Outcome::Ok, Some(&detail))?;
        outbox::emit(
            tx,
            &ObjectCreated {
                id,
                kind: row.kind.clone(),
                resource: row.resource.clone(),
                name: row.name.clone(),
                owner: row.owner.clone(),
                by: caller.actor().who,
            },
        )?;
        Ok(row)
    })?;
    Ok(view(row, true))
}

pub fn show(ctx: &Ctx, caller: &Caller, p: ObjectShow) -> Result<ObjectView, ApiError> {
    let (subject, _) = owner_of(caller)?;
    let index = ctx.index();
    let store = ctx.store();
    Ok(view(read_one(ctx, &store.conn, &index, p.id, subject)?, true))
}

/// How many objects one `object.list` request looks at, readable or not.
const LIST_SCAN: u32 = 20 * MAX_LIST;

pub fn list(ctx: &Ctx, caller: &Caller, p: ObjectList) -> Result<ObjectPage, ApiError> {
    let (subject, _) = owner_of(caller)?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit: 1 to {MAX_LIST}, got {limit}")));
    }
    let index = ctx.index();
    let store = ctx.store();
    let conn = &store.conn;
    let owner = match &p.owner {
        Some(name) => Some(accounts::require_user(conn, name)?.id),
        None => None,
    };
    let filter = rows::Filter { kind: p.kind.as_deref(), resource: p.resource.as_deref(), owner };
    let mut after = p.after.unwrap_or(0);
    let mut out = Vec::new();
    let mut looked = 0;
    loop {
        let page = rows::page(conn, &filter, after, MAX_LIST)?;
        let full = page.len() as u32 == MAX_LIST;
        for row in page {
            looked += 1;
            after = row.id;
            if readable(ctx, conn, &index, &row, subject).is_some() {
                out.push(view(row, false));
                if out.len() as u32 == limit {
                    return Ok(ObjectPage { objects: out, next_after: Some(after) });
                }
            }
        }
        if !full {
            return Ok(ObjectPage { objects: out, next_after: None });
        }
        if looked >= LIST_SCAN {
            return Ok(ObjectPage { objects: out, next_after: Some(after) });
        }
    }
}

pub fn delete(ctx: &Ctx, caller: &Caller, p: ObjectDelete) -> Result<ObjectRemoved, ApiError> {
    let (subject, owner) = owner_of(caller)?;
    let index = ctx.index();
    let row = {
        let store = ctx.store();
        rows::get(&store.conn, p.id)?.ok_or_else(|| no_object(p.id))?
    };
    let may =
        row.owner_id == owner || domain::may_write(&index, &row.kind, &row.resource, subject, now_ms()).is_allowed();
    if !may {
        let err = {
            let store = ctx.store();
            if readable(ctx, &store.conn, &index, &row, subject).is_none() {
                return Err(no_object(p.id));
            }
            ApiError::forbidden(format!(
                "deleting object {} needs its owner, or {} with write access on {}",
                row.id, row.kind, row.resource
            ))
        };
        ctx.audit_denied(caller, ObjectDelete::NAME, &err);
        return Err(err);
    }
    ctx.write_objects(|tx, touched| {
        let Some(epoch) = rows::delete(tx, p.id)? else { return Err(no_object(p.id)) };
        rows::prune_history(tx)?;
        ctx.history_mut().deleted(&[epoch]);
        touched.set(true);
        let detail = json!({"id": row.id, "kind": row.kind, "resource": row.resource, "owner": row.owner});
        audit::record(tx, &caller.actor(), ObjectDelete::NAME, Some(&row.id.to_string()), Outcome::Ok, Some(&detail))?;
        outbox::emit(
            tx,
            &ObjectDeleted {
                id: row.id,
                kind: row.kind.clone(),
                resource: row.resource.clone(),
                owner: row.owner.clone(),
                by: caller.actor().who,
                cause: ObjectDelete::NAME.into(),
            },
        )?;
        Ok(())
    })?;
    Ok(ObjectRemoved { deleted: p.id })
}

fn reason(why: Why) -> ReadReason {
    match why {
        Why::Superuser => ReadReason::Superuser,
        Why::Current(g) => ReadReason::Current { grant_id: g.grant_id, origin: (&g.origin).into() },
        Why::Historical(g) => ReadReason::Historical { grant_id: g.grant_id, origin: (&g.origin).into() },
        Why::Explicit => ReadReason::Explicit,
    }
}

pub fn who_can(ctx: &Ctx, _caller: &Caller, p: ObjectWhoCan) -> Result<ObjectReaders, ApiError> {
    let index = ctx.index();
    let now = now_ms();
    let store = ctx.store();
    let conn = &store.conn;
    let row = rows::get(conn, p.id)?.ok_or_else(|| ApiError::not_found(format!("no object {}", p.id)))?;
    let history = ctx.history();
    let then = history.at(row.epoch).map(|i| &**i);
    let object = object_of(&row);
    let explicit: Vec<i64> = rows::readers(conn, row.id)?.into_iter().map(|(id, _)| id).collect();
    // Candidates: whoever passes now, whoever passed then, whoever was given it, the superusers.
    let mut candidates: Vec<i64> = index
        .superusers(now)
        .into_iter()
        .chain(index.who_can(&row.kind, Access::Read, &row.resource, now))
        .chain(then.map(|t| t.who_can(&row.kind, Access::Read, &row.resource, row.created_at)).unwrap_or_default())
        .filter_map(|k| match k {
            SubjectKey::User(id) => Some(id),
            SubjectKey::Key(_) => None,
        })
        .chain(explicit.iter().copied())
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    let mut readers = Vec::new();
    for id in candidates {
        let key = SubjectKey::User(id);
        // Not live now: never listed, whatever it held.
        let Ok(reasons) = domain::reasons(&index, then, &object, explicit.contains(&id), key, now) else { continue };
        if reasons.is_empty() {
            continue;
        }
        let Ok(account) = index.principal(key, now) else { continue };
        readers.push(Reader { user: account.name.to_string(), why: reasons.into_iter().map(reason).collect() });
    }
    Ok(ObjectReaders { id: row.id, readers })
}

/// The ids of a grant or revoke: exactly one of `id` and `ids`, at most [`MAX_IDS`], repeats dropped.
fn ids_of(id: Option<i64>, ids: Option<Vec<i64>>) -> Result<Vec<i64>, ApiError> {
    let all = match (id, ids) {
        (Some(id), None) => vec![id],
        (None, Some(ids)) => ids,
        (Some(_), Some(_)) => return Err(ApiError::bad_request("ids: give either id or ids, not both")),
        (None, None) => return Err(ApiError::bad_request("ids: give id or ids")),
    };
    if all.is_empty() || all.len() > MAX_IDS {
        return Err(ApiError::bad_request(format!("ids: 1 to {MAX_IDS} per request, got {}", all.len())));
    }
    let mut seen = std::collections::HashSet::new();
    Ok(all.into_iter().filter(|i| seen.insert(*i)).collect())
}

/// Checks every object before any change: it exists, and the caller may read it (a holder hands out,
/// or takes away, no more than it has). Returns the target user's id.
fn explicit_change(ctx: &Ctx, caller: &Caller, action: &str, ids: &[i64], user: &str) -> Result<i64, ApiError> {
    let (subject, _) = owner_of(caller)?;
    let index = ctx.index();
    let store = ctx.store();
    let conn = &store.conn;
    let target = accounts::require_user(conn, user)?;
    for &id in ids {
        let row = rows::get(conn, id)?.ok_or_else(|| ApiError::not_found(format!("ids: no object {id}")))?;
        if readable(ctx, conn, &index, &row, subject).is_none() {
            let err = ApiError::forbidden(format!(
                "ids: you may not read object {id}, so you may not hand out or take away reading it"
            ));
            drop(store);
            ctx.audit_denied(caller, action, &err);
            return Err(err);
        }
    }
    Ok(target.id)
}

pub fn grant(ctx: &Ctx, caller: &Caller, p: ObjectGrant) -> Result<ObjectReadersChanged, ApiError> {
    let ids = ids_of(p.id, p.ids)?;
    let user = explicit_change(ctx, caller, ObjectGrant::NAME, &ids, &p.user)?;
    let by = caller.actor().who.to_text();
    let changed = ctx.write(|tx| {
        let mut changed = 0u64;
        for &id in &ids {
            if rows::get(tx, id)?.is_none() {
                return Err(ApiError::not_found(format!("ids: no object {id}")));
            }
            changed += u64::from(rows::add_reader(tx, id, user, now_ms(), &by)?);
        }
        let detail = json!({"user": p.user, "ids": ids, "changed": changed});
        audit::record(tx, &caller.actor(), ObjectGrant::NAME, Some(&p.user), Outcome::Ok, Some(&detail))?;
        Ok::<_, ApiError>(changed)
    })?;
    Ok(ObjectReadersChanged { user: p.user, ids, changed })
}

pub fn revoke(ctx: &Ctx, caller: &Caller, p: ObjectRevoke) -> Result<ObjectReadersChanged, ApiError> {
    let ids = ids_of(p.id, p.ids)?;
    let user = explicit_change(ctx, caller, ObjectRevoke::NAME, &ids, &p.user)?;
    let changed = ctx.write(|tx| {
        let mut changed = 0u64;
        for &id in &ids {
            if rows::get(tx, id)?.is_none() {
                return Err(ApiError::not_found(format!("ids: no object {id}")));
            }
            changed += u64::from(rows::remove_reader(tx, id, user)?);
        }
        let detail = json!({"user": p.user, "ids": ids, "changed": changed});
        audit::record(tx, &caller.actor(), ObjectRevoke::NAME, Some(&p.user), Outcome::Ok, Some(&detail))?;
        Ok::<_, ApiError>(changed)
    })?;
    Ok(ObjectReadersChanged { user: p.user, ids, changed })
}

/// What `user.delete` does with the objects of the user it deletes, in its transaction: deleted (each
/// with its `object.deleted` event) or given to the admin, per `accounts.on_delete`. Returns
/// (deleted, reassigned).
pub fn on_owner_deleted(
    ctx: &Ctx,
    tx: &rusqlite::Transaction<'_>,
    caller: &Caller,
    owner: i64,
    owner_name: &str,
) -> Result<(u64, u64), ApiError> {
    match ctx.config().accounts.on_delete {
        crate::config::OnDelete::ReassignToAdmin => Ok((0, rows::reassign(tx, owner, ADMIN_ID)? as u64)),
        crate::config::OnDelete::Delete => {
            let gone = rows::delete_owned(tx, owner)?;
            let epochs: Vec<i64> = gone.iter().map(|g| g.epoch).collect();
            let mut by_epoch: BTreeMap<i64, u64> = BTreeMap::new();
            for e in &epochs {
                *by_epoch.entry(*e).or_default() += 1;
            }
            for g in &gone {
                outbox::emit(
                    tx,
                    &ObjectDeleted {
                        id: g.id,
                        kind: g.kind.clone(),
                        resource: g.resource.clone(),
                        owner: owner_name.to_string(),
                        by: caller.actor().who,
                        cause: "owner_deleted".into(),
                    },
                )?;
            }
            if !gone.is_empty() {
                ctx.history_mut().deleted(&epochs);
            }
            Ok((gone.len() as u64, 0))
        }
    }
}

/// After a `user.delete` transaction that deleted objects failed to commit.
pub fn owner_delete_failed(ctx: &Ctx) {
    ctx.reload_history();
}

/// `authz.check` about one object: the decision on reading it (current, historical, explicit) or
/// writing it (its kind with write access now); the lock's say on a write is the caller's to add.
pub fn decide_read(ctx: &Ctx, index: &Arc<Index>, row: &ObjectRow, subject: SubjectKey, now: i64) -> ObjectDecision {
    // Lock order: the store, then the history (as every writer takes them).
    let store = ctx.store();
    let history = ctx.history();
    let then = history.at(row.epoch).map(|i| &**i);
    let explicit = || match subject {
        SubjectKey::User(u) => rows::is_reader(&store.conn, row.id, u).unwrap_or(false),
        SubjectKey::Key(_) => false,
    };
    domain::may_read(index, then, &object_of(row), explicit, subject, now)
}

/// The answer of [`decide_read`].
pub type ObjectDecision = Result<Why, domain::Refusal>;

/// The object `id` for `authz.check`.
pub fn find(ctx: &Ctx, id: i64) -> Result<ObjectRow, ApiError> {
    rows::get(&ctx.store().conn, id)?.ok_or_else(|| ApiError::not_found(format!("object: no object {id}")))
}
