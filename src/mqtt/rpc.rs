//! `rpc/request/<client id>`: the request protocol over MQTT, through the same dispatcher as the
//! control socket.
//!
//! Must never happen:
//! - a reply published where anyone but the requester can read it under the shipped broker ACL
//!   (packaging/mosquitto-acl.example): a client naming `hmi/panel7/reply` must not receive panel7's
//!   login token, nor make us speak on `supervisor/message`;
//! - a request served whose sender the broker does not vouch for (plain `rpc/request`: anyone could
//!   rotate its reply topic to dodge the per-client rate limit and lockout);
//! - memory, CPU or log bytes growing with what a flood sends, whatever its client ids: every request
//!   passes the [`Limiter`] and the [`Intake`] budget before a byte of it is decoded;
//! - a request that stops or stalls the bridge, whatever its bytes.
//!
//! Who the caller is: on `<prefix>/rpc/request/<client>` the broker's ACL (`pattern write
//! .../rpc/request/%c`) lets only the client whose id is `<client>` publish, so `<client>` is proven
//! and keys the rate limit, the per-source login lockout and the audit trail (`mqtt client=<client>`).
//! Plain `rpc/request` proves nothing and is dropped (with a throttled warning saying what to use).
//!
//! Where the reply goes: the MQTT v5 response topic (correlation data echoed), else, for MQTT 3.1.1,
//! `reply_to` in the payload (`id` echoed either way), and only if [`is_own_reply_topic`] says the
//! requester alone reads it: `hmi/<client>[/...]` or `<prefix>/rpc/reply/<client>[/...]`, exactly
//! what the shipped ACL lets that client read. Any other reply topic: no reply, no execution, one
//! throttled warning.
//!
//! The order of the checks is the order of their cost: topic and client id, the v5 response topic
//! (both in the packet header), the per-client token bucket, the intake budget (counts and bytes in
//! flight), and only then the payload is parsed, once.

use crate::protocol::{ApiError, ErrorCode, Request, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest client id we serve (the `<client>` level of the request topic). MQTT allows 65535 bytes;
/// a real HMI's id is a few dozen, and every log line and audit row carries it.
pub const MAX_CLIENT_ID_BYTES: usize = 128;

/// Longest reply topic we publish to (`hmi/<client>/...`: the client id plus room for a path).
pub const MAX_REPLY_TOPIC_BYTES: usize = 512;

/// A reply on its way to the bridge task, which alone publishes (after asking
/// [`is_own_reply_topic`] once more: the one sink every reply goes through).
#[derive(Debug)]
pub struct Reply {
    /// Who asked: the reply goes out only if `topic` is this client's own.
    pub client: String,
    pub topic: String,
    pub payload: Vec<u8>,
    pub correlation: Option<bytes::Bytes>,
    pub qos: u8,
}

/// Why a request gets no reply at all. Each is logged as a throttled warning of its own kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not below `<prefix>/rpc/request/` (a subscription we did not ask for).
    NotARequestTopic,
    /// Plain `<prefix>/rpc/request`: nobody vouches for the sender.
    PlainRequestTopic,
    /// The `<client>` level is empty, too long, not UTF-8, or holds control characters or wildcards.
    BadClientId,
    /// The reply topic is not one the requester alone reads.
    ForeignReplyTopic { client: String, topic: String },
}

