//! The supervisor lock, with EVA ICS's SFA semantics: what a lock is, whom it admits, and what
//! setting, clearing, expiring and restoring it writes (the decision and the domain, not the
//! transport: `api::supervisor` serves the methods, the daemon runs expiry and the restore at start,
//! `store::lock` keeps it in the file).
//!
//! A lock has an owner `o = {u, key_id}` (an [`Actor`]: user name and API key *name*) and two scopes,
//! each `null` (any supervisor), `"k"` (the owner's API key) or `"u"` (the owner user, authenticated
//! as a user, not with a key):
//! - `l`, who may still write while it is set: every write-class decision for anyone outside `l`
//!   fails with `supervisor_locked`;
//! - `c`, who may clear it or replace it with another lock.
//!
//! A "supervisor" is a subject holding the `supervisor.lock` permission. Master API keys and the
//! built-in admin pass every lock and may always clear it.
//!
//! Must never happen: a read blocked by the lock; a caller admitted by a scope it is not inside; a
//! lock changed in memory but not in the file (or the other way round): callers write with the
//! functions here in one transaction and change memory only after it commits, under the store lock.

use crate::contract::Actor;
use crate::contract::policy::{Decision, Denied, LockRefusal, LockedOut};
pub use crate::contract::sessions::{Broadcast, LockState, Scope, Span, UnlockCause};
use crate::contract::sessions::{SupervisorLocked, SupervisorUnlocked};
use crate::protocol::{ApiError, ErrorCode};
use crate::store::audit::{self, Outcome};
use crate::store::{lock as rows, outbox};
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{Value, json};

/// Longest `expires_in` of a lock: a year and a day (longer would be a mistake, and far longer would
/// overflow the date arithmetic).
pub const MAX_LOCK_TIME: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

/// The lock: its wire state and its owner's row ids. Kept as the store keeps it
/// ([`crate::store::lock`]); what it means (whom it admits, what it refuses) is here.
pub use crate::store::lock::Lock;

/// Who is asking, as the lock sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Who {
    pub user_id: Option<i64>,
    /// The API key's row id.
    pub key_row: Option<i64>,
    /// A master key or the built-in admin.
    pub master: bool,
    /// Holds `supervisor.lock`.
    pub supervisor: bool,
}

/// Whether a scope of a lock admits a caller, and why: a decision, never a bare bool. A refusal
/// becomes the contract's [`Decision`] (`supervisor_locked`, naming the lock and its owner) through
/// [`Lock::decide_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A master key or the built-in admin: every lock admits them.
    Master,
    /// A supervisor inside the scope.
    Inside,
    /// Outside the scope, and why.
    Outside(LockedOut),
}

impl Admission {
    pub fn admitted(self) -> bool {
        matches!(self, Admission::Master | Admission::Inside)
    }
}

/// What a refusal by the lock says of writes.
pub const WRITES_FROZEN: &str = "writes are frozen for everyone outside the lock";

impl Lock {
    /// Whether `who` is inside `scope` of this lock, and why.
    pub fn admits(&self, scope: Option<Scope>, who: Who) -> Admission {
        if who.master {
            return Admission::Master;
        }
        if !who.supervisor {
            return Admission::Outside(LockedOut::NotSupervisor);
        }
        let inside = match scope {
            None => true,
            Some(Scope::Key) => who.key_row.is_some() && who.key_row == self.key_row,
            Some(Scope::User) => who.user_id.is_some() && who.user_id == self.user_id,
        };
        if inside { Admission::Inside } else { Admission::Outside(LockedOut::OtherOwner) }
    }

    /// The decision on a write by `who` that the grants decided `grants`: the lock has the last word
    /// on an allow, and refuses it for anyone outside `l`. A deny stays the grants' deny.
    pub fn decide_write(&self, who: Who, grants: Decision) -> Decision {
        if !grants.is_allowed() {
            return grants;
        }
        match self.admits(self.state.l, who) {
            Admission::Master | Admission::Inside => grants,
            Admission::Outside(locked_out) => Decision::Deny(Denied::SupervisorLocked(LockRefusal {
                message: self.message(WRITES_FROZEN),
                lock: self.state.clone(),
                locked_out,
                grants_decision: Box::new(grants),
            })),
        }
    }

