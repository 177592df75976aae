//! Authorization through the real daemon: the decision rules, the supervisor-only user, CSV imports,
//! copy-roles, who-can and explain, all driven with the CLI.

mod common;

use common::{Daemon, as_token, audit_count, token, user, write_file};
use serde_json::{Value, json};

/// "allow" or "deny" from `gatewarden check`, checking the exit code agrees.
fn check(d: &Daemon, subject: &str, perm: &str, resource: &str, write: bool) -> String {
    let mut args = vec!["check", subject, perm, resource];
    if write {
        args.push("--write");
    }
    let (code, v) = d.cli_json(&args);
    let decision = v["decision"].as_str().unwrap_or_else(|| panic!("check {args:?}: {v}")).to_string();
    assert_eq!(code, if decision == "allow" { 0 } else { 1 }, "exit code of check {args:?}: {v}");
    decision
}

#[test]
fn decision_rules_table() {
    let d = Daemon::start();
    let inv = write_file(&d, "inv.csv", "device,line\nline1/press3,1\nline1/press4,1\nline1/a/b,1\nline2/oven,2\n");
    d.ok(&["resource", "import", &inv]);
    d.ok(&["group", "add", "presses"]);
    d.ok(&["group", "member-add", "presses", "line1/press3", "line1/press4"]);

    d.ok(&["role", "add", "operators"]);
    d.ok(&["role", "grant", "operators", "tag.write", "--write", "--resource", "@presses"]);
    d.ok(&["role", "grant", "operators", "tag.read", "--read", "--resource", "line1/*"]);
    d.ok(&["role", "grant", "operators", "tag.write", "--write", "--resource", "line1/press4", "--deny"]);
    d.ok(&["role", "add", "viewers"]);
    d.ok(&["role", "grant", "viewers", "tag.read", "--read", "--resource", "*"]);
    d.ok(&["role", "add", "deep"]);
    d.ok(&["role", "grant", "deep", "recipe.load", "--resource", "line1/**"]);
    user(&d, "op", &["operators"]);
    user(&d, "viewer", &["viewers"]);
    user(&d, "deep", &["deep"]);
    user(&d, "direct", &[]);
    d.ok(&["user", "grant", "direct", "tag.write", "--write", "--resource", "line2/oven"]);
    user(&d, "off", &["viewers"]);
    user(&d, "old", &["viewers"]);

    let table: &[(&str, &str, &str, bool, &str)] = &[
        // role grant through a group
        ("op", "tag.write", "line1/press3", true, "allow"),
        // deny beats allow (press4 is in @presses, and denied directly)
        ("op", "tag.write", "line1/press4", true, "deny"),
        // write does not imply read, read does not imply write
        ("op", "tag.write", "line1/press3", false, "deny"),
        ("op", "tag.read", "line1/press3", false, "allow"),
        ("op", "tag.read", "line1/press3", true, "deny"),
        // a single-segment glob
        ("op", "tag.read", "line1/a/b", false, "deny"),
        ("op", "tag.read", "line2/oven", false, "deny"),
        // ** spans segments
        ("deep", "recipe.load", "line1/a/b", false, "allow"),
        ("deep", "recipe.load", "line1/press3", true, "allow"),
        ("deep", "recipe.load", "line2/oven", false, "deny"),
        // * covers everything, even resources not in the inventory
        ("viewer", "tag.read", "line9/not-yet-there", false, "allow"),
        ("viewer", "tag.write", "line1/press3", true, "deny"),
        // a direct grant
        ("direct", "tag.write", "line2/oven", true, "allow"),
        ("direct", "tag.write", "line1/press3", true, "deny"),
        // another permission name is another permission
        ("op", "tag.writer", "line1/press3", true, "deny"),
        // the admin passes everything
        ("admin", "anything.at_all", "x", true, "allow"),
    ];
    for (subject, perm, res, write, want) in table {
        assert_eq!(check(&d, subject, perm, res, *write), *want, "{subject} {perm} {res} write={write}");
    }

    // A resource created after the grant is covered by `*` and by a group it joins.
    d.ok(&["resource", "add", "line1/press9"]);
    assert_eq!(check(&d, "op", "tag.write", "line1/press9", true), "deny");
    d.ok(&["group", "member-add", "presses", "line1/press9"]);
    assert_eq!(check(&d, "op", "tag.write", "line1/press9", true), "allow");
    assert_eq!(check(&d, "viewer", "tag.read", "line1/press9", false), "allow");

    // Disabled and expired accounts are denied whatever they hold.
    d.ok(&["user", "disable", "off"]);
    let (_, v) = d.cli_json(&["check", "off", "tag.read", "line1/press3"]);
    assert_eq!((v["decision"].as_str(), v["reason"].as_str()), (Some("deny"), Some("account_disabled")), "{v}");
    d.ok(&["call", "user.update", &json!({"name": "old", "expires_at": 1000}).to_string()]);
    let (_, v) = d.cli_json(&["check", "old", "tag.read", "line1/press3"]);
    assert_eq!(v["reason"], "account_expired", "{v}");

    // who-can lists enabled, unexpired accounts only.
    let who = d.ok(&["who-can", "tag.read", "line1/press3"]);
    let names: Vec<&str> = who.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"viewer") && names.contains(&"op") && names.contains(&"admin"), "{names:?}");
    assert!(!names.contains(&"off") && !names.contains(&"old") && !names.contains(&"deep"), "{names:?}");

    // Revoking takes effect at once: the index is never stale.
    d.ok(&["role", "revoke", "viewers", "tag.read"]);
    assert_eq!(check(&d, "viewer", "tag.read", "line9/not-yet-there", false), "deny");
}

