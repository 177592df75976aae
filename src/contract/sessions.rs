//! The sessions family: HMI client sessions and their licence seats (`session.*`), the supervisor
//! lock and broadcasts (`supervisor.*`); their params and results, their events, and the payloads of
//! the topics they publish (`license`, `supervisor/lock`, `supervisor/message`,
//! `sessions/<id>/control`).
//!
//! Whoever did something is an [`Actor`] (`{"u", "key_id"}`; `key_id` is the API key's *name*, never
//! a row id). Times are unix milliseconds; durations ending in `_s` are whole seconds.

use super::Actor;
use super::events::{Event, EventDoc, doc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// ---- session.open

/// `session.open`: open an HMI session for the authenticated caller (a password, a login token or an
/// API key; never a session token) and take a licence seat, or share the seat of the same user's
/// client on the same host (`license.share_same_host`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionOpen {
    /// The kind of client: `hmi`, `scada`, ... (one line, at most 128 characters, not empty).
    #[serde(rename = "type")]
    pub client_type: String,
    /// The HMI project it runs (one line, at most 128 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The panel or PC it runs on: the same user's clients on one host share a seat (one line, at
    /// most 128 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Its network address, as the client says it (one line, at most 128 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The seat it takes: absent, a read-write seat when one is free, else a read-only one
    /// (`license.read_only_seats`); `false`, read-write or `license_limit_reached`; `true`, a read-only
    /// seat, leaving the read-write ones to others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

crate::method!("session.open", SessionOpen => OpenReply);

/// The session just opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OpenReply {
    pub session_id: i64,
    /// The session token (`gws_...`): the client's credential from now on (`auth: {"token": ...}`).
    /// Shown once.
    pub token: String,
    /// Send a heartbeat (or any request with the token) at least this often, in seconds.
    pub heartbeat_s: u64,
    /// A session silent for this many seconds expires and frees its seat.
    pub timeout_s: u64,
    /// The session shares a seat already held by the same user on the same host.
    pub shared_seat: bool,
    /// The seat pool it took its seat from: the reserved role's name, or null for the general pool.
    pub pool: Option<String>,
    /// The session is read-only: its write-class decisions answer `read_only_seat`.
    pub read_only: bool,
}

// ---- session.heartbeat

/// `session.heartbeat`: keep a session alive. Memory only: nothing is written to the disk per beat.
/// Every request authenticated with a session token counts as a heartbeat of that session.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionHeartbeat {
    /// The session token, when the request is not authenticated with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

crate::method!("session.heartbeat", SessionHeartbeat => HeartbeatReply);

/// The session kept alive, and how often to beat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HeartbeatReply {
    pub session_id: i64,
    /// Beat at least this often, in seconds.
    pub heartbeat_s: u64,
    /// Silence for this many seconds expires the session.
    pub timeout_s: u64,
}

// ---- session.close

/// `session.close`: end the caller's own session and free its seat.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionClose {
    /// The session token, when the request is not authenticated with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

crate::method!("session.close", SessionClose => CloseReply);

/// The session closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CloseReply {
    pub session_id: i64,
    /// Always true.
    pub closed: bool,
    /// Its seat is free again (false when another client of the same user and host still shares it).
    pub seat_freed: bool,
}

// ---- session.list

/// `session.list`: the live sessions, oldest first; with `all`, then the ended ones, newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionList {
    /// Also list ended sessions (closed, expired, terminated), newest first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// With `all`: at most this many ended sessions (default 100, at most 10000). Live sessions are
    /// always listed in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Plant mode: the live sessions of every gateway of the plant, each with its `gateway`
    /// (gateways that do not answer within `plant.request_timeout` are left out and logged).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plant: bool,
}

crate::method!("session.list", SessionList => Vec<SessionView>);

/// What became of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Live: it holds (or shares) a seat.
    Open,
    /// Closed by its client.
    Closed,
    /// No heartbeat for `license.heartbeat_timeout` (or it lapsed while gatewarden was stopped).
    Expired,
    /// Ended by a supervisor, or because its account or API key stopped being valid.
    Terminated,
}

