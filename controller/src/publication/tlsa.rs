//! DANE TLSA records "3 1 1" (RFC 7672 section 3.1.1, RFC 7218 names): usage
//! DANE-EE, selector SPKI, matching type SHA2-256. The record pins the key, not the
//! certificate or its names: a renewed certificate with the same key keeps matching,
//! a new key needs its record published before the certificate is enabled
//! (RFC 7671 section 8.1, "current + next").

use std::fmt;

use domainsec_model::{Domain, InvalidField};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The lower-case hex SHA-256 of a certificate's DER SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpkiSha256(String);

/// Why a certificate's key could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpkiError {
    /// The PEM holds no CERTIFICATE block.
    #[error("not a PEM certificate")]
    NotPem,
    /// The DER is not an X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    NotX509(String),
}

/// The port in a TLSA owner name (`_25._tcp`): 1 to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmtpPort(u16);

// === impl SpkiSha256 ===

impl SpkiSha256 {
    /// Hashes the SubjectPublicKeyInfo of a DER certificate.
    pub fn of_der(certificate_der: &[u8]) -> Result<Self, SpkiError> {
        let (_, certificate) =
            X509Certificate::from_der(certificate_der).map_err(|e| SpkiError::NotX509(e.to_string()))?;
        let spki = certificate.tbs_certificate.subject_pki.raw;
        let digest = ring::digest::digest(&ring::digest::SHA256, spki);
        Ok(Self(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// Hashes the first certificate of a PEM text (the leaf, as edges store it).
    pub fn of_pem(certificate_pem: &str) -> Result<Self, SpkiError> {
        let blocks = pem::parse_many(certificate_pem).map_err(|_| SpkiError::NotPem)?;
        let leaf = blocks.iter().find(|b| b.tag() == "CERTIFICATE").ok_or(SpkiError::NotPem)?;
        Self::of_der(leaf.contents())
    }

    /// A stored hash, checked: 64 lower-case hex digits.
    pub fn from_stored(hex: &str) -> Option<Self> {
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| Self(hex.to_owned()))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 16 hex digits and an ellipsis, for a warning.
    pub fn short(&self) -> String {
        format!("{}…", &self.0[..16])
    }
}

impl fmt::Display for SpkiSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl SmtpPort ===

impl SmtpPort {
    /// SMTP's port, which senders use for MX hosts.
    pub const DEFAULT: Self = Self(25);

    /// A port from a request; 0 means [`SmtpPort::DEFAULT`].
    pub fn parse(field: &str, port: u32) -> Result<Self, InvalidField> {
        match port {
            0 => Ok(Self::DEFAULT),
            port => u16::try_from(port)
                .map(Self)
                .map_err(|_| InvalidField::new(field, port.to_string(), "must be a port from 1 to 65535")),
        }
    }

    /// The number.
    pub fn number(self) -> u16 {
        self.0
    }
}

/// The owner name of a host's TLSA records: `_25._tcp.mail1.contoso.com.`.
pub fn owner(port: SmtpPort, host: &Domain) -> String {
    format!("_{}._tcp.{}.", port.0, host.as_str())
}

/// The host of an owner name this module wrote (`mail1.contoso.com`).
pub fn host_of_owner(owner: &str) -> &str {
    let mut labels = owner.trim_end_matches('.').splitn(3, '.');
    let (_, _, host) = (labels.next(), labels.next(), labels.next());
    host.unwrap_or(owner)
}

/// One zone-file line: `_25._tcp.mail1.contoso.com. IN TLSA 3 1 1 <hex>`.
pub fn line(owner: &str, spki: &SpkiSha256) -> String {
    format!("{owner} IN TLSA 3 1 1 {spki}")
}

/// The warning `cert enable` gives when a certificate about to serve SMTP matches
/// none of the records printed for `owner`: senders that use DANE would defer mail.
pub fn mismatch_warning(owner: &str, printed: &[SpkiSha256], certificate: &SpkiSha256) -> String {
    let printed: Vec<String> = printed.iter().map(SpkiSha256::short).collect();
    format!(
        "the published TLSA records for {host} (3 1 1 {printed}) do not match this certificate's key; publish \
         \"{line}\" and wait for the DNS TTL before enabling, or DANE senders will defer mail",
        host = host_of_owner(owner),
        printed = printed.join(", "),
        line = line(owner, certificate),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_the_key_only_so_a_renewal_with_the_same_key_matches() {
        let key = rcgen::KeyPair::generate().unwrap();
        let first = rcgen::CertificateParams::new(vec!["mail1.contoso.com".into()]).unwrap().self_signed(&key).unwrap();
        let renewed = rcgen::CertificateParams::new(vec!["mx.contoso.com".into()]).unwrap().self_signed(&key).unwrap();
        let other_key = rcgen::KeyPair::generate().unwrap();
        let rekeyed =
            rcgen::CertificateParams::new(vec!["mail1.contoso.com".into()]).unwrap().self_signed(&other_key).unwrap();
        let first = SpkiSha256::of_der(first.der()).unwrap();
        assert_eq!(first, SpkiSha256::of_pem(&renewed.pem()).unwrap());
        assert_ne!(first, SpkiSha256::of_der(rekeyed.der()).unwrap());
        let expected =
            ring::digest::digest(&ring::digest::SHA256, &rcgen::PublicKeyData::subject_public_key_info(&key));
        let expected: String = expected.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(first.as_str(), expected);
    }

    #[test]
    fn lines_name_the_port_and_host() {
        let spki = SpkiSha256::from_stored(&"ab".repeat(32)).unwrap();
        let host = Domain::parse("mail1.contoso.com").unwrap();
        let owner = owner(SmtpPort::DEFAULT, &host);
        assert_eq!(line(&owner, &spki), format!("_25._tcp.mail1.contoso.com. IN TLSA 3 1 1 {}", "ab".repeat(32)));
        assert_eq!(host_of_owner(&owner), "mail1.contoso.com");
        assert_eq!(SmtpPort::parse("port", 0).unwrap().number(), 25);
        assert_eq!(SmtpPort::parse("port", 465).unwrap().number(), 465);
        assert_eq!(
            SmtpPort::parse("port", 70000).unwrap_err().to_string(),
            "port \"70000\": must be a port from 1 to 65535"
        );
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(SpkiSha256::of_pem("hello"), Err(SpkiError::NotPem));
        assert!(matches!(SpkiSha256::of_der(b"\x30\x03\x02\x01\x00"), Err(SpkiError::NotX509(_))));
        assert!(SpkiSha256::from_stored("AB").is_none());
    }
}
