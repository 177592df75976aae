//! Accounts through the real daemon: the built-in admin, passwords and lockout, tokens, API keys,
//! disable/delete, self-registration, console mapping and offline recovery.

mod common;

use common::{BIN, Daemon, PW, as_token, token};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

fn add_user(d: &Daemon, name: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "user", "add", name, "--password-stdin"];
    args.extend_from_slice(extra);
    let out = d.cli_with(&args, Some(&format!("{PW}\n")), &[]);
    assert!(out.status.success(), "user add {name}: {}", String::from_utf8_lossy(&out.stdout));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn login(d: &Daemon, name: &str, password: &str) -> (i32, Value) {
    d.cli_json_with(&["login", name, "--password-stdin"], Some(&format!("{password}\n")), &[])
}

#[test]
fn generated_admin_password_is_logged_once_and_admin_is_protected() {
    let mut d = Daemon::start();
    let log = d.log();
    let line = log.lines().find(|l| l.contains("generated password:")).expect("password in log");
    let pw = line.split("generated password: ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let (code, v) = login(&d, "admin", &pw);
    assert_eq!(code, 0, "{v}");
    assert!(v["token"].as_str().unwrap().starts_with("gwt_"));

    let e = d.refused(&["user", "delete", "admin"], "self_delete");
    assert!(e["message"].as_str().unwrap().contains("own account"));
    let t = token_for_admin_via_key(&mut d);
    let (code, v) = d.cli_json_with(&["user", "delete", "admin"], None, &[("GATEWARDEN_TOKEN", &t)]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("protected_account")), "{v}");
    d.refused(&["user", "disable", "admin"], "protected_account");
    d.refused(&["user", "update", "admin", "--expires", "1d"], "protected_account");

    // Restart: the admin is not created again, and its password is not logged again.
    d.restart();
    assert_eq!(d.log().matches("generated password:").count(), 1);
    assert_eq!(login(&d, "admin", &pw).0, 0);
}

/// A master key owned by another account, so "admin deletes admin" is not self-deletion.
fn token_for_admin_via_key(d: &mut Daemon) -> String {
    add_user(d, "keyowner", &[]);
    let v = d.ok(&["key", "add", "ops-master", "--master"]);
    // Move the key to another owner through the database, as if keyowner had made it; the daemon
    // reads the policy at start.
    d.stop();
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    conn.execute("UPDATE api_keys SET owner_id = (SELECT id FROM users WHERE name = 'keyowner')", []).unwrap();
    d.launch();
    d.wait_ready();
    v["key"].as_str().unwrap().to_string()
}

#[test]
fn admin_password_from_file() {
    let d = Daemon::prepare("");
    let file = d.dir.path().join("admin-pw");
    std::fs::write(&file, "from-the-file-123\n").unwrap();
    let text = std::fs::read_to_string(&d.config_path).unwrap();
    let merged =
        common::merge_toml(&text, &format!("[accounts]\nadmin_password_file = {:?}\n", file.display().to_string()));
    std::fs::write(&d.config_path, merged).unwrap();
    let d = d.spawned(Vec::new());
    assert!(!d.log().contains("generated password"));
    assert_eq!(login(&d, "admin", "from-the-file-123").0, 0);
    assert_eq!(login(&d, "admin", "something-else-1").1["error"]["code"], "invalid_credentials");
}

#[test]
fn five_wrong_passwords_lock_the_account_until_the_lock_expires() {
    let d = Daemon::start_with("[accounts]\nlockout_attempts = 5\nlockout_duration = \"3s\"\n");
    add_user(&d, "op", &[]);
    let start = Instant::now();
    for i in 1..=4 {
        let (code, v) = login(&d, "op", "wrong-password-x");
        assert_eq!((code, v["error"]["code"].as_str()), (1, Some("invalid_credentials")), "attempt {i}: {v}");
    }
    // The growing delay: 100 + 200 + 400 + 800 ms at least.
    assert!(start.elapsed() >= Duration::from_millis(1500), "{:?}", start.elapsed());
    let (_, v) = login(&d, "op", "wrong-password-x");
    assert_eq!(v["error"]["code"], "account_locked", "{v}");
    let retry = v["error"]["retry_after_s"].as_i64().unwrap();
    assert!((1..=3).contains(&retry), "{v}");
    // Even the right password is refused while locked.
    assert_eq!(login(&d, "op", PW).1["error"]["code"], "account_locked");
    std::thread::sleep(Duration::from_secs(retry as u64 + 1));
    assert_eq!(login(&d, "op", PW).0, 0, "right password after the lock expired");

    let audit = d.ok(&["audit", "--limit", "100"]);
    // Failures are counted into one row per (name, source) and flush.
    let failures = common::audit_count(&d, "login", "failed");
    assert_eq!(failures, 5, "every failure audited: {audit}");
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "login.lock"));
}

