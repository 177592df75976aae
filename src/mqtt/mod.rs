//! The MQTT bridge: mirrors gatewarden's state and events to the HMIs and serves their requests.
//!
//! Must never happen: a request on the control socket waiting for the broker (nothing outside this
//! task ever touches the MQTT client); an outbox row deleted before the broker acknowledged it; a
//! busy loop while the broker is away; the bridge stopped by anything a client publishes; a reply
//! published anywhere but the requester's own reply topic (`rpc::is_own_reply_topic`); memory or log
//! bytes growing with what a flood sends.
//!
//! One task owns rumqttc's event loop and does everything MQTT:
//! - connects with `clean_start` (requests queued while we were away are stale by the time we are
//!   back), a retained Last Will `{"state":"offline"}` on `status`, and a maximum packet size of
//!   `daemon.max_request_bytes` + [`PACKET_OVERHEAD`] ([`max_packet_size`]; the shipped
//!   packaging/mosquitto.conf.example sets the broker's `max_packet_size` to the same, so every
//!   request the broker accepts reaches us and is answered, and a bigger one is refused to its
//!   sender); reconnects after a backoff that doubles from 1 s up to `mqtt.reconnect_max`, each wait
//!   drawn at random from its upper half;
//! - on every ConnAck: subscribes to `rpc/request/+` (and to plain `rpc/request`, only to tell an
//!   integrator still using it why nothing answers), republishes the retained state
//!   (`api::status::retained`), and restarts the outbox from its oldest row;
//! - publishes the outbox in id order, one row in flight (so a reconnect can only repeat the last row,
//!   never reorder), and deletes the row on its PUBACK (PUBCOMP at QoS 2);
//! - admits each request through `rpc` (topic and client id, reply topic, per-client rate limit,
//!   intake budget: all before the payload is read), hands it to a tokio task that holds its intake
//!   permit while it runs, and publishes the replies those tasks send back;
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

use crate::api::run::{self, PasswordGate};
use crate::api::{Ctx, LinkState, Origin};
use crate::config::MqttConfig;
use crate::contract::topics::{self, LinkStatus, LinkWord};
use crate::logs::cut;
use crate::store::outbox;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, ConnectProperties, Filter, LastWill, Packet, PubAckReason, PubCompReason, Publish, PublishProperties,
};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use rumqttc::{NetworkOptions, Outgoing, TlsConfiguration, Transport};
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
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
    let client_id = m.client_id.clone().unwrap_or_else(|| format!("gatewarden-{site}"));
    let mut o = MqttOptions::new(client_id, m.broker.host(), m.broker.port());
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
    let will = serde_json::to_vec(&LinkStatus { state: LinkWord::Offline, version: None }).unwrap_or_default();
    o.set_last_will(LastWill::new(format!("{prefix}/{}", topics::STATUS), will, QoS::AtLeastOnce, true, None));
    // rumqttc refuses (and drops the connection on) any packet above this size, 10 KiB by default;
    // the broker, told in CONNECT, does not send us larger ones.
    let mut props = ConnectProperties::new();
    props.max_packet_size = Some(max_packet_size(max_request));
    o.set_connect_properties(props);
    if m.broker.tls() {
        o.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls::client_config(m)?)));
    }
    o.set_network_options(network_options());
    Ok(o)
}

/// The broker socket's options: Nagle off. At QoS 1 the bridge writes the request's PUBACK and then
/// the reply as two small segments; with Nagle the reply waits until the broker acknowledges the
/// PUBACK, which it delays by up to 40 ms (a paho client saw 44 ms per request at QoS 1 against
/// 1.2 ms at QoS 0). Every write of rumqttc's loop is one or more whole packets followed by a flush,
/// so nothing gains from coalescing. The TLS transport runs over this same TCP socket.
fn network_options() -> NetworkOptions {
    // `new`, not `default`: rumqttc's own defaults for the rest (`default` zeroes its connect timeout).
    let mut n = NetworkOptions::new();
    n.set_tcp_nodelay(true);
    n
}

/// Room in a request packet beyond its payload: fixed header, topic, properties (response topic,
/// correlation data). A request whose payload is up to this much above `daemon.max_request_bytes`
/// still reaches us and gets its `bad_request` naming the limit.
pub const PACKET_OVERHEAD: u32 = 65_536;

