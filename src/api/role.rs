//! `role.*`, grants held by roles or directly by users, and `user.copy_roles`.
//!
//! Must never happen: the built-in `supervisor` role changed or deleted; the admin given roles or
//! grants; a grant stored with a selector or permission name the engine cannot read; a caller giving,
//! taking away or copying a right it does not hold itself, or changing the grants of an account
//! stronger than itself (the ceiling: [`Ctx::may_hand_out`], [`Ctx::may_assign_roles`],
//! [`Ctx::may_manage`]).

use super::auth::Caller;
use super::resource::resolve_list;
use super::{ADMIN_ID, Ctx, to_value};
use crate::accounts;
use crate::authz::{Effect, Grant, Selector, SubjectKey};
use crate::contract::Method;
use crate::contract::policy::{
    Deleted, Granted, PolicyChanged, Revoked, RoleCreate, RoleDelete, RoleGrant, RoleImport, RoleList, RoleRevoke,
    RoleShow, RoleSummary, RoleView, RolesCopied, RolesImported, UserCopyRoles,
};
use crate::protocol::{ApiError, ErrorCode};
use crate::store::audit::{self, Outcome};
use crate::store::roles::{self, Holder, RoleRow};
use crate::store::{now_ms, outbox, policy};
use crate::text::{self, Lines};
use rusqlite::Connection;
use serde_json::{Value, json};

/// Permission names: dotted lowercase words, `tag.write`, `recipe.load`, `sessions.view`.
pub fn validate_permission(p: &str) -> Result<(), ApiError> {
    let ok = !p.is_empty()
        && p.len() <= 64
        && p.split('.').all(|w| {
            !w.is_empty()
                && w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("permission {p:?} is not valid: use dotted lowercase words like tag.write")))
    }
}

fn find_role(conn: &Connection, name: &str) -> Result<RoleRow, ApiError> {
    roles::find(conn, name)?.ok_or_else(|| ApiError::not_found(format!("no role named {name:?}")))
}

fn fixed_role(name: &str) -> ApiError {
    ApiError::conflict(format!("{name} is a built-in role; it cannot be changed or deleted"))
}

fn protected_admin() -> ApiError {
    ApiError::new(ErrorCode::ProtectedAccount, "the built-in admin's rights cannot be changed")
}

pub fn create(ctx: &Ctx, caller: &Caller, p: RoleCreate) -> Result<RoleView, ApiError> {
    accounts::validate_name("role name", &p.name)?;
    let description = text::clean("description", p.description, text::MAX_DESCRIPTION, Lines::One)?;
    ctx.write_policy(|tx| {
        if roles::find(tx, &p.name)?.is_some() {
            return Err(ApiError::conflict(format!("a role named {:?} already exists", p.name)));
        }
        roles::insert(tx, &p.name, description.as_deref(), now_ms())?;
        audit::record(tx, &caller.actor(), RoleCreate::NAME, Some(&p.name), Outcome::Ok, None)?;
        show_role(tx, &p.name)
    })
}

/// `role.import`: roles (without grants) from a CSV file of `name` and `description`, all or nothing,
/// like `user.import`: every row checked first, the names against the database in the transaction
/// that creates them all.
pub fn import(ctx: &Ctx, caller: &Caller, p: RoleImport) -> Result<RolesImported, ApiError> {
    let table = crate::csvfile::parse_table(&p.csv, &["name", "description"], &["name"], crate::csvfile::MAX_ROWS)
        .map_err(super::resource::row_errors)?;
    drop(p);
    let mut errors = crate::csvfile::RowErrors::default();
    let mut rows = Vec::with_capacity(table.rows.len());
    let mut seen = std::collections::HashMap::new();
    for (line, row) in &table.rows {
        let name = table.field(row, "name").unwrap_or_default();
        let description = table.field(row, "description").filter(|d| !d.is_empty()).map(str::to_string);
        if name.len() > 64 {
            errors.push(*line, format!("role name {} is {} bytes long; at most 64", text::shown(name, 32), name.len()));
            continue;
        }
        let checked = accounts::validate_name("role name", name)
            .and_then(|()| text::clean("description", description, text::MAX_DESCRIPTION, Lines::One));
        match checked {
            Err(e) => errors.push(*line, e.message),
            Ok(description) => match seen.insert(name.to_ascii_lowercase(), *line) {
                Some(first) => errors.push(*line, format!("role {name:?} is already listed on line {first}")),
                None => rows.push((*line, name.to_string(), description)),
            },
        }
    }
    if !errors.is_empty() {
        return Err(super::resource::row_errors(errors));
    }
    ctx.write_policy(|tx| {
        for (line, name, _) in &rows {
            if roles::find(tx, name)?.is_some() {
                errors.push(*line, format!("a role named {name:?} already exists"));
            }
        }
        if !errors.is_empty() {
            return Err(super::resource::row_errors(std::mem::take(&mut errors)));
        }
        let now = now_ms();
        for (_, name, description) in &rows {
            roles::insert(tx, name, description.as_deref(), now)?;
        }
        let detail = json!({"created": rows.len()});
        audit::record(tx, &caller.actor(), RoleImport::NAME, None, Outcome::Ok, Some(&detail))?;
        Ok(RolesImported { created: rows.len() })
    })
}

