//! `audit.list`: the audit trail, newest first (permission `audit.view`).

use super::{Caller, Ctx, params, to_value};
use crate::protocol::ApiError;
use crate::store::audit;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Unix milliseconds; only entries at or after it.
    since: Option<i64>,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    100
}

pub fn list(ctx: &Ctx, _caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: Params = params("audit.list", &p)?;
    if p.limit == 0 || p.limit > 10_000 {
        return Err(ApiError::bad_request("limit must be between 1 and 10000"));
    }
    // What is still buffered (refusals, failed logins) is part of the trail: write it first.
    ctx.flush()?;
    let entries = audit::list(&ctx.store().conn, p.since, p.limit)?;
    to_value(entries)
}
