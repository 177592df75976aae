//! Request handling, shared by the control socket and the MQTT bridge: the route table
//! ([`routes::ROUTES`]) declares every method and dispatches it; one file per method family holds the
//! handlers. Handlers are synchronous; they take the shared `Ctx`, the resolved `Caller` and the raw
//! params, and return the method's `result` or an `ApiError`.
//!
//! Must never happen: a method that changes state without its permission asked first (by dispatch,
//! from the route table, and by the handler for anything beyond it: roles, the ceiling), or a
//! mutation applied outside one SQLite transaction.

pub mod audit;
pub mod auth;
pub mod authz;
pub mod directory;
pub mod key;
pub mod objects;
pub mod policyfile;
pub mod reference;
pub mod resource;
pub mod role;
pub mod routes;
pub mod run;
pub mod session;
pub mod settings;
pub mod status;
pub mod supervisor;
pub mod user;

pub use auth::{ADMIN_ID, ADMIN_NAME, Caller, Origin, Principal};

use crate::authz as engine;
use crate::config::Config;
use crate::protocol::{ApiError, Request};
use crate::store::Store;
use crate::store::policy;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

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

/// What a [`Ctx::write_lock`] transaction makes of the supervisor lock.
pub enum LockChange {
    Keep,
    Set(supervisor::Lock),
    Clear,
}

/// Everything a handler may touch.
pub struct Ctx {
    config: RwLock<Arc<Config>>,
    store: Mutex<Store>,
    /// The compiled policy. Replaced whole, under the store lock, right after the transaction that
    /// changed what it was built from (made by [`Ctx::next_index`] from what that transaction changed).
    index: RwLock<Arc<engine::Index>>,
    /// The live client sessions and their seats. Lock order: the store first, then this.
    sessions: Mutex<crate::sessions::Table>,
    /// The supervisor lock. Changed only under the store lock, right after the commit that stored it.
    lock: RwLock<Option<Arc<supervisor::Lock>>>,
    pub paths: Paths,
    pub started: Instant,
    pub mqtt: Mutex<LinkState>,
    /// The plant directory as last seen (reachable, last sync, last error), for `status`.
    pub directory: Mutex<directory::State>,
    /// Wakes the MQTT bridge's outbox publisher; see `outbox_written`.
    pub outbox_wake: tokio::sync::Notify,
    /// Failed-login counters, locks and attempts in flight (saved per failure in `login_failures`).
    /// A leaf lock: never take the store while holding it.
    gate: Mutex<crate::accounts::lockout::Gate>,
    /// Refusals and failed logins waiting for `flush`. A leaf lock, like `gate`.
    refusals: Mutex<crate::store::audit::Buffer>,
    /// The live login tokens and API keys: changed in the write step that changes their rows, its
    /// journal opened and closed by [`Ctx::write`] and `write_with_sessions`. A leaf lock.
    credentials: crate::accounts::Credentials,
    /// The index of each policy epoch live objects were created in (see `objects::history`).
    /// Changed under the store lock only. A leaf lock.
    history: RwLock<crate::objects::history::History>,
    /// Plant mode (`[plant]`), once started; never set without it.
    plant: std::sync::OnceLock<Arc<crate::plant::Plant>>,
}

/// Called once a whole policy loaded to build an index from is dropped, and after a bulk request.
/// Such a policy is several times the index's size (100k accounts: ~20 MiB of small strings and
/// lists) and freed at once; glibc keeps such freed small blocks in the heap, so they are handed back
/// to the system here, or a panel PC's RSS would carry them for the daemon's lifetime.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it is safe to call at any time.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

