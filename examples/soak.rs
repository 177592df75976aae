//! Soak run: a daemon of its own under a steady, mixed load for a long time (default one hour), with
//! a report line per interval: the daemon's RSS, database and WAL size, open file descriptors, and
//! the latency of checks and heartbeats in that interval. The targets: flat RSS, a bounded file, no
//! fd leak.
//!
//! The load: `--sessions` sessions heartbeating every second; churn (one session closed and one
//! opened every 100 ms, one terminated every second); `authz.check` from 4 clients at about
//! 250/s each; the supervisor lock set and cleared every 5 s; a policy change every 10 s.
//!
//! Run: `cargo build --release --bins --examples && target/release/examples/soak [--duration 1h]
//!       [--every 60s] [--sessions 200]`

mod common;

use common::{Conn, Latencies, OwnDaemon, fd_count, file_size, ms, proc_field, result};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USAGE: &str = "soak [--duration 1h] [--every 60s] [--sessions 200]";

struct Shared {
    stop: AtomicBool,
    checks: Mutex<Latencies>,
    beats: Mutex<Latencies>,
    opens: AtomicU64,
    errors: AtomicU64,
}

fn main() {
    let (mut duration, mut every, mut sessions) = (Duration::from_secs(3600), Duration::from_secs(60), 200usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| common::usage(USAGE, &format!("{flag} needs a value")));
        match flag.as_str() {
            "--duration" => duration = common::duration(&value()),
            "--every" => every = common::duration(&value()),
            "--sessions" => sessions = value().parse().unwrap_or_else(|_| common::usage(USAGE, "--sessions N")),
            other => common::usage(USAGE, &format!("unknown argument {other:?}")),
        }
    }
    let own = OwnDaemon::start(
        32,
        &format!(
            "[license]\nseats = {}\nheartbeat_timeout = \"10s\"\nterminate_cooldown = \"1s\"\n\
             [retention]\naudit_max_rows = 20000\noutbox_max_rows = 5000\n",
            sessions + 50
        ),
    );
    let auth = json!({"token": own.token});
    let mut admin = Conn::open(&own.socket);
    let pid = admin.peer_pid();
    setup(&mut admin, &auth);
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        checks: Mutex::new(Latencies::default()),
        beats: Mutex::new(Latencies::default()),
        opens: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    println!("soak: {sessions} sessions, {duration:?}, daemon pid {pid}, report every {every:?}");
    println!(
        "{:>7} {:>9} {:>10} {:>10} {:>4} {:>9} {:>9} {:>9} {:>9} {:>7} {:>6}",
        "min",
        "rss_kib",
        "db_bytes",
        "wal_bytes",
        "fds",
        "checks/s",
        "chk_p99",
        "beat_p99",
        "max_ms",
        "opens",
        "errors"
    );
    std::thread::scope(|s| {
        let sock = &own.socket;
        for t in 0..2 {
            let (sh, auth) = (shared.clone(), auth.clone());
            s.spawn(move || sessions_worker(sock, &auth, &sh, sessions / 2, t));
        }
        for _ in 0..4 {
            let sh = shared.clone();
            s.spawn(move || checker(sock, &sh));
        }
        let (sh, auth2) = (shared.clone(), auth.clone());
        s.spawn(move || supervisor(sock, &auth2, &sh));

        let start = Instant::now();
        let mut last = Instant::now();
        while start.elapsed() < duration {
            std::thread::sleep(every.min(duration.saturating_sub(start.elapsed())));
            let wall = last.elapsed();
            last = Instant::now();
            let mut checks = std::mem::take(&mut *shared.checks.lock().unwrap());
            let mut beats = std::mem::take(&mut *shared.beats.lock().unwrap());
            let max = checks.pct(1.0).max(beats.pct(1.0));
            println!(
                "{:>7.1} {:>9} {:>10} {:>10} {:>4} {:>9.0} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>6}",
                start.elapsed().as_secs_f64() / 60.0,
                proc_field(pid, "status", "VmRSS:"),
                file_size(&own.db()),
                file_size(&own.db().with_extension("db-wal")),
                fd_count(pid),
                checks.0.len() as f64 / wall.as_secs_f64(),
                ms(checks.pct(0.99)),
                ms(beats.pct(0.99)),
                ms(max),
                shared.opens.load(Ordering::Relaxed),
                shared.errors.load(Ordering::Relaxed),
            );
        }
        shared.stop.store(true, Ordering::Relaxed);
    });
}

