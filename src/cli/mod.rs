//! The command line: `serve` starts the daemon, every other command is a client of its control
//! socket. Exit codes: 0 ok, 1 refused or failed, 2 usage (clap's own code for usage errors).

pub mod accounts;
pub mod authz;
pub mod directory;
pub mod generate;
pub mod objects;
pub mod output;
pub mod policy;
pub mod session;
pub mod supervisor;

use accounts::{KeyCommand, RecoverCommand, UserCommand};
use authz::{GroupCommand, Question, ResourceCommand, RoleCommand};
use directory::DirectoryCommand;
use generate::GenerateCommand;
use objects::ObjectCommand;
use session::SessionCommand;
use supervisor::LockCommand;

use crate::config::{Config, parse_duration};
use crate::contract::system;
use crate::protocol::{ApiError, Auth, ErrorCode, Request, Response};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// The default config file of a packaged install.
pub const DEFAULT_CONFIG: &str = "/etc/gatewarden/gatewarden.toml";

#[derive(Parser, Debug)]
#[command(
    name = "gatewarden",
    version,
    about = "Users, permissions, HMI sessions and the supervisor lock for an edge gateway"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Control socket of the daemon [default: $RUNTIME_DIRECTORY, /run/gatewarden, $STATE_DIRECTORY,
    /// else ./gatewarden-state]. Whichever it is, the CLI talks to it only when the socket and its
    /// directory belong to root, to you or to the gatewarden user and others cannot write to them
    #[arg(long, global = true, env = "GATEWARDEN_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print exactly the method's result (or {"error": ...}) as JSON
    #[arg(long, global = true)]
    pub json: bool,
    /// Login token or API key to act as (from `gatewarden login USER`)
    #[arg(long, global = true, env = "GATEWARDEN_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon (systemd Type=notify)
    Serve {
        /// Config file (TOML); without it the embedded defaults apply
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// File holding the built-in admin's first password
        #[arg(long, value_name = "FILE")]
        admin_password_file: Option<PathBuf>,
    },
    /// Show the daemon's state: version, database, MQTT link, seats, supervisor lock
    Status,
    /// Show the audit trail, newest first
    Audit {
        /// Only entries since a time (UTC, 2026-11-23T08:00) or for a duration back (2h)
        #[arg(long, value_name = "T")]
        since: Option<String>,
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
        /// Only this action, or a family ending in a dot (session.)
        #[arg(long, value_name = "A")]
        action: Option<String>,
        /// Only what this user or API key did
        #[arg(long, value_name = "NAME")]
        actor: Option<String>,
        /// Only ok, denied or failed
        #[arg(long, value_name = "O")]
        outcome: Option<String>,
        /// Only entries about this target
        #[arg(long, value_name = "T")]
        target: Option<String>,
    },
    /// Work with config files
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Log in and print a token (use it with --token or GATEWARDEN_TOKEN)
    Login {
        user: String,
        /// Read the password from standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Revoke the token given with --token
    Logout,
    /// Create your own account, where self-registration is enabled
    Register {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// HMI client sessions: list, terminate; open, heartbeat, close for scripts
    Session {
        #[command(subcommand)]
        command: SessionCommand,
    },
    /// The supervisor lock: freeze writes plant-wide (read-only mode) and say why
    Lock {
        #[command(subcommand)]
        command: LockCommand,
    },
    /// Send a message to every operator panel (needs supervisor.broadcast)
    Broadcast { text: String },
    /// The plant directory (LDAP / Active Directory): test a person's login, sync now
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Manage users
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API keys
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Manage roles and their grants
    Role {
        #[command(subcommand)]
        command: RoleCommand,
    },
    /// Manage the resource inventory
    Resource {
        #[command(subcommand)]
        command: ResourceCommand,
    },
    /// Manage resource groups
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Objects on resources (recipes, batch records, reports): create, read, who may read them
    Object {
        #[command(subcommand)]
        command: ObjectCommand,
    },
    /// May SUBJECT use PERMISSION on RESOURCE? Exits 0 when allowed, 1 when denied
    Check(Question),
    /// Many questions in one request, from FILE (`-`: stdin): JSON lines or a JSON array of
    /// {"subject"?, "permission", "resource", "access"?}. Exits 0 when every one is allowed
    CheckMany { file: PathBuf },
    /// Which of these RESOURCEs may the caller (or --subject) use with PERMISSION? One a line
    Allowed(authz::AllowedArgs),
    /// Every grant that matched the question, and which one decided
    Explain(Question),
    /// The enabled accounts that may use PERMISSION on RESOURCE
    WhoCan {
        permission: String,
        resource: String,
        #[arg(long)]
        write: bool,
    },
    /// Policy as code: export the whole policy as TOML, plan and apply a policy file (superuser)
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// Plant settings HMIs read
    Settings {
        #[command(subcommand)]
        command: SettingsCommand,
    },
    /// Offline repairs on the database file (daemon stopped, as root)
    Recover {
        #[command(subcommand)]
        command: RecoverCommand,
    },
    /// Send any request method with raw JSON params; prints the result or the error object.
    /// `--list` prints every method with what it needs.
    Call {
        #[arg(required_unless_present = "list")]
        method: Option<String>,
        #[arg(value_name = "PARAMS_JSON")]
        params: Option<String>,
        /// List the request methods (from the daemon's route table) and exit
        #[arg(long, conflicts_with_all = ["method", "params"])]
        list: bool,
    },
    /// The API's description, from this binary's own route table and types (no daemon needed)
    Api {
        #[command(subcommand)]
        command: ApiCommand,
    },
    /// Write the man pages or the shell completions into a directory (packaging)
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        command: GenerateCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApiCommand {
    /// Every method with the JSON Schemas (draft 2020-12) of its params and result, its permission
    /// and its error codes, as one JSON document
    Schema,
    /// The human reference, as Markdown (docs/api.md)
    Reference,
    /// Every MQTT topic and payload, as an AsyncAPI 3.0 document in YAML (docs/asyncapi.yaml)
    Asyncapi,
}

#[derive(Subcommand, Debug)]
pub enum SettingsCommand {
    /// Show one setting, or all
    Get { key: Option<String> },
    /// Set a setting; VALUE is JSON, or taken as a string when it is not
    Set { key: String, value: String },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a config file; names the line and key at fault
    Check {
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

/// A failure of a CLI command, mapped to an exit code by `main`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The daemon answered with an error.
    #[error("{0}")]
    Api(ApiError),
    /// The command line or a local file was wrong.
    #[error("{0}")]
    Usage(String),
    /// Anything else: the daemon unreachable, a broken reply.
    #[error("{0}")]
    Failed(String),
    /// A question answered "no" (`check`): printed like a result, but the exit code is 1.
    #[error("denied")]
    Denied(Value),
}

/// One connection to the daemon's control socket.
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    auth: Option<Auth>,
    next_id: u64,
}

impl Client {
    pub fn connect(global: &Global) -> Result<Client, CliError> {
        let path = socket_path(global.socket.as_deref());
        let trusted = TrustedOwners::of_this_process();
        trusted.check_path(&path)?;
        let stream = UnixStream::connect(&path).map_err(|e| {
            CliError::Failed(format!(
                "cannot reach gatewarden at {}: is `gatewarden serve` running? ({e})",
                path.display()
            ))
        })?;
        // The path was checked, but it could have been swapped since: the listening process decides.
        trusted.check_peer(&path, &stream)?;
        let auth = global.token.as_ref().filter(|t| !t.is_empty()).map(|t| auth_for_secret(t));
        Ok(Client { path, reader: BufReader::new(stream), auth, next_id: 1 })
    }

    /// Sends the following requests with these credentials instead of --token's.
    pub fn with_auth(mut self, auth: Auth) -> Client {
        self.auth = Some(auth);
        self
    }

    /// Sends one request and waits for its reply.
    /// Calls the method whose params `p` are; the reply's result as JSON (the CLI prints it).
    pub fn send<P: crate::contract::Method>(&mut self, p: &P) -> Result<Value, CliError> {
        let params = serde_json::to_value(p).map_err(|e| CliError::Failed(e.to_string()))?;
        self.call(P::NAME, params)
    }

    /// [`Client::send`], the result decoded as the method's result type.
    pub fn send_typed<P: crate::contract::Method>(&mut self, p: &P) -> Result<P::Result, CliError> {
        let v = self.send(p)?;
        serde_json::from_value(v).map_err(|e| CliError::Failed(format!("unexpected reply to {}: {e}", P::NAME)))
    }

    /// Calls a method by name with raw params (`gatewarden call`).
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, CliError> {
        let params = match params {
            Value::Null => None,
            params => Some(serde_json::value::to_raw_value(&params).map_err(|e| CliError::Failed(e.to_string()))?),
        };
        let req = Request {
            id: Value::from(self.next_id),
            method: method.to_string(),
            params,
            auth: self.auth.clone(),
            reply_to: None,
        };
        self.next_id += 1;
        let mut line = serde_json::to_vec(&req).map_err(|e| CliError::Failed(e.to_string()))?;
        line.push(b'\n');
        let lost = |e: std::io::Error| CliError::Failed(format!("connection to {} lost: {e}", self.path.display()));
        self.reader.get_mut().write_all(&line).map_err(lost)?;
        let mut reply = String::new();
        let n = self.reader.read_line(&mut reply).map_err(lost)?;
        if n == 0 {
            return Err(CliError::Failed(format!("gatewarden at {} closed the connection", self.path.display())));
        }
        let resp: Response = serde_json::from_str(&reply)
            .map_err(|e| CliError::Failed(format!("unreadable reply from gatewarden: {e}")))?;
        resp.into_result().map_err(CliError::Api)
    }
}

/// Login tokens start with `gwt_`, API keys with `gwk_`; the CLI picks the auth form from that.
pub fn auth_for_secret(secret: &str) -> Auth {
    use crate::accounts::secret::{KEY_PREFIX, is_kind};
    if is_kind(KEY_PREFIX, secret) {
        Auth::Key { key: secret.to_string() }
    } else {
        Auth::Token { token: secret.to_string() }
    }
}

/// `call --list`: every method of the route table, what it needs, and what it does.
fn method_list() -> Value {
    use crate::api::routes::ROUTES;
    Value::Array(
        ROUTES
            .iter()
            .map(|r| {
                serde_json::json!({
                    "method": r.name,
                    "needs": r.needs.describe(),
                    "write_class": r.write_class,
                    "summary": r.summary,
                })
            })
            .collect(),
    )
}

/// Where the CLI looks for the daemon when `--socket` is not given. The last fallback is relative to
/// the working directory (`gatewarden serve` on embedded defaults there); like every other socket, it
/// is used only when [`TrustedOwners::check_path`] accepts it, so a socket someone else left in the
/// directory a technician happens to be in never receives a password or a token.
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("RUNTIME_DIRECTORY").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("gatewarden.sock");
    }
    let packaged = PathBuf::from("/run/gatewarden/gatewarden.sock");
    if packaged.exists() {
        return packaged;
    }
    match std::env::var_os("STATE_DIRECTORY").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("gatewarden.sock"),
        None => PathBuf::from("gatewarden-state/gatewarden.sock"),
    }
}

