//! Load run: `authz.check` over MQTT v5 request/reply through a local mosquitto, at QoS 0 and QoS 1,
//! beside its baseline in the same run: a rumqttc echo pair through the same broker (one client
//! answers on the reply topic whatever the others send it), at the same QoS, with the same payloads.
//!
//!     cargo bench --bench mqtt_rpc            # one table: replies/s, latency percentiles, ratios
//!
//! Each case runs `BENCH_SECONDS` (default 5) with 1 HMI (latency: every request waits for its reply)
//! and with 8 HMIs at once (throughput), each HMI sending its next request as soon as the previous
//! reply arrives (token auth). The HMIs set TCP_NODELAY, as paho-mqtt does. The echo responder runs
//! twice: with TCP_NODELAY (as the bridge does) and with rumqttc's default (Nagle on), which shows
//! what Nagle costs a QoS 1 responder on this machine.
//!
//! Starts its own mosquitto on a free port, twice: as installed (Nagle on for its clients) and with
//! `set_tcp_nodelay true` (its packaging/mosquitto.conf.example setting), each with the release gatewarden on a temp
//! dir; everything stays on 127.0.0.1 and stops at the end. Not criterion: what is measured is a whole
//! system under concurrent load, not one function.

use rumqttc::NetworkOptions;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, PublishProperties};
use rumqttc::v5::{Client, Event, MqttOptions};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

fn options(id: &str, port: u16, nodelay: bool) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    let mut n = NetworkOptions::new();
    n.set_tcp_nodelay(nodelay);
    o.set_network_options(n);
    o
}

fn qos(n: u8) -> QoS {
    if n == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce }
}

/// Who answers: the daemon's bridge, or the echo responder.
#[derive(Clone, Copy, PartialEq)]
enum Peer {
    Gatewarden,
    Echo { nodelay: bool },
}

struct Case {
    peer: Peer,
    qos: u8,
    clients: usize,
}

struct Outcome {
    replies: usize,
    per_s: f64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs us with no such flag: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    println!("mqtt_rpc: authz.check over MQTT v5 through mosquitto, {seconds} s a case; HMIs with TCP_NODELAY");
    println!(
        "| broker | HMIs | QoS | answered by | replies/s | p50 | p90 | p99 | max | gatewarden / echo (nodelay): replies/s, p50 |"
    );
    println!("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |");
    // mosquitto as installed (Nagle on its client sockets), then with `set_tcp_nodelay true`.
    for broker_nodelay in [false, true] {
        run_all(broker_nodelay, seconds);
    }
}

fn run_all(broker_nodelay: bool, seconds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nuser root\nset_tcp_nodelay {broker_nodelay}\n"),
    )
    .unwrap();
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

    // Cases interleaved (peer innermost) so that a change of machine load hits a case and its
    // baseline alike.
    let mut cases = Vec::new();
    for clients in [1, 8] {
        for q in [0, 1] {
            for peer in [Peer::Gatewarden, Peer::Echo { nodelay: true }, Peer::Echo { nodelay: false }] {
                cases.push(Case { peer, qos: q, clients });
            }
        }
    }
    let broker = if broker_nodelay { "set_tcp_nodelay true" } else { "default" };
    let mut ours: Option<Outcome> = None;
    for (n, case) in cases.iter().enumerate() {
        let o = run_case(case, port, &token, seconds, n);
        let who = match case.peer {
            Peer::Gatewarden => "gatewarden",
            Peer::Echo { nodelay: true } => "rumqttc echo, nodelay",
            Peer::Echo { nodelay: false } => "rumqttc echo, Nagle on",
        };
        let ratio = match (&ours, case.peer) {
            (Some(g), Peer::Echo { nodelay: true }) => {
                format!("{:.2}, {:.2}", g.per_s / o.per_s, g.p50.as_secs_f64() / o.p50.as_secs_f64())
            }
            _ => String::new(),
        };
        println!(
            "| {broker} | {} | {} | {who} | {:.0} | {} | {} | {} | {} | {ratio} |",
            case.clients,
            case.qos,
            o.per_s,
            ms(o.p50),
            ms(o.p90),
            ms(o.p99),
            ms(o.max)
        );
        assert!(o.replies > 0, "no replies in a case");
        if case.peer == Peer::Gatewarden {
            ours = Some(o);
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn run_case(case: &Case, port: u16, token: &str, seconds: u64, n: usize) -> Outcome {
    let echo_ready = std::sync::Barrier::new(2);
    let start = std::sync::Barrier::new(case.clients);
    let results: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let echo = match case.peer {
            Peer::Echo { nodelay } => {
                let (client, conn) = Client::new(options(&format!("echo-{n}"), port, nodelay), 1024);
                let (c, ready) = (client.clone(), &echo_ready);
                let thread = s.spawn(move || echo(c, conn, n, case.qos, ready));
                echo_ready.wait();
                Some((client, thread))
            }
            Peer::Gatewarden => None,
        };
        let handles: Vec<_> = (0..case.clients)
            .map(|i| {
                let start = &start;
                s.spawn(move || hmi(port, case, n, i, token, seconds, start))
            })
            .collect();
        let out = handles.into_iter().map(|h| h.join().unwrap()).collect();
        if let Some((client, thread)) = echo {
            client.disconnect().unwrap();
            thread.join().unwrap();
        }
        out
    });
    let mut all: Vec<Duration> = results.into_iter().flatten().collect();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Outcome {
        replies: all.len(),
        per_s: all.len() as f64 / seconds as f64,
        p50: pct(0.50),
        p90: pct(0.90),
        p99: pct(0.99),
        max: *all.last().unwrap(),
    }
}

