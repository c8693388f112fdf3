//! What each certificate of a chain says about its CRLs: the `CRLDistributionPoints`
//! extension's full-name URIs, read with x509-parser.

use rustls::pki_types::CertificateDer;
use x509_parser::{
    certificate::X509Certificate,
    extensions::{DistributionPointName, GeneralName, ParsedExtension},
    prelude::FromDer,
};

use super::{RevocationError, fetch::CrlUrl};

/// One certificate of a chain, as revocation checking sees it.
#[derive(Debug)]
pub(super) struct ChainCertificate {
    /// The subject, `CN=…`, for reports.
    pub(super) subject: String,
    /// The trust anchor at the end of the path: no CRL to check.
    pub(super) root: bool,
    /// The `http://` distribution points, in the certificate's order (at most a few).
    http: Vec<CrlUrl>,
    /// Distribution points that cannot be fetched (`ldap://`, `https://`, `file://`, malformed).
    unsupported: Vec<String>,
}

// === impl ChainCertificate ===

impl ChainCertificate {
    /// Reads the certificate at `position` of a path (1 for the leaf).
    pub(super) fn read(position: usize, der: &CertificateDer<'_>) -> Result<Self, RevocationError> {
        read(position, der)
    }

    /// The trust anchor at the end of a path, named by its subject.
    pub(super) fn anchor(subject: &str) -> Self {
        Self { subject: subject.to_owned(), root: true, http: Vec::new(), unsupported: Vec::new() }
    }
    /// The URLs to try, or why there are none.
    pub(super) fn http_points(&self) -> Result<&[CrlUrl], RevocationError> {
        if !self.http.is_empty() {
            return Ok(&self.http);
        }
        match self.unsupported.first() {
            Some(url) => Err(RevocationError::Unsupported { url: url.clone() }),
            None => Err(RevocationError::NoDistributionPoint { subject: self.subject.clone() }),
        }
    }
}

// === helpers ===

fn read(position: usize, der: &CertificateDer<'_>) -> Result<ChainCertificate, RevocationError> {
    let (_, certificate) = X509Certificate::from_der(der)
        .map_err(|error| RevocationError::Certificate { position, reason: error.to_string() })?;
    let subject = match certificate.subject().to_string() {
        subject if subject.is_empty() => "(empty subject)".to_owned(),
        subject => subject,
    };
    let mut http = Vec::new();
    let mut unsupported = Vec::new();
    for uri in distribution_point_uris(&certificate) {
        match CrlUrl::parse(uri) {
            Some(url) if http.len() < MAX_HTTP_POINTS => http.push(url),
            Some(_) => {}
            None => unsupported.push(uri.to_owned()),
        }
    }
    Ok(ChainCertificate { subject, root: false, http, unsupported })
}

fn distribution_point_uris<'a>(certificate: &'a X509Certificate<'_>) -> impl Iterator<Item = &'a str> {
    certificate
        .extensions()
        .iter()
        .filter_map(|extension| match extension.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => Some(points.points.iter()),
            _ => None,
        })
        .flatten()
        .filter_map(|point| match &point.distribution_point {
            Some(DistributionPointName::FullName(names)) => Some(names.iter()),
            _ => None,
        })
        .flatten()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
}

/// A certificate listing many URLs must not make one check try them all.
const MAX_HTTP_POINTS: usize = 4;
