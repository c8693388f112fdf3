//! A test PKI: a root CA that signs CRLs, and leaves with chosen CRL distribution points.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, CrlDistributionPoint,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams,
    SerialNumber,
};
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;

pub(super) struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl TestPki {
    pub(super) fn new() -> Self {
        Self::named("Woodgrove Bank Root CA")
    }

    /// A root CA with its own key and the given name.
    pub(super) fn named(name: &str) -> Self {
        let mut params = CertificateParams::new(vec![]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Self { ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    pub(super) fn root(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// A leaf for mail1.woodgrovebank.com listing `points` as one distribution point.
    pub(super) fn leaf(&self, points: &[&str]) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(vec![LEAF_NAME.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, LEAF_NAME);
        params.serial_number = Some(SerialNumber::from(LEAF_SERIAL));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        if !points.is_empty() {
            params.crl_distribution_points =
                vec![CrlDistributionPoint { uris: points.iter().map(|point| (*point).to_owned()).collect() }];
        }
        params.signed_by(&KeyPair::generate().unwrap(), &self.ca).unwrap().der().clone()
    }

    /// `[leaf, root]` with the leaf's distribution points.
    pub(super) fn chain(&self, points: &[&str]) -> Vec<CertificateDer<'static>> {
        vec![self.leaf(points), self.root()]
    }

    /// A DER CRL issued an hour before `now`, next update `valid_for` after `now`.
    pub(super) fn crl(&self, revoke_leaf: bool, now: SystemTime, valid_for: Duration) -> Vec<u8> {
        self.crl_params(revoke_leaf, now, valid_for).signed_by(&self.ca).unwrap().der().to_vec()
    }

    /// The same CRL, PEM.
    pub(super) fn crl_pem(&self, now: SystemTime, valid_for: Duration) -> String {
        self.crl_params(false, now, valid_for).signed_by(&self.ca).unwrap().pem().unwrap()
    }

    fn crl_params(&self, revoke_leaf: bool, now: SystemTime, valid_for: Duration) -> CertificateRevocationListParams {
        let now = OffsetDateTime::from(now);
        let revoked_certs = match revoke_leaf {
            true => vec![RevokedCertParams {
                serial_number: SerialNumber::from(LEAF_SERIAL),
                revocation_time: now - Duration::from_secs(60),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            false => vec![],
        };
        CertificateRevocationListParams {
            this_update: now - Duration::from_secs(3600),
            next_update: now + valid_for,
            crl_number: SerialNumber::from(1),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        }
    }
}

pub(super) const LEAF_NAME: &str = "mail1.woodgrovebank.com";
const LEAF_SERIAL: u64 = 0x4242;