#[test]
fn failed_login_counters_survive_a_restart() {
    let mut d = Daemon::start_with("[accounts]\nlockout_attempts = 3\n");
    add_user(&d, "op", &[]);
    for _ in 0..2 {
        assert_eq!(login(&d, "op", "wrong-password-x").1["error"]["code"], "invalid_credentials");
    }
    d.kill();
    d.launch();
    d.wait_ready();
    assert_eq!(login(&d, "op", "wrong-password-x").1["error"]["code"], "account_locked");
}

#[test]
fn unknown_users_get_the_same_answer_as_wrong_passwords() {
    let d = Daemon::start();
    add_user(&d, "op", &[]);
    let a = login(&d, "op", "wrong-password-x").1;
    let b = login(&d, "nobody-here", "wrong-password-x").1;
    assert_eq!(a["error"], b["error"]);
}

#[test]
fn a_disabled_account_loses_its_tokens_at_once_and_enable_does_not_revive_them() {
    let d = Daemon::start();
    add_user(&d, "op", &[]);
    let t = token(&d, "op");
    assert_eq!(as_token(&d, &t, &["user", "show"]).0, 0);
    let v = d.ok(&["user", "disable", "op"]);
    assert_eq!(v["tokens_revoked"], 1);
    let (code, v) = as_token(&d, &t, &["user", "show"]);
    assert_eq!(code, 1);
    assert_eq!(v["error"]["code"], "unauthenticated", "{v}");
    assert_eq!(login(&d, "op", PW).1["error"]["code"], "account_disabled");
    d.ok(&["user", "enable", "op"]);
    assert_eq!(as_token(&d, &t, &["user", "show"]).1["error"]["code"], "unauthenticated");
    let t2 = token(&d, "op");
    assert_eq!(as_token(&d, &t2, &["user", "show"]).1["name"], "op");
}

#[test]
fn an_expired_account_acts_as_disabled() {
    let d = Daemon::start();
    add_user(&d, "temp", &[]);
    let t = token(&d, "temp");
    let past = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() - 1000) as i64;
    d.ok(&["call", "user.update", &json!({"name": "temp", "expires_at": past}).to_string()]);
    assert_eq!(as_token(&d, &t, &["user", "show"]).1["error"]["code"], "account_disabled");
    assert_eq!(login(&d, "temp", PW).1["error"]["code"], "account_disabled");
    d.ok(&["user", "update", "temp", "--expires", "never"]);
    assert_eq!(login(&d, "temp", PW).0, 0);
}

#[test]
fn deleting_a_user_leaves_no_rows_and_nobody_deletes_themselves() {
    let d = Daemon::start();
    let v = add_user(&d, "gone", &["--role", "supervisor"]);
    let id = v["id"].as_i64().unwrap();
    let t = token(&d, "gone");
    // The user's own key, made through a master key owned by... the admin makes it, then we move it.
    d.ok(&["key", "add", "gone-key"]);
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    conn.execute("UPDATE api_keys SET owner_id = ?1 WHERE name = 'gone-key'", [id]).unwrap();
    conn.execute(
        "INSERT INTO grants (user_id, permission, can_read, can_write, selector, effect, created_at)
         VALUES (?1, 'tag.write', 0, 1, 'line1/*', 'allow', 0)",
        [id],
    )
    .unwrap();

    // Without users.manage the door is shut before the name is looked at; with it, the handler says
    // self_delete (the admin deleting itself, in generated_admin_password_is_logged_once...).
    assert_eq!(as_token(&d, &t, &["user", "delete", "gone"]).1["error"]["code"], "forbidden");
    d.ok(&["user", "delete", "gone"]);
    for table in [
        "users WHERE id",
        "login_tokens WHERE user_id",
        "api_keys WHERE owner_id",
        "user_roles WHERE user_id",
        "grants WHERE user_id",
    ] {
        assert_eq!(
            conn.query_row(&format!("SELECT count(*) FROM {table} = ?1"), [id], |r| r.get::<_, i64>(0)).unwrap(),
            0,
            "{table}"
        );
    }
    d.refused(&["user", "show", "gone"], "not_found");
}

