//! `authz.check`, `authz.check_many`, `authz.allowed`, `authz.explain`, `authz.who_can`: the
//! questions HMIs and local services ask.
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
//! The batches (`authz.check_many`, `authz.allowed`: an HMI opening a screen of a few hundred tags)
//! answer each question with the same code as `authz.check`, from one policy and one lock taken once
//! per request. A batch resolves each subject once and asks the caller's `users.view` at most once,
//! so a refused batch is audited once, not once per question. In `authz.check_many` an error
//! `authz.check` would give is that question's slot, never the batch's; `authz.allowed` has one
//! subject, so its errors (and the lock's refusal of a write) are the request's.
//!
//! [`Lock::decide_write`]: crate::supervisor::Lock::decide_write

use super::auth::{Caller, Principal};
use super::{Ctx, supervisor};
use crate::authz::{Access, Index, SubjectKey};
use crate::contract::Method;
use crate::contract::policy::{
    Allowed, AllowedResources, Answer, AuthzAllowed, AuthzCheck, AuthzCheckMany, AuthzExplain, AuthzWhoCan, Checked,
    Decision, Denied, Explanation, LockRefusal, MAX_BATCH, ManyAnswers, Passes, Question, SubjectKind,
};
use crate::objects::{Refusal, Why};
use crate::protocol::{ApiError, ErrorCode};
use crate::store::{now_ms, policy};
use std::collections::HashMap;
use std::sync::Arc;

