//! `policy.export`, `policy.plan`, `policy.apply`: policy as code. The gateway's settings, inventory,
//! groups, roles with their grants and accounts (never a secret) as one document; a plan of what a
//! document would change; and its application in one transaction, all or nothing, idempotent (the
//! same document applied twice changes nothing the second time). See docs/policy.md.
//!
//! Must never happen: a secret in an export; a document half applied (every change of one apply is
//! one transaction, through [`Ctx::write_policy_sessions`], so the index, the policy history, the
//! sessions of accounts disabled or removed and the outbox follow it exactly as they follow the
//! single methods); the built-in `admin` or `supervisor` removed or given rights; a directory
//! account changed; anyone but a superuser reading or applying a document (the route table asks:
//! a document moves every right there is, so the delegation ceiling would have to hold for each of
//! its grants, roles and accounts; superuser only is the simple safe rule). `policy.apply` is
//! write-class, and a superuser passes every supervisor lock (SPEC), so it goes through a lock,
//! audited as any superuser write is.

pub mod check;
pub mod diff;

use super::auth::{Caller, Principal};
use super::{Ctx, release_freed_memory};
use crate::accounts::{self, NewUser};
use crate::authz::{Effect, Grant, Selector};
use crate::contract::Method;
use crate::contract::accounts::{UserDeleted, UserDisabled, UserEnabled};
use crate::contract::policy::PolicyChanged;
use crate::contract::policyfile::{
    ChangeOp, EntryKind, GrantEntry, PlannedChange, PolicyApplied, PolicyApply, PolicyDoc, PolicyDocApplied,
    PolicyExport, PolicyPlan, PolicyPlanParams,
};
use crate::contract::system::SettingChanged;
use crate::protocol::ApiError;
use crate::store::audit::{self, Outcome};
use crate::store::roles::{self, Holder};
use crate::store::{now_ms, outbox, policy, policyfile, resources, settings};
use check::Problems;
use diff::Guard;
use serde_json::{Value, json};
use std::collections::HashMap;

/// `policy.export`.
pub fn export(ctx: &Ctx, _caller: &Caller, _: PolicyExport) -> Result<PolicyDoc, ApiError> {
    let doc = policyfile::read(&ctx.store().conn)?;
    Ok(doc)
}

/// `policy.plan`: the plan `policy.apply` would carry out now, or the document's problems.
pub fn plan(ctx: &Ctx, caller: &Caller, p: PolicyPlanParams) -> Result<PolicyPlan, ApiError> {
    checked(&p.policy)?;
    let guard = guard(ctx, caller)?;
    let cur = policyfile::read(&ctx.store().conn)?;
    planned(&cur, &p.policy, p.prune, &guard)
}

/// `policy.apply`: the plan, made and carried out in one transaction.
pub fn apply(ctx: &Ctx, caller: &Caller, p: PolicyApply) -> Result<PolicyApplied, ApiError> {
    checked(&p.policy)?;
    let guard = guard(ctx, caller)?;
    let config = ctx.config();
    let done = ctx.write_policy_sessions(|tx, table| {
        let cur = policyfile::read(tx)?;
        let plan = planned(&cur, &p.policy, p.prune, &guard)?;
        drop(cur);
        let mut run = Run { ctx, caller, tx, table, config: &config, want: &p.policy, role_ids: None, ended: 0 };
        for c in &plan.changes {
            run.carry_out(c)?;
        }
        let ended = run.ended;
        let detail = json!({
            "created": plan.counts.created, "changed": plan.counts.changed, "removed": plan.counts.removed,
            "unlisted": plan.counts.unlisted, "prune": p.prune, "sessions_terminated": ended,
            "by_kind": by_kind(&plan.changes),
        });
        audit::record(tx, &caller.actor(), PolicyApply::NAME, None, Outcome::Ok, Some(&detail))?;
        if !plan.noop {
            let c = plan.counts;
            let by = caller.actor().who;
            outbox::emit(tx, &PolicyDocApplied { created: c.created, changed: c.changed, removed: c.removed, by })?;
        }
        Ok(PolicyApplied { applied: !plan.noop, counts: plan.counts, sessions_terminated: ended, notes: plan.notes })
    });
    drop(p);
    release_freed_memory();
    // Objects of removed accounts may have left the in-memory history before the rollback.
    done.inspect_err(|_| super::objects::owner_delete_failed(ctx))
}

/// Counts per kind and operation, for the audit row.
fn by_kind(changes: &[PlannedChange]) -> Value {
    let mut out: std::collections::BTreeMap<String, usize> = Default::default();
    for c in changes {
        let op = match c.op {
            ChangeOp::Create => "created",
            ChangeOp::Change => "changed",
            ChangeOp::Remove => "removed",
        };
        *out.entry(format!("{}.{op}", c.kind.section())).or_default() += 1;
    }
    json!(out)
}

fn checked(doc: &PolicyDoc) -> Result<(), ApiError> {
    let mut p = Problems::default();
    check::document(doc, &mut p);
    if p.is_empty() { Ok(()) } else { Err(p.into_error()) }
}

