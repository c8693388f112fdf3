//! The client side of TLS: accept the server's certificate for recording (the
//! caller judges it for Domain Security), present the edge's SMTP certificate when
//! asked, and remember whether it was asked.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
    sign::CertifiedKey,
};

/// The client configuration: the server's certificate is accepted here (handshake
/// signatures still verified) and recorded; for opportunistic TLS (RFC 7435) that
/// is all, and for a Domain Security partner the delivery code checks the chain,
/// revocation and name before sending anything.
pub(super) fn client_config(
    client_certificate: Option<Arc<CertifiedKey>>,
    requested: Arc<AtomicBool>,
) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyServer(provider.clone()));
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable_versions())
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match client_certificate {
        Some(key) => builder.with_client_cert_resolver(Arc::new(ClientCertificate { key, requested })),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

fn unreachable_versions() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    // The ring provider supports the safe default versions; this cannot fail.
    rustls::ClientConfig::builder()
}

/// Presents the edge's SMTP certificate when the server asks, and remembers that it asked.
#[derive(Debug)]
struct ClientCertificate {
    key: Arc<CertifiedKey>,
    requested: Arc<AtomicBool>,
}

impl rustls::client::ResolvesClientCert for ClientCertificate {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.requested.store(true, Ordering::SeqCst);
        Some(self.key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Accepts every server certificate (opportunistic TLS), still checking the
/// handshake signatures so the session keys are bound to the presented key.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
