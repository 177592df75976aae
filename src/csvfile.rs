//! Reading the plant's CSV files: resource inventories and resource lists.
//!
//! The header row names the identifier kind in its first column (`device`, `serial`, `tag` ...).
//! An inventory (`resource import`) may have more columns: they become the resources' attributes.
//! A list (`group import`, `role grant --resources-file`) has exactly that one column.
//! Parsing is pure (no database), reports every bad row with its line number, and never panics on
//! any input: the fuzz target `csv_import` holds it to that.

use serde_json::{Map, Value};
use std::collections::HashMap;

/// One problem, on one line of the file (line 0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

impl RowError {
    fn new(line: u64, message: impl Into<String>) -> RowError {
        RowError { line, message: message.into() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub id: String,
    pub attributes: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    /// The identifier kind named by the header.
    pub kind: String,
    pub rows: Vec<Row>,
}

/// Longest accepted file, so a hostile upload cannot make us build a huge table.
pub const MAX_ROWS: usize = 100_000;

/// Identifier kinds and attribute names: `device`, `serial_no`, `tag`.
pub fn is_valid_column_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Resource identifiers: 1-256 bytes, no whitespace or control characters, no `*`, not starting
/// with `@` (those would read as selectors).
pub fn validate_resource_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("resource id is empty".into());
    }
    if id.len() > 256 {
        return Err(format!("resource id is {} bytes long; at most 256", id.len()));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("resource id {id:?} contains whitespace or control characters"));
    }
    if id.contains('*') || id.starts_with('@') {
        return Err(format!("resource id {id:?} may not contain '*' or start with '@' (those are selectors)"));
    }
    Ok(())
}

/// Parses an inventory: first column the identifier, further columns attributes.
pub fn parse_inventory(text: &str) -> Result<Sheet, Vec<RowError>> {
    parse(text, true)
}

/// Parses a resource list: exactly one column, the identifier.
pub fn parse_list(text: &str) -> Result<Sheet, Vec<RowError>> {
    parse(text, false)
}

fn parse(text: &str, attributes_allowed: bool) -> Result<Sheet, Vec<RowError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(vec![RowError::new(0, "file is empty: expected a header row naming the identifier kind")]);
    }
    let lines = Lines::new(text);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(vec![RowError::new(1, format!("unreadable header: {e}"))]),
        None => return Err(vec![RowError::new(0, "file is empty")]),
    };
    let header_line = header.position().map(|p| lines.at(p.byte())).unwrap_or(1);
    let names: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let first = names.first().cloned().unwrap_or_default();
    if names.len() == 1
        && let Some(sep) = [';', '\t', '|'].into_iter().find(|c| first.contains(*c))
    {
        return Err(vec![RowError::new(
            header_line,
            format!("the header {first:?} looks separated by {sep:?}: files must be comma-separated"),
        )]);
    }
    if !is_valid_column_name(&first) {
        return Err(vec![RowError::new(
            header_line,
            format!("expected a header row naming the identifier kind (like device, serial or tag), found {first:?}"),
        )]);
    }
    if !attributes_allowed && names.len() > 1 {
        return Err(vec![RowError::new(
            header_line,
            format!(
                "a resource list has one column naming the identifier kind; this header has {} ({}): one kind per file",
                names.len(),
                names.join(", ")
            ),
        )]);
    }
    let mut errors = Vec::new();
    for (i, name) in names.iter().enumerate().skip(1) {
        if !is_valid_column_name(name) {
            errors.push(RowError::new(
                header_line,
                format!("column {} header {name:?} is not a valid attribute name", i + 1),
            ));
        } else if names[..i].contains(name) {
            errors.push(RowError::new(header_line, format!("column {name:?} appears twice in the header")));
        }
    }
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| lines.at(p.byte())).unwrap_or(0);
                errors.push(RowError::new(line, format!("unreadable row: {e}")));
                continue;
            }
        };
        let line = record.position().map(|p| lines.at(p.byte())).unwrap_or(0);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if rows.len() >= MAX_ROWS {
            errors.push(RowError::new(line, format!("more than {MAX_ROWS} rows; split the file")));
            break;
        }
        if record.len() != names.len() {
            errors.push(RowError::new(line, format!("{} fields, but the header has {}", record.len(), names.len())));
            continue;
        }
        let id = record.get(0).unwrap_or_default().trim().to_string();
        if let Err(m) = validate_resource_id(&id) {
            errors.push(RowError::new(line, m));
            continue;
        }
        if let Some(first_line) = seen.get(&id) {
            errors.push(RowError::new(line, format!("{id:?} is already listed on line {first_line}")));
            continue;
        }
        seen.insert(id.clone(), line);
        let attributes = names
            .iter()
            .zip(record.iter())
            .skip(1)
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (k.clone(), Value::String(v.trim().to_string())))
            .collect();
        rows.push(Row { line, id, attributes });
    }
    if errors.is_empty() { Ok(Sheet { kind: first, rows }) } else { Err(errors) }
}

