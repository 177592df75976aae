//! Authorization: the policy model (roles, grants, resource selectors, resource groups) and the compiled
//! in-memory [`Index`] that answers "may this subject do this to that resource?" on the hot path.
//!
//! What must never be allowed:
//! - **A deny overridden by an allow.** If any grant with effect `deny` matches a request, the answer is
//!   deny, whatever allows also match, however they are ordered, wherever they come from (role or direct).
//! - **A disabled or expired account allowed.** An account that is disabled, or whose `expires_at` is at or
//!   before the time of the check, is denied before any grant is looked at; it is never listed by
//!   [`Index::who_can`]. An account the index does not know is denied too.
//! - **A write allowed by a read-only grant** (or a read by a write-only one). Write does not imply read:
//!   each access is granted on its own.
//! - **A stale index after a change.** A published [`Index`] is never changed and knows nothing of
//!   storage. Whoever changes roles, grants, groups or accounts makes the next index from the committed
//!   rows (a clone of the current one with the changed roles, accounts and groups replaced, or a fresh
//!   build), in the same step as the transaction, and swaps it in whole; a check sees the old policy or
//!   the new one, never a mix.
//!
//! How: [`Index::build`] compiles a [`Policy`] (plain data, no SQLite); [`Index::set_role`],
//! [`Index::set_subject`] and [`Index::set_group`] change one entity of a clone, copying only what they
//! touch. Permission names, resources and group names are interned to integers. Each role's grants are
//! compiled once, per permission split by access and effect: the lowest grant for `*`, hash maps from
//! exact resource and from group to the lowest grant, and precompiled globs in grant order; an account
//! holds its role ids and its own compiled direct grants. Group members are expanded into a resource ->
//! groups table. A check combines the account's few sources with [`rustc_hash`]'s hasher and allocates
//! nothing. When several grants match, the one with the lowest grant id decides (ties: role grants by
//! role id before direct grants), so answers are deterministic and [`Index::explain`] can say which
//! grant decided.
//!
//! Superusers (the built-in admin, master API keys) are marked on their account but do not pass
//! [`Index::check`] by themselves: callers ask [`Index::principal`] whether an account is live (and a
//! superuser) before asking about grants, so liveness has one answer for every path.
//!
//! The delegation ceiling lives here too ([`Index::holds`], [`Index::rights_within`]): a caller may
//! hand out, take away or act on only what it holds itself, decided from the same compiled data.

pub(crate) mod glob;
mod index;
mod resource_id;
mod selector;

#[cfg(test)]
mod proptests;

use serde::{Deserialize, Serialize};
use std::fmt;

pub use index::{AccountInfo, Index};
pub use resource_id::{MAX_RESOURCE_ID_LEN, ResourceIdError, validate_resource_id};
pub use selector::{MAX_GLOB_DEEP, MAX_GLOB_SEGMENTS, MAX_SELECTOR_LEN, Selector, SelectorError, is_valid_group_name};

/// The kind of access a check asks for, and what a grant does: the contract's words (write does
/// not imply read; deny wins over allow).
pub use crate::contract::policy::{Access, Effect, RoleName};

/// One grant: a permission, the accesses it covers, the resources it covers, and its effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: i64,
    pub permission: String,
    pub read: bool,
    pub write: bool,
    pub selector: Selector,
    #[serde(default)]
    pub effect: Effect,
}

impl Grant {
    /// Whether this grant covers `access` (a read check needs `read`, a write check needs `write`).
    pub fn covers(&self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
        }
    }
}

/// Who is asking: a user account or an API key, by their row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum SubjectKey {
    User(i64),
    Key(i64),
}

impl SubjectKey {
    /// The account's row id (users and keys are numbered apart).
    pub fn id(self) -> i64 {
        match self {
            SubjectKey::User(id) | SubjectKey::Key(id) => id,
        }
    }
}

/// An account as the index sees it: its state, the roles it holds and its direct grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub key: SubjectKey,
    pub name: String,
    pub enabled: bool,
    /// Unix time in milliseconds; the account is expired when `expires_at <= now`.
    pub expires_at: Option<i64>,
    /// Role ids; ids of roles that do not exist are ignored.
    pub roles: Vec<i64>,
    pub direct: Vec<Grant>,
    /// The built-in admin or a master API key: passes every check while it is live. The index
    /// answers whether it is live; callers let a live superuser pass before asking about grants.
    #[serde(default)]
    pub superuser: bool,
    /// For an API key: the user that owns it.
    #[serde(default)]
    pub owner: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub grants: Vec<Grant>,
}

/// A resource group: `@name` in a selector matches its member resource ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub members: Vec<String>,
}

/// Everything the index is built from. Duplicate role ids or subject keys: the first one counts.
/// Duplicate group names: their members are merged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub roles: Vec<Role>,
    pub subjects: Vec<Subject>,
    pub groups: Vec<Group>,
}

/// Where an effective grant comes from.
///
/// The role name travels inline ([`RoleName`], the contract's own), so answering a check copies it: no allocation and no
/// reference count shared between the threads that answer checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GrantOrigin {
    Role { id: i64, name: RoleName },
    Direct,
}

/// The grant that decided a check, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRef {
    pub grant_id: i64,
    pub origin: GrantOrigin,
}

