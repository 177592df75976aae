//! The policy methods' params and results, and their events: roles and their grants
//! (`role.*`, `user.copy_roles`), the plant's inventory (`resource.*`) and resource groups
//! (`group.*`), and the questions asked of the policy (`authz.*`), whose answer is one
//! [`Decision`] whatever decided it: a grant, the superuser flag or the supervisor lock.

use super::Actor;
use super::events::{Event, EventDoc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde::{Deserializer, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

fn is_false(b: &bool) -> bool {
    !*b
}

// ---------------------------------------------------------------------------------------------
// Words of the policy model

/// The kind of access a question or a grant is about. Write does not imply read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Reading (the default of a question).
    #[default]
    Read = 0,
    /// Changing.
    Write = 1,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a grant does when it matches. Deny wins over allow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Allows, unless a deny matches too.
    #[default]
    Allow,
    /// Denies, whatever allows match.
    Deny,
}

impl Effect {
    /// The text kept in the database and shown on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

/// The accesses a grant covers, as a person reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GrantAccess {
    /// Read and write.
    #[serde(rename = "read,write")]
    ReadWrite,
    /// Read only.
    #[serde(rename = "read")]
    Read,
    /// Write only.
    #[serde(rename = "write")]
    Write,
}

impl GrantAccess {
    /// From the two flags a grant carries (a grant covers at least one).
    pub fn of(read: bool, write: bool) -> GrantAccess {
        match (read, write) {
            (true, true) => GrantAccess::ReadWrite,
            (true, false) => GrantAccess::Read,
            _ => GrantAccess::Write,
        }
    }
}

/// One grant, as `role.show` and `user.show` list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GrantView {
    /// The grant's id (what `role.revoke` takes as `id`).
    pub id: i64,
    /// The permission it grants (or denies).
    pub permission: String,
    /// The accesses it covers.
    pub access: GrantAccess,
    /// The resource selector: an id, `@group`, a glob (`line1/*`, `line1/**`) or `*`.
    pub resource: String,
    /// Allow or deny.
    pub effect: Effect,
}

// ---------------------------------------------------------------------------------------------
// role.*

/// `role.create`: a new role, without grants.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleCreate {
    /// The role's name: 1-64 letters, digits, `.`, `_`, `-`, starting with a letter or digit.
    pub name: String,
    /// One line saying what the role is for (at most 1024 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

crate::method!("role.create", RoleCreate => RoleView);

/// `role.import`: creates roles (without grants) from a CSV file, all or nothing: one bad row and
/// nothing changes, every bad row reported with its line.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleImport {
    /// The file (CSV text): a header row naming the columns `name` and, optionally, `description`;
    /// one new role a row, at most 100000 rows, within `daemon.max_request_bytes`.
    pub csv: String,
}

crate::method!("role.import", RoleImport => RolesImported);

/// What `role.import` did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RolesImported {
    /// Roles created.
    pub created: usize,
}

/// `role.list`: every role with its counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleList {}

crate::method!("role.list", RoleList => Vec<RoleSummary>);

/// One role in `role.list`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RoleSummary {
    /// The role's name.
    pub name: String,
    /// What the role is for.
    pub description: Option<String>,
    /// A built-in role (`supervisor`): it cannot be changed or deleted.
    pub builtin: bool,
    /// How many grants the role holds.
    pub grants: i64,
    /// How many users hold the role.
    pub users: i64,
}

/// `role.show`: one role with its grants, users and API keys.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleShow {
    /// The role's name.
    pub name: String,
}

crate::method!("role.show", RoleShow => RoleView);

/// A role with everything that hangs on it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RoleView {
    /// The role's id.
    pub id: i64,
    /// The role's name.
    pub name: String,
    /// What the role is for.
    pub description: Option<String>,
    /// A built-in role (`supervisor`): it cannot be changed or deleted.
    pub builtin: bool,
    /// Its grants, oldest first.
    pub grants: Vec<GrantView>,
    /// The users holding it, by name.
    pub users: Vec<String>,
    /// The API keys holding it, by name.
    pub keys: Vec<String>,
}

