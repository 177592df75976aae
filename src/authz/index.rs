//! The compiled index: read-only and shared between threads once published. Checks are a few array
//! and hash lookups on interned integers, touch no shared counter and allocate nothing; `explain` and `who_can` are the slower, rarer
//! questions and are answered from the same compiled data, so they cannot disagree with `check`.
//!
//! Changes cost what they change. Each role's grants are compiled once, on their own (a [`Source`]);
//! an account holds the ids of its roles and its own compiled direct grants, and a check combines the
//! sources of the account it asks about (the lowest deny over all of them, else the lowest allow). So
//! creating an account, giving it a role or changing one role's grants recompiles that one account or
//! role, whatever the size of the rest. Every table is copy-on-write ([`Dense`] for accounts and roles,
//! [`Names`] for resource ids and permission names): cloning an index shares everything, and a change copies only the page or
//! shard it touches (a few hundred entries), so the writer builds the next index beside the published
//! one and swaps it in whole.
//!
//! Laid out for the cache: accounts and roles live in pages indexed by their row id (SQLite's row ids
//! are small and dense), not behind hashed keys; an account holds up to [`FEW_ROLES`] role ids inline;
//! a source's grants per permission, and a grant set's resources and groups, are sorted slices
//! searched in place. A decision copies its role name inline ([`super::RoleName`]).
//!
//! A resource id longer than [`MAX_RESOURCE_ID_LEN`] is in no inventory and matches no grant, so it is
//! denied before any glob looks at it. The API refuses such ids with `bad_request` before asking; this
//! is the engine's own guard, so that no caller can make a check cost more than that bound.

use super::glob::Glob;
use super::resource_id::MAX_RESOURCE_ID_LEN;
use super::{
    Access, Decision, DenyReason, Effect, Explanation, Grant, GrantOrigin, GrantRef, Matched, Policy, Role, Selector,
    Subject, SubjectKey,
};
use hashbrown::HashTable;
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::Hasher;
use std::sync::Arc;

/// "No grant" in a slot. Grants are numbered in decision order within their source, so the lowest
/// number wins there.
const NONE: u32 = u32::MAX;

/// The four (access, effect) slots of a grant set: read-deny, read-allow, write-deny, write-allow.
type Slots = [u32; 4];

fn deny_slot(access: Access) -> usize {
    access as usize * 2
}

fn slot(access: Access, effect: Effect) -> usize {
    deny_slot(access) + usize::from(effect == Effect::Allow)
}

/// Where a grant stands in decision order across sources: grant id, then role grants (by role id)
/// before direct ones.
type Rank = (i64, u8, i64);

/// A selector with its names resolved to interned numbers.
#[derive(Debug, Clone, Copy)]
enum Compiled {
    All,
    /// An interned resource.
    Id(u32),
    /// An interned group (a group that does not exist has no members, so it matches nothing).
    Group(u32),
    /// An index into `Source::globs`.
    Glob(u32),
}

/// One grant as held by the index: the grant itself (for `explain`) and its compiled selector.
#[derive(Debug, Clone)]
struct Entry {
    grant: Grant,
    selector: Compiled,
    /// The grant's permission number.
    permission: u32,
}

/// The compiled grants of one role, or the direct grants of one account. `repr(C)`: what a check
/// reads comes first, so that for a source with one permission it is the two cache lines after the
/// reference counts (the set, the grant ids, the rank); what `explain` reads comes after.
#[derive(Debug)]
#[repr(C)]
struct Source {
    /// Permission number -> the grants of that permission.
    sets: Sorted<GrantSet>,
    /// The origin's part of [`Rank`].
    rank: (u8, i64),
    /// The id of every grant, by grant number.
    ids: Ids,
    origin: GrantOrigin,
    /// Every grant, in decision order (grant id, then the order given).
    entries: Box<[Entry]>,
    globs: Box<[Glob]>,
}

/// A map from interned numbers, as a list sorted by key that holds one entry inline: most sources
/// grant one permission, and most roles grant it on one resource, so a check finds what it needs in
/// the structure it already reads instead of behind one more pointer.
#[derive(Debug, Clone, Default)]
enum Sorted<V> {
    #[default]
    Empty,
    One(u32, V),
    Many(Box<[(u32, V)]>),
}

impl<V> Sorted<V> {
    /// From (key, value) pairs with distinct keys, in any order.
    fn new(mut entries: Vec<(u32, V)>) -> Sorted<V> {
        entries.sort_unstable_by_key(|e| e.0);
        match entries.len() {
            0 => Sorted::Empty,
            1 => entries.pop().map(|(k, v)| Sorted::One(k, v)).unwrap_or_default(),
            _ => Sorted::Many(entries.into_boxed_slice()),
        }
    }

    /// The value of `key`: in place for one entry, a scan for the few most roles have, a binary
    /// search beyond.
    #[inline]
    fn get(&self, key: u32) -> Option<&V> {
        match self {
            Sorted::Empty => None,
            Sorted::One(k, v) => (*k == key).then_some(v),
            Sorted::Many(sorted) if sorted.len() <= 8 => sorted.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            Sorted::Many(sorted) => sorted.binary_search_by_key(&key, |(k, _)| *k).ok().map(|i| &sorted[i].1),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Sorted::Empty)
    }
}

/// A resource the index knows (named by an exact selector or a group), with its groups, sorted.
#[derive(Debug, Clone)]
struct Resource {
    id: u32,
    groups: Box<[u32]>,
}

/// The grant ids of a source, by grant number: inline for a source of one grant.
#[derive(Debug)]
enum Ids {
    One(i64),
    // Boxed, so that the inline case keeps the enum at 16 bytes (a boxed slice would be 24).
    #[allow(clippy::box_collection)]
    Many(Box<Vec<i64>>),
}

impl Ids {
    #[inline]
    fn get(&self, n: u32) -> i64 {
        match self {
            Ids::One(id) => *id,
            Ids::Many(ids) => ids[n as usize],
        }
    }
}

/// An account as a check reads it: 48 bytes, so that a page of them is dense in the cache. What only
/// `principal` reads is behind `about`. Cheap to clone (a page copied on change clones its
/// accounts): what is not inline is shared.
#[derive(Debug, Clone)]
struct Account {
    enabled: bool,
    superuser: bool,
    /// Unix ms; `i64::MAX` for never.
    expires_at: i64,
    /// Role ids, sorted, without duplicates. Ids of roles that do not exist are kept and ignored.
    roles: Roles,
    direct: Option<Arc<Source>>,
    about: Arc<About>,
}

/// What a check does not read.
#[derive(Debug)]
struct About {
    name: Box<str>,
    owner: Option<i64>,
}

/// How many role ids an account holds inline (most hold one or two).
const FEW_ROLES: usize = 3;

/// An account's role ids: inline when few (and each fits 32 bits), so that a check reads them from
/// the account itself. The same ids always make the same variant ([`Roles::new`]), so two lists are
/// equal exactly when their ids are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Roles {
    Few { n: u8, ids: [u32; FEW_ROLES] },
    Many(Arc<Vec<i64>>),
}

impl Roles {
    fn new(ids: &[i64]) -> Roles {
        let mut few = [0; FEW_ROLES];
        if ids.len() <= FEW_ROLES {
            for (slot, id) in few.iter_mut().zip(ids) {
                match u32::try_from(*id) {
                    Ok(id) => *slot = id,
                    Err(_) => return Roles::Many(Arc::new(ids.to_vec())),
                }
            }
            return Roles::Few { n: ids.len() as u8, ids: few };
        }
        Roles::Many(Arc::new(ids.to_vec()))
    }

    fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        let (few, many): (&[u32], &[i64]) = match self {
            Roles::Few { n, ids } => (&ids[..usize::from(*n)], &[]),
            Roles::Many(ids) => (&[], ids),
        };
        few.iter().map(|&id| i64::from(id)).chain(many.iter().copied())
    }
}

/// A live account as [`Index::principal`] describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountInfo<'a> {
    pub name: &'a str,
    /// The built-in admin or a master API key.
    pub superuser: bool,
    /// For an API key: the user that owns it.
    pub owner: Option<i64>,
}

/// The grants of one source for one permission, split by access and effect. Every value is the lowest
/// grant number of the source that matches in that slot. 72 bytes, in the order a check reads them
/// (`repr(C)`); `explain` finds the set's grants from the source's entries instead.
#[derive(Debug, Clone, Default)]
#[repr(C)]
struct GrantSet {
    all: Slots,
    /// Resource number -> slots.
    exact: Sorted<Slots>,
    /// Group number -> slots.
    groups: Sorted<Slots>,
    /// Per slot: (glob, grant), in grant order; `None` when the set has no glob.
    globs: Option<Box<Globs>>,
}

type Globs = [Box<[(u32, u32)]>; 4];

/// A table keyed by name (resource ids, permission names), split into shards, each shared until
/// changed: cloning the table copies nothing, and changing one entry copies the one shard that holds
/// it. A name is hashed once; that hash picks the shard and finds the entry, and is kept with the
/// entry so that a lookup compares the name itself only once the hashes agree.
#[derive(Debug)]
struct Names<V> {
    shards: Arc<Vec<Arc<HashTable<Named<V>>>>>,
    mask: usize,
    len: usize,
}

#[derive(Debug, Clone)]
struct Named<V> {
    hash: u64,
    name: Name,
    value: V,
}

/// A name kept in its table entry when short (most resource ids and every permission name of the
/// built-in set), so that confirming a match reads no other cache line.
#[derive(Debug, Clone)]
enum Name {
    Short { len: u8, bytes: [u8; SHORT_NAME] },
    Long(Box<str>),
}

const SHORT_NAME: usize = 30;

impl Name {
    fn new(name: &str) -> Name {
        match u8::try_from(name.len()) {
            Ok(len) if name.len() <= SHORT_NAME => {
                let mut bytes = [0; SHORT_NAME];
                bytes[..name.len()].copy_from_slice(name.as_bytes());
                Name::Short { len, bytes }
            }
            _ => Name::Long(name.into()),
        }
    }

    #[inline]
    fn is(&self, name: &str) -> bool {
        match self {
            Name::Short { len, bytes } => &bytes[..usize::from(*len)] == name.as_bytes(),
            Name::Long(long) => &**long == name,
        }
    }
}

impl<V> Clone for Names<V> {
    fn clone(&self) -> Self {
        Names { shards: self.shards.clone(), mask: self.mask, len: self.len }
    }
}

/// Resources: 256 shards, so a 100k-resource table copies about 400 entries per change.
const RESOURCE_SHARD_BITS: u32 = 8;

#[inline]
fn hash_name(name: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(name.as_bytes());
    h.finish()
}

impl<V: Clone> Names<V> {
    /// A table of `1 << shard_bits` shards.
    fn new(shard_bits: u32) -> Self {
        let shards = (0..1usize << shard_bits).map(|_| Arc::new(HashTable::new())).collect();
        Names { shards: Arc::new(shards), mask: (1 << shard_bits) - 1, len: 0 }
    }

    #[inline]
    fn shard_of(&self, hash: u64) -> usize {
        (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize & self.mask
    }

    #[inline]
    fn get(&self, name: &str) -> Option<&V> {
        let hash = hash_name(name);
        self.shards[self.shard_of(hash)].find(hash, |e| e.hash == hash && e.name.is(name)).map(|e| &e.value)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        let hash = hash_name(name);
        let i = self.shard_of(hash);
        self.shards[i].find(hash, |e| e.hash == hash && e.name.is(name))?;
        let shard = Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[i]);
        shard.find_mut(hash, |e| e.hash == hash && e.name.is(name)).map(|e| &mut e.value)
    }

    /// Adds `name`, which is not in the table yet.
    fn insert_new(&mut self, name: &str, value: V) {
        let hash = hash_name(name);
        let i = self.shard_of(hash);
        let shard = Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[i]);
        shard.insert_unique(hash, Named { hash, name: Name::new(name), value }, |e| e.hash);
        self.len += 1;
    }
}

/// Row ids below this live in pages indexed by the id itself; any other id (negative, or far out,
/// which only a hand-built policy holds) in a hash map. SQLite's row ids start at 1 and grow by one.
const DENSE_IDS: i64 = 1 << 24;
const PAGE_BITS: u32 = 8;
const PAGE: usize = 1 << PAGE_BITS;

type Page<T> = [Option<T>; PAGE];

/// A table keyed by row id: pages of [`PAGE`] slots indexed by the id, each shared until changed.
/// Looking an id up is two array reads, no hashing; cloning the table copies nothing, and changing
/// one entry copies its page and the page list.
#[derive(Debug)]
struct Dense<T> {
    pages: Arc<Vec<Option<Arc<Page<T>>>>>,
    far: Arc<FxHashMap<i64, T>>,
    len: usize,
}

impl<T> Clone for Dense<T> {
    fn clone(&self) -> Self {
        Dense { pages: self.pages.clone(), far: self.far.clone(), len: self.len }
    }
}

impl<T> Default for Dense<T> {
    fn default() -> Self {
        Dense { pages: Arc::default(), far: Arc::default(), len: 0 }
    }
}

impl<T: Clone> Dense<T> {
    #[inline]
    fn get(&self, id: i64) -> Option<&T> {
        if (id as u64) < DENSE_IDS as u64 {
            let id = id as usize;
            self.pages.get(id >> PAGE_BITS)?.as_ref()?[id & (PAGE - 1)].as_ref()
        } else {
            self.far.get(&id)
        }
    }

    /// Puts `value` at `id` (or empties the slot), returning what was there.
    fn set(&mut self, id: i64, value: Option<T>) -> Option<T> {
        let old = if (id as u64) < DENSE_IDS as u64 {
            let id = id as usize;
            let (page, at) = (id >> PAGE_BITS, id & (PAGE - 1));
            if value.is_none() && self.get(id as i64).is_none() {
                return None;
            }
            let pages = Arc::make_mut(&mut self.pages);
            if pages.len() <= page {
                pages.resize_with(page + 1, || None);
            }
            let page = pages[page].get_or_insert_with(|| Arc::new(std::array::from_fn(|_| None)));
            std::mem::replace(&mut Arc::make_mut(page)[at], value)
        } else {
            match value {
                Some(value) => Arc::make_mut(&mut self.far).insert(id, value),
                None if self.far.contains_key(&id) => Arc::make_mut(&mut self.far).remove(&id),
                None => None,
            }
        };
        match (&old, self.get(id).is_some()) {
            (None, true) => self.len += 1,
            (Some(_), false) => self.len -= 1,
            _ => {}
        }
        old
    }

