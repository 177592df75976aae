//! HMI client sessions and the licence seats they hold: the in-memory table (this file), the seat
//! figures and pools ([`seats`]), and what happens to a session from open to end, across restarts
//! ([`lifecycle`]). The SQL is [`crate::store::sessions`]'s; the methods are served by
//! `api::session`, the daemon runs the sweep, persistence and restore.
//!
//! What must never happen:
//! - **More seats in use than the licence allows.** A seat is only taken by [`Table::plan`] followed by
//!   [`Table::insert`] under one lock (the daemon holds the store lock and this table's lock across
//!   both), so concurrent opens are serialised into one decision each.
//! - **A reserved seat taken by someone outside its role.** `license.reserved = { role = n }` keeps n
//!   seats for holders of that role; everyone else shares `seats - sum(reserved)`.
//! - **A flash write per heartbeat.** A beat only updates [`Live::beat`] and [`Live::last_seen_ms`]
//!   here; the store writes `last_seen` in batches (`license.persist_interval`).
//! - **Seats in memory that disagree with the file.** Every change runs in one transaction with the
//!   table journaled ([`Table::begin`]), undone when the transaction does not commit.
//!
//! Seats: with `license.share_same_host`, the sessions of one user on one host share one seat
//! ([`SeatKey::Host`]); otherwise (or with no host given) each session holds its own. A seat is held
//! from a pool: the general pool, or the reserved pool of one role. A holder of a reserved role takes
//! from its reserved pool first, so the general seats stay free for operators. `license.types` caps
//! the read-write seats the clients of one type hold, whatever their pool. A read-only seat
//! (`license.read_only_seats`, counted apart) is taken when no read-write seat is free, unless the
//! client asked for read-write only, or at once when it asked for read-only.
//!
//! Nothing here imports `api` or `daemon`: callers hand in the transaction, the table and the config.

pub mod lifecycle;
pub mod seats;

pub use lifecycle::{End, end_dead, end_matching};

use crate::accounts::Principal;
use crate::contract::sessions::{PlantState, SessionState, SessionView};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a seat is keyed by: shared by a user's clients on one host, or held by one session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SeatKey {
    Host { user_id: i64, host: String },
    Own(i64),
}

/// One live session.
#[derive(Debug, Clone)]
pub struct Live {
    pub id: i64,
    /// Who the session acts as: its user, or the API key it was opened with.
    pub principal: Principal,
    pub user_id: i64,
    pub user: String,
    pub digest: Vec<u8>,
    pub client_type: String,
    pub project: Option<String>,
    pub host: Option<String>,
    pub address: Option<String>,
    pub opened_ms: i64,
    pub last_seen_ms: i64,
    /// Monotonic time of the last beat: expiry is measured on this, so a wall-clock jump (NTP at
    /// boot on a panel PC) cannot expire every session at once.
    pub beat: Instant,
    /// `last_seen_ms` as last written to the database.
    pub persisted_ms: i64,
    pub seat: SeatKey,
    /// The reserved role whose seat this session's seat came from; None for the general pool.
    pub pool: Option<String>,
    /// The session holds a read-only seat (or asked for read-only on a shared one): its write-class
    /// decisions answer `read_only_seat`.
    pub read_only: bool,
}

impl SeatKey {
    /// The seat's name in the plant's seat keys (plant mode): unique on this gateway.
    pub fn id(&self) -> String {
        match self {
            SeatKey::Host { user_id, host } => format!("host:{user_id}:{host}"),
            SeatKey::Own(id) => format!("own:{id}"),
        }
    }
}

impl Live {
    /// Counts a heartbeat (or any request made with the session's token): memory only.
    pub fn beat(&mut self) {
        self.beat = Instant::now();
        self.last_seen_ms = crate::store::now_ms();
    }
}

#[derive(Debug, Clone)]
struct Seat {
    pool: Option<String>,
    holders: u32,
    read_only: bool,
    /// The client type of the session that took it (what `license.types` counts).
    client_type: String,
}

