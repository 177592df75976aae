//! Failed-login bookkeeping: a growing delay per failure, a temporary lock per account name at
//! `accounts.lockout_attempts`, and a slow-down per network source.
//!
//! Must never happen:
//! - **An answer that tells known names from unknown ones.** Every name, whether an account has it or
//!   not, gets the same counter, the same delay, the same lock, the same error and the same cost: each
//!   failure is saved in the `login_failures` table by name (one small transaction, known or not), so
//!   a restart or a power cut keeps the count. The table is bounded by [`MAX_SAVED`] rows and pruned.
//! - **More guesses than the limit, however parallel.** An attempt is reserved before its hash is
//!   computed: `failures + in flight` may not reach the limit, so ten parallel wrong passwords get
//!   `lockout_attempts` hashes, not ten.
//! - **One operator's typos locking a shared panel.** A source (an MQTT client id) is never locked: past
//!   the limit it is slowed to one password check per growing interval (1 s doubling to 32 s), so a
//!   spray from it crawls while another operator's correct password still gets in.
//! - **Unbounded memory.** At most [`MAX_NAMES`] names and [`MAX_SOURCES`] sources are tracked; when
//!   full, the least recently seen entry that holds nothing to keep is forgotten.

use crate::config::AccountsConfig;
use crate::protocol::{ApiError, ErrorCode};
use std::collections::HashMap;
use std::time::Duration;

/// Names tracked at once in memory (a locked name or one with attempts in flight is never dropped).
pub const MAX_NAMES: usize = 10_000;
/// Names whose failures are kept in the database (the oldest go first).
pub const MAX_SAVED: usize = 10_000;
/// Network sources tracked at once.
pub const MAX_SOURCES: usize = 4_096;
/// Longest slow-down of a source between two password checks.
const MAX_SOURCE_INTERVAL_MS: i64 = 32_000;

/// The delay before answering the n-th consecutive failure: 100 ms doubling, at most 3.2 s.
pub fn delay_for(failures: i64) -> Duration {
    Duration::from_millis(100u64 << (failures.clamp(1, 6) - 1))
}

/// Seconds until a lock ends (at least 1), or None when not locked.
pub fn retry_after(locked_until: Option<i64>, now: i64) -> Option<i64> {
    locked_until.filter(|&t| t > now).map(|t| ((t - now) + 999) / 1000)
}

pub fn locked_error(what: &str, retry_after_s: i64) -> ApiError {
    ApiError::new(ErrorCode::AccountLocked, format!("{what} is locked after repeated failed logins"))
        .with("retry_after_s", retry_after_s)
}

#[derive(Debug, Clone, Default)]
struct NameState {
    failures: u32,
    window_start: i64,
    locked_until: Option<i64>,
    in_flight: u32,
    touched: i64,
}

impl NameState {
    fn keep(&self, now: i64) -> bool {
        self.in_flight > 0 || self.locked_until.is_some_and(|t| t > now)
    }
}

#[derive(Debug, Clone, Default)]
struct SourceState {
    failures: u32,
    window_start: i64,
    /// While slowed: no password check before this time.
    next_at: i64,
    touched: i64,
}

/// Whether a login attempt may compute its hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Go on; report the outcome with [`Gate::finish`].
    Go,
    /// The name is locked (or its remaining attempts are all in flight).
    Locked { retry_after_s: i64 },
    /// The source failed too often lately and must wait.
    SourceSlowed { retry_after_ms: i64 },
}

/// What a finished attempt did to the counters, and the name's state to save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// Consecutive failures of the name in the window, this one included (0 after a success).
    pub failures: u32,
    /// Set when this failure locked the name.
    pub locked_until: Option<i64>,
    /// The state to save: failures still counting (0 once locked or after a success), window, lock.
    pub saved: (u32, i64, Option<i64>),
}

#[derive(Debug, Default)]
pub struct Gate {
    names: HashMap<String, NameState>,
    sources: HashMap<String, SourceState>,
}

/// Account names compare without case, as the `users` table does.
fn key(name: &str) -> String {
    name.to_lowercase()
}

