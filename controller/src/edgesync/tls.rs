//! TLS on the edge port, terminated here rather than by tonic so that both
//! verifiers can check direct trust.
//!
//! A ClientHello naming [`ENROLLMENT_SERVER_NAME`] gets the enrollment config: a
//! client certificate is required (the edge proves it holds the key it registers)
//! but need not be known yet. Every other connection gets the sync config, whose
//! verifier accepts only certificates of subscribed edges.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, UnixTime},
    server::{
        Acceptor,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{LazyConfigAcceptor, server::TlsStream};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{identity::ControllerIdentity, trust::TrustedEdges};
use domainsec_model::Fingerprint;

pub use proto::edge::ENROLLMENT_SERVER_NAME;

/// Who is on the other end of an edge-port connection; tonic puts it in each
/// request's extensions.
#[derive(Debug, Clone)]
pub struct EdgePeer {
    /// SHA-256 of the client certificate.
    pub sha256: Fingerprint,
    /// DER of the client certificate.
    pub certificate: CertificateDer<'static>,
    /// The TCP peer.
    pub remote: SocketAddr,
    /// True on an enrollment connection (certificate not yet trusted).
    pub enrollment: bool,
}

/// A finished TLS connection on the edge port.
pub struct EdgeConnection {
    stream: TlsStream<TcpStream>,
    peer: EdgePeer,
}

/// Builds the two server configs.
pub fn server_configs(
    identity: &ControllerIdentity,
    trusted: Arc<TrustedEdges>,
) -> Result<(Arc<ServerConfig>, Arc<ServerConfig>), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let build = |verifier: Arc<dyn ClientCertVerifier>| -> Result<Arc<ServerConfig>, rustls::Error> {
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![identity.certificate_der.clone()], identity.private_key())?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        // Edges keep one connection open; resumption tickets would only cost memory.
        config.send_tls13_tickets = 0;
        Ok(Arc::new(config))
    };
    let sync = build(Arc::new(DirectTrustVerifier { trusted: Some(trusted), provider: provider.clone() }))?;
    let enrollment = build(Arc::new(DirectTrustVerifier { trusted: None, provider: provider.clone() }))?;
    Ok((sync, enrollment))
}

/// Accepts TCP connections, completes TLS (each in its own task, with a timeout)
/// and hands finished connections to tonic through `sender`.
pub async fn accept_loop(
    listener: TcpListener,
    sync: Arc<ServerConfig>,
    enrollment: Arc<ServerConfig>,
    sender: mpsc::Sender<io::Result<EdgeConnection>>,
    shutdown: CancellationToken,
) {
    loop {
        let (tcp, remote) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    debug!(%error, "accept failed");
                    continue;
                }
            },
        };
        let (sync, enrollment, sender) = (sync.clone(), enrollment.clone(), sender.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(tcp, remote, sync, enrollment)).await {
                Ok(Ok(connection)) => {
                    let _ = sender.send(Ok(connection)).await;
                }
                Ok(Err(error)) => debug!(%remote, %error, "edge-port handshake refused"),
                Err(_) => debug!(%remote, "edge-port handshake timed out"),
            }
        });
    }
}

async fn handshake(
    tcp: TcpStream,
    remote: SocketAddr,
    sync: Arc<ServerConfig>,
    enrollment: Arc<ServerConfig>,
) -> io::Result<EdgeConnection> {
    let start = LazyConfigAcceptor::new(Acceptor::default(), tcp).await?;
    let enrolling = start.client_hello().server_name() == Some(ENROLLMENT_SERVER_NAME);
    let config = if enrolling { enrollment } else { sync };
    let stream = start.into_stream(config).await?;
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certificates| certificates.first())
        .cloned()
        .ok_or_else(|| io::Error::new(io::ErrorKind::PermissionDenied, "no client certificate"))?;
    Ok(EdgeConnection {
        peer: EdgePeer { sha256: Fingerprint::of(&certificate), certificate, remote, enrollment: enrolling },
        stream,
    })
}

/// Direct trust for client certificates: with `trusted`, only subscribed edges'
/// certificates; without (enrollment), any certificate whose key signs the handshake.
#[derive(Debug)]
struct DirectTrustVerifier {
    trusted: Option<Arc<TrustedEdges>>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for TrustedEdges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrustedEdges")
    }
}

impl ClientCertVerifier for DirectTrustVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let Some(trusted) = &self.trusted else {
            return Ok(ClientCertVerified::assertion());
        };
        if trusted.edge_for(Fingerprint::of(end_entity).as_str()).is_some() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
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

// === impl EdgeConnection ===

impl tonic::transport::server::Connected for EdgeConnection {
    type ConnectInfo = EdgePeer;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.peer.clone()
    }
}

impl AsyncRead for EdgeConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for EdgeConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
