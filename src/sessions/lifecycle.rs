//! A session from open to end: open (with the terminate cooldown and the seat plan), close,
//! terminate, expiry, the end of sessions whose credential died, heartbeats written in batches, the
//! restore at start, and retention. Every function that changes a session runs inside the caller's
//! transaction with the table journaled (`Ctx::write_sessions`), and writes the row, the audit entry,
//! the event and the retained `license` state in that one transaction.
//!
//! Must never happen: a terminated client back within `license.terminate_cooldown` (refused with
//! `session_terminated` and `retry_after_s`); a session whose account or API key is no longer live
//! kept open (ended in the transaction that killed it, and by the sweep for dates that pass); a
//! session token telling a stranger anything about a session (the digest is checked first).

use super::seats::{self, heartbeat_s, limits};
use super::{Claim, Full, Live, PlantSeats, Table};
use crate::accounts::{Principal, secret};
use crate::authz::{DenyReason, Index, SubjectKey};
use crate::config::Config;
use crate::contract::Method;
use crate::contract::sessions::{
    CloseReply, ControlAction, ControlMessage, OpenReply, PlantLink, SessionClosed, SessionEnd, SessionExpired,
    SessionOpen, SessionOpened, SessionShowReply, SessionState, SessionTerminated, TerminateReply,
};
use crate::protocol::{ApiError, ErrorCode};
use crate::store::audit::{self, Actor, Outcome};
use crate::store::sessions::{self as rows, NewSession};
use crate::store::{Store, now_ms, outbox};
use crate::text::{self, Lines};
use rusqlite::{Connection, Transaction};
use serde::Serialize;
use serde_json::Value;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Closed,
    Expired,
    Terminated,
}

impl End {
    fn state(self) -> SessionState {
        match self {
            End::Closed => SessionState::Closed,
            End::Expired => SessionState::Expired,
            End::Terminated => SessionState::Terminated,
        }
    }

    /// The audit trail's action for it.
    fn audit_action(self) -> &'static str {
        match self {
            End::Closed => "session.close",
            End::Expired => "session.expire",
            End::Terminated => "session.terminate",
        }
    }
}

/// The client fields of `session.open`, cleaned: one line each, at most [`text::MAX_FIELD`]
/// characters, `type` not empty.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub client_type: String,
    pub project: Option<String>,
    pub host: Option<String>,
    pub address: Option<String>,
    /// The seat it will take (`read_only`).
    pub mode: super::SeatMode,
}

impl ClientInfo {
    pub fn clean(p: SessionOpen) -> Result<ClientInfo, ApiError> {
        let field = |name: &str, v: Option<String>| text::clean(name, v, text::MAX_FIELD, Lines::One);
        let client_type = field("type", Some(p.client_type))?
            .ok_or_else(|| ApiError::bad_request(format!("{} needs a non-empty \"type\"", SessionOpen::NAME)))?;
        Ok(ClientInfo {
            client_type,
            project: field("project", p.project)?,
            host: field("host", p.host)?,
            address: field("address", p.address)?,
            mode: super::SeatMode::from_param(p.read_only),
        })
    }
}

/// Who opens a session.
#[derive(Debug, Clone, Copy)]
pub struct Opener<'a> {
    /// An authenticated user or API key (a session token never opens another session).
    pub principal: &'a Principal,
    /// The built-in admin or a master key: counts as holding every reserved role.
    pub superuser: bool,
    /// How the audit trail names it.
    pub actor: &'a Actor,
    /// Holds `sessions.view`: a refusal for want of seats names who holds them.
    pub sees_holders: bool,
}