#[test]
fn explain_lists_every_matching_grant_and_the_decider() {
    let d = Daemon::start();
    d.ok(&["resource", "add", "line1/press4"]);
    d.ok(&["role", "add", "operators"]);
    d.ok(&["role", "grant", "operators", "tag.write", "--write", "--resource", "line1/*"]);
    d.ok(&["role", "grant", "operators", "tag.write", "--write", "--resource", "line1/press4", "--deny"]);
    user(&d, "op", &["operators"]);
    d.ok(&["user", "grant", "op", "tag.write", "--write", "--resource", "*"]);
    let v = d.ok(&["explain", "op", "tag.write", "line1/press4", "--write"]);
    assert_eq!(v["decision"], "deny");
    let matched = v["matched"].as_array().unwrap();
    assert_eq!(matched.len(), 3, "{v}");
    let decided: Vec<&Value> = matched.iter().filter(|m| m["decided"] == true).collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["grant"]["effect"], "deny");
    assert!(matched.iter().any(|m| m["origin"]["kind"] == "direct"));
    assert!(matched.iter().any(|m| m["origin"]["kind"] == "role" && m["origin"]["name"] == "operators"));
}

#[test]
fn a_supervisor_only_user_cannot_touch_users_roles_resources_or_settings() {
    let d = Daemon::start();
    user(&d, "night", &["supervisor"]);
    user(&d, "op", &[]);
    let t = token(&d, "night");
    for args in [
        vec!["user", "add", "intruder"],
        vec!["user", "disable", "op"],
        vec!["user", "list"],
        vec!["role", "add", "mine"],
        vec!["role", "grant", "supervisor", "users.manage"],
        vec!["resource", "add", "line1/x"],
        vec!["group", "add", "g"],
        vec!["key", "add", "k"],
        vec!["audit"],
        vec!["settings", "set", "plant.name", "\"x\""],
    ] {
        let (code, v) = as_token(&d, &t, &args);
        assert_eq!((code, v["error"]["code"].as_str()), (1, Some("forbidden")), "{args:?}: {v}");
    }
    // What the role does hold, the engine grants.
    for perm in ["sessions.view", "sessions.terminate", "supervisor.lock", "supervisor.broadcast"] {
        assert_eq!(check(&d, "night", perm, "*", !perm.ends_with(".view")), "allow", "{perm}");
    }
    for perm in ["users.manage", "roles.manage", "resources.manage", "settings.manage", "audit.view"] {
        assert_eq!(check(&d, "night", perm, "*", true), "deny", "{perm}");
    }
    // The refusals are audited with the actor.
    let audit = d.ok(&["audit", "--limit", "200"]);
    assert!(audit.as_array().unwrap().iter().any(|e| e["actor"]["u"] == "night" && e["outcome"] == "denied"));
    // The built-in role is fixed.
    d.refused(&["role", "grant", "supervisor", "users.manage"], "conflict");
    d.refused(&["role", "delete", "supervisor"], "conflict");
    // And the admin's rights cannot be changed.
    d.refused(&["user", "grant", "admin", "tag.write"], "protected_account");
    d.refused(&["user", "update", "admin", "--add-role", "supervisor"], "protected_account");
}

