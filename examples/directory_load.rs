//! Plant directory figures (issue 16): login through the directory against a local login, a login
//! from the offline cache, and a sync of 5000 directory people, against a real OpenLDAP slapd of its
//! own (the tests' harness, tests/common/ldap.rs: slapd on a free loopback port, memberOf overlay).
//!
//! Starts slapd with P extra people (`p0`..), all in `night-shift` (inside `operators`, so every login
//! walks one nested level), and its own daemon (the release binary, default argon2 cost, MQTT off)
//! with `[directory]` pointing at it. Then, one client at a time on the control socket:
//! - `local`: N logins of a local account (argon2id verify);
//! - `directory first`: the first login of N people (search, nested groups, bind as the person, the
//!   account created with its mapped role, the offline verifier hashed and stored);
//! - `directory again`: N logins of people already created (the same, with the account updated).
//!
//! Then C clients log the remaining people in (so P directory people exist), and:
//! - `sync`: `directory.sync` over all P people, unchanged, then after 10% left `night-shift`;
//! - `offline`: slapd killed, N logins answered from the cache (the connection refused at once).
//!
//! Run: `cargo build --release --bins --examples && target/release/examples/directory_load
//!       [--people 5000] [--n 200] [--clients 2]`

mod common;
#[path = "../tests/common/ldap.rs"]
mod ldap;

use common::{Conn, Latencies, OwnDaemon, result};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const USAGE: &str = "directory_load [--people 5000] [--n 200] [--clients 2]";

fn login(c: &mut Conn, user: &str, pw: &str) -> Value {
    c.call("login", json!({"user": user, "password": pw}), &Value::Null)
}

fn main() {
    let mut people = 5000usize;
    let mut n = 200usize;
    let mut clients = 2usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().map(|s| s.parse::<usize>().unwrap_or_else(|_| common::usage(USAGE, a)));
        match (a.as_str(), v) {
            ("--people", Some(v)) => people = v,
            ("--n", Some(v)) => n = v,
            ("--clients", Some(v)) => clients = v.max(1),
            _ => common::usage(USAGE, a),
        }
    }
    let n = n.min(people / 2).max(1);
    let uids: Vec<String> = (0..people).map(|i| format!("p{i}")).collect();
    let t = Instant::now();
    let mut s = ldap::Slapd::start_with(false, &uids);
    let members: Vec<String> = uids.iter().map(|u| ldap::person_dn(u)).collect();
    let mut ldif = format!("dn: {}\nchangetype: modify\nadd: member\n", ldap::NIGHT_SHIFT);
    for m in &members {
        ldif += &format!("member: {m}\n");
    }
    s.ldap("ldapmodify", &ldif);
    println!("slapd with {people} people in night-shift (nested in operators): {:.1} s", t.elapsed().as_secs_f64());

    // The config's [directory] table, with a sync that never runs by itself during the measurement.
    let dir_toml = s.config("sync_interval = \"24h\"\ncache_ttl = \"24h\"\n");
    let d = OwnDaemon::start(64, &dir_toml);
    let admin = json!({"token": d.token});
    let mut c = Conn::open(&d.socket);
    result(&c.call("role.create", json!({"name": "operator"}), &admin), "role.create");
    let local_pw = "local-password-12";
    result(&c.call("user.create", json!({"name": "localop", "password": local_pw}), &admin), "user.create");

    let mut lat = Latencies::default();
    let wall = Instant::now();
    for _ in 0..n {
        result(&lat.timed(|| login(&mut c, "localop", local_pw)), "local login");
    }
    lat.report("local", wall.elapsed());

    let mut lat = Latencies::default();
    let wall = Instant::now();
    for u in &uids[..n] {
        result(&lat.timed(|| login(&mut c, u, ldap::PERSON_PW)), "directory first login");
    }
    lat.report("dir first", wall.elapsed());

    let mut lat = Latencies::default();
    let wall = Instant::now();
    for u in &uids[..n] {
        result(&lat.timed(|| login(&mut c, u, ldap::PERSON_PW)), "directory login");
    }
    lat.report("dir again", wall.elapsed());

    // The rest of the people log in once, C clients at a time.
    let wall = Instant::now();
    let rest = &uids[n..];
    std::thread::scope(|scope| {
        for k in 0..clients {
            let socket = d.socket.clone();
            scope.spawn(move || {
                let mut c = Conn::open(&socket);
                for u in rest.iter().skip(k).step_by(clients) {
                    result(&login(&mut c, u, ldap::PERSON_PW), "first login");
                }
            });
        }
    });
    println!(
        "first logins of the other {} people, {clients} clients: {:.1} s = {:.0}/s",
        rest.len(),
        wall.elapsed().as_secs_f64(),
        rest.len() as f64 / wall.elapsed().as_secs_f64()
    );

    // The first connection sat idle past daemon.client_timeout meanwhile.
    let mut c = Conn::open(&d.socket);
    let sync = |c: &mut Conn, what: &str| {
        let t = Instant::now();
        let r = c.call("directory.sync", json!({}), &admin);
        let r = result(&r, "directory.sync");
        println!(
            "sync {what}: {} people, {} updated, {} disabled in {:.2} s (daemon: {} ms)",
            r["people"],
            r["updated"],
            r["disabled"],
            t.elapsed().as_secs_f64(),
            r["took_ms"]
        );
    };
    sync(&mut c, "unchanged");
    let leaving = &members[..people / 10];
    let mut ldif = format!("dn: {}\nchangetype: modify\ndelete: member\n", ldap::NIGHT_SHIFT);
    for m in leaving {
        ldif += &format!("member: {m}\n");
    }
    s.ldap("ldapmodify", &ldif);
    sync(&mut c, "after 10% left night-shift");

    s.kill();
    let mut lat = Latencies::default();
    let wall = Instant::now();
    for u in &uids[people / 10..people / 10 + n] {
        result(&lat.timed(|| login(&mut c, u, ldap::PERSON_PW)), "offline login");
    }
    lat.report("offline", wall.elapsed());
    std::thread::sleep(Duration::from_millis(10));
}
