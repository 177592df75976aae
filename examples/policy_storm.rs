//! Load generator for policy changes at plant scale (issue 15): what one change costs as the policy
//! grows, and what HMIs feel while changes keep coming.
//!
//! For each size (default 1k, 10k and 100k users, with a tenth as many roles), it writes the policy
//! straight into a fresh database (users `user{i}` without passwords, each holding role `role{i/10}`;
//! every role with three grants: a read glob, an exact write, an exact deny; 100 resource groups of 10),
//! starts its own daemon on it (the `gatewarden` binary next to this example's directory, MQTT off),
//! and then over the control socket:
//! 1. quiet: heartbeats and checks from a few HMI sessions, no changes (the baseline of step 3);
//! 2. change cost: `--changes` `user.create` (no password, one role) and as many `role.grant` (one exact
//!    resource on an existing role), one after the other, nothing else running;
//! 3. storm: the same HMI sessions as in step 1 while `--storm-rate` changes/s (user.create and
//!    role.grant alternating) run for `--storm`.
//!
//! Each line reports count, rate and p50 / p99 / max latency as the client sees it, socket round trip
//! included. The daemon commits with `synchronous = FULL`: run with `TMPDIR=/dev/shm` to leave the
//! fsync out (the daemon's directory is made under TMPDIR).
//!
//! HMI sessions: `--hmis` users with passwords log in and open a session each; each then sends
//! `session.heartbeat` and `authz.check` (its own rights, a random resource of its area) alternately,
//! `--hmi-rate` requests/s, with its session token.
//!
//! Run: `cargo build --release --bins --examples && TMPDIR=/dev/shm target/release/examples/policy_storm
//!       [--sizes 1000,10000,100000] [--changes 100] [--storm 10s] [--storm-rate 50] [--hmis 4]
//!       [--hmi-rate 200]`

mod common;
use common::Rng;

use common::{Conn, Latencies, OwnDaemon, duration, load_average, result};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const USAGE: &str = "policy_storm [--sizes 1000,10000,100000] [--changes N] [--storm 10s] [--storm-rate N] \
                     [--hmis N] [--hmi-rate N]";

struct Args {
    sizes: Vec<usize>,
    changes: usize,
    storm: Duration,
    storm_rate: u32,
    hmis: usize,
    hmi_rate: u32,
}

fn parse_args() -> Args {
    let mut a = Args {
        sizes: vec![1_000, 10_000, 100_000],
        changes: 100,
        storm: Duration::from_secs(10),
        storm_rate: 50,
        hmis: 4,
        hmi_rate: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| common::usage(USAGE, &format!("{flag} needs a value")));
        let number = |v: String| v.parse().unwrap_or_else(|_| common::usage(USAGE, &format!("not a number: {v}")));
        match flag.as_str() {
            "--sizes" => a.sizes = value().split(',').map(|s| number(s.to_owned())).collect(),
            "--changes" => a.changes = number(value()),
            "--storm" => a.storm = duration(&value()),
            "--storm-rate" => a.storm_rate = number(value()) as u32,
            "--hmis" => a.hmis = number(value()).max(1),
            "--hmi-rate" => a.hmi_rate = number(value()).max(1) as u32,
            "-h" | "--help" => common::usage(USAGE, ""),
            other => common::usage(USAGE, &format!("unknown argument {other:?}")),
        }
    }
    a
}

const HMI_PASSWORD: &str = "hmi-load-password-1";
/// Where the generated rows start: the daemon's own rows (the admin, built-in roles) stay below.
const FIRST_ID: i64 = 1000;

