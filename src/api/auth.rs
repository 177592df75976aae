//! Who is calling: credentials in the request (login token, API key, or user + password), else the
//! control socket's peer credentials (root is the built-in admin; with `console.map_unix_users` a
//! unix user is the gatewarden user of the same name), else anonymous.
//!
//! Must never happen: a password verified while holding the database lock (it would stall every
//! other request for the hashing time); a failed login that is not counted and audited.

use super::{Ctx, is_network};
use crate::accounts::{self, User, lockout, password, secret};
use crate::authz::{DenyReason, SubjectKey};
use crate::protocol::{ApiError, Auth, ErrorCode, Request};
use crate::store::audit::{Actor, Outcome};
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
            Origin::Mqtt { client } => format!("mqtt client={}", crate::logs::clip(client, 128)),
        }
    }
}

pub use crate::accounts::{ADMIN_ID, ADMIN_NAME, Principal};

/// What a request proved itself with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    None,
    /// The control socket's peer credentials (root, or a mapped unix user).
    Peer,
    /// The account's password, in this very request.
    Password,
    LoginToken,
    SessionToken,
    Key,
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub origin: Origin,
    /// The client session whose token authenticated this request.
    pub session: Option<i64>,
    pub credential: Credential,
    /// That session holds a read-only seat: its write-class methods and write decisions answer
    /// `read_only_seat`.
    pub read_only_seat: bool,
}

impl Caller {
    /// `read_only_seat` for a caller whose session holds a read-only seat.
    pub fn may_write(&self) -> Result<(), ApiError> {
        if self.read_only_seat { Err(read_only_seat()) } else { Ok(()) }
    }