#[test]
fn registration_is_refused_by_default() {
    let d = Daemon::start();
    let (code, v) = d.cli_json_with(&["register", "newbie", "--password-stdin"], Some("newbie-password-1\n"), &[]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("registration_disabled")), "{v}");
}

#[test]
fn registration_works_when_enabled_and_applies_default_roles() {
    let d = Daemon::start_with("[accounts]\nself_registration = true\ndefault_roles = [\"supervisor\"]\n");
    let (code, v) = d.cli_json_with(&["register", "newbie", "--password-stdin"], Some("newbie-password-1\n"), &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["roles"], json!(["supervisor"]));
    let short = d.cli_json_with(&["register", "tiny", "--password-stdin"], Some("short\n"), &[]);
    assert_eq!(short.1["error"]["code"], "bad_request");
    assert!(short.1["error"]["message"].as_str().unwrap().contains("too short"));
    assert_eq!(login(&d, "newbie", "newbie-password-1").0, 0);
}

#[test]
fn api_keys_authenticate_and_stop_when_revoked() {
    let d = Daemon::start();
    let k = d.ok(&["key", "add", "svc"])["key"].as_str().unwrap().to_string();
    let m = d.ok(&["key", "add", "root-key", "--master"])["key"].as_str().unwrap().to_string();
    // A plain key has no rights of its own yet; a master key passes every check.
    assert_eq!(as_token(&d, &k, &["user", "list"]).1["error"]["code"], "forbidden");
    assert_eq!(as_token(&d, &m, &["user", "list"]).0, 0);
    // Listing never shows secrets.
    let list = d.ok(&["key", "list"]).to_string();
    assert!(!list.contains(&k[4..]) && !list.contains(&m[4..]));
    d.ok(&["key", "revoke", "svc"]);
    assert_eq!(as_token(&d, &k, &["user", "list"]).1["error"]["code"], "unauthenticated");
    // Only a superuser makes master keys.
    add_user(&d, "mgr", &[]);
    let mt = token(&d, "mgr");
    assert_eq!(as_token(&d, &mt, &["key", "add", "x", "--master"]).1["error"]["code"], "forbidden");
}

#[test]
fn password_change_revokes_tokens_and_needs_the_current_password_for_yourself() {
    let d = Daemon::start();
    add_user(&d, "op", &[]);
    let t = token(&d, "op");
    let (code, v) = d.cli_json_with(
        &["user", "passwd", "--password-stdin"],
        Some("not-the-current\nnew-password-22\n"),
        &[("GATEWARDEN_TOKEN", &t)],
    );
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("invalid_credentials")), "{v}");
    let (code, v) = d.cli_json_with(
        &["user", "passwd", "--password-stdin"],
        Some(&format!("{PW}\nnew-password-22\n")),
        &[("GATEWARDEN_TOKEN", &t)],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(as_token(&d, &t, &["user", "show"]).1["error"]["code"], "unauthenticated");
    assert_eq!(login(&d, "op", "new-password-22").0, 0);
    // Another user's password: users.manage (root here).
    let out = d.cli_with(&["user", "passwd", "op", "--password-stdin"], Some("third-password-3\n"), &[]);
    assert!(out.status.success());
    assert_eq!(login(&d, "op", "third-password-3").0, 0);
}