impl Ctx {
    pub fn new(config: Config, mut store: Store, paths: Paths) -> Result<Ctx, ApiError> {
        // Note every policy change from here on, then build from what the database holds.
        policy::watch(&store.conn)?;
        let loaded = policy::load(&store.conn)?;
        let index = engine::Index::build(&loaded);
        policy::take_changes(&store.conn)?;
        let history = objects::restore(&mut store, &loaded)?;
        drop(loaded);
        release_freed_memory();
        let credentials = crate::accounts::Credentials::load(&store.conn, crate::store::now_ms())?;
        let mqtt = LinkState {
            state: if config.mqtt.enabled { "not connected" } else { "disabled" }.into(),
            last_error: None,
        };
        Ok(Ctx {
            config: RwLock::new(Arc::new(config)),
            store: Mutex::new(store),
            index: RwLock::new(Arc::new(index)),
            sessions: Mutex::new(crate::sessions::Table::default()),
            lock: RwLock::new(None),
            paths,
            started: Instant::now(),
            mqtt: Mutex::new(mqtt),
            directory: Mutex::new(Default::default()),
            outbox_wake: tokio::sync::Notify::new(),
            gate: Mutex::new(Default::default()),
            refusals: Mutex::new(Default::default()),
            credentials,
            history: RwLock::new(history),
            plant: std::sync::OnceLock::new(),
        })
    }

    /// Plant mode's handle, when `[plant]` is configured and it started.
    pub fn plant(&self) -> Option<&Arc<crate::plant::Plant>> {
        self.plant.get()
    }

    /// Hands plant mode's handle to the context (once, at start).
    pub fn set_plant(&self, plant: Arc<crate::plant::Plant>) {
        let _ = self.plant.set(plant);
    }

    /// The live login tokens and API keys (see [`crate::accounts::credentials`]).
    pub fn credentials(&self) -> &crate::accounts::Credentials {
        &self.credentials
    }

    /// The failed-login counters.
    pub fn gate(&self) -> MutexGuard<'_, crate::accounts::lockout::Gate> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a refusal or failure in the audit trail at the next [`Ctx::flush`], counted with its
    /// like (same actor, source, action, target, outcome and `reason`).
    pub fn audit_later(
        &self,
        actor: &crate::store::audit::Actor,
        action: &str,
        target: Option<&str>,
        outcome: crate::store::audit::Outcome,
        reason: &str,
        detail: Option<Value>,
    ) {
        self.refusals.lock().unwrap_or_else(|p| p.into_inner()).add(actor, action, target, outcome, reason, detail);
    }

    /// Writes the buffered refusals and failed logins in one transaction (every few seconds from the
    /// daemon's loop, before `audit.list` answers, and at shutdown).
    pub fn flush(&self) -> Result<(), ApiError> {
        let mut store = self.store();
        let mut refusals = std::mem::take(&mut *self.refusals.lock().unwrap_or_else(|p| p.into_inner()));
        if refusals.is_empty() {
            return Ok(());
        }
        store.write(|tx| refusals.flush(tx)).map(|_| ()).map_err(|e| {
            tracing::warn!("writing buffered refusals to the audit trail failed: {e}");
            ApiError::from(e)
        })
    }

