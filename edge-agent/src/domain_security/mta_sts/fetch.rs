//! Fetching a policy file: `GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt` over
//! HTTP/1.1 with hyper on tokio-rustls, a WebPKI-valid certificate for that name
//! (RFC 8461 §3.3), status 200 only (no redirects), `text/plain`, at most
//! [`MAX_POLICY_SIZE`] bytes, the whole fetch within the configured time.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use http::{
    Request, StatusCode,
    header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT},
};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tracing::debug;

/// Downloads the policy text of `domain` from `addresses` (tried in turn) within `timeout`.
pub(super) async fn fetch_policy(
    domain: &str,
    addresses: &[SocketAddr],
    roots: &Arc<rustls::RootCertStore>,
    timeout: Duration,
) -> Result<String, String> {
    let host = format!("mta-sts.{domain}");
    let attempt = async {
        let mut last = format!("{host} has no address");
        for &address in addresses {
            match fetch_from(&host, address, roots).await {
                Ok(text) => return Ok(text),
                Err(reason) => {
                    debug!(%host, %address, %reason, "MTA-STS policy fetch failed");
                    last = format!("{host} [{address}]: {reason}");
                }
            }
        }
        Err(last)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("{host}: no policy within {}", humantime::format_duration(timeout))),
    }
}

async fn fetch_from(host: &str, address: SocketAddr, roots: &Arc<rustls::RootCertStore>) -> Result<String, String> {
    let server_name = ServerName::try_from(host.to_owned()).map_err(|_| format!("{host} is not a host name"))?;
    let config = client_config(roots.clone());
    let tcp = TcpStream::connect(address).await.map_err(|e| format!("connect: {e}"))?;
    let tls = TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS (the certificate must be valid for {host} under the WebPKI): {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| format!("HTTP: {e}"))?;
    let connection = tokio::spawn(async move {
        if let Err(error) = connection.await {
            debug!(%error, "MTA-STS policy connection ended");
        }
    });
    let result = request(&mut sender, host).await;
    connection.abort();
    result
}

async fn request(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    host: &str,
) -> Result<String, String> {
    let request = Request::get(POLICY_PATH)
        .header(HOST, host)
        .header(USER_AGENT, concat!("DomainSec-edge/", env!("CARGO_PKG_VERSION")))
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("HTTP: {e}"))?;
    let status = response.status();
    if status.is_redirection() {
        return Err(format!("HTTP status {status}: redirects are not followed (RFC 8461 §3.3)"));
    }
    if status != StatusCode::OK {
        return Err(format!("HTTP status {status}"));
    }
    let media_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("text/plain") {
        return Err(format!("Content-Type {media_type:?} is not text/plain"));
    }
    let declared = response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_POLICY_SIZE as u64) {
        return Err(too_large());
    }
    let body = Limited::new(response.into_body(), MAX_POLICY_SIZE).collect().await.map_err(|error| {
        if error.is::<LengthLimitError>() { too_large() } else { format!("reading the policy: {error}") }
    })?;
    String::from_utf8(body.to_bytes().to_vec()).map_err(|_| "the policy is not UTF-8".to_owned())
}

/// WebPKI verification (chain to `roots`, dates, name) with the ring provider.
fn client_config(roots: Arc<rustls::RootCertStore>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the safe default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The roots a WebPKI check trusts: Mozilla's (webpki-roots) and `extra` (DER).
pub fn webpki_roots(extra: &[CertificateDer<'static>]) -> rustls::RootCertStore {
    let mut store = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let (_added, ignored) = store.add_parsable_certificates(extra.iter().cloned());
    if ignored > 0 {
        tracing::warn!(ignored, "some extra WebPKI roots are not usable certificates");
    }
    store
}

fn too_large() -> String {
    format!("the policy is larger than {MAX_POLICY_SIZE} bytes")
}

const POLICY_PATH: &str = "/.well-known/mta-sts.txt";
/// A policy lists a few MX patterns; 64 KiB is far more than any needs (RFC 8461 §3.3
/// lets senders limit the size).
pub const MAX_POLICY_SIZE: usize = 64 * 1024;