/// Opens a session for `who` and takes (or shares) a seat, or refuses with `session_terminated`
/// (cooldown) or `license_limit_reached`.
pub fn open(
    tx: &Transaction<'_>,
    table: &mut Table,
    config: &Config,
    who: &Opener<'_>,
    info: &ClientInfo,
    plant: Option<&dyn PlantSeats>,
) -> Result<OpenReply, ApiError> {
    let (user_id, user_name) = match who.principal {
        Principal::User { id, name, .. } => (*id, Some(name.clone())),
        Principal::Key { owner_id, .. } => (*owner_id, None),
        Principal::Anonymous => return Err(ApiError::unauthenticated("opening a session needs credentials")),
    };
    let lic = &config.license;
    let now = now_ms();
    expire_due(tx, table, config)?;
    let user_name = match user_name {
        Some(name) => name,
        None => rows::user_name(tx, user_id)?,
    };
    // Plant mode: a terminate on any gateway of the plant cools the user down here too.
    let plant_ended = plant.and_then(|p| p.terminated_at(&user_name, info.host.as_deref(), lic.cooldown_scope));
    check_cooldown(tx, config, user_id, &user_name, info.host.as_deref(), now, plant_ended)?;

    let body = secret::random_text();
    let digest = secret::digest(&body);
    let (key_row, token_id) = match who.principal {
        Principal::Key { id, .. } => (Some(*id), None),
        Principal::User { token_id, .. } => (None, *token_id),
        Principal::Anonymous => (None, None),
    };
    let id = rows::insert(
        tx,
        &NewSession {
            user_id,
            user_name: &user_name,
            key_row,
            token_id,
            digest: &digest,
            client_type: &info.client_type,
            project: info.project.as_deref(),
            host: info.host.as_deref(),
            address: info.address.as_deref(),
            opened_at: now,
        },
    )?;
    let roles = roles_of(tx, who, config)?;
    let refuse = |table: &Table, full: &Full| seats::limit_reached(config, table, &roles, full, who.sees_holders);
    let ask = super::Ask {
        user_id,
        host: info.host.as_deref(),
        roles: &roles,
        client_type: &info.client_type,
        mode: info.mode,
    };
    let limits = seats::limits_now(config, table);
    let mut plan = table.plan(&limits, id, &ask).map_err(|full| refuse(table, &full))?;
    let connected = table.plant.as_ref().is_some_and(|p| p.state == PlantLink::Connected);
    // Read-only seats are each gateway's own (docs/plant.md): only a new read-write seat needs a key.
    if let Some(plant) = plant.filter(|_| connected && !plan.shared && !plan.read_only) {
        // The reserved pools the opener holds, in the order the local plan tries them, then the
        // general one: the same order plant-wide.
        let pools: Vec<Option<String>> =
            limits.held_pools(&roles).map(|(role, _)| Some(role.clone())).chain([None]).collect();
        match plant.claim(&plan.seat, id, &user_name, &pools) {
            Claim::Taken(pool) => plan.pool = pool,
            Claim::Full { in_use } => {
                // No plant seat: a client that may read only takes one of this gateway's read-only
                // seats, as it would locally.
                let read_only = super::Ask { mode: super::SeatMode::ReadOnly, ..ask };
                match table.plan(&limits, id, &read_only) {
                    Ok(p) if info.mode != super::SeatMode::ReadWrite => plan = p,
                    _ => {
                        let may = info.mode != super::SeatMode::ReadWrite && limits.read_only_seats > 0;
                        return Err(refuse(
                            table,
                            &Full {
                                limit: limits.seats,
                                in_use,
                                reserved: limits.reserved_total(),
                                type_full: None,
                                read_only: may.then(|| (limits.read_only_seats, table.read_only_use())),
                            },
                        ));
                    }
                }
            }
            Claim::Offline => {
                // NATS went away under us: the local allotment decides, as it does offline.
                if let Some(p) = table.plant.as_mut() {
                    p.state = PlantLink::Offline;
                    p.since = now_ms();
                }
                plan = table.plan(&seats::limits_now(config, table), id, &ask).map_err(|full| refuse(table, &full))?;
            }
        }
    }
    rows::set_seat(tx, id, plan.pool.as_deref(), plan.read_only)?;
    table.insert(Live {
        id,
        principal: who.principal.clone(),
        user_id,
        user: user_name.clone(),
        digest,
        client_type: info.client_type.clone(),
        project: info.project.clone(),
        host: info.host.clone(),
        address: info.address.clone(),
        opened_ms: now,
        last_seen_ms: now,
        beat: Instant::now(),
        persisted_ms: now,
        seat: plan.seat.clone(),
        pool: plan.pool.clone(),
        read_only: plan.read_only,
    });
    let event = SessionOpened {
        ts: now,
        session_id: id,
        user: user_name.clone(),
        client_type: info.client_type.clone(),
        project: info.project.clone(),
        host: info.host.clone(),
        address: info.address.clone(),
        shared_seat: plan.shared,
        pool: plan.pool.clone(),
        read_only: plan.read_only,
        by: who.actor.who.clone(),
    };
    audit::record(tx, who.actor, SessionOpen::NAME, Some(&user_name), Outcome::Ok, Some(&detail(&event)?))?;
    outbox::emit(tx, &event)?;
    if !plan.shared {
        seats::publish(tx, config, table)?;
    }
    Ok(OpenReply {
        session_id: id,
        token: secret::format(secret::SESSION_PREFIX, id, &body),
        heartbeat_s: heartbeat_s(lic),
        timeout_s: lic.heartbeat_timeout.0.as_secs(),
        shared_seat: plan.shared,
        pool: plan.pool,
        read_only: plan.read_only,
    })
}

