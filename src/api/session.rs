//! `session.open|heartbeat|close|list|terminate|show`: HMI client sessions as methods. Each handler
//! parses, authorizes, calls [`crate::sessions`] inside [`Ctx::write_sessions`] (the store lock, one
//! transaction and the session table, undone together) and presents the result. Also the session
//! token's side of authentication ([`resolve`]), since it asks [`super::auth::live`].
//!
//! Every request authenticated with a session token counts as a heartbeat of its session (in
//! memory; `license.persist_interval` batches reach the file), `session.show` included.

use super::{Caller, Ctx, Principal};
use crate::contract::Method;
use crate::contract::sessions::{
    CloseReply, HeartbeatReply, OpenReply, SessionClose, SessionHeartbeat, SessionList, SessionOpen, SessionShow,
    SessionShowReply, SessionTerminate, SessionView, TerminateReply,
};
use crate::protocol::ApiError;
use crate::sessions::lifecycle::{self, ClientInfo, Opener};
use crate::sessions::seats;
use crate::store::audit::{self, Actor, Outcome};
use crate::store::sessions as rows;
use crate::text::{self, Lines};

/// Opens a session for the authenticated caller and takes (or shares) a seat.
pub fn open(ctx: &Ctx, caller: &Caller, p: SessionOpen) -> Result<OpenReply, ApiError> {
    if caller.session.is_some() {
        return Err(ApiError::bad_request(
            "a session token cannot open another session: authenticate with a password, a login token or an API key",
        ));
    }
    if caller.principal == Principal::Anonymous {
        return Err(ApiError::unauthenticated(format!(
            "{} needs credentials: auth {{\"user\",\"password\"}}, {{\"token\"}} or {{\"key\"}}",
            SessionOpen::NAME
        )));
    }
    let info = ClientInfo::clean(p)?;
    let config = ctx.config();
    let actor = caller.actor();
    let opener = Opener {
        principal: &caller.principal,
        superuser: caller.is_superuser(),
        actor: &actor,
        sees_holders: ctx.permits(caller, "sessions.view"),
    };
    let plant = ctx.plant().map(|p| p.as_ref() as &dyn crate::sessions::PlantSeats);
    ctx.write_sessions(|tx, table| lifecycle::open(tx, table, &config, &opener, &info, plant))
}

/// The session a heartbeat or close is for: the request's own session token, or one in `token`.
fn session_of(ctx: &Ctx, caller: &Caller, method: &str, token: Option<String>) -> Result<(Principal, i64), ApiError> {
    match (token, caller.session) {
        (Some(token), _) => super::auth::session_token(ctx, &token).map(|(p, id, _)| (p, id)),
        (None, Some(id)) => Ok((caller.principal.clone(), id)),
        (None, None) => Err(ApiError::unauthenticated(format!(
            "{method} needs the session token: as auth {{\"token\": \"gws_...\"}} or in params.token"
        ))),
    }
}

/// Keeps a session alive. Memory only: no database write.
pub fn heartbeat(ctx: &Ctx, caller: &Caller, p: SessionHeartbeat) -> Result<HeartbeatReply, ApiError> {
    let (_, id) = session_of(ctx, caller, SessionHeartbeat::NAME, p.token)?;
    let lic = &ctx.config().license;
    Ok(HeartbeatReply {
        session_id: id,
        heartbeat_s: seats::heartbeat_s(lic),
        timeout_s: lic.heartbeat_timeout.0.as_secs(),
    })
}

/// Ends the caller's own session and frees its seat.
pub fn close(ctx: &Ctx, caller: &Caller, p: SessionClose) -> Result<CloseReply, ApiError> {
    let (principal, id) = session_of(ctx, caller, SessionClose::NAME, p.token)?;
    let config = ctx.config();
    let actor = Caller { principal, session: Some(id), ..caller.clone() }.actor();
    ctx.write_sessions(|tx, table| lifecycle::close(tx, table, &config, id, &actor))
}

