//! Policy as code through the real daemon, the CLI and the socket: `policy export` on one gateway
//! applied to an empty one gives the identical export; a second apply changes nothing; `plan`
//! shows the diff; `--prune` alone removes; a bad document changes nothing and names its entry; only
//! a superuser reads or applies (and passes a supervisor lock, as for any write); a large document (10 000 users,
//! 1 000 roles) applies in one transaction (its time is printed, not asserted).

mod common;

use common::{Daemon, PW, as_token, token, user, write_file};
use serde_json::{Value, json};
use std::time::Instant;

/// The export as the CLI prints it (TOML).
fn export(d: &Daemon) -> String {
    let out = d.cli(&["policy", "export"]);
    assert!(out.status.success(), "policy export: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A gateway with a bit of everything a policy holds.
fn varied(d: &Daemon) {
    d.ok(&["settings", "set", "plant.name", "Plant 7"]);
    d.ok(&["settings", "set", "shift.plan", r#"{"a": [6, 14], "b": {"start": 22, "names": ["x", "y"]}}"#]);
    d.ok(&["resource", "add", "line1/p1", "--kind", "device"]);
    d.ok(&["resource", "add", "line1/p2", "--kind", "device"]);
    d.ok(&[
        "call",
        "resource.add",
        r#"{"id": "line2/tank", "kind": "tag", "attributes": {"unit": "bar", "max": 12.5}}"#,
    ]);
    d.ok(&["group", "add", "presses"]);
    d.ok(&["group", "member-add", "presses", "line1/p1", "line1/p2"]);
    d.ok(&["role", "add", "operator"]);
    d.ok(&["role", "grant", "operator", "tag.write", "--resource", "line1/*"]);
    d.ok(&["role", "grant", "operator", "tag.read", "--read", "--resource", "@presses"]);
    d.ok(&[
        "call",
        "role.grant",
        r#"{"role": "operator", "permission": "tag.write", "resources": ["line1/p2"], "write": true, "deny": true}"#,
    ]);
    d.ok(&["role", "add", "viewer"]);
    d.ok(&["role", "grant", "viewer", "tag.read", "--read", "--resource", "*"]);
    user(d, "ann", &["operator", "viewer"]);
    user(d, "bob", &["viewer"]);
    d.ok(&["user", "update", "bob", "--display-name", "Bob the night shift", "--expires", "2099-01-31"]);
    d.ok(&["user", "grant", "bob", "recipe.load", "--resource", "line2/tank"]);
    user(d, "carl", &[]);
    d.ok(&["user", "disable", "carl"]);
}

#[test]
fn export_applied_on_an_empty_gateway_gives_the_identical_export_and_the_same_answers() {
    let a = Daemon::start();
    varied(&a);
    let text = export(&a);
    assert!(!text.contains("argon2") && !text.contains("password"), "a secret in the export:\n{text}");
    assert_eq!(text, export(&a), "two exports of one policy differ");

    let b = Daemon::start();
    let file = write_file(&b, "plant.toml", &text);
    let applied = b.ok(&["policy", "apply", &file]);
    assert_eq!(applied["applied"], true, "{applied}");
    assert_eq!(export(&b), text, "the export after apply differs from the document applied");

    // The index and the sessions follow: the same answers on both gateways.
    for (subject, perm, resource, write, allowed) in [
        ("ann", "tag.write", "line1/p1", true, true),
        ("ann", "tag.write", "line1/p2", true, false),
        ("ann", "tag.read", "line1/p2", false, true),
        ("bob", "recipe.load", "line2/tank", true, true),
        ("bob", "tag.write", "line1/p1", true, false),
        ("carl", "tag.read", "line1/p1", false, false),
    ] {
        for d in [&a, &b] {
            let mut args = vec!["check", subject, perm, resource];
            if write {
                args.push("--write");
            }
            let (code, v) = d.cli_json(&args);
            assert_eq!(code == 0, allowed, "{subject} {perm} {resource}: {v}");
        }
    }
    // An account made by a document has no password: it cannot log in until one is set.
    let login = b.call("login", json!({"user": "ann", "password": PW}));
    assert_eq!(login["error"]["code"], "invalid_credentials", "{login}");
    b.ok(&["call", "user.set_password", &json!({"name": "ann", "password": PW}).to_string()]);
    token(&b, "ann");
    // The same document as JSON reads the same.
    let json_doc = a.ok(&["policy", "export"]);
    let file = write_file(&b, "plant.json", &json_doc.to_string());
    assert_eq!(b.ok(&["policy", "plan", &file])["noop"], true);
}

#[test]
fn a_second_apply_changes_nothing_and_says_so() {
    let d = Daemon::start();
    let file = write_file(
        &d,
        "p.toml",
        r#"version = 1
[settings]
"plant.name" = "Plant 7"
[roles.operator]
description = "runs line 1"
grants = [{ permission = "tag.write", resource = "line1/*", access = "read,write" }]
[users.ann]
display_name = "Ann"
roles = ["operator"]
"#,
    );
    let first = d.ok(&["policy", "apply", &file]);
    assert_eq!((first["applied"].clone(), first["created"].clone()), (json!(true), json!(3)), "{first}");
    let second = d.ok(&["policy", "apply", &file]);
    assert_eq!(second["applied"], false, "{second}");
    assert_eq!((second["created"].clone(), second["changed"].clone()), (json!(0), json!(0)), "{second}");
    let out = d.cli(&["policy", "apply", &file]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Nothing to change"), "{out:?}");
    // Both audited with their counts; one policy.applied event, for the apply that changed something.
    let audit = d.ok(&["audit", "--limit", "100"]);
    let rows: Vec<&Value> = audit.as_array().unwrap().iter().filter(|e| e["action"] == "policy.apply").collect();
    assert_eq!(rows.len(), 3, "{audit}");
    assert!(rows.iter().any(|r| r["detail"]["created"] == 3), "{rows:?}");
    assert_eq!(d.sql_count("SELECT count(*) FROM outbox WHERE topic = 'events/policy.applied'"), 1);
    assert_eq!(d.sql_count("SELECT count(*) FROM outbox WHERE topic = 'events/policy.changed'"), 1);
    assert_eq!(d.sql_count("SELECT count(*) FROM outbox WHERE topic = 'events/settings.changed'"), 1);
    // Its payload is the one the contract publishes.
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    let payload: String =
        conn.query_row("SELECT payload FROM outbox WHERE topic = 'events/policy.applied'", [], |r| r.get(0)).unwrap();
    let v: Value = serde_json::from_str(&payload).unwrap();
    let doc = gatewarden::contract::catalog::events().find(|e| e.name == "policy.applied").unwrap();
    let validator = jsonschema::validator_for(&serde_json::to_value((doc.root)()).unwrap()).unwrap();
    assert!(validator.is_valid(&v), "{v}");
    assert_eq!((v["created"].clone(), v["by"]["u"].clone()), (json!(3), json!("admin")), "{v}");
}

#[test]
fn plan_shows_the_diff_and_changes_nothing() {
    let d = Daemon::start();
    varied(&d);
    let before = export(&d);
    let wanted = before
        .replace("display_name = \"Bob the night shift\"", "display_name = \"Bob\"")
        .replace("[users.carl]\nenabled = false\n", "[users.carl]\n")
        + "\n[roles.night]\ndescription = \"night shift\"\n";
    let file = write_file(&d, "p.toml", &wanted);
    let out = d.cli(&["policy", "plan", &file]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "~ user bob",
        "display_name: \"Bob the night shift\" → \"Bob\"",
        "~ user carl",
        "enabled: false → true",
        "+ role night",
        "Plan: 1 to create, 2 to change, 0 to remove.",
    ] {
        assert!(text.contains(line), "plan lacks {line:?}:\n{text}");
    }
    let plan = d.ok(&["policy", "plan", &file]);
    assert_eq!(
        (plan["created"].clone(), plan["changed"].clone(), plan["noop"].clone()),
        (json!(1), json!(2), json!(false))
    );
    let bob = plan["changes"].as_array().unwrap().iter().find(|c| c["name"] == "bob").unwrap();
    assert_eq!(bob["fields"][0], json!({"field": "display_name", "old": "Bob the night shift", "new": "Bob"}));
    assert_eq!(export(&d), before, "plan changed the gateway");
}

#[test]
fn prune_alone_removes_what_the_document_lacks() {
    let d = Daemon::start();
    varied(&d);
    let bob =
        d.call_auth("session.open", json!({"type": "hmi", "host": "panel-1"}), json!({"user": "bob", "password": PW}));
    assert!(bob["result"]["session_id"].is_i64(), "{bob}");
    // Only ann and operator (with what operator refers to) are listed; the sections say so.
    let doc = d.ok(&["policy", "export"]);
    let mut smaller = doc.clone();
    smaller["users"].as_object_mut().unwrap().retain(|k, _| k == "ann" || k == "admin");
    smaller["users"]["ann"]["roles"] = json!(["operator"]);
    smaller["roles"].as_object_mut().unwrap().retain(|k, _| k == "operator");
    smaller.as_object_mut().unwrap().remove("settings");
    let file = write_file(&d, "p.json", &smaller.to_string());

    let kept = d.ok(&["policy", "apply", &file]);
    assert_eq!((kept["removed"].clone(), kept["unlisted"].clone()), (json!(0), json!(3)), "{kept}");
    let users = d.ok(&["user", "list"]);
    assert_eq!(users.as_array().unwrap().len(), 4, "without --prune nothing goes: {users}");

    let plan = d.ok(&["policy", "plan", "--prune", &file]);
    assert_eq!(plan["removed"], 3, "{plan}");
    let pruned = d.ok(&["policy", "apply", "--prune", &file]);
    assert_eq!((pruned["removed"].clone(), pruned["sessions_terminated"].clone()), (json!(3), json!(1)), "{pruned}");
    let names: Vec<String> =
        d.ok(&["user", "list"]).as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["admin", "ann"]);
    let roles: Vec<String> =
        d.ok(&["role", "list"]).as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(roles, ["operator", "supervisor"], "the built-in role stays");
    // The settings section was left out: left alone, even with --prune.
    assert_eq!(d.ok(&["settings", "get", "plant.name"])["value"], "Plant 7");
    // bob's session ended with its account.
    let hb = d.call_auth("session.heartbeat", json!({}), json!({"token": bob["result"]["token"]}));
    assert!(hb.get("error").is_some(), "{hb}");
    assert_eq!(d.ok(&["policy", "apply", "--prune", &file])["applied"], false);
}

#[test]
fn a_bad_document_changes_nothing_and_names_the_entry() {
    let d = Daemon::start();
    varied(&d);
    let before = export(&d);
    let bad = |name: &str, text: &str, named: &str| {
        let file = write_file(&d, name, text);
        for cmd in ["plan", "apply"] {
            let err = d.refused(&["policy", cmd, &file], "bad_request");
            assert!(err["message"].as_str().unwrap().contains(named), "{cmd} {name}: {err}");
        }
    };
    let grants = r#"grants = [{ permission = "tag.read", resource = "*", access = "read" },
                             { permission = "tag.write", resource = "line1/*", access = "rw" }]"#;
    bad("access.toml", &format!("version = 1\n[roles.new]\n{grants}\n"), r#"roles.new.grants[1].access: unknown "rw""#);
    bad(
        "role.toml",
        "version = 1\n[settings]\n\"plant.name\" = \"x\"\n[users.dave]\nroles = [\"ghost\"]\n",
        r#"users.dave.roles[0]: no role "ghost""#,
    );
    bad("admin.toml", "version = 1\n[users.admin]\nroles = [\"viewer\"]\n", "users.admin: the built-in admin");
    bad("case.toml", "version = 1\n[users.ANN]\n", r#"users.ANN: the gateway has this account as "ann""#);
    bad(
        "members.toml",
        "version = 1\n[groups.presses]\nmembers = [\"line9/x\"]\n",
        r#"groups.presses.members[0]: no resource "line9/x""#,
    );
    bad(
        "selector.toml",
        r#"version = 1
[users.ann]
grants = [{ permission = "a.b", resource = "line1//p1", access = "read" }]
"#,
        "users.ann.grants[0].resource",
    );
    bad("version.toml", "version = 2\n", "version: 2");
    // Unknown keys are refused by the reader, naming the line and the key.
    let file = write_file(&d, "unknown.toml", "version = 1\n[users.ann]\nrole = [\"viewer\"]\n");
    let (code, v) = d.cli_json(&["policy", "apply", &file]);
    assert_eq!(code, 2, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("line 3") && msg.contains("[users.ann]") && msg.contains("unknown field `role`"), "{msg}");
    // Unknown keys in JSON over the socket too.
    let r = d.call("policy.apply", json!({"policy": {"version": 1, "users": {"ann": {"password": "x"}}}}));
    assert!(r["error"]["message"].as_str().unwrap().contains("unknown field `password`"), "{r}");
    // Oversized names are bounded, not echoed whole.
    let long = "x".repeat(5000);
    let r = d.call("policy.plan", json!({"policy": {"version": 1, "roles": {long.clone(): {}}}}));
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains("5000 bytes long") && msg.len() < 600, "{msg}");
    assert_eq!(export(&d), before, "a refused document changed the gateway");
}

#[test]
fn only_a_superuser_reads_or_applies_a_document() {
    let d = Daemon::start();
    d.ok(&["role", "add", "manager"]);
    for perm in ["users.view", "users.manage", "roles.manage", "resources.manage", "settings.manage"] {
        d.ok(&["role", "grant", "manager", perm, "--resource", "*"]);
    }
    user(&d, "boss", &["manager"]);
    let boss = token(&d, "boss");
    let file = write_file(&d, "p.toml", "version = 1\n[roles.x]\n");
    for args in [vec!["policy", "export"], vec!["policy", "plan", &file], vec!["policy", "apply", &file]] {
        let (code, v) = as_token(&d, &boss, &args);
        assert_eq!((code, v["error"]["code"].clone()), (1, json!("forbidden")), "{args:?}: {v}");
    }
    assert_eq!(d.call("policy.export", json!({}))["result"]["version"], 1, "root on the console is the admin");
    let key = d.ok(&["key", "add", "fleet", "--master"]);
    let key = key["key"].as_str().expect("the key's secret").to_string();
    let (code, v) = as_token(&d, &key, &["policy", "apply", &file]);
    assert_eq!((code, v["applied"].clone()), (0, json!(true)), "{v}");
    assert!(d.ok(&["role", "list"]).as_array().unwrap().iter().any(|r| r["name"] == "x"));
}

#[test]
fn a_supervisor_lock_lets_only_a_superuser_apply_as_for_any_write() {
    let d = Daemon::start();
    user(&d, "boss", &["supervisor"]);
    let boss = token(&d, "boss");
    let (code, v) = as_token(&d, &boss, &["lock", "set", "--lock-scope", "user", "--reason", "changeover"]);
    assert_eq!(code, 0, "{v}");
    let file = write_file(&d, "p.toml", "version = 1\n[roles.x]\n");
    // A plan changes nothing.
    assert_eq!(d.ok(&["policy", "plan", &file])["created"], 1);
    assert!(!d.ok(&["role", "list"]).as_array().unwrap().iter().any(|r| r["name"] == "x"));
    // The admin (root on the console) passes every lock, as SPEC says of superusers.
    assert_eq!(d.ok(&["policy", "apply", &file])["applied"], true);
    assert!(d.ok(&["role", "list"]).as_array().unwrap().iter().any(|r| r["name"] == "x"));
    // A non-superuser is refused before the lock is even asked.
    let (code, v) = as_token(&d, &boss, &["policy", "apply", &file]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("forbidden")), "{v}");
}

#[test]
fn a_large_document_applies_in_one_transaction() {
    let d = Daemon::start_with("[daemon]\nmax_request_bytes = 16777216\n");
    let (roles, users) = (1_000, 10_000);
    let mut doc = String::from("version = 1\n");
    for r in 0..roles {
        doc.push_str(&format!(
            "[roles.role-{r}]\ndescription = \"role {r}\"\ngrants = [\
             {{ permission = \"tag.read\", resource = \"line{r}/*\", access = \"read\" }}, \
             {{ permission = \"tag.write\", resource = \"line{r}/p1\", access = \"read,write\" }}, \
             {{ permission = \"recipe.load\", resource = \"*\", access = \"write\", effect = \"deny\" }}]\n"
        ));
    }
    for u in 0..users {
        doc.push_str(&format!(
            "[users.user-{u}]\ndisplay_name = \"User {u}\"\nroles = [\"role-{}\", \"role-{}\"]\n",
            u % roles,
            (u * 7 + 1) % roles
        ));
    }
    let file = write_file(&d, "large.toml", &doc);
    let started = Instant::now();
    let applied = d.ok(&["policy", "apply", &file]);
    let first = started.elapsed();
    assert_eq!(applied["created"], roles + users, "{applied}");
    let started = Instant::now();
    let again = d.ok(&["policy", "apply", &file]);
    let second = started.elapsed();
    assert_eq!(again["applied"], false, "{again}");
    let started = Instant::now();
    let text = export(&d);
    let exported = started.elapsed();
    eprintln!(
        "policy apply of {users} users and {roles} roles ({} KiB of TOML): {:.2} s; the same again (no-op): {:.2} s; export: {:.2} s",
        doc.len() / 1024,
        first.as_secs_f64(),
        second.as_secs_f64(),
        exported.as_secs_f64()
    );
    // The index knows them all at once.
    let (code, v) = d.cli_json(&["check", "user-9999", "tag.write", "line999/p1", "--write"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(text.matches("[users.user-").count(), users);
}

#[test]
fn an_apply_keeps_the_policy_history_of_objects() {
    let d = Daemon::start();
    varied(&d);
    let ann = token(&d, "ann");
    // ann may write tag.write on line1/p1 through operator: she makes an object there.
    let (code, v) = as_token(&d, &ann, &["object", "create", "tag.write", "line1/p1", "recipe 1"]);
    assert_eq!(code, 0, "{v}");
    let first = v["id"].as_i64().unwrap().to_string();
    // A document takes operator's grants on line1 away but its deny (so tag.write stays a kind).
    let mut doc = d.ok(&["policy", "export"]);
    doc["roles"]["operator"]["grants"] =
        json!([{"permission": "tag.write", "resource": "line1/p2", "access": "write", "effect": "deny"}]);
    let file = write_file(&d, "p.json", &doc.to_string());
    assert_eq!(d.ok(&["policy", "apply", &file])["changed"], 1);
    // Created while she held the right: still hers to read, as historical; nothing new to create.
    let (code, v) = as_token(&d, &ann, &["object", "show", &first]);
    assert_eq!(code, 0, "{v}");
    let who = d.ok(&["object", "who-can", &first]);
    let row = who["readers"].as_array().unwrap().iter().find(|r| r["user"] == "ann").cloned();
    let reasons: Vec<Value> =
        row.map(|r| r["why"].as_array().unwrap().iter().map(|w| w["reason"].clone()).collect()).unwrap_or_default();
    assert_eq!(reasons, [json!("historical")], "{who}");
    let (code, v) = as_token(&d, &ann, &["object", "create", "tag.write", "line1/p1", "recipe 2"]);
    assert_eq!((code, v["error"]["code"].clone()), (1, json!("forbidden")), "{v}");
    // The same after a restart: the history was written in the apply's transaction.
    let mut d = d;
    d.restart();
    let ann = token(&d, "ann");
    let (code, v) = as_token(&d, &ann, &["object", "show", &first]);
    assert_eq!(code, 0, "{v}");
}
