//! Events: what the daemon publishes on `<prefix>/events/<name>` (QoS 1, not retained) after the
//! change they report commits. Every payload is a type here, registered in [`super::catalog::events`], so the AsyncAPI
//! document lists each one with its schema.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;

/// One event payload type.
pub trait Event: Serialize + JsonSchema {
    /// The event's name: the last level of its topic.
    const NAME: &'static str;
    /// One line for the docs: when it is published.
    const SUMMARY: &'static str;
}

/// An event as the docs list it.
#[derive(Debug, Clone, Copy)]
pub struct EventDoc {
    pub name: &'static str,
    pub summary: &'static str,
    /// The payload's schema, its definitions kept in the generator.
    pub schema: fn(&mut SchemaGenerator) -> Schema,
    /// The payload's schema on its own (draft 2020-12, its `$defs` inside).
    pub root: fn() -> Schema,
}

/// The [`EventDoc`] of an event type.
pub const fn doc<E: Event>() -> EventDoc {
    EventDoc {
        name: E::NAME,
        summary: E::SUMMARY,
        schema: |g| g.subschema_for::<E>(),
        root: crate::contract::schema::<E>,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_event_is_registered_once() {
        let mut names: Vec<&str> = super::super::catalog::events().map(|e| e.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "an event registered twice");
    }
}
