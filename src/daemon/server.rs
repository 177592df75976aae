//! The control socket: a Unix stream socket speaking newline-delimited JSON.
//!
//! Each line is one request, each reply one line. A line longer than `daemon.max_request_bytes` gets
//! `bad_request` and the connection is closed (it cannot be resynchronised safely). A client that
//! sends nothing for `daemon.client_timeout`, or dribbles a line slower than that, is disconnected.
//! At most `daemon.max_clients` connections are served at once; the next is told so (`rate_limited`,
//! with `retry_after_ms`) and closed.
//! Who the caller is comes from SO_PEERCRED, never from anything the client says about itself.
//!
//! What must never happen: members of the socket's group locking root out. Connection slots are
//! therefore decided per peer uid, right after SO_PEERCRED and before anything is read ([`Slots`]): a
//! uid other than root and the daemon's own may hold at most a quarter of the slots, all of them
//! together at most `max_clients` minus a few slots kept for root and the daemon's uid; and a
//! connection must complete its first line within [`FIRST_LINE_TIMEOUT`] (or `client_timeout` if
//! shorter), so half-written connections, even root's own, give their slots back within seconds.
//!
//! Password checks (argon2: ~20 MiB and a core for ~150 ms each) pass through a [`PasswordGate`]: a
//! few at once, a bounded queue behind them, and nothing held while a failed login's growing delay is
//! served ([`run`] returns the delay instead of sleeping it, so each transport first lets go of what
//! it holds). The socket has a gate of its own, so a flood on MQTT never queues the console's logins.

use crate::api::run::{PasswordGate, answer};
use crate::api::{Ctx, Origin};
use crate::protocol::{ApiError, ErrorCode, Request, Response};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use serde_json::Value;
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

/// The retry hint a connection refused for want of a slot gets: half-written connections give their
/// slots back within [`FIRST_LINE_TIMEOUT`], most connections (one CLI command) far sooner.
pub const SLOT_RETRY_AFTER_MS: u64 = 1000;

/// How long a new connection may take to send its first complete line.
pub const FIRST_LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection slots of the control socket, per peer uid. Pure accounting (no I/O), so the rules
/// are tested on their own; the server holds one behind a mutex and a [`Slot`] gives its place back
/// when its connection ends.
#[derive(Debug)]
pub struct Slots {
    capacity: usize,
    /// Slots only root and the daemon's own uid may take.
    reserved: usize,
    /// The most slots one other uid may hold.
    per_uid: usize,
    privileged: [u32; 2],
    in_use: usize,
    /// Slots held by uids other than the privileged ones, in all and per uid.
    others: usize,
    by_uid: HashMap<u32, usize>,
}

/// Why a connection did not get a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot open to this uid is taken.
    Full,
    /// This uid holds its share already.
    UidShare(usize),
}

impl Slots {
    /// `capacity` slots (`daemon.max_clients`); root and `daemon_uid` are privileged. Kept for them:
    /// one eighth of the slots, at least 1 and at most 8 (none when there is a single slot). Each other
    /// uid: at most a quarter of the rest, at least 1.
    pub fn new(capacity: usize, daemon_uid: u32) -> Slots {
        let reserved = if capacity >= 2 { (capacity / 8).clamp(1, 8) } else { 0 };
        let per_uid = ((capacity - reserved) / 4).max(1);
        Slots { capacity, reserved, per_uid, privileged: [0, daemon_uid], in_use: 0, others: 0, by_uid: HashMap::new() }
    }

    fn is_privileged(&self, uid: u32) -> bool {
        self.privileged.contains(&uid)
    }

    /// Takes a slot for a connection of `uid`, or says why not.
    pub fn admit(&mut self, uid: u32) -> Result<(), Refusal> {
        if self.in_use >= self.capacity {
            return Err(Refusal::Full);
        }
        if !self.is_privileged(uid) {
            if self.others >= self.capacity - self.reserved {
                return Err(Refusal::Full);
            }
            let held = self.by_uid.get(&uid).copied().unwrap_or(0);
            if held >= self.per_uid {
                return Err(Refusal::UidShare(self.per_uid));
            }
            self.by_uid.insert(uid, held + 1);
            self.others += 1;
        }
        self.in_use += 1;
        Ok(())
    }

