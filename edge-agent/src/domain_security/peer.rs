//! Checking a partner's certificate after the handshake: chain to a trust anchor
//! (the platform's roots and the organization's trusted roots; intermediates the
//! peer sent are used), dates, key usage, the paper's name rule, and revocation
//! by CRL. The handshake itself only proved the peer holds the key; whether the
//! result matters is decided by the SMTP layer for the domain at hand.

use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, RevocationCheckDepth, RevocationOptionsBuilder,
    UnknownStatusPolicy, VerifiedPath,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::x509::anchors;

use super::{
    name_match,
    revocation::{CrlCache, RevocationError, RevocationPath},
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
    /// It has no subject alternative name and a CA of its path carries name
    /// constraints, which apply to SANs only: its subject CN cannot be trusted.
    #[error(
        "name {common_name} is only a subject CN, and a CA of its path is name-constrained; a certificate from a constrained CA must carry its names as subject alternative names"
    )]
    NameConstrained { common_name: String },
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
            Self::NameConstrained { .. } => "name-constrained",
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
    let common_name_only = !name_match::has_subject_alternative_names(&parsed);
    let peer = TrustedPeer {
        sha256: domainsec_model::Fingerprint::of(leaf).into_string(),
        subject: parsed.subject().to_string(),
        names: names.clone(),
    };
    let ders = certificate_ders(chain);
    let root_ders = certificate_ders(trust.organization_roots);
    let anchors = anchors(&root_ders, trust.platform_roots);
    let end_entity = EndEntityCert::try_from(&ders[0]).map_err(|e| PeerFailure::Untrusted(format!("{e:?}")))?;
    // Chain, dates and key usage first: a stranger costs no CRL fetch.
    let path = verify_usage(&end_entity, &anchors, &ders[1..], role, None)?;
    if !name_match::matches_domain(&names, domain) {
        let shown = if names.is_empty() { "(no DNS name)".to_owned() } else { names.join(", ") };
        return Err(PeerFailure::NameMismatch { domain: domain.to_owned(), names: shown });
    }
    if common_name_only && path.name_constrained {
        return Err(PeerFailure::NameConstrained { common_name: names.join(", ") });
    }
    verify_revocation(&end_entity, &anchors, path, crls).await?;
    Ok(peer)
}

/// What the first path-building run found: the role that passed (a client may
/// pass as a server), the path for revocation, and whether a CA on it carries
/// name constraints.
struct ValidatedPath {
    role: PeerRole,
    revocation: RevocationPath,
    /// The certificates between leaf and anchor, as validated (DER).
    intermediates: Vec<CertificateDer<'static>>,
    name_constrained: bool,
}

/// Only the revocation part of [`check`], for one of our own certificates
/// (`dsctl cert verify`): the chain with its CRLs, for server authentication.
pub async fn revocation_only(chain: &[Vec<u8>], trust: &TrustSettings<'_>, crls: &CrlCache) -> Result<(), PeerFailure> {
    let ders = certificate_ders(chain);
    let first = ders.first().ok_or(PeerFailure::NoCertificate)?;
    let root_ders = certificate_ders(trust.organization_roots);
    let anchors = anchors(&root_ders, trust.platform_roots);
    let end_entity = EndEntityCert::try_from(first).map_err(|e| PeerFailure::Untrusted(format!("{e:?}")))?;
    let path = verify_usage(&end_entity, &anchors, ders.get(1..).unwrap_or_default(), PeerRole::Server, None)?;
    verify_revocation(&end_entity, &anchors, path, crls).await
}

