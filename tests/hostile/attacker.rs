//! The attacker's SMTP client: a scripted session over plain TCP or, after
//! STARTTLS, over TLS (tokio-rustls) with or without a client certificate. It
//! asserts nothing by itself; every reply is returned, and the transcript goes
//! into each failure so a report shows exactly what was said.

use std::{fmt, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, Result, bail, ensure};
use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName, UnixTime},
};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader},
    net::TcpStream,
};

use crate::fixture::{FQDN, MALLORY, POSTMASTER};

/// A certificate chain (leaf first, as sent) and the leaf's PKCS#8 key.
#[derive(Clone)]
pub struct Identity {
    /// Sent as is in the TLS Certificate message.
    pub chain: Vec<CertificateDer<'static>>,
    /// PKCS#8 DER.
    pub key: Vec<u8>,
}

/// One SMTP reply (all its lines).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// Every line, CRLFs included.
    pub text: String,
}

/// A session with the edge.
pub struct Session {
    stream: BufReader<Box<dyn Io>>,
    transcript: String,
}

/// Anything a session can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

// === impl Reply ===

impl Reply {
    /// The enhanced status code of the first line (`5.7.10`), or "".
    pub fn status(&self) -> &str {
        self.text.get(4..).and_then(|rest| rest.split_whitespace().next()).filter(|s| s.contains('.')).unwrap_or("")
    }

    /// True when the code and the enhanced status are these.
    pub fn is(&self, code: u16, status: &str) -> bool {
        self.code == code && self.status() == status
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text.trim_end())
    }
}

// === impl Session ===

impl Session {
    /// Connects and reads the `220` greeting.
    pub async fn connect(address: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(address).await.with_context(|| format!("connect to {address}"))?;
        stream.set_nodelay(true)?;
        let mut session = Self { stream: BufReader::new(Box::new(stream)), transcript: String::new() };
        let greeting = session.reply().await?;
        ensure!(greeting.code == 220, "greeting: {greeting}");
        Ok(session)
    }

    /// Connects and says `EHLO attacker.example`.
    pub async fn plain(address: SocketAddr) -> Result<Self> {
        let mut session = Self::connect(address).await?;
        session.expect("EHLO attacker.example", 250).await?;
        Ok(session)
    }

    /// Connects, upgrades with STARTTLS (presenting `identity` if given) and says EHLO again.
    pub async fn tls(address: SocketAddr, identity: Option<&Identity>) -> Result<Self> {
        let session = Self::plain(address).await?;
        let mut session = session.start_tls(identity).await?;
        session.expect("EHLO attacker.example", 250).await?;
        Ok(session)
    }

