//! `status`: what a technician or an HMI needs to see first. Open to any caller that reached us.

use super::{Caller, Ctx, params, to_value};
use crate::protocol::ApiError;
use crate::store::outbox;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

#[derive(Debug, Serialize, Deserialize)]
pub struct Seats {
    pub limit: u32,
    pub in_use: u32,
    #[serde(default)]
    pub reserved: std::collections::BTreeMap<String, u32>,
    #[serde(default)]
    pub sessions: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Mqtt {
    pub enabled: bool,
    pub url: String,
    pub state: String,
    pub last_error: Option<String>,
    pub outbox_depth: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub uptime_s: u64,
    pub site: String,
    pub database: String,
    pub schema_version: i64,
    pub socket: String,
    pub mqtt: Mqtt,
    pub seats: Seats,
    pub supervisor_lock: Option<Value>,
}

pub fn status(ctx: &Ctx, _caller: &Caller, p: &Value) -> Result<Value, ApiError> {
    let _: Params = params("status", p)?;
    let config = ctx.config();
    let (schema_version, outbox_depth) = {
        let store = ctx.store();
        (store.schema_version()?, outbox::depth(&store.conn)?)
    };
    let (in_use, sessions) = {
        let table = ctx.sessions();
        (table.in_use(), table.len() as u32)
    };
    let link = ctx.mqtt.lock().unwrap_or_else(|p| p.into_inner()).clone();
    to_value(Status {
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_s: ctx.started.elapsed().as_secs(),
        site: config.site.id.clone(),
        database: ctx.paths.db.display().to_string(),
        schema_version,
        socket: ctx.paths.socket.display().to_string(),
        mqtt: Mqtt {
            enabled: config.mqtt.enabled,
            url: config.mqtt.url.clone(),
            state: link.state,
            last_error: link.last_error,
            outbox_depth,
        },
        seats: Seats { limit: config.license.seats, in_use, reserved: config.license.reserved.clone(), sessions },
        supervisor_lock: super::supervisor::status(ctx),
    })
}

/// The retained state the MQTT bridge publishes on every ConnAck, so an HMI that connects later sees
/// it at once: (topic below the site prefix, payload; `None` = empty retained payload, i.e. cleared).
pub fn retained(ctx: &Ctx) -> Vec<(String, Option<Value>)> {
    let config = ctx.config();
    let license = super::session::license(&config, &ctx.sessions());
    vec![
        ("status".into(), Some(serde_json::json!({"state": "online", "version": env!("CARGO_PKG_VERSION")}))),
        ("license".into(), Some(license)),
        ("supervisor/lock".into(), super::supervisor::status(ctx)),
    ]
}