#[test]
fn no_secret_is_stored_or_logged_in_clear() {
    let mut d = Daemon::start();
    add_user(&d, "op", &[]);
    let t = token(&d, "op");
    let k = d.ok(&["key", "add", "svc"])["key"].as_str().unwrap().to_string();
    let _ = login(&d, "op", "a-wrong-guess-99");
    d.stop();
    let mut bytes = Vec::new();
    for f in ["gatewarden.db", "gatewarden.db-wal"] {
        bytes.extend(std::fs::read(d.state_dir().join(f)).unwrap_or_default());
    }
    let log = d.log();
    let secret_of = |s: &str| s.split('.').nth(1).unwrap().to_string();
    for secret in [PW.to_string(), "a-wrong-guess-99".to_string(), secret_of(&t), secret_of(&k)] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} in the database");
        assert!(!log.contains(&secret), "{secret} in the log");
    }
}

#[test]
fn console_mapping_lets_a_unix_user_act_as_the_same_named_account() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("this test switches uid and needs root; CI runs it as root");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("user nobody");
    let group = nix::unistd::Group::from_gid(nobody.gid).unwrap().expect("nobody's group");
    let run_as_nobody = |d: &Daemon, args: &[&str]| -> Value {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(BIN);
        cmd.arg("--json").arg("--socket").arg(&d.socket).args(args).env_remove("GATEWARDEN_TOKEN");
        cmd.uid(nobody.uid.as_raw()).gid(nobody.gid.as_raw());
        let out = cmd.output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
    };
    let extra = format!("[daemon]\nsocket_group = {:?}\n", group.name);
    // The state dir must be traversable by the socket's group for this test.
    let d = Daemon::start_with(&extra);
    use std::os::unix::fs::PermissionsExt;
    for p in [d.dir.path().to_path_buf(), d.state_dir()] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    add_user(&d, "nobody", &[]);
    assert_eq!(run_as_nobody(&d, &["user", "show"])["error"]["code"], "unauthenticated", "unmapped: anonymous");

    let text = std::fs::read_to_string(&d.config_path).unwrap();
    std::fs::write(&d.config_path, common::merge_toml(&text, "[console]\nmap_unix_users = true\n")).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = run_as_nobody(&d, &["user", "show"]);
        if v["name"] == "nobody" {
            break;
        }
        assert!(Instant::now() < deadline, "mapping not applied: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Mapped, but with no rights beyond its own account.
    assert_eq!(run_as_nobody(&d, &["user", "list"])["error"]["code"], "forbidden");
    d.ok(&["user", "disable", "nobody"]);
    assert_eq!(run_as_nobody(&d, &["user", "show"])["error"]["code"], "account_disabled");
}

#[test]
fn recover_resets_the_admin_password_only_while_the_daemon_is_stopped() {
    let mut d = Daemon::start();
    let config = d.config_path.to_str().unwrap().to_string();
    let args = ["recover", "reset-admin-password", "--config", &config, "--password-stdin"];
    let (code, v) = d.cli_json_with(&args, Some("recovered-pass-1\n"), &[]);
    assert_eq!(code, 1, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("stop it first"), "{v}");
    d.stop();
    let (code, v) = d.cli_json_with(&args, Some("recovered-pass-1\n"), &[]);
    assert_eq!(code, 0, "{v}");
    // Generated variant prints the password.
    let gen_args = ["--json", "recover", "reset-admin-password", "--config", &config];
    let out = Command::new(BIN).args(gen_args).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let generated = v["password"].as_str().unwrap().to_string();
    d.launch();
    d.wait_ready();
    assert_eq!(login(&d, "admin", "recovered-pass-1").1["error"]["code"], "invalid_credentials");
    assert_eq!(login(&d, "admin", &generated).0, 0);
    let audit = d.ok(&["audit"]);
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "recover.reset_admin_password"));
}

/// The error code of a request (`resource.list`: any account may) made with `auth`, or "ok".
fn show_with(d: &Daemon, auth: Value) -> String {
    let r = d.call_auth("resource.list", json!({}), auth);
    r["error"]["code"].as_str().map(str::to_string).unwrap_or_else(|| "ok".into())
}

fn key_auth(k: &str) -> Value {
    json!({"key": k})
}

