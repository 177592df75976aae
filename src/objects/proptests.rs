//! Property test: historical rights are exact. Random sequences of policy steps (grants given and
//! revoked, role links, group members, accounts enabled, disabled and given expiries) with objects
//! created and deleted in between. After every step, for every account (four users and an API key)
//! and every live object, the answer of [`super::may_read`] (the current index, the snapshot
//! [`History`] keeps, the explicit readers) must equal the naive one: the account is live now and
//! (compile the policy as it is now and ask, or rebuild the policy as it stood when the object was
//! created, compile it with [`Index::build`] and ask at the creation time, or it was given the
//! object). The snapshots rebuilt from the recorded versions after retention
//! ([`history::replay`], what a restart does) must answer the same.

use super::history::{self, Entity, EntityKey, History, Version};
use super::{Object, Why, may_read, reasons};
use crate::authz::{Access, Effect, Grant, Group, Index, Policy, Role, Selector, Subject, SubjectKey};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const USERS: i64 = 4;
/// Accounts 1..=USERS are users; account USERS + 1 is an API key (owned by user 1), which reads by
/// its own roles (current and historical) and is never an explicit reader.
const ACCOUNTS: i64 = USERS + 1;

fn account(n: i64) -> SubjectKey {
    if n <= USERS { SubjectKey::User(n) } else { SubjectKey::Key(1) }
}
const ROLES: i64 = 3;
const RESOURCES: [&str; 3] = ["line1/a", "line1/b", "line2/c"];
const KINDS: [&str; 2] = ["recipe", "report"];

#[derive(Debug, Clone)]
enum Step {
    Grant { holder: Holder, kind: usize, read: bool, write: bool, selector: usize, deny: bool },
    Revoke(usize),
    Link { user: i64, role: i64, add: bool },
    Member { resource: usize, add: bool },
    Enabled { user: i64, enabled: bool },
    Expires { user: i64, at: Option<i64> },
    DeleteRole(i64),
    Create { kind: usize, resource: usize },
    Delete(usize),
    Give { object: usize, user: i64 },
}

#[derive(Debug, Clone, Copy)]
enum Holder {
    Role(i64),
    User(i64),
}

fn selector(n: usize) -> Selector {
    match n {
        0 => Selector::All,
        1 => Selector::Id(RESOURCES[0].into()),
        2 => Selector::Id(RESOURCES[2].into()),
        3 => Selector::Group("g".into()),
        _ => Selector::Glob("line1/*".into()),
    }
}

fn step() -> impl Strategy<Value = Step> {
    let holder = prop_oneof![(1..=ROLES).prop_map(Holder::Role), (1..=USERS).prop_map(Holder::User)];
    prop_oneof![
        4 => (holder, 0..KINDS.len(), any::<bool>(), any::<bool>(), 0..5usize, prop::bool::weighted(0.2)).prop_map(
            |(holder, kind, read, write, selector, deny)| Step::Grant { holder, kind, read: read || !write, write, selector, deny }
        ),
        2 => (0..16usize).prop_map(Step::Revoke),
        3 => (1..=ACCOUNTS, 1..=ROLES, any::<bool>()).prop_map(|(user, role, add)| Step::Link { user, role, add }),
        2 => (0..RESOURCES.len(), any::<bool>()).prop_map(|(resource, add)| Step::Member { resource, add }),
        1 => (1..=ACCOUNTS, any::<bool>()).prop_map(|(user, enabled)| Step::Enabled { user, enabled }),
        1 => (1..=ACCOUNTS, prop::option::of(0..60i64)).prop_map(|(user, at)| Step::Expires { user, at }),
        1 => (1..=ROLES).prop_map(Step::DeleteRole),
        4 => (0..KINDS.len(), 0..RESOURCES.len()).prop_map(|(kind, resource)| Step::Create { kind, resource }),
        1 => (0..8usize).prop_map(Step::Delete),
        1 => (0..8usize, 1..=USERS).prop_map(|(object, user)| Step::Give { object, user }),
    ]
}

#[derive(Debug, Clone)]
struct Obj {
    kind: &'static str,
    resource: &'static str,
    epoch: i64,
    created_at: i64,
    /// The naive side: the whole policy as it stood at creation.
    policy_then: Policy,
    readers: BTreeSet<i64>,
}

/// The daemon's side: versions with their epochs, the current index kept change by change, the
/// snapshots; and the model policy it is all derived from.
struct World {
    policy: Policy,
    next_grant: i64,
    epoch: i64,
    versions: Vec<Version>,
    index: Arc<Index>,
    history: History,
    objects: Vec<Obj>,
    now: i64,
}