    /// Gives back a slot `admit` gave to `uid`.
    pub fn release(&mut self, uid: u32) {
        self.in_use = self.in_use.saturating_sub(1);
        if !self.is_privileged(uid) {
            self.others = self.others.saturating_sub(1);
            match self.by_uid.get_mut(&uid) {
                Some(n) if *n > 1 => *n -= 1,
                _ => {
                    self.by_uid.remove(&uid);
                }
            }
        }
    }
}

/// One taken slot; dropping it gives it back.
struct Slot {
    slots: Arc<Mutex<Slots>>,
    uid: u32,
}

impl Slot {
    fn take(slots: &Arc<Mutex<Slots>>, uid: u32) -> Result<Slot, Refusal> {
        slots.lock().unwrap_or_else(|e| e.into_inner()).admit(uid)?;
        Ok(Slot { slots: slots.clone(), uid })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).release(self.uid);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another gatewarden is already serving {0}")]
    InUse(String),
    #[error("cannot bind control socket {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("control socket group {0:?} does not exist")]
    NoGroup(String),
}

/// Binds the control socket with mode 0660 (and the configured group), replacing a stale socket file
/// but never one a live daemon is serving.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, BindError> {
    let shown = path.display().to_string();
    let io_err = |source| BindError::Io { path: shown.clone(), source };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(BindError::InUse(shown));
        }
        std::fs::remove_file(path).map_err(io_err)?;
    }
    let gid = match group {
        Some(name) => match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Some(g.gid),
            _ => return Err(BindError::NoGroup(name.to_string())),
        },
        None => None,
    };
    // Bind under a tight umask so the socket never exists with wider permissions, even briefly.
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o117));
    let listener = UnixListener::bind(path);
    umask(old);
    let listener = listener.map_err(io_err)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io_err)?;
    if let Some(gid) = gid {
        nix::unistd::chown(path, None, Some(gid)).map_err(|e| io_err(io::Error::from(e)))?;
    }
    Ok(listener)
}

/// Password checks running at once for the control socket (each holds the argon2 memory cost, 19 MiB
/// by default). Its queue is never full: each of the `daemon.max_clients` connections has at most one
/// request in flight.
pub const SOCKET_PASSWORD_CHECKS: usize = 2;

/// Accepts connections until the task is dropped.
pub async fn serve(listener: UnixListener, ctx: Arc<Ctx>) {
    let max_clients = ctx.config().daemon.max_clients;
    let daemon_uid = nix::unistd::geteuid().as_raw();
    let slots = Arc::new(Mutex::new(Slots::new(max_clients, daemon_uid)));
    let gate = Arc::new(PasswordGate::new(SOCKET_PASSWORD_CHECKS, max_clients));
    let refusals = Arc::new(Semaphore::new(REFUSALS_LINGERING));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                crate::warn_throttled!("socket-accept", "control socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (uid, origin) = match getsockopt(&stream, PeerCredentials) {
            Ok(c) => (c.uid(), Origin::Socket { uid: c.uid(), pid: c.pid() }),
            Err(e) => {
                crate::warn_throttled!("socket-peercred", "control socket: cannot read peer credentials, closing: {e}");
                continue;
            }
        };
        let (ctx, gate) = (ctx.clone(), gate.clone());
        match Slot::take(&slots, uid) {
            Ok(slot) => {
                tokio::spawn(async move {
                    connection(stream, origin, ctx, &gate).await;
                    drop(slot);
                });
            }
            Err(refusal) => {
                let message = match refusal {
                    Refusal::Full => "too many clients connected; try again shortly".to_string(),
                    Refusal::UidShare(n) => format!("uid {uid} already has {n} connections open; close one first"),
                };
                tracing::debug!("{}: refused: {message}", origin.describe());
                // Nothing failed: the caller is over a bound and may come back once a slot is free.
                let err = ApiError::new(ErrorCode::RateLimited, message).with("retry_after_ms", SLOT_RETRY_AFTER_MS);
                let lingering = refusals.clone().try_acquire_owned().ok();
                tokio::spawn(refuse(stream, Response::from_result(Value::Null, Err(err)), lingering));
            }
        }
    }
}

