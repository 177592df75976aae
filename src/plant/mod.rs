//! Plant mode (SPEC "Plant mode"): the gateways of one plant share one seat pool and one supervisor
//! lock through NATS JetStream key-value buckets, and reach each other's sessions (plant-wide list,
//! remote terminate) over NATS request/reply. Off unless `[plant] nats_url` is set: without it
//! nothing here runs and nothing connects to NATS.
//!
//! What must never happen:
//! - **More seats in use plant-wide than `plant.seats` while NATS is reachable.** Each seat of a
//!   gateway holds one seat key (`seat.g.<n>`, or `seat.r.<role>.<n>` for a reserved pool) claimed
//!   create-if-absent: JetStream orders the creates of every gateway, so at most one wins a key, and
//!   there are exactly `plant.seats` keys. A key is renewed by compare-and-swap on its revision, so a
//!   gateway never renews (or deletes) a key that lapsed and was claimed by another.
//! - **A dead gateway's seats held for ever.** The seats bucket's `max_age` is `plant.seat_ttl`: a
//!   key not renewed within it is removed by the server (nats-server 2.9 has no per-key TTL; a renew
//!   writes a new message, whose age starts again).
//! - **A request waiting on NATS without bound.** Every NATS operation made for a request is bounded
//!   by `plant.request_timeout`; past it the gateway counts as offline and serves on its local
//!   allotment (`plant.offline_seats`).
//! - **A deadlock between a request and this module.** NATS runs on its own runtime thread; a request
//!   (holding the store and session locks) waits for it with a timeout, and this module touches the
//!   store, the session table and the lock only from the blocking pool, never on that thread.
//!
//! Offline: seats opened while NATS was unreachable hold no key ("unclaimed"); when NATS is back
//! they are claimed again. What cannot be claimed (the plant filled up meanwhile) stays open over the
//! limit until those sessions end, and no new seat is given on this gateway until it is back under.

use crate::api::Ctx;
use crate::config::Config;
use crate::contract::sessions::{LockState, PlantLink, PlantState, SessionView, TerminateReply, UnlockCause};
use crate::contract::{Actor, Method};
use crate::protocol::ApiError;
use crate::sessions::{Claim, PlantSeats, SeatKey};
use crate::store::now_ms;
use async_nats::jetstream::kv;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The key of the plant-wide supervisor lock in the plant bucket.
const LOCK_KEY: &str = "lock";

/// The most sessions one gateway sends in answer to a plant-wide list.
const MAX_LISTED: usize = 10_000;

/// What a seat key holds: who holds the seat (for operators reading the bucket, and for a gateway
/// that restarts to find its own keys again).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeatValue {
    pub gateway: String,
    /// The seat's id on its gateway ([`SeatKey::id`]).
    pub seat: String,
    pub session_id: i64,
    pub user: String,
    pub pool: Option<String>,
    pub since: i64,
}

/// The plant-wide lock as the plant bucket holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlantLock {
    /// The lock, or null once cleared.
    pub lock: Option<LockState>,
    /// The gateway it was set or cleared on.
    pub gateway: String,
    /// Who set or cleared it there.
    pub by: Actor,
    /// Why it was cleared (null when set).
    #[serde(default)]
    pub cause: Option<UnlockCause>,
}

impl PlantLock {
    /// Whether its texts are within what a lock set on a gateway may hold (a reason of one line of at
    /// most [`crate::text::MAX_REASON`] characters, names of at most 64 bytes), whatever a peer wrote.
    fn bounded(&self) -> bool {
        let name = |n: &Option<String>| n.as_ref().is_none_or(|n| n.len() <= 64);
        let names = name(&self.by.u) && name(&self.by.key_id) && self.gateway.len() <= crate::text::MAX_FIELD;
        let lock = self.lock.as_ref().is_none_or(|l| {
            name(&l.o.u)
                && name(&l.o.key_id)
                && crate::text::clean("reason", l.reason.clone(), crate::text::MAX_REASON, crate::text::Lines::One)
                    .is_ok()
        });
        names && lock
    }
}

/// Most users whose latest plant-wide terminate a gateway remembers (for the cooldown).
const MAX_COOLDOWNS: usize = 100_000;

/// A supervisor's terminate, as the plant bucket keeps it (`cooldown.<user>`): the user's latest.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Terminated {
    user: String,
    host: Option<String>,
    at: i64,
    gateway: String,
}