impl Refusal {
    /// One throttled warning, with every client-controlled string cut.
    pub fn log(&self, prefix: &str, topic: &[u8]) {
        use crate::logs::{cut, cut_bytes};
        match self {
            Refusal::NotARequestTopic => {
                tracing::debug!("mqtt: publish on {} is not a request topic; ignored", cut_bytes(topic))
            }
            Refusal::PlainRequestTopic => crate::warn_throttled!(
                "mqtt-plain-request",
                "mqtt: request on {prefix}/rpc/request dropped: the broker does not say who sent it, so it can \
                 be neither rate limited nor answered privately; publish on {prefix}/rpc/request/<your client id> \
                 and read replies on hmi/<your client id>/... (see docs/hmi.md)"
            ),
            Refusal::BadClientId => crate::warn_throttled!(
                "mqtt-bad-client-id",
                "mqtt: request on {} dropped: the client id level must be 1-{MAX_CLIENT_ID_BYTES} bytes of UTF-8 \
                 without control characters or wildcards",
                cut_bytes(topic)
            ),
            Refusal::ForeignReplyTopic { client, topic } => crate::warn_throttled!(
                "mqtt-foreign-reply-topic",
                "mqtt: client {} asked for replies on {}, which is not its own (hmi/<client>/... or \
                 {prefix}/rpc/reply/<client>/...); request dropped unanswered",
                cut(client),
                cut(topic)
            ),
        }
    }
}

/// Whether `client` may name a request topic level: 1 to [`MAX_CLIENT_ID_BYTES`] bytes, no control
/// characters, no MQTT wildcards or level separators.
pub fn valid_client_id(client: &str) -> bool {
    !client.is_empty()
        && client.len() <= MAX_CLIENT_ID_BYTES
        && !client.chars().any(|c| c.is_control() || matches!(c, '+' | '#' | '/'))
}

/// "Is this reply topic the requester's own?": the one place that decides where a reply may go. Every
/// reply (result, error, `rate_limited`, busy) is published only when this holds. True for exactly
/// what the shipped ACL lets client `client` read (`pattern read hmi/%c/#` and `pattern read
/// <prefix>/rpc/reply/%c/#`, where `#` also matches the level itself), as a plain topic name.
pub fn is_own_reply_topic(prefix: &str, client: &str, topic: &str) -> bool {
    if !valid_client_id(client) || topic.len() > MAX_REPLY_TOPIC_BYTES || topic.contains(['+', '#', '\0']) {
        return false;
    }
    let below = |root: &str| {
        topic
            .strip_prefix(root)
            .and_then(|rest| rest.strip_prefix(client))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    below("hmi/") || below(&format!("{prefix}/rpc/reply/"))
}

/// Where a request came from and where its answer may go, read from the packet header alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub client: String,
    /// The v5 response topic, already proven the client's own.
    pub reply_topic: Option<String>,
}

/// The first look at a request: its topic and v5 response topic, before its payload.
pub fn envelope(prefix: &str, topic: &[u8], response_topic: Option<&str>) -> Result<Envelope, Refusal> {
    let request_topic = format!("{prefix}/rpc/request");
    let rest = topic.strip_prefix(request_topic.as_bytes()).ok_or(Refusal::NotARequestTopic)?;
    let client = match rest {
        [] => return Err(Refusal::PlainRequestTopic),
        [b'/', client @ ..] => std::str::from_utf8(client).map_err(|_| Refusal::BadClientId)?,
        _ => return Err(Refusal::NotARequestTopic),
    };
    if !valid_client_id(client) {
        return Err(Refusal::BadClientId);
    }
    let reply_topic = match response_topic {
        Some(t) if is_own_reply_topic(prefix, client, t) => Some(t.to_string()),
        Some(t) => return Err(Refusal::ForeignReplyTopic { client: client.into(), topic: cut_owned(t) }),
        None => None,
    };
    Ok(Envelope { client: client.to_string(), reply_topic })
}

/// A refused topic is kept only as far as a log line shows it: a 64 KiB response topic must not
/// travel further than the check that refused it.
fn cut_owned(t: &str) -> String {
    let end = (0..=t.len().min(4 * crate::logs::CUT_CHARS)).rev().find(|&i| t.is_char_boundary(i));
    let head = &t[..end.unwrap_or(0)];
    if head.len() < t.len() { format!("{head}…({} bytes)", t.len()) } else { head.to_string() }
}