/// What kind of seat a client will take (`session.open`'s `read_only`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SeatMode {
    /// Read-write when one is free, else read-only (absent `read_only`).
    #[default]
    Either,
    /// Read-write or nothing (`"read_only": false`).
    ReadWrite,
    /// Read-only, leaving the read-write seats to others (`"read_only": true`).
    ReadOnly,
}

impl SeatMode {
    pub fn from_param(read_only: Option<bool>) -> SeatMode {
        match read_only {
            None => SeatMode::Either,
            Some(false) => SeatMode::ReadWrite,
            Some(true) => SeatMode::ReadOnly,
        }
    }
}

/// What a new session asks of the seats.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub user_id: i64,
    pub host: Option<&'a str>,
    /// The roles its holder has (reserved pools).
    pub roles: &'a [String],
    /// Its client type (`license.types`).
    pub client_type: &'a str,
    pub mode: SeatMode,
}

/// The seat a new session would get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub seat: SeatKey,
    pub pool: Option<String>,
    /// The session shares a seat already held by the same user on the same host.
    pub shared: bool,
    /// The session is read-only: it took a read-only seat, or asked for read-only on a shared one.
    pub read_only: bool,
}

/// Plant mode's seat pool, as a session open sees it ([`crate::plant::Plant`] implements it): a
/// new seat on this gateway also needs one of the plant's seat keys.
pub trait PlantSeats {
    /// Claims a plant seat key for `seat`, trying the pools in order (`None`: the general pool).
    fn claim(&self, seat: &SeatKey, session_id: i64, user: &str, pools: &[Option<String>]) -> Claim;

    /// When a supervisor last terminated a session of `user` (by name) on any gateway of the plant,
    /// as far as this gateway has heard: with the `user_host` scope only one on `host`.
    fn terminated_at(&self, user: &str, host: Option<&str>, scope: crate::config::CooldownScope) -> Option<i64>;
}

/// The outcome of [`PlantSeats::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A seat key of this pool is ours.
    Taken(Option<String>),
    /// Every seat key the caller may take is held plant-wide: `in_use` as seen.
    Full { in_use: u32 },
    /// NATS did not answer: the gateway is offline and serves on its local allotment.
    Offline,
}

/// Why no seat is free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full {
    pub limit: u32,
    pub in_use: u32,
    /// Seats the caller could not take because they are reserved for roles it does not hold (or its
    /// own reserved pool is full too).
    pub reserved: u32,
    /// The client's type had used up its `license.types` seats: (type as configured, its seats).
    pub type_full: Option<(String, u32)>,
    /// Read-only seats: (`license.read_only_seats`, in use), when the client could have taken one.
    pub read_only: Option<(u32, u32)>,
}

/// The licence figures `plan` decides by; from `[license]`.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub seats: u32,
    pub reserved: BTreeMap<String, u32>,
    pub share_same_host: bool,
    pub read_only_seats: u32,
    pub types: BTreeMap<String, u32>,
}

impl Limits {
    pub fn reserved_total(&self) -> u32 {
        self.reserved.values().sum()
    }

    /// The reserved pools a holder of `roles` may take from, in the order they are tried (locally and
    /// plant-wide alike), with their seats.
    pub fn held_pools<'a>(&'a self, roles: &'a [String]) -> impl Iterator<Item = (&'a String, u32)> + 'a {
        self.reserved
            .iter()
            .filter(move |(role, n)| **n > 0 && roles.iter().any(|r| r.eq_ignore_ascii_case(role)))
            .map(|(role, &n)| (role, n))
    }

    /// The `license.types` entry for a client type (compared without case).
    pub fn type_cap(&self, client_type: &str) -> Option<(&str, u32)> {
        self.types.iter().find(|(t, _)| t.eq_ignore_ascii_case(client_type)).map(|(t, &n)| (t.as_str(), n))
    }
}