/// A plant-wide list request and its answers.
#[derive(Debug, Serialize, Deserialize)]
struct ListAsk {
    from: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ListAnswer {
    gateway: String,
    sessions: Vec<SessionView>,
}

/// A terminate sent to the gateway holding the session.
#[derive(Debug, Serialize, Deserialize)]
struct TerminateAsk {
    from: String,
    session_id: i64,
    reason: Option<String>,
    by: Actor,
    source: String,
}

impl TerminateAsk {
    /// Every text of the ask within the bounds the local method keeps: one line each, the reason at
    /// most [`crate::text::MAX_REASON`] characters, names at most 64 bytes.
    fn bounded(self) -> Result<TerminateAsk, ApiError> {
        use crate::text::{self, Lines};
        let line = |what: &str, v: String| {
            text::clean(what, Some(v), text::MAX_FIELD, Lines::One).map(Option::unwrap_or_default)
        };
        let name = |what: &str, v: Option<String>| match v {
            Some(n) if n.is_empty() || n.len() > 64 => Err(ApiError::bad_request(format!("{what}: 1 to 64 bytes"))),
            other => Ok(other),
        };
        Ok(TerminateAsk {
            from: line("from", self.from)?,
            session_id: self.session_id,
            reason: text::clean("reason", self.reason, text::MAX_REASON, Lines::One)?,
            by: Actor { u: name("by.u", self.by.u)?, key_id: name("by.key_id", self.by.key_id)? },
            source: line("source", self.source)?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct TerminateAnswer {
    #[serde(default)]
    result: Option<TerminateReply>,
    #[serde(default)]
    error: Option<ApiError>,
}

/// A seat key this gateway holds.
#[derive(Debug, Clone)]
struct Held {
    key: String,
    revision: u64,
    value: Bytes,
    claimed: Instant,
}

/// A key of the seats bucket as the watch last delivered it.
#[derive(Debug, Clone)]
struct Seen {
    gateway: String,
    seat: String,
    revision: u64,
    at: Instant,
}

#[derive(Clone)]
struct Conn {
    client: async_nats::Client,
    seats: kv::Store,
    plant: kv::Store,
}

/// What the request side and the plant's own tasks share.
struct Shared {
    name: String,
    gateway: String,
    seats: u32,
    offline_seats: u32,
    reserved: BTreeMap<String, u32>,
    ttl: Duration,
    renew: Duration,
    timeout: Duration,
    replicas: usize,
    conn: RwLock<Option<Conn>>,
    link: Mutex<(PlantLink, i64)>,
    /// Seat id -> the key held for it.
    held: Mutex<HashMap<String, Held>>,
    /// Key -> its holder, from the watch.
    view: Mutex<HashMap<String, Seen>>,
    /// The last revision of the lock key seen or written.
    lock_rev: AtomicU64,
    /// The lock was changed here while offline: pushed to the plant when it is back.
    lock_dirty: AtomicBool,
    /// Seats of this gateway without a plant key, as the last reconcile found them.
    unclaimed: std::sync::atomic::AtomicU32,
    /// Who made the last change kept local while offline, and why a clear.
    dirty_by: Mutex<Option<(Actor, Option<UnlockCause>)>>,
    /// User name -> the latest terminate of one of its sessions on any gateway (the cooldown).
    terminated: Mutex<HashMap<String, Terminated>>,
    /// Wakes the reconcile after a change of the session table.
    wake: tokio::sync::Notify,
    /// Spreads the gateways' first tries over the keys of a pool.
    next: AtomicU64,
}

/// Plant mode's handle, held by the shared context.
pub struct Plant {
    rt: tokio::runtime::Handle,
    shared: Arc<Shared>,
}

/// The subjects of the plant's requests.
fn list_subject(plant: &str) -> String {
    format!("gatewarden.{plant}.sessions.list")
}

fn terminate_subject(plant: &str, gateway: &str) -> String {
    format!("gatewarden.{plant}.gw.{gateway}.terminate")
}

/// The seats bucket (TTL'd) and the plant bucket (the lock, no TTL) of a plant.
pub fn bucket_names(plant: &str) -> (String, String) {
    (format!("gatewarden_{plant}_seats"), format!("gatewarden_{plant}_plant"))
}

/// A role's name in a key: as it is when it is only letters, digits, `-` and `_`; otherwise `=`
/// and its bytes in hex (the other characters NATS keys allow would split or clash).
fn pool_token(role: &str) -> String {
    if !role.is_empty() && role.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        role.to_string()
    } else {
        let hex: String = role.bytes().map(|b| format!("{b:02x}")).collect();
        format!("={hex}")
    }
}

/// The prefix of a pool's keys.
fn pool_prefix(pool: Option<&str>) -> String {
    match pool {
        None => "seat.g.".into(),
        Some(role) => format!("seat.r.{}.", pool_token(role)),
    }
}

impl Shared {
    /// The seats of a pool: the reserved role's, or what the reservations leave of `plant.seats`.
    fn pool_size(&self, pool: Option<&str>) -> u32 {
        match pool {
            Some(role) => self.reserved.get(role).copied().unwrap_or(0),
            None => self.seats.saturating_sub(self.reserved.values().sum()),
        }
    }

    fn conn(&self) -> Option<Conn> {
        self.conn.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The connection, while the link is up.
    fn live_conn(&self) -> Option<Conn> {
        self.conn().filter(|_| self.connected())
    }

    fn connected(&self) -> bool {
        self.link.lock().unwrap_or_else(|p| p.into_inner()).0 == PlantLink::Connected
    }

    /// Seat keys in use plant-wide as the watch saw them: keys renewed within the TTL.
    fn in_use(&self) -> u32 {
        let view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        view.iter().filter(|(k, s)| k.starts_with("seat.") && s.at.elapsed() < self.ttl).count() as u32
    }

    /// The gateways seen alive (their presence keys, renewed within the TTL), this one included.
    fn gateways(&self) -> Vec<String> {
        let view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        let mut set: BTreeSet<String> = view
            .iter()
            .filter(|(k, s)| k.starts_with("gw.") && s.at.elapsed() < self.ttl)
            .map(|(_, s)| s.gateway.clone())
            .collect();
        set.insert(self.gateway.clone());
        set.into_iter().collect()
    }

    /// The keys of `pool` in the order to try them: believed free first (absent from the view, or
    /// not renewed within the TTL), starting at a point that differs between gateways and calls, so
    /// parallel opens do not all race for the same key. Keys the view holds live are not tried: the
    /// answer is then "full", as the local table answers.
    fn candidates(&self, pool: Option<&str>) -> Vec<String> {
        let size = self.pool_size(pool) as u64;
        if size == 0 {
            return Vec::new();
        }
        let prefix = pool_prefix(pool);
        let start = self.next.fetch_add(1, Ordering::Relaxed) % size;
        let view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        (0..size)
            .map(|i| format!("{prefix}{}", (start + i) % size))
            .filter(|k| view.get(k).is_none_or(|s| s.at.elapsed() >= self.ttl))
            .collect()
    }

    fn set_link(&self, state: PlantLink) -> bool {
        let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        if link.0 == state {
            return false;
        }
        *link = (state, now_ms());
        true
    }

    fn figures(&self, unclaimed: u32) -> PlantState {
        let (state, since) = *self.link.lock().unwrap_or_else(|p| p.into_inner());
        let seen = self.conn().is_some();
        PlantState {
            name: self.name.clone(),
            gateway: self.gateway.clone(),
            state,
            since,
            seats: self.seats,
            offline_seats: self.offline_seats,
            in_use: seen.then(|| self.in_use()),
            unclaimed,
            gateways: self.gateways(),
        }
    }
}

/// Claims one key of `pools` (in order) for a seat: create-if-absent, so one gateway wins a key.
async fn claim_key(shared: &Shared, conn: &Conn, seat_id: &str, value: Bytes, pools: &[Option<String>]) -> Claim {
    for pool in pools {
        for key in shared.candidates(pool.as_deref()) {
            match conn.seats.create(&key, value.clone()).await {
                Ok(revision) => {
                    let held = Held { key, revision, value, claimed: Instant::now() };
                    shared.held.lock().unwrap_or_else(|p| p.into_inner()).insert(seat_id.to_string(), held);
                    return Claim::Taken(pool.clone());
                }
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                Err(e) => {
                    tracing::warn!("plant: claiming seat key {key} failed: {e}");
                    return Claim::Offline;
                }
            }
        }
    }
    Claim::Full { in_use: shared.in_use() }
}

impl Plant {
    /// Runs `fut` on the plant's runtime and waits for it from a request's thread, at most
    /// `plant.request_timeout` (and a little for the hand-over); `None` past it.
    fn block<T: Send + 'static>(&self, fut: impl std::future::Future<Output = T> + Send + 'static) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let timeout = self.shared.timeout;
        self.rt.spawn(async move {
            if let Ok(v) = tokio::time::timeout(timeout, fut).await {
                let _ = tx.send(v);
            }
        });
        rx.recv_timeout(timeout + Duration::from_millis(200)).ok()
    }

    /// After a change of the session table: frees the keys of seats that ended, at once.
    pub fn seats_changed(&self) {
        self.shared.wake.notify_one();
    }

    pub fn gateway(&self) -> &str {
        &self.shared.gateway
    }

    /// Publishes a change of the supervisor lock made on this gateway to the plant, by
    /// compare-and-swap on the lock key's last revision seen here: `conflict` when another gateway
    /// changed it meanwhile (the change here is then not made). Offline, the change stays local and
    /// is pushed when NATS is back.
    pub fn put_lock(&self, lock: Option<&LockState>, by: &Actor, cause: Option<UnlockCause>) -> Result<(), ApiError> {
        let shared = &self.shared;
        let value = PlantLock { lock: lock.cloned(), gateway: shared.gateway.clone(), by: by.clone(), cause };
        let bytes = Bytes::from(serde_json::to_vec(&value).map_err(ApiError::internal)?);
        let keep_local = || {
            *shared.dirty_by.lock().unwrap_or_else(|p| p.into_inner()) = Some((by.clone(), cause));
            shared.lock_dirty.store(true, Ordering::Release);
        };
        let Some(conn) = shared.live_conn() else {
            keep_local();
            return Ok(());
        };
        let rev = shared.lock_rev.load(Ordering::Acquire);
        let put = self.block(async move {
            if rev == 0 {
                conn.plant
                    .create(LOCK_KEY, bytes)
                    .await
                    .map_err(|e| (e.kind() == kv::CreateErrorKind::AlreadyExists, e.to_string()))
            } else {
                conn.plant
                    .update(LOCK_KEY, bytes, rev)
                    .await
                    .map_err(|e| (e.kind() == kv::UpdateErrorKind::WrongLastRevision, e.to_string()))
            }
        });
        match put {
            Some(Ok(new)) => {
                shared.lock_rev.fetch_max(new, Ordering::AcqRel);
                Ok(())
            }
            Some(Err((true, _))) => Err(ApiError::conflict(
                "the plant's supervisor lock was changed on another gateway a moment ago: look at it again (lock show) and retry",
            )),
            Some(Err((false, e))) => {
                tracing::warn!("plant: publishing the supervisor lock failed, kept local until NATS is back: {e}");
                keep_local();
                Ok(())
            }
            None => {
                tracing::warn!("plant: publishing the supervisor lock timed out, kept local until NATS is back");
                keep_local();
                Ok(())
            }
        }
    }

    /// Tells the plant a supervisor terminated a session of `user` here (on `host`), so the
    /// terminate cooldown holds on every gateway. Sent in the background: the terminate is done
    /// already; offline, the cooldown is this gateway's alone.
    pub fn note_terminated(&self, user: &str, host: Option<&str>) {
        let shared = self.shared.clone();
        let t = Terminated {
            user: user.to_string(),
            host: host.map(str::to_string),
            at: now_ms(),
            gateway: shared.gateway.clone(),
        };
        shared.terminated.lock().unwrap_or_else(|p| p.into_inner()).insert(t.user.clone(), t.clone());
        let Some(conn) = shared.live_conn() else { return };
        let Ok(bytes) = serde_json::to_vec(&t) else { return };
        let key = format!("cooldown.{}", pool_token(user));
        let timeout = shared.timeout;
        self.rt.spawn(async move {
            match tokio::time::timeout(timeout, conn.plant.put(key, bytes.into())).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("plant: publishing a terminate cooldown failed: {e}"),
                Err(_) => tracing::warn!("plant: publishing a terminate cooldown timed out"),
            }
        });
    }

    /// The live sessions of the other gateways of the plant, each with its gateway. Gateways that
    /// do not answer within `plant.request_timeout` are left out (and logged).
    pub fn list_remote(&self) -> Result<Vec<SessionView>, ApiError> {
        let shared = self.shared.clone();
        let Some(conn) = shared.live_conn() else {
            return Err(offline_error());
        };
        let expected: BTreeSet<String> = shared.gateways().into_iter().filter(|g| *g != shared.gateway).collect();
        let subject = list_subject(&shared.name);
        let ask = serde_json::to_vec(&ListAsk { from: shared.gateway.clone() }).map_err(ApiError::internal)?;
        // Half the timeout to gather: what answered by then is shown.
        let window = shared.timeout / 2;
        let got = self.block(async move {
            use futures_util::StreamExt;
            let inbox = conn.client.new_inbox();
            let mut sub = conn.client.subscribe(inbox.clone()).await.map_err(|e| e.to_string())?;
            conn.client.publish_with_reply(subject, inbox, ask.into()).await.map_err(|e| e.to_string())?;
            conn.client.flush().await.map_err(|e| e.to_string())?;
            let mut answers: Vec<ListAnswer> = Vec::new();
            let deadline = tokio::time::Instant::now() + window;
            let mut seen = BTreeSet::new();
            while seen.len() < expected.len() {
                match tokio::time::timeout_at(deadline, sub.next()).await {
                    Ok(Some(msg)) => {
                        if let Ok(a) = serde_json::from_slice::<ListAnswer>(&msg.payload) {
                            seen.insert(a.gateway.clone());
                            answers.push(a);
                        }
                    }
                    _ => break,
                }
            }
            let missing: Vec<&String> = expected.iter().filter(|g| !seen.contains(*g)).collect();
            if !missing.is_empty() {
                tracing::warn!(?missing, "plant: gateways did not answer the plant-wide session list in time");
            }
            Ok::<_, String>(answers)
        });
        let answers = match got {
            Some(Ok(a)) => a,
            Some(Err(e)) => return Err(ApiError::internal(format!("plant-wide session list failed: {e}"))),
            None => return Err(offline_error()),
        };
        let mut out = Vec::new();
        for a in answers {
            out.extend(a.sessions.into_iter().take(MAX_LISTED).map(|mut s| {
                s.gateway = Some(a.gateway.clone());
                s
            }));
        }
        Ok(out)
    }

    /// Sends a terminate to the gateway holding the session; its answer (or refusal) is returned.
    pub fn terminate_remote(
        &self,
        gateway: &str,
        session_id: i64,
        reason: Option<String>,
        by: &crate::store::audit::Actor,
    ) -> Result<TerminateReply, ApiError> {
        let shared = self.shared.clone();
        let Some(conn) = shared.live_conn() else {
            return Err(offline_error());
        };
        let ask = TerminateAsk {
            from: shared.gateway.clone(),
            session_id,
            reason,
            by: by.who.clone(),
            source: by.source.clone(),
        };
        let payload = serde_json::to_vec(&ask).map_err(ApiError::internal)?;
        let subject = terminate_subject(&shared.name, gateway);
        let answer = self.block(async move { conn.client.request(subject, payload.into()).await });
        let gw = gateway.to_string();
        match answer {
            Some(Ok(msg)) => {
                let a: TerminateAnswer = serde_json::from_slice(&msg.payload)
                    .map_err(|e| ApiError::internal(format!("gateway {gw} answered the terminate unreadably: {e}")))?;
                match (a.result, a.error) {
                    (Some(r), _) => Ok(r),
                    (None, Some(e)) => Err(e),
                    (None, None) => {
                        Err(ApiError::internal(format!("gateway {gw} answered the terminate with nothing")))
                    }
                }
            }
            Some(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                Err(ApiError::not_found(format!("no gateway {gw} is connected to the plant")))
            }
            Some(Err(e)) => Err(ApiError::internal(format!("terminate on gateway {gw} failed: {e}"))),
            None => Err(ApiError::internal(format!(
                "gateway {gw} did not answer the terminate within plant.request_timeout"
            ))),
        }
    }
}

fn offline_error() -> ApiError {
    ApiError::new(
        crate::protocol::ErrorCode::Internal,
        "the plant is unreachable (NATS offline): only this gateway's sessions can be reached",
    )
    .with("plant", "offline")
}

impl PlantSeats for Plant {
    fn terminated_at(&self, user: &str, host: Option<&str>, scope: crate::config::CooldownScope) -> Option<i64> {
        let terminated = self.shared.terminated.lock().unwrap_or_else(|p| p.into_inner());
        let t = terminated.get(user)?;
        let same_host = match (&t.host, host) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (None, None) => true,
            _ => false,
        };
        match scope {
            crate::config::CooldownScope::User => Some(t.at),
            crate::config::CooldownScope::UserHost => same_host.then_some(t.at),
        }
    }

