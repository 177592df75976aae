//! `supervisor.lock|unlock|message`: the supervisor lock and broadcast messages as methods, with
//! EVA ICS's SFA semantics (`supervisor_lock`, `supervisor_unlock`, `supervisor_message`). What a
//! lock is, whom it admits and what changing it writes lives in [`crate::supervisor`]; here: who may
//! set, replace and clear it, and the lock's view of a caller for every write-class decision.
//!
//! Master API keys and the built-in admin alone may name the owner (`o`) of a lock or the sender of
//! a broadcast. Beyond EVA: an optional `expires_in` (the lock clears itself, audited) and a `reason`
//! shown to operators.
//!
//! Must never happen: a lock changed in memory but not in the file (or the other way round): both
//! change under the store lock, memory only after the commit.

use super::auth::{Caller, Principal};
use super::{Ctx, builtin_access};
use crate::api::LockChange;
use crate::authz::SubjectKey;
use crate::contract::sessions::{SupervisorLock, SupervisorMessage, SupervisorUnlock, UnlockReply};
use crate::contract::{Actor, Method};
use crate::protocol::ApiError;
use crate::store::now_ms;
use crate::supervisor::{self as domain, Broadcast, UnlockCause};
pub use crate::supervisor::{Lock, LockState, Scope, Who};
use crate::text::{self, Lines};

/// The lock's view of a subject of the policy (for `authz.check` about it).
pub fn who_subject(ctx: &Ctx, subject: SubjectKey, superuser: bool) -> Who {
    who_in(&ctx.index(), subject, superuser, now_ms())
}

/// [`who_subject`], as one given policy sees the subject at `now` (every answer of a batch from the
/// same policy).
pub fn who_in(index: &crate::authz::Index, subject: SubjectKey, superuser: bool, now: i64) -> Who {
    let supervisor =
        index.check(subject, "supervisor.lock", builtin_access("supervisor.lock"), super::GATEWAY, now).is_allowed();
    let (user_id, key_row) = match subject {
        SubjectKey::User(id) => (Some(id), None),
        SubjectKey::Key(id) => (None, Some(id)),
    };
    Who { user_id, key_row, master: superuser, supervisor }
}

/// The lock's view of a caller.
pub fn who_caller(ctx: &Ctx, caller: &Caller) -> Who {
    match caller.subject() {
        Some(s) => who_subject(ctx, s, caller.is_superuser()),
        None => Who { user_id: None, key_row: None, master: false, supervisor: false },
    }
}

/// For a write-class decision of `who`: the refusal when a lock is set and `who` is outside its `l`.
pub fn blocks_write(ctx: &Ctx, who: Who) -> Option<ApiError> {
    let lock = ctx.lock()?;
    (!lock.admits(lock.state.l, who).admitted())
        .then(|| lock.refusal("writes are frozen for everyone outside the lock"))
}

