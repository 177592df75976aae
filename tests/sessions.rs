//! HMI client sessions and the licence seat limit, through the real daemon: the socket protocol as an
//! HMI speaks it, and the CLI as a supervisor uses it.

mod common;

use common::{Daemon, PW};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn pw(name: &str) -> Value {
    json!({"user": name, "password": PW})
}

/// Opens a session as `user` on `host`; returns the whole reply.
fn open(d: &Daemon, user: &str, host: &str) -> Value {
    d.call_auth("session.open", json!({"type": "hmi", "project": "line1", "host": host}), pw(user))
}

fn opened(d: &Daemon, user: &str, host: &str) -> (i64, String) {
    let r = open(d, user, host);
    let res = &r["result"];
    assert!(res["session_id"].is_i64(), "open {user}@{host}: {r}");
    (res["session_id"].as_i64().unwrap(), res["token"].as_str().unwrap().to_string())
}

fn beat(d: &Daemon, token: &str) -> Value {
    d.call_auth("session.heartbeat", Value::Null, json!({"token": token}))
}

fn seats(d: &Daemon) -> (u64, u64) {
    let s = d.ok(&["status"]);
    (s["seats"]["in_use"].as_u64().unwrap(), s["seats"]["limit"].as_u64().unwrap())
}

fn err_code(r: &Value) -> &str {
    r["error"]["code"].as_str().unwrap_or_else(|| panic!("expected an error: {r}"))
}

#[test]
fn limit_two_third_open_is_refused_with_the_figures() {
    let d = Daemon::start_with("[license]\nseats = 2");
    for u in ["op1", "op2", "op3"] {
        common::user(&d, u, &[]);
    }
    opened(&d, "op1", "panel-1");
    opened(&d, "op2", "panel-2");
    let r = open(&d, "op3", "panel-3");
    assert_eq!(err_code(&r), "license_limit_reached", "{r}");
    assert_eq!(r["error"]["limit"], 2);
    assert_eq!(r["error"]["in_use"], 2);
    // An operator does not learn who holds the seats.
    assert!(r["error"].get("holders").is_none(), "{r}");
    assert_eq!(seats(&d), (2, 2));
    // Someone who may view sessions does.
    let r = d.call("session.open", json!({"type": "scada", "host": "console"}));
    assert_eq!(err_code(&r), "license_limit_reached");
    let holders: Vec<&str> =
        r["error"]["holders"].as_array().unwrap().iter().map(|h| h["user"].as_str().unwrap()).collect();
    assert_eq!(holders, ["op1", "op2"]);
}

#[test]
fn fifty_parallel_opens_against_ten_seats_take_exactly_ten() {
    let d = Daemon::start_with("[license]\nseats = 10");
    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let d = &d;
                s.spawn(move || d.call("session.open", json!({"type": "hmi", "host": format!("panel-{i}")})))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r["result"]["session_id"].is_i64()).count();
    let full = results.iter().filter(|r| r["error"]["code"] == "license_limit_reached").count();
    assert_eq!((ok, full), (10, 40), "{results:?}");
    assert_eq!(seats(&d), (10, 10));
    assert_eq!(d.sql_count("SELECT count(*) FROM sessions WHERE state = 'open'"), 10);
}