fn entities(policy: &Policy) -> BTreeMap<EntityKey, Entity> {
    Entity::all_of(policy).into_iter().map(|e| (e.key(), e)).collect()
}

impl World {
    fn new() -> World {
        let mut policy = Policy::default();
        for id in 1..=ROLES {
            policy.roles.push(Role { id, name: format!("r{id}"), grants: vec![] });
        }
        for id in 1..=USERS {
            policy.subjects.push(Subject {
                key: SubjectKey::User(id),
                name: format!("u{id}"),
                enabled: true,
                expires_at: None,
                roles: vec![],
                direct: vec![],
                superuser: false,
                owner: None,
            });
        }
        policy.subjects.push(Subject {
            key: SubjectKey::Key(1),
            name: "k1".into(),
            enabled: true,
            expires_at: None,
            roles: vec![],
            direct: vec![],
            superuser: false,
            owner: Some(1),
        });
        policy.groups.push(Group { name: "g".into(), members: vec![] });
        let versions =
            Entity::all_of(&policy).into_iter().map(|entity| Version { entity, from: 0, to: None }).collect();
        let index = Arc::new(Index::build(&policy));
        World { policy, next_grant: 1, epoch: 0, versions, index, history: History::default(), objects: vec![], now: 0 }
    }

    /// A policy change as the daemon makes it: the changed entities (what the triggers note),
    /// versions closed and opened at the next epoch, the index updated by what changed.
    fn change(&mut self, f: impl FnOnce(&mut Policy)) {
        let before = entities(&self.policy);
        f(&mut self.policy);
        let after = entities(&self.policy);
        let keys: BTreeSet<&EntityKey> = before.keys().chain(after.keys()).collect();
        let changed: Vec<(EntityKey, Option<Entity>)> = keys
            .into_iter()
            .filter(|k| before.get(*k) != after.get(*k))
            .map(|k| (k.clone(), after.get(k).cloned()))
            .collect();
        if changed.is_empty() {
            return;
        }
        self.epoch += 1;
        let mut next = (*self.index).clone();
        for (key, entity) in &changed {
            for v in self.versions.iter_mut().filter(|v| v.to.is_none() && v.entity.key() == *key) {
                v.to = Some(self.epoch);
            }
            match entity {
                Some(e) => {
                    self.versions.push(Version { entity: e.clone(), from: self.epoch, to: None });
                    e.apply(&mut next);
                }
                None => history::remove(key, &mut next),
            }
        }
        self.index = Arc::new(next);
        self.prune();
    }

    /// Retention as `store::objects::prune_history` does it.
    fn prune(&mut self) {
        let oldest = self.objects.iter().map(|o| o.epoch).min().unwrap_or(self.epoch + 1);
        self.versions.retain(|v| v.to.is_none_or(|to| to > oldest));
    }

