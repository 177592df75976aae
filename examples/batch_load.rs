//! Batch questions over the control socket against single ones and against the engine in process
//! (issue 15: an HMI opening a screen of 200 tags; goal ≥ 1 M answers/s over the socket with batches
//! of 200).
//!
//! Starts its own daemon (the `gatewarden` binary next to this example's directory, on a temp dir, MQTT
//! off) and sets up a plant through the socket as the admin: `LINES` lines of 200 tags each
//! (`line{L}/tag{N}`, imported from CSV), a group `safety` (the first 10 tags of every line), the roles
//! `viewer` (read `tag.read` on `*`), `operator_a` / `operator_b` (`tag.write` on half the lines each,
//! and a write deny on `@safety`), and U users holding `viewer` and one operator role. Each user opens
//! an HMI session; every request carries the session token and asks about the caller itself.
//!
//! A "screen" is one line's 200 tags asked about by one user: tag by tag, `tag.read` (read) and
//! `tag.write` (write), alternating, so allows, deny-grant refusals and no-grant refusals all occur.
//! For each mode, C threads, each on its own connection, send requests back to back for the given
//! duration after a warm-up:
//! - `single`: one `authz.check` a request (the screen's questions one by one: what HMIs do today);
//! - `check_many`: one `authz.check_many` a request, with the whole screen's B questions;
//! - `allowed`: one `authz.allowed` a request (`tag.write`, write, the screen's B tags).
//!
//! Then `raw`: the same questions asked of the compiled index in this process (built from the
//! daemon's database, the policy the daemon answers from), on one thread: the engine alone, the
//! bound for what any transport can reach per core.
//!
//! Reports per mode: answers/s, requests/s, p50/p99 request latency, the daemon's CPU over the window
//! (cores, and microseconds of daemon CPU per answer: the figure a busy machine distorts least), the
//! load generator's CPU, reply bytes per answer, and the ratios to `single` and to `raw` from the same
//! run.
//!
//! Run: `cargo build --release --bins --examples && target/release/examples/batch_load
//!       [--clients 2] [--duration 10s] [--warmup 1s] [--users 20] [--batch 200] [--modes single,check_many,allowed]`

mod common;

use common::{Conn, OwnDaemon, cpu_over_window, load_average, proc_field, result};
use gatewarden::authz::{Access, Index, SubjectKey};
use serde_json::{Value, json};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

const LINES: usize = 10;
const TAGS: usize = 200;
const PASSWORD: &str = common::ADMIN_PASSWORD;
const USAGE: &str = "batch_load [--clients 2] [--duration 10s] [--warmup 1s] [--users 20] [--batch 200] \
                     [--modes single,check_many,allowed]";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Single,
    CheckMany,
    Allowed,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        match s {
            "single" => Some(Mode::Single),
            "check_many" => Some(Mode::CheckMany),
            "allowed" => Some(Mode::Allowed),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::CheckMany => "check_many",
            Mode::Allowed => "allowed",
        }
    }
}

struct Args {
    clients: usize,
    duration: Duration,
    warmup: Duration,
    users: usize,
    batch: usize,
    modes: Vec<Mode>,
}

fn parse_args() -> Args {
    let mut a = Args {
        clients: 2,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        users: 20,
        batch: 200,
        modes: vec![Mode::Single, Mode::CheckMany, Mode::Allowed],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| common::usage(USAGE, &format!("{flag} needs a value")));
        let number = |v: String| v.parse::<usize>().unwrap_or_else(|_| common::usage(USAGE, "a number"));
        match flag.as_str() {
            "--clients" => a.clients = number(value()),
            "--duration" => a.duration = common::duration(&value()),
            "--warmup" => a.warmup = common::duration(&value()),
            "--users" => a.users = number(value()),
            "--batch" => a.batch = number(value()),
            "--modes" => {
                a.modes = value()
                    .split(',')
                    .map(|m| Mode::parse(m.trim()).unwrap_or_else(|| common::usage(USAGE, &format!("mode {m:?}"))))
                    .collect()
            }
            "-h" | "--help" => common::usage(USAGE, ""),
            other => common::usage(USAGE, &format!("unknown argument {other:?}")),
        }
    }
    if a.clients == 0 || a.users < a.clients || !(1..=TAGS).contains(&a.batch) {
        common::usage(USAGE, &format!("need clients >= 1, users >= clients, 1 <= batch <= {TAGS}"));
    }
    a
}

