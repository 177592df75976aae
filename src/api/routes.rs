//! The route table: every request method, declared once. Dispatch, the "every method without its
//! permission" test, `gatewarden call --list` and the reference docs all read it, so a method cannot
//! exist in one of them and be missing from another.
//!
//! Must never happen: a method served that is not in this table; a method whose permission is
//! checked only inside its handler when the table could say it (dispatch checks [`Needs::Permission`]
//! before the handler parses anything, so an unprivileged caller learns nothing from its params); a
//! write-class method that the supervisor lock does not stop.
//!
//! The audit action of a method is its name: refusals by dispatch are recorded under it, and handlers
//! record what they did under it.

use super::auth::{Caller, Principal};
use super::{
    Ctx, audit, authz, directory, key, objects, policyfile, resource, role, session, settings, status, supervisor, user,
};
use crate::protocol::{ApiError, ErrorCode};
use schemars::Schema;
use serde_json::value::RawValue;

/// The built-in permissions (SPEC "Authorization"); every other dotted name is an application
/// permission.
pub const BUILTIN_PERMISSIONS: [&str; 10] = [
    "sessions.view",
    "sessions.terminate",
    "users.view",
    "users.manage",
    "roles.manage",
    "resources.manage",
    "settings.manage",
    "supervisor.lock",
    "supervisor.broadcast",
    "audit.view",
];

/// What a caller needs before a method runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nobody is refused at the door: the method decides from its params (credentials, the
    /// registration setting, status shown by right).
    Open,
    /// Any authenticated caller (a user or an API key).
    Account,
    /// This built-in permission on the gateway, checked by dispatch before the handler runs.
    Permission(&'static str),
    /// The caller's own account or session freely; anyone else's with this permission, which the
    /// handler asks before any name is looked up.
    OwnOr(&'static str),
    /// A superuser only: the built-in admin (root on the console) or a master key. For methods that
    /// move every right there is at once (`policy.*`), where no permission could bound them.
    Superuser,
}

impl Needs {
    /// How the docs and `call --list` say it.
    pub fn describe(self) -> String {
        match self {
            Needs::Open => "open".into(),
            Needs::Account => "any account".into(),
            Needs::Permission(p) => p.into(),
            Needs::OwnOr(p) => format!("own, or {p}"),
            Needs::Superuser => "superuser".into(),
        }
    }
}

/// A route's entry point: the shared context, the resolved caller and the raw params; decodes them
/// into the handler's params type and encodes its result.
pub type Run = fn(&Ctx, &Caller, Option<&RawValue>) -> Result<Box<RawValue>, ApiError>;

/// A JSON Schema (draft 2020-12, self-contained) of a route's params or result type.
pub type SchemaOf = fn() -> Schema;

/// One request method. Its params and result types are the handler's own (`fn(&Ctx, &Caller, P) ->
/// Result<R, ApiError>`): the table never names them, so they cannot disagree with the code.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub name: &'static str,
    pub needs: Needs,
    /// Changes plant state: refused with `supervisor_locked` for callers outside the lock's `l`.
    pub write_class: bool,
    /// Hashes or verifies a password: runs on the blocking pool, behind the transport's password gate.
    pub password: bool,
    /// The error codes this method's handler may answer with, beyond those every method of its kind
    /// may meet (see [`Route::errors`]).
    pub own_errors: &'static [ErrorCode],
    pub run: Run,
    pub params: SchemaOf,
    pub result: SchemaOf,
    /// One line for `call --list` and the docs.
    pub summary: &'static str,
}

