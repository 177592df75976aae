//! The trust boundary through the real daemon: each test pins one way in that a hostile review found
//! (named after the bug), and the delegation ceiling as a table. See SPEC "Trust rules".

mod common;

use common::{Daemon, PW, as_token, token, user};
use serde_json::{Value, json};
use std::time::Duration;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn code(r: &Value) -> &str {
    r["error"]["code"].as_str().unwrap_or(if r.get("result").is_some() { "ok" } else { "?" })
}

fn open_session(d: &Daemon, auth: Value, host: &str) -> String {
    let r = d.call_auth("session.open", json!({"type": "hmi", "host": host}), auth);
    r["result"]["token"].as_str().unwrap_or_else(|| panic!("session.open: {r}")).to_string()
}

/// The critical one: a session token outlived its expired master key, created users and a new master
/// key, also after a restart; `authz.check` called the dead key a superuser.
#[test]
fn session_token_of_an_expired_master_key_stops_working_and_the_key_is_no_superuser() {
    let mut d = Daemon::start();
    let key = d.ok(&[
        "call",
        "key.create",
        &json!({"name": "temp-master", "master": true, "expires_at": now_ms() + 2500}).to_string(),
    ]);
    let key = key["key"].as_str().unwrap().to_string();
    let session = open_session(&d, json!({"key": key}), "panel-1");
    let with_session = |d: &Daemon, method: &str, params: Value| d.call_auth(method, params, json!({"token": session}));
    assert_eq!(code(&with_session(&d, "user.create", json!({"name": "early"}))), "ok");
    let ask =
        json!({"subject": "key:temp-master", "permission": "tag.write", "resource": "line1/p1", "access": "write"});
    assert_eq!(d.ok(&["call", "authz.check", &ask.to_string()])["reason"], "superuser");

    std::thread::sleep(Duration::from_millis(3000));
    let r = with_session(&d, "user.create", json!({"name": "late"}));
    assert_ne!(code(&r), "ok", "{r}");
    let r = with_session(&d, "key.create", json!({"name": "forever", "master": true}));
    assert_ne!(code(&r), "ok", "{r}");
    assert_eq!(code(&d.call_auth("status", json!({}), json!({"key": key}))), "unauthenticated");
    // One answer to one question: check, explain and who_can agree that the key is dead.
    let v = d.ok(&["call", "authz.check", &ask.to_string()]);
    assert_eq!((v["decision"].as_str(), v["reason"].as_str()), (Some("deny"), Some("account_expired")), "{v}");
    let v = d.ok(&["call", "authz.explain", &ask.to_string()]);
    assert_eq!(v["decision"], "deny", "{v}");
    let who = d.ok(&["who-can", "tag.write", "line1/p1", "--write"]);
    assert!(!who.to_string().contains("temp-master"), "{who}");
    // The sweep ended its session (seat freed, audited).
    common::wait_for(|| d.ok(&["session", "list"]).as_array().unwrap().is_empty(), "session ended");

    d.restart();
    let r = with_session(&d, "user.create", json!({"name": "after-restart"}));
    assert_ne!(code(&r), "ok", "{r}");
    assert_eq!(d.sql_count("SELECT count(*) FROM users WHERE name IN ('late', 'after-restart')"), 0);
    assert_eq!(d.sql_count("SELECT count(*) FROM api_keys WHERE name = 'forever'"), 0);
}

#[test]
fn user_update_with_a_past_expires_at_ends_the_users_sessions_and_tokens() {
    let d = Daemon::start();
    user(&d, "op", &[]);
    let login = token(&d, "op");
    let session = open_session(&d, json!({"user": "op", "password": PW}), "panel-1");
    d.ok(&["call", "user.update", &json!({"name": "op", "expires_at": now_ms() - 1000}).to_string()]);
    let r = d.call_auth("session.heartbeat", json!({}), json!({"token": session}));
    assert_ne!(code(&r), "ok", "{r}");
    assert_eq!(code(&d.call_auth("status", json!({}), json!({"token": login}))), "account_disabled");
    assert_eq!(d.ok(&["session", "list"]).as_array().unwrap().len(), 0);
}