    fn claim(&self, seat: &SeatKey, session_id: i64, user: &str, pools: &[Option<String>]) -> Claim {
        let shared = self.shared.clone();
        let Some(conn) = shared.live_conn() else { return Claim::Offline };
        let seat_id = seat.id();
        let value = SeatValue {
            gateway: shared.gateway.clone(),
            seat: seat_id.clone(),
            session_id,
            user: user.to_string(),
            pool: None,
            since: now_ms(),
        };
        let pools = pools.to_vec();
        let claimed = self.block(async move {
            // The value names the pool it was taken from; a key per pool tried.
            for pool in &pools {
                let v = SeatValue { pool: pool.clone(), ..value.clone() };
                let bytes = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
                match claim_key(&shared, &conn, &seat_id, bytes, std::slice::from_ref(pool)).await {
                    Claim::Full { .. } => continue,
                    other => return other,
                }
            }
            Claim::Full { in_use: shared.in_use() }
        });
        match claimed {
            Some(c) => c,
            None => {
                // Counted offline at once, so the next opens do not each wait the timeout with the
                // store held; the next renew batch that succeeds makes it connected again.
                tracing::warn!("plant: claiming a seat timed out: serving on the offline allotment");
                self.shared.set_link(PlantLink::Offline);
                Claim::Offline
            }
        }
    }
}

/// Starts plant mode: the plant's runtime thread, which connects to NATS (retrying while it is
/// unreachable), and marks the session table as plant-managed (offline until connected).
pub fn start(ctx: Arc<Ctx>) -> Result<Arc<Plant>, String> {
    let config = ctx.config();
    let p = &config.plant;
    let shared = Arc::new(Shared {
        name: p.name.clone(),
        gateway: config.gateway_name().to_string(),
        seats: p.seats,
        offline_seats: p.offline_seats,
        reserved: config.license.reserved.clone(),
        ttl: p.seat_ttl.0,
        renew: p.renew_interval.0,
        timeout: p.request_timeout.0,
        replicas: p.replicas as usize,
        conn: RwLock::new(None),
        link: Mutex::new((PlantLink::Connecting, now_ms())),
        held: Mutex::new(HashMap::new()),
        view: Mutex::new(HashMap::new()),
        lock_rev: AtomicU64::new(0),
        lock_dirty: AtomicBool::new(false),
        unclaimed: std::sync::atomic::AtomicU32::new(0),
        dirty_by: Mutex::new(None),
        terminated: Mutex::new(HashMap::new()),
        wake: tokio::sync::Notify::new(),
        next: AtomicU64::new(seed(config.gateway_name())),
    });
    ctx.sessions().plant = Some(shared.figures(0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("gatewarden-plant")
        .build()
        .map_err(|e| format!("plant runtime: {e}"))?;
    let handle = rt.handle().clone();
    let (s, c) = (shared.clone(), ctx.clone());
    std::thread::Builder::new()
        .name("gatewarden-plant".into())
        .spawn(move || rt.block_on(run(s, c, config)))
        .map_err(|e| format!("plant thread: {e}"))?;
    Ok(Arc::new(Plant { rt: handle, shared }))
}

/// A starting point for the key search that differs between gateways.
fn seed(gateway: &str) -> u64 {
    gateway.bytes().fold(1469598103934665603u64, |h, b| (h ^ b as u64).wrapping_mul(1099511628211))
}

/// The options the client connects with: TLS and credentials from files, reconnects for ever.
async fn connect_options(
    config: &Config,
    events: tokio::sync::mpsc::UnboundedSender<async_nats::Event>,
) -> Result<async_nats::ConnectOptions, String> {
    let p = &config.plant;
    let mut opts = match &p.creds_file {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| format!("plant.creds_file {}: {e}", path.display()))?,
        None => async_nats::ConnectOptions::new(),
    };
    if let (Some(user), Some(file)) = (&p.user, &p.password_file) {
        let pw = std::fs::read_to_string(file).map_err(|e| format!("plant.password_file {}: {e}", file.display()))?;
        opts = opts.user_and_password(user.clone(), pw.trim_end_matches(['\r', '\n']).to_string());
    }
    if let Some(ca) = &p.ca_file {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    if p.nats_url.as_deref().is_some_and(|u| u.contains("tls://")) {
        opts = opts.require_tls(true);
    }
    let timeout = p.request_timeout.0;
    Ok(opts
        .name(format!("gatewarden {} ({})", config.gateway_name(), p.name))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(timeout)
        .request_timeout(Some(timeout))
        .reconnect_delay_callback(|attempts| Duration::from_millis((250 * attempts as u64).min(5000)))
        .event_callback(move |ev| {
            let events = events.clone();
            async move {
                let _ = events.send(ev);
            }
        }))
}

/// The plant's runtime: connect, then serve connected until the link drops, for ever.
async fn run(shared: Arc<Shared>, ctx: Arc<Ctx>, config: Arc<Config>) {
    let (ev_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let opts = match connect_options(&config, ev_tx).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!("plant mode cannot start: {e}");
            set_link(&shared, &ctx, PlantLink::Offline).await;
            return;
        }
    };
    let url = config.plant.nats_url.clone().unwrap_or_default();
    let urls: Vec<String> = url.split(',').map(|u| u.trim().to_string()).collect();
    let client = match opts.connect(urls).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("plant mode cannot start: connecting to NATS: {e}");
            set_link(&shared, &ctx, PlantLink::Offline).await;
            return;
        }
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        while client.connection_state() != async_nats::connection::State::Connected {
            // Wait for the next event (or look again shortly: events may have been missed).
            let _ = tokio::time::timeout(Duration::from_millis(500), events.recv()).await;
        }
        match setup(&shared, &client).await {
            Ok((conn, seat_watch)) => {
                backoff = Duration::from_millis(200);
                *shared.conn.write().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
                tracing::info!(plant = %shared.name, gateway = %shared.gateway, "plant: connected to NATS");
                if let Err(e) = connected(&shared, &ctx, &conn, seat_watch, &mut events).await {
                    tracing::warn!("plant: {e}");
                }
                set_link(&shared, &ctx, PlantLink::Offline).await;
                tracing::warn!(plant = %shared.name, "plant: NATS unreachable: serving on plant.offline_seats");
            }
            Err(e) => {
                crate::warn_throttled!("plant-setup", "plant: setting up the buckets failed: {e}");
                if shared.set_link(PlantLink::Offline) {
                    publish_figures(&shared, &ctx).await;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The buckets (made by the first gateway of the plant, found by the others) and the initial view
/// of the seat keys.
async fn setup(shared: &Shared, client: &async_nats::Client) -> Result<(Conn, kv::Watch), String> {
    let js = async_nats::jetstream::new(client.clone());
    let (seats_name, plant_name) = bucket_names(&shared.name);
    let seats = bucket(
        &js,
        &seats_name,
        "gatewarden plant seats: one key per seat in use, expired by max_age",
        1,
        shared.ttl,
        shared.replicas,
    )
    .await?;
    let plant =
        bucket(&js, &plant_name, "gatewarden plant: the supervisor lock", 5, Duration::ZERO, shared.replicas).await?;
    // Changes from now on, then what the bucket holds now (the keys of this gateway from before a
    // restart are found here): started first, so nothing falls between the two.
    let watch = seats.watch_all().await.map_err(|e| format!("watching the seats: {e}"))?;
    let mut view = HashMap::new();
    {
        use futures_util::StreamExt;
        let mut keys = seats.keys().await.map_err(|e| format!("listing {seats_name}: {e}"))?;
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| format!("listing {seats_name}: {e}"))?;
            if let Ok(Some(entry)) = seats.entry(&key).await
                && entry.operation == kv::Operation::Put
            {
                view.insert(key, seen(&entry));
            }
        }
    }
    *shared.view.lock().unwrap_or_else(|p| p.into_inner()) = view;
    Ok((Conn { client: client.clone(), seats, plant }, watch))
}

/// A key-value bucket, made as the KV API makes one (stream `KV_<bucket>`, subjects
/// `$KV.<bucket>.>`) when it is not there yet. Made here rather than by `create_key_value`, which
/// first asks for account details in a shape nats-server 2.9 does not send. `max_age` zero: no
/// expiry. The first gateway of a plant makes it; the others find it as it is (its `max_age` is
/// the seat TTL that counts: a differing `plant.seat_ttl` is logged).
async fn bucket(
    js: &async_nats::jetstream::Context,
    name: &str,
    description: &str,
    history: i64,
    max_age: Duration,
    replicas: usize,
) -> Result<kv::Store, String> {
    use async_nats::jetstream::stream;
    if let Ok(mut s) = js.get_stream(format!("KV_{name}")).await {
        if let Ok(info) = s.info().await
            && info.config.max_age != max_age
        {
            tracing::warn!(
                bucket = name,
                "plant: the bucket's max_age is {:?}, not {:?} as configured here: the bucket's counts",
                info.config.max_age,
                max_age
            );
        }
        return js.get_key_value(name).await.map_err(|e| format!("opening bucket {name}: {e}"));
    }
    let config = stream::Config {
        name: format!("KV_{name}"),
        description: Some(description.to_string()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: history,
        max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: replicas,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    match js.create_stream(config).await {
        Ok(_) => {}
        // Made by another gateway in between.
        Err(e) if js.get_stream(format!("KV_{name}")).await.is_ok() => tracing::debug!("plant: {name}: {e}"),
        Err(e) => return Err(format!("creating bucket {name}: {e}")),
    }
    js.get_key_value(name).await.map_err(|e| format!("opening bucket {name}: {e}"))
}

fn seen(entry: &kv::Entry) -> Seen {
    let v: Option<SeatValue> = serde_json::from_slice(&entry.value).ok();
    let gateway = match &v {
        Some(v) => v.gateway.clone(),
        None => serde_json::from_slice::<serde_json::Value>(&entry.value)
            .ok()
            .and_then(|v| v.get("gateway").and_then(|g| g.as_str()).map(str::to_string))
            .unwrap_or_default(),
    };
    Seen { gateway, seat: v.map(|v| v.seat).unwrap_or_default(), revision: entry.revision, at: Instant::now() }
}

/// Serves while connected: the watches, the renew batches, the reconcile, the plant's requests.
async fn connected(
    shared: &Arc<Shared>,
    ctx: &Arc<Ctx>,
    conn: &Conn,
    mut seat_watch: kv::Watch,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<async_nats::Event>,
) -> Result<(), String> {
    use futures_util::StreamExt;
    push_dirty_lock(shared, ctx, conn).await;
    // With history: the lock and the cooldowns as they are now come first (a gateway that starts,
    // or comes back, after a lock was set gets it), then every change.
    let mut lock_watch =
        conn.plant.watch_with_history(">").await.map_err(|e| format!("watching the plant bucket: {e}"))?;
    let mut lists = conn.client.subscribe(list_subject(&shared.name)).await.map_err(|e| e.to_string())?;
    let mut terminates =
        conn.client.subscribe(terminate_subject(&shared.name, &shared.gateway)).await.map_err(|e| e.to_string())?;
    presence(shared, conn).await?;
    reconcile(shared, ctx, conn).await?;
    set_link(shared, ctx, PlantLink::Connected).await;
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + shared.renew, shared.renew);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(async_nats::Event::Disconnected) | Some(async_nats::Event::Closed) | None => {
                    return Err("NATS connection lost".into());
                }
                Some(other) => tracing::debug!("plant: NATS event: {other}"),
            },
            entry = seat_watch.next() => match entry {
                Some(Ok(entry)) => {
                    let mut view = shared.view.lock().unwrap_or_else(|p| p.into_inner());
                    match entry.operation {
                        kv::Operation::Put => { view.insert(entry.key.clone(), seen(&entry)); }
                        _ => { view.remove(&entry.key); }
                    }
                }
                Some(Err(e)) => return Err(format!("seat watch: {e}")),
                None => return Err("seat watch ended".into()),
            },
            entry = lock_watch.next() => match entry {
                Some(Ok(entry)) if entry.key == LOCK_KEY => lock_seen(shared, ctx, &entry).await,
                Some(Ok(entry)) => cooldown_seen(shared, &entry),
                Some(Err(e)) => return Err(format!("lock watch: {e}")),
                None => return Err("lock watch ended".into()),
            },
            Some(msg) = lists.next() => answer_list(shared, ctx, conn, msg).await,
            Some(msg) = terminates.next() => {
                let (c, n) = (ctx.clone(), conn.clone());
                tokio::spawn(async move { answer_terminate(&c, &n, msg).await });
            }
            _ = renew.tick() => {
                renew_all(shared, conn).await?;
                presence(shared, conn).await?;
                // Back from a request that timed out while the connection stayed up.
                shared.set_link(PlantLink::Connected);
                reconcile(shared, ctx, conn).await?;
            }
            _ = shared.wake.notified() => reconcile(shared, ctx, conn).await?,
        }
    }
}

/// This gateway's presence key, renewed with its seats.
async fn presence(shared: &Shared, conn: &Conn) -> Result<(), String> {
    let v = serde_json::json!({"gateway": shared.gateway, "version": env!("CARGO_PKG_VERSION"), "ts": now_ms()});
    conn.seats
        .put(format!("gw.{}", shared.gateway), Bytes::from(v.to_string()))
        .await
        .map(|_| ())
        .map_err(|e| format!("presence: {e}"))
}

/// Renews every seat key held, by compare-and-swap on its revision, all in one batch (the updates
/// go out together and their acks are awaited together). A key whose revision moved lapsed and
/// was claimed by another gateway: it is dropped here and claimed afresh by the reconcile.
async fn renew_all(shared: &Arc<Shared>, conn: &Conn) -> Result<(), String> {
    let held: Vec<(String, Held)> =
        shared.held.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, h)| (k.clone(), h.clone())).collect();
    let mut batch = tokio::task::JoinSet::new();
    for (seat, h) in held {
        let store = conn.seats.clone();
        batch.spawn(async move {
            let r = store.update(&h.key, h.value.clone(), h.revision).await;
            (seat, h, r)
        });
    }
    let mut failed = 0;
    while let Some(done) = batch.join_next().await {
        let Ok((seat, h, r)) = done else { continue };
        let mut held = shared.held.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Ok(rev) => {
                if let Some(cur) = held.get_mut(&seat).filter(|c| c.key == h.key) {
                    cur.revision = rev;
                }
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                tracing::warn!(key = %h.key, "plant: a seat key lapsed (not renewed within plant.seat_ttl): claiming again");
                held.remove(&seat);
            }
            Err(e) => {
                failed += 1;
                tracing::debug!("plant: renewing {} failed: {e}", h.key);
            }
        }
    }
    if failed > 0 {
        return Err(format!("renewing {failed} seat keys failed"));
    }
    Ok(())
}