/// A request's payload, parsed once: where its reply goes and what it asks.
#[derive(Debug)]
pub struct Opened {
    /// `Ok(None)`: no reply topic at all (fire and forget); `Err`: a reply topic that is not the
    /// requester's own (then nothing is executed).
    pub reply_topic: Result<Option<String>, Refusal>,
    /// The request, or the `bad_request` to answer with the `id` that could be read.
    pub request: Result<Request, Box<(Value, ApiError)>>,
}

/// Parses the payload of an admitted request. A payload above `max` (which the broker let through:
/// it is within the packet size we advertise) is read only for its `id` and `reply_to`, to answer
/// `bad_request` naming the limit.
pub fn open(prefix: &str, env: &Envelope, payload: &[u8], max: usize) -> Opened {
    let own = |reply_to: Option<String>| match (&env.reply_topic, reply_to) {
        (Some(t), _) => Ok(Some(t.clone())),
        (None, Some(t)) if is_own_reply_topic(prefix, &env.client, &t) => Ok(Some(t)),
        (None, Some(t)) => Err(Refusal::ForeignReplyTopic { client: env.client.clone(), topic: cut_owned(&t) }),
        (None, None) => Ok(None),
    };
    if payload.len() > max {
        #[derive(serde::Deserialize)]
        struct Head {
            #[serde(default)]
            id: Value,
            #[serde(default)]
            reply_to: Option<String>,
        }
        let head = serde_json::from_slice::<Head>(payload).ok();
        let (id, reply_to) = head.map(|h| (h.id, h.reply_to)).unwrap_or_default();
        let err = ApiError::bad_request(format!(
            "request is {} bytes; the limit is {max} (daemon.max_request_bytes)",
            payload.len()
        ))
        .with("limit", max as u64);
        return Opened { reply_topic: own(reply_to), request: Err(Box::new((id, err))) };
    }
    // A `reply_to` that is not a string is no reply topic; the request itself then says why.
    let (reply_to, request) = Request::decode_with_reply_to(payload);
    Opened { reply_topic: own(reply_to), request }
}

/// The error a refused client is told, at most once a second (so refusing costs little).
pub fn rate_limited(why: &str, retry_after_ms: u64) -> Response {
    let err = ApiError::new(ErrorCode::RateLimited, format!("{why}; slow down")).with("retry_after_ms", retry_after_ms);
    Response::from_result(Value::Null, Err(err))
}

/// Per-client token buckets: `burst` requests at once, refilled at `rate` per second.
pub struct Limiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<String, Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    last_notice: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Refused; `notify` says whether to tell the client (at most once a second).
    No {
        notify: bool,
        retry_after_ms: u64,
    },
}

/// Most distinct clients remembered. Beyond it idle ones are forgotten; if none is idle, a new
/// client is refused until one is (a flood of fresh client ids cannot grow the map).
pub const MAX_CLIENTS: usize = 10_000;

impl Limiter {
    pub fn new(rate: u32, burst: u32) -> Limiter {
        Limiter { rate: rate.max(1) as f64, burst: burst.max(1) as f64, buckets: HashMap::new() }
    }

