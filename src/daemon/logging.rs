//! Logging: journald when systemd gave us a journal stream (`JOURNAL_STREAM`), stderr otherwise.
//! The level comes from `GATEWARDEN_LOG` if set, else `daemon.log_level`; SIGHUP can change the latter.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// Lets a config reload change the level.
pub struct Handle {
    filter: Option<reload::Handle<EnvFilter, Registry>>,
}

impl Handle {
    pub fn set_level(&self, level: &str) {
        if std::env::var_os("GATEWARDEN_LOG").is_some() {
            tracing::info!("GATEWARDEN_LOG is set; it overrides daemon.log_level");
            return;
        }
        match (EnvFilter::try_new(level), &self.filter) {
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
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
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
