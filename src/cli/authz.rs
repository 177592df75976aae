//! CLI for authorization: `role ...`, `resource ...`, `group ...`, `check`, `check-many`, `allowed`,
//! `explain`, `who-can`. `check` exits 0 when allowed and 1 when denied, so scripts can test it like
//! `grep -q`; `check-many` exits 0 only when every question is allowed.

use super::{CliError, Client, Global};
use crate::contract::Method;
use crate::contract::policy::{
    Access, Answer, AuthzAllowed, AuthzCheck, AuthzCheckMany, AuthzExplain, AuthzWhoCan, Checked, GroupAdd,
    GroupCreate, GroupDelete, GroupImport, GroupList, GroupRemove, ResourceAdd, ResourceDelete, ResourceImport,
    ResourceList, RoleCreate, RoleDelete, RoleGrant, RoleList, RoleRevoke, RoleShow,
};
use clap::{Args, Subcommand};
use serde_json::Value;
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
    /// Create roles (without grants) from a CSV file (header: name, and optionally description), all
    /// or nothing, in one request
    Import { file: PathBuf },
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

#[derive(Args, Debug, Clone)]
pub struct AllowedArgs {
    pub permission: String,
    /// The resource ids to ask about (at most 1000)
    #[arg(required = true)]
    pub resources: Vec<String>,
    /// Ask about write access (default: read)
    #[arg(long)]
    pub write: bool,
    /// Ask about this user (or key:NAME) instead of yourself (needs users.view)
    #[arg(long)]
    pub subject: Option<String>,
}

fn read_file(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

/// Who a grant or a revoke is for.
#[derive(Debug, Clone)]
pub enum Holder {
    Role(String),
    User(String),
}

impl Holder {
    /// `(role, user)`, as `role.grant` and `role.revoke` take them.
    fn split(self) -> (Option<String>, Option<String>) {
        match self {
            Holder::Role(r) => (Some(r), None),
            Holder::User(u) => (None, Some(u)),
        }
    }
}

/// The `role.grant` request of `role grant` and `user grant`.
pub fn grant_request(holder: Holder, g: GrantArgs) -> Result<RoleGrant, CliError> {
    let (role, user) = holder.split();
    let resources_csv = match g.resources_file {
        Some(f) => Some(read_file(&f)?),
        None => None,
    };
    Ok(RoleGrant {
        role,
        user,
        permission: g.permission,
        read: g.read,
        write: g.write,
        resources: g.resources,
        resources_csv,
        ignore_missing: g.ignore_missing,
        deny: g.deny,
    })
}

/// The `role.revoke` request of `role revoke` and `user revoke`.
pub fn revoke_request(holder: Holder, r: RevokeArgs) -> RoleRevoke {
    let (role, user) = holder.split();
    RoleRevoke { role, user, id: r.id, permission: r.permission, resources: r.resources }
}

pub fn role(global: &Global, cmd: RoleCommand) -> Result<Value, CliError> {
    match cmd {
        RoleCommand::Add { name, description } => Client::connect(global)?.send(&RoleCreate { name, description }),
        RoleCommand::Import { file } => {
            super::accounts::import(global, &file, "roles", |csv| crate::contract::policy::RoleImport { csv })
        }
        RoleCommand::List => Client::connect(global)?.send(&RoleList {}),
        RoleCommand::Show { name } => Client::connect(global)?.send(&RoleShow { name }),
        RoleCommand::Delete { name } => Client::connect(global)?.send(&RoleDelete { name }),
        RoleCommand::Grant { role, grant } => {
            let p = grant_request(Holder::Role(role), grant)?;
            Client::connect(global)?.send(&p)
        }
        RoleCommand::Revoke { role, revoke } => {
            Client::connect(global)?.send(&revoke_request(Holder::Role(role), revoke))
        }
    }
}

pub fn resource(global: &Global, cmd: ResourceCommand) -> Result<Value, CliError> {
    match cmd {
        ResourceCommand::Add { id, kind, attributes: pairs } => {
            let mut attributes = serde_json::Map::new();
            for a in pairs {
                let (k, v) =
                    a.split_once('=').ok_or_else(|| CliError::Usage(format!("--attr {a:?}: use KEY=VALUE")))?;
                attributes.insert(k.to_string(), Value::String(v.to_string()));
            }
            Client::connect(global)?.send(&ResourceAdd { id, kind, attributes })
        }
        ResourceCommand::List { kind, group } => Client::connect(global)?.send(&ResourceList { kind, group }),
        ResourceCommand::Delete { id } => Client::connect(global)?.send(&ResourceDelete { id }),
        ResourceCommand::Import { file } => {
            let csv = read_file(&file)?;
            Client::connect(global)?.send(&ResourceImport { csv })
        }
    }
}

pub fn group(global: &Global, cmd: GroupCommand) -> Result<Value, CliError> {
    match cmd {
        GroupCommand::Add { name, description } => Client::connect(global)?.send(&GroupCreate { name, description }),
        GroupCommand::List => Client::connect(global)?.send(&GroupList {}),
        GroupCommand::MemberAdd { group, resources, ignore_missing } => {
            Client::connect(global)?.send(&GroupAdd { group, resources, csv: None, ignore_missing })
        }
        GroupCommand::MemberRemove { group, resources } => {
            Client::connect(global)?.send(&GroupRemove { group, resources })
        }
        GroupCommand::Import { group, file, ignore_missing } => {
            let csv = read_file(&file)?;
            Client::connect(global)?.send(&GroupImport { group, csv, ignore_missing })
        }
        GroupCommand::Delete { name } => Client::connect(global)?.send(&GroupDelete { name }),
    }
}

fn access(write: bool) -> Access {
    if write { Access::Write } else { Access::Read }
}

/// The policy question of `check` and `explain`.
fn ask(q: Question) -> crate::contract::policy::Question {
    crate::contract::policy::Question {
        subject: Some(q.subject),
        permission: q.permission,
        resource: q.resource,
        access: access(q.write),
    }
}

/// `check`: prints the decision; Err(Denied) makes the exit code 1.
pub fn check(global: &Global, q: Question) -> Result<Value, CliError> {
    let p = AuthzCheck::from(ask(q));
    let v = Client::connect(global)?.send(&p)?;
    let answer: Answer = serde_json::from_value(v.clone())
        .map_err(|e| CliError::Failed(format!("unexpected reply to {}: {e}", AuthzCheck::NAME)))?;
    if answer.decision.is_allowed() { Ok(v) } else { Err(CliError::Denied(v)) }
}

pub fn explain(global: &Global, q: Question) -> Result<Value, CliError> {
    let p = AuthzExplain(ask(q));
    Client::connect(global)?.send(&p)
}

pub fn who_can(global: &Global, permission: String, resource: String, write: bool) -> Result<Value, CliError> {
    Client::connect(global)?.send(&AuthzWhoCan { permission, resource, access: access(write) })
}

/// The questions of a `check-many` file: a JSON array, or one JSON object a line (blank lines
/// skipped); a bad line is named by its number.
fn questions(text: &str) -> Result<Vec<crate::contract::policy::Question>, CliError> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text).map_err(|e| CliError::Usage(format!("the questions: {e}")));
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(line).map_err(|e| CliError::Usage(format!("line {}: {e}", i + 1)))?);
    }
    Ok(out)
}

