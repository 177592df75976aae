//! Test harness: starts the real `gatewarden` binary on a temp directory and drives it through its
//! CLI and its control socket, exactly as a technician or a local service would. `mqtt` adds a real
//! mosquitto (also as shipped, with its config and ACL) and HMIs for the MQTT tests.
#![allow(dead_code)]

pub mod ldap;
pub mod mqtt;
pub mod nats;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_gatewarden");

/// Settings every test daemon gets: no broker unless a test brings one, cheap argon2 so tests that
/// log in many times stay fast (the default cost is measured in benches/, not here).
pub const BASE_CONFIG: &str = r#"
[mqtt]
enabled = false

[accounts.argon2]
memory_kib = 256
iterations = 1
"#;

/// The password every test account gets.
pub const PW: &str = "correct-horse-1";

/// Creates a user with password [`PW`] and `roles` through the CLI.
pub fn user(d: &Daemon, name: &str, roles: &[&str]) {
    let mut args = vec!["--json", "user", "add", name, "--password-stdin"];
    for r in roles {
        args.extend(["--role", r]);
    }
    let out = d.cli_with(&args, Some(&format!("{PW}\n")), &[]);
    assert!(out.status.success(), "user add {name}: {}", String::from_utf8_lossy(&out.stdout));
}

/// Logs `name` in with [`PW`] and returns the token.
pub fn token(d: &Daemon, name: &str) -> String {
    token_with(d, name, PW)
}

/// Logs `name` in with `password` and returns the token.
pub fn token_with(d: &Daemon, name: &str, password: &str) -> String {
    let (code, v) = d.cli_json_with(&["login", name, "--password-stdin"], Some(&format!("{password}\n")), &[]);
    assert_eq!(code, 0, "{v}");
    v["token"].as_str().unwrap().to_string()
}

/// How many times `action` ended with `outcome` per the audit trail (refusals and failed logins are
/// counted into rows with `detail.count`; other rows count once). Flushes pending rows first.
pub fn audit_count(d: &Daemon, action: &str, outcome: &str) -> i64 {
    let audit = d.ok(&["audit", "--limit", "10000"]);
    audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action && e["outcome"] == outcome)
        .map(|e| e["detail"]["count"].as_i64().unwrap_or(1))
        .sum()
}

/// Polls `f` every 50 ms for up to 10 s.
pub fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the CLI with `--json` as the holder of `token`.
pub fn as_token(d: &Daemon, token: &str, args: &[&str]) -> (i32, Value) {
    d.cli_json_with(args, None, &[("GATEWARDEN_TOKEN", token)])
}

