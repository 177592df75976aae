//! The API reference, generated from the route table and the contract's types: `gatewarden api
//! schema` (JSON Schemas of every method), `docs/api.md` (the human reference) and
//! `docs/asyncapi.yaml` (every MQTT topic). A test fails when the committed docs differ from what
//! this module writes, so they are never older than the code.

use super::routes::{ROUTES, Route};
use crate::contract::catalog;
use crate::contract::topics::{self, Direction, Qos};
use crate::protocol::ErrorCode;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};
use std::fmt::Write;

/// One example request's params for every method, in the reference and checked against the method's
/// params schema by the tests.
pub fn example(method: &str) -> Option<Value> {
    Some(match method {
        "status" => json!({}),
        "audit.list" => json!({"since": 1_764_576_000_000_i64, "limit": 20}),
        "login" => json!({"user": "night", "password": "correct horse battery"}),
        "logout" => json!({}),
        "user.create" => json!({"name": "night", "display_name": "Night shift", "roles": ["operator"]}),
        "user.import" => {
            json!({"csv": "name,display_name,roles,password_hash,expires_at\nnight,Night shift,operator;viewer,,2027-01-31\n"})
        }
        "user.register" => json!({"name": "visitor", "password": "a long passphrase"}),
        "user.list" => json!({}),
        "user.show" => json!({"name": "night"}),
        "user.update" => json!({"name": "night", "add_roles": ["supervisor"], "expires_at": null}),
        "user.disable" | "user.enable" | "user.delete" => json!({"name": "night"}),
        "user.set_password" => json!({"name": "night", "password": "a new long passphrase"}),
        "user.copy_roles" => json!({"from": "night", "to": "day", "replace": false}),
        "user.unlock" => json!({"name": "night"}),
        "key.create" => json!({"name": "scada-1", "roles": ["operator"]}),
        "key.list" => json!({}),
        "key.revoke" => json!({"name": "scada-1"}),
        "role.create" => json!({"name": "operator", "description": "runs line 1"}),
        "role.import" => json!({"csv": "name,description\noperator,runs line 1\nnight,night shift\n"}),
        "role.list" => json!({}),
        "role.show" | "role.delete" => json!({"name": "operator"}),
        "role.grant" => {
            json!({"role": "operator", "permission": "tag.write", "read": true, "write": true, "resources": ["line1/*"]})
        }
        "role.revoke" => json!({"role": "operator", "permission": "tag.write"}),
        "resource.add" => json!({"id": "line1/pump1", "kind": "tag", "attributes": {"unit": "bar"}}),
        "resource.list" => json!({"kind": "tag"}),
        "resource.delete" => json!({"id": "line1/pump1"}),
        "resource.import" => json!({"csv": "id,kind\nline1/pump1,tag\nline1/pump2,tag\n"}),
        "group.create" => json!({"name": "line1-pumps", "description": "every pump of line 1"}),
        "group.list" => json!({}),
        "group.add" | "group.remove" => json!({"group": "line1-pumps", "resources": ["line1/pump1"]}),
        "group.import" => json!({"group": "line1-pumps", "csv": "id\nline1/pump1\nline1/pump2\n"}),
        "group.delete" => json!({"name": "line1-pumps"}),
        "authz.check" | "authz.explain" => {
            json!({"subject": "night", "permission": "tag.write", "resource": "line1/pump1", "access": "write"})
        }
        "authz.check_many" => json!({"checks": [
            {"permission": "tag.read", "resource": "line1/pump1"},
            {"permission": "tag.write", "resource": "line1/pump1", "access": "write"},
            {"subject": "night", "permission": "tag.write", "resource": "line1/pump2", "access": "write"}
        ]}),
        "authz.allowed" => {
            json!({"permission": "tag.write", "access": "write", "resources": ["line1/pump1", "line1/pump2", "line2/pump1"]})
        }
        "authz.who_can" => json!({"permission": "tag.write", "resource": "line1/pump1", "access": "write"}),
        "object.create" => json!({
            "kind": "recipe",
            "resource": "line1/mixer2",
            "name": "Batch 7 dough",
            "data": {"flour_kg": 250, "water_l": 160}
        }),
        "object.show" | "object.delete" | "object.who_can" => json!({"id": 42}),
        "object.list" => json!({"kind": "recipe", "resource": "line1/mixer2", "limit": 100}),
        "object.grant" | "object.revoke" => json!({"ids": [42, 43], "user": "night"}),
        "settings.get" => json!({"key": "plant.name"}),
        "settings.set" => json!({"key": "plant.name", "value": "Press shop 2"}),
        "session.open" => json!({"type": "panel", "project": "line1", "host": "panel-3", "address": "10.0.4.23"}),
        "session.heartbeat" | "session.close" | "session.show" => json!({}),
        "session.list" => json!({"all": false}),
        "session.terminate" => json!({"session_id": 42, "reason": "panel frozen, replaced"}),
        "supervisor.lock" => json!({"l": "u", "c": "u", "reason": "line 1 changeover", "expires_in": "2h"}),
        "supervisor.unlock" => json!({}),
        "supervisor.message" => json!({"text": "Line 1 stops at 14:00 for the changeover"}),
        "directory.test" => json!({"user": "jsmith", "password": "correct horse battery"}),
        "directory.sync" => json!({}),
        "policy.export" => json!({}),
        "policy.plan" | "policy.apply" => json!({"prune": false, "policy": {
            "version": 1,
            "settings": {"plant.name": "Plant 7"},
            "resources": {"line1/pump1": {"kind": "tag", "attributes": {"unit": "bar"}}},
            "groups": {"line1-pumps": {"members": ["line1/pump1"]}},
            "roles": {"operator": {"description": "runs line 1", "grants": [
                {"permission": "tag.write", "resource": "@line1-pumps", "access": "read,write"}]}},
            "users": {"night": {"display_name": "Night shift", "roles": ["operator"]}}
        }}),
        _ => return None,
    })
}

