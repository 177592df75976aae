//! Load generator for HMI client sessions over the control socket.
//!
//! Starts its own daemon (the `gatewarden` binary next to this example's directory, on a temp dir,
//! MQTT off, seats = sessions) unless `--socket` names a running one, then:
//! 1. opens N sessions over C connections and reports opens/s and open latency;
//! 2. keeps all N heartbeating once per interval for the given duration and reports heartbeats/s,
//!    p50/p99/max latency, and the bytes the daemon wrote to disk (/proc/<pid>/io write_bytes)
//!    per minute of heartbeats, with the database file sizes;
//! 3. terminates every session, then opens N again, and reports both rates.
//!
//! Run: `cargo build --release --bins --examples && target/release/examples/session_load
//!       [--sessions 1000] [--connections 16] [--interval 1s] [--duration 60s] [--persist 60s]`

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    socket: Option<PathBuf>,
    token: Option<String>,
    sessions: usize,
    connections: usize,
    interval: Duration,
    duration: Duration,
    persist: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        socket: None,
        token: std::env::var("GATEWARDEN_TOKEN").ok(),
        sessions: 1000,
        connections: 16,
        interval: Duration::from_secs(1),
        duration: Duration::from_secs(60),
        persist: "60s".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--socket" => a.socket = Some(value().into()),
            "--token" => a.token = Some(value()),
            "--sessions" => a.sessions = value().parse().unwrap_or_else(|_| usage("--sessions N")),
            "--connections" => a.connections = value().parse().unwrap_or_else(|_| usage("--connections N")),
            "--interval" => a.interval = secs(&value()),
            "--duration" => a.duration = secs(&value()),
            "--persist" => a.persist = value(),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    a.connections = a.connections.clamp(1, a.sessions.max(1));
    a
}

fn secs(s: &str) -> Duration {
    gatewarden::config::parse_duration(s).unwrap_or_else(|e| usage(&format!("{s:?}: {e}")))
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "{msg}\nusage: session_load [--socket PATH --token TOKEN] [--sessions N] [--connections C] \
         [--interval 1s] [--duration 60s] [--persist 60s]"
    );
    std::process::exit(2)
}

/// One control-socket connection.
struct Conn {
    r: BufReader<UnixStream>,
    line: String,
}

impl Conn {
    fn open(path: &Path) -> Conn {
        let s = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        Conn { r: BufReader::new(s), line: String::new() }
    }

    fn call(&mut self, method: &str, params: Value, auth: &Value) -> Value {
        let mut req = serde_json::to_vec(&json!({"id": 1, "method": method, "params": params, "auth": auth})).unwrap();
        req.push(b'\n');
        self.r.get_mut().write_all(&req).expect("send");
        self.line.clear();
        self.r.read_line(&mut self.line).expect("reply");
        serde_json::from_str(&self.line).expect("reply is JSON")
    }

    /// The daemon's pid, from the socket's peer credentials.
    fn peer_pid(&self) -> i32 {
        nix::sys::socket::getsockopt(self.r.get_ref(), nix::sys::socket::sockopt::PeerCredentials)
            .map(|c| c.pid())
            .unwrap_or(0)
    }
}

fn result<'a>(r: &'a Value, what: &str) -> &'a Value {
    r.get("result").unwrap_or_else(|| panic!("{what}: {r}"))
}

#[derive(Default)]
struct Latencies(Vec<Duration>);

impl Latencies {
    fn pct(&mut self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i]
    }

    fn report(&mut self, what: &str, wall: Duration) {
        let n = self.0.len();
        println!(
            "{what:<12} {n:>7} in {:>6.2} s = {:>8.0}/s   p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms",
            wall.as_secs_f64(),
            n as f64 / wall.as_secs_f64(),
            ms(self.pct(0.50)),
            ms(self.pct(0.99)),
            ms(self.pct(1.0)),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn proc_field(pid: i32, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix(key)?.trim().trim_end_matches(" kB").trim().parse().ok()))
        .unwrap_or(0)
}

/// Runs `work` on C threads, each given its share of `items`, and gathers the latencies.
fn parallel<T: Sync, R: Send>(
    socket: &Path,
    items: &[T],
    connections: usize,
    work: impl Fn(&mut Conn, &T, &mut Latencies) -> R + Sync,
) -> (Vec<R>, Latencies, Duration) {
    let start = Instant::now();
    let chunk = items.len().div_ceil(connections).max(1);
    let (results, lats): (Vec<Vec<R>>, Vec<Latencies>) = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let work = &work;
                s.spawn(move || {
                    let mut c = Conn::open(socket);
                    let mut lat = Latencies::default();
                    let out: Vec<R> = part.iter().map(|it| work(&mut c, it, &mut lat)).collect();
                    (out, lat)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("worker")).unzip()
    });
    let mut all = Latencies::default();
    for l in lats {
        all.0.extend(l.0);
    }
    (results.into_iter().flatten().collect(), all, start.elapsed())
}

fn timed(lat: &mut Latencies, f: impl FnOnce() -> Value) -> Value {
    let t = Instant::now();
    let v = f();
    lat.0.push(t.elapsed());
    v
}

