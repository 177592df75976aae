//! The accounts methods' params and results (`login`, `logout`, `user.*`, `key.*`), and their events.
//!
//! Names of accounts and API keys are 1-64 letters, digits, `.`, `_` or `-`, starting with a letter or
//! digit; passwords are at most 1024 characters and at least `accounts.password_min_length`. The
//! daemon checks both and answers `bad_request` naming the field.

use super::Actor;
use super::events::{Event, EventDoc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

// ---------------------------------------------------------------------------------------------
// login, logout

/// `login`: a login token for a user name and password.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user name.
    #[schemars(length(min = 1, max = 64))]
    pub user: String,
    /// The user's password (at most 1024 bytes).
    pub password: String,
}

crate::method!("login", Login => LoginToken);

/// What `login` answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LoginToken {
    /// The login token (`gwt_...`): pass it as `auth: {"token": ...}` (the CLI's `--token`).
    pub token: String,
    /// The user it belongs to.
    pub user: String,
    /// When the token stops working (unix ms).
    pub expires_at: i64,
}

/// `logout`: revokes the login token the request carries.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Logout {}

crate::method!("logout", Logout => LoggedOut);

/// What `logout` answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LoggedOut {
    /// The user whose token was revoked.
    pub logged_out: String,
    /// Client sessions opened with that token, ended with it.
    #[serde(default)]
    pub sessions_terminated: u64,
}

// ---------------------------------------------------------------------------------------------
// user.*

/// `user.create`: creates an account. Giving it roles also needs `roles.manage`, and only roles whose
/// grants the caller holds itself.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    /// The new account's name.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Its password; without one the account cannot log in with a password until one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The name shown on panels and terminals: one line of at most 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Roles to give it (by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// When the account stops working (unix ms, up to the year 9999); none: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

crate::method!("user.create", UserCreate => UserView);

/// `user.register`: self-registration, open to anonymous callers when `accounts.self_registration`
/// is on. The account gets the roles of `accounts.default_roles`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRegister {
    /// The new account's name.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Its password.
    pub password: String,
    /// The name shown on panels and terminals: one line of at most 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

crate::method!("user.register", UserRegister => UserView);

/// `user.import`: creates accounts from a CSV file in one transaction, all or nothing: every row is
/// checked first, and one bad row (reported with its line, like `resource.import`) changes nothing.
/// Needs `users.manage`; a file that gives roles also needs `roles.manage` and, like `user.create`,
/// only roles whose grants the caller holds itself.
///
/// Columns, named by the header row in any order (only `name` is required):
/// `name`; `display_name`; `roles` (role names separated by `;`, at most 64); `password_hash` (an
/// argon2id PHC string, `"$argon2id$v=19$m=...,t=...,p=...$salt$hash"`, in double quotes since it
/// holds commas; never a clear password; empty: the account has no password and logs in by other
/// means once one is set); `expires_at` (unix ms, or a UTC date `2027-01-31` /
/// `2027-01-31T18:00:00Z`; empty: never).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserImport {
    /// The file (CSV text), at most 100000 rows, within `daemon.max_request_bytes`.
    pub csv: String,
}

crate::method!("user.import", UserImport => UsersImported);

/// What `user.import` did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UsersImported {
    /// Accounts created.
    pub created: usize,
    /// Of them, accounts created with a password hash.
    pub with_password: usize,
    /// Role assignments made (account and role pairs).
    pub role_links: usize,
}

/// `user.list`: every account with its roles.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserList {}

crate::method!("user.list", UserList => Vec<UserView>);

/// `user.show`: one account with its roles and grants. Your own freely; another's with `users.view`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserShow {
    /// The account; none: your own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

crate::method!("user.show", UserShow => UserView);

/// `user.update`: display name, expiry, roles. A field left out is left as it is; changing roles also
/// needs `roles.manage`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// The account to change.
    pub name: String,
    /// The new display name (one line of at most 128 characters); `null` clears it.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub display_name: Option<Option<String>>,
    /// The new expiry (unix ms, up to the year 9999); `null`: never expires.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Option<i64>>,
    /// Roles to give it (by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_roles: Vec<String>,
    /// Roles to take away (by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_roles: Vec<String>,
}

crate::method!("user.update", UserUpdate => UserView);

/// A field given, perhaps as `null` (`Some(None)`: clear it), as opposed to left out (`None`: leave
/// it as it is).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `user.disable`: suspends an account at once; its login tokens are revoked and its sessions end.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserDisable {
    /// The account.
    pub name: String,
}

crate::method!("user.disable", UserDisable => UserSwitched);

/// `user.enable`: re-enables a suspended account (its old login tokens stay revoked).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserEnable {
    /// The account.
    pub name: String,
}

crate::method!("user.enable", UserEnable => UserSwitched);

