//! The partner's PKI as an attacker shapes it: a CA Contoso trusts, leaves it
//! issues for Woodgrove Bank (each naming its own CRL URL), strangers' and decoy
//! certificates, and one HTTP server whose every path is a different CRL
//! behaviour — good, revoking, signed by the wrong key, an error status, hanging,
//! endless.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

use crate::attacker::Identity;

/// What the CRL server does for one path.
#[derive(Debug, Clone)]
pub enum CrlBehaviour {
    /// A CRL signed by the partner CA, listing these serials.
    Revoking(Vec<Vec<u8>>),
    /// A CRL with the partner CA's name, signed by another key.
    WrongIssuer,
    /// An HTTP error status and no body.
    Status(u16),
    /// Accepts the connection, reads the request, never answers.
    Hang,
    /// `200 OK` without a length, then this many octets (stops when the edge hangs up).
    Endless { octets: usize },
}

/// A leaf issued for the tests, with what the checks need about it.
pub struct Issued {
    /// Leaf, then the CA.
    pub identity: Identity,
    /// The leaf's serial (for revoking it).
    pub serial: Vec<u8>,
    /// SHA-256 of the leaf, lower-case hex (what the mark names).
    pub sha256: String,
}

/// The partner CA and its CRL server.
pub struct PartnerPki {
    issuer: Arc<Issuer<'static, KeyPair>>,
    ca_params: CertificateParams,
    /// The CA certificate (Contoso adds it as a trusted root).
    pub root_pem: String,
    root_der: CertificateDer<'static>,
    server: Arc<CrlServer>,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The CRL server's port (a leak check looks for it in replies).
    pub port: u16,
    serials: AtomicU64,
}

#[derive(Default)]
struct CrlServer {
    behaviours: Mutex<HashMap<String, CrlBehaviour>>,
    hits: Mutex<HashMap<String, usize>>,
}

// === impl PartnerPki ===

impl PartnerPki {
    /// Makes the CA and starts its CRL server on a port of its own.
    pub async fn start() -> Self {
        let ca_params = ca_params("Woodgrove Partner Test CA");
        let key = KeyPair::generate().unwrap();
        let root = ca_params.self_signed(&key).unwrap();
        let issuer = Arc::new(Issuer::new(ca_params.clone(), key));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = Arc::new(CrlServer::default());
        let impostor = Arc::new(Issuer::new(ca_params.clone(), KeyPair::generate().unwrap()));
        tokio::spawn(serve(listener, server.clone(), issuer.clone(), impostor));
        Self {
            issuer,
            ca_params,
            root_pem: root.pem(),
            root_der: root.der().clone(),
            server,
            base_url: format!("http://127.0.0.1:{port}"),
            port,
            serials: AtomicU64::new(1000),
        }
    }

    /// Sets what `path` (e.g. `/good.crl`) serves; every unknown path serves a good CRL.
    pub fn serve(&self, path: &str, behaviour: CrlBehaviour) {
        self.server.behaviours.lock().unwrap().insert(path.to_owned(), behaviour);
    }

    /// How many requests the edge made for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.server.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// A leaf for `dns_name` (client and server auth) whose CRL is at `crl_url`;
    /// the chain sent is the leaf and the CA.
    pub fn issue_with_crl_url(&self, dns_name: &str, crl_url: &str) -> Issued {
        let serial = self.serials.fetch_add(1, Ordering::SeqCst);
        let key = KeyPair::generate().unwrap();
        let params = leaf_params(dns_name, serial, Some(crl_url));
        let leaf = params.signed_by(&key, &self.issuer).unwrap();
        issued(vec![leaf.der().clone(), self.root_der.clone()], &key, serial)
    }

    /// A leaf for `dns_name` whose CRL is `path` on this PKI's server.
    pub fn issue(&self, dns_name: &str, path: &str) -> Issued {
        self.issue_with_crl_url(dns_name, &format!("{}{path}", self.base_url))
    }

    /// A CA certificate with this CA's exact name but another key (a decoy issuer).
    pub fn decoy_ca(&self) -> CertificateDer<'static> {
        self.ca_params.self_signed(&KeyPair::generate().unwrap()).unwrap().der().clone()
    }
}

// === helpers ===

