//! The edge's TLS client: its own certificate as client certificate, and a server
//! verifier that accepts only controller certificates whose SHA-256 it holds.

use std::{
    collections::HashSet,
    io,
    sync::{Arc, RwLock},
    time::Duration,
};

use domainsec_model::Fingerprint;
use hyper_util::rt::TokioIo;
use proto::edge::CONTROLLER_NAME;
use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::identity::EdgeIdentity;

/// The controller certificate hashes the edge trusts; updated by snapshots.
#[derive(Debug, Default)]
pub struct PinnedControllers {
    sha256: RwLock<HashSet<String>>,
}

impl PinnedControllers {
    /// A set holding `sha256`.
    pub fn new(sha256: impl IntoIterator<Item = String>) -> Self {
        Self { sha256: RwLock::new(sha256.into_iter().collect()) }
    }

    /// Replaces the set.
    pub fn replace(&self, sha256: impl IntoIterator<Item = String>) {
        if let Ok(mut set) = self.sha256.write() {
            *set = sha256.into_iter().collect();
        }
    }

    /// The set, sorted.
    pub fn list(&self) -> Vec<String> {
        let mut list: Vec<String> = self.sha256.read().map(|s| s.iter().cloned().collect()).unwrap_or_default();
        list.sort();
        list
    }

    fn contains(&self, sha256: &str) -> bool {
        self.sha256.read().is_ok_and(|set| set.contains(sha256))
    }
}

/// A gRPC channel to `address` over mutual TLS with direct trust.
/// `enrollment` sends the enrollment server name (used by `subscribe`).
pub async fn connect(
    address: &str,
    identity: &EdgeIdentity,
    pinned: Arc<PinnedControllers>,
    enrollment: bool,
) -> Result<Channel, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ConnectError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedVerifier { pinned, provider }))
        .with_client_auth_cert(vec![identity.certificate.clone()], identity.private_key())
        .map_err(ConnectError::Tls)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));
    let server_name =
        ServerName::try_from(if enrollment { proto::edge::ENROLLMENT_SERVER_NAME } else { CONTROLLER_NAME })
            .map_err(|e| ConnectError::Address(e.to_string()))?;
    let target = address.to_owned();
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| ConnectError::Address(format!("{address:?}: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let (connector, server_name, target) = (connector.clone(), server_name.clone(), target.clone());
            async move {
                let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TCP connect timed out"))??;
                tcp.set_nodelay(true)?;
                let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server_name, tcp))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
                Ok::<_, io::Error>(TokioIo::new(tls))
            }
        }))
        .await
        .map_err(|e| ConnectError::Transport(error_chain(&e)))
}

/// Why a controller could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Bad TLS setup (key, versions).
    #[error("TLS setup: {0}")]
    Tls(rustls::Error),
    /// An endpoint that is not host:port.
    #[error("controller address {0}")]
    Address(String),
    /// TCP or TLS failed, or the certificate is not pinned.
    #[error("{0}")]
    Transport(String),
}

/// The full chain of an error, for logs and messages.
/// True when `error`'s chain holds a TLS alert from the peer: how a controller
/// that does not accept our certificate answers under TLS 1.3 (the first call
/// fails, not the handshake).
pub fn is_alert(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        let tls = error
            .downcast_ref::<rustls::Error>()
            .or_else(|| error.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()?.downcast_ref()));
        if matches!(tls, Some(rustls::Error::AlertReceived(_))) {
            return true;
        }
        current = error.source();
    }
    false
}

pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[derive(Debug)]
struct PinnedVerifier {
    pinned: Arc<PinnedControllers>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let hex = Fingerprint::of(end_entity).into_string();
        if self.pinned.contains(&hex) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "controller certificate {hex} is not one this edge was given (direct trust)"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// SHA-256 (hex) of a PEM certificate.
pub fn pem_sha256(certificate_pem: &str) -> Option<String> {
    let parsed = pem::parse(certificate_pem).ok()?;
    Some(Fingerprint::of(parsed.contents()).into_string())
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const KEEPALIVE: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use std::io;

    use rustls::AlertDescription;

    use super::*;

    #[test]
    fn an_alert_anywhere_in_the_chain_is_found_by_type() {
        // tokio-rustls reports the peer's alert as an io::Error holding the rustls::Error.
        let alert = rustls::Error::AlertReceived(AlertDescription::CertificateUnknown);
        let status = tonic::Status::from_error(Box::new(io::Error::new(io::ErrorKind::InvalidData, alert)));
        assert!(is_alert(&status));
        let direct = tonic::Status::from_error(Box::new(rustls::Error::AlertReceived(AlertDescription::AccessDenied)));
        assert!(is_alert(&direct));
    }

    #[test]
    fn other_failures_mentioning_an_alert_in_text_are_not_alerts() {
        let text = tonic::Status::from_error(Box::new(io::Error::other("received fatal alert (in words only)")));
        assert!(!is_alert(&text));
        let other_tls = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert!(!is_alert(&tonic::Status::from_error(Box::new(other_tls))));
    }
}