    pub fn actor(&self) -> Actor {
        let who = match &self.principal {
            Principal::Anonymous => crate::contract::Actor::nobody(),
            Principal::User { name, .. } => crate::contract::Actor::user(name),
            Principal::Key { name, .. } => crate::contract::Actor::key(name),
        };
        Actor { who, source: self.origin.describe() }
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

    /// Whether `name` is the caller's own name: its user name, or `key:NAME` for an API key (names
    /// compare without case, as accounts and keys do). Decided without looking the name up, so asking
    /// tells nothing.
    pub fn is_named(&self, name: &str) -> bool {
        match &self.principal {
            Principal::User { name: own, .. } => own.eq_ignore_ascii_case(name),
            Principal::Key { name: own, .. } => name.strip_prefix("key:").is_some_and(|n| own.eq_ignore_ascii_case(n)),
            Principal::Anonymous => false,
        }
    }
}

/// Whether resolving this request's caller may hash a password.
pub fn needs_password_check(req: &Request) -> bool {
    matches!(req.auth, Some(Auth::Password { .. }))
}

/// Who the policy index knows a principal as.
pub fn subject_of(p: &Principal) -> Option<SubjectKey> {
    match p {
        Principal::User { id, .. } => Some(SubjectKey::User(*id)),
        Principal::Key { id, .. } => Some(SubjectKey::Key(*id)),
        Principal::Anonymous => None,
    }
}

/// The one answer to "is this principal live?": the account or API key still exists (not deleted,
/// not revoked), is enabled and unexpired (a key also needs its owner enabled and unexpired), read
/// from the in-memory policy at the moment of the request. Every credential path (login token, API
/// key, session token, password, the console's peer) ends here, on every request, so a credential is
/// never better than what it came from; the name and the superuser flag come from the same answer.
pub fn live(ctx: &Ctx, subject: SubjectKey, token_id: Option<i64>) -> Result<Principal, ApiError> {
    let index = ctx.index();
    match index.principal(subject, now_ms()) {
        Ok(a) => Ok(match subject {
            SubjectKey::User(id) => Principal::User { id, name: a.name.to_string(), token_id },
            SubjectKey::Key(id) => {
                Principal::Key { id, name: a.name.to_string(), owner_id: a.owner.unwrap_or(0), master: a.superuser }
            }
        }),
        Err(reason) => Err(dead(subject, &reason)),
    }
}

/// The refusal for a credential whose principal is not live.
pub fn dead(subject: SubjectKey, reason: &DenyReason) -> ApiError {
    let what = match subject {
        SubjectKey::User(_) => "account",
        SubjectKey::Key(_) => "API key",
    };
    match reason {
        DenyReason::AccountDisabled if what == "account" => {
            ApiError::new(ErrorCode::AccountDisabled, "this account is disabled")
        }
        DenyReason::AccountDisabled => {
            ApiError::new(ErrorCode::AccountDisabled, "the owner of this API key is disabled")
        }
        DenyReason::AccountExpired if what == "account" => {
            ApiError::new(ErrorCode::AccountDisabled, "this account has expired")
        }
        DenyReason::AccountExpired => {
            ApiError::unauthenticated("this API key has expired (or its owner's account has): use another credential")
        }
        _ => ApiError::unauthenticated(format!(
            "the {what} behind this credential no longer exists (deleted or revoked)"
        )),
    }
}

pub fn resolve_caller(ctx: &Ctx, req: &Request, origin: &Origin) -> Result<Caller, ApiError> {
    let (mut session, mut read_only_seat) = (None, false);
    let (principal, credential) = match (&req.auth, origin) {
        (Some(Auth::Token { token }), _) if secret::is_kind(secret::SESSION_PREFIX, token) => {
            let (principal, id, read_only) = session_token(ctx, token)?;
            (session, read_only_seat) = (Some(id), read_only);
            (principal, Credential::SessionToken)
        }
        (Some(Auth::Token { token }), _) => {
            let (user_id, token_id) = accounts::resolve_token(ctx.credentials(), token)?;
            (live(ctx, SubjectKey::User(user_id), Some(token_id))?, Credential::LoginToken)
        }
        (Some(Auth::Key { key }), _) => {
            let id = accounts::resolve_key(ctx.credentials(), key)?;
            (live(ctx, SubjectKey::Key(id), None)?, Credential::Key)
        }
        (Some(Auth::Password { user, password }), _) => {
            let u = authenticate_password(ctx, user, password, origin)?;
            (live(ctx, SubjectKey::User(u.id), None)?, Credential::Password)
        }
        (None, Origin::Socket { uid: 0, .. }) => (live(ctx, SubjectKey::User(ADMIN_ID), None)?, Credential::Peer),
        (None, Origin::Socket { uid, .. }) if ctx.config().console.map_unix_users => match mapped_unix_user(ctx, *uid)?
        {
            Principal::Anonymous => (Principal::Anonymous, Credential::None),
            p => (p, Credential::Peer),
        },
        (None, _) => (Principal::Anonymous, Credential::None),
    };
    Ok(Caller { principal, origin: origin.clone(), session, credential, read_only_seat })
}

/// `console.map_unix_users`: the unix account on the socket acts as the same-named gatewarden user.
fn mapped_unix_user(ctx: &Ctx, uid: u32) -> Result<Principal, ApiError> {
    let Ok(Some(unix)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return Ok(Principal::Anonymous);
    };
    match accounts::find_user(&ctx.store().conn, &unix.name)? {
        // Root alone is the admin; a unix user called "admin" does not become it.
        Some(u) if u.id != ADMIN_ID => live(ctx, SubjectKey::User(u.id), None),
        _ => Ok(Principal::Anonymous),
    }
}

/// Longest password accepted at login (and when set): past it nothing is hashed.
pub const MAX_PASSWORD: usize = 1024;

/// Checks a user name and password, with the lockout, the source slow-down, the growing delay and
/// the audit trail. Runs on the blocking pool: the hash is computed without holding the database lock.
///
/// Known and unknown names take the same path (see [`accounts::lockout`]): the same counters, the same
/// errors, a hash each (a dummy one for unknown names) and one small transaction per failure saving
/// the name's counter; the failure itself reaches the audit trail, counted, at the next flush.
/// Between `admit` and `finish` nothing returns early: an attempt reserved is always given back.
pub fn authenticate_password(ctx: &Ctx, name: &str, pw: &str, origin: &Origin) -> Result<User, ApiError> {
    // Bounded before anything costs: a name that cannot exist and an oversized password are refused
    // without a hash, a counter or an audit row.
    accounts::validate_name("user name", name)?;
    if pw.len() > MAX_PASSWORD {
        return Err(ApiError::bad_request(format!("password is too long: at most {MAX_PASSWORD} bytes")));
    }
    let config = ctx.config();
    let cfg = &config.accounts;
    let now = now_ms();
    let source = is_network(origin).then(|| origin.describe());
    let actor = Actor { who: crate::contract::Actor::nobody(), source: origin.describe() };
    let refused = |reason: &str, outcome: Outcome| {
        ctx.audit_later(&actor, "login", Some(name), outcome, reason, Some(json!({"reason": reason})));
    };

    let (user, saved) = {
        let store = ctx.store();
        (accounts::find_user(&store.conn, name)?, accounts::saved_lockout(&store.conn, name)?)
    };
    // A name no local account holds is the plant directory's to verify (api::directory's rule).
    let by_directory = super::directory::decides(&config, user.as_ref());
    let admitted = ctx.gate().admit(name, saved, source.as_deref(), cfg, now);
    match admitted {
        lockout::Admit::Go => {}
        lockout::Admit::Locked { retry_after_s } => {
            refused("locked", Outcome::Denied);
            return Err(lockout::locked_error(&format!("account {name}"), retry_after_s));
        }
        lockout::Admit::SourceSlowed { retry_after_ms } => {
            refused("source slowed", Outcome::Denied);
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many failed logins from this client lately: wait before the next attempt",
            )
            .with("retry_after_ms", retry_after_ms));
        }
    }

    let (verified, user) = match user.as_ref().and_then(|u| u.password_hash.as_deref()) {
        // Off the store lock, bounded by directory.timeout, within this transport's password gate.
        _ if by_directory => super::directory::verify_password(ctx, name, pw, user),
        Some(hash) => (password::verify(pw, hash), user),
        None => {
            password::verify_dummy(pw, &cfg.argon2);
            (false, user)
        }
    };
    let had_failures = ctx.gate().has_failures(name);
    let done = ctx.gate().finish(name, source.as_deref(), verified, cfg, now_ms());
    if !verified || had_failures {
        // One small transaction whether the name is an account or not: the same work, the same time.
        ctx.write(|tx| accounts::save_lockout(tx, name, done.saved))?;
    }

    match (verified, user) {
        (true, Some(u)) => {
            // Only after the password is proven do we say whether the account is usable.
            if let Err(e) = live(ctx, SubjectKey::User(u.id), None) {
                refused(&e.message, Outcome::Denied);
                return Err(e);
            }
            // A directory person has no local password: nothing to rehash.
            let rehash = (!by_directory
                && password::needs_rehash(u.password_hash.as_deref().unwrap_or(""), &cfg.argon2))
            .then(|| password::hash(pw, &cfg.argon2).ok())
            .flatten();
            if let Some(h) = &rehash {
                ctx.write(|tx| accounts::rows::rehash_password(tx, u.id, h))?;
            }
            Ok(u)
        }
        _ => {
            let detail = json!({"reason": "invalid credentials"});
            ctx.audit_later(&actor, "login", Some(name), Outcome::Failed, "invalid credentials", Some(detail));
            if let Some(until) = done.locked_until {
                let detail = json!({"locked_until": until, "source": origin.describe()});
                ctx.audit_later(&Actor::system(), "login.lock", Some(name), Outcome::Ok, "locked", Some(detail));
                tracing::warn!(user = name, source = %origin.describe(), "login locked after repeated failures");
                return Err(lockout::locked_error(
                    &format!("account {name}"),
                    lockout::retry_after(Some(until), now_ms()).unwrap_or(1),
                ));
            }
            let mut err = ApiError::new(ErrorCode::InvalidCredentials, "user name or password is wrong");
            err.delay_ms = lockout::delay_for(done.failures as i64).as_millis() as u64;
            Err(err)
        }
    }
}