/// Roles, resources and users for the checks.
fn setup(c: &mut Conn, auth: &Value) {
    result(&c.call("role.create", json!({"name": "operators"}), auth), "role");
    let grant =
        json!({"role": "operators", "permission": "tag.write", "write": true, "resources": ["line1/*", "@presses"]});
    result(&c.call("role.grant", grant, auth), "grant");
    result(&c.call("group.create", json!({"name": "presses"}), auth), "group");
    let csv: String = std::iter::once("device".to_string())
        .chain((0..500).map(|i| format!("line{}/m{i}", i % 5)))
        .collect::<Vec<_>>()
        .join("\n");
    result(&c.call("resource.import", json!({"csv": csv}), auth), "resources");
    for i in 0..20 {
        let u = json!({"name": format!("op{i}"), "roles": ["operators"]});
        result(&c.call("user.create", u, auth), "user");
    }
}

fn sessions_worker(sock: &std::path::Path, auth: &Value, sh: &Shared, n: usize, t: usize) {
    let mut c = Conn::open(sock);
    let mut seq = 0u64;
    let mut open = |c: &mut Conn| -> Option<(i64, String)> {
        seq += 1;
        let r = c.call("session.open", json!({"type": "soak", "host": format!("w{t}-{seq}")}), auth);
        sh.opens.fetch_add(1, Ordering::Relaxed);
        match r.get("result") {
            Some(v) => Some((v["session_id"].as_i64()?, v["token"].as_str()?.to_string())),
            None => {
                sh.errors.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    };
    let mut live: Vec<(i64, String)> = (0..n).filter_map(|_| open(&mut c)).collect();
    let mut tick = 0u64;
    while !sh.stop.load(Ordering::Relaxed) {
        let round = Instant::now();
        let mut lat = Latencies::default();
        for (_, token) in &live {
            let r = lat.timed(|| c.call("session.heartbeat", Value::Null, &json!({"token": token})));
            if r.get("result").is_none() {
                sh.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        sh.beats.lock().unwrap().0.extend(lat.0);
        // Churn, in ten steps per second: close one, open one; terminate one each second.
        for step in 0..10 {
            if let Some((_, token)) = (!live.is_empty()).then(|| live.remove(0)) {
                let method = if step == 0 && tick.is_multiple_of(2) { "session.terminate" } else { "session.close" };
                let r = if method == "session.close" {
                    c.call(method, Value::Null, &json!({"token": token}))
                } else {
                    let id: i64 = token.trim_start_matches("gws_").split('.').next().unwrap().parse().unwrap();
                    c.call(method, json!({"session_id": id, "reason": "soak churn"}), auth)
                };
                if r.get("result").is_none() {
                    sh.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Some(s) = open(&mut c) {
                live.push(s);
            }
            std::thread::sleep(Duration::from_millis(100).saturating_sub(round.elapsed() / 10));
        }
        tick += 1;
    }
}

fn checker(sock: &std::path::Path, sh: &Shared) {
    let mut c = Conn::open(sock);
    let mut i = 0u64;
    let login = c.call("login", json!({"user": "admin", "password": "load-generator-password"}), &Value::Null);
    let auth = json!({"token": result(&login, "login")["token"]});
    while !sh.stop.load(Ordering::Relaxed) {
        let mut lat = Latencies::default();
        for _ in 0..250 {
            i += 1;
            let q = json!({"subject": format!("op{}", i % 20), "permission": "tag.write",
                           "resource": format!("line{}/m{}", i % 5, i % 500), "access": if i.is_multiple_of(2) { "write" } else { "read" }});
            let r = lat.timed(|| c.call("authz.check", q, &auth));
            if r.get("result").is_none() && r["error"]["code"] != "supervisor_locked" {
                sh.errors.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        sh.checks.lock().unwrap().0.extend(lat.0);
    }
}

fn supervisor(sock: &std::path::Path, auth: &Value, sh: &Shared) {
    let mut c = Conn::open(sock);
    let mut n = 0u64;
    while !sh.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(5));
        n += 1;
        let r = if n % 2 == 1 {
            c.call("supervisor.lock", json!({"reason": "soak"}), auth)
        } else {
            c.call("supervisor.unlock", Value::Null, auth)
        };
        let r2 = if n.is_multiple_of(2) {
            let g = json!({"role": "operators", "permission": format!("app.p{n}"), "read": true});
            c.call("role.grant", g, auth)
        } else {
            json!({"result": {}})
        };
        if r.get("result").is_none() || r2.get("result").is_none() {
            sh.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}