/// `dsctl cert verify`'s revocation lines for one of our chains: one per
/// certificate of the path that validates, or why none does.
pub async fn describe_revocation(chain: &[Vec<u8>], trust: &TrustSettings<'_>, crls: &CrlCache) -> Vec<String> {
    let ders = certificate_ders(chain);
    let Some(first) = ders.first() else { return vec!["revocation: no certificate".to_owned()] };
    let root_ders = certificate_ders(trust.organization_roots);
    let anchors = anchors(&root_ders, trust.platform_roots);
    let path = EndEntityCert::try_from(first)
        .map_err(|e| PeerFailure::Untrusted(format!("{e:?}")))
        .and_then(|end_entity| verify_usage(&end_entity, &anchors, &ders[1..], PeerRole::Server, None));
    match path {
        Ok(path) => crls.describe(&path.revocation).await,
        Err(_) if ders.len() == 1 && is_self_issued(first) => {
            vec![format!("revocation: {}: self-signed root, no CRL to check", subject_of(first))]
        }
        Err(failure) => vec![format!("revocation: not checked: {failure}")],
    }
}

fn is_self_issued(der: &CertificateDer<'_>) -> bool {
    X509Certificate::from_der(der).is_ok_and(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
}

fn subject_of(der: &CertificateDer<'_>) -> String {
    X509Certificate::from_der(der).map_or_else(|_| "(unreadable)".to_owned(), |(_, c)| c.subject().to_string())
}

fn certificate_ders(certificates: &[Vec<u8>]) -> Vec<CertificateDer<'_>> {
    certificates.iter().map(|c| CertificateDer::from(c.as_slice())).collect()
}

/// The validated path again, now with the CRLs of every certificate on it (fetched
/// or cached, each signed by that certificate's issuer). Only certificates of the
/// path are consulted: whatever else the peer sent is never fetched from.
async fn verify_revocation(
    end_entity: &EndEntityCert<'_>,
    anchors: &[TrustAnchor<'_>],
    path: ValidatedPath,
    crls: &CrlCache,
) -> Result<(), PeerFailure> {
    let lists = match crls.crls_for(&path.revocation).await {
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
    verify_usage(end_entity, anchors, &path.intermediates, path.role, Some(options)).map(|_| ())
}

/// One path-building run; returns the role that passed (a client may pass as a
/// server) with the path it found.
fn verify_usage(
    end_entity: &EndEntityCert<'_>,
    anchors: &[TrustAnchor<'_>],
    intermediates: &[CertificateDer<'_>],
    role: PeerRole,
    revocation: Option<webpki::RevocationOptions<'_>>,
) -> Result<ValidatedPath, PeerFailure> {
    let now = UnixTime::now();
    let algorithms = webpki::ALL_VERIFICATION_ALGS;
    let run = |usage: KeyUsage, role: PeerRole| {
        end_entity
            .verify_for_usage(algorithms, anchors, intermediates, now, usage, revocation, None)
            .map_err(failure)
            .and_then(|path| validated(&path, role))
    };
    match role {
        PeerRole::Server => run(KeyUsage::server_auth(), role),
        PeerRole::Client { accept_server_auth } => {
            match end_entity.verify_for_usage(
                algorithms,
                anchors,
                intermediates,
                now,
                KeyUsage::client_auth(),
                revocation,
                None,
            ) {
                Ok(path) => validated(&path, role),
                Err(error) if accept_server_auth && is_eku_error(&error) => {
                    run(KeyUsage::server_auth(), PeerRole::Server)
                }
                Err(error) => Err(failure(error)),
            }
        }
    }
}

/// Keeps what later checks need from webpki's path.
fn validated(path: &VerifiedPath<'_>, role: PeerRole) -> Result<ValidatedPath, PeerFailure> {
    let revocation = RevocationPath::from_verified(path).map_err(|e| PeerFailure::Untrusted(e.to_string()))?;
    let intermediates: Vec<CertificateDer<'static>> =
        path.intermediate_certificates().map(|cert| cert.der().into_owned()).collect();
    let name_constrained = path.anchor().name_constraints.is_some()
        || intermediates.iter().any(|der| name_match::has_name_constraints(der));
    Ok(ValidatedPath { role, revocation, intermediates, name_constrained })
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
