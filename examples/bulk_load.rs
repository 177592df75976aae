//! Bulk loading through the public interface (issue 15: 100k users and 10k roles loaded in < 60 s).
//!
//! Starts its own daemon (the `gatewarden` binary next to this example's directory, on a temp dir,
//! MQTT off, `daemon.max_request_bytes` at its 16 MiB ceiling so that one file is one request),
//! writes two CSV files and loads them with the CLI as a technician would (`gatewarden --json role
//! import` then `user import`, as root on the control socket), timing each end to end: the CLI reading
//! the file, the request, every row checked, one transaction, the index rebuilt once.
//!
//! - roles: `role00000` ... (`--roles`, default 10 000), each with a description.
//! - users: `user000000` ... (`--users`, default 100 000), a display name, one or two roles, an
//!   expiry on every tenth, and on every second one an argon2id PHC hash (one hash made here at the
//!   daemon's default cost and used for all: the daemon checks each string, it never hashes on import).
//!
//! Then one login with an imported hash, and the daemon's RSS and database size.
//!
//! Run: `cargo build --release --bins --examples && target/release/examples/bulk_load [--users 100000]
//!       [--roles 10000]`

mod common;

use common::{Conn, OwnDaemon, load_average, proc_field, result};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const USAGE: &str = "usage: bulk_load [--users N] [--roles N]";

fn main() {
    let (mut users, mut roles) = (100_000usize, 10_000usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| common::usage(USAGE, &a));
        match a.as_str() {
            "--users" => users = value(),
            "--roles" => roles = value(),
            _ => common::usage(USAGE, &a),
        }
    }
    let d = OwnDaemon::start_configured(16, "max_request_bytes = 16777216\n", "enabled = false\n", "");
    println!(
        "gatewarden bulk load: {roles} roles, {users} users, daemon pid {}, load average {}",
        d.pid(),
        load_average()
    );
    let cost = gatewarden::config::Argon2Config::default();
    let hash = gatewarden::accounts::password::hash("imported-password-1", &cost).expect("hash");
    let quoted = format!("\"{hash}\"");

    let mut text = String::from("name,description\n");
    for r in 0..roles {
        let _ = writeln!(text, "role{r:05},the operators of cell {r}");
    }
    let roles_file = d.dir.join("roles.csv");
    std::fs::write(&roles_file, &text).unwrap();

    let mut text = String::from("name,display_name,roles,password_hash,expires_at\n");
    for u in 0..users {
        let (a, b) = (u % roles.max(1), (u * 7 + 3) % roles.max(1));
        let role_list = if u % 3 == 0 { format!("role{a:05};role{b:05}") } else { format!("role{a:05}") };
        // A PHC string holds commas (m=...,t=...,p=...): quoted, as CSV wants.
        let pw = if u % 2 == 0 { quoted.as_str() } else { "" };
        let expires = if u % 10 == 0 { "2099-12-31" } else { "" };
        let _ = writeln!(text, "user{u:06},Operator {u},{role_list},{pw},{expires}");
    }
    let users_file = d.dir.join("users.csv");
    std::fs::write(&users_file, &text).unwrap();

    let rss_before = proc_field(d.pid(), "status", "VmRSS:");
    let cpu_before = common::cpu_seconds(&d.pid().to_string());
    let t_roles = cli_import(&d, "role", &roles_file);
    let t_users = cli_import(&d, "user", &users_file);
    let cpu = common::cpu_seconds(&d.pid().to_string()) - cpu_before;
    println!(
        "total            {:.2} s for {} roles + {} users (goal < 60 s); daemon CPU {cpu:.2} s",
        t_roles + t_users,
        roles,
        users
    );

    let mut c = Conn::open(&d.socket);
    let started = Instant::now();
    let r = c.call("login", json!({"user": "user000000", "password": "imported-password-1"}), &Value::Null);
    result(&r, "login with an imported hash");
    println!("login with an imported hash: {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
    let r = c.call("user.show", json!({"name": format!("user{:06}", users - 1)}), &json!({"token": d.token}));
    println!("last user: {}", result(&r, "user.show")["roles"]);
    println!(
        "daemon RSS {rss_before} kB -> {} kB (peak {} kB); database {} bytes, WAL {} bytes",
        proc_field(d.pid(), "status", "VmRSS:"),
        proc_field(d.pid(), "status", "VmHWM:"),
        common::file_size(&d.db()),
        common::file_size(&d.dir.join("state/gatewarden.db-wal")),
    );
    println!("load average at the end {}", load_average());
}

/// `gatewarden --json KIND import FILE` as root on the control socket; its wall time in seconds.
fn cli_import(d: &OwnDaemon, kind: &str, file: &Path) -> f64 {
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe.parent().and_then(Path::parent).map(|p| p.join("gatewarden")).expect("target dir");
    let bytes = common::file_size(file);
    let started = Instant::now();
    let out = Command::new(bin)
        .arg("--socket")
        .arg(&d.socket)
        .args(["--json", kind, "import"])
        .arg(file)
        .env("GATEWARDEN_TOKEN", &d.token)
        .output()
        .expect("run the CLI");
    let secs = started.elapsed().as_secs_f64();
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{kind} import failed: {reply}");
    let v: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);
    println!("{kind:<5} import     {secs:>6.2} s  {bytes:>9} bytes  {}", v);
    secs
}
