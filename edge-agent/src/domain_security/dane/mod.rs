//! DANE for SMTP (RFC 7672): what an MX host's TLSA records ask, and whether the
//! certificate chain it presented matches them.
//!
//! Only DANE-TA(2) and DANE-EE(3) are usable for SMTP (RFC 7672 §3.1.3); PKIX-TA(0)
//! and PKIX-EE(1), unknown selectors and matching types, and malformed data are
//! unusable. A TLSA RRset with no usable record still makes STARTTLS mandatory but
//! authenticates nothing (RFC 7672 §2.2). DANE-EE matches the leaf alone: no name, no
//! dates, no chain (RFC 7672 §3.1.1). DANE-TA matches a certificate the server sent
//! above its leaf, which then anchors an ordinary path check (dates, key usage) with a
//! name check against the MX host or the recipient domain (RFC 7672 §3.2.2). A DANE-TA
//! record for a key the server did not send in its chain cannot anchor anything here
//! (RFC 7671 §5.2.2 asks servers to send it).

use std::fmt;

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{EndEntityCert, KeyUsage, anchor_from_trusted_cert};
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// One TLSA record's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    /// Certificate usage: 2 (DANE-TA) or 3 (DANE-EE) are usable.
    pub usage: u8,
    /// 0: the full certificate; 1: its SubjectPublicKeyInfo.
    pub selector: u8,
    /// 0: the selected bytes themselves; 1: their SHA-256; 2: their SHA-512.
    pub matching: u8,
    /// The association data.
    pub data: Vec<u8>,
}

/// What an MX host's TLSA RRset (DNSSEC-validated) asks of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaneRequirement {
    /// Authenticate the server with these usable records.
    Authenticate(Vec<Tlsa>),
    /// Records exist but none is usable: STARTTLS is mandatory, the certificate is not checked.
    EncryptOnly,
}

/// Which record matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaneMatch {
    /// The matching record, as `3 1 1`.
    pub record: String,
    /// The certificate of the chain it matched (0: the leaf).
    pub depth: usize,
}

/// Why DANE authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaneFailure {
    /// The server sent no certificate.
    #[error("DANE: the server presented no certificate")]
    NoCertificate,
    /// No usable record matched any certificate of the chain.
    #[error("DANE: no TLSA record matched the server's certificate chain")]
    NoMatch,
    /// A DANE-TA record matched, but the path from it to the leaf does not hold.
    #[error("DANE: the chain to the TLSA trust anchor does not verify: {0}")]
    Chain(String),
    /// A DANE-TA path holds, but the leaf names neither the MX host nor the domain.
    #[error("DANE: the certificate is not for {host} or {domain}")]
    NameMismatch {
        /// The MX host.
        host: String,
        /// The recipient domain.
        domain: String,
    },
}

// === impl Tlsa ===

impl Tlsa {
    /// Usable for SMTP under RFC 7672: DANE-TA or DANE-EE, known selector and matching
    /// type, data of the digest's length.
    pub fn is_usable(&self) -> bool {
        let known_usage = matches!(self.usage, USAGE_DANE_TA | USAGE_DANE_EE);
        let data_fits = match self.matching {
            MATCH_FULL => !self.data.is_empty(),
            MATCH_SHA256 => self.data.len() == 32,
            MATCH_SHA512 => self.data.len() == 64,
            _ => false,
        };
        known_usage && self.selector <= SELECTOR_SPKI && data_fits
    }

    /// Whether this record's association data is that of `certificate` (DER).
    fn associates(&self, certificate: &[u8]) -> bool {
        let selected = match self.selector {
            SELECTOR_FULL => certificate.to_vec(),
            _ => match X509Certificate::from_der(certificate) {
                Ok((_, parsed)) => parsed.tbs_certificate.subject_pki.raw.to_vec(),
                Err(_) => return false,
            },
        };
        let digest = match self.matching {
            MATCH_FULL => selected,
            MATCH_SHA256 => ring::digest::digest(&ring::digest::SHA256, &selected).as_ref().to_vec(),
            MATCH_SHA512 => ring::digest::digest(&ring::digest::SHA512, &selected).as_ref().to_vec(),
            _ => return false,
        };
        digest == self.data
    }
}

/// `3 1 1 ab12…` (data shortened past 16 hex digits).
impl fmt::Display for Tlsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.data.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let more = if self.data.len() > 8 { "…" } else { "" };
        write!(f, "{} {} {} {hex}{more}", self.usage, self.selector, self.matching)
    }
}

// === impl DaneRequirement ===

impl DaneRequirement {
    /// The requirement of a non-empty validated TLSA RRset.
    pub fn from_records(records: Vec<Tlsa>) -> Self {
        let usable: Vec<Tlsa> = records.into_iter().filter(Tlsa::is_usable).collect();
        if usable.is_empty() { Self::EncryptOnly } else { Self::Authenticate(usable) }
    }
}

/// Checks `chain` (leaf first, as sent) against `records` for MX `host` of recipient `domain`.
pub fn verify(chain: &[Vec<u8>], records: &[Tlsa], host: &str, domain: &str) -> Result<DaneMatch, DaneFailure> {
    let leaf = chain.first().ok_or(DaneFailure::NoCertificate)?;
    if let Some(record) = records.iter().find(|r| r.usage == USAGE_DANE_EE && r.associates(leaf)) {
        return Ok(DaneMatch { record: record.to_string(), depth: 0 });
    }
    let mut failure = DaneFailure::NoMatch;
    for (depth, candidate) in chain.iter().enumerate().skip(1) {
        for record in records.iter().filter(|r| r.usage == USAGE_DANE_TA && r.associates(candidate)) {
            match verify_trust_anchor_path(chain, depth, host, domain) {
                Ok(()) => return Ok(DaneMatch { record: record.to_string(), depth }),
                Err(error) => failure = error,
            }
        }
    }
    Err(failure)
}

/// The path from the leaf through `chain[1..depth]` to `chain[depth]` as trust anchor,
/// for server authentication, and the leaf's name.
fn verify_trust_anchor_path(chain: &[Vec<u8>], depth: usize, host: &str, domain: &str) -> Result<(), DaneFailure> {
    let ders: Vec<CertificateDer<'_>> = chain.iter().map(|c| CertificateDer::from(c.as_slice())).collect();
    let (Some(leaf), Some(anchor_der), Some(intermediates)) = (ders.first(), ders.get(depth), ders.get(1..depth))
    else {
        return Err(DaneFailure::NoMatch);
    };
    let anchor = anchor_from_trusted_cert(anchor_der).map_err(|e| DaneFailure::Chain(format!("{e:?}")))?;
    let end_entity = EndEntityCert::try_from(leaf).map_err(|e| DaneFailure::Chain(format!("{e:?}")))?;
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            intermediates,
            UnixTime::now(),
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| DaneFailure::Chain(format!("{e:?}")))?;
    let names_one = |name: &str| {
        ServerName::try_from(name).is_ok_and(|server| end_entity.verify_is_valid_for_subject_name(&server).is_ok())
    };
    if names_one(host) || names_one(domain) {
        Ok(())
    } else {
        Err(DaneFailure::NameMismatch { host: host.to_owned(), domain: domain.to_owned() })
    }
}

const USAGE_DANE_TA: u8 = 2;
const USAGE_DANE_EE: u8 = 3;
const SELECTOR_FULL: u8 = 0;
const SELECTOR_SPKI: u8 = 1;
const MATCH_FULL: u8 = 0;
const MATCH_SHA256: u8 = 1;
const MATCH_SHA512: u8 = 2;

#[cfg(test)]
mod tests;
