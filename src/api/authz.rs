//! `authz.check`, `authz.explain`, `authz.who_can`: the questions HMIs and local services ask.
//!
//! A caller may always ask about itself; asking about someone else needs `users.view`, asked before
//! the name is looked up (an unprivileged caller learns nothing about which names exist). Answers
//! come from the compiled index: whether the subject is live, and a superuser, is the same answer
//! every credential gets ([`super::auth::live`]); an expired master key is no superuser.
//!
//! One decision, whoever decides ([`Decision`]): a live superuser passes; otherwise the grants
//! decide; and a write the grants allow is the supervisor lock's to refuse ([`Lock::decide_write`]).
//! `authz.check` answers that refusal with the `supervisor_locked` error, as every write-class
//! decision does while locked; `authz.explain` shows it as the decision, with what the grants said.
//!
//! [`Lock::decide_write`]: crate::supervisor::Lock::decide_write

use super::auth::{Caller, Principal};
use super::{Ctx, supervisor};
use crate::authz::{Access, SubjectKey};
use crate::contract::policy::{
    Allowed, Answer, AuthzCheck, AuthzExplain, AuthzWhoCan, Decision, Denied, Explanation, LockRefusal, Passes,
    SubjectKind,
};
use crate::protocol::{ApiError, ErrorCode};
use crate::store::{now_ms, policy};

/// A question is only asked about a canonical resource id, or about the gateway itself (`*`, what the
/// built-in permissions are granted on): the engine never sees an id no inventory could hold.
fn check_resource(resource: &str) -> Result<(), ApiError> {
    if resource == super::GATEWAY {
        return Ok(());
    }
    crate::authz::validate_resource_id(resource).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The subject a question is about, and whether it is a superuser (which the index does not model).
struct Subject {
    key: SubjectKey,
    name: String,
    superuser: bool,
}

fn resolve(ctx: &Ctx, caller: &Caller, text: Option<&str>) -> Result<Subject, ApiError> {
    let own = match text {
        None => true,
        Some(t) => caller.is_named(t),
    };
    if own {
        let key = caller.subject().ok_or_else(|| ApiError::unauthenticated("who are you? pass --token"))?;
        let name = match &caller.principal {
            Principal::User { name, .. } => name.clone(),
            Principal::Key { name, .. } => format!("key:{name}"),
            Principal::Anonymous => String::new(),
        };
        return Ok(Subject { key, name, superuser: caller.is_superuser() });
    }
    let text = text.unwrap_or_default();
    ctx.authorize(caller, "users.view")?;
    let conn = &ctx.store().conn;
    let key = if let Some(key_name) = text.strip_prefix("key:") {
        let id = policy::api_key_id(conn, key_name)?;
        SubjectKey::Key(id.ok_or_else(|| ApiError::not_found(format!("no API key named {key_name:?}")))?)
    } else {
        SubjectKey::User(crate::accounts::require_user(conn, text)?.id)
    };
    // Superuser only while live: the index says so, as it does for the subject's own requests.
    let superuser = ctx.index().principal(key, now_ms()).is_ok_and(|a| a.superuser);
    Ok(Subject { key, name: text.to_string(), superuser })
}

/// The one decision about a question: a live superuser passes (the grants are not asked);
/// otherwise `grants` decides, and the supervisor lock has the last word on a write.
fn decide(
    ctx: &Ctx,
    subject: &Subject,
    access: Access,
    grants: impl FnOnce(SubjectKey) -> crate::authz::Decision,
) -> Decision {
    if subject.superuser {
        return Decision::Allow(Allowed::Superuser);
    }
    let grants = Decision::from(&grants(subject.key));
    match (access, ctx.lock()) {
        (Access::Write, Some(lock)) => {
            lock.decide_write(supervisor::who_subject(ctx, subject.key, subject.superuser), grants)
        }
        _ => grants,
    }
}

/// `authz.check`'s form of a refusal by the lock: the `supervisor_locked` error, with the lock.
fn locked(r: LockRefusal) -> ApiError {
    let lock = serde_json::to_value(&r.lock).unwrap_or_default();
    ApiError::new(ErrorCode::SupervisorLocked, r.message).with("lock", lock)
}

pub fn check(ctx: &Ctx, caller: &Caller, AuthzCheck(p): AuthzCheck) -> Result<Answer, ApiError> {
    check_resource(&p.resource)?;
    let subject = resolve(ctx, caller, p.subject.as_deref())?;
    let index = ctx.index();
    let decision =
        decide(ctx, &subject, p.access, |key| index.check(key, &p.permission, p.access, &p.resource, now_ms()));
    if let Decision::Deny(Denied::SupervisorLocked(r)) = decision {
        return Err(locked(r));
    }
    Ok(Answer { subject: subject.name, permission: p.permission, resource: p.resource, access: p.access, decision })
}

pub fn explain(ctx: &Ctx, caller: &Caller, AuthzExplain(p): AuthzExplain) -> Result<Explanation, ApiError> {
    check_resource(&p.resource)?;
    let subject = resolve(ctx, caller, p.subject.as_deref())?;
    let index = ctx.index();
    let mut matched = Vec::new();
    let decision = decide(ctx, &subject, p.access, |key| {
        let e = index.explain(key, &p.permission, p.access, &p.resource, now_ms());
        matched = e.matched_grants();
        e.decision
    });
    Ok(Explanation {
        subject: subject.name,
        permission: p.permission,
        resource: p.resource,
        access: p.access,
        decision,
        matched,
    })
}

/// Every enabled, unexpired account that passes, superusers included (marked as such).
pub fn who_can(ctx: &Ctx, _caller: &Caller, p: AuthzWhoCan) -> Result<Vec<Passes>, ApiError> {
    check_resource(&p.resource)?;
    let now = now_ms();
    let index = ctx.index();
    let mut out: Vec<Passes> = Vec::new();
    // Superusers pass everything: the admin and live master keys, as the index knows them.
    for s in index.superusers(now).into_iter().chain(index.who_can(&p.permission, p.access, &p.resource, now)) {
        let Ok(a) = index.principal(s, now) else { continue };
        let kind = match s {
            SubjectKey::User(_) => SubjectKind::User,
            SubjectKey::Key(_) => SubjectKind::Key,
        };
        if !out.iter().any(|o| o.kind == kind && o.name == a.name) {
            out.push(Passes { kind, name: a.name.to_string(), superuser: a.superuser });
        }
    }
    Ok(out)
}