/// One seat of this gateway as the reconcile sees it.
struct LocalSeat {
    id: String,
    pool: Option<String>,
    session_id: i64,
    user: String,
}

/// Makes the keys held match the seats in use: frees the keys of seats that ended, finds again
/// this gateway's keys from before a restart, claims keys for seats that have none (opened offline,
/// restored at start, or whose key lapsed), deletes stale keys of this gateway; then updates the
/// figures in the table.
async fn reconcile(shared: &Arc<Shared>, ctx: &Arc<Ctx>, conn: &Conn) -> Result<(), String> {
    let c = ctx.clone();
    let (local, taken_at) = tokio::task::spawn_blocking(move || {
        let table = c.sessions();
        let seats: Vec<LocalSeat> = table
            .seats_in_use()
            .into_iter()
            .map(|(key, pool, session_id)| LocalSeat {
                id: key.id(),
                pool,
                session_id,
                user: table.get(session_id).map(|l| l.user.clone()).unwrap_or_default(),
            })
            .collect();
        (seats, Instant::now())
    })
    .await
    .map_err(|e| e.to_string())?;
    let local_ids: BTreeSet<&str> = local.iter().map(|s| s.id.as_str()).collect();

    // Keys of seats that ended (claimed before the table was read: a claim made since belongs to an
    // open that may not have committed yet).
    let ended: Vec<(String, Held)> = {
        let mut held = shared.held.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<String> = held
            .iter()
            .filter(|(id, h)| !local_ids.contains(id.as_str()) && h.claimed < taken_at)
            .map(|(id, _)| id.clone())
            .collect();
        gone.into_iter().filter_map(|id| held.remove(&id).map(|h| (id, h))).collect()
    };
    for (_, h) in ended {
        // Only if it is still ours: a key that lapsed and was claimed by another stays theirs.
        if let Err(e) = conn.seats.delete_expect_revision(&h.key, Some(h.revision)).await {
            tracing::debug!("plant: freeing {}: {e}", h.key);
        }
    }

    // This gateway's keys in the view that it does not hold: found again, or stale.
    let own: Vec<(String, Seen)> = {
        let view = shared.view.lock().unwrap_or_else(|p| p.into_inner());
        view.iter()
            .filter(|(k, s)| k.starts_with("seat.") && s.gateway == shared.gateway && s.at < taken_at)
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    };
    let mut unclaimed = 0u32;
    for (key, s) in own {
        let held_key = shared.held.lock().unwrap_or_else(|p| p.into_inner()).get(&s.seat).map(|h| h.key.clone());
        if held_key.as_deref() == Some(key.as_str()) {
            continue;
        }
        if local_ids.contains(s.seat.as_str()) && held_key.is_none() {
            // From before a restart: read it back and hold it.
            if let Ok(Some(entry)) = conn.seats.entry(&key).await
                && entry.operation == kv::Operation::Put
            {
                let held = Held { key, revision: entry.revision, value: entry.value, claimed: Instant::now() };
                shared.held.lock().unwrap_or_else(|p| p.into_inner()).insert(s.seat.clone(), held);
                continue;
            }
        } else if let Err(e) = conn.seats.delete_expect_revision(&key, Some(s.revision)).await {
            tracing::debug!("plant: deleting stale key {key}: {e}");
        }
    }

    // Seats without a key.
    for seat in &local {
        if shared.held.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&seat.id) {
            continue;
        }
        let mut pools = vec![seat.pool.clone()];
        if seat.pool.is_some() {
            pools.push(None);
        }
        let value = SeatValue {
            gateway: shared.gateway.clone(),
            seat: seat.id.clone(),
            session_id: seat.session_id,
            user: seat.user.clone(),
            pool: seat.pool.clone(),
            since: now_ms(),
        };
        let bytes = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        match claim_key(shared, conn, &seat.id, bytes, &pools).await {
            Claim::Taken(_) => tracing::info!(seat = %seat.id, "plant: seat claimed again"),
            Claim::Full { .. } => unclaimed += 1,
            Claim::Offline => return Err("claiming seat keys failed".into()),
        }
    }
    if unclaimed > 0 {
        crate::warn_throttled!(
            "plant-over",
            "plant: {unclaimed} seats of this gateway hold no plant seat key (the plant is full): over the licence until they end"
        );
    }
    shared.unclaimed.store(unclaimed, Ordering::Release);
    update_figures(shared, ctx, unclaimed).await;
    Ok(())
}

