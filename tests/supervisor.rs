//! The supervisor lock and broadcasts through the real daemon, with EVA ICS semantics: the full scope
//! table (l and c in {any, key, user} x five kinds of caller), reads never blocked, restart
//! behaviour, expiry, forging rules, and the CLI.

mod common;

use common::{Daemon, as_token, token, user};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A plant with a lock owner `boss` (user) and `boss-key` (API key), another supervisor, an operator
/// and a master key. Everyone but the master gets the operators' write grant, so the grants allow
/// every write below and only the lock can refuse it.
struct Plant {
    d: Daemon,
    callers: Vec<(&'static str, Value)>,
    master: Value,
}

fn plant(extra: &str) -> Plant {
    let d = Daemon::start_with(extra);
    d.ok(&["role", "add", "operators"]);
    d.ok(&["role", "grant", "operators", "tag.write", "--write", "--resource", "line1/*"]);
    d.ok(&["role", "grant", "operators", "tag.read", "--read", "--resource", "line1/*"]);
    d.ok(&["role", "grant", "operators", "settings.manage", "--write", "--resource", "*"]);
    user(&d, "boss", &["supervisor", "operators"]);
    user(&d, "other", &["supervisor", "operators"]);
    user(&d, "op", &["operators"]);
    let key = d.ok(&["key", "add", "boss-key", "--role", "supervisor", "--role", "operators"]);
    let other_key = d.ok(&["key", "add", "other-key", "--role", "supervisor", "--role", "operators"]);
    let master = d.ok(&["key", "add", "m", "--master"]);
    let callers = vec![
        ("same user", json!({"token": token(&d, "boss")})),
        ("same key", json!({"key": key["key"]})),
        ("other supervisor", json!({"token": token(&d, "other")})),
        ("non-supervisor", json!({"token": token(&d, "op")})),
        ("master", json!({"key": master["key"]})),
        ("other key", json!({"key": other_key["key"]})),
    ];
    Plant { master: json!({"key": master["key"]}), d, callers }
}

impl Plant {
    fn call(&self, auth: &Value, method: &str, params: Value) -> Value {
        self.d.call_auth(method, params, auth.clone())
    }

    /// The master sets a lock owned by boss / boss-key with scopes l and c.
    fn lock_by_master(&self, l: Value, c: Value) {
        let r = self.call(
            &self.master,
            "supervisor.lock",
            json!({"l": l, "c": c, "o": {"u": "boss", "key_id": "boss-key"}, "reason": "line 1 maintenance"}),
        );
        assert!(r["result"]["since"].is_i64(), "master lock: {r}");
    }

