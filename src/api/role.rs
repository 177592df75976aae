//! `role.*`, grants held by roles or directly by users, and `user.copy_roles`.
//!
//! Must never happen: the built-in `supervisor` role changed or deleted; the admin given roles or
//! grants; a grant stored with a selector or permission name the engine cannot read; a caller giving,
//! taking away or copying a right it does not hold itself, or changing the grants of an account
//! stronger than itself (the ceiling: [`Ctx::may_hand_out`], [`Ctx::may_assign_roles`],
//! [`Ctx::may_manage`]).

use super::auth::Caller;
use super::{ADMIN_ID, Ctx, params, to_value};
use crate::accounts;
use crate::authz::Selector;
use crate::csvfile;
use crate::protocol::{ApiError, ErrorCode};
use crate::store::audit::{self, Outcome};
use crate::store::{now_ms, outbox, policy};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
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

struct RoleRow {
    id: i64,
    name: String,
    description: Option<String>,
    builtin: bool,
}

fn find_role(conn: &Connection, name: &str) -> Result<RoleRow, ApiError> {
    conn.prepare_cached("SELECT id, name, description, builtin FROM roles WHERE name = ?1")?
        .query_row([name], |r| {
            Ok(RoleRow { id: r.get(0)?, name: r.get(1)?, description: r.get(2)?, builtin: r.get(3)? })
        })
        .optional()?
        .ok_or_else(|| ApiError::not_found(format!("no role named {name:?}")))
}

fn fixed_role(name: &str) -> ApiError {
    ApiError::conflict(format!("{name} is a built-in role; it cannot be changed or deleted"))
}