    pub fn admit(&mut self, client: &str, now: Instant) -> Admit {
        if self.buckets.len() >= MAX_CLIENTS && !self.buckets.contains_key(client) {
            self.forget_idle(now);
            if self.buckets.len() >= MAX_CLIENTS {
                return Admit::No { notify: false, retry_after_ms: 1000 };
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        let b = self.buckets.entry(client.to_string()).or_insert(Bucket { tokens: burst, at: now, last_notice: None });
        b.tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Admit::Yes;
        }
        let retry_after_ms = ((1.0 - b.tokens) / rate * 1000.0).ceil() as u64;
        let notify = Self::due(&mut b.last_notice, now);
        Admit::No { notify, retry_after_ms }
    }

    /// Whether a client refused for another reason (the intake budget) may be told so now: at most
    /// once a second per client, like a rate limit.
    pub fn notice(&mut self, client: &str, now: Instant) -> bool {
        self.buckets.get_mut(client).is_some_and(|b| Self::due(&mut b.last_notice, now))
    }

    fn due(last: &mut Option<Instant>, now: Instant) -> bool {
        let due = last.is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if due {
            *last = Some(now);
        }
        due
    }

    /// Drops buckets that have refilled completely: they behave exactly like new ones.
    pub fn forget_idle(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst);
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// Requests above this many bytes are "large" and share the smaller [`IntakeLimits::large_bytes`]
/// budget, so a flood of big requests never takes the room small honest ones need.
pub const LARGE_REQUEST_BYTES: usize = 64 * 1024;

/// What requests may be in flight at once over MQTT (`[mqtt] rpc_max_*`, see packaging/gatewarden.toml):
/// from the moment a request is admitted until its reply is handed to the bridge, or until its
/// failed-login delay starts (nothing is held across that delay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeLimits {
    /// Requests in flight, all clients together.
    pub requests: usize,
    /// Requests in flight from one client.
    pub per_client: usize,
    /// Payload bytes in flight, all requests together.
    pub bytes: usize,
    /// Payload bytes in flight in large requests (above [`LARGE_REQUEST_BYTES`]).
    pub large_bytes: usize,
}

impl IntakeLimits {
    pub fn of(m: &crate::config::MqttConfig) -> IntakeLimits {
        IntakeLimits {
            requests: m.rpc_max_in_flight,
            per_client: m.rpc_max_in_flight_per_client,
            bytes: m.rpc_max_bytes_in_flight,
            large_bytes: m.rpc_max_large_bytes_in_flight,
        }
    }
}

/// Which bound refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Requests,
    ClientRequests,
    Bytes,
    LargeBytes,
}

impl Over {
    pub fn describe(self) -> &'static str {
        match self {
            Over::Requests => "gatewarden is serving as many MQTT requests as it may at once",
            Over::ClientRequests => "too many requests of yours are in progress",
            Over::Bytes => "too many request bytes in progress",
            Over::LargeBytes => "too many large requests in progress",
        }
    }
}

#[derive(Debug, Default)]
struct InFlight {
    requests: usize,
    bytes: usize,
    large_bytes: usize,
    /// Only clients with a request in flight: at most `requests` entries.
    per_client: HashMap<String, usize>,
}

/// The intake budget: admits a request only while every bound of [`IntakeLimits`] holds, and hands
/// back a permit that returns its share when dropped. One request alone always fits its byte
/// budgets (the broker bounds its size), so a single large request is never refused for its size.
#[derive(Clone)]
pub struct Intake {
    limits: IntakeLimits,
    state: Arc<Mutex<InFlight>>,
}

/// A request's share of the intake budget, returned on drop.
#[derive(Debug)]
pub struct IntakePermit {
    state: Arc<Mutex<InFlight>>,
    client: String,
    bytes: usize,
}

impl Intake {
    pub fn new(limits: IntakeLimits) -> Intake {
        Intake { limits, state: Arc::new(Mutex::new(InFlight::default())) }
    }

    pub fn admit(&self, client: &str, bytes: usize) -> Result<IntakePermit, Over> {
        let l = &self.limits;
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.requests >= l.requests {
            return Err(Over::Requests);
        }
        if s.per_client.get(client).copied().unwrap_or(0) >= l.per_client {
            return Err(Over::ClientRequests);
        }
        if s.bytes > 0 && s.bytes.saturating_add(bytes) > l.bytes {
            return Err(Over::Bytes);
        }
        let large = bytes > LARGE_REQUEST_BYTES;
        if large && s.large_bytes > 0 && s.large_bytes.saturating_add(bytes) > l.large_bytes {
            return Err(Over::LargeBytes);
        }
        s.requests += 1;
        s.bytes += bytes;
        if large {
            s.large_bytes += bytes;
        }
        *s.per_client.entry(client.to_string()).or_insert(0) += 1;
        Ok(IntakePermit { state: self.state.clone(), client: client.to_string(), bytes })
    }

