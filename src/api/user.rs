//! `login`, `logout`, `user.*`: accounts as the console and HMIs manage them.
//!
//! Must never happen: the built-in admin deleted, disabled, expired or given other roles; anyone but
//! a superuser setting the admin's password; a caller deleting itself; a disabled account keeping a
//! live token; a `users.manage` holder acting on an account stronger than itself (the ceiling, see
//! [`Ctx::may_manage`]); an unprivileged caller told whether a name exists (permission checks come
//! before any name is looked up); a reply reporting a committed change as failed (what is shown is
//! read in the transaction that made it).

use super::auth::{self, Caller, Credential, Principal};
use super::{ADMIN_ID, Ctx};
use crate::accounts::{self, User, password};
use crate::authz::SubjectKey;
use crate::contract::accounts::{
    LoggedOut, Login, LoginToken, Logout, PasswordSet, Unlocked, UserCreate, UserCreated, UserDelete, UserDeleted,
    UserDisable, UserDisabled, UserEnable, UserEnabled, UserGrant, UserImport, UserImported, UserList, UserRegister,
    UserRemoved, UserSetPassword, UserShow, UserSwitched, UserUnlock, UserUpdate, UserView, UsersImported,
};
use crate::contract::{Actor as Who, Method};
use crate::csvfile::{self, RowErrors};
use crate::protocol::{ApiError, ErrorCode};
use crate::store::audit::{self, Actor, Outcome};
use crate::store::{now_ms, outbox, policy};
use crate::text::{self, Lines};
use rusqlite::Connection;
use serde_json::json;

fn protected(what: &str) -> ApiError {
    ApiError::new(ErrorCode::ProtectedAccount, format!("the built-in admin account cannot be {what}"))
}

/// A user as `user.show` and `user.list` present it: the account plus its roles, and the lock as
/// the login gate holds it now (the table has it as of the last flush).
fn present(ctx: &Ctx, conn: &Connection, u: &User) -> Result<UserView, ApiError> {
    Ok(UserView {
        id: u.id,
        name: u.name.clone(),
        display_name: u.display_name.clone(),
        enabled: u.enabled,
        builtin: u.builtin,
        source: u.source.clone(),
        expires_at: u.expires_at,
        created_at: u.created_at,
        updated_at: u.updated_at,
        locked_until: ctx.gate().locked_until(&u.name, now_ms()),
        roles: policy::user_role_names(conn, u.id)?,
        grants: direct_grants(conn, u.id)?,
    })
}

/// The grants given to an account directly, as the roles family presents grants, read into the
/// contract's type (a row that does not fit it is an internal error, never a silently dropped grant).
fn direct_grants(conn: &Connection, user_id: i64) -> Result<Vec<UserGrant>, ApiError> {
    let shown = serde_json::to_value(super::role::direct_grants(conn, user_id)?).map_err(ApiError::internal)?;
    serde_json::from_value(shown).map_err(ApiError::internal)
}

/// Latest expiry date accepted (year 9999), so date arithmetic never overflows.
const MAX_DATE_MS: i64 = 253_402_300_799_000;

/// An `expires_at` from a client: unix milliseconds between 1970 and 9999.
pub fn check_date(what: &str, t: Option<i64>) -> Result<(), ApiError> {
    match t {
        Some(t) if !(0..=MAX_DATE_MS).contains(&t) => {
            Err(ApiError::bad_request(format!("{what} must be unix milliseconds between 0 and {MAX_DATE_MS}")))
        }
        _ => Ok(()),
    }
}

pub fn login(ctx: &Ctx, caller: &Caller, p: Login) -> Result<LoginToken, ApiError> {
    let u = auth::authenticate_password(ctx, &p.user, &p.password, &caller.origin)?;
    let ttl = ctx.config().accounts.token_ttl.0;
    let actor = Actor { who: Who::user(&u.name), source: caller.origin.describe() };
    let (token, expires_at) = ctx.write(|tx| {
        let t = accounts::issue_token(tx, ctx.credentials(), u.id, ttl, &caller.origin.describe())?;
        audit::record(tx, &actor, Login::NAME, Some(&u.name), Outcome::Ok, None)?;
        Ok::<_, ApiError>(t)
    })?;
    Ok(LoginToken { token, user: u.name, expires_at })
}

