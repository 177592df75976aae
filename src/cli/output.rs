//! Human output: a result object becomes `key: value` lines, a list of objects becomes a table.
//! Timestamps (unix ms in fields named `ts`, `since`, `*_at`) are shown as UTC.
//!
//! Every string the CLI prints for a person (keys, values, error messages) passes through [`safe`],
//! so a value someone stored (an audit detail, a resource attribute, a terminate reason) cannot move
//! the cursor, clear the screen, forge a line or reorder the text around it on the technician's
//! terminal. `--json` output is left to the JSON encoder: it is for programs.

use serde_json::Value;
use std::borrow::Cow;

/// The one door to the terminal: control characters (C0, C1, ESC, DEL), format, bidi and zero-width
/// characters become visible escapes like `\u{1b}` (see [`crate::text::escape`]).
pub fn safe(s: &str) -> Cow<'_, str> {
    crate::text::escape(s)
}

/// Prints a method result for a person.
pub fn print_human(v: &Value) {
    print!("{}", render(v));
}

pub fn render(v: &Value) -> String {
    match v {
        Value::Array(items) if items.is_empty() => "(none)\n".to_string(),
        Value::Array(items) if items.iter().all(Value::is_object) => table(items),
        Value::Object(map) => {
            let width = map.keys().map(|k| safe(k).chars().count()).max().unwrap_or(0);
            let mut out = String::new();
            for (k, v) in map {
                match v {
                    Value::Object(inner) if !inner.is_empty() => {
                        out.push_str(&format!("{}:\n", safe(k)));
                        for line in render(v).lines() {
                            out.push_str(&format!("  {line}\n"));
                        }
                    }
                    Value::Array(items) if items.iter().any(Value::is_object) => {
                        out.push_str(&format!("{}:\n", safe(k)));
                        for line in render(v).lines() {
                            out.push_str(&format!("  {line}\n"));
                        }
                    }
                    _ => out.push_str(&format!("{:width$}  {}\n", safe(k), cell(k, v))),
                }
            }
            out
        }
        other => format!("{}\n", cell("", other)),
    }
}

fn table(items: &[Value]) -> String {
    let mut cols: Vec<&str> = Vec::new();
    for item in items {
        if let Value::Object(m) = item {
            for k in m.keys() {
                if !cols.contains(&k.as_str()) {
                    cols.push(k);
                }
            }
        }
    }
    let rows: Vec<Vec<String>> =
        items.iter().map(|it| cols.iter().map(|c| cell(c, it.get(*c).unwrap_or(&Value::Null))).collect()).collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| rows.iter().map(|r| r[i].chars().count()).chain([safe(c).chars().count()]).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let line = |cells: Vec<String>| {
        let mut s: String = cells.iter().zip(&widths).map(|(c, w)| format!("{c:w$}  ")).collect();
        s.truncate(s.trim_end().len());
        s + "\n"
    };
    out.push_str(&line(cols.iter().map(|c| safe(c).to_uppercase()).collect()));
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

fn is_time_key(k: &str) -> bool {
    k == "ts" || k == "since" || k.ends_with("_at") || k == "opened" || k == "last_seen"
}

fn cell(key: &str, v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => safe(s).into_owned(),
        Value::Number(n) if is_time_key(key) => n.as_i64().map(format_ms).unwrap_or_else(|| n.to_string()),
        Value::Array(a) if a.iter().all(|x| x.is_string() || x.is_number()) => {
            let parts: Vec<String> = a.iter().map(|x| cell("", x)).collect();
            if parts.is_empty() { "-".into() } else { parts.join(",") }
        }
        other => safe(&other.to_string()).into_owned(),
    }
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SSZ`.
pub fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

pub use crate::text::parse_utc;

// Proleptic Gregorian calendar conversions (the well-known era-based algorithm); the other way in
// `text::parse_utc`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn time_round_trip() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_ms(1_795_425_427_000), "2026-11-23 09:17:07Z");
        assert_eq!(parse_utc("2026-11-23T09:17:07Z"), Some(1_795_425_427_000));
        assert_eq!(parse_utc("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(parse_utc("2024-13-01"), None);
        assert_eq!(parse_utc("yesterday"), None);
    }

    #[test]
    fn terminal_controls_in_values_and_keys_are_escaped() {
        let v = json!([{"action": "supervisor.message", "detail": {"text": "\u{1b}[2J\u{202e}evil"}, "who": "a\nb"}]);
        let t = render(&v);
        assert!(!t.chars().any(|c| c != '\n' && crate::text::is_hidden(c)), "{t:?}");
        assert!(t.contains("\\u{202e}evil") && t.contains("a\\nb"), "{t}");
        assert_eq!(t.lines().count(), 2, "{t}");
        let o = render(&json!({"x\u{1b}[31m": {"k\u{200b}": "v\u{9b}"}}));
        assert!(o.contains("x\\u{1b}[31m:") && o.contains("k\\u{200b}") && o.contains("v\\u{9b}"), "{o}");
        assert!(!o.chars().any(|c| c != '\n' && crate::text::is_hidden(c)), "{o:?}");
    }

    #[test]
    fn tables_and_objects() {
        let t = render(&json!([{"name": "alice", "roles": ["a", "b"]}, {"name": "bob", "roles": []}]));
        assert_eq!(t, "NAME   ROLES\nalice  a,b\nbob    -\n");
        let o = render(&json!({"version": "1", "lock": null}));
        assert_eq!(o, "version  1\nlock     -\n");
    }
}
