//! The MQTT bridge against a real mosquitto started by each test on a free port, with HMIs played by
//! rumqttc clients (v5 and 3.1.1) and by mosquitto_sub / mosquitto_pub.

mod common;

use common::mqtt::{Broker, Hmi, UNUSED_CA_PEM, daemon, free_port, nodelay_towards, wait_connected, wait_until};
use common::{PW, user};
use rumqttc::v5::mqttbytes::QoS;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn hmi_sees_retained_state_on_connect_events_in_order_and_the_will_after_sigkill() {
    let broker = Broker::start(false);
    let mut d = daemon(&broker.url(), "s1", "[license]\nseats = 7\nreserved = { supervisor = 2 }\n");
    wait_connected(&d);

    // A supervisor lock set after we connected.
    d.ok(&["lock", "set", "--reason", "line 1 maintenance"]);
    let lock = d.ok(&["status"])["supervisor_lock"].clone();
    assert_eq!(lock["reason"], "line 1 maintenance");
    wait_until(Duration::from_secs(10), "the lock rows to be delivered", || {
        d.ok(&["status"])["mqtt"]["outbox_depth"] == 0
    });

    // An HMI that connects now sees the current state at once, retained.
    let mut hmi = Hmi::v5(broker.port, "panel-late");
    hmi.subscribe("gatewarden/s1/#");
    let status = hmi.next_on("gatewarden/s1/status");
    assert!(status.retain);
    assert_eq!(status.json(), json!({"state": "online", "version": env!("CARGO_PKG_VERSION")}));
    let license = hmi.next_on("gatewarden/s1/license");
    assert!(license.retain);
    assert_eq!(
        license.json(),
        json!({"limit": 7, "in_use": 0, "free": 7, "reserved": {"supervisor": 2}, "sessions": 0,
               "pools": [{"pool": null, "seats": 5, "in_use": 0, "free": 5},
                         {"pool": "supervisor", "seats": 2, "in_use": 0, "free": 2}]})
    );
    let l = hmi.next_on("gatewarden/s1/supervisor/lock");
    assert!(l.retain);
    assert_eq!(l.json(), lock);

    // Clearing the lock is an empty retained payload: a later HMI sees no lock at all.
    d.ok(&["lock", "clear"]);
    let cleared = hmi.next_on("gatewarden/s1/supervisor/lock");
    assert!(cleared.payload.is_empty(), "{cleared:?}");
    let mut later = Hmi::v5(broker.port, "panel-later");
    later.subscribe("gatewarden/s1/#");
    later.next_on("gatewarden/s1/license");
    assert!(
        later.next(Duration::from_millis(500), |m| m.topic.ends_with("supervisor/lock")).is_none(),
        "a cleared lock leaves nothing retained"
    );

    // Events arrive in the order of the changes.
    for i in 0..5 {
        d.ok(&["user", "add", &format!("op{i}")]);
    }
    for i in 0..5 {
        let m = hmi.next_on("gatewarden/s1/events/user.created");
        assert_eq!(m.json()["user"], format!("op{i}"));
    }

    // kill -9: the broker publishes the Will, retained.
    d.kill();
    let will = hmi.next_on("gatewarden/s1/status");
    assert_eq!(will.json(), json!({"state": "offline"}));
    let mut after = Hmi::v5(broker.port, "panel-after");
    after.subscribe("gatewarden/s1/status");
    let m = after.next_on("gatewarden/s1/status");
    assert!(m.retain);
    assert_eq!(m.json(), json!({"state": "offline"}));
}

