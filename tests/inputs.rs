//! Untrusted input through the real daemon (issue 13): resource ids, selectors and CSV files refused
//! with a clear error and nothing half-applied, bounded replies and checks, the CLI's terminal output,
//! the socket the CLI trusts with credentials, the state directory's file modes, expired login
//! tokens, and connection slots that a group member cannot exhaust.

mod common;

use common::{BIN, Daemon, PW, token, user, write_file};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The ids of issue 13 that must not pass for `line1/safety`, with what the refusal must name.
const NON_CANONICAL: &[(&str, &str)] = &[
    ("line1//safety", "empty segment"),
    ("line1/./safety", "\".\" segment"),
    ("line1/../line1/safety", "\"..\" segment"),
    ("line1/safety/", "empty segment"),
    ("/line1/safety", "empty segment"),
    ("line1/safe\u{200b}ty", "U+200B"),
    ("line1/\u{202e}safety", "U+202E"),
    ("line1/safety\u{1b}[2J", "U+001B"),
    ("line1/ safety", "whitespace"),
];

fn message(error: &Value) -> String {
    error["message"].as_str().unwrap_or_default().to_string()
}

/// A plant where `line1/safety` is denied to operators and everything else on line 1 allowed.
fn plant() -> Daemon {
    let d = Daemon::start();
    let inv = write_file(&d, "inv.csv", "device\nline1/safety\nline1/press3\n");
    d.ok(&["resource", "import", &inv]);
    d.ok(&["role", "add", "operators"]);
    d.ok(&["role", "grant", "operators", "tag.write", "--write", "--resource", "line1/*"]);
    d.ok(&["role", "grant", "operators", "tag.write", "--write", "--resource", "line1/safety", "--deny"]);
    user(&d, "op", &["operators"]);
    d
}

#[test]
fn resource_id_with_double_slash_is_refused() {
    let d = plant();
    d.ok(&["group", "add", "g"]);
    for (id, named) in NON_CANONICAL {
        // Every way in refuses it with bad_request naming the problem...
        for args in [
            vec!["check", "op", "tag.write", id, "--write"],
            vec!["explain", "op", "tag.write", id, "--write"],
            vec!["who-can", "tag.write", id, "--write"],
            vec!["resource", "add", id],
            vec!["group", "member-add", "g", id],
            vec!["role", "grant", "operators", "tag.read", "--resource", id],
        ] {
            let e = d.refused(&args, "bad_request");
            assert!(message(&e).contains(named), "{args:?}: {e}");
        }
        // ...and a CSV holding it names its line.
        let csv = write_file(&d, "bad.csv", &format!("device\nline1/press3\n{id}\n"));
        for args in [vec!["resource", "import", &csv], vec!["group", "import", "g", &csv]] {
            let e = d.refused(&args, "bad_request");
            assert_eq!(e["errors"][0]["line"], 3, "{args:?}: {e}");
            assert!(e["errors"][0]["message"].as_str().unwrap().contains(named), "{args:?}: {e}");
        }
    }
    // Nothing of it was applied.
    let ids: Vec<Value> = d.ok(&["resource", "list"]).as_array().unwrap().iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, vec![json!("line1/press3"), json!("line1/safety")]);
    assert_eq!(d.ok(&["group", "list"])[0]["members"], 0);
    // The canonical id keeps its deny.
    let (code, v) = d.cli_json(&["check", "op", "tag.write", "line1/safety", "--write"]);
    assert_eq!((code, v["decision"].as_str()), (1, Some("deny")), "{v}");
}

