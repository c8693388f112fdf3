//! A CA certificate the organization trusts (a private root or a cross-certificate):
//! the one place that decides what `dsctl trusted-root add` and a configuration
//! document's `trusted_roots` accept.

use domainsec_model::{Fingerprint, InvalidField};
use x509_parser::prelude::{FromDer, X509Certificate};

/// A parsed CA certificate: one certificate, with basicConstraints CA set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCertificate {
    /// SHA-256 of the DER, lower-case hex.
    pub sha256: String,
    /// The subject as x509-parser prints it.
    pub subject: String,
    /// The certificate as one PEM block.
    pub certificate_pem: String,
}

impl CaCertificate {
    /// Parses PEM (exactly one CERTIFICATE block) or DER; errors name `field`.
    pub fn parse(field: &str, data: &[u8]) -> Result<Self, InvalidField> {
        let der = single_certificate(field, data)?;
        let (_, certificate) = X509Certificate::from_der(&der)
            .map_err(|e| InvalidField::new(field, "", format!("not a certificate: {e}")))?;
        if !certificate.is_ca() {
            return Err(InvalidField::new(
                field,
                certificate.subject().to_string(),
                "not a CA certificate (basicConstraints CA is not set); trust a root or a cross-certificate, \
                 not a server's certificate",
            ));
        }
        Ok(Self {
            sha256: Fingerprint::of(&der).to_string(),
            subject: certificate.subject().to_string(),
            // LF line endings: a document shows it as a YAML block, and one spelling compares equal.
            certificate_pem: pem::encode_config(
                &pem::Pem::new("CERTIFICATE", der.clone()),
                pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
            ),
        })
    }
}

/// One certificate from PEM (exactly one CERTIFICATE block) or DER.
fn single_certificate(field: &str, data: &[u8]) -> Result<Vec<u8>, InvalidField> {
    match pem::parse_many(data) {
        Ok(blocks) if !blocks.is_empty() => {
            if let Some(block) = blocks.iter().find(|b| b.tag().contains("PRIVATE KEY")) {
                return Err(InvalidField::new(
                    field,
                    block.tag(),
                    "holds a private key; a trusted root is a public CA certificate only",
                ));
            }
            let certificates: Vec<_> = blocks.into_iter().filter(|b| b.tag() == "CERTIFICATE").collect();
            match certificates.as_slice() {
                [one] => Ok(one.contents().to_vec()),
                [] => Err(InvalidField::new(field, "", "holds no CERTIFICATE block")),
                _ => Err(InvalidField::new(field, "", "holds several certificates; add one root at a time")),
            }
        }
        _ => Ok(data.to_vec()),
    }
}
