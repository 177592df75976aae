//! What a login costs: argon2id password verification with the default cost of `accounts.argon2`
//! (src/config.rs), side by side for a known user (verify against the user's real hash) and an unknown
//! user (`verify_dummy`, which must cost the same so that timing does not tell whether a name exists),
//! plus hashing a new password (user create, set_password, rehash). For contrast, the check every later
//! request makes instead: a login token's SHA-256 digest compared in constant time.
//!
//! Before the groups run, the bench prints one-shot timings of the first `verify_dummy` of the process
//! (it makes the dummy hash, then verifies) and of 21 known/unknown verifications in alternation, so
//! the equal-cost claim can be read without criterion's statistics too (criterion times the cases one
//! after the other, and on a shared machine the load can change in between).
//!
//! Run: `cargo bench --bench login` (wall time), or `BENCH_CLOCK=cpu cargo bench --bench login` to time
//! with the bench thread's CPU time on a loaded machine (see benches/support/mod.rs). Criterion's
//! medians land in `target/criterion/login*/*/new/estimates.json` (`login*_cpu` for the CPU clock).

mod support;

use criterion::Criterion;
use criterion::measurement::Measurement;
use gatewarden::accounts::{password, secret};
use gatewarden::config::Argon2Config;
use std::hint::black_box;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";
const WRONG: &str = "correct horse battery stapler";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// How long `f` took, on the clock the groups use (wall, or this thread's CPU time).
fn timed(f: impl FnOnce()) -> Duration {
    if support::cpu_clock_requested() {
        let started = support::thread_cpu_now();
        f();
        support::thread_cpu_now().saturating_sub(started)
    } else {
        let started = Instant::now();
        f();
        started.elapsed()
    }
}

/// One-shot figures, printed before criterion's: the first unknown-user login of a process pays for
/// making the dummy hash; after that, known and unknown users alternate at the same cost.
fn report_one_shots(cost: &Argon2Config, stored: &str) {
    let first_dummy = timed(|| password::verify_dummy(black_box(WRONG), cost));
    println!("argon2id default cost: m = {} KiB, t = {}, p = {}", cost.memory_kib, cost.iterations, cost.parallelism);
    println!("  first verify_dummy of the process (makes the dummy hash, then verifies): {:.1} ms", ms(first_dummy));
    // Alternating, so that a change of machine load hits both sides alike.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..PAIRS {
        known.push(ms(timed(|| assert!(!password::verify(black_box(WRONG), stored)))));
        unknown.push(ms(timed(|| password::verify_dummy(black_box(WRONG), cost))));
    }
    let (k, u) = (summary(&mut known), summary(&mut unknown));
    let clock = if support::cpu_clock_requested() { "thread CPU" } else { "wall" };
    println!("  {PAIRS} alternating pairs, {clock} ms (min / median / max):");
    println!("    known user, wrong password:  {:.1} / {:.1} / {:.1}", k.0, k.1, k.2);
    println!("    unknown user (verify_dummy): {:.1} / {:.1} / {:.1}", u.0, u.1, u.2);
    println!("    median unknown / median known = {:.3}", u.1 / k.1);
}

const PAIRS: usize = 21;

/// (min, median, max) of the shots.
fn summary(shots: &mut [f64]) -> (f64, f64, f64) {
    shots.sort_by(f64::total_cmp);
    (shots[0], shots[shots.len() / 2], shots[shots.len() - 1])
}

fn login<M: Measurement>(c: &mut Criterion<M>, suffix: &str) {
    let cost = Argon2Config::default();
    let stored = password::hash(PASSWORD, &cost).expect("hash");
    assert!(password::verify(PASSWORD, &stored));
    assert!(!password::verify(WRONG, &stored));
    assert!(!password::needs_rehash(&stored, &cost));
    report_one_shots(&cost, &stored);

    // One verification is tens of milliseconds: ten samples of a few iterations each are plenty.
    let mut group = c.benchmark_group(format!("login_argon2id_default{suffix}"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(6));
    group.bench_function("known_user/right_password", |b| b.iter(|| password::verify(black_box(PASSWORD), &stored)));
    group.bench_function("known_user/wrong_password", |b| b.iter(|| password::verify(black_box(WRONG), &stored)));
    group.bench_function("unknown_user/verify_dummy", |b| b.iter(|| password::verify_dummy(black_box(WRONG), &cost)));
    group.bench_function("hash_new_password", |b| b.iter(|| password::hash(black_box(PASSWORD), &cost)));
    group.finish();

    // What every request after the login pays instead: parse the token, digest its body, compare.
    let body = secret::random_text();
    let token = secret::format(secret::TOKEN_PREFIX, 42, &body);
    let stored_digest = secret::digest(&body);
    let other_digest = secret::digest(&secret::random_text());
    let mut group = c.benchmark_group(format!("login_token_check{suffix}"));
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    let check = |digest: &[u8]| {
        let (id, body) = secret::parse(secret::TOKEN_PREFIX, black_box(&token)).expect("token");
        id == 42 && secret::matches(body, black_box(digest))
    };
    assert!(check(&stored_digest));
    assert!(!check(&other_digest));
    group.bench_function("token/valid", |b| b.iter(|| check(&stored_digest)));
    group.bench_function("token/wrong_secret", |b| b.iter(|| check(&other_digest)));
    group.finish();
}

fn main() {
    support::run_on_requested_clock(run, run);
}

fn run<M: Measurement>(c: Criterion<M>, suffix: &str) {
    let mut c = c.configure_from_args();
    login(&mut c, suffix);
    c.final_summary();
}
