//! The document on its own, before the database is looked at: every name, text and grant checked
//! with the rules of the single methods (`user.create`, `role.grant`, `resource.add`,
//! `settings.set`...), every section and list bounded, each problem named by its place in the
//! document (`roles.operator.grants[2].access: unknown "rw" ...`).

use crate::accounts;
use crate::authz::{Selector, is_valid_group_name, validate_resource_id};
use crate::contract::policyfile::{GrantEntry, PolicyDoc, VERSION};
use crate::csvfile;
use crate::protocol::ApiError;
use crate::text::{self, Lines};
use std::collections::HashMap;
use std::fmt::Display;

/// Most settings a document may hold.
pub const MAX_SETTINGS: usize = 10_000;
/// Most resources a document may hold (as a CSV inventory may: `csvfile::MAX_ROWS`).
pub const MAX_RESOURCES: usize = csvfile::MAX_ROWS;
/// Most resource groups.
pub const MAX_GROUPS: usize = 10_000;
/// Most members of one group.
pub const MAX_MEMBERS: usize = csvfile::MAX_ROWS;
/// Most roles.
pub const MAX_ROLES: usize = 10_000;
/// Most users (as `user.import` may create: `csvfile::MAX_ROWS`).
pub const MAX_USERS: usize = csvfile::MAX_ROWS;
/// Most grants of one role or user.
pub const MAX_GRANTS: usize = 10_000;
/// Most roles of one user (as a `user.import` row).
pub const MAX_USER_ROLES: usize = 64;

/// The problems found, each with its place in the document; the first [`csvfile::MAX_REPORTED`]
/// are kept, the others counted.
#[derive(Debug, Default)]
pub struct Problems {
    shown: Vec<String>,
    total: usize,
}

impl Problems {
    pub fn push(&mut self, at: impl Display, message: impl Display) {
        self.total += 1;
        if self.shown.len() < csvfile::MAX_REPORTED {
            self.shown.push(format!("{at}: {message}"));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// `bad_request` listing the problems (the first few in the message, up to 20 in `errors`).
    pub fn into_error(self) -> ApiError {
        let first: Vec<&str> = self.shown.iter().take(5).map(String::as_str).collect();
        let more = self.total - first.len();
        let tail = if more > 0 { format!("; and {more} more") } else { String::new() };
        let s = if self.total == 1 { "" } else { "s" };
        ApiError::bad_request(format!(
            "the policy document has {} problem{s}, nothing changed: {}{tail}",
            self.total,
            first.join("; ")
        ))
        .with("errors", serde_json::json!(self.shown))
        .with("more_errors", serde_json::json!(self.total - self.shown.len()))
    }
}

/// A key as a path writes it: bare when it is a plain word, quoted otherwise (`resources."line1/p1"`),
/// cut when it is too long to be any valid key.
pub fn key(k: &str) -> String {
    let plain = !k.is_empty() && k.len() <= 64 && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c));
    if plain { k.to_string() } else { text::shown(k, 64) }
}

/// A name of at most 64 bytes checked by `check`, without repeating a long one back whole.
fn name_ok(what: &str, name: &str, check: impl FnOnce(&str) -> Result<(), String>) -> Result<(), String> {
    if name.len() > 64 {
        return Err(format!("{what} is {} bytes long; at most 64", name.len()));
    }
    check(name)
}

/// Checks the name of entry `at` of `section` (a `what` name: role or user), and that no other entry
/// has it without regard to case; false when the name itself is bad (the entry is not looked at further).
fn entry_named<'a>(
    p: &mut Problems,
    at: &str,
    section: &str,
    what: &str,
    name: &'a str,
    seen: &mut HashMap<String, &'a str>,
) -> bool {
    let label = format!("{what} name");
    if let Err(e) = name_ok(&format!("the {label}"), name, |n| api_msg(accounts::validate_name(&label, n))) {
        p.push(at, e);
        return false;
    }
    if let Some(first) = seen.insert(name.to_ascii_lowercase(), name) {
        p.push(at, format!("the same name as {section}.{} ({what} names compare without case)", key(first)));
    }
    true
}