/// An insert or remove to undo when the transaction it belongs to does not commit.
#[derive(Debug)]
enum Undo {
    Inserted(i64),
    Removed(Box<Live>),
}

#[derive(Debug, Default)]
pub struct Table {
    live: FxHashMap<i64, Live>,
    seats: FxHashMap<SeatKey, Seat>,
    /// Plant mode: the plant's figures and this gateway's link, as [`crate::plant`] last set them.
    /// Kept here so every licence figure (the retained `license` topic, `status`, the seat plan)
    /// is taken from the one table under its one lock.
    pub plant: Option<PlantState>,
    /// While a database transaction is open: how to put the table back if it rolls back.
    journal: Option<Vec<Undo>>,
}

impl Table {
    /// Starts recording inserts and removes, for [`Table::rollback`].
    pub fn begin(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// Keeps every change since [`Table::begin`].
    pub fn commit(&mut self) {
        self.journal = None;
    }

    /// Undoes every insert and remove since [`Table::begin`], newest first.
    pub fn rollback(&mut self) {
        let Some(journal) = self.journal.take() else { return };
        for undo in journal.into_iter().rev() {
            match undo {
                Undo::Inserted(id) => {
                    self.remove(id);
                }
                Undo::Removed(live) => self.insert(*live),
            }
        }
        self.journal = None;
    }

    pub fn get(&self, id: i64) -> Option<&Live> {
        self.live.get(&id)
    }

    pub fn get_mut(&mut self, id: i64) -> Option<&mut Live> {
        self.live.get_mut(&id)
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Read-write seats in use (a shared seat counts once).
    pub fn in_use(&self) -> u32 {
        self.seats.values().filter(|s| !s.read_only).count() as u32
    }

    /// Read-write seats in use from each pool: `None` is the general pool.
    pub fn pool_use(&self, pool: Option<&str>) -> u32 {
        self.seats.values().filter(|s| !s.read_only && s.pool.as_deref() == pool).count() as u32
    }

    /// Read-only seats in use.
    pub fn read_only_use(&self) -> u32 {
        self.seats.values().filter(|s| s.read_only).count() as u32
    }

    /// Read-write seats held by clients of this type (compared without case).
    pub fn type_use(&self, client_type: &str) -> u32 {
        self.seats.values().filter(|s| !s.read_only && s.client_type.eq_ignore_ascii_case(client_type)).count() as u32
    }

    /// Live sessions, oldest first.
    pub fn sessions(&self) -> Vec<&Live> {
        let mut v: Vec<&Live> = self.live.values().collect();
        v.sort_unstable_by_key(|l| l.id);
        v
    }

    /// The seat key a session of `user_id` on `host` would use.
    pub fn seat_key(limits: &Limits, id: i64, user_id: i64, host: Option<&str>) -> SeatKey {
        match host {
            Some(h) if limits.share_same_host && !h.is_empty() => SeatKey::Host { user_id, host: h.to_string() },
            _ => SeatKey::Own(id),
        }
    }

    /// Decides the seat for a new session `id`: a seat its user already holds on the same host, else
    /// a read-write seat (its reserved pools first, then the general one, within its type's cap),
    /// else a read-only one, as `ask.mode` allows.
    pub fn plan(&self, limits: &Limits, id: i64, ask: &Ask<'_>) -> Result<Plan, Full> {
        let seat = Self::seat_key(limits, id, ask.user_id, ask.host);
        let asked_read_only = ask.mode == SeatMode::ReadOnly;
        if let Some(existing) = self.seats.get(&seat) {
            // A client that must write cannot share a read-only seat: it stays refused below.
            if !(existing.read_only && ask.mode == SeatMode::ReadWrite) {
                let read_only = existing.read_only || asked_read_only;
                return Ok(Plan { seat, pool: existing.pool.clone(), shared: true, read_only });
            }
        }
        let type_cap = limits.type_cap(ask.client_type);
        let type_full = type_cap.filter(|&(_, n)| self.type_use(ask.client_type) >= n);
        let shared_read_only = self.seats.get(&seat).is_some_and(|s| s.read_only);
        if !asked_read_only && type_full.is_none() && !shared_read_only {
            for (role, n) in limits.held_pools(ask.roles) {
                if self.pool_use(Some(role)) < n {
                    return Ok(Plan { seat, pool: Some(role.clone()), shared: false, read_only: false });
                }
            }
            let general = limits.seats.saturating_sub(limits.reserved_total());
            if self.pool_use(None) < general && self.in_use() < limits.seats {
                return Ok(Plan { seat, pool: None, shared: false, read_only: false });
            }
        }
        let may_read_only = ask.mode != SeatMode::ReadWrite && limits.read_only_seats > 0;
        if may_read_only && self.read_only_use() < limits.read_only_seats {
            return Ok(Plan { seat, pool: None, shared: false, read_only: true });
        }
        Err(Full {
            limit: limits.seats,
            in_use: self.in_use(),
            reserved: limits.reserved_total(),
            type_full: type_full.map(|(t, n)| (t.to_string(), n)),
            read_only: may_read_only.then(|| (limits.read_only_seats, self.read_only_use())),
        })
    }

    /// Adds a session on the seat `plan` chose for it.
    pub fn insert(&mut self, live: Live) {
        let seat = self.seats.entry(live.seat.clone()).or_insert_with(|| Seat {
            pool: live.pool.clone(),
            holders: 0,
            read_only: live.read_only,
            client_type: live.client_type.clone(),
        });
        seat.holders += 1;
        if let Some(j) = &mut self.journal {
            j.push(Undo::Inserted(live.id));
        }
        self.live.insert(live.id, live);
    }

    /// Removes a session; its seat is freed when it was the last holder.
    pub fn remove(&mut self, id: i64) -> Option<Live> {
        let live = self.live.remove(&id)?;
        if let Some(seat) = self.seats.get_mut(&live.seat) {
            seat.holders -= 1;
            if seat.holders == 0 {
                self.seats.remove(&live.seat);
            }
        }
        if let Some(j) = &mut self.journal {
            j.push(Undo::Removed(Box::new(live.clone())));
        }
        Some(live)
    }

    /// Every seat in use: its key, its pool and the oldest live session on it (plant mode claims a
    /// plant seat key for each).
    pub fn seats_in_use(&self) -> Vec<(SeatKey, Option<String>, i64)> {
        let mut oldest: FxHashMap<&SeatKey, i64> = FxHashMap::default();
        for l in self.live.values() {
            let e = oldest.entry(&l.seat).or_insert(l.id);
            *e = (*e).min(l.id);
        }
        self.seats.iter().map(|(k, s)| (k.clone(), s.pool.clone(), oldest.get(k).copied().unwrap_or(0))).collect()
    }

    /// A live session as the methods show it.
    pub fn view(&self, l: &Live) -> SessionView {
        SessionView {
            session_id: l.id,
            user: l.user.clone(),
            client_type: l.client_type.clone(),
            project: l.project.clone(),
            host: l.host.clone(),
            address: l.address.clone(),
            opened_at: l.opened_ms,
            last_seen_at: l.last_seen_ms,
            state: SessionState::Open,
            shared_seat: self.shares_seat(l.id),
            pool: l.pool.clone(),
            read_only: l.read_only,
            ended_at: None,
            ended_by: None,
            reason: None,
            gateway: None,
        }
    }

    /// Every live session as the methods show it, oldest first.
    pub fn views(&self) -> Vec<SessionView> {
        self.sessions().into_iter().map(|l| self.view(l)).collect()
    }

    /// Whether the session shares its seat with another live session.
    pub fn shares_seat(&self, id: i64) -> bool {
        self.live.get(&id).and_then(|l| self.seats.get(&l.seat)).is_some_and(|s| s.holders > 1)
    }

    /// Sessions silent for longer than `timeout` at `now`, oldest first.
    pub fn due(&self, now: Instant, timeout: Duration) -> Vec<i64> {
        let mut v: Vec<i64> =
            self.live.values().filter(|l| now.saturating_duration_since(l.beat) > timeout).map(|l| l.id).collect();
        v.sort_unstable();
        v
    }

    /// Live sessions of a user.
    pub fn of_user(&self, user_id: i64) -> Vec<i64> {
        let mut v: Vec<i64> = self.live.values().filter(|l| l.user_id == user_id).map(|l| l.id).collect();
        v.sort_unstable();
        v
    }

    /// Live sessions opened with a login token (by its row id).
    pub fn of_token(&self, token_id: i64) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .live
            .values()
            .filter(|l| matches!(l.principal, Principal::User { token_id: Some(t), .. } if t == token_id))
            .map(|l| l.id)
            .collect();
        v.sort_unstable();
        v
    }

    /// Live sessions opened with an API key.
    pub fn of_key(&self, key_id: i64) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .live
            .values()
            .filter(|l| matches!(l.principal, Principal::Key { id, .. } if id == key_id))
            .map(|l| l.id)
            .collect();
        v.sort_unstable();
        v
    }