#[test]
fn outbox_delivers_every_event_in_order_after_a_broker_outage() {
    let mut broker = Broker::start(true);
    let d = daemon(&broker.url(), "s2", "");
    wait_connected(&d);
    // A persistent HMI session: the broker keeps its subscription and queues for it while it is away.
    let mut hmi = Hmi::v5_session(broker.port, "panel-persistent", false);
    hmi.subscribe("gatewarden/s2/events/#");
    drop(hmi);

    broker.stop();
    wait_until(Duration::from_secs(20), "the bridge to notice", || d.ok(&["status"])["mqtt"]["state"] != "connected");
    let mut conn = d.connect().unwrap();
    for i in 0..100 {
        let r = conn.call("user.create", json!({"name": format!("u{i:03}")}));
        assert!(r["result"].is_object(), "{r}");
    }
    let s = d.ok(&["status"]);
    assert_eq!(s["mqtt"]["state"], "not connected", "{s}");
    assert!(s["mqtt"]["last_error"].is_string(), "{s}");
    assert!(s["mqtt"]["outbox_depth"].as_i64().unwrap() >= 100, "{s}");

    broker.run();
    wait_connected(&d);
    let mut hmi = Hmi::v5_session(broker.port, "panel-persistent", false);
    let mut seen = Vec::new();
    while seen.len() < 100 {
        let m = hmi
            .next(Duration::from_secs(20), |m| m.topic == "gatewarden/s2/events/user.created")
            .unwrap_or_else(|| panic!("only {} of 100 events arrived: {seen:?}", seen.len()));
        let name = m.json()["user"].as_str().unwrap().to_string();
        // QoS 1 allows a repeat, which the broker flags `dup`; nothing else may repeat.
        if m.dup && seen.contains(&name) {
            continue;
        }
        seen.push(name);
    }
    let expected: Vec<String> = (0..100).map(|i| format!("u{i:03}")).collect();
    assert_eq!(seen, expected, "every event exactly once, in order");
    assert!(hmi.next(Duration::from_millis(300), |m| m.topic.contains("user.created") && !m.dup).is_none());
    wait_until(Duration::from_secs(10), "the outbox to drain", || d.ok(&["status"])["mqtt"]["outbox_depth"] == 0);
}

#[test]
fn hmi_opens_a_session_over_mqtt_and_sees_its_termination() {
    let broker = Broker::start(false);
    let d = daemon(&broker.url(), "s9", "[license]\nseats = 3\n");
    user(&d, "op", &[]);
    wait_connected(&d);
    let req = "gatewarden/s9/rpc/request/panel-9";
    // One client per stream, because `next_on` skips what it is not waiting for.
    let mut hmi = Hmi::v5(broker.port, "panel-9");
    hmi.subscribe("hmi/panel-9/reply");
    let mut lic = Hmi::v5(broker.port, "panel-9-license");
    lic.subscribe("gatewarden/s9/license");
    assert_eq!(lic.next_on("gatewarden/s9/license").json()["in_use"], 0);
    let mut events = Hmi::v5(broker.port, "panel-9-events");
    events.subscribe("gatewarden/s9/events/session.opened");

    let open = json!({"id": 1, "method": "session.open", "auth": {"user": "op", "password": PW},
                      "params": {"type": "hmi", "project": "line1", "host": "panel-9"}});
    hmi.request(req, open.to_string(), "hmi/panel-9/reply", b"o");
    let r = hmi.next_on("hmi/panel-9/reply").json();
    let id = r["result"]["session_id"].as_i64().unwrap_or_else(|| panic!("{r}"));
    let token = r["result"]["token"].as_str().unwrap().to_string();
    assert_eq!(lic.next_on("gatewarden/s9/license").json()["in_use"], 1);
    assert_eq!(events.next_on("gatewarden/s9/events/session.opened").json()["session_id"], id);

    let control_topic = format!("gatewarden/s9/sessions/{id}/control");
    let mut control = Hmi::v5(broker.port, "panel-9-control");
    control.subscribe(&control_topic);
    let beat = json!({"id": 2, "method": "session.heartbeat", "auth": {"token": token}});
    hmi.request(req, beat.to_string(), "hmi/panel-9/reply", b"h");
    assert_eq!(hmi.next_on("hmi/panel-9/reply").json()["result"]["session_id"], id);

    d.ok(&["session", "terminate", &id.to_string(), "--reason", "panel swap"]);
    let c = control.next_on(&control_topic).json();
    assert_eq!(
        (c["action"].as_str(), c["reason"].as_str(), c["by"]["u"].as_str()),
        (Some("terminate"), Some("panel swap"), Some("admin")),
        "{c}"
    );
    assert_eq!(lic.next_on("gatewarden/s9/license").json()["in_use"], 0);
    hmi.request(req, beat.to_string(), "hmi/panel-9/reply", b"h2");
    assert_eq!(hmi.next_on("hmi/panel-9/reply").json()["error"]["code"], "session_terminated");
}