impl SessionState {
    /// The database and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Open => "open",
            SessionState::Closed => "closed",
            SessionState::Expired => "expired",
            SessionState::Terminated => "terminated",
        }
    }

    /// Reads [`SessionState::as_str`] back.
    pub fn parse(s: &str) -> Option<SessionState> {
        [SessionState::Open, SessionState::Closed, SessionState::Expired, SessionState::Terminated]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// One session, live or ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionView {
    pub session_id: i64,
    /// The user it runs as (for a session opened with an API key: the key's owner).
    pub user: String,
    /// The client's kind, as given at open.
    #[serde(rename = "type")]
    pub client_type: String,
    pub project: Option<String>,
    pub host: Option<String>,
    pub address: Option<String>,
    /// When it was opened (unix ms).
    pub opened_at: i64,
    /// Its last heartbeat or request (unix ms). For a live session this is the time held in memory;
    /// the file has it within `license.persist_interval`.
    pub last_seen_at: i64,
    pub state: SessionState,
    /// It shares its seat with another live session of the same user and host (false once ended).
    pub shared_seat: bool,
    /// The seat pool its seat came from: the reserved role's name, or null for the general pool.
    pub pool: Option<String>,
    /// It holds a read-only seat (or asked for read-only on a shared one).
    #[serde(default)]
    pub read_only: bool,
    /// When it ended (unix ms); null while live.
    pub ended_at: Option<i64>,
    /// Who terminated it (nobody: the daemon, for a credential that stopped being valid); null
    /// unless terminated.
    pub ended_by: Option<Actor>,
    /// Why it ended (the terminate reason, or what expired it); null while live or when closed.
    pub reason: Option<String>,
    /// Plant mode, in a plant-wide list: the gateway that holds it. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

// ---- session.terminate

/// `session.terminate`: end another client's session at once, free its seat, tell the client on
/// `sessions/<id>/control`, and keep the user from reopening for `license.terminate_cooldown`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionTerminate {
    pub session_id: i64,
    /// Why: shown to the operator, kept in the audit trail (one line, at most 500 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Plant mode: the gateway that holds the session (as `session.list {plant: true}` names it).
    /// Absent or this gateway's own name: a session of this gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

crate::method!("session.terminate", SessionTerminate => TerminateReply);

/// The session terminated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TerminateReply {
    pub session_id: i64,
    /// Its user.
    pub user: String,
    /// Always true.
    pub terminated: bool,
    /// Its seat is free again (false when another client of the same user and host still shares it).
    pub seat_freed: bool,
    /// The reason given, cleaned.
    pub reason: Option<String>,
}

// ---- session.show

/// `session.show`: with a session token as auth and no params, the caller's own session, its seat
/// and the seats free in its pool (a panel asking "am I still on, and is there room?"); this counts as
/// a heartbeat, as every request with a session token does. With `session_id`: any session, live or
/// ended, which needs `sessions.view` unless it is the caller's own.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionShow {
    /// The session to show; absent: the session of the request's session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<i64>,
}

crate::method!("session.show", SessionShow => SessionShowReply);

/// One session with its timing and its seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionShowReply {
    #[serde(flatten)]
    pub session: SessionView,
    /// Beat at least this often, in seconds.
    pub heartbeat_s: u64,
    /// Silence for this many seconds expires a session.
    pub timeout_s: u64,
    /// When a live session expires if nothing more is heard from it (unix ms); null once ended.
    pub expires_at: Option<i64>,
    /// The pool its seat came from, with that pool's figures now; null once ended.
    pub seat_pool: Option<Pool>,
}

// ---- the licence

/// One seat pool with its figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Pool {
    /// The reserved role the pool is kept for, or null for the general pool.
    pub pool: Option<String>,
    /// Seats in the pool (`license.reserved` for a role; the rest of `license.seats` for the general).
    pub seats: u32,
    /// Seats of the pool in use (a shared seat counts once).
    pub in_use: u32,
    /// Seats of the pool still free.
    pub free: u32,
}

/// The read-write seats the clients of one type may hold (`license.types`), with their figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TypeSeats {
    /// The client type, as `license.types` names it.
    #[serde(rename = "type")]
    pub client_type: String,
    /// Most read-write seats its clients may hold at once.
    pub seats: u32,
    pub in_use: u32,
    pub free: u32,
}

/// The read-only seats (`license.read_only_seats`), counted apart from the read-write ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReadOnlySeats {
    pub seats: u32,
    pub in_use: u32,
    pub free: u32,
}

