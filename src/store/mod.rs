//! SQLite: opening the file with the pragmas we rely on, and versioned migrations.
//!
//! Durability: WAL with `synchronous = FULL`, so a change is on stable storage before its request is
//! answered, and survives kill -9 and power loss (WAL + NORMAL would survive kill -9 but may lose the
//! last transactions on power loss). Every mutation is one transaction; the audit row and the outbox
//! event it causes are written in that same transaction.

pub mod audit;
pub mod directory;
pub mod lock;
pub mod migrations;
pub mod objects;
pub mod outbox;
pub mod policy;
pub mod policyfile;
pub mod resources;
pub mod roles;
pub mod sessions;
pub mod settings;

use rusqlite::{Connection, OpenFlags, Transaction};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error(
        "database {path} has schema version {found}, newer than this gatewarden understands ({known}); \
         install the newer gatewarden again or restore a backup"
    )]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error("migrating database {path} to schema version {version}: {source}")]
    Migrate { path: PathBuf, version: i64, source: rusqlite::Error },
    #[error("database {path}: {source}")]
    Sql { path: PathBuf, source: rusqlite::Error },
}

pub struct Store {
    pub conn: Connection,
    pub path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) and migrates the database.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
        let sql = |source| StoreError::Sql { path: path.to_path_buf(), source };
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
        // The WAL is checkpointed every 256 pages (1 MiB) and cut back to 1 MiB after: under a steady
        // stream of small writes (heartbeat batches, failed logins) it stays a small, fixed cost on a
        // panel PC's flash instead of SQLite's default 4 MiB.
        conn.pragma_update(None, "wal_autocheckpoint", 256).map_err(sql)?;
        conn.pragma_update(None, "journal_size_limit", 1024 * 1024).map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sql)?;
        let mut store = Store { conn, path: path.to_path_buf() };
        store.migrate()?;
        Ok(store)
    }

    pub fn schema_version(&self) -> rusqlite::Result<i64> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let known = migrations::MIGRATIONS.len() as i64;
        let found = self.schema_version().map_err(|source| StoreError::Sql { path: path.clone(), source })?;
        if found > known {
            return Err(StoreError::TooNew { path, found, known });
        }
        for (i, sql) in migrations::MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = i as i64 + 1;
            let fail = |source| StoreError::Migrate { path: path.clone(), version, source };
            let tx = self.conn.transaction().map_err(fail)?;
            tx.execute_batch(sql).map_err(fail)?;
            tx.pragma_update(None, "user_version", version).map_err(fail)?;
            tx.commit().map_err(fail)?;
        }
        if found < known {
            tracing::info!(from = found, to = known, "database schema migrated");
        }
        Ok(())
    }

    /// Runs `f` in one immediate transaction: all of it is applied, or none of it.
    pub fn write<T, E>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Milliseconds since the Unix epoch: the one time format in the database and on the wire.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_migrates_and_refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("g.db");
        let s = Store::open(&db).unwrap();
        assert_eq!(s.schema_version().unwrap(), migrations::MIGRATIONS.len() as i64);
        let mode: String = s.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = s.conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 1);
        s.conn.pragma_update(None, "user_version", 999).unwrap();
        drop(s);
        let err = Store::open(&db).err().unwrap();
        assert!(matches!(err, StoreError::TooNew { found: 999, .. }), "{err}");
        assert!(err.to_string().contains("newer than this gatewarden"));
    }
}
