//! `gatewarden session ...`: what a supervisor does at the console (list, terminate), and what a
//! script does to act as an HMI client (open, heartbeat, close).

use super::accounts::{read_secret, stdin_lines};
use super::{CliError, Client, Global};
use crate::protocol::Auth;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// The live client sessions (needs sessions.view)
    List {
        /// Also the ended ones, newest first
        #[arg(long)]
        all: bool,
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// End a client's session now and free its seat (needs sessions.terminate)
    Terminate {
        #[arg(value_name = "ID")]
        session_id: i64,
        /// Why: shown to the operator and kept in the audit trail
        #[arg(long, value_name = "R")]
        reason: Option<String>,
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
    },
    /// Keep the session of --token (a gws_ session token) alive
    Heartbeat,
    /// Close the session of --token (a gws_ session token) and free its seat
    Close,
}

pub fn session(global: &Global, cmd: SessionCommand) -> Result<Value, CliError> {
    let (method, params, auth) = match cmd {
        SessionCommand::List { all, limit } => ("session.list", json!({ "all": all, "limit": limit }), None),
        SessionCommand::Terminate { session_id, reason } => {
            ("session.terminate", json!({ "session_id": session_id, "reason": reason }), None)
        }
        SessionCommand::Open { user, password_stdin, client_type, project, host, address } => {
            let auth = match user {
                Some(user) => {
                    let password = read_secret(password_stdin, "Password", &mut stdin_lines())?;
                    Some(Auth::Password { user, password })
                }
                None => None,
            };
            let p = json!({ "type": client_type, "project": project, "host": host, "address": address });
            ("session.open", p, auth)
        }
        SessionCommand::Heartbeat => ("session.heartbeat", Value::Null, None),
        SessionCommand::Close => ("session.close", Value::Null, None),
    };
    let mut client = Client::connect(global)?;
    if let Some(auth) = auth {
        client = client.with_auth(auth);
    }
    client.call(method, strip_nulls(params))
}

/// Leaves out options that were not given, so the daemon applies its own defaults.
fn strip_nulls(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|_, v| !v.is_null());
    }
    v
}
