//! Crash durability: mutations driven through the socket while the daemon is killed with SIGKILL at
//! random points, 20 times over. After every restart each acknowledged change must be there, with the
//! audit row and outbox event of its transaction, and `PRAGMA integrity_check` must say ok.
//! (Power loss is the case `synchronous = FULL` is for; kill -9 checks that no acknowledged change
//! lives only in memory or in an unsynced buffer of ours, and that recovery on start works.)

mod common;

use common::Daemon;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One acknowledged change and how to find it again.
#[derive(Debug, Clone)]
enum Acked {
    User(String),
    Role(String),
    Grant(String),
    Setting(String, Value),
    Session(i64),
    Lock,
    Object(String),
}

/// A small deterministic generator, seeded per run and printed, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn writer(d: &Daemon, round: usize, acked: Arc<Mutex<Vec<Acked>>>) {
    let Ok(mut conn) = d.connect() else { return };
    for i in 0.. {
        let (req, change) = match i % 7 {
            0 => {
                let name = format!("u{round}x{i}");
                (json!({"method": "user.create", "params": {"name": name}}), Acked::User(name))
            }
            1 => {
                let name = format!("r{round}x{i}");
                (json!({"method": "role.create", "params": {"name": name}}), Acked::Role(name))
            }
            2 => {
                let perm = format!("app.p{round}x{i}");
                let p = json!({"role": "base", "permission": perm, "write": true, "resources": ["line1/*"]});
                (json!({"method": "role.grant", "params": p}), Acked::Grant(perm))
            }
            3 => {
                let key = format!("k.r{round}x{i}");
                let value = json!({"round": round, "i": i});
                let p = json!({"key": key, "value": value});
                (json!({"method": "settings.set", "params": p}), Acked::Setting(key, value))
            }
            4 => {
                let host = format!("panel-{round}-{i}");
                (json!({"method": "session.open", "params": {"type": "hmi", "host": host}}), Acked::Session(0))
            }
            5 => {
                let method = if (i / 7) % 2 == 0 { "supervisor.lock" } else { "supervisor.unlock" };
                (json!({"method": method, "params": {}}), Acked::Lock)
            }
            _ => {
                let name = format!("o{round}x{i}");
                let p = json!({"kind": "recipe", "resource": "line1/mixer", "name": name});
                (json!({"method": "object.create", "params": p}), Acked::Object(name))
            }
        };
        let mut line = req.to_string().into_bytes();
        line.push(b'\n');
        if std::io::Write::write_all(conn.reader.get_mut(), &line).is_err() {
            return;
        }
        let Some(reply) = conn.read_reply() else { return };
        let Some(result) = reply.get("result") else { panic!("{req} refused: {reply}") };
        let change = match change {
            Acked::Session(_) => Acked::Session(result["session_id"].as_i64().unwrap()),
            other => other,
        };
        acked.lock().unwrap().push(change);
    }
}