/// The auth an example request carries, by what the method needs.
fn example_auth(r: &Route) -> Value {
    match r.name {
        "login" | "user.register" | "status" => Value::Null,
        "session.open" => json!({"user": "night", "password": "correct horse battery"}),
        "session.heartbeat" | "session.close" | "session.show" => json!({"token": "gws_..."}),
        _ => json!({"token": "gwt_..."}),
    }
}

fn settings() -> SchemaSettings {
    SchemaSettings::draft2020_12()
}

/// `gatewarden api schema`: one JSON document with every method (params and result schemas,
/// permission, write class, password, error codes) and every error code.
pub fn schema_document() -> Value {
    let methods: Vec<Value> = ROUTES
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "summary": r.summary,
                "permission": r.needs.describe(),
                "write_class": r.write_class,
                "verifies_password": r.password,
                "errors": r.errors().iter().map(|e| e.as_str()).collect::<Vec<_>>(),
                "params": (r.params)(),
                "result": (r.result)(),
            })
        })
        .collect();
    let errors: Map<String, Value> =
        ErrorCode::ALL.iter().map(|e| (e.as_str().to_string(), Value::from(e.meaning()))).collect();
    json!({
        "title": "gatewarden request methods",
        "version": env!("CARGO_PKG_VERSION"),
        "schema_dialect": settings().meta_schema,
        "request": crate::contract::schema::<crate::protocol::Request>(),
        "response": crate::contract::schema::<crate::protocol::Response>(),
        "errors": errors,
        "methods": methods,
    })
}

/// How a schema node reads in a table: `string`, `integer or null`, `array of RoleView`, `"a" | "b"`.
fn type_text(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("[{name}](#{})", anchor(name));
    }
    if let Some(v) = s.get("const") {
        return format!("`{v}`");
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        return e.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(" \\| ");
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            return alts.iter().map(type_text).collect::<Vec<_>>().join(" or ");
        }
    }
    let one = |t: &str| match t {
        "array" => match s.get("items") {
            Some(items) => format!("array of {}", type_text(items)),
            None => "array".into(),
        },
        "object" => match s.get("additionalProperties") {
            Some(v) if v.is_object() => format!("map to {}", type_text(v)),
            _ => "object".into(),
        },
        t => t.into(),
    };
    match s.get("type") {
        Some(Value::String(t)) => one(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).map(one).collect::<Vec<_>>().join(" or "),
        _ if s.as_bool() == Some(true) || s.as_object().is_some_and(|o| o.keys().all(|k| k == "description")) => {
            "any JSON".into()
        }
        _ => "see schema".into(),
    }
}

fn anchor(name: &str) -> String {
    format!("type-{}", name.to_ascii_lowercase())
}