    /// What a refusal says: the owner, the reason, then `what`.
    fn message(&self, what: &str) -> String {
        format!(
            "supervisor lock by {}{}: {what}",
            self.owner_text(),
            self.state.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        )
    }

    pub fn expired(&self, now: i64) -> bool {
        self.state.expires_at.is_some_and(|t| t <= now)
    }

    pub fn owner_text(&self) -> String {
        match (&self.state.o.u, &self.state.o.key_id) {
            (Some(u), Some(k)) => format!("user {u} (key {k})"),
            (Some(u), None) => format!("user {u}"),
            (None, Some(k)) => format!("API key {k}"),
            (None, None) => "the system".into(),
        }
    }

    /// The `supervisor_locked` refusal, naming the owner and the reason.
    pub fn refusal(&self, what: &str) -> ApiError {
        ApiError::new(ErrorCode::SupervisorLocked, self.message(what))
            .with("lock", serde_json::to_value(self).unwrap_or(Value::Null))
    }
}

/// When a lock given `expires_in` at `now` clears itself (unix ms): more than zero, at most
/// [`MAX_LOCK_TIME`].
pub fn expires_at(expires_in: &Span, now: i64) -> Result<i64, ApiError> {
    let d = match expires_in {
        Span::Secs(s) => std::time::Duration::from_secs(*s),
        Span::Text(t) => {
            crate::config::parse_duration(t).map_err(|e| ApiError::bad_request(format!("expires_in: {e}")))?
        }
    };
    if d.is_zero() || d > MAX_LOCK_TIME {
        return Err(ApiError::bad_request("expires_in must be longer than zero and at most 366d"));
    }
    Ok(now + d.as_millis() as i64)
}

/// The row ids behind an owner a master names: (user, API key); `not_found` for a name that is not.
pub fn owner_rows(conn: &Connection, o: &Actor) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let user_id = match &o.u {
        Some(u) => Some(crate::accounts::require_user(conn, u)?.id),
        None => None,
    };
    let key_row = match &o.key_id {
        Some(k) => Some(rows::key_row(conn, k)?.ok_or_else(|| ApiError::not_found(format!("no API key named {k:?}")))?),
        None => None,
    };
    Ok((user_id, key_row))
}

