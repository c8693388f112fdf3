//! An independent reader of a message's header section, for the invariants about
//! forged Domain Secured marks (`header_scrub`, `inbound_session`). It does not
//! share code with `edge::domain_security::mark`.
//!
//! Lines end at LF; a line starting with SP or HTAB continues (is unfolded into)
//! the field before it; a continuation line with no field before it starts a
//! field of its own; a line without a colon is not a field; the header section
//! ends at the first empty line (only CRLF or LF).

/// The first field of `message`'s header section that a Domain Secured mark
/// forger could use, unfolded, with the rule it breaks:
/// - an `X-DomainSec-Auth` field (any ASCII case, whitespace around the name);
/// - an `Authentication-Results` or `ARC-Authentication-Results` field whose
///   value contains `x-domainsec` (any case), as written or with its RFC 5322
///   comments (nested, quoted-pairs, none inside a quoted string) removed;
/// - an `Authentication-Results` field whose authserv-id, as a conforming RFC
///   8601 reader sees it (CFWS, a token or a quoted-string, then CFWS, `;` or the
///   end; any case, trailing dots ignored), is one of `own_hosts` or equal to or
///   under one of `own_domains`.
pub fn forged_field(message: &[u8], own_hosts: &[&str], own_domains: &[&str]) -> Option<(Vec<u8>, &'static str)> {
    let (header, _) = split_message(message);
    for field in unfold(header) {
        let Some(colon) = field.iter().position(|b| *b == b':') else { continue };
        let name = trim_whitespace(&field[..colon]);
        let value = &field[colon + 1..];
        if name.eq_ignore_ascii_case(b"x-domainsec-auth") {
            return Some((field, "an X-DomainSec-Auth field"));
        }
        let results = name.eq_ignore_ascii_case(b"authentication-results");
        if (results || name.eq_ignore_ascii_case(b"arc-authentication-results"))
            && [value.to_vec(), without_comments(value)].iter().any(|text| contains_ignoring_case(text, b"x-domainsec"))
        {
            return Some((field, "an Authentication-Results field with x-domainsec"));
        }
        if results && authserv_id(value).is_some_and(|id| claims(&id, own_hosts, own_domains)) {
            return Some((field, "an Authentication-Results field whose authserv-id is the organization's"));
        }
    }
    None
}

/// The header section (without the empty line) and the body after the first empty
/// line, if there is one.
pub fn split_message(message: &[u8]) -> (&[u8], Option<&[u8]>) {
    let mut offset = 0;
    for line in message.split_inclusive(|b| *b == b'\n') {
        if line == b"\n" || line == b"\r\n" {
            return (&message[..offset], Some(&message[offset + line.len()..]));
        }
        offset += line.len();
    }
    (message, None)
}

/// `bytes` printable, for assertion messages.
pub fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Whether an authserv-id names the organization.
fn claims(id: &[u8], own_hosts: &[&str], own_domains: &[&str]) -> bool {
    let id = String::from_utf8_lossy(id);
    let id = id.trim_end_matches('.');
    own_hosts.contains(&id)
        || own_domains.iter().any(|domain| id == *domain || id.ends_with(&format!(".{domain}")))
}

/// The authserv-id of an `Authentication-Results` value as a conforming RFC 8601
/// reader sees it (§2.2: CFWS, then a token or a quoted-string, then CFWS, `;` or
/// the end), lower case; `None` when the value does not start that way (a reader
/// refuses such a field, so it claims nothing).
fn authserv_id(value: &[u8]) -> Option<Vec<u8>> {
    let mut rest = value;
    loop {
        match rest.first() {
            Some(b' ' | b'\t') => rest = &rest[1..],
            Some(b'(') => rest = &rest[comment_length(rest)..],
            _ => break,
        }
    }
    let mut id = Vec::new();
    let after = if let Some(quoted) = rest.strip_prefix(b"\"") {
        let mut index = 0;
        loop {
            match *quoted.get(index)? {
                b'"' => break &quoted[index + 1..],
                b'\\' => {
                    id.push(*quoted.get(index + 1)?);
                    index += 2;
                }
                byte if is_control(byte) => return None,
                byte => {
                    id.push(byte);
                    index += 1;
                }
            }
        }
    } else {
        // RFC 2045 token: US-ASCII without SP, CTLs and tspecials.
        let length = rest.iter().take_while(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(*b)).count();
        id.extend_from_slice(&rest[..length]);
        &rest[length..]
    };
    let well_formed = matches!(after.first(), None | Some(b' ' | b'\t' | b';' | b'('));
    (well_formed && !id.is_empty()).then(|| id.to_ascii_lowercase())
}

/// The length of the comment `value` starts with (nested, quoted-pairs); an
/// unterminated comment runs to the end.
fn comment_length(value: &[u8]) -> usize {
    let (mut depth, mut escaped) = (0usize, false);
    for (index, &byte) in value.iter().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return index + 1;
                }
            }
            _ => {}
        }
    }
    value.len()
}

/// A control character other than HTAB: never part of an authserv-id (and no
/// bare CR or LF reaches `scrub` from SMTP: DATA and BDAT refuse them).
fn is_control(byte: u8) -> bool {
    (byte < b' ' && byte != b'\t') || byte == 0x7f
}

/// The header fields, continuation lines unfolded (their line breaks removed).
fn unfold(header: &[u8]) -> Vec<Vec<u8>> {
    let mut fields: Vec<Vec<u8>> = Vec::new();
    for line in header.split_inclusive(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        match fields.last_mut() {
            Some(field) if continuation => field.extend_from_slice(line),
            _ => fields.push(line.to_vec()),
        }
    }
    fields
}

/// `value` without its RFC 5322 comments (nested, with quoted-pairs); quoted
/// strings are kept as they are.
fn without_comments(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for &byte in value {
        if depth > 0 {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            continue;
        }
        if quoted {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
            out.push(byte);
            continue;
        }
        match byte {
            b'(' => depth = 1,
            b'"' => {
                quoted = true;
                out.push(byte);
            }
            _ => out.push(byte),
        }
    }
    out
}

fn trim_whitespace(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

fn contains_ignoring_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle))
}