#[test]
fn broker_restarted_under_a_load_of_session_opens_and_lock_changes_loses_nothing() {
    let mut broker = Broker::start(true);
    let d = daemon(&broker.url(), "s10", "[license]\nseats = 1000\nheartbeat_timeout = \"1h\"\n");
    wait_connected(&d);
    // A persistent HMI session: the broker keeps queueing events for it, across its own restart.
    let mut hmi = Hmi::v5_session(broker.port, "panel-audit", false);
    hmi.subscribe("gatewarden/s10/events/#");
    hmi.disconnect();

    // The load: session opens with a lock change every fifth request, on one connection, so the
    // order of acknowledgement is the order the events must arrive in.
    let load = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let mut conn = d.connect().unwrap();
            let (mut expected, mut worst) = (Vec::new(), Duration::ZERO);
            for i in 0..200 {
                let t = Instant::now();
                if i % 5 == 4 {
                    let method = if i % 10 == 4 { "supervisor.lock" } else { "supervisor.unlock" };
                    let r = conn.call(method, json!({}));
                    assert!(r["result"].is_object(), "{r}");
                    expected.push(method.to_string());
                } else {
                    let r = conn.call("session.open", json!({"type": "hmi", "host": format!("panel-{i}")}));
                    let id = r["result"]["session_id"].as_i64().unwrap_or_else(|| panic!("{r}"));
                    expected.push(format!("session.opened {id}"));
                }
                worst = worst.max(t.elapsed());
                std::thread::sleep(Duration::from_millis(10));
            }
            (expected, worst)
        });
        std::thread::sleep(Duration::from_millis(500));
        broker.stop();
        std::thread::sleep(Duration::from_millis(1500));
        broker.run();
        load.join().unwrap()
    });
    let (expected, worst) = load;
    println!("slowest request during the broker outage: {worst:?}");
    assert!(worst < Duration::from_secs(2), "a request waited {worst:?}: the daemon blocked on the broker");

    let mut hmi = Hmi::v5_session(broker.port, "panel-audit", false);
    let mut seen: Vec<String> = Vec::new();
    while seen.len() < expected.len() {
        let m = hmi
            .next(Duration::from_secs(30), |m| m.topic.starts_with("gatewarden/s10/events/"))
            .unwrap_or_else(|| panic!("only {} of {} events arrived", seen.len(), expected.len()));
        let name = m.topic.trim_start_matches("gatewarden/s10/events/").to_string();
        let entry = match name.as_str() {
            "session.opened" => format!("{name} {}", m.json()["session_id"]),
            _ => name,
        };
        // QoS 1 may repeat the event that was in flight when the broker went away; the broker flags it.
        if m.dup && seen.last() == Some(&entry) {
            continue;
        }
        seen.push(entry);
    }
    assert_eq!(seen, expected, "every event, in order");
}

