//! `audit.list`: the audit trail, newest first (permission `audit.view`).

use super::{Caller, Ctx};
use crate::contract::system::{AuditEntry, AuditList};
use crate::protocol::ApiError;
use crate::store::audit;

/// Longest filter text `audit.list` takes.
const MAX_FILTER: usize = 256;

pub fn list(ctx: &Ctx, _caller: &Caller, p: AuditList) -> Result<Vec<AuditEntry>, ApiError> {
    if p.limit == 0 || p.limit > 10_000 {
        return Err(ApiError::bad_request("limit must be between 1 and 10000"));
    }
    for (field, v) in [("action", &p.action), ("actor", &p.actor), ("target", &p.target)] {
        if v.as_ref().is_some_and(|v| v.is_empty() || v.len() > MAX_FILTER) {
            return Err(ApiError::bad_request(format!("{field}: 1 to {MAX_FILTER} bytes, or left out")));
        }
    }
    if let Some(o) = p.outcome.as_deref().filter(|o| !["ok", "denied", "failed"].contains(o)) {
        return Err(ApiError::bad_request(format!("outcome: {:?} is not ok, denied or failed", crate::logs::cut(o))));
    }
    // What is still buffered (refusals, failed logins) is part of the trail: write it first.
    ctx.flush()?;
    let filter = audit::Filter {
        since: p.since,
        action: p.action.as_deref(),
        actor: p.actor.as_deref(),
        outcome: p.outcome.as_deref(),
        target: p.target.as_deref(),
    };
    Ok(audit::list(&ctx.store().conn, &filter, p.limit)?)
}
