//! `resource.*` (the plant's inventory) and `group.*` (resource groups, `@name` in selectors).
//! Imports are all-or-nothing unless `ignore_missing` says to skip unknown resources.
//!
//! Reading the inventory needs an account, nothing more (the route table asks for it): resource
//! names are what every HMI shows.

use super::Ctx;
use super::auth::Caller;
use crate::authz::{is_valid_group_name, validate_resource_id};
use crate::contract::Method;
use crate::contract::policy::{
    Deleted, GroupAdd, GroupCreate, GroupCreated, GroupDelete, GroupImport, GroupList, GroupRemove, GroupSummary,
    Imported, MembersAdded, MembersRemoved, ResourceAdd, ResourceDelete, ResourceImport, ResourceList, ResourceView,
    Skipped,
};
use crate::csvfile::{self, RowErrors};
use crate::protocol::ApiError;
use crate::store::audit::{self, Outcome};
use crate::store::{now_ms, resources};
use crate::text::{self, Lines};
use rusqlite::Connection;
use serde_json::{Map, Value, json};

/// At most this many attributes on one resource, as a CSV inventory could carry.
const MAX_ATTRIBUTES: usize = 64;

/// Attributes as `resource import` bounds them: column-like names, and text values of at most
/// `csvfile::MAX_ATTRIBUTE_LEN` bytes (other JSON values at most that long once written).
pub(crate) fn check_attributes(attrs: &Map<String, Value>) -> Result<(), ApiError> {
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

pub fn add(ctx: &Ctx, caller: &Caller, p: ResourceAdd) -> Result<ResourceView, ApiError> {
    validate_resource_id(&p.id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !csvfile::is_valid_column_name(&p.kind) {
        return Err(ApiError::bad_request(format!("kind {:?} is not valid: use a lowercase word like device", p.kind)));
    }
    check_attributes(&p.attributes)?;
    ctx.write_policy(|tx| {
        if resources::exists(tx, &p.id)? {
            return Err(ApiError::conflict(format!("resource {:?} already exists", p.id)));
        }
        resources::insert(tx, &p.id, &p.kind, &p.attributes, now_ms())?;
        let detail = json!({"kind": p.kind});
        audit::record(tx, &caller.actor(), ResourceAdd::NAME, Some(&p.id), Outcome::Ok, Some(&detail))?;
        Ok(())
    })?;
    Ok(ResourceView { id: p.id, kind: p.kind, groups: Vec::new(), attributes: p.attributes })
}

pub fn list(ctx: &Ctx, _caller: &Caller, p: ResourceList) -> Result<Vec<ResourceView>, ApiError> {
    Ok(resources::list(&ctx.store().conn, p.kind.as_deref(), p.group.as_deref())?)
}

pub fn delete(ctx: &Ctx, caller: &Caller, p: ResourceDelete) -> Result<Deleted, ApiError> {
    ctx.write_policy(|tx| {
        if !resources::delete(tx, &p.id)? {
            return Err(ApiError::not_found(format!("no resource {:?}", p.id)));
        }
        audit::record(tx, &caller.actor(), ResourceDelete::NAME, Some(&p.id), Outcome::Ok, None)?;
        Ok(())
    })?;
    Ok(Deleted { deleted: p.id })
}

/// Creates or updates resources from an inventory file, all or nothing.
pub fn import(ctx: &Ctx, caller: &Caller, p: ResourceImport) -> Result<Imported, ApiError> {
    let sheet = csvfile::parse_inventory(&p.csv).map_err(row_errors)?;
    ctx.write_policy(|tx| {
        let (mut created, mut updated, mut errors) = (0, 0, RowErrors::default());
        let now = now_ms();
        for row in &sheet.rows {
            match resources::kind_of(tx, &row.id)? {
                Some(k) if k != sheet.kind => {
                    errors.push(row.line, format!("{:?} exists as a {k}, not a {} (mixed kinds)", row.id, sheet.kind))
                }
                Some(_) => {
                    resources::set_attributes(tx, &row.id, &row.attributes, now)?;
                    updated += 1;
                }
                None => {
                    resources::insert(tx, &row.id, &sheet.kind, &row.attributes, now)?;
                    created += 1;
                }
            }
        }
        if !errors.is_empty() {
            // Returning the error drops the transaction: nothing of the file is applied.
            return Err(row_errors(errors));
        }
        let detail = json!({"kind": sheet.kind, "created": created, "updated": updated});
        audit::record(tx, &caller.actor(), ResourceImport::NAME, None, Outcome::Ok, Some(&detail))?;
        Ok(Imported { kind: sheet.kind.clone(), created, updated })
    })
}

/// Resolves a CSV resource list against the inventory: every row must name an existing resource of
/// the header's kind. Returns the ids to apply and the rows skipped by `ignore_missing`.
pub fn resolve_list(
    conn: &Connection,
    text: &str,
    ignore_missing: bool,
) -> Result<(Vec<String>, Vec<Skipped>), ApiError> {
    let sheet = csvfile::parse_list(text).map_err(row_errors)?;
    let mut ids = Vec::new();
    let mut skipped = Vec::new();
    let mut errors = RowErrors::default();
    for row in sheet.rows {
        match resources::kind_of(conn, &row.id)? {
            Some(k) if k == sheet.kind => ids.push(row.id),
            Some(k) => errors.push(row.line, format!("{:?} is a {k}, not a {} (mixed kinds)", row.id, sheet.kind)),
            None if ignore_missing => skipped.push(Skipped { line: Some(row.line), id: row.id }),
            None => errors.push(row.line, format!("no {} named {:?} in the inventory", sheet.kind, row.id)),
        }
    }
    if errors.is_empty() { Ok((ids, skipped)) } else { Err(row_errors(errors)) }
}

/// A bad file: the first bad rows in `errors` (the first few in the message too), how many more in
/// `more_errors`.
pub fn row_errors(errors: RowErrors) -> ApiError {
    let (shown, more) = errors.data();
    ApiError::bad_request(errors.summary()).with("errors", shown).with("more_errors", more)
}

fn group_id(conn: &Connection, name: &str) -> Result<i64, ApiError> {
    resources::group_id(conn, name)?.ok_or_else(|| ApiError::not_found(format!("no resource group named {name:?}")))
}

pub fn group_create(ctx: &Ctx, caller: &Caller, p: GroupCreate) -> Result<GroupCreated, ApiError> {
    if !is_valid_group_name(&p.name) {
        return Err(ApiError::bad_request(format!(
            "group name {:?} is not valid: letters, digits, '.', '_' and '-', starting with a letter or digit",
            p.name
        )));
    }
    let description = text::clean("description", p.description, text::MAX_DESCRIPTION, Lines::One)?;
    ctx.write_policy(|tx| {
        if resources::group_id(tx, &p.name)?.is_some() {
            return Err(ApiError::conflict(format!("a resource group named {:?} already exists", p.name)));
        }
        resources::insert_group(tx, &p.name, description.as_deref(), now_ms())?;
        audit::record(tx, &caller.actor(), GroupCreate::NAME, Some(&p.name), Outcome::Ok, None)?;
        Ok(())
    })?;
    Ok(GroupCreated { name: p.name, description, members: Vec::new() })
}

pub fn group_list(ctx: &Ctx, _caller: &Caller, _p: GroupList) -> Result<Vec<GroupSummary>, ApiError> {
    Ok(resources::groups(&ctx.store().conn)?)
}

/// `group.add`: members by id (or from a CSV list), all or nothing unless `ignore_missing`.
pub fn group_add_members(ctx: &Ctx, caller: &Caller, p: GroupAdd) -> Result<MembersAdded, ApiError> {
    // A member is a canonical id, like every id that enters (removing one that is not stays possible).
    for id in &p.resources {
        validate_resource_id(id).map_err(|e| ApiError::bad_request(format!("{e}; nothing changed")))?;
    }
    let members = match p.csv {
        Some(csv) => Members::List { csv, ignore_missing: p.ignore_missing },
        None => Members::Ids { ids: p.resources, ignore_missing: p.ignore_missing },
    };
    group_add(ctx, caller, GroupAdd::NAME, &p.group, members)
}

/// `group.import`: members from a CSV list, all or nothing unless `ignore_missing`.
pub fn group_import(ctx: &Ctx, caller: &Caller, p: GroupImport) -> Result<MembersAdded, ApiError> {
    let members = Members::List { csv: p.csv, ignore_missing: p.ignore_missing };
    group_add(ctx, caller, GroupImport::NAME, &p.group, members)
}

/// The resources to put into a group.
enum Members {
    /// Resource ids.
    Ids { ids: Vec<String>, ignore_missing: bool },
    /// A CSV resource list.
    List { csv: String, ignore_missing: bool },
}

fn group_add(
    ctx: &Ctx,
    caller: &Caller,
    method: &str,
    group: &str,
    members: Members,
) -> Result<MembersAdded, ApiError> {
    ctx.write_policy(|tx| {
        let gid = group_id(tx, group)?;
        let (ids, skipped) = match &members {
            Members::List { csv, ignore_missing } => resolve_list(tx, csv, *ignore_missing)?,
            Members::Ids { ids, ignore_missing } => existing(tx, ids, *ignore_missing)?,
        };
        let mut added = 0;
        for id in &ids {
            added += usize::from(resources::add_member(tx, gid, id)?);
        }
        let detail = json!({"added": added, "skipped": skipped.len()});
        audit::record(tx, &caller.actor(), method, Some(group), Outcome::Ok, Some(&detail))?;
        Ok(MembersAdded { group: group.to_string(), added, skipped })
    })
}

/// The ids the inventory holds; the others skipped, or (without `ignore_missing`) refused, named.
fn existing(conn: &Connection, ids: &[String], ignore_missing: bool) -> Result<(Vec<String>, Vec<Skipped>), ApiError> {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let mut missing = Vec::new();
    for id in ids {
        match (resources::exists(conn, id)?, ignore_missing) {
            (true, _) => found.push(id.clone()),
            (false, true) => skipped.push(Skipped { line: None, id: id.clone() }),
            (false, false) => missing.push(id.as_str()),
        }
    }
    if missing.is_empty() {
        return Ok((found, skipped));
    }
    let more = missing.len().saturating_sub(csvfile::MAX_REPORTED);
    let listed = missing.iter().take(csvfile::MAX_REPORTED).copied().collect::<Vec<_>>().join(", ");
    let more = if more > 0 { format!(" (and {more} more)") } else { String::new() };
    Err(ApiError::not_found(format!("no resource named {listed}{more}; nothing changed")))
}

pub fn group_remove(ctx: &Ctx, caller: &Caller, p: GroupRemove) -> Result<MembersRemoved, ApiError> {
    ctx.write_policy(|tx| {
        let gid = group_id(tx, &p.group)?;
        let mut removed = 0;
        for id in &p.resources {
            removed += usize::from(resources::remove_member(tx, gid, id)?);
        }
        let detail = json!({"removed": removed});
        audit::record(tx, &caller.actor(), GroupRemove::NAME, Some(&p.group), Outcome::Ok, Some(&detail))?;
        Ok(MembersRemoved { group: p.group.clone(), removed })
    })
}

pub fn group_delete(ctx: &Ctx, caller: &Caller, p: GroupDelete) -> Result<Deleted, ApiError> {
    ctx.write_policy(|tx| {
        let gid = group_id(tx, &p.name)?;
        resources::delete_group(tx, gid)?;
        audit::record(tx, &caller.actor(), GroupDelete::NAME, Some(&p.name), Outcome::Ok, None)?;
        Ok(())
    })?;
    Ok(Deleted { deleted: p.name })
}
