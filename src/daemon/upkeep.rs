//! The daemon's own work on sessions and the supervisor lock, outside any request: the restore at
//! start, the one-second sweep (session expiry, sessions whose credential died, lock expiry), the
//! heartbeat batches and retention. The decisions are [`crate::sessions`]' and [`crate::supervisor`]'s;
//! here they are tied to the shared context's locks (the store first, then the session table) and
//! the lock in memory is changed only after the commit that stored it.

use crate::api::Ctx;
use crate::api::LockChange;
use crate::protocol::ApiError;
use crate::sessions::lifecycle;
use crate::store::audit::Actor;
use crate::store::now_ms;
use crate::supervisor::{self, UnlockCause};

/// At start: brings back the sessions that were open (see [`lifecycle::restore`]). Returns (kept,
/// expired).
pub fn restore_sessions(ctx: &Ctx) -> Result<(usize, usize), ApiError> {
    let config = ctx.config();
    ctx.write_sessions(|tx, table| lifecycle::restore(tx, table, &config))
}

/// The periodic session check (every second). Takes the store lock only when a session is due.
/// Returns how many expired.
pub fn sweep_sessions(ctx: &Ctx) -> Result<u32, ApiError> {
    let config = ctx.config();
    if !lifecycle::sweep_due(&ctx.sessions(), &config, &ctx.index()) {
        return Ok(0);
    }
    let swept = ctx.write_sessions(|tx, table| lifecycle::sweep(tx, table, &config, &ctx.index()))?;
    if swept.dead > 0 {
        tracing::info!(ended = swept.dead, "sessions ended: their account or API key is no longer valid");
    }
    if swept.expired > 0 {
        tracing::info!(expired = swept.expired, "sessions expired: no heartbeat");
    }
    Ok(swept.expired)
}

/// Writes the heartbeats seen since the last call. Returns how many rows it wrote.
pub fn persist_sessions(ctx: &Ctx) -> Result<usize, ApiError> {
    Ok(lifecycle::persist(&mut ctx.store(), || ctx.sessions())?)
}

/// Deletes ended sessions past retention (see [`lifecycle::prune`]).
pub fn prune_sessions(ctx: &Ctx) -> rusqlite::Result<usize> {
    lifecycle::prune(&ctx.store().conn, &ctx.config())
}

/// At start: the stored supervisor lock comes back or is cleared (see [`supervisor::restore`]).
/// Returns a line for the log, when there was a lock.
pub fn restore_lock(ctx: &Ctx) -> Result<Option<String>, ApiError> {
    let survives = ctx.config().supervisor.lock_survives_restart;
    ctx.write_lock(|tx, _| {
        let (lock, what) = supervisor::restore(tx, survives, now_ms())?;
        Ok((lock.map_or(LockChange::Clear, LockChange::Set), what))
    })
}

/// Clears a lock whose `expires_in` ran out. Returns whether it did.
pub fn expire_lock(ctx: &Ctx) -> Result<bool, ApiError> {
    if !ctx.lock().is_some_and(|l| l.expired(now_ms())) {
        return Ok(false);
    }
    // Asked again under the store lock: a request may have cleared or replaced it meanwhile.
    let expired = ctx.write_lock(|tx, current| match current.filter(|l| l.expired(now_ms())) {
        Some(old) => {
            // Plant mode: every gateway sees it expire; the first to clear it on the plant wins and
            // the others follow the plant's clear (their own is then not made).
            if let Some(plant) = ctx.plant()
                && plant.put_lock(None, &Actor::system().who, Some(UnlockCause::Expired)).is_err()
            {
                return Ok((LockChange::Keep, false));
            }
            supervisor::record_clear(tx, &Actor::system(), &old, UnlockCause::Expired)?;
            Ok((LockChange::Clear, true))
        }
        None => Ok((LockChange::Keep, false)),
    })?;
    if expired {
        tracing::info!("supervisor lock expired");
    }
    Ok(expired)
}
