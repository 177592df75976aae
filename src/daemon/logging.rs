//! Logging: journald when systemd gave us a journal stream (`JOURNAL_STREAM`), stderr otherwise.
//! The level comes from `GATEWARDEN_LOG` if set, else `daemon.log_level`; SIGHUP can change the latter.
//! A level is `info`, or per-module directives like `info,gatewarden::mqtt=debug` (tracing-subscriber's
//! `Targets`, which needs no regex engine: a smaller binary than `EnvFilter`).

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry, reload};

/// Lets a config reload change the level.
pub struct Handle {
    filter: Option<reload::Handle<Targets, Registry>>,
}

impl Handle {
    pub fn set_level(&self, level: &str) {
        if std::env::var_os("GATEWARDEN_LOG").is_some() {
            tracing::info!("GATEWARDEN_LOG is set; it overrides daemon.log_level");
            return;
        }
        match (parse(level), &self.filter) {
            (Ok(f), Some(h)) => match h.reload(f) {
                Ok(()) => tracing::info!("log level is now {level}"),
                Err(e) => tracing::warn!("cannot change log level: {e}"),
            },
            (Err(e), _) => tracing::warn!("log level {level:?} ignored: {e}"),
            (_, None) => {}
        }
    }
}

pub fn init(config_level: &str) -> Handle {
    let level = std::env::var("GATEWARDEN_LOG").unwrap_or_else(|_| config_level.to_string());
    let filter = parse(&level).unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    let (filter, handle) = reload::Layer::new(filter);
    let journald = std::env::var_os("JOURNAL_STREAM")
        .and_then(|_| tracing_journald::layer().ok())
        .map(|l| l.with_syslog_identifier("gatewarden".into()));
    let stderr = journald
        .is_none()
        .then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false).boxed());
    let installed = tracing_subscriber::registry().with(filter).with(journald).with(stderr).try_init();
    Handle { filter: installed.is_ok().then_some(handle) }
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

#[cfg(test)]
mod tests {
    #[test]
    fn levels_and_directives() {
        for ok in ["info", "WARN", "off", "info,gatewarden::mqtt=debug", "gatewarden=trace"] {
            assert!(super::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["debgu", "", "info,", "=debug", "gatewarden=loud", "info,,warn"] {
            assert!(super::parse(bad).is_err(), "{bad:?}");
        }
    }
}