/// The system user of a packaged install (packaging/gatewarden.sysusers): it owns the daemon's socket.
pub const DAEMON_USER: &str = "gatewarden";

/// Who may own the socket the CLI sends credentials to: root, the invoking user, and the gatewarden
/// system user. "Is this socket safe to send a password or a token to?" is answered here and only here.
pub struct TrustedOwners {
    uids: Vec<u32>,
}

impl TrustedOwners {
    pub fn of_this_process() -> TrustedOwners {
        let mut uids = vec![0, nix::unistd::getuid().as_raw()];
        if let Ok(Some(user)) = nix::unistd::User::from_name(DAEMON_USER) {
            uids.push(user.uid.as_raw());
        }
        TrustedOwners { uids }
    }

    fn trusts(&self, uid: u32) -> bool {
        self.uids.contains(&uid)
    }

    /// The socket (symlinks resolved) and the directory holding it must be owned by a trusted uid, and
    /// not writable by others (a directory writable by others is accepted only with the sticky bit,
    /// which stops them from replacing the socket).
    pub fn check_path(&self, path: &Path) -> Result<(), CliError> {
        use std::os::unix::fs::MetadataExt;
        // Missing: let the connection attempt report it as it always did.
        let Ok(real) = std::fs::canonicalize(path) else { return Ok(()) };
        let refuse = |what: String| {
            Err(CliError::Failed(format!(
                "refusing to use the control socket {}: {what}. A socket there could belong to anyone, and \
                 the CLI would send it your password or token. Pass --socket (or GATEWARDEN_SOCKET) with \
                 the socket of your gatewarden, owned by root, by you or by the {DAEMON_USER} user",
                path.display()
            )))
        };
        let socket = std::fs::metadata(&real).map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
        if !self.trusts(socket.uid()) {
            return refuse(format!("it is owned by uid {}", socket.uid()));
        }
        if socket.mode() & 0o002 != 0 {
            return refuse(format!("it is writable by every user (mode {:o})", socket.mode() & 0o7777));
        }
        let dir = real.parent().unwrap_or(Path::new("/"));
        let meta = std::fs::metadata(dir).map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
        if !self.trusts(meta.uid()) {
            return refuse(format!("its directory {} is owned by uid {}", dir.display(), meta.uid()));
        }
        if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
            return refuse(format!(
                "its directory {} is writable by every user (mode {:o})",
                dir.display(),
                meta.mode() & 0o7777
            ));
        }
        Ok(())
    }

    /// The process listening on the other end must run as a trusted uid too.
    pub fn check_peer(&self, path: &Path, stream: &UnixStream) -> Result<(), CliError> {
        use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
        let creds = getsockopt(stream, PeerCredentials)
            .map_err(|e| CliError::Failed(format!("{}: cannot read the daemon's credentials: {e}", path.display())))?;
        if self.trusts(creds.uid()) {
            Ok(())
        } else {
            Err(CliError::Failed(format!(
                "refusing to use the control socket {}: the process serving it runs as uid {}, not as root, \
                 you or the {DAEMON_USER} user; pass --socket with the socket of your gatewarden",
                path.display(),
                creds.uid()
            )))
        }
    }
}