    /// Every entry, by id.
    fn iter(&self) -> impl Iterator<Item = (i64, &T)> {
        let dense = self.pages.iter().enumerate().flat_map(|(p, page)| {
            page.iter().flat_map(move |page| {
                page.iter().enumerate().filter_map(move |(i, v)| v.as_ref().map(|v| (((p << PAGE_BITS) + i) as i64, v)))
            })
        });
        let mut far: Vec<(i64, &T)> = self.far.iter().map(|(k, v)| (*k, v)).collect();
        far.sort_unstable_by_key(|e| e.0);
        let (below, above): (Vec<_>, Vec<_>) = far.into_iter().partition(|e| e.0 < 0);
        below.into_iter().chain(dense).chain(above)
    }
}

/// What the grants of a source say about one request: its lowest matching deny and allow (allow only
/// when there is no deny), as grant numbers of the source.
struct Verdict {
    deny: u32,
    allow: u32,
}

/// The best deny and allow found so far over an account's sources.
#[derive(Default)]
struct Best<'a> {
    deny: Option<(Rank, &'a Source, u32)>,
    allow: Option<(Rank, &'a Source, u32)>,
}

impl<'a> Best<'a> {
    fn add(&mut self, source: &'a Source, verdict: Verdict) {
        let lower = |best: &mut Option<(Rank, &'a Source, u32)>, n: u32| {
            if n != NONE {
                let rank = source.rank_of(n);
                if best.is_none_or(|(r, _, _)| rank < r) {
                    *best = Some((rank, source, n));
                }
            }
        };
        lower(&mut self.deny, verdict.deny);
        lower(&mut self.allow, verdict.allow);
    }

    fn decision(&self) -> Decision {
        match (self.deny, self.allow) {
            (Some((_, s, n)), _) => Decision::Deny(DenyReason::DeniedBy(s.grant_ref(n))),
            (None, Some((_, s, n))) => Decision::Allow(s.grant_ref(n)),
            (None, None) => Decision::Deny(DenyReason::NoGrant),
        }
    }

    fn allowed(&self) -> bool {
        self.deny.is_none() && self.allow.is_some()
    }
}

/// The compiled policy. Never changed once published: the writer clones it (cheap, see [`Dense`] and [`Names`]),
/// applies a change with [`Index::set_role`], [`Index::set_subject`] or [`Index::set_group`] and swaps
/// the result in whole.
#[derive(Debug, Clone)]
pub struct Index {
    users: Dense<Account>,
    keys: Dense<Account>,
    roles: Dense<Arc<Source>>,
    permissions: Names<u32>,
    resources: Names<Resource>,
    groups: Arc<FxHashMap<Box<str>, u32>>,
    /// Each group's members, sorted, for taking them away again.
    members: Arc<FxHashMap<u32, Box<[Box<str>]>>>,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            users: Dense::default(),
            keys: Dense::default(),
            roles: Dense::default(),
            // Few, and changed rarely: one shard.
            permissions: Names::new(0),
            resources: Names::new(RESOURCE_SHARD_BITS),
            groups: Arc::default(),
            members: Arc::default(),
        }
    }
}

fn to_u32(n: usize) -> u32 {
    // Four billion grants, resources or groups would not fit in memory long before this.
    u32::try_from(n).unwrap_or(NONE - 1)
}

impl Index {
    /// Compiles `policy`. Roles a subject refers to that do not exist are ignored, as are groups a
    /// selector names that do not exist (such a selector matches nothing). Duplicate role ids or
    /// subject keys: the first one counts; duplicate group names: their members are merged.
    pub fn build(policy: &Policy) -> Index {
        let mut index = Index::default();
        let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
        let mut group_at: FxHashMap<&str, usize> = FxHashMap::default();
        for group in &policy.groups {
            let at = *group_at.entry(group.name.as_str()).or_insert_with(|| {
                groups.push((group.name.as_str(), Vec::new()));
                groups.len() - 1
            });
            groups[at].1.extend(group.members.iter().cloned());
        }
        for (name, members) in &groups {
            index.set_group(name, Some(members));
        }
        for role in &policy.roles {
            if index.roles.get(role.id).is_none() {
                index.set_role(role.id, Some(role));
            }
        }
        for subject in &policy.subjects {
            if index.get(subject.key).is_none() {
                index.set_subject(subject.key, Some(subject));
            }
        }
        index
    }

    /// Replaces role `id` (its name and grants) with `role`, or removes it. Accounts that name a
    /// role that does not exist ignore it, and see it as soon as it exists.
    pub fn set_role(&mut self, id: i64, role: Option<&Role>) {
        match role {
            Some(role) => {
                let origin = GrantOrigin::Role { id, name: role.name.as_str().into() };
                let source = self.compile(origin, (0, id), &role.grants);
                self.roles.set(id, Some(Arc::new(source)));
            }
            None => {
                self.roles.set(id, None);
            }
        }
    }

    /// Replaces the account `key` (state, roles, direct grants) with `subject`, or removes it.
    pub fn set_subject(&mut self, key: SubjectKey, subject: Option<&Subject>) {
        let Some(s) = subject else {
            self.table_mut(key).set(key.id(), None);
            return;
        };
        let mut roles = s.roles.clone();
        roles.sort_unstable();
        roles.dedup();
        let direct = (!s.direct.is_empty()).then(|| Arc::new(self.compile(GrantOrigin::Direct, (1, 0), &s.direct)));
        let account = Account {
            enabled: s.enabled,
            superuser: s.superuser,
            expires_at: s.expires_at.unwrap_or(i64::MAX),
            roles: Roles::new(&roles),
            direct,
            about: Arc::new(About { name: s.name.as_str().into(), owner: s.owner }),
        };
        self.table_mut(key).set(key.id(), Some(account));
    }

    fn table_mut(&mut self, key: SubjectKey) -> &mut Dense<Account> {
        match key {
            SubjectKey::User(_) => &mut self.users,
            SubjectKey::Key(_) => &mut self.keys,
        }
    }

    fn get(&self, key: SubjectKey) -> Option<&Account> {
        match key {
            SubjectKey::User(id) => self.users.get(id),
            SubjectKey::Key(id) => self.keys.get(id),
        }
    }

    /// Every account, users then keys, each by id.
    fn all_accounts(&self) -> impl Iterator<Item = (SubjectKey, &Account)> {
        let users = self.users.iter().map(|(id, a)| (SubjectKey::User(id), a));
        users.chain(self.keys.iter().map(|(id, a)| (SubjectKey::Key(id), a)))
    }

    /// Sets the members of resource group `name` (a group without members, or removed, matches
    /// nothing).
    pub fn set_group(&mut self, name: &str, members: Option<&[String]>) {
        let group = self.group_id(name);
        let mut new: Vec<&str> = members.unwrap_or(&[]).iter().map(String::as_str).collect();
        new.sort_unstable();
        new.dedup();
        let old: Box<[Box<str>]> = self.members.get(&group).cloned().unwrap_or_default();
        for gone in old.iter().filter(|m| new.binary_search(&&***m).is_err()) {
            if let Some(r) = self.resources.get_mut(gone) {
                r.groups = r.groups.iter().copied().filter(|&g| g != group).collect();
            }
        }
        for added in new.iter().filter(|m| old.binary_search_by(|o| (**o).cmp(m)).is_err()) {
            self.resource_id(added);
            if let Some(r) = self.resources.get_mut(added) {
                let mut groups = r.groups.to_vec();
                if let Err(at) = groups.binary_search(&group) {
                    groups.insert(at, group);
                }
                r.groups = groups.into_boxed_slice();
            }
        }
        let members = Arc::make_mut(&mut self.members);
        if new.is_empty() {
            members.remove(&group);
        } else {
            members.insert(group, new.into_iter().map(Box::from).collect());
        }
    }