    /// Sessions whose `last_seen` changed since it was last written: (id, last_seen_ms).
    pub fn unpersisted(&self) -> Vec<(i64, i64)> {
        self.live.values().filter(|l| l.last_seen_ms != l.persisted_ms).map(|l| (l.id, l.last_seen_ms)).collect()
    }

    pub fn mark_persisted(&mut self, rows: &[(i64, i64)]) {
        for (id, seen) in rows {
            if let Some(l) = self.live.get_mut(id) {
                l.persisted_ms = *seen;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(seats: u32, reserved: &[(&str, u32)], share: bool) -> Limits {
        Limits {
            seats,
            reserved: reserved.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
            share_same_host: share,
            ..Default::default()
        }
    }

    fn live(id: i64, user_id: i64, plan: Plan) -> Live {
        Live {
            id,
            principal: Principal::User { id: user_id, name: format!("u{user_id}"), token_id: None },
            user_id,
            user: format!("u{user_id}"),
            digest: vec![],
            client_type: "hmi".into(),
            project: None,
            host: None,
            address: None,
            opened_ms: 0,
            last_seen_ms: 0,
            beat: Instant::now(),
            persisted_ms: 0,
            seat: plan.seat,
            pool: plan.pool,
            read_only: plan.read_only,
        }
    }

    fn open(t: &mut Table, l: &Limits, id: i64, user: i64, host: Option<&str>, roles: &[&str]) -> Result<Plan, Full> {
        open_as(t, l, id, user, host, roles, "hmi", SeatMode::ReadWrite)
    }

    #[allow(clippy::too_many_arguments)]
    fn open_as(
        t: &mut Table,
        l: &Limits,
        id: i64,
        user: i64,
        host: Option<&str>,
        roles: &[&str],
        client_type: &str,
        mode: SeatMode,
    ) -> Result<Plan, Full> {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let plan = t.plan(l, id, &Ask { user_id: user, host, roles: &roles, client_type, mode })?;
        let mut session = live(id, user, plan.clone());
        session.client_type = client_type.into();
        t.insert(session);
        Ok(plan)
    }

    #[test]
    fn a_client_type_holds_at_most_its_seats_whatever_the_pool() {
        let mut l = limits(4, &[("supervisor", 1)], false);
        l.types = [("Vision".to_string(), 2)].into_iter().collect();
        let mut t = Table::default();
        let rw = SeatMode::ReadWrite;
        open_as(&mut t, &l, 1, 1, None, &["supervisor"], "vision", rw).unwrap();
        open_as(&mut t, &l, 2, 2, None, &[], "VISION", rw).unwrap();
        let full = open_as(&mut t, &l, 3, 3, None, &[], "vision", rw).unwrap_err();
        assert_eq!(full.type_full, Some(("Vision".to_string(), 2)));
        // Other types still find the general seats.
        open_as(&mut t, &l, 3, 3, None, &[], "perspective", rw).unwrap();
        assert_eq!((t.in_use(), t.type_use("vision")), (3, 2));
        t.remove(2);
        open_as(&mut t, &l, 4, 4, None, &[], "vision", rw).unwrap();
    }

    #[test]
    fn read_only_seats_when_no_read_write_seat_is_free_or_when_asked() {
        let mut l = limits(1, &[], true);
        l.read_only_seats = 2;
        let mut t = Table::default();
        let p = open_as(&mut t, &l, 1, 1, Some("a"), &[], "hmi", SeatMode::Either).unwrap();
        assert!(!p.read_only);
        // The read-write seat is gone: a client that may read only gets a read-only seat.
        let p = open_as(&mut t, &l, 2, 2, Some("b"), &[], "hmi", SeatMode::Either).unwrap();
        assert!(p.read_only && !p.shared);
        // One that must write is refused, told of the read-write seats only.
        let full = open_as(&mut t, &l, 3, 3, Some("c"), &[], "hmi", SeatMode::ReadWrite).unwrap_err();
        assert_eq!((full.in_use, full.read_only), (1, None));
        // The same user's second client on host b shares b's read-only seat; a write-only one cannot.
        assert!(open_as(&mut t, &l, 4, 2, Some("b"), &[], "hmi", SeatMode::Either).unwrap().read_only);
        assert!(open_as(&mut t, &l, 5, 2, Some("b"), &[], "hmi", SeatMode::ReadWrite).is_err());
        // Asking for read-only on a shared read-write seat makes that session read-only.
        let p = open_as(&mut t, &l, 6, 1, Some("a"), &[], "hmi", SeatMode::ReadOnly).unwrap();
        assert!(p.shared && p.read_only);
        // A wall display asks for read-only and leaves the read-write seat alone.
        t.remove(1);
        t.remove(6);
        assert!(open_as(&mut t, &l, 7, 7, Some("d"), &[], "hmi", SeatMode::ReadOnly).unwrap().read_only);
        assert_eq!((t.in_use(), t.read_only_use()), (0, 2));
        let full = open_as(&mut t, &l, 8, 8, Some("e"), &[], "hmi", SeatMode::ReadOnly).unwrap_err();
        assert_eq!(full.read_only, Some((2, 2)));
        assert!(!open_as(&mut t, &l, 8, 8, Some("e"), &[], "hmi", SeatMode::Either).unwrap().read_only);
    }

    #[test]
    fn limit_is_never_exceeded_and_freed_seats_come_back() {
        let l = limits(2, &[], true);
        let mut t = Table::default();
        open(&mut t, &l, 1, 1, Some("a"), &[]).unwrap();
        open(&mut t, &l, 2, 2, Some("a"), &[]).unwrap();
        let full = open(&mut t, &l, 3, 3, Some("a"), &[]).unwrap_err();
        assert_eq!(full, Full { limit: 2, in_use: 2, reserved: 0, type_full: None, read_only: None });
        t.remove(1);
        assert_eq!(t.in_use(), 1);
        open(&mut t, &l, 3, 3, Some("a"), &[]).unwrap();
        assert_eq!(t.in_use(), 2);
    }

    #[test]
    fn reserved_seats_go_to_their_role_only_and_first() {
        let l = limits(3, &[("supervisor", 1)], true);
        let mut t = Table::default();
        open(&mut t, &l, 1, 1, None, &["operators"]).unwrap();
        open(&mut t, &l, 2, 2, None, &["operators"]).unwrap();
        // Two general seats are gone; the third is the supervisor's.
        assert_eq!(open(&mut t, &l, 3, 3, None, &["operators"]).unwrap_err().in_use, 2);
        let p = open(&mut t, &l, 4, 4, None, &["Supervisor"]).unwrap();
        assert_eq!(p.pool.as_deref(), Some("supervisor"));
        assert_eq!(t.in_use(), 3);
        // A second supervisor finds both pools full.
        assert!(open(&mut t, &l, 5, 5, None, &["supervisor"]).is_err());
    }

    #[test]
    fn supervisor_takes_the_reserved_seat_before_a_general_one() {
        let l = limits(2, &[("supervisor", 1)], true);
        let mut t = Table::default();
        assert_eq!(open(&mut t, &l, 1, 1, None, &["supervisor"]).unwrap().pool.as_deref(), Some("supervisor"));
        assert_eq!(open(&mut t, &l, 2, 2, None, &[]).unwrap().pool, None);
        // With its reserved pool full, a supervisor may still take a general seat when one is free.
        let l = limits(3, &[("supervisor", 1)], true);
        let mut t = Table::default();
        open(&mut t, &l, 1, 1, None, &["supervisor"]).unwrap();
        assert_eq!(open(&mut t, &l, 2, 2, None, &["supervisor"]).unwrap().pool, None);
    }

    #[test]
    fn same_user_same_host_shares_a_seat_until_the_last_leaves() {
        let l = limits(1, &[], true);
        let mut t = Table::default();
        open(&mut t, &l, 1, 7, Some("panel-1"), &[]).unwrap();
        let p = open(&mut t, &l, 2, 7, Some("panel-1"), &[]).unwrap();
        assert!(p.shared);
        assert!(t.shares_seat(1) && t.shares_seat(2));
        assert_eq!(t.in_use(), 1);
        // Another host, another user, or no host: a seat of its own, so refused here.
        assert!(open(&mut t, &l, 3, 7, Some("panel-2"), &[]).is_err());
        assert!(open(&mut t, &l, 3, 8, Some("panel-1"), &[]).is_err());
        assert!(open(&mut t, &l, 3, 7, None, &[]).is_err());
        t.remove(1);
        assert_eq!(t.in_use(), 1);
        t.remove(2);
        assert_eq!(t.in_use(), 0);
    }

    #[test]
    fn without_sharing_each_client_holds_a_seat() {
        let l = limits(1, &[], false);
        let mut t = Table::default();
        open(&mut t, &l, 1, 7, Some("panel-1"), &[]).unwrap();
        assert!(open(&mut t, &l, 2, 7, Some("panel-1"), &[]).is_err());
    }

    #[test]
    fn rollback_restores_sessions_and_seats() {
        let l = limits(2, &[], true);
        let mut t = Table::default();
        open(&mut t, &l, 1, 1, Some("a"), &[]).unwrap();
        open(&mut t, &l, 2, 1, Some("a"), &[]).unwrap();
        t.begin();
        t.remove(1);
        open(&mut t, &l, 3, 3, None, &[]).unwrap();
        t.remove(2);
        t.rollback();
        assert_eq!(t.sessions().iter().map(|l| l.id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(t.in_use(), 1);
        assert!(t.shares_seat(1));
        // After a commit, nothing is undone.
        t.begin();
        t.remove(1);
        t.commit();
        t.rollback();
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn due_lists_only_silent_sessions() {
        let l = limits(5, &[], true);
        let mut t = Table::default();
        open(&mut t, &l, 1, 1, None, &[]).unwrap();
        open(&mut t, &l, 2, 2, None, &[]).unwrap();
        let now = Instant::now() + Duration::from_secs(10);
        t.get_mut(2).unwrap().beat = now;
        assert_eq!(t.due(now, Duration::from_secs(5)), vec![1]);
        assert!(t.due(now, Duration::from_secs(30)).is_empty());
    }
}
