//! The authorization engine against casbin-rs, side by side, on the same generated RBAC policy: role
//! `group{i}` may read `data{i/10}`, user `user{i}` belongs to `group{i/10}`; small = 100 roles / 1k users,
//! medium = 1k / 10k, large = 10k / 100k. For each size one criterion group times allow requests, deny
//! requests and a random request mix (a pre-generated list of 4096 requests, cycled, half of them
//! allowed, so a cache cannot hide the cost) for casbin's `Enforcer`, casbin's `CachedEnforcer` and our
//! `Index`; then our own extra cases (denied by an explicit deny grant, allowed by `*`, allowed by a glob)
//! the time to build our index, and the cost of one change (an account added, a grant added to a role,
//! each on a clone of the index as the daemon makes them). Three extra accounts for those cases are added to our policy only.
//!
//! Before the groups run, the bench builds the large index once and prints its build time, its live
//! heap and the process RSS, and checks that our check path allocates nothing (a counting allocator
//! wraps the system one; it counts per thread and adds no shared state to either engine's cost).
//!
//! Run: `cargo bench --bench authz` (wall time), or `BENCH_CLOCK=cpu cargo bench --bench authz` to time
//! with the bench thread's CPU time on a loaded machine (see benches/support/mod.rs). Criterion's
//! medians land in `target/criterion/authz_*/*/new/estimates.json` (`authz_*_cpu` for the CPU clock).

mod support;

use casbin::prelude::*;
use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, Criterion};
use gatewarden::authz::{
    Access, Decision, DenyReason, Effect, Grant, Index, Policy, Role, Selector, Subject, SubjectKey,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------------
// A counting allocator: allocations and live bytes of the current thread.

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
}

fn count(allocations: u64, bytes: i64) {
    // try_with: never panic inside the allocator, even while thread-locals are torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + allocations));
    let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + bytes));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1, layout.size() as i64);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(1, layout.size() as i64);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(1, new_size as i64 - layout.size() as i64);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, -(layout.size() as i64));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn live_bytes() -> i64 {
    LIVE_BYTES.with(Cell::get)
}

// ---------------------------------------------------------------------------------------------------
// The policy, in both forms.

const NOW: i64 = 1_700_000_000_000;
const MIX_LEN: usize = 4096;

struct Size {
    name: &'static str,
    roles: usize,
    users: usize,
}

const SIZES: [Size; 3] = [
    Size { name: "small", roles: 100, users: 1_000 },
    Size { name: "medium", roles: 1_000, users: 10_000 },
    Size { name: "large", roles: 10_000, users: 100_000 },
];

const CASBIN_MODEL: &str = "
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act
";

fn read_grant(id: usize, selector: Selector, effect: Effect) -> Grant {
    Grant { id: id as i64, permission: "data".into(), read: true, write: false, selector, effect }
}

fn user(id: usize, roles: Vec<i64>, direct: Vec<Grant>) -> Subject {
    Subject {
        key: SubjectKey::User(id as i64),
        name: format!("user{id}"),
        enabled: true,
        expires_at: None,
        roles,
        direct,
        superuser: false,
        owner: None,
    }
}

/// The data object user `u` may read.
fn data_of(u: usize) -> usize {
    u / 10 / 10
}

/// The three extra accounts of our policy: allowed by `*`, allowed by a glob, denied by a deny grant.
fn wild_all(size: &Size) -> SubjectKey {
    SubjectKey::User(size.users as i64)
}

fn wild_glob(size: &Size) -> SubjectKey {
    SubjectKey::User(size.users as i64 + 1)
}

fn denied(size: &Size) -> SubjectKey {
    SubjectKey::User(size.users as i64 + 2)
}

/// The user of the fixed allow and deny requests: in the middle, so casbin's scan (which stops at the
/// first allowing policy) is neither at its best nor at its worst.
fn probe_user(size: &Size) -> usize {
    size.users / 2 + 7
}