pub fn logout(ctx: &Ctx, caller: &Caller, _: Logout) -> Result<LoggedOut, ApiError> {
    let Principal::User { token_id: Some(token_id), name, .. } = &caller.principal else {
        return Err(ApiError::bad_request("logout needs a login token (--token)"));
    };
    let config = ctx.config();
    // The sessions opened with this token came from it: they end with it (SPEC "Trust rules").
    let ended = ctx.write_sessions(|tx, table| {
        accounts::rows::delete_token(tx, ctx.credentials(), *token_id)?;
        let ended = crate::sessions::end_matching(
            tx,
            table,
            &config,
            |t| t.of_token(*token_id),
            &caller.actor(),
            "logged out: the login token the session was opened with is revoked",
        )?;
        let detail = (ended > 0).then(|| json!({"sessions_terminated": ended}));
        audit::record(tx, &caller.actor(), Logout::NAME, Some(name), Outcome::Ok, detail.as_ref())?;
        Ok(ended)
    })?;
    Ok(LoggedOut { logged_out: name.clone(), sessions_terminated: ended as u64 })
}

pub fn create(ctx: &Ctx, caller: &Caller, p: UserCreate) -> Result<UserView, ApiError> {
    if !p.roles.is_empty() {
        ctx.authorize(caller, "roles.manage")?;
    }
    let config = ctx.config();
    accounts::validate_name("user name", &p.name)?;
    check_date("expires_at", p.expires_at)?;
    validate_display_name(p.display_name.as_deref())?;
    let hash = match &p.password {
        Some(pw) => {
            accounts::validate_password(pw, &config.accounts)?;
            Some(password::hash(pw, &config.accounts.argon2).map_err(ApiError::internal)?)
        }
        None => None,
    };
    let shown = ctx.write_policy(|tx| {
        let role_ids = policy::role_ids(tx, &p.roles)?;
        ctx.may_assign_roles(caller, UserCreate::NAME, tx, &role_ids)?;
        let id = accounts::insert_user(tx, &p.name, p.display_name.as_deref(), hash.as_deref(), p.expires_at)?;
        policy::add_user_roles(tx, id, &role_ids)?;
        let detail = json!({"roles": p.roles, "password": hash.is_some(), "expires_at": p.expires_at});
        audit::record(tx, &caller.actor(), UserCreate::NAME, Some(&p.name), Outcome::Ok, Some(&detail))?;
        outbox::emit(tx, &UserCreated { user: p.name.clone(), registered: false, by: caller.actor().who })?;
        shown_in(ctx, tx, id)
    })?;
    Ok(shown)
}

/// Most rows a `user.import` file may have.
pub const MAX_IMPORT_ROWS: usize = csvfile::MAX_ROWS;

/// Most roles one row of a `user.import` file may give.
const MAX_ROLES_PER_ROW: usize = 64;

/// Parses a `user.import` `expires_at`: unix ms, or a UTC date; between 1970 and 9999.
fn import_date(text: &str) -> Result<Option<i64>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let ms = match text.parse::<i64>() {
        Ok(ms) => Some(ms),
        Err(_) => text::parse_utc(text),
    };
    match ms {
        Some(ms) if (0..=MAX_DATE_MS).contains(&ms) => Ok(Some(ms)),
        _ => Err(format!(
            "expires_at {} is not unix milliseconds nor a UTC date like 2027-01-31 (between 1970 and 9999)",
            text::shown(text, 32)
        )),
    }
}

