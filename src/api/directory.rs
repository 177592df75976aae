//! The plant directory in the daemon (SPEC "Plant directory"): password logins of people who have no
//! local account, their accounts created at first login (`source = "directory"`) with the roles
//! `directory.group_roles` maps their groups to, the offline cache, the periodic sync, and the
//! `directory.test` / `directory.sync` methods. The LDAP conversation itself is
//! [`crate::directory`]'s.
//!
//! The rule for a name: **a local account always wins.** A name held by an account created here
//! (`user.create`, an import, the built-in admin) is verified here and never sent to the directory, so
//! `admin`, service accounts and API keys work with or without a directory, and nobody in the
//! directory can log in as a local account by sharing its name. Only names with no account, or with
//! an account the directory created, are asked of the directory.
//!
//! Must never happen:
//! - a directory conversation while holding the store lock (a hanging directory would stop every
//!   request): the LDAP work runs first, bounded by `directory.timeout`, then one short transaction;
//! - a login waiting on the directory while it holds a place among its transport's password checks
//!   (a hanging directory would queue every local login behind it): it lets go first
//!   ([`super::run::release_password_gate`]), and at most [`MAX_ASKING`] wait at once;
//! - every login of an outage waiting the full `timeout`: after one finds the directory down, the
//!   others use the cache without asking for [`RETRY_AFTER_MS`];
//! - a sync enabling an account an administrator disabled: it enables only those it disabled itself;
//! - the password stored or logged: only an argon2id verifier of it, to answer while offline;
//! - an offline login past `directory.cache_ttl`, or one not audited as offline;
//! - a directory person becoming a superuser: superusers are the built-in admin (always local) and
//!   master API keys; a mapping gives only roles, whose grants are checked like any other.

use super::{Caller, Ctx};
use crate::accounts::{self, User, password};
use crate::config::Config;
use crate::contract::system::{DirectoryLink, DirectoryReport, DirectorySync, DirectorySynced, DirectoryTest};
use crate::contract::{Actor as Who, accounts::UserCreated, accounts::UserDisabled, accounts::UserEnabled};
use crate::directory::{self, Failure, Person};
use crate::protocol::{ApiError, ErrorCode};
use crate::store::audit::{self, Actor, Outcome};
use crate::store::{self, now_ms, outbox, policy};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The directory as last seen, for `status`.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub reachable: Option<bool>,
    pub last_contact: Option<i64>,
    pub last_sync: Option<i64>,
    pub last_error: Option<String>,
    /// After the directory did not answer: until when logins go to the offline cache without asking.
    pub quiet_until: Option<i64>,
}

/// After the directory did not answer, logins are judged from the offline cache without asking it for
/// this long; then one login asks again while the others stay on the cache until it has an answer. A
/// directory outage costs one login one `timeout`, not every login.
pub const RETRY_AFTER_MS: i64 = 15_000;

/// Most logins waiting on the directory at once. They wait outside the transports' password gates
/// (which would otherwise let a hanging directory hold every local login), so this bounds the
/// threads they hold; beyond it a login is judged from the offline cache.
pub const MAX_ASKING: usize = 16;

static ASKING: AtomicUsize = AtomicUsize::new(0);

/// A login's place among those asking the directory; given back on drop.
struct Asking;

