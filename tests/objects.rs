//! Objects through the real daemon (SPEC "Objects and historical access"): historical rights in the
//! WICE way (kept after the grant goes, never for objects created after), who may read and why,
//! explicit readers on many objects all or nothing, objects deleted or reassigned with their owner,
//! bad input refused with nothing changed, and a restart that keeps every answer.

mod common;

use common::mqtt::{Broker, Hmi, daemon, wait_connected};
use common::*;
use serde_json::json;

/// A WCU with state-of-health assignments: `tech` may write them, the role `soh` may read them.
fn plant(d: &Daemon) {
    d.ok(&["resource", "add", "wcu/7", "--kind", "device"]);
    d.ok(&["resource", "add", "wcu/8", "--kind", "device"]);
    d.ok(&["role", "add", "soh"]);
    d.ok(&["role", "grant", "soh", "assignment.soh", "--read", "--resource", "wcu/*"]);
    d.ok(&["role", "add", "soh-writer"]);
    d.ok(&["role", "grant", "soh-writer", "assignment.soh", "--write", "--resource", "wcu/*"]);
    user(d, "tech", &["soh-writer"]);
    user(d, "ann", &["soh"]);
    user(d, "bob", &["soh"]);
    user(d, "carol", &[]);
}

fn create(d: &Daemon, token: &str, resource: &str, name: &str) -> i64 {
    let (code, v) = as_token(d, token, &["object", "create", "assignment.soh", resource, name]);
    assert_eq!(code, 0, "{v}");
    v["id"].as_i64().unwrap()
}

fn reads(d: &Daemon, token: &str, id: i64) -> bool {
    let (code, v) = as_token(d, token, &["object", "show", &id.to_string()]);
    match code {
        0 => true,
        _ => {
            assert_eq!(v["error"]["code"], "not_found", "{v}");
            false
        }
    }
}

/// The reasons `object.who_can` gives for each listed user.
fn readers(d: &Daemon, id: i64) -> Vec<(String, Vec<String>)> {
    let v = d.ok(&["object", "who-can", &id.to_string()]);
    v["readers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let why = r["why"].as_array().unwrap().iter().map(|w| w["reason"].as_str().unwrap().to_string()).collect();
            (r["user"].as_str().unwrap().to_string(), why)
        })
        .collect()
}

fn why(readers: &[(String, Vec<String>)], user: &str) -> Option<Vec<String>> {
    readers.iter().find(|(u, _)| u == user).map(|(_, w)| w.clone())
}

