//! `authz.check`, `authz.explain`, `authz.who_can`: the questions HMIs and local services ask.
//!
//! A caller may always ask about itself; asking about someone else needs `users.view`, asked before
//! the name is looked up (an unprivileged caller learns nothing about which names exist). Answers
//! come from the compiled index: whether the subject is live, and a superuser, is the same answer
//! every credential gets ([`super::auth::live`]); an expired master key is no superuser.

use super::auth::{Caller, Principal};
use super::{Ctx, params, supervisor, to_value};
use crate::authz::{Access, Decision, SubjectKey};
use crate::protocol::ApiError;
use crate::store::now_ms;
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckParams {
    /// A user name, or `key:NAME` for an API key; absent: the caller.
    subject: Option<String>,
    permission: String,
    resource: String,
    #[serde(default = "read")]
    access: Access,
}

/// A question is only asked about a canonical resource id, or about the gateway itself (`*`, what the
/// built-in permissions are granted on): the engine never sees an id no inventory could hold.
fn check_resource(resource: &str) -> Result<(), ApiError> {
    if resource == super::GATEWAY {
        return Ok(());
    }
    crate::authz::validate_resource_id(resource).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn read() -> Access {
    Access::Read
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
        let id: Option<i64> = conn
            .prepare_cached("SELECT id FROM api_keys WHERE name = ?1")?
            .query_row([key_name], |r| r.get(0))
            .optional()?;
        SubjectKey::Key(id.ok_or_else(|| ApiError::not_found(format!("no API key named {key_name:?}")))?)
    } else {
        SubjectKey::User(crate::accounts::require_user(conn, text)?.id)
    };
    // Superuser only while live: the index says so, as it does for the subject's own requests.
    let superuser = ctx.index().principal(key, now_ms()).is_ok_and(|a| a.superuser);
    Ok(Subject { key, name: text.to_string(), superuser })
}

fn decision_json(d: &Decision) -> Value {
    serde_json::to_value(d).unwrap_or(Value::Null)
}

fn answer(subject: &Subject, p: &CheckParams, decision: Value) -> Value {
    let mut v = json!({
        "subject": subject.name,
        "permission": p.permission,
        "resource": p.resource,
        "access": p.access,
    });
    if let (Some(obj), Value::Object(d)) = (v.as_object_mut(), decision) {
        obj.extend(d);
    }
    v
}

fn superuser_answer() -> Value {
    json!({"decision": "allow", "reason": "superuser"})
}

pub fn check(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: CheckParams = params("authz.check", &p)?;
    check_resource(&p.resource)?;
    let subject = resolve(ctx, caller, p.subject.as_deref())?;
    let decision = if subject.superuser {
        superuser_answer()
    } else {
        let d = ctx.index().check(subject.key, &p.permission, p.access, &p.resource, now_ms());
        // The engine said yes to a write: the supervisor lock has the last word.
        if d.is_allowed()
            && p.access == Access::Write
            && let Some(refusal) = lock_refusal(ctx, &subject)
        {
            return Err(refusal);
        }
        decision_json(&d)
    };
    Ok(answer(&subject, &p, decision))
}

/// The `supervisor_locked` refusal for a write by `subject`, when a lock it is outside of is set.
fn lock_refusal(ctx: &Ctx, subject: &Subject) -> Option<ApiError> {
    ctx.lock()?;
    supervisor::blocks_write(ctx, supervisor::who_subject(ctx, subject.key, subject.superuser))
}

pub fn explain(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: CheckParams = params("authz.explain", &p)?;
    check_resource(&p.resource)?;
    let subject = resolve(ctx, caller, p.subject.as_deref())?;
    if subject.superuser {
        let mut v = answer(&subject, &p, superuser_answer());
        v["matched"] = json!([]);
        return Ok(v);
    }
    let e = ctx.index().explain(subject.key, &p.permission, p.access, &p.resource, now_ms());
    let mut decision = decision_json(&e.decision);
    if e.decision.is_allowed()
        && p.access == Access::Write
        && let Some(refusal) = lock_refusal(ctx, &subject)
    {
        // The grants would allow it; say that the lock decided, and what the grants said.
        decision = json!({"decision": "deny", "reason": "supervisor_locked", "message": refusal.message,
                          "lock": refusal.data.get("lock"), "grants_decision": decision});
    }
    let mut v = answer(&subject, &p, decision);
    v["matched"] = to_value(&e.matched)?;
    Ok(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhoParams {
    permission: String,
    resource: String,
    #[serde(default = "read")]
    access: Access,
}

/// Every enabled, unexpired account that passes, superusers included (marked as such).
pub fn who_can(ctx: &Ctx, _caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: WhoParams = params("authz.who_can", &p)?;
    check_resource(&p.resource)?;
    let now = now_ms();
    let index = ctx.index();
    let mut out = Vec::new();
    // Superusers pass everything: the admin and live master keys, as the index knows them.
    for s in index.superusers(now).into_iter().chain(index.who_can(&p.permission, p.access, &p.resource, now)) {
        let (kind, superuser) = match s {
            SubjectKey::User(_) => ("user", index.principal(s, now).is_ok_and(|a| a.superuser)),
            SubjectKey::Key(_) => ("key", index.principal(s, now).is_ok_and(|a| a.superuser)),
        };
        let Ok(a) = index.principal(s, now) else { continue };
        if !out.iter().any(|o: &Value| o["kind"] == kind && o["name"] == a.name) {
            out.push(json!({"kind": kind, "name": a.name, "superuser": superuser}));
        }
    }
    Ok(Value::Array(out))
}