#[test]
fn silent_session_expires_and_frees_its_seat_while_a_beating_one_stays() {
    let d = Daemon::start_with("[license]\nseats = 2\nheartbeat_timeout = \"2s\"");
    common::user(&d, "op1", &[]);
    common::user(&d, "op2", &[]);
    let (silent, silent_token) = opened(&d, "op1", "panel-1");
    let (_, live_token) = opened(&d, "op2", "panel-2");
    let deadline = Instant::now() + Duration::from_secs(10);
    while seats(&d).0 != 1 {
        assert!(Instant::now() < deadline, "the silent session never expired");
        assert!(beat(&d, &live_token)["result"].is_object());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(beat(&d, &live_token)["result"].is_object());
    assert_eq!(err_code(&beat(&d, &silent_token)), "session_expired");
    let all = d.ok(&["session", "list", "--all"]);
    let row = all.as_array().unwrap().iter().find(|s| s["session_id"] == silent).unwrap();
    assert_eq!(row["state"], "expired", "{row}");
    assert_eq!(d.sql_count("SELECT count(*) FROM audit WHERE action = 'session.expire'"), 1);
    assert_eq!(d.sql_count("SELECT count(*) FROM outbox WHERE topic = 'events/session.expired'"), 1);
}

#[test]
fn reserved_seat_is_refused_to_an_operator_and_granted_to_a_supervisor() {
    let d = Daemon::start_with("[license]\nseats = 2\nreserved = { supervisor = 1 }");
    common::user(&d, "op1", &[]);
    common::user(&d, "op2", &[]);
    common::user(&d, "boss", &["supervisor"]);
    opened(&d, "op1", "panel-1");
    let r = open(&d, "op2", "panel-2");
    assert_eq!(err_code(&r), "license_limit_reached", "{r}");
    assert_eq!(r["error"]["in_use"], 1);
    // The refusal names the pools the caller could use: only the general one, full.
    assert_eq!(r["error"]["pools"], json!([{"pool": null, "seats": 1, "in_use": 1, "free": 0}]), "{r}");
    let r = open(&d, "boss", "office");
    assert_eq!(r["result"]["pool"], "supervisor", "{r}");
    assert_eq!(seats(&d), (2, 2));
    // The retained licence state says each pool's figures too.
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    let last: String = conn
        .query_row("SELECT payload FROM outbox WHERE topic = 'license' ORDER BY id DESC LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let license: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(license["free"], 0, "{license}");
    assert_eq!(
        license["pools"],
        json!([{"pool": null, "seats": 1, "in_use": 1, "free": 0}, {"pool": "supervisor", "seats": 1, "in_use": 1, "free": 0}]),
        "{license}"
    );
}

#[test]
fn same_user_same_host_shares_one_seat() {
    let d = Daemon::start_with("[license]\nseats = 1");
    common::user(&d, "op1", &[]);
    common::user(&d, "op2", &[]);
    let (first, first_token) = opened(&d, "op1", "panel-1");
    let r = open(&d, "op1", "panel-1");
    assert_eq!(r["result"]["shared_seat"], true, "{r}");
    assert_eq!(seats(&d), (1, 1));
    assert_eq!(err_code(&open(&d, "op1", "panel-2")), "license_limit_reached");
    assert_eq!(err_code(&open(&d, "op2", "panel-1")), "license_limit_reached");
    // The seat stays while one of the two clients is left.
    let closed = d.call_auth("session.close", Value::Null, json!({"token": first_token}));
    assert_eq!(closed["result"]["session_id"], first, "{closed}");
    assert_eq!(closed["result"]["seat_freed"], false);
    assert_eq!(seats(&d), (1, 1));
}

#[test]
fn supervisor_terminates_a_session_and_the_removal_sticks() {
    let d = Daemon::start_with("[license]\nseats = 3\nterminate_cooldown = \"1h\"");
    common::user(&d, "op1", &[]);
    common::user(&d, "night", &["supervisor"]);
    let (id, token) = opened(&d, "op1", "panel-1");
    let sup = common::token(&d, "night");

    let (code, list) = common::as_token(&d, &sup, &["session", "list"]);
    assert_eq!(code, 0, "{list}");
    assert_eq!(list[0]["user"], "op1");
    let (code, v) =
        common::as_token(&d, &sup, &["session", "terminate", &id.to_string(), "--reason", "stuck client on panel 1"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["seat_freed"], true);
    assert_eq!(seats(&d).0, 0);

    let r = beat(&d, &token);
    assert_eq!(err_code(&r), "session_terminated", "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("stuck client"), "{r}");
    let r = open(&d, "op1", "panel-1");
    assert_eq!(err_code(&r), "session_terminated", "{r}");
    assert!(r["error"]["retry_after_s"].as_i64().unwrap() > 3000, "{r}");
    // With the default cooldown scope ("user") another host name does not sidestep it.
    assert_eq!(err_code(&open(&d, "op1", "panel-9")), "session_terminated");

    let audit = d.ok(&["audit", "--limit", "200"]);
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "session.terminate")
        .unwrap_or_else(|| panic!("no terminate in the audit: {audit}"));
    assert_eq!(entry["actor"]["u"], "night", "{entry}");
    assert!(entry["detail"].to_string().contains("stuck client on panel 1"), "{entry}");
    assert_eq!(
        d.sql_count(&format!(
            "SELECT count(*) FROM outbox WHERE topic = 'sessions/{id}/control' AND payload LIKE '%terminate%'"
        )),
        1
    );
    // The event and the control message name the supervisor in the one actor shape.
    for topic in ["events/session.terminated".to_string(), format!("sessions/{id}/control")] {
        let conn = rusqlite::Connection::open(d.db_path()).unwrap();
        let payload: String =
            conn.query_row("SELECT payload FROM outbox WHERE topic = ?1", [&topic], |r| r.get(0)).unwrap();
        let v: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(v["by"], json!({"u": "night", "key_id": null}), "{topic}: {v}");
        assert_eq!(v["reason"], "stuck client on panel 1", "{topic}: {v}");
    }

    // That right and nothing more.
    let (code, v) = common::as_token(&d, &sup, &["settings", "set", "plant.name", "x"]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("forbidden")), "{v}");
    let (code, v) = common::as_token(&d, &sup, &["user", "add", "intruder"]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("forbidden")), "{v}");
    // And an operator cannot terminate.
    let op = common::token(&d, "op1");
    let (code, v) = common::as_token(&d, &op, &["session", "terminate", &id.to_string()]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("forbidden")), "{v}");
}