/// Writes the policy into a fresh database at `db` (migrated by the daemon's own code).
fn write_policy(db: &std::path::Path, users: usize) {
    let roles = (users / 10).max(1);
    let started = Instant::now();
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut store = gatewarden::store::Store::open(db).expect("open the database");
    let tx = store.conn.transaction().unwrap();
    {
        let now = 1_700_000_000_000i64;
        let mut role = tx.prepare("INSERT INTO roles (id, name, created_at) VALUES (?1, ?2, ?3)").unwrap();
        let mut grant = tx
            .prepare(
                "INSERT INTO grants (role_id, permission, can_read, can_write, selector, effect, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .unwrap();
        for r in 0..roles {
            let id = FIRST_ID + r as i64;
            role.execute(rusqlite::params![id, format!("role{r}"), now]).unwrap();
            grant.execute(rusqlite::params![id, "tag.read", 1, 0, format!("area{r}/**"), "allow", now]).unwrap();
            grant.execute(rusqlite::params![id, "tag.write", 0, 1, format!("area{r}/valve1"), "allow", now]).unwrap();
            grant.execute(rusqlite::params![id, "tag.write", 0, 1, format!("area{r}/safety"), "deny", now]).unwrap();
        }
        let mut user =
            tx.prepare("INSERT INTO users (id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)").unwrap();
        let mut link = tx.prepare("INSERT INTO user_roles (user_id, role_id) VALUES (?1, ?2)").unwrap();
        for u in 0..users {
            let id = FIRST_ID + u as i64;
            user.execute(rusqlite::params![id, format!("user{u}"), now]).unwrap();
            link.execute(rusqlite::params![id, FIRST_ID + (u / 10 % roles) as i64]).unwrap();
        }
        let mut resource =
            tx.prepare("INSERT INTO resources (id, kind, created_at, updated_at) VALUES (?1, 'tag', ?2, ?2)").unwrap();
        let mut group = tx.prepare("INSERT INTO resource_groups (id, name, created_at) VALUES (?1, ?2, ?3)").unwrap();
        let mut member = tx.prepare("INSERT INTO group_members (group_id, resource_id) VALUES (?1, ?2)").unwrap();
        for g in 0..100i64 {
            group.execute(rusqlite::params![FIRST_ID + g, format!("presses{g}"), now]).unwrap();
            for m in 0..10 {
                let id = format!("area{g}/press{m}");
                resource.execute(rusqlite::params![id, now]).unwrap();
                member.execute(rusqlite::params![FIRST_ID + g, id]).unwrap();
            }
        }
    }
    tx.commit().unwrap();
    println!(
        "policy written: {users} users, {roles} roles ({} grants), 100 groups of 10, in {:.1} s",
        roles * 3,
        started.elapsed().as_secs_f64()
    );
}

/// One HMI: its session token and the area its role covers.
struct Hmi {
    token: String,
    area: usize,
}

fn open_hmis(daemon: &OwnDaemon, n: usize) -> Vec<Hmi> {
    let admin = json!({"token": daemon.token});
    let mut c = Conn::open(&daemon.socket);
    (0..n)
        .map(|i| {
            let name = format!("hmi{i}");
            let r = c.call(
                "user.create",
                json!({"name": name, "password": HMI_PASSWORD, "roles": [format!("role{i}")]}),
                &admin,
            );
            result(&r, "user.create");
            let r = c.call("login", json!({"user": name, "password": HMI_PASSWORD}), &Value::Null);
            let login = result(&r, "login")["token"].as_str().unwrap().to_owned();
            let r =
                c.call("session.open", json!({"type": "hmi", "host": format!("panel{i}")}), &json!({"token": login}));
            Hmi { token: result(&r, "session.open")["token"].as_str().unwrap().to_owned(), area: i }
        })
        .collect()
}

/// Runs the HMIs until `stop`; returns (heartbeat, check) latencies.
fn run_hmis(
    daemon: &OwnDaemon,
    hmis: &[Hmi],
    rate: u32,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<(Latencies, Latencies)>> {
    hmis.iter()
        .enumerate()
        .map(|(i, hmi)| {
            let socket = daemon.socket.clone();
            let (token, area) = (hmi.token.clone(), hmi.area);
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = Conn::open(&socket);
                let auth = json!({"token": token});
                let (mut beats, mut checks) = (Latencies::default(), Latencies::default());
                let mut rng = Rng(0x5eed ^ i as u64);
                let period = Duration::from_secs(1) / rate;
                let mut next = Instant::now();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if n.is_multiple_of(2) {
                        let r = beats.timed(|| c.call("session.heartbeat", json!({}), &auth));
                        result(&r, "session.heartbeat");
                    } else {
                        let resource = match rng.below(3) {
                            0 => format!("area{area}/valve1"),
                            1 => format!("area{area}/safety"),
                            _ => format!("area{area}/line{}/tag{}", rng.below(10), rng.below(100)),
                        };
                        let access = if rng.below(2) == 0 { "read" } else { "write" };
                        let p = json!({"permission": if access == "read" { "tag.read" } else { "tag.write" },
                                       "access": access, "resource": resource});
                        let r = checks.timed(|| c.call("authz.check", p, &auth));
                        result(&r, "authz.check");
                    }
                    n += 1;
                    next += period;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
                (beats, checks)
            })
        })
        .collect()
}