/// `check-many FILE`: every question in one `authz.check_many`; Err(Denied) (exit 1) unless every
/// answer is an allow.
pub fn check_many(global: &Global, file: &Path) -> Result<Value, CliError> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| CliError::Usage(format!("stdin: {e}")))?
    } else {
        read_file(file)?
    };
    let p = AuthzCheckMany { checks: questions(&text)? };
    let v = Client::connect(global)?.send(&p)?;
    let answers: <AuthzCheckMany as Method>::Result = serde_json::from_value(v.clone())
        .map_err(|e| CliError::Failed(format!("unexpected reply to {}: {e}", AuthzCheckMany::NAME)))?;
    let all = answers.results.iter().all(|r| matches!(r, Checked::Answer(a) if a.decision.is_allowed()));
    if all { Ok(v) } else { Err(CliError::Denied(v)) }
}

/// `allowed`: with `--json` the result; for a person the allowed ids one a line, so the output
/// feeds `grep` and `wc -l`.
pub fn allowed(global: &Global, a: AllowedArgs) -> Result<Option<Value>, CliError> {
    let p =
        AuthzAllowed { subject: a.subject, permission: a.permission, access: access(a.write), resources: a.resources };
    let v = Client::connect(global)?.send(&p)?;
    if global.json {
        return Ok(Some(v));
    }
    let ids: Vec<&str> = v["allowed"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if ids.is_empty() {
        println!("(none)");
    }
    for id in ids {
        println!("{}", super::output::safe(id));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_come_as_json_lines_or_an_array() {
        let lines = "{\"permission\": \"tag.read\", \"resource\": \"line1/p1\"}\n\n\
                     {\"subject\": \"op\", \"permission\": \"tag.write\", \"resource\": \"line1/p2\", \"access\": \"write\"}\n";
        let q = questions(lines).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!((q[1].subject.as_deref(), q[1].access), (Some("op"), Access::Write));
        let array = questions(" [{\"permission\": \"tag.read\", \"resource\": \"line1/p1\"}]").unwrap();
        assert_eq!(array.len(), 1);
        let bad = questions("{\"permission\": \"tag.read\", \"resource\": \"a\"}\n{\"permision\": 1}\n");
        assert!(
            matches!(bad, Err(CliError::Usage(m)) if m.starts_with("line 2:")),
            "unknown fields are refused by line"
        );
    }
}
