//! `gatewarden object ...`: objects on resources (recipes, batch records, reports), who may read them
//! and why, and explicit readers (one object or many at once).

use super::{CliError, Client, Global};
use crate::contract::objects::{
    ObjectCreate, ObjectDelete, ObjectGrant, ObjectList, ObjectRevoke, ObjectShow, ObjectWhoCan,
};
use clap::Subcommand;
use serde_json::Value;

#[derive(Subcommand, Debug)]
pub enum ObjectCommand {
    /// Create an object of KIND (a permission name) on RESOURCE; needs KIND with write access there
    Create {
        kind: String,
        resource: String,
        name: String,
        /// Its data, as JSON
        #[arg(long, value_name = "JSON")]
        data: Option<String>,
    },
    /// One object you may read
    Show { id: i64 },
    /// The objects you may read, oldest first
    List {
        #[arg(long, value_name = "K")]
        kind: Option<String>,
        #[arg(long, value_name = "R")]
        resource: Option<String>,
        #[arg(long, value_name = "USER")]
        owner: Option<String>,
        /// Only ids above this one (the `next_after` of the page before)
        #[arg(long, value_name = "ID")]
        after: Option<i64>,
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Delete an object (its owner, or KIND with write access on its resource)
    Delete { id: i64 },
    /// Who may read an object, and why: current (through which grant), historical, explicit
    /// (needs users.view)
    WhoCan { id: i64 },
    /// Let USER read these objects, all or nothing (needs users.manage)
    Grant {
        user: String,
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Take explicit reading of these objects from USER, all or nothing (needs users.manage)
    Revoke {
        user: String,
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

pub fn object(global: &Global, cmd: ObjectCommand) -> Result<Value, CliError> {
    let mut client = Client::connect(global)?;
    match cmd {
        ObjectCommand::Create { kind, resource, name, data } => {
            let data = data
                .map(|d| serde_json::from_str(&d).map_err(|e| CliError::Usage(format!("--data is not JSON: {e}"))))
                .transpose()?;
            client.send(&ObjectCreate { kind, resource, name, data })
        }
        ObjectCommand::Show { id } => client.send(&ObjectShow { id }),
        ObjectCommand::List { kind, resource, owner, after, limit } => {
            client.send(&ObjectList { kind, resource, owner, after, limit })
        }
        ObjectCommand::Delete { id } => client.send(&ObjectDelete { id }),
        ObjectCommand::WhoCan { id } => client.send(&ObjectWhoCan { id }),
        ObjectCommand::Grant { user, ids } => client.send(&ObjectGrant { id: None, ids: Some(ids), user }),
        ObjectCommand::Revoke { user, ids } => client.send(&ObjectRevoke { id: None, ids: Some(ids), user }),
    }
}
