//! The TOML configuration: every key optional, every default documented in
//! `packaging/gatewarden.toml`, unknown keys refused.
//!
//! A config that cannot be used must never half-start the daemon: `load` parses and then runs the
//! semantic `check()`, and every error names the file, the line and the key at fault.

use crate::logs::LogFilter;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A duration written as `"30s"`, `"15m"`, `"2h"`, `"7d"`, `"250ms"`, or a plain number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected a number and a unit, like \"30s\", \"15m\", \"2h\""))?;
    let ms = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => return Err(format!("invalid duration unit {other:?} in {s:?}: use ms, s, m, h or d")),
    };
    n.checked_mul(ms).map(Duration::from_millis).ok_or_else(|| format!("duration {s:?} is too large"))
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| serde::de::Error::custom("expected a duration like \"30s\""))? {
            Raw::Secs(s) => Ok(Dur::secs(s)),
            Raw::Text(t) => parse_duration(&t).map(Dur).map_err(serde::de::Error::custom),
        }
    }
}

/// Where the MQTT broker is: `mqtt://host[:port]` or `mqtts://host[:port]` (TLS), parsed once, when the
/// config is. The host is a name, an IPv4 address or an IPv6 address in brackets; the port is 1-65535
/// (default 1883, or 8883 with TLS). No user info (`mqtt.username`, `mqtt.password_file` say who we
/// are), no path, query or fragment: the bridge would have nothing to do with them. A value of this
/// type is always one the bridge can connect to (or retry against).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    tls: bool,
    host: String,
    port: u16,
}

/// The longest host name DNS allows.
const MAX_HOST_LEN: usize = 253;

impl BrokerUrl {
    /// Whether the connection uses TLS (`mqtts://`).
    pub fn tls(&self) -> bool {
        self.tls
    }
    /// The host name or address, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The one parser of broker URLs; the error says what is wrong with `url`.
    pub fn parse(url: &str) -> Result<BrokerUrl, String> {
        let bad = |why: &str| format!("{url:?} is not a broker URL: {why}");
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else {
            return Err(bad("it must start with mqtt:// or mqtts:// (TLS)"));
        };
        // One trailing slash is an empty path, as in `mqtt://host/`; anything after it is a path.
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('@') {
            return Err(bad("user info is not allowed in the URL; set mqtt.username and mqtt.password_file"));
        }
        if let Some(c) = authority.chars().find(|c| ['/', '?', '#'].contains(c)) {
            let what = match c {
                '/' => "a path",
                '?' => "a query",
                _ => "a fragment",
            };
            return Err(bad(&format!("{what} is not allowed; give only scheme://host[:port]")));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("an IPv6 address opened with [ is not closed"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(&format!("{host:?} in brackets is not an IPv6 address")));
            }
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(|| bad("expected :port after the ]"))?),
            };
            (host, port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if port.is_some_and(|p| p.contains(':')) {
                return Err(bad("an IPv6 address goes in brackets, as in mqtt://[::1]:1883"));
            }
            if host.is_empty() {
                return Err(bad("the host is missing"));
            }
            if host.len() > MAX_HOST_LEN || !host.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
                return Err(bad(&format!(
                    "{host:?} is not a host name (letters, digits, - . _; at most {MAX_HOST_LEN}) or an address"
                )));
            }
            (host, port)
        };
        let port = match port {
            None => {
                if tls {
                    8883
                } else {
                    1883
                }
            }
            Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(bad(&format!("the port {p:?} is not a number")));
            }
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(bad(&format!("the port {p} is out of range (1-65535)"))),
            },
        };
        Ok(BrokerUrl { tls, host: host.to_string(), port })
    }
}

impl Default for BrokerUrl {
    /// `mqtt://127.0.0.1:1883`: a broker on the gateway itself.
    fn default() -> Self {
        BrokerUrl { tls: false, host: "127.0.0.1".into(), port: 1883 }
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl std::str::FromStr for BrokerUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        BrokerUrl::parse(s)
    }
}

impl<'de> Deserialize<'de> for BrokerUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        BrokerUrl::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub site: SiteConfig,
    pub accounts: AccountsConfig,
    pub license: LicenseConfig,
    pub supervisor: SupervisorConfig,
    pub mqtt: MqttConfig,
    pub console: ConsoleConfig,
    pub retention: RetentionConfig,
    pub directory: DirectoryConfig,
    pub plant: PlantConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    pub state_dir: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    pub socket_group: Option<String>,
    /// Parsed when the config is, into what logging uses.
    pub log_level: LogFilter,
    pub max_request_bytes: usize,
    pub client_timeout: Dur,
    pub max_clients: usize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            state_dir: None,
            socket: None,
            socket_group: None,
            log_level: LogFilter::default(),
            max_request_bytes: 1024 * 1024,
            client_timeout: Dur::secs(60),
            max_clients: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    pub id: String,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig { id: "default".into() }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    pub self_registration: bool,
    pub default_roles: Vec<String>,
    pub password_min_length: usize,
    pub lockout_attempts: u32,
    pub lockout_window: Dur,
    pub lockout_duration: Dur,
    pub token_ttl: Dur,
    pub admin_password_file: Option<PathBuf>,
    pub argon2: Argon2Config,
    /// What deleting a user does with the objects it owns.
    pub on_delete: OnDelete,
}

/// `accounts.on_delete`: what becomes of a deleted user's objects (SPEC "Objects and historical
/// access"). Any other value fails `config check`, naming the key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnDelete {
    /// Deleted with it, in the same transaction (AggreGate).
    #[default]
    Delete,
    /// Given to the built-in admin.
    ReassignToAdmin,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            self_registration: false,
            default_roles: Vec::new(),
            password_min_length: 10,
            lockout_attempts: 5,
            lockout_window: Dur::secs(15 * 60),
            lockout_duration: Dur::secs(15 * 60),
            token_ttl: Dur::secs(12 * 3600),
            admin_password_file: None,
            argon2: Argon2Config::default(),
            on_delete: OnDelete::Delete,
        }
    }
}

