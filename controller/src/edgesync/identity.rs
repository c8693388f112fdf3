//! The controller's direct-trust certificate for the edge port: self-signed, made
//! once per state dir, published in the directory so edges learn to trust it.

use domainsec_model::Fingerprint;
use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use crate::{
    pki::PkiError,
    state_dir::{self, StateDir, StateError},
};

/// The certificate and key the controller presents on the edge port.
pub struct ControllerIdentity {
    /// PEM of the certificate.
    pub certificate_pem: String,
    /// DER of the certificate.
    pub certificate_der: CertificateDer<'static>,
    /// DER (PKCS#8) of the key.
    pub key_der: PrivatePkcs8KeyDer<'static>,
    /// SHA-256 of the certificate.
    pub sha256: Fingerprint,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// Why the identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// State file I/O.
    #[error(transparent)]
    State(#[from] StateError),
    /// Certificate generation.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A stored file is not a certificate or key.
    #[error("{0}")]
    Invalid(String),
}

impl From<rcgen::Error> for IdentityError {
    fn from(error: rcgen::Error) -> Self {
        Self::Pki(PkiError::Generate(error))
    }
}

impl ControllerIdentity {
    /// Loads `edge-sync.{pem,key}` from the state dir, making them on first use.
    pub fn load_or_create(state: &StateDir, organization: &str) -> Result<Self, IdentityError> {
        Self::load_or_create_at(&(state.edge_sync_certificate(), state.edge_sync_key()), organization)
    }

    /// Like [`Self::load_or_create`] at explicit (certificate, key) paths.
    pub fn load_or_create_at(
        paths: &(std::path::PathBuf, std::path::PathBuf),
        organization: &str,
    ) -> Result<Self, IdentityError> {
        let (cert_path, key_path) = (paths.0.clone(), paths.1.clone());
        if !cert_path.exists() || !key_path.exists() {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let mut params = CertificateParams::default();
            let mut name = DistinguishedName::new();
            name.push(DnType::OrganizationName, organization);
            name.push(DnType::CommonName, "domainsec-controller edge sync");
            params.distinguished_name = name;
            params.subject_alt_names = vec![SanType::DnsName(
                CONTROLLER_NAME.try_into().map_err(|_| IdentityError::Invalid("controller name".into()))?,
            )];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            let now = OffsetDateTime::now_utc();
            params.not_before = now - Duration::hours(1);
            params.not_after = now + Duration::days(VALIDITY_DAYS);
            let certificate = params.self_signed(&key)?;
            state_dir::write_file(&key_path, key.serialize_pem().as_bytes(), state_dir::PRIVATE)?;
            state_dir::write_file(&cert_path, certificate.pem().as_bytes(), state_dir::PUBLIC)?;
        }
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).map_err(|source| StateError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            })
        };
        Self::from_pem(&read(&cert_path)?, &read(&key_path)?)
    }

    fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Self, IdentityError> {
        let key = KeyPair::from_pem(key_pem)?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(certificate_pem.as_bytes())
            .map_err(|e| IdentityError::Invalid(format!("edge-sync certificate: {e}")))?;
        let not_after = pem
            .parse_x509()
            .map_err(|e| IdentityError::Invalid(format!("edge-sync certificate: {e}")))?
            .validity()
            .not_after
            .to_datetime();
        let certificate_der = CertificateDer::from(pem.contents.clone());
        Ok(Self {
            certificate_pem: certificate_pem.to_owned(),
            sha256: Fingerprint::of(&certificate_der),
            certificate_der,
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
            not_after,
        })
    }

    /// The key for rustls.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone_key())
    }
}

use proto::edge::CONTROLLER_NAME;
const VALIDITY_DAYS: i64 = 2 * 365;