/// The refusal of a write by a session on a read-only seat.
pub fn read_only_seat() -> ApiError {
    ApiError::new(
        ErrorCode::ReadOnlySeat,
        "this session holds a read-only licence seat: it may read, not write (reopen when a read-write seat is free)",
    )
}

/// Finds the live session of a session token, and counts the request as a heartbeat: the principal
/// behind it, the session's id and whether it holds a read-only seat. For a session that is no longer
/// live, says why: `session_terminated`, `session_expired`.
pub fn session_token(ctx: &Ctx, token: &str) -> Result<(Principal, i64, bool), ApiError> {
    let (id, body) =
        secret::parse(secret::SESSION_PREFIX, token).ok_or_else(crate::sessions::lifecycle::invalid_token)?;
    {
        let mut table = ctx.sessions();
        if let Some(live) = table.get_mut(id) {
            if !secret::matches(body, &live.digest) {
                return Err(crate::sessions::lifecycle::invalid_token());
            }
            // The session is exactly as good as the account or key that opened it, asked now.
            let subject = subject_of(&live.principal).ok_or_else(crate::sessions::lifecycle::invalid_token)?;
            let principal = self::live(ctx, subject, None)?;
            live.beat();
            return Ok((principal, id, live.read_only));
        }
    }
    Err(crate::sessions::lifecycle::not_live(&ctx.store().conn, id, body)?)
}
