//! The plant directory (SPEC "Plant directory"): people verified by the plant's LDAP or Active
//! Directory, their groups mapped to local roles. This module is the client: it connects (ldaps://,
//! or ldap:// with StartTLS, rustls with the ring provider and `directory.ca_file`), binds as the
//! service account, finds a person by `user_filter`, reads the person's groups (an attribute, or a
//! group search; nested groups by AD's LDAP_MATCHING_RULE_IN_CHAIN, else walked), and binds as the
//! person to verify a password. What the daemon makes of it (accounts, roles, the offline cache,
//! the sync) is in `api::directory`.
//!
//! Must never happen:
//! - **A login name widening a search**: the name goes into the filter escaped per RFC 4515
//!   ([`ldap3::ldap_escape`]), so `*)(uid=*` is searched for literally.
//! - **An empty password accepted**: a simple bind with an empty password is an anonymous bind that
//!   most servers accept (RFC 4513 5.1.2); it is refused before the directory is asked.
//! - **A directory that hangs holding a login longer than `directory.timeout`**: the whole
//!   conversation runs under one deadline, and each operation under it.
//! - **Unbounded answers**: at most [`MAX_GROUPS`] groups a person, [`MAX_DEPTH`] levels of nesting,
//!   two entries for a person search, [`MAX_SYNC`] people a sync.
//! - **The password stored or logged**: it goes to the bind and nowhere else.

use crate::config::DirectoryConfig;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions, ldap_escape};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most groups one person may be found in (direct and nested together).
pub const MAX_GROUPS: usize = 1000;
/// Most levels of groups inside groups walked.
pub const MAX_DEPTH: usize = 8;
/// Most directory people one sync looks at.
pub const MAX_SYNC: usize = 100_000;
/// LDAP_MATCHING_RULE_IN_CHAIN: AD's transitive membership match.
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
/// LDAP_CAP_ACTIVE_DIRECTORY_OID in the root DSE's `supportedCapabilities`.
const AD_CAPABILITY: &str = "1.2.840.113556.1.4.800";
/// AD's `userAccountControl` bit ACCOUNTDISABLE.
const ACCOUNT_DISABLE: i64 = 2;

/// Why the directory did not answer yes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The person is not there, the password is wrong or empty, or the person is disabled: one answer
    /// to the client for all (the reason goes to the audit trail only).
    #[error("{0}")]
    Rejected(&'static str),
    /// No answer in time, or no connection: the offline cache may answer.
    #[error("directory unreachable: {0}")]
    Unreachable(String),
    /// The directory answered but our setup is wrong (service bind refused, bad base, TLS refused):
    /// a technician must act. The cache still answers, so a plant does not stop on a typo.
    #[error("directory setup: {0}")]
    Setup(String),
}

/// A person as the directory describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub dn: String,
    /// Group DNs, direct and (with `nested_groups`) inherited, sorted, at most [`MAX_GROUPS`].
    pub groups: Vec<String>,
    /// AD `userAccountControl` bit 2.
    pub disabled: bool,
    pub display_name: Option<String>,
}

/// How long each step took, for `directory test` and the figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Timings {
    pub connect_ms: u64,
    pub service_bind_ms: u64,
    pub search_ms: u64,
    pub groups_ms: u64,
    pub user_bind_ms: u64,
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Reads the service account's password (`bind_password_file`), trimmed of its line end.
fn bind_password(cfg: &DirectoryConfig) -> Result<Option<String>, Failure> {
    let Some(path) = &cfg.bind_password_file else { return Ok(None) };
    crate::config::check_secret_file(path).map_err(Failure::Setup)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Setup(format!("directory.bind_password_file {}: {e}", path.display())))?;
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
}

