//! `key.*`: API keys for local services and HMIs. A key acts with its own roles; a master key passes
//! every check and every supervisor lock, so only a superuser may create (or revoke) one. A key gets
//! only roles whose grants its creator holds, and only keys whose rights are within the caller's may
//! be revoked by it (the ceiling). The secret is shown once, in the reply to `key.create`, and stored
//! only as a digest.

use super::Ctx;
use super::auth::{Caller, Principal};
use crate::accounts;
use crate::authz::SubjectKey;
use crate::contract::Method;
use crate::contract::accounts::{KeyCreate, KeyCreated, KeyList, KeyRevoke, KeyRevoked, KeyView};
use crate::protocol::ApiError;
use crate::store::audit::{self, Outcome};
use crate::store::policy;
use serde_json::json;

pub fn create(ctx: &Ctx, caller: &Caller, p: KeyCreate) -> Result<KeyCreated, ApiError> {
    if !p.roles.is_empty() {
        ctx.authorize(caller, "roles.manage")?;
    }
    if p.master && !caller.is_superuser() {
        let err = ApiError::forbidden("only the admin or a master key may create a master key");
        ctx.audit_denied(caller, KeyCreate::NAME, &err);
        return Err(err);
    }
    accounts::validate_name("key name", &p.name)?;
    super::user::check_date("expires_at", p.expires_at)?;
    let owner = match &caller.principal {
        Principal::User { id, .. } => *id,
        Principal::Key { owner_id, .. } => *owner_id,
        Principal::Anonymous => {
            return Err(ApiError::unauthenticated(format!("{} needs credentials", KeyCreate::NAME)));
        }
    };
    let (id, secret) = ctx.write_policy(|tx| {
        let role_ids = policy::role_ids(tx, &p.roles)?;
        ctx.may_assign_roles(caller, KeyCreate::NAME, tx, &role_ids)?;
        let (id, secret) = accounts::insert_key(tx, ctx.credentials(), &p.name, owner, p.master, p.expires_at)?;
        policy::add_key_roles(tx, id, &role_ids)?;
        let detail = json!({"roles": p.roles, "master": p.master, "expires_at": p.expires_at});
        audit::record(tx, &caller.actor(), KeyCreate::NAME, Some(&p.name), Outcome::Ok, Some(&detail))?;
        Ok((id, secret))
    })?;
    Ok(KeyCreated { id, name: p.name, key: secret, master: p.master, roles: p.roles })
}

pub fn list(ctx: &Ctx, _caller: &Caller, _: KeyList) -> Result<Vec<KeyView>, ApiError> {
    Ok(accounts::list_keys(&ctx.store().conn)?)
}

pub fn revoke(ctx: &Ctx, caller: &Caller, p: KeyRevoke) -> Result<KeyRevoked, ApiError> {
    let config = ctx.config();
    let ended = ctx.write_policy_sessions(|tx, table| {
        let id = crate::store::policy::api_key_id(tx, &p.name)?;
        let Some(id) = id else {
            return Err(ApiError::not_found(format!("no API key named {:?}", p.name)));
        };
        ctx.may_manage(caller, KeyRevoke::NAME, SubjectKey::Key(id), &format!("API key {}", p.name))?;
        let ended =
            crate::sessions::end_matching(tx, table, &config, |t| t.of_key(id), &caller.actor(), "API key revoked")?;
        accounts::rows::delete_key(tx, ctx.credentials(), id)?;
        let detail = json!({"sessions_terminated": ended});
        audit::record(tx, &caller.actor(), KeyRevoke::NAME, Some(&p.name), Outcome::Ok, Some(&detail))?;
        Ok(ended)
    })?;
    Ok(KeyRevoked { revoked: p.name, sessions_terminated: ended as u64 })
}
