//! The system methods' params and results, and their events.

use super::Actor;
use super::events::EventDoc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