/// argon2id cost. The default (19 MiB, 2 passes, 1 lane) is the OWASP baseline and keeps one
/// verification near 150 ms on a Cortex-A53; see docs/performance.md.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

/// Most client types `license.types` may name.
pub const MAX_CLIENT_TYPES: usize = 64;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LicenseConfig {
    pub seats: u32,
    pub heartbeat_timeout: Dur,
    pub reserved: BTreeMap<String, u32>,
    pub share_same_host: bool,
    pub terminate_cooldown: Dur,
    /// Whom the terminate cooldown blocks: the user on any host (`"user"`), or only on the host of the
    /// terminated session (`"user_host"`, host names compared without case).
    pub cooldown_scope: CooldownScope,
    pub persist_interval: Dur,
    /// Seats a client may take when no read-write seat is free (or when it asks for one): its
    /// write-class decisions answer `read_only_seat`. Counted apart from `seats`.
    pub read_only_seats: u32,
    /// Most read-write seats clients of one `type` may hold at once (`{ vision = 3, perspective = 5 }`),
    /// within `seats`; a type not named is bounded by `seats` alone. Types compared without case.
    pub types: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CooldownScope {
    #[default]
    User,
    UserHost,
}

impl Default for LicenseConfig {
    fn default() -> Self {
        LicenseConfig {
            seats: 5,
            heartbeat_timeout: Dur::secs(30),
            reserved: BTreeMap::new(),
            share_same_host: true,
            terminate_cooldown: Dur::secs(60),
            cooldown_scope: CooldownScope::User,
            persist_interval: Dur::secs(60),
            read_only_seats: 0,
            types: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    pub lock_survives_restart: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    pub enabled: bool,
    /// The broker, parsed when the config is (`url = "mqtt://host:port"` in the file).
    #[serde(rename = "url")]
    pub broker: BrokerUrl,
    /// `broker` as text, for `status` and `config check` to show; never parsed again.
    #[serde(skip)]
    pub url: String,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub keep_alive: Dur,
    pub qos: u8,
    /// Longest wait between two connection attempts (the backoff doubles up to this, with jitter).
    pub reconnect_max: Dur,
    /// Requests per second each HMI may send on `rpc/request` (a token bucket refilled at this rate).
    pub rpc_rate: u32,
    /// How many requests an HMI may send at once before `rpc_rate` applies.
    pub rpc_burst: u32,
    /// Requests over MQTT being served at once, all clients together (see `mqtt::rpc::Intake`).
    pub rpc_max_in_flight: usize,
    /// Requests being served at once for one client id.
    pub rpc_max_in_flight_per_client: usize,
    /// Request payload bytes held at once, all requests together.
    pub rpc_max_bytes_in_flight: usize,
    /// Of those, bytes held in large requests (above 64 KiB), so small ones keep their room.
    pub rpc_max_large_bytes_in_flight: usize,
    /// Password checks (argon2) for MQTT requests running at once.
    pub rpc_password_checks: usize,
    /// MQTT requests that may wait for a password check; beyond that, `rate_limited` at once.
    pub rpc_password_waiters: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: true,
            broker: BrokerUrl::default(),
            url: BrokerUrl::default().to_string(),
            client_id: None,
            username: None,
            password_file: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            keep_alive: Dur::secs(30),
            qos: 1,
            reconnect_max: Dur::secs(30),
            rpc_rate: 20,
            rpc_burst: 40,
            rpc_max_in_flight: 64,
            rpc_max_in_flight_per_client: 8,
            rpc_max_bytes_in_flight: 8 * 1024 * 1024,
            rpc_max_large_bytes_in_flight: 4 * 1024 * 1024,
            // Each check holds accounts.argon2.memory_kib (19 MiB by default) while it runs: one at a
            // time keeps a flood's worst case on a panel PC under 64 MiB of RSS (examples/mqtt_flood.rs).
            rpc_password_checks: 1,
            rpc_password_waiters: 16,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    pub map_unix_users: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    pub audit_max_age: Dur,
    pub audit_max_rows: u64,
    pub outbox_max_age: Dur,
    pub outbox_max_rows: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            audit_max_age: Dur::secs(90 * 86_400),
            audit_max_rows: 200_000,
            outbox_max_age: Dur::secs(7 * 86_400),
            outbox_max_rows: 50_000,
        }
    }
}

/// `[directory]`: the plant's LDAP or Active Directory (SPEC "Plant directory"). Off unless `url` is
/// set. Bounds are written here, next to the keys: see [`Config::check_directory`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// `ldaps://host[:port]`, or `ldap://host[:port]` (with `start_tls = true` outside a lab).
    pub url: Option<String>,
    /// Upgrade an `ldap://` connection with StartTLS before anything is sent.
    pub start_tls: bool,
    /// The service account the searches run as; none: anonymous searches.
    pub bind_dn: Option<String>,
    /// The service account's password, alone in a file readable by the daemon only (0600 or 0400).
    pub bind_password_file: Option<PathBuf>,
    /// Where people are searched (subtree).
    pub user_base: String,
    /// The person's entry: must hold `{user}`, replaced by the login name escaped per RFC 4515.
    pub user_filter: String,
    /// The attribute of a person's entry that lists its groups (`memberOf`), used when `group_base`
    /// is not set.
    pub group_attribute: String,
    /// Groups found by a search below this base instead of an attribute.
    pub group_base: Option<String>,
    /// The group search: must hold `{dn}`, replaced by the person's DN escaped per RFC 4515.
    pub group_filter: String,
    /// Groups inside groups count (AD's LDAP_MATCHING_RULE_IN_CHAIN, or walked up to a depth).
    pub nested_groups: bool,
    /// Group DN (compared without case) -> gatewarden role names.
    pub group_roles: BTreeMap<String, Vec<String>>,
    /// How long a directory login may be repeated from the cache while the directory is unreachable.
    pub cache_ttl: Dur,
    /// How often directory people are brought up to date (roles, disabled, removed).
    pub sync_interval: Dur,
    /// The most any one directory operation (connect, bind, search) may take.
    pub timeout: Dur,
    /// The CA that signed the directory's certificate (PEM); none: the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            url: None,
            start_tls: false,
            bind_dn: None,
            bind_password_file: None,
            user_base: String::new(),
            user_filter: "(sAMAccountName={user})".into(),
            group_attribute: "memberOf".into(),
            group_base: None,
            group_filter: "(member={dn})".into(),
            nested_groups: true,
            group_roles: BTreeMap::new(),
            cache_ttl: Dur::secs(24 * 3600),
            sync_interval: Dur::secs(5 * 60),
            timeout: Dur::secs(5),
            ca_file: None,
        }
    }
}