    fn permission_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.permissions.get(name) {
            return id;
        }
        let id = to_u32(self.permissions.len);
        self.permissions.insert_new(name, id);
        id
    }

    fn group_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.groups.get(name) {
            return id;
        }
        let id = to_u32(self.groups.len());
        Arc::make_mut(&mut self.groups).insert(name.into(), id);
        id
    }

    fn resource_id(&mut self, name: &str) -> u32 {
        if let Some(r) = self.resources.get(name) {
            return r.id;
        }
        // Numbers are never reused: a source compiled earlier keeps meaning the same resource.
        let id = to_u32(self.resources.len);
        self.resources.insert_new(name, Resource { id, groups: Box::default() });
        id
    }

    /// Compiles one role's or one account's grants, interning their names.
    fn compile(&mut self, origin: GrantOrigin, rank: (u8, i64), grants: &[Grant]) -> Source {
        let mut order: Vec<&Grant> = grants.iter().collect();
        order.sort_by_key(|g| g.id);
        let mut glob_ids: FxHashMap<&str, u32> = FxHashMap::default();
        let mut globs = Vec::new();
        let mut entries = Vec::with_capacity(order.len());
        let mut by_permission: Vec<(u32, u32)> = Vec::with_capacity(order.len()); // (permission, grant)
        for (n, grant) in order.into_iter().enumerate() {
            by_permission.push((self.permission_id(&grant.permission), to_u32(n)));
            let selector = match &grant.selector {
                Selector::All => Compiled::All,
                Selector::Id(id) => Compiled::Id(self.resource_id(id)),
                Selector::Group(name) => Compiled::Group(self.group_id(name)),
                Selector::Glob(pattern) => Compiled::Glob(*glob_ids.entry(pattern).or_insert_with(|| {
                    globs.push(Glob::compile(pattern));
                    to_u32(globs.len() - 1)
                })),
            };
            entries.push(Entry { grant: grant.clone(), selector, permission: by_permission[n].0 });
        }
        by_permission.sort_unstable();
        let sets = Sorted::new(
            by_permission
                .chunk_by(|a, b| a.0 == b.0)
                .map(|run| (run[0].0, GrantSet::build(run.iter().map(|&(_, g)| g), &entries)))
                .collect(),
        );
        let ids = match &entries[..] {
            [one] => Ids::One(one.grant.id),
            all => Ids::Many(Box::new(all.iter().map(|e| e.grant.id).collect())),
        };
        Source { sets, ids, rank, origin, entries: entries.into_boxed_slice(), globs: globs.into_boxed_slice() }
    }

    /// The sources of an account: its roles that exist, then its direct grants.
    fn sources<'a>(&'a self, account: &'a Account) -> impl Iterator<Item = &'a Source> + 'a {
        account.roles.iter().filter_map(|r| self.roles.get(r).map(|s| &**s)).chain(account.direct.as_deref())
    }

    /// The best deny and allow over `account`'s sources for this request.
    fn best<'a>(&'a self, account: &'a Account, permission: u32, access: Access, resource: &str) -> Best<'a> {
        let mut best = Best::default();
        if resource.len() > MAX_RESOURCE_ID_LEN {
            return best;
        }
        let mut known: Option<Option<&Resource>> = None;
        for source in self.sources(account) {
            let Some(set) = source.set(permission) else { continue };
            let r = if set.exact.is_empty() && set.groups.is_empty() {
                None
            } else {
                *known.get_or_insert_with(|| self.resources.get(resource))
            };
            best.add(source, source.decide(set, access, r, resource));
        }
        best
    }

    /// May `subject` have `access` to `resource` under `permission` at `now_ms`?
    pub fn check(
        &self,
        subject: SubjectKey,
        permission: &str,
        access: Access,
        resource: &str,
        now_ms: i64,
    ) -> Decision {
        let account = match self.account(subject, now_ms) {
            Ok(account) => account,
            Err(reason) => return Decision::Deny(reason),
        };
        let Some(&permission) = self.permissions.get(permission) else {
            return Decision::Deny(DenyReason::NoGrant);
        };
        self.best(account, permission, access, resource).decision()
    }

    /// The decision of [`check`](Index::check), with every effective grant that matched.
    pub fn explain(
        &self,
        subject: SubjectKey,
        permission: &str,
        access: Access,
        resource: &str,
        now_ms: i64,
    ) -> Explanation {
        let Some(account) = self.get(subject) else {
            return Explanation { decision: Decision::Deny(DenyReason::UnknownSubject), matched: Vec::new() };
        };
        let mut matching: Vec<(Rank, &Source, u32)> = Vec::new();
        if let Some(&permission) = self.permissions.get(permission) {
            for source in self.sources(account) {
                for g in source.numbers_of(permission) {
                    if self.entry_matches(source, g, access, resource) {
                        matching.push((source.rank_of(g), source, g));
                    }
                }
            }
        }
        // Stable: grants of one source with the same id stay in the source's order.
        matching.sort_by_key(|m| m.0);
        let refused = self.account(subject, now_ms).err();
        let effect_of = |(_, s, g): &(Rank, &Source, u32)| s.entries[*g as usize].grant.effect;
        let decider = match refused {
            Some(_) => None,
            None => matching
                .iter()
                .position(|m| effect_of(m) == Effect::Deny)
                .or_else(|| matching.iter().position(|m| effect_of(m) == Effect::Allow)),
        };
        let decision = match (refused, decider) {
            (Some(reason), _) => Decision::Deny(reason),
            (None, Some(i)) => {
                let (_, s, g) = matching[i];
                match effect_of(&matching[i]) {
                    Effect::Deny => Decision::Deny(DenyReason::DeniedBy(s.grant_ref(g))),
                    Effect::Allow => Decision::Allow(s.grant_ref(g)),
                }
            }
            (None, None) => Decision::Deny(DenyReason::NoGrant),
        };
        let matched = matching
            .into_iter()
            .enumerate()
            .map(|(i, (_, s, g))| Matched {
                grant: s.entries[g as usize].grant.clone(),
                origin: s.origin.clone(),
                decided: Some(i) == decider,
            })
            .collect();
        Explanation { decision, matched }
    }

    /// Every enabled, unexpired account that `check` would allow, sorted (users by id, then keys by id).
    pub fn who_can(&self, permission: &str, access: Access, resource: &str, now_ms: i64) -> Vec<SubjectKey> {
        let Some(&permission) = self.permissions.get(permission) else { return Vec::new() };
        // Accounts with the same roles and no direct grants get the same answer: work it out once.
        let mut by_roles: FxHashMap<&Roles, bool> = FxHashMap::default();
        let mut out: Vec<SubjectKey> = self
            .all_accounts()
            .filter(|(_, a)| Self::live(a, now_ms).is_ok())
            .filter(|(_, a)| {
                let allowed = || self.best(a, permission, access, resource).allowed();
                match a.direct {
                    Some(_) => allowed(),
                    None => *by_roles.entry(&a.roles).or_insert_with(allowed),
                }
            })
            .map(|(k, _)| k)
            .collect();
        out.sort_unstable();
        out
    }

    /// The number of accounts the index knows.
    pub fn accounts(&self) -> usize {
        self.users.len + self.keys.len
    }

    /// Is this account live at `now_ms`: known (not deleted or revoked), enabled, unexpired? The one
    /// answer every credential path asks, per request.
    pub fn principal(&self, subject: SubjectKey, now_ms: i64) -> Result<AccountInfo<'_>, DenyReason> {
        let a = self.account(subject, now_ms)?;
        Ok(AccountInfo { name: &a.about.name, superuser: a.superuser, owner: a.about.owner })
    }

    /// Every live superuser (the admin, live master keys), sorted like [`Index::who_can`].
    pub fn superusers(&self, now_ms: i64) -> Vec<SubjectKey> {
        let mut out: Vec<SubjectKey> =
            self.all_accounts().filter(|(_, a)| a.superuser && Self::live(a, now_ms).is_ok()).map(|(k, _)| k).collect();
        out.sort_unstable();
        out
    }

    /// Every effective grant of `subject` (from its roles and directly), in decision order, whether or
    /// not the account is live. Empty for an unknown account.
    pub fn grants_of(&self, subject: SubjectKey) -> Vec<(&Grant, &GrantOrigin)> {
        let Some(account) = self.get(subject) else { return Vec::new() };
        let mut all: Vec<(Rank, &Grant, &GrantOrigin)> = self
            .sources(account)
            .flat_map(|s| s.entries.iter().enumerate().map(move |(n, e)| (s.rank_of(to_u32(n)), &e.grant, &s.origin)))
            .collect();
        all.sort_by_key(|g| g.0);
        all.into_iter().map(|(_, g, o)| (g, o)).collect()
    }

    /// The delegation ceiling: does live `subject` hold `grant`'s permission, with each access the grant
    /// covers, on every resource its selector covers, now and in future? A superuser holds everything.
    ///
    /// Exact for a grant on one resource (the same decision as [`Index::check`]). For a group, glob or
    /// `*` the subject needs an allow grant whose selector contains it (`*` contains everything, `**`
    /// contains everything, a group itself, `a/**` every glob below `a/`, a glob itself) and no deny
    /// grant for that permission and access at all: a deny might cut into the selector, and the safe
    /// answer to "might" is no.
    pub fn holds(&self, subject: SubjectKey, grant: &Grant, now_ms: i64) -> bool {
        let Ok(account) = self.account(subject, now_ms) else { return false };
        if account.superuser {
            return true;
        }
        let Some(&permission) = self.permissions.get(grant.permission.as_str()) else { return false };
        let sets: Vec<&Source> = self.sources(account).filter(|s| s.set(permission).is_some()).collect();
        if sets.is_empty() {
            return false;
        }
        [Access::Read, Access::Write].into_iter().filter(|&a| grant.covers(a)).all(|access| match &grant.selector {
            Selector::Id(resource) => self.best(account, permission, access, resource).allowed(),
            target => {
                let mut any_allow = false;
                for source in &sets {
                    for g in source
                        .numbers_of(permission)
                        .map(|g| &source.entries[g as usize].grant)
                        .filter(|g| g.covers(access))
                    {
                        match g.effect {
                            Effect::Deny => return false,
                            Effect::Allow => any_allow |= contains(&g.selector, target),
                        }
                    }
                }
                any_allow
            }
        })
    }

    /// Are the rights of `target` within those of `holder`: every allow grant of `target` held by
    /// `holder` (see [`Index::holds`]), and `target` no superuser unless `holder` is one? Returns the
    /// first grant of `target` that `holder` lacks; a superuser target is reported as `None` inside
    /// the error. An unknown target has no rights.
    pub fn rights_within(&self, target: SubjectKey, holder: SubjectKey, now_ms: i64) -> Result<(), Option<&Grant>> {
        let holder_is_superuser = self.account(holder, now_ms).is_ok_and(|a| a.superuser);
        if holder_is_superuser {
            return Ok(());
        }
        if self.get(target).is_some_and(|a| a.superuser) {
            return Err(None);
        }
        match self
            .grants_of(target)
            .into_iter()
            .find(|(g, _)| g.effect == Effect::Allow && !self.holds(holder, g, now_ms))
        {
            Some((g, _)) => Err(Some(g)),
            None => Ok(()),
        }
    }

    fn account(&self, subject: SubjectKey, now_ms: i64) -> Result<&Account, DenyReason> {
        let account = self.get(subject).ok_or(DenyReason::UnknownSubject)?;
        Self::live(account, now_ms)?;
        Ok(account)
    }

    fn live(account: &Account, now_ms: i64) -> Result<(), DenyReason> {
        if !account.enabled {
            return Err(DenyReason::AccountDisabled);
        }
        if account.expires_at <= now_ms {
            return Err(DenyReason::AccountExpired);
        }
        Ok(())
    }

    fn entry_matches(&self, source: &Source, grant: u32, access: Access, resource: &str) -> bool {
        let entry = &source.entries[grant as usize];
        if !entry.grant.covers(access) || resource.len() > MAX_RESOURCE_ID_LEN {
            return false;
        }
        match entry.selector {
            Compiled::All => true,
            Compiled::Id(id) => self.resources.get(resource).is_some_and(|r| r.id == id),
            Compiled::Group(group) => self.resources.get(resource).is_some_and(|r| r.groups.contains(&group)),
            Compiled::Glob(glob) => source.globs[glob as usize].matches(resource),
        }
    }
}