fn our_policy(size: &Size) -> Policy {
    let mut roles: Vec<Role> = (0..size.roles)
        .map(|i| Role {
            id: i as i64,
            name: format!("group{i}"),
            grants: vec![read_grant(i, Selector::Id(format!("data{}", i / 10)), Effect::Allow)],
        })
        .collect();
    let mut subjects: Vec<Subject> = (0..size.users).map(|i| user(i, vec![(i / 10) as i64], vec![])).collect();

    let (all_role, glob_role) = (size.roles, size.roles + 1);
    roles.push(Role {
        id: all_role as i64,
        name: "wild_all".into(),
        grants: vec![read_grant(all_role, Selector::All, Effect::Allow)],
    });
    let glob = Selector::Glob("data*".into());
    roles.push(Role {
        id: glob_role as i64,
        name: "wild_glob".into(),
        grants: vec![read_grant(glob_role, glob, Effect::Allow)],
    });
    subjects.push(user(size.users, vec![all_role as i64], vec![]));
    subjects.push(user(size.users + 1, vec![glob_role as i64], vec![]));
    let probe = probe_user(size);
    let deny = read_grant(size.roles + 2, Selector::Id(format!("data{}", data_of(probe))), Effect::Deny);
    subjects.push(user(size.users + 2, vec![(probe / 10) as i64], vec![deny]));
    Policy { roles, subjects, groups: vec![] }
}

fn casbin_policy(size: &Size) -> String {
    let mut text = String::new();
    for i in 0..size.roles {
        text.push_str(&format!("p, group{i}, data{}, read\n", i / 10));
    }
    for i in 0..size.users {
        text.push_str(&format!("g, user{i}, group{}\n", i / 10));
    }
    text
}

/// A request of the random mix, in both forms.
struct Request {
    subject: SubjectKey,
    user: String,
    object: String,
}

