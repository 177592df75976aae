//! Load run against the MQTT bridge's intake bounds, through a real mosquitto configured as shipped
//! (packaging/mosquitto.conf.example + packaging/mosquitto-acl.example, per-user passwords) and a
//! release daemon of its own on a temp dir (default argon2 cost).
//!
//! (a) Flood: `--requests` (1000) `status` requests of `--size` bytes (~900 KB) with password auth, each
//!     from a fresh client id on a new MQTT connection (the ACL lets a client publish only on
//!     `rpc/request/<its id>`), as fast as 4 threads can send them. Meanwhile an honest HMI on its own
//!     client id sends a `status` with a session token every 100 ms. Reports the daemon's peak RSS
//!     (VmHWM) and the honest HMI's latency p50/p99/max while the flood is sent and drained, and
//!     outside it. Goal: peak RSS < 64 MiB.
//! (b) With `--minutes N`: N minutes of a hostile mix (bad logins with long or garbage names and with
//!     fresh well-formed names, refused privileged calls, oversize requests, spoofed reply topics),
//!     then the growth of the state directory in bytes.
//!
//! Everything stays on 127.0.0.1, is bounded in count and time, stops by itself and kills every
//! process it started (on drop, also when a phase panics).
//!
//! Run: `cargo run --release --example mqtt_flood [-- --requests 1000 --size 900000 --minutes 2]`

mod common;

use common::{Latencies, OwnDaemon, ms, proc_field};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{Client, Event, MqttOptions};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USAGE: &str = "mqtt_flood [--requests 1000] [--size 900000] [--minutes N]";
const SITE: &str = "flood";
const PASSWORD: &str = "flood-test-password-1";
/// Broker users; each one's password is its name followed by this.
const BROKER_PW: &str = "-broker-pw";

/// mosquitto, killed on drop.
struct Broker {
    child: Child,
    port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port()
}

/// Starts mosquitto with the shipped config and ACL: this run's port and paths, no TLS listener, no
/// console (WebSockets) listener.
fn start_broker(dir: &Path, users: &[&str]) -> Broker {
    let passwd = dir.join("passwd");
    for (i, user) in users.iter().enumerate() {
        let mut cmd = Command::new("mosquitto_passwd");
        if i == 0 {
            cmd.arg("-c");
        }
        let st = cmd.arg("-b").arg(&passwd).arg(user).arg(format!("{user}{BROKER_PW}")).status();
        assert!(st.is_ok_and(|s| s.success()), "mosquitto_passwd (apt install mosquitto-clients)");
    }
    let acl = dir.join("gatewarden.acl");
    let acl_text = include_str!("../packaging/mosquitto-acl.example");
    std::fs::write(&acl, acl_text.replace("gatewarden/default/", &format!("gatewarden/{SITE}/"))).unwrap();
    let port = free_port();
    let mut conf = String::new();
    for line in include_str!("../packaging/mosquitto.conf.example").lines() {
        let l = line.trim();
        if ["listener 8883", "listener 8884", "protocol websockets"].contains(&l)
            || l.starts_with("certfile ")
            || l.starts_with("keyfile ")
            || l.starts_with("http_dir ")
        {
            continue;
        }
        let line = match l {
            "listener 1883 127.0.0.1" => format!("listener {port} 127.0.0.1"),
            "password_file /etc/mosquitto/passwd" => format!("password_file {}", passwd.display()),
            "acl_file /etc/mosquitto/gatewarden.acl" => format!("acl_file {}", acl.display()),
            _ => line.to_string(),
        };
        conf.push_str(&line);
        conf.push('\n');
    }
    conf.push_str("user root\npersistence false\nlog_dest none\n");
    std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
    let bin = if Path::new("/usr/sbin/mosquitto").exists() { "/usr/sbin/mosquitto" } else { "mosquitto" };
    let child = Command::new(bin)
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (apt install mosquitto)");
    let broker = Broker { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    broker
}

/// A bare MQTT v5 connection: cheap enough for a thousand fresh client ids.
struct Raw(std::net::TcpStream);

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let b = (n % 128) as u8;
        n /= 128;
        out.push(if n > 0 { b | 0x80 } else { b });
        if n == 0 {
            return;
        }
    }
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

