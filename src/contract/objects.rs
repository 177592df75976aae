//! The objects methods' params and results (`object.*`, SPEC "Objects and historical access"), and
//! their events.
//!
//! An object of kind K (a permission name) lives on one resource of the inventory and is owned by the
//! user who created it (for an API key: the key's owner). Reading it needs K read on its resource
//! now (`current`), or held when it was created (`historical`), or an explicit `object.grant`
//! (`explicit`); creating one, or deleting another's, needs K write now. Bounds: kind 64 bytes (a permission name),
//! name 256 bytes, data 64 KiB of JSON, 1000 ids a request, 10 000 objects per owner, 1 000 000 in
//! all; over a bound is `bad_request` naming the field, and nothing is changed.

use super::Actor;
use super::events::{Event, EventDoc};
use super::policy::GrantOrigin;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `object.create`: creates an object on a resource; needs its kind with write access there.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectCreate {
    /// The kind: a permission name that some grant names (`recipe`, `assignment.soh`: dotted lowercase
    /// words, at most 64 bytes); not a built-in permission.
    pub kind: String,
    /// A resource id of the inventory.
    pub resource: String,
    /// The object's name, 1 to 256 bytes, no control characters.
    pub name: String,
    /// Any JSON, at most 64 KiB as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

crate::method!("object.create", ObjectCreate => ObjectView);

/// An object.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ObjectView {
    /// Its id (never reused).
    pub id: i64,
    /// Its kind (the permission that guards it).
    pub kind: String,
    /// The resource it lives on.
    pub resource: String,
    /// Its name.
    pub name: String,
    /// The user who owns it.
    pub owner: String,
    /// When it was created (unix ms).
    pub created_at: i64,
    /// Its data (`object.create` and `object.show` only; `object.list` leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// `object.show`: one object the caller may read.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectShow {
    /// The object's id.
    pub id: i64,
}

crate::method!("object.show", ObjectShow => ObjectView);

/// `object.list`: the objects the caller may read, oldest first, a page at a time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectList {
    /// Only objects of this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only objects on this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Only objects this user owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Only objects with an id above this one (the `next_after` of the page before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// At most this many (1 to 1000; default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

crate::method!("object.list", ObjectList => ObjectPage);

/// A page of `object.list`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ObjectPage {
    /// The objects, without their data.
    pub objects: Vec<ObjectView>,
    /// Pass as `after` for the next page; absent when there is none. A page may hold fewer than
    /// `limit` objects and still have a next one: one request looks at a bounded number of objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

/// `object.delete`: deletes an object; its owner may, and whoever holds its kind with write access on
/// its resource.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectDelete {
    /// The object's id.
    pub id: i64,
}

crate::method!("object.delete", ObjectDelete => ObjectRemoved);

/// What `object.delete` answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ObjectRemoved {
    /// The id of the object deleted.
    pub deleted: i64,
}

/// `object.who_can`: every enabled, unexpired user who may read the object, and why (WICE: who
/// has it through a role is told apart from who was given it; disabled users are never listed).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectWhoCan {
    /// The object's id.
    pub id: i64,
}

crate::method!("object.who_can", ObjectWhoCan => ObjectReaders);

/// The readers of one object.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ObjectReaders {
    /// The object's id.
    pub id: i64,
    /// Its readers, by user name.
    pub readers: Vec<Reader>,
}

/// One user who may read an object.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Reader {
    /// The user's name.
    pub user: String,
    /// Every reason it may (at least one).
    pub why: Vec<ReadReason>,
}

/// Why a user may read an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ReadReason {
    /// Holds the object's kind with read access on its resource now, through this grant.
    Current {
        /// The grant.
        grant_id: i64,
        /// Where the user has it from (a role, or directly).
        origin: GrantOrigin,
    },
    /// Held it when the object was created, through this grant (as the policy stood then).
    Historical {
        /// The grant (it may have been revoked since).
        grant_id: i64,
        /// Where the user had it from.
        origin: GrantOrigin,
    },
    /// Was given this object (`object.grant`).
    Explicit,
    /// The built-in admin: reads everything.
    Superuser,
}

/// `object.grant`: lets a user read one or many objects (an explicit right), all or nothing: every id
/// must exist and be readable by the caller (a holder hands out no more than it has).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectGrant {
    /// One object's id (or `ids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Many objects' ids, at most 1000 (or `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<i64>>,
    /// The user who may read them.
    pub user: String,
}

crate::method!("object.grant", ObjectGrant => ObjectReadersChanged);

/// `object.revoke`: takes explicit read rights away, all or nothing (current and historical rights
/// stay what the policy says).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectRevoke {
    /// One object's id (or `ids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Many objects' ids, at most 1000 (or `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<i64>>,
    /// The user.
    pub user: String,
}

crate::method!("object.revoke", ObjectRevoke => ObjectReadersChanged);

/// What `object.grant` and `object.revoke` answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ObjectReadersChanged {
    /// The user.
    pub user: String,
    /// The objects named, in the order given, without repeats.
    pub ids: Vec<i64>,
    /// How many of them changed (the others had, or lacked, the right already).
    pub changed: u64,
}

// ---------------------------------------------------------------------------------------------
// events

/// `object.created`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ObjectCreated {
    /// The object's id.
    pub id: i64,
    /// Its kind.
    pub kind: String,
    /// Its resource.
    pub resource: String,
    /// Its name.
    pub name: String,
    /// Its owner.
    pub owner: String,
    /// Who created it.
    pub by: Actor,
}

impl Event for ObjectCreated {
    const NAME: &'static str = "object.created";
    const SUMMARY: &'static str = "an object was created (`object.create`)";
}

/// `object.deleted`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ObjectDeleted {
    /// The object's id.
    pub id: i64,
    /// Its kind.
    pub kind: String,
    /// Its resource.
    pub resource: String,
    /// Its owner.
    pub owner: String,
    /// Who deleted it (for `owner_deleted`: who deleted the owner).
    pub by: Actor,
    /// `object.delete`, or `owner_deleted` (went with its owner, `user.delete`).
    pub cause: String,
}

impl Event for ObjectDeleted {
    const NAME: &'static str = "object.deleted";
    const SUMMARY: &'static str = "an object was deleted (`object.delete`, or with its owner by `user.delete`)";
}

/// The events of this family.
pub const EVENTS: &[EventDoc] = &[super::events::doc::<ObjectCreated>(), super::events::doc::<ObjectDeleted>()];
