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

mod common;

use common::{Conn, Latencies, OwnDaemon, file_size, proc_field, result};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
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

const USAGE: &str = "session_load [--socket PATH --token TOKEN] [--sessions N] [--connections C] \
                     [--interval 1s] [--duration 60s] [--persist 60s]";

fn secs(s: &str) -> Duration {
    common::duration(s)
}

fn usage(msg: &str) -> ! {
    common::usage(USAGE, msg)
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

/// Opens one session per host name; returns (id, token).
fn open_all(socket: &Path, auth: &Value, hosts: &[String], c: usize) -> (Vec<(i64, String)>, Latencies, Duration) {
    parallel(socket, hosts, c, |conn, host, lat| {
        let r = lat.timed(|| conn.call("session.open", json!({"type": "load", "host": host}), auth));
        let r = result(&r, "session.open");
        (r["session_id"].as_i64().unwrap(), r["token"].as_str().unwrap().to_string())
    })
}

fn main() {
    let a = parse_args();
    let own;
    let (socket, token, db) = match (&a.socket, &a.token) {
        (Some(s), Some(t)) => (s.clone(), t.clone(), None),
        (Some(_), None) => usage("--socket needs --token (or GATEWARDEN_TOKEN) of an account with sessions.terminate"),
        _ => {
            let license = format!(
                "[license]\nseats = {}\nheartbeat_timeout = \"{}s\"\npersist_interval = {:?}\n",
                a.sessions,
                (a.interval.as_secs() * 10).max(10),
                a.persist
            );
            own = OwnDaemon::start(a.connections + 8, &license);
            (own.socket.clone(), own.token.clone(), Some(own.db()))
        }
    };
    let auth = json!({"token": token});
    let probe = Conn::open(&socket);
    let pid = probe.peer_pid();
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
                    let r = lat.timed(|| conn.call("session.heartbeat", Value::Null, &json!({"token": t})));
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
        let r = lat.timed(|| conn.call("session.terminate", json!({"session_id": id, "reason": "load test"}), &auth));
        result(&r, "session.terminate");
    });
    lat.report("terminate", wall);
    let hosts: Vec<String> = (0..a.sessions).map(|i| format!("panel-b-{i}")).collect();
    let (_, mut lat, wall) = open_all(&socket, &auth, &hosts, a.connections);
    lat.report("reopen", wall);
}