impl Source {
    /// The grants of `permission`, if this source has any.
    fn set(&self, permission: u32) -> Option<&GrantSet> {
        self.sets.get(permission)
    }

    /// The numbers of the grants of `permission`, in decision order.
    fn numbers_of(&self, permission: u32) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().enumerate().filter(move |(_, e)| e.permission == permission).map(|(n, _)| to_u32(n))
    }

    fn rank_of(&self, grant: u32) -> Rank {
        (self.ids.get(grant), self.rank.0, self.rank.1)
    }

    fn grant_ref(&self, grant: u32) -> GrantRef {
        GrantRef { grant_id: self.ids.get(grant), origin: self.origin.clone() }
    }

    /// The lowest deny and allow of `set` that match; `known` is the resource if the index knows it.
    fn decide(&self, set: &GrantSet, access: Access, known: Option<&Resource>, resource: &str) -> Verdict {
        let d = deny_slot(access);
        let a = d + 1;
        let mut deny = set.all[d];
        let mut allow = set.all[a];
        if let Some(r) = known {
            if let Some(slots) = set.exact.get(r.id) {
                deny = deny.min(slots[d]);
                allow = allow.min(slots[a]);
            }
            if !set.groups.is_empty() {
                for group in r.groups.iter() {
                    if let Some(slots) = set.groups.get(*group) {
                        deny = deny.min(slots[d]);
                        allow = allow.min(slots[a]);
                    }
                }
            }
        }
        if let Some(globs) = &set.globs {
            deny = self.first_glob(&globs[d], deny, resource);
            if deny == NONE {
                allow = self.first_glob(&globs[a], allow, resource);
            }
        }
        Verdict { deny, allow }
    }

    /// The lowest grant among `globs` that matches `resource` and is lower than `best`, else `best`.
    fn first_glob(&self, globs: &[(u32, u32)], best: u32, resource: &str) -> u32 {
        for &(glob, grant) in globs {
            if grant >= best {
                break;
            }
            if self.globs[glob as usize].matches(resource) {
                return grant;
            }
        }
        best
    }
}

