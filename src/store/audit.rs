//! The append-only audit trail. Every privileged action lands here in the same transaction as the
//! change it records. Refusals and failed logins cost the caller nothing on the disk: they are
//! counted in a [`Buffer`] and written together every few seconds, one row per (actor, source,
//! action, target, outcome, reason) with how many times it happened, so a flood of refused requests
//! adds a bounded number of rows, not one synced write each.

use crate::logs::clip;
use rusqlite::{Connection, params};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// Who did it and through what, as the audit trail names them.
#[derive(Debug, Clone)]
pub struct Actor {
    pub who: crate::contract::Actor,
    /// The transport and peer: `console uid=0`, `mqtt client=...`, `daemon`.
    pub source: String,
}

impl Actor {
    pub fn system() -> Actor {
        Actor { who: crate::contract::Actor::nobody(), source: "daemon".into() }
    }
}

pub fn record(
    tx: &Connection,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    outcome: Outcome,
    detail: Option<&Value>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (ts, actor, source, action, target, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            super::now_ms(),
            actor.who.to_text(),
            actor.source,
            action,
            target,
            outcome.as_str(),
            detail.map(|d| d.to_string())
        ],
    )?;
    Ok(())
}

/// Distinct refusals kept between two flushes; past it they are only counted.
pub const MAX_PENDING: usize = 64;
/// Longest actor, source or target text a buffered row keeps (they may come from the network).
const MAX_TEXT: usize = 128;

/// What makes two refusals the same row: actor, source, action, target, outcome, reason.
type PendingKey = (String, String, String, Option<String>, &'static str, String);

#[derive(Debug)]
struct Pending {
    actor: Actor,
    action: String,
    target: Option<String>,
    outcome: Outcome,
    detail: Option<Value>,
    count: u64,
    first: i64,
    last: i64,
}

/// Refusals and failures waiting for the next flush. Bounded: at most [`MAX_PENDING`] distinct rows,
/// the rest counted in one summary row.
#[derive(Debug, Default)]
pub struct Buffer {
    pending: Vec<Pending>,
    index: std::collections::HashMap<PendingKey, usize>,
    overflow: u64,
}

impl Buffer {
    /// Counts one refusal or failure. `reason` tells apart rows that would otherwise merge (an error
    /// code, "locked"...); `detail` of the first occurrence is kept.
    pub fn add(
        &mut self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        outcome: Outcome,
        reason: &str,
        detail: Option<Value>,
    ) {
        let now = super::now_ms();
        let target = target.map(|t| clip(t, MAX_TEXT));
        let key = (
            clip(&actor.who.to_text(), MAX_TEXT),
            clip(&actor.source, MAX_TEXT),
            action.to_string(),
            target,
            outcome.as_str(),
            reason.to_string(),
        );
        if let Some(&i) = self.index.get(&key) {
            let p = &mut self.pending[i];
            p.count += 1;
            p.last = now;
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.overflow += 1;
            return;
        }
        self.pending.push(Pending {
            actor: Actor { who: actor.who.clone(), source: key.1.clone() },
            action: key.2.clone(),
            target: key.3.clone(),
            outcome,
            detail,
            count: 1,
            first: now,
            last: now,
        });
        self.index.insert(key, self.pending.len() - 1);
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.overflow == 0
    }

    /// Writes what is pending in `tx` (the caller commits) and empties the buffer.
    pub fn flush(&mut self, tx: &Connection) -> rusqlite::Result<usize> {
        let mut n = 0;
        for p in self.pending.drain(..) {
            let mut detail = p.detail.unwrap_or_else(|| Value::Object(Default::default()));
            if let Value::Object(m) = &mut detail {
                m.insert("count".into(), p.count.into());
                m.insert("first_ts".into(), p.first.into());
                m.insert("last_ts".into(), p.last.into());
            }
            record(tx, &p.actor, &p.action, p.target.as_deref(), p.outcome, Some(&detail))?;
            n += 1;
        }
        self.index.clear();
        if self.overflow > 0 {
            let detail = serde_json::json!({"count": std::mem::take(&mut self.overflow),
                "note": "more distinct refusals than one flush keeps; only counted"});
            record(tx, &Actor::system(), "audit.suppressed", None, Outcome::Denied, Some(&detail))?;
            n += 1;
        }
        Ok(n)
    }
}

pub use crate::contract::system::AuditEntry as Entry;

/// Which entries [`list`] returns; `None` is no filter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    pub since: Option<i64>,
    /// An exact action, or a family ending in `.` (a prefix).
    pub action: Option<&'a str>,
    /// A user's or an API key's name.
    pub actor: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub target: Option<&'a str>,
}

/// The entries that pass `f`, newest first, at most `limit`.
pub fn list(conn: &Connection, f: &Filter<'_>, limit: u32) -> rusqlite::Result<Vec<Entry>> {
    let (exact, family) = match f.action {
        Some(a) if a.ends_with('.') => (None, Some(a)),
        other => (other, None),
    };
    let mut st = conn.prepare_cached(
        "SELECT id, ts, actor, source, action, target, outcome, detail FROM audit
         WHERE ts >= ?1
           AND (?3 IS NULL OR action = ?3)
           AND (?4 IS NULL OR substr(action, 1, length(?4)) = ?4)
           AND (?5 IS NULL OR actor = 'user:' || ?5 OR actor = 'key:' || ?5)
           AND (?6 IS NULL OR outcome = ?6)
           AND (?7 IS NULL OR target = ?7)
         ORDER BY id DESC LIMIT ?2",
    )?;
    let args = params![f.since.unwrap_or(i64::MIN), limit, exact, family, f.actor, f.outcome, f.target];
    let rows = st.query_map(args, |r| {
        let detail: Option<String> = r.get(7)?;
        Ok(Entry {
            id: r.get(0)?,
            ts: r.get(1)?,
            actor: crate::contract::Actor::from_text(&r.get::<_, String>(2)?),
            source: r.get(3)?,
            action: r.get(4)?,
            target: r.get(5)?,
            outcome: r.get(6)?,
            detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
        })
    })?;
    rows.collect()
}

/// Retention: drops entries older than `max_age_ms` and all but the newest `max_rows`.
pub fn prune(conn: &Connection, max_age_ms: i64, max_rows: u64) -> rusqlite::Result<usize> {
    let cutoff = super::now_ms().saturating_sub(max_age_ms);
    let by_age = conn.execute("DELETE FROM audit WHERE ts < ?1", params![cutoff])?;
    let by_count = conn.execute(
        "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?1)",
        params![max_rows as i64],
    )?;
    Ok(by_age + by_count)
}