/// A scope naming the owner's key needs an owner key, one naming the owner user an owner user.
pub fn check_scopes(
    l: Option<Scope>,
    c: Option<Scope>,
    user_id: Option<i64>,
    key_row: Option<i64>,
) -> Result<(), ApiError> {
    for (name, scope) in [("l", l), ("c", c)] {
        match scope {
            Some(Scope::Key) if key_row.is_none() => {
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
    Ok(())
}

/// Stores a new lock (replacing `old`) in the caller's transaction: the row, the audit entry, the
/// retained `supervisor/lock` state and the `supervisor.lock` event.
pub fn record_set(tx: &Connection, actor: &audit::Actor, new: &Lock, old: Option<&Lock>) -> rusqlite::Result<()> {
    rows::store_lock(tx, Some(new))?;
    let detail = json!({"lock": new.state, "replaced": old.map(|o| &o.state)});
    audit::record(tx, actor, "supervisor.lock", None, Outcome::Ok, Some(&detail))?;
    outbox::publish(tx, crate::contract::topics::SUPERVISOR_LOCK, &to_value(&new.state)?, true)?;
    outbox::emit(tx, &SupervisorLocked { lock: new.state.clone(), by: actor.who.clone() })?;
    Ok(())
}

/// Clears the stored lock in the caller's transaction: the row, the audit entry, an empty retained
/// `supervisor/lock` and the `supervisor.unlock` event.
pub fn record_clear(tx: &Connection, actor: &audit::Actor, old: &Lock, cause: UnlockCause) -> rusqlite::Result<()> {
    rows::store_lock(tx, None)?;
    let detail = json!({"lock": old.state, "cause": cause});
    audit::record(tx, actor, "supervisor.unlock", None, Outcome::Ok, Some(&detail))?;
    outbox::publish(tx, crate::contract::topics::SUPERVISOR_LOCK, &Value::Null, true)?;
    let event =
        SupervisorUnlocked { ts: crate::store::now_ms(), by: actor.who.clone(), cause, lock: old.state.clone() };
    outbox::emit(tx, &event)?;
    Ok(())
}

/// At start, in the caller's transaction: the stored lock comes back with
/// `supervisor.lock_survives_restart` unless it expired meanwhile; otherwise it is cleared (audited,
/// the retained state emptied). Returns the lock to hold and a line for the log.
pub fn restore(tx: &Connection, survives: bool, now: i64) -> rusqlite::Result<(Option<Lock>, Option<String>)> {
    let Some(stored) = rows::load_lock(tx)? else { return Ok((None, None)) };
    if survives && !stored.expired(now) {
        let text = format!("supervisor lock by {} restored", stored.owner_text());
        return Ok((Some(stored), Some(text)));
    }
    let (cause, why) = if survives {
        (UnlockCause::Expired, "expired while gatewarden was stopped")
    } else {
        (UnlockCause::Restart, "cleared by the restart")
    };
    record_clear(tx, &audit::Actor::system(), &stored, cause)?;
    Ok((None, Some(format!("supervisor lock by {} {why}", stored.owner_text()))))
}

/// Sends a broadcast in the caller's transaction: the audit entry, `supervisor/message` and the
/// `supervisor.message` event.
pub fn record_broadcast(tx: &Connection, actor: &audit::Actor, msg: &Broadcast) -> rusqlite::Result<()> {
    let payload = to_value(msg)?;
    audit::record(tx, actor, "supervisor.message", None, Outcome::Ok, Some(&payload))?;
    outbox::publish(tx, crate::contract::topics::SUPERVISOR_MESSAGE, &payload, false)?;
    outbox::emit(tx, msg)?;
    Ok(())
}

fn to_value(v: &impl Serialize) -> rusqlite::Result<Value> {
    serde_json::to_value(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lock(l: Option<Scope>, c: Option<Scope>) -> Lock {
        Lock {
            state: LockState {
                o: Actor { u: Some("boss".into()), key_id: Some("boss-key".into()) },
                l,
                c,
                since: 0,
                reason: None,
                expires_at: None,
            },
            user_id: Some(10),
            key_row: Some(20),
        }
    }

    const SAME_USER: Who = Who { user_id: Some(10), key_row: None, master: false, supervisor: true };
    const SAME_KEY: Who = Who { user_id: None, key_row: Some(20), master: false, supervisor: true };
    const OTHER_SUPERVISOR: Who = Who { user_id: Some(11), key_row: None, master: false, supervisor: true };
    const OPERATOR: Who = Who { user_id: Some(12), key_row: None, master: false, supervisor: false };
    const MASTER: Who = Who { user_id: None, key_row: Some(30), master: true, supervisor: false };

    #[test]
    fn scope_table() {
        // (scope, [same user, same key, other supervisor, operator, master])
        let table = [
            (None, [true, true, true, false, true]),
            (Some(Scope::Key), [false, true, false, false, true]),
            (Some(Scope::User), [true, false, false, false, true]),
        ];
        for (scope, expected) in table {
            let k = lock(scope, scope);
            let got = [SAME_USER, SAME_KEY, OTHER_SUPERVISOR, OPERATOR, MASTER].map(|w| k.admits(scope, w).admitted());
            assert_eq!(got, expected, "scope {scope:?}");
        }
    }

    #[test]
    fn the_decision_says_why() {
        let k = lock(Some(Scope::Key), Some(Scope::Key));
        assert_eq!(k.admits(k.state.l, MASTER), Admission::Master);
        assert_eq!(k.admits(k.state.l, SAME_KEY), Admission::Inside);
        assert_eq!(k.admits(k.state.l, OPERATOR), Admission::Outside(LockedOut::NotSupervisor));
        assert_eq!(k.admits(k.state.l, SAME_USER), Admission::Outside(LockedOut::OtherOwner));
    }

    #[test]
    fn wire_shape_is_eva_like() {
        let v = serde_json::to_value(lock(Some(Scope::Key), None)).unwrap();
        assert_eq!(v["o"], json!({"u": "boss", "key_id": "boss-key"}));
        assert_eq!(v["l"], "k");
        assert_eq!(v["c"], Value::Null);
        assert!(v.get("user_id").is_none() && v.get("key_row").is_none());
    }
}
