//! A real `nats-server` of the test's own (Debian's package `nats-server`; .ci/run installs it):
//! JetStream on, its store in a temp dir, on a free loopback port (and a monitoring port, for the
//! traffic figures), killed on drop. `stop` and `start` again keep the port and the store, as a
//! restarted server would.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// Self-contained (examples/plant_load.rs includes this file too).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Nats {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub monitor: u16,
    child: Option<Child>,
}

fn binary() -> String {
    for p in ["/usr/bin/nats-server", "/usr/sbin/nats-server"] {
        if Path::new(p).exists() {
            return p.to_string();
        }
    }
    "nats-server".to_string()
}

impl Nats {
    /// Starts a server and waits until it accepts connections.
    pub fn start() -> Nats {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut n = Nats { dir, port: free_port(), monitor: free_port(), child: None };
        n.launch();
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the process on the same port and store.
    pub fn launch(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("nats.log")).unwrap();
        let child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-m", &self.monitor.to_string(), "-js"])
            .arg("-sd")
            .arg(self.dir.path().join("store"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting nats-server: {e} (install the Debian package nats-server)"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // Ready once the monitoring endpoint answers: the client port is open by then.
            if self.varz().is_some() {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("nats-server exited early with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "nats-server did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGKILL: NATS vanishes as it does when its box loses power).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }

    /// The server's `/varz` (message and byte counters), read over plain HTTP.
    pub fn varz(&self) -> Option<serde_json::Value> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.monitor)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /varz HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let body = text.split_once("\r\n\r\n")?.1;
        serde_json::from_str(body).ok()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}