/// A question is only asked about a canonical resource id, or about the gateway itself (`*`, what the
/// built-in permissions are granted on): the engine never sees an id no inventory could hold.
fn check_resource(resource: &str) -> Result<(), ApiError> {
    if resource == super::GATEWAY {
        return Ok(());
    }
    crate::authz::validate_resource_id(resource).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// What every answer of one request is decided from: one compiled policy, one supervisor lock, one
/// clock reading. A batch takes it once, so its answers never mix two policies.
struct View {
    index: Arc<Index>,
    lock: Option<Arc<supervisor::Lock>>,
    now: i64,
}

impl View {
    fn of(ctx: &Ctx) -> View {
        View { index: ctx.index(), lock: ctx.lock(), now: now_ms() }
    }
}

/// The subject a question is about, and whether it is a superuser (which the index does not model).
#[derive(Clone)]
struct Subject {
    key: SubjectKey,
    name: String,
    superuser: bool,
    /// The caller itself, on a session that holds a read-only seat: its writes are refused.
    read_only_seat: bool,
}

impl Subject {
    /// `read_only_seat` for a write asked by a caller on a read-only seat about itself.
    fn may_ask(&self, access: Access) -> Result<(), ApiError> {
        if access == Access::Write && self.read_only_seat {
            return Err(super::auth::read_only_seat());
        }
        Ok(())
    }
}

/// Whether a question names the caller itself (absent, or the caller's own name): decided without
/// looking the name up, so asking tells nothing.
fn is_own(caller: &Caller, text: Option<&str>) -> bool {
    text.is_none_or(|t| caller.is_named(t))
}

/// The caller as the subject of its own questions.
fn own(caller: &Caller) -> Result<Subject, ApiError> {
    let key = caller.subject().ok_or_else(|| ApiError::unauthenticated("who are you? pass --token"))?;
    let name = match &caller.principal {
        Principal::User { name, .. } => name.clone(),
        Principal::Key { name, .. } => format!("key:{name}"),
        Principal::Anonymous => String::new(),
    };
    Ok(Subject { key, name, superuser: caller.is_superuser(), read_only_seat: caller.read_only_seat })
}

/// Another account by name (`key:NAME` for an API key). Only after the caller's `users.view` was
/// asked: an unprivileged caller learns nothing about which names exist.
fn look_up(ctx: &Ctx, view: &View, text: &str) -> Result<Subject, ApiError> {
    let key = {
        let conn = &ctx.store().conn;
        if let Some(key_name) = text.strip_prefix("key:") {
            let id = policy::api_key_id(conn, key_name)?;
            SubjectKey::Key(id.ok_or_else(|| ApiError::not_found(format!("no API key named {key_name:?}")))?)
        } else {
            SubjectKey::User(crate::accounts::require_user(conn, text)?.id)
        }
    };
    // Superuser only while live: the index says so, as it does for the subject's own requests.
    let superuser = view.index.principal(key, view.now).is_ok_and(|a| a.superuser);
    Ok(Subject { key, name: text.to_string(), superuser, read_only_seat: false })
}

fn resolve(ctx: &Ctx, view: &View, caller: &Caller, text: Option<&str>) -> Result<Subject, ApiError> {
    match text {
        Some(text) if !is_own(caller, Some(text)) => {
            ctx.authorize(caller, "users.view")?;
            look_up(ctx, view, text)
        }
        _ => own(caller),
    }
}

/// The one decision about a question: a live superuser passes (the grants are not asked);
/// otherwise `grants` decides, and the supervisor lock has the last word on a write.
fn decide(
    view: &View,
    subject: &Subject,
    access: Access,
    grants: impl FnOnce(SubjectKey) -> crate::authz::Decision,
) -> Decision {
    if subject.superuser {
        return Decision::Allow(Allowed::Superuser);
    }
    let grants = Decision::from(&grants(subject.key));
    match (access, &view.lock) {
        (Access::Write, Some(lock)) => {
            lock.decide_write(supervisor::who_in(&view.index, subject.key, subject.superuser, view.now), grants)
        }
        _ => grants,
    }
}

/// `authz.check`'s form of a refusal by the lock: the `supervisor_locked` error, with the lock.
fn locked(r: LockRefusal) -> ApiError {
    let lock = serde_json::to_value(&r.lock).unwrap_or_default();
    ApiError::new(ErrorCode::SupervisorLocked, r.message).with("lock", lock)
}

/// `authz.check`'s answer to a question about `subject` (whose resource id is checked already).
fn answer(view: &View, subject: &Subject, q: Question) -> Result<Answer, ApiError> {
    subject.may_ask(q.access)?;
    let decision =
        decide(view, subject, q.access, |key| view.index.check(key, &q.permission, q.access, &q.resource, view.now));
    if let Decision::Deny(Denied::SupervisorLocked(r)) = decision {
        return Err(locked(r));
    }
    Ok(Answer {
        subject: subject.name.clone(),
        permission: q.permission,
        resource: q.resource,
        access: q.access,
        object: None,
        decision,
    })
}

pub fn check(ctx: &Ctx, caller: &Caller, p: AuthzCheck) -> Result<Answer, ApiError> {
    let object = match (p.resource, p.object) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("object: give either resource or object, not both")),
        (None, None) => return Err(ApiError::bad_request("resource: required (or object)")),
        (Some(resource), None) => {
            let permission = p.permission.ok_or_else(|| ApiError::bad_request("permission: required with resource"))?;
            check_resource(&resource)?;
            let view = View::of(ctx);
            let subject = resolve(ctx, &view, caller, p.subject.as_deref())?;
            let q = Question { subject: p.subject, permission, resource, access: p.access };
            return answer(&view, &subject, q);
        }
        (None, Some(object)) => object,
    };
    let view = View::of(ctx);
    let subject = resolve(ctx, &view, caller, p.subject.as_deref())?;
    subject.may_ask(p.access)?;
    let row = super::objects::find(ctx, object)?;
    if let Some(permission) = p.permission.as_deref().filter(|&k| k != row.kind) {
        return Err(ApiError::bad_request(format!(
            "permission: object {object} is of kind {}, not {permission}",
            row.kind
        )));
    }
    let decision = match p.access {
        Access::Write => decide(&view, &subject, Access::Write, |key| {
            view.index.check(key, &row.kind, Access::Write, &row.resource, view.now)
        }),
        Access::Read if subject.superuser => Decision::Allow(Allowed::Superuser),
        Access::Read => match super::objects::decide_read(ctx, &view.index, &row, subject.key, view.now) {
            Ok(Why::Superuser) => Decision::Allow(Allowed::Superuser),
            Ok(Why::Current(g)) => Decision::Allow(Allowed::AllowedBy((&g).into())),
            Ok(Why::Historical(g)) => Decision::Allow(Allowed::Historical((&g).into())),
            Ok(Why::Explicit) => Decision::Allow(Allowed::Explicit),
            Err(Refusal::Account(r) | Refusal::Grants(r)) => Decision::from(&crate::authz::Decision::Deny(r)),
        },
    };
    if let Decision::Deny(Denied::SupervisorLocked(r)) = decision {
        return Err(locked(r));
    }
    Ok(Answer {
        subject: subject.name,
        permission: row.kind,
        resource: row.resource,
        access: p.access,
        object: Some(object),
        decision,
    })
}

