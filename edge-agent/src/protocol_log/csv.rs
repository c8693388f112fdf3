//! CSV in the RFC 4180 sense: quoting fields when writing, splitting records when reading.
//!
//! A quoted field may hold CR or LF, so a record can span several physical lines.

use std::borrow::Cow;

/// What ends a record, as in Exchange's (and RFC 4180's) files.
pub(super) const LINE_END: &str = "\r\n";

/// Appends `field` to `line`, wrapped in double quotes (with inner quotes doubled) when it holds
/// a comma, a quote, CR or LF.
pub(super) fn push_field(line: &mut String, field: &str) {
    if !field.contains([',', '"', '\r', '\n']) {
        line.push_str(field);
        return;
    }
    line.push('"');
    for part in field.split_inclusive('"') {
        line.push_str(part);
        if part.ends_with('"') {
            line.push('"');
        }
    }
    line.push('"');
}

/// One record read back from a file.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Record<'a> {
    /// The record as written, without its terminator.
    pub text: &'a str,
    /// Its fields, unquoted.
    pub fields: Vec<Cow<'a, str>>,
    /// Whether a line end closed it (else the text ended first: a torn or unfinished write).
    pub terminated: bool,
}

/// The records of a file's text, in order, skipping `#` header lines and blank lines.
pub(super) fn records(text: &str) -> impl Iterator<Item = Record<'_>> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            if rest.starts_with('#') || rest.starts_with('\n') || rest.starts_with("\r\n") {
                rest = rest.split_once('\n').map_or("", |(_, after)| after);
                continue;
            }
            let (record, after) = split_record(rest);
            rest = after;
            return Some(record);
        }
    })
}

/// Splits the record at the start of `text` from what follows its terminator.
fn split_record(text: &str) -> (Record<'_>, &str) {
    let mut fields = Vec::with_capacity(9);
    let mut at = 0;
    loop {
        let (field, end) = field_at(text, at);
        fields.push(field);
        match text.as_bytes().get(end) {
            Some(b',') => at = end + 1,
            Some(_) => {
                // Only '\n' ends an unquoted field besides ','; a quoted one may be followed by
                // stray text up to the next ',' or '\n', which field_at already skipped.
                let record_text = text[..end].strip_suffix('\r').unwrap_or(&text[..end]);
                return (Record { text: record_text, fields, terminated: true }, &text[end + 1..]);
            }
            None => {
                let record_text = text.strip_suffix('\r').unwrap_or(text);
                return (Record { text: record_text, fields, terminated: false }, "");
            }
        }
    }
}

/// The field starting at byte `at` and the byte offset of the ',' or '\n' after it (or the end).
fn field_at(text: &str, at: usize) -> (Cow<'_, str>, usize) {
    let rest = &text[at..];
    if !rest.starts_with('"') {
        let len = rest.find([',', '\n']).unwrap_or(rest.len());
        let field = &rest[..len];
        return (Cow::Borrowed(field.strip_suffix('\r').unwrap_or(field)), at + len);
    }
    let mut value = String::new();
    let mut inner = &rest[1..];
    loop {
        let Some(quote) = inner.find('"') else {
            // An unterminated quote (a torn write): take the rest as the field.
            value.push_str(inner);
            return (Cow::Owned(value), text.len());
        };
        value.push_str(&inner[..quote]);
        inner = &inner[quote + 1..];
        if inner.starts_with('"') {
            value.push('"');
            inner = &inner[1..];
            continue;
        }
        break;
    }
    // Anything between the closing quote and the next separator is not ours to keep.
    let end = text.len() - inner.len();
    let skip = inner.find([',', '\n']).unwrap_or(inner.len());
    (Cow::Owned(value), end + skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(field: &str) -> String {
        let mut line = String::new();
        push_field(&mut line, field);
        line
    }

    #[test]
    fn quotes_only_fields_that_need_it() {
        assert_eq!(quoted("250 OK"), "250 OK");
        assert_eq!(quoted(""), "");
        assert_eq!(quoted("a,b"), "\"a,b\"");
        assert_eq!(quoted("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quoted("two\r\nlines"), "\"two\r\nlines\"");
        assert_eq!(quoted("\""), "\"\"\"\"");
    }

    #[test]
    fn splits_records_with_quoted_separators_and_skips_headers() {
        let text = "#Software: x\r\n#Fields: a,b,c\r\nplain,\"a,b\",\"say \"\"hi\"\"\"\r\n\
                    x,\"two\r\nlines\",\r\nlast,,";
        let records: Vec<_> = records(text).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].text, "plain,\"a,b\",\"say \"\"hi\"\"\"");
        assert_eq!(records[0].fields, ["plain", "a,b", "say \"hi\""]);
        assert_eq!(records[1].text, "x,\"two\r\nlines\",");
        assert_eq!(records[1].fields, ["x", "two\r\nlines", ""]);
        assert!(records[1].terminated);
        assert_eq!(records[2].fields, ["last", "", ""]);
        assert!(!records[2].terminated);
    }

    #[test]
    fn round_trips_any_field() {
        let fields = ["", ",", "\"", "\r\n", "a\"b,c\nd", "plain text"];
        let mut line = String::new();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            push_field(&mut line, field);
        }
        line.push_str(LINE_END);
        let records: Vec<_> = records(&line).collect();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].fields, fields);
    }
}
