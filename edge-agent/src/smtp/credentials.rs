//! The TLS credentials the relay presents, reloaded when the certificate store
//! changes (a certificate task rewrites its directory, which moves its mtime).

use std::{
    collections::HashMap,
    fs,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use rustls::{
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
    servers: HashMap<String, Arc<rustls::ServerConfig>>,
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

    /// A TLS server configuration presenting the certificate for `fqdn`.
    pub fn server_config(&self, fqdn: &str) -> Option<Arc<rustls::ServerConfig>> {
        let mut cache = self.refreshed();
        let chosen = choose(&cache.certificates, fqdn, SystemTime::now())?.clone();
        if let Some(config) = cache.servers.get(&chosen.thumbprint) {
            return Some(config.clone());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(chosen.certified.clone())));
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        let config = Arc::new(config);
        cache.servers.insert(chosen.thumbprint.clone(), config.clone());
        Some(config)
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
