//! Property tests: the compiled index must answer exactly what a naive evaluator answers, written as
//! plainly as the rules read, straight over the `Policy` (no interning, no precomputation, a recursive
//! glob matcher, `glob::reference`), for random small policies and requests: `check`, `explain` (decision and
//! every matched grant, in order, with its decider) and `who_can`. And the delegation ceiling is
//! sound: whatever `holds` lets a subject hand out, the subject itself may do on every resource. And an
//! index kept up to date change by change (roles, accounts and groups replaced or removed in random
//! order) answers exactly like one built afresh from the policy those changes made.

use super::*;
use proptest::prelude::*;
use proptest::sample::select;

/// The rules, evaluated the obvious way.
mod naive {
    use super::super::*;

    pub fn glob(pattern: &str, resource: &str) -> bool {
        super::glob::reference(pattern, resource)
    }

    pub fn selects(policy: &Policy, selector: &Selector, resource: &str) -> bool {
        match selector {
            Selector::All => true,
            Selector::Id(id) => id == resource,
            Selector::Group(name) => {
                policy.groups.iter().any(|g| g.name == *name && g.members.iter().any(|m| m == resource))
            }
            Selector::Glob(pattern) => glob(pattern, resource),
        }
    }

    pub fn explain(
        policy: &Policy,
        subject: SubjectKey,
        permission: &str,
        access: Access,
        resource: &str,
        now: i64,
    ) -> Explanation {
        let Some(s) = policy.subjects.iter().find(|s| s.key == subject) else {
            return Explanation { decision: Decision::Deny(DenyReason::UnknownSubject), matched: vec![] };
        };
        let mut effective: Vec<(Grant, GrantOrigin)> = Vec::new();
        let mut roles_seen = Vec::new();
        for role_id in &s.roles {
            if roles_seen.contains(role_id) {
                continue;
            }
            roles_seen.push(*role_id);
            if let Some(role) = policy.roles.iter().find(|r| r.id == *role_id) {
                for g in &role.grants {
                    effective.push((g.clone(), GrantOrigin::Role { id: role.id, name: role.name.as_str().into() }));
                }
            }
        }
        for g in &s.direct {
            effective.push((g.clone(), GrantOrigin::Direct));
        }
        let covers = |g: &Grant| match access {
            Access::Read => g.read,
            Access::Write => g.write,
        };
        let mut matched: Vec<(Grant, GrantOrigin)> = effective
            .into_iter()
            .filter(|(g, _)| g.permission == permission && covers(g) && selects(policy, &g.selector, resource))
            .collect();
        let rank = |o: &GrantOrigin| match o {
            GrantOrigin::Role { id, .. } => (0, *id),
            GrantOrigin::Direct => (1, 0),
        };
        matched.sort_by_key(|(g, o)| (g.id, rank(o)));

        let refused = if !s.enabled {
            Some(DenyReason::AccountDisabled)
        } else if s.expires_at.is_some_and(|at| at <= now) {
            Some(DenyReason::AccountExpired)
        } else {
            None
        };
        let first_deny = matched.iter().position(|(g, _)| g.effect == Effect::Deny);
        let first_allow = matched.iter().position(|(g, _)| g.effect == Effect::Allow);
        let decider = if refused.is_some() { None } else { first_deny.or(first_allow) };
        let decision = match (refused, decider) {
            (Some(reason), _) => Decision::Deny(reason),
            (None, Some(i)) => {
                let (g, o) = &matched[i];
                let grant = GrantRef { grant_id: g.id, origin: o.clone() };
                if g.effect == Effect::Deny {
                    Decision::Deny(DenyReason::DeniedBy(grant))
                } else {
                    Decision::Allow(grant)
                }
            }
            (None, None) => Decision::Deny(DenyReason::NoGrant),
        };
        let matched = matched
            .into_iter()
            .enumerate()
            .map(|(i, (grant, origin))| Matched { grant, origin, decided: Some(i) == decider })
            .collect();
        Explanation { decision, matched }
    }

    pub fn who_can(policy: &Policy, permission: &str, access: Access, resource: &str, now: i64) -> Vec<SubjectKey> {
        let mut keys: Vec<SubjectKey> = Vec::new();
        for s in &policy.subjects {
            if !keys.contains(&s.key) {
                keys.push(s.key);
            }
        }
        keys.retain(|k| explain(policy, *k, permission, access, resource, now).decision.is_allowed());
        keys.sort();
        keys
    }
}