pub fn list(ctx: &Ctx, _caller: &Caller, _p: RoleList) -> Result<Vec<RoleSummary>, ApiError> {
    Ok(roles::summaries(&ctx.store().conn)?)
}

fn show_role(conn: &Connection, name: &str) -> Result<RoleView, ApiError> {
    let role = find_role(conn, name)?;
    Ok(RoleView {
        grants: roles::grant_views(conn, Holder::Role(role.id))?,
        users: roles::user_names(conn, role.id)?,
        keys: roles::key_names(conn, role.id)?,
        id: role.id,
        name: role.name,
        description: role.description,
        builtin: role.builtin,
    })
}

pub fn show(ctx: &Ctx, _caller: &Caller, p: RoleShow) -> Result<RoleView, ApiError> {
    show_role(&ctx.store().conn, &p.name)
}

pub fn delete(ctx: &Ctx, caller: &Caller, p: RoleDelete) -> Result<Deleted, ApiError> {
    ctx.write_policy(|tx| {
        let role = find_role(tx, &p.name)?;
        if role.builtin {
            return Err(fixed_role(&role.name));
        }
        // Deleting a role takes its grants from everyone holding it.
        ctx.may_assign_roles(caller, RoleDelete::NAME, tx, &[role.id])?;
        roles::delete(tx, role.id)?;
        audit::record(tx, &caller.actor(), RoleDelete::NAME, Some(&role.name), Outcome::Ok, None)?;
        Ok(())
    })?;
    Ok(Deleted { deleted: p.name })
}

/// Who a grant goes to, resolved: its row, and how answers, the audit trail and the event name it
/// (`role:NAME`, `user:NAME`).
struct GrantHolder {
    row: Holder,
    target: String,
}

/// The role or user named (exactly one), checked against the ceiling for changing a user's own
/// grants: neither a built-in role nor the admin.
fn grant_holder(
    ctx: &Ctx,
    caller: &Caller,
    action: &str,
    conn: &Connection,
    role: Option<&str>,
    user: Option<&str>,
) -> Result<GrantHolder, ApiError> {
    match (role, user) {
        (Some(r), None) => {
            let role = find_role(conn, r)?;
            if role.builtin {
                return Err(fixed_role(&role.name));
            }
            Ok(GrantHolder { row: Holder::Role(role.id), target: format!("role:{}", role.name) })
        }
        (None, Some(u)) => {
            let user = accounts::require_user(conn, u)?;
            if user.id == ADMIN_ID {
                return Err(protected_admin());
            }
            ctx.may_manage(caller, action, SubjectKey::User(user.id), &format!("user {}", user.name))?;
            Ok(GrantHolder { row: Holder::User(user.id), target: format!("user:{}", user.name) })
        }
        _ => Err(ApiError::bad_request("name exactly one of role or user")),
    }
}

/// At most this many selectors are named in one audit row (the count says how many there were): a
/// grant from a long resource list must not make the row as long as the list.
const AUDITED_SELECTORS: usize = 20;

fn first_of(items: impl Iterator<Item = String>) -> Vec<String> {
    items.take(AUDITED_SELECTORS).collect()
}

