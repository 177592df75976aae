//! Plant mode with a real nats-server (Debian's `nats-server`, JetStream on, its own store, a free
//! loopback port) and real daemons: the plant-wide seat limit under parallel opens on three
//! gateways, seats of a SIGKILLed gateway freed by the TTL, the plant-wide supervisor lock,
//! the plant-wide session list and remote terminate, and NATS stopped and restarted under load.

mod common;

use common::mqtt::{Broker, Hmi, wait_connected};
use common::nats::Nats;
use common::{Daemon, token, user, wait_for};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A gateway of the plant `p1` on `nats`, named `name`, with `license` lines added to `[license]`.
fn gateway(nats: &Nats, name: &str, seats: u32, license: &str) -> Daemon {
    gateway_with(nats, name, seats, license, "")
}

/// [`gateway`], with `tables` (whole TOML tables) appended.
fn gateway_with(nats: &Nats, name: &str, seats: u32, license: &str, tables: &str) -> Daemon {
    let config = format!(
        "[site]\nid = \"{name}\"\n\n[license]\nheartbeat_timeout = \"120s\"\nterminate_cooldown = \"60s\"\n{license}\n\
         [plant]\nnats_url = \"{}\"\nname = \"p1\"\nseats = {seats}\noffline_seats = 2\nseat_ttl = \"3s\"\n\
         renew_interval = \"1s\"\nrequest_timeout = \"2s\"\n{tables}",
        nats.url()
    );
    let d = Daemon::start_with(&config);
    user(&d, "op", &[]);
    d
}

fn plant_state(d: &Daemon) -> Value {
    d.ok(&["status"])["plant"].clone()
}

fn wait_state(d: &Daemon, state: &str) {
    wait_for(|| plant_state(d)["state"] == state, &format!("plant state {state}"));
}

/// Opens a session as `op` (by login token) from `host`; the whole reply.
fn open(d: &Daemon, tok: &str, host: &str) -> Value {
    d.call_auth("session.open", json!({"type": "hmi", "host": host}), json!({"token": tok}))
}

fn opened(r: &Value) -> bool {
    match (&r["result"], r["error"]["code"].as_str()) {
        (Value::Object(_), _) => true,
        (_, Some("license_limit_reached")) => false,
        _ => panic!("unexpected reply to session.open: {r}"),
    }
}

