//! Small facts read off X.509 certificates that both the certificate store and
//! Domain Security need: a leaf module, so neither depends on the other.

use rustls::pki_types::{CertificateDer, TrustAnchor};
use webpki::anchor_from_trusted_cert;
use x509_parser::prelude::{GeneralName, X509Certificate};

/// SHA-1 of the DER, upper-case hex: the thumbprint Exchange shows.
pub fn thumbprint(der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()).to_ascii_uppercase()
}

/// The DNS names in a certificate's subject alternative name extension.
pub fn dns_names(certificate: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = certificate.subject_alternative_name() else { return Vec::new() };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            _ => None,
        })
        .collect()
}

/// Trust anchors: the organization's roots (DER), then the platform's if wanted.
pub fn anchors<'a>(organization_roots: &'a [CertificateDer<'a>], platform_roots: bool) -> Vec<TrustAnchor<'a>> {
    let mut anchors: Vec<TrustAnchor<'a>> =
        organization_roots.iter().filter_map(|der| anchor_from_trusted_cert(der).ok()).collect();
    if platform_roots {
        anchors.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    anchors
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
