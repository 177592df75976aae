//! Who is calling: credentials in the request (login token, API key, or user + password), else the
//! control socket's peer credentials (root is the built-in admin; with `console.map_unix_users` a
//! unix user is the gatewarden user of the same name), else anonymous.
//!
//! Must never happen: a password verified while holding the database lock (it would stall every
//! other request for the hashing time); a failed login that is not counted and audited.

use super::{Ctx, is_network};
use crate::accounts::{self, User, lockout, password};
use crate::protocol::{ApiError, Auth, ErrorCode, Request};
use crate::store::audit::{self, Actor, Outcome};
use crate::store::now_ms;
use serde_json::json;

/// Where a request came from. Decides how an unauthenticated request is treated.
#[derive(Debug, Clone)]
pub enum Origin {
    /// The control socket, with the peer's credentials from SO_PEERCRED.
    Socket { uid: u32, pid: i32 },
    /// The MQTT bridge, with the client's id.
    Mqtt { client: String },
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::Socket { uid, pid } => format!("socket uid={uid} pid={pid}"),
            Origin::Mqtt { client } => format!("mqtt client={client}"),
        }
    }
}

/// Who is calling, once credentials are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    /// A user: by login token (`token_id`), by password, or by the socket's peer credentials.
    User {
        id: i64,
        name: String,
        token_id: Option<i64>,
    },
    /// An API key, acting with its own roles (a master key passes every check).
    Key {
        id: i64,
        name: String,
        owner_id: i64,
        master: bool,
    },
}

/// The built-in administrator. Root on the control socket acts as this account.
pub const ADMIN_ID: i64 = 1;
pub const ADMIN_NAME: &str = "admin";

