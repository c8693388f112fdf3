//! What revocation checking works on: the certificates of a path that already
//! validated, each with the issuer whose name and key its CRL must carry.
//!
//! Only the validated path counts. A peer may send any certificates it likes
//! besides the ones that chain; their distribution points are never fetched, and
//! a CRL is only believed when the certificate's own issuer signed it.

use rustls::pki_types::{CertificateDer, TrustAnchor};
use webpki::VerifiedPath;
use x509_parser::{
    prelude::{FromDer, X509Certificate},
    x509::{SubjectPublicKeyInfo, X509Name},
};

use super::{RevocationError, distribution_points::ChainCertificate};

/// A validated path, leaf first, the trust anchor last.
#[derive(Debug)]
pub struct RevocationPath {
    pub(super) entries: Vec<PathEntry>,
}

/// One certificate of a path; `issuer` is `None` for the trust anchor, whose
/// revocation is not checked (it is trusted by configuration).
#[derive(Debug)]
pub(super) struct PathEntry {
    pub(super) certificate: ChainCertificate,
    pub(super) issuer: Option<CrlIssuer>,
}

/// The issuer a CRL must come from: its name, and the key that must sign it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CrlIssuer {
    /// The issuer's Name, DER, without the outer SEQUENCE header.
    name: Vec<u8>,
    /// The issuer's SubjectPublicKeyInfo, DER, with its SEQUENCE header.
    spki: Vec<u8>,
}

// === impl RevocationPath ===

impl RevocationPath {
    /// The path rustls-webpki validated.
    pub fn from_verified(path: &VerifiedPath<'_>) -> Result<Self, RevocationError> {
        let mut ders: Vec<CertificateDer<'_>> = vec![path.end_entity().der()];
        let mut issuers: Vec<CrlIssuer> = Vec::new();
        for intermediate in path.intermediate_certificates() {
            issuers.push(CrlIssuer {
                name: intermediate.subject().to_vec(),
                spki: intermediate.subject_public_key_info().to_vec(),
            });
            ders.push(intermediate.der());
        }
        let anchor = path.anchor();
        issuers.push(CrlIssuer::of_anchor(anchor));
        let mut entries = Vec::with_capacity(ders.len() + 1);
        for (index, (der, issuer)) in ders.iter().zip(issuers).enumerate() {
            let certificate = ChainCertificate::read(index + 1, der)?;
            entries.push(PathEntry { certificate, issuer: Some(issuer) });
        }
        entries.push(PathEntry { certificate: ChainCertificate::anchor(&anchor_subject(anchor)), issuer: None });
        Ok(Self { entries })
    }

    /// A chain given in path order that ends in a self-issued root: each
    /// certificate issued by the next. For tests, which build their own paths.
    #[cfg(test)]
    pub(super) fn from_chain(chain: &[CertificateDer<'_>]) -> Result<Self, RevocationError> {
        let mut entries = Vec::with_capacity(chain.len());
        for (index, der) in chain.iter().enumerate() {
            let mut certificate = ChainCertificate::read(index + 1, der)?;
            let issuer = match chain.get(index + 1) {
                Some(next) => Some(CrlIssuer::of_certificate(index + 2, next)?),
                None => None,
            };
            certificate.root = issuer.is_none();
            entries.push(PathEntry { certificate, issuer });
        }
        Ok(Self { entries })
    }
}

// === impl CrlIssuer ===

impl CrlIssuer {
    /// The issuer data of a trust anchor.
    pub fn of_anchor(anchor: &TrustAnchor<'_>) -> Self {
        Self { name: anchor.subject.as_ref().to_vec(), spki: webpki::spki_for_anchor(anchor).to_vec() }
    }

    /// The issuer data of a CA certificate (`position` names it in errors).
    pub fn of_certificate(position: usize, der: &CertificateDer<'_>) -> Result<Self, RevocationError> {
        let (_, certificate) = X509Certificate::from_der(der)
            .map_err(|error| RevocationError::Certificate { position, reason: error.to_string() })?;
        let name = sequence_contents(certificate.subject().as_raw()).to_vec();
        Ok(Self { name, spki: certificate.public_key().raw.to_vec() })
    }

    /// A short key for the cache: a CRL is kept per URL *and* issuer, so one
    /// verified for one issuer is never served for another.
    pub(super) fn cache_key(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.spki);
        digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Checks that `crl` names this issuer and carries its signature.
    pub(super) fn verify(
        &self,
        crl: &x509_parser::revocation_list::CertificateRevocationList<'_>,
    ) -> Result<(), String> {
        if sequence_contents(crl.issuer().as_raw()) != self.name.as_slice() {
            return Err(format!("the CRL's issuer {} is not the certificate's issuer", crl.issuer()));
        }
        let (_, spki) = SubjectPublicKeyInfo::from_der(&self.spki)
            .map_err(|error| format!("the issuer's public key cannot be read: {error}"))?;
        crl.verify_signature(&spki)
            .map_err(|error| format!("the CRL's signature does not verify with the issuer's key: {error}"))
    }
}

// === helpers ===

/// The anchor's subject for reports, `CN=…`.
fn anchor_subject(anchor: &TrustAnchor<'_>) -> String {
    let wrapped = wrap_sequence(anchor.subject.as_ref());
    X509Name::from_der(&wrapped).map_or_else(|_| "(trust anchor)".to_owned(), |(_, name)| name.to_string())
}

/// DER contents of a SEQUENCE, or the input as it is when it is not one whole SEQUENCE.
fn sequence_contents(der: &[u8]) -> &[u8] {
    let Some((&0x30, rest)) = der.split_first() else { return der };
    let Some((&first, rest)) = rest.split_first() else { return der };
    let (length, rest) = match first {
        short @ 0..=0x7f => (usize::from(short), rest),
        0x81..=0x84 => {
            let count = usize::from(first & 0x7f);
            if rest.len() < count {
                return der;
            }
            let (bytes, rest) = rest.split_at(count);
            (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
        }
        _ => return der,
    };
    if length == rest.len() { rest } else { der }
}

fn wrap_sequence(contents: &[u8]) -> Vec<u8> {
    let mut out = vec![0x30];
    let length = contents.len();
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes: Vec<u8> = length.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_contents_strips_only_a_whole_sequence() {
        assert_eq!(sequence_contents(&[0x30, 2, 1, 2]), &[1, 2]);
        assert_eq!(sequence_contents(&[0x30, 3, 1, 2]), &[0x30, 3, 1, 2], "length does not fit");
        assert_eq!(sequence_contents(&[0x31, 2, 1, 2]), &[0x31, 2, 1, 2], "not a SEQUENCE");
        let long = vec![7u8; 300];
        assert_eq!(sequence_contents(&wrap_sequence(&long)), long.as_slice());
        assert_eq!(sequence_contents(&[]), &[] as &[u8]);
        assert_eq!(sequence_contents(&[0x30, 0x82, 1]), &[0x30, 0x82, 1]);
    }
}