/// `role.delete`: deletes a role, taking its grants from everyone holding it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDelete {
    /// The role's name.
    pub name: String,
}

crate::method!("role.delete", RoleDelete => Deleted);

/// What a delete removed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    /// The name (or id) of what is gone.
    pub deleted: String,
}

/// `role.grant`: grants a permission to a role, or directly to a user (name exactly one of them).
/// With neither `read` nor `write` the grant covers both.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleGrant {
    /// The role that gets the grant (not a built-in one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The user that gets the grant directly (not the built-in admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The permission: dotted lowercase words (`tag.write`, `sessions.view`), at most 64 bytes.
    pub permission: String,
    /// Grant read access.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read: bool,
    /// Grant write access.
    #[serde(default, skip_serializing_if = "is_false")]
    pub write: bool,
    /// Resource selectors: an id, `@group`, a glob (`line1/*`, `line1/**`) or `*`. One grant each;
    /// none (and no `resources_csv`): `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// A resource list (CSV text, header: the identifier kind) of existing resources to grant on,
    /// in addition to `resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_csv: Option<String>,
    /// With `resources_csv`: skip resources not in the inventory instead of refusing the list.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_missing: bool,
    /// An explicit deny, which beats every allow.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deny: bool,
}

crate::method!("role.grant", RoleGrant => Granted);

/// What `role.grant` added.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Granted {
    /// Who holds the grants: `role:NAME` or `user:NAME`.
    pub target: String,
    /// The ids of the grants added (a grant the holder already had is not added again).
    pub grants: Vec<i64>,
    /// List rows skipped by `ignore_missing`.
    pub skipped: Vec<Skipped>,
}

/// A resource skipped by `ignore_missing`: not in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Skipped {
    /// The line of the CSV list it was on (absent when it was not from a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The resource id.
    pub id: String,
}

/// `role.revoke`: takes grants from a role or a user (name exactly one of them): one grant by `id`,
/// or every grant of `permission` (only those on `resources`, when given).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRevoke {
    /// The role that holds the grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The user that holds the grants directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// One grant, by its id (see `role.show`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Every grant of this permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
    /// With `permission`: only the grants on these selectors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

crate::method!("role.revoke", RoleRevoke => Revoked);

/// What `role.revoke` removed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Revoked {
    /// Who held the grants: `role:NAME` or `user:NAME`.
    pub target: String,
    /// How many grants were removed (at least one: none is `not_found`).
    pub revoked: usize,
}

/// `user.copy_roles`: gives `to` the roles of `from`, in addition (default) or instead.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCopyRoles {
    /// The user whose roles are copied.
    pub from: String,
    /// The user who gets them (not the built-in admin).
    pub to: String,
    /// Replace `to`'s roles instead of adding to them.
    #[serde(default, skip_serializing_if = "is_false")]
    pub replace: bool,
}

crate::method!("user.copy_roles", UserCopyRoles => RolesCopied);

/// The roles a user holds after `user.copy_roles`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RolesCopied {
    /// The user who got the roles.
    pub user: String,
    /// Every role the user now holds, by name.
    pub roles: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// resource.*

/// `resource.add`: one resource into the inventory.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceAdd {
    /// The resource id: what grants and checks name (`line1/press3`, `tag@plc1`); at most 256 bytes,
    /// no spaces or control characters, no `*`, not starting with `@`.
    pub id: String,
    /// The identifier kind: a lowercase word (`device`, `serial`, `tag`).
    pub kind: String,
    /// Attributes: at most 64, named like CSV columns (lowercase words), each value at most 1024
    /// bytes once written.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
}

crate::method!("resource.add", ResourceAdd => ResourceView);

