//! What the benches share: a criterion measurement of the calling thread's CPU time, and the choice
//! between it and wall time.
//!
//! Why: this 2-core machine is shared with builds and tests. When more threads want a core than there
//! are cores, a wall-clock sample also counts the time the bench thread spent waiting for a core, and
//! the medians grow with the load average rather than with the code. `CLOCK_THREAD_CPUTIME_ID` counts
//! only the time the thread ran (it still pays for caches other processes evicted). Set
//! `BENCH_CLOCK=cpu` to use it; group names then end in `_cpu`, so the two kinds of estimates never
//! mix in `target/criterion`. Wall time stays the default.

use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter};
use std::time::Duration;

/// Runs a bench's groups on the clock `BENCH_CLOCK` asks for, without plots (drawing them with the
/// plotters backend takes longer than the measurements). Group names get `_cpu` on the CPU clock.
pub fn run_on_requested_clock(
    wall: impl FnOnce(criterion::Criterion, &str),
    cpu: impl FnOnce(criterion::Criterion<ThreadCpuTime>, &str),
) {
    let c = criterion::Criterion::default().without_plots();
    if cpu_clock_requested() {
        cpu(c.with_measurement(ThreadCpuTime), "_cpu");
    } else {
        wall(c, "");
    }
}

/// Which clock the groups are timed with, from `BENCH_CLOCK` (`cpu` or `wall`, the default).
pub fn cpu_clock_requested() -> bool {
    match std::env::var("BENCH_CLOCK").as_deref() {
        Ok("cpu") => true,
        Ok("wall") | Err(_) => false,
        Ok(other) => panic!("BENCH_CLOCK={other:?}: expected cpu or wall"),
    }
}

/// CPU time of the calling thread (the thread criterion runs the routine on).
pub struct ThreadCpuTime;

/// The calling thread's CPU time so far.
pub fn thread_cpu_now() -> Duration {
    let mut ts = nix::libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; this clock exists on every Linux since 2.6.12.
    let rc = unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_now()
    }

    fn end(&self, started: Duration) -> Duration {
        thread_cpu_now().saturating_sub(started)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanoseconds
    }
}

/// Formats nanoseconds like criterion's own (private) duration formatter.
struct Nanoseconds;

impl ValueFormatter for Nanoseconds {
    fn scale_values(&self, typical_ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match typical_ns {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e-3, "µs"),
            t if t < 1e9 => (1e-6, "ms"),
            _ => (1e-9, "s"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(&self, _typical_ns: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        // Not used by these benches; per second, unscaled, for completeness.
        let per_iteration = match *throughput {
            Throughput::Bits(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Elements(n) => n,
            Throughput::ElementsAndBytes { elements, .. } => elements,
        } as f64;
        values.iter_mut().for_each(|v| *v = per_iteration * 1e9 / *v);
        "/s"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}
