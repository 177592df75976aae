//! The supervisor lock, with EVA ICS's SFA semantics: what a lock is and whom it admits (the
//! decision, not the transport or the storage; `api::supervisor` serves the methods, `store::lock`
//! keeps it in the file).
//!
//! A lock has an owner `o = {u, key_id}` (user name and API key name) and two scopes, each `null`
//! (any supervisor), `"k"` (the owner's API key) or `"u"` (the owner user, authenticated as a user,
//! not with a key):
//! - `l`, who may still write while it is set: every write-class decision for anyone outside `l`
//!   fails with `supervisor_locked`;
//! - `c`, who may clear it or replace it with another lock.
//!
//! A "supervisor" is a subject holding the `supervisor.lock` permission. Master API keys and the
//! built-in admin pass every lock and may always clear it.
//!
//! Must never happen: a read blocked by the lock; a caller admitted by a scope it is not inside.

use crate::contract::Actor;
use crate::contract::policy::{Decision, Denied, LockRefusal, LockScope, LockedOut, SupervisorLock};
use crate::protocol::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest `expires_in` of a lock: a year and a day (longer would be a mistake, and far longer would
/// overflow the date arithmetic).
pub const MAX_LOCK_TIME: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

/// `"k"`: the owner's API key; `"u"`: the owner user. `None` (JSON null) is "any supervisor".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "k")]
    Key,
    #[serde(rename = "u")]
    User,
}

impl Scope {
    /// The wire and database code: `"k"` or `"u"`.
    /// The wire and database code.
    pub fn code(self) -> &'static str {
        match self {
            Scope::Key => "k",
            Scope::User => "u",
        }
    }

    pub fn from_code(code: &str) -> Option<Scope> {
        [Scope::Key, Scope::User].into_iter().find(|s| s.code() == code)
    }

    pub fn as_str(s: Option<Scope>) -> &'static str {
        match s {
            None => "any supervisor",
            Some(Scope::Key) => "the owner's API key",
            Some(Scope::User) => "the owner user",
        }
    }
}

/// The lock owner as the wire shows it: user name and API key name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub u: Option<String>,
    pub key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lock {
    pub o: Owner,
    pub l: Option<Scope>,
    pub c: Option<Scope>,
    pub since: i64,
    pub reason: Option<String>,
    pub expires_at: Option<i64>,
    /// Row ids behind `o`, for matching callers; never on the wire.
    #[serde(skip)]
    pub user_id: Option<i64>,
    #[serde(skip)]
    pub key: Option<i64>,
}

/// Who is asking, as the lock sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Who {
    pub user_id: Option<i64>,
    pub key: Option<i64>,
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
            Some(Scope::Key) => who.key.is_some() && who.key == self.key,
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
        match self.admits(self.l, who) {
            Admission::Master | Admission::Inside => grants,
            Admission::Outside(locked_out) => Decision::Deny(Denied::SupervisorLocked(LockRefusal {
                message: self.message(WRITES_FROZEN),
                lock: self.view(),
                locked_out,
                grants_decision: Box::new(grants),
            })),
        }
    }

    /// The lock in the contract's words.
    pub fn view(&self) -> SupervisorLock {
        let scope = |s: Option<Scope>| {
            s.map(|s| match s {
                Scope::Key => LockScope::Key,
                Scope::User => LockScope::User,
            })
        };
        SupervisorLock {
            o: Actor { u: self.o.u.clone(), key_id: self.o.key_id.clone() },
            l: scope(self.l),
            c: scope(self.c),
            since: self.since,
            reason: self.reason.clone(),
            expires_at: self.expires_at,
        }
    }

    /// What a refusal says: the owner, the reason, then `what`.
    fn message(&self, what: &str) -> String {
        format!(
            "supervisor lock by {}{}: {what}",
            self.owner_text(),
            self.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        )
    }

    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    pub fn owner_text(&self) -> String {
        match (&self.o.u, &self.o.key_id) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lock(l: Option<Scope>, c: Option<Scope>) -> Lock {
        Lock {
            o: Owner { u: Some("boss".into()), key_id: Some("boss-key".into()) },
            l,
            c,
            since: 0,
            reason: None,
            expires_at: None,
            user_id: Some(10),
            key: Some(20),
        }
    }

    const SAME_USER: Who = Who { user_id: Some(10), key: None, master: false, supervisor: true };
    const SAME_KEY: Who = Who { user_id: None, key: Some(20), master: false, supervisor: true };
    const OTHER_SUPERVISOR: Who = Who { user_id: Some(11), key: None, master: false, supervisor: true };
    const OPERATOR: Who = Who { user_id: Some(12), key: None, master: false, supervisor: false };
    const MASTER: Who = Who { user_id: None, key: Some(30), master: true, supervisor: false };

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
        assert_eq!(k.admits(k.l, MASTER), Admission::Master);
        assert_eq!(k.admits(k.l, SAME_KEY), Admission::Inside);
        assert_eq!(k.admits(k.l, OPERATOR), Admission::Outside(LockedOut::NotSupervisor));
        assert_eq!(k.admits(k.l, SAME_USER), Admission::Outside(LockedOut::OtherOwner));
    }

    #[test]
    fn a_write_outside_the_lock_is_refused_naming_the_owner() {
        use crate::contract::policy::{Allowed, DecidingGrant, GrantOrigin};
        let mut k = lock(Some(Scope::User), None);
        k.reason = Some("commissioning".into());
        let allowed = Decision::Allow(Allowed::AllowedBy(DecidingGrant { grant_id: 3, origin: GrantOrigin::Direct }));
        assert_eq!(k.decide_write(SAME_USER, allowed.clone()), allowed);
        assert_eq!(k.decide_write(MASTER, allowed.clone()), allowed);
        let Decision::Deny(Denied::SupervisorLocked(r)) = k.decide_write(SAME_KEY, allowed.clone()) else {
            panic!("the owner's key is outside a same-user scope");
        };
        assert_eq!(r.locked_out, LockedOut::OtherOwner);
        assert_eq!(r.lock.o, Actor { u: Some("boss".into()), key_id: Some("boss-key".into()) });
        assert_eq!(r.lock.l, Some(LockScope::User));
        assert_eq!(*r.grants_decision, allowed);
        assert_eq!(r.message, k.refusal(WRITES_FROZEN).message);
        assert!(r.message.contains("boss") && r.message.contains("commissioning"), "{}", r.message);
        // The lock's view is its wire shape.
        assert_eq!(serde_json::to_value(k.view()).unwrap(), serde_json::to_value(&k).unwrap());
        // A deny stays the grants' deny.
        let denied = Decision::Deny(Denied::NoGrant);
        assert_eq!(k.decide_write(OPERATOR, denied.clone()), denied);
    }

    #[test]
    fn wire_shape_is_eva_like() {
        let v = serde_json::to_value(lock(Some(Scope::Key), None)).unwrap();
        assert_eq!(v["o"], json!({"u": "boss", "key_id": "boss-key"}));
        assert_eq!(v["l"], "k");
        assert_eq!(v["c"], Value::Null);
        assert!(v.get("user_id").is_none() && v.get("key").is_none());
    }
}
