//! The public contract, as types: every method's params and result, every event's payload, the one
//! shape of an actor. The daemon decodes and encodes with them, the CLI builds its requests with them,
//! and `gatewarden api schema`, `docs/api.md` and `docs/asyncapi.yaml` are generated from them, so the
//! code and its reference cannot disagree.
//!
//! A leaf: depends on serde and schemars only, never on the daemon's modules.
//!
//! Times on the wire are unix milliseconds (`*_at`, `ts`, `since`, `*_ms`) unless a field's name ends
//! in `_s` (whole seconds).

pub mod accounts;
pub mod catalog;
pub mod events;
pub mod objects;
pub mod policy;
pub mod policyfile;
pub mod sessions;
pub mod system;
pub mod topics;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A method's params type: it names the method and its result type, so a method's name is written
/// once (here, by [`method!`]) and the daemon's route, the CLI's call and the docs all read it.
pub trait Method: Serialize + DeserializeOwned + JsonSchema {
    const NAME: &'static str;
    type Result: Serialize + DeserializeOwned + JsonSchema;
}

/// `method!("user.create", UserCreate => UserView);` makes `UserCreate` the params of `user.create`.
#[macro_export]
macro_rules! method {
    ($name:literal, $params:ty => $result:ty) => {
        impl $crate::contract::Method for $params {
            const NAME: &'static str = $name;
            type Result = $result;
        }
    };
}

/// Who did something, everywhere the contract names one (events, control messages, the supervisor
/// lock, broadcasts, the audit trail): the user, or the API key by its name. Both are null for the
/// daemon itself and for callers that did not authenticate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The user's name.
    pub u: Option<String>,
    /// The API key's name.
    pub key_id: Option<String>,
}

impl Actor {
    pub fn user(name: impl Into<String>) -> Actor {
        Actor { u: Some(name.into()), key_id: None }
    }

    pub fn key(name: impl Into<String>) -> Actor {
        Actor { u: None, key_id: Some(name.into()) }
    }

    /// Nobody: the daemon itself, or an unauthenticated caller.
    pub fn nobody() -> Actor {
        Actor::default()
    }

    /// The compact form kept in database columns (`user:NAME`, `key:NAME`, `-`).
    pub fn to_text(&self) -> String {
        match (&self.u, &self.key_id) {
            (Some(u), _) => format!("user:{u}"),
            (None, Some(k)) => format!("key:{k}"),
            (None, None) => "-".into(),
        }
    }

    /// Reads [`Actor::to_text`] back; anything else (rows older than this shape: `system`,
    /// `login:NAME`, `console:root`) is nobody.
    pub fn from_text(s: &str) -> Actor {
        if let Some(u) = s.strip_prefix("user:") {
            Actor::user(u)
        } else if let Some(k) = s.strip_prefix("key:") {
            Actor::key(k)
        } else {
            Actor::nobody()
        }
    }

    /// How a message to a person names it: `user night`, `API key plc-1`, `the system`.
    pub fn describe(&self) -> String {
        match (&self.u, &self.key_id) {
            (Some(u), _) => format!("user {u}"),
            (None, Some(k)) => format!("API key {k}"),
            (None, None) => "the system".into(),
        }
    }
}

/// A self-contained JSON Schema (draft 2020-12, its `$defs` inside) of `T`.
pub fn schema<T: JsonSchema>() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>()
}

/// The params of a method that takes none (`{}`, or absent).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_survives_its_column_text() {
        for a in [Actor::user("night"), Actor::key("plc:1"), Actor::nobody()] {
            assert_eq!(Actor::from_text(&a.to_text()), a);
        }
        assert_eq!(Actor::from_text("login:bob"), Actor::nobody());
    }
}