/// Refused connections that may linger (see [`refuse`]) at once; beyond that they are closed at once.
const REFUSALS_LINGERING: usize = 64;

/// How long a refused connection lingers for its client to read the refusal and hang up.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);

/// Tells a connection without a slot why, then closes it. A client usually sends its request before it
/// reads; closing a Unix socket with that request unread makes the client's read fail with
/// ECONNRESET, and it would never see the refusal. So, when `lingering` holds a permit, the request is
/// read and dropped (at most 64 KiB, within [`REFUSAL_LINGER`]) until the client hangs up.
async fn refuse(mut stream: UnixStream, resp: Response, lingering: Option<tokio::sync::OwnedSemaphorePermit>) {
    use tokio::io::AsyncReadExt;
    let answered = async {
        reply(&mut stream, resp).await?;
        if lingering.is_some() {
            stream.shutdown().await?;
            let mut sink = (&mut stream).take(64 * 1024);
            tokio::io::copy(&mut sink, &mut tokio::io::sink()).await?;
        }
        io::Result::Ok(())
    };
    // A peer that neither reads nor hangs up cannot hold this task either.
    let _ = tokio::time::timeout(REFUSAL_LINGER, answered).await;
    drop(lingering);
}

enum Frame {
    Line(Vec<u8>),
    TooLarge,
    Eof,
}

/// Reads one newline-terminated frame of at most `max` bytes (a final unterminated line counts).
async fn read_frame<R: AsyncRead + Unpin>(r: &mut BufReader<R>, max: usize) -> io::Result<Frame> {
    let mut buf = Vec::new();
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() { Frame::Eof } else { Frame::Line(buf) });
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if buf.len() + chunk.len() > max {
            return Ok(Frame::TooLarge);
        }
        buf.extend_from_slice(chunk);
        let used = done.unwrap_or(available.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Frame::Line(buf));
        }
    }
}

async fn reply(stream: &mut UnixStream, resp: Response) -> io::Result<()> {
    stream.write_all(&resp.to_bytes(b"\n")).await
}

