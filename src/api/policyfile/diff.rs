//! The plan: what makes the gateway's policy (as [`crate::store::policyfile::read`] sees it) the
//! document's, entry by entry, with no I/O. The same plan is shown by `policy.plan` and carried out
//! by `policy.apply`, so what a technician reviewed is what is applied.
//!
//! Rules, beyond the single methods' own:
//! - a section the document leaves out is left alone; a section present says exactly what its
//!   entries are: an entry listed is made exactly as written (its grants, roles and members
//!   included: those not written are taken away); an entry not listed is removed only with
//!   `prune`, else counted as unlisted;
//! - the built-in `admin` and `supervisor` are never removed, and changed only where the single
//!   methods allow it (the admin's display name); anything else written about them is refused;
//! - accounts of the plant directory are the directory's: never created, changed or removed here;
//! - names compare without case, as the database does: a document writing an existing user or
//!   role with another case is refused, not taken for a rename;
//! - what an entry refers to (a user's roles, a group's members) must exist once the plan is
//!   carried out.

use super::check::{Problems, key};
use crate::contract::policyfile::{
    ChangeCounts, ChangeOp, EntryKind, FieldChange, GrantEntry, PlannedChange, PolicyDoc, PolicyPlan,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the plan must not do to the caller itself.
#[derive(Debug, Default, Clone)]
pub struct Guard {
    /// The owner of the master key the request came with: neither removed nor disabled (the key
    /// would die under its own request).
    pub key_owner: Option<String>,
}

/// A grant as a plan line writes it: `tag.write read,write on line1/*`, `+ deny`.
pub fn grant_text(g: &GrantEntry) -> String {
    let deny = if g.effect == "deny" { " (deny)" } else { "" };
    format!("{} {} on {}{deny}", g.permission, g.access, g.resource)
}

fn value_change(field: &str, old: Option<Value>, new: Option<Value>) -> FieldChange {
    FieldChange { field: field.into(), old, new, added: Vec::new(), removed: Vec::new() }
}

fn list_change(field: &str, added: Vec<String>, removed: Vec<String>) -> Option<FieldChange> {
    (!added.is_empty() || !removed.is_empty()).then(|| FieldChange {
        field: field.into(),
        old: None,
        new: None,
        added,
        removed,
    })
}

/// (added, removed) between two lists taken as sets.
fn set_diff<T: Ord + Clone>(old: &[T], new: &[T]) -> (Vec<T>, Vec<T>) {
    let o: BTreeSet<&T> = old.iter().collect();
    let n: BTreeSet<&T> = new.iter().collect();
    (n.difference(&o).map(|t| (*t).clone()).collect(), o.difference(&n).map(|t| (*t).clone()).collect())
}

fn grants_change(old: &[GrantEntry], new: &[GrantEntry]) -> Option<FieldChange> {
    let (added, removed) = set_diff(old, new);
    list_change("grants", added.iter().map(grant_text).collect(), removed.iter().map(grant_text).collect())
}

fn opt_json<T: serde::Serialize>(v: &Option<T>) -> Option<Value> {
    v.as_ref().map(|v| json!(v))
}

/// The plan, or the problems that stop it.
pub fn plan(cur: &PolicyDoc, want: &PolicyDoc, prune: bool, guard: &Guard, p: &mut Problems) -> PolicyPlan {
    let mut changes = Vec::new();
    let mut removals = Vec::new();
    let mut counts = ChangeCounts::default();
    let mut notes = Vec::new();
    let empty = BTreeMap::new();

    // Unlisted entries of a present section: removed with prune, else counted.
    let mut unlisted = |kind: EntryKind, name: &str, removals: &mut Vec<PlannedChange>| {
        if prune {
            removals.push(PlannedChange { op: ChangeOp::Remove, kind, name: name.to_string(), fields: Vec::new() });
        } else {
            counts.unlisted += 1;
        }
    };

    if let Some(want_s) = &want.settings {
        let cur_s = cur.settings.as_ref().unwrap_or(&empty);
        for (k, v) in want_s {
            match cur_s.get(k) {
                None => changes.push(create(EntryKind::Setting, k, vec![value_change("value", None, Some(v.clone()))])),
                Some(old) if old != v => changes.push(change(
                    EntryKind::Setting,
                    k,
                    vec![value_change("value", Some(old.clone()), Some(v.clone()))],
                )),
                Some(_) => {}
            }
        }
        for k in cur_s.keys().filter(|k| !want_s.contains_key(*k)) {
            unlisted(EntryKind::Setting, k, &mut removals);
        }
    }

    // The current policy is read, never changed here: borrowed, not copied (100 000 entries a kind).
    let (no_resources, no_roles, no_users) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let cur_resources = cur.resources.as_ref().unwrap_or(&no_resources);
    if let Some(want_r) = &want.resources {
        for (id, r) in want_r {
            match cur_resources.get(id) {
                None => {
                    let mut fields = vec![value_change("kind", None, Some(json!(r.kind)))];
                    if !r.attributes.is_empty() {
                        fields.push(value_change("attributes", None, Some(json!(r.attributes))));
                    }
                    changes.push(create(EntryKind::Resource, id, fields));
                }
                Some(old) => {
                    let mut fields = Vec::new();
                    if old.kind != r.kind {
                        fields.push(value_change("kind", Some(json!(old.kind)), Some(json!(r.kind))));
                    }
                    if old.attributes != r.attributes {
                        fields.push(value_change("attributes", Some(json!(old.attributes)), Some(json!(r.attributes))));
                    }
                    if !fields.is_empty() {
                        changes.push(change(EntryKind::Resource, id, fields));
                    }
                }
            }
        }
        for id in cur_resources.keys().filter(|k| !want_r.contains_key(*k)) {
            unlisted(EntryKind::Resource, id, &mut removals);
        }
    }
    // The inventory once the plan is carried out, for the groups' members.
    let inventory = |id: &str| match &want.resources {
        Some(w) if prune => w.contains_key(id),
        Some(w) => w.contains_key(id) || cur_resources.contains_key(id),
        None => cur_resources.contains_key(id),
    };

    if let Some(want_g) = &want.groups {
        let no_groups = BTreeMap::new();
        let cur_g = cur.groups.as_ref().unwrap_or(&no_groups);
        for (name, g) in want_g {
            for (i, m) in g.members.iter().enumerate() {
                if !inventory(m) {
                    p.push(
                        format!("groups.{}.members[{i}]", key(name)),
                        format!("no resource {m:?} in the document's resources nor kept on the gateway"),
                    );
                }
            }
            match cur_g.get(name) {
                None => {
                    let mut fields = Vec::new();
                    if g.description.is_some() {
                        fields.push(value_change("description", None, opt_json(&g.description)));
                    }
                    fields.extend(list_change("members", g.members.clone(), Vec::new()));
                    changes.push(create(EntryKind::Group, name, fields));
                }
                Some(old) => {
                    let mut fields = Vec::new();
                    if old.description != g.description {
                        fields.push(value_change("description", opt_json(&old.description), opt_json(&g.description)));
                    }
                    let (added, removed) = set_diff(&old.members, &g.members);
                    fields.extend(list_change("members", added, removed));
                    if !fields.is_empty() {
                        changes.push(change(EntryKind::Group, name, fields));
                    }
                }
            }
        }
        for name in cur_g.keys().filter(|k| !want_g.contains_key(*k)) {
            unlisted(EntryKind::Group, name, &mut removals);
        }
    }

    let cur_roles = cur.roles.as_ref().unwrap_or(&no_roles);
    let cur_role_lc: HashMap<String, &str> = cur_roles.keys().map(|k| (k.to_ascii_lowercase(), k.as_str())).collect();
    if let Some(want_r) = &want.roles {
        for (name, r) in want_r {
            let at = format!("roles.{}", key(name));
            let old = match cur_roles.get(name) {
                Some(old) => Some(old),
                None => match cur_role_lc.get(&name.to_ascii_lowercase()) {
                    Some(stored) => {
                        p.push(
                            &at,
                            format!(
                                "the gateway has this role as {stored:?} (names compare without case): write it so"
                            ),
                        );
                        continue;
                    }
                    None => None,
                },
            };
            match old {
                None => {
                    if r.builtin {
                        p.push(format!("{at}.builtin"), "only the built-in supervisor role is built in");
                    }
                    let mut fields = Vec::new();
                    if r.description.is_some() {
                        fields.push(value_change("description", None, opt_json(&r.description)));
                    }
                    fields.extend(grants_change(&[], &r.grants));
                    changes.push(create(EntryKind::Role, name, fields));
                }
                Some(old) => {
                    let mut fields = Vec::new();
                    if old.description != r.description {
                        fields.push(value_change("description", opt_json(&old.description), opt_json(&r.description)));
                    }
                    fields.extend(grants_change(&old.grants, &r.grants));
                    if old.builtin && !fields.is_empty() {
                        p.push(
                            &at,
                            "the built-in supervisor role cannot be changed (write it as exported, or leave it out)",
                        );
                        continue;
                    }
                    if r.builtin && !old.builtin {
                        p.push(format!("{at}.builtin"), "only the built-in supervisor role is built in");
                    }
                    if !fields.is_empty() {
                        changes.push(change(EntryKind::Role, name, fields));
                    }
                }
            }
        }
        for (name, r) in cur_roles {
            if !want_r.contains_key(name) && !r.builtin {
                unlisted(EntryKind::Role, name, &mut removals);
            }
        }
    }
    // The roles once the plan is carried out, for the users' roles.
    let role_exists = |name: &str| match &want.roles {
        Some(w) if prune => w.contains_key(name) || cur_roles.get(name).is_some_and(|r| r.builtin),
        Some(w) => w.contains_key(name) || cur_roles.contains_key(name),
        None => cur_roles.contains_key(name),
    };

    if let Some(want_u) = &want.users {
        let cur_u = cur.users.as_ref().unwrap_or(&no_users);
        let cur_user_lc: HashMap<String, &str> = cur_u.keys().map(|k| (k.to_ascii_lowercase(), k.as_str())).collect();
        let mut left_to_directory = 0;
        for (name, u) in want_u {
            let at = format!("users.{}", key(name));
            if u.source == "directory" {
                left_to_directory += 1;
                continue;
            }
            let old = match cur_u.get(name) {
                Some(old) => Some(old),
                None => {
                    match cur_user_lc.get(&name.to_ascii_lowercase()) {
                        Some(stored) => {
                            p.push(&at, format!("the gateway has this account as {stored:?} (names compare without case): write it so"));
                            continue;
                        }
                        None => None,
                    }
                }
            };
            for (i, r) in u.roles.iter().enumerate() {
                if !role_exists(r) {
                    p.push(
                        format!("{at}.roles[{i}]"),
                        format!("no role {r:?} in the document's roles nor kept on the gateway"),
                    );
                }
            }
            if old.is_none_or(|o| !o.builtin) && u.builtin {
                p.push(format!("{at}.builtin"), "only the built-in admin is built in");
            }
            if old.is_some_and(|o| o.source == "directory") {
                p.push(&at, "this account comes from the plant directory on this gateway: a policy document does not change it (write source = \"directory\" to pass it over)");
                continue;
            }
            match old {
                None => {
                    let mut fields = Vec::new();
                    if u.display_name.is_some() {
                        fields.push(value_change("display_name", None, opt_json(&u.display_name)));
                    }
                    if !u.enabled {
                        fields.push(value_change("enabled", None, Some(json!(false))));
                    }
                    if u.expires_at.is_some() {
                        fields.push(value_change("expires_at", None, opt_json(&u.expires_at)));
                    }
                    fields.extend(list_change("roles", u.roles.clone(), Vec::new()));
                    fields.extend(grants_change(&[], &u.grants));
                    changes.push(create(EntryKind::User, name, fields));
                }
                Some(old) => {
                    let mut fields = Vec::new();
                    if old.display_name != u.display_name {
                        fields.push(value_change(
                            "display_name",
                            opt_json(&old.display_name),
                            opt_json(&u.display_name),
                        ));
                    }
                    if old.enabled != u.enabled {
                        fields.push(value_change("enabled", Some(json!(old.enabled)), Some(json!(u.enabled))));
                    }
                    if old.expires_at != u.expires_at {
                        fields.push(value_change("expires_at", opt_json(&old.expires_at), opt_json(&u.expires_at)));
                    }
                    let (added, removed) = set_diff(&old.roles, &u.roles);
                    fields.extend(list_change("roles", added, removed));
                    fields.extend(grants_change(&old.grants, &u.grants));
                    if old.builtin
                        && (!u.enabled || u.expires_at.is_some() || !u.roles.is_empty() || !u.grants.is_empty())
                    {
                        p.push(&at, "the built-in admin cannot be disabled, expire, or hold roles or grants");
                        continue;
                    }
                    if !u.enabled
                        && old.enabled
                        && guard.key_owner.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(name))
                    {
                        p.push(&at, "this request comes with a master key of this account: disabling it would end the key under its own request");
                    }
                    if !fields.is_empty() {
                        changes.push(change(EntryKind::User, name, fields));
                    }
                }
            }
        }
        if left_to_directory > 0 {
            notes.push(format!(
                "{left_to_directory} directory account(s) in the document left to the plant directory (never created, changed or removed by a policy document)"
            ));
        }
        for (name, u) in cur_u {
            if want_u.contains_key(name) || u.builtin || u.source == "directory" {
                continue;
            }
            if prune && guard.key_owner.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(name)) {
                p.push(format!("users.{}", key(name)), "not in the document, but this request comes with a master key of this account: removing it would end the key under its own request");
                continue;
            }
            unlisted(EntryKind::User, name, &mut removals);
        }
    }

    // Removals after every creation and change, users first (they hold roles), then what is held.
    removals.sort_by_key(|c| std::cmp::Reverse(c.kind));
    for c in &changes {
        match c.op {
            ChangeOp::Create => counts.created += 1,
            ChangeOp::Change => counts.changed += 1,
            ChangeOp::Remove => counts.removed += 1,
        }
    }
    counts.removed += removals.len();
    changes.extend(removals);
    PolicyPlan { noop: changes.is_empty(), counts, changes, notes }
}