/// One resource of the inventory.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ResourceView {
    /// The resource id.
    pub id: String,
    /// The identifier kind.
    pub kind: String,
    /// The resource groups it is in, by name.
    pub groups: Vec<String>,
    /// Its attributes, as written (free-form).
    pub attributes: Map<String, Value>,
}

/// `resource.list`: the inventory (all of it, or of one kind, or in one group), by id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceList {
    /// Only resources of this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only resources in this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

crate::method!("resource.list", ResourceList => Vec<ResourceView>);

/// `resource.delete`: removes a resource from the inventory (and from its groups).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceDelete {
    /// The resource id.
    pub id: String,
}

crate::method!("resource.delete", ResourceDelete => Deleted);

/// `resource.import`: creates or updates resources from a CSV inventory, all or nothing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceImport {
    /// The inventory (CSV text): a header row naming the identifier kind, then attribute names;
    /// one resource a row, at most 100000 rows.
    pub csv: String,
}

crate::method!("resource.import", ResourceImport => Imported);

/// What `resource.import` did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Imported {
    /// The identifier kind the file's header named.
    pub kind: String,
    /// Resources created.
    pub created: usize,
    /// Resources whose attributes were replaced.
    pub updated: usize,
}

// ---------------------------------------------------------------------------------------------
// group.*

/// `group.create`: a new, empty resource group (`@name` in selectors).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupCreate {
    /// The group's name: letters, digits, `.`, `_` and `-`, starting with a letter or digit.
    pub name: String,
    /// One line saying what the group is for (at most 1024 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

crate::method!("group.create", GroupCreate => GroupCreated);

/// The group `group.create` made.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GroupCreated {
    /// The group's name.
    pub name: String,
    /// What the group is for.
    pub description: Option<String>,
    /// Its members: none yet.
    pub members: Vec<String>,
}

/// `group.list`: every resource group with its member count.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupList {}

crate::method!("group.list", GroupList => Vec<GroupSummary>);

/// One group in `group.list`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GroupSummary {
    /// The group's name.
    pub name: String,
    /// What the group is for.
    pub description: Option<String>,
    /// How many resources are in it.
    pub members: i64,
}

/// `group.add`: puts existing resources into a group, all or nothing unless `ignore_missing`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupAdd {
    /// The group's name.
    pub group: String,
    /// Resource ids (canonical, as `resource.add` takes them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// A resource list (CSV text) to add in place of `resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
    /// Skip resources not in the inventory instead of refusing them all.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_missing: bool,
}

crate::method!("group.add", GroupAdd => MembersAdded);

/// `group.import`: puts the resources of a CSV list into a group, all or nothing unless
/// `ignore_missing`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupImport {
    /// The group's name.
    pub group: String,
    /// The resource list (CSV text): a header row naming the identifier kind, one id a row.
    pub csv: String,
    /// Skip resources not in the inventory instead of refusing the list.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_missing: bool,
}

crate::method!("group.import", GroupImport => MembersAdded);

/// What `group.add` and `group.import` did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MembersAdded {
    /// The group's name.
    pub group: String,
    /// Resources added (those already in the group are not counted).
    pub added: usize,
    /// Resources skipped by `ignore_missing`.
    pub skipped: Vec<Skipped>,
}

/// `group.remove`: takes resources out of a group (ids not in it are passed over).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRemove {
    /// The group's name.
    pub group: String,
    /// Resource ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

crate::method!("group.remove", GroupRemove => MembersRemoved);

/// What `group.remove` did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MembersRemoved {
    /// The group's name.
    pub group: String,
    /// Resources taken out.
    pub removed: usize,
}

/// `group.delete`: deletes a resource group (its resources stay in the inventory).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupDelete {
    /// The group's name.
    pub name: String,
}

crate::method!("group.delete", GroupDelete => Deleted);

// ---------------------------------------------------------------------------------------------
// authz.*

