//! The live login tokens and API keys, held in memory so that a request carrying one is answered
//! without the database: id → SHA-256 digest, owner, expiry. Loaded at start; changed only by the
//! functions of [`super`] that change the rows, in the same write step as the database, journaled
//! like the session table, so a transaction that does not commit leaves the table as it was.
//!
//! What must never happen:
//! - **A credential usable from memory that the database no longer holds** (logged out, revoked,
//!   its user disabled, deleted or given a new password, expired and pruned). Every delete of a
//!   `login_tokens` or `api_keys` row removes the ids the statement itself returned (`RETURNING id`),
//!   so memory follows exactly what the database removed, cascades included (a user's tokens and
//!   keys are deleted explicitly before the user).
//! - **A change kept in memory whose transaction rolled back.** [`Credentials::begin`] opens a journal
//!   of previous values; `Ctx`'s write helpers call [`Credentials::commit`] or
//!   [`Credentials::rollback`] when the transaction ends.
//! - **This table deciding who is live.** It only says which row a presented secret is and whether
//!   it matches (constant-time) and is unexpired; whether the account or key behind it is enabled,
//!   unexpired and not deleted is `api::auth::live`'s answer from the policy index, on every request.
//!
//! Bounds: the table holds what the two tables hold. API keys are created one by one by
//! `users.manage` holders. Login tokens expire after `accounts.token_ttl` and are pruned every
//! minute; each account keeps at most [`super::MAX_TOKENS_PER_USER`] (a login past that revokes the
//! account's oldest token), so a password holder logging in in a loop cannot grow the table.
//! About 100 bytes an entry.

use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use subtle::ConstantTimeEq;

/// A SHA-256 digest as stored.
pub type Digest32 = [u8; 32];

/// A live login token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub user_id: i64,
    pub digest: Digest32,
    pub expires_at: i64,
}

/// A live API key. Its expiry and its owner's state are the policy index's to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub owner_id: i64,
    pub digest: Digest32,
}

/// What an entry was before a change, to put back on rollback.
#[derive(Debug)]
enum Undo {
    Token(i64, Option<Token>),
    Key(i64, Option<Key>),
}

#[derive(Debug, Default)]
struct Table {
    tokens: FxHashMap<i64, Token>,
    keys: FxHashMap<i64, Key>,
    /// While a write step is open: the previous values of every entry it changed, oldest first.
    journal: Option<Vec<Undo>>,
}

impl Table {
    fn record(&mut self, undo: Undo) {
        if let Some(j) = &mut self.journal {
            j.push(undo);
        }
    }

    fn undo(&mut self, journal: Vec<Undo>) {
        for undo in journal.into_iter().rev() {
            match undo {
                Undo::Token(id, Some(t)) => {
                    self.tokens.insert(id, t);
                }
                Undo::Token(id, None) => {
                    self.tokens.remove(&id);
                }
                Undo::Key(id, Some(k)) => {
                    self.keys.insert(id, k);
                }
                Undo::Key(id, None) => {
                    self.keys.remove(&id);
                }
            }
        }
    }
}

/// The table, shared by every request. Readers take the read lock for one lookup; writers (always
/// under the store lock, so one at a time) take the write lock for one change at a time, never for
/// a whole transaction, so a policy change never makes a token request wait.
#[derive(Debug, Default)]
pub struct Credentials {
    table: RwLock<Table>,
}

/// A digest read from the database; a row whose digest is not 32 bytes can never match a secret and
/// is left out.
fn digest32(bytes: &[u8]) -> Option<Digest32> {
    bytes.try_into().ok()
}