#[test]
fn disabling_or_deleting_a_user_terminates_its_sessions() {
    let d = Daemon::start_with("[license]\nseats = 3");
    common::user(&d, "op1", &[]);
    common::user(&d, "op2", &[]);
    let (_, t1) = opened(&d, "op1", "panel-1");
    let (_, t2) = opened(&d, "op2", "panel-2");
    let v = d.ok(&["user", "disable", "op1"]);
    assert_eq!(v["sessions_terminated"], 1, "{v}");
    assert_eq!(err_code(&beat(&d, &t1)), "session_terminated");
    let v = d.ok(&["user", "delete", "op2"]);
    assert_eq!(v["sessions_terminated"], 1, "{v}");
    assert_eq!(err_code(&beat(&d, &t2)), "session_terminated");
    assert_eq!(seats(&d).0, 0);
}

#[test]
fn sessions_survive_a_kill_and_restart_without_a_second_seat() {
    let d = &mut Daemon::start_with("[license]\nseats = 2\nheartbeat_timeout = \"5s\"");
    common::user(d, "op1", &[]);
    let (id, token) = opened(d, "op1", "panel-1");
    assert!(beat(d, &token)["result"].is_object());
    d.kill();
    d.restart();
    assert_eq!(seats(d), (1, 2));
    let r = beat(d, &token);
    assert_eq!(r["result"]["session_id"], id, "{r}");
    // Reopening on the same host shares the restored seat instead of taking a second one.
    let r = open(d, "op1", "panel-1");
    assert_eq!(r["result"]["shared_seat"], true, "{r}");
    assert_eq!(seats(d), (1, 2));
}

#[test]
fn session_that_lapsed_while_the_daemon_was_down_expires_on_start() {
    let d = &mut Daemon::start_with("[license]\nheartbeat_timeout = \"2s\"\npersist_interval = \"1s\"");
    common::user(d, "op1", &[]);
    let (_, token) = opened(d, "op1", "panel-1");
    d.stop();
    std::thread::sleep(Duration::from_millis(3500));
    d.restart();
    assert_eq!(seats(d).0, 0);
    assert_eq!(err_code(&beat(d, &token)), "session_expired");
}