#[test]
fn historical_read_survives_the_revoke_and_new_objects_stay_hidden() {
    let mut d = Daemon::start();
    plant(&d);
    let tech = token(&d, "tech");
    let a = create(&d, &tech, "wcu/7", "pump 3 vibration");
    let (ann, bob, carol) = (token(&d, "ann"), token(&d, "bob"), token(&d, "carol"));
    assert!(reads(&d, &ann, a) && reads(&d, &bob, a));
    assert!(!reads(&d, &carol, a), "no right of any kind");
    assert!(!reads(&d, &tech, a), "write does not imply read");

    // The administrator takes ann's permission away: she keeps what was created while she held it.
    d.ok(&["user", "update", "ann", "--remove-role", "soh"]);
    let b = create(&d, &tech, "wcu/7", "pump 4 temperature");
    assert!(reads(&d, &ann, a), "historical");
    assert!(!reads(&d, &ann, b), "created after the revoke");
    assert!(reads(&d, &bob, b));
    let asked = d.ok(&["call", "authz.check", &json!({"subject": "ann", "object": a}).to_string()]);
    assert_eq!((&asked["decision"], &asked["reason"]), (&json!("allow"), &json!("historical")), "{asked}");
    assert_eq!(asked["permission"], "assignment.soh");
    assert_eq!(asked["resource"], "wcu/7");
    let asked = d.ok(&["call", "authz.check", &json!({"subject": "ann", "object": b}).to_string()]);
    assert_eq!(asked["decision"], "deny", "{asked}");
    let asked = d.ok(&["call", "authz.check", &json!({"subject": "bob", "object": b}).to_string()]);
    assert_eq!(asked["reason"], "allowed_by", "{asked}");

    // Who may read, and why; a disabled user is never listed.
    let r = readers(&d, a);
    assert_eq!(why(&r, "ann"), Some(vec!["historical".to_string()]), "{r:?}");
    assert_eq!(why(&r, "bob"), Some(vec!["current".to_string(), "historical".to_string()]), "{r:?}");
    assert_eq!(why(&r, "admin"), Some(vec!["superuser".to_string()]), "{r:?}");
    assert_eq!(why(&r, "tech"), None, "{r:?}");
    let v = d.ok(&["object", "who-can", &a.to_string()]);
    let bob_row = v["readers"].as_array().unwrap().iter().find(|r| r["user"] == "bob").unwrap().clone();
    assert_eq!(bob_row["why"][0]["origin"]["kind"], "role", "{bob_row}");
    assert_eq!(bob_row["why"][0]["origin"]["name"], "soh", "{bob_row}");
    assert!(bob_row["why"][0]["grant_id"].is_i64(), "{bob_row}");
    d.ok(&["user", "disable", "bob"]);
    assert_eq!(why(&readers(&d, a), "bob"), None, "disabled: never listed");
    d.ok(&["user", "enable", "bob"]);

    // Explicit readers on many objects at once; all or nothing.
    d.ok(&["object", "grant", "carol", &a.to_string(), &b.to_string()]);
    assert!(reads(&d, &carol, a) && reads(&d, &carol, b));
    assert_eq!(why(&readers(&d, b), "carol"), Some(vec!["explicit".to_string()]));
    user(&d, "dave", &[]);
    let e = d.refused(&["object", "grant", "dave", &a.to_string(), "999999"], "not_found");
    assert!(e["message"].as_str().unwrap().contains("999999"), "{e}");
    let dave = token(&d, "dave");
    assert!(!reads(&d, &dave, a), "nothing given when one id is missing");
    d.ok(&["object", "revoke", "carol", &b.to_string()]);
    assert!(reads(&d, &carol, a) && !reads(&d, &carol, b));

    // The list shows only what the caller may read.
    let (_, mine) = as_token(&d, &ann, &["object", "list"]);
    let ids: Vec<i64> = mine["objects"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![a], "{mine}");

    // After a restart every answer is the same: the snapshots come back from the history.
    d.restart();
    let (ann, carol) = (token(&d, "ann"), token(&d, "carol"));
    assert!(reads(&d, &ann, a) && !reads(&d, &ann, b));
    assert!(reads(&d, &carol, a) && !reads(&d, &carol, b));
    let r = readers(&d, a);
    assert_eq!(why(&r, "ann"), Some(vec!["historical".to_string()]), "{r:?}");

    // Every object action is on the record, and the events are queued.
    assert_eq!(audit_count(&d, "object.create", "ok"), 2);
    assert_eq!(audit_count(&d, "object.grant", "ok"), 1);
    assert_eq!(audit_count(&d, "object.revoke", "ok"), 1);
    assert_eq!(d.sql_count("SELECT count(*) FROM outbox WHERE topic LIKE '%object.created'"), 2);
}

#[test]
fn deleting_the_owner_deletes_its_objects_in_the_same_transaction() {
    let d = Daemon::start();
    plant(&d);
    let tech = token(&d, "tech");
    let ids: Vec<i64> = (0..3).map(|i| create(&d, &tech, "wcu/8", &format!("check {i}"))).collect();
    d.ok(&["object", "grant", "carol", &ids[0].to_string()]);
    let v = d.ok(&["user", "delete", "tech"]);
    assert_eq!((v["objects_deleted"].as_u64(), v["objects_reassigned"].as_u64()), (Some(3), Some(0)), "{v}");
    assert_eq!(d.sql_count("SELECT count(*) FROM objects"), 0);
    assert_eq!(d.sql_count("SELECT count(*) FROM object_readers"), 0);
    assert_eq!(d.sql_count("SELECT count(*) FROM outbox WHERE topic LIKE '%object.deleted'"), 3);
    let audit = d.ok(&["audit", "--limit", "50"]);
    let row = audit.as_array().unwrap().iter().find(|e| e["action"] == "user.delete").unwrap().clone();
    assert_eq!(row["detail"]["objects_deleted"], 3, "{row}");
    d.refused(&["object", "show", &ids[0].to_string()], "not_found");
    // With no object left the policy's history holds the current versions only.
    assert_eq!(d.sql_count("SELECT count(*) FROM policy_history WHERE to_epoch IS NOT NULL"), 0);
}

#[test]
fn with_reassign_to_admin_the_admin_takes_the_objects() {
    let d = Daemon::start_with("[accounts]\non_delete = \"reassign-to-admin\"\n");
    plant(&d);
    let tech = token(&d, "tech");
    let a = create(&d, &tech, "wcu/7", "kept");
    let v = d.ok(&["user", "delete", "tech"]);
    assert_eq!((v["objects_deleted"].as_u64(), v["objects_reassigned"].as_u64()), (Some(0), Some(1)), "{v}");
    assert_eq!(d.ok(&["object", "show", &a.to_string()])["owner"], "admin");
    let audit = d.ok(&["audit", "--limit", "50"]);
    let row = audit.as_array().unwrap().iter().find(|e| e["action"] == "user.delete").unwrap().clone();
    assert_eq!(row["detail"]["objects_reassigned"], 1, "{row}");
}