/// One line of table text: pipes and newlines escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The fields of an object schema as a table; other schemas as one line.
fn describe(out: &mut String, s: &Value) {
    let props = s.get("properties").and_then(Value::as_object);
    match props {
        Some(props) if !props.is_empty() => {
            let required: Vec<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            out.push_str("| field | type | | description |\n|---|---|---|---|\n");
            for (name, p) in props {
                let desc = p.get("description").and_then(Value::as_str).unwrap_or("");
                let default = p.get("default").map(|d| format!(" Default `{d}`.")).unwrap_or_default();
                let req = if required.contains(&name.as_str()) { "required" } else { "optional" };
                let _ = writeln!(out, "| `{name}` | {} | {req} | {}{} |", type_text(p), cell(desc), default);
            }
        }
        _ if s.get("type").and_then(Value::as_str) == Some("object")
            && matches!(s.get("additionalProperties"), None | Some(Value::Bool(false))) =>
        {
            out.push_str("No fields: `{}`.\n");
        }
        _ if s.get("oneOf").is_some() || s.get("anyOf").is_some() => {}
        _ => {
            let _ = writeln!(out, "{}.", type_text(s));
        }
    }
    alternatives(out, s);
}

/// The alternatives of a schema (`oneOf`, `anyOf`), one bullet each: the fields that tell them
/// apart, the named type they add, what they mean.
fn alternatives(out: &mut String, s: &Value) {
    let Some((key, alts)) =
        ["oneOf", "anyOf"].iter().find_map(|k| s.get(*k).and_then(Value::as_array).map(|a| (*k, a)))
    else {
        return;
    };
    let _ = writeln!(out, "\n{}:\n", if key == "oneOf" { "Exactly one of" } else { "One of" });
    for alt in alts {
        let mut parts: Vec<String> = alt
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.iter().filter_map(|(name, v)| v.get("const").map(|c| format!("`{name}`: `{c}`"))).collect())
            .unwrap_or_default();
        if let Some(r) = alt.get("$ref") {
            parts.push(format!("the fields of {}", type_text(&json!({"$ref": r}))));
        } else if parts.is_empty() {
            parts.push(type_text(alt));
        }
        let d = alt.get("description").and_then(Value::as_str).unwrap_or("");
        let d = if d.is_empty() { String::new() } else { format!(": {}", cell(d)) };
        let _ = writeln!(out, "- {}{d}", parts.join(", "));
    }
}

/// Every named type of every method, once.
fn collect_defs(defs: &mut std::collections::BTreeMap<String, Value>, s: &Value) {
    if let Some(d) = s.get("$defs").and_then(Value::as_object) {
        for (k, v) in d {
            defs.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// `docs/api.md`: every method with its params, result, errors, permission and one example.
pub fn markdown() -> String {
    let mut out = String::from(INTRO);
    method_index(&mut out);
    let mut defs = std::collections::BTreeMap::new();
    for r in ROUTES {
        method_section(&mut out, r, &mut defs);
    }
    types_section(&mut out, &defs);
    out.push_str("## Error codes\n\n| code | meaning |\n|---|---|\n");
    for e in ErrorCode::ALL {
        let _ = writeln!(out, "| `{}` | {} |", e.as_str(), cell(e.meaning()));
    }
    out
}

const INTRO: &str = "# gatewarden API reference\n\n\
    Generated by `gatewarden api reference` from the route table and the contract's types \
    (src/api/routes.rs, src/contract/); do not edit by hand. The same methods are served on the \
    control socket and over MQTT ([hmi.md](hmi.md), [asyncapi.yaml](asyncapi.yaml)); \
    `gatewarden api schema` prints the JSON Schemas (draft 2020-12) this page is made from.\n\n\
    A request is `{\"id\": ..., \"method\": \"...\", \"params\": {...}, \"auth\": {...}}`; a reply is \
    `{\"id\": ..., \"result\": ...}` or `{\"id\": ..., \"error\": {\"code\": \"...\", \"message\": \"...\"}}`. \
    `auth` is `{\"token\": ...}` (a login or session token), `{\"key\": ...}` (an API key) or \
    `{\"user\": ..., \"password\": ...}`. Unknown params are refused with `bad_request` naming them. \
    Times are unix milliseconds unless a field's name ends in `_s` (seconds); an actor (who did \
    something) is always `{\"u\": user or null, \"key_id\": API key name or null}`.\n\n";

fn method_index(out: &mut String) {
    out.push_str("## Methods\n\n| method | permission | write-class | |\n|---|---|---|---|\n");
    for r in ROUTES {
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} | {} |",
            r.name,
            r.name.replace('.', ""),
            r.needs.describe(),
            if r.write_class { "yes" } else { "" },
            cell(r.summary)
        );
    }
    out.push('\n');
}

/// One method: what it needs, its errors, its params and result, an example request.
fn method_section(out: &mut String, r: &Route, defs: &mut std::collections::BTreeMap<String, Value>) {
    let (params, result) = ((r.params)(), (r.result)());
    let (params, result) = (params.as_value(), result.as_value());
    collect_defs(defs, params);
    collect_defs(defs, result);
    let end = if r.summary.ends_with(['?', '.']) { "" } else { "." };
    let _ = writeln!(out, "## {}\n\n{}{end}\n", r.name, capitalised(r.summary));
    if let Some(d) = params.get("description").and_then(Value::as_str) {
        let _ = writeln!(out, "{}\n", d.trim());
    }
    let _ = writeln!(out, "- Permission: {}", r.needs.describe());
    if r.write_class {
        out.push_str("- Write-class: refused with `supervisor_locked` for callers outside the lock's `l`\n");
    }
    if r.password {
        out.push_str("- Hashes or verifies a password: queued behind the password gate\n");
    }
    let errors: Vec<String> = r.errors().iter().map(|e| format!("`{}`", e.as_str())).collect();
    let _ = writeln!(out, "- Errors: {}\n", errors.join(", "));
    out.push_str("**Params**\n\n");
    describe(out, params);
    out.push_str("\n**Result**\n\n");
    describe(out, result);
    if let Some(p) = example(r.name) {
        let mut req = json!({"id": 1, "method": r.name, "params": p});
        let auth = example_auth(r);
        if !auth.is_null() {
            req["auth"] = auth;
        }
        let _ = writeln!(out, "\n**Example**\n\n```json\n{req}\n```");
    }
    out.push('\n');
}

/// Every named type the methods use, once, with its fields or alternatives.
fn types_section(out: &mut String, defs: &std::collections::BTreeMap<String, Value>) {
    out.push_str("## Types\n\n");
    for (name, s) in defs {
        let _ = writeln!(out, "### <a id=\"{}\"></a>{name}\n", anchor(name));
        if let Some(d) = s.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "{}\n", d.trim());
        }
        describe(out, s);
        out.push('\n');
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// One channel of the AsyncAPI document, with the one operation on it.
struct Channel<'a> {
    id: &'a str,
    /// Empty: a topic the requester chose (the reply).
    address: &'a str,
    summary: &'a str,
    payload: Value,
    /// The daemon publishes (else it subscribes).
    send: bool,
    retained: bool,
    qos: Qos,
}