fn api_msg(r: Result<(), ApiError>) -> Result<(), String> {
    r.map_err(|e| e.message)
}

/// Checks a whole document; every problem goes to `p`.
pub fn document(doc: &PolicyDoc, p: &mut Problems) {
    if doc.version != VERSION {
        p.push("version", format!("{} is not a version this gatewarden reads (it reads {VERSION})", doc.version));
    }
    let bounded = |p: &mut Problems, section: &str, n: usize, max: usize| {
        if n > max {
            p.push(section, format!("{n} entries; at most {max}"));
            false
        } else {
            true
        }
    };
    if let Some(settings) = &doc.settings
        && bounded(p, "settings", settings.len(), MAX_SETTINGS)
    {
        for (k, v) in settings {
            let at = format!("settings.{}", key(k));
            if let Err(e) = crate::api::settings::validate_key(k) {
                p.push(&at, e.message);
                continue;
            }
            let len = v.to_string().len();
            if len > crate::api::settings::MAX_VALUE_BYTES {
                p.push(&at, format!("the value is {len} bytes as JSON; at most 16 KiB"));
            }
            if has_toml_date(v) {
                p.push(&at, "a TOML date or time is not a setting value: write it as a quoted string");
            }
        }
    }
    if let Some(resources) = &doc.resources
        && bounded(p, "resources", resources.len(), MAX_RESOURCES)
    {
        for (id, r) in resources {
            let at = format!("resources.{}", key(id));
            if let Err(e) = validate_resource_id(id) {
                p.push(&at, e);
                continue;
            }
            if !csvfile::is_valid_column_name(&r.kind) {
                p.push(
                    format!("{at}.kind"),
                    format!("{} is not valid: a lowercase word like device", text::shown(&r.kind, 32)),
                );
            }
            if let Err(e) = crate::api::resource::check_attributes(&r.attributes) {
                p.push(format!("{at}.attributes"), e.message);
            }
            if r.attributes.values().any(has_toml_date) {
                p.push(format!("{at}.attributes"), "a TOML date or time is not an attribute value: quote it");
            }
        }
    }
    if let Some(groups) = &doc.groups
        && bounded(p, "groups", groups.len(), MAX_GROUPS)
    {
        for (name, g) in groups {
            let at = format!("groups.{}", key(name));
            if !is_valid_group_name(name) || name.len() > 64 {
                p.push(
                    &at,
                    "not a valid group name: 1-64 letters, digits, '.', '_' and '-', starting with a letter or digit",
                );
                continue;
            }
            description(p, &at, g.description.as_deref());
            if g.members.len() > MAX_MEMBERS {
                p.push(format!("{at}.members"), format!("{} members; at most {MAX_MEMBERS}", g.members.len()));
                continue;
            }
            let mut seen = HashMap::new();
            for (i, m) in g.members.iter().enumerate() {
                if let Err(e) = validate_resource_id(m) {
                    p.push(format!("{at}.members[{i}]"), e);
                } else if let Some(first) = seen.insert(m.as_str(), i) {
                    p.push(format!("{at}.members[{i}]"), format!("{:?} is already members[{first}]", m));
                }
            }
        }
    }
    if let Some(roles) = &doc.roles
        && bounded(p, "roles", roles.len(), MAX_ROLES)
    {
        let mut seen: HashMap<String, &str> = HashMap::new();
        for (name, r) in roles {
            let at = format!("roles.{}", key(name));
            if !entry_named(p, &at, "roles", "role", name, &mut seen) {
                continue;
            }
            description(p, &at, r.description.as_deref());
            grants(p, &at, &r.grants);
        }
    }
    if let Some(users) = &doc.users
        && bounded(p, "users", users.len(), MAX_USERS)
    {
        let mut seen: HashMap<String, &str> = HashMap::new();
        for (name, u) in users {
            let at = format!("users.{}", key(name));
            if !entry_named(p, &at, "users", "user", name, &mut seen) {
                continue;
            }
            if let Err(e) = crate::api::user::validate_display_name(u.display_name.as_deref()) {
                p.push(format!("{at}.display_name"), e.message);
            }
            if let Err(e) = crate::api::user::check_date("expires_at", u.expires_at) {
                p.push(format!("{at}.expires_at"), e.message);
            }
            if u.source != "local" && u.source != "directory" {
                p.push(format!("{at}.source"), format!("unknown {}: local or directory", text::shown(&u.source, 32)));
            }
            if u.roles.len() > MAX_USER_ROLES {
                p.push(format!("{at}.roles"), format!("{} roles; at most {MAX_USER_ROLES}", u.roles.len()));
            } else {
                let mut seen_roles = HashMap::new();
                for (i, r) in u.roles.iter().enumerate() {
                    let rat = format!("{at}.roles[{i}]");
                    if let Err(e) = name_ok("the role name", r, |n| api_msg(accounts::validate_name("role name", n))) {
                        p.push(&rat, e);
                    } else if let Some(first) = seen_roles.insert(r.to_ascii_lowercase(), i) {
                        p.push(&rat, format!("{r:?} is already roles[{first}]"));
                    }
                }
            }
            grants(p, &at, &u.grants);
        }
    }
}

