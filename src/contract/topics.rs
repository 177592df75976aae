//! The MQTT topics, below the site prefix `gatewarden/<site.id>` (except the HMIs' own reply
//! topics), with what flows on each: the daemon's side of the AsyncAPI document.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// Who publishes on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The daemon publishes; HMIs and consoles subscribe.
    Daemon,
    /// HMIs and consoles publish; the daemon subscribes.
    Clients,
}

/// The QoS of a topic's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    /// Always this QoS.
    Fixed(u8),
    /// `mqtt.qos` from the config (default 1).
    Configured,
    /// Whatever the client chose: 0 or 1 accepted (QoS 2 is treated as 1).
    Clients,
}

/// One topic.
#[derive(Debug, Clone, Copy)]
pub struct Topic {
    /// A short name for the docs (the AsyncAPI channel id).
    pub id: &'static str,
    /// The address: `{prefix}` is `gatewarden/<site.id>`; other `{...}` are parameters.
    pub address: &'static str,
    pub direction: Direction,
    pub retained: bool,
    pub qos: Qos,
    pub summary: &'static str,
    /// The payload's schema, its definitions kept in the generator.
    pub payload: fn(&mut SchemaGenerator) -> Schema,
}

/// The retained `status` topic and the daemon's Last Will.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LinkStatus {
    /// `online` while the daemon is connected; `offline` (its Last Will, or sent at shutdown).
    pub state: LinkWord,
    /// The daemon's version (absent in the Last Will).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkWord {
    Online,
    Offline,
}

pub const STATUS: &str = "status";
pub const LICENSE: &str = "license";
pub const SUPERVISOR_LOCK: &str = "supervisor/lock";
pub const SUPERVISOR_MESSAGE: &str = "supervisor/message";

/// `events/<name>`, below the prefix.
pub fn event(name: &str) -> String {
    format!("events/{name}")
}

/// `sessions/<id>/control`, below the prefix.
pub fn session_control(session_id: i64) -> String {
    format!("sessions/{session_id}/control")
}

/// Every topic but the events (see [`super::catalog::events`]), in the order the docs list them.
pub fn all() -> Vec<Topic> {
    use Direction::{Clients, Daemon};
    vec![
        Topic {
            id: "status",
            address: "{prefix}/status",
            direction: Daemon,
            retained: true,
            qos: Qos::Fixed(1),
            summary: "the daemon's link: online while connected; its Last Will (and its shutdown) set offline",
            payload: |g| g.subschema_for::<LinkStatus>(),
        },
        Topic {
            id: "license",
            address: "{prefix}/license",
            direction: Daemon,
            retained: true,
            qos: Qos::Fixed(1),
            summary: "the licence seats: limit, in use, free, reserved, and each pool; republished on every change",
            payload: |g| g.subschema_for::<super::sessions::License>(),
        },
        Topic {
            id: "supervisor-lock",
            address: "{prefix}/supervisor/lock",
            direction: Daemon,
            retained: true,
            qos: Qos::Fixed(1),
            summary: "the supervisor lock; an empty retained payload when none is set",
            payload: |g| g.subschema_for::<super::sessions::LockState>(),
        },
        Topic {
            id: "supervisor-message",
            address: "{prefix}/supervisor/message",
            direction: Daemon,
            retained: false,
            qos: Qos::Configured,
            summary: "a supervisor's broadcast to every HMI",
            payload: |g| g.subschema_for::<super::sessions::Broadcast>(),
        },
        Topic {
            id: "session-control",
            address: "{prefix}/sessions/{session_id}/control",
            direction: Daemon,
            retained: false,
            qos: Qos::Configured,
            summary: "commands for one HMI session: terminate (the session has ended; its token is dead)",
            payload: |g| g.subschema_for::<super::sessions::ControlMessage>(),
        },
        Topic {
            id: "rpc-request",
            address: "{prefix}/rpc/request/{client_id}",
            direction: Clients,
            retained: false,
            qos: Qos::Clients,
            summary: "a request (see api.md), published by the client on the topic of its own client id; \
                      rate-limited and bounded per client",
            payload: |g| g.subschema_for::<crate::protocol::Request>(),
        },
        Topic {
            id: "rpc-reply",
            address: "", // a topic the requester chose
            direction: Daemon,
            retained: false,
            qos: Qos::Fixed(1),
            summary: "the reply to a request, on the request's response topic (MQTT v5) or reply_to (3.1.1), \
                      with its correlation data and id; only below hmi/<client id>/ or {prefix}/rpc/reply/<client id>/",
            payload: |g| g.subschema_for::<crate::protocol::Response>(),
        },
    ]
}