/// The channels, operations and messages of the AsyncAPI document, as they are added.
#[derive(Default)]
struct Interface {
    channels: Map<String, Value>,
    operations: Map<String, Value>,
    messages: Map<String, Value>,
}

fn parameter_text(p: &str) -> &'static str {
    match p {
        "prefix" => "gatewarden/<site.id>: the site's topic prefix",
        "client_id" => "the MQTT client id of the HMI or console",
        "session_id" => "the session's id (session.open's result)",
        _ => "",
    }
}

impl Interface {
    fn add(&mut self, c: Channel<'_>) {
        let id = c.id;
        let params: Map<String, Value> = c
            .address
            .split('/')
            .filter_map(|w| w.strip_prefix('{')?.strip_suffix('}'))
            .map(|p| (p.to_string(), json!({"description": parameter_text(p)})))
            .collect();
        let mut ch = json!({
            "address": if c.address.is_empty() { Value::Null } else { Value::from(c.address) },
            "description": c.summary,
            "messages": {id: {"$ref": format!("#/components/messages/{id}")}},
        });
        if !params.is_empty() {
            ch["parameters"] = Value::Object(params);
        }
        self.channels.insert(id.into(), ch);
        self.messages.insert(id.into(), json!({"name": id, "contentType": "application/json", "payload": c.payload}));
        let (qos, note) = match c.qos {
            Qos::Fixed(n) => (n, ""),
            Qos::Configured => (1, " QoS is `mqtt.qos` from the config (default 1)."),
            Qos::Clients => (1, " QoS 0 and 1 are accepted."),
        };
        let mut op = json!({
            "action": if c.send { "send" } else { "receive" },
            "channel": {"$ref": format!("#/channels/{id}")},
            "summary": format!("{}{note}", c.summary),
            "messages": [{"$ref": format!("#/channels/{id}/messages/{id}")}],
            "bindings": {"mqtt": {"qos": qos, "retain": c.retained, "bindingVersion": "0.2.0"}},
        });
        if id == "rpc-request" {
            op["reply"] = json!({
                "address": {"location": "$message.header#/responseTopic",
                            "description": "MQTT v5: the response topic (with correlation data); MQTT 3.1.1: `reply_to` in the payload. Either must be below hmi/<client id>/ or {prefix}/rpc/reply/<client id>/."},
                "channel": {"$ref": "#/channels/rpc-reply"},
                "messages": [{"$ref": "#/channels/rpc-reply/messages/rpc-reply"}],
            });
        }
        self.operations.insert(format!("{}-{id}", if c.send { "publish" } else { "serve" }), op);
    }
}