/// Checks one row of a `user.import` file without the database; its problems go to `errors`.
fn import_row(
    table: &csvfile::Table,
    line: u64,
    row: &[String],
    errors: &mut RowErrors,
) -> Option<(accounts::NewUser, Vec<String>)> {
    let before = errors.total;
    // A name too long to be one is not repeated back (a field may be a megabyte).
    let valid_name = |what: &str, name: &str| match name.len() {
        0..=64 => accounts::validate_name(what, name).map_err(|e| e.message),
        n => Err(format!("{what} {} is {n} bytes long; at most 64", text::shown(name, 32))),
    };
    let name = table.field(row, "name").unwrap_or_default();
    if let Err(e) = valid_name("user name", name) {
        errors.push(line, e);
    }
    let display_name = table.field(row, "display_name").filter(|d| !d.is_empty());
    if let Err(e) = validate_display_name(display_name) {
        errors.push(line, e.message);
    }
    let roles: Vec<String> = table
        .field(row, "roles")
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    if roles.len() > MAX_ROLES_PER_ROW {
        errors.push(line, format!("{} roles; at most {MAX_ROLES_PER_ROW} a row", roles.len()));
    }
    for r in roles.iter().take(MAX_ROLES_PER_ROW) {
        if let Err(e) = valid_name("role name", r) {
            errors.push(line, e);
        }
    }
    let password_hash = table.field(row, "password_hash").filter(|h| !h.is_empty());
    if let Some(Err(e)) = password_hash.map(password::check_phc) {
        errors.push(line, format!("password_hash {e}"));
    }
    let expires_at = import_date(table.field(row, "expires_at").unwrap_or_default()).unwrap_or_else(|e| {
        errors.push(line, e);
        None
    });
    (errors.total == before).then(|| {
        let user = accounts::NewUser {
            name: name.to_string(),
            display_name: display_name.map(str::to_string),
            password_hash: password_hash.map(str::to_string),
            expires_at,
        };
        (user, roles)
    })
}

/// `user.import`: accounts from a CSV file, all or nothing. Every row is checked before the database
/// is touched, then against it (names taken, roles unknown) in the one transaction that creates them
/// all; the index is rebuilt once, when it commits.
pub fn import(ctx: &Ctx, caller: &Caller, p: UserImport) -> Result<UsersImported, ApiError> {
    const COLUMNS: [&str; 5] = ["name", "display_name", "roles", "password_hash", "expires_at"];
    let table =
        csvfile::parse_table(&p.csv, &COLUMNS, &["name"], MAX_IMPORT_ROWS).map_err(super::resource::row_errors)?;
    drop(p);
    let mut errors = RowErrors::default();
    let mut rows = Vec::with_capacity(table.rows.len());
    let mut seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for (line, row) in &table.rows {
        if let Some((user, roles)) = import_row(&table, *line, row, &mut errors) {
            // Names compare without case, as the accounts table does.
            match seen.insert(user.name.to_ascii_lowercase(), *line) {
                Some(first) => errors.push(*line, format!("user {:?} is already listed on line {first}", user.name)),
                None => rows.push((*line, user, roles)),
            }
        }
    }
    if !errors.is_empty() {
        return Err(super::resource::row_errors(errors));
    }
    if rows.iter().any(|(_, _, roles)| !roles.is_empty()) {
        ctx.authorize(caller, "roles.manage")?;
    }
    let with_password = rows.iter().filter(|(_, u, _)| u.password_hash.is_some()).count();
    ctx.write_policy(|tx| {
        // The roles named, each resolved once; an unknown one is reported on every line naming it.
        let mut role_ids: std::collections::HashMap<String, Option<i64>> = std::collections::HashMap::new();
        for (line, user, roles) in &rows {
            if accounts::find_user(tx, &user.name)?.is_some() {
                errors.push(*line, format!("a user named {:?} already exists", user.name));
            }
            for r in roles {
                let id = match role_ids.get(&r.to_ascii_lowercase()) {
                    Some(id) => *id,
                    None => {
                        let id = crate::store::roles::find(tx, r)?.map(|row| row.id);
                        role_ids.insert(r.to_ascii_lowercase(), id);
                        id
                    }
                };
                if id.is_none() {
                    errors.push(*line, format!("no role named {r:?}"));
                }
            }
        }
        if !errors.is_empty() {
            return Err(super::resource::row_errors(std::mem::take(&mut errors)));
        }
        let mut distinct: Vec<i64> = role_ids.values().flatten().copied().collect();
        distinct.sort_unstable();
        ctx.may_assign_roles(caller, UserImport::NAME, tx, &distinct)?;
        let mut role_links = 0;
        for (_, user, roles) in &rows {
            let id = accounts::insert_new_user(tx, user)?;
            let mut ids: Vec<i64> =
                roles.iter().filter_map(|r| role_ids.get(&r.to_ascii_lowercase()).copied().flatten()).collect();
            ids.sort_unstable();
            ids.dedup();
            policy::add_user_roles(tx, id, &ids)?;
            role_links += ids.len();
        }
        let created = rows.len();
        let detail = json!({"created": created, "with_password": with_password, "role_links": role_links});
        audit::record(tx, &caller.actor(), UserImport::NAME, None, Outcome::Ok, Some(&detail))?;
        outbox::emit(tx, &UserImported { created, by: caller.actor().who })?;
        Ok(UsersImported { created, with_password, role_links })
    })
}

