//! The daemon's wiring: state directory, database, control socket, systemd notification, signals.
//!
//! Order matters to systemd: READY=1 is sent only after the database is open and migrated and the
//! control socket accepts connections. The watchdog is pinged from a `biased` arm of the main loop,
//! so a wedged loop stops pinging and systemd restarts us.

pub mod logging;
pub mod server;
pub mod upkeep;

use crate::api::{Ctx, Paths};
use crate::config::{Config, ConfigError};
use crate::store::{Store, StoreError};
use sd_notify::NotifyState;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// How often buffered refusals and login counters are written.
const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// What `gatewarden serve` was told on its command line.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub config_path: Option<PathBuf>,
    pub admin_password_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("state directory {path}: {source}")]
    StateDir { path: String, source: std::io::Error },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Bind(#[from] server::BindError),
    #[error("{0}")]
    Setup(String),
}

/// Where state and the socket live: config first, then systemd's directories, then `./gatewarden-state`.
pub fn resolve_paths(config: &Config, config_path: Option<PathBuf>) -> Paths {
    let env_dir = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            // systemd may pass several colon-separated directories; the first is ours.
            .map(|v| PathBuf::from(v.to_string_lossy().split(':').next().unwrap_or_default()))
    };
    let state_dir = config
        .daemon
        .state_dir
        .clone()
        .or_else(|| env_dir("STATE_DIRECTORY"))
        .unwrap_or_else(|| PathBuf::from("gatewarden-state"));
    let socket =
        config.daemon.socket.clone().unwrap_or_else(|| {
            env_dir("RUNTIME_DIRECTORY").unwrap_or_else(|| state_dir.clone()).join("gatewarden.sock")
        });
    Paths { db: state_dir.join("gatewarden.db"), state_dir, socket, config: config_path }
}

/// Loads the config named on the command line, or the embedded defaults.
pub fn load_config(path: Option<&std::path::Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None => Ok(Config::default()),
    }
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("sd_notify failed: {e}");
    }
}

/// Opens everything, then serves until SIGTERM or SIGINT.
pub async fn run(config: Config, opts: ServeOptions, log: logging::Handle) -> Result<(), DaemonError> {
    // Before anything exists that a client could see: a SIGTERM that arrives while we start (the socket
    // is already there, READY not yet sent) must mean a clean stop, not the default action.
    let install = |kind: SignalKind, name: &str| signal(kind).map_err(|e| DaemonError::Setup(format!("{name}: {e}")));
    let mut sigterm = install(SignalKind::terminate(), "SIGTERM")?;
    let mut sigint = install(SignalKind::interrupt(), "SIGINT")?;
    let mut sighup = install(SignalKind::hangup(), "SIGHUP")?;
    let (ctx, listener, _state_lock) = open(config, &opts)?;
    // Plant mode: its own thread and runtime; it connects in the background (the gateway serves on
    // plant.offline_seats until it has), and nothing connects to NATS without [plant].
    if ctx.config().plant.enabled() {
        let plant = crate::plant::start(ctx.clone()).map_err(DaemonError::Setup)?;
        ctx.set_plant(plant);
    }
    let socket_path = ctx.paths.socket.clone();
    // One argon2 buffer per password check the gates let run at once (mqtt settings need a restart).
    let mqtt = ctx.config().mqtt.clone();
    let mqtt_checks = if mqtt.enabled { mqtt.rpc_password_checks } else { 0 };
    crate::accounts::password::set_memory_slots(server::SOCKET_PASSWORD_CHECKS + mqtt_checks);
    let server = tokio::spawn(server::serve(listener, ctx.clone()));
    // The MQTT bridge only mirrors: it retries in the background and nothing here waits for it.
    let bridge = crate::mqtt::spawn(ctx.clone());
    // The plant directory's sync: its own task, so a slow directory never holds the main loop.
    tokio::spawn(directory_sync(ctx.clone()));

    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        database = %ctx.paths.db.display(),
        socket = %ctx.paths.socket.display(),
        "gatewarden ready"
    );
    notify(&[NotifyState::Ready, NotifyState::Status(&status_line(&ctx))]);
    warm_dummy_hash(&ctx);

    let mut t = Timers::new(&ctx);
    let mut last_status = status_line(&ctx);
    loop {
        tokio::select! {
            biased;
            _ = t.watchdog.tick(), if t.watchdog_period.is_some() => notify(&[NotifyState::Watchdog]),
            _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = sighup.recv() => {
                reload(&ctx, &log);
                warm_dummy_hash(&ctx);
                let every = ctx.config().license.persist_interval.0;
                if every != t.persist_every {
                    t.persist_every = every;
                    t.persist = first_after(every);
                }
            }
            _ = t.expiry.tick() => {
                logging::flush_suppressed();
                if let Err(e) = upkeep::sweep_sessions(&ctx) {
                    tracing::warn!("session expiry failed: {e}");
                }
                if let Err(e) = upkeep::expire_lock(&ctx) {
                    tracing::warn!("supervisor lock expiry failed: {e}");
                }
                // STATUS= follows seats and the lock within a second, sent only when it changed.
                let line = status_line(&ctx);
                if line != last_status {
                    notify(&[NotifyState::Status(&line)]);
                    last_status = line;
                }
            }
            _ = t.flush.tick() => { let _ = ctx.flush(); }
            _ = t.persist.tick() => if let Err(e) = upkeep::persist_sessions(&ctx) {
                tracing::warn!("writing session heartbeats failed: {e}");
            },
            _ = t.housekeeping.tick() => {
                housekeep(&ctx);
                notify(&[NotifyState::Status(&status_line(&ctx))]);
            }
        }
    }

    stop(&ctx, server, bridge, &socket_path).await;
    Ok(())
}

