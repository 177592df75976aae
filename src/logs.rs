//! Log hygiene, for every module that logs: the log filter as the config holds it, and the two
//! tools that keep the log bounded whatever a client sends. [`cut`] shortens and escapes every
//! client-controlled string put in a log line, and [`Throttle`] lets a repeated warning through at
//! most once per kind per period, the next line of that kind, or a closing line once a burst stops
//! ([`flush_suppressed`]), saying how many were suppressed in between. (Where logs go is the daemon's
//! business: `daemon::logging`.)
//!
//! Must never happen: a network client deciding how many bytes we log.

use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing_subscriber::filter::Targets;

/// A log level or directive list (`daemon.log_level`), parsed when the config is: a config that
/// loads always has one logging can use.
#[derive(Debug, Clone)]
pub struct LogFilter {
    text: String,
    targets: Targets,
}

impl LogFilter {
    /// The level or directives as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Default for LogFilter {
    fn default() -> Self {
        LogFilter { text: "info".into(), targets: Targets::new().with_default(tracing::Level::INFO) }
    }
}

impl PartialEq for LogFilter {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl std::fmt::Display for LogFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for LogFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(LogFilter { text: s.trim().to_string(), targets: parse(s)? })
    }
}

impl<'de> serde::Deserialize<'de> for LogFilter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl LogFilter {
    /// The filter the subscriber applies.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }
}

/// Parses a log level or directive list (`warn`, `info,gatewarden::mqtt=debug`). Stricter than
/// `Targets` alone, which would take a misspelt level (`debgu`) for a module name and log nothing.
pub fn parse(level: &str) -> Result<Targets, String> {
    let bad =
        || format!("{level:?} is not a log level (off, error, warn, info, debug, trace) or a list of module=level");
    for directive in level.split(',').map(str::trim) {
        let lvl = directive.rsplit_once('=').map_or(directive, |(target, l)| if target.is_empty() { "" } else { l });
        if lvl.is_empty() || lvl.parse::<tracing::level_filters::LevelFilter>().is_err() {
            return Err(bad());
        }
    }
    level.trim().parse::<Targets>().map_err(|_| bad())
}

/// The most characters of a client-controlled string a log line shows.
pub const CUT_CHARS: usize = 64;

/// A client-controlled string as a log line may show it: at most [`CUT_CHARS`] characters, control
/// characters and quotes escaped (so it cannot forge a second log line), and the original length
/// when it was longer. Costs O(CUT_CHARS) whatever the input size.
pub fn cut(s: &str) -> String {
    let (head, longer) = escaped_head(s, CUT_CHARS);
    format!("\"{head}\"{}", if longer { format!("…({} bytes)", s.len()) } else { String::new() })
}

/// [`cut`] to `max` characters and without the quotes, for a client string stored or shown inside
/// another text (an audit row's actor or target, an error message): the same escaping, the same
/// length note. Costs O(max) whatever the input size.
pub fn clip(s: &str, max: usize) -> String {
    let (mut head, longer) = escaped_head(s, max);
    if longer {
        head.push_str(&format!("…({} bytes)", s.len()));
    }
    head
}

/// The first `max` characters of `s`, escaped, and whether `s` goes on past them.
fn escaped_head(s: &str, max: usize) -> (String, bool) {
    let mut out = String::with_capacity(max.min(s.len()) + 8);
    let mut chars = s.chars();
    for c in chars.by_ref().take(max) {
        out.extend(c.escape_debug());
    }
    (out, chars.next().is_some())
}

/// [`cut`] for bytes that may not be UTF-8 (MQTT topics as they arrive).
pub fn cut_bytes(b: &[u8]) -> String {
    // Only the head is decoded: a 900 KB topic costs no more than a short one.
    let head = &b[..b.len().min(CUT_CHARS * 4)];
    let mut shown = cut(&String::from_utf8_lossy(head));
    if head.len() < b.len() {
        // `cut` measured the head only; name the real length.
        if let Some(i) = shown.rfind("…(") {
            shown.truncate(i);
        }
        shown.push_str(&format!("…({} bytes)", b.len()));
    }
    shown
}

/// At most one log line per kind per `every`; the kinds are `&'static str`s named in the code, so
/// the table is as small as the number of call sites, whoever floods us.
pub struct Throttle {
    every: Duration,
    kinds: Mutex<Vec<(&'static str, Instant, u64)>>,
}

impl Throttle {
    pub const fn new(every: Duration) -> Throttle {
        Throttle { every, kinds: Mutex::new(Vec::new()) }
    }

    /// Whether a line of `kind` may be written now: `Some(n)` with the number of lines suppressed
    /// since the last one written, or `None` to drop this one (and count it).
    pub fn allow(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        match kinds.iter_mut().find(|(k, ..)| *k == kind) {
            Some((_, at, suppressed)) if now.saturating_duration_since(*at) < self.every => {
                *suppressed += 1;
                None
            }
            Some((_, at, suppressed)) => {
                *at = now;
                Some(std::mem::take(suppressed))
            }
            None => {
                kinds.push((kind, now, 0));
                Some(0)
            }
        }
    }

    /// The kinds whose period has passed with lines suppressed, and how many: a burst that stopped
    /// still gets its closing count. Each such kind starts a new period.
    pub fn take_suppressed(&self, now: Instant) -> Vec<(&'static str, u64)> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (kind, at, suppressed) in kinds.iter_mut() {
            if *suppressed > 0 && now.saturating_duration_since(*at) >= self.every {
                out.push((*kind, std::mem::take(suppressed)));
                *at = now;
            }
        }
        out
    }
}

/// Writes the closing count of every throttled burst (called every second from the daemon's loop).
pub fn flush_suppressed() {
    for (kind, n) in WARNINGS.take_suppressed(Instant::now()) {
        tracing::warn!("{n} more warnings of kind {kind} suppressed in the last {:?}", WARNINGS.every);
    }
}

/// The daemon's one throttle for warnings a network client can cause: one line per kind per 10 s.
pub static WARNINGS: Throttle = Throttle::new(Duration::from_secs(10));

/// `tracing::warn!` through [`WARNINGS`]: `warn_throttled!("kind", "format", args...)`. The line
/// written after a quiet spell says how many of its kind were suppressed before it.
#[macro_export]
macro_rules! warn_throttled {
    ($kind:expr, $($arg:tt)+) => {
        if let Some(n) = $crate::logs::WARNINGS.allow($kind, std::time::Instant::now()) {
            if n == 0 {
                tracing::warn!($($arg)+);
            } else {
                tracing::warn!("{} ({n} more like it suppressed)", format_args!($($arg)+));
            }
        }
    };
}