/// The account as committed by the caller's own transaction.
fn shown_in(ctx: &Ctx, tx: &Connection, id: i64) -> Result<UserView, ApiError> {
    let u =
        accounts::user_by_id(tx, id)?.ok_or_else(|| ApiError::internal("the account is not in its own transaction"))?;
    present(ctx, tx, &u)
}

/// Ends every session of account `user_id`, in the caller's transaction (its account just died for
/// its sessions: disabled, deleted, its password changed).
pub(crate) fn end_sessions_of(
    tx: &rusqlite::Transaction<'_>,
    table: &mut crate::sessions::Table,
    config: &crate::config::Config,
    caller: &Caller,
    user_id: i64,
    why: &str,
) -> Result<usize, ApiError> {
    crate::sessions::end_matching(tx, table, config, |t| t.of_user(user_id), &caller.actor(), why)
}

/// An account looked up before its transaction and deleted by another request in between.
fn gone(name: &str) -> ApiError {
    ApiError::not_found(format!("no user named {name:?} (it was deleted just now)"))
}

/// Display names are shown on panels and terminals: one line of [`text::MAX_FIELD`] characters.
pub(crate) fn validate_display_name(d: Option<&str>) -> Result<(), ApiError> {
    text::clean("display_name", d.map(str::to_string), text::MAX_FIELD, Lines::One).map(|_| ())
}

/// Self-registration: open to anonymous callers when `accounts.self_registration` is on.
pub fn register(ctx: &Ctx, caller: &Caller, p: UserRegister) -> Result<UserView, ApiError> {
    let config = ctx.config();
    if !config.accounts.self_registration {
        return Err(ApiError::new(ErrorCode::RegistrationDisabled, "self-registration is disabled on this gateway"));
    }
    accounts::validate_name("user name", &p.name)?;
    accounts::validate_password(&p.password, &config.accounts)?;
    let hash = password::hash(&p.password, &config.accounts.argon2).map_err(ApiError::internal)?;
    let actor = Actor { who: Who::nobody(), source: caller.origin.describe() };
    validate_display_name(p.display_name.as_deref())?;
    let shown = ctx.write_policy(|tx| {
        let id = accounts::insert_user(tx, &p.name, p.display_name.as_deref(), Some(&hash), None)?;
        let mut roles = Vec::new();
        for name in &config.accounts.default_roles {
            match policy::role_ids(tx, std::slice::from_ref(name)) {
                Ok(ids) => {
                    policy::add_user_roles(tx, id, &ids)?;
                    roles.push(name.clone());
                }
                Err(_) => tracing::warn!("accounts.default_roles names {name:?}, which does not exist; skipped"),
            }
        }
        audit::record(tx, &actor, UserRegister::NAME, Some(&p.name), Outcome::Ok, Some(&json!({"roles": roles})))?;
        // The account created itself: it is who did it.
        outbox::emit(tx, &UserCreated { user: p.name.clone(), registered: true, by: Who::user(&p.name) })?;
        shown_in(ctx, tx, id)
    })?;
    Ok(shown)
}

