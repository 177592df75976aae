//! `rpc/request`: the request protocol over MQTT, through the same dispatcher as the control socket.
//!
//! Must never happen: a reply published under our own prefix other than `rpc/reply/...` (a client
//! naming `supervisor/message` as its reply topic would make us speak for the supervisor); a request
//! that stops or stalls the bridge, whatever its bytes; one HMI's flood delaying another's requests.
//!
//! Where the reply goes: the MQTT v5 response topic (with its correlation data echoed), else, for
//! MQTT 3.1.1 clients, `reply_to` in the payload; `id` is echoed either way.
//!
//! Who the caller is (`Origin::Mqtt { client }`, which keys the per-source login lockout, the rate
//! limit and the audit trail): the broker does not tell a subscriber who published, so
//! - on `rpc/request/<client>` it is `<client>`: the broker's ACL (`pattern write .../%c`) makes that
//!   level the publisher's own client id, so it cannot be forged;
//! - on plain `rpc/request` it is the reply topic, which only an ACL on reading replies protects; a
//!   request with no reply topic at all counts as client `-`.

use crate::api::{self, Ctx, Origin};
use crate::daemon::server;
use crate::protocol::{ApiError, ErrorCode, Request, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// A reply on its way to the bridge task, which alone publishes.
#[derive(Debug)]
pub struct Reply {
    pub topic: String,
    pub payload: Vec<u8>,
    pub correlation: Option<bytes::Bytes>,
    pub qos: u8,
}

/// Where a request came from and where its answer goes, read before the payload is decoded.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub client: String,
    pub reply_topic: Option<String>,
    pub correlation: Option<bytes::Bytes>,
    pub qos: u8,
}

/// The `reply_to` of a 3.1.1 request, found without decoding the rest.
pub fn reply_to_of(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Only {
        reply_to: Option<String>,
    }
    serde_json::from_slice::<Only>(payload).ok()?.reply_to
}

/// Whether we may publish a reply to `topic`: a plain topic name (no wildcards, no `$` system
/// topics, not empty, within MQTT's length), and under our own prefix only below `rpc/reply/`.
pub fn reply_topic_allowed(prefix: &str, topic: &str) -> bool {
    if topic.is_empty() || topic.len() > 1024 || topic.starts_with('$') || topic.contains(['+', '#', '\0']) {
        return false;
    }
    match topic.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('/')) {
        Some(rest) => rest.starts_with("rpc/reply/"),
        None => !topic.starts_with(&format!("{prefix}/")) && topic != prefix,
    }
}

/// Decodes and serves one request; returns the reply to publish (always one: even garbage gets a
/// `bad_request` with whatever `id` could be read).
pub async fn serve(ctx: &Arc<Ctx>, payload: &[u8], client: String, password_checks: &Semaphore) -> Response {
    let max = ctx.config().daemon.max_request_bytes;
    if payload.len() > max {
        let err = ApiError::bad_request(format!("request is {} bytes; the limit is {max}", payload.len()));
        return Response::from_result(Value::Null, Err(err));
    }
    let req = match Request::decode(payload) {
        Ok(r) => r,
        Err(e) => {
            let (id, err) = *e;
            return Response::from_result(id, Err(err));
        }
    };
    let id = req.id.clone();
    // Password hashing costs ~20 MiB and a core for a while; a network flood must not run many at
    // once on a panel PC. The control socket is local and not limited here.
    let _permit = if api::is_slow(&req) { password_checks.acquire().await.ok() } else { None };
    let r = server::run(ctx, req, &Origin::Mqtt { client }).await;
    Response::from_result(id, r)
}

/// The error a rate-limited client is told (once a second at most, so refusing costs little).
pub fn rate_limited(client: &str, retry_after_ms: u64) -> Response {
    let err = ApiError::new(ErrorCode::RateLimited, format!("too many requests from {client}; slow down"))
        .with("retry_after_ms", retry_after_ms);
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

/// More distinct clients than this and idle ones are forgotten; a spoofer inventing reply topics
/// cannot grow the map without bound.
const MAX_CLIENTS: usize = 10_000;

impl Limiter {
    pub fn new(rate: u32, burst: u32) -> Limiter {
        Limiter { rate: rate.max(1) as f64, burst: burst.max(1) as f64, buckets: HashMap::new() }
    }

    pub fn admit(&mut self, client: &str, now: Instant) -> Admit {
        if self.buckets.len() >= MAX_CLIENTS && !self.buckets.contains_key(client) {
            self.forget_idle(now);
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
        let notify = b.last_notice.is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if notify {
            b.last_notice = Some(now);
        }
        Admit::No { notify, retry_after_ms }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_topics_under_our_prefix_are_only_the_reply_tree() {
        let p = "gatewarden/site1";
        assert!(reply_topic_allowed(p, "hmi/panel7/reply"));
        assert!(reply_topic_allowed(p, "gatewarden/site1/rpc/reply/panel7"));
        assert!(!reply_topic_allowed(p, "gatewarden/site1/supervisor/message"));
        assert!(!reply_topic_allowed(p, "gatewarden/site1/status"));
        assert!(!reply_topic_allowed(p, "gatewarden/site1"));
        assert!(!reply_topic_allowed(p, "hmi/+/reply"));
        assert!(!reply_topic_allowed(p, "hmi/#"));
        assert!(!reply_topic_allowed(p, "$SYS/broker"));
        assert!(!reply_topic_allowed(p, ""));
        // Another site's tree is not ours to guard.
        assert!(reply_topic_allowed(p, "gatewarden/site10/x"));
    }

    #[test]
    fn reply_to_is_found_in_valid_json_only() {
        assert_eq!(reply_to_of(br#"{"id":1,"reply_to":"a/b","method":"x"}"#).as_deref(), Some("a/b"));
        assert_eq!(reply_to_of(br#"{"id":1}"#), None);
        assert_eq!(reply_to_of(b"garbage"), None);
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
        assert_eq!(l.admit("b", t0), Admit::Yes, "another client is not affected");
        assert_eq!(l.admit("a", t0 + Duration::from_millis(100)), Admit::Yes);
        assert!(matches!(l.admit("a", t0 + Duration::from_millis(1100)), Admit::Yes));
        l.forget_idle(t0 + Duration::from_secs(10));
        assert!(l.is_empty());
    }
}