/// Sets the plant's figures in the table, and republishes the retained `license` when they changed.
async fn update_figures(shared: &Arc<Shared>, ctx: &Arc<Ctx>, unclaimed: u32) {
    let figures = shared.figures(unclaimed);
    let c = ctx.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let changed = c.sessions().plant.as_ref() != Some(&figures);
        if changed {
            let config = c.config();
            let r = c.write_sessions(|tx, table| {
                table.plant = Some(figures);
                crate::sessions::seats::publish(tx, &config, table).map_err(ApiError::from)
            });
            if let Err(e) = r {
                tracing::warn!("plant: publishing the licence figures failed: {e}");
            }
        }
    })
    .await;
}

async fn set_link(shared: &Arc<Shared>, ctx: &Arc<Ctx>, state: PlantLink) {
    if shared.set_link(state) {
        publish_figures(shared, ctx).await;
    }
}

async fn publish_figures(shared: &Arc<Shared>, ctx: &Arc<Ctx>) {
    // Never the session table's lock on this thread: a request holding it may be waiting for us.
    let unclaimed = shared.unclaimed.load(Ordering::Acquire);
    update_figures(shared, ctx, unclaimed).await;
}

/// A change of the plant's lock key: applied here unless it is what this gateway already holds.
async fn lock_seen(shared: &Arc<Shared>, ctx: &Arc<Ctx>, entry: &kv::Entry) {
    let prev = shared.lock_rev.fetch_max(entry.revision, Ordering::AcqRel);
    if entry.revision <= prev {
        return;
    }
    let value: PlantLock = match entry.operation {
        kv::Operation::Put => match serde_json::from_slice::<PlantLock>(&entry.value) {
            Ok(v) if v.bounded() => v,
            Ok(_) => {
                tracing::warn!("plant: the lock key holds texts over the bounds a lock is set with, ignored");
                return;
            }
            Err(e) => {
                tracing::warn!("plant: the lock key holds something unreadable, ignored: {e}");
                return;
            }
        },
        _ => PlantLock { lock: None, gateway: String::new(), by: Actor::nobody(), cause: None },
    };
    let c = ctx.clone();
    let r = tokio::task::spawn_blocking(move || crate::api::supervisor::apply_plant_lock(&c, value)).await;
    match r {
        Ok(Err(e)) => tracing::warn!("plant: applying the plant's supervisor lock failed: {e}"),
        Err(e) => tracing::warn!("plant: applying the plant's supervisor lock failed: {e}"),
        Ok(Ok(())) => {}
    }
}

