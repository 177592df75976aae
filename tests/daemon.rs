//! The daemon frame through its real interfaces: process lifecycle, systemd notification, the control
//! socket under bad input, config errors, reload.

mod common;

use common::{BIN, Daemon};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn status_reports_the_frame_and_a_restart_finds_the_same_database() {
    let mut d = Daemon::start();
    let v = d.ok(&["status"]);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["uptime_s"].is_u64());
    assert_eq!(v["database"], d.db_path().display().to_string());
    assert!(v["schema_version"].as_i64().unwrap() >= 1);
    assert_eq!(v["mqtt"]["state"], "disabled");
    assert_eq!(v["seats"]["limit"], 5);
    assert!(v["supervisor_lock"].is_null());
    assert!(d.db_path().exists());

    // Human output is a readable listing, not JSON.
    let out = d.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("schema_version") && !text.trim_start().starts_with('{'), "{text}");

    // Mark the database, stop cleanly, restart: the mark is still there.
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    conn.execute("INSERT INTO settings (key, value, updated_at) VALUES ('test.mark', '1', 0)", []).unwrap();
    drop(conn);
    let status = d.stop();
    assert_eq!(status.code(), Some(0), "SIGTERM must exit 0; log:\n{}", d.log());
    assert!(!d.socket.exists(), "socket file removed on clean stop");
    d.restart();
    assert_eq!(d.sql_count("SELECT count(*) FROM settings WHERE key = 'test.mark'"), 1);
}

#[test]
fn runs_on_embedded_defaults_with_no_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("STATE_DIRECTORY")
        .env_remove("RUNTIME_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = dir.path().join("gatewarden-state/gatewarden.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no socket in ./gatewarden-state");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "control socket mode");
    let out = Command::new(BIN).args(["--json", "status"]).current_dir(dir.path()).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // MQTT is on by default and retried in the background; its absence never stops the daemon.
    assert_eq!(v["mqtt"]["url"], "mqtt://127.0.0.1:1883");
    assert!(dir.path().join("gatewarden-state/gatewarden.db").exists());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
}

