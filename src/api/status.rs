//! `status`: what a technician or an HMI needs to see first. Open to any caller that reached us.
//!
//! Must never happen: an anonymous or unprivileged caller (an HMI on the plant network) learning the
//! box's layout: file paths, the broker's address, the schema, how long since the last restart. Those
//! fields are shown only to holders of `settings.manage` and superusers (root on the console is the
//! built-in admin, so `gatewarden status` shows everything); everybody else gets the version, the
//! site, the seats, the supervisor lock and the MQTT link state. Absent fields are left out of the
//! JSON rather than sent as null.

use super::{Caller, Ctx};
use crate::contract::system::{MqttLink, Seats, Status, StatusGet};
use crate::protocol::ApiError;
use crate::store::outbox;
use serde_json::Value;

/// The permission that shows a caller the box's layout in `status`.
pub const LAYOUT_PERMISSION: &str = "settings.manage";

pub fn status(ctx: &Ctx, caller: &Caller, _: StatusGet) -> Result<Status, ApiError> {
    // `permits` answers for superusers too, and does not audit: this decides what to show only.
    let layout = ctx.permits(caller, LAYOUT_PERMISSION);
    let shown = |v| if layout { Some(v) } else { None };
    let config = ctx.config();
    let (schema_version, outbox_depth) = {
        let store = ctx.store();
        (store.schema_version()?, outbox::depth(&store.conn)?)
    };
    let license = crate::sessions::seats::license(&config, &ctx.sessions());
    let link = ctx.mqtt.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Status {
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_s: layout.then(|| ctx.started.elapsed().as_secs()),
        site: config.site.id.clone(),
        database: shown(ctx.paths.db.display().to_string()),
        schema_version: layout.then_some(schema_version),
        socket: shown(ctx.paths.socket.display().to_string()),
        mqtt: MqttLink {
            enabled: config.mqtt.enabled,
            url: shown(config.mqtt.url.clone()),
            state: link.state,
            last_error: link.last_error.filter(|_| layout),
            outbox_depth,
        },
        seats: Seats {
            limit: license.limit,
            in_use: license.in_use,
            reserved: license.reserved,
            sessions: license.sessions,
            types: license.types,
            read_only: license.read_only,
        },
        supervisor_lock: ctx.lock().map(|l| l.state.clone()),
        directory: super::directory::link(ctx, layout)?,
        plant: license.plant,
    })
}

/// The retained state the MQTT bridge publishes on every ConnAck, so an HMI that connects later sees
/// it at once: (topic below the site prefix, payload; `None` = empty retained payload, i.e. cleared).
pub fn retained(ctx: &Ctx) -> Vec<(String, Option<Value>)> {
    use crate::contract::topics::{self, LinkStatus, LinkWord};
    let json = |v: Result<Value, serde_json::Error>| v.unwrap_or(Value::Null);
    let online = LinkStatus { state: LinkWord::Online, version: Some(env!("CARGO_PKG_VERSION").into()) };
    let license = crate::sessions::seats::license(&ctx.config(), &ctx.sessions());
    vec![
        (topics::STATUS.into(), Some(json(serde_json::to_value(online)))),
        (topics::LICENSE.into(), Some(json(serde_json::to_value(license)))),
        (topics::SUPERVISOR_LOCK.into(), ctx.lock().map(|l| json(serde_json::to_value(&l.state)))),
    ]
}