impl Route {
    /// Every error code the method may answer with: the ones the door and the transports may give
    /// (bad input, rate limits, missing rights, the lock), then the handler's own.
    pub fn errors(&self) -> Vec<ErrorCode> {
        use ErrorCode::*;
        let mut out = vec![BadRequest, RateLimited, Internal];
        match self.needs {
            Needs::Open => {}
            Needs::Account => out.push(Unauthenticated),
            Needs::Permission(_) | Needs::OwnOr(_) | Needs::Superuser => out.extend([Unauthenticated, Forbidden]),
        }
        if self.write_class {
            out.extend([SupervisorLocked, ReadOnlySeat]);
        }
        for e in self.own_errors {
            if !out.contains(e) {
                out.push(*e);
            }
        }
        out
    }
}

/// The typed side of a route, used by [`route!`]: the handler's params and result types are
/// inferred from its signature.
pub mod typed {
    use super::{ApiError, Caller, Ctx, RawValue};
    use crate::contract::{Method, schema};
    use schemars::Schema;

    pub type Handler<P> = fn(&Ctx, &Caller, P) -> Result<<P as Method>::Result, ApiError>;

    pub const fn name_of<P: Method>(_: Handler<P>) -> &'static str {
        P::NAME
    }

    /// Decodes the params, runs the handler, and serializes its result straight to JSON text (no
    /// tree of values in between: a batch of answers costs its bytes, not a map per field).
    pub fn run<P: Method>(
        handler: Handler<P>,
        ctx: &Ctx,
        caller: &Caller,
        params: Option<&RawValue>,
    ) -> Result<Box<RawValue>, ApiError> {
        let p = super::super::params(P::NAME, params)?;
        serde_json::value::to_raw_value(&handler(ctx, caller, p)?).map_err(ApiError::internal)
    }

    pub fn params<P: Method>(_: Handler<P>) -> Schema {
        schema::<P>()
    }

    pub fn result<P: Method>(_: Handler<P>) -> Schema {
        schema::<P::Result>()
    }
}

/// `route!(needs, handler, "summary" [, [own error codes]])`: one [`Route`], its name, params and
/// result types taken from the handler's params type ([`crate::contract::Method`]).
macro_rules! route {
    ($needs:expr, $handler:path, $summary:literal $(, [$($e:ident),* $(,)?])?) => {
        Route {
            name: typed::name_of($handler),
            needs: $needs,
            write_class: false,
            password: false,
            own_errors: &[$($(ErrorCode::$e),*)?],
            run: |ctx, caller, params| typed::run($handler, ctx, caller, params),
            params: || typed::params($handler),
            result: || typed::result($handler),
            summary: $summary,
        }
    };
}

const fn hashing(r: Route) -> Route {
    Route { password: true, ..r }
}

const fn writes(r: Route) -> Route {
    Route { write_class: true, ..r }
}

use Needs::{Account, Open, OwnOr, Permission, Superuser};

