//! Checking a partner's certificate after the handshake: chain to a trust anchor
//! (the platform's roots and the organization's trusted roots; intermediates the
//! peer sent are used), dates, key usage, the paper's name rule, and revocation
//! by CRL. The handshake itself only proved the peer holds the key; whether the
//! result matters is decided by the SMTP layer for the domain at hand.

use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, RevocationCheckDepth, RevocationOptionsBuilder,
    UnknownStatusPolicy, anchor_from_trusted_cert,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{
    name_match,
    revocation::{CrlCache, RevocationError},
};

/// Which end the peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// The next hop we connected to: server authentication required.
    Server,
    /// A sender that connected to us: client authentication, or — when allowed —
    /// a server-auth-only certificate (public CAs stopped issuing client auth in 2026).
    Client {
        /// Accept a certificate whose EKU only allows server authentication.
        accept_server_auth: bool,
    },
}

/// Where trust comes from.
#[derive(Debug, Clone, Copy)]
pub struct TrustSettings<'a> {
    /// The organization's trusted roots (DER) from the snapshot.
    pub organization_roots: &'a [Vec<u8>],
    /// Also trust the platform's built-in roots (webpki-roots).
    pub platform_roots: bool,
}

/// A peer that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedPeer {
    /// SHA-256 of the leaf, lower-case hex.
    pub sha256: String,
    /// The leaf's subject.
    pub subject: String,
    /// The names it offered.
    pub names: Vec<String>,
}

/// Why a peer is not accepted for Domain Security; the text goes into replies and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerFailure {
    /// No certificate was presented.
    #[error("no certificate presented")]
    NoCertificate,
    /// The chain does not lead to a trusted root, or breaks a rule on the way.
    #[error("certificate not trusted: {0}")]
    Untrusted(String),
    /// Outside its validity period.
    #[error("certificate expired or not yet valid: {0}")]
    Dates(String),
    /// Its key usage does not allow this role.
    #[error("certificate not valid for {0}")]
    KeyUsage(&'static str),
    /// None of its names matches the domain.
    #[error("name mismatch: {names} does not match {domain}")]
    NameMismatch { domain: String, names: String },
    /// A CRL lists it (or an issuer).
    #[error("certificate revoked")]
    Revoked,
    /// Revocation could not be checked now (CRL server down, timeout, bad CRL): transient.
    #[error("revocation check failed: {0}")]
    RevocationUnavailable(String),
    /// Revocation can never be checked for this certificate (no usable CRL distribution point).
    #[error("revocation cannot be checked: {0}")]
    RevocationUnsupported(String),
}

impl PeerFailure {
    /// A failure that may pass on a later try (answer 4xx, keep the message queued).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RevocationUnavailable(_))
    }

    /// A short word for counters and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoCertificate => "no-certificate",
            Self::Untrusted(_) => "not-trusted",
            Self::Dates(_) => "expired",
            Self::KeyUsage(_) => "key-usage",
            Self::NameMismatch { .. } => "name-mismatch",
            Self::Revoked => "revoked",
            Self::RevocationUnavailable(_) => "revocation-unavailable",
            Self::RevocationUnsupported(_) => "revocation-unsupported",
        }
    }
}

/// Checks `chain` (leaf first, as the peer sent it) for `domain`.
pub async fn check(
    chain: &[Vec<u8>],
    role: PeerRole,
    domain: &str,
    trust: &TrustSettings<'_>,
    crls: &CrlCache,
) -> Result<TrustedPeer, PeerFailure> {
    let leaf = chain.first().ok_or(PeerFailure::NoCertificate)?;
    let (_, parsed) =
        X509Certificate::from_der(leaf).map_err(|e| PeerFailure::Untrusted(format!("unreadable certificate: {e}")))?;
    let names = name_match::certificate_names(&parsed);
    let peer = TrustedPeer {
        sha256: hex(ring::digest::digest(&ring::digest::SHA256, leaf).as_ref()),
        subject: parsed.subject().to_string(),
        names: names.clone(),
    };
    let ders = certificate_ders(chain);
    let root_ders = certificate_ders(trust.organization_roots);
    let anchors = anchors(&root_ders, trust.platform_roots);
    let end_entity = EndEntityCert::try_from(&ders[0]).map_err(|e| PeerFailure::Untrusted(format!("{e:?}")))?;
    // Chain, dates and key usage first: a stranger costs no CRL fetch.
    let usage = verify_usage(&end_entity, &anchors, &ders[1..], role, None)?;
    if !name_match::matches_domain(&names, domain) {
        let shown = if names.is_empty() { "(no DNS name)".to_owned() } else { names.join(", ") };
        return Err(PeerFailure::NameMismatch { domain: domain.to_owned(), names: shown });
    }
    verify_revocation(&end_entity, &anchors, &ders, usage, crls).await?;
    Ok(peer)
}