/// The TLS client config: the CA of `ca_file`, or the system's roots.
fn tls_config(cfg: &DirectoryConfig) -> Result<Arc<rustls::ClientConfig>, Failure> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| Failure::Setup(format!("directory.ca_file {}: {e}", path.display())))?;
            for cert in certs {
                roots.add(cert).map_err(|e| Failure::Setup(format!("directory.ca_file {}: {e}", path.display())))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    if roots.is_empty() {
        return Err(Failure::Setup("no CA certificate to verify the directory with (set directory.ca_file)".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::Setup(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What an ldap3 error means here.
fn classify(what: &str, e: LdapError) -> Failure {
    match e {
        LdapError::LdapResult { result } => match result.rc {
            // invalidCredentials, inappropriateAuthentication, unwillingToPerform, strongAuthRequired
            49 | 48 | 53 | 8 => {
                Failure::Setup(format!("{what}: refused by the directory (rc={}: {})", result.rc, result.text))
            }
            32 => Failure::Setup(format!("{what}: no such object (rc=32): check the base DN")),
            // busy, unavailable
            51 | 52 => Failure::Unreachable(format!("{what}: the directory is busy or unavailable (rc={})", result.rc)),
            rc => Failure::Setup(format!("{what}: rc={rc}: {}", result.text)),
        },
        LdapError::Timeout { .. } => Failure::Unreachable(format!("{what}: no answer in time")),
        e @ (LdapError::Io { .. }
        | LdapError::EndOfStream
        | LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }) => Failure::Unreachable(format!("{what}: {e}")),
        e => Failure::Setup(format!("{what}: {e}")),
    }
}

/// An open conversation with the directory, bound as the service account.
pub struct Conn {
    ldap: Ldap,
    cfg: DirectoryConfig,
    timeout: Duration,
    /// Asked once a connection: `Some(base)` when the server matches LDAP_MATCHING_RULE_IN_CHAIN (an
    /// Active Directory), with the base to search groups under.
    in_chain: Option<Option<String>>,
}

/// Connects and binds as the service account (or stays anonymous without one).
pub async fn connect(cfg: &DirectoryConfig, t: &mut Timings) -> Result<Conn, Failure> {
    let url = cfg.url.as_deref().ok_or_else(|| Failure::Setup("directory.url is not set".into()))?;
    let timeout = cfg.timeout.0;
    let mut settings = LdapConnSettings::new().set_conn_timeout(timeout).set_starttls(cfg.start_tls);
    if cfg.tls() {
        settings = settings.set_config(tls_config(cfg)?);
    }
    let started = Instant::now();
    let (conn, ldap) = LdapConnAsync::with_settings(settings, url).await.map_err(|e| classify("connect", e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!("directory connection ended: {e}");
        }
    });
    t.connect_ms = ms(started);
    let mut c = Conn { ldap, cfg: cfg.clone(), timeout, in_chain: None };
    let started = Instant::now();
    if let (Some(dn), Some(pw)) = (&cfg.bind_dn, bind_password(cfg)?) {
        c.ldap
            .with_timeout(timeout)
            .simple_bind(dn, &pw)
            .await
            .and_then(|r| r.success())
            .map_err(|e| classify("service bind", e))?;
    }
    t.service_bind_ms = ms(started);
    Ok(c)
}

impl Conn {
    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        limit: usize,
    ) -> Result<Vec<SearchEntry>, Failure> {
        let (entries, res) = self
            .ldap
            .with_timeout(self.timeout)
            .with_search_options(SearchOptions::new().sizelimit(limit as i32))
            .search(base, scope, filter, attrs.to_vec())
            .await
            .map_err(|e| classify("search", e))?
            .non_error()
            .map_err(|e| classify("search", e))?;
        // rc 4: sizeLimitExceeded, which non_error lets through with what was found.
        if res.rc == 4 {
            tracing::warn!(base, "a directory search found more than {limit} entries; the rest are left out");
        }
        Ok(entries.into_iter().take(limit).map(SearchEntry::construct).collect())
    }

    /// Finds the person `name` logs in as. `None`: no such person.
    pub async fn find_person(&mut self, name: &str, t: &mut Timings) -> Result<Option<Person>, Failure> {
        let started = Instant::now();
        let filter = self.cfg.user_filter.replace("{user}", &ldap_escape(name));
        let (base, attr) = (self.cfg.user_base.clone(), self.cfg.group_attribute.clone());
        let attrs = [attr.as_str(), "userAccountControl", "displayName"];
        let found = self.search(&base, Scope::Subtree, &filter, &attrs, 2).await?;
        t.search_ms = ms(started);
        let entry = match found.len() {
            0 => return Ok(None),
            1 => found.into_iter().next().ok_or_else(|| Failure::Setup("search".into()))?,
            _ => return Err(Failure::Setup(format!("{filter} finds more than one person: make user_filter unique"))),
        };
        let started = Instant::now();
        let groups = self.groups_of(&entry).await?;
        t.groups_ms = ms(started);
        let first = |a: &str| entry.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(a)).and_then(|(_, v)| v.first());
        let disabled =
            first("userAccountControl").and_then(|v| v.parse::<i64>().ok()).is_some_and(|f| f & ACCOUNT_DISABLE != 0);
        let display_name = first("displayName").map(|s| s.chars().take(200).collect());
        Ok(Some(Person { dn: entry.dn, groups, disabled, display_name }))
    }

    /// The values of `attr` in an entry (attribute names compare without case).
    fn values<'a>(entry: &'a SearchEntry, attr: &str) -> impl Iterator<Item = &'a String> {
        entry.attrs.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(attr)).flat_map(|(_, v)| v.iter())
    }

    /// The person's groups: direct ones from the attribute or the group search, then nested ones.
    async fn groups_of(&mut self, person: &SearchEntry) -> Result<Vec<String>, Failure> {
        let mut all = BTreeSet::new();
        if self.cfg.nested_groups
            && let Some(base) = self.in_chain().await?
        {
            let filter = format!("(member:{IN_CHAIN}:={})", ldap_escape(person.dn.as_str()));
            for g in self.search(&base, Scope::Subtree, &filter, &["1.1"], MAX_GROUPS).await? {
                all.insert(g.dn);
            }
            return Ok(all.into_iter().collect());
        }
        let mut frontier: Vec<String> = match &self.cfg.group_base {
            Some(_) => self.parents(&person.dn).await?,
            None => Self::values(person, &self.cfg.group_attribute).take(MAX_GROUPS).cloned().collect(),
        };
        for depth in 0..=MAX_DEPTH {
            let fresh: Vec<String> = frontier.into_iter().filter(|g| all.insert(g.clone())).collect();
            if fresh.is_empty() || !self.cfg.nested_groups || depth == MAX_DEPTH || all.len() >= MAX_GROUPS {
                break;
            }
            let mut next = Vec::new();
            for g in &fresh {
                next.extend(self.parents(g).await?);
                if all.len() + next.len() >= MAX_GROUPS {
                    break;
                }
            }
            frontier = next;
        }
        Ok(all.into_iter().take(MAX_GROUPS).collect())
    }

    /// The groups an entry (a person or a group) is a direct member of.
    async fn parents(&mut self, dn: &str) -> Result<Vec<String>, Failure> {
        match self.cfg.group_base.clone() {
            Some(base) => {
                let filter = self.cfg.group_filter.replace("{dn}", &ldap_escape(dn));
                Ok(self
                    .search(&base, Scope::Subtree, &filter, &["1.1"], MAX_GROUPS)
                    .await?
                    .into_iter()
                    .map(|e| e.dn)
                    .collect())
            }
            None => {
                let attr = self.cfg.group_attribute.clone();
                let found = match self.search(dn, Scope::Base, "(objectClass=*)", &[attr.as_str()], 1).await {
                    Ok(found) => found,
                    // A group DN we may not read, or one gone: no parents rather than no login.
                    Err(Failure::Setup(_)) => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                };
                Ok(found.iter().flat_map(|e| Self::values(e, &attr)).take(MAX_GROUPS).cloned().collect())
            }
        }
    }

    /// Whether the server is an Active Directory (it then matches LDAP_MATCHING_RULE_IN_CHAIN):
    /// the base to search groups under, asked once a connection.
    async fn in_chain(&mut self) -> Result<Option<String>, Failure> {
        if let Some(known) = &self.in_chain {
            return Ok(known.clone());
        }
        let attrs = ["supportedCapabilities", "defaultNamingContext"];
        let root = match self.search("", Scope::Base, "(objectClass=*)", &attrs, 1).await {
            Ok(root) => root,
            // A root DSE we may not read: not known as AD, so the groups are walked.
            Err(Failure::Setup(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let base =
            root.first().filter(|dse| Self::values(dse, "supportedCapabilities").any(|c| c == AD_CAPABILITY)).and_then(
                |dse| self.cfg.group_base.clone().or_else(|| Self::values(dse, "defaultNamingContext").next().cloned()),
            );
        self.in_chain = Some(base.clone());
        Ok(base)
    }

    /// Binds as `dn` with `password`: whether the directory accepts it. The connection is then the
    /// person's: do it last.
    pub async fn verify(&mut self, dn: &str, password: &str, t: &mut Timings) -> Result<bool, Failure> {
        if password.is_empty() {
            return Ok(false);
        }
        let started = Instant::now();
        let r = self.ldap.with_timeout(self.timeout).simple_bind(dn, password).await;
        t.user_bind_ms = ms(started);
        match r {
            Ok(r) if r.rc == 0 => Ok(true),
            Ok(r) if r.rc == 49 => Ok(false),
            Ok(r) => Err(Failure::Setup(format!("bind as the person: rc={}: {}", r.rc, r.text))),
            Err(e) => Err(classify("bind as the person", e)),
        }
    }

    /// Whether an entry exists (a `group_roles` DN, checked at each sync).
    pub async fn exists(&mut self, dn: &str) -> Result<bool, Failure> {
        match self.search(dn, Scope::Base, "(objectClass=*)", &["1.1"], 1).await {
            Ok(found) => Ok(!found.is_empty()),
            Err(Failure::Setup(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_millis(200), self.ldap.unbind()).await;
    }
}

/// Runs a directory conversation on a runtime of its own (handlers run on the blocking pool), under
/// one deadline of `directory.timeout`.
pub fn run<T>(cfg: &DirectoryConfig, f: impl AsyncFnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    run_for(cfg.timeout.0, f)
}

/// [`run`] with a deadline of its own (a sync of many people takes longer than one login).
pub fn run_for<T>(deadline: Duration, f: impl AsyncFnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Unreachable(format!("runtime: {e}")))?;
    rt.block_on(async {
        match tokio::time::timeout(deadline, f()).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Unreachable(format!("no answer within {} ms", deadline.as_millis()))),
        }
    })
}

/// A directory login: the person `name` with `password`. `Ok(person)` only when the directory
/// accepted the password and the person is enabled there.
pub fn login(cfg: &DirectoryConfig, name: &str, password: &str) -> Result<(Person, Timings), Failure> {
    if password.is_empty() {
        return Err(Failure::Rejected("empty password"));
    }
    run(cfg, async || {
        let mut t = Timings::default();
        let mut c = connect(cfg, &mut t).await?;
        let person = c.find_person(name, &mut t).await?.ok_or(Failure::Rejected("not in the directory"))?;
        let ok = c.verify(&person.dn, password, &mut t).await?;
        c.close().await;
        match (ok, person.disabled) {
            (false, _) => Err(Failure::Rejected("wrong password")),
            (true, true) => Err(Failure::Rejected("disabled in the directory")),
            (true, false) => Ok((person, t)),
        }
    })
}

/// What a sync found of each name: the person, or `None` (gone from the directory).
pub fn lookup_all(cfg: &DirectoryConfig, names: &[String], mut progress: impl FnMut(usize)) -> Result<Lookup, Failure> {
    // Each person (and each mapped group) costs a few operations under `timeout`; the whole sync is
    // bounded by their sum.
    let per = cfg.timeout.0.saturating_mul(2);
    let ops = (names.len() + cfg.group_roles.len()).clamp(1, MAX_SYNC) as u32;
    let deadline = per.saturating_mul(ops).min(Duration::from_secs(3600));
    run_for(deadline, async || {
        let mut t = Timings::default();
        let mut c = connect(cfg, &mut t).await?;
        let mut unknown_groups = Vec::new();
        for dn in cfg.group_roles.keys() {
            if !c.exists(dn).await? {
                unknown_groups.push(dn.clone());
            }
        }
        let mut people = Vec::with_capacity(names.len());
        for (i, name) in names.iter().take(MAX_SYNC).enumerate() {
            people.push(c.find_person(name, &mut t).await?);
            progress(i + 1);
        }
        c.close().await;
        Ok(Lookup { people, unknown_groups })
    })
}

/// What a sync found: each name's person (`None`: gone), and the `group_roles` DNs the directory does
/// not have.
pub struct Lookup {
    pub people: Vec<Option<Person>>,
    pub unknown_groups: Vec<String>,
}

/// Roles the mapping gives to these groups (group DNs compared without case or spaces after commas),
/// sorted and without repeats.
pub fn mapped_roles(cfg: &DirectoryConfig, groups: &[String]) -> Vec<String> {
    let norm = |dn: &str| dn.split(',').map(|p| p.trim().to_ascii_lowercase()).collect::<Vec<_>>().join(",");
    let held: BTreeSet<String> = groups.iter().map(|g| norm(g)).collect();
    let mut roles = BTreeSet::new();
    for (dn, rs) in &cfg.group_roles {
        if held.contains(&norm(dn)) {
            roles.extend(rs.iter().cloned());
        }
    }
    roles.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_name_injection_is_escaped_per_rfc4515() {
        let cfg = DirectoryConfig { user_filter: "(uid={user})".into(), ..Default::default() };
        let filter = cfg.user_filter.replace("{user}", &ldap_escape("*)(uid=*"));
        assert_eq!(filter, r"(uid=\2a\29\28uid=\2a)");
        assert_eq!(ldap_escape("a\\b\0"), r"a\5cb\00");
    }

    #[test]
    fn mapping_compares_dns_without_case_or_spaces() {
        let mut cfg = DirectoryConfig::default();
        cfg.group_roles.insert("CN=Plant Supervisors, OU=Groups,DC=plant,DC=local".into(), vec!["supervisor".into()]);
        cfg.group_roles.insert("cn=ops,dc=plant,dc=local".into(), vec!["operator".into(), "supervisor".into()]);
        let roles = mapped_roles(&cfg, &["cn=plant supervisors,ou=groups,dc=plant,dc=local".into()]);
        assert_eq!(roles, vec!["supervisor".to_string()]);
        let roles = mapped_roles(&cfg, &["CN=Ops,DC=plant,DC=local".into(), "cn=other".into()]);
        assert_eq!(roles, vec!["operator".to_string(), "supervisor".to_string()]);
        assert!(mapped_roles(&cfg, &[]).is_empty());
    }
}