/// Refuses a state-changing method of `caller` while a lock it is outside of is set.
pub fn check_write(ctx: &Ctx, caller: &Caller) -> Result<(), ApiError> {
    match blocks_write(ctx, who_caller(ctx, caller)) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The owner a caller's own lock gets: its user, or its API key; with their row ids.
fn owner_of(caller: &Caller) -> (Actor, Option<i64>, Option<i64>) {
    match &caller.principal {
        Principal::User { id, name, .. } => (Actor::user(name), Some(*id), None),
        Principal::Key { id, name, .. } => (Actor::key(name), None, Some(*id)),
        Principal::Anonymous => (Actor::nobody(), None, None),
    }
}

/// `supervisor.lock`: sets the lock, or replaces one the caller may clear.
pub fn lock(ctx: &Ctx, caller: &Caller, p: SupervisorLock) -> Result<LockState, ApiError> {
    let reason = text::clean("reason", p.reason, text::MAX_REASON, Lines::One)?;
    let now = now_ms();
    let expires_at = p.expires_in.as_ref().map(|d| domain::expires_at(d, now)).transpose()?;
    let who = who_caller(ctx, caller);
    let refused = |err: ApiError| {
        ctx.audit_denied(caller, SupervisorLock::NAME, &err);
        Err(err)
    };
    let state = ctx.write_lock(|tx, old| {
        let (o, user_id, key_row) = match p.o {
            Some(o) if who.master => {
                let (user_id, key_row) = domain::owner_rows(tx, &o)?;
                (o, user_id, key_row)
            }
            Some(_) => return refused(ApiError::forbidden("only a master key may name the owner (o) of a lock")),
            None => owner_of(caller),
        };
        domain::check_scopes(p.l, p.c, user_id, key_row)?;
        if let Some(old) = &old
            && !old.admits(old.state.c, who).admitted()
        {
            return refused(old.refusal(&format!("only {} may replace it", Scope::describe(old.state.c))));
        }
        let state = LockState { o, l: p.l, c: p.c, since: now, reason, expires_at };
        let new = Lock { state: state.clone(), user_id, key_row };
        domain::record_set(tx, &caller.actor(), &new, old.as_deref())?;
        // Plant mode: the plant's lock changes first (compare-and-swap); refused, nothing changes here.
        if let Some(plant) = ctx.plant() {
            plant.put_lock(Some(&state), &caller.actor().who, None)?;
        }
        Ok((LockChange::Set(new), state))
    })?;
    tracing::info!(owner = %state.o.describe(), l = ?state.l, c = ?state.c, by = %caller.actor().who.describe(), "supervisor lock set");
    Ok(state)
}

/// `supervisor.unlock`: clears the lock, for callers inside its `c` (a master always).
pub fn unlock(ctx: &Ctx, caller: &Caller, _p: SupervisorUnlock) -> Result<UnlockReply, ApiError> {
    let who = who_caller(ctx, caller);
    ctx.write_lock(|tx, current| {
        let Some(old) = current else {
            let none = UnlockReply { unlocked: false, lock: None, message: Some("no supervisor lock is set".into()) };
            return Ok((LockChange::Keep, none));
        };
        if !old.admits(old.state.c, who).admitted() {
            let err = old.refusal(&format!("only {} may clear it", Scope::describe(old.state.c)));
            ctx.audit_denied(caller, SupervisorUnlock::NAME, &err);
            return Err(err);
        }
        domain::record_clear(tx, &caller.actor(), &old, UnlockCause::Cleared)?;
        if let Some(plant) = ctx.plant() {
            plant.put_lock(None, &caller.actor().who, Some(UnlockCause::Cleared))?;
        }
        Ok((LockChange::Clear, UnlockReply { unlocked: true, lock: Some(old.state.clone()), message: None }))
    })
}

/// `supervisor.message`: a broadcast to every HMI. Only a master may name the sender.
pub fn message(ctx: &Ctx, caller: &Caller, p: SupervisorMessage) -> Result<Broadcast, ApiError> {
    let text = text::clean("text", Some(p.text), text::MAX_MESSAGE, Lines::Many)?
        .ok_or_else(|| ApiError::bad_request("a broadcast needs a non-empty text"))?;
    let sender = match p.sender {
        Some(s) if caller.is_superuser() => s,
        Some(_) => {
            let err = ApiError::forbidden("only a master key may name the sender of a broadcast");
            ctx.audit_denied(caller, SupervisorMessage::NAME, &err);
            return Err(err);
        }
        None => owner_of(caller).0,
    };
    let msg = Broadcast { sender, text, ts: now_ms() };
    ctx.write(|tx| domain::record_broadcast(tx, &caller.actor(), &msg))?;
    Ok(msg)
}

/// Plant mode: applies the plant's lock (set or cleared on another gateway, or found at a
/// reconnect) here, as if set here: the row, the audit entry (by the plant gateway that changed
/// it), the retained `supervisor/lock` topic and the event. The owner's row ids are looked up by
/// name on this gateway (an owner unknown here has none: only its scopes' "any supervisor" and the
/// masters then pass). Nothing is sent back to the plant.
pub fn apply_plant_lock(ctx: &Ctx, plant: crate::plant::PlantLock) -> Result<(), ApiError> {
    let actor = crate::store::audit::Actor {
        who: plant.by.clone(),
        source: if plant.gateway.is_empty() { "plant".into() } else { format!("plant gateway {}", plant.gateway) },
    };
    ctx.write_lock(|tx, current| match plant.lock {
        Some(state) => {
            if current.as_ref().is_some_and(|c| c.state == state) {
                return Ok((LockChange::Keep, ()));
            }
            let user_id = match &state.o.u {
                Some(u) => crate::accounts::require_user(tx, u).ok().map(|a| a.id),
                None => None,
            };
            let key_row = match &state.o.key_id {
                Some(k) => crate::store::lock::key_row(tx, k)?,
                None => None,
            };
            let new = Lock { state, user_id, key_row };
            domain::record_set(tx, &actor, &new, current.as_deref())?;
            tracing::info!(gateway = %plant.gateway, owner = %new.state.o.describe(), "supervisor lock set on the plant");
            Ok((LockChange::Set(new), ()))
        }
        None => match current {
            None => Ok((LockChange::Keep, ())),
            Some(old) => {
                domain::record_clear(tx, &actor, &old, plant.cause.unwrap_or(UnlockCause::Cleared))?;
                tracing::info!(gateway = %plant.gateway, "supervisor lock cleared on the plant");
                Ok((LockChange::Clear, ()))
            }
        },
    })
}