fn description(p: &mut Problems, at: &str, d: Option<&str>) {
    if let Err(e) = text::clean("description", d.map(str::to_string), text::MAX_DESCRIPTION, Lines::One) {
        p.push(format!("{at}.description"), e.message);
    }
}

/// The accesses of a grant's `access` text: (read, write).
pub fn access(text: &str) -> Option<(bool, bool)> {
    match text {
        "read" => Some((true, false)),
        "write" => Some((false, true)),
        "read,write" => Some((true, true)),
        _ => None,
    }
}

fn grants(p: &mut Problems, at: &str, list: &[GrantEntry]) {
    if list.len() > MAX_GRANTS {
        p.push(format!("{at}.grants"), format!("{} grants; at most {MAX_GRANTS}", list.len()));
        return;
    }
    let mut seen: HashMap<&GrantEntry, usize> = HashMap::new();
    for (i, g) in list.iter().enumerate() {
        let gat = format!("{at}.grants[{i}]");
        let before = p.total;
        if let Err(e) = crate::api::role::validate_permission(&g.permission) {
            let shown = text::shown(&g.permission, 64);
            p.push(format!("{gat}.permission"), e.message.replace(&format!("{:?}", g.permission), &shown));
        }
        if access(&g.access).is_none() {
            p.push(
                format!("{gat}.access"),
                format!("unknown {}: read, write or read,write", text::shown(&g.access, 32)),
            );
        }
        if g.effect != "allow" && g.effect != "deny" {
            p.push(format!("{gat}.effect"), format!("unknown {}: allow or deny", text::shown(&g.effect, 32)));
        }
        match Selector::parse(&g.resource) {
            Err(e) => p.push(format!("{gat}.resource"), e),
            Ok(s) if s.as_text() != g.resource => {
                p.push(format!("{gat}.resource"), format!("write it as {:?}", s.as_text()));
            }
            Ok(_) => {}
        }
        if p.total == before
            && let Some(first) = seen.insert(g, i)
        {
            p.push(&gat, format!("the same grant as grants[{first}]"));
        }
    }
}

/// Whether a value holds a TOML date or time (the TOML reader hands them over as a private table).
fn has_toml_date(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(m) => {
            m.keys().any(|k| k.starts_with("$__toml_private")) || m.values().any(has_toml_date)
        }
        serde_json::Value::Array(a) => a.iter().any(has_toml_date),
        _ => false,
    }
}
