//! Reading the plant's CSV files: resource inventories and resource lists, and the files of named
//! columns that load accounts and roles in bulk ([`parse_table`]).
//!
//! The header row names the identifier kind in its first column (`device`, `serial`, `tag` ...).
//! An inventory (`resource import`) may have more columns: they become the resources' attributes.
//! A list (`group import`, `role grant --resources-file`) has exactly that one column.
//! Parsing is pure (no database), reports bad rows with their line numbers, and never panics on
//! any input: the fuzz target `csv_import` holds it to that.
//!
//! What must never happen: a malformed file silently repaired into data nobody wrote. The reader is
//! strict RFC 4180 (with `\n`, `\r\n` or a lone `\r` ending a line): a quoted field runs to its closing
//! quote, `""` inside it is a quote; a quote never closed, a quote inside an unquoted field, or text
//! after a closing quote is an error on its line, never a value. (The `csv` crate accepts all three.)
//!
//! Bounds: a refusal reports the first [`MAX_REPORTED`] bad rows in full and counts the rest, and
//! repeats at most 64 bytes of any value, so a hostile megabyte costs a reply of a few kilobytes.

use crate::text;
use serde_json::{Map, Value, json};
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

/// The bad rows of a file: the first [`MAX_REPORTED`] in full, and how many there were in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowErrors {
    /// The first problems, in file order.
    pub shown: Vec<RowError>,
    /// Every problem found, shown or not.
    pub total: usize,
}

