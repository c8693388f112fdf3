//! What the organization publishes so that other mail servers can secure mail to it:
//! DANE TLSA records (RFC 7672), the MTA-STS policy (RFC 8461) and the TLS-RPT record
//! (RFC 8460).
//!
//! The texts and the rules are here and nowhere else; `directory::publish` reads the
//! directory, calls them and stores what must be remembered, and
//! [`crate::mta_sts_https`] serves the stored MTA-STS policy.
//!
//! # Layout
//! - this file: the host names at which an edge receives mail from the internet.
//! - [`tlsa`]: SubjectPublicKeyInfo hashes and TLSA lines.
//! - [`mta_sts`]: modes, `max_age`, the policy file and its id.
//! - [`tls_rpt`]: report URIs and the TLS-RPT record.

pub mod mta_sts;
pub mod tls_rpt;
pub mod tlsa;

use domainsec_model::{Domain, DomainPattern, ReceiveConnector};

/// The names senders reach an edge at: its FQDN, then the FQDN announced by each of
/// its receive connectors that serves the internet (see [`serves_internet`]), each once.
/// These are the TLSA owners' host names and the MTA-STS policy's `mx` lines.
pub fn host_names<'a>(fqdn: &Domain, connectors: impl IntoIterator<Item = &'a ReceiveConnector>) -> Vec<Domain> {
    let mut names = vec![fqdn.clone()];
    for connector in connectors.into_iter().filter(|c| serves_internet(c)) {
        if let Some(name) = &connector.fqdn
            && !names.contains(name)
        {
            names.push(name.clone());
        }
    }
    names
}

/// True for a receive connector open to any sender: no remote IP ranges, or a `/0`
/// range. A connector limited to some ranges serves internal clients or named
/// partners, not the senders that look up the MX records.
pub fn serves_internet(connector: &ReceiveConnector) -> bool {
    connector.remote_ip_ranges.is_empty() || connector.remote_ip_ranges.iter().any(|r| r.prefix_len() == 0)
}

/// The domains records are published for: each accepted domain once (`*.contoso.com`
/// publishes for `contoso.com`; a subdomain that receives mail needs its own records).
pub fn published_domains<'a>(accepted: impl IntoIterator<Item = &'a DomainPattern>) -> Vec<Domain> {
    let mut domains: Vec<Domain> = Vec::new();
    for pattern in accepted {
        if !domains.contains(pattern.domain()) {
            domains.push(pattern.domain().clone());
        }
    }
    domains
}

/// A TXT record's text as zone-file strings: quoted, split every 255 bytes (RFC 1035
/// section 3.3.14); the texts here are ASCII without quotes or backslashes.
pub fn txt_strings(text: &str) -> String {
    let bytes = text.as_bytes();
    let quoted: Vec<String> =
        bytes.chunks(255).map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk))).collect();
    quoted.join(" ")
}

#[cfg(test)]
mod tests {
    use domainsec_model::{Binding, ObjectName, ProtocolLoggingLevel};

    use super::*;

    fn connector(fqdn: Option<&str>, ranges: &[&str]) -> ReceiveConnector {
        ReceiveConnector {
            edge: ObjectName::parse("mail1").unwrap(),
            name: ObjectName::parse("Inet").unwrap(),
            bindings: vec![Binding::parse("0.0.0.0:25").unwrap()],
            remote_ip_ranges: ranges.iter().map(|r| domainsec_model::IpRange::parse(r).unwrap()).collect(),
            fqdn: fqdn.map(|f| Domain::parse(f).unwrap()),
            auth_mechanisms: vec![],
            domain_secure_enabled: false,
            permission_groups: vec![],
            protocol_logging_level: ProtocolLoggingLevel::None,
            max_message_size: Default::default(),
        }
    }

    #[test]
    fn host_names_are_the_fqdn_and_internet_connectors_names_once() {
        let fqdn = Domain::parse("mail1.contoso.com").unwrap();
        let connectors = [
            connector(Some("mx.contoso.com"), &[]),
            connector(Some("mail1.contoso.com"), &["0.0.0.0/0"]),
            connector(Some("internal.contoso.com"), &["10.0.0.0/8"]),
        ];
        let names: Vec<String> = host_names(&fqdn, &connectors).iter().map(ToString::to_string).collect();
        assert_eq!(names, ["mail1.contoso.com", "mx.contoso.com"]);
        assert!(!serves_internet(&connectors[2]));
    }

    #[test]
    fn wildcard_accepted_domains_publish_for_their_base_domain_once() {
        let accepted = [DomainPattern::parse("contoso.com").unwrap(), DomainPattern::parse("*.contoso.com").unwrap()];
        let domains: Vec<String> = published_domains(&accepted).iter().map(ToString::to_string).collect();
        assert_eq!(domains, ["contoso.com"]);
    }

    #[test]
    fn long_txt_texts_are_split_into_255_byte_strings() {
        let text = "a".repeat(300);
        assert_eq!(txt_strings(&text), format!("\"{}\" \"{}\"", "a".repeat(255), "a".repeat(45)));
        assert_eq!(txt_strings("v=STSv1; id=1"), "\"v=STSv1; id=1\"");
    }
}
