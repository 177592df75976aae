//! Resource selectors, the part of a grant that says which resources it covers: an exact resource id
//! (`line1/press3`), a resource group (`@presses`), a glob (`line1/*`, `line1/**`) or `*` for every
//! current and future resource. Parsing refuses anything ambiguous or malformed, so the index only ever
//! compiles selectors an operator could have meant.
//!
//! Glob rules: resource ids are split into segments at `/`. Inside a segment, `*` matches any run of
//! characters, possibly empty, but never crosses a `/`. A whole segment `**` matches zero or more
//! segments (`a/**/b` matches `a/b` and `a/x/y/b`; `**/b` matches `b` and `x/b`), except at the end of
//! the pattern, where it matches one or more: `line1/**` matches `line1/a` and `line1/a/b` but not
//! `line1` itself. A grant on everything *inside* a line is not a grant on the line.
//!
//! New selectors are held to the resource id rules ([`validate_resource_id`]): an exact id must be a
//! canonical id, and a glob's segments follow the same rules (none empty, none `.` or `..`, no
//! whitespace, control or invisible characters), so a glob cannot be written to match spellings of an
//! id that no inventory holds. A glob has at most [`MAX_GLOB_SEGMENTS`] segments, at most
//! [`MAX_GLOB_DEEP`] of them `**`. Grants already stored before these rules keep working: the policy
//! loader reads them with [`Selector::parse_stored`], the rules of 0.1.0.

use super::resource_id::{self, ResourceIdError, SegmentProblem};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The longest selector accepted, in bytes.
pub const MAX_SELECTOR_LEN: usize = 256;

/// The most `/`-separated segments in a glob: ten times a deep plant path.
pub const MAX_GLOB_SEGMENTS: usize = 32;

/// The most `**` segments in a glob. Matching stays linear whatever the pattern (see the glob
/// module); this bound keeps patterns readable and their cost small.
pub const MAX_GLOB_DEEP: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// Exactly this resource id.
    Id(String),
    /// Every member of this resource group (the name, without `@`).
    Group(String),
    /// Resource ids matching this pattern (see the module doc).
    Glob(String),
    /// Every current and future resource, including ids in no inventory or group.
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("empty resource selector")]
    Empty,
    #[error("resource selector {selector:?} is {len} bytes long; at most {MAX_SELECTOR_LEN} are allowed")]
    TooLong { selector: String, len: usize },
    #[error(
        "resource selector {selector:?} contains whitespace or an invisible or control character (U+{code:04X}) at byte {at}"
    )]
    BadChar { selector: String, at: usize, code: u32 },
    /// An exact-id selector that is not a canonical resource id.
    #[error("resource selector: {0}")]
    Id(ResourceIdError),
    #[error("resource selector {selector:?} has an empty segment: no leading, trailing or doubled '/'")]
    EmptySegment { selector: String },
    #[error("resource selector {selector:?} has a {segment:?} segment: selectors are written without '.' or '..'")]
    DotSegment { selector: String, segment: &'static str },
    #[error("resource selector {selector:?} has {count} segments; at most {MAX_GLOB_SEGMENTS} are allowed")]
    TooManySegments { selector: String, count: usize },
    #[error("resource selector {selector:?} has {count} '**' segments; at most {MAX_GLOB_DEEP} are allowed")]
    TooManyDeep { selector: String, count: usize },
    #[error("resource selector {selector:?} has no group name after '@'")]
    EmptyGroup { selector: String },
    #[error(
        "resource selector {selector:?}: '*' cannot be used in a group name; a group is selected by its exact name"
    )]
    WildcardInGroup { selector: String },
    #[error(
        "resource selector {selector:?}: invalid group name; a group name starts with a letter or digit \
         and holds only letters, digits, '_', '-' and '.'"
    )]
    InvalidGroup { selector: String },
}

/// Whether `name` is acceptable as a resource group name: an ASCII letter or digit, then ASCII letters,
/// digits, `_`, `-` or `.`, at most [`MAX_SELECTOR_LEN`] - 1 bytes (so that `@name` fits a selector).
pub fn is_valid_group_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(first) if first.is_ascii_alphanumeric() => {
            bytes.len() < MAX_SELECTOR_LEN
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        }
        _ => false,
    }
}