fn planned(cur: &PolicyDoc, want: &PolicyDoc, prune: bool, guard: &Guard) -> Result<PolicyPlan, ApiError> {
    let mut p = Problems::default();
    let plan = diff::plan(cur, want, prune, guard, &mut p);
    if p.is_empty() { Ok(plan) } else { Err(p.into_error()) }
}

/// The caller's own limits: a master key's owner must survive the apply.
fn guard(ctx: &Ctx, caller: &Caller) -> Result<Guard, ApiError> {
    let key_owner = match &caller.principal {
        Principal::Key { owner_id, .. } => accounts::user_by_id(&ctx.store().conn, *owner_id)?.map(|u| u.name),
        _ => None,
    };
    Ok(Guard { key_owner })
}

/// One apply being carried out, change by change, in its transaction.
struct Run<'a, 't> {
    ctx: &'a Ctx,
    caller: &'a Caller,
    tx: &'a rusqlite::Transaction<'t>,
    table: &'a mut crate::sessions::Table,
    config: &'a crate::config::Config,
    want: &'a PolicyDoc,
    /// Role ids by name, read once the roles are made (users come after roles).
    role_ids: Option<HashMap<String, i64>>,
    ended: usize,
}

fn engine_grant(g: &GrantEntry) -> Result<Grant, ApiError> {
    let (read, write) = check::access(&g.access).ok_or_else(|| ApiError::internal("unchecked grant access"))?;
    let selector = Selector::parse(&g.resource).map_err(|e| ApiError::internal(e.to_string()))?;
    let effect = if g.effect == "deny" { Effect::Deny } else { Effect::Allow };
    Ok(Grant { id: 0, permission: g.permission.clone(), read, write, selector, effect })
}

fn missing(kind: EntryKind, name: &str) -> ApiError {
    ApiError::internal(format!("{} {name:?} is not in the document it was planned from", kind.section()))
}

impl Run<'_, '_> {
    fn carry_out(&mut self, c: &PlannedChange) -> Result<(), ApiError> {
        let name = c.name.as_str();
        match c.kind {
            EntryKind::Setting => self.setting(c.op, name),
            EntryKind::Resource => self.resource(c.op, name),
            EntryKind::Group => self.group(c.op, name),
            EntryKind::Role => self.role(c.op, name),
            EntryKind::User => self.user(c.op, name),
        }
    }

    fn by(&self) -> crate::contract::Actor {
        self.caller.actor().who
    }

    fn setting(&mut self, op: ChangeOp, key: &str) -> Result<(), ApiError> {
        let value = match op {
            ChangeOp::Remove => {
                policyfile::delete_setting(self.tx, key)?;
                Value::Null
            }
            _ => {
                let v = self
                    .want
                    .settings
                    .as_ref()
                    .and_then(|s| s.get(key))
                    .ok_or_else(|| missing(EntryKind::Setting, key))?;
                settings::set(self.tx, key, &v.to_string())?;
                v.clone()
            }
        };
        outbox::emit(self.tx, &SettingChanged { key: key.to_string(), value, by: Some(self.by()) })?;
        Ok(())
    }

    fn resource(&mut self, op: ChangeOp, id: &str) -> Result<(), ApiError> {
        if op == ChangeOp::Remove {
            resources::delete(self.tx, id)?;
            return Ok(());
        }
        let r = self.want.resources.as_ref().and_then(|s| s.get(id)).ok_or_else(|| missing(EntryKind::Resource, id))?;
        if op == ChangeOp::Create {
            resources::insert(self.tx, id, &r.kind, &r.attributes, now_ms())?;
        } else {
            policyfile::update_resource(self.tx, id, &r.kind, &r.attributes, now_ms())?;
        }
        Ok(())
    }

    fn group(&mut self, op: ChangeOp, name: &str) -> Result<(), ApiError> {
        let gid = resources::group_id(self.tx, name)?;
        if op == ChangeOp::Remove {
            if let Some(gid) = gid {
                resources::delete_group(self.tx, gid)?;
            }
            return Ok(());
        }
        let g = self.want.groups.as_ref().and_then(|s| s.get(name)).ok_or_else(|| missing(EntryKind::Group, name))?;
        let gid = match gid {
            Some(gid) => {
                policyfile::set_group_description(self.tx, gid, g.description.as_deref())?;
                // Exactly the document's members: the others go.
                let keep: std::collections::HashSet<&str> = g.members.iter().map(String::as_str).collect();
                for m in resources::members(self.tx, gid)?.iter().filter(|m| !keep.contains(m.as_str())) {
                    resources::remove_member(self.tx, gid, m)?;
                }
                gid
            }
            None => resources::insert_group(self.tx, name, g.description.as_deref(), now_ms())?,
        };
        for m in &g.members {
            resources::add_member(self.tx, gid, m)?;
        }
        Ok(())
    }