#[test]
fn rpc_over_v5_response_topic_and_3_1_1_reply_to_with_bad_input_in_between() {
    let broker = Broker::start(false);
    let d = daemon(&broker.url(), "s3", "[daemon]\nmax_request_bytes = 2048\n");
    d.ok(&["role", "add", "operator"]);
    d.ok(&["role", "grant", "operator", "tag.write", "--write", "--resource", "line1/*"]);
    user(&d, "op", &["operator"]);
    wait_connected(&d);
    // Each HMI asks on its own request topic: the broker's ACL proves the last level is its client id.
    let req = "gatewarden/s3/rpc/request/panel-v5";

    // MQTT v5: the reply goes to the response topic with the correlation data echoed.
    let mut v5 = Hmi::v5(broker.port, "panel-v5");
    v5.subscribe("hmi/panel-v5/reply");
    let login = json!({"id": "a1", "method": "login", "params": {"user": "op", "password": PW}});
    v5.request(req, login.to_string(), "hmi/panel-v5/reply", b"corr-1");
    let r = v5.next_on("hmi/panel-v5/reply");
    assert_eq!(r.correlation.as_deref(), Some(&b"corr-1"[..]));
    assert_eq!(r.json()["id"], "a1", "{:?}", r.json());
    let token = r.json()["result"]["token"].as_str().expect("a token").to_string();

    let check = |id: &str, resource: &str| {
        json!({"id": id, "method": "authz.check", "auth": {"token": token},
               "params": {"permission": "tag.write", "resource": resource, "access": "write"}})
    };
    v5.request(req, check("c1", "line1/press").to_string(), "hmi/panel-v5/reply", b"corr-2");
    v5.request(req, check("c2", "line2/press").to_string(), "hmi/panel-v5/reply", b"corr-3");
    let mut answers = [v5.next_on("hmi/panel-v5/reply"), v5.next_on("hmi/panel-v5/reply")];
    answers.sort_by_key(|m| m.correlation.clone());
    assert_eq!(answers[0].correlation.as_deref(), Some(&b"corr-2"[..]));
    assert_eq!(answers[0].json()["id"], "c1");
    assert_eq!(answers[0].json()["result"]["decision"], "allow", "{}", answers[0].json());
    assert_eq!(answers[1].json()["id"], "c2");
    assert_eq!(answers[1].json()["result"]["decision"], "deny", "{}", answers[1].json());

    // No credentials: unauthenticated.
    v5.request(req, json!({"id": 3, "method": "user.list"}).to_string(), "hmi/panel-v5/reply", b"c");
    assert_eq!(v5.next_on("hmi/panel-v5/reply").json()["error"]["code"], "unauthenticated");
    // Garbage, a non-object, an unknown field, an oversized payload: bad_request, bridge unharmed.
    for bad in [b"\xff\xfe garbage".to_vec(), b"[1,2]".to_vec(), br#"{"id":4,"method":"status","x":1}"#.to_vec()] {
        v5.request(req, bad, "hmi/panel-v5/reply", b"bad");
        let e = v5.next_on("hmi/panel-v5/reply");
        assert_eq!(e.json()["error"]["code"], "bad_request", "{:?}", e.json());
        assert_eq!(e.correlation.as_deref(), Some(&b"bad"[..]));
    }
    v5.request(req, vec![b' '; 3000], "hmi/panel-v5/reply", b"big");
    let e = v5.next_on("hmi/panel-v5/reply");
    assert_eq!(e.json()["error"]["code"], "bad_request");
    assert!(e.json()["error"]["message"].as_str().unwrap().contains("limit"), "{:?}", e.json());
    // A reply topic under our own prefix (other than rpc/reply/) is refused: no reply at all.
    v5.subscribe("gatewarden/s3/supervisor/message");
    v5.request(req, json!({"id": 5, "method": "status"}).to_string(), "gatewarden/s3/supervisor/message", b"x");
    v5.request(req, json!({"id": 6, "method": "status"}).to_string(), "gatewarden/s3/rpc/reply/panel-v5", b"y");
    v5.subscribe("gatewarden/s3/rpc/reply/panel-v5");
    v5.request(req, json!({"id": 7, "method": "status"}).to_string(), "gatewarden/s3/rpc/reply/panel-v5", b"z");
    let ok = v5.next(Duration::from_secs(10), |m| m.topic.contains("/rpc/reply/") || m.topic.ends_with("message"));
    let ok = ok.expect("a reply on the rpc/reply tree");
    assert_eq!(ok.topic, "gatewarden/s3/rpc/reply/panel-v5");
    assert_eq!(ok.json()["result"]["site"], "s3");

    // MQTT 3.1.1: no properties, so the reply goes to `reply_to` and `id` is the correlation.
    let mut old = Hmi::v311(broker.port, "panel-311");
    old.subscribe("hmi/panel-311/reply");
    let req = "gatewarden/s3/rpc/request/panel-311";
    let r = json!({"id": 41, "method": "authz.check", "auth": {"user": "op", "password": PW},
                   "params": {"permission": "tag.write", "resource": "line1/x", "access": "write"},
                   "reply_to": "hmi/panel-311/reply"});
    old.publish(req, r.to_string());
    let m = old.next_on("hmi/panel-311/reply");
    assert_eq!(m.json()["id"], 41);
    assert_eq!(m.json()["result"]["decision"], "allow", "{:?}", m.json());
    // A malformed request still names where to answer: bad_request there, with its id.
    old.publish(req, json!({"id": 42, "method": 5, "reply_to": "hmi/panel-311/reply"}).to_string());
    let m = old.next_on("hmi/panel-311/reply");
    assert_eq!((m.json()["id"].clone(), m.json()["error"]["code"].clone()), (json!(42), json!("bad_request")));
    // Garbage with nowhere to answer is dropped with a log line; the next request is served.
    old.publish(req, "}}}");
    old.publish(req, json!({"id": 43, "method": "status", "reply_to": "hmi/panel-311/reply"}).to_string());
    assert_eq!(old.next_on("hmi/panel-311/reply").json()["id"], 43);
    // The audit trail names the MQTT client a request came from: the client id its topic proves.
    let audit = d.ok(&["audit", "--limit", "50"]);
    assert!(audit.to_string().contains("mqtt client=panel-v5"), "{audit}");
}