/// The retained `license` topic: the licence figures, republished after every change of seats and on
/// every reconnect to the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct License {
    /// `license.seats`: seats licensed in all.
    pub limit: u32,
    /// Seats in use (a shared seat counts once).
    pub in_use: u32,
    /// Seats free in all pools together.
    pub free: u32,
    /// `license.reserved`: seats kept for holders of a role, by role name.
    pub reserved: BTreeMap<String, u32>,
    /// Live sessions (two sessions sharing a seat count twice).
    pub sessions: u32,
    /// Every pool: the general one (`pool: null`) first, then each reserved role's.
    pub pools: Vec<Pool>,
    /// `license.types`: the read-write seats each client type may hold (absent when none is set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<TypeSeats>,
    /// `license.read_only_seats` (absent when 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<ReadOnlySeats>,
    /// Plant mode: the plant's seats and this gateway's link to them. Absent outside plant mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plant: Option<PlantState>,
}

/// Plant mode, as `status` and the retained `license` topic show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlantState {
    /// `plant.name`.
    pub name: String,
    /// This gateway's name in the plant.
    pub gateway: String,
    /// The link to NATS.
    pub state: PlantLink,
    /// Since when it is in that state (unix ms).
    pub since: i64,
    /// `plant.seats`: seats licensed plant-wide.
    pub seats: u32,
    /// `plant.offline_seats`: what this gateway may have in use on its own while offline.
    pub offline_seats: u32,
    /// Seats in use plant-wide as this gateway last saw them; null before the first connection.
    pub in_use: Option<u32>,
    /// Seats of this gateway that hold no plant seat key (opened offline, or whose key lapsed):
    /// claimed again as soon as NATS is back and seats are free.
    pub unclaimed: u32,
    /// The gateways of the plant seen alive (sorted).
    pub gateways: Vec<String>,
}

/// The link of a gateway to its plant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlantLink {
    /// Started, not yet connected: serving on `offline_seats`.
    Connecting,
    /// Seats and the supervisor lock are plant-wide.
    Connected,
    /// NATS unreachable: serving on `offline_seats`, the lock local until it is back.
    Offline,
}

impl PlantLink {
    pub fn as_str(self) -> &'static str {
        match self {
            PlantLink::Connecting => "connecting",
            PlantLink::Connected => "connected",
            PlantLink::Offline => "offline",
        }
    }
}

/// The fields of a `license_limit_reached` error, beside `code` and `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LicenseLimitReached {
    /// `license.seats`.
    pub limit: u32,
    /// Seats in use.
    pub in_use: u32,
    /// The pools the caller may take a seat from (the general one, and those of its reserved roles),
    /// each with its free seats.
    pub pools: Vec<Pool>,
    /// Who holds the seats: only for callers holding `sessions.view`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holders: Option<Vec<SessionView>>,
    /// The client's type had used up its `license.types` seats (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_type: Option<TypeSeats>,
    /// The read-only seats, when the client could have taken one and they are all in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<ReadOnlySeats>,
}

/// What a client's `sessions/<session_id>/control` topic carries (QoS 1, not retained).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ControlMessage {
    pub action: ControlAction,
    /// Why, as the terminator gave it.
    pub reason: Option<String>,
    /// Who ended it (nobody: the daemon, for a credential that stopped being valid).
    pub by: Actor,
}

/// What a control message asks of its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    /// The session is over: stop acting on it, tell the operator `reason`.
    Terminate,
}

// ---- session events

/// `session.opened`: a session was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionOpened {
    /// When (unix ms).
    pub ts: i64,
    pub session_id: i64,
    /// Its user.
    pub user: String,
    #[serde(rename = "type")]
    pub client_type: String,
    pub project: Option<String>,
    pub host: Option<String>,
    pub address: Option<String>,
    /// It shares a seat already held by the same user on the same host.
    pub shared_seat: bool,
    /// The pool its seat came from; null for the general pool.
    pub pool: Option<String>,
    /// It holds a read-only seat (or asked for read-only on a shared one).
    #[serde(default)]
    pub read_only: bool,
    /// Who opened it: the user, or the API key.
    pub by: Actor,
}

impl Event for SessionOpened {
    const NAME: &'static str = "session.opened";
    const SUMMARY: &'static str = "a client session was opened (seat taken or shared)";
}

