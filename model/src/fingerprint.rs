//! SHA-256 certificate fingerprints: the key by which the directory knows a
//! certificate, an edge pins its controllers and a partner's certificate is logged.

use std::fmt;

/// Lower-case hex SHA-256 of a DER certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        Self(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex string, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
