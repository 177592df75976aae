//! Characters that must never reach a terminal raw nor hide inside an identifier, in one place.
//!
//! What must never happen: a value someone else stored (an audit detail, a resource attribute, a
//! terminate reason) moves the cursor, clears the screen, reorders what follows it (bidi overrides) or
//! hides part of itself (zero-width characters) when a technician's terminal shows it; and two resource
//! ids that look the same on screen are different ids. [`is_hidden`] is the one answer to "may this
//! character be shown or stored as it is?", used by the CLI's human output ([`escape`]) and by the
//! resource id rules (`authz::validate_resource_id`).

use std::borrow::Cow;

/// Unicode format characters (general category Cf), Unicode 15.1, as inclusive ranges. They are
/// invisible by design: zero-width space and joiners, the bidi marks, embeddings, overrides and
/// isolates, the BOM, the invisible math operators, interlinear annotation and tag characters.
const FORMAT: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Other characters Unicode marks "default ignorable" (rendered as nothing) that are not Cf: the
/// combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian variation selectors and
/// the variation selectors. A name holding one looks exactly like the name without it.
const IGNORABLE: &[(u32, u32)] = &[
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0100, 0xE01EF),
];

fn in_ranges(c: char, ranges: &[(u32, u32)]) -> bool {
    let c = u32::from(c);
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Whether `c` is a control character (C0, DEL, C1, so ESC too), a format character (zero-width,
/// bidi marks, overrides and isolates, BOM...), another default-ignorable character, or a line or
/// paragraph separator: everything that changes how a terminal shows the text around it, or shows
/// nothing at all.
pub fn is_hidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || in_ranges(c, FORMAT) || in_ranges(c, IGNORABLE)
}

/// `s` made safe to print on a terminal: every [`is_hidden`] character becomes a visible escape
/// (`\n`, `\t`, `\r`, or `\u{202e}`); everything else, including other non-ASCII text, is kept.
/// Borrowed when nothing needed escaping, which is nearly always.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` as shown inside an error message: escaped, quoted, and cut to about `max` bytes with `...`,
/// so that echoing a hostile value costs at most a line.
pub fn shown(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let more = if end < s.len() { "..." } else { "" };
    format!("\"{}\"{more}", escape(&s[..end]))
}

/// Longest reason (a terminate, a supervisor lock), in characters.
pub const MAX_REASON: usize = 500;
/// Longest broadcast message, in characters.
pub const MAX_MESSAGE: usize = 1000;
/// Longest short field: a display name, a session's client type, project, host or address.
pub const MAX_FIELD: usize = 128;
/// Longest description (of a role), in characters.
pub const MAX_DESCRIPTION: usize = 1024;

/// Whether a text may hold line breaks: a broadcast may, a one-line field may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// The one check for free text a client sends (reasons, messages, names shown to people, client
/// fields): trimmed; empty means absent; at most `max` characters; no [`is_hidden`] character, except
/// `\n` where `lines` allows it. The error names `what` and the rule.
pub fn clean(
    what: &str,
    text: Option<String>,
    max: usize,
    lines: Lines,
) -> Result<Option<String>, crate::protocol::ApiError> {
    let text = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    if let Some(t) = &text {
        let n = t.chars().count();
        if n > max {
            return Err(crate::protocol::ApiError::bad_request(format!(
                "{what} is {n} characters long; at most {max}"
            )));
        }
        if t.chars().any(|c| is_hidden(c) && !(c == '\n' && lines == Lines::Many)) {
            let allowed = if lines == Lines::Many { " (line breaks are fine)" } else { "" };
            return Err(crate::protocol::ApiError::bad_request(format!(
                "{what} holds control or invisible characters{allowed}"
            )));
        }
    }
    Ok(text)
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS][Z]` (UTC) into unix milliseconds: dates typed by people
/// (the CLI's `--expires`, an import file's `expires_at`).
pub fn parse_utc(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
    let mut dp = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, d) = (dp.next()??, dp.next()??, dp.next()??);
    let mut tp = time.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (tp.next()??, tp.next().unwrap_or(Some(0))?, tp.next().unwrap_or(Some(0))?);
    // Years past 9999 are refused before any arithmetic, so no input overflows it.
    if dp.next().is_some()
        || !(0..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || hh > 23
        || mm > 59
        || ss > 60
    {
        return None;
    }
    Some((days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss) * 1000)
}

// Proleptic Gregorian calendar conversions (the well-known era-based algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_free_text() {
        let ok = |t: &str, lines| clean("x", Some(t.into()), 10, lines).unwrap();
        assert_eq!(ok("  hi  ", Lines::One), Some("hi".into()));
        assert_eq!(ok("   ", Lines::One), None);
        assert_eq!(ok("a\nb", Lines::Many), Some("a\nb".into()));
        for bad in ["a\nb", "a\u{1b}[2J", "a\u{202e}b", "a\u{200b}b", "0123456789x"] {
            assert!(clean("x", Some(bad.into()), 10, Lines::One).is_err(), "{bad:?}");
        }
        assert!(clean("x", Some("a\u{1b}b".into()), 10, Lines::Many).is_err());
    }

    #[test]
    fn hidden_characters() {
        for c in ['\u{0}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9b}', '\u{200b}', '\u{200d}', '\u{200e}', '\u{202e}'] {
            assert!(is_hidden(c), "{c:?}");
        }
        for c in ['\u{2066}', '\u{2069}', '\u{feff}', '\u{ad}', '\u{2028}', '\u{e0041}', '\u{fe0f}', '\u{3164}'] {
            assert!(is_hidden(c), "{c:?}");
        }
        for c in ['a', 'ü', ' ', '/', '\u{a0}', '日', 'й', '\u{301}'] {
            assert!(!is_hidden(c), "{c:?}");
        }
    }

    #[test]
    fn escape_keeps_text_and_shows_the_rest() {
        assert!(matches!(escape("line1/presse-ü"), Cow::Borrowed(_)));
        assert_eq!(escape("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape("x\u{202e}gnp.exe"), "x\\u{202e}gnp.exe");
        assert_eq!(escape("one\ntwo\tthree\r"), "one\\ntwo\\tthree\\r");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
    }

    #[test]
    fn shown_cuts_and_escapes() {
        assert_eq!(shown("abc", 10), "\"abc\"");
        assert_eq!(shown("abcdef", 3), "\"abc\"...");
        assert_eq!(shown("üüü", 3), "\"ü\"...");
        assert_eq!(shown("a\u{1b}", 10), "\"a\\u{1b}\"");
        assert!(shown(&"x".repeat(1 << 20), 64).len() < 80);
    }
}