/// A session that ended: the payload of `session.closed`, `session.expired` and `session.terminated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionEnd {
    /// When (unix ms).
    pub ts: i64,
    pub session_id: i64,
    /// Its user.
    pub user: String,
    #[serde(rename = "type")]
    pub client_type: String,
    pub host: Option<String>,
    /// Who ended it: the client itself (closed), nobody (expired, or a credential that stopped being
    /// valid), or the supervisor (terminated).
    pub by: Actor,
    /// Why: the terminate reason, what expired it; null for a close.
    pub reason: Option<String>,
}

/// `session.closed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct SessionClosed(pub SessionEnd);

impl Event for SessionClosed {
    const NAME: &'static str = "session.closed";
    const SUMMARY: &'static str = "a client closed its session";
}

/// `session.expired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct SessionExpired(pub SessionEnd);

impl Event for SessionExpired {
    const NAME: &'static str = "session.expired";
    const SUMMARY: &'static str = "a session expired: no heartbeat for license.heartbeat_timeout";
}

/// `session.terminated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct SessionTerminated(pub SessionEnd);

impl Event for SessionTerminated {
    const NAME: &'static str = "session.terminated";
    const SUMMARY: &'static str =
        "a session was terminated: by a supervisor, or because its account or API key stopped being valid";
}

// ---- the supervisor lock

/// A scope of the lock: who is inside it. `null` (absent) is any supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Scope {
    /// `"k"`: the owner's API key only.
    #[serde(rename = "k")]
    Key,
    /// `"u"`: the owner user only, authenticated as a user (not with an API key).
    #[serde(rename = "u")]
    User,
}

impl Scope {
    /// The wire and database code: `"k"` or `"u"`.
    pub fn code(self) -> &'static str {
        match self {
            Scope::Key => "k",
            Scope::User => "u",
        }
    }

    /// Reads [`Scope::code`] back.
    pub fn from_code(code: &str) -> Option<Scope> {
        [Scope::Key, Scope::User].into_iter().find(|s| s.code() == code)
    }

    /// How a message to a person names a scope (`None`: any supervisor).
    pub fn describe(s: Option<Scope>) -> &'static str {
        match s {
            None => "any supervisor",
            Some(Scope::Key) => "the owner's API key",
            Some(Scope::User) => "the owner user",
        }
    }
}

/// The supervisor lock (EVA ICS's SFA lock): the retained `supervisor/lock` topic, `status`'s
/// `supervisor_lock`, and the result of `supervisor.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LockState {
    /// Its owner: the user, or the API key (by name).
    pub o: Actor,
    /// Who may still write while it is set: null any supervisor, `"k"` the owner's API key, `"u"` the
    /// owner user. Everyone else's write-class requests fail with `supervisor_locked`.
    pub l: Option<Scope>,
    /// Who may clear or replace it, in the same terms. Master keys and the built-in admin always may.
    pub c: Option<Scope>,
    /// When it was set (unix ms).
    pub since: i64,
    /// Why, shown to every operator.
    pub reason: Option<String>,
    /// When it clears itself (unix ms); null: it holds until cleared.
    pub expires_at: Option<i64>,
}

/// A duration: whole seconds, or a number with a unit (`"250ms"`, `"30s"`, `"15m"`, `"2h"`, `"7d"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Span {
    Secs(u64),
    Text(String),
}

/// `supervisor.lock`: set the lock, or replace one the caller may clear (its `c`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SupervisorLock {
    /// Who may still write: absent or null any supervisor, `"k"` only the API key setting it, `"u"`
    /// only the user setting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l: Option<Scope>,
    /// Who may clear or replace it, in the same terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<Scope>,
    /// Its owner, when not the caller: master keys and the built-in admin only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o: Option<Actor>,
    /// Why, shown to every operator (one line, at most 500 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Clear it by itself after this long (more than zero, at most 366 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<Span>,
}

crate::method!("supervisor.lock", SupervisorLock => LockState);

/// `supervisor.unlock`: clear the lock, for callers inside its `c` (master keys and the built-in
/// admin always).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SupervisorUnlock {}

crate::method!("supervisor.unlock", SupervisorUnlock => UnlockReply);

/// What `supervisor.unlock` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnlockReply {
    /// A lock was cleared.
    pub unlocked: bool,
    /// The lock cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockState>,
    /// Why nothing was cleared: `no supervisor lock is set`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Why a lock went away: a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnlockCause {
    /// A caller cleared it (`supervisor.unlock`).
    Cleared,
    /// Its `expires_at` passed (while gatewarden ran, or while it was stopped).
    Expired,
    /// gatewarden restarted and `supervisor.lock_survives_restart` is off.
    Restart,
}

