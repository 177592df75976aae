//! Policy as code (`policy.export`, `policy.plan`, `policy.apply`): the gateway's whole policy as
//! one document, the file a fleet tool (Ansible, Salt) pushes to every gateway. The CLI writes and
//! reads it as TOML (or as this JSON); the methods carry it as JSON.
//!
//! What the document never holds: a secret (no password, no password hash, no API key). Maps are
//! sorted by key and lists are sorted, so two exports of the same policy are the same text.

use super::Actor;
use super::events::{Event, EventDoc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The document format this gatewarden writes and reads.
pub const VERSION: u32 = 1;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_true(b: &bool) -> bool {
    *b
}

fn yes() -> bool {
    true
}

fn is_allow(e: &str) -> bool {
    e == "allow"
}

fn allow() -> String {
    "allow".into()
}

fn is_local(s: &str) -> bool {
    s == "local"
}

fn local() -> String {
    "local".into()
}

/// The gateway's policy. A section left out of a file is left alone by `policy.apply`, even with
/// `prune`; a section present (even empty) says exactly what that kind of entry should be.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    /// The document format: 1.
    pub version: u32,
    /// Plant settings (`settings.set`): key → any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<BTreeMap<String, Value>>,
    /// The resource inventory: resource id → its kind and attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<BTreeMap<String, ResourceEntry>>,
    /// Resource groups (`@name` in selectors): name → description and members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<BTreeMap<String, GroupEntry>>,
    /// Roles: name → description and grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<BTreeMap<String, RoleEntry>>,
    /// User accounts, without any secret: name → what the account is and holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<BTreeMap<String, UserEntry>>,
}

/// One resource of the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceEntry {
    /// The identifier kind: a lowercase word like `device`, `tag`, `serial`.
    pub kind: String,
    /// Attributes (at most 64; names lowercase words; values at most 1024 bytes).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
}

/// One resource group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    /// One line (at most 1024 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Resource ids of the inventory, sorted. Exactly these: members not listed are taken out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

/// One role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    /// One line (at most 1024 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// True for the built-in `supervisor` role (exported for the record; never changed or removed).
    #[serde(default, skip_serializing_if = "is_false")]
    pub builtin: bool,
    /// Exactly these grants: grants not listed are revoked. Sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantEntry>,
}

/// One grant, as it is stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantEntry {
    /// A permission name: dotted lowercase words (`tag.write`, `sessions.view`).
    pub permission: String,
    /// The resource selector: an id, `@group`, a glob (`line1/*`, `line1/**`) or `*` (everything).
    pub resource: String,
    /// `read`, `write` or `read,write`.
    pub access: String,
    /// `allow` (the default, left out) or `deny`.
    #[serde(default = "allow", skip_serializing_if = "is_allow")]
    pub effect: String,
}

/// One user account. No password: an account created by a policy file cannot log in until its
/// password is set (`user.set_password`) or it is reached with an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// One line (at most 128 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// False for a suspended account (default true, left out).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// When the account stops working (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// `local` (the default, left out) or `directory`: an account of the plant directory, exported
    /// for the record and left to the directory by `policy.apply`.
    #[serde(default = "local", skip_serializing_if = "is_local")]
    pub source: String,
    /// True for the built-in `admin` (exported for the record; never removed, disabled or given
    /// roles).
    #[serde(default, skip_serializing_if = "is_false")]
    pub builtin: bool,
    /// Exactly these roles, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Exactly these direct grants (not through a role), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantEntry>,
}

/// `policy.export`: the gateway's policy as one document (superuser only).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyExport {}

crate::method!("policy.export", PolicyExport => PolicyDoc);

/// `policy.plan`: what `policy.apply` would change, changing nothing (superuser only).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyPlanParams {
    /// The wanted policy.
    pub policy: PolicyDoc,
    /// Also remove the entries of the sections the document has that it does not list.
    #[serde(default, skip_serializing_if = "is_false")]
    pub prune: bool,
}

crate::method!("policy.plan", PolicyPlanParams => PolicyPlan);

/// `policy.apply`: makes the gateway's policy the document's, in one transaction (all or nothing),
/// idempotently (superuser only; write-class).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyApply {
    /// The wanted policy.
    pub policy: PolicyDoc,
    /// Also remove the entries of the sections the document has that it does not list.
    #[serde(default, skip_serializing_if = "is_false")]
    pub prune: bool,
}

crate::method!("policy.apply", PolicyApply => PolicyApplied);

/// What kind of entry a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A plant setting.
    Setting,
    /// A resource of the inventory.
    Resource,
    /// A resource group.
    Group,
    /// A role.
    Role,
    /// A user account.
    User,
}

impl EntryKind {
    /// The document's section of this kind.
    pub fn section(self) -> &'static str {
        match self {
            EntryKind::Setting => "settings",
            EntryKind::Resource => "resources",
            EntryKind::Group => "groups",
            EntryKind::Role => "roles",
            EntryKind::User => "users",
        }
    }
}

/// What happens to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// Created (`+`).
    Create,
    /// Changed (`~`).
    Change,
    /// Removed (`-`, only with `prune`).
    Remove,
}

/// One field of an entry that changes: a value (`old` → `new`), or a list (`added`, `removed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FieldChange {
    /// The field: `display_name`, `enabled`, `roles`, `grants`, `members`, `value` ...
    pub field: String,
    /// The value before (null: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The value after (null: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
    /// Items a list gains (grants written as `permission access on selector [deny]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    /// Items a list loses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
}

/// One entry created, changed or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlannedChange {
    /// Created, changed or removed.
    pub op: ChangeOp,
    /// The document's section the entry is in.
    pub kind: EntryKind,
    /// The entry's key in its section.
    pub name: String,
    /// What changes (for a creation: what the entry is made with; for a removal: what it takes
    /// with it, e.g. `held_by`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// Counts of a plan or an apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeCounts {
    /// Entries created.
    pub created: usize,
    /// Entries changed.
    pub changed: usize,
    /// Entries removed (only with `prune`).
    pub removed: usize,
    /// Entries on the gateway that the document's sections do not list, kept (`prune` removes them).
    pub unlisted: usize,
}

/// The result of `policy.plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyPlan {
    /// Nothing would change.
    pub noop: bool,
    #[serde(flatten)]
    pub counts: ChangeCounts,
    /// Every change, in the order apply makes them (creations and changes, then removals).
    pub changes: Vec<PlannedChange>,
    /// What the document holds that apply leaves alone, and why (directory accounts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The result of `policy.apply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyApplied {
    /// False when the gateway already held the policy: nothing was changed.
    pub applied: bool,
    #[serde(flatten)]
    pub counts: ChangeCounts,
    /// Client sessions ended (accounts disabled or removed).
    pub sessions_terminated: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Events

/// `policy.applied`: a policy document was applied (one event for the whole document; the
/// accounts disabled, enabled and removed, the settings changed and the roles and users whose
/// grants changed publish their own events besides, as the single changes do).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PolicyDocApplied {
    /// Entries created.
    pub created: usize,
    /// Entries changed.
    pub changed: usize,
    /// Entries removed.
    pub removed: usize,
    /// Who applied it.
    pub by: Actor,
}

impl Event for PolicyDocApplied {
    const NAME: &'static str = "policy.applied";
    const SUMMARY: &'static str = "a policy document was applied (`policy.apply`): one event with the counts";
}

/// The events of this family.
pub const EVENTS: &[EventDoc] = &[super::events::doc::<PolicyDocApplied>()];
