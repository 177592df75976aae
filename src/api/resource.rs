//! `resource.*` (the plant's inventory) and `group.*` (resource groups, `@name` in selectors).
//! Imports are all-or-nothing unless `ignore_missing` says to skip unknown resources.

use super::auth::Caller;
use super::role::{resolve_list, row_errors};
use super::{Ctx, params};
use crate::authz::{is_valid_group_name, validate_resource_id};
use crate::csvfile::{self, RowErrors};
use crate::protocol::ApiError;
use crate::store::audit::{self, Outcome};
use crate::store::now_ms;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Reading the inventory needs an account, nothing more: resource names are what every HMI shows.
fn require_account(caller: &Caller) -> Result<(), ApiError> {
    match caller.subject() {
        Some(_) => Ok(()),
        None if caller.is_superuser() => Ok(()),
        None => Err(ApiError::unauthenticated("this request needs credentials")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddParams {
    id: String,
    kind: String,
    #[serde(default)]
    attributes: Map<String, Value>,
}

/// At most this many attributes on one resource, as a CSV inventory could carry.
const MAX_ATTRIBUTES: usize = 64;

/// Attributes as `resource import` bounds them: column-like names, and text values of at most
/// `csvfile::MAX_ATTRIBUTE_LEN` bytes (other JSON values at most that long once written).
fn check_attributes(attrs: &Map<String, Value>) -> Result<(), ApiError> {
    if attrs.len() > MAX_ATTRIBUTES {
        return Err(ApiError::bad_request(format!("at most {MAX_ATTRIBUTES} attributes per resource")));
    }
    for (k, v) in attrs {
        if !csvfile::is_valid_column_name(k) {
            return Err(ApiError::bad_request(format!(
                "attribute name {} is not valid: use a lowercase word like serial",
                crate::logs::cut(k)
            )));
        }
        let len = match v {
            Value::String(s) => s.len(),
            other => other.to_string().len(),
        };
        if len > csvfile::MAX_ATTRIBUTE_LEN {
            return Err(ApiError::bad_request(format!(
                "attribute {k}: the value is {len} bytes long; at most {}",
                csvfile::MAX_ATTRIBUTE_LEN
            )));
        }
    }
    Ok(())
}

pub fn add(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: AddParams = params("resource.add", &p)?;
    validate_resource_id(&p.id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !csvfile::is_valid_column_name(&p.kind) {
        return Err(ApiError::bad_request(format!("kind {:?} is not valid: use a lowercase word like device", p.kind)));
    }
    check_attributes(&p.attributes)?;
    ctx.write_policy(|tx| {
        let exists: i64 = tx.query_row("SELECT count(*) FROM resources WHERE id = ?1", [&p.id], |r| r.get(0))?;
        if exists > 0 {
            return Err(ApiError::conflict(format!("resource {:?} already exists", p.id)));
        }
        let now = now_ms();
        tx.execute(
            "INSERT INTO resources (id, kind, attributes, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            params![p.id, p.kind, Value::Object(p.attributes.clone()).to_string(), now],
        )?;
        audit::record(tx, &caller.actor(), "resource.add", Some(&p.id), Outcome::Ok, Some(&json!({"kind": p.kind})))?;
        Ok(())
    })?;
    Ok(json!({ "id": p.id, "kind": p.kind, "attributes": p.attributes }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    kind: Option<String>,
    group: Option<String>,
}

pub fn list(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: ListParams = params("resource.list", &p)?;
    require_account(caller)?;
    let store = ctx.store();
    let mut st = store.conn.prepare_cached(
        "SELECT r.id, r.kind, r.attributes,
                (SELECT group_concat(g.name, ',') FROM group_members m JOIN resource_groups g ON g.id = m.group_id
                  WHERE m.resource_id = r.id)
         FROM resources r
         WHERE (?1 IS NULL OR r.kind = ?1)
           AND (?2 IS NULL OR r.id IN (SELECT m.resource_id FROM group_members m
                                       JOIN resource_groups g ON g.id = m.group_id WHERE g.name = ?2))
         ORDER BY r.id",
    )?;
    let rows = st.query_map(params![p.kind, p.group], |r| {
        let attrs: Option<String> = r.get(2)?;
        let groups: Option<String> = r.get(3)?;
        Ok(json!({
            "id": r.get::<_, String>(0)?,
            "kind": r.get::<_, String>(1)?,
            "groups": groups.map(|g| g.split(',').map(str::to_string).collect::<Vec<_>>()).unwrap_or_default(),
            "attributes": attrs.and_then(|a| serde_json::from_str::<Value>(&a).ok()).unwrap_or(json!({})),
        }))
    })?;
    Ok(Value::Array(rows.collect::<Result<_, _>>()?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdParams {
    id: String,
}

pub fn delete(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: IdParams = params("resource.delete", &p)?;
    ctx.write_policy(|tx| {
        if tx.execute("DELETE FROM resources WHERE id = ?1", [&p.id])? == 0 {
            return Err(ApiError::not_found(format!("no resource {:?}", p.id)));
        }
        audit::record(tx, &caller.actor(), "resource.delete", Some(&p.id), Outcome::Ok, None)?;
        Ok(())
    })?;
    Ok(json!({ "deleted": p.id }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportParams {
    csv: String,
}

/// Creates or updates resources from an inventory file, all or nothing.
pub fn import(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: ImportParams = params("resource.import", &p)?;
    let sheet = csvfile::parse_inventory(&p.csv).map_err(row_errors)?;
    ctx.write_policy(|tx| {
        let (mut created, mut updated, mut errors) = (0, 0, RowErrors::default());
        let now = now_ms();
        for row in &sheet.rows {
            let kind: Option<String> = tx
                .prepare_cached("SELECT kind FROM resources WHERE id = ?1")?
                .query_row([&row.id], |r| r.get(0))
                .optional()?;
            let attrs = Value::Object(row.attributes.clone()).to_string();
            match kind {
                Some(k) if k != sheet.kind => {
                    errors.push(row.line, format!("{:?} exists as a {k}, not a {} (mixed kinds)", row.id, sheet.kind))
                }
                Some(_) => {
                    tx.execute(
                        "UPDATE resources SET attributes = ?2, updated_at = ?3 WHERE id = ?1",
                        params![row.id, attrs, now],
                    )?;
                    updated += 1;
                }
                None => {
                    tx.execute(
                        "INSERT INTO resources (id, kind, attributes, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                        params![row.id, sheet.kind, attrs, now],
                    )?;
                    created += 1;
                }
            }
        }
        if !errors.is_empty() {
            // Returning the error drops the transaction: nothing of the file is applied.
            return Err(row_errors(errors));
        }
        let detail = json!({"kind": sheet.kind, "created": created, "updated": updated});
        audit::record(tx, &caller.actor(), "resource.import", None, Outcome::Ok, Some(&detail))?;
        Ok(json!({ "kind": sheet.kind, "created": created, "updated": updated }))
    })
}

fn group_id(conn: &Connection, name: &str) -> Result<i64, ApiError> {
    conn.prepare_cached("SELECT id FROM resource_groups WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| ApiError::not_found(format!("no resource group named {name:?}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupCreateParams {
    name: String,
    description: Option<String>,
}

pub fn group_create(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: GroupCreateParams = params("group.create", &p)?;
    if !is_valid_group_name(&p.name) {
        return Err(ApiError::bad_request(format!(
            "group name {:?} is not valid: letters, digits, '.', '_' and '-', starting with a letter or digit",
            p.name
        )));
    }
    ctx.write_policy(|tx| {
        if group_id(tx, &p.name).is_ok() {
            return Err(ApiError::conflict(format!("a resource group named {:?} already exists", p.name)));
        }
        tx.execute(
            "INSERT INTO resource_groups (name, description, created_at) VALUES (?1, ?2, ?3)",
            params![p.name, p.description, now_ms()],
        )?;
        audit::record(tx, &caller.actor(), "group.create", Some(&p.name), Outcome::Ok, None)?;
        Ok(())
    })?;
    Ok(json!({ "name": p.name, "description": p.description, "members": [] }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

pub fn group_list(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let _: Empty = params("group.list", &p)?;
    require_account(caller)?;
    let store = ctx.store();
    let mut st = store.conn.prepare_cached(
        "SELECT g.name, g.description, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)
         FROM resource_groups g ORDER BY g.name",
    )?;
    let rows = st.query_map([], |r| {
        Ok(json!({"name": r.get::<_, String>(0)?, "description": r.get::<_, Option<String>>(1)?,
                  "members": r.get::<_, i64>(2)?}))
    })?;
    Ok(Value::Array(rows.collect::<Result<_, _>>()?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersParams {
    group: String,
    #[serde(default)]
    resources: Vec<String>,
    /// A resource list (CSV text); with `group.import` or in place of `resources`.
    csv: Option<String>,
    #[serde(default)]
    ignore_missing: bool,
}

/// `group.add` and `group.import`: puts existing resources into a group, all or nothing unless
/// `ignore_missing`.
/// `group.add`: members by id.
pub fn group_add_members(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    group_add(ctx, caller, &p, "group.add")
}

/// `group.import`: members from a CSV list.
pub fn group_import(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    group_add(ctx, caller, &p, "group.import")
}

fn group_add(ctx: &Ctx, caller: &Caller, p: &Value, method: &str) -> Result<Value, ApiError> {
    let p: MembersParams = params(method, p)?;
    // A member is a canonical id, like every id that enters (removing one that is not stays possible).
    for id in &p.resources {
        validate_resource_id(id).map_err(|e| ApiError::bad_request(format!("{e}; nothing changed")))?;
    }
    ctx.write_policy(|tx| {
        let gid = group_id(tx, &p.group)?;
        let (ids, skipped) = match &p.csv {
            Some(text) => resolve_list(tx, text, p.ignore_missing)?,
            None => {
                let mut ids = Vec::new();
                let mut skipped = Vec::new();
                let mut missing = Vec::new();
                for id in &p.resources {
                    let n: i64 = tx.query_row("SELECT count(*) FROM resources WHERE id = ?1", [id], |r| r.get(0))?;
                    match (n > 0, p.ignore_missing) {
                        (true, _) => ids.push(id.clone()),
                        (false, true) => skipped.push(json!({"id": id})),
                        (false, false) => missing.push(id.as_str()),
                    }
                }
                if !missing.is_empty() {
                    let more = missing.len().saturating_sub(csvfile::MAX_REPORTED);
                    let listed = missing.iter().take(csvfile::MAX_REPORTED).copied().collect::<Vec<_>>().join(", ");
                    let more = if more > 0 { format!(" (and {more} more)") } else { String::new() };
                    return Err(ApiError::not_found(format!("no resource named {listed}{more}; nothing changed")));
                }
                (ids, skipped)
            }
        };
        let mut added = 0;
        for id in &ids {
            added += tx.execute(
                "INSERT OR IGNORE INTO group_members (group_id, resource_id) VALUES (?1, ?2)",
                params![gid, id],
            )?;
        }
        let detail = json!({"added": added, "skipped": skipped.len()});
        audit::record(tx, &caller.actor(), method, Some(&p.group), Outcome::Ok, Some(&detail))?;
        Ok(json!({ "group": p.group, "added": added, "skipped": skipped }))
    })
}

pub fn group_remove(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: MembersParams = params("group.remove", &p)?;
    ctx.write_policy(|tx| {
        let gid = group_id(tx, &p.group)?;
        let mut removed = 0;
        for id in &p.resources {
            removed +=
                tx.execute("DELETE FROM group_members WHERE group_id = ?1 AND resource_id = ?2", params![gid, id])?;
        }
        audit::record(
            tx,
            &caller.actor(),
            "group.remove",
            Some(&p.group),
            Outcome::Ok,
            Some(&json!({"removed": removed})),
        )?;
        Ok(json!({ "group": p.group, "removed": removed }))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameParams {
    name: String,
}

pub fn group_delete(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: NameParams = params("group.delete", &p)?;
    ctx.write_policy(|tx| {
        let gid = group_id(tx, &p.name)?;
        tx.execute("DELETE FROM resource_groups WHERE id = ?1", [gid])?;
        audit::record(tx, &caller.actor(), "group.delete", Some(&p.name), Outcome::Ok, None)?;
        Ok(())
    })?;
    Ok(json!({ "deleted": p.name }))
}