#[test]
fn heartbeats_do_not_write_to_the_database() {
    let d = &mut Daemon::start_with("[license]\npersist_interval = \"1h\"");
    common::user(d, "op1", &[]);
    let (id, token) = opened(d, "op1", "panel-1");
    let q = format!("SELECT last_seen FROM sessions WHERE id = {id}");
    let before = d.sql_count(&q);
    let changes = d.sql_count("SELECT total_changes()");
    let wal = std::fs::metadata(d.state_dir().join("gatewarden.db-wal")).map(|m| m.len()).unwrap_or(0);
    let mut conn = d.connect().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    for _ in 0..200 {
        let r = conn.send(&json!({"id": 1, "method": "session.heartbeat", "auth": {"token": token}}));
        assert!(r["result"].is_object(), "{r}");
    }
    assert_eq!(d.sql_count(&q), before, "a heartbeat wrote last_seen");
    let wal_after = std::fs::metadata(d.state_dir().join("gatewarden.db-wal")).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_after, wal, "heartbeats grew the WAL");
    let _ = changes;
    // A clean stop writes the last beat.
    d.stop();
    assert!(d.sql_count(&q) > before);
}

#[test]
fn bad_session_requests_get_clear_errors() {
    let d = Daemon::start();
    let r = d.call("session.open", json!({"host": "panel-1"}));
    assert_eq!(err_code(&r), "bad_request");
    assert!(r["error"]["message"].as_str().unwrap().contains("type"), "{r}");
    let r = d.call("session.open", json!({"type": "  "}));
    assert_eq!(err_code(&r), "bad_request");
    let r = d.call("session.open", json!({"type": "hmi", "host": "x".repeat(500)}));
    assert_eq!(err_code(&r), "bad_request");
    // No credentials at all (over the socket as root, the admin opens; over an anonymous caller: refused).
    let r = d.call_auth("session.heartbeat", Value::Null, json!({"token": "gws_1.AAAA"}));
    assert_eq!(err_code(&r), "unauthenticated");
    let r = d.call("session.heartbeat", Value::Null);
    assert_eq!(err_code(&r), "unauthenticated");
    let r = d.call("session.terminate", json!({"session_id": 999}));
    assert_eq!(err_code(&r), "not_found");
    let (id, token) = {
        let r = d.call("session.open", json!({"type": "hmi"}));
        (r["result"]["session_id"].as_i64().unwrap(), r["result"]["token"].as_str().unwrap().to_string())
    };
    // A token with the right id and a wrong secret says nothing about the session.
    let forged = format!("gws_{id}.{}", "A".repeat(43));
    assert_eq!(err_code(&beat(&d, &forged)), "unauthenticated");
    let r = d.call_auth("session.open", json!({"type": "hmi"}), json!({"token": token}));
    assert_eq!(err_code(&r), "bad_request");
    d.ok(&["session", "terminate", &id.to_string()]);
    let r = d.call("session.terminate", json!({"session_id": id}));
    assert_eq!(err_code(&r), "conflict");
}

#[test]
fn ended_sessions_are_pruned_by_the_retention_count() {
    let d = &mut Daemon::start_with(
        "[retention]\naudit_max_rows = 100\n[license]\nseats = 200\nterminate_cooldown = \"1s\"",
    );
    let mut conn = d.connect().unwrap();
    for i in 0..120 {
        let r = conn.call("session.open", json!({"type": "hmi", "host": format!("panel-{i}")}));
        let token = r["result"]["token"].as_str().unwrap().to_string();
        let closed = conn.send(&json!({"id": 1, "method": "session.close", "auth": {"token": token}}));
        assert!(closed["result"].is_object(), "{closed}");
    }
    let (id, _) = {
        let r = d.call("session.open", json!({"type": "hmi", "host": "still-open"}));
        (r["result"]["session_id"].as_i64().unwrap(), ())
    };
    assert_eq!(d.sql_count("SELECT count(*) FROM sessions WHERE state = 'closed'"), 120);
    // Housekeeping runs at start and every minute; a restart is the quick way to see it.
    std::thread::sleep(Duration::from_millis(1100));
    d.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.sql_count("SELECT count(*) FROM sessions WHERE state = 'closed'") != 100 {
        assert!(Instant::now() < deadline, "ended sessions were not pruned to 100");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.sql_count(&format!("SELECT count(*) FROM sessions WHERE id = {id} AND state = 'open'")), 1);
}

