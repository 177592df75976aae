//! The compiled index: built once from a [`Policy`], then read-only and shared between threads. Checks
//! are a few hash lookups on interned integers and allocate nothing; `explain` and `who_can` are the
//! slower, rarer questions and are answered from the same compiled data, so they cannot disagree with
//! `check`.
//!
//! A resource id longer than [`MAX_RESOURCE_ID_LEN`] is in no inventory and matches no grant, so it is
//! denied before any glob looks at it. The API refuses such ids with `bad_request` before asking; this
//! is the engine's own guard, so that no caller can make a check cost more than that bound.

use super::glob::Glob;
use super::resource_id::MAX_RESOURCE_ID_LEN;
use super::{
    Access, Decision, DenyReason, Effect, Explanation, Grant, GrantOrigin, GrantRef, Matched, Policy, Selector,
    SubjectKey,
};
use rustc_hash::FxHashMap;
use std::ops::Range;
use std::sync::Arc;

/// "No grant" in a slot. Grants are numbered in decision order, so the lowest number wins.
const NONE: u32 = u32::MAX;

/// The four (access, effect) slots of a grant set: read-deny, read-allow, write-deny, write-allow.
type Slots = [u32; 4];

fn deny_slot(access: Access) -> usize {
    access as usize * 2
}

fn slot(access: Access, effect: Effect) -> usize {
    deny_slot(access) + usize::from(effect == Effect::Allow)
}

/// A selector with its names resolved to interned numbers.
#[derive(Debug, Clone, Copy)]
enum Compiled {
    All,
    /// An interned resource.
    Id(u32),
    /// An interned group, or None for a group that does not exist (matches nothing).
    Group(Option<u32>),
    /// An index into `Index::globs`.
    Glob(u32),
}

/// One grant as held by the index: the grant itself (for `explain`), its origin and its compiled selector.
#[derive(Debug, Clone)]
struct Entry {
    grant: Grant,
    origin: GrantOrigin,
    selector: Compiled,
}

#[derive(Debug, Clone, Copy)]
struct Resource {
    id: u32,
    /// Range in `Index::resource_groups`: the groups this resource is a member of.
    groups_start: u32,
    groups_end: u32,
}

#[derive(Debug, Clone)]
struct Account {
    enabled: bool,
    expires_at: Option<i64>,
    profile: u32,
    name: Box<str>,
    superuser: bool,
    owner: Option<i64>,
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

/// The effective grants of one profile for one permission, split by access and effect. Every value is the
/// lowest grant number that matches in that slot.
#[derive(Debug, Clone, Default)]
struct GrantSet {
    all: Slots,
    exact: FxHashMap<u32, Slots>,
    groups: FxHashMap<u32, Slots>,
    /// Per slot: (glob, grant), in grant order.
    globs: [Box<[(u32, u32)]>; 4],
    /// Every grant of the set in grant order, for `explain`.
    grants: Box<[u32]>,
}

/// What the grants of a set say about one request.
enum Verdict {
    Allow(u32),
    Deny(u32),
    NoGrant,
}

/// The compiled policy. Immutable once built: rebuild it after every change and swap it in whole.
#[derive(Debug, Clone)]
pub struct Index {
    accounts: FxHashMap<SubjectKey, Account>,
    /// Every account key, sorted, for `who_can`.
    order: Box<[SubjectKey]>,
    profiles: usize,
    permissions: FxHashMap<Box<str>, u32>,
    /// (profile << 32 | permission) -> index in `sets`.
    set_index: FxHashMap<u64, u32>,
    sets: Vec<GrantSet>,
    resources: FxHashMap<Box<str>, Resource>,
    resource_groups: Vec<u32>,
    globs: Vec<Glob>,
    /// Every grant, in decision order.
    entries: Vec<Entry>,
}

impl Default for Index {
    fn default() -> Index {
        Index::build(&Policy::default())
    }
}

fn set_key(profile: u32, permission: u32) -> u64 {
    (u64::from(profile) << 32) | u64::from(permission)
}

/// Orders grants for deciding: lowest grant id, then role grants (by role id) before direct ones.
fn origin_rank(origin: &GrantOrigin) -> (u8, i64) {
    match origin {
        GrantOrigin::Role { id, .. } => (0, *id),
        GrantOrigin::Direct => (1, 0),
    }
}

fn to_u32(n: usize) -> u32 {
    // Four billion grants, resources or groups would not fit in memory long before this.
    u32::try_from(n).unwrap_or(NONE - 1)
}

/// Interns strings to dense numbers while building.
struct Interner<'a> {
    map: FxHashMap<&'a str, u32>,
}