#[test]
fn non_canonical_rows_stored_by_0_1_0_stay_readable_and_removable() {
    let mut d = plant();
    d.ok(&["group", "add", "g"]);
    d.stop();
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    conn.execute_batch(
        "INSERT INTO resources (id, kind, attributes, created_at, updated_at) VALUES ('line1//old', 'device', '{}', 0, 0);
         INSERT INTO group_members (group_id, resource_id) SELECT id, 'line1//old' FROM resource_groups;
         INSERT INTO grants (role_id, permission, can_read, can_write, selector, effect, created_at)
         SELECT id, 'tag.read', 1, 0, 'line1//*', 'allow', 0 FROM roles WHERE name = 'operators';",
    )
    .unwrap();
    drop(conn);
    d.launch();
    d.wait_ready();
    assert!(d.log().contains("1 stored resource ids do not follow the current rules"), "{}", d.log());
    assert!(d.log().contains("1 stored grant selectors do not follow"), "{}", d.log());
    let ids: Vec<Value> = d.ok(&["resource", "list"]).as_array().unwrap().iter().map(|r| r["id"].clone()).collect();
    assert!(ids.contains(&json!("line1//old")), "{ids:?}");
    assert_eq!(d.ok(&["group", "list"])[0]["members"], 1);
    let grants = d.ok(&["role", "show", "operators"])["grants"].to_string();
    assert!(grants.contains("line1//*"), "{grants}");
    // Removable with the commands that take what exists.
    d.ok(&["role", "revoke", "operators", "tag.read", "--resource", "line1//*"]);
    d.ok(&["group", "member-remove", "g", "line1//old"]);
    d.ok(&["resource", "delete", "line1//old"]);
    assert_eq!(d.ok(&["group", "list"])[0]["members"], 0);
    assert_eq!(d.ok(&["resource", "list"]).as_array().unwrap().len(), 2);
}

#[test]
fn glob_selectors_with_non_canonical_segments_are_refused() {
    let d = plant();
    for (sel, named) in [
        ("line1//*", "empty segment"),
        ("line1/./*", "\".\" segment"),
        ("line1/*/", "empty segment"),
        ("*/\u{200b}*", "invisible"),
        ("line1/**/**/**/**/**/x", "at most 4"),
    ] {
        let e = d.refused(&["role", "grant", "operators", "tag.read", "--resource", sel], "bad_request");
        assert!(message(&e).contains(named), "{sel:?}: {e}");
    }
    let many = vec!["a"; 33].join("/") + "/*";
    let e = d.refused(&["role", "grant", "operators", "tag.read", "--resource", &many], "bad_request");
    assert!(message(&e).contains("at most 32"), "{e}");
}

#[test]
fn forty_two_nested_deep_wildcards_are_refused_and_long_ids_never_reach_the_engine() {
    let d = plant();
    let deep = vec!["**/a"; 42].join("/") + "/b";
    let e = d.refused(&["role", "grant", "operators", "tag.read", "--resource", &deep], "bad_request");
    assert!(message(&e).contains("too") || message(&e).contains("at most"), "{e}");

    // A megabyte resource id: refused by check, explain and who_can, naming the limit; status answers.
    let long = vec!["a"; 400_000].join("/");
    for method in ["authz.check", "authz.explain", "authz.who_can"] {
        let mut params = json!({"permission": "tag.write", "resource": long, "access": "write"});
        if method != "authz.who_can" {
            params["subject"] = json!("op");
        }
        let r = d.call(method, params);
        assert_eq!(r["error"]["code"], "bad_request", "{method}");
        let m = message(&r["error"]);
        assert!(m.contains("at most 256") && m.len() < 300, "{method}: {m}");
    }
    assert!(d.call("status", Value::Null)["result"].is_object());

    // A 42-`**` grant stored before the limits (written straight into the database) still loads and
    // still decides, on ids of every allowed length.
    let mut d = d;
    d.stop();
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    conn.execute(
        "INSERT INTO grants (role_id, permission, can_read, can_write, selector, effect, created_at)
         SELECT id, 'tag.read', 1, 0, ?1, 'deny', 0 FROM roles WHERE name = 'operators'",
        [&deep],
    )
    .unwrap();
    drop(conn);
    d.launch();
    d.wait_ready();
    d.ok(&["role", "grant", "operators", "tag.read", "--read", "--resource", "*"]);
    let hit = vec!["a"; 100].join("/") + "/b";
    let miss = vec!["a"; 127].join("/");
    let (code, v) = d.cli_json(&["check", "op", "tag.read", &hit]);
    assert_eq!((code, v["decision"].as_str(), v["reason"].as_str()), (1, Some("deny"), Some("denied_by")), "{v}");
    assert_eq!(d.cli_json(&["check", "op", "tag.read", &miss]).0, 0);
}