    /// Makes a holder's grants exactly `want`; whether any changed.
    fn set_grants(&mut self, holder: Holder, want: &[GrantEntry]) -> Result<bool, ApiError> {
        let have = policyfile::grants_of(self.tx, holder)?;
        let wanted: std::collections::HashSet<&GrantEntry> = want.iter().collect();
        let held: std::collections::HashSet<&GrantEntry> = have.iter().map(|(_, g)| g).collect();
        let mut changed = false;
        for (id, _) in have.iter().filter(|(_, g)| !wanted.contains(g)) {
            roles::delete_grant(self.tx, holder, *id)?;
            changed = true;
        }
        let now = now_ms();
        for g in want.iter().filter(|g| !held.contains(g)) {
            roles::insert_grant(self.tx, holder, &engine_grant(g)?, now)?;
            changed = true;
        }
        Ok(changed)
    }

    fn role(&mut self, op: ChangeOp, name: &str) -> Result<(), ApiError> {
        let row = roles::find(self.tx, name)?;
        if op == ChangeOp::Remove {
            if let Some(row) = row.filter(|r| !r.builtin) {
                roles::delete(self.tx, row.id)?;
            }
            return Ok(());
        }
        let r = self.want.roles.as_ref().and_then(|s| s.get(name)).ok_or_else(|| missing(EntryKind::Role, name))?;
        let id = match row {
            Some(row) => {
                policyfile::set_role_description(self.tx, row.id, r.description.as_deref())?;
                row.id
            }
            None => roles::insert(self.tx, name, r.description.as_deref(), now_ms())?,
        };
        if self.set_grants(Holder::Role(id), &r.grants)? {
            let target = format!("role:{name}");
            outbox::emit(self.tx, &PolicyChanged { target, by: self.by(), ts: now_ms() })?;
        }
        Ok(())
    }

    fn role_ids(&mut self, names: &[String]) -> Result<Vec<i64>, ApiError> {
        if self.role_ids.is_none() {
            self.role_ids = Some(policyfile::role_ids(self.tx)?);
        }
        let known = self.role_ids.as_ref().ok_or_else(|| ApiError::internal("role ids"))?;
        names
            .iter()
            .map(|n| known.get(n).copied().ok_or_else(|| ApiError::internal(format!("role {n:?} vanished"))))
            .collect()
    }

    fn end_sessions(&mut self, user_id: i64, why: &str) -> Result<(), ApiError> {
        self.ended += super::user::end_sessions_of(self.tx, self.table, self.config, self.caller, user_id, why)?;
        Ok(())
    }

    fn user(&mut self, op: ChangeOp, name: &str) -> Result<(), ApiError> {
        let found = accounts::find_user(self.tx, name)?;
        if op == ChangeOp::Remove {
            let Some(u) = found.filter(|u| !u.builtin && u.source == "local") else { return Ok(()) };
            super::objects::on_owner_deleted(self.ctx, self.tx, self.caller, u.id, &u.name)?;
            accounts::rows::delete_user(self.tx, self.ctx.credentials(), u.id)?;
            self.end_sessions(u.id, "account deleted")?;
            outbox::emit(self.tx, &UserDeleted { user: u.name, by: self.by() })?;
            return Ok(());
        }
        let w = self.want.users.as_ref().and_then(|s| s.get(name)).ok_or_else(|| missing(EntryKind::User, name))?;
        let want_roles = self.role_ids(&w.roles)?;
        let id = match found {
            None => {
                let new = NewUser {
                    name: name.to_string(),
                    display_name: w.display_name.clone(),
                    password_hash: None,
                    expires_at: w.expires_at,
                };
                let id = accounts::insert_new_user(self.tx, &new)?;
                if !w.enabled {
                    accounts::rows::set_enabled(self.tx, id, false)?;
                }
                policy::add_user_roles(self.tx, id, &want_roles)?;
                id
            }
            Some(u) => {
                if u.display_name != w.display_name {
                    accounts::rows::set_display_name(self.tx, u.id, w.display_name.as_deref())?;
                }
                if u.expires_at != w.expires_at {
                    accounts::rows::set_expires_at(self.tx, u.id, w.expires_at)?;
                }
                if u.enabled != w.enabled {
                    accounts::rows::set_enabled(self.tx, u.id, w.enabled)?;
                    let (user, by) = (u.name.clone(), self.by());
                    if w.enabled {
                        outbox::emit(self.tx, &UserEnabled { user, by })?;
                    } else {
                        self.end_sessions(u.id, "account disabled")?;
                        accounts::revoke_tokens(self.tx, self.ctx.credentials(), u.id)?;
                        outbox::emit(self.tx, &UserDisabled { user, by })?;
                    }
                }
                let have = policy::role_ids(self.tx, &policy::user_role_names(self.tx, u.id)?)?;
                let gone: Vec<i64> = have.iter().copied().filter(|r| !want_roles.contains(r)).collect();
                policy::remove_user_roles(self.tx, u.id, &gone)?;
                policy::add_user_roles(self.tx, u.id, &want_roles)?;
                u.id
            }
        };
        if self.set_grants(Holder::User(id), &w.grants)? {
            let target = format!("user:{name}");
            outbox::emit(self.tx, &PolicyChanged { target, by: self.by(), ts: now_ms() })?;
        }
        Ok(())
    }
}