/// Refuses a user a supervisor terminated while `license.terminate_cooldown` runs. `user` (the
/// default scope) blocks the user on every host, so a new or re-cased host name does not sidestep it;
/// `user_host` only on the same host, compared without case.
fn check_cooldown(
    conn: &Connection,
    config: &Config,
    user_id: i64,
    user_name: &str,
    host: Option<&str>,
    now: i64,
    plant_ended: Option<i64>,
) -> Result<(), ApiError> {
    let cooldown = config.license.terminate_cooldown.0.as_millis() as i64;
    if cooldown == 0 {
        return Ok(());
    }
    let ended = rows::last_terminated(conn, user_id, host, config.license.cooldown_scope)?.max(plant_ended);
    match ended.filter(|e| e + cooldown > now) {
        Some(ended) => {
            let retry = (ended + cooldown - now + 999) / 1000;
            Err(ApiError::new(
                ErrorCode::SessionTerminated,
                format!(
                    "a session of {user_name} was terminated by a supervisor; reopening is blocked for {retry} s more"
                ),
            )
            .with("retry_after_s", retry))
        }
        None => Ok(()),
    }
}

/// The role names the opener holds; a superuser counts as holding every reserved role.
fn roles_of(conn: &Connection, who: &Opener<'_>, config: &Config) -> rusqlite::Result<Vec<String>> {
    if who.superuser {
        return Ok(config.license.reserved.keys().cloned().collect());
    }
    match who.principal {
        Principal::User { id, .. } => rows::user_roles(conn, *id),
        Principal::Key { id, .. } => rows::key_roles(conn, *id),
        Principal::Anonymous => Ok(Vec::new()),
    }
}

/// Ends the session `id` of its own client (`session.close`).
pub fn close(
    tx: &Transaction<'_>,
    table: &mut Table,
    config: &Config,
    id: i64,
    actor: &Actor,
) -> Result<CloseReply, ApiError> {
    let freed = end(tx, table, config, &[id], End::Closed, actor, None)?;
    Ok(CloseReply { session_id: id, closed: true, seat_freed: freed > 0 })
}

/// Ends another client's live session at once (`session.terminate`): `not_found` for an unknown id,
/// `conflict` for one already ended.
pub fn terminate(
    tx: &Transaction<'_>,
    table: &mut Table,
    config: &Config,
    id: i64,
    actor: &Actor,
    reason: Option<&str>,
) -> Result<TerminateReply, ApiError> {
    let Some(user) = table.get(id).map(|l| l.user.clone()) else {
        return Err(match rows::state(tx, id)? {
            Some(s) => ApiError::conflict(format!("session {id} has already ended ({})", s.as_str())),
            None => ApiError::not_found(format!("no session {id}")),
        });
    };
    let freed = end(tx, table, config, &[id], End::Terminated, actor, reason)?;
    Ok(TerminateReply {
        session_id: id,
        user,
        terminated: true,
        seat_freed: freed > 0,
        reason: reason.map(str::to_string),
    })
}