#[test]
fn group_import_is_all_or_nothing_and_names_the_bad_line() {
    let d = Daemon::start();
    let inv = write_file(&d, "inv.csv", "device\nline1/press3\nline1/press4\n");
    d.ok(&["resource", "import", &inv]);
    d.ok(&["group", "add", "presses"]);
    let list = write_file(&d, "list.csv", "device\nline1/press3\nline1/ghost\nline1/press4\n");
    let e = d.refused(&["group", "import", "presses", &list], "bad_request");
    assert_eq!(e["errors"][0]["line"], 3, "{e}");
    assert!(e["message"].as_str().unwrap().contains("line 3"), "{e}");
    assert_eq!(d.ok(&["resource", "list", "--group", "presses"]).as_array().unwrap().len(), 0, "nothing changed");

    let v = d.ok(&["group", "import", "presses", &list, "--ignore-missing"]);
    assert_eq!(v["added"], 2);
    assert_eq!(v["skipped"][0]["id"], "line1/ghost");
    assert_eq!(v["skipped"][0]["line"], 3);
    assert_eq!(d.ok(&["resource", "list", "--group", "presses"]).as_array().unwrap().len(), 2);

    // Shapes that are refused outright, with what is wrong.
    for (text, needle) in [
        ("line1/press3\nline1/press4\n", "header row"),
        ("device;line\nline1/press3;1\n", "comma-separated"),
        ("device,serial\nline1/press3,SN1\n", "one kind per file"),
        ("tag\nline1/press3\n", "mixed kinds"),
    ] {
        let f = write_file(&d, "bad.csv", text);
        let e = d.refused(&["group", "import", "presses", &f], "bad_request");
        assert!(e["message"].as_str().unwrap().contains(needle), "{text:?}: {e}");
    }

    // The same list applies to a grant.
    d.ok(&["role", "add", "ops"]);
    let v = d.ok(&["role", "grant", "ops", "tag.write", "--write", "--resources-file", &list, "--ignore-missing"]);
    assert_eq!(v["grants"].as_array().unwrap().len(), 2);
    user(&d, "op", &["ops"]);
    assert_eq!(check(&d, "op", "tag.write", "line1/press4", true), "allow");
}