/// Refuses a batch over [`MAX_BATCH`] items, before any is answered.
fn bounded(field: &str, n: usize) -> Result<(), ApiError> {
    if n > MAX_BATCH {
        return Err(ApiError::bad_request(format!("{field}: at most {MAX_BATCH} per request, got {n}")));
    }
    Ok(())
}

/// The subjects of one batch, each resolved once: the caller's own, and others' by name after one
/// `users.view` check (refused: audited once for the batch, and every such question gets the error).
struct Subjects<'a> {
    ctx: &'a Ctx,
    caller: &'a Caller,
    own: Option<Result<Subject, ApiError>>,
    may_view: Option<Result<(), ApiError>>,
    others: HashMap<String, Result<Subject, ApiError>>,
}

impl<'a> Subjects<'a> {
    fn new(ctx: &'a Ctx, caller: &'a Caller) -> Subjects<'a> {
        Subjects { ctx, caller, own: None, may_view: None, others: HashMap::new() }
    }

    fn get(&mut self, view: &View, text: Option<&str>) -> &Result<Subject, ApiError> {
        let (ctx, caller) = (self.ctx, self.caller);
        match text {
            Some(text) if !is_own(caller, Some(text)) => {
                let may_view = self
                    .may_view
                    .get_or_insert_with(|| ctx.authorize_for(caller, "users.view", AuthzCheckMany::NAME))
                    .clone();
                if !self.others.contains_key(text) {
                    let subject = may_view.and_then(|()| look_up(ctx, view, text));
                    self.others.insert(text.to_string(), subject);
                }
                &self.others[text]
            }
            _ => self.own.get_or_insert_with(|| own(caller)),
        }
    }
}

/// `authz.check_many`: each question answered as `authz.check` answers it, from one policy; an error
/// `authz.check` would give is that question's slot, never the batch's.
pub fn check_many(ctx: &Ctx, caller: &Caller, p: AuthzCheckMany) -> Result<ManyAnswers, ApiError> {
    bounded("checks", p.checks.len())?;
    if caller.subject().is_none() {
        return Err(ApiError::unauthenticated("authz.check_many needs credentials: pass --token"));
    }
    let view = View::of(ctx);
    let mut subjects = Subjects::new(ctx, caller);
    let mut results = Vec::with_capacity(p.checks.len());
    for q in p.checks {
        let answered = check_resource(&q.resource).and_then(|()| match subjects.get(&view, q.subject.as_deref()) {
            Ok(subject) => answer(&view, subject, q),
            Err(e) => Err(e.clone()),
        });
        results.push(match answered {
            Ok(a) => Checked::Answer(a),
            Err(error) => Checked::Refused { error },
        });
    }
    Ok(ManyAnswers { results })
}

/// `authz.allowed`: the resources `authz.check` allows, in the order given; every id is checked
/// before any is answered, and a write the lock refuses refuses the request, as `authz.check` does.
pub fn allowed(ctx: &Ctx, caller: &Caller, p: AuthzAllowed) -> Result<AllowedResources, ApiError> {
    bounded("resources", p.resources.len())?;
    for (i, r) in p.resources.iter().enumerate() {
        check_resource(r).map_err(|e| ApiError::bad_request(format!("resources[{i}]: {}", e.message)))?;
    }
    let view = View::of(ctx);
    let subject = resolve(ctx, &view, caller, p.subject.as_deref())?;
    subject.may_ask(p.access)?;
    let mut allowed = Vec::new();
    for resource in p.resources {
        let decision = decide(&view, &subject, p.access, |key| {
            view.index.check(key, &p.permission, p.access, &resource, view.now)
        });
        match decision {
            Decision::Allow(_) => allowed.push(resource),
            Decision::Deny(Denied::SupervisorLocked(r)) => return Err(locked(r)),
            Decision::Deny(_) => {}
        }
    }
    Ok(AllowedResources { allowed })
}

pub fn explain(ctx: &Ctx, caller: &Caller, AuthzExplain(p): AuthzExplain) -> Result<Explanation, ApiError> {
    check_resource(&p.resource)?;
    let view = View::of(ctx);
    let subject = resolve(ctx, &view, caller, p.subject.as_deref())?;
    subject.may_ask(p.access)?;
    let mut matched = Vec::new();
    let decision = decide(&view, &subject, p.access, |key| {
        let e = view.index.explain(key, &p.permission, p.access, &p.resource, view.now);
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
