//! The plant directory against a real OpenLDAP `slapd` each test starts on a free port
//! (tests/common/ldap.rs): first login creates the account with mapped roles (nested groups too), a
//! local account wins over the directory, a sync follows group changes and ends the sessions of people
//! removed, the offline cache answers while the directory is dead and stops after `cache_ttl`, a
//! hanging directory (SIGSTOP) answers within `timeout` without holding local accounts, StartTLS with
//! a test CA, and a wrong service password shown in `status` and the log.

mod common;

use common::ldap::{self, PERSON_PW, Slapd};
use common::{Daemon, PW, audit_count, user};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn login(d: &Daemon, name: &str, password: &str) -> Value {
    d.call("login", json!({"user": name, "password": password}))
}

fn logged_in(d: &Daemon, name: &str, password: &str) -> bool {
    let r = login(d, name, password);
    match r.get("result") {
        Some(res) => res["token"].as_str().is_some(),
        None => {
            assert_eq!(r["error"]["code"], "invalid_credentials", "{name}: {r}");
            false
        }
    }
}

fn roles(d: &Daemon, name: &str) -> Vec<String> {
    let v = d.ok(&["user", "show", name]);
    let mut r: Vec<String> = v["roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
    r.sort();
    r
}

fn daemon(s: &Slapd, extra: &str) -> Daemon {
    let d = Daemon::start_with(&s.config(extra));
    d.ok(&["role", "add", "operator"]);
    d
}

#[test]
fn first_login_creates_the_person_with_mapped_roles_and_nested_groups() {
    let s = Slapd::start(false);
    let d = daemon(&s, "");
    assert!(logged_in(&d, "alice", PERSON_PW));
    assert_eq!(roles(&d, "alice"), ["supervisor"]);
    assert_eq!(d.ok(&["user", "show", "alice"])["source"], "directory");
    assert_eq!(d.ok(&["user", "show", "admin"])["source"], "local");
    // bob is in night-shift, which is inside operators.
    assert!(logged_in(&d, "bob", PERSON_PW));
    assert_eq!(roles(&d, "bob"), ["operator"]);
    assert!(logged_in(&d, "carol", PERSON_PW));
    assert!(roles(&d, "carol").is_empty());
    assert_eq!(d.sql_count("SELECT count(*) FROM users WHERE source = 'directory'"), 3);
    assert_eq!(d.sql_count("SELECT count(*) FROM users WHERE source = 'directory' AND password_hash IS NOT NULL"), 0);
    // Wrong password, no such person, empty password: refused alike.
    assert!(!logged_in(&d, "alice", "wrong-password-1"));
    assert!(!logged_in(&d, "nobody-here", PERSON_PW));
    let empty = login(&d, "alice", "");
    assert!(empty.get("error").is_some(), "{empty}");
    // Neither the person's password nor the service account's reaches the database, WAL or log.
    let state = d.state_dir();
    for f in ["gatewarden.db", "gatewarden.db-wal"] {
        let bytes = std::fs::read(state.join(f)).unwrap_or_default();
        for secret in [PERSON_PW, ldap::SERVICE_PW] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} in {f}");
        }
    }
    assert!(!d.log().contains(PERSON_PW) && !d.log().contains(ldap::SERVICE_PW));
    // The created account: audited, with the directory as its source.
    assert_eq!(audit_count(&d, "user.create", "ok"), 4, "the built-in admin and the three");
    let status = d.ok(&["status"]);
    assert_eq!(status["directory"]["state"], "reachable", "{status}");
    assert_eq!(status["directory"]["people"], 3, "{status}");
    // A password login on session.open goes the same way.
    let r = d.call_auth(
        "session.open",
        json!({"type": "hmi", "host": "panel-1"}),
        json!({"user": "bob", "password": PERSON_PW}),
    );
    assert!(r["result"]["session_id"].is_i64(), "{r}");
}

#[test]
fn a_local_account_wins_over_the_directory_for_its_name() {
    let s = Slapd::start(false);
    let d = daemon(&s, "");
    // carol exists here with her own password: the directory's password for carol is not hers here.
    user(&d, "carol", &[]);
    assert!(!logged_in(&d, "carol", PERSON_PW));
    assert!(logged_in(&d, "carol", PW));
    assert_eq!(d.sql_count("SELECT count(*) FROM users WHERE source = 'directory'"), 0);
}