impl RowErrors {
    /// Records a problem; past [`MAX_REPORTED`] it is only counted.
    pub fn push(&mut self, line: u64, message: impl Into<String>) {
        if self.shown.len() < MAX_REPORTED {
            self.shown.push(RowError::new(line, message));
        }
        self.total += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn one(line: u64, message: impl Into<String>) -> RowErrors {
        let mut e = RowErrors::default();
        e.push(line, message);
        e
    }

    /// The reply message: how many bad rows, the first few, and that nothing changed.
    pub fn summary(&self) -> String {
        let shown: Vec<String> = self.shown.iter().take(5).map(|e| format!("line {}: {}", e.line, e.message)).collect();
        let more = if self.total > 5 { format!(" (and {} more)", self.total - 5) } else { String::new() };
        format!("{} bad row(s), nothing changed: {}{more}", self.total, shown.join("; "))
    }

    /// The reply data: `errors` (the rows shown) and `more_errors` (how many are not).
    pub fn data(&self) -> (Value, Value) {
        (json!(self.shown), json!(self.total - self.shown.len()))
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

/// How many bad rows a refusal lists in full; the rest are counted.
pub const MAX_REPORTED: usize = 20;

/// The longest attribute value, in bytes (the SPEC's bound on texts).
pub const MAX_ATTRIBUTE_LEN: usize = 1024;

/// How much of a value an error message repeats.
const SHOWN: usize = 64;

/// Identifier kinds and attribute names: `device`, `serial_no`, `tag`.
pub fn is_valid_column_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Resource identifiers: canonical ids, see [`crate::authz::validate_resource_id`].
pub fn validate_resource_id(id: &str) -> Result<(), String> {
    crate::authz::validate_resource_id(id).map_err(|e| e.to_string())
}

/// Parses an inventory: first column the identifier, further columns attributes.
pub fn parse_inventory(text: &str) -> Result<Sheet, RowErrors> {
    parse(text, true)
}

/// Parses a resource list: exactly one column, the identifier.
pub fn parse_list(text: &str) -> Result<Sheet, RowErrors> {
    parse(text, false)
}

fn parse(text: &str, attributes_allowed: bool) -> Result<Sheet, RowErrors> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(RowErrors::one(0, "file is empty: expected a header row naming the identifier kind"));
    }
    let mut records = Records::new(text);
    let (header_line, names) = header(&mut records, attributes_allowed)?;
    let mut errors = RowErrors::default();
    check_attribute_names(header_line, &names, &mut errors);
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in records {
        if rows.len() >= MAX_ROWS
            && let Ok(r) = &record
            && r.fields.iter().any(|f| !f.trim().is_empty())
        {
            errors.push(r.line, format!("more than {MAX_ROWS} rows; split the file"));
            break;
        }
        if let Some(row) = row(record, &names, &seen, &mut errors) {
            seen.insert(row.id.clone(), row.line);
            rows.push(row);
        }
    }
    let kind = names.into_iter().next().unwrap_or_default();
    if errors.is_empty() { Ok(Sheet { kind, rows }) } else { Err(errors) }
}

/// The first record that is not blank: the header.
fn header_record(records: &mut Records<'_>) -> Result<Record, RowErrors> {
    loop {
        match records.next() {
            Some(Ok(h)) if h.fields.iter().all(|f| f.trim().is_empty()) => continue,
            Some(Ok(h)) => return Ok(h),
            Some(Err(e)) => return Err(RowErrors::one(e.line, format!("unreadable header: {}", e.message))),
            None => return Err(RowErrors::one(0, "file is empty")),
        }
    }
}

/// The header row: the identifier kind, then attribute names (when allowed). Returns its line and
/// the trimmed names.
fn header(records: &mut Records<'_>, attributes_allowed: bool) -> Result<(u64, Vec<String>), RowErrors> {
    let header = header_record(records)?;
    let header_line = header.line;
    let names: Vec<String> = header.fields.iter().map(|h| h.trim().to_string()).collect();
    let first = names.first().cloned().unwrap_or_default();
    if names.len() == 1
        && let Some(sep) = [';', '\t', '|'].into_iter().find(|c| first.contains(*c))
    {
        return Err(RowErrors::one(
            header_line,
            format!(
                "the header {} looks separated by {sep:?}: files must be comma-separated",
                text::shown(&first, SHOWN)
            ),
        ));
    }
    if !is_valid_column_name(&first) {
        return Err(RowErrors::one(
            header_line,
            format!(
                "expected a header row naming the identifier kind (like device, serial or tag), found {}",
                text::shown(&first, SHOWN)
            ),
        ));
    }
    if !attributes_allowed && names.len() > 1 {
        let listed = text::shown(&names.join(", "), SHOWN);
        return Err(RowErrors::one(
            header_line,
            format!(
                "a resource list has one column naming the identifier kind; this header has {} ({listed}): one kind per file",
                names.len(),
            ),
        ));
    }
    Ok((header_line, names))
}

/// Attribute column names: valid, and each once.
fn check_attribute_names(header_line: u64, names: &[String], errors: &mut RowErrors) {
    for (i, name) in names.iter().enumerate().skip(1) {
        if !is_valid_column_name(name) {
            errors.push(
                header_line,
                format!("column {} header {} is not a valid attribute name", i + 1, text::shown(name, SHOWN)),
            );
        } else if names[..i].contains(name) {
            errors.push(header_line, format!("column {} appears twice in the header", text::shown(name, SHOWN)));
        }
    }
}

/// One data row, or `None` when it is blank or wrong (then its problems are in `errors`).
fn row(
    record: Result<Record, RowError>,
    names: &[String],
    seen: &HashMap<String, u64>,
    errors: &mut RowErrors,
) -> Option<Row> {
    let record = match record {
        Ok(r) => r,
        Err(e) => {
            errors.push(e.line, e.message);
            return None;
        }
    };
    let line = record.line;
    if record.fields.iter().all(|f| f.trim().is_empty()) {
        return None;
    }
    if record.fields.len() != names.len() {
        errors.push(line, format!("{} fields, but the header has {}", record.fields.len(), names.len()));
        return None;
    }
    let id = record.fields[0].trim();
    if let Err(m) = validate_resource_id(id) {
        errors.push(line, m);
        return None;
    }
    if let Some(first_line) = seen.get(id) {
        errors.push(line, format!("{} is already listed on line {first_line}", text::shown(id, SHOWN)));
        return None;
    }
    let mut attributes = Map::new();
    let mut too_long = false;
    for (name, value) in names.iter().zip(&record.fields).skip(1) {
        let value = value.trim();
        if value.len() > MAX_ATTRIBUTE_LEN {
            errors.push(
                line,
                format!("column {name}: the value is {} bytes long; at most {MAX_ATTRIBUTE_LEN}", value.len()),
            );
            too_long = true;
        } else if !value.is_empty() {
            attributes.insert(name.clone(), Value::String(value.to_string()));
        }
    }
    if too_long {
        return None;
    }
    Some(Row { line, id: id.to_string(), attributes })
}

/// A file of named columns (`user import`, `role import`): the header names each column once, from
/// `known`, `required` among them, in any order; every other row has one field per column, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<String>,
    /// Each data row: its line and its fields, in the header's order. Blank rows are left out.
    pub rows: Vec<(u64, Vec<String>)>,
}

