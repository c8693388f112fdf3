//! The Domain Secured mark: header fields the edge adds to a message that arrived
//! over a verified partner session, and removes from every message arriving from
//! outside, so the mark cannot be forged.
//!
//! # The scrub rule
//! Every message the edge accepts loses, from its header section:
//! - every `X-DomainSec-Auth` field, in any case, with or without white space
//!   before the colon;
//! - every `Authentication-Results` (and `ARC-Authentication-Results`) field that
//!   carries an `x-domainsec` result, whatever its authserv-id;
//! - every `Authentication-Results` field whose authserv-id claims the
//!   organization's own administrative domain (RFC 8601 §5): a name this edge
//!   answers as, or a name equal to or under one of the organization's domains
//!   (its accepted domains and the parent domains of its edges' FQDNs, so another
//!   edge of the same organization is covered).
//!
//! Fields are read the way the most lenient reader downstream might read them:
//! unfolded (a line starting with SP or HTAB continues the field, also when it
//! holds nothing but white space), with RFC 5322 comments — nested, with quoted
//! pairs — and white space skipped before the authserv-id. The header section
//! ends only at an empty line; the body is never changed.

use domainsec_model::Domain;

/// The header recording a Domain Secured message.
pub const MARK_HEADER: &str = "X-DomainSec-Auth";

/// The Authentication-Results method of the mark.
const MARK_METHOD: &[u8] = b"x-domainsec";

/// The names that belong to this organization, for deciding whether an
/// `Authentication-Results` field claims to come from it.
#[derive(Debug, Clone, Default)]
pub struct OwnNames {
    /// Host names this edge answers as (its FQDN, the connector's FQDN), lower case.
    hosts: Vec<String>,
    /// The organization's domains: an authserv-id equal to or under one is ours.
    domains: Vec<Domain>,
}

/// The header fields that mark `domain`'s message as Domain Secured by this edge
/// (`authserv_id`, its FQDN), CRLF-terminated, to go on top of the message.
pub fn mark(authserv_id: &str, domain: &str, certificate_sha256: &str) -> String {
    format!(
        "{MARK_HEADER}: partner; domain={domain}; cert={certificate_sha256}\r\n\
         Authentication-Results: {authserv_id}; x-domainsec=pass (Domain Secured) smtp.mailfrom-domain={domain}\r\n"
    )
}

/// Removes every field the scrub rule (module docs) names from the header section
/// of `message`, continuation lines included; the body is untouched.
pub fn scrub(message: &[u8], own: &OwnNames) -> Vec<u8> {
    let header_end = header_section_end(message);
    let (header, body) = message.split_at(header_end);
    let mut out = Vec::with_capacity(message.len());
    for field in fields(header) {
        if !is_forged(field, own) {
            out.extend_from_slice(field);
        }
    }
    out.extend_from_slice(body);
    out
}

// === impl OwnNames ===

impl OwnNames {
    /// The names of an edge answering as `hosts`, in an organization with `domains`.
    pub fn new<'a>(hosts: impl IntoIterator<Item = &'a str>, domains: &[Domain]) -> Self {
        let hosts = hosts.into_iter().map(|h| h.trim_end_matches('.').to_ascii_lowercase()).collect();
        Self { hosts, domains: domains.to_vec() }
    }

    /// True when `authserv_id` (as written in the field) names this organization.
    pub fn claims(&self, authserv_id: &str) -> bool {
        let id = authserv_id.trim_end_matches('.').to_ascii_lowercase();
        if id.is_empty() {
            return false;
        }
        if self.hosts.contains(&id) {
            return true;
        }
        self.domains.iter().any(|domain| {
            id == domain.as_str() || id.strip_suffix(domain.as_str()).is_some_and(|prefix| prefix.ends_with('.'))
        })
    }
}

// === helpers ===

/// Whether one whole field (its lines, folded as received) must go.
fn is_forged(field: &[u8], own: &OwnNames) -> bool {
    let Some(colon) = field.iter().position(|b| *b == b':') else { return false };
    let name = trim_wsp(&field[..colon]);
    let value = &field[colon + 1..];
    if name.eq_ignore_ascii_case(MARK_HEADER.as_bytes()) {
        return true;
    }
    let results = name.eq_ignore_ascii_case(b"authentication-results");
    if !results && !name.eq_ignore_ascii_case(b"arc-authentication-results") {
        return false;
    }
    if carries_mark_method(value) {
        return true;
    }
    results && authserv_id_readings(value).iter().any(|id| own.claims(&String::from_utf8_lossy(id)))
}

/// The authserv-id as RFC 8601 reads it, and as lenient readers might (the first
/// run of characters after white space and comments, with comments left in place
/// or taken out, quotes and backslashes dropped): a field is ours if any reading
/// says so.
fn authserv_id_readings(value: &[u8]) -> Vec<Vec<u8>> {
    let uncommented = strip_comments(value);
    let mut readings = vec![first_run(skip_cfws(value)), first_run(skip_cfws(&uncommented))];
    readings.extend(authserv_id(value));
    readings
}