impl GrantSet {
    /// `grants` are grant numbers of one permission, in decision order.
    fn build(grants: impl Iterator<Item = u32>, entries: &[Entry]) -> GrantSet {
        let mut all_slots = [NONE; 4];
        let mut exact: FxHashMap<u32, Slots> = FxHashMap::default();
        let mut groups: FxHashMap<u32, Slots> = FxHashMap::default();
        let mut globs: [Vec<(u32, u32)>; 4] = Default::default();
        for g in grants {
            let entry = &entries[g as usize];
            for access in [Access::Read, Access::Write] {
                if !entry.grant.covers(access) {
                    continue;
                }
                let s = slot(access, entry.grant.effect);
                match entry.selector {
                    Compiled::All => lower(&mut all_slots[s], g),
                    Compiled::Id(id) => lower(&mut exact.entry(id).or_insert([NONE; 4])[s], g),
                    Compiled::Group(group) => lower(&mut groups.entry(group).or_insert([NONE; 4])[s], g),
                    Compiled::Glob(glob) => globs[s].push((glob, g)),
                }
            }
        }
        let sorted = |map: FxHashMap<u32, Slots>| Sorted::new(map.into_iter().collect());
        GrantSet {
            all: all_slots,
            exact: sorted(exact),
            groups: sorted(groups),
            globs: globs.iter().any(|g| !g.is_empty()).then(|| Box::new(globs.map(Vec::into_boxed_slice))),
        }
    }
}

/// Whether every resource `target` covers, now and in future, is covered by `held` (a safe "no"
/// where containment cannot be decided from the selectors alone).
fn contains(held: &Selector, target: &Selector) -> bool {
    match (held, target) {
        (Selector::All, _) => true,
        (Selector::Glob(p), _) if p == "**" => true,
        (Selector::Group(a), Selector::Group(b)) => a == b,
        (Selector::Glob(p), Selector::Glob(q)) => {
            p == q || p.strip_suffix("/**").is_some_and(|base| q.strip_prefix(base).is_some_and(|r| r.starts_with('/')))
        }
        (Selector::Glob(p), Selector::Id(r)) => super::glob::Glob::compile(p).matches(r),
        (Selector::Id(a), Selector::Id(b)) => a == b,
        _ => false,
    }
}

fn lower(slot: &mut u32, grant: u32) {
    *slot = (*slot).min(grant);
}

#[cfg(test)]
mod tests {
    use super::super::{Group, Role, Subject};
    use super::*;

    const NOW: i64 = 1_000_000;

    fn grant(id: i64, permission: &str, access: &str, selector: &str, effect: Effect) -> Grant {
        Grant {
            id,
            permission: permission.into(),
            read: access.contains('r'),
            write: access.contains('w'),
            selector: Selector::parse(selector).unwrap(),
            effect,
        }
    }

    fn allow(id: i64, permission: &str, access: &str, selector: &str) -> Grant {
        grant(id, permission, access, selector, Effect::Allow)
    }

    fn deny(id: i64, permission: &str, access: &str, selector: &str) -> Grant {
        grant(id, permission, access, selector, Effect::Deny)
    }

    fn subject(id: i64, roles: &[i64], direct: Vec<Grant>) -> Subject {
        Subject {
            key: SubjectKey::User(id),
            name: format!("user{id}"),
            enabled: true,
            expires_at: None,
            roles: roles.to_vec(),
            direct,
            superuser: false,
            owner: None,
        }
    }

    /// A small plant: operators run line 1, maintenance may do anything on presses except the safety PLC.
    fn plant() -> Policy {
        Policy {
            roles: vec![
                Role {
                    id: 1,
                    name: "operators".into(),
                    grants: vec![
                        allow(10, "tag.write", "rw", "line1/*"),
                        allow(11, "recipe.load", "w", "@presses"),
                        allow(12, "tag.read", "r", "*"),
                    ],
                },
                Role {
                    id: 2,
                    name: "maintenance".into(),
                    grants: vec![
                        allow(20, "tag.write", "rw", "**/press*"),
                        deny(21, "tag.write", "rw", "line1/safety"),
                    ],
                },
                Role { id: 3, name: "readers".into(), grants: vec![allow(30, "tag.write", "r", "line2/**")] },
            ],
            subjects: vec![
                subject(1, &[1], vec![]),
                subject(2, &[2], vec![]),
                subject(3, &[1, 2], vec![]),
                subject(4, &[1], vec![deny(40, "tag.write", "w", "line1/press3")]),
                subject(5, &[3, 99], vec![allow(50, "audit.view", "r", "audit")]),
                Subject { enabled: false, ..subject(6, &[1], vec![]) },
                Subject { expires_at: Some(NOW), ..subject(7, &[1], vec![]) },
                Subject { expires_at: Some(NOW + 1), ..subject(8, &[1], vec![]) },
                Subject {
                    key: SubjectKey::Key(1),
                    name: "hmi-key".into(),
                    enabled: true,
                    expires_at: None,
                    roles: vec![],
                    direct: vec![allow(60, "tag.read", "r", "line1/press3")],
                    superuser: false,
                    owner: Some(1),
                },
            ],
            groups: vec![
                Group { name: "presses".into(), members: vec!["line1/press3".into(), "line2/press1".into()] },
                Group { name: "empty".into(), members: vec![] },
            ],
        }
    }

    fn role(id: i64, name: &str) -> GrantOrigin {
        GrantOrigin::Role { id, name: name.into() }
    }

    fn allowed(grant_id: i64, origin: GrantOrigin) -> Decision {
        Decision::Allow(GrantRef { grant_id, origin })
    }

    fn denied_by(grant_id: i64, origin: GrantOrigin) -> Decision {
        Decision::Deny(DenyReason::DeniedBy(GrantRef { grant_id, origin }))
    }

    const NO_GRANT: Decision = Decision::Deny(DenyReason::NoGrant);

