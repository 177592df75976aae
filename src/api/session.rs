//! HMI client sessions: `session.open|heartbeat|close|list|terminate`, expiry, persistence and
//! restore. The seat decision itself lives in [`crate::sessions`]; this module ties it to the store.
//!
//! Must never happen:
//! - **A seat decision outside the lock.** Every open, close, expiry and terminate runs in
//!   [`Ctx::write_sessions`]: the store lock, one transaction and the session table's lock, with the
//!   table's changes undone if the transaction does not commit.
//! - **A database write per heartbeat.** A heartbeat (and any request made with a session token)
//!   touches only the in-memory table; `persist` writes `last_seen` in one batch per
//!   `license.persist_interval`.
//! - **A terminated client back within the cooldown.** `session.open` refuses the same user and host
//!   while `license.terminate_cooldown` runs, with `session_terminated` and `retry_after_s`.

use super::{Caller, Ctx, Principal, params, to_value};
use crate::accounts::secret;
use crate::config::{Config, CooldownScope, LicenseConfig};
use crate::protocol::{ApiError, ErrorCode};
use crate::sessions::{Full, Limits, Live, Table};
use crate::store::audit::{self, Actor, Outcome};
use crate::store::{now_ms, outbox};
use crate::text::{self, Lines};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Instant;

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Closed,
    Expired,
    Terminated,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::Closed => "closed",
            End::Expired => "expired",
            End::Terminated => "terminated",
        }
    }
}

pub fn limits(cfg: &LicenseConfig) -> Limits {
    Limits { seats: cfg.seats, reserved: cfg.reserved.clone(), share_same_host: cfg.share_same_host }
}

/// The interval a client should heartbeat at: a third of the timeout, so two lost beats are survived.
pub fn heartbeat_s(cfg: &LicenseConfig) -> u64 {
    (cfg.heartbeat_timeout.0.as_secs() / 3).max(1)
}

/// The licence figures, as `status` reports them and as the retained MQTT `license` topic carries them:
/// the totals, and each seat pool (`null` is the general pool, else the role it is reserved for)
/// with its seats, those in use and those free, so a panel can tell whether its own pool has room.
pub fn license(config: &Config, table: &Table) -> Value {
    json!({
        "limit": config.license.seats,
        "in_use": table.in_use(),
        "free": config.license.seats.saturating_sub(table.in_use()),
        "reserved": config.license.reserved,
        "sessions": table.len(),
        "pools": pools(config, table, |_| true),
    })
}

/// The seat pools `wanted` picks, with their figures: `{"pool", "seats", "in_use", "free"}`.
fn pools(config: &Config, table: &Table, wanted: impl Fn(Option<&str>) -> bool) -> Vec<Value> {
    let lic = &config.license;
    let reserved: u32 = lic.reserved.values().sum();
    let general = (None, lic.seats.saturating_sub(reserved));
    let named = lic.reserved.iter().map(|(role, &n)| (Some(role.as_str()), n));
    std::iter::once(general)
        .chain(named)
        .filter(|(pool, _)| wanted(*pool))
        .map(|(pool, seats)| {
            let in_use = table.pool_use(pool);
            json!({"pool": pool, "seats": seats, "in_use": in_use, "free": seats.saturating_sub(in_use)})
        })
        .collect()
}

/// Queues the retained `license` state, in the transaction that changed it.
fn publish_license(tx: &Transaction<'_>, config: &Config, table: &Table) -> rusqlite::Result<()> {
    outbox::publish(tx, "license", &license(config, table), true).map(|_| ())
}

/// An ended session as `resolve` reads it: digest, state, ended_by, end_reason.
type Ended = (Vec<u8>, String, Option<String>, Option<String>);