/// Regression: a login name such as `*)(uid=*` pasted into the user filter would match everyone (the
/// first entry found would be bound as). Names are refused before any filter is built, and any name
/// that passes is escaped per RFC 4515 in the filter (unit test in src/directory).
#[test]
fn injection_star_paren_uid_star_never_widens_the_user_search() {
    let s = Slapd::start(false);
    let d = daemon(&s, "");
    for name in ["*)(uid=*", "*", "alice)(|(uid=*", "al*"] {
        let r = login(&d, name, PERSON_PW);
        assert_eq!(r["error"]["code"], "bad_request", "{name}: {r}");
        let t = d.call("directory.test", json!({"user": name}));
        assert_eq!(t["error"]["code"], "bad_request", "{name}: {t}");
    }
    assert_eq!(d.sql_count("SELECT count(*) FROM users WHERE source = 'directory'"), 0);
    // directory.test shows the filter it sends.
    let t = d.ok(&["directory", "test", "alice"]);
    assert_eq!(t["filter"], "(&(objectClass=inetOrgPerson)(uid=alice))", "{t}");
    assert_eq!(t["dn"], ldap::person_dn("alice"), "{t}");
    assert_eq!(t["roles"], json!(["supervisor"]), "{t}");
    assert!(t["password_ok"].is_null(), "{t}");
    let out =
        d.cli_with(&["--json", "directory", "test", "bob", "--password-stdin"], Some(&format!("{PERSON_PW}\n")), &[]);
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["password_ok"], true, "{t}");
    let groups = t["groups"].as_array().unwrap();
    assert!(groups.contains(&json!(ldap::NIGHT_SHIFT)) && groups.contains(&json!(ldap::OPERATORS)), "{t}");
    assert_eq!(t["roles"], json!(["operator"]), "{t}");
}

#[test]
fn sync_follows_group_changes_and_ends_the_sessions_of_people_removed() {
    let s = Slapd::start(false);
    let d = daemon(&s, "sync_interval = \"1h\"\n");
    // Mapped roles that do not exist here and group DNs the directory does not have are named.
    let text = std::fs::read_to_string(&d.config_path).unwrap();
    let extra = "[directory.group_roles]\n\"cn=ghosts,ou=groups,dc=plant,dc=test\" = [\"no-such-role\"]\n";
    std::fs::write(&d.config_path, common::merge_toml(&text, extra)).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    common::wait_for(|| d.log().contains("config reloaded"), "the reload");
    let synced = d.ok(&["directory", "sync"]);
    assert_eq!(synced["missing_roles"], json!(["no-such-role"]), "{synced}");
    assert_eq!(synced["unknown_groups"], json!(["cn=ghosts,ou=groups,dc=plant,dc=test"]), "{synced}");
    assert!(logged_in(&d, "alice", PERSON_PW));
    assert!(logged_in(&d, "bob", PERSON_PW));
    let r = d.call_auth(
        "session.open",
        json!({"type": "hmi", "host": "panel-2"}),
        json!({"user": "bob", "password": PERSON_PW}),
    );
    let session = r["result"]["token"].as_str().unwrap().to_string();
    // alice leaves the supervisors, bob leaves the plant.
    s.ldap(
        "ldapmodify",
        &format!(
            "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n",
            ldap::SUPERVISORS,
            ldap::person_dn("alice")
        ),
    );
    s.ldap("ldapdelete", &format!("{}\n", ldap::person_dn("bob")));
    let synced = d.ok(&["directory", "sync"]);
    assert_eq!(
        (synced["people"].as_u64(), synced["disabled"].as_u64(), synced["sessions_ended"].as_u64()),
        (Some(2), Some(1), Some(1)),
        "{synced}"
    );
    assert!(roles(&d, "alice").is_empty());
    assert_eq!(d.ok(&["user", "show", "bob"])["enabled"], false);
    let beat = d.call_auth("session.heartbeat", Value::Null, json!({"token": session}));
    assert_eq!(beat["error"]["code"], "session_terminated", "{beat}");
    assert!(audit_count(&d, "user.disable", "ok") >= 1);
    assert_eq!(audit_count(&d, "directory.roles", "ok"), 3, "two first logins and alice's change");
    assert!(d.sql_count("SELECT count(*) FROM outbox WHERE topic LIKE '%user.disabled'") >= 1);
    // bob's offline verifier is gone with him.
    assert_eq!(d.sql_count("SELECT count(*) FROM directory_people WHERE verifier IS NOT NULL"), 1);
    assert!(!logged_in(&d, "bob", PERSON_PW));
}