#[test]
fn bad_input_is_refused_naming_the_field_and_nothing_changes() {
    let d = Daemon::start();
    plant(&d);
    let tech = token(&d, "tech");
    let a = create(&d, &tech, "wcu/7", "one");
    let refused = |args: &[&str], code: &str, field: &str| {
        let (exit, v) = as_token(&d, &tech, args);
        assert_eq!(exit, 1, "{args:?}: {v}");
        assert_eq!(v["error"]["code"], code, "{args:?}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(field), "{args:?} should name {field}: {v}");
    };
    refused(&["object", "create", "assignment.nope", "wcu/7", "x"], "bad_request", "kind");
    refused(&["object", "create", "Not A Kind", "wcu/7", "x"], "bad_request", "kind");
    refused(&["object", "create", "users.manage", "wcu/7", "x"], "bad_request", "kind");
    refused(&["object", "create", "assignment.soh", "wcu/99", "x"], "bad_request", "resource");
    refused(&["object", "create", "assignment.soh", "wcu//7", "x"], "bad_request", "resource");
    refused(&["object", "create", "assignment.soh", "wcu/7", &"n".repeat(300)], "bad_request", "name");
    let big = json!({"blob": "x".repeat(70 * 1024)}).to_string();
    refused(&["object", "create", "assignment.soh", "wcu/7", "x", "--data", &big], "bad_request", "data");
    d.ok(&["resource", "add", "line9/x", "--kind", "device"]);
    refused(&["object", "create", "assignment.soh", "line9/x", "x"], "forbidden", "write access");
    refused(&["object", "show", "424242"], "not_found", "424242");
    refused(&["object", "delete", "424242"], "not_found", "424242");
    // Over the bound of ids: refused before anything is looked up.
    let many: Vec<String> = (0..1001).map(|i| (a + i).to_string()).collect();
    let mut args = vec!["object", "grant", "carol"];
    args.extend(many.iter().map(String::as_str));
    let e = d.refused(&args, "bad_request");
    assert!(e["message"].as_str().unwrap().contains("ids"), "{e}");
    // Both or neither of resource and object.
    let e = d.refused(
        &["call", "authz.check", &json!({"object": a, "resource": "wcu/7", "permission": "x"}).to_string()],
        "bad_request",
    );
    assert!(e["message"].as_str().unwrap().contains("object"), "{e}");
    let e = d.refused(&["call", "authz.check", &json!({"permission": "x"}).to_string()], "bad_request");
    assert!(e["message"].as_str().unwrap().contains("resource"), "{e}");
    d.refused(&["call", "authz.check", &json!({"object": 424242}).to_string()], "not_found");
    assert_eq!(d.sql_count("SELECT count(*) FROM objects"), 1);
    assert_eq!(d.sql_count("SELECT count(*) FROM object_readers"), 0);
}

#[test]
fn config_check_refuses_an_unknown_on_delete() {
    let d = Daemon::prepare("");
    let path = write_file(&d, "bad.toml", "[accounts]\non_delete = \"keep\"\n");
    let out = d.cli(&["config", "check", &path]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("on_delete"), "{err}");
}

/// An HMI creates an object over MQTT rpc; the events `object.created` and `object.deleted` (with its
/// owner) reach the broker.
#[test]
fn an_hmi_creates_over_mqtt_and_the_events_are_published() {
    let broker = Broker::start(false);
    let d = daemon(&broker.url(), "s18", "");
    plant(&d);
    wait_connected(&d);
    let mut events = Hmi::v5(broker.port, "panel-18-events");
    events.subscribe("gatewarden/s18/events/#");
    let mut hmi = Hmi::v5(broker.port, "panel-18");
    hmi.subscribe("hmi/panel-18/reply");
    let create = json!({"id": 1, "method": "object.create", "auth": {"user": "tech", "password": PW},
                        "params": {"kind": "assignment.soh", "resource": "wcu/7", "name": "from the panel"}});
    hmi.request("gatewarden/s18/rpc/request/panel-18", create.to_string(), "hmi/panel-18/reply", b"c");
    let r = hmi.next_on("hmi/panel-18/reply").json();
    let id = r["result"]["id"].as_i64().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(r["result"]["owner"], "tech", "{r}");
    let e = events.next_on("gatewarden/s18/events/object.created").json();
    assert_eq!((e["id"].as_i64(), e["by"]["u"].as_str()), (Some(id), Some("tech")), "{e}");
    d.ok(&["user", "delete", "tech"]);
    let e = events.next_on("gatewarden/s18/events/object.deleted").json();
    assert_eq!((e["id"].as_i64(), e["cause"].as_str()), (Some(id), Some("owner_deleted")), "{e}");
}

/// Each policy epoch with live objects holds an index snapshot in memory: at 512 such epochs a new
/// one is refused naming `objects`, while objects of an epoch already held are still created, and a
/// change to nothing the policy is built from (a display name) starts no epoch.
#[test]
fn live_objects_span_at_most_512_policy_epochs() {
    let d = Daemon::start();
    plant(&d);
    let mut c = d.connect().unwrap();
    let mut create =
        |name: &str| c.call("object.create", json!({"kind": "assignment.soh", "resource": "wcu/7", "name": name}));
    let mut conn = d.connect().unwrap();
    for i in 0..512 {
        let r = create(&format!("o{i}"));
        assert!(r["result"]["id"].is_i64(), "{r}");
        let name = if i % 2 == 0 { "carol" } else { "bob" };
        let r = conn.call("user.update", json!({"name": name, "expires_at": 4_102_444_800_000_i64 + i}));
        assert!(r["result"].is_object(), "{r}");
    }
    assert_eq!(d.sql_count("SELECT count(DISTINCT epoch) FROM objects"), 512);
    let r = create("one too many");
    assert_eq!(r["error"]["code"], "bad_request", "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("objects"), "{r}");
    // A display name is not policy: no epoch.
    let before = d.sql_count("SELECT epoch FROM policy_epoch");
    let r = conn.call("user.update", json!({"name": "carol", "display_name": "Carol"}));
    assert!(r["result"].is_object(), "{r}");
    assert_eq!(d.sql_count("SELECT epoch FROM policy_epoch"), before, "no epoch for a display name");
    // Deleting the oldest object frees its epoch.
    let r = conn.call("object.delete", json!({"id": 1}));
    assert!(r["result"].is_object(), "{r}");
    let r = create("in a freed slot");
    assert!(r["result"]["id"].is_i64(), "{r}");
    assert_eq!(d.sql_count("SELECT count(DISTINCT epoch) FROM objects"), 512);
}

/// `object.list` pages: `limit` at a time, `next_after` to go on, only what the caller may read, and a
/// filter by owner.
#[test]
fn the_list_pages_through_what_the_caller_may_read() {
    let d = Daemon::start();
    plant(&d);
    let tech = token(&d, "tech");
    let on7: Vec<i64> = (0..5).map(|i| create(&d, &tech, "wcu/7", &format!("a{i}"))).collect();
    d.ok(&["object", "create", "assignment.soh", "wcu/8", "by the admin"]);
    let ann = token(&d, "ann");
    let mut seen = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let mut args = vec![
            "object".to_string(),
            "list".into(),
            "--limit".into(),
            "2".into(),
            "--resource".into(),
            "wcu/7".into(),
        ];
        if let Some(a) = after {
            args.extend(["--after".into(), a.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, page) = as_token(&d, &ann, &args);
        assert_eq!(code, 0, "{page}");
        let objects = page["objects"].as_array().unwrap();
        assert!(objects.len() <= 2, "{page}");
        assert!(objects.iter().all(|o| o.get("data").is_none()), "no data in a list: {page}");
        seen.extend(objects.iter().map(|o| o["id"].as_i64().unwrap()));
        match page["next_after"].as_i64() {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    assert_eq!(seen, on7);
    let (_, by_admin) = as_token(&d, &ann, &["object", "list", "--owner", "admin"]);
    assert_eq!(by_admin["objects"].as_array().unwrap().len(), 1, "{by_admin}");
    let (_, none) = as_token(&d, &token(&d, "carol"), &["object", "list"]);
    assert_eq!(none["objects"], json!([]), "{none}");
    d.refused(&["object", "list", "--limit", "0"], "bad_request");
    d.refused(&["object", "list", "--owner", "ghost"], "not_found");
}

#[test]
fn a_supervisor_lock_stops_objects_being_created_or_deleted_but_not_read() {
    let d = Daemon::start();
    plant(&d);
    let (tech, ann) = (token(&d, "tech"), token(&d, "ann"));
    let a = create(&d, &tech, "wcu/7", "before the changeover");
    d.ok(&["lock", "set", "--reason", "changeover"]);
    let id = a.to_string();
    for args in [&["object", "create", "assignment.soh", "wcu/7", "during"][..], &["object", "delete", &id]] {
        let (code, v) = as_token(&d, &tech, args);
        assert_ne!(code, 0, "{args:?}: {v}");
        assert_eq!(v["error"]["code"], "supervisor_locked", "{args:?}: {v}");
    }
    assert!(reads(&d, &ann, a), "reads are never blocked");
    assert_eq!(d.ok(&["object", "list"])["objects"].as_array().unwrap().len(), 1, "nothing was created");
    d.ok(&["lock", "clear"]);
    let (code, v) = as_token(&d, &tech, &["object", "delete", &id]);
    assert_eq!(code, 0, "{v}");
}
