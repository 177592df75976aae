//! Running one request for either transport (the control socket and the MQTT bridge): inline when
//! it is cheap, on the blocking pool behind a [`PasswordGate`] when it hashes a password, and the
//! growing delay after a failed login handed back rather than slept, so each transport first lets go
//! of what it holds (an intake budget, a permit) before serving it.
//!
//! A handler that waits on the network rather than hashing (a login the plant directory verifies)
//! lets go of its place in the gate first ([`release_password_gate`]), so a hanging directory never
//! holds the local accounts' password checks; the argon2 memory pool still bounds whatever it hashes
//! afterwards.
//!
//! Must never happen: a permit or budget held while a failed login's delay runs; an unbounded queue
//! of password checks; a permit held while a handler waits on a remote server.

use super::{Ctx, Origin};
use crate::protocol::{ApiError, ErrorCode, Request, Response};
use serde_json::value::RawValue;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, oneshot};

/// How many password checks run at once and how many may wait for one; beyond that a request that
/// needs one is refused at once with `rate_limited`, so a flood of logins costs a bounded amount of
/// memory and time and nobody waits behind an unbounded queue.
pub struct PasswordGate {
    running: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// A place in the gate; freed on drop.
pub struct PasswordPermit<'a>(#[allow(dead_code)] tokio::sync::SemaphorePermit<'a>);

impl PasswordGate {
    pub fn new(running: usize, max_waiting: usize) -> PasswordGate {
        PasswordGate { running: Semaphore::new(running.max(1)), waiting: AtomicUsize::new(0), max_waiting }
    }

    /// A permit to hash one password, after waiting in the bounded queue; `rate_limited` when the
    /// queue is full.
    pub async fn enter(&self) -> Result<PasswordPermit<'_>, ApiError> {
        if let Ok(p) = self.running.try_acquire() {
            return Ok(PasswordPermit(p));
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many password checks waiting; retry shortly, or authenticate with a token",
            )
            .with("retry_after_ms", 1000u64));
        }
        // Counted out again even if this future is dropped while it waits.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _waiting = Waiting(&self.waiting);
        self.running.acquire().await.map(PasswordPermit).map_err(|_| ApiError::internal("the password gate is closed"))
    }

    /// Requests waiting for a permit now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

/// A request's outcome, with the growing delay after a failed login still to be served: the caller
/// drops everything it holds (intake budget, the request's bytes) before [`Ran::after_delay`].
#[must_use]
pub struct Ran {
    pub result: Result<Box<RawValue>, ApiError>,
    pub delay: Duration,
}

impl Ran {
    /// Serves the delay, without holding a thread or a permit, and returns the result.
    pub async fn after_delay(self) -> Result<Box<RawValue>, ApiError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.result
    }
}

/// Requests whose params are larger than this (bulk imports: megabytes of rows) hand the memory they
/// freed back to the system once answered.
const BULK_PARAMS: usize = 1 << 20;

/// Runs a request: inline when it is cheap, on the blocking pool when it hashes a password (after a
/// place in `gate`, which is released before this returns: never held across the delay).
pub async fn run(ctx: &Arc<Ctx>, req: Request, origin: &Origin, gate: &PasswordGate) -> Ran {
    let bulk = req.params.as_ref().is_some_and(|p| p.get().len() > BULK_PARAMS);
    let result = run_one(ctx, req, origin, gate).await;
    if bulk {
        super::release_freed_memory();
    }
    let delay = match &result {
        Err(e) => Duration::from_millis(e.delay_ms),
        Ok(_) => Duration::ZERO,
    };
    Ran { result, delay }
}

async fn run_one(
    ctx: &Arc<Ctx>,
    req: Request,
    origin: &Origin,
    gate: &PasswordGate,
) -> Result<Box<RawValue>, ApiError> {
    if !super::is_slow(&req) {
        return super::handle(ctx, &req, origin);
    }
    let permit = gate.enter().await?;
    let (ctx, origin) = (ctx.clone(), origin.clone());
    let (release, released) = oneshot::channel();
    let job = tokio::task::spawn_blocking(move || {
        let _hook = ReleaseHook::set(release);
        super::handle(&ctx, &req, &origin)
    });
    tokio::pin!(job);
    let joined = tokio::select! {
        biased;
        r = &mut job => r,
        // Released by the handler (or its hook dropped as it ends): the place goes to the next check.
        _ = released => {
            drop(permit);
            job.await
        }
    };
    joined.unwrap_or_else(|e| Err(ApiError::internal(format!("handler panicked: {e}"))))
}

thread_local! {
    /// The running slow request's way to let go of its place in the password gate.
    static RELEASE: RefCell<Option<oneshot::Sender<()>>> = const { RefCell::new(None) };
}

/// Installs a slow request's release on its blocking thread; cleared when the handler ends, even by
/// a panic, so a pooled thread never carries it to the next request.
struct ReleaseHook;

impl ReleaseHook {
    fn set(tx: oneshot::Sender<()>) -> ReleaseHook {
        RELEASE.with(|r| *r.borrow_mut() = Some(tx));
        ReleaseHook
    }
}

impl Drop for ReleaseHook {
    fn drop(&mut self) {
        RELEASE.with(|r| r.borrow_mut().take());
    }
}

/// Lets go of the running request's place in its transport's password gate, for a handler about to
/// wait on a remote server instead of hashing (the plant directory). Whatever it hashes afterwards
/// is still bounded by the argon2 memory pool. A no-op outside a slow request, and after the first
/// call.
pub fn release_password_gate() {
    if let Some(tx) = RELEASE.with(|r| r.borrow_mut().take()) {
        let _ = tx.send(());
    }
}

pub use crate::protocol::Decoded;

/// One request to its reply, the same way for both transports (the control socket decodes a line
/// with [`Request::decode`]; the MQTT bridge decodes a payload once, reading its `reply_to` too).
/// `done` is called as soon as the request no longer needs what the transport holds for it (an
/// intake budget), before a failed login's delay is served.
pub async fn answer(
    ctx: &Arc<Ctx>,
    decoded: Decoded,
    origin: &Origin,
    gate: &PasswordGate,
    done: impl FnOnce(),
) -> Response {
    match decoded {
        Err(bad) => {
            done();
            let (id, err) = *bad;
            Response::from_result(id, Err(err))
        }
        Ok(req) => {
            let id = req.id.clone();
            let ran = run(ctx, req, origin, gate).await;
            done();
            Response::from_result(id, ran.after_delay().await)
        }
    }
}
