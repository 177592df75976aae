//! The policy as it was: which compiled [`Index`] answered at each *policy epoch* that a live object
//! was created in.
//!
//! Must never happen: an object answered from a policy other than the one current when it was
//! created (a historical right granted or lost by a later change), or a historical answer that
//! differs from the naive one (rebuild the whole policy as it stood at the object's creation, compile
//! it with [`Index::build`], ask [`Index::check`] at the object's creation time).
//!
//! How. Every transaction that changes the policy bumps the epoch by one and records, for each role,
//! account and resource group it changed, the entity's new state as a *version* valid over
//! `[from_epoch, to_epoch)` (the previous version is closed at the new epoch; a deleted entity has
//! its version closed and no new one). An object is stamped with the epoch current when it was
//! created, in its creating transaction: O(1) in users. In memory the daemon keeps, per epoch that
//! live objects were created in, the index that was published at that epoch (an `Arc`: indexes share
//! every shard a later change did not copy), so a historical check is one [`Index::check`] on that
//! snapshot: the same cost as a current check. After a restart the snapshots are rebuilt from the
//! versions by [`replay`]: the oldest epoch compiled whole, each later one by applying only the
//! entities whose versions start or end between the two.
//!
//! Retention: a version whose `to_epoch` is at or before the oldest live object's epoch can answer
//! nothing any more and is deleted; with no live objects only the open versions (the current
//! policy) are kept. See docs/objects.md.

use crate::authz::{Group, Index, Policy, Role, Subject, SubjectKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One role, account or resource group of the policy, as the index is built from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "entity", rename_all = "snake_case")]
pub enum Entity {
    Subject(Subject),
    Role(Role),
    Group(Group),
}

/// What names an entity across its versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKey {
    Subject(SubjectKey),
    Role(i64),
    Group(String),
}

impl EntityKey {
    /// The `(kind, key)` columns a version row is stored under.
    pub fn columns(&self) -> (&'static str, String) {
        match self {
            EntityKey::Subject(SubjectKey::User(id)) => ("user", id.to_string()),
            EntityKey::Subject(SubjectKey::Key(id)) => ("key", id.to_string()),
            EntityKey::Role(id) => ("role", id.to_string()),
            EntityKey::Group(name) => ("group", name.clone()),
        }
    }
}

impl Entity {
    pub fn key(&self) -> EntityKey {
        match self {
            Entity::Subject(s) => EntityKey::Subject(s.key),
            Entity::Role(r) => EntityKey::Role(r.id),
            Entity::Group(g) => EntityKey::Group(g.name.clone()),
        }
    }

    /// The same entity in one canonical order (roles and members sorted, grants by id), so that two
    /// reads of an unchanged entity compare equal whatever order SQLite returned its rows in.
    pub fn normalized(mut self) -> Entity {
        match &mut self {
            Entity::Subject(s) => {
                s.roles.sort_unstable();
                s.roles.dedup();
                s.direct.sort_by_key(|g| g.id);
            }
            Entity::Role(r) => r.grants.sort_by_key(|g| g.id),
            Entity::Group(g) => {
                g.members.sort_unstable();
                g.members.dedup();
            }
        }
        self
    }

    /// Puts this entity into `index` (replacing what it held under the same key).
    pub fn apply(&self, index: &mut Index) {
        match self {
            Entity::Subject(s) => index.set_subject(s.key, Some(s)),
            Entity::Role(r) => index.set_role(r.id, Some(r)),
            Entity::Group(g) => index.set_group(&g.name, Some(&g.members)),
        }
    }

    /// Every entity of a policy.
    pub fn all_of(policy: &Policy) -> Vec<Entity> {
        let mut out = Vec::with_capacity(policy.subjects.len() + policy.roles.len() + policy.groups.len());
        out.extend(policy.subjects.iter().cloned().map(Entity::Subject));
        out.extend(policy.roles.iter().cloned().map(Entity::Role));
        out.extend(policy.groups.iter().cloned().map(Entity::Group));
        out.into_iter().map(Entity::normalized).collect()
    }
}