/// The largest MQTT packet gatewarden accepts, as told to the broker in CONNECT. The broker's own
/// `max_packet_size` should be the same (packaging/mosquitto.conf.example): then a packet the broker
/// accepts is never too big for us, and a bigger one is refused to its publisher (MQTT v5: DISCONNECT
/// with reason 0x95, packet too large) instead of being dropped silently on its way to us.
pub fn max_packet_size(max_request_bytes: usize) -> u32 {
    u32::try_from(max_request_bytes).unwrap_or(u32::MAX).saturating_add(PACKET_OVERHEAD)
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
    intake: rpc::Intake,
    password_checks: Arc<PasswordGate>,
    /// What we told the broker in CONNECT; compared with what it tells us in CONNACK.
    max_packet: u32,
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
        // As many replies as requests may be in flight, plus room for the `rate_limited` notices.
        let (replies_tx, replies_rx) = mpsc::channel(config.mqtt.rpc_max_in_flight + 64);
        Bridge {
            client,
            eventloop: Some(eventloop),
            rpc_topic: format!("{prefix}/rpc/request"),
            max_packet: max_packet_size(config.daemon.max_request_bytes),
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
            intake: rpc::Intake::new(rpc::IntakeLimits::of(&config.mqtt)),
            password_checks: Arc::new(PasswordGate::new(
                config.mqtt.rpc_password_checks,
                config.mqtt.rpc_password_waiters,
            )),
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
        let offline = serde_json::to_vec(&LinkStatus {
            state: LinkWord::Offline,
            version: Some(env!("CARGO_PKG_VERSION").into()),
        });
        if self.publish(
            &format!("{}/{}", self.prefix, topics::STATUS),
            QoS::AtLeastOnce,
            true,
            offline.unwrap_or_default(),
            None,
        ) {
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
            Event::Incoming(Packet::ConnAck(ack)) => self.on_connack(&ack),
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
                        let msg = format!("broker refused the rpc/request/+ subscription: {code:?}");
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

    fn on_connack(&mut self, ack: &ConnAck) {
        self.connected = true;
        self.backoff = FIRST_BACKOFF;
        self.sent.clear();
        self.in_flight = None;
        self.cursor = 0;
        {
            let mut link = self.ctx.mqtt.lock().unwrap_or_else(|p| p.into_inner());
            *link = LinkState { state: "connected".into(), last_error: None };
        }
        tracing::info!("mqtt: connected to {}", self.ctx.config().mqtt.broker);
        // A broker that accepts bigger packets than we do drops them on their way to us: the HMI
        // gets no answer at all. Said once per connection; the fix is one line of mosquitto.conf.
        let broker_max = ack.properties.as_ref().and_then(|p| p.max_packet_size);
        if broker_max.is_none_or(|b| b > self.max_packet) {
            let shown = broker_max.map_or("no limit".to_string(), |b| format!("{b} bytes"));
            tracing::warn!(
                "mqtt: the broker accepts packets up to {shown} but gatewarden only up to {} \
                 (daemon.max_request_bytes + {PACKET_OVERHEAD}): a bigger request would vanish unanswered; \
                 set `max_packet_size {}` in mosquitto.conf (see mosquitto.conf.example)",
                self.max_packet,
                self.max_packet
            );
        }
        let filters = vec![
            // Plain rpc/request is only listened to, to warn whoever still uses it (never served).
            Filter::new(self.rpc_topic.clone(), QoS::AtMostOnce),
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
                // A full channel under a flood would say this for every reply: throttled.
                crate::warn_throttled!("mqtt-publish-failed", "mqtt: cannot publish to {}: {e}", cut(topic));
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

    /// An incoming publish on `rpc/request/<client>`: admitted or refused here, cheaply, before a
    /// byte of its payload is read; then served on a task of its own.
    fn on_request(&mut self, p: Publish) {
        let now = std::time::Instant::now();
        let response_topic = p.properties.as_ref().and_then(|pr| pr.response_topic.as_deref());
        let env = match rpc::envelope(&self.prefix, &p.topic, response_topic) {
            Ok(env) => env,
            Err(refusal) => return refusal.log(&self.prefix, &p.topic),
        };
        let correlation = p.properties.as_ref().and_then(|pr| pr.correlation_data.clone());
        let qos = if p.qos == QoS::AtMostOnce { 0 } else { 1 };
        if let rpc::Admit::No { notify, retry_after_ms } = self.limiter.admit(&env.client, now) {
            if notify {
                crate::warn_throttled!("mqtt-rate-limited", "mqtt: client {} is over its rate limit", cut(&env.client));
                let why = format!("too many requests from {}", env.client);
                self.refuse(&env, correlation, qos, &why, retry_after_ms);
            }
            return;
        }
        let permit = match self.intake.admit(&env.client, p.payload.len()) {
            Ok(permit) => permit,
            Err(over) => {
                if self.limiter.notice(&env.client, now) {
                    crate::warn_throttled!(
                        "mqtt-intake-full",
                        "mqtt: request from {} ({} bytes) refused: {}",
                        cut(&env.client),
                        p.payload.len(),
                        over.describe()
                    );
                    self.refuse(&env, correlation, qos, over.describe(), 1000);
                }
                return;
            }
        };
        let (ctx, tx, gate, prefix) =
            (self.ctx.clone(), self.replies_tx.clone(), self.password_checks.clone(), self.prefix.clone());
        tokio::spawn(async move {
            let max = ctx.config().daemon.max_request_bytes;
            let opened = rpc::open(&prefix, &env, &p.payload, max);
            // Parsed: the raw bytes go now (the permit still counts them until the request is done).
            drop(p);
            let topic = match opened.reply_topic {
                Ok(topic) => topic,
                Err(refusal) => return refusal.log(&prefix, b""),
            };
            let origin = Origin::Mqtt { client: env.client.clone() };
            // The request's budget goes back as soon as it is done, before a failed login's delay.
            let resp = run::answer(&ctx, opened.request, &origin, &gate, || drop(permit)).await;
            match topic {
                Some(topic) => {
                    let payload = resp.to_bytes(b"");
                    let _ = tx.send(rpc::Reply { client: env.client, topic, payload, correlation, qos }).await;
                }
                None => {
                    if let Some(e) = &resp.error {
                        tracing::debug!(
                            "mqtt: request from {} without a reply topic failed: {}",
                            cut(&env.client),
                            cut(&e.message)
                        );
                    }
                }
            }
        });
    }

    /// Tells a refused client why, in one small reply, if it named its own reply topic (v5 only: a
    /// 3.1.1 client's `reply_to` is inside the payload, which a refusal never reads).
    fn refuse(&mut self, env: &rpc::Envelope, correlation: Option<bytes::Bytes>, qos: u8, why: &str, retry_ms: u64) {
        if let Some(topic) = &env.reply_topic {
            let payload = serde_json::to_vec(&rpc::rate_limited(why, retry_ms)).unwrap_or_default();
            self.publish_reply(rpc::Reply {
                client: env.client.clone(),
                topic: topic.clone(),
                payload,
                correlation,
                qos,
            });
        }
    }

    /// The one sink of every reply: published only to the requester's own reply topic.
    fn publish_reply(&mut self, r: rpc::Reply) {
        if !rpc::is_own_reply_topic(&self.prefix, &r.client, &r.topic) {
            let refusal = rpc::Refusal::ForeignReplyTopic { client: r.client, topic: r.topic };
            return refusal.log(&self.prefix, b"");
        }
        if !self.connected {
            tracing::debug!("mqtt: not connected; reply to {} dropped", cut(&r.topic));
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

    /// Finding: a 2 MiB request got no answer at all, because the broker accepted it and then dropped
    /// it against the size we advertise. The shipped broker config and the daemon must agree.
    #[test]
    fn shipped_broker_config_accepts_exactly_the_packets_we_do() {
        let conf = include_str!("../../packaging/mosquitto.conf.example");
        let broker: Vec<u32> = conf
            .lines()
            .filter_map(|l| l.trim().strip_prefix("max_packet_size "))
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        let default = crate::config::Config::default().daemon.max_request_bytes;
        assert_eq!(broker, vec![max_packet_size(default)]);
    }
}
