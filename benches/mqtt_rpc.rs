//! Load run: `authz.check` over MQTT request/reply through a local mosquitto, 8 HMIs at once, each
//! sending its next request as soon as the previous reply arrives (MQTT v5, QoS 0, token auth).
//!
//!     cargo bench --bench mqtt_rpc            # prints checks/s and latency percentiles
//!
//! Starts its own mosquitto on a free port and the release gatewarden on a temp dir; everything stays
//! on 127.0.0.1 and stops after `SECONDS`. Not criterion: what is measured is a whole system under
//! concurrent load, not one function.

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{Client, Event, MqttOptions};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const SECONDS: u64 = 10;
const BIN: &str = env!("CARGO_BIN_EXE_gatewarden");

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cli(socket: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Value {
    use std::io::Write;
    let mut c = Command::new(BIN)
        .arg("--socket")
        .arg(socket)
        .arg("--json")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = c.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs us with no such flag: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n")).unwrap();
    let mosquitto =
        if std::path::Path::new("/usr/sbin/mosquitto").exists() { "/usr/sbin/mosquitto" } else { "mosquitto" };
    let _broker = Kill(Command::new(mosquitto).arg("-c").arg(&conf).stderr(Stdio::null()).spawn().unwrap());
    wait_until("mosquitto", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());

    let state = dir.path().join("state");
    let config = dir.path().join("gatewarden.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nstate_dir = {:?}\nlog_level = \"warn\"\n[site]\nid = \"bench\"\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nrpc_rate = 100000\nrpc_burst = 100000\n",
            state.display().to_string()
        ),
    )
    .unwrap();
    let _daemon = Kill(
        Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env_remove("NOTIFY_SOCKET")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let socket = state.join("gatewarden.sock");
    wait_until("the daemon", || cli(&socket, &["status"], None)["mqtt"]["state"] == "connected");
    cli(&socket, &["role", "add", "operator"], None);
    cli(&socket, &["role", "grant", "operator", "tag.write", "--write", "--resource", "line1/*"], None);
    cli(&socket, &["user", "add", "op", "--role", "operator", "--password-stdin"], Some("bench-password-1\n"));
    let token = cli(&socket, &["login", "op", "--password-stdin"], Some("bench-password-1\n"))["token"]
        .as_str()
        .expect("a token")
        .to_string();

    let start = std::sync::Barrier::new(CLIENTS);
    let results: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (token, start) = (token.clone(), &start);
                s.spawn(move || hmi(port, i, &token, start))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<Duration> = results.into_iter().flatten().collect();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "mqtt_rpc: {CLIENTS} clients, {SECONDS} s: {} authz.check replies, {:.0}/s; latency p50 {:?}, p99 {:?}, max {:?}",
        all.len(),
        all.len() as f64 / SECONDS as f64,
        pct(0.50),
        pct(0.99),
        all.last().unwrap()
    );
}

/// One HMI: request, wait for its reply, repeat until the time is up. Returns each round trip.
fn hmi(port: u16, i: usize, token: &str, start: &std::sync::Barrier) -> Vec<Duration> {
    let mut o = MqttOptions::new(format!("bench-{i}"), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut conn) = Client::new(o, 100);
    let reply = format!("hmi/bench-{i}/reply");
    // Each HMI asks on its own request topic (the last level is its client id).
    let request_topic = format!("gatewarden/bench/rpc/request/bench-{i}");
    client.subscribe(&reply, QoS::AtMostOnce).unwrap();
    let mut events = conn.iter();
    for ev in events.by_ref() {
        if let Ok(Event::Incoming(Packet::SubAck(_))) = ev {
            break;
        }
    }
    start.wait();
    let mut out = Vec::new();
    let end = Instant::now() + Duration::from_secs(SECONDS);
    let mut n = 0u64;
    while Instant::now() < end {
        n += 1;
        let req = json!({"id": n, "method": "authz.check", "auth": {"token": token},
                         "params": {"permission": "tag.write", "resource": format!("line1/dev{}", n % 50), "access": "write"}});
        let props = PublishProperties { response_topic: Some(reply.clone()), ..Default::default() };
        let sent = Instant::now();
        client.publish_with_properties(&request_topic, QoS::AtMostOnce, false, req.to_string(), props).unwrap();
        for ev in events.by_ref() {
            if let Ok(Event::Incoming(Packet::Publish(p))) = ev {
                let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                if v["id"] == n {
                    assert_eq!(v["result"]["decision"], "allow", "{v}");
                    out.push(sent.elapsed());
                    break;
                }
            }
        }
    }
    out
}