impl Table {
    /// The field of column `name` in `row`, if the file has that column.
    pub fn field<'a>(&self, row: &'a [String], name: &str) -> Option<&'a str> {
        self.columns.iter().position(|c| c == name).and_then(|i| row.get(i)).map(String::as_str)
    }
}

/// Parses a [`Table`] of at most `max_rows` data rows, with the same strict reader and the same
/// bounded report as the resource files.
pub fn parse_table(text: &str, known: &[&str], required: &[&str], max_rows: usize) -> Result<Table, RowErrors> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let expected = format!("expected a header row naming the columns ({})", known.join(", "));
    if text.trim().is_empty() {
        return Err(RowErrors::one(0, format!("file is empty: {expected}")));
    }
    let mut records = Records::new(text);
    let header = header_record(&mut records)?;
    let columns: Vec<String> = header.fields.iter().map(|h| h.trim().to_string()).collect();
    let mut errors = RowErrors::default();
    for (i, c) in columns.iter().enumerate() {
        if !known.contains(&c.as_str()) {
            errors.push(header.line, format!("column {} is unknown: {expected}", text::shown(c, SHOWN)));
        } else if columns[..i].contains(c) {
            errors.push(header.line, format!("column {c} appears twice in the header"));
        }
    }
    for r in required {
        if !columns.iter().any(|c| c == r) {
            errors.push(header.line, format!("the header has no {r} column: {expected}"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut rows = Vec::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(e.line, e.message);
                continue;
            }
        };
        if record.fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if rows.len() >= max_rows {
            errors.push(record.line, format!("more than {max_rows} rows; split the file"));
            break;
        }
        if record.fields.len() != columns.len() {
            let hint = if record.fields.len() > columns.len() {
                " (a value holding a comma, like the m=...,t=...,p=... of a password hash, must be in double quotes)"
            } else {
                ""
            };
            errors.push(
                record.line,
                format!("{} fields, but the header has {}{hint}", record.fields.len(), columns.len()),
            );
            continue;
        }
        rows.push((record.line, record.fields.iter().map(|f| f.trim().to_string()).collect()));
    }
    if errors.is_empty() { Ok(Table { columns, rows }) } else { Err(errors) }
}

/// One record of the file and the line it starts on (1-based, as an editor counts, whatever the line
/// endings).
struct Record {
    line: u64,
    fields: Vec<String>,
}

/// A strict RFC 4180 reader over the whole text (see the module doc). After an error it resumes at
/// the next line; a quote never closed ends the file, since everything after it was inside it.
struct Records<'a> {
    text: &'a [u8],
    at: usize,
    line: u64,
    done: bool,
}

