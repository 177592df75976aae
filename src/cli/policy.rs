//! `policy export|plan|apply`: policy as code. The document is TOML on disk (JSON is read too, and
//! written with `--json`); the daemon gets it as the contract's [`PolicyDoc`] in one request, so
//! that it is applied in one transaction. See docs/policy.md.

use super::{CliError, Client, Global, output::safe};
use crate::contract::policyfile::{
    ChangeOp, EntryKind, PolicyApplied, PolicyApply, PolicyDoc, PolicyExport, PolicyPlan, PolicyPlanParams,
};
use clap::Subcommand;
use serde_json::Value;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The largest document the CLI reads: the most a request may be (`daemon.max_request_bytes` is at
/// most 16 MiB), so a bigger file is refused before it is read.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Print the gateway's policy as TOML (with --json, as JSON): settings, resources, groups, roles
    /// with their grants, users without any secret. Sorted, so two exports diff cleanly
    Export,
    /// Show what applying FILE (TOML or JSON) would change; changes nothing
    Plan {
        file: PathBuf,
        /// Also show the removal of what FILE's sections do not list
        #[arg(long)]
        prune: bool,
    },
    /// Make the gateway's policy FILE's (TOML or JSON), in one transaction: all or nothing, and a
    /// second apply changes nothing. Without --prune nothing is removed
    Apply {
        file: PathBuf,
        /// Also remove what FILE's sections do not list (never the built-in admin and supervisor,
        /// never directory accounts)
        #[arg(long)]
        prune: bool,
    },
}

pub fn policy(global: &Global, cmd: PolicyCommand) -> Result<Option<Value>, CliError> {
    match cmd {
        PolicyCommand::Export => {
            let doc = Client::connect(global)?.send_typed(&PolicyExport {})?;
            if global.json {
                return serde_json::to_value(doc).map(Some).map_err(|e| CliError::Failed(e.to_string()));
            }
            print!("{}", to_toml(&doc)?);
            Ok(None)
        }
        PolicyCommand::Plan { file, prune } => {
            let policy = read_doc(&file)?;
            let plan = Client::connect(global)?.send_typed(&PolicyPlanParams { policy, prune })?;
            if global.json {
                return serde_json::to_value(plan).map(Some).map_err(|e| CliError::Failed(e.to_string()));
            }
            print!("{}", render_plan(&plan, prune));
            Ok(None)
        }
        PolicyCommand::Apply { file, prune } => {
            let policy = read_doc(&file)?;
            let applied = apply(global, &file, policy, prune)?;
            if global.json {
                return serde_json::to_value(applied).map(Some).map_err(|e| CliError::Failed(e.to_string()));
            }
            print!("{}", render_applied(&applied));
            Ok(None)
        }
    }
}

/// Reads a document: JSON when it starts with `{` (a TOML document cannot), else TOML. Errors name
/// the file and, from the parser, the line and the key.
pub fn read_doc(path: &Path) -> Result<PolicyDoc, CliError> {
    let usage = |e: String| CliError::Usage(format!("{}: {e}", path.display()));
    let len = std::fs::metadata(path).map_err(|e| usage(e.to_string()))?.len();
    if len > MAX_FILE_BYTES {
        return Err(usage(format!("{len} bytes; a policy document may be at most {MAX_FILE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| usage(e.to_string()))?;
    if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| usage(e.to_string()))
    } else {
        toml::from_str(&text).map_err(|e| usage(toml_error(&text, &e)))
    }
}

/// A TOML error on one line: where (line, column, the table in force) and what.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else { return message };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| format!(" in {l}"))
        .unwrap_or_default();
    format!("line {line}, column {column}{table}: {message}")
}

/// A document as TOML. TOML has no null: a setting or an attribute holding one is named, and the
/// JSON form (`--json`, read back by plan and apply) offered instead.
pub fn to_toml(doc: &PolicyDoc) -> Result<String, CliError> {
    fn has_null(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Array(a) => a.iter().any(has_null),
            Value::Object(m) => m.values().any(has_null),
            _ => false,
        }
    }
    let null_at =
        doc.settings.iter().flatten().find(|(_, v)| has_null(v)).map(|(k, _)| format!("settings.{k:?}")).or_else(
            || {
                doc.resources
                    .iter()
                    .flatten()
                    .find(|(_, r)| r.attributes.values().any(has_null))
                    .map(|(id, _)| format!("resources.{id:?}.attributes"))
            },
        );
    if let Some(at) = null_at {
        return Err(CliError::Failed(format!(
            "{at} holds a null, which TOML cannot write: export with --json instead (plan and apply read JSON too)"
        )));
    }
    toml::to_string(doc).map_err(|e| CliError::Failed(format!("cannot write the policy as TOML: {e}")))
}