fn token_auth(t: &str) -> Value {
    json!({"token": t})
}

/// Login tokens and API keys are answered from memory (issue 15): logout, a revoked key, a disabled
/// user, a deleted user and a new password each end the credential at once, and a restart reloads
/// what the database holds, no more.
#[test]
fn tokens_and_keys_from_memory_end_with_every_revocation_and_survive_a_restart() {
    let mut d = Daemon::start();
    for name in ["quits", "disabled", "deleted", "renamed", "stays"] {
        add_user(&d, name, &[]);
    }
    let t: std::collections::HashMap<&str, String> =
        ["quits", "disabled", "deleted", "renamed", "stays"].into_iter().map(|n| (n, token(&d, n))).collect();
    let k_revoked = d.ok(&["key", "add", "revoked-key"])["key"].as_str().unwrap().to_string();
    let k_owned = d.ok(&["key", "add", "owned-by-deleted"])["key"].as_str().unwrap().to_string();
    let k_stays = d.ok(&["key", "add", "stays-key"])["key"].as_str().unwrap().to_string();
    {
        let conn = rusqlite::Connection::open(d.db_path()).unwrap();
        conn.execute(
            "UPDATE api_keys SET owner_id = (SELECT id FROM users WHERE name = 'deleted') WHERE name = 'owned-by-deleted'",
            [],
        )
        .unwrap();
    }
    // The owner change was made behind the daemon's back: a restart loads it (and every credential).
    d.restart();
    for name in ["quits", "disabled", "deleted", "renamed", "stays"] {
        assert_eq!(show_with(&d, token_auth(&t[name])), "ok", "{name}");
    }
    for k in [&k_revoked, &k_owned, &k_stays] {
        assert_eq!(show_with(&d, key_auth(k)), "ok");
    }

    assert!(d.call_auth("logout", json!({}), token_auth(&t["quits"])).get("result").is_some());
    d.ok(&["key", "revoke", "revoked-key"]);
    d.ok(&["user", "disable", "disabled"]);
    d.ok(&["user", "delete", "deleted"]);
    let out = d.cli_with(&["user", "passwd", "renamed", "--password-stdin"], Some("another-password-9\n"), &[]);
    assert!(out.status.success());

    let dead = |d: &Daemon| {
        for name in ["quits", "disabled", "deleted", "renamed"] {
            assert_eq!(show_with(d, token_auth(&t[name])), "unauthenticated", "{name}");
        }
        for k in [&k_revoked, &k_owned] {
            assert_eq!(show_with(d, key_auth(k)), "unauthenticated", "{k}");
        }
        assert_eq!(show_with(d, token_auth(&t["stays"])), "ok");
        assert_eq!(show_with(d, key_auth(&k_stays)), "ok");
    };
    dead(&d);
    // Re-enabling does not revive the disabled account's token, in memory or after a restart.
    d.ok(&["user", "enable", "disabled"]);
    dead(&d);
    d.restart();
    dead(&d);
    assert_eq!(d.sql_count("SELECT count(*) FROM login_tokens"), 1);
    assert_eq!(d.sql_count("SELECT count(*) FROM api_keys"), 1);
}