/// The baseline responder: every request on `echo/<case>/request/+` goes back, payload and
/// correlation data as they came, to its response topic, at the case's QoS. Ends when `client`
/// (a clone of which the caller keeps) disconnects.
fn echo(client: Client, mut conn: rumqttc::v5::Connection, n: usize, q: u8, ready: &std::sync::Barrier) {
    client.subscribe_many([Filter::new(format!("echo/{n}/request/+"), qos(q))]).unwrap();
    let mut ready = Some(ready);
    for ev in conn.iter() {
        match ev {
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                if let Some(r) = ready.take() {
                    r.wait();
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let props = p.properties.unwrap_or_default();
                let Some(topic) = props.response_topic else { continue };
                let reply = PublishProperties { correlation_data: props.correlation_data, ..Default::default() };
                let _ = client.try_publish_with_properties(topic, qos(q), false, p.payload, reply);
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// One HMI: request, wait for its reply, repeat until the time is up. Returns each round trip.
fn hmi(
    port: u16,
    case: &Case,
    n: usize,
    i: usize,
    token: &str,
    seconds: u64,
    start: &std::sync::Barrier,
) -> Vec<Duration> {
    let id = format!("bench-{n}-{i}");
    let (client, mut conn) = Client::new(options(&id, port, true), 100);
    let reply = format!("hmi/{id}/reply");
    // Each HMI asks on its own request topic (the last level is its client id).
    let request_topic = match case.peer {
        Peer::Gatewarden => format!("gatewarden/bench/rpc/request/{id}"),
        Peer::Echo { .. } => format!("echo/{n}/request/{id}"),
    };
    let q = qos(case.qos);
    client.subscribe(&reply, q).unwrap();
    let mut events = conn.iter();
    for ev in events.by_ref() {
        if let Ok(Event::Incoming(Packet::SubAck(_))) = ev {
            break;
        }
    }
    start.wait();
    let mut out = Vec::new();
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut k = 0u64;
    while Instant::now() < end {
        k += 1;
        let req = json!({"id": k, "method": "authz.check", "auth": {"token": token},
                         "params": {"permission": "tag.write", "resource": format!("line1/dev{}", k % 50), "access": "write"}});
        let props = PublishProperties { response_topic: Some(reply.clone()), ..Default::default() };
        let sent = Instant::now();
        client.publish_with_properties(&request_topic, q, false, req.to_string(), props).unwrap();
        for ev in events.by_ref() {
            if let Ok(Event::Incoming(Packet::Publish(p))) = ev {
                let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                if v["id"] == k {
                    if case.peer == Peer::Gatewarden {
                        assert_eq!(v["result"]["decision"], "allow", "{v}");
                    }
                    out.push(sent.elapsed());
                    break;
                }
            }
        }
    }
    let _ = client.disconnect();
    out
}