    #[test]
    fn decision_table() {
        use Access::{Read, Write};
        use SubjectKey::{Key, User};
        let index = Index::build(&plant());
        let cases: Vec<(&str, SubjectKey, &str, Access, &str, Decision)> = vec![
            ("role glob, read", User(1), "tag.write", Read, "line1/valve", allowed(10, role(1, "operators"))),
            ("role glob, write", User(1), "tag.write", Write, "line1/valve", allowed(10, role(1, "operators"))),
            ("glob is one segment", User(1), "tag.write", Write, "line1/a/b", NO_GRANT),
            ("glob other line", User(1), "tag.write", Write, "line2/valve", NO_GRANT),
            ("group member", User(1), "recipe.load", Write, "line2/press1", allowed(11, role(1, "operators"))),
            ("group, write-only grant", User(1), "recipe.load", Read, "line2/press1", NO_GRANT),
            ("not a group member", User(1), "recipe.load", Write, "line2/press2", NO_GRANT),
            ("all: inventory id", User(1), "tag.read", Read, "line1/press3", allowed(12, role(1, "operators"))),
            ("all: id in no group", User(1), "tag.read", Read, "added/later/tank9", allowed(12, role(1, "operators"))),
            ("all: read-only grant", User(1), "tag.read", Write, "line1/press3", NO_GRANT),
            ("permission names are exact", User(1), "tag", Read, "line1/valve", NO_GRANT),
            ("unknown permission", User(1), "nope.nope", Read, "x", NO_GRANT),
            (
                "deny beats allow in role",
                User(2),
                "tag.write",
                Write,
                "line1/safety",
                denied_by(21, role(2, "maintenance")),
            ),
            ("deep glob", User(2), "tag.write", Write, "hall/line9/press12", allowed(20, role(2, "maintenance"))),
            (
                "deny from another role",
                User(3),
                "tag.write",
                Read,
                "line1/safety",
                denied_by(21, role(2, "maintenance")),
            ),
            ("two roles, lowest allow", User(3), "tag.write", Write, "line1/press3", allowed(10, role(1, "operators"))),
            (
                "direct deny beats role allow",
                User(4),
                "tag.write",
                Write,
                "line1/press3",
                denied_by(40, GrantOrigin::Direct),
            ),
            (
                "direct deny is write-only",
                User(4),
                "tag.write",
                Read,
                "line1/press3",
                allowed(10, role(1, "operators")),
            ),
            ("read-only grant refuses write", User(5), "tag.write", Write, "line2/a", NO_GRANT),
            ("read-only grant allows read", User(5), "tag.write", Read, "line2/a/b", allowed(30, role(3, "readers"))),
            ("trailing ** is not the parent", User(5), "tag.write", Read, "line2", NO_GRANT),
            ("missing role ignored, direct", User(5), "audit.view", Read, "audit", allowed(50, GrantOrigin::Direct)),
            ("disabled", User(6), "tag.read", Read, "x", Decision::Deny(DenyReason::AccountDisabled)),
            ("expired at now", User(7), "tag.read", Read, "x", Decision::Deny(DenyReason::AccountExpired)),
            ("expires after now", User(8), "tag.read", Read, "x", allowed(12, role(1, "operators"))),
            ("unknown user", User(99), "tag.read", Read, "x", Decision::Deny(DenyReason::UnknownSubject)),
            ("keys are not users", Key(2), "tag.read", Read, "x", Decision::Deny(DenyReason::UnknownSubject)),
            ("api key", Key(1), "tag.read", Read, "line1/press3", allowed(60, GrantOrigin::Direct)),
            ("api key, other resource", Key(1), "tag.read", Read, "line1/press4", NO_GRANT),
        ];
        for (name, who, permission, access, resource, want) in cases {
            assert_eq!(index.check(who, permission, access, resource, NOW), want, "{name}");
            assert_eq!(index.explain(who, permission, access, resource, NOW).decision, want, "{name}: explain");
        }
    }

    #[test]
    fn deny_wins_whatever_the_ids() {
        // The allow has the lower id and comes first everywhere; the deny still decides.
        for deny_selector in ["line1/press3", "@presses", "line1/*", "*"] {
            for allow_selector in ["line1/press3", "@presses", "line1/*", "*"] {
                let policy = Policy {
                    roles: vec![Role { id: 1, name: "r".into(), grants: vec![allow(1, "p", "rw", allow_selector)] }],
                    subjects: vec![subject(1, &[1], vec![deny(2, "p", "w", deny_selector)])],
                    groups: vec![Group { name: "presses".into(), members: vec!["line1/press3".into()] }],
                };
                let index = Index::build(&policy);
                let who = SubjectKey::User(1);
                let case = format!("deny {deny_selector} / allow {allow_selector}");
                assert_eq!(
                    index.check(who, "p", Access::Write, "line1/press3", 0),
                    denied_by(2, GrantOrigin::Direct),
                    "{case}"
                );
                assert_eq!(index.check(who, "p", Access::Read, "line1/press3", 0), allowed(1, role(1, "r")), "{case}");
            }
        }
    }

    #[test]
    fn lowest_grant_id_decides_among_equals() {
        let policy = Policy {
            roles: vec![
                Role { id: 2, name: "b".into(), grants: vec![deny(7, "p", "r", "*"), allow(3, "p", "r", "x")] },
                Role { id: 1, name: "a".into(), grants: vec![deny(9, "p", "r", "x"), allow(5, "p", "r", "@g")] },
            ],
            subjects: vec![subject(1, &[2, 1], vec![deny(8, "p", "r", "x*")])],
            groups: vec![Group { name: "g".into(), members: vec!["x".into()] }],
        };
        let index = Index::build(&policy);
        let explanation = index.explain(SubjectKey::User(1), "p", Access::Read, "x", 0);
        assert_eq!(explanation.decision, denied_by(7, role(2, "b")));
        let listed: Vec<(i64, bool)> = explanation.matched.iter().map(|m| (m.grant.id, m.decided)).collect();
        assert_eq!(listed, vec![(3, false), (5, false), (7, true), (8, false), (9, false)]);
    }

    #[test]
    fn explain_lists_matches_and_marks_the_decider() {
        let index = Index::build(&plant());
        let e = index.explain(SubjectKey::User(3), "tag.write", Access::Write, "line1/press3", NOW);
        assert_eq!(e.decision, allowed(10, role(1, "operators")));
        let listed: Vec<(i64, GrantOrigin, bool)> =
            e.matched.iter().map(|m| (m.grant.id, m.origin.clone(), m.decided)).collect();
        assert_eq!(listed, vec![(10, role(1, "operators"), true), (20, role(2, "maintenance"), false)]);

        let e = index.explain(SubjectKey::User(4), "tag.write", Access::Write, "line1/press3", NOW);
        assert_eq!(e.decision, denied_by(40, GrantOrigin::Direct));
        assert_eq!(e.matched.iter().filter(|m| m.decided).map(|m| m.grant.id).collect::<Vec<_>>(), vec![40]);
        assert_eq!(e.matched.len(), 2);

        // Disabled: the grants that would match are listed, none decided.
        let e = index.explain(SubjectKey::User(6), "tag.read", Access::Read, "x", NOW);
        assert_eq!(e.decision, Decision::Deny(DenyReason::AccountDisabled));
        assert_eq!(e.matched.len(), 1);
        assert!(!e.matched[0].decided);

        let e = index.explain(SubjectKey::User(1), "tag.write", Access::Write, "nowhere", NOW);
        assert_eq!(e, Explanation { decision: NO_GRANT, matched: vec![] });
        let e = index.explain(SubjectKey::User(42), "tag.write", Access::Write, "nowhere", NOW);
        assert_eq!(e, Explanation { decision: Decision::Deny(DenyReason::UnknownSubject), matched: vec![] });
    }

    #[test]
    fn who_can_lists_only_active_accounts_that_pass() {
        use SubjectKey::{Key, User};
        let index = Index::build(&plant());
        // Users 6 (disabled) and 7 (expired) hold the same role as 1 and 8 but are never listed.
        assert_eq!(
            index.who_can("tag.read", Access::Read, "line1/press3", NOW),
            vec![User(1), User(3), User(4), User(8), Key(1)]
        );
        assert_eq!(
            index.who_can("tag.write", Access::Write, "line1/press3", NOW),
            vec![User(1), User(2), User(3), User(8)]
        );
        assert_eq!(index.who_can("tag.write", Access::Write, "line1/safety", NOW), vec![User(1), User(4), User(8)]);
        assert_eq!(
            index.who_can("tag.read", Access::Read, "x", NOW - 1),
            vec![User(1), User(3), User(4), User(7), User(8)]
        );
        assert!(index.who_can("no.such", Access::Read, "x", NOW).is_empty());
    }

