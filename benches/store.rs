//! What durability costs: one acknowledged change (the shape of a `session.open`: a row, its audit row
//! and its outbox event, in one transaction) committed with SQLite in WAL mode at `synchronous = FULL`
//! (what gatewarden uses: the WAL is fsynced at every commit, so an acknowledged change survives power
//! loss) against `NORMAL` (fsync only at checkpoints: survives kill -9, may lose the last commits on
//! power loss) and `OFF` (never fsyncs; for scale only). The database lives under the target
//! directory, on the same disk as the build, never on a tmpfs, where fsync would cost nothing.
//!
//! Run: `cargo bench --bench store`.

use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::{Connection, params};
use std::hint::black_box;
use std::path::PathBuf;

fn open(mode: &str) -> (Connection, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-store");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{mode}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", mode).unwrap();
    conn.execute_batch(
        "CREATE TABLE s (id INTEGER PRIMARY KEY, user TEXT, host TEXT, opened INTEGER);
         CREATE TABLE audit (id INTEGER PRIMARY KEY, ts INTEGER, actor TEXT, action TEXT, detail TEXT);
         CREATE TABLE outbox (id INTEGER PRIMARY KEY, ts INTEGER, topic TEXT, payload TEXT, retain INTEGER);",
    )
    .unwrap();
    (conn, path)
}

fn change(conn: &mut Connection, i: i64) {
    let tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO s (user, host, opened) VALUES ('op1', ?1, ?2)", params![format!("panel-{i}"), i]).unwrap();
    tx.execute(
        "INSERT INTO audit (ts, actor, action, detail) VALUES (?1, 'user:op1', 'session.open', '{\"type\":\"hmi\"}')",
        [i],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO outbox (ts, topic, payload, retain) VALUES (?1, 'events/session.opened', '{\"session_id\":1}', 0)",
        [i],
    )
    .unwrap();
    tx.commit().unwrap();
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("acknowledged_change");
    g.sample_size(30);
    for mode in ["FULL", "NORMAL", "OFF"] {
        let (mut conn, path) = open(mode);
        let mut i = 0;
        g.bench_function(format!("wal_synchronous_{mode}"), |b| {
            b.iter(|| {
                i += 1;
                change(&mut conn, black_box(i));
            })
        });
        drop(conn);
        let _ = std::fs::remove_file(path);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
