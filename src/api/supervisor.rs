//! `supervisor.lock|unlock|message`: the supervisor lock and broadcast messages as methods, with
//! EVA ICS's SFA semantics (`supervisor_lock`, `supervisor_unlock`, `supervisor_message`). What a
//! lock is and whom it admits lives in [`crate::supervisor`]; here: who may set, replace and clear
//! it, its expiry and restore, the retained MQTT state and the events.
//!
//! Master API keys and the built-in admin alone may name the owner (`o`) of a lock or the sender of
//! a broadcast. Beyond EVA: an optional `expires_in` (the lock clears itself, audited) and a `reason`
//! shown to operators.
//!
//! Must never happen: a lock changed in memory but not in the file (or the other way round): both
//! change under the store lock, memory only after the commit.

use super::auth::{Caller, Principal};
use super::{Ctx, builtin_access, params};
use crate::authz::SubjectKey;
use crate::config::Dur;
use crate::protocol::ApiError;
use crate::store::audit::{self, Actor, Outcome};
use crate::store::lock::{load_lock, store_lock};
use crate::store::{now_ms, outbox};
pub use crate::supervisor::{Lock, MAX_LOCK_TIME, Owner, Scope, Who};
use crate::text::{self, Lines};
use rusqlite::{Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{Value, json};

/// The lock's view of a subject of the policy (for `authz.check` about it).
pub fn who_subject(ctx: &Ctx, subject: SubjectKey, superuser: bool) -> Who {
    let supervisor = ctx
        .index()
        .check(subject, "supervisor.lock", builtin_access("supervisor.lock"), super::GATEWAY, now_ms())
        .is_allowed();
    let (user_id, key) = match subject {
        SubjectKey::User(id) => (Some(id), None),
        SubjectKey::Key(id) => (None, Some(id)),
    };
    Who { user_id, key, master: superuser, supervisor }
}

/// The lock's view of a caller.
pub fn who_caller(ctx: &Ctx, caller: &Caller) -> Who {
    match caller.subject() {
        Some(s) => who_subject(ctx, s, caller.is_superuser()),
        None => Who { user_id: None, key: None, master: false, supervisor: false },
    }
}

/// For a write-class decision of `who`: the refusal when a lock is set and `who` is outside its `l`.
pub fn blocks_write(ctx: &Ctx, who: Who) -> Option<ApiError> {
    let lock = ctx.lock()?;
    (!lock.admits(lock.l, who).admitted()).then(|| lock.refusal("writes are frozen for everyone outside the lock"))
}

/// Refuses a state-changing method of `caller` while a lock it is outside of is set.
pub fn check_write(ctx: &Ctx, caller: &Caller) -> Result<(), ApiError> {
    match blocks_write(ctx, who_caller(ctx, caller)) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockParams {
    #[serde(default)]
    l: Option<Scope>,
    #[serde(default)]
    c: Option<Scope>,
    o: Option<Owner>,
    reason: Option<String>,
    expires_in: Option<Dur>,
}

/// Resolves an explicit owner (master only) to row ids.
fn resolve_owner(conn: &Connection, o: &Owner) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let user_id = match &o.u {
        Some(u) => Some(crate::accounts::require_user(conn, u)?.id),
        None => None,
    };
    let key = match &o.key_id {
        Some(k) => Some(
            conn.query_row("SELECT id FROM api_keys WHERE name = ?1", [k], |r| r.get::<_, i64>(0))
                .optional()?
                .ok_or_else(|| ApiError::not_found(format!("no API key named {k:?}")))?,
        ),
        None => None,
    };
    Ok((user_id, key))
}

/// The owner a caller's lock gets: its user, or its API key.
fn owner_of(caller: &Caller) -> (Owner, Option<i64>, Option<i64>) {
    match &caller.principal {
        Principal::User { id, name, .. } => (Owner { u: Some(name.clone()), key_id: None }, Some(*id), None),
        Principal::Key { id, name, .. } => (Owner { u: None, key_id: Some(name.clone()) }, None, Some(*id)),
        Principal::Anonymous => (Owner::default(), None, None),
    }
}

/// Queues the retained lock state (an empty retained payload when cleared) and the event.
fn publish(tx: &Connection, event: &str, lock: Option<&Lock>, detail: &Value) -> rusqlite::Result<()> {
    let state = lock.map(|l| serde_json::to_value(l).unwrap_or(Value::Null)).unwrap_or(Value::Null);
    outbox::publish(tx, "supervisor/lock", &state, true)?;
    outbox::event(tx, event, detail)?;
    Ok(())
}

/// `supervisor.lock`: sets the lock, or replaces one the caller may clear.
pub fn lock(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: LockParams = params("supervisor.lock", &p)?;
    let reason = text::clean("reason", p.reason, text::MAX_REASON, Lines::One)?;
    if let Some(d) = p.expires_in
        && (d.0.is_zero() || d.0 > MAX_LOCK_TIME)
    {
        return Err(ApiError::bad_request("expires_in must be longer than zero and at most 366d"));
    }
    let who = who_caller(ctx, caller);
    let mut store = ctx.store();
    let (o, user_id, key) = match p.o {
        Some(o) if who.master => {
            let (user_id, key) = resolve_owner(&store.conn, &o)?;
            (o, user_id, key)
        }
        Some(_) => {
            let err = ApiError::forbidden("only a master key may name the owner (o) of a lock");
            drop(store);
            ctx.audit_denied(caller, "supervisor.lock", &err);
            return Err(err);
        }
        None => owner_of(caller),
    };
    for (name, scope) in [("l", p.l), ("c", p.c)] {
        match scope {
            Some(Scope::Key) if key.is_none() => {
                return Err(ApiError::bad_request(format!(
                    "{name} = \"k\" (same API key) needs a lock set with an API key; you are not using one"
                )));
            }
            Some(Scope::User) if user_id.is_none() => {
                return Err(ApiError::bad_request(format!(
                    "{name} = \"u\" (same user) needs a lock set with a user login, not an API key"
                )));
            }
            _ => {}
        }
    }
    let now = now_ms();
    let new = Lock {
        o,
        l: p.l,
        c: p.c,
        since: now,
        reason,
        expires_at: p.expires_in.map(|d| now + d.0.as_millis() as i64),
        user_id,
        key,
    };
    let old = ctx.lock();
    if let Some(old) = &old
        && !old.admits(old.c, who).admitted()
    {
        let err = old.refusal(&format!("only {} may replace it", Scope::as_str(old.c)));
        drop(store);
        ctx.audit_denied(caller, "supervisor.lock", &err);
        return Err(err);
    }
    let lock_json = serde_json::to_value(&new).map_err(ApiError::internal)?;
    store.write(|tx| {
        store_lock(tx, Some(&new))?;
        let detail = json!({"lock": lock_json, "replaced": old.as_deref()});
        audit::record(tx, &caller.actor(), "supervisor.lock", None, Outcome::Ok, Some(&detail))?;
        publish(tx, "supervisor.lock", Some(&new), &lock_json)?;
        Ok::<_, ApiError>(())
    })?;
    ctx.set_lock(Some(new));
    drop(store);
    ctx.outbox_written();
    tracing::info!(lock = %lock_json, by = %caller.actor().who.describe(), "supervisor lock set");
    Ok(lock_json)
}

/// `supervisor.unlock`: clears the lock, for callers inside its `c` (a master always).
pub fn unlock(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Empty {}
    let _: Empty = params("supervisor.unlock", &p)?;
    let who = who_caller(ctx, caller);
    let mut store = ctx.store();
    let Some(old) = ctx.lock() else {
        return Ok(json!({"unlocked": false, "message": "no supervisor lock is set"}));
    };
    if !old.admits(old.c, who).admitted() {
        let err = old.refusal(&format!("only {} may clear it", Scope::as_str(old.c)));
        drop(store);
        ctx.audit_denied(caller, "supervisor.unlock", &err);
        return Err(err);
    }
    clear(&mut store, &caller.actor(), &old, "cleared")?;
    ctx.set_lock(None);
    ctx.outbox_written();
    Ok(json!({"unlocked": true, "lock": *old}))
}

fn clear(store: &mut crate::store::Store, actor: &Actor, old: &Lock, why: &str) -> Result<(), ApiError> {
    store.write(|tx| {
        store_lock(tx, None)?;
        let detail = json!({"lock": old, "why": why});
        audit::record(tx, actor, "supervisor.unlock", None, Outcome::Ok, Some(&detail))?;
        publish(tx, "supervisor.unlock", None, &json!({"by": actor.who, "why": why, "lock": old}))?;
        Ok::<_, ApiError>(())
    })
}

/// Clears a lock whose `expires_in` ran out (from the daemon's loop). Returns whether it did.
pub fn expire(ctx: &Ctx) -> Result<bool, ApiError> {
    if !ctx.lock().is_some_and(|l| l.expired(now_ms())) {
        return Ok(false);
    }
    let mut store = ctx.store();
    let Some(old) = ctx.lock().filter(|l| l.expired(now_ms())) else { return Ok(false) };
    clear(&mut store, &Actor::system(), &old, "expired")?;
    ctx.set_lock(None);
    ctx.outbox_written();
    tracing::info!("supervisor lock expired");
    Ok(true)
}

/// At start: brings the stored lock back with `supervisor.lock_survives_restart`, clears it (audited,
/// and the retained state emptied) otherwise.
pub fn restore(ctx: &Ctx) -> Result<Option<String>, ApiError> {
    let survives = ctx.config().supervisor.lock_survives_restart;
    let mut store = ctx.store();
    let Some(stored) = load_lock(&store.conn)? else { return Ok(None) };
    if survives && !stored.expired(now_ms()) {
        let text = format!("supervisor lock by {} restored", stored.owner_text());
        ctx.set_lock(Some(stored));
        return Ok(Some(text));
    }
    let why = if survives { "expired while gatewarden was stopped" } else { "cleared by the restart" };
    clear(&mut store, &Actor::system(), &stored, why)?;
    Ok(Some(format!("supervisor lock by {} {why}", stored.owner_text())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageParams {
    text: String,
    sender: Option<Owner>,
}

/// `supervisor.message`: a broadcast to every HMI. Only a master may name the sender.
pub fn message(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: MessageParams = params("supervisor.message", &p)?;
    let text = text::clean("text", Some(p.text), text::MAX_MESSAGE, Lines::Many)?
        .ok_or_else(|| ApiError::bad_request("a broadcast needs a non-empty text"))?;
    let sender = match p.sender {
        Some(s) if caller.is_superuser() => s,
        Some(_) => {
            let err = ApiError::forbidden("only a master key may name the sender of a broadcast");
            ctx.audit_denied(caller, "supervisor.message", &err);
            return Err(err);
        }
        None => owner_of(caller).0,
    };
    let msg = json!({"sender": sender, "text": text, "ts": now_ms()});
    ctx.write(|tx| {
        audit::record(tx, &caller.actor(), "supervisor.message", None, Outcome::Ok, Some(&msg))?;
        outbox::publish(tx, "supervisor/message", &msg, false)?;
        outbox::event(tx, "supervisor.message", &msg)?;
        Ok::<_, ApiError>(())
    })?;
    Ok(msg)
}

/// The lock as `status` shows it.
pub fn status(ctx: &Ctx) -> Option<Value> {
    ctx.lock().and_then(|l| serde_json::to_value(&*l).ok())
}
