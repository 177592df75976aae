//! MQTT test helpers: a mosquitto of the test's own on a free port (also as shipped:
//! packaging/mosquitto.conf.example with packaging/mosquitto-acl.example), HMIs played by rumqttc
//! clients (v5 and 3.1.1), and a raw MQTT v5 client for what rumqttc refuses to send.

use super::Daemon;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A mosquitto of our own on a free port, optionally with persistence (sessions and queued messages
/// survive its restart, as on a real plant broker).
pub struct Broker {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The WebSockets listener serving the console ([`Broker::shipped_with_console`]).
    pub ws_port: Option<u16>,
    child: Option<Child>,
}

impl Broker {
    pub fn start(persistent: bool) -> Broker {
        let mut b = Broker::prepare(free_port(), persistent, "allow_anonymous true\n");
        b.run();
        b
    }

    /// Writes the config for `port` without starting anything.
    pub fn prepare(port: u16, persistent: bool, auth: &str) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let conf = format!(
            "listener {port} 127.0.0.1\n{auth}user root\npersistence {persistent}\n\
             persistence_location {}/\nlog_dest file {}/mosquitto.log\nmax_queued_messages 1000\nlog_type all\n",
            dir.path().display(),
            dir.path().display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
        Broker { dir, port, ws_port: None, child: None }
    }

    pub fn run(&mut self) {
        // Debian puts the broker in /usr/sbin, which a non-root PATH may lack.
        let bin = if PathBuf::from("/usr/sbin/mosquitto").exists() { "/usr/sbin/mosquitto" } else { "mosquitto" };
        let child = Command::new(bin)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (.ci/run installs it)");
        self.child = Some(child);
        wait_until(Duration::from_secs(10), "mosquitto listening", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        if let Some(p) = self.ws_port {
            wait_until(Duration::from_secs(10), "mosquitto's WebSockets listener", || {
                std::net::TcpStream::connect(("127.0.0.1", p)).is_ok()
            });
        }
    }

    /// SIGTERM (mosquitto saves its persistence file) and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A daemon bridged to `broker` under site `site`.
pub fn daemon(broker_url: &str, site: &str, extra: &str) -> Daemon {
    let config =
        format!("[site]\nid = \"{site}\"\n[mqtt]\nenabled = true\nurl = \"{broker_url}\"\nreconnect_max = \"1s\"\n");
    Daemon::start_with(&super::merge_toml(&config, extra))
}

pub fn wait_connected(d: &Daemon) {
    wait_until(Duration::from_secs(20), "the bridge to connect", || d.ok(&["status"])["mqtt"]["state"] == "connected");
}

#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    pub dup: bool,
    pub correlation: Option<Vec<u8>>,
}

impl Msg {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

pub enum Note {
    Up,
    SubAck,
    Msg(Msg),
    Down,
}

/// An HMI: an MQTT v5 client (or 3.1.1 with `v311`) whose connection runs in a thread.
pub struct Hmi {
    pub v5: Option<rumqttc::v5::Client>,
    pub v4: Option<rumqttc::Client>,
    pub rx: mpsc::Receiver<Note>,
}

impl Hmi {
    pub fn v5(port: u16, id: &str) -> Hmi {
        Self::v5_session(port, id, true)
    }

    /// `clean = false`: a persistent session the broker keeps (and queues for) while we are away.
    pub fn v5_session(port: u16, id: &str, clean: bool) -> Hmi {
        Self::v5_with(port, id, clean, None)
    }

    pub fn v5_with(port: u16, id: &str, clean: bool, login: Option<(&str, &str)>) -> Hmi {
        let mut o = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", port);
        if let Some((user, password)) = login {
            o.set_credentials(user, password);
        }
        o.set_keep_alive(Duration::from_secs(30));
        o.set_clean_start(clean);
        if !clean {
            o.set_session_expiry_interval(Some(3600));
        }
        let (client, mut conn) = rumqttc::v5::Client::new(o, 1000);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                let note = match ev {
                    Ok(rumqttc::v5::Event::Incoming(Packet::ConnAck(_))) => Note::Up,
                    Ok(rumqttc::v5::Event::Incoming(Packet::SubAck(_))) => Note::SubAck,
                    Ok(rumqttc::v5::Event::Incoming(Packet::Publish(p))) => Note::Msg(Msg {
                        topic: String::from_utf8_lossy(&p.topic).into(),
                        payload: p.payload.to_vec(),
                        retain: p.retain,
                        dup: p.dup,
                        correlation: p.properties.and_then(|pr| pr.correlation_data).map(|b| b.to_vec()),
                    }),
                    Ok(_) => continue,
                    Err(_) => {
                        let _ = tx.send(Note::Down);
                        return;
                    }
                };
                if tx.send(note).is_err() {
                    return;
                }
            }
        });
        let mut h = Hmi { v5: Some(client), v4: None, rx };
        h.expect_note(|n| matches!(n, Note::Up), "ConnAck");
        h
    }

    pub fn v311(port: u16, id: &str) -> Hmi {
        Self::v311_with(port, id, None)
    }

    pub fn v311_with(port: u16, id: &str, login: Option<(&str, &str)>) -> Hmi {
        let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        if let Some((user, password)) = login {
            o.set_credentials(user, password);
        }
        o.set_keep_alive(Duration::from_secs(30));
        let (client, mut conn) = rumqttc::Client::new(o, 1000);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                let note = match ev {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => Note::Up,
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => Note::SubAck,
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => Note::Msg(Msg {
                        topic: p.topic.clone(),
                        payload: p.payload.to_vec(),
                        retain: p.retain,
                        dup: p.dup,
                        correlation: None,
                    }),
                    Ok(_) => continue,
                    Err(_) => {
                        let _ = tx.send(Note::Down);
                        return;
                    }
                };
                if tx.send(note).is_err() {
                    return;
                }
            }
        });
        let mut h = Hmi { v5: None, v4: Some(client), rx };
        h.expect_note(|n| matches!(n, Note::Up), "ConnAck");
        h
    }

    pub fn expect_note(&mut self, f: impl Fn(&Note) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Note::Down) => panic!("HMI connection dropped while waiting for {what}"),
                Ok(n) if f(&n) => return,
                Ok(_) => {}
                Err(_) => panic!("no {what} within 10s"),
            }
        }
    }

    pub fn subscribe(&mut self, filter: &str) {
        match (&self.v5, &self.v4) {
            (Some(c), _) => c.subscribe(filter, QoS::AtLeastOnce).unwrap(),
            (_, Some(c)) => c.subscribe(filter, rumqttc::QoS::AtLeastOnce).unwrap(),
            _ => unreachable!(),
        }
        self.expect_note(|n| matches!(n, Note::SubAck), "SubAck");
    }

    pub fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        match (&self.v5, &self.v4) {
            (Some(c), _) => c.publish(topic, QoS::AtLeastOnce, false, payload.into()).unwrap(),
            (_, Some(c)) => c.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.into()).unwrap(),
            _ => unreachable!(),
        }
    }

    /// v5 request with a response topic and correlation data.
    pub fn request(&self, topic: &str, payload: impl Into<Vec<u8>>, response_topic: &str, correlation: &[u8]) {
        let props = PublishProperties {
            response_topic: Some(response_topic.into()),
            correlation_data: Some(correlation.to_vec().into()),
            ..Default::default()
        };
        let c = self.v5.as_ref().expect("v5 client");
        c.publish_with_properties(topic, QoS::AtLeastOnce, false, payload.into(), props).unwrap();
    }

    /// The next message matching `f` within `limit`; others are skipped.
    pub fn next(&mut self, limit: Duration, f: impl Fn(&Msg) -> bool) -> Option<Msg> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.rx.recv_timeout(left) {
                Ok(Note::Msg(m)) if f(&m) => return Some(m),
                Ok(Note::Down) => return None,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Disconnects cleanly and waits until the connection is gone, so nothing more reaches this
    /// client (a persistent session then queues on the broker).
    pub fn disconnect(self) {
        match (&self.v5, &self.v4) {
            (Some(c), _) => c.disconnect().unwrap(),
            (_, Some(c)) => c.disconnect().unwrap(),
            _ => unreachable!(),
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Note::Down) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("the HMI connection did not close within 10s"),
            }
        }
    }

    pub fn next_on(&mut self, topic: &str) -> Msg {
        self.next(Duration::from_secs(15), |m| m.topic == topic).unwrap_or_else(|| panic!("nothing on {topic}"))
    }
}