impl Raw {
    fn connect(port: u16, id: &str, user: &str) -> Option<Raw> {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let mut body = Vec::new();
        string(b"MQTT", &mut body);
        body.extend_from_slice(&[5, 0b1100_0010, 0, 60, 0]);
        string(id.as_bytes(), &mut body);
        string(user.as_bytes(), &mut body);
        string(format!("{user}{BROKER_PW}").as_bytes(), &mut body);
        let mut raw = Raw(s);
        raw.send(0x10, &body);
        let mut head = [0u8; 2];
        raw.0.read_exact(&mut head).ok()?;
        let mut rest = vec![0u8; head[1] as usize];
        raw.0.read_exact(&mut rest).ok()?;
        (head[0] == 0x20 && rest.get(1) == Some(&0)).then_some(raw)
    }

    fn send(&mut self, first: u8, body: &[u8]) {
        let mut p = vec![first];
        varint(body.len(), &mut p);
        p.extend_from_slice(body);
        let _ = self.0.write_all(&p);
    }

    fn publish(&mut self, topic: &str, payload: &[u8], response_topic: Option<&str>) {
        let mut body = Vec::with_capacity(payload.len() + 256);
        string(topic.as_bytes(), &mut body);
        let mut props = Vec::new();
        if let Some(t) = response_topic {
            props.push(0x08);
            string(t.as_bytes(), &mut props);
        }
        varint(props.len(), &mut body);
        body.extend_from_slice(&props);
        body.extend_from_slice(payload);
        self.send(0x30, &body);
    }

    fn disconnect(mut self) {
        self.send(0xE0, &[]);
    }
}

/// One honest round trip: when it was sent, how long it took.
type Sample = (Instant, Duration);