#[test]
fn a_panel_sees_its_own_session_and_seat_with_its_token_but_not_another_users() {
    let d = Daemon::start_with("[license]\nseats = 3\nreserved = { supervisor = 1 }\nheartbeat_timeout = \"30s\"");
    common::user(&d, "op1", &[]);
    common::user(&d, "op2", &[]);
    common::user(&d, "boss", &["supervisor"]);
    // The HMI speaks the socket protocol on one connection: open, then ask with its session token.
    let mut hmi = d.connect().unwrap();
    let r = hmi.send(&json!({"id": 1, "method": "session.open", "auth": pw("op1"),
                             "params": {"type": "hmi", "project": "line1", "host": "panel-1"}}));
    let id = r["result"]["session_id"].as_i64().unwrap_or_else(|| panic!("{r}"));
    let token = r["result"]["token"].as_str().unwrap().to_string();
    let (other, _) = opened(&d, "op2", "panel-2");

    let r = hmi.send(&json!({"id": 2, "method": "session.show", "params": {}, "auth": {"token": token}}));
    let s = &r["result"];
    assert_eq!(
        (s["session_id"].as_i64(), s["user"].as_str(), s["type"].as_str(), s["host"].as_str(), s["state"].as_str()),
        (Some(id), Some("op1"), Some("hmi"), Some("panel-1"), Some("open")),
        "{r}"
    );
    assert_eq!(s["pool"], Value::Null, "{r}");
    // Its pool is the general one: two seats, both taken by op1 and op2.
    assert_eq!(s["seat_pool"], json!({"pool": null, "seats": 2, "in_use": 2, "free": 0}), "{r}");
    assert_eq!((s["heartbeat_s"].as_u64(), s["timeout_s"].as_u64()), (Some(10), Some(30)), "{r}");
    let expires = s["expires_at"].as_i64().unwrap();
    assert!(expires > s["last_seen_at"].as_i64().unwrap() + 25_000, "{r}");
    // Naming its own id is the same question.
    let r =
        hmi.send(&json!({"id": 3, "method": "session.show", "params": {"session_id": id}, "auth": {"token": token}}));
    assert_eq!(r["result"]["session_id"], id, "{r}");

    // Another user's session: forbidden without sessions.view, and nothing about it in the refusal.
    let r = hmi
        .send(&json!({"id": 4, "method": "session.show", "params": {"session_id": other}, "auth": {"token": token}}));
    assert_eq!(err_code(&r), "forbidden", "{r}");
    assert!(!r.to_string().contains("op2") && !r.to_string().contains("panel-2"), "{r}");
    // Without a session token there is no own session to show.
    let login = common::token(&d, "op1");
    let r = d.call_auth("session.show", json!({}), json!({"token": login}));
    assert_eq!(err_code(&r), "unauthenticated", "{r}");

    // A supervisor sees any session, from the CLI too; an ended one without its seat.
    let sup = common::token(&d, "boss");
    let (code, v) = common::as_token(&d, &sup, &["session", "show", &other.to_string()]);
    assert_eq!((code, v["user"].as_str(), v["shared_seat"].as_bool()), (0, Some("op2"), Some(false)), "{v}");
    d.ok(&["session", "terminate", &other.to_string(), "--reason", "panel swap"]);
    let (code, v) = common::as_token(&d, &sup, &["session", "show", &other.to_string()]);
    assert_eq!((code, v["state"].as_str(), v["reason"].as_str()), (0, Some("terminated"), Some("panel swap")), "{v}");
    assert_eq!((&v["seat_pool"], &v["expires_at"]), (&Value::Null, &Value::Null), "{v}");
    assert_eq!(v["ended_by"], json!({"u": "admin", "key_id": null}), "{v}");
    let (code, v) = common::as_token(&d, &sup, &["session", "show", "99999"]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("not_found")), "{v}");
    // The panel's own, from the CLI with its session token; the seat op2 freed is free again.
    let (code, v) = common::as_token(&d, &token, &["session", "show"]);
    assert_eq!((code, v["session_id"].as_i64()), (0, Some(id)), "{v}");
    assert_eq!(v["seat_pool"]["free"], 1, "{v}");
}