/// A chain from a CA nobody trusts: its leaf for `dns_name`, then the CA.
pub fn stranger(dns_name: &str) -> Issued {
    let params = ca_params("Untrusted Self-Signed CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = leaf_params(dns_name, 7, None).signed_by(&key, &issuer).unwrap();
    issued(vec![leaf.der().clone(), ca.der().clone()], &key, 7)
}

/// A self-signed leaf for `dns_name`.
pub fn self_signed(dns_name: &str) -> Issued {
    let key = KeyPair::generate().unwrap();
    let leaf = leaf_params(dns_name, 8, None).self_signed(&key).unwrap();
    issued(vec![leaf.der().clone()], &key, 8)
}

/// An unrelated end-entity certificate from a stranger's CA, optionally naming a CRL URL.
pub fn unrelated_leaf(dns_name: &str, crl_url: Option<&str>) -> CertificateDer<'static> {
    let params = ca_params("Unrelated CA");
    let issuer = Issuer::new(params, KeyPair::generate().unwrap());
    let key = KeyPair::generate().unwrap();
    leaf_params(dns_name, 9, crl_url).signed_by(&key, &issuer).unwrap().der().clone()
}

fn issued(chain: Vec<CertificateDer<'static>>, key: &KeyPair, serial: u64) -> Issued {
    let sha256 = ring::digest::digest(&ring::digest::SHA256, &chain[0]);
    Issued {
        sha256: sha256.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
        identity: Identity { chain, key: key.serialize_der() },
        serial: SerialNumber::from(serial).to_bytes(),
    }
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, common_name);
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + Duration::from_secs(365 * 86400);
    params
}

fn leaf_params(dns_name: &str, serial: u64, crl_url: Option<&str>) -> CertificateParams {
    let mut params = CertificateParams::new(vec![dns_name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, dns_name);
    params.serial_number = Some(SerialNumber::from(serial));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + Duration::from_secs(30 * 86400);
    if let Some(url) = crl_url {
        params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![url.to_owned()] }];
    }
    params
}

async fn serve(
    listener: TcpListener,
    server: Arc<CrlServer>,
    issuer: Arc<Issuer<'static, KeyPair>>,
    impostor: Arc<Issuer<'static, KeyPair>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        tokio::spawn(answer(stream, server.clone(), issuer.clone(), impostor.clone()));
    }
}

async fn answer(
    mut stream: TcpStream,
    server: Arc<CrlServer>,
    issuer: Arc<Issuer<'static, KeyPair>>,
    impostor: Arc<Issuer<'static, KeyPair>>,
) {
    let Some(path) = request_path(&mut stream).await else { return };
    *server.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let behaviour = server.behaviours.lock().unwrap().get(&path).cloned().unwrap_or(CrlBehaviour::Revoking(vec![]));
    match behaviour {
        CrlBehaviour::Revoking(serials) => respond(&mut stream, &crl(&issuer, &serials)).await,
        CrlBehaviour::WrongIssuer => respond(&mut stream, &crl(&impostor, &[])).await,
        CrlBehaviour::Status(code) => {
            let head =
                format!("HTTP/1.1 {code} Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
        }
        CrlBehaviour::Hang => {
            // Hold the connection open, silent, until the edge gives up (or the test ends).
            let mut sink = [0u8; 256];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        }
        CrlBehaviour::Endless { octets } => endless(&mut stream, octets).await,
    }
}

/// Reads the request head; returns the path of `GET /path HTTP/1.1`.
async fn request_path(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&head);
    let target = text.split_whitespace().nth(1)?;
    // Through a proxy the target is absolute; keep the path either way.
    let path = target.strip_prefix("http://").map_or(target, |rest| rest.find('/').map_or("/", |i| &rest[i..]));
    Some(path.to_owned())
}

async fn respond(stream: &mut TcpStream, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
}

async fn endless(stream: &mut TcpStream, octets: usize) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nConnection: close\r\n\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    // A DER SEQUENCE header claiming a long body, then filler.
    let chunk = vec![0x30u8; 64 * 1024];
    let mut sent = 0;
    while sent < octets {
        if stream.write_all(&chunk).await.is_err() {
            return;
        }
        sent += chunk.len();
    }
}

/// A CRL by `issuer` listing `serials`, valid for an hour.
fn crl(issuer: &Issuer<'static, KeyPair>, serials: &[Vec<u8>]) -> Vec<u8> {
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - Duration::from_secs(60),
        next_update: now + Duration::from_secs(3600),
        crl_number: SerialNumber::from(u64::try_from(now.unix_timestamp()).unwrap_or(1)),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from_slice(serial),
                revocation_time: now - Duration::from_secs(30),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(issuer).unwrap().der().to_vec()
}
