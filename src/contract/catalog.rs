//! What the contract holds, listed for the docs and the checks: every event of every family.

use super::events::EventDoc;

/// Every event, by family.
pub fn events() -> impl Iterator<Item = &'static EventDoc> {
    [
        super::accounts::EVENTS,
        super::objects::EVENTS,
        super::policy::EVENTS,
        super::policyfile::EVENTS,
        super::sessions::EVENTS,
        super::system::EVENTS,
    ]
    .into_iter()
    .flatten()
}