#[test]
fn a_malformed_inventory_creates_nothing() {
    let d = Daemon::start();
    let f = write_file(&d, "inv.csv", "device,line\nline1/a,1\nline1/b\nbad id,3\nline1/c,4\n");
    let e = d.refused(&["resource", "import", &f], "bad_request");
    let lines: Vec<i64> = e["errors"].as_array().unwrap().iter().map(|r| r["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, vec![3, 4], "{e}");
    assert_eq!(d.ok(&["resource", "list"]).as_array().unwrap().len(), 0);
    // Re-importing a good file updates attributes; a kind change is refused.
    let good = write_file(&d, "good.csv", "device,line\nline1/a,1\n");
    assert_eq!(d.ok(&["resource", "import", &good])["created"], 1);
    let again = write_file(&d, "again.csv", "device,line\nline1/a,7\n");
    assert_eq!(d.ok(&["resource", "import", &again])["updated"], 1);
    assert_eq!(d.ok(&["resource", "list"])[0]["attributes"]["line"], "7");
    let other = write_file(&d, "other.csv", "tag\nline1/a\n");
    d.refused(&["resource", "import", &other], "bad_request");
}

#[test]
fn copy_roles_adds_or_replaces() {
    let d = Daemon::start();
    for r in ["a", "b", "c"] {
        d.ok(&["role", "add", r]);
    }
    user(&d, "src", &["a", "b"]);
    user(&d, "dst", &["c"]);
    let v = d.ok(&["user", "copy-roles", "--from", "src", "--to", "dst"]);
    assert_eq!(v["roles"], json!(["a", "b", "c"]));
    let v = d.ok(&["user", "copy-roles", "--from", "src", "--to", "dst", "--replace"]);
    assert_eq!(v["roles"], json!(["a", "b"]));
    d.refused(&["user", "copy-roles", "--from", "src", "--to", "admin"], "protected_account");
}

#[test]
fn api_keys_act_with_their_roles() {
    let d = Daemon::start();
    d.ok(&["role", "add", "hmi"]);
    d.ok(&["role", "grant", "hmi", "tag.read", "--read", "--resource", "line1/*"]);
    let k = d.ok(&["key", "add", "panel7", "--role", "hmi"])["key"].as_str().unwrap().to_string();
    let (code, v) = as_token(&d, &k, &["call", "authz.check", r#"{"permission":"tag.read","resource":"line1/x"}"#]);
    assert_eq!((code, v["decision"].as_str()), (0, Some("allow")), "{v}");
    assert_eq!(check(&d, "key:panel7", "tag.read", "line2/x", false), "deny");
    // A key asking about someone else needs users.view.
    let (_, v) = as_token(&d, &k, &["check", "admin", "tag.read", "x"]);
    assert_eq!(v["error"]["code"], "forbidden");
}

/// The replies of the policy methods, and the `policy.changed` event, against the schemas the route
/// table declares for them, checked by an independent validator: a decision of every kind
/// (allowed by a grant, superuser, denied, refused by the supervisor lock) included.
#[test]
fn policy_replies_match_their_declared_schemas() {
    use gatewarden::api::routes;
    let d = Daemon::start();
    let mut seen = Vec::new();
    let mut call = |method: &str, params: Value| -> Value {
        let r = d.call(method, params);
        let result = r.get("result").unwrap_or_else(|| panic!("{method}: {r}")).clone();
        let route = routes::find(method).unwrap();
        let schema = serde_json::to_value((route.result)()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(&result).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{method}: {result} does not match its schema: {errors:?}");
        seen.push(method.to_string());
        result
    };
    call("resource.add", json!({"id": "line1/p1", "kind": "device", "attributes": {"serial": "SN1"}}));
    call("resource.import", json!({"csv": "device,line\nline1/p2,1\nline1/p3,1\n"}));
    call("group.create", json!({"name": "presses", "description": "the presses"}));
    call("group.add", json!({"group": "presses", "resources": ["line1/p1", "line1/ghost"], "ignore_missing": true}));
    let v = call(
        "group.import",
        json!({"group": "presses", "csv": "device\nline1/p2\nline1/nope\n", "ignore_missing": true}),
    );
    assert_eq!(v["skipped"], json!([{"line": 3, "id": "line1/nope"}]));
    call("group.remove", json!({"group": "presses", "resources": ["line1/p2"]}));
    call("group.list", json!({}));
    call("resource.list", json!({"group": "presses"}));
    call("role.create", json!({"name": "operators", "description": "line 1"}));
    let v = call("role.import", json!({"csv": "name,description\nfitters,line 2\npackers,\n"}));
    assert_eq!(v["created"], 2, "{v}");
    call(
        "role.grant",
        json!({"role": "operators", "permission": "tag.write", "write": true, "resources": ["@presses"]}),
    );
    call("role.grant", json!({"role": "operators", "permission": "tag.read", "deny": true, "resources": ["line1/p3"]}));
    call("role.list", json!({}));
    call("role.show", json!({"name": "operators"}));
    user(&d, "op", &["operators"]);
    user(&d, "boss", &["supervisor"]);
    user(&d, "other", &[]);
    call("user.copy_roles", json!({"from": "op", "to": "other"}));
    let q = |subject: &str, permission: &str, resource: &str, access: &str| json!({"subject": subject, "permission": permission, "resource": resource, "access": access});
    let v = call("authz.check", q("op", "tag.write", "line1/p1", "write"));
    assert_eq!((&v["decision"], &v["reason"]), (&json!("allow"), &json!("allowed_by")), "{v}");
    assert_eq!(v["origin"], json!({"kind": "role", "id": v["origin"]["id"], "name": "operators"}), "{v}");
    let v = call("authz.check", q("admin", "tag.write", "line1/p1", "write"));
    assert_eq!(v["reason"], "superuser", "{v}");
    let v = call("authz.explain", q("op", "tag.read", "line1/p3", "read"));
    assert_eq!((&v["decision"], &v["reason"]), (&json!("deny"), &json!("denied_by")), "{v}");
    call("authz.explain", q("op", "tag.read", "line9/x", "read"));
    call("authz.who_can", json!({"permission": "tag.write", "resource": "line1/p1", "access": "write"}));
    let batch = json!({"checks": [q("op", "tag.write", "line1/p1", "write"), q("admin", "tag.read", "line1/p3", "read"),
                                  q("ghost", "tag.read", "line1/p3", "read"), q("op", "tag.read", "line1/ p3", "read")]});
    call("authz.check_many", batch.clone());
    call(
        "authz.allowed",
        json!({"subject": "op", "permission": "tag.write", "access": "write", "resources": ["line1/p1", "line1/p3"]}),
    );

    // The lock: explain says it decided, naming the lock, its owner and what the grants said.
    let t = token(&d, "boss");
    let r = d.call_auth("supervisor.lock", json!({"l": "u", "reason": "commissioning"}), json!({"token": t}));
    assert!(r.get("result").is_some(), "{r}");
    let v = call("authz.explain", q("op", "tag.write", "line1/p1", "write"));
    assert_eq!((&v["decision"], &v["reason"]), (&json!("deny"), &json!("supervisor_locked")), "{v}");
    assert_eq!(v["lock"]["o"], json!({"u": "boss", "key_id": null}), "{v}");
    assert_eq!(v["locked_out"], "not_supervisor", "{v}");
    assert_eq!(v["grants_decision"]["reason"], "allowed_by", "{v}");
    // A batch's slot carries the refusal, in the schema too.
    let v = call("authz.check_many", batch);
    assert_eq!(v["results"][0]["error"]["code"], "supervisor_locked", "{v}");
    // ... and check answers the same refusal as the error every locked write gets.
    let r = d.call("authz.check", q("op", "tag.write", "line1/p1", "write"));
    assert_eq!(r["error"]["code"], "supervisor_locked", "{r}");
    assert_eq!(r["error"]["lock"]["o"]["u"], "boss", "{r}");
    d.call_auth("supervisor.unlock", json!({}), json!({"token": t}));

    call("role.revoke", json!({"role": "operators", "permission": "tag.read"}));
    call("group.delete", json!({"name": "presses"}));
    call("resource.delete", json!({"id": "line1/p3"}));
    call("role.delete", json!({"name": "operators"}));

    // Every method of the family was asked.
    for r in routes::ROUTES {
        let family = ["role.", "resource.", "group.", "authz."].iter().any(|f| r.name.starts_with(f));
        assert!(!family || seen.iter().any(|s| s == r.name), "{} was not asked", r.name);
    }

    // The event: typed, with who did it.
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    let payloads: Vec<String> = conn
        .prepare("SELECT payload FROM outbox WHERE topic = 'events/policy.changed' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(payloads.len(), 3, "{payloads:?}");
    let schema = gatewarden::contract::catalog::events().find(|e| e.name == "policy.changed").unwrap();
    let validator = jsonschema::validator_for(&serde_json::to_value((schema.root)()).unwrap()).unwrap();
    for p in &payloads {
        let v: Value = serde_json::from_str(p).unwrap();
        assert!(validator.is_valid(&v), "{v}");
        assert_eq!(v["target"], "role:operators", "{v}");
        assert!(v["ts"].is_i64(), "{v}");
    }
}

/// A plant for the batch questions: `op` may read and write `line1/*` but not write `line1/p2`
/// (a deny grant); `boss` is a supervisor; `other` holds nothing.
fn batch_plant() -> (Daemon, String, String) {
    let d = Daemon::start();
    let inv = write_file(&d, "inv.csv", "device\nline1/p1\nline1/p2\nline2/p1\n");
    d.ok(&["resource", "import", &inv]);
    d.ok(&["role", "add", "operators"]);
    d.ok(&["role", "grant", "operators", "tag.write", "--resource", "line1/*"]);
    d.ok(&["role", "grant", "operators", "tag.write", "--write", "--resource", "line1/p2", "--deny"]);
    user(&d, "op", &["operators"]);
    user(&d, "boss", &["supervisor"]);
    user(&d, "other", &[]);
    let (op, boss) = (token(&d, "op"), token(&d, "boss"));
    (d, op, boss)
}

fn q(subject: Option<&str>, permission: &str, resource: &str, access: &str) -> Value {
    let mut v = json!({"permission": permission, "resource": resource, "access": access});
    if let Some(s) = subject {
        v["subject"] = json!(s);
    }
    v
}

/// Asks `questions` in one `authz.check_many` and each alone with `authz.check`, as the holder of
/// `auth`; every slot must be exactly the single answer (its result, or `{"error": ...}`).
fn ask_both_ways(d: &Daemon, auth: &Value, questions: &[Value]) -> Vec<Value> {
    let r = d.call_auth("authz.check_many", json!({"checks": questions}), auth.clone());
    let results = r["result"]["results"].as_array().unwrap_or_else(|| panic!("check_many: {r}")).clone();
    assert_eq!(results.len(), questions.len(), "{r}");
    for (question, slot) in questions.iter().zip(&results) {
        let single = d.call_auth("authz.check", question.clone(), auth.clone());
        let want = match single.get("result") {
            Some(v) => v.clone(),
            None => json!({"error": single["error"]}),
        };
        assert_eq!(slot, &want, "{question}");
    }
    results
}

fn slot_says(slot: &Value) -> String {
    match slot.get("error") {
        Some(e) => format!("error/{}", e["code"].as_str().unwrap_or("?")),
        None => format!("{}/{}", slot["decision"].as_str().unwrap_or("?"), slot["reason"].as_str().unwrap_or("?")),
    }
}

#[test]
fn check_many_answers_each_question_as_check_does_with_errors_in_their_slots() {
    let (d, op, _) = batch_plant();
    let as_op = json!({"token": op});
    let questions = [
        q(None, "tag.write", "line1/p1", "write"),
        q(Some("op"), "tag.write", "line1/p1", "read"),
        q(None, "tag.write", "line1/p2", "write"),
        q(None, "tag.write", "line2/p1", "write"),
        q(None, "tag.write", "line1//p1", "read"),
        q(Some("other"), "tag.read", "line1/p1", "read"),
        q(Some("ghost"), "tag.read", "line1/p1", "read"),
        q(Some("key:ghost"), "tag.read", "line1/p1", "read"),
        q(None, "tag.write", "*", "write"),
    ];
    let results = ask_both_ways(&d, &as_op, &questions);
    let said: Vec<String> = results.iter().map(slot_says).collect();
    assert_eq!(
        said,
        [
            "allow/allowed_by",
            "allow/allowed_by",
            "deny/denied_by",
            "deny/no_grant",
            "error/bad_request",
            // Without users.view an unknown name is refused exactly like a known one.
            "error/forbidden",
            "error/forbidden",
            "error/forbidden",
            "deny/no_grant",
        ]
    );
    assert_eq!(results[0]["subject"], "op");

    // The batch of refusals above is one audited refusal, not one per question (the single
    // authz.check calls are audited under their own name).
    assert_eq!(audit_count(&d, "authz.check_many", "denied"), 1);
    let r = d.call_auth("authz.check_many", json!({"checks": [q(Some("other"), "tag.read", "x", "read")]}), as_op);
    assert_eq!(r["result"]["results"][0]["error"]["code"], "forbidden", "{r}");
    assert_eq!(audit_count(&d, "authz.check_many", "denied"), 2);

    // With users.view (the admin): unknown accounts and keys are not_found in their slots.
    let results = ask_both_ways(&d, &Value::Null, &questions);
    let said: Vec<String> = results.iter().map(slot_says).collect();
    assert_eq!(&said[5..], ["deny/no_grant", "error/not_found", "error/not_found", "allow/superuser"]);
    let admin = ask_both_ways(&d, &Value::Null, &[q(None, "tag.write", "line1/p2", "write")]);
    assert_eq!(slot_says(&admin[0]), "allow/superuser");
}

#[test]
fn check_many_and_allowed_are_bounded_before_anything_is_answered() {
    let (d, op, _) = batch_plant();
    let as_op = json!({"token": op});
    let batch = |n: usize| json!({"checks": vec![q(None, "tag.read", "line1/p1", "read"); n]});
    let r = d.call_auth("authz.check_many", batch(1000), as_op.clone());
    assert_eq!(r["result"]["results"].as_array().map(Vec::len), Some(1000), "1000 questions are answered");
    let r = d.call_auth("authz.check_many", batch(1001), as_op.clone());
    assert_eq!(r["error"]["code"], "bad_request", "{}", r["error"]);
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("checks") && message.contains("1000"), "{message}");
    let r = d.call_auth("authz.check_many", json!({"checks": []}), as_op.clone());
    assert_eq!(r["result"], json!({"results": []}));

    let resources = |n: usize| json!({"permission": "tag.write", "resources": vec!["line1/p1"; n]});
    let r = d.call_auth("authz.allowed", resources(1000), as_op.clone());
    assert_eq!(r["result"]["allowed"].as_array().map(Vec::len), Some(1000), "{}", r["error"]);
    let r = d.call_auth("authz.allowed", resources(1001), as_op.clone());
    assert_eq!(r["error"]["code"], "bad_request", "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("resources"), "{r}");
    // A malformed id refuses the whole question, naming where it is.
    let bad = json!({"permission": "tag.read", "resources": ["line1/p1", "line1/ p2"]});
    let r = d.call_auth("authz.allowed", bad, as_op.clone());
    assert_eq!(r["error"]["code"], "bad_request", "{r}");
    assert!(r["error"]["message"].as_str().unwrap().starts_with("resources[1]"), "{r}");
    // Unknown fields are refused by name.
    let r = d.call_auth("authz.check_many", json!({"checks": [], "subject": "op"}), as_op);
    assert_eq!(r["error"]["code"], "bad_request", "{r}");
}

#[test]
fn allowed_lists_what_check_allows_in_the_order_given() {
    let (d, op, _) = batch_plant();
    let as_op = json!({"token": op});
    let ask = |auth: &Value, params: Value| d.call_auth("authz.allowed", params, auth.clone());
    let all = ["line1/p1", "line1/p2", "line2/p1", "line1/unlisted", "line1/p1", "*"];
    let r = ask(&as_op, json!({"permission": "tag.write", "access": "write", "resources": all}));
    assert_eq!(r["result"]["allowed"], json!(["line1/p1", "line1/unlisted", "line1/p1"]), "{r}");
    // Exactly the resources authz.check allows, one by one.
    for access in ["read", "write"] {
        let r = ask(&as_op, json!({"permission": "tag.write", "access": access, "resources": all}));
        let want: Vec<&str> = all
            .iter()
            .copied()
            .filter(|res| {
                let c = d.call_auth("authz.check", q(None, "tag.write", res, access), as_op.clone());
                c["result"]["decision"] == "allow"
            })
            .collect();
        assert_eq!(r["result"]["allowed"], json!(want), "{access}");
    }
    // About someone else: users.view first (unknown names alike), then the name is looked up.
    let r = ask(&as_op, json!({"subject": "other", "permission": "tag.write", "resources": all}));
    assert_eq!(r["error"]["code"], "forbidden", "{r}");
    let r = ask(&as_op, json!({"subject": "ghost", "permission": "tag.write", "resources": all}));
    assert_eq!(r["error"]["code"], "forbidden", "{r}");
    let r = ask(&Value::Null, json!({"subject": "ghost", "permission": "tag.write", "resources": all}));
    assert_eq!(r["error"]["code"], "not_found", "{r}");
    let r = ask(&Value::Null, json!({"subject": "op", "permission": "tag.write", "access": "write", "resources": all}));
    assert_eq!(r["result"]["allowed"], json!(["line1/p1", "line1/unlisted", "line1/p1"]), "{r}");
    // A superuser may use every resource asked about.
    let r = ask(&Value::Null, json!({"permission": "tag.write", "access": "write", "resources": all}));
    assert_eq!(r["result"]["allowed"], json!(all), "{r}");

    // The CLI: one id a line for a person; exit 0.
    let out =
        d.cli_with(&["allowed", "tag.write", "--write", "line1/p2", "line1/p1"], None, &[("GATEWARDEN_TOKEN", &op)]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line1/p1\n");
    let (code, v) = d.cli_json(&["allowed", "tag.write", "--write", "--subject", "op", "line1/p2", "line1/p1"]);
    assert_eq!((code, v), (0, json!({"allowed": ["line1/p1"]})));
}

#[test]
fn a_supervisor_lock_refuses_batched_writes_as_check_does() {
    let (d, op, boss) = batch_plant();
    let as_op = json!({"token": op});
    let as_boss = json!({"token": boss});
    let r = d.call_auth("supervisor.lock", json!({"l": "u", "reason": "changeover"}), as_boss.clone());
    assert!(r.get("result").is_some(), "{r}");
    let questions = [
        q(None, "tag.write", "line1/p1", "write"),
        q(None, "tag.write", "line1/p1", "read"),
        q(None, "tag.write", "line1/p2", "write"),
        q(None, "tag.write", "line1/p1", "write"),
    ];
    let results = ask_both_ways(&d, &as_op, &questions);
    let said: Vec<String> = results.iter().map(slot_says).collect();
    // Reads pass; a write the grants deny stays their deny; a write they allow is the lock's refusal.
    assert_eq!(said, ["error/supervisor_locked", "allow/allowed_by", "deny/denied_by", "error/supervisor_locked"]);
    assert_eq!(results[0]["error"]["lock"]["o"]["u"], "boss", "{}", results[0]);
    // The lock's owner (inside `l`) asks about op: the lock decides for op, not for the asker.
    d.ok(&["user", "grant", "boss", "users.view", "--read"]);
    let about_op = ask_both_ways(&d, &as_boss, &[q(Some("op"), "tag.write", "line1/p1", "write")]);
    assert_eq!(slot_says(&about_op[0]), "error/supervisor_locked");

    let params =
        |access: &str, resources: &[&str]| json!({"permission": "tag.write", "access": access, "resources": resources});
    let r = d.call_auth("authz.allowed", params("write", &["line1/p2", "line1/p1"]), as_op.clone());
    assert_eq!(r["error"]["code"], "supervisor_locked", "{r}");
    assert_eq!(r["error"]["lock"]["o"]["u"], "boss", "{r}");
    // Nothing the grants allow: nothing for the lock to refuse, as authz.check answers each.
    let r = d.call_auth("authz.allowed", params("write", &["line1/p2", "line2/p1"]), as_op.clone());
    assert_eq!(r["result"]["allowed"], json!([]), "{r}");
    let r = d.call_auth("authz.allowed", params("read", &["line1/p2", "line2/p1"]), as_op.clone());
    assert_eq!(r["result"]["allowed"], json!(["line1/p2"]), "{r}");

    // `check-many` from a file of JSON lines: exit 1 when any question is not allowed, 0 when all are.
    let file = write_file(&d, "q.jsonl", &format!("{}\n\n{}\n", questions[0], questions[1]));
    let (code, v) = as_token(&d, &op, &["check-many", &file]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["results"][0]["error"]["code"], "supervisor_locked", "{v}");
    d.call_auth("supervisor.unlock", json!({}), as_boss);
    let file = write_file(&d, "q.json", &json!([questions[0], questions[1]]).to_string());
    let (code, v) = as_token(&d, &op, &["check-many", &file]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["results"][0]["decision"], "allow", "{v}");
}

/// Every kind of change reaches the index by what it changed (issue 15: no rebuild per change),
/// foreign-key cascades included, and a restart (a fresh build from the database) answers the same.
#[test]
fn the_index_follows_each_change_and_its_cascades() {
    let mut d = Daemon::start();
    let inv = write_file(&d, "inv.csv", "device,line\nline1/press3,1\nline1/press4,1\n");
    d.ok(&["resource", "import", &inv]);
    d.ok(&["group", "add", "presses"]);
    d.ok(&["group", "member-add", "presses", "line1/press3", "line1/press4"]);
    d.ok(&["role", "add", "operators"]);
    d.ok(&["role", "grant", "operators", "tag.write", "--write", "--resource", "@presses"]);
    d.ok(&["role", "add", "readers"]);
    d.ok(&["role", "grant", "readers", "tag.read", "--read", "--resource", "line1/*"]);
    user(&d, "op", &["operators", "readers"]);
    user(&d, "other", &["readers"]);
    let answers = |d: &Daemon| {
        [
            check(d, "op", "tag.write", "line1/press3", true),
            check(d, "op", "tag.write", "line1/press4", true),
            check(d, "op", "tag.read", "line1/press4", false),
            check(d, "other", "tag.read", "line1/press4", false),
        ]
    };
    assert_eq!(answers(&d), ["allow", "allow", "allow", "allow"]);

    // A resource deleted leaves its group (a cascade in the database).
    d.ok(&["resource", "delete", "line1/press4"]);
    assert_eq!(answers(&d), ["allow", "deny", "allow", "allow"]);
    // A group member taken out, then the group deleted.
    d.ok(&["group", "member-remove", "presses", "line1/press3"]);
    assert_eq!(answers(&d), ["deny", "deny", "allow", "allow"]);
    d.ok(&["group", "member-add", "presses", "line1/press3"]);
    assert_eq!(answers(&d), ["allow", "deny", "allow", "allow"]);
    d.ok(&["group", "delete", "presses"]);
    assert_eq!(answers(&d), ["deny", "deny", "allow", "allow"]);
    // A group of the same name again: the grant's selector names it.
    d.ok(&["group", "add", "presses"]);
    d.ok(&["group", "member-add", "presses", "line1/press3"]);
    assert_eq!(answers(&d), ["allow", "deny", "allow", "allow"]);
    // A deny on the role reaches every holder.
    d.ok(&["role", "grant", "readers", "tag.read", "--read", "--resource", "line1/press4", "--deny"]);
    assert_eq!(answers(&d), ["allow", "deny", "deny", "deny"]);
    // A role deleted leaves its holders (a cascade), the other role stays.
    d.ok(&["role", "delete", "operators"]);
    assert_eq!(answers(&d), ["deny", "deny", "deny", "deny"]);
    d.ok(&["role", "revoke", "readers", "tag.read", "--resource", "line1/press4"]);
    assert_eq!(answers(&d), ["deny", "deny", "allow", "allow"]);
    // An account disabled, then deleted.
    d.ok(&["user", "disable", "other"]);
    assert_eq!(answers(&d), ["deny", "deny", "allow", "deny"]);

    let before = answers(&d);
    d.restart();
    assert_eq!(answers(&d), before);

    d.ok(&["user", "delete", "other"]);
    d.refused(&["check", "other", "tag.read", "line1/press4"], "not_found");
    assert_eq!(check(&d, "op", "tag.read", "line1/press4", false), "allow");
}
