//! The MQTT bridge: mirrors gatewarden's state and events to the HMIs and serves their requests.
//!
//! Must never happen: a request on the control socket waiting for the broker (nothing outside this
//! task ever touches the MQTT client); an outbox row deleted before the broker acknowledged it; a
//! busy loop while the broker is away; the bridge stopped by anything a client publishes.
//!
//! One task owns rumqttc's event loop and does everything MQTT:
//! - connects with `clean_start` (requests queued while we were away are stale by the time we are
//!   back) and a retained Last Will `{"state":"offline"}` on `status`; reconnects after a backoff
//!   that doubles from 1 s up to `mqtt.reconnect_max`, each wait drawn at random from its upper half;
//! - on every ConnAck: subscribes to `rpc/request` and `rpc/request/+`, republishes the retained state
//!   (`api::status::retained`), and restarts the outbox from its oldest row;
//! - publishes the outbox in id order, one row in flight (so a reconnect can only repeat the last row,
//!   never reorder), and deletes the row on its PUBACK (PUBCOMP at QoS 2);
//! - hands each request to a tokio task (`rpc::serve`) after the per-client rate limit, and publishes
//!   the replies those tasks send back;
//! - on shutdown publishes `{"state":"offline"}` retained, waits for its PUBACK, and disconnects
//!   cleanly (which tells the broker to drop the Will).
//!
//! Which publish got which packet id: rumqttc numbers QoS ≥ 1 publishes as its loop takes them from
//! its channel and reports `Outgoing::Publish(pkid)` in that order, so `sent` records, in order, what
//! each QoS ≥ 1 publish was. Only this task publishes, and only while connected; when a connection
//! dies rumqttc drops what it had queued (a clean session has nothing to resume), so `sent` and the
//! row in flight are reset on the next ConnAck.

pub mod rpc;
pub mod tls;

use crate::api::{Ctx, LinkState};
use crate::config::MqttConfig;
use crate::store::outbox;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnectProperties, Filter, LastWill, Packet, PubAckReason, PubCompReason, Publish, PublishProperties,
};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use serde_json::json;
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

/// The running bridge, as the daemon holds it.
pub struct Handle {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Publishes offline status and disconnects; gives up after `timeout` (a broker that went away
    /// must not hold up a shutdown).
    pub async fn shutdown(self, timeout: Duration) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(timeout, &mut task).await.is_err() {
            tracing::warn!("mqtt: no clean disconnect within {timeout:?}; the broker will publish the Last Will");
            task.abort();
        }
    }
}

/// Starts the bridge when `mqtt.enabled`; the daemon runs the same without it.
pub fn spawn(ctx: Arc<Ctx>) -> Option<Handle> {
    let config = ctx.config();
    if !config.mqtt.enabled {
        return None;
    }
    let prefix = format!("gatewarden/{}", config.site.id);
    let options = match options(&config.mqtt, &prefix, &config.site.id, config.daemon.max_request_bytes) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!("mqtt: not starting the bridge: {e}");
            set_link(&ctx, "not connected", Some(e));
            return None;
        }
    };
    let (stop, stop_rx) = oneshot::channel();
    let task = tokio::spawn(Bridge::new(ctx, options, prefix).run(stop_rx));
    Some(Handle { stop, task })
}

/// Turns `[mqtt]` into rumqttc options.
fn options(m: &MqttConfig, prefix: &str, site: &str, max_request: usize) -> Result<MqttOptions, String> {
    let (tls, host, port) = parse_url(&m.url)?;
    let client_id = m.client_id.clone().unwrap_or_else(|| format!("gatewarden-{site}"));
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_keep_alive(m.keep_alive.0);
    o.set_clean_start(true);
    if let Some(user) = &m.username {
        let password = match &m.password_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("mqtt.password_file {}: {e}", path.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            None => String::new(),
        };
        o.set_credentials(user.clone(), password);
    }
    let will = serde_json::to_vec(&json!({"state": "offline"})).unwrap_or_default();
    o.set_last_will(LastWill::new(format!("{prefix}/status"), will, QoS::AtLeastOnce, true, None));
    // rumqttc refuses (and drops the connection on) any packet above this size, 10 KiB by default;
    // the broker, told in CONNECT, does not send us larger ones. Room above the request limit so an
    // oversized request still reaches us and gets its `bad_request`.
    let max_packet = max_request.saturating_mul(2).max(max_request + 65_536).min(256 * 1024 * 1024);
    let mut props = ConnectProperties::new();
    props.max_packet_size = Some(max_packet as u32);
    o.set_connect_properties(props);
    if tls {
        o.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls::client_config(m)?)));
    }
    Ok(o)
}