/// Runs a client command and prints its outcome. Returns the exit code.
pub fn run(cli: Cli) -> i32 {
    let json = cli.global.json;
    let print = |v: &Value| {
        if json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            output::print_human(v);
        }
    };
    match execute(&cli.global, cli.command) {
        Ok(Some(v)) => {
            print(&v);
            EXIT_OK
        }
        Err(CliError::Denied(v)) => {
            print(&v);
            EXIT_FAILED
        }
        Ok(None) => EXIT_OK,
        Err(CliError::Api(e)) => {
            if json {
                println!("{}", json!({ "error": e }));
            } else {
                eprintln!("error: {}: {}", e.code.as_str(), output::safe(&e.message));
                for (k, v) in &e.data {
                    eprintln!("  {}: {}", output::safe(k), output::safe(&v.to_string()));
                }
            }
            EXIT_FAILED
        }
        Err(CliError::Usage(m)) => {
            report(json, ErrorCode::BadRequest, &m);
            EXIT_USAGE
        }
        Err(CliError::Failed(m)) => {
            // Not the daemon's `internal`: the daemon was not reached, or not trusted, or its reply
            // could not be read.
            report(json, ErrorCode::Unavailable, &m);
            EXIT_FAILED
        }
    }
}

fn report(json: bool, code: ErrorCode, message: &str) {
    if json {
        println!("{}", json!({ "error": { "code": code, "message": message } }));
    } else {
        eprintln!("error: {}", output::safe(message));
    }
}