/// A question to the policy: may a subject have this access to this resource under this
/// permission?
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// A user name, or `key:NAME` for an API key; absent: the caller. Anyone but the caller needs
    /// `users.view`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The permission asked about.
    pub permission: String,
    /// A canonical resource id, or `*` for the gateway itself (what built-in permissions are
    /// granted on).
    pub resource: String,
    /// The access asked about.
    #[serde(default)]
    pub access: Access,
}

/// `authz.check`: the decision on a [`Question`], or on one object (`object` instead of
/// `resource`: exactly one of the two). A write the grants allow but the supervisor lock refuses is
/// answered with the `supervisor_locked` error (SPEC: every write-class decision fails while
/// locked), not with a decision.
///
/// About an object: a read is allowed by the object's kind with read access on its resource now, or
/// held when it was created (`historical`), or by an explicit `object.grant` (`explicit`); a write
/// needs the kind with write access now.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzCheck {
    /// A user name, or `key:NAME` for an API key; absent: the caller. Anyone but the caller needs
    /// `users.view`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The permission asked about; with `object`, absent or the object's kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
    /// A canonical resource id, or `*` for the gateway itself (what built-in permissions are
    /// granted on). Exactly one of `resource` and `object`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// An object's id. Exactly one of `resource` and `object`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<i64>,
    /// The access asked about.
    #[serde(default)]
    pub access: Access,
}

impl From<Question> for AuthzCheck {
    fn from(q: Question) -> AuthzCheck {
        AuthzCheck {
            subject: q.subject,
            permission: Some(q.permission),
            resource: Some(q.resource),
            object: None,
            access: q.access,
        }
    }
}

crate::method!("authz.check", AuthzCheck => Answer);

/// `authz.explain`: the decision of `authz.check`, with every grant that matched. A write the
/// lock refuses is a decision here (`reason: supervisor_locked`, with what the grants said).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct AuthzExplain(pub Question);

crate::method!("authz.explain", AuthzExplain => Explanation);

/// The most questions one `authz.check_many` may ask, and the most resources one `authz.allowed`
/// may name: an HMI screen's worth (a few hundred tags) with room to spare, and a bound on what one
/// request costs (answers are a few hundred nanoseconds each, so a full batch is well under a
/// millisecond of the daemon's time).
pub const MAX_BATCH: usize = 1000;

/// `authz.check_many`: many [`Question`]s in one round trip (an HMI opening a screen), answered in
/// order, each exactly as `authz.check` answers it, from one policy (every answer of a batch sees
/// the same grants and the same supervisor lock). A question `authz.check` would refuse with an
/// error (a bad resource id, an unknown subject, another's subject without `users.view`, a write
/// the supervisor lock refuses) gets that error in its slot: one bad question never fails the batch.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzCheckMany {
    /// The questions, at most 1000 (more is `bad_request`, before any is answered).
    pub checks: Vec<Question>,
}

crate::method!("authz.check_many", AuthzCheckMany => ManyAnswers);

/// The answers of `authz.check_many`, one per question, in the order asked.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ManyAnswers {
    /// The answer to `checks[i]` is `results[i]`.
    pub results: Vec<Checked>,
}

/// One slot of `authz.check_many`: what `authz.check` would have answered, its result or its error.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Checked {
    /// The answer `authz.check` gives (it has `decision`).
    Answer(Answer),
    /// The error `authz.check` gives (`{"error": {"code", "message", ...}}`), e.g. `supervisor_locked`
    /// with the lock, `not_found` for an unknown subject, `forbidden`, `bad_request`.
    Refused {
        /// The error, as a whole reply's `error` would carry it.
        error: crate::protocol::ApiError,
    },
}