pub fn list(ctx: &Ctx, _caller: &Caller, _: UserList) -> Result<Vec<UserView>, ApiError> {
    let store = ctx.store();
    let users = accounts::list_users(&store.conn)?;
    users.iter().map(|u| present(ctx, &store.conn, u)).collect()
}

/// The account a method acts on: the named one, or the caller's own. `perm` is asked first when the
/// name is not the caller's own, so an unprivileged caller learns nothing about which names exist.
fn target(ctx: &Ctx, caller: &Caller, name: Option<&str>, perm: &str) -> Result<User, ApiError> {
    match (name, caller.user_id()) {
        (Some(n), Some(id)) if caller.is_named(n) => own_account(ctx, id),
        (None, Some(id)) => own_account(ctx, id),
        (Some(n), _) => {
            ctx.authorize(caller, perm)?;
            accounts::require_user(&ctx.store().conn, n)
        }
        (None, None) if caller.principal == Principal::Anonymous => {
            Err(ApiError::unauthenticated("who are you? pass --token, or name the user"))
        }
        (None, None) => Err(ApiError::bad_request("name which user (params.name)")),
    }
}

fn own_account(ctx: &Ctx, id: i64) -> Result<User, ApiError> {
    accounts::user_by_id(&ctx.store().conn, id)?.ok_or_else(|| ApiError::not_found("your account is gone"))
}

pub fn show(ctx: &Ctx, caller: &Caller, p: UserShow) -> Result<UserView, ApiError> {
    let u = target(ctx, caller, p.name.as_deref(), "users.view")?;
    present(ctx, &ctx.store().conn, &u)
}

pub fn update(ctx: &Ctx, caller: &Caller, p: UserUpdate) -> Result<UserView, ApiError> {
    if !p.add_roles.is_empty() || !p.remove_roles.is_empty() {
        ctx.authorize(caller, "roles.manage")?;
    }
    check_date("expires_at", p.expires_at.flatten())?;
    validate_display_name(p.display_name.as_ref().and_then(|d| d.as_deref()))?;
    let u = accounts::require_user(&ctx.store().conn, &p.name)?;
    if u.id == ADMIN_ID && matches!(p.expires_at, Some(Some(_))) {
        return Err(protected("given an expiry date"));
    }
    ctx.may_manage(caller, UserUpdate::NAME, SubjectKey::User(u.id), &format!("user {}", u.name))?;
    ctx.write_policy(|tx| {
        if accounts::user_by_id(tx, u.id)?.is_none() {
            return Err(gone(&u.name));
        }
        let changed: Vec<i64> = [policy::role_ids(tx, &p.add_roles)?, policy::role_ids(tx, &p.remove_roles)?].concat();
        ctx.may_assign_roles(caller, UserUpdate::NAME, tx, &changed)?;
        if let Some(d) = &p.display_name {
            accounts::rows::set_display_name(tx, u.id, d.as_deref())?;
        }
        if let Some(e) = &p.expires_at {
            accounts::rows::set_expires_at(tx, u.id, *e)?;
        }
        super::role::change_user_roles(tx, u.id, &p.add_roles, &p.remove_roles)?;
        let detail = json!({"display_name": p.display_name, "expires_at": p.expires_at,
                            "add_roles": p.add_roles, "remove_roles": p.remove_roles});
        audit::record(tx, &caller.actor(), UserUpdate::NAME, Some(&u.name), Outcome::Ok, Some(&detail))?;
        shown_in(ctx, tx, u.id)
    })
}

/// `user.disable`.
pub fn disable(ctx: &Ctx, caller: &Caller, p: UserDisable) -> Result<UserSwitched, ApiError> {
    set_enabled(ctx, caller, &p.name, false)
}

/// `user.enable`.
pub fn enable(ctx: &Ctx, caller: &Caller, p: UserEnable) -> Result<UserSwitched, ApiError> {
    set_enabled(ctx, caller, &p.name, true)
}