/// A write step that fails after it changed credentials is undone in memory too: a logout, a
/// disable, a delete and a key revocation that roll back leave their tokens and keys exactly as
/// usable as the database says (still), and a login or key creation that rolls back leaves no row.
#[test]
fn a_rolled_back_transaction_leaves_the_credentials_in_memory_as_the_database_has_them() {
    let mut d = Daemon::start();
    add_user(&d, "op", &[]);
    let t = token(&d, "op");
    let k = d.ok(&["key", "add", "svc"])["key"].as_str().unwrap().to_string();
    d.stop();
    // Make the audit row of these actions fail: the handlers write it last, after the credential rows
    // changed, so the whole transaction rolls back.
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER test_injected_failure BEFORE INSERT ON audit
           WHEN NEW.outcome = 'ok' AND NEW.action IN ('logout', 'user.disable', 'user.delete', 'user.set_password',
                                                      'key.revoke', 'login', 'key.create')
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )
    .unwrap();
    d.launch();
    d.wait_ready();
    let tokens_before = d.sql_count("SELECT count(*) FROM login_tokens");

    let failed = |r: Value| assert_eq!(r["error"]["code"], "internal", "{r}");
    failed(d.call_auth("logout", json!({}), token_auth(&t)));
    failed(d.call("user.disable", json!({"name": "op"})));
    failed(d.call("user.delete", json!({"name": "op"})));
    failed(d.call("user.set_password", json!({"name": "op", "password": "another-password-9"})));
    failed(d.call("key.revoke", json!({"name": "svc"})));
    // The tokens and the key rolled back to life: the database still holds them.
    assert_eq!(show_with(&d, token_auth(&t)), "ok");
    assert_eq!(show_with(&d, key_auth(&k)), "ok");

    failed(d.call("login", json!({"user": "op", "password": PW})));
    failed(d.call("key.create", json!({"name": "never"})));
    assert_eq!(d.sql_count("SELECT count(*) FROM login_tokens"), tokens_before);
    assert_eq!(d.sql_count("SELECT count(*) FROM api_keys WHERE name = 'never'"), 0);

    // Without the fault the same steps commit, and memory follows.
    conn.execute_batch("DROP TRIGGER test_injected_failure").unwrap();
    assert!(d.call_auth("logout", json!({}), token_auth(&t)).get("result").is_some());
    d.ok(&["key", "revoke", "svc"]);
    assert_eq!(show_with(&d, token_auth(&t)), "unauthenticated");
    assert_eq!(show_with(&d, key_auth(&k)), "unauthenticated");
}

/// An account keeps at most 32 login tokens: the 33rd login revokes the oldest, so logging in in a
/// loop grows neither the file nor the table in memory. An expired token stops at its expiry.
#[test]
fn login_tokens_are_bounded_per_account_and_stop_at_their_expiry() {
    let mut d = Daemon::start();
    add_user(&d, "op", &[]);
    let mut c = d.connect().unwrap();
    let mut tokens = Vec::new();
    for _ in 0..33 {
        let r = c.call("login", json!({"user": "op", "password": PW}));
        tokens.push(r["result"]["token"].as_str().unwrap_or_else(|| panic!("{r}")).to_string());
    }
    assert_eq!(d.sql_count("SELECT count(*) FROM login_tokens"), 32);
    assert_eq!(show_with(&d, token_auth(&tokens[0])), "unauthenticated");
    assert_eq!(show_with(&d, token_auth(&tokens[1])), "ok");
    assert_eq!(show_with(&d, token_auth(&tokens[32])), "ok");

    // Expiry is judged in memory, on every request: a token loaded with 2 s to live stops then.
    d.stop();
    let conn = rusqlite::Connection::open(d.db_path()).unwrap();
    let soon = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 + 2000;
    conn.execute("UPDATE login_tokens SET expires_at = ?1", [soon]).unwrap();
    d.launch();
    d.wait_ready();
    assert_eq!(show_with(&d, token_auth(&tokens[32])), "ok");
    common::wait_for(|| show_with(&d, token_auth(&tokens[32])) == "unauthenticated", "the token to expire");
}

/// A password hash as another argon2id system would have made it (cheap cost, as the tests' own).
fn phc(password: &str) -> String {
    let cost = gatewarden::config::Argon2Config { memory_kib: 256, iterations: 1, parallelism: 1 };
    // Quoted for the CSV file: a PHC string holds commas (m=...,t=...,p=...).
    format!("\"{}\"", gatewarden::accounts::password::hash(password, &cost).unwrap())
}