    /// (requests, bytes) in flight now.
    pub fn in_flight(&self) -> (usize, usize) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (s.requests, s.bytes)
    }
}

impl Drop for IntakePermit {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.requests = s.requests.saturating_sub(1);
        s.bytes = s.bytes.saturating_sub(self.bytes);
        if self.bytes > LARGE_REQUEST_BYTES {
            s.large_bytes = s.large_bytes.saturating_sub(self.bytes);
        }
        if let Some(n) = s.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                s.per_client.remove(&self.client);
            }
        }
    }
}

/// Where a request may be answered and whether it would be served, decided from its topic, its v5
/// response topic and its payload alone (no budget, no execution): the fuzz target's entry point
/// and the property the tests below check.
#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    /// `None`: dropped before or after parsing, nothing is executed and nothing is published.
    pub client: Option<String>,
    pub reply_topic: Option<String>,
    /// The request decoded and would be executed (else a `bad_request` goes to `reply_topic`).
    pub executes: bool,
}

pub fn route(prefix: &str, topic: &[u8], response_topic: Option<&str>, payload: &[u8], max: usize) -> Route {
    let dropped = Route { client: None, reply_topic: None, executes: false };
    let Ok(env) = envelope(prefix, topic, response_topic) else { return dropped };
    let opened = open(prefix, &env, payload, max);
    match opened.reply_topic {
        Err(_) => dropped,
        Ok(reply_topic) => Route { client: Some(env.client), reply_topic, executes: opened.request.is_ok() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: &str = "gatewarden/site1";

    #[test]
    fn own_reply_topics_are_exactly_what_the_acl_lets_the_client_read() {
        assert!(is_own_reply_topic(P, "panel7", "hmi/panel7/reply"));
        assert!(is_own_reply_topic(P, "panel7", "hmi/panel7"));
        assert!(is_own_reply_topic(P, "panel7", "gatewarden/site1/rpc/reply/panel7"));
        assert!(is_own_reply_topic(P, "panel7", "gatewarden/site1/rpc/reply/panel7/a/b"));
        // Another client's, or a prefix of another client's id.
        assert!(!is_own_reply_topic(P, "evil", "hmi/panel7/reply"));
        assert!(!is_own_reply_topic(P, "panel", "hmi/panel7/reply"));
        assert!(!is_own_reply_topic(P, "panel7", "gatewarden/site1/rpc/reply/panel77"));
        // Our own state, another site's tree, wildcards, system topics.
        assert!(!is_own_reply_topic(P, "panel7", "gatewarden/site1/supervisor/message"));
        assert!(!is_own_reply_topic(P, "panel7", "gatewarden/site10/rpc/reply/panel7"));
        assert!(!is_own_reply_topic(P, "panel7", "hmi/panel7/#"));
        assert!(!is_own_reply_topic(P, "panel7", "hmi/panel7/+/x"));
        assert!(!is_own_reply_topic(P, "panel7", "$SYS/hmi/panel7"));
        assert!(!is_own_reply_topic(P, "panel7", ""));
        assert!(!is_own_reply_topic(P, "panel7", &format!("hmi/panel7/{}", "x".repeat(MAX_REPLY_TOPIC_BYTES))));
        // A client id that could not be one.
        assert!(!is_own_reply_topic(P, "", "hmi//reply"));
        assert!(!is_own_reply_topic(P, "+", "hmi/+/reply"));
    }

    #[test]
    fn reply_to_naming_another_clients_topic_is_refused() {
        let t = b"gatewarden/site1/rpc/request/evil";
        let login = br#"{"id":1,"method":"login","params":{"user":"op","password":"x"},"reply_to":"hmi/panel7/reply"}"#;
        assert_eq!(route(P, t, None, login, 1024), Route { client: None, reply_topic: None, executes: false });
        assert!(matches!(envelope(P, t, Some("hmi/panel7/reply")), Err(Refusal::ForeignReplyTopic { .. })));
        let own = br#"{"id":1,"method":"status","reply_to":"hmi/evil/reply"}"#;
        assert_eq!(route(P, t, None, own, 1024).reply_topic.as_deref(), Some("hmi/evil/reply"));
    }

    #[test]
    fn plain_request_topic_and_bad_client_ids_are_refused() {
        assert_eq!(envelope(P, b"gatewarden/site1/rpc/request", None), Err(Refusal::PlainRequestTopic));
        assert_eq!(envelope(P, b"gatewarden/site1/rpc/request/", None), Err(Refusal::BadClientId));
        assert_eq!(envelope(P, b"gatewarden/site1/rpc/requestx", None), Err(Refusal::NotARequestTopic));
        assert_eq!(envelope(P, b"gatewarden/site1/rpc/request/a\x01b", None), Err(Refusal::BadClientId));
        assert_eq!(envelope(P, b"gatewarden/site1/rpc/request/\xff", None), Err(Refusal::BadClientId));
        let long = format!("gatewarden/site1/rpc/request/{}", "c".repeat(MAX_CLIENT_ID_BYTES + 1));
        assert_eq!(envelope(P, long.as_bytes(), None), Err(Refusal::BadClientId));
        let ok = format!("gatewarden/site1/rpc/request/{}", "c".repeat(MAX_CLIENT_ID_BYTES));
        assert!(envelope(P, ok.as_bytes(), None).is_ok());
    }

    #[test]
    fn oversized_payload_is_answered_with_its_id_where_it_asked() {
        let env = Envelope { client: "p".into(), reply_topic: None };
        let big =
            format!(r#"{{"id":9,"reply_to":"hmi/p/r","method":"status","params":{{"x":"{}"}}}}"#, "y".repeat(2000));
        let o = open(P, &env, big.as_bytes(), 1024);
        assert_eq!(o.reply_topic, Ok(Some("hmi/p/r".into())));
        let (id, err) = *o.request.unwrap_err();
        assert_eq!(id, 9);
        assert!(err.message.contains("limit is 1024"), "{}", err.message);
    }

    #[test]
    fn refused_topics_are_kept_short() {
        let t = format!("hmi/panel7/{}", "x".repeat(60_000));
        match envelope(P, b"gatewarden/site1/rpc/request/evil", Some(&t)) {
            Err(Refusal::ForeignReplyTopic { topic, .. }) => assert!(topic.len() < 400, "{}", topic.len()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn buckets_are_per_client_and_refill() {
        let mut l = Limiter::new(10, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.admit("a", t0), Admit::Yes);
        }
        assert_eq!(l.admit("a", t0), Admit::No { notify: true, retry_after_ms: 100 });
        assert!(matches!(l.admit("a", t0), Admit::No { notify: false, .. }), "told once a second only");
        assert!(!l.notice("a", t0), "one notice a second, whatever the reason");
        assert_eq!(l.admit("b", t0), Admit::Yes, "another client is not affected");
        assert_eq!(l.admit("a", t0 + Duration::from_millis(100)), Admit::Yes);
        assert!(matches!(l.admit("a", t0 + Duration::from_millis(1100)), Admit::Yes));
        l.forget_idle(t0 + Duration::from_secs(10));
        assert!(l.is_empty());
    }

    #[test]
    fn fresh_client_ids_cannot_grow_the_limiter_without_bound() {
        let mut l = Limiter::new(1, 2);
        let t0 = Instant::now();
        for i in 0..MAX_CLIENTS + 50 {
            l.admit(&format!("c{i}"), t0);
        }
        assert!(l.len() <= MAX_CLIENTS);
    }

    #[test]
    fn intake_bounds_counts_and_bytes_and_keeps_room_for_small_requests() {
        let big = 900 * 1024;
        let intake = Intake::new(IntakeLimits { requests: 8, per_client: 2, bytes: 4 << 20, large_bytes: 2 << 20 });
        let a = intake.admit("a", big).unwrap();
        let b = intake.admit("b", big).unwrap();
        assert_eq!(intake.admit("c", big).unwrap_err(), Over::LargeBytes);
        // Small requests still get in while large ones are refused.
        let s1 = intake.admit("c", 300).unwrap();
        let s2 = intake.admit("c", 300).unwrap();
        assert_eq!(intake.admit("c", 300).unwrap_err(), Over::ClientRequests);
        drop((a, b, s1, s2));
        assert_eq!(intake.in_flight(), (0, 0), "every permit gives its share back");
        // One request alone always fits, whatever its size.
        let huge = intake.admit("a", 8 << 20).unwrap();
        assert_eq!(intake.admit("b", 300).unwrap_err(), Over::Bytes);
        drop(huge);
        let held: Vec<_> = (0..8).map(|i| intake.admit(&format!("c{i}"), 10).unwrap()).collect();
        assert_eq!(intake.admit("z", 10).unwrap_err(), Over::Requests);
        drop(held);
        assert_eq!(intake.in_flight(), (0, 0));
    }

    proptest! {
        /// Whatever the topic, response topic and payload, a reply only ever goes below the
        /// requester's own `hmi/<client>` or `<prefix>/rpc/reply/<client>`. The candidates are built
        /// around the client's own id (and its prefixes and extensions), where mistakes would hide.
        #[test]
        fn a_chosen_reply_topic_is_always_the_requesters_own(
            client in "[a-z0-9+#/\\x00-\\x1f-]{0,10}",
            other in "[a-z0-9]{0,6}",
            root in prop_oneof![Just("hmi/"), Just("gatewarden/site1/rpc/reply/"), Just("gatewarden/site1/"),
                                Just("gatewarden/site10/rpc/reply/"), Just(""), Just("$SYS/")],
            who in 0..4u8,
            suffix in "(/[a-z0-9+#]{0,6}){0,3}|[a-z0-9]{0,3}",
            how in 0..3u8,
            extra in "[a-z0-9/]{0,4}",
        ) {
            let owner = match who {
                0 => client.clone(),
                1 => format!("{client}{other}"),
                2 => client.chars().take(client.chars().count().saturating_sub(1)).collect(),
                _ => other.clone(),
            };
            let target = format!("{root}{owner}{suffix}");
            let topic = format!("{P}/rpc/request/{client}{}", if who == 3 { extra.as_str() } else { "" });
            let (response_topic, payload) = match how {
                0 => (None, serde_json::json!({"id": 1, "method": "status", "reply_to": target}).to_string()),
                1 => (Some(target.clone()), r#"{"id":1,"method":"status"}"#.to_string()),
                _ => (None, r#"{"id":1,"method":"status"}"#.to_string()),
            };
            let r = route(P, topic.as_bytes(), response_topic.as_deref(), payload.as_bytes(), 4096);
            if let Some(reply) = &r.reply_topic {
                let c = r.client.as_deref().unwrap_or("\u{0}");
                prop_assert!(valid_client_id(c));
                let ok = [format!("hmi/{c}"), format!("{P}/rpc/reply/{c}")]
                    .iter()
                    .any(|root| reply == root || reply.starts_with(&format!("{root}/")));
                prop_assert!(ok, "reply to {reply:?} for client {c:?}");
                prop_assert!(!reply.contains(['+', '#']));
            }
            // The plain request topic is never served, whatever else the request says.
            let plain = route(P, format!("{P}/rpc/request").as_bytes(), response_topic.as_deref(), payload.as_bytes(), 4096);
            prop_assert_eq!(plain, Route { client: None, reply_topic: None, executes: false });
        }
    }
}