fn integrity(d: &Daemon) -> String {
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

fn verify(d: &Daemon, acked: &[Acked]) {
    let count = |sql: &str, arg: &dyn rusqlite::ToSql| -> i64 {
        let conn = rusqlite::Connection::open(d.db_path()).unwrap();
        conn.query_row(sql, [arg], |r| r.get(0)).unwrap()
    };
    for a in acked {
        let ok = match a {
            Acked::User(n) => {
                count("SELECT count(*) FROM users WHERE name = ?1", n) == 1
                    && count("SELECT count(*) FROM audit WHERE action = 'user.create' AND target = ?1", n) == 1
                    && count(
                        r#"SELECT count(*) FROM outbox WHERE topic = 'events/user.created' AND payload LIKE '%"user":"' || ?1 || '"%'"#,
                        n,
                    ) == 1
            }
            Acked::Role(n) => count("SELECT count(*) FROM roles WHERE name = ?1", n) == 1,
            Acked::Grant(p) => count("SELECT count(*) FROM grants WHERE permission = ?1", p) == 1,
            Acked::Setting(k, v) => {
                let conn = rusqlite::Connection::open(d.db_path()).unwrap();
                let stored: Option<String> =
                    conn.query_row("SELECT value FROM settings WHERE key = ?1", [k], |r| r.get(0)).ok();
                stored.and_then(|s| serde_json::from_str::<Value>(&s).ok()).as_ref() == Some(v)
                    && count(
                        r#"SELECT count(*) FROM outbox WHERE topic = 'events/settings.changed' AND payload LIKE '%"key":"' || ?1 || '"%'"#,
                        k,
                    ) == 1
            }
            Acked::Session(id) => {
                count("SELECT count(*) FROM sessions WHERE id = ?1 AND state = 'open'", id) == 1
                    && count(
                        "SELECT count(*) FROM outbox WHERE topic = 'events/session.opened' AND payload LIKE '%\"session_id\":' || ?1 || ',%'",
                        id,
                    ) == 1
            }
            Acked::Lock => true,
            Acked::Object(n) => {
                count("SELECT count(*) FROM objects WHERE name = ?1", n) == 1
                    && count(
                        "SELECT count(*) FROM audit a JOIN objects o ON a.target = CAST(o.id AS TEXT)
                         WHERE a.action = 'object.create' AND o.name = ?1",
                        n,
                    ) == 1
                    && count(
                        r#"SELECT count(*) FROM outbox WHERE topic = 'events/object.created' AND payload LIKE '%"name":"' || ?1 || '"%'"#,
                        n,
                    ) == 1
            }
        };
        assert!(ok, "acknowledged change lost after SIGKILL: {a:?}");
    }
    // Every acknowledged lock change has its audit row (later unacknowledged ones may follow).
    let locks = acked.iter().filter(|a| matches!(a, Acked::Lock)).count() as i64;
    let audited = d.sql_count(
        "SELECT count(*) FROM audit WHERE action IN ('supervisor.lock', 'supervisor.unlock') AND actor = 'user:admin'",
    );
    assert!(audited >= locks, "{audited} lock audit rows for {locks} acknowledged lock changes");
}

#[test]
fn acknowledged_changes_survive_twenty_sigkills() {
    let d = &mut Daemon::start_with(
        "[license]\nseats = 10000\nheartbeat_timeout = \"1h\"\n[supervisor]\nlock_survives_restart = true",
    );
    d.ok(&["role", "add", "base"]);
    // An object `early` reads only historically (its role taken away after the object was made):
    // after every SIGKILL the restarted daemon must still say so (the snapshot replayed from the
    // history the transactions left).
    d.ok(&["resource", "add", "line1/mixer", "--kind", "device"]);
    d.ok(&["role", "add", "viewers"]);
    d.ok(&["role", "grant", "viewers", "recipe", "--read", "--resource", "line1/*"]);
    d.ok(&["user", "add", "early", "--role", "viewers"]);
    let early = d.ok(&["object", "create", "recipe", "line1/mixer", "before the revoke"])["id"].clone();
    d.ok(&["user", "update", "early", "--remove-role", "viewers"]);
    let historical = |d: &Daemon| {
        let a = d.ok(&["call", "authz.check", &json!({"subject": "early", "object": early}).to_string()]);
        assert_eq!((&a["decision"], &a["reason"]), (&json!("allow"), &json!("historical")), "{a}");
    };
    historical(d);
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    println!("seed {seed}");
    let mut rng = Lcg(seed);
    let acked = Arc::new(Mutex::new(Vec::new()));
    for round in 0..20 {
        let delay = Duration::from_millis(20 + rng.next() % 250);
        std::thread::scope(|s| {
            let a = acked.clone();
            let dd = &*d;
            s.spawn(move || writer(dd, round, a));
            std::thread::sleep(delay);
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid()), nix::sys::signal::SIGKILL).unwrap();
        });
        d.kill();
        assert_eq!(integrity(d), "ok", "round {round} (seed {seed})");
        d.restart();
        verify(d, &acked.lock().unwrap());
        historical(d);
    }
    let n = acked.lock().unwrap().len();
    assert!(n > 100, "only {n} changes were acknowledged in 20 rounds: the test exercised too little");
    println!("{n} acknowledged changes survived 20 SIGKILLs");
}