fn check_recipe(d: &Daemon, auth: &Value, access: &str) -> Value {
    d.call_auth("authz.check", json!({"permission": "recipe", "resource": "line/1", "access": access}), auth.clone())
}

fn open_as(d: &Daemon, user: &str, client_type: &str, host: &str, read_only: Option<bool>) -> Value {
    let mut p = json!({"type": client_type, "host": host});
    if let Some(ro) = read_only {
        p["read_only"] = json!(ro);
    }
    d.call_auth("session.open", p, pw(user))
}

#[test]
fn with_no_read_write_seat_free_a_client_takes_a_read_only_one_whose_writes_are_refused() {
    let d = &mut Daemon::start_with("[license]\nseats = 1\nread_only_seats = 1\nheartbeat_timeout = \"30s\"");
    d.ok(&["resource", "add", "line/1", "--kind", "device"]);
    d.ok(&["role", "add", "recipes"]);
    d.ok(&["role", "grant", "recipes", "recipe", "--read", "--resource", "line/*"]);
    d.ok(&["role", "grant", "recipes", "recipe", "--write", "--resource", "line/*"]);
    for u in ["op1", "op2", "op3"] {
        common::user(d, u, &["recipes"]);
    }
    let first = open_as(d, "op1", "hmi", "panel-1", None);
    assert_eq!(first["result"]["read_only"], false, "{first}");
    // op3's client must write: refused rather than given a read-only seat.
    let must_write = open_as(d, "op3", "hmi", "panel-3", Some(false));
    assert_eq!(err_code(&must_write), "license_limit_reached", "{must_write}");
    let second = open_as(d, "op2", "hmi", "panel-2", None);
    assert_eq!(second["result"]["read_only"], true, "{second}");
    let ro = json!({"token": second["result"]["token"]});
    let rw = json!({"token": first["result"]["token"]});
    assert_eq!(check_recipe(d, &ro, "read")["result"]["decision"], "allow", "reads are never refused");
    let refused = check_recipe(d, &ro, "write");
    assert_eq!(err_code(&refused), "read_only_seat", "{refused}");
    assert_eq!(check_recipe(d, &rw, "write")["result"]["decision"], "allow");
    // A write-class method with the read-only session's token is refused before it runs.
    let create = json!({"kind": "recipe", "resource": "line/1", "name": "batch-7"});
    let r = d.call_auth("object.create", create.clone(), ro.clone());
    assert_eq!(err_code(&r), "read_only_seat", "{r}");
    assert!(d.call_auth("object.create", create, rw)["result"]["id"].is_i64());
    // Both kinds of seat are shown, in status and in the session list.
    let license = &d.ok(&["status"])["seats"];
    assert_eq!(license["read_only"], json!({"seats": 1, "in_use": 1, "free": 0}), "{license}");
    let third = open_as(d, "op3", "hmi", "panel-3", None);
    assert_eq!(err_code(&third), "license_limit_reached", "{third}");
    assert_eq!(third["error"]["read_only"]["in_use"], 1, "{third}");
    let listed = d.ok(&["session", "list"]);
    let modes: Vec<(&str, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["user"].as_str().unwrap(), s["read_only"].as_bool().unwrap()))
        .collect();
    assert_eq!(modes, [("op1", false), ("op2", true)]);
    // A restart gives the session back its read-only seat.
    d.kill();
    d.restart();
    assert_eq!(err_code(&check_recipe(d, &ro, "write")), "read_only_seat");
    assert_eq!(d.ok(&["status"])["seats"]["read_only"]["in_use"], 1);
}