const RESOURCES: &[&str] = &["a", "b", "a/b", "a/b/c", "b/a", "a/a", "ab", "c", "a/", "x/a/b", "b/c/a"];
const GLOBS: &[&str] = &["a/*", "*/b", "a/**", "**/b", "a*", "**", "*/*", "a/**/c", "*b*", "b/**", "**/a/**", "a/*/*"];
const GROUPS: &[&str] = &["g0", "g1", "g2", "g3"];
const PERMISSIONS: &[&str] = &["p", "q"];

fn selector() -> impl Strategy<Value = Selector> {
    prop_oneof![
        3 => select(RESOURCES).prop_map(|r| Selector::Id(r.to_owned())),
        2 => select(GROUPS).prop_map(|g| Selector::Group(g.to_owned())),
        3 => select(GLOBS).prop_map(|p| Selector::Glob(p.to_owned())),
        1 => Just(Selector::All),
    ]
}

fn grant() -> impl Strategy<Value = Grant> {
    // Ids come from a small range so that several grants can share one: the tie-break is exercised too.
    (0i64..24, select(PERMISSIONS), any::<bool>(), any::<bool>(), selector(), prop::bool::weighted(0.3)).prop_map(
        |(id, permission, read, write, selector, deny)| Grant {
            id,
            permission: permission.to_owned(),
            read,
            write,
            selector,
            effect: if deny { Effect::Deny } else { Effect::Allow },
        },
    )
}

fn subject_key() -> impl Strategy<Value = SubjectKey> {
    prop_oneof![3 => (0i64..5).prop_map(SubjectKey::User), 1 => (0i64..3).prop_map(SubjectKey::Key)]
}

fn policy_subject() -> impl Strategy<Value = Subject> {
    (
        subject_key(),
        prop::bool::weighted(0.85),
        prop::option::weighted(0.3, 0i64..10),
        prop::collection::vec(0i64..6, 0..4),
        prop::collection::vec(grant(), 0..3),
    )
        .prop_map(|(key, enabled, expires_at, roles, direct)| Subject {
            key,
            name: format!("{key:?}"),
            enabled,
            expires_at,
            roles,
            direct,
            superuser: false,
            owner: None,
        })
}

fn policy() -> impl Strategy<Value = Policy> {
    let role = (0i64..5, prop::collection::vec(grant(), 0..5)).prop_map(|(id, grants)| Role {
        id,
        name: format!("role{id}"),
        grants,
    });
    let subject = policy_subject();
    let group = (select(GROUPS), prop::collection::vec(select(RESOURCES).prop_map(str::to_owned), 0..5))
        .prop_map(|(name, members)| Group { name: name.to_owned(), members });
    (prop::collection::vec(role, 0..5), prop::collection::vec(subject, 0..7), prop::collection::vec(group, 0..4))
        .prop_map(|(roles, subjects, groups)| Policy { roles, subjects, groups })
}

/// One change to a policy, as the daemon applies them after a transaction: an entity replaced or
/// removed.
#[derive(Debug, Clone)]
enum Change {
    Role(i64, Option<Role>),
    Subject(SubjectKey, Option<Subject>),
    Group(String, Option<Vec<String>>),
}

fn change() -> impl Strategy<Value = Change> {
    let role = (0i64..6, prop::option::weighted(0.8, (prop::collection::vec(grant(), 0..5), 0u8..2))).prop_map(
        |(id, role)| Change::Role(id, role.map(|(grants, n)| Role { id, name: format!("role{id}.{n}"), grants })),
    );
    let subject = (subject_key(), prop::option::weighted(0.8, policy_subject()))
        .prop_map(|(key, s)| Change::Subject(key, s.map(|s| Subject { key, name: format!("{key:?}"), ..s })));
    let group = (
        select(GROUPS),
        prop::option::weighted(0.8, prop::collection::vec(select(RESOURCES).prop_map(str::to_owned), 0..5)),
    )
        .prop_map(|(name, members)| Change::Group(name.to_owned(), members));
    prop_oneof![role, subject, group]
}