/// The broker passwords of [`Broker::shipped`]: every user's password is its name followed by this.
pub const BROKER_PW_SUFFIX: &str = "-broker-secret";

impl Broker {
    /// mosquitto as the package ships it: packaging/mosquitto.conf.example and
    /// packaging/mosquitto-acl.example, with this test's port and paths substituted, the TLS listener
    /// left out (no certificates here), and site `site` in the ACL. `users` get broker passwords
    /// (`<name>` + [`BROKER_PW_SUFFIX`]); `gatewarden` always exists. The console's WebSockets
    /// listener is left out.
    pub fn shipped(site: &str, users: &[&str]) -> Broker {
        Self::shipped_with(site, users, None)
    }

    /// [`Broker::shipped`] with its WebSockets listener too (on a free port, `ws_port`, without TLS),
    /// serving `console_dir` (a built target/console) with `http_dir`, as the example serves the
    /// installed console.
    pub fn shipped_with_console(site: &str, users: &[&str], console_dir: &std::path::Path) -> Broker {
        Self::shipped_with(site, users, Some(console_dir))
    }

    fn shipped_with(site: &str, users: &[&str], console_dir: Option<&std::path::Path>) -> Broker {
        let port = free_port();
        let ws_port = console_dir.map(|_| free_port());
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        let mut all = vec!["gatewarden"];
        all.extend_from_slice(users);
        for (i, user) in all.iter().enumerate() {
            let mut cmd = Command::new("mosquitto_passwd");
            if i == 0 {
                cmd.arg("-c");
            }
            let pw = format!("{user}{BROKER_PW_SUFFIX}");
            let st = cmd.arg("-b").arg(&passwd).args([user, &pw.as_str()]).stdout(Stdio::null()).status().unwrap();
            assert!(st.success(), "mosquitto_passwd {user}");
        }
        let root = env!("CARGO_MANIFEST_DIR");
        let acl_text = std::fs::read_to_string(format!("{root}/packaging/mosquitto-acl.example")).unwrap();
        assert!(acl_text.contains("gatewarden/default/"));
        let acl = dir.path().join("gatewarden.acl");
        std::fs::write(&acl, acl_text.replace("gatewarden/default/", &format!("gatewarden/{site}/"))).unwrap();

        let example = std::fs::read_to_string(format!("{root}/packaging/mosquitto.conf.example")).unwrap();
        let mut conf = String::new();
        let mut substituted = 0;
        for line in example.lines() {
            let line = match line.trim() {
                "listener 1883 127.0.0.1" => format!("listener {port} 127.0.0.1"),
                // The console's listener: on our free port, serving the console built for the test.
                l @ ("listener 8884" | "protocol websockets" | "http_dir /usr/share/gatewarden/console") => {
                    match (l, ws_port, console_dir) {
                        ("listener 8884", Some(p), _) => format!("listener {p} 127.0.0.1"),
                        ("http_dir /usr/share/gatewarden/console", _, Some(d)) => format!("http_dir {}", d.display()),
                        ("protocol websockets", Some(_), _) => l.to_string(),
                        // No console wanted: the listener is left out.
                        _ => {
                            substituted += 1;
                            continue;
                        }
                    }
                }
                "password_file /etc/mosquitto/passwd" => format!("password_file {}", passwd.display()),
                "acl_file /etc/mosquitto/gatewarden.acl" => format!("acl_file {}", acl.display()),
                // The TLS listener for the plant network: no certificates in a test.
                l if l == "listener 8883" || l.starts_with("certfile ") || l.starts_with("keyfile ") => {
                    substituted += 1;
                    continue;
                }
                _ => {
                    conf.push_str(line);
                    conf.push('\n');
                    continue;
                }
            };
            substituted += 1;
            conf.push_str(&line);
            conf.push('\n');
        }
        assert_eq!(substituted, 11, "mosquitto.conf.example changed shape; update Broker::shipped");
        conf.push_str(&format!(
            "user root\npersistence false\nlog_dest file {}/mosquitto.log\nlog_type all\n",
            dir.path().display()
        ));
        std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
        let mut b = Broker { dir, port, ws_port, child: None };
        b.run();
        b
    }