/// A terminate cooldown noted on the plant (by any gateway).
fn cooldown_seen(shared: &Shared, entry: &kv::Entry) {
    if !entry.key.starts_with("cooldown.") || entry.operation != kv::Operation::Put {
        return;
    }
    if let Ok(t) = serde_json::from_slice::<Terminated>(&entry.value) {
        let mut terminated = shared.terminated.lock().unwrap_or_else(|p| p.into_inner());
        if t.user.len() > 64 || (terminated.len() >= MAX_COOLDOWNS && !terminated.contains_key(&t.user)) {
            return;
        }
        if terminated.get(&t.user).is_none_or(|old| old.at < t.at) {
            terminated.insert(t.user.clone(), t);
        }
    }
}

/// After a reconnect: a lock changed here while offline goes to the plant (the last change wins),
/// before the lock watch starts, so the watch's first delivery is that change and not the older one.
async fn push_dirty_lock(shared: &Arc<Shared>, ctx: &Arc<Ctx>, conn: &Conn) {
    if !shared.lock_dirty.load(Ordering::Acquire) {
        return;
    }
    let c = ctx.clone();
    let local = tokio::task::spawn_blocking(move || c.lock().map(|l| l.state.clone())).await.ok().flatten();
    let (by, cause) =
        shared.dirty_by.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or((Actor::nobody(), None));
    let value = PlantLock { lock: local, gateway: shared.gateway.clone(), by, cause };
    let Ok(bytes) = serde_json::to_vec(&value) else { return };
    let current = match conn.plant.entry(LOCK_KEY).await {
        Ok(e) => e.map(|e| e.revision).unwrap_or(0),
        Err(e) => {
            tracing::warn!("plant: reading the lock key: {e}");
            return;
        }
    };
    let put = if current == 0 {
        conn.plant.create(LOCK_KEY, bytes.into()).await.map_err(|e| e.to_string())
    } else {
        conn.plant.update(LOCK_KEY, bytes.into(), current).await.map_err(|e| e.to_string())
    };
    match put {
        Ok(rev) => {
            shared.lock_rev.fetch_max(rev, Ordering::AcqRel);
            shared.lock_dirty.store(false, Ordering::Release);
            tracing::info!("plant: the supervisor lock changed while offline was published to the plant");
        }
        Err(e) => tracing::warn!("plant: publishing the lock changed while offline failed: {e}"),
    }
}