#[test]
fn sixty_parallel_opens_over_three_gateways_give_exactly_the_plant_seats() {
    let nats = Nats::start();
    let gws: Vec<Arc<Daemon>> = ["a", "b", "c"].iter().map(|n| Arc::new(gateway(&nats, n, 10, ""))).collect();
    for g in &gws {
        wait_state(g, "connected");
    }
    let toks: Vec<String> = gws.iter().map(|g| token(g, "op")).collect();
    let ok = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(std::sync::Barrier::new(60));
    let threads: Vec<_> = (0..60)
        .map(|i| {
            let (g, tok, ok, start) = (gws[i % 3].clone(), toks[i % 3].clone(), ok.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                if opened(&open(&g, &tok, &format!("panel-{i}"))) {
                    ok.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ok.load(Ordering::SeqCst), 10, "seats given plant-wide");
    let held: u64 = gws.iter().map(|g| g.ok(&["status"])["seats"]["in_use"].as_u64().unwrap()).sum();
    assert_eq!(held, 10);
    // Every gateway sees the plant full, and refuses one more.
    for (g, tok) in gws.iter().zip(&toks) {
        wait_for(|| plant_state(g)["in_use"] == 10, "the plant's figures on every gateway");
        let r = open(g, tok, "panel-late");
        assert_eq!(r["error"]["code"], "license_limit_reached", "{r}");
    }
    // The retained figures say plant mode too.
    let lic = gws[0].ok(&["status"]);
    assert_eq!(lic["plant"]["gateways"], json!(["a", "b", "c"]), "{lic}");
    assert_eq!(lic["seats"]["limit"], 10, "{lic}");
}

#[test]
fn a_gateway_killed_with_sigkill_frees_its_seats_within_the_ttl() {
    let nats = Nats::start();
    let mut a = gateway(&nats, "a", 3, "");
    let b = gateway(&nats, "b", 3, "");
    wait_state(&a, "connected");
    wait_state(&b, "connected");
    let (ta, tb) = (token(&a, "op"), token(&b, "op"));
    for i in 0..3 {
        assert!(opened(&open(&a, &ta, &format!("a-{i}"))));
    }
    wait_for(|| plant_state(&b)["in_use"] == 3, "b sees a's seats");
    assert!(!opened(&open(&b, &tb, "b-0")), "the plant is full");
    // Held well past the TTL (3 s), a live gateway's seats stay its own: each renew (a
    // compare-and-swap) writes the key anew and its age starts again (nats-server 2.9: the bucket's
    // max_age is the TTL).
    std::thread::sleep(std::time::Duration::from_secs(7));
    assert!(!opened(&open(&b, &tb, "b-0")), "a's renewed seats did not lapse");
    assert_eq!(plant_state(&b)["in_use"], 3);
    a.kill();
    // seat_ttl = 3s: the keys a no longer renews go; polled, with the harness's 10 s bound.
    wait_for(|| opened(&open(&b, &tb, "b-0")), "a seat of the killed gateway free again");
    assert!(opened(&open(&b, &tb, "b-1")));
    assert!(opened(&open(&b, &tb, "b-2")));
    assert!(!opened(&open(&b, &tb, "b-3")), "still never more than plant.seats");
}

#[test]
fn a_lock_set_on_a_refuses_a_write_check_on_c_and_a_clear_on_b_lifts_it() {
    let nats = Nats::start();
    let gws: Vec<Daemon> = ["a", "b", "c"].iter().map(|n| gateway(&nats, n, 5, "")).collect();
    for g in &gws {
        wait_state(g, "connected");
        g.ok(&["role", "add", "writers"]);
        g.ok(&["role", "grant", "writers", "tag.write", "--write", "--resource", "*"]);
        user(g, "writer", &["writers"]);
    }
    let c = &gws[2];
    let tok = token(c, "writer");
    let q = json!({"permission": "tag.write", "resource": "line1/press3", "access": "write"});
    let check = || c.call_auth("authz.check", q.clone(), json!({"token": tok}));
    assert_eq!(check()["result"]["decision"], "allow");
    gws[0].ok(&["lock", "set", "--reason", "plant shutdown"]);
    wait_for(|| check()["error"]["code"] == "supervisor_locked", "the lock set on a holds on c");
    let r = check();
    assert!(r["error"]["message"].as_str().unwrap().contains("plant shutdown"), "{r}");
    // The same lock object on every gateway, and in the audit trail of c, by the plant.
    let locked_on_c = c.ok(&["status"])["supervisor_lock"].clone();
    assert_eq!(locked_on_c["reason"], "plant shutdown", "{locked_on_c}");
    let audit = c.ok(&["audit", "--limit", "100"]);
    let entry = audit.as_array().unwrap().iter().find(|e| e["action"] == "supervisor.lock").expect("audited on c");
    assert_eq!(entry["source"], "plant gateway a", "{entry}");
    // A gateway that joins the plant while the lock is set takes it on at once.
    let d = gateway(&nats, "d", 5, "");
    wait_state(&d, "connected");
    wait_for(|| d.ok(&["status"])["supervisor_lock"]["reason"] == "plant shutdown", "the lock on a late gateway");
    // Cleared on b: lifted on c.
    gws[1].ok(&["lock", "clear"]);
    wait_for(|| check()["result"]["decision"] == "allow", "the clear on b lifts it on c");
    assert_eq!(gws[0].ok(&["status"])["supervisor_lock"], Value::Null);
    wait_for(|| d.ok(&["status"])["supervisor_lock"].is_null(), "the clear on the late gateway");
}

#[test]
fn plant_wide_list_and_terminate_of_a_session_on_another_gateway() {
    let nats = Nats::start();
    let a = gateway(&nats, "a", 5, "");
    let b = gateway(&nats, "b", 5, "");
    wait_state(&a, "connected");
    wait_state(&b, "connected");
    let tb = token(&b, "op");
    let s = open(&b, &tb, "panel-7");
    let id = s["result"]["session_id"].as_i64().unwrap();
    let session_token = s["result"]["token"].as_str().unwrap().to_string();
    wait_for(|| plant_state(&a)["gateways"] == json!(["a", "b"]), "a sees b");
    let list = a.ok(&["session", "list", "--plant"]);
    let found = list.as_array().unwrap().iter().find(|s| s["gateway"] == "b").expect("b's session in a's plant list");
    assert_eq!((found["session_id"].as_i64(), found["host"].as_str()), (Some(id), Some("panel-7")), "{list}");
    // Without --plant, only a's own.
    assert_eq!(a.ok(&["session", "list"]), json!([]));

    let done = a.ok(&["session", "terminate", &id.to_string(), "--gateway", "b", "--reason", "night shift"]);
    assert_eq!((done["terminated"].as_bool(), done["user"].as_str()), (Some(true), Some("op")), "{done}");
    // On b as if local: the session is gone, its token refused as terminated, the user cooled down.
    assert_eq!(b.ok(&["session", "list"]), json!([]));
    let r = b.call_auth("session.heartbeat", Value::Null, json!({"token": session_token}));
    assert_eq!(r["error"]["code"], "session_terminated", "{r}");
    let r = open(&b, &tb, "panel-7");
    assert_eq!(r["error"]["code"], "session_terminated", "{r}");
    // The cooldown holds plant-wide: op cannot take a seat on a instead.
    let ta = token(&a, "op");
    wait_for(|| open(&a, &ta, "panel-8")["error"]["code"] == "session_terminated", "the cooldown on a");
    // Audited on both sides.
    let on_b = b.ok(&["audit", "--limit", "100"]);
    let e = on_b.as_array().unwrap().iter().find(|e| e["action"] == "session.terminate").expect("audit on b");
    assert!(e["source"].as_str().unwrap().starts_with("plant gateway a"), "{e}");
    let on_a = a.ok(&["audit", "--limit", "100"]);
    let e = on_a.as_array().unwrap().iter().find(|e| e["action"] == "session.terminate").expect("audit on a");
    assert_eq!(e["detail"]["gateway"], "b", "{e}");
    // An unknown gateway is a clear refusal, not a hang.
    a.refused(&["session", "terminate", "1", "--gateway", "nowhere"], "not_found");
}

#[test]
fn nats_stopped_and_restarted_under_load_serves_offline_then_reconciles() {
    let mut nats = Nats::start();
    let a = Arc::new(gateway(&nats, "a", 6, ""));
    let b = Arc::new(gateway(&nats, "b", 6, ""));
    wait_state(&a, "connected");
    wait_state(&b, "connected");
    let (ta, tb) = (token(&a, "op"), token(&b, "op"));
    let mut a_sessions = Vec::new();
    for i in 0..3 {
        let r = open(&a, &ta, &format!("a-{i}"));
        a_sessions.push(r["result"]["token"].as_str().unwrap().to_string());
        assert!(opened(&open(&b, &tb, &format!("b-{i}"))));
    }
    // Load: every session of a heartbeats, and b keeps asking for a seat, all through the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (a, b, stop, sessions, tb) = (a.clone(), b.clone(), stop.clone(), a_sessions.clone(), tb.clone());
        std::thread::spawn(move || {
            let mut calls = 0u32;
            while !stop.load(Ordering::SeqCst) {
                for t in &sessions[..1] {
                    let r = a.call_auth("session.heartbeat", Value::Null, json!({"token": t}));
                    assert!(r["result"].is_object(), "heartbeat during the outage: {r}");
                }
                let r = open(&b, &tb, "b-load");
                assert!(r["result"].is_object() || r["error"]["code"] == "license_limit_reached", "{r}");
                calls += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            calls
        })
    };
    nats.stop();
    wait_state(&a, "offline");
    wait_state(&b, "offline");
    // Offline, a serves on its allotment: 3 in use >= offline_seats (2), so no new seat...
    assert_eq!(open(&a, &ta, "a-new")["error"]["code"], "license_limit_reached");
    // ...until two sessions close; then one more (unclaimed) seat, and the license topic says so.
    for t in &a_sessions[1..] {
        let r = a.call_auth("session.close", Value::Null, json!({"token": t}));
        assert!(r["result"].is_object(), "{r}");
    }
    assert!(opened(&open(&a, &ta, "a-new")));
    assert!(!opened(&open(&a, &ta, "a-newer")), "offline_seats = 2 on a");
    nats.launch();
    wait_state(&a, "connected");
    wait_state(&b, "connected");
    // Reconciled: a's offline seat holds a key again (once a's two closed seats' keys are freed or
    // lapsed), and the plant counts 2 of a plus b's 3 or 4: never more than 6.
    wait_for(|| plant_state(&a)["unclaimed"] == 0, "a's offline seat claimed again");
    stop.store(true, Ordering::SeqCst);
    assert!(load.join().unwrap() > 0);
    let in_use = |d: &Daemon| d.ok(&["status"])["seats"]["in_use"].as_u64().unwrap();
    wait_for(|| plant_state(&b)["in_use"].as_u64() == Some(in_use(&a) + in_use(&b)), "b's view settles");
    assert!(in_use(&a) + in_use(&b) <= 6);
    // Filled up to exactly 6, and no further.
    let mut i = 0;
    while in_use(&a) + in_use(&b) < 6 {
        assert!(opened(&open(&b, &tb, &format!("b-fill-{i}"))));
        i += 1;
    }
    assert!(!opened(&open(&b, &tb, "b-over")));
    assert!(!opened(&open(&a, &ta, "a-over")));
}

#[test]
fn reserved_seats_hold_plant_wide() {
    let nats = Nats::start();
    let reserve = "reserved = { supervisor = 1 }\n";
    let a = gateway(&nats, "a", 3, reserve);
    let b = gateway(&nats, "b", 3, reserve);
    wait_state(&a, "connected");
    wait_state(&b, "connected");
    user(&b, "boss", &["supervisor"]);
    let (ta, tb) = (token(&a, "op"), token(&b, "op"));
    assert!(opened(&open(&a, &ta, "a-0")));
    assert!(opened(&open(&b, &tb, "b-0")));
    // Two general seats taken on two gateways: the third seat is the supervisors', plant-wide.
    wait_for(|| plant_state(&a)["in_use"] == 2, "a sees b's seat");
    let r = open(&a, &ta, "a-1");
    assert_eq!(r["error"]["code"], "license_limit_reached", "{r}");
    let boss = token(&b, "boss");
    let r = open(&b, &boss, "control-room");
    assert_eq!(r["result"]["pool"], "supervisor", "{r}");
    let r = open(&b, &tb, "b-1");
    assert_eq!(r["error"]["code"], "license_limit_reached", "{r}");
}

#[test]
fn the_plant_lock_and_the_offline_state_reach_every_gateways_retained_topics() {
    let broker = Broker::start(false);
    let mut nats = Nats::start();
    let a = gateway(&nats, "a", 4, "");
    let mqtt = format!("[mqtt]\nenabled = true\nurl = \"{}\"\nreconnect_max = \"1s\"\n", broker.url());
    let c = gateway_with(&nats, "c", 4, "", &mqtt);
    wait_connected(&c);
    wait_state(&a, "connected");
    wait_state(&c, "connected");
    let mut hmi = Hmi::v5(broker.port, "panel-on-c");
    hmi.subscribe("gatewarden/c/#");
    a.ok(&["lock", "set", "--reason", "plant stop"]);
    let m = hmi.next_on("gatewarden/c/supervisor/lock");
    assert_eq!(m.json()["reason"], "plant stop", "{:?}", m.json());
    let e = hmi.next_on("gatewarden/c/events/supervisor.lock");
    assert_eq!(e.json()["reason"], "plant stop", "{:?}", e.json());
    // NATS gone: c says so on its retained licence topic; an HMI that connects later sees it.
    nats.stop();
    wait_state(&c, "offline");
    let mut later = Hmi::v5(broker.port, "panel-later");
    later.subscribe("gatewarden/c/license");
    common::mqtt::wait_until(std::time::Duration::from_secs(10), "the offline licence figures", || {
        later
            .next(std::time::Duration::from_secs(1), |m| m.topic == "gatewarden/c/license")
            .is_some_and(|m| m.json()["plant"]["state"] == "offline")
    });
    let m = hmi.next(std::time::Duration::from_secs(10), |m| {
        m.topic == "gatewarden/c/license" && m.json()["plant"]["state"] == "offline"
    });
    let lic = m.expect("the licence topic says offline").json();
    assert_eq!((lic["plant"]["offline_seats"].as_u64(), lic["limit"].as_u64()), (Some(2), Some(2)), "{lic}");
}

#[test]
fn config_check_names_the_plant_key_at_fault_and_without_plant_nothing_is_plant() {
    let d = Daemon::start();
    // Without [plant]: no plant figures, and a plant-wide list is refused as needing plant mode.
    assert!(d.ok(&["status"]).get("plant").is_none());
    d.refused(&["session", "list", "--plant"], "bad_request");
    let bad = common::write_file(
        &d,
        "plant.toml",
        "[plant]\nnats_url = \"nats://127.0.0.1:4222\"\nseat_ttl = \"10s\"\nrenew_interval = \"6s\"\n",
    );
    let out = d.cli(&["config", "check", &bad]);
    assert!(!out.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("plant.renew_interval") && text.contains(":4:"), "{text}");
}

#[test]
fn a_restarted_gateway_keeps_its_sessions_seats_without_a_second_key() {
    let nats = Nats::start();
    let mut a = gateway(&nats, "a", 2, "");
    let b = gateway(&nats, "b", 2, "");
    wait_state(&a, "connected");
    wait_state(&b, "connected");
    let (ta, tb) = (token(&a, "op"), token(&b, "op"));
    let s = open(&a, &ta, "a-0");
    let session = s["result"]["token"].as_str().unwrap().to_string();
    assert!(opened(&open(&a, &ta, "a-1")));
    wait_for(|| plant_state(&b)["in_use"] == 2, "b sees a's seats before");
    a.restart();
    wait_state(&a, "connected");
    // The session carries on with its token; its seat is still a's, found again in the bucket.
    let r = a.call_auth("session.heartbeat", Value::Null, json!({"token": session}));
    assert!(r["result"].is_object(), "{r}");
    wait_for(|| plant_state(&a)["unclaimed"] == 0 && plant_state(&a)["in_use"] == 2, "a's seats held again");
    assert!(!opened(&open(&b, &tb, "b-0")), "the plant is still full");
    // b's view of the bucket follows the watch (a's renewals), so it is polled.
    wait_for(|| plant_state(&b)["in_use"] == 2, "b sees a's seats after the restart");
}

/// Read-only seats are each gateway's own: with the plant's read-write seats gone, a client that may
/// read only takes one on its gateway (no plant key), and one that must write is refused.
#[test]
fn with_the_plant_full_a_client_takes_a_read_only_seat_of_its_gateway() {
    let nats = Nats::start();
    let a = gateway(&nats, "a", 2, "read_only_seats = 1");
    let b = gateway(&nats, "b", 2, "read_only_seats = 1");
    wait_state(&a, "connected");
    wait_state(&b, "connected");
    let (ta, tb) = (token(&a, "op"), token(&b, "op"));
    for host in ["panel-0", "panel-1"] {
        let rw = open(&a, &ta, host);
        assert_eq!(rw["result"]["read_only"], false, "{rw}");
    }
    // b's client must write: the plant has no read-write seat left.
    let must_write = b.call_auth(
        "session.open",
        json!({"type": "hmi", "host": "panel-2", "read_only": false}),
        json!({"token": tb}),
    );
    assert_eq!(must_write["error"]["code"], "license_limit_reached", "{must_write}");
    let second = open(&b, &tb, "panel-2");
    assert_eq!(second["result"]["read_only"], true, "{second}");
    // b's read-only seat holds no plant key: the plant counts a's two read-write seats.
    wait_for(|| plant_state(&b)["in_use"] == 2, "the plant's count");
    assert_eq!(b.ok(&["status"])["seats"]["read_only"]["in_use"], 1);
    let ro = json!({"token": second["result"]["token"]});
    let check = json!({"permission": "tag", "resource": "line/1", "access": "write"});
    assert_eq!(b.call_auth("authz.check", check, ro)["error"]["code"], "read_only_seat");
    // Its gateway's read-only seat is taken too: a third client is refused, told of both.
    let third = open(&b, &tb, "panel-3");
    assert_eq!(third["error"]["read_only"]["in_use"], 1, "{third}");
}