impl<'a> Records<'a> {
    fn new(text: &'a str) -> Records<'a> {
        Records { text: text.as_bytes(), at: 0, line: 1, done: false }
    }

    /// Consumes a line ending at `self.at`, if there is one; true if it did.
    fn line_end(&mut self) -> bool {
        match self.text.get(self.at) {
            Some(b'\r') => {
                self.at += if self.text.get(self.at + 1) == Some(&b'\n') { 2 } else { 1 };
                self.line += 1;
                true
            }
            Some(b'\n') => {
                self.at += 1;
                self.line += 1;
                true
            }
            _ => false,
        }
    }

    /// Skips the rest of the current line after an error.
    fn skip_line(&mut self) {
        while self.at < self.text.len() && !matches!(self.text[self.at], b'\r' | b'\n') {
            self.at += 1;
        }
        self.line_end();
    }

    fn slice(&self, from: usize, to: usize) -> String {
        // Cuts fall on ASCII delimiters, so they are character boundaries of the UTF-8 text.
        String::from_utf8_lossy(&self.text[from..to]).into_owned()
    }

    fn record(&mut self) -> Result<Record, RowError> {
        let line = self.line;
        let mut fields = Vec::new();
        loop {
            let field = if self.text.get(self.at) == Some(&b'"') {
                let opened = self.line;
                self.at += 1;
                let mut value = String::new();
                let mut from = self.at;
                loop {
                    match self.text.get(self.at) {
                        None => {
                            self.done = true;
                            return Err(RowError::new(
                                opened,
                                "a quoted field opened on this line is never closed (a '\"' is missing)",
                            ));
                        }
                        Some(b'"') if self.text.get(self.at + 1) == Some(&b'"') => {
                            value.push_str(&self.slice(from, self.at + 1));
                            self.at += 2;
                            from = self.at;
                        }
                        Some(b'"') => {
                            value.push_str(&self.slice(from, self.at));
                            self.at += 1;
                            break;
                        }
                        Some(b'\r' | b'\n') => {
                            self.line_end();
                        }
                        Some(_) => self.at += 1,
                    }
                }
                if !matches!(self.text.get(self.at), None | Some(b',' | b'\r' | b'\n')) {
                    let bad = self.line;
                    self.skip_line();
                    return Err(RowError::new(
                        bad,
                        "text after the closing quote of a field: quote the whole field, and write a quote inside it as \"\"",
                    ));
                }
                value
            } else {
                let from = self.at;
                while self.at < self.text.len() && !matches!(self.text[self.at], b',' | b'\r' | b'\n') {
                    self.at += 1;
                }
                if self.text[from..self.at].contains(&b'"') {
                    let bad = self.line;
                    self.skip_line();
                    return Err(RowError::new(
                        bad,
                        "a quote inside an unquoted field: quote the whole field, and write a quote inside it as \"\"",
                    ));
                }
                self.slice(from, self.at)
            };
            fields.push(field);
            if self.text.get(self.at) == Some(&b',') {
                self.at += 1;
                continue;
            }
            self.line_end();
            return Ok(Record { line, fields });
        }
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.at >= self.text.len() {
            return None;
        }
        Some(self.record())
    }
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
                e.shown,
                vec![RowError::new(5, "resource id \"bad id\" contains whitespace at byte 3")],
                "{nl:?}"
            );
            let ok = parse_list(&["device", "a/1", "", "a/2"].join(nl)).unwrap();
            assert_eq!(ok.rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 4], "{nl:?}");
        }
    }

    #[test]
    fn list_rejects_bad_shapes_with_line_numbers() {
        let e = parse_list("line1/press3\nline1/press4\n").unwrap_err().shown;
        assert_eq!(e[0].line, 1);
        assert!(e[0].message.contains("header row"), "{:?}", e);
        let e = parse_list("device;serial\nA;B\n").unwrap_err().shown;
        assert!(e[0].message.contains("comma-separated"), "{:?}", e);
        let e = parse_list("device,serial\nA,B\n").unwrap_err().shown;
        assert!(e[0].message.contains("one kind per file"), "{:?}", e);
        let e = parse_list("device\nok1\nbad id\nok2\nok1\n").unwrap_err().shown;
        assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3, 5]);
        assert!(parse_list("").is_err());
        assert!(parse_list("\u{feff}device\nA\n").is_ok());
    }

    #[test]
    fn inventory_rejects_wrong_field_counts() {
        let e = parse_inventory("device,line\nA,1\nB\nC,3,extra\n").unwrap_err().shown;
        assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3, 4]);
    }

    fn refused(text: &str) -> Vec<(u64, String)> {
        match parse_inventory(text) {
            Ok(sheet) => panic!("{text:?} accepted as {sheet:?}"),
            Err(e) => e.shown.into_iter().map(|e| (e.line, e.message)).collect(),
        }
    }

    #[test]
    fn unterminated_quote_on_the_last_row_is_refused_not_repaired() {
        for list in [true, false] {
            let text = "device\nline1/press3\n\"unterminated\n";
            let e = if list { parse_list(text) } else { parse_inventory(text) }.unwrap_err().shown;
            assert_eq!(e.len(), 1, "{e:?}");
            assert_eq!(e[0].line, 3);
            assert!(e[0].message.contains("never closed"), "{e:?}");
        }
        // Without a final newline, and opened on an earlier line of a multi-line field.
        assert_eq!(refused("device\n\"unterminated")[0].0, 2);
        assert_eq!(refused("device,note\na,\"one\ntwo\nthree")[0].0, 2);
    }

    #[test]
    fn stray_quotes_are_refused_with_their_line() {
        let e = refused("device\nab\"c\nok\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, 2);
        assert!(e[0].1.contains("quote inside an unquoted field"), "{e:?}");
        let e = refused("device,note\nok,1\n\"a\"b,2\nc,3\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, 3);
        assert!(e[0].1.contains("after the closing quote"), "{e:?}");
    }

    #[test]
    fn quoted_fields_follow_rfc_4180() {
        let s =
            parse_inventory("device,note\r\n\"a/b\",\"say \"\"hi\"\", then, go\"\r\n\"c\",\"two\nlines\"\r\nd,\r\n")
                .unwrap();
        let got: Vec<(&str, u64, Option<&Value>)> =
            s.rows.iter().map(|r| (r.id.as_str(), r.line, r.attributes.get("note"))).collect();
        assert_eq!(
            got,
            vec![
                ("a/b", 2, Some(&json!("say \"hi\", then, go"))),
                ("c", 3, Some(&json!("two\nlines"))),
                ("d", 5, None)
            ]
        );
    }

    #[test]
    fn a_huge_bad_file_gives_a_bounded_report() {
        let bad_id = format!("line1//{}", "x".repeat(200));
        let mut text = String::from("device\n");
        while text.len() < 1 << 20 {
            text.push_str(&bad_id);
            text.push('\n');
        }
        let e = parse_list(&text).unwrap_err();
        assert_eq!(e.shown.len(), MAX_REPORTED);
        assert!(e.total > 4000, "{}", e.total);
        let reply = serde_json::to_string(&e.data()).unwrap().len() + e.summary().len();
        assert!(reply < 8 * 1024, "{reply} bytes");
        assert!(e.summary().contains(&format!("and {} more", e.total - 5)), "{}", e.summary());
    }

    #[test]
    fn non_canonical_ids_are_refused() {
        let e = refused("device\nline1//safety\nline1/./safety\nline1/safety/\nline1/safe\u{200b}ty\n");
        assert_eq!(e.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
    }

    #[test]
    fn a_table_reads_named_columns_in_any_order_and_reports_by_line() {
        let known = ["name", "roles", "note"];
        let t = parse_table("roles,name\n\"a;b\", ann \n\n,bob\n", &known, &["name"], 10).unwrap();
        assert_eq!(
            t.rows,
            vec![(2, vec!["a;b".to_string(), "ann".to_string()]), (4, vec![String::new(), "bob".into()])]
        );
        assert_eq!(t.field(&t.rows[0].1, "name"), Some("ann"));
        assert_eq!(t.field(&t.rows[0].1, "note"), None);
        let lines = |text: &str| -> Vec<u64> {
            parse_table(text, &known, &["name"], 2).unwrap_err().shown.iter().map(|e| e.line).collect()
        };
        assert_eq!(lines("roles\nx\n"), vec![1]);
        assert_eq!(lines("name,colour\nx,1\n"), vec![1]);
        assert_eq!(lines("name,name\nx,y\n"), vec![1]);
        assert_eq!(lines("name\na\nb,c\nd\"e\nf\n"), vec![3, 4]);
        assert_eq!(lines("name\na\nb\nc\n"), vec![4]);
        assert!(parse_table("", &known, &["name"], 2).is_err());
    }

    #[test]
    fn long_attribute_values_are_refused() {
        let e = refused(&format!("device,note\na,{}\n", "n".repeat(MAX_ATTRIBUTE_LEN + 1)));
        assert!(e[0].1.contains("at most 1024"), "{e:?}");
    }
}