/// The live sessions (and with `all`, the recently ended ones); with `plant`, the live sessions of
/// every gateway of the plant, each with its gateway. Needs `sessions.view`.
pub fn list(ctx: &Ctx, _caller: &Caller, p: SessionList) -> Result<Vec<SessionView>, ApiError> {
    let mut out = ctx.sessions().views();
    if p.plant {
        let Some(plant) = ctx.plant() else {
            return Err(ApiError::bad_request(format!(
                "{} {{plant: true}} needs plant mode ([plant] nats_url in the config)",
                SessionList::NAME
            )));
        };
        let here = plant.gateway().to_string();
        for s in &mut out {
            s.gateway = Some(here.clone());
        }
        out.extend(plant.list_remote()?);
    }
    if p.all {
        let limit = p.limit.unwrap_or(100).min(10_000);
        out.extend(rows::list_ended(&ctx.store().conn, limit)?);
    }
    Ok(out)
}

/// Ends another client's session at once. Needs `sessions.terminate` and nothing else. In plant
/// mode, a session of another gateway (`gateway`) is terminated there, as if there: its control
/// message, its cooldown and its audit entry are that gateway's; this one audits that it asked.
pub fn terminate(ctx: &Ctx, caller: &Caller, p: SessionTerminate) -> Result<TerminateReply, ApiError> {
    let reason = text::clean("reason", p.reason, text::MAX_REASON, Lines::One)?;
    let actor = caller.actor();
    let gateway = text::clean("gateway", p.gateway, text::MAX_FIELD, Lines::One)?;
    match (gateway, ctx.plant()) {
        (Some(gw), Some(plant)) if gw != plant.gateway() => {
            crate::config::check_plant_name(&gw).map_err(|m| ApiError::bad_request(format!("gateway: {m}")))?;
            let id = p.session_id;
            let done = plant.terminate_remote(&gw, id, reason.clone(), &actor);
            let (outcome, detail) = match &done {
                Ok(d) => (
                    Outcome::Ok,
                    serde_json::json!({"gateway": gw, "session_id": id, "reason": reason, "seat_freed": d.seat_freed}),
                ),
                Err(e) => (
                    Outcome::Failed,
                    serde_json::json!({"gateway": gw, "session_id": id, "reason": reason, "error": e}),
                ),
            };
            let target = done.as_ref().map(|d| d.user.clone()).ok();
            ctx.write(|tx| {
                audit::record(tx, &actor, SessionTerminate::NAME, target.as_deref(), outcome, Some(&detail))
            })?;
            let done = done?;
            tracing::info!(session = id, gateway = %gw, user = %done.user, by = %actor.who.describe(), "session terminated on another gateway");
            Ok(done)
        }
        (Some(gw), None) => Err(ApiError::bad_request(format!(
            "gateway {gw:?}: terminating a session of another gateway needs plant mode ([plant] in the config)"
        ))),
        _ => terminate_here(ctx, p.session_id, reason, &actor),
    }
}

/// Terminates a session of this gateway for `actor` (a caller here, or one on another gateway of
/// the plant).
pub fn terminate_here(ctx: &Ctx, id: i64, reason: Option<String>, actor: &Actor) -> Result<TerminateReply, ApiError> {
    let config = ctx.config();
    let (done, host) = ctx.write_sessions(|tx, table| {
        let host = table.get(id).and_then(|l| l.host.clone());
        Ok((lifecycle::terminate(tx, table, &config, id, actor, reason.as_deref())?, host))
    })?;
    if let Some(plant) = ctx.plant() {
        plant.note_terminated(&done.user, host.as_deref());
    }
    tracing::info!(session = id, user = %done.user, by = %actor.who.describe(), source = %actor.source, reason = reason.as_deref().unwrap_or(""), "session terminated");
    Ok(done)
}

/// The caller's own session (by its session token), or any session with `sessions.view`.
pub fn show(ctx: &Ctx, caller: &Caller, p: SessionShow) -> Result<SessionShowReply, ApiError> {
    let id = match (p.session_id, caller.session) {
        (None, Some(own)) => own,
        (Some(id), Some(own)) if id == own => own,
        (Some(id), _) => {
            ctx.authorize_for(caller, "sessions.view", SessionShow::NAME)?;
            id
        }
        (None, None) => {
            return Err(ApiError::unauthenticated(format!(
                "{} without session_id shows the caller's own session: authenticate with its session token \
                 (auth {{\"token\": \"gws_...\"}})",
                SessionShow::NAME
            )));
        }
    };
    let config = ctx.config();
    if let Some(shown) = lifecycle::show_live(&ctx.sessions(), &config, id) {
        return Ok(shown);
    }
    lifecycle::show_ended(&ctx.store().conn, &config, id)?
        .ok_or_else(|| ApiError::not_found(format!("no session {id}")))
}