#[test]
fn a_wall_display_asks_for_a_read_only_seat_and_leaves_the_read_write_one() {
    let d = Daemon::start_with("[license]\nseats = 1\nread_only_seats = 1");
    for u in ["wall", "op1"] {
        common::user(&d, u, &[]);
    }
    let wall = open_as(&d, "wall", "display", "hall", Some(true));
    assert_eq!(wall["result"]["read_only"], true, "{wall}");
    let op = open_as(&d, "op1", "hmi", "panel-1", Some(false));
    assert_eq!(op["result"]["read_only"], false, "{op}");
    // Without read-only seats configured, asking for one is refused with the figures.
    let d2 = Daemon::start_with("[license]\nseats = 2");
    common::user(&d2, "wall", &[]);
    let r = open_as(&d2, "wall", "display", "hall", Some(true));
    assert_eq!(err_code(&r), "license_limit_reached", "{r}");
}

#[test]
fn clients_of_one_type_hold_at_most_its_seats() {
    let d = Daemon::start_with("[license]\nseats = 3\ntypes = { vision = 1, perspective = 2 }");
    for u in ["op1", "op2", "op3"] {
        common::user(&d, u, &[]);
    }
    assert!(open_as(&d, "op1", "vision", "panel-1", None)["result"]["session_id"].is_i64());
    let r = open_as(&d, "op2", "Vision", "panel-2", None);
    assert_eq!(err_code(&r), "license_limit_reached", "{r}");
    assert_eq!(r["error"]["client_type"], json!({"type": "vision", "seats": 1, "in_use": 1, "free": 0}), "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("\"vision\""), "{r}");
    assert!(open_as(&d, "op2", "perspective", "panel-2", None)["result"]["session_id"].is_i64());
    let types = &d.ok(&["status"])["seats"]["types"];
    let used: Vec<(&str, u64)> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["type"].as_str().unwrap(), t["in_use"].as_u64().unwrap()))
        .collect();
    assert_eq!(used, [("perspective", 1), ("vision", 1)]);
    // The same user's second client on the same host shares its seat, whatever the type.
    assert_eq!(open_as(&d, "op1", "vision", "panel-1", None)["result"]["shared_seat"], true);
}

/// Regression: a session opened with a login token outlived that token's revocation (logout), though
/// a credential is exactly as good as what it came from. It ends with the token, after a restart too;
/// a session opened with the password does not.
#[test]
fn logging_out_ends_the_sessions_opened_with_that_login_token() {
    let d = &mut Daemon::start_with("[license]\nseats = 3\nheartbeat_timeout = \"30s\"");
    common::user(d, "op1", &[]);
    let login = common::token(d, "op1");
    let by_token = d.call_auth("session.open", json!({"type": "hmi", "host": "panel-1"}), json!({"token": login}));
    let by_token = by_token["result"]["token"].as_str().unwrap_or_else(|| panic!("{by_token}")).to_string();
    let (_, by_password) = opened(d, "op1", "panel-2");
    d.kill();
    d.restart();
    let out = d.call_auth("logout", Value::Null, json!({"token": login}));
    assert_eq!(out["result"]["sessions_terminated"], 1, "{out}");
    assert_eq!(err_code(&beat(d, &by_token)), "session_terminated");
    assert!(beat(d, &by_password)["result"].is_object(), "the password's session stays");
    assert_eq!(seats(d), (1, 3));
}