/// `user.disable` / `user.enable`. Disabling revokes every login token at once; enabling does not
/// bring them back.
fn set_enabled(ctx: &Ctx, caller: &Caller, name: &str, enabled: bool) -> Result<UserSwitched, ApiError> {
    let method = if enabled { UserEnable::NAME } else { UserDisable::NAME };
    let u = accounts::require_user(&ctx.store().conn, name)?;
    if u.id == ADMIN_ID {
        return Err(protected("disabled"));
    }
    ctx.may_manage(caller, method, SubjectKey::User(u.id), &format!("user {}", u.name))?;
    let config = ctx.config();
    let (revoked, ended) = ctx.write_policy_sessions(|tx, table| {
        let n = accounts::rows::set_enabled(tx, u.id, enabled)?;
        if n == 0 {
            return Err(gone(&u.name));
        }
        // Decided by hand now: a directory sync no longer enables it again on its own.
        crate::store::directory::set_disabled_by_directory(tx, u.id, false)?;
        let (revoked, ended) = if enabled {
            (0, 0)
        } else {
            let ended = end_sessions_of(tx, table, &config, caller, u.id, "account disabled")?;
            (accounts::revoke_tokens(tx, ctx.credentials(), u.id)?, ended)
        };
        let detail = json!({"tokens_revoked": revoked, "sessions_terminated": ended});
        audit::record(tx, &caller.actor(), method, Some(&u.name), Outcome::Ok, Some(&detail))?;
        let (user, by) = (u.name.clone(), caller.actor().who);
        if enabled {
            outbox::emit(tx, &UserEnabled { user, by })?;
        } else {
            outbox::emit(tx, &UserDisabled { user, by })?;
        }
        Ok((revoked, ended))
    })?;
    Ok(UserSwitched { user: u.name, enabled, tokens_revoked: revoked as u64, sessions_terminated: ended as u64 })
}

/// Deletes an account with its keys, tokens, grants and role links, in one transaction.
pub fn delete(ctx: &Ctx, caller: &Caller, p: UserDelete) -> Result<UserRemoved, ApiError> {
    let self_delete = || ApiError::new(ErrorCode::SelfDelete, "you cannot delete your own account");
    if caller.is_named(&p.name) {
        return Err(self_delete());
    }
    let u = accounts::require_user(&ctx.store().conn, &p.name)?;
    if matches!(caller.principal, Principal::Key { owner_id, .. } if owner_id == u.id) {
        return Err(self_delete());
    }
    if u.id == ADMIN_ID {
        return Err(protected("deleted"));
    }
    ctx.may_manage(caller, UserDelete::NAME, SubjectKey::User(u.id), &format!("user {}", u.name))?;
    let config = ctx.config();
    let done = ctx.write_policy_sessions(|tx, table| {
        // Its objects first (deleted, or given to the admin: accounts.on_delete), then the account's
        // sessions end (their rows stay, for the record); keys, tokens, grants and role links go by
        // ON DELETE CASCADE in this same transaction.
        let (objects_deleted, objects_reassigned) = super::objects::on_owner_deleted(ctx, tx, caller, u.id, &u.name)?;
        // Looked up before the transaction: another request may have deleted it since.
        if accounts::rows::delete_user(tx, ctx.credentials(), u.id)? == 0 {
            return Err(gone(&u.name));
        }
        let ended = end_sessions_of(tx, table, &config, caller, u.id, "account deleted")?;
        let detail = json!({
            "sessions_terminated": ended,
            "objects_deleted": objects_deleted,
            "objects_reassigned": objects_reassigned,
        });
        audit::record(tx, &caller.actor(), UserDelete::NAME, Some(&u.name), Outcome::Ok, Some(&detail))?;
        outbox::emit(tx, &UserDeleted { user: u.name.clone(), by: caller.actor().who })?;
        Ok((ended, objects_deleted, objects_reassigned))
    });
    let (ended, objects_deleted, objects_reassigned) =
        done.inspect_err(|_| super::objects::owner_delete_failed(ctx))?;
    Ok(UserRemoved { deleted: u.name, sessions_terminated: ended as u64, objects_deleted, objects_reassigned })
}