/// Line numbers as a person counts them in an editor, for any line ending: `\n`, `\r\n`, or a lone
/// `\r` (old spreadsheet exports). The csv crate's own count sees only `\n`.
struct Lines<'a> {
    text: &'a [u8],
    /// Byte offset where each line after the first starts.
    starts: Vec<u64>,
}

impl Lines<'_> {
    fn new(text: &str) -> Lines<'_> {
        let b = text.as_bytes();
        let starts = (0..b.len())
            .filter(|&i| b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')))
            .map(|i| i as u64 + 1)
            .collect();
        Lines { text: b, starts }
    }

    /// The 1-based line of the record starting at byte `offset`. The csv crate places a record after
    /// blank lines at the first blank line; the record itself starts after them.
    fn at(&self, offset: u64) -> u64 {
        let skip = self.text.iter().skip(offset as usize).take_while(|&&c| c == b'\n' || c == b'\r').count();
        let offset = offset + skip as u64;
        self.starts.partition_point(|&s| s <= offset) as u64 + 1
    }
}

/// Formats row errors for a reply message: the first few in the text, all of them in the data.
pub fn summarize(errors: &[RowError]) -> String {
    let shown: Vec<String> = errors.iter().take(5).map(|e| format!("line {}: {}", e.line, e.message)).collect();
    let more = if errors.len() > 5 { format!(" (and {} more)", errors.len() - 5) } else { String::new() };
    format!("{} bad row(s), nothing changed: {}{more}", errors.len(), shown.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_with_attributes() {
        let s = parse_inventory("device,line,description\nline1/press3,line1,Press 3\nline1/press4,line1,\n").unwrap();
        assert_eq!(s.kind, "device");
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0].line, 2);
        assert_eq!(s.rows[0].attributes["description"], "Press 3");
        assert!(!s.rows[1].attributes.contains_key("description"));
    }

    #[test]
    fn line_numbers_hold_for_every_line_ending() {
        for nl in ["\n", "\r\n", "\r"] {
            let text = ["device", "a/1", "", "a/2", "bad id"].join(nl) + nl;
            let e = parse_list(&text).unwrap_err();
            assert_eq!(
                e,
                vec![RowError::new(5, "resource id \"bad id\" contains whitespace or control characters")],
                "{nl:?}"
            );
            let ok = parse_list(&["device", "a/1", "", "a/2"].join(nl)).unwrap();
            assert_eq!(ok.rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 4], "{nl:?}");
        }
    }

    #[test]
    fn list_rejects_bad_shapes_with_line_numbers() {
        let e = parse_list("line1/press3\nline1/press4\n").unwrap_err();
        assert_eq!(e[0].line, 1);
        assert!(e[0].message.contains("header row"), "{:?}", e);
        let e = parse_list("device;serial\nA;B\n").unwrap_err();
        assert!(e[0].message.contains("comma-separated"), "{:?}", e);
        let e = parse_list("device,serial\nA,B\n").unwrap_err();
        assert!(e[0].message.contains("one kind per file"), "{:?}", e);
        let e = parse_list("device\nok1\nbad id\nok2\nok1\n").unwrap_err();
        assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3, 5]);
        assert!(parse_list("").is_err());
        assert!(parse_list("\u{feff}device\nA\n").is_ok());
    }

    #[test]
    fn inventory_rejects_wrong_field_counts() {
        let e = parse_inventory("device,line\nA,1\nB\nC,3,extra\n").unwrap_err();
        assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3, 4]);
    }
}