impl<'a> Interner<'a> {
    fn new() -> Self {
        Interner { map: FxHashMap::default() }
    }

    fn intern(&mut self, s: &'a str) -> u32 {
        let next = to_u32(self.map.len());
        *self.map.entry(s).or_insert(next)
    }
}

/// Every grant of a policy with its origin, in input order: roles first (first of each id), then
/// the direct grants of each subject (first of each key).
struct Gathered<'a> {
    raw: Vec<(&'a Grant, GrantOrigin)>,
    /// Each role's grants, as a range of `raw`.
    role_grants: FxHashMap<i64, Range<usize>>,
    /// Each subject with its direct grants, as a range of `raw`.
    subjects: Vec<(&'a super::Subject, Range<usize>)>,
}

impl<'a> Gathered<'a> {
    fn from(policy: &'a Policy) -> Gathered<'a> {
        let mut raw: Vec<(&Grant, GrantOrigin)> = Vec::new();
        let mut role_grants: FxHashMap<i64, Range<usize>> = FxHashMap::default();
        for role in &policy.roles {
            if role_grants.contains_key(&role.id) {
                continue;
            }
            let name: Arc<str> = Arc::from(role.name.as_str());
            let start = raw.len();
            raw.extend(role.grants.iter().map(|g| (g, GrantOrigin::Role { id: role.id, name: name.clone() })));
            role_grants.insert(role.id, start..raw.len());
        }
        let mut subjects = Vec::with_capacity(policy.subjects.len());
        let mut seen: FxHashMap<SubjectKey, ()> = FxHashMap::default();
        for subject in &policy.subjects {
            if seen.insert(subject.key, ()).is_some() {
                continue;
            }
            let start = raw.len();
            raw.extend(subject.direct.iter().map(|g| (g, GrantOrigin::Direct)));
            subjects.push((subject, start..raw.len()));
        }
        drop(seen);

        Gathered { raw, role_grants, subjects }
    }
}

/// The grants compiled in decision order: their entries, permission numbers and globs.
struct Compiledgrants<'a> {
    entries: Vec<Entry>,
    /// The permission number of each raw grant.
    permission_of: Vec<u32>,
    permissions: Interner<'a>,
    globs: Vec<Glob>,
}

impl<'a> Compiledgrants<'a> {
    fn new(
        raw: &[(&'a Grant, GrantOrigin)],
        order: &[usize],
        resources: &mut Interner<'a>,
        group_names: &Interner<'a>,
    ) -> Compiledgrants<'a> {
        let mut permissions = Interner::new();
        let mut glob_ids: FxHashMap<&str, u32> = FxHashMap::default();
        let mut globs = Vec::new();
        let mut permission_of = vec![0u32; raw.len()];
        let mut entries = Vec::with_capacity(raw.len());
        for &i in order {
            let (grant, origin): (&'a Grant, &GrantOrigin) = (raw[i].0, &raw[i].1);
            permission_of[i] = permissions.intern(&grant.permission);
            let selector = match &grant.selector {
                Selector::All => Compiled::All,
                Selector::Id(id) => Compiled::Id(resources.intern(id)),
                Selector::Group(name) => Compiled::Group(group_names.map.get(name.as_str()).copied()),
                Selector::Glob(pattern) => Compiled::Glob(*glob_ids.entry(pattern).or_insert_with(|| {
                    globs.push(Glob::compile(pattern));
                    to_u32(globs.len() - 1)
                })),
            };
            entries.push(Entry { grant: (*grant).clone(), origin: origin.clone(), selector });
        }

        Compiledgrants { entries, permission_of, permissions, globs }
    }
}

/// Resource -> groups, as ranges into one flat list.
fn resource_table(
    resources: Interner<'_>,
    mut memberships: Vec<(u32, u32)>,
) -> (FxHashMap<Box<str>, Resource>, Vec<u32>) {
    memberships.sort_unstable();
    memberships.dedup();
    let mut resource_groups = Vec::with_capacity(memberships.len());
    let mut group_ranges = vec![(0u32, 0u32); resources.map.len()];
    for (resource, group) in memberships {
        let range = &mut group_ranges[resource as usize];
        if range.0 == range.1 {
            range.0 = to_u32(resource_groups.len());
        }
        resource_groups.push(group);
        range.1 = to_u32(resource_groups.len());
    }
    let resources: FxHashMap<Box<str>, Resource> = resources
        .map
        .into_iter()
        .map(|(name, id)| {
            let (groups_start, groups_end) = group_ranges[id as usize];
            (name.into(), Resource { id, groups_start, groups_end })
        })
        .collect();

    (resources, resource_groups)
}

/// Accounts and their grant sets. Accounts with the same roles and no direct grants share one
/// profile.
struct Profiles {
    accounts: FxHashMap<SubjectKey, Account>,
    count: u32,
    set_index: FxHashMap<u64, u32>,
    sets: Vec<GrantSet>,
}

impl Profiles {
    fn build(gathered: &Gathered<'_>, permission_of: &[u32], number: &[u32], entries: &[Entry]) -> Profiles {
        let (subjects, role_grants) = (&gathered.subjects, &gathered.role_grants);
        let mut profile_of_roles: FxHashMap<Vec<i64>, u32> = FxHashMap::default();
        let mut profiles = 0u32;
        let mut accounts = FxHashMap::default();
        accounts.reserve(subjects.len());
        let mut set_index = FxHashMap::default();
        let mut sets = Vec::new();
        let mut grants: Vec<(u32, u32)> = Vec::new(); // (permission, grant number)
        for (subject, direct) in subjects {
            let mut roles: Vec<i64> = subject.roles.iter().copied().filter(|r| role_grants.contains_key(r)).collect();
            roles.sort_unstable();
            roles.dedup();
            let profile = if direct.is_empty() {
                match profile_of_roles.get(&roles) {
                    Some(&p) => Some(p),
                    None => {
                        profile_of_roles.insert(roles.clone(), profiles);
                        None
                    }
                }
            } else {
                None
            };
            let profile = match profile {
                Some(p) => p,
                None => {
                    let p = profiles;
                    profiles += 1;
                    grants.clear();
                    let from_roles = roles.iter().filter_map(|r| role_grants.get(r)).flat_map(Range::clone);
                    for i in from_roles.chain(direct.clone()) {
                        grants.push((permission_of[i], number[i]));
                    }
                    grants.sort_unstable();
                    for run in grants.chunk_by(|a, b| a.0 == b.0) {
                        set_index.insert(set_key(p, run[0].0), to_u32(sets.len()));
                        sets.push(GrantSet::build(run.iter().map(|&(_, g)| g), entries));
                    }
                    p
                }
            };
            accounts.insert(
                subject.key,
                Account {
                    enabled: subject.enabled,
                    expires_at: subject.expires_at,
                    profile,
                    name: subject.name.as_str().into(),
                    superuser: subject.superuser,
                    owner: subject.owner,
                },
            );
        }

        Profiles { accounts, count: profiles, set_index, sets }
    }
}

impl Index {
    /// Compiles `policy`. Roles a subject refers to that do not exist are ignored, as are groups a
    /// selector names that do not exist (such a selector matches nothing).
    pub fn build(policy: &Policy) -> Index {
        // Groups and their members; duplicate group names merge.
        let mut group_names = Interner::new();
        let mut resources = Interner::new();
        let mut memberships: Vec<(u32, u32)> = Vec::new(); // (resource, group)
        for group in &policy.groups {
            let gid = group_names.intern(&group.name);
            for member in &group.members {
                memberships.push((resources.intern(member), gid));
            }
        }
        let gathered = Gathered::from(policy);
        // Decision order: `number[i]` is the position of raw grant i once sorted.
        let raw = &gathered.raw;
        let mut order: Vec<usize> = (0..raw.len()).collect();
        order.sort_by_key(|&i| (raw[i].0.id, origin_rank(&raw[i].1), i));
        let mut number = vec![0u32; raw.len()];
        for (pos, &i) in order.iter().enumerate() {
            number[i] = to_u32(pos);
        }
        let compiled = Compiledgrants::new(raw, &order, &mut resources, &group_names);
        let (resources, resource_groups) = resource_table(resources, memberships);
        let profiled = Profiles::build(&gathered, &compiled.permission_of, &number, &compiled.entries);
        let mut order: Vec<SubjectKey> = profiled.accounts.keys().copied().collect();
        order.sort_unstable();
        Index {
            accounts: profiled.accounts,
            order: order.into_boxed_slice(),
            profiles: profiled.count as usize,
            permissions: compiled.permissions.map.into_iter().map(|(name, id)| (name.into(), id)).collect(),
            set_index: profiled.set_index,
            sets: profiled.sets,
            resources,
            resource_groups,
            globs: compiled.globs,
            entries: compiled.entries,
        }
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
        let Some(set) = self.grant_set(account.profile, permission) else {
            return Decision::Deny(DenyReason::NoGrant);
        };
        match self.decide(set, access, resource) {
            Verdict::Allow(grant) => Decision::Allow(self.grant_ref(grant)),
            Verdict::Deny(grant) => Decision::Deny(DenyReason::DeniedBy(self.grant_ref(grant))),
            Verdict::NoGrant => Decision::Deny(DenyReason::NoGrant),
        }
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
        let Some(account) = self.accounts.get(&subject) else {
            return Explanation { decision: Decision::Deny(DenyReason::UnknownSubject), matched: Vec::new() };
        };
        let matching: Vec<u32> = match self.grant_set(account.profile, permission) {
            Some(set) => set.grants.iter().copied().filter(|&g| self.entry_matches(g, access, resource)).collect(),
            None => Vec::new(),
        };
        let refused = self.account(subject, now_ms).err();
        let effect_of = |g: &u32| self.entries[*g as usize].grant.effect;
        let decider = match refused {
            Some(_) => None,
            None => matching
                .iter()
                .find(|g| effect_of(g) == Effect::Deny)
                .or_else(|| matching.iter().find(|g| effect_of(g) == Effect::Allow))
                .copied(),
        };
        let decision = match (refused, decider) {
            (Some(reason), _) => Decision::Deny(reason),
            (None, Some(g)) if effect_of(&g) == Effect::Deny => Decision::Deny(DenyReason::DeniedBy(self.grant_ref(g))),
            (None, Some(g)) => Decision::Allow(self.grant_ref(g)),
            (None, None) => Decision::Deny(DenyReason::NoGrant),
        };
        let matched = matching
            .into_iter()
            .map(|g| {
                let entry = &self.entries[g as usize];
                Matched { grant: entry.grant.clone(), origin: entry.origin.clone(), decided: Some(g) == decider }
            })
            .collect();
        Explanation { decision, matched }
    }

    /// Every enabled, unexpired account that `check` would allow, sorted (users by id, then keys by id).
    pub fn who_can(&self, permission: &str, access: Access, resource: &str, now_ms: i64) -> Vec<SubjectKey> {
        if !self.permissions.contains_key(permission) {
            return Vec::new();
        }
        // The verdict depends only on the profile: work it out once per profile.
        const UNKNOWN: u8 = 0;
        const YES: u8 = 1;
        const NO: u8 = 2;
        let mut verdicts = vec![UNKNOWN; self.profiles];
        let mut out = Vec::new();
        for key in self.order.iter() {
            let Ok(account) = self.account(*key, now_ms) else { continue };
            let verdict = &mut verdicts[account.profile as usize];
            if *verdict == UNKNOWN {
                let allowed = self
                    .grant_set(account.profile, permission)
                    .is_some_and(|set| matches!(self.decide(set, access, resource), Verdict::Allow(_)));
                *verdict = if allowed { YES } else { NO };
            }
            if *verdict == YES {
                out.push(*key);
            }
        }
        out
    }

    /// The number of accounts the index knows.
    pub fn accounts(&self) -> usize {
        self.order.len()
    }

    /// Is this account live at `now_ms`: known (not deleted or revoked), enabled, unexpired? The one
    /// answer every credential path asks, per request.
    pub fn principal(&self, subject: SubjectKey, now_ms: i64) -> Result<AccountInfo<'_>, DenyReason> {
        let a = self.account(subject, now_ms)?;
        Ok(AccountInfo { name: &a.name, superuser: a.superuser, owner: a.owner })
    }

    /// Every live superuser (the admin, live master keys), sorted like [`Index::who_can`].
    pub fn superusers(&self, now_ms: i64) -> Vec<SubjectKey> {
        self.order.iter().copied().filter(|k| self.account(*k, now_ms).is_ok_and(|a| a.superuser)).collect()
    }

    /// Every effective grant of `subject` (from its roles and directly), in decision order, whether or
    /// not the account is live. Empty for an unknown account.
    pub fn grants_of(&self, subject: SubjectKey) -> Vec<(&Grant, &GrantOrigin)> {
        let Some(account) = self.accounts.get(&subject) else { return Vec::new() };
        let mut numbers: Vec<u32> = self
            .permissions
            .values()
            .filter_map(|&p| self.set_index.get(&set_key(account.profile, p)))
            .flat_map(|&set| self.sets[set as usize].grants.iter().copied())
            .collect();
        numbers.sort_unstable();
        numbers.iter().map(|&g| (&self.entries[g as usize].grant, &self.entries[g as usize].origin)).collect()
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
        let Some(set) = self.grant_set(account.profile, &grant.permission) else { return false };
        [Access::Read, Access::Write].into_iter().filter(|&a| grant.covers(a)).all(|access| match &grant.selector {
            Selector::Id(resource) => matches!(self.decide(set, access, resource), Verdict::Allow(_)),
            target => {
                let entries = set.grants.iter().map(|&g| &self.entries[g as usize].grant).filter(|g| g.covers(access));
                let mut any_allow = false;
                for g in entries {
                    match g.effect {
                        Effect::Deny => return false,
                        Effect::Allow => any_allow |= contains(&g.selector, target),
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
        if self.accounts.get(&target).is_some_and(|a| a.superuser) {
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
        let account = self.accounts.get(&subject).ok_or(DenyReason::UnknownSubject)?;
        if !account.enabled {
            return Err(DenyReason::AccountDisabled);
        }
        if account.expires_at.is_some_and(|at| at <= now_ms) {
            return Err(DenyReason::AccountExpired);
        }
        Ok(account)
    }

    fn grant_set(&self, profile: u32, permission: &str) -> Option<&GrantSet> {
        let permission = *self.permissions.get(permission)?;
        let set = *self.set_index.get(&set_key(profile, permission))?;
        self.sets.get(set as usize)
    }

    fn decide(&self, set: &GrantSet, access: Access, resource: &str) -> Verdict {
        if resource.len() > MAX_RESOURCE_ID_LEN {
            return Verdict::NoGrant;
        }
        let d = deny_slot(access);
        let a = d + 1;
        let mut deny = set.all[d];
        let mut allow = set.all[a];
        if !(set.exact.is_empty() && set.groups.is_empty())
            && let Some(r) = self.resources.get(resource)
        {
            if let Some(slots) = set.exact.get(&r.id) {
                deny = deny.min(slots[d]);
                allow = allow.min(slots[a]);
            }
            if !set.groups.is_empty() {
                let groups = self.resource_groups.get(r.groups_start as usize..r.groups_end as usize).unwrap_or(&[]);
                for group in groups {
                    if let Some(slots) = set.groups.get(group) {
                        deny = deny.min(slots[d]);
                        allow = allow.min(slots[a]);
                    }
                }
            }
        }
        deny = self.first_glob(&set.globs[d], deny, resource);
        if deny != NONE {
            return Verdict::Deny(deny);
        }
        allow = self.first_glob(&set.globs[a], allow, resource);
        if allow != NONE {
            return Verdict::Allow(allow);
        }
        Verdict::NoGrant
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

    fn entry_matches(&self, grant: u32, access: Access, resource: &str) -> bool {
        let entry = &self.entries[grant as usize];
        if !entry.grant.covers(access) || resource.len() > MAX_RESOURCE_ID_LEN {
            return false;
        }
        match entry.selector {
            Compiled::All => true,
            Compiled::Id(id) => self.resources.get(resource).is_some_and(|r| r.id == id),
            Compiled::Group(None) => false,
            Compiled::Group(Some(group)) => self.resources.get(resource).is_some_and(|r| {
                self.resource_groups.get(r.groups_start as usize..r.groups_end as usize).unwrap_or(&[]).contains(&group)
            }),
            Compiled::Glob(glob) => self.globs[glob as usize].matches(resource),
        }
    }

    fn grant_ref(&self, grant: u32) -> GrantRef {
        let entry = &self.entries[grant as usize];
        GrantRef { grant_id: entry.grant.id, origin: entry.origin.clone() }
    }
}

impl GrantSet {
    /// `grants` are grant numbers of one permission, in decision order.
    fn build(grants: impl Iterator<Item = u32>, entries: &[Entry]) -> GrantSet {
        let mut set = GrantSet { all: [NONE; 4], ..GrantSet::default() };
        let mut globs: [Vec<(u32, u32)>; 4] = Default::default();
        let mut all = Vec::new();
        for g in grants {
            all.push(g);
            let entry = &entries[g as usize];
            for access in [Access::Read, Access::Write] {
                if !entry.grant.covers(access) {
                    continue;
                }
                let s = slot(access, entry.grant.effect);
                match entry.selector {
                    Compiled::All => set.all[s] = set.all[s].min(g),
                    Compiled::Id(id) => lower(&mut set.exact.entry(id).or_insert([NONE; 4])[s], g),
                    Compiled::Group(Some(group)) => lower(&mut set.groups.entry(group).or_insert([NONE; 4])[s], g),
                    Compiled::Group(None) => {}
                    Compiled::Glob(glob) => globs[s].push((glob, g)),
                }
            }
        }
        set.exact.shrink_to_fit();
        set.groups.shrink_to_fit();
        set.globs = globs.map(Vec::into_boxed_slice);
        set.grants = all.into_boxed_slice();
        set
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