/// Syncs directory people at start and every `directory.sync_interval` (read again each round, so a
/// SIGHUP that adds or changes `[directory]` applies), on the blocking pool.
async fn directory_sync(ctx: Arc<Ctx>) {
    loop {
        let config = ctx.config();
        if config.directory.enabled() {
            let c = ctx.clone();
            match tokio::task::spawn_blocking(move || crate::api::directory::sync(&c, |_, _| {})).await {
                Ok(Ok(r)) if r.disabled > 0 || r.updated > 0 => {
                    tracing::info!(people = r.people, updated = r.updated, disabled = r.disabled, "directory sync")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("directory sync failed: {e}"),
                Err(e) => tracing::warn!("directory sync stopped: {e}"),
            }
        }
        tokio::time::sleep(config.directory.sync_interval.0).await;
    }
}

/// Opens the state: the directory and its lock (held until the returned guard drops), the
/// database, the admin account, the socket, and the sessions and lock as they were.
fn open(
    config: Config,
    opts: &ServeOptions,
) -> Result<(Arc<Ctx>, tokio::net::UnixListener, nix::fcntl::Flock<std::fs::File>), DaemonError> {
    let paths = resolve_paths(&config, opts.config_path.clone());
    private_files();
    create_state_dir(&paths.state_dir)?;
    let state_lock = lock_state_dir(&paths.state_dir)?;
    tighten_state_files(&paths.state_dir);
    let mut store = Store::open(&paths.db)?;
    ensure_admin(&mut store, &config, opts)?;
    report_non_canonical(&store.conn);
    let listener = server::bind(&paths.socket, config.daemon.socket_group.as_deref())?;
    let ctx =
        Arc::new(Ctx::new(config, store, paths).map_err(|e| DaemonError::Setup(format!("loading the policy: {e}")))?);
    match upkeep::restore_sessions(&ctx) {
        Ok((0, 0)) => {}
        Ok((kept, expired)) => tracing::info!(kept, expired, "client sessions restored"),
        Err(e) => return Err(DaemonError::Setup(format!("restoring client sessions: {e}"))),
    }
    match upkeep::restore_lock(&ctx) {
        Ok(Some(what)) => tracing::info!("{what}"),
        Ok(None) => {}
        Err(e) => return Err(DaemonError::Setup(format!("restoring the supervisor lock: {e}"))),
    }
    Ok((ctx, listener, state_lock))
}

/// The daemon loop's clocks.
struct Timers {
    watchdog_period: Option<Duration>,
    watchdog: tokio::time::Interval,
    housekeeping: tokio::time::Interval,
    expiry: tokio::time::Interval,
    flush: tokio::time::Interval,
    persist_every: Duration,
    persist: tokio::time::Interval,
}

impl Timers {
    fn new(ctx: &Ctx) -> Timers {
        // Half of WATCHDOG_USEC, as systemd recommends; without a watchdog the arm never fires.
        let watchdog_period = sd_notify::watchdog_enabled().map(|d| d / 2);
        let persist_every = ctx.config().license.persist_interval.0;
        Timers {
            watchdog_period,
            watchdog: every(watchdog_period.unwrap_or(Duration::from_secs(3600))),
            housekeeping: every(Duration::from_secs(60)),
            // Session expiry is checked every second in memory; heartbeats reach the file in batches.
            expiry: every(Duration::from_secs(1)),
            // Refusals and failed logins reach the audit trail (and login counters the users table)
            // in one transaction every few seconds, never one synced write per refused request.
            flush: every(FLUSH_EVERY),
            persist_every,
            persist: first_after(persist_every),
        }
    }
}

/// A clock that ticks at once, then every `period`; a late tick delays the next ones.
fn every(period: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval(period);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

/// A clock that first ticks after `period`, then every `period`.
fn first_after(period: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

/// A clean stop: the socket closed, the last heartbeats and refusals written, the bridge's
/// offline status out (bounded), the socket file gone.
async fn stop(
    ctx: &Arc<Ctx>,
    server: tokio::task::JoinHandle<()>,
    bridge: Option<crate::mqtt::Handle>,
    socket_path: &std::path::Path,
) {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    server.abort();
    let _ = server.await;
    // The last heartbeats, so sessions resume exactly where they were after the restart; the last
    // refusals and login counters.
    if let Err(e) = upkeep::persist_sessions(ctx) {
        tracing::warn!("writing session heartbeats failed: {e}");
    }
    let _ = ctx.flush();
    if let Some(bridge) = bridge {
        // Offline status out before we go; bounded, so an unreachable broker cannot hold up a stop.
        bridge.shutdown(Duration::from_secs(3)).await;
    }
    let _ = std::fs::remove_file(socket_path);
    tracing::info!("gatewarden stopped");
}

/// Makes the dummy hash that unknown-user logins verify against, in the background, so the first of
/// them costs what every later one does (a timing difference an attacker could otherwise probe once
/// after each restart or cost change).
fn warm_dummy_hash(ctx: &Arc<Ctx>) {
    let cost = ctx.config().accounts.argon2;
    tokio::task::spawn_blocking(move || crate::accounts::password::verify_dummy("", &cost));
}

/// Makes glibc give large freed blocks back to the system. argon2 allocates its whole memory cost
/// (19 MiB by default) per password check; with glibc's adaptive threshold those blocks come from the
/// heap after the first one is freed and stay in the process, one per thread that ever hashed, so RSS
/// would sit tens of MiB above what the daemon uses. A fixed threshold keeps them mmapped and
/// returned at once, and two arenas stop per-thread heaps from multiplying fragmentation.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called once, before any other thread exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 256 * 1024);
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 2);
    }
}