impl Gate {
    /// Asks to check a password for `name` from `source`. `saved` is the name's state in the
    /// database (failures, window start, lock), which counts when memory does not hold the name (never
    /// seen since the start, or forgotten to make room: forgetting must not reset a counter). On
    /// [`Admit::Go`] one attempt is reserved: call [`Gate::finish`] exactly once.
    pub fn admit(
        &mut self,
        name: &str,
        saved: Option<(u32, i64, Option<i64>)>,
        source: Option<&str>,
        cfg: &AccountsConfig,
        now: i64,
    ) -> Admit {
        let attempts = cfg.lockout_attempts.max(1);
        let window = cfg.lockout_window.0.as_millis() as i64;
        if let Some(src) = source
            && let Some(s) = self.sources.get_mut(src)
        {
            if s.window_start + window < now {
                *s = SourceState { touched: now, ..SourceState::default() };
            }
            if s.failures >= attempts {
                if now < s.next_at {
                    return Admit::SourceSlowed { retry_after_ms: s.next_at - now };
                }
                // Slowed: this check takes the source's one slot for the next interval.
                let over = (s.failures - attempts).min(5);
                s.next_at = now + (1000i64 << over).min(MAX_SOURCE_INTERVAL_MS);
            }
            s.touched = now;
        }
        if self.names.len() >= MAX_NAMES && !self.names.contains_key(&key(name)) {
            evict(&mut self.names, |s| s.keep(now), |s| s.touched);
        }
        let n = self.names.entry(key(name)).or_insert_with(|| {
            let (failures, window_start, locked_until) = saved.unwrap_or_default();
            NameState { failures, window_start, locked_until, ..NameState::default() }
        });
        n.touched = now;
        if let Some(retry) = retry_after(n.locked_until, now) {
            return Admit::Locked { retry_after_s: retry };
        }
        if n.failures > 0 && n.window_start + window < now {
            n.failures = 0;
        }
        if n.failures + n.in_flight >= attempts {
            // The remaining attempts are being checked right now; whichever fails last locks.
            return Admit::Locked { retry_after_s: 1 };
        }
        n.in_flight += 1;
        Admit::Go
    }

    /// Reports the outcome of an attempt [`Gate::admit`] let through.
    pub fn finish(&mut self, name: &str, source: Option<&str>, ok: bool, cfg: &AccountsConfig, now: i64) -> Finished {
        let attempts = cfg.lockout_attempts.max(1);
        let n = self.names.entry(key(name)).or_default();
        n.in_flight = n.in_flight.saturating_sub(1);
        n.touched = now;
        if ok {
            n.failures = 0;
            n.locked_until = None;
            return Finished { failures: 0, locked_until: None, saved: (0, 0, None) };
        }
        if n.failures == 0 {
            n.window_start = now;
        }
        n.failures += 1;
        let failures = n.failures;
        let mut locked_until = None;
        if failures >= attempts {
            // The lock restarts the count: the next lock needs a full new run.
            locked_until = Some(now + cfg.lockout_duration.0.as_millis() as i64);
            n.locked_until = locked_until;
            n.failures = 0;
        }
        let saved = (n.failures, n.window_start, n.locked_until);
        if let Some(src) = source {
            if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(src) {
                evict(&mut self.sources, |s| now < s.next_at, |s| s.touched);
            }
            let s = self.sources.entry(src.to_string()).or_default();
            if s.failures == 0 {
                s.window_start = now;
            }
            s.failures += 1;
            s.touched = now;
            if s.failures == attempts {
                s.next_at = now + 1000;
            }
        }
        Finished { failures, locked_until, saved }
    }

    /// Whether a name has failures counted (or a lock) that a success must clear.
    pub fn has_failures(&self, name: &str) -> bool {
        self.names.get(&key(name)).is_some_and(|n| n.failures > 0 || n.locked_until.is_some())
    }

    /// Clears a name's lock and counters (`user.unlock`). Returns whether it was locked.
    pub fn unlock_name(&mut self, name: &str, now: i64) -> bool {
        match self.names.get_mut(&key(name)) {
            Some(n) => {
                let was = n.locked_until.is_some_and(|t| t > now);
                n.failures = 0;
                n.locked_until = None;
                was
            }
            None => false,
        }
    }

    /// Ends a source's slow-down (`user.unlock {source}`). Returns whether it was slowed.
    pub fn unlock_source(&mut self, source: &str, cfg: &AccountsConfig) -> bool {
        self.sources.remove(source).is_some_and(|s| s.failures >= cfg.lockout_attempts)
    }