/// What `user.disable` and `user.enable` answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserSwitched {
    /// The account.
    pub user: String,
    /// Whether it is enabled now.
    pub enabled: bool,
    /// Login tokens revoked (0 when enabling).
    pub tokens_revoked: u64,
    /// Client sessions ended (0 when enabling).
    pub sessions_terminated: u64,
}

/// `user.delete`: deletes an account with its API keys, login tokens, grants and role links; its
/// sessions end.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserDelete {
    /// The account.
    pub name: String,
}

crate::method!("user.delete", UserDelete => UserRemoved);

/// What `user.delete` answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserRemoved {
    /// The account deleted.
    pub deleted: String,
    /// Client sessions ended.
    pub sessions_terminated: u64,
    /// Objects it owned that were deleted with it (`accounts.on_delete = "delete"`, the default).
    pub objects_deleted: u64,
    /// Objects it owned that were given to the built-in admin (`accounts.on_delete =
    /// "reassign-to-admin"`).
    pub objects_reassigned: u64,
}

/// `user.set_password`: your own password (with the current one, unless this request proved it or
/// comes from root on the console), or another account's with `users.manage`. The account's login
/// tokens are revoked, its sessions end and its failed-login lock is lifted.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSetPassword {
    /// The account; none: your own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The new password.
    pub password: String,
    /// Your current password, when changing your own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
}

crate::method!("user.set_password", UserSetPassword => PasswordSet);

/// What `user.set_password` answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PasswordSet {
    /// The account.
    pub user: String,
    /// Login tokens revoked.
    pub tokens_revoked: u64,
    /// Client sessions ended.
    pub sessions_terminated: u64,
}

/// `user.unlock`: ends the failed-login lock of an account, or the slow-down of a network source.
/// Give exactly one of `name` and `source`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUnlock {
    /// The account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A source as the audit trail names it (`mqtt client=panel7`), 1-256 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub source: Option<String>,
}

crate::method!("user.unlock", UserUnlock => Unlocked);

/// What `user.unlock` answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Unlocked {
    /// The account or source.
    pub unlocked: String,
    /// Whether it was locked (or slowed down).
    pub was_locked: bool,
}

/// An account as `user.show`, `user.list`, `user.create`, `user.register` and `user.update` present it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserView {
    /// The account's id (never reused).
    pub id: i64,
    /// The user name.
    pub name: String,
    /// The name shown on panels and terminals.
    pub display_name: Option<String>,
    /// False while the account is suspended (`user.disable`).
    pub enabled: bool,
    /// The built-in `admin` (cannot be deleted, disabled, expired or given other roles).
    pub builtin: bool,
    /// `local`, or `directory`: created by a first login through the plant directory, which
    /// verifies its password (docs/directory.md).
    pub source: String,
    /// When the account stops working (unix ms); null: never.
    pub expires_at: Option<i64>,
    /// When it was created (unix ms).
    pub created_at: i64,
    /// When it was last changed (unix ms).
    pub updated_at: i64,
    /// Until when logins are refused after repeated failures (unix ms); null: not locked.
    pub locked_until: Option<i64>,
    /// Its roles, by name.
    pub roles: Vec<String>,
    /// The grants given to it directly (not through a role).
    pub grants: Vec<UserGrant>,
}

/// A grant given to an account directly.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserGrant {
    /// The grant's id (for `role.revoke`).
    pub id: i64,
    /// The permission granted (a built-in one, or an application's dotted name).
    pub permission: String,
    /// Which access it covers.
    pub access: GrantAccess,
    /// The resource selector it covers (`*`, a resource id, `group:NAME`, ...).
    pub resource: String,
    /// Whether it allows or denies.
    pub effect: GrantEffect,
}

/// The access a grant covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GrantAccess {
    /// Reading only.
    #[serde(rename = "read")]
    Read,
    /// Writing only.
    #[serde(rename = "write")]
    Write,
    /// Reading and writing.
    #[serde(rename = "read,write")]
    ReadWrite,
}

/// Whether a grant allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantEffect {
    /// Allows what it covers.
    Allow,
    /// Denies what it covers, whatever else allows it.
    Deny,
}

// ---------------------------------------------------------------------------------------------
// key.*

/// `key.create`: an API key owned by the caller's account (or by the caller key's owner). Giving it
/// roles also needs `roles.manage`, and only roles whose grants the caller holds itself; only a
/// superuser creates a master key.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyCreate {
    /// The key's name.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Roles to give it (by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// A master key passes every check and every supervisor lock.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub master: bool,
    /// When the key stops working (unix ms, up to the year 9999); none: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

crate::method!("key.create", KeyCreate => KeyCreated);

/// What `key.create` answers: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct KeyCreated {
    /// The key's id.
    pub id: i64,
    /// The key's name.
    pub name: String,
    /// The secret (`gwk_...`): pass it as `auth: {"key": ...}`. Stored only as a digest.
    pub key: String,
    /// Whether it is a master key.
    pub master: bool,
    /// Its roles, by name.
    pub roles: Vec<String>,
}

