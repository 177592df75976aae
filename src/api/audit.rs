//! `audit.list`: the audit trail, newest first (permission `audit.view`).

use super::{Caller, Ctx};
use crate::contract::system::{AuditEntry, AuditList};
use crate::protocol::ApiError;
use crate::store::audit;

pub fn list(ctx: &Ctx, _caller: &Caller, p: AuditList) -> Result<Vec<AuditEntry>, ApiError> {
    if p.limit == 0 || p.limit > 10_000 {
        return Err(ApiError::bad_request("limit must be between 1 and 10000"));
    }
    // What is still buffered (refusals, failed logins) is part of the trail: write it first.
    ctx.flush()?;
    Ok(audit::list(&ctx.store().conn, p.since, p.limit)?)
}
