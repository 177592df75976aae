//! Security properties through the real daemon: every method of the dispatcher refuses a caller without
//! the permission it needs (generated over the method table, so a new method cannot forget its check),
//! login timing does not tell known from unknown users, and no secret reaches the database, the audit
//! trail or the log in clear.

mod common;

use common::{Daemon, PW, token, user};
use gatewarden::api::routes::{Needs, ROUTES};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// What an account with no roles and no grants gets from each method, with params that are valid
/// apart from the permission. Every method of the dispatcher must be listed: a new method fails this
/// test until its author says here what an unprivileged caller gets.
/// A refusal by the handler, from the caller's own rights on what the params name (the kind and
/// resource of `object.create`): `forbidden`, though the route table lets every account in.
const HANDLER_FORBIDS: &str = "forbidden (handler)";

fn expectation(method: &str) -> Option<(Value, &'static str)> {
    let forbidden = "forbidden";
    Some(match method {
        // Open to every authenticated caller.
        "status" => (json!({}), "ok"),
        "login" => (json!({"user": "nobody", "password": PW}), "ok"),
        "logout" => (json!({}), "ok"),
        "user.show" => (json!({}), "ok"),
        "user.set_password" => (json!({"password": "another-password-1", "current_password": PW}), "ok"),
        "user.register" => (json!({"name": "newbie", "password": PW}), "registration_disabled"),
        "authz.check" => (json!({"permission": "tag.write", "resource": "line1/p1", "access": "write"}), "ok"),
        "authz.explain" => (json!({"permission": "tag.write", "resource": "line1/p1"}), "ok"),
        // Own questions are free; one about another account is refused in its slot, not at the door.
        "authz.check_many" => (
            json!({"checks": [{"permission": "tag.write", "resource": "line1/p1"}, {"subject": "victim", "permission": "tag.read", "resource": "line1/p1"}]}),
            "ok",
        ),
        "authz.allowed" => (json!({"permission": "tag.read", "resources": ["line1/p1"]}), "ok"),
        "settings.get" => (json!({}), "ok"),
        // Objects: the caller's own rights decide, in the handler; one it may not read is not found.
        "object.create" => (json!({"kind": "tag.read", "resource": "line1/p1", "name": "x"}), HANDLER_FORBIDS),
        "object.show" | "object.delete" => (json!({"id": 1}), "not_found"),
        "object.list" => (json!({}), "ok"),
        // The inventory is what every HMI shows: readable by any account.
        "resource.list" | "group.list" => (json!({}), "ok"),
        "session.open" => (json!({"type": "hmi", "host": "panel-1"}), "ok"),
        // Session methods act on the caller's own session: without one, there is nothing to act on.
        "session.heartbeat" | "session.close" | "session.show" => (json!({}), "unauthenticated"),
        // Privileged.
        "audit.list" => (json!({}), forbidden),
        "user.create" => (json!({"name": "x1", "password": PW}), forbidden),
        "user.import" => (json!({"csv": "name\nx2\n"}), forbidden),
        "user.list" => (json!({}), forbidden),
        "user.update" => (json!({"name": "victim", "display_name": "pwned"}), forbidden),
        "user.disable" | "user.enable" | "user.delete" => (json!({"name": "victim"}), forbidden),
        "user.copy_roles" => (json!({"from": "victim", "to": "nobody"}), forbidden),
        "user.unlock" => (json!({"name": "victim"}), forbidden),
        "key.create" => (json!({"name": "k1"}), forbidden),
        "key.list" => (json!({}), forbidden),
        "key.revoke" => (json!({"name": "victim-key"}), forbidden),
        "role.create" => (json!({"name": "r1"}), forbidden),
        "role.import" => (json!({"csv": "name\nr2\n"}), forbidden),
        "role.list" => (json!({}), forbidden),
        "role.show" | "role.delete" => (json!({"name": "operators"}), forbidden),
        "role.grant" => (json!({"role": "operators", "permission": "tag.write", "write": true}), forbidden),
        "role.revoke" => (json!({"role": "operators", "permission": "tag.read"}), forbidden),
        "resource.add" => (json!({"id": "line1/p9", "kind": "device"}), forbidden),
        "resource.delete" => (json!({"id": "line1/p1"}), forbidden),
        "resource.import" => (json!({"csv": "device\nline1/p8\n"}), forbidden),
        "group.create" => (json!({"name": "g1"}), forbidden),
        "group.add" | "group.remove" => (json!({"group": "presses", "resources": ["line1/p1"]}), forbidden),
        "group.import" => (json!({"group": "presses", "csv": "device\nline1/p1\n"}), forbidden),
        "group.delete" => (json!({"name": "presses"}), forbidden),
        "authz.who_can" => (json!({"permission": "tag.write", "resource": "line1/p1"}), forbidden),
        "settings.set" => (json!({"key": "plant.name", "value": "x"}), forbidden),
        "object.who_can" => (json!({"id": 1}), forbidden),
        "object.grant" | "object.revoke" => (json!({"id": 1, "user": "nobody"}), forbidden),
        "session.list" => (json!({}), forbidden),
        "session.terminate" => (json!({"session_id": 1, "reason": "x"}), forbidden),
        "supervisor.lock" => (json!({}), forbidden),
        "supervisor.unlock" => (json!({}), forbidden),
        "supervisor.message" => (json!({"text": "hello"}), forbidden),
        "directory.test" => (json!({"user": "jsmith"}), forbidden),
        "directory.sync" => (json!({}), forbidden),
        // Superuser only: a policy document moves every right there is.
        "policy.export" => (json!({}), forbidden),
        "policy.plan" | "policy.apply" => (json!({"policy": {"version": 1, "users": {}}, "prune": true}), forbidden),
        _ => return None,
    })
}

