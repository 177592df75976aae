//! CLI for accounts: `login`, `logout`, `register`, `user ...`, `key ...`, and the offline
//! `recover reset-admin-password`.

use super::{CliError, Client, Global, output::parse_utc};
use crate::config::parse_duration;
use crate::contract::accounts::{
    KeyCreate, KeyList, KeyRevoke, Login, UserCreate, UserDelete, UserDisable, UserEnable, UserImport, UserList,
    UserRegister, UserSetPassword, UserShow, UserUnlock, UserUpdate,
};
use clap::Subcommand;
use serde_json::{Value, json};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user
    Add {
        name: String,
        /// Give the user this role (repeatable)
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Read the password from the first line of standard input (else: prompt, or no password)
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
        /// The account stops working at this time (2027-01-31) or after this long (90d)
        #[arg(long, value_name = "T")]
        expires: Option<String>,
    },
    /// Create users from a CSV file, all or nothing (header: name, and any of display_name, roles
    /// separated by `;`, password_hash as an argon2id PHC string, expires_at). One request and one
    /// transaction: the file must fit in the daemon's `daemon.max_request_bytes`
    Import { file: PathBuf },
    /// List users
    List,
    /// Show one user (default: yourself)
    Show { name: Option<String> },
    /// Change a user's display name, expiry (`--expires never` clears it) or roles
    Update {
        name: String,
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
        #[arg(long, value_name = "T")]
        expires: Option<String>,
        #[arg(long = "add-role", value_name = "ROLE")]
        add_roles: Vec<String>,
        #[arg(long = "remove-role", value_name = "ROLE")]
        remove_roles: Vec<String>,
    },
    /// Give user TO the roles of user FROM (added; with --replace instead of TO's own)
    CopyRoles {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        replace: bool,
    },
    /// Give one user a permission directly (not through a role)
    Grant {
        name: String,
        #[command(flatten)]
        grant: super::authz::GrantArgs,
    },
    /// Take direct grants away from a user
    Revoke {
        name: String,
        #[command(flatten)]
        revoke: super::authz::RevokeArgs,
    },
    /// Suspend a user at once: its tokens and sessions stop working
    Disable { name: String },
    /// Re-enable a suspended user (old tokens stay revoked)
    Enable { name: String },
    /// Delete a user with its keys, tokens, sessions and grants
    Delete { name: String },
    /// Set a password (default: your own). On your own account (unless root on the console), stdin
    /// holds the current password on the first line and the new one on the second. Ends the
    /// account's sessions and login tokens.
    Passwd {
        name: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// End the failed-login lock of an account, or the slow-down of a network source
    Unlock {
        #[arg(required_unless_present = "source", conflicts_with = "source")]
        name: Option<String>,
        /// A source as the audit trail names it, e.g. "mqtt client=panel7"
        #[arg(long, value_name = "SOURCE")]
        source: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create an API key; its secret is printed once
    Add {
        name: String,
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// A master key passes every check and every supervisor lock (admin only)
        #[arg(long)]
        master: bool,
        #[arg(long, value_name = "T")]
        expires: Option<String>,
    },
    /// List API keys (never their secrets)
    List,
    /// Revoke an API key
    Revoke { name: String },
}

#[derive(Subcommand, Debug)]
pub enum RecoverCommand {
    /// Set a new password for the built-in admin, directly on the database (daemon stopped, as root)
    ResetAdminPassword {
        /// The daemon's config file, to find the database [default: /etc/gatewarden/gatewarden.toml if present]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Read the new password from standard input (else one is generated and printed)
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Reads one secret: the next line of stdin, or a prompt with echo off on a terminal.
pub fn read_secret(
    from_stdin: bool,
    prompt: &str,
    lines: &mut impl Iterator<Item = String>,
) -> Result<String, CliError> {
    if from_stdin || !std::io::stdin().is_terminal() {
        return lines
            .next()
            .map(|l| l.trim_end_matches(['\r', '\n']).to_string())
            .ok_or_else(|| CliError::Usage(format!("expected {prompt} on standard input")));
    }
    prompt_hidden(prompt)
}

fn prompt_hidden(prompt: &str) -> Result<String, CliError> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    eprint!("{prompt}: ");
    let _ = std::io::stderr().flush();
    let saved = tcgetattr(&stdin).map_err(|e| CliError::Failed(format!("terminal: {e}")))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    r.map_err(|e| CliError::Failed(format!("reading password: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn stdin_lines() -> impl Iterator<Item = String> {
    std::io::stdin().lock().lines().map_while(Result::ok)
}

/// `--expires`: a UTC date/time, a duration from now, or `never` (`None`).
pub fn parse_expires(s: &str) -> Result<Option<i64>, CliError> {
    if s == "never" {
        return Ok(None);
    }
    if let Some(ms) = parse_utc(s) {
        return Ok(Some(ms));
    }
    parse_duration(s).map(|d| Some(crate::store::now_ms() + d.as_millis() as i64)).map_err(|_| {
        CliError::Usage(format!("--expires {s:?}: give a UTC date (2027-01-31), a duration (90d) or never"))
    })
}

pub fn login(global: &Global, user: String, password_stdin: bool) -> Result<Value, CliError> {
    let password = read_secret(password_stdin, "Password", &mut stdin_lines())?;
    Client::connect(global)?.send(&Login { user, password })
}

pub fn register(global: &Global, name: String, password_stdin: bool) -> Result<Value, CliError> {
    let password = read_secret(password_stdin, "Password", &mut stdin_lines())?;
    Client::connect(global)?.send(&UserRegister { name, password, display_name: None })
}

pub fn user(global: &Global, cmd: UserCommand) -> Result<Value, CliError> {
    let connect = || Client::connect(global);
    match cmd {
        UserCommand::Add { name, roles, password_stdin, display_name, expires } => {
            let password = if password_stdin || std::io::stdin().is_terminal() {
                Some(read_secret(password_stdin, "Password", &mut stdin_lines())?)
            } else {
                None
            };
            let expires_at = expires.as_deref().map(parse_expires).transpose()?.flatten();
            connect()?.send(&UserCreate { name, password, display_name, roles, expires_at })
        }
        UserCommand::Import { file } => import(global, &file, "users", |csv| UserImport { csv }),
        UserCommand::List => connect()?.send(&UserList {}),
        UserCommand::Show { name } => connect()?.send(&UserShow { name }),
        UserCommand::Update { name, display_name, expires, add_roles, remove_roles } => {
            let expires_at = expires.as_deref().map(parse_expires).transpose()?;
            connect()?.send(&UserUpdate {
                name,
                display_name: display_name.map(Some),
                expires_at,
                add_roles,
                remove_roles,
            })
        }
        UserCommand::CopyRoles { from, to, replace } => {
            connect()?.send(&crate::contract::policy::UserCopyRoles { from, to, replace })
        }
        UserCommand::Grant { name, grant } => {
            connect()?.send(&super::authz::grant_request(super::authz::Holder::User(name), grant)?)
        }
        UserCommand::Revoke { name, revoke } => {
            connect()?.send(&super::authz::revoke_request(super::authz::Holder::User(name), revoke))
        }
        UserCommand::Disable { name } => connect()?.send(&UserDisable { name }),
        UserCommand::Enable { name } => connect()?.send(&UserEnable { name }),
        UserCommand::Delete { name } => connect()?.send(&UserDelete { name }),
        UserCommand::Passwd { name, password_stdin } => {
            let mut lines = stdin_lines();
            // Changing your own password needs the current one, except as root on the console.
            let current_password = if name.is_none() && (global.token.is_some() || !nix::unistd::geteuid().is_root()) {
                Some(read_secret(password_stdin, "Current password", &mut lines)?)
            } else {
                None
            };
            let password = read_secret(password_stdin, "New password", &mut lines)?;
            connect()?.send(&UserSetPassword { name, password, current_password })
        }
        UserCommand::Unlock { name, source } => connect()?.send(&UserUnlock { name, source }),
    }
}

pub fn key(global: &Global, cmd: KeyCommand) -> Result<Value, CliError> {
    let connect = || Client::connect(global);
    match cmd {
        KeyCommand::Add { name, roles, master, expires } => {
            let expires_at = expires.as_deref().map(parse_expires).transpose()?.flatten();
            connect()?.send(&KeyCreate { name, roles, master, expires_at })
        }
        KeyCommand::List => connect()?.send(&KeyList {}),
        KeyCommand::Revoke { name } => connect()?.send(&KeyRevoke { name }),
    }
}

/// `user import FILE`, `role import FILE`: the whole file in one request, so that the daemon applies it
/// in one transaction, all or nothing. (Several requests could not be: a failure in the second would
/// leave the first applied.) On a terminal, without `--json`, a spinner shows the wait and a summary
/// line on stderr says how long it took.
pub fn import<P: crate::contract::Method>(
    global: &Global,
    file: &Path,
    what: &str,
    params: impl FnOnce(String) -> P,
) -> Result<Value, CliError> {
    let csv = std::fs::read_to_string(file).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let bytes = csv.len();
    let rows = csv.lines().filter(|l| !l.trim().is_empty()).count().saturating_sub(1);
    let progress = (!global.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(format!(
            "{}: {rows} {what} ({:.1} MiB) checked and loaded in one transaction",
            file.display(),
            bytes as f64 / (1024.0 * 1024.0)
        ));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let started = Instant::now();
    let result = Client::connect(global).and_then(|mut c| c.send(&params(csv)));
    if let Some(bar) = progress {
        bar.finish_and_clear();
        match &result {
            Ok(_) => {
                eprintln!("{rows} {what} loaded from {} in {:.1} s", file.display(), started.elapsed().as_secs_f64())
            }
            Err(_) => eprintln!("nothing loaded from {} (the file is applied whole or not at all)", file.display()),
        }
    }
    result.map_err(|e| match e {
        // The daemon refuses a request over `daemon.max_request_bytes` and closes the connection,
        // often before the CLI has finished writing it.
        CliError::Failed(m) if m.contains("connection") && bytes > 1024 * 1024 => CliError::Failed(format!(
            "{m}: the file is {bytes} bytes; a request may be at most daemon.max_request_bytes (1 MiB by \
             default, 16 MiB at most): raise it in the daemon's config and reload, or split the file \
             (each file is then all or nothing on its own)"
        )),
        other => other,
    })
}

/// Offline admin password reset for the console technician: daemon stopped, root, on the file.
pub fn recover(cmd: RecoverCommand) -> Result<Value, CliError> {
    let RecoverCommand::ResetAdminPassword { config, password_stdin } = cmd;
    if !nix::unistd::geteuid().is_root() {
        return Err(CliError::Failed("recover must run as root (it writes the database file directly)".into()));
    }
    let config_path = config.or_else(|| {
        let p = PathBuf::from(super::DEFAULT_CONFIG);
        p.exists().then_some(p)
    });
    let config = crate::daemon::load_config(config_path.as_deref()).map_err(|e| CliError::Usage(e.to_string()))?;
    let paths = crate::daemon::resolve_paths(&config, config_path);
    if !paths.db.exists() {
        return Err(CliError::Failed(format!(
            "no database at {}: pass the daemon's --config, or set STATE_DIRECTORY",
            paths.db.display()
        )));
    }
    let _lock = crate::daemon::lock_state_dir(&paths.state_dir).map_err(|_| {
        CliError::Failed(format!(
            "gatewarden is running on {}: stop it first (systemctl stop gatewarden), then run recover again",
            paths.state_dir.display()
        ))
    })?;
    let (password, generated) = if password_stdin {
        (read_secret(true, "new admin password", &mut stdin_lines())?, false)
    } else {
        (crate::accounts::password::generate(), true)
    };
    crate::accounts::validate_password(&password, &config.accounts).map_err(|e| CliError::Usage(e.message))?;
    let owner = std::fs::metadata(&paths.db).map(|m| {
        use std::os::unix::fs::MetadataExt;
        (m.uid(), m.gid())
    });
    let mut store = crate::store::Store::open(&paths.db).map_err(|e| CliError::Failed(e.to_string()))?;
    let hash = crate::accounts::password::hash(&password, &config.accounts.argon2).map_err(CliError::Failed)?;
    store
        .write(|tx| crate::accounts::reset_admin(tx, &hash))
        .map_err(|e| CliError::Failed(format!("cannot reset the admin password: {e}")))?;
    drop(store);
    // Files root created beside the database must stay usable by the daemon's own user.
    if let Ok((uid, gid)) = owner {
        for suffix in ["", "-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", paths.db.display()));
            if p.exists() {
                let _ = nix::unistd::chown(&p, Some(uid.into()), Some(gid.into()));
            }
        }
    }
    let mut out = json!({ "user": "admin", "database": paths.db.display().to_string(), "tokens_revoked": true });
    if generated {
        out["password"] = json!(password);
    }
    Ok(out)
}