// ---------------------------------------------------------------------------------------------------
// The plant.

fn tag(line: usize, n: usize) -> String {
    format!("line{line}/tag{n}")
}

fn setup(conn: &mut Conn, auth: &Value, users: usize) {
    let started = Instant::now();
    let call = |conn: &mut Conn, method: &str, params: Value| result(&conn.call(method, params, auth), method).clone();
    let mut csv = String::from("tag\n");
    for line in 0..LINES {
        for n in 0..TAGS {
            csv.push_str(&tag(line, n));
            csv.push('\n');
        }
    }
    call(conn, "resource.import", json!({"csv": csv}));
    let safety: Vec<String> = (0..LINES).flat_map(|l| (0..10).map(move |n| tag(l, n))).collect();
    call(conn, "group.create", json!({"name": "safety"}));
    call(conn, "group.add", json!({"group": "safety", "resources": safety}));
    for role in ["viewer", "operator_a", "operator_b"] {
        call(conn, "role.create", json!({"name": role}));
    }
    let grant =
        |conn: &mut Conn, role: &str, permission: &str, rw: (bool, bool), resources: Vec<String>, deny: bool| {
            let p = json!({"role": role, "permission": permission, "read": rw.0, "write": rw.1,
                       "resources": resources, "deny": deny});
            call(conn, "role.grant", p);
        };
    grant(conn, "viewer", "tag.read", (true, false), vec!["*".into()], false);
    for (role, lines) in [("operator_a", 0..LINES / 2), ("operator_b", LINES / 2..LINES)] {
        grant(conn, role, "tag.write", (true, true), lines.map(|l| format!("line{l}/*")).collect(), false);
        grant(conn, role, "tag.write", (false, true), vec!["@safety".into()], true);
    }
    for i in 0..users {
        let roles = ["viewer", if i % 2 == 0 { "operator_a" } else { "operator_b" }];
        call(conn, "user.create", json!({"name": format!("user{i}"), "password": PASSWORD, "roles": roles}));
    }
    println!(
        "setup: {} tags on {LINES} lines, group safety ({}), 3 roles, {users} users in {:.1} s",
        LINES * TAGS,
        LINES * 10,
        started.elapsed().as_secs_f64()
    );
}

/// One question of a screen: (permission, access, resource).
type Question = (&'static str, Access, String);

/// User `u`'s screen of line `line`: its first `batch` tags, read and write questions alternating.
fn screen(line: usize, batch: usize) -> Vec<Question> {
    (0..batch)
        .map(|n| {
            if n % 2 == 0 {
                ("tag.read", Access::Read, tag(line, n))
            } else {
                ("tag.write", Access::Write, tag(line, n))
            }
        })
        .collect()
}

fn access_text(a: Access) -> &'static str {
    match a {
        Access::Read => "read",
        Access::Write => "write",
    }
}

fn line_of(req: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(req).unwrap();
    line.push(b'\n');
    line
}

/// The request lines of one client for a mode, each with the number of answers it asks for: every
/// line's screen for each of the client's users.
fn requests(mode: Mode, mine: &[(usize, String)], batch: usize) -> Vec<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    for (_, token) in mine {
        let auth = json!({"token": token});
        for line in 0..LINES {
            let qs = screen(line, batch);
            match mode {
                Mode::Single => out.extend(qs.iter().map(|(p, a, r)| {
                    let params = json!({"permission": p, "access": access_text(*a), "resource": r});
                    (line_of(&json!({"id": 1, "method": "authz.check", "params": params, "auth": auth})), 1)
                })),
                Mode::CheckMany => {
                    let checks: Vec<Value> = qs
                        .iter()
                        .map(|(p, a, r)| json!({"permission": p, "access": access_text(*a), "resource": r}))
                        .collect();
                    let req =
                        json!({"id": 1, "method": "authz.check_many", "params": {"checks": checks}, "auth": auth});
                    out.push((line_of(&req), qs.len()));
                }
                Mode::Allowed => {
                    let resources: Vec<&String> = qs.iter().map(|(_, _, r)| r).collect();
                    let params = json!({"permission": "tag.write", "access": "write", "resources": resources});
                    out.push((
                        line_of(&json!({"id": 1, "method": "authz.allowed", "params": params, "auth": auth})),
                        qs.len(),
                    ));
                }
            }
        }
    }
    out
}

