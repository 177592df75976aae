//! Throughput load generator for `authz.check` over the control socket (issue 4: at least 50k checks/s
//! with 8 concurrent clients, p99 under 1 ms).
//!
//! Starts its own daemon (the `gatewarden` binary next to this example's directory, on a temp dir, MQTT
//! off), and sets up a plant through the socket as the admin: an inventory of resources imported from
//! CSV (`line{L}/press{N}`, `line{L}/valve{N}`, `line{L}/tank{N}`, 100 per line), the groups `presses` and
//! `safety`, four roles (`viewer`: read `tag.read` on `*`; `operator_north` / `operator_south`:
//! `tag.write` on five line globs each and a deny on `@safety`; `maintenance`: `recipe.load` on
//! `@presses` and `tag.write` on `**/press*`), and U users holding them. Every user logs in.
//!
//! Then, for each mode, C threads, each on its own connection, ask `authz.check` back to back for the
//! given duration (after a short warm-up) from a pre-generated list of requests: random users of the
//! thread's share, random resources (a few unknown to the inventory), and a mix of permissions and
//! accesses, so allows, deny-grant refusals and no-grant refusals all occur. The modes:
//! - `session` (what an HMI does): each user opens a client session, and the panel asks about itself
//!   with its session token. The token is checked against the in-memory session table.
//! - `token`: the user asks about itself with its login token (checked against the in-memory table of
//!   login tokens and API keys, `accounts::Credentials`, since issue 15; before, SQLite per request).
//! - `admin`: a supervising service holds the admin's login token and asks about `subject: userN`
//!   (the token from memory; the subject's name looked up in SQLite per request).
//!
//! Reports per mode: checks/s, p50/p99/p99.9/max latency as the client sees it, the share allowed, the CPU
//! seconds the daemon and this generator used (they share the machine's cores), and the daemon's RSS.
//!
//! Run: `cargo build --release --bins --examples && target/release/examples/authz_load
//!       [--clients 8] [--duration 20s] [--warmup 2s] [--users 100] [--modes session,token,admin]`

mod common;
use common::Rng;

use common::{Conn, OwnDaemon, cpu_over_window, load_average, proc_field, result};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const LINES: usize = 10;
const PASSWORD: &str = common::ADMIN_PASSWORD;
/// Requests pre-generated per client thread, cycled.
const REQUESTS_PER_CLIENT: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Session,
    Token,
    Admin,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        match s {
            "session" => Some(Mode::Session),
            "token" => Some(Mode::Token),
            "admin" => Some(Mode::Admin),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Mode::Session => "session token, asks about itself (an HMI)",
            Mode::Token => "login token, asks about itself",
            Mode::Admin => "admin token, asks about subject userN",
        }
    }
}

struct Args {
    clients: usize,
    duration: Duration,
    warmup: Duration,
    users: usize,
    modes: Vec<Mode>,
}

fn parse_args() -> Args {
    let mut a = Args {
        clients: 8,
        duration: Duration::from_secs(20),
        warmup: Duration::from_secs(2),
        users: 100,
        modes: vec![Mode::Session, Mode::Token, Mode::Admin],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--clients" => a.clients = value().parse().unwrap_or_else(|_| usage("--clients N")),
            "--duration" => a.duration = secs(&value()),
            "--warmup" => a.warmup = secs(&value()),
            "--users" => a.users = value().parse().unwrap_or_else(|_| usage("--users N")),
            "--modes" => {
                a.modes = value()
                    .split(',')
                    .map(|m| Mode::parse(m.trim()).unwrap_or_else(|| usage(&format!("unknown mode {m:?}"))))
                    .collect()
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if a.clients == 0 || a.users < a.clients {
        usage("need at least one client and at least as many users as clients");
    }
    a
}

fn secs(s: &str) -> Duration {
    common::duration(s)
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "{msg}\nusage: authz_load [--clients 8] [--duration 20s] [--warmup 2s] [--users 100] \
         [--modes session,token,admin]"
    );
    std::process::exit(2)
}

// ---------------------------------------------------------------------------------------------------
// The plant.

/// Every resource of the inventory: 100 per line.
fn resources() -> Vec<String> {
    let mut out = Vec::new();
    for line in 0..LINES {
        out.extend((0..20).map(|n| format!("line{line}/press{n}")));
        out.extend((0..40).map(|n| format!("line{line}/valve{n}")));
        out.extend((0..40).map(|n| format!("line{line}/tank{n}")));
    }
    out
}

/// The roles user `i` holds.
fn roles_of(i: usize) -> Vec<&'static str> {
    let mut roles = vec!["viewer", if i.is_multiple_of(2) { "operator_north" } else { "operator_south" }];
    if i.is_multiple_of(10) {
        roles.push("maintenance");
    }
    roles
}