fn create(kind: EntryKind, name: &str, fields: Vec<FieldChange>) -> PlannedChange {
    PlannedChange { op: ChangeOp::Create, kind, name: name.to_string(), fields }
}

fn change(kind: EntryKind, name: &str, fields: Vec<FieldChange>) -> PlannedChange {
    PlannedChange { op: ChangeOp::Change, kind, name: name.to_string(), fields }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::policyfile::{RoleEntry, UserEntry};

    fn user(roles: &[&str]) -> UserEntry {
        UserEntry {
            display_name: None,
            enabled: true,
            expires_at: None,
            source: "local".into(),
            builtin: false,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            grants: Vec::new(),
        }
    }

    fn role(grants: &[(&str, &str)]) -> RoleEntry {
        RoleEntry {
            description: None,
            builtin: false,
            grants: grants
                .iter()
                .map(|(p, r)| GrantEntry {
                    permission: p.to_string(),
                    resource: r.to_string(),
                    access: "read".into(),
                    effect: "allow".into(),
                })
                .collect(),
        }
    }

    fn doc(roles: &[(&str, RoleEntry)], users: &[(&str, UserEntry)]) -> PolicyDoc {
        PolicyDoc {
            version: 1,
            roles: Some(roles.iter().map(|(n, r)| (n.to_string(), r.clone())).collect()),
            users: Some(users.iter().map(|(n, u)| (n.to_string(), u.clone())).collect()),
            ..Default::default()
        }
    }

    fn run(cur: &PolicyDoc, want: &PolicyDoc, prune: bool) -> Result<PolicyPlan, Vec<String>> {
        let mut p = Problems::default();
        let plan = plan(cur, want, prune, &Guard::default(), &mut p);
        if p.is_empty() { Ok(plan) } else { Err(p.into_error().message.split("; ").map(str::to_string).collect()) }
    }

    #[test]
    fn the_same_policy_plans_nothing_and_a_change_plans_only_itself() {
        let cur = doc(&[("op", role(&[("tag.read", "line1/*")]))], &[("ann", user(&["op"]))]);
        assert!(run(&cur, &cur, true).unwrap().noop);
        let want = doc(&[("op", role(&[("tag.read", "line2/*")]))], &[("ann", user(&["op"]))]);
        let plan = run(&cur, &want, false).unwrap();
        assert_eq!(plan.counts, ChangeCounts { created: 0, changed: 1, removed: 0, unlisted: 0 });
        let f = &plan.changes[0].fields[0];
        assert_eq!(
            (f.added.as_slice(), f.removed.as_slice()),
            (&["tag.read read on line2/*".to_string()][..], &["tag.read read on line1/*".to_string()][..])
        );
    }

    #[test]
    fn unlisted_entries_are_removed_only_with_prune_users_first() {
        let cur = doc(&[("op", role(&[])), ("old", role(&[]))], &[("ann", user(&["op"])), ("bob", user(&[]))]);
        let want = doc(&[("op", role(&[]))], &[("ann", user(&["op"]))]);
        let kept = run(&cur, &want, false).unwrap();
        assert_eq!((kept.counts.removed, kept.counts.unlisted), (0, 2));
        let pruned = run(&cur, &want, true).unwrap();
        let order: Vec<(EntryKind, &str)> = pruned.changes.iter().map(|c| (c.kind, c.name.as_str())).collect();
        assert_eq!(order, [(EntryKind::User, "bob"), (EntryKind::Role, "old")]);
    }

    #[test]
    fn references_must_exist_once_applied_and_case_is_not_a_rename() {
        let cur = doc(&[("op", role(&[]))], &[("ann", user(&[]))]);
        let want = doc(&[], &[("ann", user(&["op"]))]);
        assert!(run(&cur, &want, false).is_ok(), "op is kept without prune");
        let err = run(&cur, &want, true).unwrap_err();
        assert!(err.iter().any(|e| e.contains("users.ann.roles[0]: no role \"op\"")), "{err:?}");
        let want = doc(&[("op", role(&[]))], &[("Ann", user(&[]))]);
        let err = run(&cur, &want, false).unwrap_err();
        assert!(err.iter().any(|e| e.contains("users.Ann: the gateway has this account as \"ann\"")), "{err:?}");
    }

    #[test]
    fn built_ins_are_never_removed_nor_given_rights_and_the_key_owner_stays() {
        let mut admin = user(&[]);
        admin.builtin = true;
        let mut sup = role(&[("sessions.view", "*")]);
        sup.builtin = true;
        let cur = doc(&[("supervisor", sup.clone())], &[("admin", admin.clone()), ("plc", user(&[]))]);
        let want = doc(&[], &[]);
        let plan = run(&cur, &want, true).unwrap();
        assert_eq!(plan.changes.len(), 1, "{plan:?}");
        let mut p = Problems::default();
        plan_with_guard(&cur, &want, &mut p);
        assert!(!p.is_empty());
        let mut strong = admin.clone();
        strong.roles = vec!["supervisor".into()];
        let err = run(&cur, &doc(&[("supervisor", sup)], &[("admin", strong)]), false).unwrap_err();
        assert!(err.iter().any(|e| e.contains("users.admin: the built-in admin")), "{err:?}");
    }

    #[test]
    fn directory_accounts_are_left_to_the_directory() {
        let mut jsmith = user(&["op"]);
        jsmith.source = "directory".into();
        let cur = doc(&[("op", role(&[]))], &[("jsmith", jsmith.clone())]);
        // Not listed: not removed, not even counted as unlisted.
        let plan = run(&cur, &doc(&[("op", role(&[]))], &[]), true).unwrap();
        assert!(plan.noop, "{plan:?}");
        // Listed as a directory account with other roles: passed over, with a note.
        let mut other = jsmith.clone();
        other.roles.clear();
        let plan = run(&cur, &doc(&[("op", role(&[]))], &[("jsmith", other), ("new", jsmith)]), false).unwrap();
        assert!(plan.noop && plan.notes.len() == 1, "{plan:?}");
        // Listed as a local account: refused.
        let err = run(&cur, &doc(&[("op", role(&[]))], &[("jsmith", user(&[]))]), false).unwrap_err();
        assert!(err.iter().any(|e| e.contains("users.jsmith: this account comes from the plant directory")), "{err:?}");
    }

    fn plan_with_guard(cur: &PolicyDoc, want: &PolicyDoc, p: &mut Problems) {
        plan(cur, want, true, &Guard { key_owner: Some("PLC".into()) }, p);
    }
}