impl DirectoryConfig {
    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// Whether the connection is encrypted (ldaps:// or StartTLS).
    pub fn tls(&self) -> bool {
        self.start_tls || self.url.as_deref().is_some_and(|u| u.starts_with("ldaps://"))
    }
}

/// `[plant]`: plant mode (SPEC "Plant mode"): the gateways of one plant share one seat pool and one
/// supervisor lock through NATS JetStream key-value buckets. Off unless `nats_url` is set; with it off
/// nothing connects to NATS. See docs/plant.md and [`Config::check_plant`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlantConfig {
    /// `nats://host[:port]` or `tls://host[:port]`; several servers of one cluster separated by commas.
    pub nats_url: Option<String>,
    /// The plant's name: every gateway of the plant gives the same one (it names the buckets).
    pub name: String,
    /// This gateway's name in the plant, unique in it; default: `site.id`.
    pub gateway: Option<String>,
    /// Seats licensed plant-wide (replaces `license.seats` in plant mode).
    pub seats: u32,
    /// While NATS is unreachable: the seats this gateway may have in use on its own.
    pub offline_seats: u32,
    /// How long a seat key outlives its last renewal: a gateway that dies frees its seats within it.
    pub seat_ttl: Dur,
    /// How often the seats this gateway holds are renewed (one compare-and-swap each, in one batch).
    pub renew_interval: Dur,
    /// The most one NATS operation made for a request may take before the gateway counts as offline.
    pub request_timeout: Dur,
    /// Copies JetStream keeps of the plant's buckets (3 on a 3-node cluster), when this gateway is
    /// the first of the plant and makes them.
    pub replicas: u32,
    /// The CA that signed the NATS servers' certificates (PEM); none: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A NATS credentials file (JWT + NKey seed), readable by the daemon only.
    pub creds_file: Option<PathBuf>,
    /// A NATS user name, with `password_file`.
    pub user: Option<String>,
    /// The NATS user's password, alone in a file readable by the daemon only.
    pub password_file: Option<PathBuf>,
}

impl Default for PlantConfig {
    fn default() -> Self {
        PlantConfig {
            nats_url: None,
            name: "plant".into(),
            gateway: None,
            seats: 5,
            offline_seats: 2,
            seat_ttl: Dur::secs(30),
            renew_interval: Dur::secs(10),
            request_timeout: Dur::secs(2),
            replicas: 1,
            ca_file: None,
            creds_file: None,
            user: None,
            password_file: None,
        }
    }
}

impl PlantConfig {
    pub fn enabled(&self) -> bool {
        self.nats_url.is_some()
    }
}

/// A plant or gateway name: it goes into NATS subjects and bucket names.
pub fn check_plant_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("{name:?} must be 1-64 characters of A-Z, a-z, 0-9, - and _"));
    }
    Ok(())
}

/// Checks a NATS URL list: `nats://` or `tls://`, a host, an optional port, for each of them.
pub fn check_nats_url(urls: &str) -> Result<(), String> {
    if urls.len() > 4096 {
        return Err("at most 4096 characters".into());
    }
    for url in urls.split(',').map(str::trim) {
        let bad = |why: &str| format!("{url:?} is not a NATS URL: {why}");
        let rest = url
            .strip_prefix("nats://")
            .or_else(|| url.strip_prefix("tls://"))
            .ok_or_else(|| bad("it must start with nats:// or tls://"))?;
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("give only scheme://host[:port]; credentials come from user/password_file or creds_file"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') => (h.trim_start_matches('[').trim_end_matches(']'), Some(p)),
            _ => (rest, None),
        };
        if host.is_empty() || host.len() > MAX_HOST_LEN {
            return Err(bad("the host is missing or too long"));
        }
        if let Some(p) = port
            && !matches!(p.parse::<u16>(), Ok(n) if n >= 1)
        {
            return Err(bad(&format!("the port {p:?} is not 1-65535")));
        }
    }
    Ok(())
}

/// Bounds of `[directory]`, where the input enters.
pub const MAX_GROUP_ROLES: usize = 1000;
pub const MAX_DIRECTORY_TEXT: usize = 1024;

