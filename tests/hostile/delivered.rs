//! Reading a delivered message the way a mail client would: the header section
//! ends at the first empty line, continuation lines are unfolded (RFC 5322
//! §2.2.3), field names compare case-insensitively and with any whitespace before
//! the colon removed. A "mark" is any `X-DomainSec-Auth` field, or any
//! `Authentication-Results` field whose unfolded value mentions `x-domainsec`.
//! The two verdicts: [`unmarked`] (a stranger's message) and [`marked_once`] (a
//! verified partner's).

use anyhow::ensure;

use crate::{fixture::FQDN, suite::Outcome};

/// One header field, unfolded.
#[derive(Debug, Clone)]
pub struct Field {
    /// The field as delivered, every line of it.
    pub raw: String,
    /// Lower-case, trimmed.
    pub name: String,
    /// After the colon, unfolded, trimmed.
    pub value: String,
}

/// A delivered message's header section.
pub struct Delivered {
    /// The header fields in order.
    pub fields: Vec<Field>,
    /// The header section as delivered.
    pub header: String,
}

// === impl Delivered ===

impl Delivered {
    /// Splits off and unfolds the header section of `message`.
    pub fn parse(message: &str) -> Self {
        let header = header_section(message).to_owned();
        let mut fields: Vec<Field> = Vec::new();
        for line in header.split_inclusive('\n') {
            let bare = line.trim_end_matches(['\r', '\n']);
            if line.starts_with([' ', '\t']) {
                if let Some(last) = fields.last_mut() {
                    last.value = format!("{} {}", last.value, bare.trim()).trim().to_owned();
                    last.raw.push_str(line);
                }
                continue;
            }
            let (name, value) = bare.split_once(':').unwrap_or((bare, ""));
            fields.push(Field {
                raw: line.to_owned(),
                name: name.trim().to_ascii_lowercase(),
                value: value.trim().to_owned(),
            });
        }
        Self { fields, header }
    }

    /// Fields named `name` (lower-case).
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.fields.iter().filter(move |f| f.name == name)
    }

    /// The Domain Secured marks in the header: every field whose text mentions
    /// `x-domainsec` in any case — `X-DomainSec-Auth` in any spelling,
    /// `Authentication-Results` carrying it, or a forged line left hanging as the
    /// continuation of another field.
    pub fn marks(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter(|f| f.name == MARK || f.raw.to_ascii_lowercase().contains("x-domainsec"))
            .map(|f| f.raw.trim_end().replace("\r\n", "\\r\\n"))
            .collect()
    }

    /// The edge's `Received:` fields (`by mail1.contoso.com`).
    pub fn received_by(&self, fqdn: &str) -> usize {
        self.named("received").filter(|f| f.value.contains(&format!("by {fqdn} "))).count()
    }
}

/// The delivered copy has no mark, exactly the edge's one `Received:`, and the
/// message's own Subject.
pub fn unmarked(tag: &str, message: &str) -> Outcome {
    let delivered = Delivered::parse(message);
    let marks = delivered.marks();
    ensure!(
        marks.is_empty(),
        "{tag}: forged mark delivered: {marks:?}\n--- delivered header ---\n{}",
        delivered.header.trim_end()
    );
    ensure!(
        delivered.received_by(FQDN) == 1,
        "{tag}: expected exactly one Received by {FQDN}\n{}",
        delivered.header.trim_end()
    );
    ensure!(
        delivered.named("subject").any(|f| f.value.contains(tag)),
        "{tag}: the Subject is gone\n{}",
        delivered.header.trim_end()
    );
    Ok(())
}

/// Exactly one `X-DomainSec-Auth` naming the domain and the leaf, exactly one
/// `Authentication-Results` from this edge with `x-domainsec=pass`, nothing else.
pub fn marked_once(tag: &str, message: &str, sha256: &str) -> Outcome {
    let delivered = Delivered::parse(message);
    let header = delivered.header.trim_end();
    let auth: Vec<&str> = delivered.named("x-domainsec-auth").map(|f| f.value.as_str()).collect();
    ensure!(
        auth.len() == 1
            && auth[0].starts_with("partner;")
            && auth[0].contains("domain=woodgrovebank.com")
            && auth[0].contains(&format!("cert={sha256}")),
        "{tag}: expected one X-DomainSec-Auth for woodgrovebank.com with cert={sha256}, got {auth:?}\n{header}"
    );
    let results: Vec<&str> = delivered
        .named("authentication-results")
        .map(|f| f.value.as_str())
        .filter(|v| v.to_ascii_lowercase().contains("x-domainsec"))
        .collect();
    ensure!(
        results.len() == 1 && results[0].starts_with(&format!("{FQDN}; x-domainsec=pass")),
        "{tag}: expected one Authentication-Results: {FQDN}; x-domainsec=pass, got {results:?}\n{header}"
    );
    ensure!(delivered.marks().len() == 2, "{tag}: stray marks {:?}\n{header}", delivered.marks());
    ensure!(delivered.received_by(FQDN) == 1, "{tag}: expected one Received by {FQDN}\n{header}");
    Ok(())
}

/// Everything before the first empty line (the whole message when there is none).
fn header_section(message: &str) -> &str {
    let mut offset = 0;
    for line in message.split_inclusive('\n') {
        if line == "\r\n" || line == "\n" {
            return &message[..offset];
        }
        offset += line.len();
    }
    message
}

const MARK: &str = "x-domainsec-auth";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_and_oddly_spelled_marks_are_found() {
        let message = "Received: from x\r\n\tby mail1.contoso.com (DomainSec) with ESMTP id 1;\r\n\tdate\r\n\
            Authentication-Results:\r\n \r\n\tmail2.contoso.com; X-DomainSec=pass\r\n\
            x-DOMAINSEC-auth : partner\r\nSubject: hi\r\n\r\nX-DomainSec-Auth: body is fine\r\n";
        let delivered = Delivered::parse(message);
        assert_eq!(delivered.received_by("mail1.contoso.com"), 1);
        assert_eq!(delivered.marks().len(), 2, "{:?}", delivered.marks());
        assert_eq!(delivered.named("subject").count(), 1);
    }
}