/// Only the revocation part of [`check`], for one of our own certificates
/// (`dsctl cert verify`): the chain with its CRLs, for server authentication.
pub async fn revocation_only(chain: &[Vec<u8>], trust: &TrustSettings<'_>, crls: &CrlCache) -> Result<(), PeerFailure> {
    let ders = certificate_ders(chain);
    let first = ders.first().ok_or(PeerFailure::NoCertificate)?;
    let root_ders = certificate_ders(trust.organization_roots);
    let anchors = anchors(&root_ders, trust.platform_roots);
    let end_entity = EndEntityCert::try_from(first).map_err(|e| PeerFailure::Untrusted(format!("{e:?}")))?;
    verify_revocation(&end_entity, &anchors, &ders, PeerRole::Server, crls).await
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

fn certificate_ders(certificates: &[Vec<u8>]) -> Vec<CertificateDer<'_>> {
    certificates.iter().map(|c| CertificateDer::from(c.as_slice())).collect()
}

/// The chain again, now with the CRLs of every certificate in it (fetched or cached).
async fn verify_revocation(
    end_entity: &EndEntityCert<'_>,
    anchors: &[TrustAnchor<'_>],
    ders: &[CertificateDer<'_>],
    role: PeerRole,
    crls: &CrlCache,
) -> Result<(), PeerFailure> {
    let lists = match crls.crls_for(ders).await {
        Ok(lists) => lists,
        Err(RevocationError::Unavailable { url, reason }) => {
            return Err(PeerFailure::RevocationUnavailable(format!("{url}: {reason}")));
        }
        Err(error) => return Err(PeerFailure::RevocationUnsupported(error.to_string())),
    };
    let lists: Vec<CertRevocationList<'_>> = lists.into_iter().map(CertRevocationList::from).collect();
    let references: Vec<&CertRevocationList<'_>> = lists.iter().collect();
    let Ok(builder) = RevocationOptionsBuilder::new(&references) else {
        return Err(PeerFailure::RevocationUnsupported("no CRL for this chain".to_owned()));
    };
    let options = builder
        .with_depth(RevocationCheckDepth::Chain)
        .with_status_policy(UnknownStatusPolicy::Deny)
        .with_expiration_policy(ExpirationPolicy::Enforce)
        .build();
    verify_usage(end_entity, anchors, ders.get(1..).unwrap_or_default(), role, Some(options)).map(|_| ())
}

/// One path-building run; returns the role that passed (a client may pass as a server).
fn verify_usage(
    end_entity: &EndEntityCert<'_>,
    anchors: &[TrustAnchor<'_>],
    intermediates: &[CertificateDer<'_>],
    role: PeerRole,
    revocation: Option<webpki::RevocationOptions<'_>>,
) -> Result<PeerRole, PeerFailure> {
    let now = UnixTime::now();
    let algorithms = webpki::ALL_VERIFICATION_ALGS;
    let run = |usage: KeyUsage| {
        end_entity.verify_for_usage(algorithms, anchors, intermediates, now, usage, revocation, None).map(|_| ())
    };
    let result = match role {
        PeerRole::Server => run(KeyUsage::server_auth()),
        PeerRole::Client { accept_server_auth } => match run(KeyUsage::client_auth()) {
            Err(error) if accept_server_auth && is_eku_error(&error) => {
                return run(KeyUsage::server_auth()).map(|()| PeerRole::Server).map_err(failure);
            }
            other => other,
        },
    };
    result.map(|()| role).map_err(failure)
}

#[allow(deprecated)]
fn is_eku_error(error: &webpki::Error) -> bool {
    matches!(error, webpki::Error::RequiredEkuNotFound | webpki::Error::RequiredEkuNotFoundContext(_))
}

#[allow(deprecated)]
fn failure(error: webpki::Error) -> PeerFailure {
    match error {
        webpki::Error::CertRevoked => PeerFailure::Revoked,
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
            PeerFailure::Dates(format!("{error:?}"))
        }
        webpki::Error::RequiredEkuNotFound | webpki::Error::RequiredEkuNotFoundContext(_) => {
            PeerFailure::KeyUsage("this use (extended key usage)")
        }
        webpki::Error::CrlExpired { .. } => PeerFailure::RevocationUnavailable("the CRL has expired".to_owned()),
        webpki::Error::UnknownRevocationStatus => {
            PeerFailure::RevocationUnsupported("no CRL covers a certificate of the chain".to_owned())
        }
        webpki::Error::UnknownIssuer => PeerFailure::Untrusted("unknown issuer (no trusted root)".to_owned()),
        other => PeerFailure::Untrusted(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