/// Checks an LDAP URL: `ldap://` or `ldaps://`, a host, an optional port, nothing else.
pub fn check_ldap_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| format!("{url:?} is not a directory URL: {why}");
    let rest = url
        .strip_prefix("ldaps://")
        .or_else(|| url.strip_prefix("ldap://"))
        .ok_or_else(|| bad("it must start with ldap:// or ldaps://"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(bad("give only scheme://host[:port] (the base DNs are their own keys)"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("an IPv6 address opened with [ is not closed"))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return Err(bad("the host is missing or too long"));
    }
    if !host.chars().all(|c| c.is_ascii_alphanumeric() || "-._:".contains(c)) {
        return Err(bad(&format!("{host:?} is not a host name or an address")));
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n >= 1)
    {
        return Err(bad(&format!("the port {p:?} is not 1-65535")));
    }
    Ok(())
}

/// Whether a file readable by group or others holds a secret: refused, as ssh refuses a key.
pub fn check_secret_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is mode {:o}: a password file must be readable by its owner only (chmod 600)",
            path.display(),
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// A config error with its place: `FILE:LINE: key `a.b`: what is wrong`.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Config {
    /// Reads, parses and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and checks config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => locate_span(text, span.start),
                None => (None, None),
            };
            let message = e.message().trim().to_string();
            // For an unknown field the span covers the key itself; name it precisely.
            let key = unknown_field_name(&message).map(|k| qualify(text, span_line_start(text, e.span()), k)).or(key);
            ConfigError { file: file.to_string(), line, key, message }
        })?;
        config.mqtt.url = config.mqtt.broker.to_string();
        config.check().map_err(|(key, message)| ConfigError {
            file: file.to_string(),
            line: find_key_line(text, &key),
            key: Some(key),
            message,
        })?;
        Ok(config)
    }

    /// Semantic checks that serde cannot express. Returns the dotted key at fault and why.
    pub fn check(&self) -> Result<(), (String, String)> {
        self.check_daemon()?;
        self.check_accounts()?;
        self.check_license()?;
        self.check_mqtt()?;
        self.check_directory()?;
        self.check_plant()?;
        if self.retention.audit_max_rows < 100 || self.retention.outbox_max_rows < 100 {
            return err("retention", "audit_max_rows and outbox_max_rows must be at least 100".into());
        }
        Ok(())
    }

    /// `[daemon]` and `[site]`: paths, the socket, request bounds, the site id.
    fn check_daemon(&self) -> Result<(), (String, String)> {
        let paths = [
            ("daemon.state_dir", &self.daemon.state_dir),
            ("daemon.socket", &self.daemon.socket),
            ("accounts.admin_password_file", &self.accounts.admin_password_file),
            ("mqtt.password_file", &self.mqtt.password_file),
            ("mqtt.ca_file", &self.mqtt.ca_file),
            ("mqtt.client_cert_file", &self.mqtt.client_cert_file),
            ("mqtt.client_key_file", &self.mqtt.client_key_file),
            ("directory.bind_password_file", &self.directory.bind_password_file),
            ("directory.ca_file", &self.directory.ca_file),
        ];
        for (key, path) in paths {
            if let Some(path) = path {
                check_path(path).map_err(|m| (key.to_string(), m))?;
            }
        }
        if let Some(socket) = &self.daemon.socket
            && socket.as_os_str().len() > MAX_SOCKET_PATH
        {
            return err(
                "daemon.socket",
                format!(
                    "{} is {} bytes long; a Unix socket path may have at most {MAX_SOCKET_PATH}",
                    socket.display(),
                    socket.as_os_str().len()
                ),
            );
        }
        if let Some(group) = &self.daemon.socket_group
            && (group.is_empty() || group.contains(|c: char| c == ':' || c.is_whitespace() || c.is_control()))
        {
            return err("daemon.socket_group", format!("{group:?} is not a group name"));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.daemon.max_request_bytes) {
            return err("daemon.max_request_bytes", "must be between 1024 and 16777216".into());
        }
        if self.daemon.client_timeout.0 < Duration::from_secs(1) {
            return err("daemon.client_timeout", "must be at least 1s".into());
        }
        if self.daemon.max_clients == 0 {
            return err("daemon.max_clients", "must be at least 1".into());
        }
        let id = &self.site.id;
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return err(
                "site.id",
                format!("{id:?} must be 1-64 characters of A-Z a-z 0-9 - _ . (it is an MQTT topic level)"),
            );
        }
        Ok(())
    }

    /// `[accounts]`: passwords, lockout, tokens, argon2 cost.
    fn check_accounts(&self) -> Result<(), (String, String)> {
        let a = &self.accounts;
        if !(8..=1024).contains(&a.password_min_length) {
            return err("accounts.password_min_length", "must be between 8 and 1024".into());
        }
        if a.lockout_attempts == 0 {
            return err("accounts.lockout_attempts", "must be at least 1".into());
        }
        if a.token_ttl.0 < Duration::from_secs(60) {
            return err("accounts.token_ttl", "must be at least 1m".into());
        }
        if a.argon2.memory_kib < 8 * a.argon2.parallelism.max(1) || a.argon2.memory_kib > 1024 * 1024 {
            return err("accounts.argon2.memory_kib", "must be between 8*parallelism and 1048576".into());
        }
        if !(1..=64).contains(&a.argon2.iterations) {
            return err("accounts.argon2.iterations", "must be between 1 and 64".into());
        }
        if !(1..=16).contains(&a.argon2.parallelism) {
            return err("accounts.argon2.parallelism", "must be between 1 and 16".into());
        }
        Ok(())
    }

    /// `[license]`: seats, reservations, heartbeats.
    fn check_license(&self) -> Result<(), (String, String)> {
        let l = &self.license;
        let reserved: u64 = l.reserved.values().map(|&n| n as u64).sum();
        // In plant mode the pools are cut from the plant's seats, not this gateway's.
        let (seats, seats_key) =
            if self.plant.enabled() { (self.plant.seats, "plant.seats") } else { (l.seats, "license.seats") };
        if reserved > seats as u64 {
            return err("license.reserved", format!("reserves {reserved} seats but {seats_key} is {seats}"));
        }
        if l.heartbeat_timeout.0 < Duration::from_secs(2) {
            return err("license.heartbeat_timeout", "must be at least 2s".into());
        }
        if l.persist_interval.0 < Duration::from_secs(1) {
            return err("license.persist_interval", "must be at least 1s".into());
        }
        if l.types.len() > MAX_CLIENT_TYPES {
            return err("license.types", format!("names {} client types; at most {MAX_CLIENT_TYPES}", l.types.len()));
        }
        let mut seen: Vec<String> = Vec::with_capacity(l.types.len());
        for (t, &n) in &l.types {
            let key = if t.is_empty() { "license.types".to_string() } else { format!("license.types.{t}") };
            if t.is_empty() || t.len() > crate::text::MAX_FIELD || t.chars().any(char::is_control) {
                return err(&key, format!("a client type is one line of 1-{} characters", crate::text::MAX_FIELD));
            }
            if seen.iter().any(|s| s.eq_ignore_ascii_case(t)) {
                return err(&key, "named twice (client types are compared without case)".into());
            }
            seen.push(t.clone());
            if n > l.seats {
                return err(&key, format!("allows {n} seats but license.seats is {}", l.seats));
            }
        }
        Ok(())
    }

    /// `[mqtt]`: QoS, timings, the request intake bounds, TLS files.
    fn check_mqtt(&self) -> Result<(), (String, String)> {
        let m = &self.mqtt;
        if m.qos > 2 {
            return err("mqtt.qos", "must be 0, 1 or 2".into());
        }
        if m.keep_alive.0 < Duration::from_secs(5) {
            return err("mqtt.keep_alive", "must be at least 5s".into());
        }
        if m.reconnect_max.0 < Duration::from_secs(1) {
            return err("mqtt.reconnect_max", "must be at least 1s".into());
        }
        if m.rpc_rate == 0 || m.rpc_burst == 0 {
            return err("mqtt.rpc_rate", "rpc_rate and rpc_burst must be at least 1".into());
        }
        if m.rpc_max_in_flight == 0 || m.rpc_max_in_flight > 100_000 {
            return err("mqtt.rpc_max_in_flight", "must be between 1 and 100000".into());
        }
        if m.rpc_max_in_flight_per_client == 0 || m.rpc_max_in_flight_per_client > m.rpc_max_in_flight {
            return err("mqtt.rpc_max_in_flight_per_client", "must be between 1 and mqtt.rpc_max_in_flight".into());
        }
        if m.rpc_max_bytes_in_flight < 64 * 1024 {
            return err("mqtt.rpc_max_bytes_in_flight", "must be at least 65536".into());
        }
        if m.rpc_max_large_bytes_in_flight == 0 || m.rpc_max_large_bytes_in_flight > m.rpc_max_bytes_in_flight {
            return err(
                "mqtt.rpc_max_large_bytes_in_flight",
                "must be between 1 and mqtt.rpc_max_bytes_in_flight (small requests need the rest)".into(),
            );
        }
        if !(1..=64).contains(&m.rpc_password_checks) {
            return err("mqtt.rpc_password_checks", "must be between 1 and 64".into());
        }
        if m.rpc_password_waiters > 10_000 {
            return err("mqtt.rpc_password_waiters", "must be at most 10000".into());
        }
        if m.client_cert_file.is_some() != m.client_key_file.is_some() {
            return err("mqtt.client_cert_file", "client_cert_file and client_key_file go together".into());
        }
        Ok(())
    }
}

