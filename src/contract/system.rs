//! The system methods' params and results, and their events.

use super::Actor;
use super::events::EventDoc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `status`: no params.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusGet {}

crate::method!("status", StatusGet => Status);

/// What `status` shows. Fields marked "layout" are shown only to holders of `settings.manage` (and
/// superusers: root on the console); everybody else gets the version, the site, the seats, the
/// supervisor lock and the MQTT link state. Absent fields are left out rather than sent as null.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Status {
    /// The daemon's version.
    pub version: String,
    /// Seconds since the daemon started (layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    /// `site.id` from the config: the MQTT prefix is `gatewarden/<site>`.
    pub site: String,
    /// The database file (layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The database's migration level (layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<i64>,
    /// The control socket's path (layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    pub mqtt: MqttLink,
    pub seats: Seats,
    /// The supervisor lock, null when none is set (the same object as the retained
    /// `supervisor/lock` topic).
    pub supervisor_lock: Option<super::sessions::LockState>,
    /// The plant directory, when `[directory]` is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectoryLink>,
    /// Plant mode (`[plant]`): the plant's seats and this gateway's link to NATS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plant: Option<crate::contract::sessions::PlantState>,
}

/// The plant directory as `status` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct DirectoryLink {
    /// `unknown` (not asked yet), `reachable`, `unreachable` (logins of directory people come from
    /// the offline cache) or `error` (it answered, but the setup is wrong: see `last_error`).
    pub state: String,
    /// When the directory last answered (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<i64>,
    /// When the last complete sync ended (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<i64>,
    /// Accounts that came from the directory.
    pub people: u64,
    /// The last error; may name hosts and DNs (layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// `directory.test`: asks the directory about a person the way a login would, for a technician
/// setting it up. Nothing is created or changed here.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryTest {
    /// The login name, as a person would type it.
    pub user: String,
    /// The person's password, to try a bind as them; absent: only the search and the groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

crate::method!("directory.test", DirectoryTest => DirectoryReport);

/// What `directory.test` found, step by step.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct DirectoryReport {
    /// `directory.url`.
    pub url: String,
    /// Whether the service bind (or the anonymous connection) worked.
    pub bind: bool,
    /// The user search's filter, the name escaped per RFC 4515.
    pub filter: String,
    /// The person's DN, when found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    /// AD `userAccountControl` says disabled.
    pub disabled: bool,
    /// Group DNs, direct and nested.
    pub groups: Vec<String>,
    /// Roles `directory.group_roles` gives for those groups.
    pub roles: Vec<String>,
    /// Mapped roles that do not exist here (they are left out at login).
    pub missing_roles: Vec<String>,
    /// Whether the password was accepted; absent when none was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_ok: Option<bool>,
    /// Milliseconds per step: connect, service_bind, search, groups, user_bind.
    pub timings_ms: std::collections::BTreeMap<String, u64>,
    /// What went wrong, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `directory.sync`: brings every directory person up to date now (it also runs every
/// `directory.sync_interval`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectorySync {}

crate::method!("directory.sync", DirectorySync => DirectorySynced);

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct DirectorySynced {
    /// Directory people looked at.
    pub people: u64,
    /// People whose groups or roles changed.
    pub updated: u64,
    /// People disabled here: gone from the directory or disabled there.
    pub disabled: u64,
    /// Their sessions ended.
    pub sessions_ended: u64,
    /// People this gateway had disabled because the directory had, enabled again now that it has them
    /// back (an account disabled here by hand stays disabled).
    #[serde(default)]
    pub enabled: u64,
    /// Mapped roles that do not exist here.
    pub missing_roles: Vec<String>,
    /// `directory.group_roles` DNs the directory does not have.
    #[serde(default)]
    pub unknown_groups: Vec<String>,
    /// How long it took (ms).
    pub took_ms: u64,
}

/// The licence seats as `status` shows them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Seats {
    /// `license.seats`: how many HMI sessions may hold a seat at once.
    pub limit: u32,
    /// Seats taken now.
    pub in_use: u32,
    /// `license.reserved`: seats kept for holders of a role, by role name.
    #[serde(default)]
    pub reserved: std::collections::BTreeMap<String, u32>,
    /// Live sessions (two sessions of one user on one host may share a seat).
    #[serde(default)]
    pub sessions: u32,
    /// `license.types`: the read-write seats each client type may hold (absent when none is set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<super::sessions::TypeSeats>,
    /// `license.read_only_seats` (absent when 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<super::sessions::ReadOnlySeats>,
}

/// The MQTT bridge as `status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MqttLink {
    /// `mqtt.enabled` from the config.
    pub enabled: bool,
    /// The broker's URL (layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `disabled`, `not connected`, `connecting`, `connected` ...
    pub state: String,
    /// The last connection error; may name hosts and addresses (layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Messages written but not yet acknowledged by the broker.
    pub outbox_depth: i64,
}

/// `settings.get`: one setting, or all of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsGet {
    /// The setting to read; absent: every setting, by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

crate::method!("settings.get", SettingsGet => SettingsGot);

/// One setting, or the list of all of them (when no `key` was given).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SettingsGot {
    One(Setting),
    All(Vec<Setting>),
}

/// A plant setting.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Setting {
    /// Dotted words: `plant.name`, `shift.plan`.
    pub key: String,
    /// Any JSON the integrator defines.
    pub value: Value,
    /// When it was last set (unix ms).
    pub updated_at: i64,
}

/// `settings.set`: sets a plant setting (write-class: frozen by the supervisor lock).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsSet {
    /// Dotted words of letters, digits, `_` and `-`, at most 128 bytes: `plant.name`.
    pub key: String,
    /// Any JSON, at most 16 KiB as text.
    pub value: Value,
}

crate::method!("settings.set", SettingsSet => SettingChanged);

/// A setting as set; also the payload of the `settings.changed` event.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SettingChanged {
    pub key: String,
    pub value: Value,
    /// Who set it (events only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Actor>,
}

impl super::events::Event for SettingChanged {
    const NAME: &'static str = "settings.changed";
    const SUMMARY: &'static str = "a plant setting was set (`settings.set`)";
}

/// `audit.list`: the audit trail, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditList {
    /// Only entries at or after this time (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// At most this many entries, 1 to 10000.
    #[serde(default = "default_audit_limit")]
    #[schemars(range(min = 1, max = 10000))]
    pub limit: u32,
    /// Only these actions: an exact name (`session.terminate`), or a family ending in a dot
    /// (`session.`). At most 256 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Only what this user or API key did (its name). At most 256 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only entries with this outcome: `ok`, `denied` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Only entries about this target (a user, role, resource, session id ...). At most 256 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

fn default_audit_limit() -> u32 {
    100
}

crate::method!("audit.list", AuditList => Vec<AuditEntry>);

/// One row of the audit trail.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// When it happened (unix ms); for counted refusals, when the row was written (`detail` has
    /// `count`, `first_ts`, `last_ts`).
    pub ts: i64,
    /// Who did it.
    pub actor: Actor,
    /// Through what: `console uid=1000`, `mqtt client=panel-3 user=...`, `daemon`, `recover`.
    pub source: String,
    /// The method's name (or `login`, `session.expire`, `audit.suppressed`, ...).
    pub action: String,
    /// What it acted on: a user, a role, a session, a setting.
    pub target: Option<String>,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    /// What changed, or why it was refused.
    pub detail: Option<Value>,
}

/// The events of this family.
pub const EVENTS: &[EventDoc] = &[super::events::doc::<SettingChanged>()];