/// One policy change: a user without password holding one role, or a grant on one exact resource.
fn change(c: &mut Conn, admin: &Value, n: usize, roles: usize, creates: &mut Latencies, grants: &mut Latencies) {
    let role = format!("role{}", (n * 7919) % roles);
    if n.is_multiple_of(2) {
        let p = json!({"name": format!("new{n}"), "roles": [role]});
        let r = creates.timed(|| c.call("user.create", p, admin));
        result(&r, "user.create");
    } else {
        let p = json!({"role": role, "permission": "tag.write", "write": true,
                       "resources": [format!("area{}/extra{n}", (n * 7919) % roles)]});
        let r = grants.timed(|| c.call("role.grant", p, admin));
        result(&r, "role.grant");
    }
}

fn hmi_phase(daemon: &OwnDaemon, hmis: &[Hmi], a: &Args, storm: Option<(usize, &mut usize)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads = run_hmis(daemon, hmis, a.hmi_rate, stop.clone());
    let (mut creates, mut grants) = (Latencies::default(), Latencies::default());
    match storm {
        Some((roles, next)) => {
            let admin = json!({"token": daemon.token});
            let mut c = Conn::open(&daemon.socket);
            let period = Duration::from_secs(1) / a.storm_rate.max(1);
            let mut at = Instant::now();
            while started.elapsed() < a.storm {
                change(&mut c, &admin, *next, roles, &mut creates, &mut grants);
                *next += 1;
                at += period;
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
            }
        }
        None => std::thread::sleep(a.storm),
    }
    stop.store(true, Ordering::Relaxed);
    let wall = started.elapsed();
    let (mut beats, mut checks) = (Latencies::default(), Latencies::default());
    for t in threads {
        let (b, c) = t.join().expect("hmi thread");
        beats.0.extend(b.0);
        checks.0.extend(c.0);
    }
    beats.report("  heartbeat", wall);
    checks.report("  check", wall);
    if !creates.0.is_empty() {
        creates.report("  user.create", wall);
        grants.report("  role.grant", wall);
    }
}

fn main() {
    let a = parse_args();
    println!(
        "gatewarden policy storm: sizes {:?}, {} changes of each kind, storm {:?} at {}/s, {} HMIs at {}/s each, load average {}",
        a.sizes,
        a.changes,
        a.storm,
        a.storm_rate,
        a.hmis,
        a.hmi_rate,
        load_average()
    );
    for &users in &a.sizes {
        let roles = (users / 10).max(a.hmis);
        println!("\n== {users} users, {roles} roles");
        let dir = std::env::temp_dir().join(format!("gatewarden-load-{}", std::process::id()));
        write_policy(&dir.join("state/gatewarden.db"), users);
        let started = Instant::now();
        let daemon = OwnDaemon::start(
            a.hmis + 8,
            &format!("[license]\nseats = {}\nheartbeat_timeout = \"3600s\"\n", a.hmis + 4),
        );
        println!(
            "daemon up (pid {}) in {:.1} s, RSS {} MiB",
            daemon.pid(),
            started.elapsed().as_secs_f64(),
            common::proc_field(daemon.pid(), "status", "VmRSS:") / 1024
        );
        let hmis = open_hmis(&daemon, a.hmis);

        println!("quiet ({:?}, no changes):", a.storm);
        hmi_phase(&daemon, &hmis, &a, None);

        let admin = json!({"token": daemon.token});
        let mut c = Conn::open(&daemon.socket);
        let (mut creates, mut grants) = (Latencies::default(), Latencies::default());
        let t = Instant::now();
        let mut next = 0;
        while next < a.changes * 2 {
            change(&mut c, &admin, next, roles, &mut creates, &mut grants);
            next += 1;
        }
        println!("change cost ({} of each, one at a time):", a.changes);
        creates.report("  user.create", t.elapsed());
        grants.report("  role.grant", t.elapsed());

        println!("storm ({:?} at {}/s):", a.storm, a.storm_rate);
        hmi_phase(&daemon, &hmis, &a, Some((roles, &mut next)));
        println!("daemon RSS {} MiB", common::proc_field(daemon.pid(), "status", "VmRSS:") / 1024);
    }
}
