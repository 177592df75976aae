//! What the load examples share: a daemon of their own on a temp dir, a control-socket connection,
//! latency percentiles, and readings of the daemon process from /proc.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn usage(text: &str, msg: &str) -> ! {
    eprintln!("{msg}\nusage: {text}");
    std::process::exit(2)
}

pub fn duration(s: &str) -> Duration {
    gatewarden::config::parse_duration(s).unwrap_or_else(|e| {
        eprintln!("{s:?}: {e}");
        std::process::exit(2)
    })
}

/// One control-socket connection.
pub struct Conn {
    r: BufReader<UnixStream>,
    /// The last reply line.
    pub line: String,
}

impl Conn {
    pub fn open(path: &Path) -> Conn {
        let s = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        Conn { r: BufReader::new(s), line: String::new() }
    }

    pub fn call(&mut self, method: &str, params: Value, auth: &Value) -> Value {
        let mut req = serde_json::to_vec(&json!({"id": 1, "method": method, "params": params, "auth": auth})).unwrap();
        req.push(b'\n');
        self.send_raw(&req);
        serde_json::from_str(&self.line).expect("reply is JSON")
    }

    /// Sends one pre-serialized request line and reads the reply line into `self.line`.
    pub fn send_raw(&mut self, line: &[u8]) {
        self.r.get_mut().write_all(line).expect("send");
        self.line.clear();
        self.r.read_line(&mut self.line).expect("reply");
    }

    /// The daemon's pid, from the socket's peer credentials.
    pub fn peer_pid(&self) -> i32 {
        nix::sys::socket::getsockopt(self.r.get_ref(), nix::sys::socket::sockopt::PeerCredentials)
            .map(|c| c.pid())
            .unwrap_or(0)
    }
}

pub fn result<'a>(r: &'a Value, what: &str) -> &'a Value {
    r.get("result").unwrap_or_else(|| panic!("{what}: {r}"))
}

#[derive(Default, Clone)]
pub struct Latencies(pub Vec<Duration>);

impl Latencies {
    pub fn pct(&mut self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i]
    }

    pub fn report(&mut self, what: &str, wall: Duration) {
        let n = self.0.len();
        println!(
            "{what:<12} {n:>7} in {:>6.2} s = {:>8.0}/s   p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms",
            wall.as_secs_f64(),
            n as f64 / wall.as_secs_f64(),
            ms(self.pct(0.50)),
            ms(self.pct(0.99)),
            ms(self.pct(1.0)),
        );
    }

    pub fn timed(&mut self, f: impl FnOnce() -> Value) -> Value {
        let t = Instant::now();
        let v = f();
        self.0.push(t.elapsed());
        v
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A numeric field of /proc/<pid>/<file> (`write_bytes:` of io, `VmRSS:` of status, in its unit).
pub fn proc_field(pid: i32, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix(key)?.trim().trim_end_matches(" kB").trim().parse().ok()))
        .unwrap_or(0)
}

/// CPU seconds (user + system) used so far by a process, from /proc/<pid>/stat.
/// Sleeps until `from`, then until `to`, and returns the CPU seconds the daemon `pid` and this
/// process used in between: the measured window of a load run, without its warm-up.
pub fn cpu_over_window(pid: i32, from: std::time::Instant, to: std::time::Instant) -> (f64, f64) {
    std::thread::sleep(from.saturating_duration_since(std::time::Instant::now()));
    let (d0, c0) = (cpu_seconds(&pid.to_string()), cpu_seconds("self"));
    std::thread::sleep(to.saturating_duration_since(std::time::Instant::now()));
    (cpu_seconds(&pid.to_string()) - d0, cpu_seconds("self") - c0)
}

pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): utime, stime are
    // fields 14 and 15 of the whole line, i.e. 12 and 13 after the closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    ticks as f64 / hz
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Open file descriptors of a process.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

pub fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// A daemon of our own: the `gatewarden` binary next to the examples directory, on a temp dir,
/// MQTT off unless asked for, with TOML lines added; stopped and removed on drop.
/// The built-in admin's password in a daemon of our own.
pub const ADMIN_PASSWORD: &str = "load-generator-password";

pub struct OwnDaemon {
    child: Child,
    pub dir: PathBuf,
    pub socket: PathBuf,
    /// An admin login token.
    pub token: String,
}

impl OwnDaemon {
    pub fn start(max_clients: usize, extra_toml: &str) -> OwnDaemon {
        Self::start_with_mqtt(max_clients, "enabled = false\n", extra_toml)
    }

    /// As [`OwnDaemon::start`], with `mqtt_toml` as the body of its `[mqtt]` table.
    pub fn start_with_mqtt(max_clients: usize, mqtt_toml: &str, extra_toml: &str) -> OwnDaemon {
        Self::start_configured(max_clients, "", mqtt_toml, extra_toml)
    }

    /// As [`OwnDaemon::start_with_mqtt`], with `daemon_toml` added to its `[daemon]` table.
    pub fn start_configured(max_clients: usize, daemon_toml: &str, mqtt_toml: &str, extra_toml: &str) -> OwnDaemon {
        let exe = std::env::current_exe().expect("current_exe");
        let bin = exe.parent().and_then(Path::parent).map(|d| d.join("gatewarden")).expect("target dir");
        if !bin.exists() {
            eprintln!("{} not found: run `cargo build --release --bins --examples` first", bin.display());
            std::process::exit(2);
        }
        // A sequence number too: an example may run several daemons side by side.
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("gatewarden-load-{}-{seq}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("admin.pw"), ADMIN_PASSWORD).unwrap();
        let config = format!(
            "[daemon]\nstate_dir = {:?}\nlog_level = \"warn\"\nmax_clients = {max_clients}\n{daemon_toml}[mqtt]\n{mqtt_toml}{extra_toml}",
            dir.join("state").display().to_string(),
        );
        std::fs::write(dir.join("gatewarden.toml"), config).unwrap();
        let child = Command::new(&bin)
            .args(["serve", "--config"])
            .arg(dir.join("gatewarden.toml"))
            .arg("--admin-password-file")
            .arg(dir.join("admin.pw"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start gatewarden");
        let socket = dir.join("state/gatewarden.sock");
        let mut own = OwnDaemon { child, dir, socket, token: String::new() };
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&own.socket).is_err() {
            assert!(Instant::now() < deadline, "gatewarden did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut c = Conn::open(&own.socket);
        let r = c.call("login", json!({"user": "admin", "password": ADMIN_PASSWORD}), &Value::Null);
        own.token = result(&r, "login")["token"].as_str().unwrap().to_string();
        own
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("state/gatewarden.db")
    }
}

impl Drop for OwnDaemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::SIGTERM);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `p` quantile (0..=1) of sorted nanosecond samples, in milliseconds (0 when there are none).
pub fn quantile_ms(sorted_ns: &[u64], p: f64) -> f64 {
    let i = ((sorted_ns.len().max(1) - 1) as f64 * p).round() as usize;
    sorted_ns.get(i).copied().unwrap_or(0) as f64 / 1e6
}

/// SplitMix64: the same requests on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