/// The batch and the single questions agree, so the load runs against the answers it claims.
fn verify(conn: &mut Conn, token: &str, batch: usize) -> (usize, usize) {
    let auth = json!({"token": token});
    let qs = screen(0, batch);
    let checks: Vec<Value> =
        qs.iter().map(|(p, a, r)| json!({"permission": p, "access": access_text(*a), "resource": r})).collect();
    let many = conn.call("authz.check_many", json!({"checks": checks}), &auth);
    let results = result(&many, "authz.check_many")["results"].as_array().unwrap().clone();
    let mut allowed = 0;
    for (q, slot) in checks.into_iter().zip(&results) {
        let single = conn.call("authz.check", q, &auth);
        assert_eq!(result(&single, "authz.check"), slot, "check_many and authz.check disagree");
        allowed += usize::from(slot["decision"] == "allow");
    }
    (allowed, results.len())
}

// ---------------------------------------------------------------------------------------------------
// The load.

/// What one client saw during the measured window.
#[derive(Default)]
struct Tally {
    latencies: Vec<u64>,
    answers: u64,
    reply_bytes: u64,
}

struct Measured {
    answers_per_s: f64,
    daemon_us_per_answer: f64,
}

fn run_mode(socket: &Path, pid: i32, a: &Args, mode: Mode, lines: &[Vec<(Vec<u8>, usize)>]) -> Measured {
    let start = Instant::now();
    let measure_from = start + a.warmup;
    let end = measure_from + a.duration;
    let mut daemon_cpu = 0.0;
    let mut client_cpu = 0.0;
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .iter()
            .map(|mine| {
                s.spawn(move || {
                    let mut c = Conn::open(socket);
                    let mut tally = Tally { latencies: Vec::with_capacity(1 << 20), ..Tally::default() };
                    let mut i = 0;
                    loop {
                        let t = Instant::now();
                        if t >= end {
                            break;
                        }
                        let (line, answers) = &mine[i % mine.len()];
                        c.send_raw(line);
                        let took = t.elapsed();
                        i += 1;
                        if !c.line.starts_with("{\"id\":1,\"result\"") {
                            panic!("{}: {}", mode.name(), c.line.chars().take(400).collect::<String>());
                        }
                        if t >= measure_from {
                            tally.latencies.push(took.as_nanos() as u64);
                            tally.answers += *answers as u64;
                            tally.reply_bytes += c.line.len() as u64;
                        }
                    }
                    tally
                })
            })
            .collect();
        (daemon_cpu, client_cpu) = cpu_over_window(pid, measure_from, end);
        handles.into_iter().map(|h| h.join().expect("client")).collect()
    });
    let wall = a.duration.as_secs_f64();
    let mut all: Vec<u64> = tallies.iter().flat_map(|t| t.latencies.iter().copied()).collect();
    all.sort_unstable();
    let pct = |p: f64| common::quantile_ms(&all, p);
    let answers: u64 = tallies.iter().map(|t| t.answers).sum();
    let bytes: u64 = tallies.iter().map(|t| t.reply_bytes).sum();
    let requests = all.len();
    let m = Measured {
        answers_per_s: answers as f64 / wall,
        daemon_us_per_answer: daemon_cpu * 1e6 / answers.max(1) as f64,
    };
    println!(
        "{:<10} {:>10.0} answers/s {:>8.0} requests/s  p50 {:.3} ms  p99 {:.3} ms  daemon {:.2} cores = {:.3} us/answer  \
         generator {:.2} cores  reply {:.0} B/answer",
        mode.name(),
        m.answers_per_s,
        requests as f64 / wall,
        pct(0.50),
        pct(0.99),
        daemon_cpu / wall,
        m.daemon_us_per_answer,
        client_cpu / wall,
        bytes as f64 / answers.max(1) as f64,
    );
    m
}