/// `authz.allowed`: which of these resources may the subject (the caller, by default) use with this
/// permission and access? The answer `authz.check` gives each, from one policy. A write the grants
/// allow on any of them while a supervisor lock leaves the subject out is refused as a whole with
/// `supervisor_locked` (the lock is the subject's, not a resource's), as `authz.check` refuses it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzAllowed {
    /// A user name, or `key:NAME` for an API key; absent: the caller. Anyone but the caller needs
    /// `users.view`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The permission asked about.
    pub permission: String,
    /// The access asked about.
    #[serde(default)]
    pub access: Access,
    /// Canonical resource ids (or `*` for the gateway itself), at most 1000; one malformed id is
    /// `bad_request` naming it, and nothing is answered.
    pub resources: Vec<String>,
}

crate::method!("authz.allowed", AuthzAllowed => AllowedResources);

/// The resources of an `authz.allowed` question the subject may use.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AllowedResources {
    /// Those of `resources` that `authz.check` allows, in the order given (a repeated id repeated).
    pub allowed: Vec<String>,
}

/// The answer to `authz.check`: the question, and the decision's fields beside it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Answer {
    /// Who was asked about: a user name, or `key:NAME`.
    pub subject: String,
    /// The permission asked about.
    pub permission: String,
    /// The resource asked about.
    pub resource: String,
    /// The access asked about.
    pub access: Access,
    /// The object asked about (`authz.check` with `object`): `permission` is its kind and `resource`
    /// its resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<i64>,
    /// The decision (`decision`, `reason` and what belongs to the reason).
    #[serde(flatten)]
    pub decision: Decision,
}

/// The answer to `authz.explain`: [`Answer`] with the grants that matched.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Explanation {
    /// Who was asked about: a user name, or `key:NAME`.
    pub subject: String,
    /// The permission asked about.
    pub permission: String,
    /// The resource asked about.
    pub resource: String,
    /// The access asked about.
    pub access: Access,
    /// The decision (`decision`, `reason` and what belongs to the reason).
    #[serde(flatten)]
    pub decision: Decision,
    /// Every grant that matched, in decision order; empty for a superuser and an unknown account.
    pub matched: Vec<MatchedGrant>,
}

/// The one answer to "may this subject do this?": allowed or denied, and why. Never a bool.
///
/// JSON: `{"decision": "allow", "reason": "allowed_by", "grant_id": 7, "origin": {...}}`,
/// `{"decision": "allow", "reason": "superuser"}`, `{"decision": "deny", "reason": "no_grant"}`,
/// `{"decision": "deny", "reason": "supervisor_locked", "lock": {...}, "grants_decision": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Allowed.
    Allow(Allowed),
    /// Denied.
    Deny(Denied),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// Why something is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Allowed {
    /// A grant allows it, and no deny grant matches: the matching allow with the lowest id.
    AllowedBy(DecidingGrant),
    /// A live superuser (the built-in admin, a master API key): passes every check and every lock.
    Superuser,
    /// About an object: the subject held its kind with read access on its resource when the object
    /// was created, through this grant (which may be gone since).
    Historical(DecidingGrant),
    /// About an object: the subject was given it (`object.grant`).
    Explicit,
}

/// Why something is denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Denied {
    /// No grant allows this permission and access on this resource.
    NoGrant,
    /// A deny grant matched (the one with the lowest id).
    DeniedBy(DecidingGrant),
    /// No such account (deleted, or a revoked key).
    UnknownSubject,
    /// The account is disabled (for a key: or its owner is).
    AccountDisabled,
    /// The account has expired (for a key: or its owner has).
    AccountExpired,
    /// The grants allow the write, but a supervisor lock is set and the subject is outside its `l`.
    SupervisorLocked(LockRefusal),
}

/// The grant that decided, and where the subject has it from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DecidingGrant {
    /// The grant's id.
    pub grant_id: i64,
    /// Where it comes from: one of the subject's roles, or the subject directly.
    pub origin: GrantOrigin,
}

/// Where an effective grant comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GrantOrigin {
    /// A role the subject holds.
    Role {
        /// The role's id.
        id: i64,
        /// The role's name.
        #[schemars(with = "String")]
        name: RoleName,
    },
    /// Held by the user directly.
    Direct,
}

