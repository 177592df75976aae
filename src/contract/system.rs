//! The system methods' params and results, and their events.

use super::Actor;
use super::events::EventDoc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
pub const EVENTS: &[EventDoc] = &[];
