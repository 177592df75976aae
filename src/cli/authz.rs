//! CLI for authorization: `role ...`, `resource ...`, `group ...`, `check`, `explain`, `who-can`.
//! `check` exits 0 when allowed and 1 when denied, so scripts can test it like `grep -q`.

use super::{CliError, Client, Global};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct GrantArgs {
    /// The permission (built-in like sessions.view, or an application one like tag.write)
    pub permission: String,
    /// Grant read access (with neither --read nor --write: both)
    #[arg(long)]
    pub read: bool,
    /// Grant write access
    #[arg(long)]
    pub write: bool,
    /// A resource selector: an id, @group, a glob (line1/*, line1/**) or * (repeatable; default *)
    #[arg(long = "resource", value_name = "SEL")]
    pub resources: Vec<String>,
    /// Grant on the resources listed in a CSV file (header: the identifier kind)
    #[arg(long, value_name = "FILE")]
    pub resources_file: Option<PathBuf>,
    /// With --resources-file: skip resources not in the inventory instead of refusing the file
    #[arg(long)]
    pub ignore_missing: bool,
    /// An explicit deny, which beats every allow
    #[arg(long)]
    pub deny: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RevokeArgs {
    /// Revoke the grants of this permission (all, or those on --resource)
    pub permission: Option<String>,
    #[arg(long = "resource", value_name = "SEL")]
    pub resources: Vec<String>,
    /// Revoke one grant by its id (see `role show`)
    #[arg(long, value_name = "N")]
    pub id: Option<i64>,
}

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Create a role
    Add {
        name: String,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// List the roles
    List,
    /// A role's grants, users and keys
    Show { name: String },
    /// Delete a role
    Delete { name: String },
    /// Give a role a permission on resources
    Grant {
        role: String,
        #[command(flatten)]
        grant: GrantArgs,
    },
    /// Take grants away from a role
    Revoke {
        role: String,
        #[command(flatten)]
        revoke: RevokeArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum ResourceCommand {
    /// Add one resource to the inventory
    Add {
        id: String,
        /// The identifier kind: device, serial, tag ...
        #[arg(long, default_value = "device")]
        kind: String,
        /// An attribute (repeatable)
        #[arg(long = "attr", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
    },
    /// List the resource inventory (all, or of one kind, or in one group)
    List {
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        group: Option<String>,
    },
    /// Remove a resource from the inventory
    Delete { id: String },
    /// Create or update resources from a CSV inventory (header: kind, then attribute names)
    Import { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Create a resource group (use it in selectors as @NAME)
    Add {
        name: String,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// List the resource groups
    List,
    /// Put existing resources into a group
    MemberAdd {
        group: String,
        #[arg(required = true)]
        resources: Vec<String>,
        #[arg(long)]
        ignore_missing: bool,
    },
    /// Take resources out of a group
    MemberRemove {
        group: String,
        #[arg(required = true)]
        resources: Vec<String>,
    },
    /// Put the resources listed in a CSV file into a group, all or nothing
    Import {
        group: String,
        file: PathBuf,
        #[arg(long)]
        ignore_missing: bool,
    },
    /// Delete a resource group
    Delete { name: String },
}

#[derive(Args, Debug, Clone)]
pub struct Question {
    /// A user name, or key:NAME for an API key
    pub subject: String,
    pub permission: String,
    pub resource: String,
    /// Ask about write access (default: read)
    #[arg(long)]
    pub write: bool,
}

fn read_file(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

pub fn grant_params(holder: (&str, String), g: GrantArgs) -> Result<Value, CliError> {
    let mut p = json!({
        holder.0: holder.1,
        "permission": g.permission,
        "read": g.read,
        "write": g.write,
        "resources": g.resources,
        "ignore_missing": g.ignore_missing,
        "deny": g.deny,
    });
    if let Some(f) = g.resources_file {
        p["resources_csv"] = json!(read_file(&f)?);
    }
    Ok(p)
}

pub fn revoke_params(holder: (&str, String), r: RevokeArgs) -> Value {
    json!({ holder.0: holder.1, "permission": r.permission, "resources": r.resources, "id": r.id })
}

pub fn role(global: &Global, cmd: RoleCommand) -> Result<Value, CliError> {
    let (method, params) = match cmd {
        RoleCommand::Add { name, description } => ("role.create", json!({"name": name, "description": description})),
        RoleCommand::List => ("role.list", Value::Null),
        RoleCommand::Show { name } => ("role.show", json!({"name": name})),
        RoleCommand::Delete { name } => ("role.delete", json!({"name": name})),
        RoleCommand::Grant { role, grant } => ("role.grant", grant_params(("role", role), grant)?),
        RoleCommand::Revoke { role, revoke } => ("role.revoke", revoke_params(("role", role), revoke)),
    };
    Client::connect(global)?.call(method, params)
}

pub fn resource(global: &Global, cmd: ResourceCommand) -> Result<Value, CliError> {
    let (method, params) = match cmd {
        ResourceCommand::Add { id, kind, attributes } => {
            let mut attrs = serde_json::Map::new();
            for a in attributes {
                let (k, v) =
                    a.split_once('=').ok_or_else(|| CliError::Usage(format!("--attr {a:?}: use KEY=VALUE")))?;
                attrs.insert(k.to_string(), json!(v));
            }
            ("resource.add", json!({"id": id, "kind": kind, "attributes": attrs}))
        }
        ResourceCommand::List { kind, group } => ("resource.list", json!({"kind": kind, "group": group})),
        ResourceCommand::Delete { id } => ("resource.delete", json!({"id": id})),
        ResourceCommand::Import { file } => ("resource.import", json!({"csv": read_file(&file)?})),
    };
    Client::connect(global)?.call(method, params)
}

pub fn group(global: &Global, cmd: GroupCommand) -> Result<Value, CliError> {
    let (method, params) = match cmd {
        GroupCommand::Add { name, description } => ("group.create", json!({"name": name, "description": description})),
        GroupCommand::List => ("group.list", Value::Null),
        GroupCommand::MemberAdd { group, resources, ignore_missing } => {
            ("group.add", json!({"group": group, "resources": resources, "ignore_missing": ignore_missing}))
        }
        GroupCommand::MemberRemove { group, resources } => {
            ("group.remove", json!({"group": group, "resources": resources}))
        }
        GroupCommand::Import { group, file, ignore_missing } => {
            ("group.import", json!({"group": group, "csv": read_file(&file)?, "ignore_missing": ignore_missing}))
        }
        GroupCommand::Delete { name } => ("group.delete", json!({"name": name})),
    };
    Client::connect(global)?.call(method, params)
}

fn question(q: &Question) -> Value {
    json!({
        "subject": q.subject,
        "permission": q.permission,
        "resource": q.resource,
        "access": if q.write { "write" } else { "read" },
    })
}

/// `check`: prints the decision; Err(Denied) makes the exit code 1.
pub fn check(global: &Global, q: Question) -> Result<Value, CliError> {
    let v = Client::connect(global)?.call("authz.check", question(&q))?;
    if v["decision"] == "allow" { Ok(v) } else { Err(CliError::Denied(v)) }
}

pub fn explain(global: &Global, q: Question) -> Result<Value, CliError> {
    Client::connect(global)?.call("authz.explain", question(&q))
}

pub fn who_can(global: &Global, permission: String, resource: String, write: bool) -> Result<Value, CliError> {
    let access = if write { "write" } else { "read" };
    Client::connect(global)?
        .call("authz.who_can", json!({"permission": permission, "resource": resource, "access": access}))
}