#[test]
fn a_disabled_owner_stops_its_keys_sessions_at_once() {
    let d = Daemon::start();
    user(&d, "svc", &["supervisor"]);
    let t = token(&d, "svc");
    let v = d.ok(&["call", "user.update", &json!({"name": "svc", "add_roles": []}).to_string()]);
    assert_eq!(v["name"], "svc");
    // The key belongs to the admin here; disabling a key's owner is tested by a user-owned key.
    let r = d.call_auth("key.create", json!({"name": "svc-key"}), json!({"token": t}));
    assert_eq!(code(&r), "forbidden", "{r}");
    d.ok(&["role", "add", "keymakers"]);
    d.ok(&["role", "grant", "keymakers", "users.manage", "--resource", "*"]);
    d.ok(&["user", "update", "svc", "--add-role", "keymakers"]);
    let r = d.call_auth("key.create", json!({"name": "svc-key"}), json!({"token": t}));
    let key = r["result"]["key"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    let session = open_session(&d, json!({"key": key}), "panel-2");
    d.ok(&["user", "disable", "svc"]);
    let r = d.call_auth("session.heartbeat", json!({}), json!({"token": session}));
    assert_ne!(code(&r), "ok", "{r}");
    assert_eq!(code(&d.call_auth("status", json!({}), json!({"key": key}))), "account_disabled");
}

#[test]
fn login_with_a_megabyte_user_name_is_refused_before_it_costs_anything() {
    let d = Daemon::start();
    let rows = d.sql_count("SELECT count(*) FROM audit");
    // Half a megabyte: within the request size limit, so the name itself is what gets refused.
    let name = "x".repeat(512 * 1024);
    let r = d.call("login", json!({"user": name, "password": "whatever-it-is"}));
    assert_eq!(code(&r), "bad_request", "{}", &r.to_string()[..200]);
    let r = d.call_auth("status", json!({}), json!({"user": "a\u{1b}[2Jb", "password": "whatever-it-is"}));
    assert_eq!(code(&r), "bad_request");
    d.ok(&["audit", "--limit", "1"]);
    assert_eq!(d.sql_count("SELECT count(*) FROM audit"), rows, "nothing audited for a name that cannot exist");
    assert!(std::fs::metadata(d.db_path()).unwrap().len() < 1 << 20);
}

#[test]
fn set_password_through_a_session_token_needs_the_current_password_and_ends_the_session() {
    let d = Daemon::start();
    user(&d, "op", &[]);
    let session = open_session(&d, json!({"user": "op", "password": PW}), "panel-1");
    let auth = json!({"token": session});
    let r = d.call_auth("user.set_password", json!({"password": "stolen-session-pw"}), auth.clone());
    assert_eq!(code(&r), "invalid_credentials", "{r}");
    let r =
        d.call_auth("user.set_password", json!({"password": "a-new-password-1", "current_password": PW}), auth.clone());
    assert_eq!(code(&r), "ok", "{r}");
    assert_eq!(r["result"]["sessions_terminated"], 1, "{r}");
    assert_eq!(code(&d.call_auth("session.heartbeat", json!({}), auth)), "session_terminated");
    // A login token is no better than a session token here.
    let t = common::token_with(&d, "op", "a-new-password-1");
    let (c, v) = as_token(&d, &t, &["call", "user.set_password", &json!({"password": "third-password-1"}).to_string()]);
    assert_eq!((c, v["error"]["code"].as_str()), (1, Some("invalid_credentials")), "{v}");
}

/// An unprivileged caller got `not_found` for unknown names and `forbidden` for known ones.
#[test]
fn unprivileged_callers_get_the_same_answer_for_known_and_unknown_names() {
    let d = Daemon::start();
    user(&d, "nobody", &[]);
    user(&d, "victim", &[]);
    d.ok(&["key", "add", "victim-key"]);
    let t = token(&d, "nobody");
    let ask = |method: &str, params: Value| {
        let r = d.call_auth(method, params, json!({"token": t}));
        (code(&r).to_string(), r["error"]["message"].as_str().unwrap_or_default().to_string())
    };
    let pairs: Vec<(&str, Value, Value)> = vec![
        ("user.show", json!({"name": "victim"}), json!({"name": "ghost"})),
        ("user.delete", json!({"name": "victim"}), json!({"name": "ghost"})),
        ("user.disable", json!({"name": "victim"}), json!({"name": "ghost"})),
        (
            "user.set_password",
            json!({"name": "victim", "password": "x-password-12"}),
            json!({"name": "ghost", "password": "x-password-12"}),
        ),
        ("user.unlock", json!({"name": "victim"}), json!({"name": "ghost"})),
        ("key.revoke", json!({"name": "victim-key"}), json!({"name": "ghost-key"})),
        (
            "authz.check",
            json!({"subject": "victim", "permission": "p.x", "resource": "r1"}),
            json!({"subject": "ghost", "permission": "p.x", "resource": "r1"}),
        ),
        (
            "authz.check",
            json!({"subject": "key:victim-key", "permission": "p.x", "resource": "r1"}),
            json!({"subject": "key:ghost-key", "permission": "p.x", "resource": "r1"}),
        ),
    ];
    for (method, known, unknown) in pairs {
        let (a, b) = (ask(method, known), ask(method, unknown));
        assert_eq!(a, b, "{method}: known and unknown names answered differently");
        assert_eq!(a.0, "forbidden", "{method}");
    }
    // Logins: the same errors, the same lock, for a known and an unknown name.
    let login = |name: &str| code(&d.call("login", json!({"user": name, "password": "wrong-password-1"}))).to_string();
    let known: Vec<String> = (0..6).map(|_| login("victim")).collect();
    let unknown: Vec<String> = (0..6).map(|_| login("ghost")).collect();
    assert_eq!(known, unknown);
    assert_eq!(known.last().map(String::as_str), Some("account_locked"), "{known:?}");
}

/// Ten parallel wrong passwords got ten hashes checked, twice the lockout limit.
#[test]
fn parallel_wrong_logins_get_no_more_guesses_than_the_lockout_limit() {
    let d = Daemon::start_with("[accounts]\nlockout_attempts = 5");
    user(&d, "op", &[]);
    let results: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let d = &d;
                s.spawn(move || {
                    code(&d.call("login", json!({"user": "op", "password": "wrong-password-1"}))).to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = results.iter().filter(|c| *c == "invalid_credentials").count();
    assert!(checked <= 5, "{results:?}");
    assert!(results.iter().all(|c| c == "invalid_credentials" || c == "account_locked"), "{results:?}");
    let failed = common::audit_count(&d, "login", "failed");
    assert!(failed <= 5, "{failed} passwords checked");
    // The right password is refused while locked.
    assert_eq!(code(&d.call("login", json!({"user": "op", "password": PW}))), "account_locked");
}

/// 3000 refused `audit.list` calls wrote 52 MB: one synced row each.
#[test]
fn a_flood_of_refused_calls_adds_a_bounded_number_of_audit_rows() {
    let d = Daemon::start();
    user(&d, "nobody", &[]);
    let t = token(&d, "nobody");
    d.ok(&["audit", "--limit", "1"]);
    let (rows, size) = (d.sql_count("SELECT count(*) FROM audit"), dir_size(&d.state_dir()));
    let mut c = d.connect().unwrap();
    for i in 0..3000 {
        let r = c.send(&json!({"id": i, "method": "audit.list", "params": {}, "auth": {"token": t}}));
        assert_eq!(code(&r), "forbidden");
    }
    d.ok(&["audit", "--limit", "1"]);
    let added = d.sql_count("SELECT count(*) FROM audit") - rows;
    assert!(added <= 3, "{added} rows for 3000 refusals");
    assert_eq!(
        d.sql_count(
            "SELECT sum(json_extract(detail, '$.count')) FROM audit WHERE outcome = 'denied' AND action = 'audit.list'"
        ),
        3000,
        "every refusal counted"
    );
    let grown = dir_size(&d.state_dir()).saturating_sub(size);
    assert!(grown < 1 << 20, "state dir grew by {grown} bytes");
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p).unwrap().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()
}

#[test]
fn blocked_logins_are_audited_and_user_unlock_ends_a_lock() {
    let d = Daemon::start_with("[accounts]\nlockout_attempts = 3");
    user(&d, "op", &[]);
    for _ in 0..3 {
        d.call("login", json!({"user": "op", "password": "wrong-password-1"}));
    }
    for _ in 0..4 {
        assert_eq!(code(&d.call("login", json!({"user": "op", "password": PW}))), "account_locked");
    }
    assert!(d.ok(&["user", "show", "op"])["locked_until"].is_i64());
    let audit = d.ok(&["audit", "--limit", "100"]);
    let blocked = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "login" && e["outcome"] == "denied" && e["detail"]["reason"] == "locked")
        .unwrap_or_else(|| panic!("blocked logins not audited: {audit}"));
    assert_eq!(blocked["detail"]["count"], 4, "{blocked}");
    let v = d.ok(&["user", "unlock", "op"]);
    assert_eq!(v["was_locked"], true, "{v}");
    assert_eq!(code(&d.call("login", json!({"user": "op", "password": PW}))), "ok");
    assert!(d.ok(&["user", "show", "op"])["locked_until"].is_null());
    assert_eq!(d.ok(&["user", "unlock", "--source", "mqtt client=panel7"])["was_locked"], false);
    d.refused(&["user", "unlock", "ghost"], "not_found");
}

/// A terminated client came straight back under a new host name, or `H1` for `h1`.
#[test]
fn terminate_cooldown_holds_for_a_new_host_name_and_another_case() {
    let d = Daemon::start_with("[license]\nterminate_cooldown = \"1h\"");
    user(&d, "op", &[]);
    let auth = json!({"user": "op", "password": PW});
    let open = |host: &str| d.call_auth("session.open", json!({"type": "hmi", "host": host}), auth.clone());
    let id = open("h1")["result"]["session_id"].as_i64().unwrap();
    d.ok(&["session", "terminate", &id.to_string(), "--reason", "stuck"]);
    for host in ["h1", "H1", "h2", "another-panel"] {
        assert_eq!(code(&open(host)), "session_terminated", "{host}");
    }

    let d = Daemon::start_with("[license]\nterminate_cooldown = \"1h\"\ncooldown_scope = \"user_host\"");
    user(&d, "op", &[]);
    let open = |host: &str| d.call_auth("session.open", json!({"type": "hmi", "host": host}), auth.clone());
    let id = open("h1")["result"]["session_id"].as_i64().unwrap();
    d.ok(&["session", "terminate", &id.to_string()]);
    assert_eq!(code(&open("H1")), "session_terminated");
    assert_eq!(code(&open("h2")), "ok");
}

/// User ids were reused, and a deleted supervisor's user-scope lock passed to the next user created.
#[test]
fn user_ids_are_never_reused_so_a_deleted_supervisors_lock_passes_to_nobody() {
    let mut d = Daemon::start();
    user(&d, "boss", &["supervisor"]);
    let boss_id = d.ok(&["user", "show", "boss"])["id"].as_i64().unwrap();
    let t = token(&d, "boss");
    let r = d.call_auth("supervisor.lock", json!({"l": "u", "c": "u", "reason": "night"}), json!({"token": t}));
    assert_eq!(code(&r), "ok", "{r}");
    d.ok(&["user", "delete", "boss"]);
    user(&d, "heir", &["supervisor"]);
    let heir_id = d.ok(&["user", "show", "heir"])["id"].as_i64().unwrap();
    assert!(heir_id > boss_id, "id {boss_id} reused as {heir_id}");
    let heir = token(&d, "heir");
    let r = d.call_auth("supervisor.unlock", json!({}), json!({"token": heir}));
    assert_eq!(code(&r), "supervisor_locked", "{r}");
    // Also across a restart (the high-water mark is in the file).
    d.ok(&["user", "delete", "heir"]);
    d.restart();
    user(&d, "third", &[]);
    assert!(d.ok(&["user", "show", "third"])["id"].as_i64().unwrap() > heir_id);
}

#[test]
fn lock_expires_in_that_would_overflow_is_refused_and_no_lock_vanishes() {
    let d = Daemon::start();
    let r = d.call("supervisor.lock", json!({"expires_in": 9_223_372_036_854_775u64}));
    assert_eq!(code(&r), "bad_request", "{r}");
    let r = d.call("supervisor.lock", json!({"expires_in": "400d"}));
    assert_eq!(code(&r), "bad_request", "{r}");
    let r = d.call("supervisor.lock", json!({"expires_in": "300d", "reason": "long outage"}));
    assert_eq!(code(&r), "ok", "{r}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!d.ok(&["status"])["supervisor_lock"].is_null(), "the lock holds");
    for bad in [json!({"name": "u1", "expires_at": i64::MAX}), json!({"name": "u1", "expires_at": -5})] {
        assert_eq!(code(&d.call("user.create", bad)), "bad_request");
    }
}

/// Concurrent create and delete of one name reported committed changes as `internal` / `not_found`.
#[test]
fn concurrent_create_and_delete_of_one_name_report_only_what_happened() {
    let d = Daemon::start();
    let codes: Vec<String> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for i in 0..40 {
            let d = &d;
            handles.push(s.spawn(move || {
                let r = if i % 2 == 0 {
                    d.call("user.create", json!({"name": "flip"}))
                } else {
                    d.call("user.delete", json!({"name": "flip"}))
                };
                if i % 2 == 0 && code(&r) == "ok" {
                    assert_eq!(r["result"]["name"], "flip", "{r}");
                }
                code(&r).to_string()
            }));
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for c in &codes {
        assert!(["ok", "conflict", "not_found"].contains(&c.as_str()), "{codes:?}");
    }
    let created = codes.iter().step_by(2).filter(|c| *c == "ok").count() as i64;
    let deleted = codes.iter().skip(1).step_by(2).filter(|c| *c == "ok").count() as i64;
    let exists = d.sql_count("SELECT count(*) FROM users WHERE name = 'flip'");
    assert_eq!(created - deleted, exists, "{codes:?}");
    let r = d.call("role.create", json!({"name": "r-new"}));
    assert_eq!(r["result"]["name"], "r-new", "{r}");
}

/// A caller in the table below, made by the admin.
struct Who {
    name: &'static str,
    roles: &'static [&'static str],
}

const USERS_ONLY: Who = Who { name: "um", roles: &["r_users"] };
const ROLES_ONLY: Who = Who { name: "rm", roles: &["r_roles"] };
const BOTH: Who = Who { name: "both", roles: &["r_users", "r_roles"] };
const SUPERVISOR: Who = Who { name: "sup", roles: &["supervisor"] };

/// The delegation ceiling: a holder of `roles.manage` alone granted itself `users.manage`; a holder of
/// `users.manage` alone set another manager's password and became them, or revoked an admin's key.
#[test]
fn delegation_ceiling_table() {
    let d = Daemon::start();
    d.ok(&["role", "add", "r_users"]);
    d.ok(&["role", "grant", "r_users", "users.manage", "--resource", "*"]);
    d.ok(&["role", "grant", "r_users", "users.view", "--resource", "*"]);
    d.ok(&["role", "add", "r_roles"]);
    d.ok(&["role", "grant", "r_roles", "roles.manage", "--resource", "*"]);
    d.ok(&["role", "add", "r_extra"]);
    d.ok(&["role", "grant", "r_extra", "audit.view", "--resource", "*"]);
    d.ok(&["role", "add", "scratch"]);
    let master = d.ok(&["key", "add", "the-master", "--master"])["key"].as_str().unwrap().to_string();

    let builtin = gatewarden::api::routes::BUILTIN_PERMISSIONS;
    let callers: [(&str, Option<&Who>); 5] = [
        ("users.manage only", Some(&USERS_ONLY)),
        ("roles.manage only", Some(&ROLES_ONLY)),
        ("both", Some(&BOTH)),
        ("supervisor", Some(&SUPERVISOR)),
        ("superuser", None),
    ];
    let mut n = 0;
    for (label, who) in callers {
        let auth = match who {
            Some(w) => {
                user(&d, w.name, w.roles);
                json!({"token": token(&d, w.name)})
            }
            None => json!({"key": master}),
        };
        let roles: Vec<&str> = who.map(|w| w.roles.to_vec()).unwrap_or_default();
        let holds = |perm: &str| {
            who.is_none()
                || roles.iter().any(|r| match *r {
                    "r_users" => perm == "users.manage" || perm == "users.view",
                    "r_roles" => perm == "roles.manage",
                    "supervisor" => perm.starts_with("sessions.") || perm.starts_with("supervisor."),
                    _ => false,
                })
        };
        let has = |perm: &str| who.is_none() || holds(perm);
        let call = |method: &str, params: Value| code(&d.call_auth(method, params, auth.clone())).to_string();
        let expect = |ok: bool| if ok { "ok" } else { "forbidden" };

        // Grant each built-in permission (to a role, then take it back).
        for perm in builtin {
            let got = call("role.grant", json!({"role": "scratch", "permission": perm}));
            assert_eq!(got, expect(has("roles.manage") && holds(perm)), "{label}: grant {perm}");
            if got == "ok" {
                assert_eq!(
                    call("role.revoke", json!({"role": "scratch", "permission": perm})),
                    "ok",
                    "{label}: revoke {perm}"
                );
            }
        }

        // Targets: weaker (no roles), equal (the caller's roles), stronger (plus r_extra), admin.
        n += 1;
        let targets: Vec<(&str, String, Vec<&str>)> = vec![
            ("weaker", format!("weak{n}"), vec![]),
            ("equal", format!("equal{n}"), roles.clone()),
            ("stronger", format!("strong{n}"), [roles.clone(), vec!["r_extra"]].concat()),
        ];
        for (_, name, troles) in &targets {
            user(&d, name, troles);
        }
        let sink = format!("sink{n}");
        user(&d, &sink, &[]);
        let within = |kind: &str| who.is_none() || kind != "stronger";
        for (kind, name, _) in &targets {
            let manage = has("users.manage") && within(kind);
            // Assign a role the caller holds entirely (r_users when it has it, else nothing to give).
            let give = if holds("users.manage") { "r_users" } else { "r_roles" };
            let got = call("user.update", json!({"name": name, "add_roles": [give]}));
            let want =
                manage && has("roles.manage") && holds(if give == "r_users" { "users.manage" } else { "roles.manage" });
            assert_eq!(got, expect(want), "{label}: assign {give} to {kind}");
            let got = call("user.copy_roles", json!({"from": name, "to": sink}));
            let from_within = within(kind);
            let want = has("users.manage") && has("roles.manage") && from_within;
            assert_eq!(got, expect(want), "{label}: copy roles of {kind}");
            let got = call("user.set_password", json!({"name": name, "password": "taken-over-pw1"}));
            assert_eq!(got, expect(manage), "{label}: set password of {kind}");
            let got = call("user.disable", json!({"name": name}));
            assert_eq!(got, expect(manage), "{label}: disable {kind}");
            let got = call("user.delete", json!({"name": name}));
            assert_eq!(got, expect(manage), "{label}: delete {kind}");
        }
        // The admin: protected whoever asks, except its password by a superuser.
        let got = call("user.set_password", json!({"name": "admin", "password": "taken-over-pw1"}));
        let want = if who.is_none() {
            "ok"
        } else if has("users.manage") {
            "protected_account"
        } else {
            "forbidden"
        };
        assert_eq!(got, want, "{label}: set the admin's password");
        if who.is_none() {
            d.ok(&["call", "user.set_password", &json!({"name": "admin", "password": PW}).to_string()]);
        }
        for m in ["user.disable", "user.delete"] {
            let got = call(m, json!({"name": "admin"}));
            // The master key belongs to the admin: for it, deleting the admin is deleting itself.
            let want = match (who.is_none(), has("users.manage")) {
                (true, _) if m == "user.delete" => "self_delete",
                (_, true) => "protected_account",
                _ => "forbidden",
            };
            assert_eq!(got, want, "{label}: {m} admin");
        }

        // Create a key with roles within / beyond the caller's, and a master key.
        let kn = |s: &str| format!("{s}-{n}");
        let got = call("key.create", json!({"name": kn("k-own"), "roles": roles}));
        assert_eq!(
            got,
            expect(has("users.manage") && (roles.is_empty() || has("roles.manage"))),
            "{label}: key with own roles"
        );
        let got = call("key.create", json!({"name": kn("k-strong"), "roles": ["r_extra"]}));
        assert_eq!(got, expect(who.is_none()), "{label}: key with a stronger role");
        let got = call("key.create", json!({"name": kn("k-master"), "master": true}));
        assert_eq!(got, expect(who.is_none()), "{label}: master key");
        // Revoke keys: weaker, equal, stronger, the admin's master.
        d.ok(&["key", "add", &kn("rk-weak")]);
        let mut eq = vec!["key", "add"];
        let eq_name = kn("rk-equal");
        eq.push(&eq_name);
        for r in &roles {
            eq.extend(["--role", r]);
        }
        d.ok(&eq);
        d.ok(&["key", "add", &kn("rk-strong"), "--role", "r_extra"]);
        d.ok(&["key", "add", &kn("rk-master"), "--master"]);
        for (kind, key) in
            [("weaker", "rk-weak"), ("equal", "rk-equal"), ("stronger", "rk-strong"), ("admin's master", "rk-master")]
        {
            let got = call("key.revoke", json!({"name": kn(key)}));
            let want = has("users.manage") && (who.is_none() || kind == "weaker" || kind == "equal");
            assert_eq!(got, expect(want), "{label}: revoke {kind} key");
        }
    }
    // The roles.manage holder did not end up with users.manage.
    let v = d.ok(&["who-can", "users.manage", "*", "--write"]);
    assert!(!v.to_string().contains("\"rm\""), "{v}");
}

#[test]
fn refusals_by_the_ceiling_are_audited() {
    let d = Daemon::start();
    d.ok(&["role", "add", "r_roles"]);
    d.ok(&["role", "grant", "r_roles", "roles.manage", "--resource", "*"]);
    user(&d, "rm", &["r_roles"]);
    let t = token(&d, "rm");
    let r = d.call_auth("role.grant", json!({"role": "r_roles", "permission": "users.manage"}), json!({"token": t}));
    assert_eq!(code(&r), "forbidden");
    assert!(r["error"]["message"].as_str().unwrap().contains("users.manage"), "{r}");
    let audit = d.ok(&["audit", "--limit", "50"]);
    assert!(
        audit.as_array().unwrap().iter().any(|e| e["action"] == "role.grant" && e["outcome"] == "denied"),
        "{audit}"
    );
}

/// Anything a request writes into a row is bounded: resource attributes, and the selectors an audit
/// row names for a grant from a long resource list.
#[test]
fn resource_attributes_and_audited_grant_lists_are_bounded() {
    let d = Daemon::start();
    let big = json!({"id": "line1/p1", "kind": "device", "attributes": {"note": "n".repeat(2000)}});
    assert_eq!(code(&d.call("resource.add", big)), "bad_request");
    let many: serde_json::Map<String, Value> = (0..100).map(|i| (format!("a{i}"), json!("x"))).collect();
    let r = d.call("resource.add", json!({"id": "line1/p1", "kind": "device", "attributes": many}));
    assert_eq!(code(&r), "bad_request");
    let r = d.call("resource.add", json!({"id": "line1/p1", "kind": "device", "attributes": {"Bad Name": "x"}}));
    assert_eq!(code(&r), "bad_request");
    assert_eq!(d.sql_count("SELECT count(*) FROM resources"), 0);

    let csv: String = std::iter::once("device".to_string())
        .chain((0..300).map(|i| format!("line1/p{i}")))
        .collect::<Vec<_>>()
        .join("\n");
    d.ok(&["call", "resource.import", &json!({"csv": csv}).to_string()]);
    d.ok(&["role", "add", "ops"]);
    d.ok(&[
        "call",
        "role.grant",
        &json!({"role": "ops", "permission": "tag.read", "read": true, "resources_csv": csv}).to_string(),
    ]);
    d.ok(&["call", "role.revoke", &json!({"role": "ops", "permission": "tag.read"}).to_string()]);
    for action in ["role.grant", "role.revoke"] {
        let detail: String = rusqlite::Connection::open(d.db_path())
            .unwrap()
            .query_row("SELECT detail FROM audit WHERE action = ?1", [action], |r| r.get(0))
            .unwrap();
        let v: Value = serde_json::from_str(&detail).unwrap();
        assert!(v["resources"].as_array().unwrap().len() <= 20, "{action}: {detail}");
        assert!(detail.len() < 2048, "{action}: {} bytes", detail.len());
    }
}