fn execute(global: &Global, command: Command) -> Result<Option<Value>, CliError> {
    match command {
        Command::Serve { .. } => Err(CliError::Usage("serve is handled by main".into())),
        Command::Config { command: ConfigCommand::Check { file } } => config_check(file).map(Some),
        Command::Generate { command } => generate::generate(command).map(Some),
        Command::Api { command: ApiCommand::Schema } => {
            // JSON whatever --json says: it is a document for tools.
            let doc = crate::api::reference::schema_document();
            println!("{}", serde_json::to_string_pretty(&doc).map_err(|e| CliError::Failed(e.to_string()))?);
            Ok(None)
        }
        Command::Api { command: ApiCommand::Reference } => {
            print!("{}", crate::api::reference::markdown());
            Ok(None)
        }
        Command::Api { command: ApiCommand::Asyncapi } => {
            print!("{}", crate::api::reference::yaml(&crate::api::reference::asyncapi()));
            Ok(None)
        }
        Command::Status => Client::connect(global)?.send(&system::StatusGet {}).map(Some),
        Command::Audit { since, limit, action, actor, outcome, target } => {
            let since = since.map(|s| parse_since(&s)).transpose()?;
            let q = system::AuditList { since, limit, action, actor, outcome, target };
            Client::connect(global)?.send(&q).map(Some)
        }
        Command::Login { user, password_stdin } => {
            let v = accounts::login(global, user, password_stdin)?;
            // Human output is the bare token, so `export GATEWARDEN_TOKEN=$(gatewarden login ...)` works.
            if !global.json {
                println!("{}", output::safe(v["token"].as_str().unwrap_or_default()));
                return Ok(None);
            }
            Ok(Some(v))
        }
        Command::Logout => Client::connect(global)?.send(&crate::contract::accounts::Logout {}).map(Some),
        Command::Register { name, password_stdin } => accounts::register(global, name, password_stdin).map(Some),
        Command::Session { command } => session::session(global, command).map(Some),
        Command::Object { command } => objects::object(global, command).map(Some),
        Command::Lock { command } => supervisor::lock(global, command).map(Some),
        Command::Broadcast { text } => supervisor::broadcast(global, text).map(Some),
        Command::Directory { command } => directory::directory(global, command).map(Some),
        Command::User { command } => accounts::user(global, command).map(Some),
        Command::Key { command } => accounts::key(global, command).map(Some),
        Command::Recover { command } => accounts::recover(command).map(Some),
        Command::Settings { command: SettingsCommand::Get { key } } => {
            Client::connect(global)?.send(&system::SettingsGet { key }).map(Some)
        }
        Command::Settings { command: SettingsCommand::Set { key, value } } => {
            let value = serde_json::from_str::<Value>(&value).unwrap_or(Value::String(value));
            Client::connect(global)?.send(&system::SettingsSet { key, value }).map(Some)
        }
        Command::Policy { command } => policy::policy(global, command),
        Command::Role { command } => authz::role(global, command).map(Some),
        Command::Resource { command } => authz::resource(global, command).map(Some),
        Command::Group { command } => authz::group(global, command).map(Some),
        Command::Check(q) => authz::check(global, q).map(Some),
        Command::CheckMany { file } => authz::check_many(global, &file).map(Some),
        Command::Allowed(a) => authz::allowed(global, a),
        Command::Explain(q) => authz::explain(global, q).map(Some),
        Command::WhoCan { permission, resource, write } => {
            authz::who_can(global, permission, resource, write).map(Some)
        }
        Command::Call { list: true, .. } => Ok(Some(method_list())),
        Command::Call { method, params, .. } => {
            // An unknown method is the daemon's to refuse (bad_request, pointing at `call --list`).
            let method = method.unwrap_or_default();
            let params = match params {
                Some(p) => serde_json::from_str(&p)
                    .map_err(|e| CliError::Usage(format!("PARAMS_JSON is not valid JSON: {e}")))?,
                None => Value::Null,
            };
            Client::connect(global)?.call(&method, params).map(Some)
        }
    }
}