/// Opens one session per host name; returns (id, token).
fn open_all(socket: &Path, auth: &Value, hosts: &[String], c: usize) -> (Vec<(i64, String)>, Latencies, Duration) {
    parallel(socket, hosts, c, |conn, host, lat| {
        let r = timed(lat, || conn.call("session.open", json!({"type": "load", "host": host}), auth));
        let r = result(&r, "session.open");
        (r["session_id"].as_i64().unwrap(), r["token"].as_str().unwrap().to_string())
    })
}

struct OwnDaemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for OwnDaemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::SIGTERM);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_daemon(a: &Args) -> (OwnDaemon, PathBuf, String) {
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe.parent().and_then(Path::parent).map(|d| d.join("gatewarden")).expect("target dir");
    if !bin.exists() {
        usage(&format!("{} not found: run `cargo build --release --bins --examples` first", bin.display()));
    }
    let dir = std::env::temp_dir().join(format!("gatewarden-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let password = "load-generator-password";
    std::fs::write(dir.join("admin.pw"), password).unwrap();
    let config = format!(
        "[daemon]\nstate_dir = {:?}\nlog_level = \"warn\"\nmax_clients = {}\n[mqtt]\nenabled = false\n\
         [license]\nseats = {}\nheartbeat_timeout = \"{}s\"\npersist_interval = {:?}\n",
        dir.join("state").display().to_string(),
        a.connections + 8,
        a.sessions,
        (a.interval.as_secs() * 10).max(10),
        a.persist,
    );
    std::fs::write(dir.join("gatewarden.toml"), config).unwrap();
    let child = Command::new(&bin)
        .args(["serve", "--config"])
        .arg(dir.join("gatewarden.toml"))
        .arg("--admin-password-file")
        .arg(dir.join("admin.pw"))
        .stdin(Stdio::null())
        .spawn()
        .expect("start gatewarden");
    let own = OwnDaemon { child, dir: dir.clone() };
    let socket = dir.join("state/gatewarden.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "gatewarden did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = Conn::open(&socket);
    let r = c.call("login", json!({"user": "admin", "password": password}), &Value::Null);
    let token = result(&r, "login")["token"].as_str().unwrap().to_string();
    (own, socket, token)
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn main() {
    let a = parse_args();
    let (_own, socket, token) = match (&a.socket, &a.token) {
        (Some(s), Some(t)) => (None, s.clone(), t.clone()),
        (Some(_), None) => usage("--socket needs --token (or GATEWARDEN_TOKEN) of an account with sessions.terminate"),
        _ => {
            let (own, s, t) = start_daemon(&a);
            (Some(own), s, t)
        }
    };
    let auth = json!({"token": token});
    let probe = Conn::open(&socket);
    let pid = probe.peer_pid();
    let db = _own.as_ref().map(|o| o.dir.join("state/gatewarden.db"));
    println!(
        "gatewarden session load: {} sessions over {} connections, heartbeat every {:?} for {:?}, daemon pid {pid}",
        a.sessions, a.connections, a.interval, a.duration
    );

    let hosts: Vec<String> = (0..a.sessions).map(|i| format!("panel-{i}")).collect();
    let (sessions, mut lat, wall) = open_all(&socket, &auth, &hosts, a.connections);
    lat.report("open", wall);

    // Heartbeats: each connection beats its share of sessions once per interval.
    let io_before = proc_field(pid, "io", "write_bytes:");
    let sizes_before = db.as_ref().map(|d| (file_size(d), file_size(&d.with_extension("db-wal"))));
    let rss_before = proc_field(pid, "status", "VmRSS:");
    let end = Instant::now() + a.duration;
    let (_, mut lat, wall) = parallel(
        &socket,
        &sessions.chunks(a.sessions.div_ceil(a.connections)).collect::<Vec<_>>(),
        a.connections,
        |conn, part, lat| {
            let mut next = Instant::now();
            while Instant::now() < end {
                for (_, t) in part.iter() {
                    let r = timed(lat, || conn.call("session.heartbeat", Value::Null, &json!({"token": t})));
                    result(&r, "session.heartbeat");
                }
                next += a.interval;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        },
    );
    lat.report("heartbeat", wall);
    let written = proc_field(pid, "io", "write_bytes:").saturating_sub(io_before);
    println!(
        "disk writes during heartbeats: {written} bytes = {:.0} bytes/min (persist_interval {})",
        written as f64 / wall.as_secs_f64() * 60.0,
        a.persist
    );
    if let (Some(d), Some((db0, wal0))) = (&db, sizes_before) {
        println!(
            "database file {} -> {} bytes, WAL {} -> {} bytes",
            db0,
            file_size(d),
            wal0,
            file_size(&d.with_extension("db-wal"))
        );
    }
    println!("daemon RSS {} kB -> {} kB", rss_before, proc_field(pid, "status", "VmRSS:"));

    let (_, mut lat, wall) = parallel(&socket, &sessions, a.connections, |conn, (id, _), lat| {
        let r = timed(lat, || conn.call("session.terminate", json!({"session_id": id, "reason": "load test"}), &auth));
        result(&r, "session.terminate");
    });
    lat.report("terminate", wall);
    let hosts: Vec<String> = (0..a.sessions).map(|i| format!("panel-b-{i}")).collect();
    let (_, mut lat, wall) = open_all(&socket, &auth, &hosts, a.connections);
    lat.report("reopen", wall);
}