/// `policy apply`: one request; on a terminal (without --json) a spinner while it runs and the time
/// it took, on stderr.
fn apply(global: &Global, file: &Path, policy: PolicyDoc, prune: bool) -> Result<PolicyApplied, CliError> {
    let entries = [
        policy.settings.as_ref().map_or(0, |s| s.len()),
        policy.resources.as_ref().map_or(0, |s| s.len()),
        policy.groups.as_ref().map_or(0, |s| s.len()),
        policy.roles.as_ref().map_or(0, |s| s.len()),
        policy.users.as_ref().map_or(0, |s| s.len()),
    ]
    .iter()
    .sum::<usize>();
    let progress = (!global.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("{}: {entries} entries checked and applied in one transaction", file.display()));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let started = Instant::now();
    let result = Client::connect(global).and_then(|mut c| c.send_typed(&PolicyApply { policy, prune }));
    if let Some(bar) = progress {
        bar.finish_and_clear();
        match &result {
            Ok(_) => eprintln!("{} applied in {:.1} s", file.display(), started.elapsed().as_secs_f64()),
            Err(_) => eprintln!("nothing applied from {} (a document is applied whole or not at all)", file.display()),
        }
    }
    result.map_err(|e| match e {
        CliError::Failed(m) if m.contains("connection") => CliError::Failed(format!(
            "{m}: a document larger than the daemon's daemon.max_request_bytes (1 MiB by default, 16 MiB at \
             most) is refused whole: raise it in the daemon's config and reload"
        )),
        other => other,
    })
}

fn sign(op: ChangeOp) -> &'static str {
    match op {
        ChangeOp::Create => "+",
        ChangeOp::Change => "~",
        ChangeOp::Remove => "-",
    }
}

fn kind_word(k: EntryKind) -> &'static str {
    match k {
        EntryKind::Setting => "setting",
        EntryKind::Resource => "resource",
        EntryKind::Group => "group",
        EntryKind::Role => "role",
        EntryKind::User => "user",
    }
}

fn shown(v: &Option<Value>) -> String {
    match v {
        None | Some(Value::Null) => "(none)".into(),
        Some(v) => safe(&v.to_string()).into_owned(),
    }
}

/// A plan as people read it: `+` created, `~` changed (old → new), `-` removed, then the counts.
pub fn render_plan(plan: &PolicyPlan, prune: bool) -> String {
    let mut out = String::new();
    for c in &plan.changes {
        out.push_str(&format!("{} {} {}\n", sign(c.op), kind_word(c.kind), safe(&c.name)));
        for f in &c.fields {
            if f.added.is_empty() && f.removed.is_empty() {
                match c.op {
                    ChangeOp::Create => out.push_str(&format!("    {}: {}\n", f.field, shown(&f.new))),
                    _ => out.push_str(&format!("    {}: {} → {}\n", f.field, shown(&f.old), shown(&f.new))),
                }
            }
            let item = f.field.strip_suffix('s').unwrap_or(&f.field);
            for a in &f.added {
                out.push_str(&format!("    + {item} {}\n", safe(a)));
            }
            for r in &f.removed {
                out.push_str(&format!("    - {item} {}\n", safe(r)));
            }
        }
    }
    for n in &plan.notes {
        out.push_str(&format!("note: {}\n", safe(n)));
    }
    let c = plan.counts;
    if plan.noop {
        out.push_str("No changes: the gateway already holds this policy.\n");
    } else {
        out.push_str(&format!("Plan: {} to create, {} to change, {} to remove.\n", c.created, c.changed, c.removed));
    }
    if c.unlisted > 0 && !prune {
        out.push_str(&format!(
            "{} entr{} on the gateway not in the document's sections, kept (--prune would remove them).\n",
            c.unlisted,
            if c.unlisted == 1 { "y" } else { "ies" }
        ));
    }
    out
}

/// What an apply did, in a line or two.
pub fn render_applied(a: &PolicyApplied) -> String {
    let c = a.counts;
    let mut out = if a.applied {
        format!(
            "Applied: {} created, {} changed, {} removed; {} session(s) ended.\n",
            c.created, c.changed, c.removed, a.sessions_terminated
        )
    } else {
        "Nothing to change: the gateway already holds this policy.\n".to_string()
    };
    if c.unlisted > 0 {
        out.push_str(&format!(
            "{} entries on the gateway not in the document were kept (--prune removes them).\n",
            c.unlisted
        ));
    }
    for n in &a.notes {
        out.push_str(&format!("note: {}\n", safe(n)));
    }
    out
}