/// The selector as shown in an error message: long ones are cut so a message stays one readable line.
fn shown(s: &str) -> String {
    const KEEP: usize = 48;
    if s.len() <= KEEP {
        return s.to_owned();
    }
    let mut end = KEEP;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

impl Selector {
    /// Parses the text form of a new selector: `*`, `@group`, a pattern containing `*`, or an exact
    /// resource id, each held to the rules of the module doc.
    pub fn parse(s: &str) -> Result<Selector, SelectorError> {
        if let Err((at, c)) = resource_id::check_characters(s)
            && s.len() <= MAX_SELECTOR_LEN
        {
            return Err(SelectorError::BadChar { selector: shown(s), at, code: u32::from(c) });
        }
        let selector = Selector::parse_stored(s)?;
        let segments = |problem| match problem {
            SegmentProblem::Empty => SelectorError::EmptySegment { selector: shown(s) },
            SegmentProblem::Dot(segment) => SelectorError::DotSegment { selector: shown(s), segment },
        };
        match &selector {
            Selector::Id(id) => resource_id::validate_resource_id(id).map_err(SelectorError::Id)?,
            Selector::Glob(pattern) => {
                resource_id::check_segments(pattern).map_err(segments)?;
                let count = pattern.split('/').count();
                if count > MAX_GLOB_SEGMENTS {
                    return Err(SelectorError::TooManySegments { selector: shown(s), count });
                }
                let count = pattern.split('/').filter(|p| *p == "**").count();
                if count > MAX_GLOB_DEEP {
                    return Err(SelectorError::TooManyDeep { selector: shown(s), count });
                }
            }
            Selector::Group(_) | Selector::All => {}
        }
        Ok(selector)
    }

    /// Parses a selector stored by an earlier version, under the rules of 0.1.0 (length, no whitespace
    /// or control characters, group names). Only for rows already in the database: a deny grant written
    /// then must keep denying, and an operator must be able to revoke what exists.
    pub fn parse_stored(s: &str) -> Result<Selector, SelectorError> {
        if s.is_empty() {
            return Err(SelectorError::Empty);
        }
        if s.len() > MAX_SELECTOR_LEN {
            return Err(SelectorError::TooLong { selector: shown(s), len: s.len() });
        }
        if let Some((at, c)) = s.char_indices().find(|(_, c)| c.is_whitespace() || c.is_control()) {
            return Err(SelectorError::BadChar { selector: shown(s), at, code: u32::from(c) });
        }
        if s == "*" {
            return Ok(Selector::All);
        }
        if let Some(name) = s.strip_prefix('@') {
            if name.is_empty() {
                return Err(SelectorError::EmptyGroup { selector: s.to_owned() });
            }
            if name.contains('*') {
                return Err(SelectorError::WildcardInGroup { selector: s.to_owned() });
            }
            if !is_valid_group_name(name) {
                return Err(SelectorError::InvalidGroup { selector: s.to_owned() });
            }
            return Ok(Selector::Group(name.to_owned()));
        }
        if s.contains('*') {
            return Ok(Selector::Glob(s.to_owned()));
        }
        Ok(Selector::Id(s.to_owned()))
    }

    /// The text form; `Selector::parse(&s.as_text())` gives back `s` for every parsed selector.
    pub fn as_text(&self) -> String {
        match self {
            Selector::Id(id) => id.clone(),
            Selector::Group(name) => format!("@{name}"),
            Selector::Glob(pattern) => pattern.clone(),
            Selector::All => "*".to_owned(),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Id(id) => f.write_str(id),
            Selector::Group(name) => write!(f, "@{name}"),
            Selector::Glob(pattern) => f.write_str(pattern),
            Selector::All => f.write_str("*"),
        }
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Selector, SelectorError> {
        Selector::parse(s)
    }
}

/// In JSON a selector is its text form, checked on the way in.
impl Serialize for Selector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Selector, D::Error> {
        let text = String::deserialize(deserializer)?;
        Selector::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        let cases: &[(&str, Selector)] = &[
            ("*", Selector::All),
            ("line1/press3", Selector::Id("line1/press3".into())),
            ("press3", Selector::Id("press3".into())),
            ("tag@plc1", Selector::Id("tag@plc1".into())),
            ("@presses", Selector::Group("presses".into())),
            ("@line-1.presses_a", Selector::Group("line-1.presses_a".into())),
            ("line1/*", Selector::Glob("line1/*".into())),
            ("line1/**", Selector::Glob("line1/**".into())),
            ("**", Selector::Glob("**".into())),
            ("*/press*", Selector::Glob("*/press*".into())),
            ("presse/ü*", Selector::Glob("presse/ü*".into())),
        ];
        for (text, want) in cases {
            let got = Selector::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(&got, want, "{text:?}");
            assert_eq!(got.as_text(), *text, "round trip of {text:?}");
            assert_eq!(got.to_string(), *text, "display of {text:?}");
        }
    }

    #[test]
    fn refuses_malformed() {
        let long = "a".repeat(MAX_SELECTOR_LEN + 1);
        type IsExpected = fn(&SelectorError) -> bool;
        let cases: &[(&str, IsExpected)] = &[
            ("", |e| matches!(e, SelectorError::Empty)),
            (&long, |e| matches!(e, SelectorError::TooLong { len: 257, .. })),
            ("line1 press3", |e| matches!(e, SelectorError::BadChar { at: 5, .. })),
            ("line1\tpress3", |e| matches!(e, SelectorError::BadChar { at: 5, .. })),
            ("line1/\u{7f}", |e| matches!(e, SelectorError::BadChar { at: 6, .. })),
            ("press\u{a0}3", |e| matches!(e, SelectorError::BadChar { at: 5, .. })),
            (" *", |e| matches!(e, SelectorError::BadChar { at: 0, .. })),
            ("@", |e| matches!(e, SelectorError::EmptyGroup { .. })),
            ("@pres*", |e| matches!(e, SelectorError::WildcardInGroup { .. })),
            ("@*", |e| matches!(e, SelectorError::WildcardInGroup { .. })),
            ("@-presses", |e| matches!(e, SelectorError::InvalidGroup { .. })),
            ("@line1/presses", |e| matches!(e, SelectorError::InvalidGroup { .. })),
            ("@@presses", |e| matches!(e, SelectorError::InvalidGroup { .. })),
        ];
        for (text, is_expected) in cases {
            match Selector::parse(text) {
                Ok(s) => panic!("{text:?} parsed as {s:?}"),
                Err(e) => assert!(is_expected(&e), "{text:?}: unexpected error {e:?}"),
            }
        }
    }

    #[test]
    fn new_selectors_follow_the_resource_id_rules() {
        type IsExpected = fn(&SelectorError) -> bool;
        let deep = vec!["**/a"; 42].join("/") + "/b";
        let wide = vec!["a"; 33].join("/") + "/*";
        let cases: &[(&str, IsExpected)] = &[
            ("line1//safety", |e| matches!(e, SelectorError::Id(ResourceIdError::EmptySegment { .. }))),
            ("line1/./safety", |e| matches!(e, SelectorError::Id(ResourceIdError::DotSegment { .. }))),
            ("line1/safety/", |e| matches!(e, SelectorError::Id(ResourceIdError::EmptySegment { .. }))),
            ("line1/safe\u{200b}ty", |e| matches!(e, SelectorError::BadChar { at: 10, code: 0x200B, .. })),
            ("line1/\u{202e}*", |e| matches!(e, SelectorError::BadChar { code: 0x202E, .. })),
            ("line1//*", |e| matches!(e, SelectorError::EmptySegment { .. })),
            ("/line1/*", |e| matches!(e, SelectorError::EmptySegment { .. })),
            ("line1/**/", |e| matches!(e, SelectorError::EmptySegment { .. })),
            ("line1/../*", |e| matches!(e, SelectorError::DotSegment { segment: "..", .. })),
            ("./*", |e| matches!(e, SelectorError::DotSegment { segment: ".", .. })),
            (&deep, |e| matches!(e, SelectorError::TooManySegments { count: 85, .. })),
            ("**/a/**/b/**/c/**/d/**", |e| matches!(e, SelectorError::TooManyDeep { count: 5, .. })),
            (&wide, |e| matches!(e, SelectorError::TooManySegments { count: 34, .. })),
        ];
        for (text, is_expected) in cases {
            match Selector::parse(text) {
                Ok(s) => panic!("{text:?} parsed as {s:?}"),
                Err(e) => assert!(is_expected(&e), "{text:?}: unexpected error {e:?}"),
            }
        }
        assert!(Selector::parse("**/a/**/b/**/c/**").is_ok());
        assert!(Selector::parse(&(vec!["a"; 31].join("/") + "/*")).is_ok());
        // What 0.1.0 stored still reads, so a stored deny keeps denying.
        for old in ["line1//*", "line1/./safety", &deep] {
            assert!(Selector::parse_stored(old).is_ok(), "{old:?}");
        }
        assert!(Selector::parse_stored("a b").is_err());
    }

    #[test]
    fn a_longest_selector_is_accepted() {
        let max = "a".repeat(MAX_SELECTOR_LEN);
        assert_eq!(Selector::parse(&max), Ok(Selector::Id(max.clone())));
    }

    #[test]
    fn errors_name_the_selector_and_the_problem() {
        let msg = |s: &str| Selector::parse(s).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg("@pres*").contains("\"@pres*\""), "{}", msg("@pres*"));
        assert!(msg("@pres*").contains("group name"));
        assert!(msg("a b").contains("\"a b\"") && msg("a b").contains("whitespace"));
        let long = msg(&"x".repeat(1000));
        assert!(long.contains("1000 bytes") && long.len() < 200, "{long}");
    }

    #[test]
    fn json_is_the_text_form_and_is_checked() {
        let grant_json = serde_json::to_string(&Selector::Group("presses".into())).unwrap_or_default();
        assert_eq!(grant_json, "\"@presses\"");
        let back: Selector = serde_json::from_str("\"line1/*\"").unwrap();
        assert_eq!(back, Selector::Glob("line1/*".into()));
        assert!(serde_json::from_str::<Selector>("\"@bad*\"").is_err());
    }

    #[test]
    fn group_names() {
        for ok in ["a", "presses", "Line1.presses", "0-9_x"] {
            assert!(is_valid_group_name(ok), "{ok:?}");
        }
        for bad in ["", "-a", ".a", "a b", "a/b", "a*", "ü", &"a".repeat(MAX_SELECTOR_LEN)] {
            assert!(!is_valid_group_name(bad), "{bad:?}");
        }
    }
}
