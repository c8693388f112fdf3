//! The MTA-STS policy host (RFC 8461 section 3.3): HTTPS/1.1 on `--mta-sts-listen`,
//! answering `GET /.well-known/mta-sts.txt` with the policy `dsctl publish mta-sts`
//! stored. Senders fetch it from `https://mta-sts.DOMAIN/` for each accepted domain,
//! so the certificate the operator gives must be valid for each of those names; any
//! Host header is answered, so one controller serves every domain.
//!
//! Bounded: a request head of at most 8 KiB (`431` past it), one request per
//! connection, 10 s for the whole connection (handshake, request, answer), at most
//! [`MAX_CONNECTIONS`] at once. Answers: `200` with the policy, `404` for any other
//! path, `405` for any other method, `503` while no policy is stored (or the
//! directory is unreachable).

use std::{path::Path, sync::Arc, time::Duration};

use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Bytes};
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer},
};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, info, warn};

use crate::db;

/// Why the policy host's TLS credentials cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// The certificate file holds no PEM CERTIFICATE block.
    #[error("{path}: no PEM CERTIFICATE block (give the certificate, then its chain)")]
    NoCertificate { path: String },
    /// The key file holds no PEM private key rustls can use.
    #[error("{path}: no PEM private key (PKCS#8 \"PRIVATE KEY\", SEC1 \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\")")]
    NoKey { path: String },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("the MTA-STS certificate and key cannot be used: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Loads the operator's certificate chain (PEM, leaf first) and key (PEM: PKCS#8,
/// SEC1 or PKCS#1) into a server config speaking HTTP/1.1.
pub fn server_config(certificate_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read =
        |path: &Path| std::fs::read(path).map_err(|source| TlsError::Read { path: path.display().to_string(), source });
    let certificate_pem = read(certificate_file)?;
    let key_pem = read(key_file)?;
    let chain: Vec<CertificateDer<'static>> = pem::parse_many(&certificate_pem)
        .unwrap_or_default()
        .into_iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(|block| CertificateDer::from(block.into_contents()))
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: certificate_file.display().to_string() });
    }
    let key = pem::parse_many(&key_pem)
        .unwrap_or_default()
        .into_iter()
        .find_map(|block| match block.tag() {
            "PRIVATE KEY" => Some(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(block.into_contents()))),
            "EC PRIVATE KEY" => Some(PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(block.into_contents()))),
            "RSA PRIVATE KEY" => Some(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(block.into_contents()))),
            _ => None,
        })
        .ok_or_else(|| TlsError::NoKey { path: key_file.display().to_string() })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the stored policy on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, tls: Arc<ServerConfig>, pool: PgPool, shutdown: CancellationToken) {
    let acceptor = TlsAcceptor::from(tls);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => return,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                debug!(%error, "accept failed");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, pool) = (acceptor.clone(), pool.clone());
        tokio::spawn(
            async move {
                let _permit = permit;
                match tokio::time::timeout(CONNECTION_TIMEOUT, connection(acceptor, stream, pool)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => debug!(%error, "connection ended"),
                    Err(_) => debug!("connection timed out"),
                }
            }
            .instrument(tracing::debug_span!("mta-sts", %peer)),
        );
    }
}

/// Logs where it serves; the caller spawns [`serve`].
pub fn announce(listener: &TcpListener) {
    if let Ok(address) = listener.local_addr() {
        info!(%address, "serving the MTA-STS policy over HTTPS");
    }
}

async fn connection(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    pool: PgPool,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let stream = acceptor.accept(stream).await?;
    let service = hyper::service::service_fn(move |request| answer(pool.clone(), request));
    hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .max_buf_size(MAX_HEAD_BYTES)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(CONNECTION_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await?;
    Ok(())
}

async fn answer(
    pool: PgPool,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::http::Error> {
    let (status, body) = if request.method() != Method::GET {
        (StatusCode::METHOD_NOT_ALLOWED, "only GET is served here\n".to_owned())
    } else if request.uri().path() != POLICY_PATH {
        (StatusCode::NOT_FOUND, format!("not found; the MTA-STS policy is at {POLICY_PATH}\n"))
    } else {
        match db::publication::mta_sts_policy(&pool).await {
            Ok(Some(policy)) => (StatusCode::OK, policy.text),
            Ok(None) => (StatusCode::SERVICE_UNAVAILABLE, "no MTA-STS policy is published yet\n".to_owned()),
            Err(error) => {
                warn!(%error, "cannot read the MTA-STS policy");
                (StatusCode::SERVICE_UNAVAILABLE, "the policy cannot be read now; retry later\n".to_owned())
            }
        }
    };
    debug!(status = status.as_u16(), "answered");
    let mut response = Response::builder().status(status).header("content-type", "text/plain");
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response = response.header("allow", "GET");
    }
    response.body(Full::new(Bytes::from(body)))
}

/// The one path served (RFC 8461 section 3.3).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";
/// Most connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// The whole connection's time, and the request head's.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head (hyper's smallest read buffer).
const MAX_HEAD_BYTES: usize = 8 * 1024;