    /// Runs one transaction that changes neither the policy nor the sessions (an audit row, a
    /// setting, a token), and wakes the outbox publisher after it commits: with
    /// [`Ctx::write_policy`] and [`Ctx::write_sessions`], the one way a change is committed, so its
    /// side effects (index swap, session table, outbox wake-up) are never left to the caller.
    pub fn write<T, E>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let mut store = self.store();
        self.credentials.begin();
        match store.write(f) {
            Ok(out) => {
                self.credentials.commit();
                drop(store);
                self.outbox_written();
                Ok(out)
            }
            Err(e) => {
                self.credentials.rollback();
                Err(e)
            }
        }
    }

    /// Call after committing a transaction that wrote outbox rows: the bridge publishes them at once
    /// instead of at its next periodic look. Cheap, never blocks, harmless without a bridge.
    pub fn outbox_written(&self) {
        self.outbox_wake.notify_one();
    }

    /// The current compiled policy.
    pub fn index(&self) -> Arc<engine::Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs a transaction that changes roles, grants, resources, groups or accounts, and swaps in the
    /// index built from what it commits, before anyone else can write: a check sees the old policy
    /// or the new one, never a mix, and never one the database does not hold.
    ///
    /// The session table is locked only to end the sessions the change killed, and only held through
    /// the commit if it did end some: heartbeats and session-token requests wait for neither the
    /// change's SQL, nor the new index, nor the commit's fsync.
    pub fn write_policy<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut store = self.store();
        let tx = store.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // The credential table follows the transaction (a key created, tokens revoked): undone with
        // it on any error below. The transaction itself is dropped, so rolled back, notes and all.
        self.credentials.begin();
        let undo = |e: ApiError| {
            self.credentials.rollback();
            Err(e)
        };
        let out = match f(&tx) {
            Ok(out) => out,
            Err(e) => return undo(e),
        };
        let index = match self.next_index(&tx) {
            Ok(index) => index,
            Err(e) => return undo(e),
        };
        let mut table = self.sessions();
        table.begin();
        let ended = match crate::sessions::end_dead(&tx, &mut table, &self.config(), &index) {
            Ok(n) => n,
            Err(e) => {
                table.rollback();
                return undo(e);
            }
        };
        if ended == 0 {
            // Nothing in memory to undo if the commit fails.
            table.commit();
            drop(table);
            if let Err(e) = tx.commit() {
                return undo(e.into());
            }
        } else {
            if let Err(e) = tx.commit() {
                table.rollback();
                return undo(e.into());
            }
            table.commit();
            drop(table);
        }
        self.credentials.commit();
        self.outbox_written();
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(index);
        drop(store);
        Ok(out)
    }

    /// Like [`Ctx::write_policy`], for a policy change that also ends sessions (disabling or deleting
    /// an account, revoking a key).
    pub fn write_policy_sessions<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>, &mut crate::sessions::Table) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.write_with_sessions(true, f)
    }

    /// Runs a transaction that changes sessions. The session table is changed in the same step: if
    /// the transaction does not commit, every insert and remove made on the table is undone, so seats
    /// in memory always match the database.
    pub fn write_sessions<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>, &mut crate::sessions::Table) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.write_with_sessions(false, f)
    }

    fn write_with_sessions<T>(
        &self,
        rebuild_index: bool,
        f: impl FnOnce(&rusqlite::Transaction<'_>, &mut crate::sessions::Table) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut store = self.store();
        let tx = store.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut table = self.sessions();
        table.begin();
        self.credentials.begin();
        let applied = (|| {
            let out = f(&tx, &mut table)?;
            let index = if rebuild_index { Some(self.next_index(&tx)?) } else { None };
            if let Some(index) = &index {
                // A change that killed a principal (account disabled, expired, deleted; key revoked)
                // ends its sessions in the same transaction, whichever method made it.
                crate::sessions::end_dead(&tx, &mut table, &self.config(), index)?;
            }
            tx.commit()?;
            Ok((out, index))
        })();
        match applied {
            Ok((out, index)) => {
                table.commit();
                self.credentials.commit();
                self.outbox_written();
                if let Some(index) = index {
                    *self.index.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(index);
                }
                // Plant mode: seats that ended free their plant keys at once (a notify, no wait).
                if let Some(plant) = self.plant() {
                    plant.seats_changed();
                }
                Ok(out)
            }
            Err(e) => {
                table.rollback();
                self.credentials.rollback();
                Err(e)
            }
        }
    }

    /// The index for what `tx` holds: the current one with the roles, accounts and groups changed
    /// since it was made (noted by `policy::watch`, whichever write made them) read back from `tx`, so a
    /// change costs what it changes; or built afresh when most of the policy changed (a bulk load).
    /// Made beside the published index (they share all they can), and swapped in by the caller.
    fn next_index(&self, tx: &rusqlite::Transaction<'_>) -> Result<engine::Index, ApiError> {
        let changed = policy::take_changes(tx)?;
        let current = self.index();
        // The epoch objects are stamped with, and the policy's history (objects::history), recorded
        // from the entities the index is made from.
        let record = |entities: &[_]| match entities.is_empty() {
            true => Ok(0),
            false => crate::store::objects::record_change(tx, entities),
        };
        if changed.len() > (current.accounts() / 8).max(1024) {
            let loaded = policy::load(tx)?;
            let index = engine::Index::build(&loaded);
            record(&policy::changed_entities_in(tx, loaded, &changed)?)?;
            release_freed_memory();
            return Ok(index);
        }
        let entities = policy::changed_entities(tx, &changed)?;
        record(&entities)?;
        let mut next = (*current).clone();
        policy::apply_entities(&entities, &mut next);
        Ok(next)
    }

    /// The supervisor lock, if one is set.
    pub fn lock(&self) -> Option<Arc<supervisor::Lock>> {
        self.lock.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs a transaction that sets, replaces or clears the supervisor lock. `f` decides from the lock
    /// in memory as it is under the store lock (no request can change it meanwhile) and says what
    /// the lock becomes; memory follows only after the commit, and the outbox publisher is woken.
    pub fn write_lock<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>, Option<Arc<supervisor::Lock>>) -> Result<(LockChange, T), ApiError>,
    ) -> Result<T, ApiError> {
        let mut store = self.store();
        let (change, out) = store.write(|tx| f(tx, self.lock()))?;
        let new = match change {
            LockChange::Keep => None,
            LockChange::Set(lock) => Some(Some(Arc::new(lock))),
            LockChange::Clear => Some(None),
        };
        if let Some(new) = new {
            *self.lock.write().unwrap_or_else(|p| p.into_inner()) = new;
        }
        drop(store);
        self.outbox_written();
        Ok(out)
    }

    /// The live sessions. Take the store first when you need both.
    pub fn sessions(&self) -> MutexGuard<'_, crate::sessions::Table> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Asks the policy whether `caller` holds the built-in permission `perm` (on the gateway as a
    /// whole: resource `*`). The one place every method's check goes through; a refusal is audited
    /// under the permission's name.
    pub fn authorize(&self, caller: &Caller, perm: &str) -> Result<(), ApiError> {
        self.authorize_for(caller, perm, perm)
    }

    /// [`Ctx::authorize`], auditing a refusal under `action` (the method's name, from dispatch).
    pub fn authorize_for(&self, caller: &Caller, perm: &str, action: &str) -> Result<(), ApiError> {
        if caller.is_superuser() {
            return Ok(());
        }
        let Some(subject) = caller.subject() else {
            return Err(ApiError::unauthenticated(format!(
                "this request needs credentials ({perm}): pass --token, or run as root on the console"
            )));
        };
        let decision = self.index().check(subject, perm, builtin_access(perm), GATEWAY, crate::store::now_ms());
        if decision.is_allowed() {
            return Ok(());
        }
        let err = ApiError::forbidden(format!("permission {perm} is required"));
        self.audit_denied(caller, action, &err);
        Err(err)
    }

    /// Refuses anyone but a superuser (the built-in admin, a master key); a refusal is audited under
    /// `action`.
    pub fn authorize_superuser(&self, caller: &Caller, action: &str) -> Result<(), ApiError> {
        if caller.is_superuser() {
            return Ok(());
        }
        if caller.subject().is_none() {
            return Err(ApiError::unauthenticated(format!(
                "{action} needs a superuser: pass --token, or run as root on the console"
            )));
        }
        let err = ApiError::forbidden(format!(
            "{action} needs a superuser: the built-in admin (root on the console) or a master key"
        ));
        self.audit_denied(caller, action, &err);
        Err(err)
    }

    /// "May this caller hand out that right?": the delegation ceiling of SPEC "Trust rules", for every
    /// grant given, revoked, copied or assigned (to a role, a user or an API key). A caller may move
    /// only what it holds itself (the permission, each access, on every resource the selector covers;
    /// see [`engine::Index::holds`]); a superuser may move anything. A refusal is audited.
    pub fn may_hand_out(&self, caller: &Caller, action: &str, grant: &engine::Grant) -> Result<(), ApiError> {
        let Some(subject) = caller.subject() else {
            return Err(ApiError::unauthenticated(format!("{action} needs credentials")));
        };
        if caller.is_superuser() || self.index().holds(subject, grant, crate::store::now_ms()) {
            return Ok(());
        }
        let err = ApiError::forbidden(format!(
            "you may hand out only what you hold yourself: you do not hold {} ({}) on {}",
            grant.permission,
            access_text(grant),
            grant.selector.as_text()
        ));
        self.audit_denied(caller, action, &err);
        Err(err)
    }

    /// The ceiling for acting on an account or key (`users.manage`): its rights must be within the
    /// caller's own, and a superuser (the built-in admin, a master key) is touched by superusers only.
    pub fn may_manage(
        &self,
        caller: &Caller,
        action: &str,
        target: engine::SubjectKey,
        shown: &str,
    ) -> Result<(), ApiError> {
        let Some(subject) = caller.subject() else {
            return Err(ApiError::unauthenticated(format!("{action} needs credentials")));
        };
        if caller.is_superuser() {
            return Ok(());
        }
        let err = match self.index().rights_within(target, subject, crate::store::now_ms()) {
            Ok(()) => return Ok(()),
            Err(None) => ApiError::forbidden(format!("{shown} is a superuser: only a superuser may do that")),
            Err(Some(g)) => ApiError::forbidden(format!(
                "{shown} holds {} ({}) on {}, which you do not: you may act only on accounts whose rights are within yours",
                g.permission,
                access_text(g),
                g.selector.as_text()
            )),
        };
        self.audit_denied(caller, action, &err);
        Err(err)
    }

    /// The ceiling for giving or taking away roles: the caller must hold every grant of each role.
    pub fn may_assign_roles(
        &self,
        caller: &Caller,
        action: &str,
        conn: &rusqlite::Connection,
        role_ids: &[i64],
    ) -> Result<(), ApiError> {
        if caller.is_superuser() {
            return Ok(());
        }
        for &id in role_ids {
            for grant in policy::role_grants(conn, id)? {
                self.may_hand_out(caller, action, &grant)?;
            }
        }
        Ok(())
    }

    /// Whether `caller` holds the built-in permission `perm`, without auditing a refusal: for
    /// deciding what to show, never for deciding what to do.
    pub fn permits(&self, caller: &Caller, perm: &str) -> bool {
        caller.is_superuser()
            || caller.subject().is_some_and(|s| {
                self.index().check(s, perm, builtin_access(perm), GATEWAY, crate::store::now_ms()).is_allowed()
            })
    }

    /// Records a refused privileged action (counted, written at the next flush).
    pub fn audit_denied(&self, caller: &Caller, action: &str, err: &ApiError) {
        let detail = serde_json::json!({"code": err.code, "message": err.message});
        self.audit_later(
            &caller.actor(),
            action,
            None,
            crate::store::audit::Outcome::Denied,
            err.code.as_str(),
            Some(detail),
        );
    }
}