/// Every method, in the order the docs list them.
pub const ROUTES: &[Route] = &[
    route!(Open, status::status, "version, seats, supervisor lock, MQTT link (layout for managers)"),
    route!(Permission("audit.view"), audit::list, "the audit trail, newest first"),
    hashing(route!(
        Open,
        user::login,
        "a login token for a user name and password",
        [InvalidCredentials, AccountLocked, AccountDisabled, Unauthenticated]
    )),
    route!(Open, user::logout, "revoke the login token the request carries"),
    hashing(route!(Permission("users.manage"), user::create, "create an account", [NotFound, Conflict])),
    hashing(route!(
        Open,
        user::register,
        "self-registration, when the gateway allows it",
        [RegistrationDisabled, Conflict]
    )),
    route!(Permission("users.manage"), user::import, "create accounts from CSV, all or nothing"),
    route!(Permission("users.view"), user::list, "every account with its roles"),
    route!(OwnOr("users.view"), user::show, "one account with its roles and grants", [NotFound]),
    route!(Permission("users.manage"), user::update, "display name, expiry, roles", [NotFound, ProtectedAccount]),
    route!(Permission("users.manage"), user::disable, "suspend an account at once", [NotFound, ProtectedAccount]),
    route!(Permission("users.manage"), user::enable, "re-enable a suspended account", [NotFound, ProtectedAccount]),
    route!(
        Permission("users.manage"),
        user::delete,
        "delete an account and what it owns",
        [NotFound, ProtectedAccount, SelfDelete]
    ),
    hashing(route!(
        OwnOr("users.manage"),
        user::set_password,
        "set a password",
        [NotFound, InvalidCredentials, ProtectedAccount]
    )),
    route!(
        Permission("users.manage"),
        role::copy_roles,
        "give one account another's roles",
        [NotFound, ProtectedAccount]
    ),
    route!(Permission("users.manage"), user::unlock, "end a failed-login lock or a source slow-down", [NotFound]),
    route!(Permission("users.manage"), key::create, "create an API key (secret shown once)", [NotFound, Conflict]),
    route!(Permission("users.view"), key::list, "API keys, never their secrets"),
    route!(Permission("users.manage"), key::revoke, "revoke an API key and end its sessions", [NotFound]),
    route!(Permission("roles.manage"), role::create, "create a role", [Conflict]),
    route!(Permission("roles.manage"), role::import, "create roles from CSV, all or nothing"),
    route!(Permission("users.view"), role::list, "every role with its counts"),
    route!(Permission("users.view"), role::show, "one role with its grants, users and keys", [NotFound]),
    route!(Permission("roles.manage"), role::delete, "delete a role", [NotFound, Conflict]),
    route!(
        Permission("roles.manage"),
        role::grant,
        "grant a permission to a role or user",
        [NotFound, Conflict, ProtectedAccount]
    ),
    route!(
        Permission("roles.manage"),
        role::revoke,
        "revoke grants from a role or user",
        [NotFound, Conflict, ProtectedAccount]
    ),
    route!(Permission("resources.manage"), resource::add, "add a resource to the inventory", [Conflict]),
    route!(Account, resource::list, "the resource inventory"),
    route!(Permission("resources.manage"), resource::delete, "delete a resource", [NotFound]),
    route!(Permission("resources.manage"), resource::import, "import resources from CSV"),
    route!(Permission("resources.manage"), resource::group_create, "create a resource group", [Conflict]),
    route!(Account, resource::group_list, "resource groups and their member counts"),
    route!(Permission("resources.manage"), resource::group_add_members, "add resources to a group", [NotFound]),
    route!(Permission("resources.manage"), resource::group_import, "add a CSV list to a group", [NotFound]),
    route!(Permission("resources.manage"), resource::group_remove, "remove resources from a group", [NotFound]),
    route!(Permission("resources.manage"), resource::group_delete, "delete a resource group", [NotFound]),
    route!(
        OwnOr("users.view"),
        authz::check,
        "may a subject do this to that resource?",
        [NotFound, SupervisorLocked, ReadOnlySeat]
    ),
    route!(OwnOr("users.view"), authz::check_many, "many authz.check questions in one round trip (up to 1000)"),
    route!(
        OwnOr("users.view"),
        authz::allowed,
        "which of these resources may a subject use (up to 1000)?",
        [NotFound, SupervisorLocked, ReadOnlySeat]
    ),
    route!(
        OwnOr("users.view"),
        authz::explain,
        "every grant that matched, and which decided",
        [NotFound, ReadOnlySeat]
    ),
    route!(Permission("users.view"), authz::who_can, "every live account that passes"),
    writes(route!(
        Account,
        objects::create,
        "create an object on a resource (its kind with write access there)",
        [Forbidden]
    )),
    route!(Account, objects::show, "one object the caller may read", [NotFound]),
    route!(Account, objects::list, "the objects the caller may read, a page at a time", [NotFound]),
    writes(route!(
        Account,
        objects::delete,
        "delete an object (its owner, or its kind with write access)",
        [NotFound, Forbidden]
    )),
    route!(Permission("users.view"), objects::who_can, "who may read an object, and why", [NotFound]),
    route!(
        Permission("users.manage"),
        objects::grant,
        "let a user read one or many objects, all or nothing",
        [NotFound]
    ),
    route!(
        Permission("users.manage"),
        objects::revoke,
        "take explicit reading of one or many objects away, all or nothing",
        [NotFound]
    ),
    route!(Account, settings::get, "runtime settings", [NotFound]),
    writes(route!(Permission("settings.manage"), settings::set, "change a runtime setting")),
    route!(
        Open,
        session::open,
        "open an HMI session and take a licence seat",
        [Unauthenticated, SessionTerminated, LicenseLimitReached]
    ),
    route!(
        Open,
        session::heartbeat,
        "keep the caller's session alive",
        [Unauthenticated, SessionTerminated, SessionExpired, AccountDisabled]
    ),
    route!(
        OwnOr("sessions.view"),
        session::show,
        "the caller's own session and its seat's pool (any session with sessions.view)",
        [NotFound]
    ),
    route!(
        Open,
        session::close,
        "end the caller's session and free its seat",
        [Unauthenticated, SessionTerminated, SessionExpired, AccountDisabled]
    ),
    route!(Permission("sessions.view"), session::list, "live (and recently ended) sessions"),
    route!(Permission("sessions.terminate"), session::terminate, "end another client's session", [NotFound, Conflict]),
    route!(
        Permission("supervisor.lock"),
        supervisor::lock,
        "set or replace the supervisor lock",
        [NotFound, SupervisorLocked]
    ),
    route!(Permission("supervisor.lock"), supervisor::unlock, "clear the supervisor lock", [SupervisorLocked]),
    route!(Permission("supervisor.broadcast"), supervisor::message, "broadcast to every HMI"),
    hashing(route!(
        Permission("settings.manage"),
        directory::test,
        "the plant directory's view of a person: bind, search, DN, groups, mapped roles, timings"
    )),
    hashing(route!(
        Permission("users.manage"),
        directory::sync_now,
        "bring directory people up to date now (roles; gone or disabled: disabled, sessions ended)",
        [Unavailable]
    )),
    route!(Superuser, policyfile::export, "the whole policy as one document, without secrets (policy as code)"),
    route!(Superuser, policyfile::plan, "what applying a policy document would change, changing nothing"),
    writes(route!(
        Superuser,
        policyfile::apply,
        "make the policy a document's, in one transaction, idempotently (prune: remove what it lacks)"
    )),
];