    /// `[mqtt]` TOML that logs gatewarden in to a [`Broker::shipped`].
    pub fn gatewarden_login(&self) -> String {
        let pw_file = self.dir.path().join("gw-password");
        std::fs::write(&pw_file, format!("gatewarden{BROKER_PW_SUFFIX}\n")).unwrap();
        format!("[mqtt]\nusername = \"gatewarden\"\npassword_file = {:?}\n", pw_file.display().to_string())
    }

    /// A v5 HMI logged in to a [`Broker::shipped`] as broker user `user`, with client id `id`.
    pub fn hmi(&self, id: &str, user: &str) -> Hmi {
        let pw = format!("{user}{BROKER_PW_SUFFIX}");
        Hmi::v5_with(self.port, id, true, Some((user, &pw)))
    }

    /// A 3.1.1 HMI logged in to a [`Broker::shipped`].
    pub fn hmi311(&self, id: &str, user: &str) -> Hmi {
        let pw = format!("{user}{BROKER_PW_SUFFIX}");
        Hmi::v311_with(self.port, id, Some((user, &pw)))
    }
}

/// A daemon bridged to a [`Broker::shipped`] under `site`, logged in as broker user `gatewarden`.
pub fn shipped_daemon(broker: &Broker, site: &str, extra: &str) -> Daemon {
    let login = broker.gatewarden_login();
    daemon(&broker.url(), site, &super::merge_toml(&login, extra))
}