/// The honest HMI: a `status` with its session token every 100 ms on its own client id, until `stop`.
fn honest(port: u16, token: String, stop: Arc<AtomicBool>, lat: Arc<Mutex<Vec<Sample>>>, lost: Arc<AtomicU64>) {
    let mut o = MqttOptions::new("panel", "127.0.0.1", port);
    o.set_credentials("panel", format!("panel{BROKER_PW}"));
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut conn) = Client::new(o, 100);
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send(serde_json::from_slice(&p.payload).unwrap_or(Value::Null));
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = tx.send(json!("suback"));
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    client.subscribe("hmi/panel/#", QoS::AtLeastOnce).expect("subscribe");
    let _ = rx.recv_timeout(Duration::from_secs(10));
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let req = json!({"id": n, "method": "status", "auth": {"token": token}});
        let props = PublishProperties { response_topic: Some("hmi/panel/r".into()), ..Default::default() };
        let sent = Instant::now();
        let topic = format!("gatewarden/{SITE}/rpc/request/panel");
        if client.publish_with_properties(topic, QoS::AtMostOnce, false, req.to_string(), props).is_err() {
            break;
        }
        let deadline = sent + Duration::from_secs(10);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(v) if v["id"] == n => {
                    if v["result"].is_object() {
                        lat.lock().unwrap().push((sent, sent.elapsed()));
                    } else {
                        println!("honest request {n}: {v}");
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                Ok(_) => {}
                Err(_) => {
                    lost.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100).saturating_sub(sent.elapsed()));
    }
    let _ = client.disconnect();
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let (mut requests, mut size, mut minutes) = (1000usize, 900_000usize, 0u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| common::usage(USAGE, &format!("{flag} needs a value")));
        let number = |v: String| v.parse::<u64>().unwrap_or_else(|_| common::usage(USAGE, &format!("{flag} N")));
        match flag.as_str() {
            "--requests" => requests = number(value()) as usize,
            "--size" => size = number(value()) as usize,
            "--minutes" => minutes = number(value()),
            "--bench" => {}
            other => common::usage(USAGE, &format!("unknown argument {other:?}")),
        }
    }
    // Bounded whatever the arguments: this is a load generator, not a weapon.
    let requests = requests.min(20_000);
    let size = size.clamp(1000, 2 << 20);
    let minutes = minutes.min(60);

    let tmp = tempfile::tempdir().expect("tempdir");
    let broker = start_broker(tmp.path(), &["gatewarden", "flood", "panel", "evil"]);
    let pw_file = tmp.path().join("gw-broker-pw");
    std::fs::write(&pw_file, format!("gatewarden{BROKER_PW}\n")).unwrap();
    let mqtt = format!(
        "url = \"mqtt://127.0.0.1:{}\"\nusername = \"gatewarden\"\npassword_file = {:?}\n",
        broker.port,
        pw_file.display().to_string()
    );
    let own = OwnDaemon::start_with_mqtt(16, &mqtt, &format!("[site]\nid = \"{SITE}\"\n"));
    let pid = own.pid();
    let admin = json!({"token": own.token});
    let mut conn = common::Conn::open(&own.socket);
    let deadline = Instant::now() + Duration::from_secs(20);
    while conn.call("status", Value::Null, &admin)["result"]["mqtt"]["state"] != "connected" {
        assert!(Instant::now() < deadline, "the daemon did not connect to mosquitto");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = conn.call("user.create", json!({"name": "op", "password": PASSWORD}), &admin);
    common::result(&r, "user.create");
    let r = conn.call(
        "session.open",
        json!({"type": "hmi", "host": "panel"}),
        &json!({"user": "op", "password": PASSWORD}),
    );
    let token = common::result(&r, "session.open")["token"].as_str().expect("a session token").to_string();
    let rss_idle = proc_field(pid, "status", "VmRSS:");
    println!(
        "mqtt_flood: {} CPUs, load {}; daemon pid {pid}, idle RSS {rss_idle} KiB",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        common::load_average()
    );

    // (a) the flood, with the honest HMI alongside.
    let stop = Arc::new(AtomicBool::new(false));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let lost = Arc::new(AtomicU64::new(0));
    let hmi = {
        let (stop, lat, lost, token) = (stop.clone(), lat.clone(), lost.clone(), token.clone());
        let port = broker.port;
        std::thread::spawn(move || honest(port, token, stop, lat, lost))
    };
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let sent = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (sent, port) = (&sent, broker.port);
            s.spawn(move || {
                let pad = "w".repeat(size.saturating_sub(120));
                for i in (t..requests).step_by(4) {
                    let id = format!("flood-{i}");
                    let Some(mut raw) = Raw::connect(port, &id, "flood") else { continue };
                    let body =
                        json!({"id": i, "method": "status", "auth": {"user": format!("ghost{i}"), "password": pad}});
                    let topic = format!("gatewarden/{SITE}/rpc/request/{id}");
                    raw.publish(&topic, body.to_string().as_bytes(), Some(&format!("hmi/{id}/r")));
                    raw.disconnect();
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let flood_wall = started.elapsed();
    // Let the daemon finish what it admitted (and mosquitto deliver what it queued), the honest HMI
    // still measuring; samples sent until then count as "during the flood".
    std::thread::sleep(Duration::from_secs(3));
    let drained = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let _ = hmi.join();
    let peak = proc_field(pid, "status", "VmHWM:");
    let samples = lat.lock().unwrap().clone();
    let split = |during: bool| {
        Latencies(samples.iter().filter(|(at, _)| (*at >= started && *at < drained) == during).map(|s| s.1).collect())
    };
    let (mut during, mut outside) = (split(true), split(false));
    println!(
        "(a) {} requests of {size} bytes with password auth from fresh client ids in {:.1} s ({:.0} MB/s)",
        sent.load(Ordering::Relaxed),
        flood_wall.as_secs_f64(),
        sent.load(Ordering::Relaxed) as f64 * size as f64 / 1e6 / flood_wall.as_secs_f64()
    );
    println!(
        "    daemon RSS idle {rss_idle} KiB, peak (VmHWM) {peak} KiB = {:.1} MiB (goal < 64 MiB), now {} KiB",
        peak as f64 / 1024.0,
        proc_field(pid, "status", "VmRSS:")
    );
    println!("    honest status with a session token every 100 ms: {} lost or refused", lost.load(Ordering::Relaxed));
    for (what, l) in [("during the flood", &mut during), ("before and after", &mut outside)] {
        println!(
            "      {what:<17} {:>4} answered: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            l.0.len(),
            ms(l.pct(0.50)),
            ms(l.pct(0.99)),
            ms(l.pct(1.0))
        );
    }

    // (b) the hostile mix.
    if minutes > 0 {
        hostile(broker.port, &own, minutes, &token);
    }
    drop(own);
    drop(broker);
}

fn hostile(port: u16, own: &OwnDaemon, minutes: u64, token: &str) {
    let state = own.dir.join("state");
    let before = dir_bytes(&state);
    let end = Instant::now() + Duration::from_secs(minutes * 60);
    let mut evil = Raw::connect(port, "evil", "evil").expect("evil connects");
    let mut n = 0u64;
    let mut next_report = Instant::now() + Duration::from_secs(60);
    println!("(b) hostile mix for {minutes} min; state dir {before} bytes");
    while Instant::now() < end {
        n += 1;
        let id = format!("h{n}");
        // A bad login with a long garbage name, from a fresh client id.
        if let Some(mut raw) = Raw::connect(port, &id, "flood") {
            let name: String = (0..2000).map(|i| char::from(b'!' + ((n as usize * 7 + i) % 90) as u8)).collect();
            let body = json!({"id": n, "method": "login", "params": {"user": name, "password": "nope-nope-1"}});
            raw.publish(
                &format!("gatewarden/{SITE}/rpc/request/{id}"),
                body.to_string().as_bytes(),
                Some(&format!("hmi/{id}/r")),
            );
            // A spray: a fresh, well-formed name each round (costs a hash and a counter like any
            // failed login).
            let body =
                json!({"id": n, "method": "login", "params": {"user": format!("spray{n}"), "password": "nope-nope-1"}});
            raw.publish(
                &format!("gatewarden/{SITE}/rpc/request/{id}"),
                body.to_string().as_bytes(),
                Some(&format!("hmi/{id}/r")),
            );
            raw.disconnect();
        }
        let topic = format!("gatewarden/{SITE}/rpc/request/evil");
        // Refused privileged calls: anonymous, and with a token that lacks the right.
        let r = json!({"id": n, "method": "user.create", "params": {"name": format!("x{n}")}});
        evil.publish(&topic, r.to_string().as_bytes(), Some("hmi/evil/r"));
        let r = json!({"id": n, "method": "supervisor.lock", "params": {}, "auth": {"token": token}});
        evil.publish(&topic, r.to_string().as_bytes(), Some("hmi/evil/r"));
        // A spoofed reply topic, both ways.
        let r = json!({"id": n, "method": "status", "reply_to": "hmi/panel/r"});
        evil.publish(&topic, r.to_string().as_bytes(), None);
        evil.publish(&topic, br#"{"id":1,"method":"status"}"#, Some("hmi/panel/r"));
        // An oversize request, every tenth round.
        if n.is_multiple_of(10) {
            let big = format!(r#"{{"id":{n},"method":"status","params":{{"pad":"{}"}}}}"#, "o".repeat(1_060_000));
            evil.publish(&topic, big.as_bytes(), Some("hmi/evil/r"));
        }
        std::thread::sleep(Duration::from_millis(100));
        if Instant::now() >= next_report {
            println!(
                "    {n} rounds, state dir {} bytes (+{})",
                dir_bytes(&state),
                dir_bytes(&state) as i64 - before as i64
            );
            next_report += Duration::from_secs(60);
        }
        // The broker drops a connection that misbehaves; reconnect rather than stop.
        if n.is_multiple_of(50) {
            evil = Raw::connect(port, "evil", "evil").unwrap_or(evil);
        }
    }
    evil.disconnect();
    std::thread::sleep(Duration::from_secs(2));
    let after = dir_bytes(&state);
    println!(
        "    {n} rounds ({} requests) in {minutes} min: state dir {before} -> {after} bytes ({:+} bytes; \
         database {} bytes, WAL {} bytes)",
        n * 6 + n / 10,
        after as i64 - before as i64,
        common::file_size(&own.db()),
        common::file_size(&state.join("gatewarden.db-wal"))
    );
}