/// Takes the entity under `key` out of `index` (it no longer exists).
pub fn remove(key: &EntityKey, index: &mut Index) {
    match key {
        EntityKey::Subject(k) => index.set_subject(*k, None),
        EntityKey::Role(id) => index.set_role(*id, None),
        EntityKey::Group(name) => index.set_group(name, None),
    }
}

/// One version of an entity: its state over `[from, to)` (`to` None: still current).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub entity: Entity,
    pub from: i64,
    pub to: Option<i64>,
}

impl Version {
    fn valid_at(&self, epoch: i64) -> bool {
        self.from <= epoch && self.to.is_none_or(|to| epoch < to)
    }
}

/// The policy as it stood at `epoch`, from the versions.
pub fn policy_at(versions: &[Version], epoch: i64) -> Policy {
    let mut policy = Policy::default();
    for v in versions.iter().filter(|v| v.valid_at(epoch)) {
        match &v.entity {
            Entity::Subject(s) => policy.subjects.push(s.clone()),
            Entity::Role(r) => policy.roles.push(r.clone()),
            Entity::Group(g) => policy.groups.push(g.clone()),
        }
    }
    policy
}

/// The index at each of `epochs` (any order, duplicates ignored), from the versions: the oldest
/// compiled whole, each later one from the one before by the entities that changed in between.
pub fn replay(versions: &[Version], epochs: &[i64]) -> BTreeMap<i64, Arc<Index>> {
    let wanted: BTreeSet<i64> = epochs.iter().copied().collect();
    let mut out = BTreeMap::new();
    let mut at: Option<(i64, Index)> = None;
    // Versions by the epoch they start and end at, to find what changed between two epochs.
    let mut starts: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, v) in versions.iter().enumerate() {
        starts.entry(v.from).or_default().push(i);
        if let Some(to) = v.to {
            starts.entry(to).or_default().push(i);
        }
    }
    for &epoch in &wanted {
        let index = match at.take() {
            None => Index::build(&policy_at(versions, epoch)),
            Some((prev, mut index)) => {
                let mut touched: BTreeSet<EntityKey> = BTreeSet::new();
                for (_, ids) in starts.range(prev + 1..=epoch) {
                    touched.extend(ids.iter().map(|&i| versions[i].entity.key()));
                }
                for key in touched {
                    match versions.iter().find(|v| v.valid_at(epoch) && v.entity.key() == key) {
                        Some(v) => v.entity.apply(&mut index),
                        None => remove(&key, &mut index),
                    }
                }
                index
            }
        };
        out.insert(epoch, Arc::new(index.clone()));
        at = Some((epoch, index));
    }
    out
}

/// The indexes of the epochs live objects were created in, each with how many live objects hold it.
#[derive(Debug, Default, Clone)]
pub struct History {
    epochs: BTreeMap<i64, (Arc<Index>, u64)>,
}

impl History {
    /// From the indexes of [`replay`] and the number of live objects per epoch.
    pub fn restore(mut indexes: BTreeMap<i64, Arc<Index>>, counts: &[(i64, u64)]) -> History {
        let epochs = counts.iter().filter_map(|&(e, n)| indexes.remove(&e).map(|index| (e, (index, n)))).collect();
        History { epochs }
    }

    /// The index published at `epoch`, if a live object was created then.
    pub fn at(&self, epoch: i64) -> Option<&Arc<Index>> {
        self.epochs.get(&epoch).map(|(index, _)| index)
    }

    /// Counts one more object created at `epoch`, under `current` (the index published at that
    /// epoch; kept if it is the first object of the epoch).
    pub fn created(&mut self, epoch: i64, current: &Arc<Index>) {
        self.epochs.entry(epoch).or_insert_with(|| (current.clone(), 0)).1 += 1;
    }

    /// Counts objects of these epochs gone; an epoch without objects lets its index go.
    pub fn deleted(&mut self, epochs: &[i64]) {
        for e in epochs {
            if let Some(entry) = self.epochs.get_mut(e) {
                entry.1 = entry.1.saturating_sub(1);
                if entry.1 == 0 {
                    self.epochs.remove(e);
                }
            }
        }
    }

    /// How many epochs are held (each an index snapshot in memory).
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// Whether `epoch` is held already (creating another object in it costs no new snapshot).
    pub fn holds(&self, epoch: i64) -> bool {
        self.epochs.contains_key(&epoch)
    }
}
