//! The Domain Secured mark: header fields the edge adds to a message that arrived
//! over a verified partner session, and removes from every message arriving from
//! outside, so the mark cannot be forged.

/// The header recording a Domain Secured message.
pub const MARK_HEADER: &str = "X-DomainSec-Auth";

/// The header fields that mark `domain`'s message as Domain Secured by this edge
/// (`authserv_id`, its FQDN), CRLF-terminated, to go on top of the message.
pub fn mark(authserv_id: &str, domain: &str, certificate_sha256: &str) -> String {
    format!(
        "{MARK_HEADER}: partner; domain={domain}; cert={certificate_sha256}\r\n\
         Authentication-Results: {authserv_id}; x-domainsec=pass (Domain Secured) smtp.mailfrom-domain={domain}\r\n"
    )
}

/// Removes every `X-DomainSec-Auth` field and every `Authentication-Results` field
/// that claims to come from one of `authserv_ids` (every name this edge answers
/// as) from the header section (continuation lines included); the body is untouched.
pub fn scrub(message: &[u8], authserv_ids: &[&str]) -> Vec<u8> {
    let header_end = header_section_end(message);
    let (header, body) = message.split_at(header_end);
    let mut out = Vec::with_capacity(message.len());
    let mut dropping = false;
    for line in split_lines(header) {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            dropping = authserv_ids.iter().any(|id| is_forged(line, id));
        }
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

fn is_forged(line: &[u8], authserv_id: &str) -> bool {
    let Some(colon) = line.iter().position(|b| *b == b':') else { return false };
    let name = String::from_utf8_lossy(&line[..colon]).trim().to_ascii_lowercase();
    if name == MARK_HEADER.to_ascii_lowercase() {
        return true;
    }
    if name != "authentication-results" {
        return false;
    }
    let value = String::from_utf8_lossy(&line[colon + 1..]).to_ascii_lowercase();
    let id = value.trim_start().split([';', ' ', '\t', '\r', '\n']).next().unwrap_or_default();
    id == authserv_id.to_ascii_lowercase()
}

/// Offset just past the empty line that ends the header section (or the end).
fn header_section_end(message: &[u8]) -> usize {
    let mut start = 0;
    for line in split_lines(message) {
        start += line.len();
        if line == b"\r\n" || line == b"\n" {
            return start;
        }
    }
    message.len()
}

fn split_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split_inclusive(|b| *b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "mail1.contoso.com";

    #[test]
    fn forged_marks_are_removed_with_their_continuation_lines() {
        let message = b"Received: from x\r\nX-DomainSec-Auth: partner;\r\n\tdomain=woodgrovebank.com\r\n\
            x-domainsec-auth: again\r\nAuthentication-Results: mail1.contoso.com; x-domainsec=pass\r\n\
            Authentication-Results: mx.fabrikam.com; spf=pass\r\nSubject: hi\r\n\r\n\
            X-DomainSec-Auth: in the body stays\r\n";
        let scrubbed = String::from_utf8(scrub(message, &[ID])).unwrap();
        assert_eq!(
            scrubbed,
            "Received: from x\r\nAuthentication-Results: mx.fabrikam.com; spf=pass\r\nSubject: hi\r\n\r\n\
             X-DomainSec-Auth: in the body stays\r\n"
        );
    }

    #[test]
    fn a_message_without_marks_is_unchanged() {
        let message = b"Subject: hi\r\nFrom: a@b.com\r\n\r\nbody\r\n";
        assert_eq!(scrub(message, &[ID]), message);
        let headers_only = b"Subject: hi\r\n";
        assert_eq!(scrub(headers_only, &[ID]), headers_only);
    }

    #[test]
    fn the_mark_names_the_domain_and_certificate() {
        let mark = mark(ID, "woodgrovebank.com", "ab12");
        assert!(mark.starts_with("X-DomainSec-Auth: partner; domain=woodgrovebank.com; cert=ab12\r\n"));
        assert!(mark.contains("Authentication-Results: mail1.contoso.com; x-domainsec=pass"));
        // Our own mark is exactly what scrub removes.
        let message = format!("{mark}Subject: x\r\n\r\nbody");
        assert_eq!(scrub(message.as_bytes(), &[ID]), b"Subject: x\r\n\r\nbody");
    }
}
