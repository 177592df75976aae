//! Hostile load on the control socket: idle and half-written connections holding slots, one client
//! pipelining requests as fast as it can, connections beyond the limit. The daemon must keep
//! answering everyone else, refuse what is over the limit with an error (not a hang), and keep its
//! memory bounded. Latencies are printed, not asserted (they depend on the machine); the bounds
//! asserted are generous sanity limits, far above what a healthy daemon shows.

mod common;

use common::Daemon;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_flooding_client_and_idle_connections_do_not_starve_others() {
    let d = Daemon::start_with("[daemon]\nmax_clients = 64\nclient_timeout = \"30s\"");
    let pid = d.pid();
    // Warm up, then measure.
    d.ok(&["status"]);
    let rss_before = rss_kib(pid);

    // 40 slow clients: connected, some with half a request written, never finishing.
    let mut idle = Vec::new();
    for i in 0..40 {
        let mut s = UnixStream::connect(&d.socket).unwrap();
        if i % 2 == 0 {
            s.write_all(br#"{"id": 1, "method": "sta"#).unwrap();
        }
        idle.push(s);
    }

    // One client pipelines 20,000 requests without waiting; a reader thread drains the replies.
    const FLOOD: usize = 20_000;
    let flood = UnixStream::connect(&d.socket).unwrap();
    let reader = flood.try_clone().unwrap();
    let drain = std::thread::spawn(move || {
        let mut r = BufReader::new(reader);
        let (mut n, mut line) = (0, String::new());
        while n < FLOOD {
            line.clear();
            if r.read_line(&mut line).unwrap() == 0 {
                break;
            }
            n += 1;
        }
        n
    });
    let started = Instant::now();
    let pump = std::thread::spawn(move || {
        let mut w = flood;
        let req =
            json!({"id": 1, "method": "authz.check", "params": {"permission": "tag.read", "resource": "line1/p1"}});
        let mut line = req.to_string().into_bytes();
        line.push(b'\n');
        let batch: Vec<u8> = line.iter().copied().cycle().take(line.len() * 100).collect();
        for _ in 0..FLOOD / 100 {
            w.write_all(&batch).unwrap();
        }
        w
    });

    // Meanwhile others are served.
    let mut lat = Vec::new();
    while !pump.is_finished() || lat.len() < 20 {
        let t = Instant::now();
        let r = d.call("status", json!({}));
        assert!(r["result"]["version"].is_string(), "{r}");
        lat.push(t.elapsed());
        if lat.len() > 2000 {
            break;
        }
    }
    let _writer = pump.join().unwrap();
    let answered = drain.join().unwrap();
    let flood_time = started.elapsed();
    assert_eq!(answered, FLOOD, "the flooding client lost replies");
    lat.sort();
    let p99 = lat[lat.len() * 99 / 100];
    println!(
        "flood: {FLOOD} pipelined requests answered in {:.2} s ({:.0}/s); meanwhile {} status calls from other clients, p50 {:?}, p99 {:?}, max {:?}",
        flood_time.as_secs_f64(),
        FLOOD as f64 / flood_time.as_secs_f64(),
        lat.len(),
        lat[lat.len() / 2],
        p99,
        lat[lat.len() - 1]
    );
    assert!(lat[lat.len() - 1] < Duration::from_secs(2), "another client waited {:?}", lat[lat.len() - 1]);

    // Over the limit: an error reply, not a hang.
    let mut extra = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        let s = UnixStream::connect(&d.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        extra.push(s);
    }
    for s in &extra {
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        let mut w = s.try_clone().unwrap();
        // Those that were admitted answer a request; the others already said why they were refused.
        let _ = w.write_all(b"{\"id\":1,\"method\":\"status\"}\n");
        r.read_line(&mut line).unwrap();
        if line.contains("too many clients") {
            assert!(line.contains("\"rate_limited\"") && line.contains("retry_after_ms"), "{line}");
            refused += 1;
        } else {
            assert!(line.contains("\"result\""), "{line}");
        }
    }
    assert!(refused > 0, "64 slots, 40 idle + 40 more connections: some must be refused");
    drop(extra);
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    assert!(d.call("status", json!({}))["result"].is_object());

    let rss_after = rss_kib(pid);
    println!("daemon RSS {rss_before} KiB before, {rss_after} KiB after the flood");
    assert!(rss_after < rss_before + 64 * 1024, "RSS grew from {rss_before} to {rss_after} KiB");
}