impl Config {
    /// `[directory]`: the URL and TLS, the service account, the filters, the timings, the mapping's
    /// shape. Whether the mapped roles exist is known only with the database: checked at start and at
    /// each sync, reported in the log and `status`.
    fn check_directory(&self) -> Result<(), (String, String)> {
        let d = &self.directory;
        let Some(url) = &d.url else { return Ok(()) };
        check_ldap_url(url).map_err(|m| ("directory.url".to_string(), m))?;
        if d.start_tls && url.starts_with("ldaps://") {
            return err("directory.start_tls", "ldaps:// is TLS already; StartTLS goes with ldap://".into());
        }
        if d.bind_dn.is_some() != d.bind_password_file.is_some() {
            return err("directory.bind_dn", "bind_dn and bind_password_file go together".into());
        }
        if let Some(path) = &d.bind_password_file {
            check_secret_file(path).map_err(|m| ("directory.bind_password_file".to_string(), m))?;
        }
        if let Some(path) = &d.ca_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ("directory.ca_file".to_string(), format!("{}: cannot read: {e}", path.display())))?;
            if !text.contains("-----BEGIN CERTIFICATE-----") {
                return err("directory.ca_file", format!("{}: no PEM certificate in it", path.display()));
            }
        }
        let texts = [
            ("directory.bind_dn", d.bind_dn.as_deref().unwrap_or("")),
            ("directory.user_base", &d.user_base),
            ("directory.user_filter", &d.user_filter),
            ("directory.group_attribute", &d.group_attribute),
            ("directory.group_base", d.group_base.as_deref().unwrap_or("")),
            ("directory.group_filter", &d.group_filter),
        ];
        for (key, text) in texts {
            if text.len() > MAX_DIRECTORY_TEXT || text.chars().any(char::is_control) {
                return err(key, format!("must be at most {MAX_DIRECTORY_TEXT} bytes without control characters"));
            }
        }
        if d.user_base.trim().is_empty() {
            return err("directory.user_base", "is required: the DN people are searched below".into());
        }
        check_filter(&d.user_filter, "{user}").map_err(|m| ("directory.user_filter".to_string(), m))?;
        if d.group_base.is_some() {
            check_filter(&d.group_filter, "{dn}").map_err(|m| ("directory.group_filter".to_string(), m))?;
        } else if d.group_attribute.is_empty()
            || !d.group_attribute.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
        {
            return err("directory.group_attribute", format!("{:?} is not an attribute name", d.group_attribute));
        }
        if d.group_roles.len() > MAX_GROUP_ROLES {
            return err("directory.group_roles", format!("at most {MAX_GROUP_ROLES} groups"));
        }
        for (dn, roles) in &d.group_roles {
            if dn.trim().is_empty() || !dn.contains('=') || dn.len() > MAX_DIRECTORY_TEXT {
                return err("directory.group_roles", format!("{dn:?} is not a group DN"));
            }
            if roles.is_empty() || roles.len() > 64 {
                return err("directory.group_roles", format!("{dn:?} must map to 1-64 role names"));
            }
            if let Some(r) = roles.iter().find(|r| r.is_empty() || r.len() > 64 || r.chars().any(char::is_control)) {
                return err("directory.group_roles", format!("{r:?} (for {dn:?}) is not a role name"));
            }
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&d.timeout.0) {
            return err("directory.timeout", "must be between 100ms and 60s".into());
        }
        if d.sync_interval.0 < Duration::from_secs(1) {
            return err("directory.sync_interval", "must be at least 1s".into());
        }
        if d.cache_ttl.0 > Duration::from_secs(365 * 86_400) {
            return err("directory.cache_ttl", "must be at most 365d (0s: no offline logins)".into());
        }
        Ok(())
    }
}