impl Drop for Asking {
    fn drop(&mut self) {
        ASKING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether this login may ask the directory now: not while it is known to be down (see
/// [`RETRY_AFTER_MS`]), nor beyond [`MAX_ASKING`]. `Err` says why not, for the audit trail.
fn may_ask(ctx: &Ctx, config: &Config) -> Result<Asking, String> {
    {
        let mut s = ctx.directory.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        if let Some(until) = s.quiet_until {
            if now < until {
                let error = s.last_error.as_deref().unwrap_or("no answer");
                return Err(format!("{error}; not asked again for {} s", (until - now + 999) / 1000));
            }
            // This login asks; the others stay on the cache until it has an answer.
            s.quiet_until = Some(now.saturating_add(config.directory.timeout.0.as_millis() as i64));
        }
    }
    if ASKING.fetch_add(1, Ordering::AcqRel) >= MAX_ASKING {
        ASKING.fetch_sub(1, Ordering::AcqRel);
        return Err(format!("{MAX_ASKING} logins are already waiting on the directory"));
    }
    Ok(Asking)
}

/// Notes what the directory answered (or did not), for `status` and the log.
fn note<T>(ctx: &Ctx, r: &Result<T, Failure>) {
    let mut s = ctx.directory.lock().unwrap_or_else(|p| p.into_inner());
    match r {
        Ok(_) | Err(Failure::Rejected(_)) => {
            s.reachable = Some(true);
            s.last_contact = Some(now_ms());
            s.last_error = None;
            s.quiet_until = None;
        }
        Err(e) => {
            if s.last_error.as_deref() != Some(&e.to_string()) {
                tracing::warn!("plant directory: {e}");
            }
            if matches!(e, Failure::Setup(_)) {
                s.reachable = Some(true);
                s.last_contact = Some(now_ms());
                s.quiet_until = None;
            } else {
                s.reachable = Some(false);
                s.quiet_until = Some(now_ms().saturating_add(RETRY_AFTER_MS));
            }
            s.last_error = Some(e.to_string());
        }
    }
}

/// The directory part of `status`.
pub fn link(ctx: &Ctx, layout: bool) -> Result<Option<DirectoryLink>, ApiError> {
    if !ctx.config().directory.enabled() {
        return Ok(None);
    }
    let people: i64 = ctx
        .store()
        .conn
        .query_row("SELECT count(*) FROM directory_people", [], |r| r.get(0))
        .map_err(ApiError::from)?;
    let s = ctx.directory.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let state = match (s.reachable, &s.last_error) {
        (None, None) => "unknown",
        (Some(false), _) => "unreachable",
        (_, Some(_)) => "error",
        (Some(true), None) => "reachable",
    };
    Ok(Some(DirectoryLink {
        state: state.into(),
        last_contact: s.last_contact,
        last_sync: s.last_sync,
        people: people as u64,
        last_error: s.last_error.filter(|_| layout),
    }))
}

/// Whether a password login is the directory's to answer: the directory is configured and no local
/// account holds the name (`user`: the account of that name, as the login already read it; see the
/// module's rule).
pub fn decides(config: &Config, user: Option<&User>) -> bool {
    config.directory.enabled() && user.is_none_or(|u| u.source != "local")
}

/// Verifies a password through the directory, or from the offline cache when the directory does not
/// answer (or is known not to, see [`RETRY_AFTER_MS`]). Returns whether it is verified and the account
/// (created at the first login). Runs on the blocking pool; lets go of the transport's password gate
/// while it waits on the directory, and never holds the store lock while asking.
pub fn verify_password(ctx: &Ctx, name: &str, pw: &str, user: Option<User>) -> (bool, Option<User>) {
    let config = ctx.config();
    let asking = match may_ask(ctx, &config) {
        Ok(asking) => asking,
        Err(why) => return offline(ctx, &config, name, pw, user, &Failure::Unreachable(why), false),
    };
    super::run::release_password_gate();
    let result = directory::login(&config.directory, name, pw);
    drop(asking);
    note(ctx, &result);
    match result {
        Ok((person, _)) => match admit(ctx, &config, name, pw, &person) {
            Ok(u) => (true, Some(u)),
            Err(e) => {
                tracing::warn!(user = name, "directory login accepted but not recorded: {}", e.message);
                (false, user)
            }
        },
        Err(Failure::Rejected(why)) => {
            tracing::info!(user = name, "directory login refused: {why}");
            (false, user)
        }
        Err(e) => offline(ctx, &config, name, pw, user, &e, true),
    }
}

/// A login while the directory does not answer: the cached verifier, within `cache_ttl`.
fn offline(
    ctx: &Ctx,
    config: &Config,
    name: &str,
    pw: &str,
    user: Option<User>,
    why: &Failure,
    asked: bool,
) -> (bool, Option<User>) {
    let cached = store::directory::find(&ctx.store().conn, name).ok().flatten();
    let ttl = config.directory.cache_ttl.0.as_millis() as i64;
    let now = now_ms();
    let usable = cached.as_ref().and_then(|p| {
        let at = p.verified_at?;
        (now < at.saturating_add(ttl)).then_some(p.verifier.as_deref()?)
    });
    let Some(verifier) = usable else {
        // The same cost as a check, so the answer's time does not say whether a cache entry exists.
        password::verify_dummy(pw, &config.accounts.argon2);
        tracing::warn!(user = name, "directory login impossible: {why}; no cached login within directory.cache_ttl");
        return (false, user);
    };
    if !password::verify(pw, verifier) {
        return (false, user);
    }
    let at = cached.and_then(|p| p.verified_at);
    let actor = Actor { who: Who::user(name), source: "directory offline".into() };
    let detail = json!({"offline": true, "cached_at": at, "why": why.to_string(), "asked": asked});
    ctx.audit_later(&actor, "login", Some(name), Outcome::Ok, "offline", Some(detail));
    tracing::info!(user = name, "login from the offline cache: {why}");
    (true, user)
}

/// After the directory accepted a person: the account (created on first login), its mapped roles, its
/// groups and the offline verifier, in one transaction.
fn admit(ctx: &Ctx, config: &Config, name: &str, pw: &str, person: &Person) -> Result<User, ApiError> {
    let verifier = password::hash(pw, &config.accounts.argon2).map_err(ApiError::internal)?;
    let roles = directory::mapped_roles(&config.directory, &person.groups);
    let now = now_ms();
    let id = ctx.write_policy(|tx| {
        let id = match accounts::find_user(tx, name)? {
            Some(u) if u.source == "directory" => u.id,
            Some(_) => return Err(ApiError::conflict(format!("{name} is a local account now"))),
            None => {
                let id = accounts::insert_user(tx, name, person.display_name.as_deref(), None, None)?;
                store::directory::mark_directory(tx, id)?;
                let detail = json!({"source": "directory", "dn": person.dn, "roles": roles});
                audit::record(tx, &Actor::system(), "user.create", Some(name), Outcome::Ok, Some(&detail))?;
                outbox::emit(tx, &UserCreated { user: name.into(), registered: false, by: Who::nobody() })?;
                id
            }
        };
        let known = store::directory::find(tx, name)?;
        if known.as_ref().is_some_and(|p| !p.enabled && p.disabled_by_directory) {
            enable_again(tx, id, name, "login")?;
        }
        let before = known.map(|p| p.mapped_roles).unwrap_or_default();
        let given = apply_roles(tx, id, name, &before, &roles)?;
        store::directory::save(tx, id, &person.dn, &person.groups, &given, Some(&verifier), now)?;
        Ok(id)
    })?;
    accounts::user_by_id(&ctx.store().conn, id)?.ok_or_else(|| ApiError::internal("directory account vanished"))
}

/// Gives `id` the roles of `now` that exist here and takes back those of `before` (what the mapping
/// gave) that it no longer gives. The mapping owns only what it gave: a role the person already held
/// by hand when the mapping first gave it stays the hand's, and stays when the mapping drops it (as
/// does one assigned by hand later, see [`store::directory::unmap_roles`]). A mapped role removed by
/// hand comes back: the directory decides what its groups give; roles that do not exist here are
/// passed over. Audits a change. Returns the roles the mapping gives now.
fn apply_roles(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    name: &str,
    before: &[String],
    now: &[String],
) -> Result<Vec<String>, ApiError> {
    let held = policy::user_role_names(tx, id)?;
    let holds = |r: &str| held.iter().any(|h| h.eq_ignore_ascii_case(r));
    let was_given = |r: &str| before.iter().any(|b| b.eq_ignore_ascii_case(r));
    let (mut given, mut added) = (Vec::new(), Vec::new());
    for r in now {
        match store::roles::find(tx, r)? {
            None => {}
            Some(_) if was_given(r) => {
                given.push(r.clone());
                if !holds(r) {
                    added.push(r.clone());
                }
            }
            // Held by hand before the mapping gave it: it stays the hand's.
            Some(_) if holds(r) => {}
            Some(_) => {
                given.push(r.clone());
                added.push(r.clone());
            }
        }
    }
    let gone: Vec<String> =
        before.iter().filter(|r| holds(r) && !given.iter().any(|g| g.eq_ignore_ascii_case(r))).cloned().collect();
    if gone.is_empty() && added.is_empty() {
        return Ok(given);
    }
    policy::add_user_roles(tx, id, &policy::role_ids(tx, &added)?)?;
    policy::remove_user_roles(tx, id, &policy::role_ids(tx, &gone)?)?;
    let detail = json!({"added": added, "removed": gone, "source": "directory.group_roles"});
    audit::record(tx, &Actor::system(), "directory.roles", Some(name), Outcome::Ok, Some(&detail))?;
    Ok(given)
}

/// The roles of `roles` that do not exist here, sorted, each once.
fn missing_roles<'a>(
    conn: &rusqlite::Connection,
    roles: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<String>, ApiError> {
    let mut missing = std::collections::BTreeSet::new();
    for role in roles {
        if store::roles::find(conn, role)?.is_none() {
            missing.insert(role.clone());
        }
    }
    Ok(missing.into_iter().collect())
}

/// Enables a person this gateway disabled because the directory had (never one disabled by hand):
/// the directory has them back. Audited and announced like `user.enable`.
fn enable_again(tx: &rusqlite::Transaction<'_>, user_id: i64, name: &str, how: &str) -> Result<(), ApiError> {
    accounts::rows::set_enabled(tx, user_id, true)?;
    store::directory::set_disabled_by_directory(tx, user_id, false)?;
    let detail = json!({"reason": "enabled in the directory again", "seen_by": how});
    audit::record(tx, &Actor::system(), "user.enable", Some(name), Outcome::Ok, Some(&detail))?;
    outbox::emit(tx, &UserEnabled { user: name.into(), by: Who::nobody() })?;
    tracing::info!(user = name, "directory {how}: enabled in the directory again; account enabled");
    Ok(())
}

/// Brings every directory person up to date: groups and mapped roles; people gone from the directory
/// or disabled there are disabled here, their tokens revoked and their sessions ended (audited, with
/// events). `progress(done, total)` is called as people are looked up.
pub fn sync(ctx: &Ctx, mut progress: impl FnMut(usize, usize)) -> Result<DirectorySynced, ApiError> {
    let config = ctx.config();
    if !config.directory.enabled() {
        return Err(ApiError::bad_request("no [directory] in the config"));
    }
    let started = Instant::now();
    let people = store::directory::list(&ctx.store().conn)?;
    let names: Vec<String> = people.iter().map(|p| p.name.clone()).collect();
    let total = names.len();
    if total == 0 && config.directory.group_roles.is_empty() {
        ctx.directory.lock().unwrap_or_else(|p| p.into_inner()).last_sync = Some(now_ms());
        return Ok(DirectorySynced { took_ms: started.elapsed().as_millis() as u64, ..Default::default() });
    }
    let found = directory::lookup_all(&config.directory, &names, |n| progress(n, total));
    note(ctx, &found);
    let found = found.map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
    if !found.unknown_groups.is_empty() {
        tracing::warn!(groups = ?found.unknown_groups, "directory.group_roles names groups the directory does not have");
    }
    let unknown_groups = found.unknown_groups;
    let found = found.people;
    let mut out = DirectorySynced { people: total as u64, unknown_groups, ..Default::default() };
    let now = now_ms();
    let system = Actor::system();
    let (updated, disabled, ended, enabled, missing) = ctx.write_policy_sessions(|tx, table| {
        // Mapped roles that do not exist here, as this transaction sees them, every round.
        let missing = missing_roles(tx, config.directory.group_roles.values().flatten())?;
        let (mut updated, mut disabled, mut ended, mut enabled) = (0u64, 0u64, 0u64, 0u64);
        for (p, f) in people.iter().zip(found) {
            match f {
                Some(person) if !person.disabled => {
                    if !p.enabled && p.disabled_by_directory {
                        enable_again(tx, p.user_id, &p.name, "sync")?;
                        enabled += 1;
                    }
                    let roles = directory::mapped_roles(&config.directory, &person.groups);
                    let given = apply_roles(tx, p.user_id, &p.name, &p.mapped_roles, &roles)?;
                    if given != p.mapped_roles || person.groups != p.groups || person.dn != p.dn {
                        updated += 1;
                    }
                    store::directory::save(tx, p.user_id, &person.dn, &person.groups, &given, None, now)?;
                }
                other if p.enabled => {
                    let why = if other.is_some() { "disabled in the directory" } else { "gone from the directory" };
                    accounts::rows::set_enabled(tx, p.user_id, false)?;
                    store::directory::set_disabled_by_directory(tx, p.user_id, true)?;
                    store::directory::forget_verifier(tx, p.user_id)?;
                    let n = crate::sessions::end_matching(tx, table, &config, |t| t.of_user(p.user_id), &system, why)?;
                    let revoked = accounts::revoke_tokens(tx, ctx.credentials(), p.user_id)?;
                    let detail =
                        json!({"reason": why, "sessions_terminated": n, "tokens_revoked": revoked, "dn": p.dn});
                    audit::record(tx, &system, "user.disable", Some(&p.name), Outcome::Ok, Some(&detail))?;
                    outbox::emit(tx, &UserDisabled { user: p.name.clone(), by: Who::nobody() })?;
                    tracing::info!(user = p.name, "directory sync: {why}; account disabled, {n} sessions ended");
                    disabled += 1;
                    ended += n as u64;
                }
                _ => {}
            }
        }
        Ok((updated, disabled, ended, enabled, missing))
    })?;
    out.enabled = enabled;
    out.updated = updated;
    out.disabled = disabled;
    out.sessions_ended = ended;
    out.missing_roles = missing;
    if !out.missing_roles.is_empty() {
        tracing::warn!(roles = ?out.missing_roles, "directory.group_roles maps to roles that do not exist here");
    }
    out.took_ms = started.elapsed().as_millis() as u64;
    ctx.directory.lock().unwrap_or_else(|p| p.into_inner()).last_sync = Some(now_ms());
    Ok(out)
}

/// `directory.sync`.
pub fn sync_now(ctx: &Ctx, caller: &Caller, _: DirectorySync) -> Result<DirectorySynced, ApiError> {
    let out = sync(ctx, |_, _| {})?;
    let detail =
        json!({"people": out.people, "updated": out.updated, "disabled": out.disabled, "enabled": out.enabled});
    ctx.write(|tx| audit::record(tx, &caller.actor(), "directory.sync", None, Outcome::Ok, Some(&detail)))?;
    Ok(out)
}

/// `directory.test`: the steps of a login, shown; nothing created or changed.
pub fn test(ctx: &Ctx, caller: &Caller, p: DirectoryTest) -> Result<DirectoryReport, ApiError> {
    accounts::validate_name("user name", &p.user)?;
    if p.password.as_ref().is_some_and(|pw| pw.len() > super::auth::MAX_PASSWORD) {
        return Err(ApiError::bad_request("password is too long"));
    }
    let config = ctx.config();
    let d = &config.directory;
    let Some(url) = d.url.clone() else {
        return Err(ApiError::bad_request("no [directory] in the config"));
    };
    let mut report = DirectoryReport {
        url,
        filter: d.user_filter.replace("{user}", &ldap3::ldap_escape(p.user.as_str())),
        ..Default::default()
    };
    let mut t = directory::Timings::default();
    let r = directory::run(d, async || {
        let mut c = directory::connect(d, &mut t).await?;
        report.bind = true;
        let person = c.find_person(&p.user, &mut t).await?;
        if let (Some(person), Some(pw)) = (&person, &p.password) {
            report.password_ok = Some(c.verify(&person.dn, pw, &mut t).await?);
        }
        c.close().await;
        Ok(person)
    });
    note(ctx, &r);
    match r {
        Ok(Some(person)) => {
            report.roles = directory::mapped_roles(d, &person.groups);
            report.missing_roles = missing_roles(&ctx.store().conn, &report.roles)?;
            report.dn = Some(person.dn);
            report.groups = person.groups;
            report.disabled = person.disabled;
        }
        Ok(None) => report.error = Some("no entry matches the user filter".into()),
        Err(e) => report.error = Some(e.to_string()),
    }
    for (k, v) in [
        ("connect", t.connect_ms),
        ("service_bind", t.service_bind_ms),
        ("search", t.search_ms),
        ("groups", t.groups_ms),
        ("user_bind", t.user_bind_ms),
    ] {
        report.timings_ms.insert(k.into(), v);
    }
    let detail = json!({"user": p.user, "found": report.dn.is_some(), "password_tried": p.password.is_some()});
    ctx.write(|tx| audit::record(tx, &caller.actor(), "directory.test", Some(&p.user), Outcome::Ok, Some(&detail)))?;
    Ok(report)
}