    /// Whether a name is locked now, for `user.show`.
    pub fn locked_until(&self, name: &str, now: i64) -> Option<i64> {
        self.names.get(&key(name)).and_then(|n| n.locked_until).filter(|&t| t > now)
    }
}

/// Drops about a tenth of `map`: the least recently touched entries that `keep` does not protect.
fn evict<V>(map: &mut HashMap<String, V>, keep: impl Fn(&V) -> bool, touched: impl Fn(&V) -> i64) {
    let mut candidates: Vec<(i64, String)> =
        map.iter().filter(|(_, v)| !keep(v)).map(|(k, v)| (touched(v), k.clone())).collect();
    let n = (map.len() / 10).max(1).min(candidates.len());
    if n == 0 {
        return;
    }
    candidates.select_nth_unstable(n - 1);
    for (_, k) in candidates.into_iter().take(n) {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AccountsConfig {
        AccountsConfig::default()
    }

    #[test]
    fn parallel_wrong_passwords_get_only_the_limit_checked() {
        let (mut g, c) = (Gate::default(), cfg());
        let admitted = (0..10).filter(|_| g.admit("alice", None, None, &c, 1000) == Admit::Go).count();
        assert_eq!(admitted, c.lockout_attempts as usize);
        let mut locked = None;
        for _ in 0..admitted {
            locked = locked.or(g.finish("alice", None, false, &c, 1000).locked_until);
        }
        assert!(locked.is_some());
        assert!(matches!(g.admit("alice", None, None, &c, 1001), Admit::Locked { .. }));
    }

    #[test]
    fn unknown_and_known_names_lock_alike() {
        let (mut g, c) = (Gate::default(), cfg());
        let mut saved = Vec::new();
        for name in ["ghost", "alice"] {
            for _ in 0..c.lockout_attempts {
                assert_eq!(g.admit(name, None, None, &c, 5), Admit::Go);
                saved.push(g.finish(name, None, false, &c, 5).saved);
            }
            assert!(matches!(g.admit(name, None, None, &c, 6), Admit::Locked { .. }), "{name}");
        }
        let n = c.lockout_attempts as usize;
        assert_eq!(saved[..n], saved[n..], "the same state is saved for both");
    }

    #[test]
    fn a_slowed_source_still_lets_another_accounts_password_in() {
        let (mut g, c) = (Gate::default(), cfg());
        for i in 0..c.lockout_attempts {
            let name = format!("u{i}");
            assert_eq!(g.admit(&name, None, Some("panel"), &c, 0), Admit::Go);
            g.finish(&name, Some("panel"), false, &c, 0);
        }
        assert!(matches!(g.admit("bob", None, Some("panel"), &c, 10), Admit::SourceSlowed { .. }));
        assert_eq!(g.admit("bob", None, Some("panel"), &c, 1000), Admit::Go, "one check per interval");
        g.finish("bob", Some("panel"), true, &c, 1000);
        assert!(matches!(g.admit("eve", None, Some("panel"), &c, 1500), Admit::SourceSlowed { .. }));
        assert_eq!(g.admit("eve", None, Some("other-panel"), &c, 1500), Admit::Go);
    }

    #[test]
    fn a_forgotten_name_takes_its_saved_state_back() {
        let (mut g, c) = (Gate::default(), cfg());
        assert_eq!(g.admit("op", Some((c.lockout_attempts - 1, 0, None)), None, &c, 10), Admit::Go);
        assert!(g.finish("op", None, false, &c, 10).locked_until.is_some(), "the saved failures counted");
    }

    #[test]
    fn memory_is_bounded() {
        let (mut g, c) = (Gate::default(), cfg());
        for i in 0..(MAX_NAMES + 500) {
            let name = format!("n{i}");
            if g.admit(&name, None, Some(&format!("s{i}")), &c, i as i64) == Admit::Go {
                g.finish(&name, Some(&format!("s{i}")), false, &c, i as i64);
            }
        }
        assert!(g.names.len() <= MAX_NAMES, "{}", g.names.len());
        assert!(g.sources.len() <= MAX_SOURCES, "{}", g.sources.len());
    }
}
