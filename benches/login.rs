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
//! Then the working memory, before and after its reuse (issue 15), in the same run and with the
//! daemon's allocator settings (`daemon::tune_allocator`): 1 and `CHECKERS` threads each verify `ROUNDS`
//! passwords, once with argon2's own `verify_password` (fresh 19 MiB per check, as before) and once
//! through `password::verify` (the pool: `CHECKERS` slots as the daemon sizes it, one buffer kept
//! warm between checks), twice each in
//! alternation; printed: per-check time, minor page faults, the process's peak RSS (VmHWM, reset before
//! each phase) and RSS after. The criterion group has both ways side by side as well.
//!
//! Run: `cargo bench --bench login` (wall time), or `BENCH_CLOCK=cpu cargo bench --bench login` to time
//! with the bench thread's CPU time on a loaded machine (see benches/support/mod.rs). Criterion's
//! medians land in `target/criterion/login*/*/new/estimates.json` (`login*_cpu` for the CPU clock).

mod support;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
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

/// Password checks at once: the daemon's two control-socket checks and one MQTT check (defaults).
const CHECKERS: usize = 3;
const ROUNDS: usize = 12;

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix(key)?.trim().trim_end_matches(" kB").trim().parse().ok()))
        .unwrap_or(0)
}

fn minor_faults() -> i64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut u: nix::libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { nix::libc::getrusage(nix::libc::RUSAGE_SELF, &mut u) };
    u.ru_minflt
}

/// The two ways side by side: fresh memory per check (argon2's own verifier, what `password::verify`
/// did before) and the pool; 1 thread (the usual login) and `CHECKERS` threads at once, wall clock.
fn report_memory(stored: &str) {
    password::set_memory_slots(CHECKERS);
    let parsed = PasswordHash::new(stored).expect("phc");
    let fresh = || assert!(argon2::Argon2::default().verify_password(WRONG.as_bytes(), &parsed).is_err());
    let pooled = || assert!(!password::verify(black_box(WRONG), stored));
    println!("  working memory, {ROUNDS} wrong-password checks per thread, daemon allocator settings:");
    println!(
        "    | threads | way | round | per check, median (max) | minor faults / check | peak RSS | RSS after | buffers |"
    );
    for threads in [1, CHECKERS] {
        for round in 1..=2 {
            for (way, check) in [("fresh memory (before)", &fresh as &(dyn Fn() + Sync)), ("pool (after)", &pooled)] {
                // Resets VmHWM to the current RSS (Linux clear_refs, "5").
                let _ = std::fs::write("/proc/self/clear_refs", "5");
                let faults = minor_faults();
                let mut times: Vec<f64> = std::thread::scope(|s| {
                    let hs: Vec<_> = (0..threads)
                        .map(|_| s.spawn(|| (0..ROUNDS).map(|_| ms(timed(check))).collect::<Vec<_>>()))
                        .collect();
                    hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
                });
                let faults = (minor_faults() - faults) as f64 / (threads * ROUNDS) as f64;
                let (_, median, max) = summary(&mut times);
                println!(
                    "    | {threads} | {way} | {round} | {median:.1} ms ({max:.1}) | {faults:.0} | {:.1} MiB | {:.1} MiB | {} |",
                    status_kib("VmHWM:") as f64 / 1024.0,
                    status_kib("VmRSS:") as f64 / 1024.0,
                    password::memory_buffers()
                );
            }
        }
    }
}

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
    report_memory(&stored);

    // One verification is tens of milliseconds: ten samples of a few iterations each are plenty.
    let mut group = c.benchmark_group(format!("login_argon2id_default{suffix}"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(6));
    group.bench_function("known_user/right_password", |b| b.iter(|| password::verify(black_box(PASSWORD), &stored)));
    group.bench_function("known_user/wrong_password", |b| b.iter(|| password::verify(black_box(WRONG), &stored)));
    let parsed = PasswordHash::new(&stored).expect("phc");
    group.bench_function("known_user/wrong_password_fresh_memory_before", |b| {
        b.iter(|| argon2::Argon2::default().verify_password(black_box(WRONG).as_bytes(), &parsed).is_ok())
    });
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
    // As the daemon runs (src/main.rs): without it glibc would keep freed argon2 blocks in its heap.
    gatewarden::daemon::tune_allocator();
    support::run_on_requested_clock(run, run);
}

fn run<M: Measurement>(c: Criterion<M>, suffix: &str) {
    let mut c = c.configure_from_args();
    login(&mut c, suffix);
    c.final_summary();
}