/// Holds an exclusive lock on `<state>/gatewarden.lock` for the daemon's lifetime, so a second daemon
/// and `gatewarden recover` can tell that the database is in use.
pub fn lock_state_dir(dir: &std::path::Path) -> Result<nix::fcntl::Flock<std::fs::File>, DaemonError> {
    let path = dir.join("gatewarden.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| DaemonError::StateDir { path: path.display().to_string(), source })?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        DaemonError::Setup(format!(
            "another gatewarden is already using {} (it holds {})",
            dir.display(),
            path.display()
        ))
    })
}

/// Creates the built-in admin on the first start, with the password from `--admin-password-file` or
/// `accounts.admin_password_file`, or a generated one shown once in the log.
fn ensure_admin(store: &mut Store, config: &Config, opts: &ServeOptions) -> Result<(), DaemonError> {
    let file = opts.admin_password_file.as_ref().or(config.accounts.admin_password_file.as_ref());
    let first = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| DaemonError::Setup(format!("admin password file {}: {e}", path.display())))?;
            let pw = text.trim_end_matches(['\r', '\n']).to_string();
            crate::accounts::validate_password(&pw, &config.accounts)
                .map_err(|e| DaemonError::Setup(format!("admin password file {}: {}", path.display(), e.message)))?;
            Some(pw)
        }
        None => None,
    };
    let generated = store
        .write(|tx| crate::accounts::ensure_admin(tx, first, &config.accounts.argon2))
        .map_err(|e| DaemonError::Setup(format!("creating the built-in admin: {e}")))?;
    if let Some(pw) = generated {
        // Shown once, here, and never stored in clear.
        tracing::warn!(
            "built-in admin account created with the generated password: {pw}  \
             (shown only now; change it with `gatewarden user passwd admin`)"
        );
    }
    Ok(())
}

