//! Canonical resource ids: the one rule every resource id is held to wherever it enters (`resource.add`,
//! `resource.import`, group members, CSV resource lists, exact-id selectors, and the resource of
//! `authz.check`, `authz.explain` and `authz.who_can`).
//!
//! What must never be allowed: two spellings of one resource. If `line1//safety`, `line1/./safety`,
//! `line1/safety/` or `line1/safe\u{200b}ty` were ids, a grant or a deny written for `line1/safety`
//! would not cover them, and an HMI that normalises paths (or a terminal that hides the zero-width
//! character) would show them as the same thing. So an id is canonical or refused, never repaired.
//!
//! Canonical: 1 to [`MAX_RESOURCE_ID_LEN`] bytes of UTF-8; segments separated by single `/`; no empty
//! segment (so no leading, trailing or doubled `/`); no `.` or `..` segment; no whitespace at all (so
//! none at either end of a segment); no control, format (Cf), bidi or zero-width character (see
//! [`crate::text::is_hidden`]); no `*` and no leading `@`, which would read as a selector.

use crate::text;

/// The longest resource id, in bytes. Plant paths such as `hall2/line1/cell3/press12/tags/temp` are a
/// few dozen bytes; 256 leaves room for generated ids and keeps every check's work small.
pub const MAX_RESOURCE_ID_LEN: usize = 256;

/// How much of an offending id an error message repeats.
const SHOWN: usize = 64;

/// Why a resource id is not canonical. The message names the id (escaped and cut) and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceIdError {
    #[error("resource id is empty")]
    Empty,
    #[error("resource id {id} is {len} bytes long; at most {MAX_RESOURCE_ID_LEN} are allowed")]
    TooLong { id: String, len: usize },
    #[error("resource id {id} contains whitespace at byte {at}")]
    Whitespace { id: String, at: usize },
    #[error("resource id {id} contains an invisible or control character (U+{code:04X}) at byte {at}")]
    Hidden { id: String, at: usize, code: u32 },
    #[error("resource id {id} has an empty segment: no leading, trailing or doubled '/'")]
    EmptySegment { id: String },
    #[error("resource id {id} has a {segment:?} segment: ids are written without '.' or '..'")]
    DotSegment { id: String, segment: &'static str },
    #[error("resource id {id} may not contain '*' or start with '@' (those are selectors)")]
    SelectorSyntax { id: String },
}

/// Checks that `id` is a canonical resource id (see the module doc).
pub fn validate_resource_id(id: &str) -> Result<(), ResourceIdError> {
    let shown = || text::shown(id, SHOWN);
    if id.is_empty() {
        return Err(ResourceIdError::Empty);
    }
    if id.len() > MAX_RESOURCE_ID_LEN {
        return Err(ResourceIdError::TooLong { id: shown(), len: id.len() });
    }
    check_characters(id).map_err(|(at, c)| {
        if c.is_whitespace() && !text::is_hidden(c) {
            ResourceIdError::Whitespace { id: shown(), at }
        } else {
            ResourceIdError::Hidden { id: shown(), at, code: u32::from(c) }
        }
    })?;
    if id.contains('*') || id.starts_with('@') {
        return Err(ResourceIdError::SelectorSyntax { id: shown() });
    }
    check_segments(id).map_err(|problem| match problem {
        SegmentProblem::Empty => ResourceIdError::EmptySegment { id: shown() },
        SegmentProblem::Dot(segment) => ResourceIdError::DotSegment { id: shown(), segment },
    })
}

/// The first character no id or selector may hold (whitespace, control, format, zero-width), with its
/// byte offset.
pub(crate) fn check_characters(s: &str) -> Result<(), (usize, char)> {
    // Printable ASCII other than space is neither whitespace nor hidden: the common case (plant ids
    // are ASCII) is decided without a per-character table lookup, which a batch of 1000 ids feels.
    if s.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    match s.char_indices().find(|&(_, c)| c.is_whitespace() || text::is_hidden(c)) {
        Some(found) => Err(found),
        None => Ok(()),
    }
}

/// What is wrong with the segments of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentProblem {
    Empty,
    Dot(&'static str),
}