fn setup(conn: &mut Conn, auth: &Value, users: usize) {
    let started = Instant::now();
    let call = |conn: &mut Conn, method: &str, params: Value| {
        let r = conn.call(method, params, auth);
        result(&r, method).clone()
    };
    let all = resources();
    let csv = std::iter::once("device".to_string()).chain(all.iter().cloned()).collect::<Vec<_>>().join("\n");
    call(conn, "resource.import", json!({"csv": csv}));
    let presses: Vec<&String> = all.iter().filter(|r| r.contains("/press")).collect();
    let safety: Vec<String> =
        (0..LINES).flat_map(|l| (0..4).map(move |n| format!("line{l}/valve{n}"))).collect::<Vec<_>>();
    call(conn, "group.create", json!({"name": "presses"}));
    call(conn, "group.add", json!({"group": "presses", "resources": presses}));
    call(conn, "group.create", json!({"name": "safety"}));
    call(conn, "group.add", json!({"group": "safety", "resources": safety}));

    for role in ["viewer", "operator_north", "operator_south", "maintenance"] {
        call(conn, "role.create", json!({"name": role}));
    }
    let grant = |conn: &mut Conn, role: &str, permission: &str, access: &str, resources: Vec<String>, deny: bool| {
        let (read, write) = (access.contains('r'), access.contains('w'));
        call(
            conn,
            "role.grant",
            json!({"role": role, "permission": permission, "read": read, "write": write,
                   "resources": resources, "deny": deny}),
        );
    };
    grant(conn, "viewer", "tag.read", "r", vec!["*".into()], false);
    for (role, lines) in [("operator_north", 0..5), ("operator_south", 5..10)] {
        grant(conn, role, "tag.write", "rw", lines.map(|l| format!("line{l}/*")).collect(), false);
        grant(conn, role, "tag.write", "w", vec!["@safety".into()], true);
    }
    grant(conn, "maintenance", "recipe.load", "w", vec!["@presses".into()], false);
    grant(conn, "maintenance", "tag.write", "rw", vec!["**/press*".into()], false);

    for i in 0..users {
        call(conn, "user.create", json!({"name": format!("user{i}"), "password": PASSWORD, "roles": roles_of(i)}));
    }
    println!(
        "setup: {} resources, groups presses ({}) and safety ({}), 4 roles, {users} users in {:.1} s",
        all.len(),
        presses.len(),
        LINES * 4,
        started.elapsed().as_secs_f64()
    );
}

/// Spot checks, so the load runs against the policy it claims.
fn verify_policy(conn: &mut Conn, auth: &Value) {
    let ask = |conn: &mut Conn, user: &str, permission: &str, access: &str, resource: &str| {
        let p = json!({"subject": user, "permission": permission, "access": access, "resource": resource});
        let r = conn.call("authz.check", p, auth);
        let r = result(&r, "authz.check");
        format!("{}/{}", r["decision"].as_str().unwrap_or("?"), r["reason"].as_str().unwrap_or("grant"))
    };
    let cases = [
        ("user2", "tag.write", "write", "line3/tank7", "allow/allowed_by"),
        ("user2", "tag.write", "write", "line3/valve2", "deny/denied_by"),
        ("user2", "tag.write", "read", "line3/valve2", "allow/allowed_by"),
        ("user3", "tag.write", "write", "line3/tank7", "deny/no_grant"),
        ("user3", "tag.read", "read", "line3/tank7", "allow/allowed_by"),
        ("user10", "recipe.load", "write", "line7/press4", "allow/allowed_by"),
        ("user10", "tag.write", "write", "line7/press4", "allow/allowed_by"),
        ("user11", "recipe.load", "write", "line7/press4", "deny/no_grant"),
    ];
    for (user, permission, access, resource, want) in cases {
        let got = ask(conn, user, permission, access, resource);
        assert_eq!(got, want, "{user} {permission} {access} {resource}");
    }
}

// ---------------------------------------------------------------------------------------------------
// The load.

/// The request lines of one client: users `client`, `client + clients`, ... of `users`.
fn requests(mode: Mode, client: usize, clients: usize, creds: &[String], admin: &str, all: &[String]) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x10ad ^ client as u64);
    let mine: Vec<usize> = (client..creds.len()).step_by(clients).collect();
    (0..REQUESTS_PER_CLIENT)
        .map(|_| {
            let u = mine[rng.below(mine.len())];
            // 1 in 50 asks about a resource the inventory does not hold (an HMI tag not imported yet).
            let resource = if rng.below(50) == 0 {
                format!("line{}/unknown{}", rng.below(LINES), rng.below(100))
            } else {
                all[rng.below(all.len())].clone()
            };
            let (permission, access) = match rng.below(10) {
                0..=3 => ("tag.read", "read"),
                4..=5 => ("tag.write", "read"),
                6..=8 => ("tag.write", "write"),
                _ => ("recipe.load", "write"),
            };
            let mut params = json!({"permission": permission, "access": access, "resource": resource});
            let token = match mode {
                Mode::Session | Mode::Token => creds[u].as_str(),
                Mode::Admin => {
                    params["subject"] = json!(format!("user{u}"));
                    admin
                }
            };
            let mut line = serde_json::to_vec(&json!({"id": 1, "method": "authz.check", "params": params,
                                                      "auth": {"token": token}}))
            .unwrap();
            line.push(b'\n');
            line
        })
        .collect()
}