/// The policy as the database holds it: one role per id, one account per key, one group per name.
fn normalized(policy: &Policy) -> Policy {
    let mut out = Policy::default();
    for r in &policy.roles {
        if !out.roles.iter().any(|o| o.id == r.id) {
            out.roles.push(r.clone());
        }
    }
    for s in &policy.subjects {
        if !out.subjects.iter().any(|o| o.key == s.key) {
            out.subjects.push(s.clone());
        }
    }
    for g in &policy.groups {
        match out.groups.iter_mut().find(|o| o.name == g.name) {
            Some(o) => o.members.extend(g.members.iter().cloned()),
            None => out.groups.push(g.clone()),
        }
    }
    out
}

/// Applies `change` to the plain policy and to the index.
fn apply(policy: &mut Policy, index: &mut Index, change: &Change) {
    match change {
        Change::Role(id, role) => {
            policy.roles.retain(|r| r.id != *id);
            policy.roles.extend(role.clone());
            index.set_role(*id, role.as_ref());
        }
        Change::Subject(key, subject) => {
            policy.subjects.retain(|s| s.key != *key);
            policy.subjects.extend(subject.clone());
            index.set_subject(*key, subject.as_ref());
        }
        Change::Group(name, members) => {
            policy.groups.retain(|g| g.name != *name);
            policy.groups.extend(members.clone().map(|members| Group { name: name.clone(), members }));
            index.set_group(name, members.as_deref());
        }
    }
}

#[derive(Debug, Clone)]
struct Request {
    subject: SubjectKey,
    permission: &'static str,
    access: Access,
    resource: &'static str,
    now: i64,
}

fn request() -> impl Strategy<Value = Request> {
    let access = prop_oneof![Just(Access::Read), Just(Access::Write)];
    // Resources include ids in no group and no grant, and a permission no grant names.
    let resources: Vec<&'static str> = RESOURCES.iter().copied().chain(["z", "a/z/b", "", "g0", "@g0"]).collect();
    (subject_key(), select(&["p", "q", "r"][..]), access, select(resources), 0i64..11)
        .prop_map(|(subject, permission, access, resource, now)| Request { subject, permission, access, resource, now })
}