impl UnlockCause {
    pub fn as_str(self) -> &'static str {
        match self {
            UnlockCause::Cleared => "cleared",
            UnlockCause::Expired => "expired",
            UnlockCause::Restart => "restart",
        }
    }
}

/// `supervisor.lock`: the lock was set or replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupervisorLocked {
    #[serde(flatten)]
    pub lock: LockState,
    /// Who set it (a master may set a lock owned by someone else).
    pub by: Actor,
}

impl Event for SupervisorLocked {
    const NAME: &'static str = "supervisor.lock";
    const SUMMARY: &'static str = "the supervisor lock was set or replaced (the payload is the new lock, and by)";
}

/// `supervisor.unlock`: the lock went away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupervisorUnlocked {
    /// When (unix ms).
    pub ts: i64,
    /// Who cleared it; nobody (the daemon) when it expired or a restart cleared it.
    pub by: Actor,
    /// Why it went away.
    pub cause: UnlockCause,
    /// The lock that was cleared.
    pub lock: LockState,
}

impl Event for SupervisorUnlocked {
    const NAME: &'static str = "supervisor.unlock";
    const SUMMARY: &'static str = "the supervisor lock was cleared, expired, or cleared by a restart";
}

// ---- broadcasts

/// `supervisor.message`: a broadcast to every HMI.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SupervisorMessage {
    /// The message (line breaks allowed, at most 1000 characters, not empty).
    pub text: String,
    /// Who it is from, when not the caller: master keys and the built-in admin only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Actor>,
}

crate::method!("supervisor.message", SupervisorMessage => Broadcast);

/// A broadcast: the `supervisor/message` topic (QoS 1, not retained), the `supervisor.message` event
/// and the method's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Broadcast {
    /// Who it is from.
    pub sender: Actor,
    /// The message.
    pub text: String,
    /// When it was sent (unix ms).
    pub ts: i64,
}

impl Event for Broadcast {
    const NAME: &'static str = "supervisor.message";
    const SUMMARY: &'static str = "a supervisor broadcast a message to every HMI";
}

/// The events of this family.
pub const EVENTS: &[EventDoc] = &[
    doc::<SessionOpened>(),
    doc::<SessionClosed>(),
    doc::<SessionExpired>(),
    doc::<SessionTerminated>(),
    doc::<SupervisorLocked>(),
    doc::<SupervisorUnlocked>(),
    doc::<Broadcast>(),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn show_reply_schema_has_the_session_beside_its_seat() {
        let schema = serde_json::to_value(crate::contract::schema::<SessionShowReply>()).unwrap();
        let props = schema["properties"].as_object().unwrap_or_else(|| panic!("{schema}"));
        for field in ["session_id", "type", "state", "pool", "seat_pool", "expires_at", "heartbeat_s"] {
            assert!(props.contains_key(field), "{field} missing: {schema}");
        }
    }

    #[test]
    fn session_state_survives_its_column_text() {
        for s in [SessionState::Open, SessionState::Closed, SessionState::Expired, SessionState::Terminated] {
            assert_eq!(SessionState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn lock_event_is_the_lock_with_who_set_it() {
        let lock = LockState {
            o: Actor::user("boss"),
            l: Some(Scope::User),
            c: None,
            since: 5,
            reason: None,
            expires_at: None,
        };
        let v = serde_json::to_value(SupervisorLocked { lock, by: Actor::key("m") }).unwrap();
        assert_eq!(
            v,
            json!({"o": {"u": "boss", "key_id": null}, "l": "u", "c": null, "since": 5, "reason": null,
                   "expires_at": null, "by": {"u": null, "key_id": "m"}})
        );
    }

    #[test]
    fn an_ended_session_event_is_its_payload_alone() {
        let end = SessionEnd {
            ts: 1,
            session_id: 2,
            user: "op".into(),
            client_type: "hmi".into(),
            host: None,
            by: Actor::nobody(),
            reason: Some("no heartbeat for 30 s".into()),
        };
        let v = serde_json::to_value(SessionExpired(end)).unwrap();
        assert_eq!(v["session_id"], 2);
        assert_eq!(v["by"], json!({"u": null, "key_id": null}));
    }
}