/// The route of a method name.
pub fn find(name: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.name == name)
}

/// Runs one method for a resolved caller: the table's checks first, then the handler.
pub fn dispatch(
    ctx: &Ctx,
    caller: &Caller,
    method: &str,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ApiError> {
    let Some(route) = find(method) else {
        return Err(ApiError::bad_request(format!(
            "unknown method {}: see `gatewarden call --list`",
            crate::logs::cut(method)
        )));
    };
    match route.needs {
        Needs::Open | Needs::OwnOr(_) => {}
        Needs::Account => {
            if caller.principal == Principal::Anonymous {
                return Err(ApiError::unauthenticated(format!(
                    "{} needs credentials: pass --token, or authenticate the request",
                    route.name
                )));
            }
        }
        Needs::Permission(perm) => ctx.authorize_for(caller, perm, route.name)?,
        Needs::Superuser => ctx.authorize_superuser(caller, route.name)?,
    }
    if route.write_class {
        caller.may_write()?;
        supervisor::check_write(ctx, caller)?;
    }
    (route.run)(ctx, caller, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_is_declared_once_with_a_known_permission() {
        let mut names: Vec<&str> = ROUTES.iter().map(|r| r.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a method declared twice");
        for r in ROUTES {
            if let Needs::Permission(p) | Needs::OwnOr(p) = r.needs {
                assert!(BUILTIN_PERMISSIONS.contains(&p), "{}: {p} is not a built-in permission", r.name);
            }
            assert!(!r.summary.is_empty(), "{}", r.name);
        }
    }
}