#[test]
fn every_method_refuses_a_caller_without_its_permission() {
    let d = Daemon::start();
    d.ok(&["role", "add", "operators"]);
    d.ok(&["role", "grant", "operators", "tag.read", "--read", "--resource", "line1/*"]);
    d.ok(&["resource", "add", "line1/p1", "--kind", "device"]);
    d.ok(&["group", "add", "presses"]);
    user(&d, "victim", &["operators"]);
    d.ok(&["key", "add", "victim-key"]);
    user(&d, "nobody", &[]);
    // Object 1: the admin's, which `nobody` may not read (`victim` may, through operators).
    d.ok(&["object", "create", "tag.read", "line1/p1", "victim's recipe"]);
    let victim_session = d.call_auth("session.open", json!({"type": "hmi"}), json!({"user": "victim", "password": PW}));
    assert!(victim_session["result"]["session_id"].is_i64(), "{victim_session}");

    let missing: Vec<&str> = ROUTES.iter().map(|r| r.name).filter(|m| expectation(m).is_none()).collect();
    assert!(missing.is_empty(), "methods with no expectation for an unprivileged caller: {missing:?}");
    // The table and this list agree: a method the table guards with a permission is forbidden here,
    // and one it leaves to its handler is not refused at the door.
    for r in ROUTES {
        let forbidden_here = expectation(r.name).is_some_and(|(_, e)| e == "forbidden");
        assert_eq!(
            forbidden_here,
            matches!(r.needs, Needs::Permission(_) | Needs::Superuser),
            "{}: {:?}",
            r.name,
            r.needs
        );
    }

    let mut forbidden = 0;
    for method in ROUTES.iter().map(|r| r.name) {
        let (params, expected) = expectation(method).unwrap();
        // A fresh token each time: logout and set_password revoke the caller's tokens.
        let login = d.call("login", json!({"user": "nobody", "password": PW}));
        let auth = json!({"token": login["result"]["token"]});
        let r = d.call_auth(method, params, auth);
        let got = if r.get("result").is_some() { "ok" } else { r["error"]["code"].as_str().unwrap_or("?") };
        let expected = if expected == HANDLER_FORBIDS { "forbidden" } else { expected };
        assert_eq!(got, expected, "{method}: {r}");
        if expected == "forbidden" {
            forbidden += 1;
        }
        if method == "user.set_password" {
            // Put the password back for the next calls.
            d.ok(&["call", "user.set_password", &json!({"name": "nobody", "password": PW}).to_string()]);
        }
    }
    // Nothing changed hands, and every refusal is on the record.
    let v = d.ok(&["user", "show", "victim"]);
    assert_eq!(v["enabled"], true, "{v}");
    assert_ne!(v["display_name"], "pwned", "{v}");
    assert_eq!(d.ok(&["session", "list"]).as_array().unwrap().len(), 2);
    let o = d.ok(&["object", "show", "1"]);
    assert_eq!(o["owner"], "admin", "{o}");
    let readers = d.ok(&["object", "who-can", "1"]);
    assert!(!readers["readers"].as_array().unwrap().iter().any(|r| r["user"] == "nobody"), "{readers}");
    // Refusals are counted into rows per (actor, action, code) and written by `audit.list` at the latest.
    d.ok(&["audit", "--limit", "1"]);
    let denied = d.sql_count(
        "SELECT coalesce(sum(json_extract(detail, '$.count')), 0) FROM audit WHERE outcome = 'denied' AND actor = 'user:nobody'",
    );
    assert!(denied >= forbidden, "{denied} denied audit rows for {forbidden} refusals");
}