#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub origin: Origin,
    /// The client session whose token authenticated this request.
    pub session: Option<i64>,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        let name = match &self.principal {
            Principal::Anonymous => "anonymous".to_string(),
            Principal::User { name, .. } => format!("user:{name}"),
            Principal::Key { name, .. } => format!("key:{name}"),
        };
        Actor { name, source: self.origin.describe() }
    }

    /// The built-in admin and master keys pass every check.
    pub fn is_superuser(&self) -> bool {
        match &self.principal {
            Principal::User { id, .. } => *id == ADMIN_ID,
            Principal::Key { master, .. } => *master,
            Principal::Anonymous => false,
        }
    }

    /// Who the policy index knows this caller as.
    pub fn subject(&self) -> Option<crate::authz::SubjectKey> {
        match &self.principal {
            Principal::User { id, .. } => Some(crate::authz::SubjectKey::User(*id)),
            Principal::Key { id, .. } => Some(crate::authz::SubjectKey::Key(*id)),
            Principal::Anonymous => None,
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        match &self.principal {
            Principal::User { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// Whether resolving this request's caller may hash a password.
pub fn needs_password_check(req: &Request) -> bool {
    matches!(req.auth, Some(Auth::Password { .. }))
}

pub fn resolve_caller(ctx: &Ctx, req: &Request, origin: &Origin) -> Result<Caller, ApiError> {
    let mut session = None;
    let principal = match (&req.auth, origin) {
        (Some(Auth::Token { token }), _) if token.starts_with("gws_") => {
            let (principal, id) = super::session::resolve(ctx, token)?;
            session = Some(id);
            principal
        }
        (Some(Auth::Token { token }), _) => {
            let (user, token_id) = accounts::resolve_token(&ctx.store().conn, token)?;
            Principal::User { id: user.id, name: user.name, token_id: Some(token_id) }
        }
        (Some(Auth::Key { key }), _) => {
            let k = accounts::resolve_key(&ctx.store().conn, key)?;
            Principal::Key { id: k.id, name: k.name, owner_id: k.owner_id, master: k.master }
        }
        (Some(Auth::Password { user, password }), _) => {
            let u = authenticate_password(ctx, user, password, origin)?;
            Principal::User { id: u.id, name: u.name, token_id: None }
        }
        (None, Origin::Socket { uid: 0, .. }) => {
            Principal::User { id: ADMIN_ID, name: ADMIN_NAME.into(), token_id: None }
        }
        (None, Origin::Socket { uid, .. }) if ctx.config().console.map_unix_users => mapped_unix_user(ctx, *uid)?,
        (None, _) => Principal::Anonymous,
    };
    Ok(Caller { principal, origin: origin.clone(), session })
}

/// `console.map_unix_users`: the unix account on the socket acts as the same-named gatewarden user.
fn mapped_unix_user(ctx: &Ctx, uid: u32) -> Result<Principal, ApiError> {
    let Ok(Some(unix)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return Ok(Principal::Anonymous);
    };
    match accounts::find_user(&ctx.store().conn, &unix.name)? {
        // Root alone is the admin; a unix user called "admin" does not become it.
        Some(u) if u.id != ADMIN_ID => {
            u.check_active(now_ms())?;
            Ok(Principal::User { id: u.id, name: u.name, token_id: None })
        }
        _ => Ok(Principal::Anonymous),
    }
}

/// Checks a user name and password, with lockout, the growing delay and the audit trail.
/// Runs on the blocking pool: the hash is computed without holding the database lock.
pub fn authenticate_password(ctx: &Ctx, name: &str, pw: &str, origin: &Origin) -> Result<User, ApiError> {
    let config = ctx.config();
    let cfg = &config.accounts;
    let now = now_ms();
    let source = is_network(origin).then(|| origin.describe());
    let actor = Actor { name: format!("login:{name}"), source: origin.describe() };

    let user = {
        let store = ctx.store();
        if let Some(src) = &source
            && let Some(retry) = lockout::source_locked(&store.conn, src, now)?
        {
            return Err(lockout::locked_error("this source", retry));
        }
        accounts::find_user(&store.conn, name)?
    };
    if let Some(u) = &user
        && let Some(retry) = lockout::retry_after(u.locked_until, now)
    {
        ctx.store().write(|tx| {
            audit::record(tx, &actor, "login", Some(name), Outcome::Denied, Some(&json!({"reason": "locked"})))
        })?;
        return Err(lockout::locked_error(&format!("account {name}"), retry));
    }

    let verified = match user.as_ref().and_then(|u| u.password_hash.as_deref()) {
        Some(hash) => password::verify(pw, hash),
        None => {
            password::verify_dummy(pw, &cfg.argon2);
            false
        }
    };

    match (verified, user) {
        (true, Some(u)) => {
            // Only after the password is proven do we say whether the account is usable.
            if let Err(e) = u.check_active(now) {
                ctx.store().write(|tx| {
                    audit::record(tx, &actor, "login", Some(name), Outcome::Denied, Some(&json!({"reason": e.message})))
                })?;
                return Err(e);
            }
            let rehash = password::needs_rehash(u.password_hash.as_deref().unwrap_or(""), &cfg.argon2)
                .then(|| password::hash(pw, &cfg.argon2).ok())
                .flatten();
            if u.failed_count > 0 || u.locked_until.is_some() || rehash.is_some() {
                ctx.store().write(|tx| {
                    lockout::user_succeeded(tx, u.id)?;
                    if let Some(h) = &rehash {
                        tx.execute("UPDATE users SET password_hash = ?2 WHERE id = ?1", rusqlite::params![u.id, h])?;
                    }
                    Ok::<_, rusqlite::Error>(())
                })?;
            }
            Ok(u)
        }
        (_, user) => {
            let (failures, locked) = ctx.store().write(|tx| {
                let (mut failures, mut locked) = (1, None);
                if let Some(u) = &user {
                    (failures, locked) = lockout::user_failed(tx, u, cfg)?;
                }
                if let Some(src) = &source
                    && let Some(until) = lockout::source_failed(tx, src, cfg)?
                {
                    locked = locked.or(Some(until));
                }
                let detail = json!({"reason": "invalid credentials", "failures": failures, "locked": locked.is_some()});
                audit::record(tx, &actor, "login", Some(name), Outcome::Failed, Some(&detail))?;
                if locked.is_some() {
                    audit::record(tx, &Actor::system(), "login.lock", Some(name), Outcome::Ok, Some(&detail))?;
                }
                Ok::<_, rusqlite::Error>((failures, locked))
            })?;
            if let Some(until) = locked {
                tracing::warn!(user = name, source = %origin.describe(), "login locked after repeated failures");
                return Err(lockout::locked_error(
                    &format!("account {name}"),
                    lockout::retry_after(Some(until), now_ms()).unwrap_or(1),
                ));
            }
            let mut err = ApiError::new(ErrorCode::InvalidCredentials, "user name or password is wrong");
            err.delay_ms = lockout::delay_for(failures).as_millis() as u64;
            Err(err)
        }
    }
}