/// Plays systemd: owns the notify socket, checks READY=1 comes only once the control socket answers,
/// then watchdog pings, then STOPPING=1 on SIGTERM.
#[test]
fn systemd_notify_ready_watchdog_and_stopping() {
    let d = Daemon::prepare("");
    let notify_path = d.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut d = d;
    d.env =
        vec![("NOTIFY_SOCKET".into(), notify_path.display().to_string()), ("WATCHDOG_USEC".into(), "200000".into())];
    d.launch();

    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    let recv = |buf: &mut [u8]| -> String {
        let n = sock.recv(buf).expect("notification");
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    loop {
        let msg = recv(&mut buf);
        seen.push(msg.clone());
        if msg.lines().any(|l| l == "READY=1") {
            // The socket must already accept and answer.
            let mut c = d.connect().expect("control socket accepts at READY=1");
            assert!(c.call("status", Value::Null)["result"].is_object());
            assert!(msg.contains("STATUS="), "READY carries a STATUS line: {msg}");
            break;
        }
        assert!(!msg.contains("WATCHDOG=1"), "watchdog before READY: {seen:?}");
    }
    // 200 ms watchdog: pings every ~100 ms.
    let start = Instant::now();
    let mut pings = 0;
    while pings < 3 {
        if recv(&mut buf).lines().any(|l| l == "WATCHDOG=1") {
            pings += 1;
        }
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    d.signal(nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no STOPPING=1");
        if recv(&mut buf).lines().any(|l| l == "STOPPING=1") {
            break;
        }
    }
    assert!(d.wait_exit().success());
}

#[test]
fn garbage_oversized_and_half_written_requests_never_hurt_the_daemon() {
    let d = Daemon::start_with("[daemon]\nmax_request_bytes = 4096\n");

    // Garbage: bad_request, and the same connection keeps working.
    let mut c = d.connect().unwrap();
    for junk in
        [&b"not json\n"[..], b"[1,2,3]\n", b"{\"id\":5}\n", b"\xff\xfe\x00\n", b"{\"method\":\"x\",\"params\":\n"]
    {
        c.send_raw(junk);
        let r = c.read_reply().expect("a reply to garbage");
        assert_eq!(r["error"]["code"], "bad_request", "{junk:?} -> {r}");
    }
    let r = c.send(&json!({"id": "abc", "method": "no.such.method"}));
    assert_eq!(r["id"], "abc");
    assert_eq!(r["error"]["code"], "bad_request");
    let r = c.send(&json!({"id": 9, "method": "status", "params": {"bogus": 1}}));
    assert_eq!(r["error"]["code"], "bad_request", "unknown params are refused: {r}");
    assert_eq!(c.call("status", Value::Null)["result"]["site"], "default");

    // Oversized: bad_request, then the connection is closed.
    let mut c = d.connect().unwrap();
    let mut big = vec![b'x'; 10_000];
    big.push(b'\n');
    c.send_raw(&big);
    let r = c.read_reply().expect("reply to oversized");
    assert_eq!(r["error"]["code"], "bad_request");
    assert!(r["error"]["message"].as_str().unwrap().contains("4096"));
    assert!(c.read_reply().is_none(), "connection closed after oversized frame");

    // Half-written: the client hangs up mid-request.
    for _ in 0..20 {
        let mut c = d.connect().unwrap();
        c.send_raw(b"{\"id\":1,\"method\":\"sta");
        drop(c);
    }
    // Many clients at once still get answers.
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let sock = d.socket.clone();
            std::thread::spawn(move || {
                let mut c = common::Conn::open(&sock).unwrap();
                (0..50).all(|_| c.call("status", Value::Null)["result"].is_object())
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
    assert!(d.ok(&["status"])["version"].is_string());
}

#[test]
fn idle_clients_are_disconnected_after_the_timeout() {
    let d = Daemon::start_with("[daemon]\nclient_timeout = \"1s\"\n");
    let mut c = d.connect().unwrap();
    c.send_raw(b"{\"id\":1,");
    let start = Instant::now();
    assert!(c.read_reply().is_none(), "slow client is cut off");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(d.ok(&["status"])["version"].is_string());
}

#[test]
fn bad_config_names_file_line_and_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[license]\nseats = 3\nseets = 4\n", "3", "license.seets"),
        ("[mqtt]\nenabled = false\n\n[license]\nseats = \"many\"\n", "5", "license.seats"),
        ("[license]\nheartbeat_timeout = \"soon\"\n", "2", "license.heartbeat_timeout"),
        ("[bogus]\nx = 1\n", "1", "bogus"),
    ];
    for (text, line, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        for args in [vec!["config", "check", path.to_str().unwrap()], vec!["serve", "--config", path.to_str().unwrap()]]
        {
            let out = Command::new(BIN).args(&args).current_dir(dir.path()).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} on {text:?}: {err}");
            let place = format!("{}:{line}", path.display());
            assert!(err.contains(&place), "{args:?}: {err:?} lacks {place}");
            assert!(err.contains(key), "{args:?}: {err:?} lacks {key}");
        }
    }
    assert!(!dir.path().join("gatewarden-state").exists(), "nothing started");

    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[license]\nseats = 3\n").unwrap();
    let out = Command::new(BIN).args(["config", "check", good.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `config check` and `serve --config` on `text`; both must exit 2 naming the file, the line,
/// the key and what is wrong, and nothing may start.
fn refused_config(text: &str, line: usize, key: &str, why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gatewarden.toml");
    std::fs::write(&path, text).unwrap();
    let file = path.to_str().unwrap();
    for args in [vec!["config", "check", file], vec!["serve", "--config", file]] {
        let out = Command::new(BIN).args(&args).current_dir(dir.path()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} on {text:?}: {err}");
        let place = format!("{file}:{line}: key `{key}`");
        assert!(err.contains(&place), "{args:?} on {text:?}: {err:?} lacks {place}");
        assert!(err.contains(why), "{args:?} on {text:?}: {err:?} does not say {why:?}");
    }
    assert!(!dir.path().join("gatewarden-state").exists(), "nothing started");
}

/// Was: accepted by `config check`, then the daemon served without a bridge ("bad port").
#[test]
fn config_check_refuses_a_broker_port_out_of_range() {
    refused_config("[mqtt]\nurl = \"mqtt://broker.plant:99999\"\n", 2, "mqtt.url", "out of range (1-65535)");
    refused_config("[site]\nid = \"l1\"\n\n[mqtt]\nurl = \"mqtts://broker:0\"\n", 5, "mqtt.url", "out of range");
    refused_config("[mqtt]\nurl = \"mqtt://broker:\"\n", 2, "mqtt.url", "is not a number");
}

/// Was: accepted by `config check`, then refused by the bridge at run time.
#[test]
fn config_check_refuses_a_broker_url_without_host_or_with_user_info() {
    refused_config("[mqtt]\nurl = \"mqtt://:1883\"\n", 2, "mqtt.url", "the host is missing");
    refused_config("[mqtt]\nenabled = true\nurl = \"mqtt://user@broker\"\n", 3, "mqtt.url", "user info");
    refused_config("[mqtt]\nurl = \"mqtt://broker/gatewarden\"\n", 2, "mqtt.url", "a path is not allowed");
}

#[test]
fn config_check_refuses_a_misspelt_log_level_and_unusable_paths() {
    refused_config("[daemon]\nlog_level = \"debgu\"\n", 2, "daemon.log_level", "not a log level");
    refused_config("[daemon]\nlog_level = \"info\"\nstate_dir = \"\"\n", 3, "daemon.state_dir", "empty");
    refused_config("[daemon]\nsocket_group = \"\"\n", 2, "daemon.socket_group", "not a group name");
}

#[test]
fn config_check_shows_the_broker_as_the_bridge_will_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gatewarden.toml");
    std::fs::write(&path, "[mqtt]\nurl = \"mqtts://[fd00::17]\"\n").unwrap();
    let out = Command::new(BIN).args(["--json", "config", "check", path.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mqtt"], "mqtts://[fd00::17]:8883");
}

/// Was: a connection over `daemon.max_clients` was answered `internal`, as if the daemon had failed.
#[test]
fn a_full_socket_answers_rate_limited_not_internal() {
    let d = Daemon::start_with("[daemon]\nmax_clients = 1\n");
    // The one slot, held by a connection that has sent a request (so it may idle); taken as soon as
    // the readiness probe's connection has given it back.
    let mut held = None;
    common::wait_for(
        || {
            let mut c = d.connect().unwrap();
            let served = c.call("status", Value::Null)["result"].is_object();
            held = served.then_some(c);
            served
        },
        "the one slot",
    );

    let mut refused = d.connect().unwrap();
    let r = refused.read_reply().expect("a refusal, not a hang");
    assert_eq!(r["error"]["code"], "rate_limited", "{r}");
    assert_eq!(r["error"]["retry_after_ms"], 1000, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("too many clients"), "{r}");
    assert!(refused.read_reply().is_none(), "the refused connection is closed");
    // The CLI reports it as such.
    d.refused(&["status"], "rate_limited");

    // Once the slot is free, the next client is served.
    drop(held);
    common::wait_for(|| d.call("status", Value::Null)["result"].is_object(), "a free slot");
}

#[test]
fn shipped_example_config_passes_config_check() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/gatewarden.toml");
    let out = Command::new(BIN).args(["--json", "config", "check", path]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn sighup_reloads_what_can_change_and_names_what_cannot() {
    let d = Daemon::start();
    assert_eq!(d.ok(&["status"])["seats"]["limit"], 5);
    let text = std::fs::read_to_string(&d.config_path).unwrap();
    let changed = common::merge_toml(&text, "[license]\nseats = 9\n[site]\nid = \"plant2\"\n");
    std::fs::write(&d.config_path, changed).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.ok(&["status"])["seats"]["limit"] != 9 {
        assert!(Instant::now() < deadline, "seats not reloaded; log:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.log().contains("site.id changed; it takes effect after a restart"), "{}", d.log());

    // A broken config on SIGHUP is refused and the running one kept.
    std::fs::write(&d.config_path, "[license]\nseats = \"x\"\n").unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.ok(&["status"])["seats"]["limit"], 9);
    assert!(d.log().contains("keeping the running config"));
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let d = Daemon::start();
    let out = Command::new(BIN).args(["serve", "--config", d.config_path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already"));
    assert!(d.ok(&["status"])["version"].is_string(), "first daemon unharmed");
}

#[test]
fn cli_says_clearly_when_the_daemon_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("nothing.sock");
    let out = Command::new(BIN).args(["--socket", sock.to_str().unwrap(), "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach gatewarden at") && err.contains("is `gatewarden serve` running?"), "{err}");
    // Usage errors exit 2.
    let out = Command::new(BIN).args(["status", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn call_sends_any_method_raw() {
    let d = Daemon::start();
    let v = d.ok(&["call", "status"]);
    assert_eq!(v["site"], "default");
    let e = d.refused(&["call", "no.such"], "bad_request");
    assert!(e["message"].as_str().unwrap().contains("no.such"));
    let out = d.cli(&["call", "status", "{not json"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The CLI reported "the daemon is not running" as the daemon's own `internal` error.
#[test]
fn cli_without_a_daemon_says_unavailable_not_internal() {
    let d = Daemon::prepare("");
    let out = d.cli(&["--json", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "unavailable", "{v}");
}

/// `audit.list` filters in the daemon, so a match older than the newest `limit` entries is found.
#[test]
fn audit_list_filters_by_action_family_actor_outcome_and_target() {
    let d = Daemon::start();
    for name in ["ann", "ben"] {
        common::user(&d, name, &[]);
    }
    d.ok(&["user", "disable", "ann"]);
    for _ in 0..5 {
        d.ok(&["user", "show", "ben"]);
        d.ok(&["role", "add", &format!("r{}", d.sql_count("SELECT count(*) FROM roles"))]);
    }
    let actions = |args: &[&str]| -> Vec<(String, String)> {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        let v = d.ok(&all);
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| (e["action"].as_str().unwrap().to_string(), e["target"].as_str().unwrap_or("").to_string()))
            .collect()
    };
    // One entry asked for: the filter finds the disable behind five newer role.create entries.
    assert_eq!(actions(&["--action", "user.disable", "--limit", "1"]), [("user.disable".into(), "ann".into())]);
    let family = actions(&["--action", "user.", "--limit", "100"]);
    assert!(family.len() >= 3 && family.iter().all(|(a, _)| a.starts_with("user.")), "{family:?}");
    assert_eq!(actions(&["--target", "ben", "--action", "user.create"]), [("user.create".into(), "ben".into())]);
    assert!(actions(&["--actor", "admin", "--action", "role.create"]).len() == 5);
    assert!(actions(&["--actor", "nobody-at-all"]).is_empty());
    assert!(actions(&["--outcome", "denied"]).is_empty());
    let e = d.refused(&["audit", "--outcome", "maybe"], "bad_request");
    assert!(e["message"].as_str().unwrap().starts_with("outcome:"), "{e}");
    let long = "x".repeat(300);
    let e = d.refused(&["audit", "--action", &long], "bad_request");
    assert!(e["message"].as_str().unwrap().starts_with("action:"), "{e}");
}