impl Config {
    /// `[plant]`: the URL, the names, the seat figures and timings, the credential files.
    fn check_plant(&self) -> Result<(), (String, String)> {
        let p = &self.plant;
        let Some(url) = &p.nats_url else { return Ok(()) };
        check_nats_url(url).map_err(|m| ("plant.nats_url".to_string(), m))?;
        check_plant_name(&p.name).map_err(|m| ("plant.name".to_string(), m))?;
        match &p.gateway {
            Some(g) => check_plant_name(g).map_err(|m| ("plant.gateway".to_string(), m))?,
            None => check_plant_name(&self.site.id).map_err(|m| {
                ("plant.gateway".to_string(), format!("is not set and site.id cannot stand for it: {m}"))
            })?,
        }
        if !(1..=100_000).contains(&p.seats) {
            return err("plant.seats", "must be between 1 and 100000".into());
        }
        if p.offline_seats > p.seats {
            return err("plant.offline_seats", format!("must be at most plant.seats ({})", p.seats));
        }
        if !(Duration::from_secs(2)..=Duration::from_secs(3600)).contains(&p.seat_ttl.0) {
            return err("plant.seat_ttl", "must be between 2s and 1h".into());
        }
        if p.renew_interval.0 < Duration::from_millis(200) || p.renew_interval.0 * 2 > p.seat_ttl.0 {
            return err("plant.renew_interval", "must be at least 200ms and at most half of plant.seat_ttl".into());
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(30)).contains(&p.request_timeout.0) {
            return err("plant.request_timeout", "must be between 100ms and 30s".into());
        }
        if !(1..=5).contains(&p.replicas) {
            return err("plant.replicas", "must be between 1 and 5".into());
        }
        if p.user.is_some() != p.password_file.is_some() {
            return err("plant.user", "user and password_file go together".into());
        }
        if p.creds_file.is_some() && p.user.is_some() {
            return err("plant.creds_file", "give creds_file or user/password_file, not both".into());
        }
        if let Some(u) = &p.user
            && (u.is_empty() || u.len() > 256 || u.chars().any(char::is_control))
        {
            return err("plant.user", "must be 1-256 characters without control characters".into());
        }
        for (key, path) in [("plant.password_file", &p.password_file), ("plant.creds_file", &p.creds_file)] {
            if let Some(path) = path {
                check_secret_file(path).map_err(|m| (key.to_string(), m))?;
            }
        }
        if let Some(path) = &p.ca_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ("plant.ca_file".to_string(), format!("{}: cannot read: {e}", path.display())))?;
            if !text.contains("-----BEGIN CERTIFICATE-----") {
                return err("plant.ca_file", format!("{}: no PEM certificate in it", path.display()));
            }
        }
        for role in self.license.reserved.keys() {
            if role.len() > 64 {
                return err("license.reserved", format!("{role:?}: a role name is at most 64 characters"));
            }
        }
        Ok(())
    }

    /// This gateway's name in the plant.
    pub fn gateway_name(&self) -> &str {
        self.plant.gateway.as_deref().unwrap_or(&self.site.id)
    }
}

/// An LDAP filter template: parenthesized, balanced, holding `placeholder`.
fn check_filter(filter: &str, placeholder: &str) -> Result<(), String> {
    if !filter.contains(placeholder) {
        return Err(format!("{filter:?} must contain {placeholder}, where the value goes (escaped per RFC 4515)"));
    }
    let mut depth = 0i32;
    for c in filter.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    if !filter.starts_with('(') || depth != 0 {
        return Err(format!("{filter:?} is not an LDAP filter: it must be in balanced parentheses"));
    }
    Ok(())
}

/// A refused config value: the dotted key and why.
fn err(key: &str, why: String) -> Result<(), (String, String)> {
    Err((key.to_string(), why))
}

/// The longest path a Unix socket can be bound at (`sun_path` is 108 bytes with its final NUL).
const MAX_SOCKET_PATH: usize = 107;

/// What every configured path must be for the daemon to use it: not empty, no NUL byte (neither can
/// name a file). A relative path is taken from the daemon's working directory (`/` under systemd).
fn check_path(path: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err("is empty; give a path, or leave the key out for the default".into());
    }
    if bytes.contains(&0) {
        return Err(format!("{:?} contains a NUL character", path.display().to_string()));
    }
    Ok(())
}

fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn span_line_start(text: &str, span: Option<std::ops::Range<usize>>) -> usize {
    span.map(|s| s.start.min(text.len())).unwrap_or(0)
}

/// The line number (1-based) of a byte offset and the dotted key written on that line, if any.
fn locate_span(text: &str, offset: usize) -> (Option<usize>, Option<String>) {
    let offset = offset.min(text.len());
    let line_no = text[..offset].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let key = line.split_once('=').map(|(k, _)| qualify(text, offset, k.trim()));
    (Some(line_no), key)
}

/// Prefixes `key` with the `[table]` header in force at `offset`.
fn qualify(text: &str, offset: usize, key: &str) -> String {
    let before = &text[..offset.min(text.len())];
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    }
}