/// Every file the daemon creates is private to its user: the database holds password hashes and
/// token digests, and SQLite gives the WAL and shm files the database's own mode. With umask 077 they
/// are 0600 whatever umask the daemon was started with (022 on most shells). The control socket and
/// the state directory set their modes explicitly.
fn private_files() {
    use nix::sys::stat::{Mode, umask};
    umask(Mode::from_bits_truncate(0o077));
}

/// The files of the state directory, tightened at every start.
const STATE_FILES: &[&str] =
    &["gatewarden.db", "gatewarden.db-wal", "gatewarden.db-shm", "gatewarden.db-journal", "gatewarden.lock"];

/// Files an earlier version (or a restore) left readable by others become 0600 (our own files only:
/// another owner's file is reported, not touched).
fn tighten_state_files(dir: &std::path::Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let me = nix::unistd::geteuid().as_raw();
    for name in STATE_FILES {
        let path = dir.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if !meta.is_file() || meta.mode() & 0o077 == 0 {
            continue;
        }
        if meta.uid() != me {
            tracing::warn!(
                "{} is mode {:o} and owned by uid {}; make it 0600",
                path.display(),
                meta.mode() & 0o777,
                meta.uid()
            );
            continue;
        }
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => tracing::info!("{} was mode {:o}; now 0600", path.display(), meta.mode() & 0o777),
            Err(e) => tracing::warn!("{}: cannot make it 0600: {e}", path.display()),
        }
    }
}

/// Creates the state directory (0750: the socket's group may need to reach a socket inside it).
fn create_state_dir(dir: &std::path::Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let err = |source| DaemonError::StateDir { path: dir.display().to_string(), source };
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o750).create(dir).map_err(err)?;
    // The umask (077) took the group bits off; give back exactly what is meant.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).map_err(err)
}

/// Says, once at start, which stored resource ids, group members and grant selectors an earlier
/// version accepted that the current rules refuse. They are left as they are: they keep working (a deny
/// keeps denying), `resource list`, `role show` and `group` commands show them, and `resource delete`,
/// `group member-remove` and `role revoke` remove them; only new input is held to the rules.
fn report_non_canonical(conn: &rusqlite::Connection) {
    type Rule = fn(&str) -> bool;
    let scan = |sql: &str, bad: Rule| -> rusqlite::Result<(usize, Option<String>)> {
        let mut st = conn.prepare(sql)?;
        let mut rows = st.query([])?;
        let (mut n, mut first) = (0, None);
        while let Some(r) = rows.next()? {
            let text: String = r.get(0)?;
            if bad(&text) {
                n += 1;
                first.get_or_insert(text);
            }
        }
        Ok((n, first))
    };
    let bad_id: Rule = |id| crate::authz::validate_resource_id(id).is_err();
    let bad_selector: Rule = |s| crate::authz::Selector::parse(s).is_err();
    let checks = [
        ("resource ids", "SELECT id FROM resources", bad_id),
        ("group members", "SELECT DISTINCT resource_id FROM group_members", bad_id),
        ("grant selectors", "SELECT DISTINCT selector FROM grants", bad_selector),
    ];
    for (what, sql, bad) in checks {
        match scan(sql, bad) {
            Ok((0, _)) => {}
            Ok((n, first)) => tracing::warn!(
                "{n} stored {what} do not follow the current rules (first: {}); they keep working, and new \
                 input is held to the rules: replace them with canonical ones",
                crate::text::shown(first.as_deref().unwrap_or_default(), 64)
            ),
            Err(e) => tracing::warn!("checking stored {what}: {e}"),
        }
    }
}

/// The one-line summary systemd shows in `systemctl status`.
fn status_line(ctx: &Ctx) -> String {
    let config = ctx.config();
    let (in_use, sessions) = {
        let table = ctx.sessions();
        (table.in_use(), table.len())
    };
    let lock = ctx.lock().map(|l| format!("set by {}", l.owner_text())).unwrap_or_else(|| "none".into());
    format!("seats {in_use}/{} in use, {sessions} sessions; supervisor lock: {lock}", config.license.seats)
}

