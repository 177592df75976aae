//! The sessions methods' params and results, and their events.

use super::events::EventDoc;

/// The events of this family.
pub const EVENTS: &[EventDoc] = &[];