#[test]
fn login_takes_as_long_for_unknown_users_as_for_known_ones() {
    // A real argon2 cost (8 MiB; the test binary is unoptimised, so this takes longer than the default
    // does in a release build), so the hash, not process noise, stands beside the 100 ms first-failure
    // delay that both answers carry. Without the dummy verification unknown users would answer in
    // little more than the delay.
    let d = Daemon::start_with("[accounts.argon2]\nmemory_kib = 8192\niterations = 1");
    const N: usize = 6;
    for i in 0..N {
        user(&d, &format!("known{i}"), &[]);
    }
    let mut conn = d.connect().unwrap();
    let mut login = |name: String| {
        let t = Instant::now();
        let r =
            conn.send(&json!({"id": 1, "method": "login", "params": {"user": name, "password": "wrong-password-1"}}));
        assert_eq!(r["error"]["code"], "invalid_credentials", "{r}");
        t.elapsed()
    };
    // Interleaved, one failure per account, so the growing delay is the same for both.
    let (mut known, mut unknown): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
    for i in 0..N {
        known.push(login(format!("known{i}")));
        unknown.push(login(format!("ghost{i}")));
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[N / 2].as_secs_f64(), unknown[N / 2].as_secs_f64());
    // Within noise; a skipped hash shows as a ratio well under 0.6.
    assert!(u / k > 0.6 && u / k < 1.6, "median known {k:.4}s vs unknown {u:.4}s");
}

#[test]
fn no_secret_reaches_the_database_the_audit_or_the_log_in_clear() {
    let d = &mut Daemon::start();
    user(d, "alice", &["supervisor"]);
    let login = token(d, "alice");
    let key = d.ok(&["key", "add", "plc1"])["key"].as_str().unwrap().to_string();
    let session = d.call_auth("session.open", json!({"type": "hmi"}), json!({"user": "alice", "password": PW}));
    let session = session["result"]["token"].as_str().unwrap().to_string();
    d.ok(&["call", "user.set_password", &json!({"name": "alice", "password": "second-secret-pw"}).to_string()]);
    d.stop();
    let mut haystack = Vec::new();
    for f in ["gatewarden.db", "gatewarden.db-wal"] {
        haystack.extend(std::fs::read(d.state_dir().join(f)).unwrap_or_default());
    }
    haystack.extend(d.log().into_bytes());
    let secrets = [PW, "second-secret-pw", secret_body(&login), secret_body(&key), secret_body(&session)];
    for s in secrets {
        assert!(!haystack.windows(s.len()).any(|w| w == s.as_bytes()), "{s:?} found in clear");
    }
}

/// The random part of a bearer secret `<prefix>_<id>.<body>`.
fn secret_body(s: &str) -> &str {
    s.split_once('.').map(|(_, b)| b).unwrap()
}

/// The CLI's `call` and the daemon read the same route table: every method is listed, and an unknown
/// one is refused with a pointer to the list.
#[test]
fn call_lists_every_route_and_unknown_methods_are_refused_on_both_sides() {
    let d = Daemon::start();
    let list = d.ok(&["call", "--list"]);
    let listed: Vec<&str> = list.as_array().unwrap().iter().map(|m| m["method"].as_str().unwrap()).collect();
    let table: Vec<&str> = ROUTES.iter().map(|r| r.name).collect();
    assert_eq!(listed, table);
    let e = d.refused(&["call", "user.nuke"], "bad_request");
    assert!(e["message"].as_str().unwrap().contains("call --list"), "{e}");
}