/// Finds the line on which a dotted key (`license.seats`) is set, for semantic errors.
fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    let (table, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    let mut table_line = None;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with('[') {
            current = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            if current == dotted {
                table_line = Some(i + 1);
            }
            continue;
        }
        if current == table && l.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            return Some(i + 1);
        }
    }
    table_line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_urls_and_filters() {
        for ok in ["ldap://dc1", "ldaps://dc1.plant.local:636", "ldap://10.0.0.5:389/", "ldaps://[::1]:636"] {
            assert!(check_ldap_url(ok).is_ok(), "{ok}");
        }
        for bad in
            ["http://dc1", "ldap://", "ldap://dc1/dc=x", "ldap://u@dc1", "ldap://dc1:0", "ldap://dc1:x", "ldapi:///"]
        {
            assert!(check_ldap_url(bad).is_err(), "{bad}");
        }
        assert!(check_filter("(uid={user})", "{user}").is_ok());
        assert!(check_filter("(&(objectClass=user)(sAMAccountName={user}))", "{user}").is_ok());
        assert!(check_filter("(uid=alice)", "{user}").unwrap_err().contains("{user}"));
        assert!(check_filter("uid={user}", "{user}").is_err());
        assert!(check_filter("(&(uid={user})", "{user}").is_err());
        assert!(check_filter("(uid={user}))(", "{user}").is_err());
    }

    #[test]
    fn directory_is_off_without_url_and_checked_with_one() {
        let c = Config::parse("", "t").unwrap();
        assert!(!c.directory.enabled());
        let e = Config::parse("[directory]\nurl = \"ldaps://dc1\"\n", "t").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("directory.user_base"));
        let c = Config::parse("[directory]\nurl = \"ldaps://dc1\"\nuser_base = \"dc=x\"\n", "t").unwrap();
        assert!(c.directory.enabled() && c.directory.tls());
        let e = Config::parse(
            "[directory]\nurl = \"ldap://dc1\"\nuser_base = \"dc=x\"\ngroup_base = \"ou=g,dc=x\"\ngroup_filter = \"(member=x)\"\n",
            "t",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("directory.group_filter"));
        let e = Config::parse("[directory]\nurl = \"ldap://dc1\"\nuser_base = \"dc=x\"\nbind_dn = \"cn=s\"\n", "t")
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("directory.bind_dn"));
    }

    #[test]
    fn empty_config_is_the_embedded_defaults() {
        let c = Config::parse("", "x.toml").unwrap();
        assert_eq!(c.license.seats, 5);
        assert_eq!(c.site.id, "default");
        assert!(c.mqtt.enabled);
        assert_eq!(c.license.heartbeat_timeout, Dur::secs(30));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("12").unwrap(), Duration::from_secs(12));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = Config::parse("[license]\nseats = 3\nseets = 4\n", "g.toml").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.key.as_deref(), Some("license.seets"), "{e}");
        assert!(e.to_string().starts_with("g.toml:3: key `license.seets`"), "{e}");
    }

    #[test]
    fn wrong_type_names_line_and_key() {
        let e = Config::parse("[site]\nid = \"a\"\n\n[license]\nseats = \"many\"\n", "g.toml").unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert_eq!(e.key.as_deref(), Some("license.seats"), "{e}");
    }

    #[test]
    fn semantic_error_names_line_and_key() {
        let e = Config::parse("[license]\nseats = 1\nreserved = { supervisor = 2 }\n", "g.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("license.reserved"));
        assert_eq!(e.line, Some(3), "{e}");
        let e = Config::parse("[license]\nseats = 4\ntypes = { vision = 5 }\n", "g.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("license.types.vision"), "{e}");
        let e = Config::parse("[license]\ntypes = { Vision = 1, vision = 2 }\n", "g.toml").unwrap_err();
        assert!(e.key.as_deref().is_some_and(|k| k.starts_with("license.types.")), "{e}");
        let e = Config::parse("[license]\ntypes = { \"\" = 1 }\n", "g.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("license.types"), "{e}");
        let c = Config::parse(
            "[license]\nseats = 8\nread_only_seats = 2\ntypes = { vision = 3, perspective = 5 }\n",
            "g.toml",
        )
        .unwrap();
        assert_eq!((c.license.read_only_seats, c.license.types.len()), (2, 2));
        let e = Config::parse("[site]\nid = \"a/b\"\n", "g.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("site.id"));
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn mqtt_intake_bounds_are_checked() {
        let e =
            Config::parse("[mqtt]\nrpc_max_in_flight = 4\nrpc_max_in_flight_per_client = 5\n", "g.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("mqtt.rpc_max_in_flight_per_client"), "{e}");
        let e = Config::parse("[mqtt]\nrpc_max_large_bytes_in_flight = 99999999\n", "g.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("mqtt.rpc_max_large_bytes_in_flight"), "{e}");
        let e = Config::parse("[mqtt]\nrpc_password_checks = 0\n", "g.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("mqtt.rpc_password_checks"), "{e}");
    }

    #[test]
    fn broker_urls_good_ones_parse_to_what_the_bridge_uses() {
        let good = [
            ("mqtt://127.0.0.1:1883", false, "127.0.0.1", 1883, "mqtt://127.0.0.1:1883"),
            ("mqtt://broker.plant", false, "broker.plant", 1883, "mqtt://broker.plant:1883"),
            ("mqtts://broker.plant", true, "broker.plant", 8883, "mqtts://broker.plant:8883"),
            ("mqtts://broker.plant:9883", true, "broker.plant", 9883, "mqtts://broker.plant:9883"),
            ("mqtt://host/", false, "host", 1883, "mqtt://host:1883"),
            ("mqtt://my_broker-1.local:1", false, "my_broker-1.local", 1, "mqtt://my_broker-1.local:1"),
            ("mqtt://h:65535", false, "h", 65535, "mqtt://h:65535"),
            ("mqtt://[::1]:1884/", false, "::1", 1884, "mqtt://[::1]:1884"),
            ("mqtt://[::1]", false, "::1", 1883, "mqtt://[::1]:1883"),
            ("mqtts://[fd00::17]", true, "fd00::17", 8883, "mqtts://[fd00::17]:8883"),
        ];
        for (url, tls, host, port, shown) in good {
            let b = BrokerUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((b.tls(), b.host(), b.port()), (tls, host, port), "{url}");
            assert_eq!(b.to_string(), shown, "{url}");
            assert_eq!(BrokerUrl::parse(shown), Ok(b), "{url}: its display parses back to itself");
        }
    }

    #[test]
    fn broker_urls_bad_ones_are_refused_saying_why() {
        let bad = [
            ("tcp://x", "must start with mqtt://"),
            ("127.0.0.1:1883", "must start with mqtt://"),
            ("MQTT://x", "must start with mqtt://"),
            ("mqtt://", "host is missing"),
            ("mqtt://:1883", "host is missing"),
            ("mqtt://host:99999", "out of range"),
            ("mqtt://host:65536", "out of range"),
            ("mqtt://host:0", "out of range"),
            ("mqtt://host:", "not a number"),
            ("mqtt://host:port", "not a number"),
            ("mqtt://host:+1883", "not a number"),
            ("mqtt://user@host", "user info"),
            ("mqtt://u:p@host:1883", "user info"),
            ("mqtt://host/path", "a path"),
            ("mqtt://host:1883//", "a path"),
            ("mqtt://host?x=1", "a query"),
            ("mqtt://host#top", "a fragment"),
            ("mqtt://::1", "in brackets"),
            ("mqtt://[::1", "not closed"),
            ("mqtt://[::1]1883", "expected :port"),
            ("mqtt://[plant]:1883", "not an IPv6 address"),
            ("mqtt://my host", "not a host name"),
            ("mqtt://höst", "not a host name"),
        ];
        for (url, why) in bad {
            let e = BrokerUrl::parse(url).err().unwrap_or_else(|| panic!("{url} was accepted"));
            assert!(e.contains(why), "{url}: {e:?} does not say {why:?}");
            assert!(e.contains(&format!("{url:?}")), "{url}: {e:?} does not quote the URL");
        }
    }

    #[test]
    fn a_bad_broker_url_names_line_and_key() {
        let e = Config::parse("[site]\nid = \"a\"\n\n[mqtt]\nurl = \"mqtt://host:99999\"\n", "g.toml").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("mqtt.url")), "{e}");
        assert!(e.message.contains("out of range"), "{e}");
        let c = Config::parse("[mqtt]\nurl = \"mqtts://broker.plant\"\n", "g.toml").unwrap();
        assert_eq!(c.mqtt.url, "mqtts://broker.plant:8883", "shown as the bridge uses it");
    }

    #[test]
    fn paths_and_group_a_daemon_could_not_use_are_refused() {
        let long = format!("/run/{}/gatewarden.sock", "x".repeat(100));
        let cases = [
            ("[daemon]\nstate_dir = \"\"\n".to_string(), "daemon.state_dir", "empty"),
            ("[mqtt]\nca_file = \"/etc/a\\u0000b\"\n".to_string(), "mqtt.ca_file", "NUL"),
            (format!("[daemon]\nsocket = {long:?}\n"), "daemon.socket", "at most 107"),
            ("[daemon]\nsocket_group = \"\"\n".to_string(), "daemon.socket_group", "not a group name"),
            ("[daemon]\nsocket_group = \"plant ops\"\n".to_string(), "daemon.socket_group", "not a group name"),
        ];
        for (text, key, why) in cases {
            let e = Config::parse(&text, "g.toml").unwrap_err();
            assert_eq!((e.line, e.key.as_deref()), (Some(2), Some(key)), "{text:?}: {e}");
            assert!(e.message.contains(why), "{text:?}: {e}");
        }
        let ok = "[daemon]\nstate_dir = \"state\"\nsocket = \"/run/gatewarden/gatewarden.sock\"\nsocket_group = \"gatewarden\"\n";
        assert!(Config::parse(ok, "g.toml").is_ok());
    }

    #[test]
    fn a_bad_log_level_names_line_and_key() {
        let e = Config::parse("[daemon]\nlog_level = \"debgu\"\n", "g.toml").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("daemon.log_level")), "{e}");
        assert!(e.message.contains("not a log level"), "{e}");
    }

    #[test]
    fn bad_duration_is_reported() {
        let e = Config::parse("[license]\nheartbeat_timeout = \"soon\"\n", "g.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("license.heartbeat_timeout"), "{e}");
        assert!(e.message.contains("duration"), "{e}");
    }

    #[test]
    fn plant_keys_are_checked_and_named() {
        let bad = |t: &str, key: &str| {
            let e = Config::parse(t, "g.toml").unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{t}: {e}");
        };
        let base = "[plant]\nnats_url = \"nats://127.0.0.1:4222\"\n";
        let ok = Config::parse(base, "g.toml").unwrap();
        assert!(ok.plant.enabled());
        assert_eq!((ok.plant.seats, ok.plant.offline_seats, ok.gateway_name()), (5, 2, "default"));
        assert!(!Config::default().plant.enabled(), "off unless nats_url is set");
        Config::parse("[plant]\nnats_url = \"tls://a.plant:4222, tls://b.plant\"\n", "g.toml").unwrap();
        bad("[plant]\nnats_url = \"http://x\"\n", "plant.nats_url");
        bad("[plant]\nnats_url = \"nats://u:p@x\"\n", "plant.nats_url");
        bad("[plant]\nnats_url = \"nats://x:0\"\n", "plant.nats_url");
        bad(&format!("{base}name = \"a.b\"\n"), "plant.name");
        bad(&format!("{base}gateway = \"\"\n"), "plant.gateway");
        bad(&format!("{base}seats = 0\n"), "plant.seats");
        bad(&format!("{base}seats = 3\noffline_seats = 4\n"), "plant.offline_seats");
        bad(&format!("{base}seat_ttl = \"1s\"\n"), "plant.seat_ttl");
        bad(&format!("{base}seat_ttl = \"10s\"\nrenew_interval = \"6s\"\n"), "plant.renew_interval");
        bad(&format!("{base}request_timeout = \"1m\"\n"), "plant.request_timeout");
        bad(&format!("{base}replicas = 0\n"), "plant.replicas");
        bad(&format!("{base}user = \"gw\"\n"), "plant.user");
        bad(&format!("{base}password_file = \"/nonexistent/x\"\nuser = \"gw\"\n"), "plant.password_file");
        bad(&format!("{base}ca_file = \"/nonexistent/ca.pem\"\n"), "plant.ca_file");
        bad(&format!("{base}unknown = 1\n"), "plant.unknown");
        // Reservations are cut from the plant's seats in plant mode, from license.seats otherwise.
        bad(&format!("{base}seats = 2\n[license]\nseats = 9\nreserved = {{ supervisor = 3 }}\n"), "license.reserved");
        Config::parse(&format!("{base}seats = 9\n[license]\nseats = 2\nreserved = {{ supervisor = 3 }}\n"), "g.toml")
            .unwrap();
        // site.id stands for the gateway name only when it can.
        bad(&format!("{base}[site]\nid = \"line.1\"\n"), "plant.gateway");
    }
}