    fn apply(&mut self, s: &Step) {
        self.now += 1;
        match *s {
            Step::Grant { holder, kind, read, write, selector: sel, deny } => {
                let id = self.next_grant;
                self.next_grant += 1;
                let g = Grant {
                    id,
                    permission: KINDS[kind].into(),
                    read,
                    write,
                    selector: selector(sel),
                    effect: if deny { Effect::Deny } else { Effect::Allow },
                };
                self.change(|p| match holder {
                    Holder::Role(r) => {
                        if let Some(role) = p.roles.iter_mut().find(|x| x.id == r) {
                            role.grants.push(g)
                        }
                    }
                    Holder::User(u) => {
                        if let Some(s) = p.subjects.iter_mut().find(|x| x.key == SubjectKey::User(u)) {
                            s.direct.push(g)
                        }
                    }
                });
            }
            Step::Revoke(n) => {
                let id = (n as i64 % self.next_grant.max(1)) + 1;
                self.change(|p| {
                    for r in &mut p.roles {
                        r.grants.retain(|g| g.id != id);
                    }
                    for s in &mut p.subjects {
                        s.direct.retain(|g| g.id != id);
                    }
                });
            }
            Step::Link { user, role, add } => self.change(|p| {
                let s = p.subjects.iter_mut().find(|x| x.key == account(user)).expect("account");
                s.roles.retain(|&r| r != role);
                if add {
                    s.roles.push(role);
                }
            }),
            Step::Member { resource, add } => self.change(|p| {
                let g = &mut p.groups[0];
                g.members.retain(|m| m != RESOURCES[resource]);
                if add {
                    g.members.push(RESOURCES[resource].into());
                }
            }),
            Step::Enabled { user, enabled } => self.change(|p| {
                if let Some(s) = p.subjects.iter_mut().find(|x| x.key == account(user)) {
                    s.enabled = enabled
                }
            }),
            Step::Expires { user, at } => self.change(|p| {
                if let Some(s) = p.subjects.iter_mut().find(|x| x.key == account(user)) {
                    s.expires_at = at
                }
            }),
            Step::DeleteRole(r) => self.change(|p| {
                p.roles.retain(|x| x.id != r);
                for s in &mut p.subjects {
                    s.roles.retain(|&x| x != r);
                }
            }),
            Step::Create { kind, resource } => {
                // O(1) in accounts: a stamp, and the published index kept if the epoch is new.
                self.history.created(self.epoch, &self.index);
                self.objects.push(Obj {
                    kind: KINDS[kind],
                    resource: RESOURCES[resource],
                    epoch: self.epoch,
                    created_at: self.now,
                    policy_then: self.policy.clone(),
                    readers: BTreeSet::new(),
                });
            }
            Step::Delete(n) => {
                if !self.objects.is_empty() {
                    let o = self.objects.remove(n % self.objects.len());
                    self.history.deleted(&[o.epoch]);
                    self.prune();
                }
            }
            Step::Give { object, user } => {
                if !self.objects.is_empty() {
                    let n = self.objects.len();
                    self.objects[object % n].readers.insert(user);
                }
            }
        }
    }

    /// Every (account, live object): the fast answer against the naive one, with `history`.
    fn compare(&self, history: &History, what: &str) -> Result<(), TestCaseError> {
        let now_naive = Index::build(&self.policy);
        for o in &self.objects {
            let then_naive = Index::build(&o.policy_then);
            let object = Object { kind: o.kind, resource: o.resource, epoch: o.epoch, created_at: o.created_at };
            let then = history.at(o.epoch).map(|i| &**i);
            prop_assert!(then.is_some(), "{what}: epoch {} of a live object not held", o.epoch);
            for u in 1..=ACCOUNTS {
                let key = account(u);
                let live = now_naive.principal(key, self.now).is_ok();
                let current = now_naive.check(key, o.kind, Access::Read, o.resource, self.now).is_allowed();
                let historical = then_naive.check(key, o.kind, Access::Read, o.resource, o.created_at).is_allowed();
                let explicit = u <= USERS && o.readers.contains(&u);
                let naive = live && (current || historical || explicit);
                let fast = may_read(&self.index, then, &object, || explicit, key, self.now);
                prop_assert_eq!(fast.is_ok(), naive, "{}: user {} object {:?}", what, u, o);
                let all = reasons(&self.index, then, &object, explicit, key, self.now);
                match all {
                    Err(_) => prop_assert!(!live),
                    Ok(r) => {
                        prop_assert!(live);
                        prop_assert_eq!(r.iter().any(|w| matches!(w, Why::Current(_))), current, "{}", what);
                        prop_assert_eq!(r.iter().any(|w| matches!(w, Why::Historical(_))), historical, "{}", what);
                        prop_assert_eq!(r.contains(&Why::Explicit), explicit, "{}", what);
                    }
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn historical_rights_equal_a_replay_of_the_policy_at_creation(steps in prop::collection::vec(step(), 1..60)) {
        let mut w = World::new();
        for s in &steps {
            w.apply(s);
            w.compare(&w.history, "in memory")?;
        }
        // What a restart does: the snapshots of the live epochs from the versions retention kept.
        let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
        for o in &w.objects {
            *counts.entry(o.epoch).or_default() += 1;
        }
        let counts: Vec<(i64, u64)> = counts.into_iter().collect();
        let epochs: Vec<i64> = counts.iter().map(|c| c.0).collect();
        let replayed = History::restore(history::replay(&w.versions, &epochs), &counts);
        prop_assert_eq!(replayed.len(), w.history.len());
        w.compare(&replayed, "replayed")?;
        // Retention: no version ends at or before the oldest live object's epoch.
        if let Some(oldest) = w.objects.iter().map(|o| o.epoch).min() {
            prop_assert!(w.versions.iter().all(|v| v.to.is_none_or(|to| to > oldest)));
        } else {
            prop_assert!(w.versions.iter().all(|v| v.to.is_none()));
        }
    }
}
