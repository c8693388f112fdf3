//! A test PKI made in the test: a root CA whose CRL is served over HTTP on
//! loopback (and can be taken down), leaves for the paper's name cases, revoked,
//! expired and self-signed certificates, installed on relays as PFX imports.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use proto::edge as pb;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};

use super::support::TestRelay;

/// A root CA with an HTTP CRL distribution point.
pub struct TestPki {
    root: Issuer<'static, KeyPair>,
    pub root_der: Vec<u8>,
    pub crl_url: String,
    crls: Arc<Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    crl_path: String,
    base_url: String,
    revoked: Mutex<Vec<u64>>,
    next_serial: AtomicU64,
    /// When set, the CRL server drops every connection (an outage).
    pub crl_down: Arc<AtomicBool>,
    /// Requests served.
    pub crl_fetches: Arc<AtomicU64>,
}

/// An issuing CA under a test root.
pub struct Intermediate {
    issuer: Issuer<'static, KeyPair>,
    pub der: Vec<u8>,
    crl_url: String,
}

/// A leaf certificate with its key (and the intermediates it is presented with).
pub struct Leaf {
    pub der: Vec<u8>,
    pub key_der: Vec<u8>,
    pub serial: u64,
    pub chain: Vec<Vec<u8>>,
}

impl Leaf {
    /// The same leaf, presented with `intermediate` after it.
    pub fn with_chain(mut self, intermediate: Vec<u8>) -> Self {
        self.chain.push(intermediate);
        self
    }
}

/// What to issue.
pub struct LeafSpec<'a> {
    pub names: &'a [&'a str],
    pub common_name: &'a str,
    /// Include the client-auth EKU (besides server auth).
    pub client_auth: bool,
    /// Validity ended yesterday.
    pub expired: bool,
}

impl<'a> LeafSpec<'a> {
    /// A server+client certificate for `names`.
    pub fn new(names: &'a [&'a str]) -> Self {
        Self { names, common_name: names.first().copied().unwrap_or("leaf"), client_auth: true, expired: false }
    }
}