#[test]
fn a_megabyte_of_bad_csv_gets_a_bounded_reply() {
    let d = Daemon::start();
    let mut text = String::from("device,note\n");
    let mut n = 0;
    // Just under the request size limit (1 MiB with its JSON framing).
    while text.len() < 1_000_000 {
        n += 1;
        text.push_str(&format!("line{n}//{},{}\n", "x".repeat(150), "y".repeat(100)));
    }
    let file = write_file(&d, "huge.csv", &text);
    let out = d.cli(&["--json", "resource", "import", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.len() < 16 * 1024, "reply of {} bytes", out.stdout.len());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &v["error"];
    assert_eq!(e["code"], "bad_request");
    assert_eq!(e["errors"].as_array().unwrap().len(), 20, "{e}");
    assert_eq!(e["more_errors"], n - 20);
    assert!(message(e).starts_with(&format!("{n} bad row(s), nothing changed")), "{}", message(e));
    assert_eq!(d.ok(&["resource", "list"]), json!([]));
}

#[test]
fn import_with_unterminated_quote_on_the_last_row_creates_nothing() {
    let d = Daemon::start();
    let inv = write_file(&d, "inv.csv", "device\nline1/press3\n\"unterminated\n");
    let e = d.refused(&["resource", "import", &inv], "bad_request");
    assert_eq!(e["errors"][0]["line"], 3, "{e}");
    assert!(e["errors"][0]["message"].as_str().unwrap().contains("never closed"), "{e}");
    assert_eq!(d.ok(&["resource", "list"]), json!([]));

    // The same for the list readers: group import and role grant --resources-file.
    let ok = write_file(&d, "ok.csv", "device\nline1/press3\nunterminated\n");
    d.ok(&["resource", "import", &ok]);
    d.ok(&["group", "add", "g"]);
    d.ok(&["role", "add", "r"]);
    let list = write_file(&d, "list.csv", "device\nline1/press3\n\"unterminated\n");
    let e = d.refused(&["group", "import", "g", &list], "bad_request");
    assert_eq!(e["errors"][0]["line"], 3, "{e}");
    let e = d.refused(&["role", "grant", "r", "tag.read", "--resources-file", &list], "bad_request");
    assert_eq!(e["errors"][0]["line"], 3, "{e}");
    assert_eq!(d.ok(&["group", "list"])[0]["members"], 0);
    assert_eq!(d.ok(&["role", "show", "r"])["grants"], json!([]));

    // Stray quotes are refused too, never read as data.
    let stray = write_file(&d, "stray.csv", "device,note\nline1/a,say \"hi\"\nline1/b,\"x\"y\n");
    let e = d.refused(&["resource", "import", &stray], "bad_request");
    let lines: Vec<i64> = e["errors"].as_array().unwrap().iter().map(|e| e["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, vec![2, 3], "{e}");
}

/// Bytes a terminal would act on, or that hide text, must not be in what the CLI prints for a person.
fn assert_printable(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    for bad in ['\u{1b}', '\u{202e}', '\u{9b}', '\u{200b}'] {
        assert!(!text.contains(bad), "{what} printed {bad:?} raw: {text:?}");
    }
}

#[test]
fn audit_and_lists_print_terminal_controls_escaped() {
    let d = Daemon::start();
    // A resource attribute holding a clear-screen sequence and a C1 CSI.
    d.ok(&["resource", "add", "line1/press3", "--attr", "note=\u{1b}[2Jdone\u{9b}31m"]);
    let out = d.cli(&["resource", "list"]);
    assert!(out.status.success());
    assert_printable("resource list", &out.stdout);
    assert!(String::from_utf8_lossy(&out.stdout).contains("[2Jdone\\u{9b}31m"), "{out:?}");

    // Free text with a bidi override no longer gets in (text::clean); a row stored by 0.1.0 may still
    // hold one, and an audit line must not be forgeable from it.
    let r = d.call("supervisor.message", serde_json::json!({"text": "line 1 \u{202e}pots"}));
    assert_eq!(r["error"]["code"], "bad_request", "{r}");
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    conn.execute(
        "INSERT INTO audit (ts, actor, source, action, target, outcome, detail) VALUES (1, 'user:old', 'socket', 'supervisor.message', NULL, 'ok', ?1)",
        [serde_json::json!({"text": "line 1 \u{202e}pots\nadmin  login  ok"}).to_string()],
    )
    .unwrap();
    drop(conn);
    let out = d.cli(&["audit"]);
    assert!(out.status.success());
    assert_printable("audit", &out.stdout);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\\u{202e}pots"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("admin  login")), "a forged audit line: {text}");

    // Error messages are escaped too.
    let out = d.cli(&["resource", "delete", "no\u{1b}[2Jsuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert_printable("an error", &out.stderr);
}

#[test]
fn expired_login_tokens_are_pruned() {
    let mut d = Daemon::start();
    user(&d, "op", &[]);
    let live = token(&d, "op");
    let _expired = token(&d, "op");
    assert_eq!(d.sql_count("SELECT count(*) FROM login_tokens"), 2);
    d.stop();
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    conn.execute("UPDATE login_tokens SET expires_at = 1 WHERE id = (SELECT max(id) FROM login_tokens)", []).unwrap();
    drop(conn);
    // Housekeeping runs at start and every minute after.
    d.launch();
    d.wait_ready();
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.sql_count("SELECT count(*) FROM login_tokens") != 1 {
        assert!(Instant::now() < deadline, "expired token not pruned");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, v) = common::as_token(&d, &live, &["user", "show"]);
    assert_eq!((code, v["name"].as_str()), (0, Some("op")), "{v}");
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn state_files_are_private_whatever_the_umask() {
    // The daemon inherits the test's umask; make it the common shell default.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let mut d = Daemon::start();
    user(&d, "op", &[]);
    let state = d.state_dir();
    for name in ["gatewarden.db", "gatewarden.db-wal", "gatewarden.db-shm", "gatewarden.lock"] {
        assert_eq!(mode(&state.join(name)), 0o600, "{name}");
    }
    assert_eq!(mode(&state), 0o750);
    assert_eq!(mode(&d.socket), 0o660);
    // Files an earlier version left world-readable are tightened at the next start.
    d.stop();
    for name in ["gatewarden.db", "gatewarden.lock"] {
        std::fs::set_permissions(state.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    d.launch();
    d.wait_ready();
    for name in ["gatewarden.db", "gatewarden.db-wal", "gatewarden.db-shm", "gatewarden.lock"] {
        assert_eq!(mode(&state.join(name)), 0o600, "{name} after restart");
    }
}

/// A listening socket at `dir/gatewarden-state/gatewarden.sock` that records whether anyone connected.
fn decoy(dir: &std::path::Path) -> (std::os::unix::net::UnixListener, std::path::PathBuf) {
    let state = dir.join("gatewarden-state");
    std::fs::create_dir_all(&state).unwrap();
    let path = state.join("gatewarden.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    (listener, path)
}

fn login_in(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(extra).args(["login", "admin", "--password-stdin"]).current_dir(dir);
    cmd.env_remove("GATEWARDEN_SOCKET").env_remove("RUNTIME_DIRECTORY").env_remove("STATE_DIRECTORY");
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(format!("{PW}\n").as_bytes());
    // A CLI that sent its request to a decoy would wait for a reply forever: give up on it.
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the CLI is still waiting on the socket in {}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn login_refuses_a_foreign_socket_in_the_working_directory() {
    if std::path::Path::new("/run/gatewarden/gatewarden.sock").exists() {
        eprintln!("skipped: a packaged gatewarden's socket exists and the CLI would use it first");
        return;
    }
    // A socket in a directory everybody can write to: anyone could have put it there.
    let dir = tempfile::tempdir().unwrap();
    let (listener, path) = decoy(dir.path());
    std::fs::set_permissions(path.parent().unwrap(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = login_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to use the control socket") && err.contains("writable by every user"), "{err}");
    assert!(listener.accept().is_err(), "the CLI connected to the decoy");
    // Named explicitly, it is refused just the same.
    let out = login_in(dir.path(), &["--socket", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(listener.accept().is_err(), "the CLI connected to the decoy");

    // As root: a socket and directory owned by another user, with tidy modes.
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped the foreign-owner half: it needs root to hand files to another user");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("user nobody");
    let dir = tempfile::tempdir().unwrap();
    let (listener, path) = decoy(dir.path());
    std::fs::set_permissions(path.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for p in [path.parent().unwrap(), &path] {
        nix::unistd::chown(p, Some(nobody.uid), Some(nobody.gid)).unwrap();
    }
    let out = login_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("owned by uid {}", nobody.uid)), "{err}");
    assert!(listener.accept().is_err(), "the CLI connected to the decoy");
}

#[test]
fn login_uses_the_working_directory_socket_of_its_own_daemon() {
    // The README's first command: `gatewarden serve` on embedded defaults, the CLI in the same directory.
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("admin.pw");
    std::fs::write(&pw, format!("{PW}\n")).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--admin-password-file", pw.to_str().unwrap()])
        .current_dir(dir.path())
        .env_remove("STATE_DIRECTORY")
        .env_remove("RUNTIME_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .env("GATEWARDEN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = dir.path().join("gatewarden-state/gatewarden.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        if socket.exists() {
            let out = login_in(dir.path(), &["--json"]);
            if out.status.success() {
                break out;
            }
        }
        assert!(Instant::now() < deadline, "no daemon in ./gatewarden-state");
        std::thread::sleep(Duration::from_millis(50));
    };
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["token"].as_str().unwrap().starts_with("gwt_"), "{v}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
}

/// Opens `n` connections and sends each half a request line. Returns those the daemon kept (it has
/// answered nothing on them) and how many it refused at once.
fn half_written(socket: &std::path::Path, n: usize) -> (Vec<UnixStream>, Vec<String>) {
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..n {
        match UnixStream::connect(socket) {
            Ok(mut s) => {
                let _ = s.write_all(br#"{"id": 1, "method": "sta"#);
                open.push(s);
            }
            Err(e) => refused.push(format!("connect failed: {e}")),
        }
    }
    // A refusal is answered at once; give the answers time to arrive, then sort.
    std::thread::sleep(Duration::from_millis(700));
    let mut kept = Vec::new();
    for s in open {
        s.set_nonblocking(true).unwrap();
        let mut line = String::new();
        match BufReader::new(&s).read_line(&mut line) {
            Ok(n) if n > 0 => refused.push(line),
            _ => {
                s.set_nonblocking(false).unwrap();
                kept.push(s);
            }
        }
    }
    (kept, refused)
}

/// Not a test on its own: run as `nobody` by
/// `half_written_connections_of_a_group_member_do_not_lock_root_out`, it holds half-written
/// connections until its standard input closes.
#[test]
fn helper_holds_half_written_connections() {
    let Ok(socket) = std::env::var("GATEWARDEN_TEST_HOLD_SOCKET") else { return };
    let (kept, refused) = half_written(std::path::Path::new(&socket), 16);
    println!("HELD {} REFUSED {}", kept.len(), refused.len());
    for r in &refused {
        println!("REPLY {}", r.trim());
    }
    println!("READY");
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    drop(kept);
}

const SLOTS_CONFIG: &str = "[daemon]\nmax_clients = 16\nclient_timeout = \"60s\"\n";

#[test]
fn half_written_connections_of_a_group_member_do_not_lock_root_out() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: this test runs a helper as `nobody` and needs root (CI runs it as root)");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("user nobody");
    let group = nix::unistd::Group::from_gid(nobody.gid).unwrap().expect("nobody's group");
    let exe = std::env::current_exe().unwrap();
    let d = Daemon::start_with(&format!("{SLOTS_CONFIG}socket_group = {:?}\n", group.name));
    for p in [d.dir.path().to_path_buf(), d.state_dir()] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    use std::os::unix::process::CommandExt;
    let helper = Command::new(&exe)
        .args(["--exact", "helper_holds_half_written_connections", "--nocapture", "--test-threads", "1"])
        .env("GATEWARDEN_TEST_HOLD_SOCKET", &d.socket)
        .uid(nobody.uid.as_raw())
        .gid(nobody.gid.as_raw())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut helper) = helper else {
        eprintln!("skipped: the test binary {} cannot run as nobody", exe.display());
        return;
    };
    let mut report = Vec::new();
    for line in BufReader::new(helper.stdout.take().unwrap()).lines() {
        let Ok(line) = line else { break };
        if line == "READY" {
            break;
        }
        // The test harness may print its own text before ours on the same line.
        if let Some(at) = line.find("HELD ").or_else(|| line.find("REPLY ")) {
            report.push(line[at..].to_string());
        }
    }
    if report.is_empty() {
        let _ = helper.kill();
        eprintln!("skipped: the test binary {} cannot run as nobody", exe.display());
        return;
    }
    // max_clients 16: two slots kept for root, a quarter of the other 14 (3) for one other uid.
    assert_eq!(report[0], "HELD 3 REFUSED 13", "{report:?}");
    assert!(report[1].contains("already has 3 connections open"), "{report:?}");
    // While nobody holds its share half-written, root gets in at once, many times over.
    let started = Instant::now();
    let mut conns: Vec<_> = (0..8).map(|_| d.connect().unwrap()).collect();
    for c in &mut conns {
        assert!(c.call("status", Value::Null)["result"].is_object());
    }
    assert!(started.elapsed() < Duration::from_secs(4), "root waited for nobody's slots");
    drop(helper.stdin.take());
    let _ = helper.wait();
}

/// Whether a fresh connection gets a `status` result (not a refusal, not a closed connection).
fn status_answers(socket: &std::path::Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"{\"id\":1,\"method\":\"status\"}\n").is_err() {
        return false;
    }
    let mut line = String::new();
    let _ = BufReader::new(&s).read_line(&mut line);
    serde_json::from_str::<Value>(&line).is_ok_and(|v| v["result"].is_object())
}

#[test]
fn half_written_root_connections_give_their_slots_back_within_seconds() {
    let d = Daemon::start_with(SLOTS_CONFIG);
    // The connection that saw the daemon ready gives its slot back as soon as the daemon reads its end.
    std::thread::sleep(Duration::from_millis(300));
    // Root may take every slot, but not keep one without sending a line.
    let (kept, refused) = half_written(&d.socket, 16);
    assert_eq!((kept.len(), refused.len()), (16, 0), "{refused:?}");
    let (_, more) = half_written(&d.socket, 1);
    assert!(more[0].contains("too many clients"), "{more:?}");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    while !status_answers(&d.socket) {
        assert!(Instant::now() < deadline, "root never got a slot back");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The half-written ones were closed by the daemon.
    for mut s in kept {
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(s.read(&mut [0u8; 16]).unwrap_or(0), 0);
    }
}