/// A bare MQTT v5 client over TCP, for what rumqttc (rightly) refuses to send: packets above the
/// broker's maximum packet size. Also cheap enough to open hundreds of connections with.
pub struct RawV5 {
    stream: std::net::TcpStream,
}

/// What the broker did after a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    /// A DISCONNECT with this reason code.
    Disconnect(u8),
    /// The connection closed without a DISCONNECT.
    Closed,
    /// Still connected after the wait.
    Open,
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return;
        }
    }
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

impl RawV5 {
    /// Connects and logs in (clean start); panics unless the broker says yes.
    pub fn connect(port: u16, id: &str, user: &str, password: &str) -> RawV5 {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut body = Vec::new();
        string(b"MQTT", &mut body);
        body.push(5); // protocol version
        body.push(0b1100_0010); // user name, password, clean start
        body.extend_from_slice(&60u16.to_be_bytes());
        body.push(0); // no properties
        string(id.as_bytes(), &mut body);
        string(user.as_bytes(), &mut body);
        string(password.as_bytes(), &mut body);
        let mut raw = RawV5 { stream };
        raw.send(0x10, &body);
        let mut head = [0u8; 2];
        raw.stream.read_exact(&mut head).unwrap();
        assert_eq!(head[0], 0x20, "CONNACK expected");
        let mut rest = vec![0u8; head[1] as usize];
        raw.stream.read_exact(&mut rest).unwrap();
        assert_eq!(rest.get(1), Some(&0), "broker refused the connection: {rest:?}");
        raw
    }

    fn send(&mut self, first: u8, body: &[u8]) {
        let mut packet = vec![first];
        varint(body.len(), &mut packet);
        packet.extend_from_slice(body);
        // The broker may hang up half-way through a packet it finds too large.
        let _ = self.stream.write_all(&packet);
    }

