//! `certutil -verify` on the edge: build the chain the way the edge will use it
//! (rustls-webpki; trust anchors are the platform's roots plus the
//! organization's trusted roots from the snapshot) and report each step.

use rustls::pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::x509::anchors;

/// The revocation step until the relay's CRL cache replaces it.
pub const NOT_CHECKED: &str = "revocation: not checked (the SMTP relay, which fetches CRLs, is not running)";

/// The steps and the verdict.
pub struct Verification {
    /// One line per step.
    pub steps: Vec<String>,
    /// True when the chain, dates and key usage all check.
    pub verified: bool,
}

/// Verifies `chain` (leaf first, then any intermediates) against the platform's
/// roots and `trusted_roots` (DER).
pub fn verify(chain: &[Vec<u8>], trusted_roots: &[Vec<u8>]) -> Verification {
    let mut steps = Vec::new();
    let Some(leaf) = chain.first() else {
        return Verification { steps: vec!["parse: no certificate".to_owned()], verified: false };
    };
    let Ok((_, parsed)) = X509Certificate::from_der(leaf) else {
        return Verification { steps: vec!["parse: not a certificate".to_owned()], verified: false };
    };
    steps.push(format!("parse: ok; subject {}, issuer {}", parsed.subject(), parsed.issuer()));
    let validity = parsed.validity();
    let dates_ok = validity.is_valid();
    steps.push(format!(
        "dates: {} (valid {} to {})",
        if dates_ok { "ok" } else { "NOT VALID NOW" },
        validity.not_before,
        validity.not_after
    ));
    let leaf_der = CertificateDer::from(leaf.as_slice());
    let Ok(end_entity) = EndEntityCert::try_from(&leaf_der) else {
        steps.push("chain: the certificate cannot be used for path building".to_owned());
        return Verification { steps, verified: false };
    };
    let root_ders: Vec<CertificateDer<'_>> = trusted_roots.iter().map(|r| CertificateDer::from(r.as_slice())).collect();
    let organization_anchors = anchors(&root_ders, false).len();
    let anchors = anchors(&root_ders, true);
    let intermediates: Vec<CertificateDer<'_>> =
        chain[1..].iter().map(|c| CertificateDer::from(c.as_slice())).collect();
    let algorithms = webpki::ALL_VERIFICATION_ALGS;
    let now = UnixTime::now();
    let server =
        end_entity.verify_for_usage(algorithms, &anchors, &intermediates, now, KeyUsage::server_auth(), None, None);
    let chain_ok = match &server {
        Ok(path) => {
            let anchor = path.anchor();
            let origin = if anchors[..organization_anchors].iter().any(|a| a.subject == anchor.subject) {
                "an organization trusted root"
            } else {
                "a platform root"
            };
            steps.push(format!(
                "chain: ok; {} intermediate(s), anchored at {origin}",
                path.intermediate_certificates().count()
            ));
            steps.push("key usage: server authentication ok".to_owned());
            true
        }
        Err(error) => {
            steps.push(format!(
                "chain: FAILED: {error:?} (trust anchors: {organization_anchors} organization, platform roots)"
            ));
            false
        }
    };
    let client =
        end_entity.verify_for_usage(algorithms, &anchors, &intermediates, now, KeyUsage::client_auth(), None, None);
    steps.push(match client {
        Ok(_) => "key usage: client authentication ok".to_owned(),
        Err(_) if chain_ok => "key usage: no client authentication EKU (a partner may still accept it as a client certificate; see Domain Security settings)".to_owned(),
        Err(_) => "key usage: client authentication not checked (no chain)".to_owned(),
    });
    steps.push(NOT_CHECKED.to_owned());
    Verification { steps, verified: dates_ok && chain_ok }
}