/// The constant of the glob matcher's bound, `work <= C x (|pattern| + 1) x (|resource| + 1)` (see the
/// glob module doc for why it is linear in each).
const GLOB_WORK_BOUND: u64 = 4;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn index_answers_what_the_naive_evaluator_answers(
        policy in policy(),
        requests in prop::collection::vec(request(), 1..24),
    ) {
        let index = Index::build(&policy);
        for r in &requests {
            let want = naive::explain(&policy, r.subject, r.permission, r.access, r.resource, r.now);
            let got = index.explain(r.subject, r.permission, r.access, r.resource, r.now);
            prop_assert_eq!(&got, &want, "explain {:?}", r);
            let decision = index.check(r.subject, r.permission, r.access, r.resource, r.now);
            prop_assert_eq!(&decision, &want.decision, "check {:?}", r);
            prop_assert_eq!(
                index.who_can(r.permission, r.access, r.resource, r.now),
                naive::who_can(&policy, r.permission, r.access, r.resource, r.now),
                "who_can {:?}", r
            );
        }
    }

    /// The index kept up to date change by change answers exactly like the naive evaluator over the
    /// policy those changes made, and like an index built afresh from it; the index it started from
    /// (still shared with the changed one) keeps answering as before.
    #[test]
    fn an_index_changed_step_by_step_answers_like_a_fresh_build(
        start in policy(),
        changes in prop::collection::vec(change(), 1..12),
        requests in prop::collection::vec(request(), 1..16),
    ) {
        let mut policy = normalized(&start);
        let first = Index::build(&start);
        let mut index = first.clone();
        for change in &changes {
            apply(&mut policy, &mut index, change);
        }
        let fresh = Index::build(&policy);
        for r in &requests {
            let want = naive::explain(&policy, r.subject, r.permission, r.access, r.resource, r.now);
            prop_assert_eq!(&index.explain(r.subject, r.permission, r.access, r.resource, r.now), &want, "explain {:?}", r);
            prop_assert_eq!(&index.check(r.subject, r.permission, r.access, r.resource, r.now), &want.decision, "check {:?}", r);
            prop_assert_eq!(&fresh.check(r.subject, r.permission, r.access, r.resource, r.now), &want.decision, "fresh {:?}", r);
            prop_assert_eq!(
                index.who_can(r.permission, r.access, r.resource, r.now),
                naive::who_can(&policy, r.permission, r.access, r.resource, r.now),
                "who_can {:?}", r
            );
            prop_assert_eq!(index.principal(r.subject, r.now), fresh.principal(r.subject, r.now));
            let before = naive::explain(&normalized(&start), r.subject, r.permission, r.access, r.resource, r.now);
            prop_assert_eq!(&first.explain(r.subject, r.permission, r.access, r.resource, r.now), &before, "first {:?}", r);
        }
        prop_assert_eq!(index.accounts(), fresh.accounts());
        prop_assert_eq!(index.superusers(0), fresh.superusers(0));
        for s in &policy.subjects {
            prop_assert_eq!(index.grants_of(s.key), fresh.grants_of(s.key));
        }
    }

    #[test]
    fn the_ceiling_never_lets_a_right_past_its_holder(
        policy in policy(),
        holder in subject_key(),
        grants in prop::collection::vec(grant(), 1..12),
        now in 0i64..11,
    ) {
        let index = Index::build(&policy);
        // Every resource the policy names, and ones it does not (future resources).
        let universe: Vec<&str> = RESOURCES.iter().copied().chain(["z", "a/z/b", "a/b/c/d"]).collect();
        for g in grants.iter().filter(|g| g.read || g.write) {
            if !index.holds(holder, g, now) {
                continue;
            }
            for access in [Access::Read, Access::Write].into_iter().filter(|&a| g.covers(a)) {
                for r in universe.iter().filter(|r| naive::selects(&policy, &g.selector, r)) {
                    prop_assert!(
                        index.check(holder, &g.permission, access, r, now).is_allowed(),
                        "{holder:?} may hand out {g:?} but may not {access} {r}"
                    );
                }
            }
        }
    }

    #[test]
    fn compiled_glob_matches_like_the_naive_one(
        pattern in "[ab/*]{0,9}",
        resource in "[ab/]{0,9}",
    ) {
        prop_assert_eq!(glob::Glob::compile(&pattern).matches(&resource), naive::glob(&pattern, &resource));
    }

    #[test]
    fn glob_work_is_bounded_and_answers_like_the_naive_one(
        pattern in "[ab/*]{0,16}",
        resource in "[ab/]{0,24}",
    ) {
        let (matched, work) = glob::Glob::compile(&pattern).work(&resource);
        prop_assert_eq!(matched, naive::glob(&pattern, &resource));
        prop_assert!(work <= GLOB_WORK_BOUND * (pattern.len() as u64 + 1) * (resource.len() as u64 + 1),
            "{} steps for {:?} vs {:?}", work, pattern, resource);
    }

    /// Adversarial shapes too big for the naive matcher: many stars, deep `**` runs, long runs of
    /// near-matches, up to the length limits.
    #[test]
    fn glob_work_stays_bounded_on_hostile_patterns(
        tokens in prop::collection::vec(select(&["**", "*", "a", "*a*", "a*a*a*b", "*b", "b", "aa*"][..]), 1..40),
        unit in select(&["a", "aa", "a/a", "aaaa/aa", "a/b"][..]),
        repeat in 1usize..128,
        tail in select(&["", "/b", "/c", "b"][..]),
    ) {
        let pattern = tokens.join("/");
        let mut resource = vec![unit; repeat].join("/");
        resource.push_str(tail);
        resource.truncate(crate::authz::MAX_RESOURCE_ID_LEN);
        let (_, work) = glob::Glob::compile(&pattern).work(&resource);
        prop_assert!(work <= GLOB_WORK_BOUND * (pattern.len() as u64 + 1) * (resource.len() as u64 + 1),
            "{} steps for {:?} vs {:?}", work, pattern, resource);
    }

    #[test]
    fn parsed_selectors_round_trip(text in "[@ab/*. \\-]{0,12}") {
        if let Ok(selector) = Selector::parse(&text) {
            prop_assert_eq!(selector.as_text(), text.clone());
            prop_assert_eq!(Selector::parse(&selector.as_text()), Ok(selector));
        }
    }
}