#[test]
fn a_flooding_client_is_rate_limited_and_does_not_starve_another() {
    let broker = Broker::start(false);
    let d = daemon(&broker.url(), "s4", "[mqtt]\nrpc_rate = 20\nrpc_burst = 20\n");
    wait_connected(&d);
    let mut flooder = Hmi::v5(broker.port, "flooder");
    flooder.subscribe("hmi/flooder/reply");
    let mut calm = Hmi::v5(broker.port, "calm");
    calm.subscribe("hmi/calm/reply");

    let req = json!({"id": 1, "method": "status"}).to_string();
    for _ in 0..2000 {
        flooder.request("gatewarden/s4/rpc/request/flooder", req.clone(), "hmi/flooder/reply", b"f");
    }
    // Meanwhile the calm panel is served promptly, every time.
    for i in 0..10 {
        let started = Instant::now();
        let body = json!({"id": i, "method": "status"}).to_string();
        calm.request("gatewarden/s4/rpc/request/calm", body, "hmi/calm/reply", format!("c{i}").as_bytes());
        let m = calm.next_on("hmi/calm/reply");
        assert_eq!(m.json()["id"], i);
        assert!(started.elapsed() < Duration::from_secs(2), "calm request {i} took {:?}", started.elapsed());
    }
    // The flooder got at most its burst plus the refill (fewer when its requests in flight reach
    // mqtt.rpc_max_in_flight_per_client), and was told why.
    let mut results = 0;
    let mut limited = None;
    while let Some(m) = flooder.next(Duration::from_millis(1500), |m| m.topic == "hmi/flooder/reply") {
        if m.json()["error"]["code"] == "rate_limited" {
            limited = Some(m.json());
        } else {
            results += 1;
        }
    }
    let limited = limited.expect("the flooder is told it is rate limited");
    assert!(limited["error"]["retry_after_ms"].as_u64().is_some(), "{limited}");
    assert!((8..400).contains(&results), "flooder served {results} of 2000");
}

#[test]
fn clean_shutdown_publishes_offline_retained_before_disconnecting() {
    let broker = Broker::start(false);
    let mut d = daemon(&broker.url(), "s5", "");
    wait_connected(&d);
    let status = d.stop();
    assert!(status.success(), "{status}");
    assert!(d.log().contains("published offline status"), "{}", d.log());
    let mut hmi = Hmi::v5(broker.port, "panel");
    hmi.subscribe("gatewarden/s5/status");
    let m = hmi.next_on("gatewarden/s5/status");
    assert!(m.retain);
    // Our own offline message (it carries the version), not the Will the broker sends for a crash.
    assert_eq!(m.json(), json!({"state": "offline", "version": env!("CARGO_PKG_VERSION")}));
}