fn protected_admin() -> ApiError {
    ApiError::new(ErrorCode::ProtectedAccount, "the built-in admin's rights cannot be changed")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateParams {
    name: String,
    description: Option<String>,
}

pub fn create(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: CreateParams = params("role.create", &p)?;
    accounts::validate_name("role name", &p.name)?;
    let description =
        crate::text::clean("description", p.description, crate::text::MAX_DESCRIPTION, crate::text::Lines::One)?;
    ctx.write_policy(|tx| {
        if find_role(tx, &p.name).is_ok() {
            return Err(ApiError::conflict(format!("a role named {:?} already exists", p.name)));
        }
        tx.execute(
            "INSERT INTO roles (name, description, created_at) VALUES (?1, ?2, ?3)",
            params![p.name, description, now_ms()],
        )?;
        audit::record(tx, &caller.actor(), "role.create", Some(&p.name), Outcome::Ok, None)?;
        show_role(tx, &p.name)
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

pub fn list(ctx: &Ctx, _caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let _: Empty = params("role.list", &p)?;
    let store = ctx.store();
    let mut st = store.conn.prepare_cached(
        "SELECT r.name, r.description, r.builtin,
                (SELECT count(*) FROM grants g WHERE g.role_id = r.id),
                (SELECT count(*) FROM user_roles u WHERE u.role_id = r.id)
         FROM roles r ORDER BY r.name",
    )?;
    let rows = st.query_map([], |r| {
        Ok(json!({
            "name": r.get::<_, String>(0)?,
            "description": r.get::<_, Option<String>>(1)?,
            "builtin": r.get::<_, bool>(2)?,
            "grants": r.get::<_, i64>(3)?,
            "users": r.get::<_, i64>(4)?,
        }))
    })?;
    Ok(Value::Array(rows.collect::<Result<_, _>>()?))
}

/// The grants of a role (or of a user, directly), as shown to people.
pub fn grants_of(conn: &Connection, column: &str, id: i64) -> rusqlite::Result<Vec<Value>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT id, permission, can_read, can_write, selector, effect FROM grants WHERE {column} = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([id], |r| {
        let (read, write): (bool, bool) = (r.get(2)?, r.get(3)?);
        let access = match (read, write) {
            (true, true) => "read,write",
            (true, false) => "read",
            _ => "write",
        };
        Ok(json!({
            "id": r.get::<_, i64>(0)?,
            "permission": r.get::<_, String>(1)?,
            "access": access,
            "resource": r.get::<_, String>(4)?,
            "effect": r.get::<_, String>(5)?,
        }))
    })?;
    rows.collect()
}

fn show_role(conn: &Connection, name: &str) -> Result<Value, ApiError> {
    let role = find_role(conn, name)?;
    let names = |sql: &str| -> rusqlite::Result<Vec<String>> {
        let mut st = conn.prepare_cached(sql)?;
        let rows = st.query_map([role.id], |r| r.get(0))?;
        rows.collect()
    };
    Ok(json!({
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "builtin": role.builtin,
        "grants": grants_of(conn, "role_id", role.id)?,
        "users": names("SELECT u.name FROM user_roles ur JOIN users u ON u.id = ur.user_id WHERE ur.role_id = ?1 ORDER BY u.name")?,
        "keys": names("SELECT k.name FROM key_roles kr JOIN api_keys k ON k.id = kr.key_id WHERE kr.role_id = ?1 ORDER BY k.name")?,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameParams {
    name: String,
}

pub fn show(ctx: &Ctx, _caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: NameParams = params("role.show", &p)?;
    show_role(&ctx.store().conn, &p.name)
}

pub fn delete(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: NameParams = params("role.delete", &p)?;
    ctx.write_policy(|tx| {
        let role = find_role(tx, &p.name)?;
        if role.builtin {
            return Err(fixed_role(&role.name));
        }
        // Deleting a role takes its grants from everyone holding it.
        ctx.may_assign_roles(caller, "role.delete", tx, &[role.id])?;
        tx.execute("DELETE FROM roles WHERE id = ?1", [role.id])?;
        audit::record(tx, &caller.actor(), "role.delete", Some(&role.name), Outcome::Ok, None)?;
        Ok(())
    })?;
    Ok(json!({ "deleted": p.name }))
}

/// Who a grant goes to: a role, or one user directly.
enum Holder {
    Role(i64, String),
    User(i64, String),
}

impl Holder {
    /// The role or user named, checked against the ceiling for changing a user's own grants.
    fn resolve_for(
        ctx: &Ctx,
        caller: &Caller,
        action: &str,
        conn: &Connection,
        role: Option<&str>,
        user: Option<&str>,
    ) -> Result<Holder, ApiError> {
        let holder = Holder::resolve(conn, role, user)?;
        if let Holder::User(id, name) = &holder {
            ctx.may_manage(caller, action, crate::authz::SubjectKey::User(*id), &format!("user {name}"))?;
        }
        Ok(holder)
    }

    fn resolve(conn: &Connection, role: Option<&str>, user: Option<&str>) -> Result<Holder, ApiError> {
        match (role, user) {
            (Some(r), None) => {
                let role = find_role(conn, r)?;
                if role.builtin {
                    return Err(fixed_role(&role.name));
                }
                Ok(Holder::Role(role.id, role.name))
            }
            (None, Some(u)) => {
                let user = accounts::require_user(conn, u)?;
                if user.id == ADMIN_ID {
                    return Err(protected_admin());
                }
                Ok(Holder::User(user.id, user.name))
            }
            _ => Err(ApiError::bad_request("name exactly one of role or user")),
        }
    }

    fn column(&self) -> (&'static str, i64, String) {
        match self {
            Holder::Role(id, n) => ("role_id", *id, format!("role:{n}")),
            Holder::User(id, n) => ("user_id", *id, format!("user:{n}")),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantParams {
    role: Option<String>,
    user: Option<String>,
    permission: String,
    #[serde(default)]
    read: bool,
    #[serde(default)]
    write: bool,
    #[serde(default)]
    resources: Vec<String>,
    /// A resource list (CSV text) to grant on, resolved against the inventory.
    resources_csv: Option<String>,
    #[serde(default)]
    ignore_missing: bool,
    #[serde(default)]
    deny: bool,
}

/// At most this many selectors are named in one audit row (the count says how many there were): a
/// grant from a long resource list must not make the row as long as the list.
const AUDITED_SELECTORS: usize = 20;

fn first_of(items: impl Iterator<Item = String>) -> Vec<String> {
    items.take(AUDITED_SELECTORS).collect()
}

/// Resolves a CSV resource list against the inventory: every row must name an existing resource of
/// the header's kind. Returns the ids to apply and the rows skipped by `ignore_missing`.
pub fn resolve_list(
    conn: &Connection,
    text: &str,
    ignore_missing: bool,
) -> Result<(Vec<String>, Vec<Value>), ApiError> {
    let sheet = csvfile::parse_list(text).map_err(row_errors)?;
    let mut ids = Vec::new();
    let mut skipped = Vec::new();
    let mut errors = csvfile::RowErrors::default();
    for row in sheet.rows {
        let kind: Option<String> = conn
            .prepare_cached("SELECT kind FROM resources WHERE id = ?1")?
            .query_row([&row.id], |r| r.get(0))
            .optional()?;
        match kind {
            Some(k) if k == sheet.kind => ids.push(row.id),
            Some(k) => errors.push(row.line, format!("{:?} is a {k}, not a {} (mixed kinds)", row.id, sheet.kind)),
            None if ignore_missing => skipped.push(json!({"line": row.line, "id": row.id})),
            None => errors.push(row.line, format!("no {} named {:?} in the inventory", sheet.kind, row.id)),
        }
    }
    if errors.is_empty() { Ok((ids, skipped)) } else { Err(row_errors(errors)) }
}

/// A bad file: the first bad rows in `errors` (the first few in the message too), how many more in
/// `more_errors`.
pub fn row_errors(errors: csvfile::RowErrors) -> ApiError {
    let (shown, more) = errors.data();
    ApiError::bad_request(errors.summary()).with("errors", shown).with("more_errors", more)
}

pub fn grant(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: GrantParams = params("role.grant", &p)?;
    validate_permission(&p.permission)?;
    let (read, write) = if p.read || p.write { (p.read, p.write) } else { (true, true) };
    let mut selectors = Vec::new();
    for text in &p.resources {
        selectors.push(Selector::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))?);
    }
    let effect = if p.deny { "deny" } else { "allow" };
    ctx.write_policy(|tx| {
        let holder = Holder::resolve_for(ctx, caller, "role.grant", tx, p.role.as_deref(), p.user.as_deref())?;
        let mut skipped = Vec::new();
        if let Some(text) = &p.resources_csv {
            let (ids, skip) = resolve_list(tx, text, p.ignore_missing)?;
            selectors.extend(ids.into_iter().map(Selector::Id));
            skipped = skip;
        } else if selectors.is_empty() {
            selectors.push(Selector::All);
        }
        for sel in &selectors {
            let grant = crate::authz::Grant {
                id: 0,
                permission: p.permission.clone(),
                read,
                write,
                selector: sel.clone(),
                effect: if p.deny { crate::authz::Effect::Deny } else { crate::authz::Effect::Allow },
            };
            ctx.may_hand_out(caller, "role.grant", &grant)?;
        }
        let (column, holder_id, target) = holder.column();
        let mut ids = Vec::new();
        for sel in &selectors {
            let text = sel.as_text();
            let exists: i64 = tx.query_row(
                &format!(
                    "SELECT count(*) FROM grants WHERE {column} = ?1 AND permission = ?2 AND can_read = ?3
                     AND can_write = ?4 AND selector = ?5 AND effect = ?6"
                ),
                params![holder_id, p.permission, read, write, text, effect],
                |r| r.get(0),
            )?;
            if exists > 0 {
                continue;
            }
            tx.execute(
                &format!(
                    "INSERT INTO grants ({column}, permission, can_read, can_write, selector, effect, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![holder_id, p.permission, read, write, text, effect, now_ms()],
            )?;
            ids.push(tx.last_insert_rowid());
        }
        let detail = json!({"permission": p.permission, "read": read, "write": write, "effect": effect,
                            "resources": first_of(selectors.iter().map(Selector::as_text)), "resource_count": selectors.len(),
                            "skipped": skipped.len()});
        audit::record(tx, &caller.actor(), "role.grant", Some(&target), Outcome::Ok, Some(&detail))?;
        outbox::event(tx, "policy.changed", &json!({"target": target}))?;
        Ok(json!({ "target": target, "grants": ids, "skipped": skipped }))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeParams {
    role: Option<String>,
    user: Option<String>,
    /// A grant id (from `role show`); or permission (+ resources) to revoke every matching grant.
    id: Option<i64>,
    permission: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
}

pub fn revoke(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: RevokeParams = params("role.revoke", &p)?;
    ctx.write_policy(|tx| {
        let holder = Holder::resolve_for(ctx, caller, "role.revoke", tx, p.role.as_deref(), p.user.as_deref())?;
        let (column, holder_id, target) = holder.column();
        // The grants this revoke removes, each checked against the ceiling before any is deleted.
        let held = policy::grants_where(tx, &format!("{column} = ?1"), holder_id)?;
        let chosen: Vec<&crate::authz::Grant> = match (&p.id, &p.permission) {
            (Some(id), None) => held.iter().filter(|g| g.id == *id).collect(),
            (None, Some(perm)) if p.resources.is_empty() => held.iter().filter(|g| &g.permission == perm).collect(),
            (None, Some(perm)) => {
                let mut sels = Vec::new();
                for r in &p.resources {
                    sels.push(Selector::parse_stored(r).map_err(|e| ApiError::bad_request(e.to_string()))?);
                }
                held.iter().filter(|g| &g.permission == perm && sels.contains(&g.selector)).collect()
            }
            _ => return Err(ApiError::bad_request("give either a grant id or a permission (with optional resources)")),
        };
        for g in &chosen {
            ctx.may_hand_out(caller, "role.revoke", g)?;
        }
        let mut n = 0;
        for g in &chosen {
            n +=
                tx.execute(&format!("DELETE FROM grants WHERE {column} = ?1 AND id = ?2"), params![holder_id, g.id])?;
        }
        if n == 0 {
            return Err(ApiError::not_found(format!("{target} has no such grant")));
        }
        let detail = json!({"id": p.id, "permission": p.permission, "resources": first_of(chosen.iter().map(|g| g.selector.as_text())),
                            "revoked": n});
        audit::record(tx, &caller.actor(), "role.revoke", Some(&target), Outcome::Ok, Some(&detail))?;
        outbox::event(tx, "policy.changed", &json!({"target": target}))?;
        Ok(json!({ "target": target, "revoked": n }))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyParams {
    from: String,
    to: String,
    #[serde(default)]
    replace: bool,
}

/// `user.copy_roles`: gives `to` the roles of `from`, in addition (default) or instead (`replace`).
pub fn copy_roles(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: CopyParams = params("user.copy_roles", &p)?;
    ctx.authorize(caller, "roles.manage")?;
    ctx.write_policy(|tx| {
        let from = accounts::require_user(tx, &p.from)?;
        let to = accounts::require_user(tx, &p.to)?;
        if to.id == ADMIN_ID {
            return Err(protected_admin());
        }
        ctx.may_manage(caller, "user.copy_roles", crate::authz::SubjectKey::User(to.id), &format!("user {}", to.name))?;
        let roles = policy::user_role_names(tx, from.id)?;
        let ids = policy::role_ids(tx, &roles)?;
        ctx.may_assign_roles(caller, "user.copy_roles", tx, &ids)?;
        if p.replace {
            let had = policy::role_ids(tx, &policy::user_role_names(tx, to.id)?)?;
            ctx.may_assign_roles(caller, "user.copy_roles", tx, &had)?;
            policy::clear_user_roles(tx, to.id)?;
        }
        policy::add_user_roles(tx, to.id, &ids)?;
        let now_has = policy::user_role_names(tx, to.id)?;
        let detail = json!({"from": from.name, "replace": p.replace, "roles": now_has});
        audit::record(tx, &caller.actor(), "user.copy_roles", Some(&to.name), Outcome::Ok, Some(&detail))?;
        Ok(json!({ "user": to.name, "roles": now_has }))
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
    for id in remove_ids {
        tx.execute("DELETE FROM user_roles WHERE user_id = ?1 AND role_id = ?2", params![user_id, id])?;
    }
    Ok(())
}

/// Direct grants of a user, for `user.show`.
pub fn direct_grants(conn: &Connection, user_id: i64) -> Result<Value, ApiError> {
    to_value(grants_of(conn, "user_id", user_id)?)
}