/// Periodic upkeep: retention of the audit trail, of ended sessions, of undelivered MQTT messages, and
/// expired login tokens.
fn housekeep(ctx: &Ctx) {
    if let Err(e) = upkeep::prune_sessions(ctx) {
        tracing::warn!("session retention failed: {e}");
    }
    let config = ctx.config();
    let r = &config.retention;
    let store = ctx.store();
    if let Err(e) = crate::accounts::prune_lockouts(&store.conn, config.accounts.lockout_window.0.as_millis() as i64) {
        tracing::warn!("failed-login retention failed: {e}");
    }
    if let Err(e) = crate::store::audit::prune(&store.conn, r.audit_max_age.0.as_millis() as i64, r.audit_max_rows) {
        tracing::warn!("audit retention failed: {e}");
    }
    match crate::store::outbox::prune(&store.conn, r.outbox_max_age.0.as_millis() as i64, r.outbox_max_rows) {
        Ok(0) => {}
        // With MQTT disabled nobody publishes the outbox; retention alone keeps it bounded.
        Ok(n) if !config.mqtt.enabled => tracing::debug!("outbox retention dropped {n} messages (MQTT disabled)"),
        Ok(n) => tracing::warn!("outbox retention dropped {n} undelivered MQTT messages (broker away too long)"),
        Err(e) => tracing::warn!("outbox retention failed: {e}"),
    }
    match crate::accounts::prune_tokens(&store.conn, ctx.credentials(), crate::store::now_ms()) {
        Ok(0) => {}
        Ok(n) => tracing::debug!("{n} expired login tokens deleted"),
        Err(e) => tracing::warn!("login token retention failed: {e}"),
    }
}

/// SIGHUP: re-read the config file and apply what can change while running.
fn reload(ctx: &Ctx, log: &logging::Handle) {
    notify(&[NotifyState::Reloading, NotifyState::monotonic_usec_now().unwrap_or(NotifyState::Status("reloading"))]);
    let Some(path) = ctx.paths.config.clone() else {
        tracing::info!("SIGHUP: running on embedded defaults, nothing to reload");
        notify(&[NotifyState::Ready]);
        return;
    };
    match Config::load(&path) {
        Err(e) => tracing::error!("SIGHUP: keeping the running config: {e}"),
        Ok(new) => {
            let old = ctx.config();
            for key in restart_only_changes(&old, &new) {
                tracing::warn!("SIGHUP: {key} changed; it takes effect after a restart");
            }
            if new.daemon.log_level != old.daemon.log_level {
                log.set_level(&new.daemon.log_level);
            }
            ctx.set_config(new);
            tracing::info!("SIGHUP: config reloaded from {}", path.display());
        }
    }
    notify(&[NotifyState::Ready, NotifyState::Status(&status_line(ctx))]);
}

/// The keys a running daemon cannot apply live.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (&old.daemon, &new.daemon);
    [
        ("daemon.state_dir", o.state_dir != n.state_dir),
        ("daemon.socket", o.socket != n.socket),
        ("daemon.socket_group", o.socket_group != n.socket_group),
        ("daemon.max_clients", o.max_clients != n.max_clients),
        ("site.id", old.site.id != new.site.id),
        ("mqtt", old.mqtt != new.mqtt),
        ("plant", old.plant != new.plant),
        // The plant's pools are cut at start, from the reservations as they were then.
        ("license.reserved (plant mode)", old.plant.enabled() && old.license.reserved != new.license.reserved),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_changes_compares_values_not_their_debug_text() {
        let parse = |t: &str| Config::parse(t, "g.toml").unwrap();
        let old = parse("[mqtt]\nurl = \"mqtt://broker.plant\"\n");
        // The same broker written another way is no change; a different one is.
        assert!(restart_only_changes(&old, &parse("[mqtt]\nurl = \"mqtt://broker.plant:1883/\"\n")).is_empty());
        assert_eq!(restart_only_changes(&old, &parse("[mqtt]\nurl = \"mqtts://broker.plant\"\n")), ["mqtt"]);
        assert_eq!(restart_only_changes(&old, &parse("[mqtt]\nurl = \"mqtt://broker.plant\"\nqos = 2\n")), ["mqtt"]);
        // Live keys are not named.
        let live =
            parse("[mqtt]\nurl = \"mqtt://broker.plant\"\n[license]\nseats = 9\n[daemon]\nlog_level = \"debug\"\n");
        assert!(restart_only_changes(&old, &live).is_empty());
        let moved = parse("[mqtt]\nurl = \"mqtt://broker.plant\"\n[daemon]\nmax_clients = 8\n[site]\nid = \"p2\"\n");
        assert_eq!(restart_only_changes(&old, &moved), ["daemon.max_clients", "site.id"]);
    }
}
