//! `gatewarden session ...`: what a supervisor does at the console (list, show, terminate), and what
//! a script does to act as an HMI client (open, heartbeat, close, show its own session).

use super::accounts::{read_secret, stdin_lines};
use super::{CliError, Client, Global};
use crate::contract::sessions::{
    SessionClose, SessionHeartbeat, SessionList, SessionOpen, SessionShow, SessionTerminate,
};
use crate::protocol::Auth;
use clap::Subcommand;
use serde_json::Value;

#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// The live client sessions (needs sessions.view)
    List {
        /// Also the ended ones, newest first
        #[arg(long)]
        all: bool,
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Plant mode: the live sessions of every gateway of the plant, with their gateway
        #[arg(long)]
        plant: bool,
    },
    /// One session with its timing and its seat's pool: without ID, the session of --token (a gws_
    /// session token); another one needs sessions.view
    Show {
        #[arg(value_name = "ID")]
        session_id: Option<i64>,
    },
    /// End a client's session now and free its seat (needs sessions.terminate)
    Terminate {
        #[arg(value_name = "ID")]
        session_id: i64,
        /// Why: shown to the operator and kept in the audit trail
        #[arg(long, value_name = "R")]
        reason: Option<String>,
        /// Plant mode: the gateway holding the session (as `session list --plant` shows it)
        #[arg(long, value_name = "G")]
        gateway: Option<String>,
    },
    /// Open a session as an HMI client would; prints its id and token (for scripts and tests)
    Open {
        /// Authenticate as USER with a password (else: --token, or root on the console)
        #[arg(long, value_name = "U")]
        user: Option<String>,
        /// Read the password from standard input
        #[arg(long, requires = "user")]
        password_stdin: bool,
        /// Client type: hmi, scada, ...
        #[arg(long = "type", value_name = "T")]
        client_type: String,
        #[arg(long, value_name = "P")]
        project: Option<String>,
        #[arg(long, value_name = "H")]
        host: Option<String>,
        #[arg(long, value_name = "A")]
        address: Option<String>,
        /// Take a read-only seat, leaving the read-write ones to others
        #[arg(long, conflicts_with = "read_write")]
        read_only: bool,
        /// A read-write seat or nothing (by default a read-only seat is taken when no read-write one is free)
        #[arg(long)]
        read_write: bool,
    },
    /// Keep the session of --token (a gws_ session token) alive
    Heartbeat,
    /// Close the session of --token (a gws_ session token) and free its seat
    Close,
}

pub fn session(global: &Global, cmd: SessionCommand) -> Result<Value, CliError> {
    // The password before connecting: a connection that sends nothing while someone types is closed.
    let auth = match &cmd {
        SessionCommand::Open { user: Some(user), password_stdin, .. } => {
            let password = read_secret(*password_stdin, "Password", &mut stdin_lines())?;
            Some(Auth::Password { user: user.clone(), password })
        }
        _ => None,
    };
    let mut client = Client::connect(global)?;
    if let Some(auth) = auth {
        client = client.with_auth(auth);
    }
    match cmd {
        SessionCommand::List { all, limit, plant } => client.send(&SessionList { all, limit, plant }),
        SessionCommand::Show { session_id } => client.send(&SessionShow { session_id }),
        SessionCommand::Terminate { session_id, reason, gateway } => {
            client.send(&SessionTerminate { session_id, reason, gateway })
        }
        SessionCommand::Open { client_type, project, host, address, read_only, read_write, .. } => {
            let read_only = match (read_only, read_write) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            client.send(&SessionOpen { client_type, project, host, address, read_only })
        }
        SessionCommand::Heartbeat => client.send(&SessionHeartbeat::default()),
        SessionCommand::Close => client.send(&SessionClose::default()),
    }
}