    /// Sends `STARTTLS`, expects `220` and runs the TLS handshake.
    pub async fn start_tls(mut self, identity: Option<&Identity>) -> Result<Self> {
        self.expect("STARTTLS", 220).await?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(identity)?));
        let name = ServerName::try_from(FQDN)?.to_owned();
        let transcript = format!("{}-- TLS handshake ({})\n", self.transcript, describe(identity));
        let stream = connector.connect(name, self.stream.into_inner()).await.context("TLS handshake")?;
        Ok(Self { stream: BufReader::new(Box::new(stream)), transcript })
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, line: &str) -> Result<Reply> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// Sends one command line and fails unless the reply has `code`.
    pub async fn expect(&mut self, line: &str, code: u16) -> Result<Reply> {
        let reply = self.command(line).await?;
        ensure!(reply.code == code, "{line:?} answered {reply}, expected {code}\n{}", self.transcript);
        Ok(reply)
    }

    /// Writes raw bytes (shown abridged in the transcript).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.transcript.push_str(&format!("C: {}\n", abridged(bytes)));
        self.stream.get_mut().write_all(bytes).await.context("write")?;
        self.stream.get_mut().flush().await.context("flush")
    }

    /// Reads one (multi-line) reply; an error when the edge closed the connection.
    pub async fn reply(&mut self) -> Result<Reply> {
        match self.reply_within(REPLY_DEADLINE).await? {
            Some(reply) => Ok(reply),
            None => bail!("the edge closed the connection\n{}", self.transcript),
        }
    }

    /// Reads one reply within `deadline`; `None` when the connection was closed.
    pub async fn reply_within(&mut self, deadline: Duration) -> Result<Option<Reply>> {
        let mut text = String::new();
        loop {
            let mut line = Vec::new();
            let read = tokio::time::timeout(deadline, self.stream.read_until(b'\n', &mut line))
                .await
                .with_context(|| format!("no reply within {deadline:?}\n{}", self.transcript))?;
            // A reset counts as a closure: the edge may close with our input unread.
            let read = read.unwrap_or(0);
            if read == 0 {
                self.transcript.push_str("S: (closed)\n");
                return Ok(None);
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            self.transcript.push_str(&format!("S: {}\n", line.trim_end()));
            text.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                let code = text.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                return Ok(Some(Reply { code, text }));
            }
        }
    }

    /// `DATA`, then `message` and the terminator; returns the reply to the message
    /// (or the refusal of `DATA` itself). `message` must not hold a lone `.` line.
    pub async fn data(&mut self, message: &[u8]) -> Result<Reply> {
        let go_ahead = self.command("DATA").await?;
        if go_ahead.code != 354 {
            return Ok(go_ahead);
        }
        let mut wire = message.to_vec();
        if !wire.ends_with(b"\r\n") {
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        self.write(&wire).await?;
        self.reply().await
    }

    /// The message in `chunks` with `BDAT` (the last with `LAST`); every chunk
    /// before the last must get `250`. Returns the reply to the last chunk.
    pub async fn bdat(&mut self, chunks: &[&[u8]]) -> Result<Reply> {
        let Some((last, first)) = chunks.split_last() else { bail!("no chunks") };
        for chunk in first {
            let mut wire = format!("BDAT {}\r\n", chunk.len()).into_bytes();
            wire.extend_from_slice(chunk);
            self.write(&wire).await?;
            let reply = self.reply().await?;
            ensure!(reply.code == 250, "BDAT chunk answered {reply}\n{}", self.transcript);
        }
        let mut wire = format!("BDAT {} LAST\r\n", last.len()).into_bytes();
        wire.extend_from_slice(last);
        self.write(&wire).await?;
        self.reply().await
    }

    /// `MAIL FROM`, `RCPT TO` (both must get 250), then the message with DATA.
    pub async fn send_with_data(&mut self, from: &str, to: &str, message: &[u8]) -> Result<Reply> {
        self.envelope(from, to).await?;
        self.data(message).await
    }

    /// `MAIL FROM` and `RCPT TO`, both of which must get 250.
    pub async fn envelope(&mut self, from: &str, to: &str) -> Result<()> {
        self.expect(&format!("MAIL FROM:<{from}>"), 250).await?;
        self.expect(&format!("RCPT TO:<{to}>"), 250).await?;
        Ok(())
    }

    /// Asks for `QUIT` (ignoring how the edge answers).
    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }

    /// What was said so far.
    pub fn transcript(&self) -> &str {
        &self.transcript
    }
}

/// A message from Mallory: `shape` with `{HEAD}` filled in (Message-ID, Subject,
/// From, To, all naming `tag`), then (with `body`) an empty line and a body.
pub fn message(shape: &str, tag: &str, body: bool) -> Vec<u8> {
    let head = format!(
        "Message-ID: <{tag}@attacker.example>\r\nSubject: hostile {tag}\r\n\
         From: <{MALLORY}>\r\nTo: <{POSTMASTER}>\r\n"
    );
    let mut text = shape.replace("{HEAD}", &head);
    if body {
        text.push_str(&format!("\r\nThis is {tag}.\r\n"));
    }
    text.into_bytes()
}

// === helpers ===

/// A client configuration that takes any server certificate (the attacker does not
/// care who the edge is) and presents `identity` when asked.
fn client_config(identity: Option<&Identity>) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)));
    Ok(match identity {
        Some(identity) => builder
            .with_client_auth_cert(identity.chain.clone(), PrivatePkcs8KeyDer::from(identity.key.clone()).into())?,
        None => builder.with_no_client_auth(),
    })
}

fn describe(identity: Option<&Identity>) -> String {
    match identity {
        Some(identity) => format!("client certificate chain of {}", identity.chain.len()),
        None => "no client certificate".to_owned(),
    }
}

fn abridged(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches("\r\n");
    if text.len() <= 300 {
        return text.replace('\r', "\\r").replace('\n', "\\n");
    }
    let head: String = text.chars().take(120).collect();
    format!("{}… ({} octets)", head.replace('\r', "\\r").replace('\n', "\\n"), bytes.len())
}

/// Accepts every server certificate; still checks the handshake signatures.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

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

/// How long one reply may take (a CRL fetch that hangs is bounded well below this).
const REPLY_DEADLINE: Duration = Duration::from_secs(20);