/// Writes a file in the test's temp dir and returns its path.
pub fn write_file(d: &Daemon, name: &str, text: &str) -> String {
    let p = d.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub config_path: PathBuf,
    pub socket: PathBuf,
    pub log_path: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Daemon {
    /// Starts a daemon with the base test config.
    pub fn start() -> Daemon {
        Self::start_with("")
    }

    /// Starts a daemon with the base test config plus `extra` TOML (later tables win by merging).
    pub fn start_with(extra: &str) -> Daemon {
        let d = Self::prepare(extra);
        d.spawned(Vec::new())
    }

    /// Creates the temp dir and config without starting anything.
    pub fn prepare(extra: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("gatewarden.toml");
        let state = dir.path().join("state");
        let config = merge_toml(
            &format!("[daemon]\nstate_dir = {:?}\nlog_level = \"debug\"\n{BASE_CONFIG}", state.display().to_string()),
            extra,
        );
        std::fs::write(&config_path, config).unwrap();
        Daemon {
            socket: state.join("gatewarden.sock"),
            log_path: dir.path().join("daemon.log"),
            config_path,
            dir,
            child: None,
            env: Vec::new(),
        }
    }

    pub fn spawned(mut self, env: Vec<(String, String)>) -> Daemon {
        self.env = env;
        self.launch();
        self.wait_ready();
        self
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("gatewarden.db")
    }

    /// Starts the process (appending to the log) without waiting for it.
    pub fn launch(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").arg("--config").arg(&self.config_path);
        cmd.env_remove("NOTIFY_SOCKET").env_remove("WATCHDOG_USEC").env_remove("JOURNAL_STREAM");
        cmd.env_remove("GATEWARDEN_LOG").env_remove("STATE_DIRECTORY").env_remove("RUNTIME_DIRECTORY");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child =
            cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("spawn gatewarden");
        self.child = Some(child);
    }

    /// Waits until the control socket answers `status`.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut c) = self.connect()
                && c.call("status", Value::Null).get("result").is_some()
            {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("gatewarden exited early with {status}; log:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "gatewarden did not become ready; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// SIGTERM and wait for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait_exit()
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("gatewarden did not exit; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a power cut would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        if self.child.is_some() {
            let s = self.stop();
            assert!(s.success(), "stop failed: {s}");
        }
        self.launch();
        self.wait_ready();
    }

    /// Runs the CLI against this daemon as the current user (root in CI: the built-in admin).
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, None, &[])
    }

    pub fn cli_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--socket").arg(&self.socket).args(args).env_remove("GATEWARDEN_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn cli");
        if let Some(input) = stdin {
            // A command may exit (refusing) before it reads its input: that is its answer, not ours.
            if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing the CLI's stdin: {e}");
            }
        }
        child.wait_with_output().unwrap()
    }

    /// Runs the CLI with `--json` and parses what it printed.
    pub fn cli_json(&self, args: &[&str]) -> (i32, Value) {
        self.cli_json_with(args, None, &[])
    }

    pub fn cli_json_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> (i32, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli_with(&all, stdin, env);
        let text = String::from_utf8_lossy(&out.stdout);
        let v = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "cli {args:?} printed no JSON ({e}): stdout={text:?} stderr={:?}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), v)
    }

    /// Runs a CLI command that must succeed and returns its JSON result.
    pub fn ok(&self, args: &[&str]) -> Value {
        let (code, v) = self.cli_json(args);
        assert_eq!(code, 0, "cli {args:?} failed: {v}");
        v
    }

    /// Runs a CLI command that must fail with `code` and returns the error object.
    pub fn refused(&self, args: &[&str], code: &str) -> Value {
        let (exit, v) = self.cli_json(args);
        assert_eq!(exit, 1, "cli {args:?} should fail with {code}: {v}");
        assert_eq!(v["error"]["code"], code, "cli {args:?}: {v}");
        v["error"].clone()
    }

    pub fn connect(&self) -> std::io::Result<Conn> {
        Conn::open(&self.socket)
    }

    /// One request on a fresh connection; returns the whole reply object.
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.connect().expect("connect").call(method, params)
    }

    pub fn call_auth(&self, method: &str, params: Value, auth: Value) -> Value {
        self.connect().expect("connect").send(&json!({"id": 1, "method": method, "params": params, "auth": auth}))
    }

    pub fn sql_count(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.db_path()).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A raw control-socket connection speaking newline-delimited JSON.
pub struct Conn {
    pub reader: BufReader<UnixStream>,
    next: u64,
}

impl Conn {
    pub fn open(path: &Path) -> std::io::Result<Conn> {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn { reader: BufReader::new(s), next: 1 })
    }

    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        self.send(&json!({"id": self.next, "method": method, "params": params}))
    }

    pub fn send(&mut self, req: &Value) -> Value {
        let mut line = req.to_string().into_bytes();
        line.push(b'\n');
        self.send_raw(&line);
        self.read_reply().expect("reply")
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// The next reply line, or None when the daemon closed the connection.
    pub fn read_reply(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("reply is JSON")),
        }
    }
}

/// Appends `extra` to `base`, merging tables that appear in both (so a test can override a key of
/// the base config without writing the table twice, which TOML forbids).
pub fn merge_toml(base: &str, extra: &str) -> String {
    let mut doc: toml::Table = toml::from_str(base).unwrap();
    let add: toml::Table = toml::from_str(extra).expect("test config is valid TOML");
    fn merge(into: &mut toml::Table, from: toml::Table) {
        for (k, v) in from {
            match (into.get_mut(&k), v) {
                (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
                (_, v) => {
                    into.insert(k, v);
                }
            }
        }
    }
    merge(&mut doc, add);
    toml::to_string(&doc).unwrap()
}