/// `MIX_LEN` random requests: random users, half of them asking for their own data object (allowed),
/// half for a random one (almost always denied). SplitMix64, seeded: the same list on every run.
fn random_mix(size: &Size) -> Vec<Request> {
    let mut state = 0x5eed_u64 ^ size.users as u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let objects = (size.roles / 10) as u64;
    (0..MIX_LEN)
        .map(|_| {
            let u = (next() % size.users as u64) as usize;
            let object = if next() % 2 == 0 { data_of(u) } else { (next() % objects) as usize };
            Request { subject: SubjectKey::User(u as i64), user: format!("user{u}"), object: format!("data{object}") }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Memory and allocation checks, printed before the timings.

fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn report_large_index_memory() {
    let large = &SIZES[2];
    let rss_start = proc_status_kib("VmRSS:");
    let policy = our_policy(large);
    let rss_policy = proc_status_kib("VmRSS:");
    let heap_before = live_bytes();
    let started = Instant::now();
    let index = Index::build(&policy);
    let build = started.elapsed();
    let index_heap = live_bytes() - heap_before;
    let rss_both = proc_status_kib("VmRSS:");
    drop(policy);
    // Hand freed pages back, so that RSS shows what holding the index alone costs.
    unsafe { nix::libc::malloc_trim(0) };
    let rss_index = proc_status_kib("VmRSS:");
    println!("authz large policy ({} roles, {} users + 3):", large.roles, large.users);
    println!("  index build (one shot): {:.1} ms", build.as_secs_f64() * 1e3);
    println!("  index live heap: {:.1} MiB", index_heap as f64 / (1024.0 * 1024.0));
    println!(
        "  process RSS: start {:.1} MiB, with policy {:.1} MiB, policy + index {:.1} MiB, index alone {:.1} MiB, peak {:.1} MiB",
        mib(rss_start),
        mib(rss_policy),
        mib(rss_both),
        mib(rss_index),
        mib(proc_status_kib("VmHWM:"))
    );
    assert!(index.check(SubjectKey::User(0), "data", Access::Read, "data0", NOW).is_allowed());
}

/// Our check must not allocate, whatever the answer.
fn assert_check_does_not_allocate(index: &Index, cases: &[(SubjectKey, &str)]) {
    for &(subject, resource) in cases {
        let warm = index.check(subject, "data", Access::Read, resource, NOW);
        let before = allocations();
        for _ in 0..1000 {
            black_box(index.check(black_box(subject), "data", Access::Read, black_box(resource), NOW));
        }
        let made = allocations() - before;
        assert_eq!(made, 0, "check({subject:?}, {resource}) = {warm:?} allocated {made} times in 1000 calls");
    }
}

// ---------------------------------------------------------------------------------------------------
// The groups.

fn bench_size<M: Measurement>(c: &mut Criterion<M>, runtime: &tokio::runtime::Runtime, size: &Size, suffix: &str) {
    let policy = our_policy(size);
    let index = Index::build(&policy);
    let mix = random_mix(size);

    let probe = probe_user(size);
    let probe_key = SubjectKey::User(probe as i64);
    let probe_name = format!("user{probe}");
    let allowed_object = format!("data{}", data_of(probe));
    let denied_object = format!("data{}", (data_of(probe) + 1) % (size.roles / 10));

    // The fixed requests answer what they claim to.
    assert!(index.check(probe_key, "data", Access::Read, &allowed_object, NOW).is_allowed());
    assert_eq!(index.check(probe_key, "data", Access::Read, &denied_object, NOW), Decision::Deny(DenyReason::NoGrant));
    assert!(matches!(
        index.check(denied(size), "data", Access::Read, &allowed_object, NOW),
        Decision::Deny(DenyReason::DeniedBy(_))
    ));
    assert!(index.check(wild_all(size), "data", Access::Read, &denied_object, NOW).is_allowed());
    assert!(index.check(wild_glob(size), "data", Access::Read, &denied_object, NOW).is_allowed());
    let mut cases = vec![
        (probe_key, allowed_object.as_str()),
        (probe_key, denied_object.as_str()),
        (denied(size), allowed_object.as_str()),
        (wild_all(size), denied_object.as_str()),
        (wild_glob(size), denied_object.as_str()),
    ];
    cases.extend(mix.iter().map(|r| (r.subject, r.object.as_str())));
    assert_check_does_not_allocate(&index, &cases);

    // Casbin, built once per size.
    let casbin_text = casbin_policy(size);
    let started = Instant::now();
    let enforcer = runtime
        .block_on(async {
            let model = DefaultModel::from_str(CASBIN_MODEL).await?;
            Enforcer::new(model, StringAdapter::new(&casbin_text)).await
        })
        .expect("casbin Enforcer");
    let enforcer_build = started.elapsed();
    let cached = runtime
        .block_on(async {
            let model = DefaultModel::from_str(CASBIN_MODEL).await?;
            CachedEnforcer::new(model, StringAdapter::new(&casbin_text)).await
        })
        .expect("casbin CachedEnforcer");
    drop(casbin_text);
    println!("casbin {} policy: Enforcer built in {:.1} ms", size.name, enforcer_build.as_secs_f64() * 1e3);

    // Both engines agree on every request they are timed with.
    let request = (probe_name.as_str(), allowed_object.as_str(), "read");
    assert!(enforcer.enforce(request).expect("enforce"));
    assert!(!enforcer.enforce((probe_name.as_str(), denied_object.as_str(), "read")).expect("enforce"));
    // The Enforcer takes milliseconds per request on the bigger policies: compare a sample there.
    for r in mix.iter().step_by((size.users / 1_000).max(1)) {
        let ours = index.check(r.subject, "data", Access::Read, &r.object, NOW).is_allowed();
        let theirs = enforcer.enforce((r.user.as_str(), r.object.as_str(), "read")).expect("enforce");
        assert_eq!(ours, theirs, "{} reads {}", r.user, r.object);
    }
    let allowed_in_mix =
        mix.iter().filter(|r| index.check(r.subject, "data", Access::Read, &r.object, NOW).is_allowed());
    println!("random mix for {}: {} of {MIX_LEN} requests allowed", size.name, allowed_in_mix.count());

    let mut group = c.benchmark_group(format!("authz_{}{suffix}", size.name));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(1));

    let ours = |group: &mut BenchmarkGroup<'_, M>, name: &str, subject: SubjectKey, resource: &str| {
        group.bench_function(format!("ours/{name}"), |b| {
            b.iter(|| index.check(black_box(subject), black_box("data"), Access::Read, black_box(resource), NOW))
        });
    };
    ours(&mut group, "allow", probe_key, &allowed_object);
    ours(&mut group, "deny", probe_key, &denied_object);
    // The cursor lives outside the routine: criterion calls it once per sample, and a cursor reset to 0
    // each time would replay the same first requests (which a cache then answers).
    let mut next = 0;
    group.bench_function("ours/random_mix", |b| {
        b.iter(|| {
            let r = &mix[next % MIX_LEN];
            next += 1;
            index.check(black_box(r.subject), black_box("data"), Access::Read, black_box(&r.object), NOW)
        })
    });
    ours(&mut group, "deny_by_grant", denied(size), &allowed_object);
    ours(&mut group, "wildcard_all", wild_all(size), &denied_object);
    ours(&mut group, "wildcard_glob", wild_glob(size), &denied_object);
    group.bench_function("ours/build", |b| b.iter_with_large_drop(|| Index::build(black_box(&policy))));
    // One change, as the daemon makes it: the published index cloned (its tables shared) and one
    // account added, or one role given one more grant; the old index stays whole beside it.
    let newcomer = user(size.users + 3, vec![(probe / 10) as i64], vec![]);
    group.bench_function("ours/change_user_create", |b| {
        b.iter_with_large_drop(|| {
            let mut next = index.clone();
            next.set_subject(newcomer.key, Some(black_box(&newcomer)));
            next
        })
    });
    let mut role = policy.roles[probe / 10].clone();
    role.grants.push(read_grant(size.roles + 10, Selector::Id("data-extra".into()), Effect::Allow));
    group.bench_function("ours/change_role_grant", |b| {
        b.iter_with_large_drop(|| {
            let mut next = index.clone();
            next.set_role(role.id, Some(black_box(&role)));
            next
        })
    });

    // Casbin scans every policy line per request: give it more time per sample on the big policies.
    let casbin_time = if size.roles >= 10_000 { 3 } else { 2 };
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(casbin_time));
    let requests = Requests { probe: &probe_name, allowed: &allowed_object, denied: &denied_object, mix: &mix };
    bench_casbin(&mut group, "casbin_enforcer", &requests, |r| enforcer.enforce(r));
    bench_casbin(&mut group, "casbin_cached", &requests, |r| cached.enforce(r));
    group.finish();
}