/// Ends live sessions inside the caller's transaction: rows, audit, events (and for a terminate the
/// client's control message), the retained licence state. Returns how many seats were freed.
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
        let ended_by = (how == End::Terminated).then_some(&actor.who);
        rows::end(tx, id, how.state(), now, live.last_seen_ms, ended_by, reason)?;
        let ended = SessionEnd {
            ts: now,
            session_id: id,
            user: live.user.clone(),
            client_type: live.client_type,
            host: live.host,
            by: actor.who.clone(),
            reason: reason.map(str::to_string),
        };
        audit::record(tx, actor, how.audit_action(), Some(&live.user), Outcome::Ok, Some(&detail(&ended)?))?;
        match how {
            End::Closed => outbox::emit(tx, &SessionClosed(ended))?,
            End::Expired => outbox::emit(tx, &SessionExpired(ended))?,
            End::Terminated => {
                outbox::emit(tx, &SessionTerminated(ended))?;
                let control = ControlMessage {
                    action: ControlAction::Terminate,
                    reason: reason.map(str::to_string),
                    by: actor.who.clone(),
                };
                outbox::publish(tx, &crate::contract::topics::session_control(id), &detail(&control)?, false)?
            }
        };
    }
    let freed = before - table.in_use();
    if freed > 0 {
        seats::publish(tx, config, table)?;
    }
    Ok(freed)
}

/// Expires the sessions silent for longer than `license.heartbeat_timeout`, in the caller's
/// transaction. Returns how many.
pub fn expire_due(tx: &Transaction<'_>, table: &mut Table, config: &Config) -> Result<u32, ApiError> {
    let due = table.due(Instant::now(), config.license.heartbeat_timeout.0);
    if due.is_empty() {
        return Ok(0);
    }
    let reason = format!("no heartbeat for {} s", config.license.heartbeat_timeout.0.as_secs());
    end(tx, table, config, &due, End::Expired, &Actor::system(), Some(&reason))?;
    Ok(due.len() as u32)
}

/// Who the policy index knows a session's principal as.
fn subject_of(p: &Principal) -> Option<SubjectKey> {
    match p {
        Principal::User { id, .. } => Some(SubjectKey::User(*id)),
        Principal::Key { id, .. } => Some(SubjectKey::Key(*id)),
        Principal::Anonymous => None,
    }
}

/// Whether the periodic sweep has work: a session past its timeout, or one whose account or API key
/// is no longer live under `index`. Memory only, so the sweep takes the store lock only when it must.
pub fn sweep_due(table: &Table, config: &Config, index: &Index) -> bool {
    let now = now_ms();
    !table.due(Instant::now(), config.license.heartbeat_timeout.0).is_empty()
        || table.sessions().iter().any(|l| subject_of(&l.principal).is_some_and(|s| index.principal(s, now).is_err()))
}

/// What the sweep ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Silent for longer than the heartbeat timeout.
    pub expired: u32,
    /// Their account or API key is no longer live.
    pub dead: usize,
}

/// The periodic sweep (every second, from the daemon's loop), in the caller's transaction.
pub fn sweep(tx: &Transaction<'_>, table: &mut Table, config: &Config, index: &Index) -> Result<Swept, ApiError> {
    let expired = expire_due(tx, table, config)?;
    let dead = end_dead(tx, table, config, index)?;
    Ok(Swept { expired, dead })
}

/// Why a credential stopped being valid, as the terminate reason of its sessions says it.
fn dead_reason(subject: SubjectKey, reason: &DenyReason) -> String {
    let what = match (subject, reason) {
        (SubjectKey::User(_), DenyReason::AccountDisabled) => "this account is disabled",
        (SubjectKey::Key(_), DenyReason::AccountDisabled) => "the owner of this API key is disabled",
        (SubjectKey::User(_), DenyReason::AccountExpired) => "this account has expired",
        (SubjectKey::Key(_), DenyReason::AccountExpired) => "this API key has expired (or its owner's account has)",
        (SubjectKey::User(_), _) => "the account behind it no longer exists",
        (SubjectKey::Key(_), _) => "the API key behind it no longer exists (deleted or revoked)",
    };
    format!("credential no longer valid: {what}")
}

