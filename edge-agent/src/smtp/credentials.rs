//! The TLS credentials the relay presents, reloaded when the certificate store
//! changes (a certificate task rewrites its directory, which moves its mtime).

use std::{
    collections::HashMap,
    fs,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use rustls::{
    pki_types::CertificateDer,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

use crate::certificates::{
    CertificateStore,
    smtp::{SmtpCertificate, choose},
};

/// SMTP certificates, cached until the store changes.
pub struct Credentials {
    store: CertificateStore,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    stamp: Option<(Option<SystemTime>, Option<SystemTime>)>,
    certificates: Vec<SmtpCertificate>,
    servers: HashMap<(String, bool), Arc<rustls::ServerConfig>>,
}

impl Credentials {
    /// Credentials from the edge's certificate store.
    pub fn new(store: CertificateStore) -> Self {
        Self { store, cache: Mutex::new(Cache::default()) }
    }

    /// The certificate Exchange would pick for `fqdn`, if any is enabled for SMTP.
    pub fn certificate_for(&self, fqdn: &str) -> Option<SmtpCertificate> {
        let cache = self.refreshed();
        choose(&cache.certificates, fqdn, SystemTime::now()).cloned()
    }

    /// A TLS server configuration presenting the certificate for `fqdn`. With
    /// `request_client_certificate` (a Domain Security connector) the handshake asks
    /// for a client certificate without requiring one, and accepts whatever comes:
    /// the SMTP layer judges it for the sender's domain (the paper's note: senders
    /// outside the secure list are not forced to present one). Returns the
    /// configuration and the certificate it presents (for the protocol log).
    pub fn server_config(
        &self,
        fqdn: &str,
        request_client_certificate: bool,
    ) -> Option<(Arc<rustls::ServerConfig>, CertificateDer<'static>)> {
        let mut cache = self.refreshed();
        let chosen = choose(&cache.certificates, fqdn, SystemTime::now())?.clone();
        let leaf = chosen.certified.cert.first()?.clone();
        let key = (chosen.thumbprint.clone(), request_client_certificate);
        if let Some(config) = cache.servers.get(&key) {
            return Some((config.clone(), leaf));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().ok()?;
        let builder = if request_client_certificate {
            builder.with_client_cert_verifier(Arc::new(RequestClientCertificate(provider)))
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_cert_resolver(Arc::new(Fixed(chosen.certified.clone())));
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        let config = Arc::new(config);
        cache.servers.insert(key, config.clone());
        Some((config, leaf))
    }

    fn refreshed(&self) -> std::sync::MutexGuard<'_, Cache> {
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let modified = |dir: &str| fs::metadata(self.store.root().join(dir)).and_then(|m| m.modified()).ok();
        let stamp = (modified("certificates"), modified("keys"));
        if cache.stamp != Some(stamp) {
            cache.certificates = self.store.smtp_certificates();
            cache.servers.clear();
            cache.stamp = Some(stamp);
        }
        cache
    }
}

/// Always presents one certificate.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Asks for a client certificate, does not require one, and accepts any chain
/// whose handshake signature verifies (possession of the key); chain, dates,
/// revocation and name are checked later for the sender's domain.
#[derive(Debug)]
struct RequestClientCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::server::danger::ClientCertVerifier for RequestClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
