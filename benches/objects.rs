//! Objects: the engine's cost of answering "may this user read this object?" with 100 000 users
//! present, by the reason that decides (current: one check on the current index; historical: a
//! current check that fails, then one on the snapshot of the object's epoch; explicit: both fail,
//! then the explicit-reader lookup; denied: all three), with 200 policy epochs held as snapshots. And
//! the engine's side of creating an object (stamp the epoch, keep the published index) at 1 000 and
//! 100 000 users, to show it does not grow with them. First it prints what 1000 held epochs cost in
//! memory (RSS growth).
//!
//! Run: `cargo bench --bench objects` (`BENCH_CLOCK=cpu` for thread CPU time on a busy machine).

mod support;

use criterion::Criterion;
use criterion::measurement::Measurement;
use gatewarden::authz::{Access, Grant, Index, Policy, Role, Selector, Subject, SubjectKey};
use gatewarden::objects::history::History;
use gatewarden::objects::{Object, Why, may_read};
use rustc_hash::FxHashSet;
use std::hint::black_box;
use std::sync::Arc;

const NOW: i64 = 1_000_000;
const ROLES: i64 = 100;
const EPOCHS: i64 = 200;

fn grant(id: i64, permission: &str, resource: &str) -> Grant {
    Grant {
        id,
        permission: permission.into(),
        read: true,
        write: false,
        selector: Selector::Glob(resource.into()),
        effect: Default::default(),
    }
}

/// `users` accounts, each holding one of 100 roles; role r reads `batch.record` on `line{r % 10}/*`.
fn policy(users: i64) -> Policy {
    let roles = (1..=ROLES)
        .map(|r| Role {
            id: r,
            name: format!("role{r}"),
            grants: vec![grant(r, "batch.record", &format!("line{}/*", r % 10))],
        })
        .collect();
    let subjects = (1..=users)
        .map(|u| Subject {
            key: SubjectKey::User(u),
            name: format!("user{u}"),
            enabled: true,
            expires_at: None,
            roles: vec![1 + u % ROLES],
            direct: vec![],
            superuser: false,
            owner: None,
        })
        .collect();
    Policy { roles, subjects, groups: vec![] }
}

/// The current index after `EPOCHS` policy changes (one user's roles each), and the history holding
/// the index of every epoch (an object created in each).
fn with_history(users: i64) -> (Arc<Index>, History) {
    let policy = policy(users);
    let mut index = Arc::new(Index::build(&policy));
    let mut history = History::default();
    for e in 0..EPOCHS {
        history.created(e, &index);
        let mut next = (*index).clone();
        let mut s = policy.subjects[(e as usize * 7919 + 1) % policy.subjects.len()].clone();
        s.roles = vec![];
        next.set_subject(s.key, Some(&s));
        index = Arc::new(next);
    }
    (index, history)
}

fn bench<M: Measurement>(c: &mut Criterion<M>, suffix: &str) {
    let users = 100_000;
    let (now_index, history) = with_history(users);
    // User 1 holds role 2 (reads line2/*) throughout; user 2 (role 3, line3/*) is taken out of its
    // role by the change that ends epoch 0, so it reads line3 objects of epoch 0 historically only.
    let reader = SubjectKey::User(1);
    let revoked = SubjectKey::User(2);
    let then = history.at(0).map(|i| &**i);
    let current_obj = Object { kind: "batch.record", resource: "line2/mixer", epoch: 0, created_at: NOW - 10 };
    let revoked_obj = Object { kind: "batch.record", resource: "line3/mixer", epoch: 0, created_at: NOW - 10 };
    let other = SubjectKey::User(3); // role 4: line4/*
    let given: FxHashSet<(i64, i64)> = (0..10_000).map(|i| (i, i % users)).chain([(42, 3)]).collect();
    let explicit_of = |obj: i64, user: SubjectKey| match user {
        SubjectKey::User(u) => given.contains(&(obj, u)),
        SubjectKey::Key(_) => false,
    };

    assert!(matches!(may_read(&now_index, then, &current_obj, || false, reader, NOW), Ok(Why::Current(_))));
    assert!(
        matches!(may_read(&now_index, then, &revoked_obj, || false, revoked, NOW), Ok(Why::Historical(_))),
        "user {revoked:?}: {:?}",
        may_read(&now_index, then, &revoked_obj, || false, revoked, NOW)
    );
    assert!(matches!(
        may_read(&now_index, then, &current_obj, || explicit_of(42, other), other, NOW),
        Ok(Why::Explicit)
    ));
    assert!(may_read(&now_index, then, &current_obj, || explicit_of(43, other), other, NOW).is_err());

    let mut g = c.benchmark_group(format!("objects_100k_users{suffix}"));
    g.bench_function("check_current", |b| {
        b.iter(|| may_read(&now_index, then, black_box(&current_obj), || false, black_box(reader), NOW))
    });
    g.bench_function("check_historical", |b| {
        b.iter(|| may_read(&now_index, then, black_box(&revoked_obj), || false, black_box(revoked), NOW))
    });
    g.bench_function("check_explicit", |b| {
        b.iter(|| may_read(&now_index, then, black_box(&current_obj), || explicit_of(42, other), black_box(other), NOW))
    });
    g.bench_function("check_denied", |b| {
        b.iter(|| may_read(&now_index, then, black_box(&current_obj), || explicit_of(43, other), black_box(other), NOW))
    });
    g.bench_function("plain_index_check", |b| {
        b.iter(|| now_index.check(black_box(reader), "batch.record", Access::Read, black_box("line2/mixer"), NOW))
    });
    g.finish();

    // Creating an object: the engine's side (count it in its epoch, keep the published index),
    // at two sizes. A new epoch each time, the costlier case.
    let mut g = c.benchmark_group(format!("objects_create{suffix}"));
    for users in [1_000, 100_000] {
        let index = Arc::new(Index::build(&policy(users)));
        g.bench_function(format!("new_epoch_{users}_users"), |b| {
            let mut history = History::default();
            let mut epoch = 0;
            b.iter(|| {
                epoch += 1;
                history.created(epoch, &index);
                if history.len() > 1000 {
                    history = History::default();
                }
            })
        });
    }
    g.finish();
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// What the snapshots cost in memory: 1000 epochs held at 10 000 and 100 000 users, each after a
/// change to one account (the common case: a role given or taken), measured as the process's RSS
/// growth.
fn report_snapshot_memory() {
    for users in [10_000, 100_000] {
        snapshot_memory(users);
    }
}

fn snapshot_memory(users: i64) {
    let policy = policy(users);
    let mut index = Arc::new(Index::build(&policy));
    let before = rss_kib();
    let mut history = History::default();
    for e in 0..1000 {
        history.created(e, &index);
        let mut next = (*index).clone();
        let mut s = policy.subjects[(e as usize * 7919 + 1) % policy.subjects.len()].clone();
        s.roles = vec![1 + (e % ROLES)];
        next.set_subject(s.key, Some(&s));
        index = Arc::new(next);
    }
    let after = rss_kib();
    println!(
        "snapshots: 1000 epochs at {users} users, one account changed between each: RSS +{} KiB ({:.1} KiB an epoch)",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / 1000.0
    );
    black_box(&history);
}

fn main() {
    report_snapshot_memory();
    support::run_on_requested_clock(run, run);
}

fn run<M: Measurement>(c: Criterion<M>, suffix: &str) {
    let mut c = c.configure_from_args();
    bench(&mut c, suffix);
    c.final_summary();
}
