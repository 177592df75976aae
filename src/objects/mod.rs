//! Objects: things clients create on a resource (recipes, batch records, reports, assignments), who
//! may read them, and their owners.
//!
//! What must never be allowed:
//! - **A reader the rules do not name.** An object of kind K on resource R is read by a live account
//!   only if it holds K read on R now (`current`), or held it when the object was created
//!   (`historical`, exactly as the policy stood then: see [`history`]), or was given this object
//!   (`explicit`); a live superuser reads everything. A disabled, expired or deleted account reads
//!   nothing, whatever it held, and is never listed among readers.
//! - **An object without its owner.** An object is owned by a user; deleting the user deletes its
//!   objects in the same transaction, or gives them to the built-in admin (`accounts.on_delete`).
//! - **Unbounded input.** Kind (a permission name: 64 bytes), name, data, ids per request, objects per owner and in all: each has
//!   its bound below, refused with `bad_request` (or `limit`) naming the field.
//!
//! How: [`may_read`] is the one answer to "may this account read this object?", for checks, show,
//! list and who-can alike; it asks the current [`Index`], then the snapshot of the object's epoch
//! ([`history::History`]), then the explicit readers the caller looked up.

pub mod history;

#[cfg(test)]
mod proptests;

use crate::authz::{Access, Decision, DenyReason, GrantRef, Index, SubjectKey};

/// Longest object name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Largest `data` (its JSON text), in bytes.
pub const MAX_DATA_BYTES: usize = 64 * 1024;
/// Most object ids in one `object.grant` / `object.revoke`.
pub const MAX_IDS: usize = 1000;
/// Most objects one user may own.
pub const MAX_PER_OWNER: u64 = 10_000;
/// Most objects on the gateway.
pub const MAX_OBJECTS: u64 = 1_000_000;
/// Most policy epochs live objects may be spread over: each holds an index snapshot in memory (after
/// a one-account change, about 11 KiB at 10 000 users and 75 KiB at 100 000: benches/objects.rs), so
/// at most about 38 MiB at 100 000 users.
pub const MAX_EPOCHS: usize = 512;
/// Most objects one `object.list` returns.
pub const MAX_LIST: u32 = 1000;

/// An object as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    pub kind: &'a str,
    pub resource: &'a str,
    /// The policy epoch it was created in.
    pub epoch: i64,
    /// Unix ms: the time its historical right is asked at (an account that had expired then had
    /// no right then).
    pub created_at: i64,
}

/// Why an account may read an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// A live superuser.
    Superuser,
    /// K read on the resource now, through this grant.
    Current(GrantRef),
    /// K read on the resource when the object was created, through this grant (as it was then).
    Historical(GrantRef),
    /// Given this object by `object.grant`.
    Explicit,
}

/// Why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The account is not live now (unknown, disabled, expired).
    Account(DenyReason),
    /// No right: what the current grants said (no grant, or denied by one).
    Grants(DenyReason),
}

/// Every reason `subject` may read `object` now, in the order current, historical, explicit (a
/// superuser: only [`Why::Superuser`]); empty when the account is live but has none. `then` is the
/// index of the object's epoch (None: the epoch is not held, which [`history`] never lets happen for
/// a live object; the historical right is then refused, never guessed).
pub fn reasons(
    now_index: &Index,
    then: Option<&Index>,
    object: &Object<'_>,
    explicit: bool,
    subject: SubjectKey,
    now_ms: i64,
) -> Result<Vec<Why>, DenyReason> {
    let account = now_index.principal(subject, now_ms)?;
    if account.superuser {
        return Ok(vec![Why::Superuser]);
    }
    let mut out = Vec::new();
    if let Decision::Allow(g) = now_index.check(subject, object.kind, Access::Read, object.resource, now_ms) {
        out.push(Why::Current(g));
    }
    if let Some(Decision::Allow(g)) =
        then.map(|then| then.check(subject, object.kind, Access::Read, object.resource, object.created_at))
    {
        out.push(Why::Historical(g));
    }
    if explicit {
        out.push(Why::Explicit);
    }
    Ok(out)
}

/// May `subject` read `object` now? The first reason, or why not. `explicit` is asked only when
/// the current and historical rights do not allow (a lookup the caller may make lazily).
pub fn may_read(
    now_index: &Index,
    then: Option<&Index>,
    object: &Object<'_>,
    explicit: impl FnOnce() -> bool,
    subject: SubjectKey,
    now_ms: i64,
) -> Result<Why, Refusal> {
    let account = now_index.principal(subject, now_ms).map_err(Refusal::Account)?;
    if account.superuser {
        return Ok(Why::Superuser);
    }
    let current = now_index.check(subject, object.kind, Access::Read, object.resource, now_ms);
    if let Decision::Allow(g) = current {
        return Ok(Why::Current(g));
    }
    if let Some(Decision::Allow(g)) =
        then.map(|then| then.check(subject, object.kind, Access::Read, object.resource, object.created_at))
    {
        return Ok(Why::Historical(g));
    }
    if matches!(subject, SubjectKey::User(_)) && explicit() {
        return Ok(Why::Explicit);
    }
    match current {
        Decision::Deny(reason) => Err(Refusal::Grants(reason)),
        Decision::Allow(_) => unreachable!("an allow returned above"),
    }
}

/// May `subject` write objects of `kind` on `resource` now (create one, delete another's)? A live
/// superuser may.
pub fn may_write(index: &Index, kind: &str, resource: &str, subject: SubjectKey, now_ms: i64) -> Decision {
    match index.principal(subject, now_ms) {
        Err(reason) => Decision::Deny(reason),
        Ok(a) if a.superuser => Decision::Allow(GrantRef { grant_id: 0, origin: crate::authz::GrantOrigin::Direct }),
        Ok(_) => index.check(subject, kind, Access::Write, resource, now_ms),
    }
}

/// An object's name: 1 to [`MAX_NAME_LEN`] bytes, no control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("name: 1 to {MAX_NAME_LEN} bytes (not only spaces), got {}", name.len()));
    }
    if name.chars().any(char::is_control) {
        return Err("name: no control characters".into());
    }
    Ok(())
}