impl TestPki {
    /// A new root and its CRL server on 127.0.0.1.
    pub async fn new(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let crl_path = format!("/{}.crl", name.to_ascii_lowercase().replace(' ', "-"));
        let crl_url = format!("{base_url}{crl_path}");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.distinguished_name.push(DnType::CommonName, format!("{name} Test Root CA"));
        let key = KeyPair::generate().unwrap();
        let root_der = params.self_signed(&key).unwrap().der().to_vec();
        let pki = Self {
            root: Issuer::new(params, key),
            root_der,
            crl_url,
            crls: Arc::default(),
            crl_path,
            base_url,
            revoked: Mutex::default(),
            next_serial: AtomicU64::new(100),
            crl_down: Arc::default(),
            crl_fetches: Arc::default(),
        };
        pki.publish_crl();
        let (crls, down, fetches) = (pki.crls.clone(), pki.crl_down.clone(), pki.crl_fetches.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                if down.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                fetches.fetch_add(1, Ordering::SeqCst);
                let crls = crls.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 2048];
                    let read = stream.read(&mut request).await.unwrap_or(0);
                    let line = String::from_utf8_lossy(&request[..read]).lines().next().unwrap_or_default().to_owned();
                    let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                    let body = crls.lock().unwrap().get(&path).cloned().unwrap_or_default();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                });
            }
        });
        pki
    }

    /// Issues a leaf signed by the root, with the CRL distribution point.
    pub fn issue(&self, spec: LeafSpec<'_>) -> Leaf {
        let serial = self.next_serial.fetch_add(1, Ordering::SeqCst);
        let mut params =
            CertificateParams::new(spec.names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, spec.common_name);
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = if spec.client_auth {
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
        } else {
            vec![ExtendedKeyUsagePurpose::ServerAuth]
        };
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![self.crl_url.clone()] }];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        if spec.expired {
            params.not_before = now - Duration::from_secs(10 * 86400);
            params.not_after = now - Duration::from_secs(86400);
        } else {
            params.not_before = now - Duration::from_secs(3600);
            params.not_after = now + Duration::from_secs(30 * 86400);
        }
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.root).unwrap();
        Leaf { der: certificate.der().to_vec(), key_der: key.serialize_der(), serial, chain: vec![] }
    }

    /// An issuing CA signed by this root (on the root's CRL), publishing its own
    /// (empty) CRL at `/NAME.crl` on the same server.
    pub fn intermediate(&self, name: &str) -> Intermediate {
        self.intermediate_with(name, None)
    }

    /// An issuing CA whose name constraints permit only DNS names under `permitted`.
    pub fn constrained_intermediate(&self, name: &str, permitted: &str) -> Intermediate {
        let constraints = rcgen::NameConstraints {
            permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName(permitted.to_owned())],
            excluded_subtrees: vec![],
        };
        self.intermediate_with(name, Some(constraints))
    }

    fn intermediate_with(&self, name: &str, constraints: Option<rcgen::NameConstraints>) -> Intermediate {
        let serial = self.next_serial.fetch_add(1, Ordering::SeqCst);
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.name_constraints = constraints;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.distinguished_name.push(DnType::CommonName, name);
        params.serial_number = Some(SerialNumber::from(serial));
        params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![self.crl_url.clone()] }];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let der = params.signed_by(&key, &self.root).unwrap().der().to_vec();
        let path = format!("/{}.crl", name.to_ascii_lowercase().replace(' ', "-"));
        let issuer = Issuer::new(params, key);
        let now = OffsetDateTime::now_utc();
        let crl = CertificateRevocationListParams {
            this_update: now - Duration::from_secs(60),
            next_update: now + Duration::from_secs(3600),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![],
            key_identifier_method: KeyIdMethod::Sha256,
        };
        self.crls.lock().unwrap().insert(path.clone(), crl.signed_by(&issuer).unwrap().der().to_vec());
        Intermediate { issuer, der, crl_url: format!("{}{path}", self.base_url) }
    }

    /// A leaf issued by `intermediate`.
    pub fn issue_from(&self, intermediate: &Intermediate, spec: LeafSpec<'_>) -> Leaf {
        let serial = self.next_serial.fetch_add(1, Ordering::SeqCst);
        let mut params =
            CertificateParams::new(spec.names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, spec.common_name);
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![intermediate.crl_url.clone()] }];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &intermediate.issuer).unwrap();
        Leaf { der: certificate.der().to_vec(), key_der: key.serialize_der(), serial, chain: vec![] }
    }

    /// A cross-certificate: `other`'s root (its subject and key) certified by this root, so
    /// an organization trusting it accepts what `other` issues.
    pub fn cross_certify(&self, other: &TestPki) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name = other.root_params_name();
        params.serial_number = Some(SerialNumber::from(self.next_serial.fetch_add(1, Ordering::SeqCst)));
        params.signed_by(other.root.key(), &self.root).unwrap().der().to_vec()
    }

    fn root_params_name(&self) -> rcgen::DistinguishedName {
        let mut name = rcgen::DistinguishedName::new();
        let (_, parsed) = x509_parser::parse_x509_certificate(&self.root_der).unwrap();
        if let Some(cn) = parsed.subject().iter_common_name().next() {
            name.push(DnType::CommonName, cn.as_str().unwrap());
        }
        name
    }

    /// Puts a certificate on the CRL (served from the next fetch on).
    pub fn revoke(&self, serial: u64) {
        self.revoked.lock().unwrap().push(serial);
        self.publish_crl();
    }

    fn publish_crl(&self) {
        let now = OffsetDateTime::now_utc();
        let revoked_certs = self
            .revoked
            .lock()
            .unwrap()
            .iter()
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from(*serial),
                revocation_time: now - Duration::from_secs(60),
                reason_code: None,
                invalidity_date: None,
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::from_secs(60),
            next_update: now + Duration::from_secs(3600),
            crl_number: SerialNumber::from(self.next_serial.load(Ordering::SeqCst)),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let der = params.signed_by(&self.root).unwrap().der().to_vec();
        self.crls.lock().unwrap().insert(self.crl_path.clone(), der);
    }
}

/// A certificate that chains to nothing: self-signed for `name`.
pub fn self_signed(name: &str) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let certificate = params.self_signed(&key).unwrap();
    Leaf { der: certificate.der().to_vec(), key_der: key.serialize_der(), serial: 0, chain: vec![] }
}

/// Installs `leaf` (with `chain` after it) on the relay as its SMTP certificate,
/// through the edge's own PFX import.
pub fn install(relay: &TestRelay, leaf: &Leaf, chain: &[&[u8]]) -> String {
    let mut certificates = vec![p12_keystore::Certificate::from_der(&leaf.der).unwrap()];
    certificates.extend(leaf.chain.iter().map(|der| p12_keystore::Certificate::from_der(der).unwrap()));
    certificates.extend(chain.iter().map(|der| p12_keystore::Certificate::from_der(der).unwrap()));
    let entry = p12_keystore::PrivateKeyChain::new(
        vec![1u8],
        p12_keystore::PrivateKey::from_der(&leaf.key_der).unwrap(),
        certificates,
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("smtp", p12_keystore::KeyStoreEntry::PrivateKeyChain(entry));
    let pfx = store.writer("test").write().unwrap();
    let result = edge::certificates::CertificateStore::new(relay.dir.path()).execute(&pb::CertificateTask {
        id: format!("install-{}", leaf.serial),
        action: Some(pb::certificate_task::Action::ImportPfx(pb::ImportPfx {
            pfx,
            password: "test".into(),
            services: vec!["smtp".into()],
            friendly_name: "test".into(),
        })),
    });
    assert!(result.ok, "{}", result.error);
    result.thumbprint
}