/// `docs/asyncapi.yaml` (AsyncAPI 3.0): every topic, who publishes it, retained or not, its QoS and
/// its payload's schema; the request/reply exchange.
pub fn asyncapi() -> Value {
    let mut g = SchemaSettings::draft07().with(|s| s.definitions_path = "/components/schemas/".into()).into_generator();
    let mut api = Interface::default();
    for t in topics::all() {
        api.add(Channel {
            id: t.id,
            address: t.address,
            summary: t.summary,
            payload: (t.payload)(&mut g).to_value(),
            send: t.direction == Direction::Daemon,
            retained: t.retained,
            qos: t.qos,
        });
    }
    for e in catalog::events() {
        api.add(Channel {
            id: &format!("event-{}", e.name.replace('.', "-")),
            address: &format!("{{prefix}}/events/{}", e.name),
            summary: e.summary,
            payload: (e.schema)(&mut g).to_value(),
            send: true,
            retained: false,
            qos: Qos::Configured,
        });
    }
    let schemas: Map<String, Value> = g.take_definitions(true).into_iter().collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "gatewarden MQTT interface",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Generated by `gatewarden api asyncapi` from the code (src/contract/); do not edit by hand. \
                The request methods carried by rpc-request are described in api.md and by `gatewarden api schema`. \
                Times are unix milliseconds; an actor is {\"u\": user or null, \"key_id\": API key name or null}.",
            "license": {"name": "MIT OR Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "plant-broker": {
                "host": "broker.plant.example:8883",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "The plant's MQTT broker (mosquitto example config: packaging/mosquitto.conf.example). \
                    MQTT 3.1.1 clients are served too, replying on reply_to.",
            }
        },
        "channels": api.channels,
        "operations": api.operations,
        "components": {"messages": api.messages, "schemas": schemas},
    })
}

/// YAML for a JSON value: block mappings and sequences, every string double-quoted (a YAML
/// double-quoted scalar is a JSON string), so no value can be read back as another type.
pub fn yaml(v: &Value) -> String {
    fn key(k: &str) -> String {
        if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)) {
            k.to_string()
        } else {
            Value::from(k).to_string()
        }
    }
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::Object(m) if m.is_empty() => Some("{}".into()),
            Value::Array(a) if a.is_empty() => Some("[]".into()),
            Value::Object(_) | Value::Array(_) => None,
            v => Some(v.to_string()),
        }
    }
    fn write(out: &mut String, v: &Value, indent: usize) {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match scalar(v) {
                        Some(s) => {
                            let _ = writeln!(out, "{pad}{}: {s}", key(k));
                        }
                        None => {
                            let _ = writeln!(out, "{pad}{}:", key(k));
                            write(out, v, indent + 2);
                        }
                    }
                }
            }
            Value::Array(a) => {
                for v in a {
                    match scalar(v) {
                        Some(s) => {
                            let _ = writeln!(out, "{pad}- {s}");
                        }
                        None => {
                            // The first line of the item goes after the dash.
                            let mut inner = String::new();
                            write(&mut inner, v, indent + 2);
                            let _ = write!(out, "{pad}- {}", &inner[indent + 2..]);
                        }
                    }
                }
            }
            v => {
                let _ = writeln!(out, "{pad}{}", scalar(v).unwrap_or_default());
            }
        }
    }
    let mut out = String::from("# Generated by `gatewarden api asyncapi`; do not edit by hand.\n");
    write(&mut out, v, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_an_example_its_params_schema_accepts() {
        for r in ROUTES {
            let ex = example(r.name).unwrap_or_else(|| panic!("{} has no example in reference::example", r.name));
            let schema = (r.params)().to_value();
            let v = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{}: bad schema: {e}", r.name));
            let errors: Vec<String> = v.iter_errors(&ex).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: the example {ex} does not fit its params: {errors:?}", r.name);
        }
    }

    #[test]
    fn yaml_reads_back_as_the_same_json() {
        let v = json!({"a": {"b": [1, "two", {"c": null, "d": [true, {}]}], "e f": "x: y"}, "g": []});
        let y = yaml(&v);
        assert!(y.contains("\"e f\": \"x: y\""), "{y}");
        assert!(
            y.contains("  b:\n    - 1\n    - \"two\"\n    - c: null\n      d:\n        - true\n        - {}\n"),
            "{y}"
        );
    }
}