/// `user import` and `role import` (issue 15): every row is checked first and one bad row changes
/// nothing, with every bad row reported by line; a good file creates every account in one go, with
/// its display name, roles, password hash (never a clear password) and expiry.
#[test]
fn user_import_is_all_or_nothing_and_reports_bad_rows_by_line() {
    let d = Daemon::start();
    let roles = common::write_file(&d, "roles.csv", "name,description\nfitters,line fitters\npackers,\n");
    let v = d.ok(&["role", "import", &roles]);
    assert_eq!(v["created"], 2, "{v}");
    // Again: both names are taken now, reported by line, nothing created.
    let e = d.refused(&["role", "import", &roles], "bad_request");
    assert_eq!(e["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 3]);

    let users_before = d.ok(&["user", "list"]).as_array().unwrap().len();
    let bad = format!(
        "name,display_name,roles,password_hash,expires_at\n\
         ann,Ann,fitters,{},\n\
         bad name,,,,\n\
         carl,,,a-clear-password-1,\n\
         dora,,ghost,,\n\
         ANN,,,,\n\
         erik,,,,next tuesday\n",
        phc("ann-password-1")
    );
    let file = common::write_file(&d, "bad.csv", &bad);
    let e = d.refused(&["user", "import", &file], "bad_request");
    let lines: Vec<u64> = e["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [3, 4, 6, 7], "{e}");
    assert!(!e.to_string().contains("a-clear-password-1"), "the refusal repeats a password: {e}");
    assert_eq!(d.ok(&["user", "list"]).as_array().unwrap().len(), users_before);
    // The unknown role is found against the database once the rows themselves are right.
    let file = common::write_file(&d, "ghost.csv", "name,roles\nann,fitters\ndora,fitters;ghost\n");
    let e = d.refused(&["user", "import", &file], "bad_request");
    assert_eq!(e["errors"][0]["line"], 3, "{e}");
    assert_eq!(d.ok(&["user", "list"]).as_array().unwrap().len(), users_before);

    let good = format!(
        "expires_at,name,roles,password_hash,display_name\n\
         ,ann,fitters;packers,{},Ann Fitter\n\
         2099-01-31,bob,,,\n\
         4102444800000,cleo,packers,,\n",
        phc("ann-password-1")
    );
    let file = common::write_file(&d, "good.csv", &good);
    let v = d.ok(&["user", "import", &file]);
    assert_eq!(
        (v["created"].as_u64(), v["with_password"].as_u64(), v["role_links"].as_u64()),
        (Some(3), Some(1), Some(3))
    );
    let ann = d.ok(&["user", "show", "ann"]);
    assert_eq!(
        (ann["display_name"].as_str(), ann["roles"].clone()),
        (Some("Ann Fitter"), json!(["fitters", "packers"]))
    );
    assert_eq!(d.ok(&["user", "show", "bob"])["expires_at"], 4_073_500_800_000_i64);
    assert_eq!(login(&d, "ann", "ann-password-1").0, 0);
    // No password: no password login until one is set.
    assert_eq!(login(&d, "bob", "ann-password-1").1["error"]["code"], "invalid_credentials");
    // The same file again: every name is taken, reported by line.
    let e = d.refused(&["user", "import", &file], "bad_request");
    assert_eq!(e["errors"].as_array().unwrap().len(), 3, "{e}");
    assert_eq!(common::audit_count(&d, "user.import", "ok"), 1);
}

/// The delegation ceiling holds for an import as for `user.create`: a manager may give only roles
/// whose grants it holds itself, and a refused file creates nobody.
#[test]
fn user_import_gives_only_roles_the_caller_holds() {
    let d = Daemon::start();
    d.ok(&["role", "add", "managers"]);
    for perm in ["users.manage", "roles.manage", "users.view"] {
        d.ok(&["role", "grant", "managers", perm, "--read", "--write", "--resource", "*"]);
    }
    d.ok(&["role", "add", "mighty"]);
    d.ok(&["role", "grant", "mighty", "tag.write", "--write", "--resource", "*"]);
    add_user(&d, "boss", &["--role", "managers"]);
    let t = token(&d, "boss");
    let file = common::write_file(&d, "users.csv", "name,roles\nnew1,\nnew2,mighty\n");
    let (code, v) = as_token(&d, &t, &["user", "import", &file]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("forbidden")), "{v}");
    assert_eq!(d.refused(&["user", "show", "new1"], "not_found")["code"], "not_found");
    let file = common::write_file(&d, "users.csv", "name,roles\nnew1,\nnew2,managers\n");
    let (code, v) = as_token(&d, &t, &["user", "import", &file]);
    assert_eq!((code, v["created"].as_u64()), (0, Some(2)), "{v}");
}