async fn answer_list(shared: &Arc<Shared>, ctx: &Arc<Ctx>, conn: &Conn, msg: async_nats::Message) {
    let Some(reply) = msg.reply else { return };
    match serde_json::from_slice::<ListAsk>(&msg.payload) {
        Ok(ask) if ask.from != shared.gateway => {}
        _ => return,
    }
    let c = ctx.clone();
    let sessions = tokio::task::spawn_blocking(move || c.sessions().views()).await.unwrap_or_default();
    let answer =
        ListAnswer { gateway: shared.gateway.clone(), sessions: sessions.into_iter().take(MAX_LISTED).collect() };
    if let Ok(bytes) = serde_json::to_vec(&answer) {
        let _ = conn.client.publish(reply, bytes.into()).await;
    }
}

async fn answer_terminate(ctx: &Arc<Ctx>, conn: &Conn, msg: async_nats::Message) {
    let Some(reply) = msg.reply else { return };
    // The asking gateway checked the caller's right and cleaned its input; what arrives over NATS is
    // bounded again here before it reaches the audit trail, the log and the client's control topic.
    let asked = serde_json::from_slice::<TerminateAsk>(&msg.payload)
        .map_err(|e| {
            ApiError::bad_request(format!("{}: unreadable: {e}", crate::contract::sessions::SessionTerminate::NAME))
        })
        .and_then(TerminateAsk::bounded);
    let answer = match asked {
        Ok(ask) => {
            let c = ctx.clone();
            let from = ask.from.clone();
            let r = tokio::task::spawn_blocking(move || {
                let actor = crate::store::audit::Actor {
                    who: ask.by,
                    source: format!("plant gateway {} ({})", ask.from, ask.source),
                };
                crate::api::session::terminate_here(&c, ask.session_id, ask.reason, &actor)
            })
            .await
            .unwrap_or_else(|e| Err(ApiError::internal(format!("terminate panicked: {e}"))));
            tracing::info!(from = %from, ok = r.is_ok(), "plant: terminate asked by another gateway");
            match r {
                Ok(done) => TerminateAnswer { result: Some(done), error: None },
                Err(e) => TerminateAnswer { result: None, error: Some(e) },
            }
        }
        Err(e) => TerminateAnswer { result: None, error: Some(e) },
    };
    if let Ok(bytes) = serde_json::to_vec(&answer) {
        let _ = conn.client.publish(reply, bytes.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminate asked over NATS is bounded as the local method's input is, whatever a peer sends.
    #[test]
    fn a_terminate_ask_from_another_gateway_is_bounded_like_local_input() {
        let ask = |reason: &str, user: &str| TerminateAsk {
            from: "b".into(),
            session_id: 7,
            reason: Some(reason.into()),
            by: Actor::user(user),
            source: "socket".into(),
        };
        assert!(ask("panel frozen", "sup").bounded().is_ok());
        let long = ask(&"x".repeat(crate::text::MAX_REASON + 1), "sup").bounded().unwrap_err();
        assert!(long.message.contains("reason"), "{long}");
        assert!(ask("two\nlines", "sup").bounded().is_err());
        let who = ask("ok", &"u".repeat(65)).bounded().unwrap_err();
        assert!(who.message.starts_with("by.u"), "{who}");
        let mut from = ask("ok", "sup");
        from.from = "\u{1b}[2Jgateway".into();
        assert!(from.bounded().is_err());
    }

    #[test]
    fn pool_keys_are_valid_nats_keys_and_never_clash() {
        assert_eq!(pool_prefix(None), "seat.g.");
        assert_eq!(pool_prefix(Some("supervisor")), "seat.r.supervisor.");
        let odd = pool_prefix(Some("shift lead.ä"));
        assert!(
            odd.starts_with("seat.r.=") && odd[7..odd.len() - 1].chars().all(|c| c == '=' || c.is_ascii_hexdigit())
        );
        // A role named like an encoding cannot meet one: encodings start with '=', names cannot.
        assert_ne!(pool_prefix(Some("=41")), pool_prefix(Some("A")));
    }
}
