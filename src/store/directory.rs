//! The directory people table (migration 7): for each account that came from the plant directory,
//! its DN, its groups, the roles the mapping gave it and the offline verifier. Never a password.

use rusqlite::{Connection, OptionalExtension, params};

/// One directory person as kept here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub user_id: i64,
    pub name: String,
    pub enabled: bool,
    pub dn: String,
    pub groups: Vec<String>,
    pub mapped_roles: Vec<String>,
    /// argon2id PHC string of the last password the directory accepted.
    pub verifier: Option<String>,
    pub verified_at: Option<i64>,
    pub synced_at: Option<i64>,
    /// Disabled here because the directory disabled or removed the person (not by hand).
    pub disabled_by_directory: bool,
}

fn list_of(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

fn json_of(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

const COLUMNS: &str = "u.id, u.name, u.enabled, p.dn, p.groups, p.mapped_roles, p.verifier, p.verified_at, p.synced_at, p.disabled_by_directory";

fn person_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    Ok(Person {
        user_id: r.get(0)?,
        name: r.get(1)?,
        enabled: r.get(2)?,
        dn: r.get(3)?,
        groups: list_of(r.get(4)?),
        mapped_roles: list_of(r.get(5)?),
        verifier: r.get(6)?,
        verified_at: r.get(7)?,
        synced_at: r.get(8)?,
        disabled_by_directory: r.get(9)?,
    })
}

/// The directory person of that account name, if it is one.
pub fn find(conn: &Connection, name: &str) -> rusqlite::Result<Option<Person>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users u JOIN directory_people p ON p.user_id = u.id WHERE u.name = ?1"
    ))?
    .query_row([name], person_row)
    .optional()
}

/// Every directory person, by id.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Person>> {
    let mut st = conn
        .prepare(&format!("SELECT {COLUMNS} FROM users u JOIN directory_people p ON p.user_id = u.id ORDER BY u.id"))?;
    let rows = st.query_map([], person_row)?;
    rows.collect()
}

/// Marks an account as the directory's (it was created by the first directory login).
pub fn mark_directory(tx: &Connection, user_id: i64) -> rusqlite::Result<usize> {
    tx.execute("UPDATE users SET source = 'directory' WHERE id = ?1", [user_id])
}

/// Saves what a directory login or a sync found; `verifier` only after a login (a sync never sees a
/// password): `None` keeps the stored one and its time.
pub fn save(
    tx: &Connection,
    user_id: i64,
    dn: &str,
    groups: &[String],
    mapped_roles: &[String],
    verifier: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    let login = verifier.is_some();
    tx.prepare_cached(
        "INSERT INTO directory_people (user_id, dn, groups, mapped_roles, verifier, verified_at, synced_at)
         VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?7 THEN ?6 END, ?6)
         ON CONFLICT (user_id) DO UPDATE SET dn = ?2, groups = ?3, mapped_roles = ?4,
             verifier = coalesce(?5, verifier),
             verified_at = CASE WHEN ?7 THEN ?6 ELSE verified_at END,
             synced_at = ?6",
    )?
    .execute(params![user_id, dn, json_of(groups), json_of(mapped_roles), verifier, now, login])?;
    Ok(())
}

/// Forgets the offline verifier (the person is gone or disabled in the directory).
pub fn forget_verifier(tx: &Connection, user_id: i64) -> rusqlite::Result<usize> {
    tx.execute("UPDATE directory_people SET verifier = NULL, verified_at = NULL WHERE user_id = ?1", [user_id])
}

/// Notes whether the account is disabled because the directory disabled or removed the person (a
/// later sync or login enables it again when the directory has the person back), or not (disabled or
/// enabled by hand: the directory leaves it so). A no-op for local accounts.
pub fn set_disabled_by_directory(tx: &Connection, user_id: i64, by_directory: bool) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE directory_people SET disabled_by_directory = ?2 WHERE user_id = ?1",
        params![user_id, by_directory],
    )
}

/// Takes roles out of what the mapping gave a person: they were assigned by hand since, and a later
/// change of the person's groups must not take them back. A no-op for local accounts.
pub fn unmap_roles(tx: &Connection, user_id: i64, roles: &[String]) -> rusqlite::Result<()> {
    if roles.is_empty() {
        return Ok(());
    }
    let mapped: Option<String> = tx
        .prepare_cached("SELECT mapped_roles FROM directory_people WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()?;
    let Some(mapped) = mapped else { return Ok(()) };
    let before = list_of(mapped);
    let kept: Vec<String> =
        before.iter().filter(|r| !roles.iter().any(|x| x.eq_ignore_ascii_case(r))).cloned().collect();
    if kept.len() != before.len() {
        tx.execute(
            "UPDATE directory_people SET mapped_roles = ?2 WHERE user_id = ?1",
            params![user_id, json_of(&kept)],
        )?;
    }
    Ok(())
}