#[test]
fn daemon_serves_without_a_broker_and_connects_when_one_appears() {
    let port = free_port();
    let d = daemon(&format!("mqtt://127.0.0.1:{port}"), "s6", "");
    // Fully usable with nothing listening.
    d.ok(&["user", "add", "early"]);
    wait_until(Duration::from_secs(10), "a connection error in status", || {
        let s = d.ok(&["status"]);
        s["mqtt"]["state"] == "not connected" && s["mqtt"]["last_error"].is_string()
    });
    let s = d.ok(&["status"]);
    assert!(s["mqtt"]["outbox_depth"].as_i64().unwrap() >= 1, "{s}");

    // A broker appears on that port: the bridge connects by itself and delivers what waited.
    let mut broker = Broker::prepare(port, false, "allow_anonymous true\n");
    broker.run();
    wait_connected(&d);
    let s = d.ok(&["status"]);
    assert!(s["mqtt"]["last_error"].is_null(), "{s}");
    wait_until(Duration::from_secs(10), "the outbox to drain", || d.ok(&["status"])["mqtt"]["outbox_depth"] == 0);
    let mut hmi = Hmi::v5(port, "panel");
    hmi.subscribe("gatewarden/s6/status");
    assert_eq!(hmi.next_on("gatewarden/s6/status").json()["state"], "online");
}