/// The requests casbin is timed with.
struct Requests<'a> {
    probe: &'a str,
    allowed: &'a str,
    denied: &'a str,
    mix: &'a [Request],
}

fn bench_casbin<M: Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    engine: &str,
    requests: &Requests<'_>,
    enforce: impl Fn((&str, &str, &str)) -> casbin::Result<bool>,
) {
    group.bench_function(format!("{engine}/allow"), |b| {
        b.iter(|| enforce(black_box((requests.probe, requests.allowed, "read"))))
    });
    group.bench_function(format!("{engine}/deny"), |b| {
        b.iter(|| enforce(black_box((requests.probe, requests.denied, "read"))))
    });
    // As for ours: one cursor for the whole run, so that the CachedEnforcer (LRU of 200 by default) sees
    // the whole cycle of MIX_LEN requests and not the first few again and again.
    let mut next = 0;
    group.bench_function(format!("{engine}/random_mix"), |b| {
        b.iter(|| {
            let r = &requests.mix[next % MIX_LEN];
            next += 1;
            enforce(black_box((r.user.as_str(), r.object.as_str(), "read")))
        })
    });
}

fn main() {
    report_large_index_memory();
    support::run_on_requested_clock(run, run);
}

fn run<M: Measurement>(c: Criterion<M>, suffix: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime");
    let mut c = c.configure_from_args();
    for size in &SIZES {
        bench_size(&mut c, &runtime, size, suffix);
    }
    c.final_summary();
}