/// Finds the live session of a session token, and counts the request as a heartbeat.
/// For a session that is no longer live, says why: `session_terminated`, `session_expired`.
pub fn resolve(ctx: &Ctx, token: &str) -> Result<(Principal, i64), ApiError> {
    let invalid = || ApiError::unauthenticated("session token is not valid: open a new session");
    let (id, body) = secret::parse(secret::SESSION_PREFIX, token).ok_or_else(invalid)?;
    {
        let mut table = ctx.sessions();
        if let Some(live) = table.get_mut(id) {
            if !secret::matches(body, &live.digest) {
                return Err(invalid());
            }
            // The session is exactly as good as the account or key that opened it, asked now.
            let subject = super::auth::subject_of(&live.principal).ok_or_else(invalid)?;
            let principal = super::auth::live(ctx, subject, None)?;
            live.beat = Instant::now();
            live.last_seen_ms = now_ms();
            return Ok((principal, id));
        }
    }
    // Not live: the database says how it ended. The digest is checked first, so a stranger cannot
    // learn anything about other people's sessions.
    let row: Option<Ended> = ctx
        .store()
        .conn
        .prepare_cached("SELECT digest, state, ended_by, end_reason FROM sessions WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((_, state, by, reason)) = row.filter(|(d, ..)| secret::matches(body, d)) else {
        return Err(invalid());
    };
    let by = by.as_deref().map(crate::contract::Actor::from_text).unwrap_or_default();
    Err(match state.as_str() {
        "terminated" => ApiError::new(
            ErrorCode::SessionTerminated,
            format!(
                "session {id} was terminated by {}{}",
                by.describe(),
                reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            ),
        )
        .with("by", serde_json::to_value(&by).unwrap_or_default())
        .with("reason", reason),
        "closed" => ApiError::new(ErrorCode::SessionExpired, format!("session {id} was closed: open a new one")),
        _ => ApiError::new(ErrorCode::SessionExpired, format!("session {id} expired: open a new one")),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenParams {
    #[serde(rename = "type")]
    client_type: String,
    project: Option<String>,
    host: Option<String>,
    address: Option<String>,
}

fn field(name: &str, v: Option<String>, required: bool) -> Result<Option<String>, ApiError> {
    match text::clean(name, v, text::MAX_FIELD, Lines::One)? {
        None if required => Err(ApiError::bad_request(format!("session.open needs a non-empty {name:?}"))),
        v => Ok(v),
    }
}

/// The role names the caller holds; a superuser counts as holding every reserved role.
fn roles_of(tx: &Transaction<'_>, caller: &Caller, config: &Config) -> rusqlite::Result<Vec<String>> {
    if caller.is_superuser() {
        return Ok(config.license.reserved.keys().cloned().collect());
    }
    let (sql, id) = match &caller.principal {
        Principal::User { id, .. } => {
            ("SELECT r.name FROM user_roles x JOIN roles r ON r.id = x.role_id WHERE x.user_id = ?1", *id)
        }
        Principal::Key { id, .. } => {
            ("SELECT r.name FROM key_roles x JOIN roles r ON r.id = x.role_id WHERE x.key_id = ?1", *id)
        }
        Principal::Anonymous => return Ok(Vec::new()),
    };
    tx.prepare_cached(sql)?.query_map([id], |r| r.get(0))?.collect()
}

#[derive(Serialize)]
struct Opened {
    session_id: i64,
    token: String,
    heartbeat_s: u64,
    timeout_s: u64,
    shared_seat: bool,
    pool: Option<String>,
}

/// Opens a session for the authenticated caller and takes (or shares) a seat.
pub fn open(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: OpenParams = params("session.open", &p)?;
    let (user_id, user_name) = match &caller.principal {
        _ if caller.session.is_some() => {
            return Err(ApiError::bad_request(
                "a session token cannot open another session: authenticate with a password, a login token or an API key",
            ));
        }
        Principal::User { id, name, .. } => (*id, name.clone()),
        Principal::Key { owner_id, .. } => (*owner_id, String::new()),
        Principal::Anonymous => {
            return Err(ApiError::unauthenticated(
                "session.open needs credentials: auth {\"user\",\"password\"}, {\"token\"} or {\"key\"}",
            ));
        }
    };
    let client_type = field("type", Some(p.client_type), true)?.unwrap_or_default();
    let project = field("project", p.project, false)?;
    let host = field("host", p.host, false)?;
    let address = field("address", p.address, false)?;
    let config = ctx.config();
    let lic = &config.license;
    let body = secret::random_text();
    let now = now_ms();

    let opened = ctx.write_sessions(|tx, table| {
        expire_due(tx, table, &config)?;
        let user_name = if user_name.is_empty() {
            tx.query_row("SELECT name FROM users WHERE id = ?1", [user_id], |r| r.get(0))?
        } else {
            user_name
        };
        let cooldown = lic.terminate_cooldown.0.as_millis() as i64;
        if cooldown > 0 {
            // `user` (the default) blocks the user on every host, so a new or re-cased host name does
            // not sidestep it; `user_host` only on the same host, compared without case.
            let ended: Option<i64> = match lic.cooldown_scope {
                CooldownScope::User => tx.query_row(
                    "SELECT max(ended_at) FROM sessions WHERE state = 'terminated' AND user_id = ?1",
                    params![user_id],
                    |r| r.get(0),
                )?,
                CooldownScope::UserHost => tx.query_row(
                    "SELECT max(ended_at) FROM sessions
                     WHERE state = 'terminated' AND user_id = ?1 AND lower(host) IS lower(?2)",
                    params![user_id, host],
                    |r| r.get(0),
                )?,
            };
            if let Some(ended) = ended.filter(|e| e + cooldown > now) {
                let retry = (ended + cooldown - now + 999) / 1000;
                return Err(ApiError::new(
                    ErrorCode::SessionTerminated,
                    format!(
                        "a session of {user_name} was terminated by a supervisor; reopening is blocked for {retry} s more"

                    ),
                )
                .with("retry_after_s", retry));
            }
        }
        tx.execute(
            "INSERT INTO sessions (user_id, user_name, key_id, digest, client_type, project, host, address,
                                   opened_at, last_seen, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 'open')",
            params![
                user_id,
                user_name,
                match caller.principal {
                    Principal::Key { id, .. } => Some(id),
                    _ => None,
                },
                secret::digest(&body),
                client_type,
                project,
                host,
                address,
                now
            ],
        )?;
        let id = tx.last_insert_rowid();
        let roles = roles_of(tx, caller, &config)?;
        let plan = table
            .plan(&limits(lic), id, user_id, host.as_deref(), &roles)
            .map_err(|full| limit_reached(ctx, caller, &roles, table, &full))?;
        tx.execute("UPDATE sessions SET pool = ?2 WHERE id = ?1", params![id, plan.pool])?;
        table.insert(Live {
            id,
            principal: caller.principal.clone(),
            user_id,
            user: user_name.clone(),
            digest: secret::digest(&body),
            client_type: client_type.clone(),
            project: project.clone(),
            host: host.clone(),
            address: address.clone(),
            opened_ms: now,
            last_seen_ms: now,
            beat: Instant::now(),
            persisted_ms: now,
            seat: plan.seat.clone(),
            pool: plan.pool.clone(),
        });
        let detail = json!({"session_id": id, "type": client_type, "project": project, "host": host,
                            "address": address, "shared_seat": plan.shared, "pool": plan.pool});
        audit::record(tx, &caller.actor(), "session.open", Some(&user_name), Outcome::Ok, Some(&detail))?;
        let mut event = detail.clone();
        event["user"] = json!(user_name);
        outbox::event(tx, "session.opened", &event)?;
        if !plan.shared {
            publish_license(tx, &config, table)?;
        }
        Ok(Opened {
            session_id: id,
            token: secret::format(secret::SESSION_PREFIX, id, &body),
            heartbeat_s: heartbeat_s(lic),
            timeout_s: lic.heartbeat_timeout.0.as_secs(),
            shared_seat: plan.shared,
            pool: plan.pool,
        })
    })?;
    to_value(opened)
}

/// `license_limit_reached` with the figures; callers who may see sessions also see who holds them.
fn limit_reached(ctx: &Ctx, caller: &Caller, roles: &[String], table: &Table, full: &Full) -> ApiError {
    let free_for_others = if full.reserved > 0 {
        format!(
            " ({} of them reserved for {:?})",
            full.reserved,
            ctx.config().license.reserved.keys().collect::<Vec<_>>()
        )
    } else {
        String::new()
    };
    let mut err = ApiError::new(
        ErrorCode::LicenseLimitReached,
        format!("all licensed seats you may take are in use: {} of {}{free_for_others}", full.in_use, full.limit),
    )
    .with("limit", full.limit)
    .with("in_use", full.in_use)
    // The pools this caller may take a seat from (the general one, and those of its reserved roles).
    .with(
        "pools",
        pools(&ctx.config(), table, |pool| pool.is_none_or(|p| roles.iter().any(|r| r.eq_ignore_ascii_case(p)))),
    );
    if ctx.permits(caller, "sessions.view") {
        let holders: Vec<Value> = table.sessions().into_iter().map(|l| summary(l, table)).collect();
        err = err.with("holders", holders);
    }
    err
}

fn summary(l: &Live, table: &Table) -> Value {
    json!({
        "session_id": l.id,
        "user": l.user,
        "type": l.client_type,
        "project": l.project,
        "host": l.host,
        "address": l.address,
        "opened_at": l.opened_ms,
        "last_seen_at": l.last_seen_ms,
        "state": "open",
        "shared_seat": table.shares_seat(l.id),
        "pool": l.pool,
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TokenParams {
    token: Option<String>,
}

/// The session a heartbeat or close is for: the request's own session token, or one in `params.token`.
fn session_of(ctx: &Ctx, caller: &Caller, method: &str, p: &Value) -> Result<(Principal, i64), ApiError> {
    let p: TokenParams = params(method, p)?;
    match (p.token, caller.session) {
        (Some(token), _) => resolve(ctx, &token),
        (None, Some(id)) => Ok((caller.principal.clone(), id)),
        (None, None) => Err(ApiError::unauthenticated(format!(
            "{method} needs the session token: as auth {{\"token\": \"gws_...\"}} or in params.token"
        ))),
    }
}

/// Keeps a session alive. Memory only: no database write.
pub fn heartbeat(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let (_, id) = session_of(ctx, caller, "session.heartbeat", &p)?;
    let lic = ctx.config().license.clone();
    Ok(json!({"session_id": id, "heartbeat_s": heartbeat_s(&lic), "timeout_s": lic.heartbeat_timeout.0.as_secs()}))
}

/// Ends the caller's own session and frees its seat.
pub fn close(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let (principal, id) = session_of(ctx, caller, "session.close", &p)?;
    let config = ctx.config();
    let actor = Caller { principal, session: Some(id), ..caller.clone() }.actor();
    let freed = ctx.write_sessions(|tx, table| {
        let freed = end(tx, table, &config, &[id], End::Closed, &actor, None)?;
        Ok(freed)
    })?;
    Ok(json!({"session_id": id, "closed": true, "seat_freed": freed > 0}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ListParams {
    /// Also list ended sessions (newest first).
    all: bool,
    limit: Option<u32>,
}

/// The live sessions (and with `all`, the recently ended ones). Needs `sessions.view`.
pub fn list(ctx: &Ctx, _caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: ListParams = params("session.list", &p)?;
    let mut out: Vec<Value> = {
        let table = ctx.sessions();
        table.sessions().into_iter().map(|l| summary(l, &table)).collect()
    };
    if p.all {
        let limit = p.limit.unwrap_or(100).min(10_000);
        let store = ctx.store();
        let mut stmt = store.conn.prepare(
            "SELECT id, user_name, client_type, project, host, address, opened_at, last_seen, state, pool,
                    ended_at, ended_by, end_reason
             FROM sessions WHERE state <> 'open' ORDER BY ended_at DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(json!({
                "session_id": r.get::<_, i64>(0)?,
                "user": r.get::<_, String>(1)?,
                "type": r.get::<_, String>(2)?,
                "project": r.get::<_, Option<String>>(3)?,
                "host": r.get::<_, Option<String>>(4)?,
                "address": r.get::<_, Option<String>>(5)?,
                "opened_at": r.get::<_, i64>(6)?,
                "last_seen_at": r.get::<_, i64>(7)?,
                "state": r.get::<_, String>(8)?,
                "pool": r.get::<_, Option<String>>(9)?,
                "ended_at": r.get::<_, Option<i64>>(10)?,
                "ended_by": r.get::<_, Option<String>>(11)?,
                "reason": r.get::<_, Option<String>>(12)?,
            }))
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(Value::Array(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TerminateParams {
    session_id: i64,
    reason: Option<String>,
}

/// Ends another client's session at once. Needs `sessions.terminate` and nothing else.
pub fn terminate(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: TerminateParams = params("session.terminate", &p)?;
    let reason = text::clean("reason", p.reason, text::MAX_REASON, Lines::One)?;
    let config = ctx.config();
    let id = p.session_id;
    let actor = caller.actor();
    let (user, freed) = ctx.write_sessions(|tx, table| {
        let Some(user) = table.get(id).map(|l| l.user.clone()) else {
            let state: Option<String> =
                tx.query_row("SELECT state FROM sessions WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            return Err(match state {
                Some(s) => ApiError::conflict(format!("session {id} has already ended ({s})")),
                None => ApiError::not_found(format!("no session {id}")),
            });
        };
        let freed = end(tx, table, &config, &[id], End::Terminated, &actor, reason.as_deref())?;
        Ok((user, freed))
    })?;
    tracing::info!(session = id, user = %user, by = %actor.who.describe(), reason = reason.as_deref().unwrap_or(""), "session terminated");
    Ok(json!({"session_id": id, "user": user, "terminated": true, "seat_freed": freed > 0, "reason": reason}))
}

/// Ends live sessions inside the caller's transaction: rows, audit, events (and for a terminate
/// the client's control message), the retained licence state. Returns how many seats were freed.
pub fn end(
    tx: &Transaction<'_>,
    table: &mut Table,
    config: &Config,
    ids: &[i64],
    how: End,
    actor: &Actor,
    reason: Option<&str>,
) -> Result<u32, ApiError> {
    let before = table.in_use();
    let now = now_ms();
    for &id in ids {
        let Some(live) = table.remove(id) else { continue };
        tx.execute(
            "UPDATE sessions SET state = ?2, ended_at = ?3, last_seen = ?4, ended_by = ?5, end_reason = ?6
             WHERE id = ?1 AND state = 'open'",
            params![
                id,
                how.as_str(),
                now,
                live.last_seen_ms,
                (how == End::Terminated).then_some(actor.who.to_text()),
                reason
            ],
        )?;
        let detail = json!({"session_id": id, "user": live.user, "type": live.client_type, "host": live.host,
                            "by": actor.who, "reason": reason});
        let action = format!(
            "session.{}",
            match how {
                End::Closed => "close",
                End::Expired => "expire",
                End::Terminated => "terminate",
            }
        );
        audit::record(tx, actor, &action, Some(&live.user), Outcome::Ok, Some(&detail))?;
        outbox::event(tx, &format!("session.{}", how.as_str()), &detail)?;
        if how == End::Terminated {
            outbox::publish(
                tx,
                &format!("sessions/{id}/control"),
                &json!({"action": "terminate", "reason": reason, "by": actor.who}),
                false,
            )?;
        }
    }
    let freed = before - table.in_use();
    if freed > 0 {
        publish_license(tx, config, table)?;
    }
    Ok(freed)
}

/// Expires the sessions silent for longer than `license.heartbeat_timeout`, in the caller's transaction.
fn expire_due(tx: &Transaction<'_>, table: &mut Table, config: &Config) -> Result<u32, ApiError> {
    let due = table.due(Instant::now(), config.license.heartbeat_timeout.0);
    if due.is_empty() {
        return Ok(0);
    }
    let reason = format!("no heartbeat for {} s", config.license.heartbeat_timeout.0.as_secs());
    end(tx, table, config, &due, End::Expired, &Actor::system(), Some(&reason))?;
    Ok(due.len() as u32)
}

/// The periodic expiry check (every second, from the daemon's loop). Takes the store lock only when
/// a session is due.
pub fn sweep(ctx: &Ctx) -> Result<u32, ApiError> {
    let config = ctx.config();
    let index = ctx.index();
    let now = now_ms();
    let any_dead = |t: &Table| {
        t.sessions()
            .iter()
            .any(|l| super::auth::subject_of(&l.principal).is_some_and(|s| index.principal(s, now).is_err()))
    };
    let (due, dead) = {
        let table = ctx.sessions();
        (!table.due(Instant::now(), config.license.heartbeat_timeout.0).is_empty(), any_dead(&table))
    };
    if !due && !dead {
        return Ok(0);
    }
    let n = ctx.write_sessions(|tx, table| {
        let n = expire_due(tx, table, &config)?;
        let ended = end_dead(tx, table, &config, &ctx.index())?;
        if ended > 0 {
            tracing::info!(ended, "sessions ended: their account or API key is no longer valid");
        }
        Ok(n)
    })?;
    if n > 0 {
        tracing::info!(expired = n, "sessions expired: no heartbeat");
    }
    Ok(n)
}

/// Writes the heartbeats seen since the last call in one transaction. Returns how many rows it wrote.
pub fn persist(ctx: &Ctx) -> Result<usize, ApiError> {
    let mut store = ctx.store();
    let rows = ctx.sessions().unpersisted();
    if rows.is_empty() {
        return Ok(0);
    }
    store.write(|tx| {
        let mut stmt = tx.prepare_cached("UPDATE sessions SET last_seen = ?2 WHERE id = ?1 AND state = 'open'")?;
        for (id, seen) in &rows {
            stmt.execute(params![id, seen])?;
        }
        Ok::<_, rusqlite::Error>(())
    })?;
    ctx.sessions().mark_persisted(&rows);
    Ok(rows.len())
}

/// At start: brings back the sessions that were open. One whose last recorded heartbeat is older than
/// `heartbeat_timeout + persist_interval` certainly lapsed while the daemon was down and expires now;
/// the others get a fresh `heartbeat_timeout` from now (their last beats may not have been written).
pub fn restore(ctx: &Ctx) -> Result<(usize, usize), ApiError> {
    let config = ctx.config();
    let lic = &config.license;
    let now = now_ms();
    let horizon = now - (lic.heartbeat_timeout.0 + lic.persist_interval.0).as_millis() as i64;
    ctx.write_sessions(|tx, table| {
        let rows: Vec<(Live, Option<i64>)> = {
            let mut stmt = tx.prepare(
                "SELECT s.id, s.user_id, s.user_name, s.key_id, s.digest, s.client_type, s.project, s.host,
                        s.address, s.opened_at, s.last_seen, s.pool, k.name, k.master
                 FROM sessions s LEFT JOIN api_keys k ON k.id = s.key_id
                 WHERE s.state = 'open' ORDER BY s.id",
            )?;
            stmt.query_map([], |r| {
                let id: i64 = r.get(0)?;
                let user_id: Option<i64> = r.get(1)?;
                let user: String = r.get(2)?;
                let key_id: Option<i64> = r.get(3)?;
                let key_name: Option<String> = r.get(12)?;
                let principal = match (key_id, key_name) {
                    (Some(kid), Some(name)) => Principal::Key {
                        id: kid,
                        name,
                        owner_id: user_id.unwrap_or(0),
                        master: r.get::<_, Option<bool>>(13)?.unwrap_or(false),
                    },
                    _ => Principal::User { id: user_id.unwrap_or(0), name: user.clone(), token_id: None },
                };
                let host: Option<String> = r.get(7)?;
                let last_seen: i64 = r.get(10)?;
                let live = Live {
                    id,
                    principal,
                    user_id: user_id.unwrap_or(0),
                    user,
                    digest: r.get(4)?,
                    client_type: r.get(5)?,
                    project: r.get(6)?,
                    seat: Table::seat_key(&limits(lic), id, user_id.unwrap_or(0), host.as_deref()),
                    host,
                    address: r.get(8)?,
                    opened_ms: r.get(9)?,
                    last_seen_ms: last_seen,
                    beat: Instant::now(),
                    persisted_ms: last_seen,
                    pool: r.get(11)?,
                };
                // A session whose account or key is gone cannot come back.
                let orphan = user_id.is_none();
                Ok((live, (orphan || last_seen < horizon).then_some(last_seen)))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let (mut kept, mut lapsed) = (0, Vec::new());
        for (live, dead) in rows {
            let id = live.id;
            table.insert(live);
            match dead {
                Some(_) => lapsed.push(id),
                None => kept += 1,
            }
        }
        let reason = "heartbeat lapsed while gatewarden was stopped";
        end(tx, table, &config, &lapsed, End::Expired, &Actor::system(), Some(reason))?;
        publish_license(tx, &config, table)?;
        Ok((kept, lapsed.len()))
    })
}

/// Prunes ended sessions by the audit trail's retention: older than `audit_max_age` (but never within
/// the terminate cooldown, which they enforce), and beyond the newest `audit_max_rows` ended ones, so
/// a plant with heavy churn keeps a bounded file too.
pub fn prune(ctx: &Ctx) -> rusqlite::Result<usize> {
    let config = ctx.config();
    let r = &config.retention;
    let cooldown = config.license.terminate_cooldown.0.as_millis() as i64;
    let keep = (r.audit_max_age.0.as_millis() as i64).max(cooldown);
    let now = now_ms();
    let store = ctx.store();
    let by_age = store.conn.execute("DELETE FROM sessions WHERE state <> 'open' AND ended_at < ?1", [now - keep])?;
    let by_count = store.conn.execute(
        "DELETE FROM sessions WHERE state <> 'open' AND ended_at < ?2 AND id <=
           (SELECT id FROM sessions WHERE state <> 'open' ORDER BY id DESC LIMIT 1 OFFSET ?1)",
        params![r.audit_max_rows as i64, now - cooldown],
    )?;
    Ok(by_age + by_count)
}

/// Ends, inside a policy transaction, every live session whose account or API key is no longer live
/// under `index` (the policy being committed): disabled, expired, deleted, revoked. Also run every
/// second by [`sweep`], for expiry dates that pass without any change.
pub fn end_dead(
    tx: &Transaction<'_>,
    table: &mut Table,
    config: &Config,
    index: &crate::authz::Index,
) -> Result<usize, ApiError> {
    let now = now_ms();
    let dead: Vec<(i64, String)> = table
        .sessions()
        .into_iter()
        .filter_map(|l| {
            let subject = super::auth::subject_of(&l.principal)?;
            index.principal(subject, now).err().map(|reason| (l.id, super::auth::dead(subject, &reason).message))
        })
        .collect();
    for (id, why) in &dead {
        end(
            tx,
            table,
            config,
            &[*id],
            End::Terminated,
            &Actor::system(),
            Some(&format!("credential no longer valid: {why}")),
        )?;
    }
    Ok(dead.len())
}

/// Terminates live sessions inside a policy transaction (user disabled or deleted, API key revoked),
/// picked by `which` from the table. Returns how many ended.
pub fn end_matching(
    tx: &Transaction<'_>,
    table: &mut Table,
    config: &Config,
    which: impl FnOnce(&Table) -> Vec<i64>,
    actor: &Actor,
    reason: &str,
) -> Result<usize, ApiError> {
    let ids = which(table);
    end(tx, table, config, &ids, End::Terminated, actor, Some(reason))?;
    Ok(ids.len())
}