impl Credentials {
    /// Every login token not yet expired and every API key, as the database holds them.
    pub fn load(conn: &rusqlite::Connection, now_ms: i64) -> rusqlite::Result<Credentials> {
        let mut table = Table::default();
        let mut st = conn.prepare("SELECT id, user_id, digest, expires_at FROM login_tokens WHERE expires_at > ?1")?;
        let mut rows = st.query([now_ms])?;
        while let Some(r) = rows.next()? {
            let digest: Vec<u8> = r.get(2)?;
            if let Some(digest) = digest32(&digest) {
                table.tokens.insert(r.get(0)?, Token { user_id: r.get(1)?, digest, expires_at: r.get(3)? });
            }
        }
        let mut st = conn.prepare("SELECT id, owner_id, digest FROM api_keys")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let digest: Vec<u8> = r.get(2)?;
            if let Some(digest) = digest32(&digest) {
                table.keys.insert(r.get(0)?, Key { owner_id: r.get(1)?, digest });
            }
        }
        Ok(Credentials { table: RwLock::new(table) })
    }

    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the journal of a write step. A journal still open is one whose step never ended (its
    /// handler panicked, and rusqlite rolled the transaction back): it is undone first.
    pub fn begin(&self) {
        let mut t = self.write();
        if let Some(stale) = t.journal.take() {
            t.undo(stale);
        }
        t.journal = Some(Vec::new());
    }

    /// Keeps every change since [`Credentials::begin`]: its transaction committed.
    pub fn commit(&self) {
        self.write().journal = None;
    }

    /// Undoes every change since [`Credentials::begin`], newest first: its transaction did not commit.
    pub fn rollback(&self) {
        let mut t = self.write();
        if let Some(journal) = t.journal.take() {
            t.undo(journal);
        }
    }

    /// A token row was inserted.
    pub fn put_token(&self, id: i64, token: Token) {
        let mut t = self.write();
        let before = t.tokens.insert(id, token);
        t.record(Undo::Token(id, before));
    }

    /// Token rows were deleted (the ids the DELETE returned).
    pub fn remove_tokens(&self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        let mut t = self.write();
        for id in ids {
            if let Some(before) = t.tokens.remove(id) {
                t.record(Undo::Token(*id, Some(before)));
            }
        }
    }

    /// An API key row was inserted.
    pub fn put_key(&self, id: i64, key: Key) {
        let mut t = self.write();
        let before = t.keys.insert(id, key);
        t.record(Undo::Key(id, before));
    }

    /// API key rows were deleted (the ids the DELETE returned).
    pub fn remove_keys(&self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        let mut t = self.write();
        for id in ids {
            if let Some(before) = t.keys.remove(id) {
                t.record(Undo::Key(*id, Some(before)));
            }
        }
    }

    /// The user of login token `id` when `body` is its secret and it has not expired at `now_ms`.
    pub fn token(&self, id: i64, body: &str, now_ms: i64) -> Option<i64> {
        let presented = Sha256::digest(body.as_bytes());
        let t = self.read().tokens.get(&id).copied()?;
        let matches: bool = presented.as_slice().ct_eq(&t.digest).into();
        (matches && t.expires_at > now_ms).then_some(t.user_id)
    }

    /// Whether `body` is the secret of API key `id`.
    pub fn key(&self, id: i64, body: &str) -> bool {
        let presented = Sha256::digest(body.as_bytes());
        let Some(k) = self.read().keys.get(&id).copied() else { return false };
        presented.as_slice().ct_eq(&k.digest).into()
    }

    /// How many login tokens and API keys are held.
    pub fn counts(&self) -> (usize, usize) {
        let t = self.read();
        (t.tokens.len(), t.keys.len())
    }
}

/// The digest to store and hold for a fresh secret body ([`super::secret::digest`], typed).
pub fn digest_of(body: &str) -> Digest32 {
    Sha256::digest(body.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::secret;

    fn token(user_id: i64, body: &str, expires_at: i64) -> Token {
        Token { user_id, digest: digest_of(body), expires_at }
    }

    #[test]
    fn a_token_matches_only_its_secret_and_only_until_it_expires() {
        let c = Credentials::default();
        let body = secret::random_text();
        c.put_token(7, token(3, &body, 1_000));
        assert_eq!(c.token(7, &body, 999), Some(3));
        assert_eq!(c.token(7, &body, 1_000), None);
        assert_eq!(c.token(7, &secret::random_text(), 0), None);
        assert_eq!(c.token(8, &body, 0), None);
        assert_eq!(digest_of(&body).to_vec(), secret::digest(&body));
    }

    #[test]
    fn rollback_undoes_puts_and_removes_newest_first() {
        let c = Credentials::default();
        let (a, b) = (secret::random_text(), secret::random_text());
        c.put_token(1, token(1, &a, i64::MAX));
        c.put_key(5, Key { owner_id: 1, digest: digest_of(&a) });
        c.begin();
        c.remove_tokens(&[1]);
        c.put_token(2, token(1, &b, i64::MAX));
        c.remove_keys(&[5]);
        c.put_key(6, Key { owner_id: 1, digest: digest_of(&b) });
        // Inside the step the removal holds at once.
        assert_eq!(c.token(1, &a, 0), None);
        assert!(!c.key(5, &a));
        c.rollback();
        assert_eq!(c.token(1, &a, 0), Some(1));
        assert_eq!(c.token(2, &b, 0), None);
        assert!(c.key(5, &a));
        assert!(!c.key(6, &b));
        assert_eq!(c.counts(), (1, 1));
        // After a commit nothing is undone.
        c.begin();
        c.remove_tokens(&[1]);
        c.commit();
        c.rollback();
        assert_eq!(c.token(1, &a, 0), None);
    }

    #[test]
    fn a_step_left_open_by_a_panic_is_undone_by_the_next() {
        let c = Credentials::default();
        let a = secret::random_text();
        c.begin();
        c.put_token(1, token(1, &a, i64::MAX));
        c.begin();
        assert_eq!(c.token(1, &a, 0), None);
        c.commit();
        assert_eq!(c.counts(), (0, 0));
    }
}
