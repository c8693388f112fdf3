//! The organization's internal CA: it issues admin credentials and the admin API's
//! server certificate. Keys are ECDSA P-256, made here with rcgen.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use domainsec_model::Fingerprint;
use domainsec_model::Role;

/// The CA with its signing key, loaded from the state dir.
pub struct OrgCa {
    issuer: Issuer<'static, KeyPair>,
    certificate_pem: String,
}

/// A certificate just made, with its key (PEM, PKCS#8).
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The private key, PEM. Never logged, never stored in the database.
    pub key_pem: String,
    /// SHA-256 of the DER certificate.
    pub sha256: Fingerprint,
    /// Serial number, hex.
    pub serial: String,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// Why a certificate could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused (bad key, bad parameters).
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// An admin-API host name that is neither a DNS name nor an IP address.
    #[error("admin hostname {0:?} is neither a DNS name nor an IP address")]
    BadHostname(String),
    /// The operating system's random number generator failed, so no serial
    /// number was drawn (a predictable one would repeat across certificates).
    #[error("the system random number generator failed; no certificate serial number was drawn")]
    NoRandomness,
}

impl OrgCa {
    /// Makes a new CA for the organization; returns it and its key's PEM.
    pub fn generate(organization: &str) -> Result<(Self, String), PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(organization, "DomainSec internal CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(random_serial()?);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
        let certificate = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        let ca = Self { certificate_pem: certificate.pem(), issuer: Issuer::new(params, key) };
        Ok((ca, key_pem))
    }

    /// Loads the CA from its certificate and key PEM.
    pub fn load(certificate_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(certificate_pem, key)?;
        Ok(Self { issuer, certificate_pem: certificate_pem.to_owned() })
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// Issues an admin client certificate: CN is the admin's name, OU the role.
    pub fn issue_admin(
        &self,
        organization: &str,
        admin: &str,
        role: Role,
        days: i64,
    ) -> Result<IssuedCertificate, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(organization, admin);
        params.distinguished_name.push(DnType::OrganizationalUnitName, role.as_str());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, days)
    }

    /// Issues the admin API's server certificate for `domainsec-controller`,
    /// `localhost`, `127.0.0.1` and `extra` names.
    pub fn issue_admin_api(&self, organization: &str, extra: &[String]) -> Result<IssuedCertificate, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(organization, "domainsec-controller admin API");
        let mut names = vec![
            domainsec_model::credentials::CredentialBundle::SERVER_NAME.to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        names.extend(extra.iter().cloned());
        params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_, _>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, SERVER_VALIDITY_DAYS)
    }

    fn issue(&self, mut params: CertificateParams, days: i64) -> Result<IssuedCertificate, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let serial = random_serial()?;
        params.serial_number = Some(serial.clone());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(days);
        let not_after = params.not_after;
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            sha256: Fingerprint::of(certificate.der()),
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            serial: hex(&serial.to_bytes()),
            not_after,
        })
    }
}

fn name(organization: &str, common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, organization);
    dn.push(DnType::CommonName, common_name);
    dn
}

fn san(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let dns = name.to_owned().try_into().map_err(|_| PkiError::BadHostname(name.to_owned()))?;
    Ok(SanType::DnsName(dns))
}

/// A random positive serial of 127 bits (RFC 5280 §4.1.2.2: unique per CA).
fn random_serial() -> Result<SerialNumber, PkiError> {
    // ring's SystemRandom reads the OS CSPRNG.
    serial_from(|bytes| ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), bytes))
}

/// A serial from `fill`'s bytes; no serial at all when `fill` fails.
fn serial_from(fill: impl FnOnce(&mut [u8]) -> Result<(), ring::error::Unspecified>) -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    fill(&mut bytes).map_err(|_| PkiError::NoRandomness)?;
    bytes[0] &= 0x7f; // keep the DER INTEGER positive
    Ok(SerialNumber::from_slice(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const CA_VALIDITY_DAYS: i64 = 10 * 365;
const SERVER_VALIDITY_DAYS: i64 = 365;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_random_fill_draws_no_serial_number() {
        let serial = serial_from(|_| Err(ring::error::Unspecified));
        assert!(matches!(serial, Err(PkiError::NoRandomness)), "{:?}", serial.map(|s| s.to_bytes()));
    }

    #[test]
    fn serial_numbers_are_positive_and_differ() {
        let (first, second) = (random_serial().unwrap().to_bytes(), random_serial().unwrap().to_bytes());
        assert_ne!(first, second);
        assert!(first[0] < 0x80 && second[0] < 0x80, "a DER INTEGER with the top bit set is negative");
    }
}