async fn connection(stream: UnixStream, origin: Origin, ctx: Arc<Ctx>, gate: &PasswordGate) {
    let config = ctx.config();
    let (max, timeout) = (config.daemon.max_request_bytes, config.daemon.client_timeout.0);
    drop(config);
    let mut reader = BufReader::new(stream);
    // The first line must come soon: a slot is not for holding a connection open without a request.
    let mut wait = timeout.min(FIRST_LINE_TIMEOUT);
    loop {
        let line = match tokio::time::timeout(wait, read_frame(&mut reader, max)).await {
            Err(_) => {
                tracing::debug!("{}: no complete line within {wait:?}, closing", origin.describe());
                return;
            }
            Ok(Err(_)) | Ok(Ok(Frame::Eof)) => return,
            Ok(Ok(Frame::TooLarge)) => {
                let err = ApiError::bad_request(format!("request exceeds the maximum size of {max} bytes"));
                let _ = reply(reader.get_mut(), Response::from_result(Value::Null, Err(err))).await;
                return;
            }
            Ok(Ok(Frame::Line(line))) => line,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // A request came: from now on the connection may idle like any other.
        wait = timeout;
        let resp = answer(&ctx, Request::decode(&line), &origin, gate, || ()).await;
        if reply(reader.get_mut(), resp).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<String> {
        let mut r = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            match read_frame(&mut r, max).await.unwrap() {
                Frame::Line(l) => out.push(String::from_utf8(l).unwrap()),
                Frame::TooLarge => {
                    out.push("<too large>".into());
                    return out;
                }
                Frame::Eof => return out,
            }
        }
    }

    #[test]
    fn other_uids_get_a_share_and_root_keeps_its_slots() {
        let mut s = Slots::new(256, 999);
        assert_eq!((s.reserved, s.per_uid), (8, 62));
        // One group member fills its share...
        for _ in 0..62 {
            assert_eq!(s.admit(1000), Ok(()));
        }
        assert_eq!(s.admit(1000), Err(Refusal::UidShare(62)));
        // ...three more fill theirs; together they stop short of the reserved slots.
        for uid in [1001, 1002, 1003] {
            for _ in 0..62 {
                assert_eq!(s.admit(uid), Ok(()));
            }
        }
        assert_eq!(s.others, 248);
        assert_eq!(s.admit(1004), Err(Refusal::Full));
        // Root and the daemon's own uid still get in, up to the capacity.
        for uid in [0, 999, 0, 0, 0, 0, 0, 999] {
            assert_eq!(s.admit(uid), Ok(()));
        }
        assert_eq!(s.admit(0), Err(Refusal::Full));
        // A slot given back is taken again by whoever asks first within the rules.
        s.release(1000);
        assert_eq!(s.admit(0), Ok(()));
        assert_eq!(s.admit(1000), Err(Refusal::Full));
        s.release(0);
        assert_eq!(s.admit(1004), Ok(()));
        assert_eq!(s.admit(1000), Err(Refusal::Full));
        assert_eq!(s.by_uid.get(&1000), Some(&61));
    }

    #[test]
    fn slot_accounting_never_drifts() {
        // Any order of admits and releases leaves the counters equal to what is held.
        let mut s = Slots::new(16, 5);
        let mut held: Vec<u32> = Vec::new();
        let uids = [0u32, 5, 7, 7, 8, 7, 9, 0, 7, 8];
        for round in 0..500usize {
            let uid = uids[round * 7 % uids.len()];
            if round % 3 == 2 && !held.is_empty() {
                let u = held.remove(round % held.len());
                s.release(u);
            } else if s.admit(uid).is_ok() {
                held.push(uid);
            }
            assert_eq!(s.in_use, held.len());
            assert_eq!(s.others, held.iter().filter(|u| **u != 0 && **u != 5).count());
            assert!(s.in_use <= 16 && s.others <= 16 - s.reserved);
            for (uid, n) in &s.by_uid {
                assert_eq!(*n, held.iter().filter(|u| *u == uid).count());
                assert!(*n <= s.per_uid);
            }
        }
    }

    #[test]
    fn tiny_capacities_still_work() {
        let mut one = Slots::new(1, 5);
        assert_eq!(one.admit(1000), Ok(()));
        assert_eq!(one.admit(0), Err(Refusal::Full));
        let mut two = Slots::new(2, 5);
        assert_eq!(two.admit(1000), Ok(()));
        assert_eq!(two.admit(1001), Err(Refusal::Full));
        assert_eq!(two.admit(0), Ok(()));
    }

    #[tokio::test]
    async fn frames_split_on_newlines_across_buffer_refills() {
        assert_eq!(frames(b"{\"a\":1}\n{\"b\":2}\nrest", 64).await, vec!["{\"a\":1}", "{\"b\":2}", "rest"]);
    }

    #[tokio::test]
    async fn password_gate_queues_a_few_and_refuses_the_rest_at_once() {
        let gate = PasswordGate::new(1, 2);
        let first = gate.enter().await.unwrap();
        let (a, b) = (gate.enter(), gate.enter());
        tokio::pin!(a, b);
        // Two wait (polled once each, so they are counted)...
        assert!(futures_poll(&mut a).await.is_none());
        assert!(futures_poll(&mut b).await.is_none());
        assert_eq!(gate.waiting(), 2);
        // ...the third is refused without waiting.
        let e = gate.enter().await.err().expect("refused");
        assert_eq!(e.code, ErrorCode::RateLimited);
        drop(first);
        assert!(a.await.is_ok());
        assert_eq!(gate.waiting(), 1);
    }

    /// Polls a future once.
    async fn futures_poll<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match std::pin::Pin::new(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_without_reading_it_all() {
        assert_eq!(frames(b"0123456789\nabc\n", 5).await, vec!["<too large>"]);
        assert_eq!(frames(b"01234\n", 5).await, vec!["01234"]);
    }
}