/// Ends, inside a policy transaction, every live session whose account or API key is no longer live
/// under `index` (the policy being committed): disabled, expired, deleted, revoked. Also run every
/// second by [`sweep`], for expiry dates that pass without any change.
pub fn end_dead(tx: &Transaction<'_>, table: &mut Table, config: &Config, index: &Index) -> Result<usize, ApiError> {
    let now = now_ms();
    let dead: Vec<(i64, String)> = table
        .sessions()
        .into_iter()
        .filter_map(|l| {
            let subject = subject_of(&l.principal)?;
            index.principal(subject, now).err().map(|reason| (l.id, dead_reason(subject, &reason)))
        })
        .collect();
    for (id, why) in &dead {
        end(tx, table, config, &[*id], End::Terminated, &Actor::system(), Some(why))?;
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

/// The refusal of a valid-looking session token whose session is not live: `unauthenticated` when
/// the id is unknown or the secret does not match (checked first, so a stranger learns nothing),
/// `session_terminated` with `by` and `reason`, `session_expired` for a closed or expired one.
pub fn not_live(conn: &Connection, id: i64, body: &str) -> rusqlite::Result<ApiError> {
    let Some(ending) = rows::ending(conn, id)?.filter(|e| secret::matches(body, &e.digest)) else {
        return Ok(invalid_token());
    };
    Ok(match ending.state {
        Some(SessionState::Terminated) => {
            let by = ending.ended_by.unwrap_or_default();
            let message = format!(
                "session {id} was terminated by {}{}",
                by.describe(),
                ending.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            );
            ApiError::new(ErrorCode::SessionTerminated, message)
                .with("by", serde_json::to_value(&by).unwrap_or_default())
                .with("reason", ending.reason)
        }
        Some(SessionState::Closed) => {
            ApiError::new(ErrorCode::SessionExpired, format!("session {id} was closed: open a new one"))
        }
        // Open in the file but not in memory: it ended a moment ago, or never came back at a restart.
        _ => ApiError::new(ErrorCode::SessionExpired, format!("session {id} expired: open a new one")),
    })
}

/// The refusal of a session token that names no session of ours.
pub fn invalid_token() -> ApiError {
    ApiError::unauthenticated("session token is not valid: open a new session")
}

/// A live session with its timing and the figures of its seat's pool, if `id` is live.
pub fn show_live(table: &Table, config: &Config, id: i64) -> Option<SessionShowReply> {
    let live = table.get(id)?;
    let timeout = config.license.heartbeat_timeout.0;
    let left = timeout.saturating_sub(live.beat.elapsed());
    let pool = seats::pools(config, table, |p| p == live.pool.as_deref()).into_iter().next();
    Some(SessionShowReply {
        session: table.view(live),
        heartbeat_s: heartbeat_s(&config.license),
        timeout_s: timeout.as_secs(),
        expires_at: Some(now_ms() + left.as_millis() as i64),
        seat_pool: pool,
    })
}

/// An ended session, from the file.
pub fn show_ended(conn: &Connection, config: &Config, id: i64) -> rusqlite::Result<Option<SessionShowReply>> {
    Ok(rows::ended(conn, id)?.map(|session| SessionShowReply {
        session,
        heartbeat_s: heartbeat_s(&config.license),
        timeout_s: config.license.heartbeat_timeout.0.as_secs(),
        expires_at: None,
        seat_pool: None,
    }))
}

/// Writes the heartbeats seen since the last call in one transaction. `table` locks the session
/// table; it is taken after the store, never held across the write. Returns how many rows it wrote.
pub fn persist<'t>(store: &mut Store, table: impl Fn() -> MutexGuard<'t, Table>) -> rusqlite::Result<usize> {
    let rows = table().unpersisted();
    if rows.is_empty() {
        return Ok(0);
    }
    store.write(|tx| rows::write_last_seen(tx, &rows))?;
    table().mark_persisted(&rows);
    Ok(rows.len())
}

/// At start: brings back the sessions that were open. One whose last recorded heartbeat is older than
/// `heartbeat_timeout + persist_interval` certainly lapsed while the daemon was down and expires now
/// (as does one whose account is gone); the others get a fresh `heartbeat_timeout` from now (their
/// last beats may not have been written). Returns (kept, expired).
pub fn restore(tx: &Transaction<'_>, table: &mut Table, config: &Config) -> Result<(usize, usize), ApiError> {
    let lic = &config.license;
    let horizon = now_ms() - (lic.heartbeat_timeout.0 + lic.persist_interval.0).as_millis() as i64;
    let (mut kept, mut lapsed) = (0, Vec::new());
    for row in rows::open_rows(tx)? {
        let user_id = row.user_id.unwrap_or(0);
        let principal = match row.key {
            Some((id, name, master)) => Principal::Key { id, name, owner_id: user_id, master },
            None => Principal::User { id: user_id, name: row.user_name.clone(), token_id: row.token_id },
        };
        // A session whose account is gone cannot come back.
        let dead = row.user_id.is_none() || row.last_seen < horizon;
        let live = Live {
            id: row.id,
            principal,
            user_id,
            user: row.user_name,
            digest: row.digest,
            client_type: row.client_type,
            project: row.project,
            seat: Table::seat_key(&limits(lic), row.id, user_id, row.host.as_deref()),
            host: row.host,
            address: row.address,
            opened_ms: row.opened_at,
            last_seen_ms: row.last_seen,
            beat: Instant::now(),
            persisted_ms: row.last_seen,
            pool: row.pool,
            read_only: row.read_only,
        };
        table.insert(live);
        if dead {
            lapsed.push(row.id);
        } else {
            kept += 1;
        }
    }
    let reason = "heartbeat lapsed while gatewarden was stopped";
    end(tx, table, config, &lapsed, End::Expired, &Actor::system(), Some(reason))?;
    seats::publish(tx, config, table)?;
    Ok((kept, lapsed.len()))
}

/// Prunes ended sessions by the audit trail's retention: older than `audit_max_age` (but never within
/// the terminate cooldown, which they enforce), and beyond the newest `audit_max_rows` ended ones, so
/// a plant with heavy churn keeps a bounded file too.
pub fn prune(conn: &Connection, config: &Config) -> rusqlite::Result<usize> {
    let cooldown = config.license.terminate_cooldown.0;
    let keep = config.retention.audit_max_age.0.max(cooldown);
    let now = now_ms();
    rows::prune(conn, now - millis(keep), config.retention.audit_max_rows, now - millis(cooldown))
}

fn millis(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// A payload as the audit trail's detail (or an outbox message) keeps it.
fn detail(v: &impl Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_fields_are_cleaned_and_type_is_required() {
        let p = |t: &str, host: Option<&str>| SessionOpen {
            client_type: t.into(),
            project: None,
            host: host.map(str::to_string),
            address: None,
            read_only: None,
        };
        let info = ClientInfo::clean(p(" hmi ", Some("  panel-1 "))).unwrap();
        assert_eq!((info.client_type.as_str(), info.host.as_deref()), ("hmi", Some("panel-1")));
        let err = ClientInfo::clean(p("  ", None)).unwrap_err();
        assert!(err.message.contains("\"type\""), "{err}");
        assert!(ClientInfo::clean(p("hmi", Some(&"x".repeat(500)))).is_err());
        assert!(ClientInfo::clean(p("hmi\nx", None)).is_err());
    }

    #[test]
    fn a_dead_credential_says_which_and_why() {
        let r = dead_reason(SubjectKey::Key(3), &DenyReason::UnknownSubject);
        assert!(r.starts_with("credential no longer valid: ") && r.contains("API key"), "{r}");
        assert!(dead_reason(SubjectKey::User(3), &DenyReason::AccountDisabled).contains("disabled"));
    }
}
