//! One CRL download: HTTP/1.1 GET with hyper over a tokio `TcpStream`, straight to the
//! distribution point (origin-form request) or through the proxy (absolute-form), with a
//! deadline, a size limit and status 200 required; then DER or PEM decoding.

use std::{borrow::Cow, fmt, io, time::SystemTime};

use http::{
    Request, StatusCode, Uri,
    header::{CONNECTION, CONTENT_LENGTH, HOST, USER_AGENT},
};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, task::JoinHandle};
use tracing::debug;
use webpki::OwnedCertRevocationList;

use super::{CrlIssuer, ProxyAddress, RevocationSettings};

/// An `http://` distribution point, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CrlUrl {
    /// The URL as the certificate gives it.
    text: String,
    uri: Uri,
    /// Host without IPv6 brackets.
    host: String,
    port: u16,
}

/// A CRL as fetched and verified: ready for rustls-webpki, with its nextUpdate.
#[derive(Debug, Clone)]
pub(super) struct FetchedCrl {
    pub(super) crl: OwnedCertRevocationList,
    pub(super) next_update: SystemTime,
    /// The cache serves it until then: its nextUpdate, or sooner by `max_cache_age`.
    pub(super) keep_until: SystemTime,
}

/// Downloads and decodes the CRL at `url`; the error is the reason, for
/// [`RevocationError::Unavailable`](super::RevocationError::Unavailable).
pub(super) async fn fetch(
    url: &CrlUrl,
    settings: &RevocationSettings,
    proxy: Option<&ProxyAddress>,
    issuer: &CrlIssuer,
) -> Result<FetchedCrl, String> {
    let download = download(url, settings.max_crl_size, proxy);
    let body = match tokio::time::timeout(settings.fetch_timeout, download).await {
        Ok(body) => body?,
        Err(_) => {
            let within = humantime::format_duration(settings.fetch_timeout);
            return Err(format!("no answer within {within}{}", Via(proxy)));
        }
    };
    decode(&body, issuer)
}

/// Reads a CRL in DER, or PEM (`-----BEGIN X509 CRL-----`), and checks that
/// `issuer` issued and signed it before anything else believes it.
pub(super) fn decode(body: &[u8], issuer: &CrlIssuer) -> Result<FetchedCrl, String> {
    let der = unwrap_pem(body)?;
    let (_, parsed) = x509_parser::parse_x509_crl(&der).map_err(|error| format!("not a CRL: {error}"))?;
    issuer.verify(&parsed)?;
    // A CRL without nextUpdate would be cached for an hour, but rustls-webpki refuses
    // such CRLs, so it could never be used: say so instead.
    let next_update =
        parsed.next_update().ok_or("the CRL has no nextUpdate, which rustls-webpki requires".to_owned())?;
    let crl = OwnedCertRevocationList::from_der(&der)
        .map_err(|error| format!("the CRL is not usable by rustls-webpki: {error:?}"))?;
    let next_update = SystemTime::from(next_update.to_datetime());
    Ok(FetchedCrl { crl, next_update, keep_until: next_update })
}

// === impl CrlUrl ===

impl CrlUrl {
    /// Parses an `http://` URL; None for any other scheme or a malformed URL.
    pub(super) fn parse(text: &str) -> Option<Self> {
        let uri: Uri = text.parse().ok()?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return None;
        }
        let authority = uri.authority()?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        if host.is_empty() {
            return None;
        }
        let port = authority.port_u16().unwrap_or(80);
        Some(Self { text: text.to_owned(), uri, host, port })
    }

    /// The URL as the certificate gives it.
    pub(super) fn as_str(&self) -> &str {
        &self.text
    }

    /// The host, for the proxy bypass list.
    pub(super) fn host(&self) -> &str {
        &self.host
    }
}

impl fmt::Display for CrlUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

// === helpers ===

async fn download(url: &CrlUrl, max_size: usize, proxy: Option<&ProxyAddress>) -> Result<Bytes, String> {
    let via = Via(proxy);
    let (target, request_uri) = match proxy {
        Some(proxy) => ((proxy.host.as_str(), proxy.port), url.uri.clone()),
        None => ((url.host.as_str(), url.port), origin_form(&url.uri)),
    };
    let stream = TcpStream::connect(target).await.map_err(|error| format!("{}{via}", io_reason(&error)))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("HTTP handshake failed{via}: {error}"))?;
    let _connection = AbortOnDrop(tokio::spawn(async move {
        if let Err(error) = connection.await {
            debug!(%error, "CRL download connection ended");
        }
    }));
    let authority = url.uri.authority().map_or(url.host.as_str(), |authority| authority.as_str());
    let request = Request::get(request_uri)
        .header(HOST, authority)
        .header(USER_AGENT, concat!("DomainSec-edge/", env!("CARGO_PKG_VERSION")))
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|error| format!("cannot build the request: {error}"))?;
    let response = sender.send_request(request).await.map_err(|error| format!("HTTP request failed{via}: {error}"))?;
    if response.status() != StatusCode::OK {
        return Err(format!("HTTP status {}{via}", response.status()));
    }
    let declared = response.headers().get(CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_size as u64) {
        return Err(too_large(max_size));
    }
    let collected = Limited::new(response.into_body(), max_size).collect().await.map_err(|error| {
        if error.is::<LengthLimitError>() {
            too_large(max_size)
        } else {
            format!("reading the CRL failed{via}: {error}")
        }
    })?;
    Ok(collected.to_bytes())
}

/// The path and query of `uri` (`/` when empty), for a request straight to the origin.
fn origin_form(uri: &Uri) -> Uri {
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let path = if path.starts_with('/') { Cow::Borrowed(path) } else { Cow::Owned(format!("/{path}")) };
    Uri::try_from(path.as_ref()).unwrap_or_else(|_| Uri::from_static("/"))
}

fn unwrap_pem(body: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    let trimmed = body.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN") {
        return Ok(Cow::Borrowed(body));
    }
    let block = pem::parse(trimmed).map_err(|error| format!("not a PEM CRL: {error}"))?;
    if block.tag() != PEM_TAG {
        return Err(format!("the PEM block is {}, not {PEM_TAG}", block.tag()));
    }
    Ok(Cow::Owned(block.into_contents()))
}

fn io_reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        io::ErrorKind::TimedOut => "connection timed out".to_owned(),
        _ => format!("cannot connect: {error}"),
    }
}

fn too_large(max_size: usize) -> String {
    format!("the CRL is larger than the {max_size}-byte limit")
}

/// " (through proxy http://p:3128)" when a proxy is used.
struct Via<'a>(Option<&'a ProxyAddress>);

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(proxy) => write!(f, " (through proxy {proxy})"),
            None => Ok(()),
        }
    }
}

/// Ends the connection task with the download, whatever way it ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

const PEM_TAG: &str = "X509 CRL";