#[test]
fn directory_killed_cached_login_works_then_expires() {
    let mut s = Slapd::start(false);
    let d = daemon(&s, "cache_ttl = \"4s\"\nsync_interval = \"1h\"\n");
    assert!(logged_in(&d, "alice", PERSON_PW));
    let cached_at = Instant::now();
    s.kill();
    assert!(logged_in(&d, "alice", PERSON_PW), "offline login from the cache");
    assert!(!logged_in(&d, "alice", "wrong-password-1"));
    // carol never logged in: nothing cached.
    assert!(!logged_in(&d, "carol", PERSON_PW));
    assert_eq!(d.ok(&["status"])["directory"]["state"], "unreachable");
    let audit = d.ok(&["audit", "--limit", "1000"]);
    let offline = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "login" && e["outcome"] == "ok" && e["detail"]["offline"] == true)
        .count();
    assert_eq!(offline, 1, "{audit}");
    // Past cache_ttl the cache no longer answers.
    std::thread::sleep(Duration::from_secs(4).saturating_sub(cached_at.elapsed()) + Duration::from_millis(300));
    assert!(!logged_in(&d, "alice", PERSON_PW), "cache expired");
    // The local admin never depended on the directory.
    assert!(d.ok(&["status"])["version"].is_string());
}

#[test]
fn directory_hanging_login_answered_within_timeout_and_local_accounts_keep_working() {
    let s = Slapd::start(false);
    let d = daemon(&s, "sync_interval = \"1h\"\n");
    user(&d, "localop", &[]);
    assert!(logged_in(&d, "alice", PERSON_PW));
    s.signal(nix::sys::signal::Signal::SIGSTOP);
    // timeout = 1s; an upper bound about the behaviour, not a speed figure.
    let bound = Duration::from_secs(5);
    std::thread::scope(|scope| {
        let hanging = scope.spawn(|| {
            let t = Instant::now();
            let ok = logged_in(&d, "carol", PERSON_PW);
            (ok, t.elapsed())
        });
        let t = Instant::now();
        assert!(logged_in(&d, "localop", PW), "a local account while the directory hangs");
        assert!(t.elapsed() < bound, "local login took {:?}", t.elapsed());
        let (ok, took) = hanging.join().unwrap();
        assert!(!ok, "carol has nothing cached");
        assert!(took < bound, "directory login took {took:?}");
    });
    let t = Instant::now();
    assert!(logged_in(&d, "alice", PERSON_PW), "alice from the cache while the directory hangs");
    assert!(t.elapsed() < bound, "{:?}", t.elapsed());
    assert_eq!(d.ok(&["status"])["directory"]["state"], "unreachable");
    s.signal(nix::sys::signal::Signal::SIGCONT);
}

#[test]
fn starttls_with_a_test_ca() {
    let s = Slapd::start(true);
    let extra = format!("start_tls = true\nca_file = {:?}\n", s.ca().display().to_string());
    let d = daemon(&s, &extra);
    assert!(logged_in(&d, "alice", PERSON_PW));
    assert_eq!(roles(&d, "alice"), ["supervisor"]);
    assert_eq!(d.ok(&["status"])["directory"]["state"], "reachable");

    // Another CA: the server's certificate is refused, and nothing is sent in clear instead.
    let other = tempfile::tempdir().unwrap();
    ldap::make_ca(other.path(), "other");
    let extra = format!("start_tls = true\nca_file = {:?}\n", other.path().join("ca.pem").display().to_string());
    let d2 = daemon(&s, &extra);
    assert!(!logged_in(&d2, "bob", PERSON_PW));
    let st = d2.ok(&["status"]);
    assert_ne!(st["directory"]["state"], "reachable", "{st}");
}

#[test]
fn bad_bind_password_is_a_clear_error_in_status_and_the_log() {
    let s = Slapd::start(false);
    let d = daemon(&s, "");
    let pw = s.dir.path().join("bind.secret");
    std::fs::write(&pw, "not-the-service-password\n").unwrap();
    assert!(!logged_in(&d, "alice", PERSON_PW));
    let st = d.ok(&["status"]);
    assert_eq!(st["directory"]["state"], "error", "{st}");
    let e = st["directory"]["last_error"].as_str().unwrap();
    assert!(e.contains("service bind") && e.contains("rc=49"), "{e}");
    common::wait_for(|| d.log().contains("service bind"), "the service bind error in the log");
    assert!(!d.log().contains("not-the-service-password"));
    // directory test says the same to the technician.
    let t = d.ok(&["directory", "test", "alice"]);
    assert!(t["error"].as_str().unwrap().contains("rc=49"), "{t}");
    assert_eq!(t["bind"], false);
}

