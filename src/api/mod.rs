//! Request dispatch: one match from method name to handler, shared by the control socket and the
//! MQTT bridge. Handlers are synchronous; they take the shared `Ctx`, the resolved `Caller` and the
//! raw params, and return the method's `result` or an `ApiError`.
//!
//! Must never happen: a method that changes state without asking `Ctx::authorize` first, or a
//! mutation applied outside one SQLite transaction.

pub mod audit;
pub mod status;

use crate::config::Config;
use crate::protocol::{ApiError, Request};
use crate::store::Store;
use crate::store::audit::Actor;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

/// Where a request came from. Decides how an unauthenticated request is treated.
#[derive(Debug, Clone)]
pub enum Origin {
    /// The control socket, with the peer's credentials from SO_PEERCRED.
    Socket { uid: u32, pid: i32 },
    /// The MQTT bridge, with the client's id if it gave one.
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
    User { id: i64, name: String },
}

/// The built-in administrator. Root on the control socket acts as this account.
pub const ADMIN_ID: i64 = 1;
pub const ADMIN_NAME: &str = "admin";

#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub origin: Origin,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        let name = match &self.principal {
            Principal::Anonymous => "anonymous".to_string(),
            Principal::User { name, .. } => format!("user:{name}"),
        };
        Actor { name, source: self.origin.describe() }
    }

    /// The built-in admin passes every check.
    pub fn is_superuser(&self) -> bool {
        matches!(&self.principal, Principal::User { id, .. } if *id == ADMIN_ID)
    }
}

/// Runtime state of the MQTT link, as `status` reports it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LinkState {
    pub state: String,
    pub last_error: Option<String>,
}

pub struct Paths {
    pub state_dir: PathBuf,
    pub db: PathBuf,
    pub socket: PathBuf,
    pub config: Option<PathBuf>,
}

/// Everything a handler may touch.
pub struct Ctx {
    config: RwLock<Arc<Config>>,
    store: Mutex<Store>,
    pub paths: Paths,
    pub started: Instant,
    pub mqtt: Mutex<LinkState>,
}

impl Ctx {
    pub fn new(config: Config, store: Store, paths: Paths) -> Ctx {
        let mqtt = LinkState {
            state: if config.mqtt.enabled { "not connected" } else { "disabled" }.into(),
            last_error: None,
        };
        Ctx {
            config: RwLock::new(Arc::new(config)),
            store: Mutex::new(store),
            paths,
            started: Instant::now(),
            mqtt: Mutex::new(mqtt),
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_config(&self, config: Config) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    /// The database. A handler that panicked while holding it cannot have left a transaction open
    /// (rusqlite rolls back on drop), so a poisoned lock is safe to take over.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks whether `caller` holds `perm`. The one place every method's check goes through.
    pub fn authorize(&self, caller: &Caller, perm: &str) -> Result<(), ApiError> {
        if caller.is_superuser() {
            return Ok(());
        }
        match caller.principal {
            Principal::Anonymous => Err(ApiError::unauthenticated(format!(
                "this request needs credentials ({perm}): pass --token, or run as root on the console"
            ))),
            _ => Err(ApiError::forbidden(format!("permission {perm} is required"))),
        }
    }
}

/// Resolves who is calling. Credentials in the request win; without them, root on the control socket
/// is the built-in admin.
pub fn resolve_caller(_ctx: &Ctx, req: &Request, origin: &Origin) -> Result<Caller, ApiError> {
    let principal = match (&req.auth, origin) {
        (Some(_), _) => return Err(ApiError::unauthenticated("credentials are not accepted yet")),
        (None, Origin::Socket { uid: 0, .. }) => Principal::User { id: ADMIN_ID, name: ADMIN_NAME.into() },
        (None, _) => Principal::Anonymous,
    };
    Ok(Caller { principal, origin: origin.clone() })
}

/// Whether a request may cost real CPU time (password hashing) and so must not run on an async
/// worker thread.
pub fn is_slow(_req: &Request) -> bool {
    false
}

/// Handles one request end to end.
pub fn handle(ctx: &Ctx, req: &Request, origin: &Origin) -> Result<Value, ApiError> {
    let caller = resolve_caller(ctx, req, origin)?;
    dispatch(ctx, &caller, &req.method, &req.params)
}

pub fn dispatch(ctx: &Ctx, caller: &Caller, method: &str, params: &Value) -> Result<Value, ApiError> {
    match method {
        "status" => status::status(ctx, caller, params),
        "audit.list" => audit::list(ctx, caller, params),
        other => Err(ApiError::bad_request(format!("unknown method {other:?}"))),
    }
}

/// Decodes a method's params; `null` or absent params mean "all defaults".
pub fn params<T: DeserializeOwned>(method: &str, params: &Value) -> Result<T, ApiError> {
    let v = if params.is_null() { Value::Object(Default::default()) } else { params.clone() };
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("invalid params for {method}: {e}")))
}

/// Serializes a handler's result.
pub fn to_value<T: serde::Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(ApiError::internal)
}