/// The longest role name kept inline: every name the API accepts (`accounts::validate_name`: 1-64
/// characters).
const INLINE_NAME: usize = 64;

/// A role's name as a decision carries it: inline up to 64 bytes, so copying a decision (the engine's,
/// or this contract's) allocates nothing and touches no shared counter. A longer name (only a
/// hand-built policy can hold one) is shared. JSON: a string.
#[derive(Clone, PartialEq, Eq)]
pub struct RoleName(NameRepr);

#[derive(Clone, PartialEq, Eq)]
enum NameRepr {
    Inline { len: u8, bytes: [u8; INLINE_NAME] },
    Shared(Arc<str>),
}

impl RoleName {
    /// Whether the name is held inline (every name the API accepts is).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, NameRepr::Inline { .. })
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only ever filled from a whole `&str` of `len` bytes.
            NameRepr::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
            NameRepr::Shared(name) => name,
        }
    }
}

impl From<&str> for RoleName {
    fn from(name: &str) -> RoleName {
        match u8::try_from(name.len()) {
            Ok(len) if name.len() <= INLINE_NAME => {
                let mut bytes = [0; INLINE_NAME];
                bytes[..name.len()].copy_from_slice(name.as_bytes());
                RoleName(NameRepr::Inline { len, bytes })
            }
            _ => RoleName(NameRepr::Shared(Arc::from(name))),
        }
    }
}

impl std::ops::Deref for RoleName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RoleName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RoleName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RoleName, D::Error> {
        String::deserialize(deserializer).map(|s| RoleName::from(s.as_str()))
    }
}

/// A write refused by the supervisor lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LockRefusal {
    /// For people: who holds the lock, why, and that writes are frozen.
    pub message: String,
    /// The lock (its owner is `lock.o`).
    pub lock: super::sessions::LockState,
    /// Why the lock's `l` leaves the subject out.
    pub locked_out: LockedOut,
    /// What the grants alone decided.
    pub grants_decision: Box<Decision>,
}

/// Why a scope of the supervisor lock leaves a subject out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LockedOut {
    /// Not a supervisor (no `supervisor.lock`): outside every scope.
    NotSupervisor,
    /// A supervisor, but not the owner's key or user that the scope names.
    OtherOwner,
}

/// One grant that matched an `authz.explain` question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MatchedGrant {
    /// The grant.
    pub grant: GrantRule,
    /// Where the subject has it from.
    pub origin: GrantOrigin,
    /// True for exactly the grant that decided, if a grant decided.
    pub decided: bool,
}

/// A grant as the engine reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GrantRule {
    /// The grant's id.
    pub id: i64,
    /// The permission.
    pub permission: String,
    /// Covers reads.
    pub read: bool,
    /// Covers writes.
    pub write: bool,
    /// The resource selector: an id, `@group`, a glob or `*`.
    pub selector: String,
    /// Allow or deny.
    pub effect: Effect,
}

/// `authz.who_can`: every live account that passes (superusers included), users first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzWhoCan {
    /// The permission asked about.
    pub permission: String,
    /// A canonical resource id, or `*` for the gateway itself.
    pub resource: String,
    /// The access asked about.
    #[serde(default)]
    pub access: Access,
}

crate::method!("authz.who_can", AuthzWhoCan => Vec<Passes>);

/// An account that passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Passes {
    /// A user or an API key.
    pub kind: SubjectKind,
    /// Its name.
    pub name: String,
    /// Passes as a superuser, whatever its grants say.
    pub superuser: bool,
}

/// What kind of account a subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A user account.
    User,
    /// An API key.
    Key,
}

// ---------------------------------------------------------------------------------------------
// Events