/// `mqtt://host[:port]` or `mqtts://host[:port]` (IPv6 in brackets): (tls, host, port).
pub fn parse_url(url: &str) -> Result<(bool, String, u16), String> {
    let (tls, rest) = match url.split_once("://") {
        Some(("mqtt", rest)) => (false, rest),
        Some(("mqtts", rest)) => (true, rest),
        _ => return Err(format!("mqtt.url {url:?} must start with mqtt:// or mqtts://")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| format!("mqtt.url {url:?}: unclosed ["))?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', '?']) {
        return Err(format!("mqtt.url {url:?}: expected scheme://host[:port]"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("mqtt.url {url:?}: bad port {p:?}"))?,
        None => default_port,
    };
    Ok((tls, host.to_string(), port))
}

fn set_link(ctx: &Ctx, state: &str, error: Option<String>) {
    let mut link = ctx.mqtt.lock().unwrap_or_else(|p| p.into_inner());
    *link = LinkState { state: state.into(), last_error: error.or(link.last_error.take()) };
}

type PollResult = (EventLoop, Result<Event, ConnectionError>);

/// One `EventLoop::poll`, owning the loop so that the future can outlive a `select!` round: we never
/// cancel a poll half-way (rumqttc does not promise that is safe).
fn poll_once(mut el: EventLoop) -> Pin<Box<dyn Future<Output = PollResult> + Send>> {
    Box::pin(async move {
        let r = el.poll().await;
        (el, r)
    })
}

async fn next_event(slot: &mut Option<Pin<Box<dyn Future<Output = PollResult> + Send>>>) -> PollResult {
    match slot {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// What a QoS ≥ 1 publish was, until rumqttc tells its packet id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Row(i64),
    Offline,
    Other,
}

struct InFlight {
    row: i64,
    pkid: Option<u16>,
}

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// How often the outbox is looked at without a wake-up (a writer that forgot `outbox_written`).
const OUTBOX_POLL: Duration = Duration::from_secs(2);

struct Bridge {
    ctx: Arc<Ctx>,
    client: AsyncClient,
    eventloop: Option<EventLoop>,
    prefix: String,
    rpc_topic: String,
    /// QoS for outbox messages that are not retained state.
    qos: QoS,
    connected: bool,
    backoff: Duration,
    sent: VecDeque<Sent>,
    in_flight: Option<InFlight>,
    /// The outbox id last handed to the broker on this connection.
    cursor: i64,
    /// Retained rows up to this id on these topics are superseded by the state republished at the
    /// last ConnAck; replaying them would briefly show an HMI old state.
    superseded: (i64, HashSet<String>),
    offline: OfflineState,
    replies_tx: mpsc::Sender<rpc::Reply>,
    replies_rx: mpsc::Receiver<rpc::Reply>,
    limiter: rpc::Limiter,
    password_checks: Arc<Semaphore>,
}

#[derive(Debug, PartialEq, Eq)]
enum OfflineState {
    NotSent,
    Sent(Option<u16>),
    Acked,
}

impl Bridge {
    fn new(ctx: Arc<Ctx>, options: MqttOptions, prefix: String) -> Bridge {
        let config = ctx.config();
        let (client, eventloop) = AsyncClient::new(options, 1024);
        let (replies_tx, replies_rx) = mpsc::channel(1024);
        Bridge {
            client,
            eventloop: Some(eventloop),
            rpc_topic: format!("{prefix}/rpc/request"),
            prefix,
            qos: qos(config.mqtt.qos),
            connected: false,
            backoff: FIRST_BACKOFF,
            sent: VecDeque::new(),
            in_flight: None,
            cursor: 0,
            superseded: (0, HashSet::new()),
            offline: OfflineState::NotSent,
            replies_tx,
            replies_rx,
            limiter: rpc::Limiter::new(config.mqtt.rpc_rate, config.mqtt.rpc_burst),
            password_checks: Arc::new(Semaphore::new(2)),
            ctx,
        }
    }

    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        set_link(&self.ctx, "connecting", None);
        let mut polling = self.eventloop.take().map(poll_once);
        let mut parked: Option<EventLoop> = None;
        let mut retry_at = Instant::now();
        let mut tick = tokio::time::interval(OUTBOX_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => break,
                // Replies before new requests: finish work before taking more.
                Some(reply) = self.replies_rx.recv() => self.publish_reply(reply),
                (el, r) = next_event(&mut polling) => match r {
                    Ok(event) => {
                        polling = Some(poll_once(el));
                        self.on_event(event);
                    }
                    Err(e) => {
                        polling = None;
                        parked = Some(el);
                        retry_at = Instant::now() + self.on_error(e);
                    }
                },
                _ = tokio::time::sleep_until(retry_at), if parked.is_some() => {
                    polling = parked.take().map(poll_once);
                }
                _ = self.ctx.outbox_wake.notified() => self.pump_outbox(),
                _ = tick.tick() => {
                    self.pump_outbox();
                    self.limiter.forget_idle(std::time::Instant::now());
                }
            }
        }
        self.shut_down(polling).await;
    }

    /// Publishes offline status and disconnects, driving the event loop until both are on the wire.
    async fn shut_down(mut self, mut polling: Option<Pin<Box<dyn Future<Output = PollResult> + Send>>>) {
        if !self.connected {
            set_link(&self.ctx, "stopped", None);
            return;
        }
        let offline = serde_json::to_vec(&json!({"state": "offline", "version": env!("CARGO_PKG_VERSION")}));
        if self.publish(&format!("{}/status", self.prefix), QoS::AtLeastOnce, true, offline.unwrap_or_default(), None) {
            self.offline = OfflineState::Sent(None);
            if self.sent.back() == Some(&Sent::Other) {
                self.sent.pop_back();
                self.sent.push_back(Sent::Offline);
            }
        }
        let mut disconnecting = false;
        if self.offline == OfflineState::NotSent {
            disconnecting = true;
            let _ = self.client.try_disconnect();
        }
        while let Some(fut) = polling.take() {
            let (el, r) = fut.await;
            match r {
                Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                Ok(event) => self.on_event(event),
                Err(_) => break,
            }
            if self.offline == OfflineState::Acked && !disconnecting {
                disconnecting = true;
                if self.client.try_disconnect().is_err() {
                    break;
                }
            }
            polling = Some(poll_once(el));
        }
        set_link(&self.ctx, "stopped", None);
        tracing::info!("mqtt: published offline status and disconnected");
    }

    fn on_error(&mut self, e: ConnectionError) -> Duration {
        let was_connected = std::mem::replace(&mut self.connected, false);
        let message = describe(&e);
        if was_connected {
            tracing::warn!("mqtt: connection lost: {message}");
        } else {
            tracing::debug!("mqtt: cannot connect: {message}");
        }
        set_link(&self.ctx, "not connected", Some(message));
        // Full backoff, drawn from its upper half: many gateways restarted together by a power cut
        // do not all knock on the broker in the same second.
        let cap = self.ctx.config().mqtt.reconnect_max.0;
        let wait = self.backoff.min(cap);
        self.backoff = (self.backoff * 2).min(cap);
        let mut r = [0u8; 4];
        let _ = getrandom::fill(&mut r);
        wait / 2 + wait.mul_f64(u32::from_le_bytes(r) as f64 / u32::MAX as f64 / 2.0)
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Incoming(Packet::ConnAck(_)) => self.on_connack(),
            Event::Incoming(Packet::Publish(p)) => self.on_request(p),
            Event::Incoming(Packet::PubAck(ack)) => {
                let ok = matches!(ack.reason, PubAckReason::Success | PubAckReason::NoMatchingSubscribers);
                self.on_delivered(ack.pkid, ok.then_some(()).ok_or_else(|| format!("{:?}", ack.reason)));
            }
            Event::Incoming(Packet::PubComp(c)) => {
                let ok = c.reason == PubCompReason::Success;
                self.on_delivered(c.pkid, ok.then_some(()).ok_or_else(|| format!("{:?}", c.reason)));
            }
            Event::Incoming(Packet::SubAck(s)) => {
                for code in &s.return_codes {
                    if !matches!(code, rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)) {
                        let msg = format!("broker refused the rpc/request subscription: {code:?}");
                        tracing::error!("mqtt: {msg}");
                        set_link(&self.ctx, "connected", Some(msg));
                    }
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) if pkid != 0 => match self.sent.pop_front() {
                Some(Sent::Row(row)) => {
                    if let Some(f) = self.in_flight.as_mut().filter(|f| f.row == row) {
                        f.pkid = Some(pkid);
                    }
                }
                Some(Sent::Offline) => self.offline = OfflineState::Sent(Some(pkid)),
                Some(Sent::Other) | None => {}
            },
            _ => {}
        }
    }

    fn on_connack(&mut self) {
        self.connected = true;
        self.backoff = FIRST_BACKOFF;
        self.sent.clear();
        self.in_flight = None;
        self.cursor = 0;
        {
            let mut link = self.ctx.mqtt.lock().unwrap_or_else(|p| p.into_inner());
            *link = LinkState { state: "connected".into(), last_error: None };
        }
        tracing::info!("mqtt: connected to {}", self.ctx.config().mqtt.url);
        let filters = vec![
            Filter::new(self.rpc_topic.clone(), QoS::AtLeastOnce),
            Filter::new(format!("{}/+", self.rpc_topic), QoS::AtLeastOnce),
        ];
        if let Err(e) = self.client.try_subscribe_many(filters) {
            tracing::error!("mqtt: cannot subscribe to {}: {e}", self.rpc_topic);
        }
        // The newest outbox id before the snapshot: every retained row up to it is older than (or as
        // old as) what we are about to publish.
        let upto = outbox::last_id(&self.ctx.store().conn).unwrap_or(0);
        let mut topics = HashSet::new();
        for (topic, payload) in crate::api::status::retained(&self.ctx) {
            let bytes = payload.map(|v| v.to_string().into_bytes()).unwrap_or_default();
            self.publish(&format!("{}/{topic}", self.prefix), QoS::AtLeastOnce, true, bytes, None);
            topics.insert(topic);
        }
        self.superseded = (upto, topics);
        self.pump_outbox();
    }

    /// Publishes while connected; records QoS ≥ 1 publishes in `sent` (as `Other`; callers refine).
    fn publish(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
        props: Option<PublishProperties>,
    ) -> bool {
        if !self.connected {
            return false;
        }
        let r = match props {
            Some(p) => self.client.try_publish_with_properties(topic, qos, retain, payload, p),
            None => self.client.try_publish(topic, qos, retain, payload),
        };
        match r {
            Ok(()) => {
                if qos != QoS::AtMostOnce {
                    self.sent.push_back(Sent::Other);
                }
                true
            }
            Err(e) => {
                tracing::warn!("mqtt: cannot publish to {topic}: {e}");
                false
            }
        }
    }

    /// Hands the next outbox row to the broker, if none is in flight.
    fn pump_outbox(&mut self) {
        while self.connected && self.in_flight.is_none() {
            let row = {
                let store = self.ctx.store();
                match outbox::next_after(&store.conn, self.cursor) {
                    Ok(Some(row)) => {
                        let (upto, topics) = &self.superseded;
                        if row.retain && row.id <= *upto && topics.contains(&row.topic) {
                            if let Err(e) = outbox::delete(&store.conn, row.id) {
                                tracing::warn!("mqtt: outbox: {e}");
                            }
                            self.cursor = row.id;
                            continue;
                        }
                        row
                    }
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!("mqtt: reading the outbox: {e}");
                        return;
                    }
                }
            };
            let qos = if row.retain { QoS::AtLeastOnce } else { self.qos };
            let topic = format!("{}/{}", self.prefix, row.topic);
            if !self.publish(&topic, qos, row.retain, row.payload, None) {
                // The channel is full or the topic invalid: try again at the next tick. An invalid
                // topic would block the outbox for good, so it is dropped.
                if !rumqttc_valid_topic(&topic) {
                    tracing::error!("mqtt: outbox row {} has an invalid topic {topic:?}; dropped", row.id);
                    self.delete_row(row.id);
                    self.cursor = row.id;
                    continue;
                }
                return;
            }
            self.cursor = row.id;
            if qos == QoS::AtMostOnce {
                self.delete_row(row.id);
            } else {
                if let Some(s) = self.sent.back_mut() {
                    *s = Sent::Row(row.id);
                }
                self.in_flight = Some(InFlight { row: row.id, pkid: None });
            }
        }
    }

    fn delete_row(&self, id: i64) {
        if let Err(e) = outbox::delete(&self.ctx.store().conn, id) {
            tracing::warn!("mqtt: deleting delivered outbox row {id}: {e}");
        }
    }

    fn on_delivered(&mut self, pkid: u16, outcome: Result<(), String>) {
        if self.offline == OfflineState::Sent(Some(pkid)) {
            self.offline = OfflineState::Acked;
            return;
        }
        let Some(f) = self.in_flight.as_ref().filter(|f| f.pkid == Some(pkid)) else {
            return;
        };
        if let Err(reason) = outcome {
            // The broker has it and refused it (an ACL, usually); sending it again would block the
            // outbox forever.
            let msg = format!("broker refused outbox row {}: {reason}", f.row);
            tracing::error!("mqtt: {msg}");
            set_link(&self.ctx, "connected", Some(msg));
        }
        self.delete_row(f.row);
        self.in_flight = None;
        self.pump_outbox();
    }

    /// An incoming publish on `rpc/request[/<client>]`.
    fn on_request(&mut self, p: Publish) {
        let topic = String::from_utf8_lossy(&p.topic);
        let named = match topic.strip_prefix(self.rpc_topic.as_str()) {
            Some("") => None,
            Some(rest) => match rest.strip_prefix('/') {
                Some(client) if !client.is_empty() => Some(client.to_string()),
                _ => return,
            },
            None => return,
        };
        let max = self.ctx.config().daemon.max_request_bytes;
        let props = p.properties.unwrap_or_default();
        let reply_topic =
            props.response_topic.or_else(|| if p.payload.len() <= max { rpc::reply_to_of(&p.payload) } else { None });
        // Who is asking decides the rate limit, so it is charged before anything else is looked at.
        let client = named.or_else(|| reply_topic.clone()).unwrap_or_else(|| "-".into());
        let admitted = self.limiter.admit(&client, std::time::Instant::now());
        let reply_topic = match reply_topic {
            Some(t) if rpc::reply_topic_allowed(&self.prefix, &t) => Some(t),
            Some(t) => {
                if admitted == rpc::Admit::Yes {
                    tracing::warn!("mqtt: request on {topic} names reply topic {t:?}, which is not allowed; dropped");
                }
                return;
            }
            None => None,
        };
        let envelope = rpc::Envelope {
            client,
            reply_topic,
            correlation: props.correlation_data,
            qos: if p.qos == QoS::AtMostOnce { 0 } else { 1 },
        };
        if let rpc::Admit::No { notify, retry_after_ms } = admitted {
            if notify {
                tracing::warn!(client = %envelope.client, "mqtt: rpc rate limit reached; refusing requests");
                self.reply(&envelope, &rpc::rate_limited(&envelope.client, retry_after_ms));
            }
            return;
        }
        let (ctx, tx, checks) = (self.ctx.clone(), self.replies_tx.clone(), self.password_checks.clone());
        tokio::spawn(async move {
            let resp = rpc::serve(&ctx, &p.payload, envelope.client.clone(), &checks).await;
            match &envelope.reply_topic {
                Some(topic) => {
                    let payload = serde_json::to_vec(&resp).unwrap_or_default();
                    let reply = rpc::Reply {
                        topic: topic.clone(),
                        payload,
                        correlation: envelope.correlation,
                        qos: envelope.qos,
                    };
                    let _ = tx.send(reply).await;
                }
                None => {
                    if let Some(e) = &resp.error {
                        tracing::info!(client = %envelope.client, "mqtt: request without a reply topic failed: {e}");
                    }
                }
            }
        });
    }

    fn reply(&mut self, envelope: &rpc::Envelope, resp: &crate::protocol::Response) {
        if let Some(topic) = &envelope.reply_topic {
            let payload = serde_json::to_vec(resp).unwrap_or_default();
            self.publish_reply(rpc::Reply {
                topic: topic.clone(),
                payload,
                correlation: envelope.correlation.clone(),
                qos: envelope.qos,
            });
        }
    }

    fn publish_reply(&mut self, r: rpc::Reply) {
        if !self.connected {
            tracing::debug!("mqtt: not connected; reply to {} dropped", r.topic);
            return;
        }
        let props = PublishProperties {
            correlation_data: r.correlation,
            content_type: Some("application/json".into()),
            ..Default::default()
        };
        self.publish(&r.topic, qos(r.qos), false, r.payload, Some(props));
    }
}

fn qos(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// rumqttc's own check (it refuses wildcards in topic names).
fn rumqttc_valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#'])
}

/// A connection error as an operator reads it in `status`.
fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => format!("broker refused the connection: {code:?}"),
        ConnectionError::Timeout(_) => "timed out connecting to the broker".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("mqtt://127.0.0.1:1883").unwrap(), (false, "127.0.0.1".into(), 1883));
        assert_eq!(parse_url("mqtts://broker.plant").unwrap(), (true, "broker.plant".into(), 8883));
        assert_eq!(parse_url("mqtt://[::1]:1884/").unwrap(), (false, "::1".into(), 1884));
        assert_eq!(parse_url("mqtt://[::1]").unwrap(), (false, "::1".into(), 1883));
        assert!(parse_url("tcp://x").is_err());
        assert!(parse_url("mqtt://x:port").is_err());
        assert!(parse_url("mqtt://").is_err());
        assert!(parse_url("mqtt://u:p@x").is_err());
    }
}