    /// PUBLISH at QoS 0, with a response topic when given.
    pub fn publish(&mut self, topic: &str, payload: &[u8], response_topic: Option<&str>) {
        let mut body = Vec::with_capacity(payload.len() + topic.len() + 64);
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

    /// What the broker does within `wait`.
    pub fn after(&mut self, wait: Duration) -> After {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut first = [0u8; 1];
        match self.stream.read(&mut first) {
            Ok(0) => After::Closed,
            Ok(_) if first[0] == 0xE0 => {
                let mut rest = [0u8; 2];
                match self.stream.read(&mut rest) {
                    Ok(n) if n >= 2 => After::Disconnect(rest[1]),
                    // No reason code: 0x00, normal disconnection.
                    _ => After::Disconnect(0),
                }
            }
            Ok(_) => After::Open,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => After::Open,
            Err(_) => After::Closed,
        }
    }

    /// DISCONNECT, normal.
    pub fn disconnect(mut self) {
        self.send(0xE0, &[]);
    }
}

/// TCP_NODELAY of each established TCP connection that process `pid` holds to 127.0.0.1:`port`, read
/// on a duplicate of the process's own socket (pidfd_getfd; the tests run as root or as the
/// daemon's parent).
pub fn nodelay_towards(pid: i32, port: u16) -> Vec<bool> {
    use nix::libc;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // /proc/<pid>/net/tcp: "sl local rem st ... inode"; addresses as hex "0100007F:075B".
    let remote = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/net/tcp"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 9 && f[2] == remote && f[3] == "01")
        .map(|f| f[9].to_string())
        .collect();
    let fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let link = std::fs::read_link(e.path()).ok()?;
            let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.to_string();
            inodes.contains(&inode).then(|| e.file_name().to_str()?.parse().ok())?
        })
        .collect();
    // SAFETY: plain syscalls; each returned descriptor is new and owned by the OwnedFd made of it.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(pidfd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    fds.into_iter()
        .map(|fd| {
            let dup = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
            assert!(dup >= 0, "pidfd_getfd: {}", std::io::Error::last_os_error());
            let dup = unsafe { OwnedFd::from_raw_fd(dup as i32) };
            nix::sys::socket::getsockopt(&dup, nix::sys::socket::sockopt::TcpNoDelay).unwrap()
        })
        .collect()
}

/// A CA certificate that signs nothing (made once with openssl): enough for `mqtt.ca_file` when the
/// TLS handshake is never meant to finish.
pub const UNUSED_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBoDCCAUWgAwIBAgIUDZf+/wZ90LJoZvFzySySQcguq5IwCgYIKoZIzj0EAwIw
JDEiMCAGA1UEAwwZZ2F0ZXdhcmRlbi10ZXN0LXVudXNlZC1jYTAgFw0yNjEyMDEy
MTI3NTBaGA8yMTI2MTEwNzIxMjc1MFowJDEiMCAGA1UEAwwZZ2F0ZXdhcmRlbi10
ZXN0LXVudXNlZC1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMVPy1rYo7BW
L2PoiCSYu3BvwMxQ7Ux6T1oN1tncKkI7SHfL14fdVBDOEu34GlaCaL677K8HyTvI
+dnnEDtpqaWjUzBRMB0GA1UdDgQWBBRzQ2MbuH/XASuaw9xnI6u9nXT9AjAfBgNV
HSMEGDAWgBRzQ2MbuH/XASuaw9xnI6u9nXT9AjAPBgNVHRMBAf8EBTADAQH/MAoG
CCqGSM49BAMCA0kAMEYCIQC3L8kvWaP534aX6U3In+p846183x7/ZkbeRu+jivqK
7QIhAO6EBRqoJ7VkPfTeNt8BWwSxDUmKa0JsYiosCMYs5T9L
-----END CERTIFICATE-----
";