/// The same screens asked of the compiled index in this process, on one thread: answers/s and ns
/// per answer. The index is built from the daemon's database, so it holds the policy the daemon
/// answers from.
fn run_raw(db: &Path, users: &[(usize, i64)], a: &Args) -> f64 {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open db");
    let index = Index::build(&gatewarden::store::policy::load(&conn).expect("load policy"));
    let mut questions: Vec<(SubjectKey, &'static str, Access, String)> = Vec::new();
    for &(_, id) in users {
        for line in 0..LINES {
            questions.extend(screen(line, a.batch).into_iter().map(|(p, ac, r)| (SubjectKey::User(id), p, ac, r)));
        }
    }
    let now = gatewarden::store::now_ms();
    let run_for = |d: Duration| {
        let (start, mut n, mut allowed) = (Instant::now(), 0u64, 0u64);
        while start.elapsed() < d {
            for (s, p, ac, r) in &questions {
                allowed += u64::from(black_box(index.check(*s, p, *ac, r, now)).is_allowed());
            }
            n += questions.len() as u64;
        }
        (n, allowed, start.elapsed())
    };
    run_for(a.warmup);
    let cpu0 = thread_cpu_seconds();
    let (n, allowed, took) = run_for(a.duration);
    let cpu = thread_cpu_seconds() - cpu0;
    let per_s = n as f64 / took.as_secs_f64();
    println!(
        "{:<10} {:>10.0} answers/s (one thread, in process)  {:.1} ns/answer wall, {:.1} ns/answer CPU  allowed {:.1}%",
        "raw",
        per_s,
        took.as_secs_f64() * 1e9 / n as f64,
        cpu * 1e9 / n as f64,
        100.0 * allowed as f64 / n as f64,
    );
    cpu * 1e6 / n as f64
}

/// CPU seconds this thread has used.
fn thread_cpu_seconds() -> f64 {
    let mut ts = nix::libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    let rc = unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn main() {
    let a = parse_args();
    let own =
        OwnDaemon::start(a.clients + 8, &format!("[license]\nseats = {}\nheartbeat_timeout = \"3600s\"\n", a.users));
    let auth = json!({"token": own.token});
    let mut conn = Conn::open(&own.socket);
    let pid = conn.peer_pid();
    println!(
        "gatewarden batch load: {} clients, batches of {}, {:?} per mode after {:?} of warm-up, daemon pid {pid}, \
         {} cores, load average {}",
        a.clients,
        a.batch,
        a.duration,
        a.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    setup(&mut conn, &auth, a.users);
    // Every user opens an HMI session and asks about itself with the session token.
    let sessions: Vec<(usize, String)> = (0..a.users)
        .map(|i| {
            let by_password = json!({"user": format!("user{i}"), "password": PASSWORD});
            let r = conn.call("session.open", json!({"type": "hmi", "host": format!("panel-{i}")}), &by_password);
            (i, result(&r, "session.open")["token"].as_str().unwrap().to_string())
        })
        .collect();
    let ids: Vec<(usize, i64)> = (0..a.users)
        .map(|i| {
            let r = conn.call("user.show", json!({"name": format!("user{i}")}), &auth);
            (i, result(&r, "user.show")["id"].as_i64().unwrap())
        })
        .collect();
    let (allowed, asked) = verify(&mut conn, &sessions[0].1, a.batch);
    println!("verified: check_many answers a screen as authz.check does ({allowed} of {asked} allowed)");
    println!("daemon RSS before the load: {} kB", proc_field(pid, "status", "VmRSS:"));

    let mut measured: Vec<(Mode, Measured)> = Vec::new();
    for &mode in &a.modes {
        let lines: Vec<Vec<(Vec<u8>, usize)>> = (0..a.clients)
            .map(|c| {
                let mine: Vec<(usize, String)> = sessions.iter().skip(c).step_by(a.clients).cloned().collect();
                requests(mode, &mine, a.batch)
            })
            .collect();
        measured.push((mode, run_mode(&own.socket, pid, &a, mode, &lines)));
    }
    let raw_us = run_raw(&own.db(), &ids, &a);
    println!("daemon RSS after the load: {} kB; load average {}", proc_field(pid, "status", "VmRSS:"), load_average());
    let single = measured.iter().find(|(m, _)| *m == Mode::Single).map(|(_, m)| m.answers_per_s);
    for (mode, m) in &measured {
        let vs_single = single.map_or(String::new(), |s| format!("{:.1}x single's answers/s, ", m.answers_per_s / s));
        println!(
            "{:<10} {vs_single}daemon CPU per answer {:.1}x the raw index check's",
            mode.name(),
            m.daemon_us_per_answer / raw_us
        );
    }
    drop(conn);
    drop(own);
}