/// The mosquitto command-line clients as an integrator would use them: 3.1.1, `reply_to`.
#[test]
fn mosquitto_sub_and_pub_see_status_and_get_replies() {
    let broker = Broker::start(false);
    let d = daemon(&broker.url(), "s7", "");
    wait_connected(&d);
    let port = broker.port.to_string();
    let out = Command::new("mosquitto_sub")
        .args(["-V", "mqttv311", "-p", &port, "-h", "127.0.0.1", "-t", "gatewarden/s7/status", "-C", "1", "-W", "10"])
        .output()
        .expect("mosquitto_sub is installed");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(v["state"], "online");

    // mosquitto_sub gives no sign that its subscription is in place (its output is block-buffered
    // into a pipe), so ask until it has its one reply (`-C 1`): each ask is answered, the first
    // answer after the subscription ends it.
    let mut sub = Command::new("mosquitto_sub")
        .args(["-V", "mqttv311", "-p", &port, "-h", "127.0.0.1", "-t", "hmi/cli/reply", "-C", "1", "-W", "15"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let req = json!({"id": "cli-1", "method": "status", "reply_to": "hmi/cli/reply"}).to_string();
    // The request topic ends in the publisher's client id (`-i cli`), whose reply topics are hmi/cli/...
    let deadline = Instant::now() + Duration::from_secs(15);
    while sub.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no reply reached mosquitto_sub");
        let st = Command::new("mosquitto_pub")
            .args(["-V", "mqttv311", "-p", &port, "-h", "127.0.0.1", "-q", "1", "-i", "cli"])
            .args(["-t", "gatewarden/s7/rpc/request/cli"])
            .args(["-m", &req])
            .status()
            .unwrap();
        assert!(st.success());
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = sub.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(v["id"], "cli-1");
    assert_eq!(v["result"]["site"], "s7");
}

/// The shipped ACL example, as an integrator would install it: only gatewarden writes under its
/// prefix; an HMI reads the state and asks on its own request topic. Also covers broker login
/// through `mqtt.username` and `mqtt.password_file`.
#[test]
fn shipped_acl_example_keeps_hmis_from_publishing_under_the_prefix() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    for (i, (user, pw)) in [("gatewarden", "gw-secret-1"), ("panel1", "p1-secret")].iter().enumerate() {
        let mut cmd = Command::new("mosquitto_passwd");
        if i == 0 {
            cmd.arg("-c");
        }
        let st = cmd.arg("-b").arg(&passwd).args([user, pw]).stdout(Stdio::null()).status().unwrap();
        assert!(st.success());
    }
    let acl_text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/mosquitto-acl.example"))
        .unwrap()
        .replace("gatewarden/default/", "gatewarden/s8/");
    let acl = dir.path().join("acl");
    std::fs::write(&acl, acl_text).unwrap();
    let auth = format!("allow_anonymous false\npassword_file {}\nacl_file {}\n", passwd.display(), acl.display());
    let mut broker = Broker::prepare(port, false, &auth);
    broker.run();

    let pw_file = dir.path().join("gw-password");
    std::fs::write(&pw_file, "gw-secret-1\n").unwrap();
    let extra = format!("[mqtt]\nusername = \"gatewarden\"\npassword_file = {:?}\n", pw_file.display().to_string());
    let d = daemon(&broker.url(), "s8", &extra);
    wait_connected(&d);

    let mut panel = Hmi::v5_with(port, "panel1", true, Some(("panel1", "p1-secret")));
    panel.subscribe("gatewarden/s8/#");
    assert_eq!(panel.next_on("gatewarden/s8/status").json()["state"], "online");
    // A forged retained status from an HMI is refused by the broker.
    let forged = json!({"state": "online", "version": "forged"}).to_string();
    panel.v5.as_ref().unwrap().publish("gatewarden/s8/status", QoS::AtLeastOnce, true, forged).unwrap();
    // Requests on the HMI's own request topic are served; the reply comes back on its reply topic.
    panel.subscribe("hmi/panel1/reply");
    let req = json!({"id": 1, "method": "status"}).to_string();
    panel.request("gatewarden/s8/rpc/request/panel1", req.clone(), "hmi/panel1/reply", b"1");
    assert_eq!(panel.next_on("hmi/panel1/reply").json()["result"]["site"], "s8");
    // ...but not on another HMI's.
    panel.request("gatewarden/s8/rpc/request/panel2", req, "hmi/panel1/reply", b"2");
    assert!(panel.next(Duration::from_millis(700), |m| m.topic == "hmi/panel1/reply").is_none());

    let mut later = Hmi::v5_with(port, "panel1-b", true, Some(("panel1", "p1-secret")));
    later.subscribe("gatewarden/s8/status");
    assert_eq!(later.next_on("gatewarden/s8/status").json()["version"], env!("CARGO_PKG_VERSION"));
}

/// Issue 15: at QoS 1 a paho client waited ~44 ms per request (1.2 ms at QoS 0): the bridge writes the
/// request's PUBACK and then the reply, and with Nagle on the reply waited for the broker's delayed
/// ACK of the PUBACK. The bridge's socket to the broker has TCP_NODELAY, over TCP and over TLS.
#[test]
fn the_bridge_socket_to_the_broker_has_nagle_off_over_tcp_and_tls() {
    let broker = Broker::start(false);
    let d = daemon(&broker.url(), "nd", "");
    user(&d, "op", &[]);
    wait_connected(&d);
    assert_eq!(nodelay_towards(d.pid(), broker.port), [true], "one connection to the broker, Nagle off");
    // And a QoS 1 request over it is answered.
    let mut hmi = Hmi::v5(broker.port, "panel-nd");
    hmi.subscribe("hmi/panel-nd/reply");
    let login = json!({"id": 1, "method": "login", "params": {"user": "op", "password": PW}});
    hmi.request("gatewarden/nd/rpc/request/panel-nd", login.to_string(), "hmi/panel-nd/reply", b"c");
    assert!(hmi.next_on("hmi/panel-nd/reply").json()["result"]["token"].is_string());
    drop(d);

    // mqtts://: a listener that takes the connection and never answers the ClientHello. The TLS
    // transport runs over the same kind of socket; each attempt is looked at while it waits.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, UNUSED_CA_PEM).unwrap();
    let extra = format!("[mqtt]\nca_file = {:?}\n", ca.display().to_string());
    let d = daemon(&format!("mqtts://127.0.0.1:{port}"), "nt", &extra);
    let mut seen = Vec::new();
    while seen.is_empty() {
        let (_held, _) = listener.accept().unwrap();
        // Empty if that attempt already gave up (connect timeout) before we looked: take the next.
        seen = nodelay_towards(d.pid(), port);
    }
    assert_eq!(seen, [true], "the TLS connection's socket, Nagle off");
}
