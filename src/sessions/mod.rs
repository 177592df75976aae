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
//! from its reserved pool first, so the general seats stay free for operators.
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
}

/// The seat a new session would get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub seat: SeatKey,
    pub pool: Option<String>,
    /// The session shares a seat already held by the same user on the same host.
    pub shared: bool,
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
}

/// The licence figures `plan` decides by; from `[license]`.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub seats: u32,
    pub reserved: BTreeMap<String, u32>,
    pub share_same_host: bool,
}

impl Limits {
    fn reserved_total(&self) -> u32 {
        self.reserved.values().sum()
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

    /// Seats in use (a shared seat counts once).
    pub fn in_use(&self) -> u32 {
        self.seats.len() as u32
    }

    /// Seats in use from each pool: `None` is the general pool.
    pub fn pool_use(&self, pool: Option<&str>) -> u32 {
        self.seats.values().filter(|s| s.pool.as_deref() == pool).count() as u32
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

    /// Decides the seat for a new session `id` of `user_id` on `host`, whose holder has `roles`.
    pub fn plan(
        &self,
        limits: &Limits,
        id: i64,
        user_id: i64,
        host: Option<&str>,
        roles: &[String],
    ) -> Result<Plan, Full> {
        let seat = Self::seat_key(limits, id, user_id, host);
        if let Some(existing) = self.seats.get(&seat) {
            return Ok(Plan { seat, pool: existing.pool.clone(), shared: true });
        }
        for (role, &n) in &limits.reserved {
            if n > 0 && roles.iter().any(|r| r.eq_ignore_ascii_case(role)) && self.pool_use(Some(role)) < n {
                return Ok(Plan { seat, pool: Some(role.clone()), shared: false });
            }
        }
        let general = limits.seats.saturating_sub(limits.reserved_total());
        if self.pool_use(None) < general && self.in_use() < limits.seats {
            return Ok(Plan { seat, pool: None, shared: false });
        }
        Err(Full { limit: limits.seats, in_use: self.in_use(), reserved: limits.reserved_total() })
    }

    /// Adds a session on the seat `plan` chose for it.
    pub fn insert(&mut self, live: Live) {
        let seat = self.seats.entry(live.seat.clone()).or_insert(Seat { pool: live.pool.clone(), holders: 0 });
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
        Limits { seats, reserved: reserved.iter().map(|(r, n)| (r.to_string(), *n)).collect(), share_same_host: share }
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
        }
    }

    fn open(t: &mut Table, l: &Limits, id: i64, user: i64, host: Option<&str>, roles: &[&str]) -> Result<Plan, Full> {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let plan = t.plan(l, id, user, host, &roles)?;
        t.insert(live(id, user, plan.clone()));
        Ok(plan)
    }

    #[test]
    fn limit_is_never_exceeded_and_freed_seats_come_back() {
        let l = limits(2, &[], true);
        let mut t = Table::default();
        open(&mut t, &l, 1, 1, Some("a"), &[]).unwrap();
        open(&mut t, &l, 2, 2, Some("a"), &[]).unwrap();
        let full = open(&mut t, &l, 3, 3, Some("a"), &[]).unwrap_err();
        assert_eq!(full, Full { limit: 2, in_use: 2, reserved: 0 });
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