    fn unlocked(&self) -> bool {
        self.d.ok(&["status"])["supervisor_lock"].is_null()
    }
}

/// true when the reply is a result; false for supervisor_locked / forbidden; anything else fails.
fn passed(what: &str, r: &Value) -> bool {
    if r.get("result").is_some() {
        return true;
    }
    let code = r["error"]["code"].as_str().unwrap_or_default();
    assert!(code == "supervisor_locked" || code == "forbidden", "{what}: unexpected {r}");
    false
}

const T: bool = true;
const F: bool = false;

#[test]
fn scope_table_who_may_write_clear_and_replace() {
    let p = plant("");
    // For each (l, c): [same user, same key, other supervisor, non-supervisor, master, other
    // supervisor's key].
    #[rustfmt::skip]
    let table: [(Value, Value, [bool; 6], [bool; 6]); 9] = [
        //   l            c            may write                    may clear / replace
        (Value::Null, Value::Null, [T, T, T, F, T, T], [T, T, T, F, T, T]),
        (Value::Null, json!("k"),  [T, T, T, F, T, T], [F, T, F, F, T, F]),
        (Value::Null, json!("u"),  [T, T, T, F, T, T], [T, F, F, F, T, F]),
        (json!("k"),  Value::Null, [F, T, F, F, T, F], [T, T, T, F, T, T]),
        (json!("k"),  json!("k"),  [F, T, F, F, T, F], [F, T, F, F, T, F]),
        (json!("k"),  json!("u"),  [F, T, F, F, T, F], [T, F, F, F, T, F]),
        (json!("u"),  Value::Null, [T, F, F, F, T, F], [T, T, T, F, T, T]),
        (json!("u"),  json!("k"),  [T, F, F, F, T, F], [F, T, F, F, T, F]),
        (json!("u"),  json!("u"),  [T, F, F, F, T, F], [T, F, F, F, T, F]),
    ];
    let subjects = ["boss", "key:boss-key", "other", "op", "key:m", "key:other-key"];
    for (l, c, write, clear) in table {
        p.lock_by_master(l.clone(), c.clone());
        for (i, (who, auth)) in p.callers.iter().enumerate() {
            let case = format!("l={l} c={c} caller={who}");
            let check = json!({"subject": subjects[i], "permission": "tag.write", "resource": "line1/press3", "access": "write"});
            let r = p.call(auth, "authz.check", check.clone());
            assert_eq!(passed(&case, &r), write[i], "write check, {case}: {r}");
            if write[i] {
                assert_eq!(r["result"]["decision"], "allow", "{case}: {r}");
            } else {
                assert_eq!(r["error"]["code"], "supervisor_locked", "{case}: {r}");
                assert!(r["error"]["message"].as_str().unwrap().contains("boss"), "{case}: {r}");
            }
            let r = p.call(auth, "settings.set", json!({"key": "plant.mode", "value": who}));
            assert_eq!(passed(&case, &r), write[i], "settings.set, {case}: {r}");
            // Reads are never blocked.
            let mut read = check.clone();
            read["permission"] = json!("tag.read");
            read["access"] = json!("read");
            let r = p.call(auth, "authz.check", read);
            assert_eq!(r["result"]["decision"], "allow", "read, {case}: {r}");
            let r = p.call(auth, "settings.get", json!({"key": "plant.mode"}));
            assert!(r["result"].is_object(), "settings.get, {case}: {r}");
        }
        for (i, (who, auth)) in p.callers.iter().enumerate() {
            let case = format!("l={l} c={c} caller={who}");
            p.lock_by_master(l.clone(), c.clone());
            let r = p.call(auth, "supervisor.unlock", Value::Null);
            assert_eq!(passed(&case, &r), clear[i], "unlock, {case}: {r}");
            assert_eq!(p.unlocked(), clear[i], "lock state after unlock, {case}");

            p.lock_by_master(l.clone(), c.clone());
            let r = p.call(auth, "supervisor.lock", json!({"reason": format!("taken over by {who}")}));
            assert_eq!(passed(&case, &r), clear[i], "replace, {case}: {r}");
            let now = p.d.ok(&["status"])["supervisor_lock"].clone();
            let expected_reason = if clear[i] { format!("taken over by {who}") } else { "line 1 maintenance".into() };
            assert_eq!(now["reason"], expected_reason.as_str(), "lock after replace, {case}: {now}");
        }
        p.call(&p.master, "supervisor.unlock", Value::Null);
        assert!(p.unlocked());
    }
}

#[test]
fn explain_says_the_lock_decided_and_unlocking_restores_writes() {
    let p = plant("");
    let op = &p.callers[3].1;
    let q = json!({"permission": "tag.write", "resource": "line1/press3", "access": "write"});
    assert_eq!(p.call(op, "authz.check", q.clone())["result"]["decision"], "allow");
    let boss = &p.callers[0].1;
    let r = p.call(boss, "supervisor.lock", json!({"l": "u", "reason": "commissioning"}));
    assert_eq!(r["result"]["o"], json!({"u": "boss", "key_id": null}), "{r}");
    let r = p.call(op, "authz.explain", q.clone());
    let res = &r["result"];
    assert_eq!(res["decision"], "deny", "{r}");
    assert_eq!(res["reason"], "supervisor_locked", "{r}");
    assert_eq!(res["grants_decision"]["decision"], "allow", "{r}");
    assert!(!res["matched"].as_array().unwrap().is_empty(), "{r}");
    // The CLI: check exits 1 with the error.
    let t = p.callers[3].1["token"].as_str().unwrap();
    let (code, v) = as_token(&p.d, t, &["check", "op", "tag.write", "line1/press3", "--write"]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("supervisor_locked")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("commissioning"), "{v}");
    assert_eq!(p.call(boss, "supervisor.unlock", Value::Null)["result"]["unlocked"], true);
    assert_eq!(p.call(op, "authz.check", q)["result"]["decision"], "allow");
}

#[test]
fn owner_and_scopes_are_checked_when_a_lock_is_set() {
    let p = plant("");
    let (boss, key, op) = (&p.callers[0].1, &p.callers[1].1, &p.callers[3].1);
    let forged = json!({"o": {"u": "other", "key_id": null}});
    let r = p.call(boss, "supervisor.lock", forged.clone());
    assert_eq!(r["error"]["code"], "forbidden", "{r}");
    let r = p.call(key, "supervisor.lock", json!({"l": "u"}));
    assert_eq!(r["error"]["code"], "bad_request", "a key cannot set a same-user scope: {r}");
    let r = p.call(boss, "supervisor.lock", json!({"c": "k"}));
    assert_eq!(r["error"]["code"], "bad_request", "a user token cannot set a same-key scope: {r}");
    let r = p.call(boss, "supervisor.lock", json!({"l": "x"}));
    assert_eq!(r["error"]["code"], "bad_request", "{r}");
    let r = p.call(op, "supervisor.lock", json!({}));
    assert_eq!(r["error"]["code"], "forbidden", "an operator cannot lock: {r}");
    assert!(p.unlocked());
    let r = p.call(&p.master, "supervisor.lock", forged);
    assert_eq!(r["result"]["o"]["u"], "other", "{r}");
    let r = p.call(key, "supervisor.lock", json!({"l": "k", "c": "k"}));
    assert_eq!(r["result"]["o"], json!({"u": null, "key_id": "boss-key"}), "{r}");
    assert_eq!(p.d.sql_count("SELECT count(*) FROM outbox WHERE topic = 'supervisor/lock' AND retain = 1"), 2);
    assert_eq!(p.d.sql_count("SELECT count(*) FROM outbox WHERE topic = 'events/supervisor.lock'"), 2);
    // Refusals are counted into rows and written by `audit.list` at the latest.
    p.d.ok(&["audit", "--limit", "1"]);
    let denied = "SELECT sum(json_extract(detail, '$.count')) FROM audit WHERE action = 'supervisor.lock' AND outcome = 'denied'";
    assert!(p.d.sql_count(denied) >= 2);
}

#[test]
fn a_lock_is_cleared_by_restart_unless_it_survives_restarts() {
    let d = &mut Daemon::start();
    d.ok(&["lock", "set", "--reason", "shift change"]);
    assert_eq!(d.ok(&["lock", "show"])["locked"], true);
    d.restart();
    assert_eq!(d.ok(&["lock", "show"])["locked"], false);
    // Cleared by the daemon itself (nobody: `-`), and the event says why in its closed set.
    assert_eq!(
        d.sql_count(
            "SELECT count(*) FROM audit WHERE action = 'supervisor.unlock' AND actor = '-' AND source = 'daemon'
             AND json_extract(detail, '$.cause') = 'restart'"
        ),
        1
    );
    assert_eq!(
        d.sql_count(
            "SELECT count(*) FROM outbox WHERE topic = 'events/supervisor.unlock'
             AND json_extract(payload, '$.cause') = 'restart' AND json_extract(payload, '$.by.u') IS NULL
             AND json_extract(payload, '$.lock.reason') = 'shift change'"
        ),
        1
    );

    let d = &mut Daemon::start_with("[supervisor]\nlock_survives_restart = true");
    d.ok(&["lock", "set", "--reason", "shift change", "--lock-scope", "user"]);
    d.kill();
    d.restart();
    let v = d.ok(&["lock", "show"]);
    assert_eq!(v["lock"]["reason"], "shift change", "{v}");
    assert_eq!(v["lock"]["l"], "u", "{v}");
    assert_eq!(v["lock"]["o"]["u"], "admin", "{v}");
    assert!(d.ok(&["status"])["supervisor_lock"]["since"].is_i64());
}

#[test]
fn a_lock_with_expires_in_clears_itself_and_says_so() {
    let d = Daemon::start();
    let v = d.ok(&["lock", "set", "--expires-in", "1s"]);
    assert!(v["expires_at"].as_i64().unwrap() > v["since"].as_i64().unwrap(), "{v}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.ok(&["lock", "show"])["locked"] == true {
        assert!(Instant::now() < deadline, "the lock never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    let audit = d.ok(&["audit", "--limit", "20"]);
    let e = audit.as_array().unwrap().iter().find(|e| e["action"] == "supervisor.unlock").unwrap();
    assert_eq!((&e["actor"], &e["source"]), (&json!({"u": null, "key_id": null}), &json!("daemon")), "{e}");
    assert!(e["detail"].to_string().contains("expired"), "{e}");
    assert_eq!(d.sql_count("SELECT count(*) FROM outbox WHERE topic = 'supervisor/lock' AND payload = 'null'"), 1);
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    let event: String = conn
        .query_row("SELECT payload FROM outbox WHERE topic = 'events/supervisor.unlock'", [], |r| r.get(0))
        .unwrap();
    let event: Value = serde_json::from_str(&event).unwrap();
    assert_eq!((&event["by"], &event["cause"]), (&json!({"u": null, "key_id": null}), &json!("expired")), "{event}");
    assert!(event.get("why").is_none(), "{event}");
}

#[test]
fn broadcasts_go_to_the_outbox_and_only_a_master_names_the_sender() {
    let p = plant("");
    let (boss, op) = (&p.callers[0].1, &p.callers[3].1);
    let r = p.call(boss, "supervisor.message", json!({"text": "Line 1 stops at 14:00 for maintenance"}));
    assert_eq!(r["result"]["sender"], json!({"u": "boss", "key_id": null}), "{r}");
    assert!(r["result"]["ts"].is_i64());
    let r = p.call(boss, "supervisor.message", json!({"text": "hi", "sender": {"u": "other", "key_id": null}}));
    assert_eq!(r["error"]["code"], "forbidden", "{r}");
    let r = p.call(
        &p.master,
        "supervisor.message",
        json!({"text": "from ops", "sender": {"u": "ops-desk", "key_id": null}}),
    );
    assert_eq!(r["result"]["sender"]["u"], "ops-desk", "{r}");
    let r = p.call(op, "supervisor.message", json!({"text": "hello"}));
    assert_eq!(r["error"]["code"], "forbidden", "{r}");
    for bad in [json!({"text": ""}), json!({"text": "   "}), json!({"text": "x".repeat(1001)}), json!({})] {
        let r = p.call(boss, "supervisor.message", bad.clone());
        assert_eq!(r["error"]["code"], "bad_request", "{bad}: {r}");
    }
    assert_eq!(p.d.sql_count("SELECT count(*) FROM outbox WHERE topic = 'supervisor/message'"), 2);
    assert_eq!(p.d.sql_count("SELECT count(*) FROM audit WHERE action = 'supervisor.message' AND outcome = 'ok'"), 2);
    // And from the console.
    let v = p.d.ok(&["broadcast", "shift handover in 10 minutes"]);
    assert_eq!(v["text"], "shift handover in 10 minutes");
}
