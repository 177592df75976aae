//! Logging: journald when systemd gave us a journal stream (`JOURNAL_STREAM`), stderr otherwise.
//! The level comes from `GATEWARDEN_LOG` if set, else `daemon.log_level`; SIGHUP can change the latter.
//! A level is `info`, or per-module directives like `info,gatewarden::mqtt=debug` (tracing-subscriber's
//! `Targets`, which needs no regex engine: a smaller binary than `EnvFilter`). The filter type and
//! the tools that keep the log bounded ([`cut`], [`Throttle`]) are in [`crate::logs`].

pub use crate::logs::{CUT_CHARS, LogFilter, Throttle, WARNINGS, cut, cut_bytes, flush_suppressed, parse};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry, reload};

/// Lets a config reload change the level.
pub struct Handle {
    filter: Option<reload::Handle<Targets, Registry>>,
}

impl Handle {
    pub fn set_level(&self, level: &LogFilter) {
        if std::env::var_os("GATEWARDEN_LOG").is_some() {
            tracing::info!("GATEWARDEN_LOG is set; it overrides daemon.log_level");
            return;
        }
        if let Some(h) = &self.filter {
            match h.reload(level.targets().clone()) {
                Ok(()) => tracing::info!("log level is now {level}"),
                Err(e) => tracing::warn!("cannot change log level: {e}"),
            }
        }
    }
}

/// Installs the subscriber: `GATEWARDEN_LOG` if it is set and valid, else the config's level (a bad
/// `GATEWARDEN_LOG` is said in the log, not taken for a level).
pub fn init(config_level: &LogFilter) -> Handle {
    let from_env = std::env::var("GATEWARDEN_LOG").ok().map(|v| v.parse::<LogFilter>());
    let filter = match &from_env {
        Some(Ok(f)) => f.targets().clone(),
        _ => config_level.targets().clone(),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let journald = std::env::var_os("JOURNAL_STREAM")
        .and_then(|_| tracing_journald::layer().ok())
        .map(|l| l.with_syslog_identifier("gatewarden".into()));
    let stderr = journald
        .is_none()
        .then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false).boxed());
    let installed = tracing_subscriber::registry().with(filter).with(journald).with(stderr).try_init();
    if let Some(Err(e)) = from_env {
        tracing::warn!("GATEWARDEN_LOG ignored: {e}; logging at daemon.log_level {config_level}");
    }
    Handle { filter: installed.is_ok().then_some(handle) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn cut_bounds_and_escapes_client_strings() {
        assert_eq!(cut("hmi/panel7/reply"), "\"hmi/panel7/reply\"");
        assert_eq!(cut("a\nfake line"), "\"a\\nfake line\"");
        let huge = "x".repeat(900_000);
        let shown = cut(&huge);
        assert!(shown.len() < 100, "{shown}");
        assert!(shown.ends_with("…(900000 bytes)"), "{shown}");
        let shown = cut_bytes(huge.as_bytes());
        assert!(shown.len() < 100 && shown.ends_with("…(900000 bytes)"), "{shown}");
        assert_eq!(cut_bytes(b"ok"), "\"ok\"");
    }

    #[test]
    fn throttle_lets_one_line_per_kind_per_period_and_counts_the_rest() {
        let t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.allow("a", t0), Some(0));
        assert_eq!(t.allow("a", t0 + Duration::from_secs(1)), None);
        assert_eq!(t.allow("a", t0 + Duration::from_secs(2)), None);
        assert_eq!(t.allow("b", t0 + Duration::from_secs(2)), Some(0), "kinds are independent");
        assert_eq!(t.allow("a", t0 + Duration::from_secs(11)), Some(2), "the next line tells what was dropped");
        assert_eq!(t.allow("a", t0 + Duration::from_secs(12)), None);
        assert_eq!(t.take_suppressed(t0 + Duration::from_secs(15)), vec![], "not before the period is over");
        assert_eq!(t.take_suppressed(t0 + Duration::from_secs(21)), vec![("a", 1)], "a burst that stopped is counted");
        assert_eq!(t.take_suppressed(t0 + Duration::from_secs(40)), vec![]);
    }
    #[test]
    fn levels_and_directives() {
        for ok in ["info", "WARN", "off", "info,gatewarden::mqtt=debug", "gatewarden=trace"] {
            assert!(super::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["debgu", "", "info,", "=debug", "gatewarden=loud", "info,,warn"] {
            assert!(super::parse(bad).is_err(), "{bad:?}");
            assert!(bad.parse::<LogFilter>().is_err(), "{bad:?}");
        }
        let f: LogFilter = " info,gatewarden::mqtt=debug ".parse().unwrap();
        assert_eq!(f.as_str(), "info,gatewarden::mqtt=debug");
    }
}