fn selector(text: &str) -> Result<Selector, ApiError> {
    Selector::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

pub fn grant(ctx: &Ctx, caller: &Caller, p: RoleGrant) -> Result<Granted, ApiError> {
    validate_permission(&p.permission)?;
    let (read, write) = if p.read || p.write { (p.read, p.write) } else { (true, true) };
    let effect = if p.deny { Effect::Deny } else { Effect::Allow };
    let mut selectors = p.resources.iter().map(|r| selector(r)).collect::<Result<Vec<_>, _>>()?;
    ctx.write_policy(|tx| {
        let holder = grant_holder(ctx, caller, RoleGrant::NAME, tx, p.role.as_deref(), p.user.as_deref())?;
        let mut skipped = Vec::new();
        if let Some(text) = &p.resources_csv {
            let (ids, skip) = resolve_list(tx, text, p.ignore_missing)?;
            selectors.extend(ids.into_iter().map(Selector::Id));
            skipped = skip;
        } else if selectors.is_empty() {
            selectors.push(Selector::All);
        }
        let grants: Vec<Grant> = selectors
            .iter()
            .map(|s| Grant { id: 0, permission: p.permission.clone(), read, write, selector: s.clone(), effect })
            .collect();
        for g in &grants {
            ctx.may_hand_out(caller, RoleGrant::NAME, g)?;
        }
        let now = now_ms();
        let mut ids = Vec::new();
        for g in &grants {
            if !roles::holds(tx, holder.row, g)? {
                ids.push(roles::insert_grant(tx, holder.row, g, now)?);
            }
        }
        let detail = json!({"permission": p.permission, "read": read, "write": write, "effect": effect,
                            "resources": first_of(selectors.iter().map(Selector::as_text)), "resource_count": selectors.len(),
                            "skipped": skipped.len()});
        audit::record(tx, &caller.actor(), RoleGrant::NAME, Some(&holder.target), Outcome::Ok, Some(&detail))?;
        outbox::emit(tx, &PolicyChanged { target: holder.target.clone(), by: caller.actor().who, ts: now })?;
        Ok(Granted { target: holder.target, grants: ids, skipped })
    })
}

pub fn revoke(ctx: &Ctx, caller: &Caller, p: RoleRevoke) -> Result<Revoked, ApiError> {
    ctx.write_policy(|tx| {
        let holder = grant_holder(ctx, caller, RoleRevoke::NAME, tx, p.role.as_deref(), p.user.as_deref())?;
        // The grants this revoke removes, each checked against the ceiling before any is deleted.
        let held = roles::grants(tx, holder.row)?;
        let chosen: Vec<&Grant> = match (&p.id, &p.permission) {
            (Some(id), None) => held.iter().filter(|g| g.id == *id).collect(),
            (None, Some(perm)) if p.resources.is_empty() => held.iter().filter(|g| &g.permission == perm).collect(),
            (None, Some(perm)) => {
                let sels = p
                    .resources
                    .iter()
                    .map(|r| Selector::parse_stored(r).map_err(|e| ApiError::bad_request(e.to_string())))
                    .collect::<Result<Vec<_>, _>>()?;
                held.iter().filter(|g| &g.permission == perm && sels.contains(&g.selector)).collect()
            }
            _ => return Err(ApiError::bad_request("give either a grant id or a permission (with optional resources)")),
        };
        for g in &chosen {
            ctx.may_hand_out(caller, RoleRevoke::NAME, g)?;
        }
        let mut n = 0;
        for g in &chosen {
            n += usize::from(roles::delete_grant(tx, holder.row, g.id)?);
        }
        if n == 0 {
            return Err(ApiError::not_found(format!("{} has no such grant", holder.target)));
        }
        let detail = json!({"id": p.id, "permission": p.permission, "resources": first_of(chosen.iter().map(|g| g.selector.as_text())),
                            "revoked": n});
        audit::record(tx, &caller.actor(), RoleRevoke::NAME, Some(&holder.target), Outcome::Ok, Some(&detail))?;
        outbox::emit(tx, &PolicyChanged { target: holder.target.clone(), by: caller.actor().who, ts: now_ms() })?;
        Ok(Revoked { target: holder.target, revoked: n })
    })
}

/// `user.copy_roles`: gives `to` the roles of `from`, in addition (default) or instead (`replace`).
pub fn copy_roles(ctx: &Ctx, caller: &Caller, p: UserCopyRoles) -> Result<RolesCopied, ApiError> {
    ctx.authorize(caller, "roles.manage")?;
    ctx.write_policy(|tx| {
        let from = accounts::require_user(tx, &p.from)?;
        let to = accounts::require_user(tx, &p.to)?;
        if to.id == ADMIN_ID {
            return Err(protected_admin());
        }
        ctx.may_manage(caller, UserCopyRoles::NAME, SubjectKey::User(to.id), &format!("user {}", to.name))?;
        let roles = policy::user_role_names(tx, from.id)?;
        let ids = policy::role_ids(tx, &roles)?;
        ctx.may_assign_roles(caller, UserCopyRoles::NAME, tx, &ids)?;
        if p.replace {
            let had = policy::role_ids(tx, &policy::user_role_names(tx, to.id)?)?;
            ctx.may_assign_roles(caller, UserCopyRoles::NAME, tx, &had)?;
            policy::clear_user_roles(tx, to.id)?;
        }
        policy::add_user_roles(tx, to.id, &ids)?;
        crate::store::directory::unmap_roles(tx, to.id, &roles)?;
        let now_has = policy::user_role_names(tx, to.id)?;
        let detail = json!({"from": from.name, "replace": p.replace, "roles": now_has});
        audit::record(tx, &caller.actor(), UserCopyRoles::NAME, Some(&to.name), Outcome::Ok, Some(&detail))?;
        Ok(RolesCopied { user: to.name, roles: now_has })
    })
}

/// Adds and removes roles of one user (`user.update` with `add_roles` / `remove_roles`).
pub fn change_user_roles(tx: &Connection, user_id: i64, add: &[String], remove: &[String]) -> Result<(), ApiError> {
    if user_id == ADMIN_ID && (!add.is_empty() || !remove.is_empty()) {
        return Err(protected_admin());
    }
    let add_ids = policy::role_ids(tx, add)?;
    let remove_ids = policy::role_ids(tx, remove)?;
    policy::add_user_roles(tx, user_id, &add_ids)?;
    policy::remove_user_roles(tx, user_id, &remove_ids)?;
    // Assigned by hand: a directory person keeps them whatever its groups do later.
    crate::store::directory::unmap_roles(tx, user_id, add)?;
    Ok(())
}

/// Direct grants of a user, for `user.show` (as JSON while that method is untyped; the typed rows
/// are [`roles::grant_views`] with [`Holder::User`]).
pub fn direct_grants(conn: &Connection, user_id: i64) -> Result<Value, ApiError> {
    to_value(roles::grant_views(conn, Holder::User(user_id))?)
}
