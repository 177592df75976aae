//! Plant mode figures (issue 19): `session.open` latency on a gateway in plant mode (each new seat
//! also claims a plant seat key on NATS JetStream, create-if-absent) against the same open on a
//! gateway without `[plant]`, in the same run; and the NATS traffic of renewing the seats a gateway
//! holds, per renew period, measured on the server's own counters (`/varz`).
//!
//! Starts a real nats-server of its own (the tests' harness, tests/common/nats.rs: JetStream on, a
//! free loopback port), two daemons of its own (the release binary, MQTT off): `local` (no
//! `[plant]`) and `plant` (`[plant]` on that server). Then, one client at a time on the control
//! socket, N opens on each (admin token, a host per session, so each takes a seat of its own).
//! Then, with the plant gateway holding N seats, the server's message and byte counters over P
//! renew periods, divided by P: the renew batch (one compare-and-swap per seat and its ack), the
//! watch deliveries to this gateway (every gateway of a plant watches the seats bucket), and the
//! presence key.
//!
//! Run: `cargo build --release --bins --examples && target/release/examples/plant_load
//!       [--n 1000] [--periods 3] [--renew 2s]`

mod common;
#[path = "../tests/common/nats.rs"]
mod nats;

use common::{Conn, Latencies, OwnDaemon, result};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const USAGE: &str = "plant_load [--n 1000] [--periods 3] [--renew 2s]";

fn opens(d: &OwnDaemon, n: usize, what: &str) -> Latencies {
    let mut c = Conn::open(&d.socket);
    let auth = json!({"token": d.token});
    let mut lat = Latencies::default();
    let t = Instant::now();
    for i in 0..n {
        let r = lat.timed(|| c.call("session.open", json!({"type": "hmi", "host": format!("{what}-{i}")}), &auth));
        result(&r, "session.open");
    }
    lat.report(what, t.elapsed());
    lat
}

fn counters(n: &nats::Nats) -> [u64; 4] {
    let v = n.varz().expect("nats /varz");
    ["in_msgs", "out_msgs", "in_bytes", "out_bytes"].map(|k| v[k].as_u64().unwrap_or(0))
}

fn main() {
    let (mut n, mut periods, mut renew) = (1000usize, 3u32, Duration::from_secs(2));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().unwrap_or_else(|| common::usage(USAGE, a));
        match a.as_str() {
            "--n" => n = v.parse().unwrap_or_else(|_| common::usage(USAGE, a)),
            "--periods" => periods = v.parse().unwrap_or_else(|_| common::usage(USAGE, a)),
            "--renew" => renew = common::duration(v),
            _ => common::usage(USAGE, a),
        }
    }
    let server = nats::Nats::start();
    let seats = n + 10;
    let lic = format!("[license]\nseats = {seats}\nheartbeat_timeout = \"1h\"\n");
    let local = OwnDaemon::start(64, &lic);
    let ttl = renew * 3;
    let plant = OwnDaemon::start(
        64,
        &format!(
            "{lic}[site]\nid = \"g1\"\n[plant]\nnats_url = \"{}\"\nname = \"load\"\nseats = {seats}\n\
             seat_ttl = \"{}ms\"\nrenew_interval = \"{}ms\"\n",
            server.url(),
            ttl.as_millis(),
            renew.as_millis()
        ),
    );
    let mut c = Conn::open(&plant.socket);
    let deadline = Instant::now() + Duration::from_secs(30);
    while result(&c.call("status", Value::Null, &json!({"token": plant.token})), "status")["plant"]["state"]
        != "connected"
    {
        assert!(Instant::now() < deadline, "the plant gateway did not connect");
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("session.open, one client, {n} opens each (a seat each), nats-server on loopback:");
    opens(&local, n, "local");
    opens(&plant, n, "plant");

    // Settle: the opens' own traffic is over, then whole renew periods are counted.
    std::thread::sleep(renew);
    let before = counters(&server);
    let t = Instant::now();
    std::thread::sleep(renew * periods);
    let after = counters(&server);
    let per = t.elapsed().as_secs_f64() / renew.as_secs_f64();
    let d: Vec<f64> = (0..4).map(|i| (after[i] - before[i]) as f64 / per).collect();
    let st = result(&c.call("status", Value::Null, &json!({"token": plant.token})), "status").clone();
    println!(
        "renew traffic with {n} seats held (plant in_use {}), per renew period ({} ms), one gateway watching:",
        st["plant"]["in_use"],
        renew.as_millis()
    );
    println!("  to the server:   {:>8.0} msgs  {:>10.0} bytes", d[0], d[2]);
    println!("  from the server: {:>8.0} msgs  {:>10.0} bytes", d[1], d[3]);
    println!(
        "  per 1000 seats:  {:>8.0} msgs  {:>10.0} bytes (both ways)",
        (d[0] + d[1]) * 1000.0 / n as f64,
        (d[2] + d[3]) * 1000.0 / n as f64
    );
}
