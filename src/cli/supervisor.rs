//! `gatewarden lock ...` and `gatewarden broadcast TEXT`: the supervisor's console commands.

use super::{CliError, Client, Global};
use crate::config::parse_duration;
use crate::contract::sessions::{Scope, Span, SupervisorLock, SupervisorMessage, SupervisorUnlock};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum LockCommand {
    /// Freeze every write for everyone outside the lock scope (needs supervisor.lock)
    Set {
        /// Who may still write: any supervisor, only your API key, or only you
        #[arg(long, value_enum, default_value_t = ScopeArg::Any)]
        lock_scope: ScopeArg,
        /// Who may clear or replace the lock
        #[arg(long, value_enum, default_value_t = ScopeArg::Any)]
        unlock_scope: ScopeArg,
        /// Shown to every operator with the lock
        #[arg(long, value_name = "R")]
        reason: Option<String>,
        /// Clear the lock by itself after this long (15m, 2h)
        #[arg(long, value_name = "D")]
        expires_in: Option<String>,
    },
    /// Clear the lock
    Clear,
    /// Show the lock (or that there is none)
    Show,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum ScopeArg {
    Any,
    Key,
    User,
}

impl ScopeArg {
    /// The scope as the contract types it (`None`: any supervisor), not typed again here.
    fn scope(self) -> Option<Scope> {
        match self {
            ScopeArg::Any => None,
            ScopeArg::Key => Some(Scope::Key),
            ScopeArg::User => Some(Scope::User),
        }
    }
}

pub fn lock(global: &Global, cmd: LockCommand) -> Result<Value, CliError> {
    let mut client = Client::connect(global)?;
    match cmd {
        LockCommand::Set { lock_scope, unlock_scope, reason, expires_in } => {
            let expires_in = expires_in
                .map(|d| parse_duration(&d).map_err(|e| CliError::Usage(format!("--expires-in {d:?}: {e}"))))
                .transpose()?
                .map(|d| Span::Secs(d.as_secs().max(1)));
            client.send(&SupervisorLock { l: lock_scope.scope(), c: unlock_scope.scope(), o: None, reason, expires_in })
        }
        LockCommand::Clear => client.send(&SupervisorUnlock {}),
        LockCommand::Show => {
            let status = client.send_typed(&crate::contract::system::StatusGet {})?;
            Ok(match status.supervisor_lock {
                Some(l) => json!({ "locked": true, "lock": l }),
                None => json!({ "locked": false }),
            })
        }
    }
}

pub fn broadcast(global: &Global, text: String) -> Result<Value, CliError> {
    Client::connect(global)?.send(&SupervisorMessage { text, sender: None })
}