fn access_text(g: &engine::Grant) -> &'static str {
    match (g.read, g.write) {
        (true, true) => "read and write",
        (true, false) => "read",
        _ => "write",
    }
}

/// The resource built-in permissions are checked on: the gateway as a whole. Only a grant on `*`
/// (all resources) covers it.
pub const GATEWAY: &str = "*";

/// Built-in `*.view` permissions are reads; everything else (manage, terminate, lock) is a write.
pub fn builtin_access(perm: &str) -> engine::Access {
    if perm.ends_with(".view") { engine::Access::Read } else { engine::Access::Write }
}

/// Whether a request came over the network (MQTT) rather than the local console socket.
pub fn is_network(origin: &Origin) -> bool {
    matches!(origin, Origin::Mqtt { .. })
}

/// Whether a request may cost real CPU time (a password hashed or verified): the route says so, or
/// the request authenticates with a password.
pub fn is_slow(req: &Request) -> bool {
    auth::needs_password_check(req) || routes::find(&req.method).is_some_and(|r| r.password)
}

/// Handles one request end to end.
pub fn handle(ctx: &Ctx, req: &Request, origin: &Origin) -> Result<Box<serde_json::value::RawValue>, ApiError> {
    let caller = auth::resolve_caller(ctx, req, origin)?;
    routes::dispatch(ctx, &caller, &req.method, req.params.as_deref())
}

pub use routes::dispatch;

/// Decodes a method's params from the request's text; `null` or absent params mean "all defaults".
pub fn params<T: DeserializeOwned>(method: &str, params: Option<&RawValue>) -> Result<T, ApiError> {
    let decoded = match params {
        None => T::deserialize(&Value::Object(Default::default())),
        Some(text) => serde_json::from_str(text.get()),
    };
    decoded.map_err(|e| ApiError::bad_request(format!("invalid params for {method}: {e}")))
}

/// Serializes a handler's result.
pub fn to_value<T: serde::Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(ApiError::internal)
}