#[test]
fn config_check_names_the_bad_directory_key() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("bind.secret");
    std::fs::write(&secret, "x\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let base = "[directory]\nurl = \"ldaps://dc1.plant.local\"\nuser_base = \"dc=plant,dc=local\"\n";
    let cases = [
        ("url = \"http://dc1\"\nuser_base = \"dc=x\"\n", "directory.url"),
        ("user_filter = \"(uid=alice)\"\n", "directory.user_filter"),
        ("ca_file = \"/nonexistent/ca.pem\"\n", "directory.ca_file"),
        ("start_tls = true\n", "directory.start_tls"),
        (
            &format!("bind_dn = \"cn=svc\"\nbind_password_file = {:?}\n", secret.display().to_string()),
            "directory.bind_password_file",
        ),
        ("timeout = \"5m\"\n", "directory.timeout"),
        ("[directory.group_roles]\n\"not a dn\" = [\"supervisor\"]\n", "directory.group_roles"),
    ];
    for (extra, key) in cases {
        let text = if extra.starts_with("url") { format!("[directory]\n{extra}") } else { format!("{base}{extra}") };
        let path = dir.path().join("g.toml");
        std::fs::write(&path, text).unwrap();
        let out =
            std::process::Command::new(common::BIN).args(["config", "check", path.to_str().unwrap()]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {err}");
        assert!(err.contains(key), "{key}: {err}");
    }
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.path().join("g.toml");
    std::fs::write(
        &path,
        format!("{base}bind_dn = \"cn=svc\"\nbind_password_file = {:?}\n", secret.display().to_string()),
    )
    .unwrap();
    let out =
        std::process::Command::new(common::BIN).args(["config", "check", path.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn groups_found_by_a_group_search_with_nesting_walked() {
    let s = Slapd::start(false);
    let extra = format!(
        "group_base = \"ou=groups,{}\"\ngroup_filter = \"(&(objectClass=groupOfNames)(member={{dn}}))\"\n",
        ldap::SUFFIX
    );
    let d = daemon(&s, &extra);
    assert!(logged_in(&d, "bob", PERSON_PW));
    assert_eq!(roles(&d, "bob"), ["operator"], "night-shift inside operators, found by searches");
    assert!(logged_in(&d, "alice", PERSON_PW));
    assert_eq!(roles(&d, "alice"), ["supervisor"]);
    // Without nesting, bob is only in night-shift, which maps to nothing.
    let d2 = daemon(&s, &format!("{extra}nested_groups = false\n"));
    assert!(logged_in(&d2, "bob", PERSON_PW));
    assert!(roles(&d2, "bob").is_empty());
}

#[test]
fn a_directory_person_logs_in_over_mqtt_too() {
    use common::mqtt::{Broker, Hmi, daemon as bridged, wait_connected};
    let s = Slapd::start(false);
    let broker = Broker::start(false);
    let d = bridged(&broker.url(), "dir", &s.config(""));
    d.ok(&["role", "add", "operator"]);
    wait_connected(&d);
    let req = "gatewarden/dir/rpc/request/panel-9";
    let mut hmi = Hmi::v5(broker.port, "panel-9");
    hmi.subscribe("hmi/panel-9/reply");
    let open = json!({"id": 1, "method": "session.open", "params": {"type": "hmi", "host": "panel-9"},
                      "auth": {"user": "bob", "password": PERSON_PW}});
    hmi.request(req, open.to_string(), "hmi/panel-9/reply", b"o");
    let r = hmi.next_on("hmi/panel-9/reply").json();
    assert!(r["result"]["session_id"].is_i64(), "{r}");
    assert_eq!(roles(&d, "bob"), ["operator"]);
    let bad = json!({"id": 2, "method": "login", "params": {"user": "alice", "password": "wrong-password-1"}});
    hmi.request(req, bad.to_string(), "hmi/panel-9/reply", b"b");
    assert_eq!(hmi.next_on("hmi/panel-9/reply").json()["error"]["code"], "invalid_credentials");
}

/// Regression: the directory's wait ran inside the transport's password gate (MQTT lets one password
/// check run at a time by default), so a local login queued behind a hanging directory login for the
/// whole `directory.timeout`. The local login must be answered first.
#[test]
fn a_hanging_directory_never_holds_a_local_login_over_mqtt() {
    use common::mqtt::{Broker, Hmi, daemon as bridged, wait_connected};
    let s = Slapd::start(false);
    let broker = Broker::start(false);
    let config = s.config("sync_interval = \"1h\"\n").replace("timeout = \"1s\"", "timeout = \"6s\"");
    let d = bridged(&broker.url(), "dir", &config);
    user(&d, "localop", &[]);
    wait_connected(&d);
    // alice's directory login leaves a cached verifier: her next login waits out the directory's
    // timeout and then succeeds from the cache, with no failed-login delay to blur the order.
    assert!(logged_in(&d, "alice", PERSON_PW));
    s.signal(nix::sys::signal::Signal::SIGSTOP);
    let (req, reply) = ("gatewarden/dir/rpc/request/panel-7", "hmi/panel-7/reply");
    let mut hmi = Hmi::v5(broker.port, "panel-7");
    hmi.subscribe(reply);
    let alice = json!({"id": 1, "method": "login", "params": {"user": "alice", "password": PERSON_PW}});
    hmi.request(req, alice.to_string(), reply, b"alice");
    // Time for alice's login to reach the stopped directory before the local one is sent.
    std::thread::sleep(Duration::from_millis(700));
    let local = json!({"id": 2, "method": "login", "params": {"user": "localop", "password": PW}});
    hmi.request(req, local.to_string(), reply, b"local");
    let first = hmi.next_on(reply).json();
    assert_eq!(first["id"], 2, "the local login is answered while the directory login waits: {first}");
    assert!(first["result"]["token"].is_string(), "{first}");
    let second = hmi.next_on(reply).json();
    assert_eq!(second["id"], 1, "{second}");
    assert!(second["result"]["token"].is_string(), "alice from the cache once the directory timed out: {second}");
    s.signal(nix::sys::signal::Signal::SIGCONT);
}

fn offline_logins(d: &Daemon) -> Vec<Value> {
    let audit = d.ok(&["audit", "--limit", "1000"]);
    let mut v: Vec<Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "login" && e["outcome"] == "ok" && e["detail"]["offline"] == true)
        .cloned()
        .collect();
    v.reverse();
    v
}

#[test]
fn after_one_login_finds_the_directory_down_the_next_ones_use_the_cache_without_asking() {
    let s = Slapd::start(false);
    let d = daemon(&s, "sync_interval = \"1h\"\n");
    assert!(logged_in(&d, "alice", PERSON_PW));
    assert!(logged_in(&d, "bob", PERSON_PW));
    s.signal(nix::sys::signal::Signal::SIGSTOP);
    assert!(logged_in(&d, "alice", PERSON_PW), "from the cache, after the directory's timeout");
    assert!(logged_in(&d, "bob", PERSON_PW), "from the cache, the directory not asked again");
    assert!(!logged_in(&d, "bob", "wrong-password-1"));
    let offline = offline_logins(&d);
    let asked: Vec<&Value> = offline.iter().map(|e| &e["detail"]["asked"]).collect();
    assert_eq!(asked, [&json!(true), &json!(false)], "{offline:?}");
    assert!(offline[1]["detail"]["why"].as_str().unwrap().contains("not asked again"), "{offline:?}");
    // The directory is back: a sync reaches it, and the next login asks it again.
    s.signal(nix::sys::signal::Signal::SIGCONT);
    d.ok(&["directory", "sync"]);
    assert!(logged_in(&d, "carol", PERSON_PW), "carol has nothing cached: the directory answered");
    assert_eq!(offline_logins(&d).len(), 2);
}

#[test]
fn a_person_back_in_the_directory_is_enabled_again_but_not_one_disabled_by_hand() {
    let s = Slapd::start(false);
    let d = daemon(&s, "sync_interval = \"1h\"\n");
    for who in ["alice", "bob", "carol"] {
        assert!(logged_in(&d, who, PERSON_PW), "{who}");
    }
    s.ldap("ldapdelete", &format!("{}\n{}\n", ldap::person_dn("alice"), ldap::person_dn("bob")));
    d.ok(&["user", "disable", "carol"]);
    let synced = d.ok(&["directory", "sync"]);
    assert_eq!((synced["disabled"].as_u64(), synced["enabled"].as_u64()), (Some(2), Some(0)), "{synced}");
    s.ldap("ldapadd", &(ldap::person_ldif("alice") + &ldap::person_ldif("bob")));
    // bob comes back through a login, alice through the sync; carol stays as the administrator left her.
    assert!(logged_in(&d, "bob", PERSON_PW), "bob is in the directory again");
    assert_eq!(d.ok(&["user", "show", "bob"])["enabled"], true);
    let synced = d.ok(&["directory", "sync"]);
    assert_eq!((synced["disabled"].as_u64(), synced["enabled"].as_u64()), (Some(0), Some(1)), "{synced}");
    assert_eq!(d.ok(&["user", "show", "alice"])["enabled"], true);
    assert_eq!(d.ok(&["user", "show", "carol"])["enabled"], false, "disabled by hand: the directory leaves it");
    let err = login(&d, "carol", PERSON_PW);
    assert_eq!(err["error"]["code"], "account_disabled", "{err}");
    assert_eq!(audit_count(&d, "user.enable", "ok"), 2);
    // Disabled by the directory, then enabled by hand: a sync that finds the person gone disables again.
    s.ldap("ldapdelete", &format!("{}\n", ldap::person_dn("bob")));
    d.ok(&["directory", "sync"]);
    d.ok(&["user", "enable", "bob"]);
    assert_eq!(d.ok(&["directory", "sync"])["disabled"], 1);
}

#[test]
fn a_role_assigned_by_hand_survives_the_mapping_dropping_it() {
    let s = Slapd::start(false);
    let d = daemon(&s, "sync_interval = \"1h\"\n");
    for who in ["alice", "bob", "carol"] {
        assert!(logged_in(&d, who, PERSON_PW), "{who}");
    }
    assert_eq!(roles(&d, "bob"), ["operator"], "from night-shift, inside operators");
    // carol held operator by hand before the mapping gave it; bob was given it by hand after.
    d.ok(&["user", "update", "carol", "--add-role", "operator"]);
    s.ldap(
        "ldapmodify",
        &format!("dn: {}\nchangetype: modify\nadd: member\nmember: {}\n", ldap::OPERATORS, ldap::person_dn("carol")),
    );
    d.ok(&["directory", "sync"]);
    d.ok(&["user", "update", "bob", "--add-role", "operator"]);
    // alice's supervisor role, removed by hand, comes back: her groups decide what the mapping gives.
    d.ok(&["user", "update", "alice", "--remove-role", "supervisor"]);
    d.ok(&["directory", "sync"]);
    assert_eq!(roles(&d, "alice"), ["supervisor"]);
    // Everybody leaves the mapped groups (a placeholder stays: a groupOfNames needs a member).
    let leave = |group: &str, uid: &str| {
        format!(
            "dn: {group}\nchangetype: modify\nadd: member\nmember: cn=placeholder,{}\n-\ndelete: member\nmember: {}\n\n",
            ldap::SUFFIX,
            ldap::person_dn(uid)
        )
    };
    s.ldap(
        "ldapmodify",
        &(leave(ldap::OPERATORS, "carol") + &leave(ldap::NIGHT_SHIFT, "bob") + &leave(ldap::SUPERVISORS, "alice")),
    );
    d.ok(&["directory", "sync"]);
    assert_eq!(roles(&d, "carol"), ["operator"], "held by hand before the mapping gave it");
    assert_eq!(roles(&d, "bob"), ["operator"], "assigned by hand after the mapping gave it");
    assert!(roles(&d, "alice").is_empty(), "only ever the mapping's: taken back");
}

/// A directory person's password is the directory's: setting one here would never be asked.
#[test]
fn set_password_is_refused_for_a_directory_account() {
    let s = Slapd::start(false);
    let d = daemon(&s, "sync_interval = \"1h\"\n");
    assert!(logged_in(&d, "bob", PERSON_PW));
    let r = d.call("user.set_password", json!({"name": "bob", "password": "a-local-password-9"}));
    assert_eq!(r["error"]["code"], "bad_request", "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("directory"), "{r}");
    assert_eq!(d.sql_count("SELECT count(*) FROM users WHERE name = 'bob' AND password_hash IS NOT NULL"), 0);
}