/// `--since`: a UTC time, or a duration back from now.
pub fn parse_since(s: &str) -> Result<i64, CliError> {
    if let Some(ms) = output::parse_utc(s) {
        return Ok(ms);
    }
    parse_duration(s)
        .map(|d| crate::store::now_ms() - d.as_millis() as i64)
        .map_err(|_| CliError::Usage(format!("--since {s:?}: give a UTC time (2026-11-23T08:00) or a duration (2h)")))
}

fn config_check(file: Option<PathBuf>) -> Result<Value, CliError> {
    let path = file.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let config = Config::load(&path).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(json!({
        "file": path.display().to_string(),
        "ok": true,
        "site": config.site.id,
        "seats": config.license.seats,
        "mqtt": if config.mqtt.enabled { config.mqtt.url.as_str() } else { "disabled" },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn verdict(owners: &TrustedOwners, path: &Path) -> Result<(), String> {
        owners.check_path(path).map_err(|e| e.to_string())
    }

    #[test]
    fn socket_trust_follows_owner_and_modes() {
        let me = nix::unistd::getuid().as_raw();
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("gatewarden.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let set = |p: &Path, mode: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        let mine = TrustedOwners { uids: vec![me] };
        set(dir.path(), 0o755);
        set(&sock, 0o660);
        assert_eq!(verdict(&mine, &sock), Ok(()));
        set(&sock, 0o666);
        assert!(verdict(&mine, &sock).unwrap_err().contains("writable by every user"));
        set(&sock, 0o660);
        set(dir.path(), 0o777);
        assert!(verdict(&mine, &sock).unwrap_err().contains("its directory"));
        // Sticky: others may add files but not replace ours.
        set(dir.path(), 0o1777);
        assert_eq!(verdict(&mine, &sock), Ok(()));
        set(dir.path(), 0o755);
        // Owned by nobody we trust.
        let strangers = TrustedOwners { uids: vec![me.wrapping_add(4242)] };
        assert!(verdict(&strangers, &sock).unwrap_err().contains(&format!("owned by uid {me}")));
        // A symlink is judged by what it points at.
        let link_dir = tempfile::tempdir().unwrap();
        let link = link_dir.path().join("gatewarden.sock");
        std::os::unix::fs::symlink(&sock, &link).unwrap();
        set(dir.path(), 0o777);
        assert!(verdict(&mine, &link).unwrap_err().contains("its directory"));
        // Missing: left to the connection attempt to report.
        assert_eq!(verdict(&mine, &dir.path().join("missing.sock")), Ok(()));
    }
}