/// The bytes up to the first delimiter, quotes and backslashes dropped, lower case.
fn first_run(value: &[u8]) -> Vec<u8> {
    let end = value.iter().position(|b| matches!(b, b';' | b' ' | b'\t' | b'\r' | b'\n' | b'(')).unwrap_or(value.len());
    value[..end].iter().filter(|b| !matches!(b, b'"' | b'\\')).map(u8::to_ascii_lowercase).collect()
}

/// True when the value mentions the mark's method in any spelling a lenient
/// reader could see: raw, or with comments, white space, quotes and backslashes
/// taken out.
fn carries_mark_method(value: &[u8]) -> bool {
    let lower = value.to_ascii_lowercase();
    if contains(&lower, MARK_METHOD) {
        return true;
    }
    [strip_comments(&lower), strip_comments_outside_quotes(&lower)].iter().any(|uncommented| {
        let squeezed: Vec<u8> =
            uncommented.iter().copied().filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\\')).collect();
        contains(uncommented, MARK_METHOD) || contains(&squeezed, MARK_METHOD)
    })
}

/// The authserv-id of an `Authentication-Results` value: CFWS skipped, then a
/// token or a quoted-string (RFC 8601 §2.2), lower case.
fn authserv_id(value: &[u8]) -> Option<Vec<u8>> {
    let mut rest = skip_cfws(value);
    if let Some(quoted) = rest.strip_prefix(b"\"") {
        let mut id = Vec::new();
        let mut bytes = quoted.iter();
        while let Some(&byte) = bytes.next() {
            match byte {
                b'"' => break,
                b'\\' => id.extend(bytes.next()),
                b'\r' | b'\n' => {}
                other => id.push(other),
            }
        }
        return Some(id.to_ascii_lowercase());
    }
    let end = rest.iter().position(|b| matches!(b, b';' | b' ' | b'\t' | b'\r' | b'\n' | b'(')).unwrap_or(rest.len());
    (rest, _) = rest.split_at(end);
    (!rest.is_empty()).then(|| rest.to_ascii_lowercase())
}

/// `value` after leading white space, line breaks and comments.
fn skip_cfws(mut value: &[u8]) -> &[u8] {
    loop {
        match value.first() {
            Some(b' ' | b'\t' | b'\r' | b'\n') => value = &value[1..],
            Some(b'(') => value = &value[comment_length(value)..],
            _ => return value,
        }
    }
}

/// The length of the comment `value` starts with (nested, quoted pairs honoured);
/// an unterminated comment runs to the end.
fn comment_length(value: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut index = 0;
    while index < value.len() {
        match value[index] {
            b'\\' => index += 1,
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return index + 1;
                }
            }
            _ => {}
        }
        index += 1;
    }
    value.len()
}

/// `value` with every comment taken out.
fn strip_comments(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut index = 0;
    while index < value.len() {
        if value[index] == b'(' {
            index += comment_length(&value[index..]);
        } else {
            out.push(value[index]);
            index += 1;
        }
    }
    out
}

/// `value` with every comment outside quoted strings taken out (RFC 5322 read
/// strictly: a `(` inside `"…"` is text).
fn strip_comments_outside_quotes(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut index = 0;
    let mut quoted = false;
    while index < value.len() {
        let byte = value[index];
        if !quoted && byte == b'(' {
            index += comment_length(&value[index..]);
            continue;
        }
        out.push(byte);
        match byte {
            b'\\' if quoted => {
                out.extend(value.get(index + 1));
                index += 1;
            }
            b'"' => quoted = !quoted,
            _ => {}
        }
        index += 1;
    }
    out
}

/// The header section's fields, each with its continuation lines. A line that
/// starts with white space continues the field before it; at the very top it is
/// a field of its own, judged with the white space trimmed (as a lenient reader
/// would), so it cannot hide a forged field.
fn fields(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = header;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = line_length(rest);
        while end < rest.len() && matches!(rest[end], b' ' | b'\t') {
            end += line_length(&rest[end..]);
        }
        let (field, after) = rest.split_at(end);
        rest = after;
        Some(field)
    })
}

/// Bytes up to and including the next LF (or to the end).
fn line_length(bytes: &[u8]) -> usize {
    bytes.iter().position(|b| *b == b'\n').map_or(bytes.len(), |at| at + 1)
}

/// Offset just past the empty line that ends the header section (or the end).
fn header_section_end(message: &[u8]) -> usize {
    let mut start = 0;
    while start < message.len() {
        let line = &message[start..start + line_length(&message[start..])];
        start += line.len();
        if line == b"\r\n" || line == b"\n" {
            return start;
        }
    }
    message.len()
}

fn trim_wsp(bytes: &[u8]) -> &[u8] {
    let is_wsp = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = bytes.iter().position(|b| !is_wsp(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_wsp(b)).map_or(start, |at| at + 1);
    &bytes[start..end]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[cfg(test)]
mod tests;