/// Sets a password: your own (with the current one, unless this very request proved it or came from
/// root on the console), or another account's with `users.manage` within the ceiling. The admin's
/// only by a superuser. Revokes the account's login tokens and ends its sessions: whoever held them
/// must prove the new password.
pub fn set_password(ctx: &Ctx, caller: &Caller, p: UserSetPassword) -> Result<PasswordSet, ApiError> {
    let u = target(ctx, caller, p.name.as_deref(), "users.manage")?;
    let config = ctx.config();
    if u.source == "directory" {
        // It would never be asked: the directory verifies this name (api::directory's rule).
        return Err(ApiError::bad_request(format!(
            "{} is a plant directory account: its password is the directory's, changed there",
            u.name
        )));
    }
    if caller.user_id() == Some(u.id) {
        let proven =
            caller.credential == Credential::Password || (caller.credential == Credential::Peer && u.id == ADMIN_ID);
        if !proven {
            let current = p.current_password.as_deref().unwrap_or("");
            if current.len() > auth::MAX_PASSWORD
                || !u.password_hash.as_deref().is_some_and(|h| password::verify(current, h))
            {
                return Err(ApiError::new(ErrorCode::InvalidCredentials, "current password is wrong or missing"));
            }
        }
    } else {
        if u.id == ADMIN_ID && !caller.is_superuser() {
            return Err(protected("given a new password by anyone but a superuser"));
        }
        ctx.may_manage(caller, UserSetPassword::NAME, SubjectKey::User(u.id), &format!("user {}", u.name))?;
    }
    accounts::validate_password(&p.password, &config.accounts)?;
    let hash = password::hash(&p.password, &config.accounts.argon2).map_err(ApiError::internal)?;
    let (revoked, ended) = ctx.write_sessions(|tx, table| {
        let n = accounts::rows::set_password_hash(tx, u.id, &hash)?;
        if n == 0 {
            return Err(gone(&u.name));
        }
        let revoked = accounts::revoke_tokens(tx, ctx.credentials(), u.id)?;
        let ended = end_sessions_of(tx, table, &config, caller, u.id, "password changed")?;
        let detail = json!({"tokens_revoked": revoked, "sessions_terminated": ended});
        audit::record(tx, &caller.actor(), UserSetPassword::NAME, Some(&u.name), Outcome::Ok, Some(&detail))?;
        Ok((revoked, ended))
    })?;
    ctx.gate().unlock_name(&u.name, now_ms());
    ctx.write(|tx| accounts::save_lockout(tx, &u.name, (0, 0, None)))?;
    Ok(PasswordSet { user: u.name, tokens_revoked: revoked as u64, sessions_terminated: ended as u64 })
}

/// `user.unlock`: ends the failed-login lock of an account (`name`) or the slow-down of a network
/// source (`source`, as the audit trail names it: `mqtt client=<id>`). Needs `users.manage`, within
/// the ceiling for an account.
pub fn unlock(ctx: &Ctx, caller: &Caller, p: UserUnlock) -> Result<Unlocked, ApiError> {
    let now = now_ms();
    let (target, was) = match (&p.name, &p.source) {
        (Some(name), None) => {
            let u = accounts::require_user(&ctx.store().conn, name)?;
            ctx.may_manage(caller, UserUnlock::NAME, SubjectKey::User(u.id), &format!("user {}", u.name))?;
            let was = ctx.gate().unlock_name(&u.name, now);
            ctx.write(|tx| accounts::save_lockout(tx, &u.name, (0, 0, None)))?;
            (u.name.clone(), was)
        }
        (None, Some(source)) => {
            if source.is_empty() || source.len() > 256 {
                return Err(ApiError::bad_request("source must be 1-256 bytes, as the audit trail shows it"));
            }
            (source.clone(), ctx.gate().unlock_source(source, &ctx.config().accounts))
        }
        _ => return Err(ApiError::bad_request("name exactly one of name or source")),
    };
    ctx.write(|tx| {
        let detail = json!({"was_locked": was});
        audit::record(tx, &caller.actor(), UserUnlock::NAME, Some(&target), Outcome::Ok, Some(&detail))
    })?;
    ctx.flush()?;
    Ok(Unlocked { unlocked: target, was_locked: was })
}