/// Checks the `/`-separated segments of an id or of a glob: none empty, none `.` or `..`.
pub(crate) fn check_segments(s: &str) -> Result<(), SegmentProblem> {
    for segment in s.split('/') {
        match segment {
            "" => return Err(SegmentProblem::Empty),
            "." => return Err(SegmentProblem::Dot(".")),
            ".." => return Err(SegmentProblem::Dot("..")),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_shortcut_says_what_the_character_rule_says() {
        for b in 0u8..=0x7f {
            let c = char::from(b);
            let rule = c.is_whitespace() || text::is_hidden(c);
            assert_eq!(check_characters(&format!("a{c}b")).is_err(), rule, "{b:#04x}");
        }
    }

    #[test]
    fn canonical_ids_pass() {
        let max = "a".repeat(MAX_RESOURCE_ID_LEN);
        for id in ["press3", "line1/press3", "tag@plc1", "presse/über", "a.b/c..d/.e", "x-y_z:1", "日本/ライン", &max]
        {
            assert_eq!(validate_resource_id(id), Ok(()), "{id:?}");
        }
    }

    #[test]
    fn every_second_spelling_is_refused() {
        type Is = fn(&ResourceIdError) -> bool;
        let long = "a".repeat(MAX_RESOURCE_ID_LEN + 1);
        let cases: &[(&str, Is)] = &[
            ("", |e| matches!(e, ResourceIdError::Empty)),
            (&long, |e| matches!(e, ResourceIdError::TooLong { len: 257, .. })),
            ("line1//safety", |e| matches!(e, ResourceIdError::EmptySegment { .. })),
            ("/line1/safety", |e| matches!(e, ResourceIdError::EmptySegment { .. })),
            ("line1/safety/", |e| matches!(e, ResourceIdError::EmptySegment { .. })),
            ("/", |e| matches!(e, ResourceIdError::EmptySegment { .. })),
            ("line1/./safety", |e| matches!(e, ResourceIdError::DotSegment { segment: ".", .. })),
            ("line1/../safety", |e| matches!(e, ResourceIdError::DotSegment { segment: "..", .. })),
            ("..", |e| matches!(e, ResourceIdError::DotSegment { .. })),
            ("line1/ safety", |e| matches!(e, ResourceIdError::Whitespace { at: 6, .. })),
            ("line1/safety ", |e| matches!(e, ResourceIdError::Whitespace { at: 12, .. })),
            ("line1/\u{a0}safety", |e| matches!(e, ResourceIdError::Whitespace { .. })),
            ("line1/safe\u{200b}ty", |e| matches!(e, ResourceIdError::Hidden { code: 0x200B, at: 10, .. })),
            ("line1/\u{202e}safety", |e| matches!(e, ResourceIdError::Hidden { code: 0x202E, .. })),
            ("line1/\u{1b}[2J", |e| matches!(e, ResourceIdError::Hidden { code: 0x1B, .. })),
            ("line1/safety\u{0}", |e| matches!(e, ResourceIdError::Hidden { code: 0, .. })),
            ("line1/\u{2066}x", |e| matches!(e, ResourceIdError::Hidden { .. })),
            ("\u{feff}line1", |e| matches!(e, ResourceIdError::Hidden { .. })),
            ("line1/*", |e| matches!(e, ResourceIdError::SelectorSyntax { .. })),
            ("@presses", |e| matches!(e, ResourceIdError::SelectorSyntax { .. })),
        ];
        for (id, is) in cases {
            match validate_resource_id(id) {
                Ok(()) => panic!("{id:?} accepted"),
                Err(e) => assert!(is(&e), "{id:?}: {e:?}"),
            }
        }
    }

    #[test]
    fn messages_name_the_problem_and_stay_short() {
        let msg = |id: &str| validate_resource_id(id).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg("a//b").contains("\"a//b\"") && msg("a//b").contains("empty segment"), "{}", msg("a//b"));
        assert!(msg("a/../b").contains("\"..\""), "{}", msg("a/../b"));
        let hidden = msg("a\u{1b}[2J");
        assert!(hidden.contains("U+001B") && !hidden.contains('\u{1b}'), "{hidden}");
        let long = msg(&"x".repeat(1 << 20));
        assert!(long.contains("1048576 bytes") && long.len() < 200, "{long}");
    }
}