/// `key.list`: API keys, never their secrets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyList {}

crate::method!("key.list", KeyList => Vec<KeyView>);

/// An API key as `key.list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct KeyView {
    /// The key's id.
    pub id: i64,
    /// The key's name.
    pub name: String,
    /// The account that owns it.
    pub owner: String,
    /// Whether it is a master key.
    pub master: bool,
    /// Its roles, by name.
    pub roles: Vec<String>,
    /// When it was created (unix ms).
    pub created_at: i64,
    /// When it stops working (unix ms); null: never.
    pub expires_at: Option<i64>,
}

/// `key.revoke`: revokes an API key; its sessions end.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRevoke {
    /// The key's name.
    pub name: String,
}

crate::method!("key.revoke", KeyRevoke => KeyRevoked);

/// What `key.revoke` answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct KeyRevoked {
    /// The key revoked.
    pub revoked: String,
    /// Client sessions ended.
    pub sessions_terminated: u64,
}

// ---------------------------------------------------------------------------------------------
// Events

/// `user.created`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UserCreated {
    /// The new account.
    pub user: String,
    /// True when the user registered itself (`user.register`); absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub registered: bool,
    /// Who created it (for self-registration, the new user).
    pub by: Actor,
}

impl Event for UserCreated {
    const NAME: &'static str = "user.created";
    const SUMMARY: &'static str = "an account was created (`user.create`) or registered itself (`user.register`)";
}

/// `user.disabled`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UserDisabled {
    /// The account.
    pub user: String,
    /// Who disabled it.
    pub by: Actor,
}

impl Event for UserDisabled {
    const NAME: &'static str = "user.disabled";
    const SUMMARY: &'static str = "an account was suspended (`user.disable`): its tokens and sessions ended";
}

/// `user.enabled`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UserEnabled {
    /// The account.
    pub user: String,
    /// Who enabled it.
    pub by: Actor,
}

impl Event for UserEnabled {
    const NAME: &'static str = "user.enabled";
    const SUMMARY: &'static str = "a suspended account was enabled again (`user.enable`)";
}

/// `user.deleted`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UserDeleted {
    /// The account.
    pub user: String,
    /// Who deleted it.
    pub by: Actor,
}

impl Event for UserDeleted {
    const NAME: &'static str = "user.deleted";
    const SUMMARY: &'static str = "an account was deleted (`user.delete`) with its keys, tokens and grants";
}

/// `user.imported`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UserImported {
    /// Accounts created.
    pub created: usize,
    /// Who imported them.
    pub by: Actor,
}

impl Event for UserImported {
    const NAME: &'static str = "user.imported";
    const SUMMARY: &'static str = "accounts were created in bulk (`user.import`): one event for the whole file";
}

/// The events of this family.
pub const EVENTS: &[EventDoc] = &[
    super::events::doc::<UserCreated>(),
    super::events::doc::<UserImported>(),
    super::events::doc::<UserDisabled>(),
    super::events::doc::<UserEnabled>(),
    super::events::doc::<UserDeleted>(),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_update_tells_a_field_left_out_from_one_cleared() {
        let p: UserUpdate = serde_json::from_value(json!({"name": "ann", "display_name": null})).unwrap();
        assert_eq!((p.display_name, p.expires_at), (Some(None), None));
        let p: UserUpdate = serde_json::from_value(json!({"name": "ann", "expires_at": 5})).unwrap();
        assert_eq!((p.display_name, p.expires_at), (None, Some(Some(5))));
        // And back: left out stays left out, cleared is sent as null.
        let p = UserUpdate {
            name: "ann".into(),
            display_name: Some(None),
            expires_at: None,
            add_roles: vec![],
            remove_roles: vec![],
        };
        assert_eq!(serde_json::to_value(&p).unwrap(), json!({"name": "ann", "display_name": null}));
    }

    #[test]
    fn user_events_name_who_did_it_and_registered_only_when_true() {
        let ev = UserCreated { user: "ann".into(), registered: false, by: Actor::user("admin") };
        assert_eq!(serde_json::to_value(&ev).unwrap(), json!({"user": "ann", "by": {"u": "admin", "key_id": null}}));
        let ev = UserCreated { user: "bob".into(), registered: true, by: Actor::user("bob") };
        assert_eq!(
            serde_json::to_value(&ev).unwrap(),
            json!({"user": "bob", "registered": true, "by": {"u": "bob", "key_id": null}})
        );
    }

    #[test]
    fn unknown_params_are_refused() {
        assert!(serde_json::from_value::<KeyRevoke>(json!({"name": "k", "force": true})).is_err());
        assert!(serde_json::from_value::<UserList>(json!({"all": true})).is_err());
    }
}