/// What one client saw during the measured window.
#[derive(Default)]
struct Tally {
    /// Latencies in nanoseconds.
    latencies: Vec<u64>,
    allowed: u64,
}

fn run_mode(socket: &Path, pid: i32, a: &Args, mode: Mode, lines: &[Vec<Vec<u8>>]) {
    let rss_before = proc_field(pid, "status", "VmRSS:");
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
                    let mut tally = Tally { latencies: Vec::with_capacity(1 << 20), allowed: 0 };
                    let mut i = 0;
                    loop {
                        let t = Instant::now();
                        if t >= end {
                            break;
                        }
                        c.send_raw(&mine[i % mine.len()]);
                        let took = t.elapsed();
                        i += 1;
                        if !c.line.contains("\"result\"") {
                            panic!("authz.check failed: {}", c.line.trim());
                        }
                        if t >= measure_from {
                            tally.latencies.push(took.as_nanos() as u64);
                            tally.allowed += u64::from(c.line.contains("\"decision\":\"allow\""));
                        }
                    }
                    tally
                })
            })
            .collect();
        // CPU used by both sides over the measured window only.
        (daemon_cpu, client_cpu) = cpu_over_window(pid, measure_from, end);
        handles.into_iter().map(|h| h.join().expect("client")).collect()
    });
    let wall = a.duration.as_secs_f64();
    let mut all: Vec<u64> = tallies.iter().flat_map(|t| t.latencies.iter().copied()).collect();
    let allowed: u64 = tallies.iter().map(|t| t.allowed).sum();
    all.sort_unstable();
    let pct = |p: f64| common::quantile_ms(&all, p);
    let n = all.len();
    println!("mode {:<8} ({})", format!("{mode:?}").to_lowercase(), mode.describe());
    println!(
        "  {n} checks in {wall:.1} s = {:.0}/s   p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms   allowed {:.1}%",
        n as f64 / wall,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        100.0 * allowed as f64 / n.max(1) as f64,
    );
    println!(
        "  CPU over the window: daemon {:.2} cores ({:.1} us/check), load generator {:.2} cores; \
         daemon RSS {} kB -> {} kB; load average {}",
        daemon_cpu / wall,
        daemon_cpu * 1e6 / n.max(1) as f64,
        client_cpu / wall,
        rss_before,
        proc_field(pid, "status", "VmRSS:"),
        load_average(),
    );
}

fn main() {
    let a = parse_args();
    // Seats for every user's session; a heartbeat timeout longer than the whole run, so sessions opened
    // for the session mode stay live while other modes run.
    let own =
        OwnDaemon::start(a.clients + 8, &format!("[license]\nseats = {}\nheartbeat_timeout = \"3600s\"\n", a.users));
    let (socket, admin_token) = (own.socket.clone(), own.token.clone());
    let auth = json!({"token": admin_token});
    let mut conn = Conn::open(&socket);
    let pid = conn.peer_pid();
    println!(
        "gatewarden authz.check load: {} clients, {:?} per mode after {:?} of warm-up, daemon pid {pid}, load average {}",
        a.clients,
        a.duration,
        a.warmup,
        load_average()
    );
    println!("daemon RSS after start and the admin's login: {} kB", proc_field(pid, "status", "VmRSS:"));
    setup(&mut conn, &auth, a.users);
    verify_policy(&mut conn, &auth);

    let started = Instant::now();
    let tokens: Vec<String> = (0..a.users)
        .map(|i| {
            let r = conn.call("login", json!({"user": format!("user{i}"), "password": PASSWORD}), &Value::Null);
            result(&r, "login")["token"].as_str().unwrap().to_string()
        })
        .collect();
    println!(
        "{} logins in {:.1} s; daemon RSS now {} kB (peak {} kB)",
        a.users,
        started.elapsed().as_secs_f64(),
        proc_field(pid, "status", "VmRSS:"),
        proc_field(pid, "status", "VmHWM:")
    );
    let all = resources();
    for &mode in &a.modes {
        let creds: Vec<String> = match mode {
            Mode::Session => tokens
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let p = json!({"type": "hmi", "host": format!("panel-{i}")});
                    let r = conn.call("session.open", p, &json!({"token": t}));
                    result(&r, "session.open")["token"].as_str().unwrap().to_string()
                })
                .collect(),
            Mode::Token | Mode::Admin => tokens.clone(),
        };
        let lines: Vec<Vec<Vec<u8>>> =
            (0..a.clients).map(|c| requests(mode, c, a.clients, &creds, &admin_token, &all)).collect();
        run_mode(&socket, pid, &a, mode, &lines);
    }
    drop(conn);
    drop(own);
}