/// The answer to a check: allowed by one grant, or denied with a reason. Never a bare bool.
///
/// JSON: `{"decision":"allow","grant_id":7,"origin":{"kind":"role","id":2,"name":"operators"}}`,
/// `{"decision":"deny","reason":"no_grant"}`, `{"decision":"deny","reason":"denied_by","grant_id":9,...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Allow(GrantRef),
    Deny(DenyReason),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The grant that decided, if a grant did (an allow, or a deny by a deny grant).
    pub fn grant(&self) -> Option<&GrantRef> {
        match self {
            Decision::Allow(grant) | Decision::Deny(DenyReason::DeniedBy(grant)) => Some(grant),
            Decision::Deny(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DenyReason {
    /// No grant allows this permission and access on this resource.
    NoGrant,
    /// A deny grant matched.
    DeniedBy(GrantRef),
    UnknownSubject,
    AccountDisabled,
    AccountExpired,
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::NoGrant => f.write_str("no grant allows it"),
            DenyReason::DeniedBy(grant) => write!(f, "denied by grant {}", grant.grant_id),
            DenyReason::UnknownSubject => f.write_str("unknown account"),
            DenyReason::AccountDisabled => f.write_str("account disabled"),
            DenyReason::AccountExpired => f.write_str("account expired"),
        }
    }
}

/// One effective grant that matched a request (permission, access and selector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matched {
    pub grant: Grant,
    pub origin: GrantOrigin,
    /// True for exactly the grant that decided, if a grant decided.
    pub decided: bool,
}

/// A decision with every grant that matched, in decision order (grant id, then role grants by role id
/// before direct grants). For a disabled or expired account the grants that would have matched are still
/// listed, none marked as deciding; for an unknown account the list is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub decision: Decision,
    pub matched: Vec<Matched>,
}

/// The engine's answers in the contract's words. The engine keeps its own types: they share role
/// names with the index and allocate nothing on the hot path; these conversions run once per
/// answer that leaves the daemon.
mod answer {
    use super::{Decision, DenyReason, Explanation, Grant, GrantOrigin, GrantRef, Matched};
    use crate::contract::policy as wire;

    impl From<&GrantOrigin> for wire::GrantOrigin {
        fn from(o: &GrantOrigin) -> wire::GrantOrigin {
            match o {
                GrantOrigin::Role { id, name } => wire::GrantOrigin::Role { id: *id, name: name.clone() },
                GrantOrigin::Direct => wire::GrantOrigin::Direct,
            }
        }
    }

    impl From<&GrantRef> for wire::DecidingGrant {
        fn from(g: &GrantRef) -> wire::DecidingGrant {
            wire::DecidingGrant { grant_id: g.grant_id, origin: (&g.origin).into() }
        }
    }

    impl From<&Decision> for wire::Decision {
        fn from(d: &Decision) -> wire::Decision {
            match d {
                Decision::Allow(g) => wire::Decision::Allow(wire::Allowed::AllowedBy(g.into())),
                Decision::Deny(reason) => wire::Decision::Deny(match reason {
                    DenyReason::NoGrant => wire::Denied::NoGrant,
                    DenyReason::DeniedBy(g) => wire::Denied::DeniedBy(g.into()),
                    DenyReason::UnknownSubject => wire::Denied::UnknownSubject,
                    DenyReason::AccountDisabled => wire::Denied::AccountDisabled,
                    DenyReason::AccountExpired => wire::Denied::AccountExpired,
                }),
            }
        }
    }

    impl From<&Grant> for wire::GrantRule {
        fn from(g: &Grant) -> wire::GrantRule {
            wire::GrantRule {
                id: g.id,
                permission: g.permission.clone(),
                read: g.read,
                write: g.write,
                selector: g.selector.as_text(),
                effect: g.effect,
            }
        }
    }

    impl From<&Matched> for wire::MatchedGrant {
        fn from(m: &Matched) -> wire::MatchedGrant {
            wire::MatchedGrant { grant: (&m.grant).into(), origin: (&m.origin).into(), decided: m.decided }
        }
    }

    impl Explanation {
        /// The grants that matched, as `authz.explain` lists them.
        pub fn matched_grants(&self) -> Vec<wire::MatchedGrant> {
            self.matched.iter().map(Into::into).collect()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::contract::policy::RoleName;

        #[test]
        fn role_names_inline_up_to_64_bytes_and_shared_beyond() {
            for len in [0, 1, 63, 64, 65, 300] {
                let text = "é".repeat(len / 2) + &"x".repeat(len % 2);
                let name = RoleName::from(text.as_str());
                assert_eq!(name.as_str(), text);
                assert_eq!(name.is_inline(), text.len() <= 64, "{len}");
                let json = serde_json::to_string(&name).unwrap();
                assert_eq!(json, serde_json::to_string(&text).unwrap());
                assert_eq!(serde_json::from_str::<RoleName>(&json).unwrap(), name);
            }
        }

        #[test]
        fn the_engine_and_the_wire_say_the_same() {
            // The engine's own JSON is what the wire said before the contract had types.
            let g = GrantRef { grant_id: 9, origin: GrantOrigin::Role { id: 2, name: "operators".into() } };
            for d in [
                Decision::Allow(g.clone()),
                Decision::Deny(DenyReason::DeniedBy(g)),
                Decision::Deny(DenyReason::NoGrant),
                Decision::Deny(DenyReason::AccountDisabled),
            ] {
                let engine = serde_json::to_value(&d).unwrap();
                let mut wire = serde_json::to_value(wire::Decision::from(&d)).unwrap();
                if d.is_allowed() {
                    // Added on the wire: an allow says its reason too.
                    assert_eq!(wire["reason"], "allowed_by");
                    wire.as_object_mut().unwrap().remove("reason");
                }
                assert_eq!(engine, wire);
            }
        }
    }
}
