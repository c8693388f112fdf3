//! The edge's direct-trust identity: a key pair made here, with a self-signed
//! certificate. The private key never leaves the data directory.

use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use crate::store::{DataDir, StoreError, write_atomic};

/// The certificate and key the edge presents to controllers.
pub struct EdgeIdentity {
    /// DER of the certificate.
    pub certificate: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

/// Why the identity could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// File I/O.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key or certificate generation or parsing.
    #[error("edge identity: {0}")]
    Certificate(String),
    /// `subscribe` found an identity already.
    #[error("{0} already exists: this data dir belongs to a subscribed edge; use another --data-dir")]
    Exists(String),
}

impl EdgeIdentity {
    /// Makes a new key pair and self-signed certificate for `fqdn` and stores them.
    pub fn create(dir: &DataDir, organization: &str, fqdn: &str) -> Result<Self, IdentityError> {
        if dir.key().exists() {
            return Err(IdentityError::Exists(dir.key().display().to_string()));
        }
        let failed = |e: rcgen::Error| IdentityError::Certificate(e.to_string());
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, organization);
        name.push(DnType::CommonName, fqdn);
        params.distinguished_name = name;
        params.subject_alt_names = vec![SanType::DnsName(
            fqdn.to_owned().try_into().map_err(|_| IdentityError::Certificate(format!("FQDN {fqdn:?}")))?,
        )];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(VALIDITY_DAYS);
        let certificate = params.self_signed(&key).map_err(failed)?;
        write_atomic(&dir.key(), key.serialize_pem().as_bytes(), 0o600)?;
        write_atomic(&dir.certificate(), certificate.pem().as_bytes(), 0o644)?;
        Ok(Self { certificate: certificate.der().clone(), key: PrivatePkcs8KeyDer::from(key.serialize_der()) })
    }

    /// Loads the stored identity.
    pub fn load(dir: &DataDir) -> Result<Self, IdentityError> {
        let certificate_pem = dir.read_required(&dir.certificate())?;
        let key_pem = dir.read_required(&dir.key())?;
        let certificate = pem::parse(&certificate_pem).map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| IdentityError::Certificate(e.to_string()))?;
        Ok(Self {
            certificate: CertificateDer::from(certificate.contents().to_vec()),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// An identity from a certificate and PKCS#8 key held in memory (simulated
    /// edges in the benchmark; a real edge uses [`Self::create`]).
    pub fn from_parts(certificate: CertificateDer<'static>, key_pkcs8: Vec<u8>) -> Self {
        Self { certificate, key: PrivatePkcs8KeyDer::from(key_pkcs8) }
    }

    /// The key for rustls.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

const VALIDITY_DAYS: i64 = 5 * 365;