/// `policy.changed`: a role's or a user's grants changed (`role.grant`, `role.revoke`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PolicyChanged {
    /// Whose grants changed: `role:NAME` or `user:NAME`.
    pub target: String,
    /// Who changed them.
    pub by: Actor,
    /// When (unix ms).
    pub ts: i64,
}

impl Event for PolicyChanged {
    const NAME: &'static str = "policy.changed";
    const SUMMARY: &'static str = "a role's or a user's grants changed";
}

/// The events of this family.
pub const EVENTS: &[EventDoc] = &[super::events::doc::<PolicyChanged>()];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(decision: Decision) -> Value {
        let a = Answer {
            subject: "op".into(),
            permission: "tag.write".into(),
            resource: "line1/p1".into(),
            access: Access::Write,
            object: None,
            decision,
        };
        serde_json::to_value(a).unwrap()
    }

    fn by_grant() -> DecidingGrant {
        DecidingGrant { grant_id: 7, origin: GrantOrigin::Role { id: 2, name: "operators".into() } }
    }

    #[test]
    fn a_decision_keeps_its_wire_fields_beside_the_question() {
        let v = answer(Decision::Allow(Allowed::AllowedBy(by_grant())));
        assert_eq!(
            v,
            json!({"subject": "op", "permission": "tag.write", "resource": "line1/p1", "access": "write",
                   "decision": "allow", "reason": "allowed_by", "grant_id": 7,
                   "origin": {"kind": "role", "id": 2, "name": "operators"}})
        );
        let v = answer(Decision::Allow(Allowed::Superuser));
        assert_eq!((&v["decision"], &v["reason"]), (&json!("allow"), &json!("superuser")));
        let v = answer(Decision::Deny(Denied::AccountExpired));
        assert_eq!((&v["decision"], &v["reason"]), (&json!("deny"), &json!("account_expired")));
        let v = answer(Decision::Deny(Denied::DeniedBy(by_grant())));
        assert_eq!((&v["reason"], &v["grant_id"]), (&json!("denied_by"), &json!(7)));
    }

    #[test]
    fn a_lock_refusal_says_who_holds_the_lock_and_what_the_grants_said() {
        let refusal = LockRefusal {
            message: "supervisor lock by user boss: writes are frozen".into(),
            lock: super::super::sessions::LockState {
                o: Actor::user("boss"),
                l: Some(super::super::sessions::Scope::User),
                c: None,
                since: 1,
                reason: None,
                expires_at: None,
            },
            locked_out: LockedOut::NotSupervisor,
            grants_decision: Box::new(Decision::Allow(Allowed::AllowedBy(by_grant()))),
        };
        let d = Decision::Deny(Denied::SupervisorLocked(refusal));
        let v = answer(d.clone());
        assert_eq!((&v["decision"], &v["reason"]), (&json!("deny"), &json!("supervisor_locked")));
        assert_eq!(v["lock"]["o"], json!({"u": "boss", "key_id": null}));
        assert_eq!(v["lock"]["l"], "u");
        assert_eq!(v["locked_out"], "not_supervisor");
        assert_eq!(v["grants_decision"]["decision"], "allow");
        // The typed answer reads back what it wrote.
        let back: Answer = serde_json::from_value(v).unwrap();
        assert_eq!(back.decision, d);
    }

    #[test]
    fn answers_match_their_declared_schema() {
        let schema = serde_json::to_value(crate::contract::schema::<Answer>()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        for d in [
            Decision::Allow(Allowed::AllowedBy(by_grant())),
            Decision::Allow(Allowed::Superuser),
            Decision::Deny(Denied::NoGrant),
            Decision::Deny(Denied::DeniedBy(by_grant())),
            Decision::Deny(Denied::UnknownSubject),
        ] {
            let v = answer(d);
            assert!(validator.is_valid(&v), "{v}");
        }
        let mut wrong = answer(Decision::Deny(Denied::NoGrant));
        wrong["reason"] = json!("because");
        assert!(!validator.is_valid(&wrong), "{wrong}");
    }
}
