//! The published contract, held against the real daemon. Every method is called over the control
//! socket with real params; every reply is validated, by an independent JSON Schema validator
//! (the `jsonschema` crate), against the schema that `gatewarden api schema` publishes for it, and
//! every error code seen must be one the method declares. The committed reference (docs/api.md,
//! docs/asyncapi.yaml) must be exactly what the binary writes.

mod common;

use common::{BIN, Daemon, PW};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// What `gatewarden api schema` says about each method.
struct Declared {
    result: jsonschema::Validator,
    params: jsonschema::Validator,
    errors: Vec<String>,
}

struct Contract {
    methods: BTreeMap<String, Declared>,
    response: jsonschema::Validator,
    /// Methods that answered with a result that fits its schema.
    answered: BTreeSet<String>,
    /// Error codes seen, per method.
    refused: BTreeMap<String, BTreeSet<String>>,
}

fn api(args: &[&str]) -> String {
    let out = Command::new(BIN).arg("api").args(args).output().expect("run gatewarden api");
    assert!(out.status.success(), "gatewarden api {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn validator(schema: &Value, what: &str) -> jsonschema::Validator {
    jsonschema::draft202012::new(schema).unwrap_or_else(|e| panic!("{what}: not a valid draft 2020-12 schema: {e}"))
}

fn errors_of(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

impl Contract {
    fn load() -> Contract {
        let doc: Value = serde_json::from_str(&api(&["schema"])).expect("api schema is JSON");
        let mut methods = BTreeMap::new();
        for m in doc["methods"].as_array().expect("methods") {
            let name = m["name"].as_str().unwrap().to_string();
            let declared = Declared {
                result: validator(&m["result"], &format!("{name} result")),
                params: validator(&m["params"], &format!("{name} params")),
                errors: m["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect(),
            };
            methods.insert(name, declared);
        }
        Contract {
            methods,
            response: validator(&doc["response"], "response"),
            answered: BTreeSet::new(),
            refused: BTreeMap::new(),
        }
    }

    /// Checks one reply to `method` (called with `params`): the envelope, then the result against the
    /// method's result schema or the error's code against its declared codes.
    fn check(&mut self, method: &str, params: &Value, reply: &Value) {
        let declared = self.methods.get(method).unwrap_or_else(|| panic!("{method} is not in api schema"));
        let bad = errors_of(&self.response, reply);
        assert!(bad.is_empty(), "{method}: the reply is not a Response: {bad:?}\n{reply}");
        if let Some(result) = reply.get("result") {
            let bad = errors_of(&declared.params, params);
            assert!(bad.is_empty(), "{method}: the daemon accepted params its schema refuses: {bad:?}\n{params}");
            let bad = errors_of(&declared.result, result);
            assert!(bad.is_empty(), "{method}: the result does not fit its schema: {bad:?}\n{result:#}");
            self.answered.insert(method.to_string());
        } else {
            let code = reply["error"]["code"].as_str().unwrap_or_else(|| panic!("{method}: no error code: {reply}"));
            assert!(
                declared.errors.iter().any(|e| e == code),
                "{method} answered {code}, which it does not declare ({:?}): {reply}",
                declared.errors
            );
            self.refused.entry(method.to_string()).or_default().insert(code.to_string());
        }
    }
}

/// A connection that checks every reply against the contract.
struct Client<'a> {
    d: &'a Daemon,
    c: &'a mut Contract,
}

impl Client<'_> {
    fn send(&mut self, method: &str, params: Value, auth: Option<Value>) -> Value {
        let mut req = json!({"id": 7, "method": method, "params": params});
        if let Some(a) = auth {
            req["auth"] = a;
        }
        let reply = self.d.connect().expect("connect").send(&req);
        self.c.check(method, &params, &reply);
        reply
    }

    /// As root on the console (the built-in admin); the result, which must be there.
    fn ok(&mut self, method: &str, params: Value) -> Value {
        self.ok_as(method, params, None)
    }

    fn ok_as(&mut self, method: &str, params: Value, auth: Option<Value>) -> Value {
        let reply = self.send(method, params, auth);
        assert!(reply.get("result").is_some(), "{method} failed: {reply}");
        reply["result"].clone()
    }

    fn refused(&mut self, method: &str, params: Value, auth: Option<Value>, code: &str) {
        let reply = self.send(method, params, auth);
        assert_eq!(reply["error"]["code"], code, "{method}: {reply}");
    }
}

#[test]
fn every_method_answers_what_its_schema_declares() {
    // A directory nobody answers at: its methods and the status still answer what they declare.
    let d = Daemon::start_with(
        "[accounts]\nself_registration = true\n[license]\nseats = 2\n\
         [directory]\nurl = \"ldap://127.0.0.1:9\"\nuser_base = \"dc=plant,dc=test\"\ntimeout = \"300ms\"\n",
    );
    let mut contract = Contract::load();
    let mut c = Client { d: &d, c: &mut contract };

    c.ok("status", json!({}));
    c.ok("role.create", json!({"name": "operator", "description": "runs line 1"}));
    c.ok("role.create", json!({"name": "spare"}));
    c.refused("role.create", json!({"name": "operator"}), None, "conflict");
    c.ok("role.import", json!({"csv": "name,description\nshift-a,first shift\nshift-b,\n"}));
    c.refused("role.import", json!({"csv": "name\nshift-a\n"}), None, "bad_request");
    c.ok("resource.add", json!({"id": "line1/pump1", "kind": "tag", "attributes": {"unit": "bar"}}));
    c.ok("resource.import", json!({"csv": "id,kind\nline1/pump2,tag\nline1/pump3,tag\n"}));
    c.ok("resource.list", json!({"kind": "tag"}));
    c.ok("group.create", json!({"name": "pumps", "description": "every pump of line 1"}));
    c.ok("group.add", json!({"group": "pumps", "resources": ["line1/pump1"]}));
    c.ok("group.import", json!({"group": "pumps", "csv": "id\nline1/pump2\n"}));
    c.ok("group.remove", json!({"group": "pumps", "resources": ["line1/pump2"]}));
    c.ok("group.list", json!({}));
    c.ok(
        "role.grant",
        json!({"role": "operator", "permission": "tag.write", "read": true, "write": true, "resources": ["line1/*"]}),
    );
    c.ok("role.grant", json!({"role": "operator", "permission": "sessions.view", "read": true, "resources": ["*"]}));
    c.ok("role.grant", json!({"role": "spare", "permission": "tag.read", "read": true, "resources": ["@pumps"]}));
    c.ok("user.create", json!({"name": "night", "password": PW, "display_name": "Night shift", "roles": ["operator"]}));
    c.ok("user.create", json!({"name": "day", "roles": ["spare"]}));
    c.ok(
        "user.import",
        json!({"csv": "name,display_name,roles,expires_at\nbulk-1,Bulk one,spare;shift-a,2099-01-31\nbulk-2,,,\n"}),
    );
    c.refused("user.import", json!({"csv": "name,roles\nbulk-3,ghost-role\n"}), None, "bad_request");
    c.refused("user.show", json!({"name": "ghost"}), None, "not_found");
    c.ok("user.register", json!({"name": "visitor", "password": PW}));
    c.ok("user.list", json!({}));
    c.ok("user.show", json!({"name": "night"}));
    c.ok("user.update", json!({"name": "night", "display_name": "Night", "add_roles": ["spare"]}));
    c.ok("user.copy_roles", json!({"from": "night", "to": "day", "replace": false}));
    c.ok("user.disable", json!({"name": "day"}));
    c.ok("user.enable", json!({"name": "day"}));
    c.ok("user.set_password", json!({"name": "day", "password": PW}));
    c.refused("login", json!({"user": "day", "password": "wrong-password-1"}), None, "invalid_credentials");
    c.ok("user.unlock", json!({"name": "day"}));

    let login = c.ok("login", json!({"user": "night", "password": PW}));
    let token = json!({"token": login["token"]});
    c.ok_as("user.show", json!({}), Some(token.clone()));
    c.refused("user.list", json!({}), Some(token.clone()), "forbidden");
    c.ok_as(
        "authz.check",
        json!({"permission": "tag.write", "resource": "line1/pump1", "access": "write"}),
        Some(token.clone()),
    );
    c.ok_as("logout", json!({}), Some(token.clone()));
    c.refused("user.show", json!({}), Some(token), "unauthenticated");

    c.ok("key.create", json!({"name": "scada-1", "roles": ["operator"]}));
    c.ok("key.list", json!({}));
    c.ok("key.revoke", json!({"name": "scada-1"}));

    c.ok("role.list", json!({}));
    c.ok("role.show", json!({"name": "operator"}));
    c.ok(
        "authz.check",
        json!({"subject": "night", "permission": "tag.write", "resource": "line1/pump1", "access": "write"}),
    );
    c.ok(
        "authz.explain",
        json!({"subject": "night", "permission": "tag.write", "resource": "line1/pump1", "access": "write"}),
    );
    c.ok(
        "authz.explain",
        json!({"subject": "day", "permission": "tag.write", "resource": "line9/x", "access": "write"}),
    );
    c.ok("authz.who_can", json!({"permission": "tag.write", "resource": "line1/pump1", "access": "write"}));
    // A batch: answers, and errors in their slots (an unknown subject, a malformed id), both in the schema.
    let many = c.ok(
        "authz.check_many",
        json!({"checks": [
            {"subject": "night", "permission": "tag.write", "resource": "line1/pump1", "access": "write"},
            {"subject": "nobody-here", "permission": "tag.read", "resource": "line1/pump1"},
            {"permission": "tag.read", "resource": "line1//pump1"}
        ]}),
    );
    assert_eq!(many["results"][1]["error"]["code"], "not_found", "{many}");
    assert_eq!(many["results"][2]["error"]["code"], "bad_request", "{many}");
    c.ok(
        "authz.allowed",
        json!({"subject": "night", "permission": "tag.write", "resources": ["line1/pump1", "line2/x"]}),
    );
    c.refused(
        "authz.allowed",
        json!({"subject": "nobody-here", "permission": "tag.read", "resources": []}),
        None,
        "not_found",
    );

    // Objects: created, read, listed, explained, given and taken, asked about, deleted.
    let recipe = json!({"kind": "tag.write", "resource": "line1/pump1", "name": "Flush", "data": {"bar": 4}});
    let o = c.ok("object.create", recipe.clone());
    let id = o["id"].clone();
    c.refused("object.create", json!({"kind": "no.such", "resource": "line1/pump1", "name": "x"}), None, "bad_request");
    c.ok("object.show", json!({"id": id}));
    c.refused("object.show", json!({"id": 999_999}), None, "not_found");
    c.ok("object.list", json!({"kind": "tag.write", "limit": 10}));
    c.ok("object.grant", json!({"ids": [id], "user": "visitor"}));
    let readers = c.ok("object.who_can", json!({"id": id}));
    assert!(readers["readers"].as_array().unwrap().iter().any(|r| r["user"] == "visitor"), "{readers}");
    c.ok("object.revoke", json!({"id": id, "user": "visitor"}));
    let asked = c.ok("authz.check", json!({"subject": "night", "object": id}));
    assert_eq!(asked["object"], id, "{asked}");
    c.refused("authz.check", json!({"object": id, "resource": "line1/pump1"}), None, "bad_request");
    c.ok("object.delete", json!({"id": id}));
    c.ok_as("object.create", recipe, Some(json!({"user": "day", "password": PW})));

    c.ok("settings.set", json!({"key": "plant.name", "value": "Press shop 2"}));
    c.ok("settings.get", json!({"key": "plant.name"}));
    c.ok("settings.get", json!({}));
    c.refused("settings.get", json!({"key": "no.such"}), None, "not_found");

    // Two seats: two panels, the third refused with the pools.
    let by_password = |name: &str| Some(json!({"user": name, "password": PW}));
    let panel = json!({"type": "panel", "project": "line1", "host": "panel-3", "address": "10.0.4.23"});
    let s1 = c.ok_as("session.open", panel.clone(), by_password("night"));
    let s2 = c.ok_as("session.open", json!({"type": "panel", "host": "panel-4"}), by_password("visitor"));
    c.refused("session.open", json!({"type": "panel", "host": "panel-5"}), by_password("day"), "license_limit_reached");
    let t1 = Some(json!({"token": s1["token"]}));
    c.ok_as("session.heartbeat", json!({}), t1.clone());
    let own = c.ok_as("session.show", json!({}), t1.clone());
    assert_eq!(own["session_id"], s1["session_id"], "{own}");
    c.ok("session.show", json!({"session_id": s2["session_id"]}));
    c.ok("session.list", json!({"all": true}));
    c.ok("session.terminate", json!({"session_id": s2["session_id"], "reason": "panel swap"}));
    c.refused("session.heartbeat", json!({}), Some(json!({"token": s2["token"]})), "session_terminated");
    c.ok_as("session.close", json!({}), t1.clone());
    c.refused("session.heartbeat", json!({}), t1, "session_expired");

    c.ok("supervisor.lock", json!({"l": "u", "c": "u", "reason": "line 1 changeover", "expires_in": "2h"}));
    let night = Some(json!({"user": "night", "password": PW}));
    let write = json!({"permission": "tag.write", "resource": "line1/pump1", "access": "write"});
    c.refused("authz.check", write.clone(), night.clone(), "supervisor_locked");
    let many = c.ok_as("authz.check_many", json!({"checks": [write.clone()]}), night.clone());
    assert_eq!(many["results"][0]["error"]["code"], "supervisor_locked", "{many}");
    let all = json!({"permission": "tag.write", "access": "write", "resources": ["line1/pump1"]});
    c.refused("authz.allowed", all, night.clone(), "supervisor_locked");
    let why = c.ok_as("authz.explain", write, night);
    assert_eq!((&why["decision"], &why["reason"]), (&json!("deny"), &json!("supervisor_locked")), "{why}");
    c.refused(
        "settings.set",
        json!({"key": "plant.name", "value": "x"}),
        Some(json!({"user": "night", "password": PW})),
        "forbidden",
    );
    c.ok("supervisor.message", json!({"text": "Line 1 stops at 14:00"}));
    c.ok("status", json!({}));
    let report = c.ok("directory.test", json!({"user": "jsmith"}));
    assert!(report["error"].as_str().is_some_and(|e| e.contains("unreachable")), "{report}");
    c.ok("directory.sync", json!({}));
    c.ok("supervisor.unlock", json!({}));

    // Policy as code: the whole policy out, planned back (nothing to do), a change applied, a bad one.
    let doc = c.ok("policy.export", json!({}));
    let plan = c.ok("policy.plan", json!({"policy": doc.clone(), "prune": true}));
    assert_eq!(plan["noop"], true, "{plan}");
    let mut changed = doc.clone();
    changed["settings"]["plant.name"] = json!("Plant 7");
    let applied = c.ok("policy.apply", json!({"policy": changed}));
    let one = applied["created"].as_u64().unwrap() + applied["changed"].as_u64().unwrap();
    assert_eq!((&applied["applied"], one), (&json!(true), 1), "{applied}");
    c.refused("policy.apply", json!({"policy": {"version": 2}}), None, "bad_request");

    c.ok("group.delete", json!({"name": "pumps"}));
    c.ok("resource.delete", json!({"id": "line1/pump3"}));
    c.ok("role.revoke", json!({"role": "spare", "permission": "tag.read"}));
    c.ok("role.delete", json!({"name": "spare"}));
    c.refused("user.delete", json!({"name": "admin"}), None, "self_delete");
    c.refused("user.disable", json!({"name": "admin"}), None, "protected_account");
    let removed = c.ok("user.delete", json!({"name": "day"}));
    assert_eq!(removed["objects_deleted"], 1, "{removed}");
    c.ok("audit.list", json!({"limit": 200}));

    // Unknown params are refused by every method, naming the field.
    let names: Vec<String> = c.c.methods.keys().cloned().collect();
    for m in &names {
        let reply = c.send(m, json!({"no_such_param": 1}), None);
        assert_eq!(reply["error"]["code"], "bad_request", "{m}: {reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains("no_such_param"), "{m}: {reply}");
    }

    let missing: Vec<&String> = names.iter().filter(|m| !contract.answered.contains(*m)).collect();
    assert!(missing.is_empty(), "methods never answered with a result (add them above): {missing:?}");
}

/// `docs/api.md` and `docs/asyncapi.yaml` are what the binary writes. With GATEWARDEN_BLESS=1 the
/// test rewrites them instead.
#[test]
fn the_committed_reference_is_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (file, args) in [("docs/api.md", ["reference"]), ("docs/asyncapi.yaml", ["asyncapi"])] {
        let fresh = api(&args);
        let path = root.join(file);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(fresh.as_str()) {
            if std::env::var_os("GATEWARDEN_BLESS").is_some() {
                std::fs::write(&path, &fresh).unwrap();
            } else {
                stale.push(format!("{file}: run `cargo run -q -- api {} > {file}`", args[0]));
            }
        }
    }
    assert!(stale.is_empty(), "the reference is older than the code:\n{}", stale.join("\n"));
}

/// The AsyncAPI document names every event the daemon can publish, every topic, and is internally
/// consistent: every `$ref` resolves.
#[test]
fn the_asyncapi_document_resolves_every_ref() {
    let doc = gatewarden::api::reference::asyncapi();
    fn walk(v: &Value, root: &Value, path: &str) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{path}: external $ref {r}"));
                    assert!(root.pointer(pointer).is_some(), "{path}: $ref {r} does not resolve");
                }
                for (k, v) in m {
                    walk(v, root, &format!("{path}/{k}"));
                }
            }
            Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| walk(v, root, &format!("{path}/{i}"))),
            _ => {}
        }
    }
    walk(&doc, &doc, "");
    assert_eq!(doc["asyncapi"], "3.0.0");
    for e in gatewarden::contract::catalog::events() {
        let id = format!("event-{}", e.name.replace('.', "-"));
        assert!(doc["channels"].get(&id).is_some(), "event {} has no channel", e.name);
    }
}

/// `docs/asyncapi.yaml` passes the AsyncAPI project's own parser (@asyncapi/parser, installed from
/// tools/asyncapi's lockfile by .ci/run): no error and no warning.
#[test]
fn the_asyncapi_document_passes_the_asyncapi_parser() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tool = root.join("tools/asyncapi");
    if !tool.join("node_modules/@asyncapi/parser").is_dir() {
        // .ci/run installs it first; a developer's first `cargo test` does it here, from the lockfile.
        let st = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix"])
            .arg(&tool)
            .status()
            .expect("npm (Debian: apt install npm) installs the AsyncAPI parser for this test");
        assert!(st.success(), "npm ci --prefix tools/asyncapi failed");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("asyncapi.yaml");
    std::fs::write(&file, api(&["asyncapi"])).unwrap();
    let out = Command::new("node").arg(tool.join("validate.mjs")).arg(&file).output().expect("run node");
    assert!(
        out.status.success(),
        "the AsyncAPI parser refuses the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
