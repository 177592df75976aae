//! The supervisor console (console/) in a real browser: headless Chromium (Debian's `chromium`),
//! driven by playwright-core from console/tests/console.mjs, loads the console that console/build.sh
//! built, from a real mosquitto configured as packaging/mosquitto.conf.example ships it (its
//! WebSockets listener and `http_dir`, the shipped ACL, broker logins), talking MQTT over WebSockets
//! to the real daemon, while HMIs played by MQTT clients hold sessions. The script reports what the
//! browser saw; this test checks it against what the HMIs and the daemon saw.
//!
//! `GATEWARDEN_CONSOLE_SCREENSHOTS=<dir>` also writes the screenshots of the main screens there
//! (docs/console/ holds the committed ones).

mod common;

use common::mqtt::{Broker, Hmi, shipped_daemon, wait_connected};
use common::{PW, as_token, user};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SITE: &str = "cons";
const XSS: &str = "<img src=x onerror=alert(1)>";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Builds the console into `out` with console/build.sh (which runs `npm ci` when node_modules is
/// missing). Fails, naming the package, when a tool is not installed.
fn build_console(out: &Path) {
    let root = env!("CARGO_MANIFEST_DIR");
    for (tool, package) in [("node", "nodejs"), ("npm", "npm")] {
        let found = Command::new(tool).arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
        assert!(found, "{tool} is not installed: apt install {package} (.ci/run does)");
    }
    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing: apt install chromium chromium-driver (.ci/run does)");
    let out_dir =
        Command::new("sh").arg(format!("{root}/console/build.sh")).arg(out).output().expect("run console/build.sh");
    assert!(
        out_dir.status.success(),
        "console/build.sh failed: {}{}",
        String::from_utf8_lossy(&out_dir.stdout),
        String::from_utf8_lossy(&out_dir.stderr)
    );
    assert!(out.join("index.html").exists() && out.join("console.js").exists() && out.join("mqtt.min.js").exists());
}

/// A request over MQTT v5 from `hmi` (client id `client`), answered on its own reply topic.
fn rpc(hmi: &mut Hmi, client: &str, body: Value) -> Value {
    let reply = format!("hmi/{client}/reply");
    hmi.request(&format!("gatewarden/{SITE}/rpc/request/{client}"), body.to_string(), &reply, b"c");
    hmi.next(Duration::from_secs(15), |m| m.topic == reply).unwrap_or_else(|| panic!("no reply to {body}")).json()
}

/// An HMI panel logged in to the broker as `client`, subscribed to the control topics and the
/// broadcasts, holding a session of `account` opened over MQTT.
fn panel(broker: &Broker, client: &str, account: &str, project: &str) -> (Hmi, i64) {
    panel_with(broker, client, account, json!({"type": "panel", "project": project}))
}

/// [`panel`] with the session's own `params` (type, project, read_only); host and address added.
fn panel_with(broker: &Broker, client: &str, account: &str, mut params: Value) -> (Hmi, i64) {
    params["host"] = json!(client);
    params["address"] = json!("10.0.4.23");
    let mut hmi = broker.hmi(client, client);
    hmi.subscribe(&format!("hmi/{client}/reply"));
    hmi.subscribe(&format!("gatewarden/{SITE}/sessions/+/control"));
    hmi.subscribe(&format!("gatewarden/{SITE}/supervisor/message"));
    let r = rpc(
        &mut hmi,
        client,
        json!({"id": 1, "method": "session.open", "auth": {"user": account, "password": PW}, "params": params}),
    );
    let id = r["result"]["session_id"].as_i64().unwrap_or_else(|| panic!("session.open: {r}"));
    (hmi, id)
}

/// The browser script, its stdin for the steps it asks for, and its stdout lines.
struct Script {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Script {
    /// Runs console/tests/`script` with `config` as JSON in the environment variable `var`.
    fn start(script: &str, var: &str, config: &Value) -> Script {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut child = Command::new("node")
            .arg(format!("{root}/console/tests/{script}"))
            .env(var, config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node console/tests/console.mjs");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Script { child, lines }
    }

    /// The next line the script prints, parsed.
    fn next(&mut self) -> Value {
        let line = self.lines.next().expect("the browser script ended without a report").unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("browser script printed {line:?}: {e}"))
    }

    fn answer(&mut self, v: Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn supervisor_terminates_locks_and_broadcasts_from_the_browser_an_operator_sees_no_admin_screens_and_names_stay_text() {
    let built = tempfile::tempdir().unwrap();
    let console_dir = built.path().join("console");
    build_console(&console_dir);

    let broker = Broker::shipped_with_console(SITE, &["station1", "panel1", "panel2", "panel3", "snoop"], &console_dir);
    let d = shipped_daemon(&broker, SITE, "[license]\nseats = 4\nreserved = { supervisor = 1 }\n");
    wait_connected(&d);

    // A supervisor who also administers accounts and reads the audit trail; an operator; and an
    // account whose display name is markup.
    d.ok(&["role", "add", "admins"]);
    for perm in ["users.view", "users.manage", "roles.manage", "resources.manage", "audit.view"] {
        d.ok(&["role", "grant", "admins", perm, "--read", "--write", "--resource", "*"]);
    }
    d.ok(&["role", "add", "operator"]);
    d.ok(&["role", "grant", "operator", "tag.write", "--read", "--write", "--resource", "line1/*"]);
    user(&d, "sup", &["supervisor", "admins"]);
    user(&d, "op", &["operator"]);
    user(&d, "mallory", &["operator"]);
    d.ok(&["user", "update", "mallory", "--display-name", XSS]);

    // Two panels hold sessions; the first runs a project whose name is markup.
    let (mut panel1, s1) = panel(&broker, "panel1", "op", XSS);
    let (mut panel2, s2) = panel(&broker, "panel2", "mallory", "line2");
    assert_eq!(d.ok(&["status"])["seats"]["in_use"], 2);

    let screenshots = std::env::var("GATEWARDEN_CONSOLE_SCREENSHOTS").ok();
    let config = json!({
        "chromium": CHROMIUM,
        "url": format!("http://127.0.0.1:{}", broker.ws_port.unwrap()),
        "site": SITE,
        "broker": {"user": "station1", "password": format!("station1{}", common::mqtt::BROKER_PW_SUFFIX)},
        "supervisor": {"user": "sup", "password": PW},
        "operator": {"user": "op", "password": PW},
        "expect_sessions": [s1, s2],
        "xss_session": s1,
        "xss_user": "mallory",
        "terminate": s1,
        "terminate_reason": "panel frozen, replaced",
        "lock_reason": "line 1 changeover",
        "broadcast": format!("Line 1 stops at 14:00 {XSS}"),
        "new_password": "another-horse-2",
        "screenshots": screenshots,
    });
    // Another broker client listening wherever the shipped ACL lets it: it must never see the
    // console's requests or replies (tokens travel in them).
    let mut snoop = broker.hmi("snoop", "snoop");
    snoop.subscribe("hmi/#");
    snoop.subscribe(&format!("gatewarden/{SITE}/rpc/#"));
    let mut script = Script::start("console.mjs", "CONSOLE_TEST", &config);

    // The one step the script needs from us: a third panel opens a session while the table is shown.
    let ask = script.next();
    assert_eq!(ask["wait"], "open_live_session", "{ask}");
    let (_panel3, s3) = panel(&broker, "panel3", "op", "line3");
    script.answer(json!({"session_id": s3}));

    let out = script.next();
    assert!(out.get("failed").is_none(), "the browser script failed: {out:#}");
    let r = &out["report"];

    // Nothing the console showed ran as markup, anywhere; no page error.
    assert_eq!(r["dialogs"], json!([]), "{r:#}");
    assert_eq!(r["page_errors"], json!([]), "{r:#}");
    assert_eq!(r["img_elements"], 0);
    assert_eq!(r["img_elements_end"], 0);
    assert_eq!(r["xss_project_cell"], XSS);
    assert_eq!(r["xss_display_cell"], XSS);
    assert!(r["operator_feed"].as_array().unwrap().contains(&json!(format!("Line 1 stops at 14:00 {XSS}"))), "{r:#}");

    // A wrong password is told as such, from its error code.
    assert!(r["bad_login_error"].as_str().unwrap().starts_with("Wrong user name or password"), "{r:#}");

    // The supervisor has every screen their rights give; the operator none of the admin ones.
    assert_eq!(
        r["supervisor_tabs"],
        json!(["Overview", "Sessions", "Lock", "Broadcast", "Users", "Roles", "Resources", "Access", "Audit"])
    );
    assert_eq!(r["operator_tabs"], json!(["Overview", "Broadcast"]));
    assert_eq!(r["operator_sections"], json!(["screen-overview", "screen-broadcast"]));

    // The licence gauge, by pool, from the retained `license` topic.
    let gauges: Vec<String> = r["gauges"].as_array().unwrap().iter().map(|g| g.as_str().unwrap().to_string()).collect();
    assert_eq!(gauges.len(), 2, "{gauges:?}");
    assert!(gauges[0].starts_with("General pool") && gauges[0].contains("/ 3 in use"), "{gauges:?}");
    assert!(gauges[1].starts_with("Reserved for supervisor") && gauges[1].contains("/ 1 in use"), "{gauges:?}");

    // Sessions: both listed, the third appeared live.
    let seen: Vec<i64> = r["sessions_seen"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert!(seen.contains(&s1) && seen.contains(&s2), "{seen:?}");
    assert_eq!(r["live_session_seen"], s3);

    // The terminated panel got its control message; its seat is free; the other panel is on.
    let control = panel1.next_on(&format!("gatewarden/{SITE}/sessions/{s1}/control")).json();
    assert_eq!(control["action"], "terminate");
    assert_eq!(control["reason"], "panel frozen, replaced");
    assert_eq!(control["by"]["u"], "sup");
    let sessions = d.ok(&["session", "list"]);
    let live: Vec<i64> = sessions.as_array().unwrap().iter().map(|s| s["session_id"].as_i64().unwrap()).collect();
    assert!(!live.contains(&s1) && live.contains(&s2) && live.contains(&s3), "{live:?}");
    assert_eq!(d.ok(&["status"])["seats"]["in_use"], 2);

    // The lock: the operator's console showed the banner with its reason, then lost it when cleared.
    let banner = r["operator_banner"].as_str().unwrap();
    assert!(
        banner.contains("Supervisor lock") && banner.contains("line 1 changeover") && banner.contains("sup"),
        "{banner}"
    );
    assert_eq!(r["banner_cleared"], true);
    assert!(d.ok(&["status"])["supervisor_lock"].is_null());
    let audit = d.ok(&["audit", "--limit", "200"]);
    let lock_row = audit.as_array().unwrap().iter().find(|e| e["action"] == "supervisor.lock").expect("lock audited");
    assert_eq!(lock_row["actor"]["u"], "sup");
    assert!(lock_row["source"].as_str().unwrap().starts_with("mqtt client=console-"), "{lock_row}");

    // The broadcast reached the panels.
    let msg = panel2.next_on(&format!("gatewarden/{SITE}/supervisor/message")).json();
    assert_eq!(msg["text"], format!("Line 1 stops at 14:00 {XSS}"));
    assert_eq!(msg["sender"]["u"], "sup");

    // An account added and disabled from the Users screen, with its role.
    assert_eq!(r["new_user_state"], "disabled", "{r:#}");
    let newop = d.ok(&["user", "show", "newop"]);
    assert_eq!(newop["enabled"], false);
    assert_eq!(newop["display_name"], "New operator");
    assert_eq!(newop["roles"], json!(["supervisor"]));

    // A resource added from the Resources screen; who can write it, from the Access screen.
    assert_eq!(d.ok(&["resource", "list"]).as_array().unwrap().len(), 1);
    let mut who: Vec<String> = r["who_can"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().into()).collect();
    who.sort();
    assert_eq!(who, ["admin", "mallory", "op"], "{r:#}");

    // The roles screen showed a role's grants.
    assert_eq!(r["operator_role_grants"], json!(["tag.write"]), "{r:#}");

    // The audit screen listed the trail.
    assert!(r["audit_actions"].as_array().unwrap().contains(&json!("session.terminate")), "{r:#}");
    assert_eq!(r["audit_filtered"], json!(["session.terminate"]), "{r:#}");

    // Touch targets and a phone's width.
    assert!(r["smallest_target"].as_f64().unwrap() >= 44.0, "a control below 44 px: {r:#}");
    assert!(r["phone_overflow_px"].as_f64().unwrap() <= 0.0, "the page is wider than a phone: {r:#}");

    // The token lived in sessionStorage only, never in the URL or localStorage; logout revoked it.
    assert_eq!(r["token_in_session_storage"], true);
    let token = r["token"].as_str().unwrap();
    assert!(!r["url"].as_str().unwrap().contains(token));
    assert!(!r["local_storage"].as_str().unwrap().contains("gwt_"), "{r:#}");
    assert!(r["token_after_logout"].is_null());
    let (code, v) = as_token(&d, token, &["user", "show", "sup"]);
    assert_ne!(code, 0, "the token still works after logout: {v}");
    assert_eq!(v["error"]["code"], "unauthenticated", "{v}");

    // Everything above went through the broker seconds ago; none of it reached the other client.
    let seen = snoop.next(Duration::from_millis(500), |m| m.topic.contains("console-") || m.topic.starts_with("hmi/"));
    assert!(seen.is_none(), "another client read the console's traffic: {seen:?}");

    if let Some(dir) = screenshots {
        eprintln!("screenshots in {dir}: {:?}", std::fs::read_dir(&dir).map(|d| d.count()));
    }
}

/// The console's other workflows in the browser (console/tests/workflows.mjs), against a daemon with
/// client-type caps and read-only seats: the gauges for both and a read-only session in the table;
/// the keyboard alone terminating a session (Escape cancels first); a lock only its owner writes
/// through; a group created, filled and trimmed; a user's roles and a role's grants edited; and the
/// broker restarted under the console, which reconnects, re-subscribes and calls again.
#[test]
fn console_keyboard_owner_lock_groups_roles_read_only_seats_and_a_broker_restart() {
    let built = tempfile::tempdir().unwrap();
    let console_dir = built.path().join("console");
    build_console(&console_dir);

    let mut broker =
        Broker::shipped_with_console(SITE, &["station1", "panela", "panelb", "panelc", "paneld"], &console_dir);
    let d = shipped_daemon(&broker, SITE, "[license]\nseats = 3\nread_only_seats = 1\ntypes = { panel = 2 }\n");
    wait_connected(&d);

    d.ok(&["role", "add", "admins"]);
    for perm in ["users.view", "users.manage", "roles.manage", "resources.manage", "tag.write"] {
        d.ok(&["role", "grant", "admins", perm, "--read", "--write", "--resource", "*"]);
    }
    d.ok(&["role", "add", "operator"]);
    d.ok(&["role", "grant", "operator", "tag.write", "--read", "--write", "--resource", "line1/*"]);
    d.ok(&["role", "add", "night"]);
    user(&d, "sup", &["supervisor", "admins"]);
    user(&d, "sup2", &["supervisor", "operator"]);
    user(&d, "op", &["operator"]);
    let members = ["line1/pump1", "line1/pump2", "line1/pump3"];
    for id in members {
        d.ok(&["resource", "add", id, "--kind", "tag"]);
    }

    // A read-write panel, a read-only one and a SCADA client (the one the keyboard terminates).
    let (_a, s_rw) = panel_with(&broker, "panela", "op", json!({"type": "panel", "project": "line1"}));
    let (_b, s_ro) =
        panel_with(&broker, "panelb", "op", json!({"type": "panel", "project": "line1", "read_only": true}));
    let (mut scada, s_kb) = panel_with(&broker, "panelc", "sup2", json!({"type": "scada"}));
    let license = d.ok(&["status"]);
    assert_eq!(license["seats"]["read_only"]["in_use"], 1, "{license}");

    let config = json!({
        "chromium": CHROMIUM,
        "url": format!("http://127.0.0.1:{}", broker.ws_port.unwrap()),
        "site": SITE,
        "broker": {"user": "station1", "password": format!("station1{}", common::mqtt::BROKER_PW_SUFFIX)},
        "supervisor": {"user": "sup", "password": PW},
        "gauges": 3,
        "expect_sessions": [s_rw, s_ro, s_kb],
        "read_only_session": s_ro,
        "keyboard_terminate": s_kb,
        "terminate_reason": "scada restarted by keyboard",
        "lock_reason": "owner only, commissioning",
        "group": "line1-pumps",
        "members": members,
        "member_removed": "line1/pump2",
        "role_user": "op",
        "roles_added": ["operator", "night"],
        "roles_kept": ["night"],
        "grant_role": "night",
        "grant": {"permission": "tag.write", "resource": "line2/*"},
    });
    let mut script = Script::start("workflows.mjs", "CONSOLE_TEST", &config);
    let q = json!({"permission": "tag.write", "resource": "line1/pump1", "access": "write"});
    let mut lock_checks = None;
    let mut after_restart = None;
    let out = loop {
        let msg = script.next();
        let Some(step) = msg.get("wait").and_then(Value::as_str) else { break msg };
        let answer = match step {
            // The lock the console set (l = u): another supervisor's write is refused, its owner's passes.
            "lock_set" => {
                let lock = d.ok(&["status"])["supervisor_lock"].clone();
                assert_eq!(lock["l"], "u", "{lock}");
                assert_eq!(lock["o"]["u"], "sup", "{lock}");
                assert_eq!(lock["reason"], "owner only, commissioning", "{lock}");
                let ttl = lock["expires_at"].as_i64().unwrap() - lock["since"].as_i64().unwrap();
                assert_eq!(ttl, 2 * 3600 * 1000, "{lock}");
                let other = d.call_auth("authz.check", q.clone(), json!({"token": common::token(&d, "sup2")}));
                let owner = d.call_auth("authz.check", q.clone(), json!({"token": msg["token"]}));
                lock_checks = Some((other, owner));
                json!({})
            }
            "roles_added" => {
                let mut roles: Vec<String> =
                    serde_json::from_value(d.ok(&["user", "show", "op"])["roles"].clone()).unwrap();
                roles.sort();
                assert_eq!(roles, ["night", "operator"]);
                json!({})
            }
            "grant_added" => {
                let grants = d.ok(&["role", "show", "night"])["grants"].clone();
                assert_eq!(grants.as_array().unwrap().len(), 1, "{grants}");
                assert_eq!(grants[0]["permission"], "tag.write", "{grants}");
                assert_eq!(grants[0]["resource"], "line2/*", "{grants}");
                json!({})
            }
            "stop_broker" => {
                broker.stop();
                json!({})
            }
            "start_broker" => {
                broker.run();
                json!({})
            }
            // After the restart: a lock set over the socket and a session opened over MQTT.
            "after_restart" => {
                wait_connected(&d);
                let r = d.call("supervisor.lock", json!({"reason": "set after the restart"}));
                assert!(r.get("result").is_some(), "{r}");
                let (_hmi, s) = panel_with(&broker, "paneld", "sup", json!({"type": "panel"}));
                after_restart = Some(s);
                json!({"session_id": s})
            }
            other => panic!("the script asked for {other}"),
        };
        script.answer(answer);
    };
    assert!(out.get("failed").is_none(), "the browser script failed: {out:#}");
    let r = &out["report"];
    assert_eq!(r["dialogs"], json!([]), "{r:#}");
    assert_eq!(r["page_errors"], json!([]), "{r:#}");

    // The gauges: the general pool, the panels' type cap, the read-only seats; the table says which
    // session is read-only.
    let gauges: Vec<(String, String)> = r["gauges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["pool"].as_str().unwrap().into(), g["text"].as_str().unwrap().into()))
        .collect();
    assert_eq!(gauges.len(), 3, "{gauges:?}");
    assert_eq!(gauges[0], ("".into(), "General pool2 / 3 in use · 1 free".into()));
    assert_eq!(gauges[1], ("type:panel".into(), "Clients of type panel1 / 2 in use · 1 free".into()));
    assert_eq!(gauges[2], ("read-only".into(), "Read-only seats1 / 1 in use · 0 free".into()));
    assert_eq!(r["read_only_pool_cell"], "general, read-only");
    assert_eq!(r["read_write_pool_cell"], "general");

    // The keyboard: the dialog opened on its reason field; Escape left the session alone; the
    // reason typed and Enter terminated it, once.
    assert_eq!(r["dialog_focus"], "input");
    assert_eq!(r["escape_kept_row"], true);
    let control = scada.next_on(&format!("gatewarden/{SITE}/sessions/{s_kb}/control")).json();
    assert_eq!(control["action"], "terminate");
    assert_eq!(control["reason"], "scada restarted by keyboard");
    assert_eq!(control["by"]["u"], "sup");
    assert_eq!(common::audit_count(&d, "session.terminate", "ok"), 1);

    // The owner-only lock: its banner told the reason, the scope and the expiry; a write check of
    // another supervisor was refused with supervisor_locked, the owner's passed.
    let banner = r["owner_lock_banner"].as_str().unwrap();
    assert!(
        banner.contains("owner only, commissioning")
            && banner.contains("only sup may change things")
            && banner.contains("clears itself at"),
        "{banner}"
    );
    let (other, owner) = lock_checks.expect("the script set the lock");
    assert_eq!(other["error"]["code"], "supervisor_locked", "{other}");
    assert_eq!(other["error"]["lock"]["l"], "u", "{other}");
    assert_eq!(owner["result"]["decision"], "allow", "{owner}");
    assert_eq!(owner["result"]["subject"], "sup", "{owner}");

    // The group: created, three added, one taken out.
    assert_eq!(r["group_members_shown"], "2");
    let groups = d.ok(&["group", "list"]);
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
    assert_eq!(groups[0]["name"], "line1-pumps");
    assert_eq!(groups[0]["description"], "The pumps of line 1");
    assert_eq!(groups[0]["members"], 2);
    for res in d.ok(&["resource", "list"]).as_array().unwrap() {
        let want = if res["id"] == "line1/pump2" { json!([]) } else { json!(["line1-pumps"]) };
        assert_eq!(res["groups"], want, "{res}");
    }

    // Roles: op had night added (checked then), then operator removed; the grant came and went.
    assert_eq!(d.ok(&["user", "show", "op"])["roles"], json!(["night"]));
    assert_eq!(r["grant_row"]["Permission"], "tag.write");
    assert_eq!(r["grant_row"]["Access"], "read,write");
    assert_eq!(d.ok(&["role", "show", "night"])["grants"], json!([]));
    let audit = d.ok(&["audit", "--limit", "500"]);
    let from_console = |action: &str| -> Vec<Value> {
        let rows = audit.as_array().unwrap().iter();
        rows.filter(|e| e["action"] == action && e["source"].as_str().unwrap_or("").starts_with("mqtt client=console-"))
            .cloned()
            .collect()
    };
    for action in ["role.grant", "role.revoke", "user.update", "group.create", "group.add", "group.remove"] {
        let rows = from_console(action);
        assert!(
            !rows.is_empty() && rows.iter().all(|e| e["outcome"] == "ok" && e["actor"]["u"] == "sup"),
            "{action}: {rows:?}"
        );
    }

    // The broker restart: the console said it was reconnecting, then showed the lock set and the
    // session opened after it, and cleared the lock with a call.
    assert!(r["link_while_down"].as_str().unwrap().starts_with("reconnecting"), "{r:#}");
    assert!(r["banner_after_restart"].as_str().unwrap().contains("set after the restart"), "{r:#}");
    assert_eq!(r["live_after_restart"], after_restart.expect("a session opened after the restart"));
    assert_eq!(r["cleared_after_restart"], true);
    assert!(d.ok(&["status"])["supervisor_lock"].is_null());
    assert_eq!(common::audit_count(&d, "supervisor.unlock", "ok"), 2);
}

/// gatewarden.js itself (the module HMI pages use), in Node.js over the broker's WebSockets listener,
/// against a daemon whose MQTT rate limit is tight: what `call` retries and what it never does.
#[test]
fn client_module_retries_reads_through_rate_limits_never_resends_a_write_and_logout_revokes() {
    let root = env!("CARGO_MANIFEST_DIR");
    let found = Command::new("node").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    assert!(found, "node is not installed: apt install nodejs (.ci/run does)");
    if !Path::new(&format!("{root}/console/node_modules/mqtt")).exists() {
        let st = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", &format!("{root}/console")])
            .status()
            .expect("npm is installed: apt install npm (.ci/run does)");
        assert!(st.success(), "npm ci in console/");
    }
    let served = tempfile::tempdir().unwrap();
    let mut broker = Broker::shipped_with_console(SITE, &["station1", "panel1"], served.path());
    // argon2 at a cost (32 MiB, 2 passes: tens of ms on any machine) that no reply to a request with a
    // password beats 20 ms with.
    let d = shipped_daemon(
        &broker,
        SITE,
        "[mqtt]\nrpc_rate = 1\nrpc_burst = 4\n[accounts.argon2]\nmemory_kib = 32768\niterations = 2\n",
    );
    wait_connected(&d);
    user(&d, "sup", &["supervisor"]);
    let mut panel = broker.hmi("panel1", "panel1");
    panel.subscribe(&format!("gatewarden/{SITE}/supervisor/message"));

    let config = json!({
        "url": format!("ws://127.0.0.1:{}", broker.ws_port.unwrap()),
        "site": SITE,
        "broker": {"user": "station1", "password": format!("station1{}", common::mqtt::BROKER_PW_SUFFIX)},
        "user": "sup",
        "password": PW,
        "broadcast": "sent once",
        "after_restart": "after the restart",
    });
    let mut script = Script::start("client.mjs", "CLIENT_TEST", &config);
    let last = loop {
        let msg = script.next();
        let Some(step) = msg.get("wait").and_then(Value::as_str) else { break msg };
        match step {
            "stop_broker" => {
                // The panel, while the broker is still up: the write that timed out on the client
                // reached it once.
                let m = panel.next_on(&format!("gatewarden/{SITE}/supervisor/message"));
                assert_eq!(m.json()["text"], "sent once");
                let again = panel.next(Duration::from_millis(1000), |m| m.topic.ends_with("supervisor/message"));
                assert!(again.is_none(), "the write was sent twice: {again:?}");
                broker.stop();
            }
            "start_broker" => broker.run(),
            "broadcast_after_restart" => {
                let r = d.call("supervisor.message", json!({"text": "after the restart"}));
                assert!(r.get("result").is_some(), "{r}");
            }
            other => panic!("client.mjs asked for {other}"),
        }
        script.answer(json!({}));
    };
    assert!(last.get("failed").is_none(), "client.mjs failed: {last:#}");
    let r = &last["report"];

    assert_eq!(r["bad_broker_login"], "unauthenticated", "{r:#}");
    assert_eq!(r["license"]["limit"], d.ok(&["status"])["seats"]["limit"]);
    assert_eq!(r["login"], "sup");
    assert_eq!(r["forbidden"]["code"], "forbidden");
    assert_eq!(r["forbidden"]["is_error"], true);
    assert!(r["forbidden"]["text"].as_str().unwrap().starts_with("You do not have the right to do this"), "{r:#}");

    // The write timed out on the client and was not sent again: the panels got it exactly once.
    assert_eq!(r["write"], "timeout");
    assert_eq!(r["write_retries"], 0);
    // (Checked by the panel before the broker's restart, below.)

    // Every read of the burst was answered, some after a refusal that the correlation data matched.
    assert_eq!(r["burst"], json!(vec![SITE; 6]), "{r:#}");
    let retries = r["retries"].as_array().unwrap();
    assert!(retries.iter().any(|x| x["reason"] == "rate_limited" && x["method"] == "status"), "{r:#}");
    assert!(retries.iter().all(|x| x["method"] != "supervisor.message"), "{r:#}");

    // The broker restarted under the module: it went down and came back by itself; a call after it
    // was answered; its subscriptions delivered a broadcast and the republished licence figures.
    let states: Vec<&str> = r["states"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(states.first(), Some(&"offline"), "{r:#}");
    assert_eq!(states.last(), Some(&"online"), "{r:#}");
    assert_eq!(r["status_after_restart"], SITE);
    assert_eq!(r["message_after_restart"], "after the restart");
    assert_eq!(r["license_after_restart"], d.ok(&["status"])["seats"]["limit"]);

    assert!(r["token_after_logout"].is_null());
    assert_eq!(r["revoked"], "unauthenticated", "{r:#}");
}