    #[test]
    fn first_of_duplicate_roles_and_subjects_counts_and_groups_merge() {
        let policy = Policy {
            roles: vec![
                Role { id: 1, name: "first".into(), grants: vec![allow(1, "p", "r", "@g")] },
                Role { id: 1, name: "second".into(), grants: vec![allow(2, "p", "r", "*")] },
            ],
            subjects: vec![subject(1, &[1, 1], vec![]), Subject { enabled: false, ..subject(1, &[], vec![]) }],
            groups: vec![
                Group { name: "g".into(), members: vec!["a".into()] },
                Group { name: "g".into(), members: vec!["b".into(), "a".into()] },
            ],
        };
        let index = Index::build(&policy);
        let check = |res: &str| index.check(SubjectKey::User(1), "p", Access::Read, res, 0);
        assert_eq!(check("a"), allowed(1, role(1, "first")));
        assert_eq!(check("b"), allowed(1, role(1, "first")));
        assert_eq!(check("c"), NO_GRANT);
        assert_eq!(index.accounts(), 1);
    }

    #[test]
    fn missing_group_matches_nothing() {
        let policy = Policy {
            roles: vec![],
            subjects: vec![subject(1, &[], vec![allow(1, "p", "r", "@ghost"), deny(2, "p", "r", "@ghost")])],
            groups: vec![],
        };
        let index = Index::build(&policy);
        assert_eq!(index.check(SubjectKey::User(1), "p", Access::Read, "ghost", 0), NO_GRANT);
        assert_eq!(index.check(SubjectKey::User(1), "p", Access::Read, "@ghost", 0), NO_GRANT);
    }

    #[test]
    fn resource_ids_longer_than_the_limit_match_no_grant() {
        let policy = Policy {
            roles: vec![],
            subjects: vec![subject(1, &[], vec![allow(1, "p", "r", "*"), allow(2, "p", "r", "**")])],
            groups: vec![],
        };
        let index = Index::build(&policy);
        let long = "a/".repeat(MAX_RESOURCE_ID_LEN);
        assert_eq!(index.check(SubjectKey::User(1), "p", Access::Read, &long, 0), NO_GRANT);
        assert_eq!(index.explain(SubjectKey::User(1), "p", Access::Read, &long, 0).matched, vec![]);
        assert!(index.who_can("p", Access::Read, &long, 0).is_empty());
        assert!(index.check(SubjectKey::User(1), "p", Access::Read, &long[..MAX_RESOURCE_ID_LEN], 0).is_allowed());
    }

    #[test]
    fn empty_index_knows_nobody() {
        let index = Index::default();
        assert_eq!(
            index.check(SubjectKey::User(1), "p", Access::Read, "x", 0),
            Decision::Deny(DenyReason::UnknownSubject)
        );
        assert!(index.who_can("p", Access::Read, "x", 0).is_empty());
    }

    #[test]
    fn the_check_path_is_laid_out_for_the_cache() {
        // A page of accounts is what a random mix of checks over many accounts misses on.
        assert!(std::mem::size_of::<Account>() <= 48, "{}", std::mem::size_of::<Account>());
        assert_eq!(std::mem::size_of::<Roles>(), 16);
        // A source of one permission: the set, the rank and the grant ids fit the two cache lines
        // after the reference counts.
        assert!(std::mem::size_of::<GrantSet>() <= 72, "{}", std::mem::size_of::<GrantSet>());
        assert!(std::mem::offset_of!(Source, ids) + std::mem::size_of::<Ids>() + 16 <= 128);
    }

    #[test]
    fn names_short_and_long_are_found_and_only_themselves() {
        let mut t: Names<usize> = Names::new(2);
        let names: Vec<String> = (0..70).map(|n| "x".repeat(n)).chain(["é/ü".into(), "a\0".into()]).collect();
        for (i, n) in names.iter().enumerate().skip(1) {
            t.insert_new(n, i);
        }
        for (i, n) in names.iter().enumerate().skip(1) {
            assert_eq!(t.get(n), Some(&i), "{n:?}");
        }
        assert_eq!(t.get(""), None);
        assert_eq!(t.get("a"), None);
        assert_eq!(t.get(&"x".repeat(70)), None);
        let before = t.clone();
        *t.get_mut("xx").unwrap() = 99;
        assert_eq!((t.get("xx"), before.get("xx")), (Some(&99), Some(&2)), "a clone keeps what it had");
        assert_eq!(t.len, names.len() - 1);
    }

    #[test]
    fn roles_inline_and_shared_say_the_same() {
        for ids in [&[][..], &[1], &[1, 2, 3], &[1, 2, 3, 4], &[1, i64::from(u32::MAX) + 1], &[-1]] {
            assert_eq!(Roles::new(ids).iter().collect::<Vec<_>>(), ids.to_vec());
            let copy = ids.to_vec();
            assert_eq!(Roles::new(ids), Roles::new(&copy), "the same ids, the same list");
        }
        assert!(matches!(Roles::new(&[7, 8, 9]), Roles::Few { n: 3, .. }));
        assert!(matches!(Roles::new(&[1 << 40]), Roles::Many(_)));
    }

    #[test]
    fn dense_tables_keep_any_id_and_count_them() {
        let mut t: Dense<&str> = Dense::default();
        let ids = [0, 1, 255, 256, 70_000, DENSE_IDS - 1, DENSE_IDS, -5, i64::MAX, i64::MIN];
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(t.set(*id, Some("a")), None);
            assert_eq!(t.len, n + 1);
        }
        assert_eq!(t.set(256, Some("b")), Some("a"));
        assert_eq!(t.len, ids.len());
        let snapshot = t.clone();
        assert_eq!(t.set(256, None), Some("b"));
        assert_eq!(t.set(256, None), None);
        assert_eq!(t.set(i64::MAX, None), Some("a"));
        assert_eq!(t.set(12345, None), None);
        assert_eq!(t.len, ids.len() - 2);
        assert_eq!((t.get(256), snapshot.get(256)), (None, Some(&"b")), "a clone keeps what it had");
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        assert_eq!(snapshot.iter().map(|(id, _)| id).collect::<Vec<_>>(), sorted, "by id");
    }

    #[test]
    fn index_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Index>();
    }

    #[test]
    fn json_shapes() {
        let json = |d: &Decision| serde_json::to_value(d).unwrap();
        assert_eq!(
            json(&allowed(7, role(2, "operators"))),
            serde_json::json!({"decision": "allow", "grant_id": 7, "origin": {"kind": "role", "id": 2, "name": "operators"}})
        );
        assert_eq!(json(&NO_GRANT), serde_json::json!({"decision": "deny", "reason": "no_grant"}));
        assert_eq!(
            json(&denied_by(9, GrantOrigin::Direct)),
            serde_json::json!({"decision": "deny", "reason": "denied_by", "grant_id": 9, "origin": {"kind": "direct"}})
        );
        assert_eq!(serde_json::to_value(SubjectKey::Key(3)).unwrap(), serde_json::json!({"kind": "key", "id": 3}));
        let index = Index::build(&plant());
        let e = index.explain(SubjectKey::User(3), "tag.write", Access::Write, "line1/press3", NOW);
        let back: Explanation = serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        let g: Grant =
            serde_json::from_str(r#"{"id":1,"permission":"p","read":true,"write":false,"selector":"@g"}"#).unwrap();
        assert_eq!(g, allow(1, "p", "r", "@g"));
    }
}
