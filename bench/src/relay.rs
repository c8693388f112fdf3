//! Relay benchmark: a load generator and a counting SMTP sink that measure an SMTP relay
//! end to end on loopback: `run` (submits) → relay under test → the sink inside `run`.
//!
//! - `relay-bench sink --listen ADDR [--starttls]`: an ESMTP server that accepts every
//!   message, stores none and counts them, until Ctrl-C.
//! - `relay-bench run --target ADDR --sink-listen ADDR2 ...`: starts the same sink
//!   in-process, submits N messages over C reused connections and waits until the sink
//!   has seen every message the relay accepted. Every message carries `X-Bench-Id` and
//!   `X-Bench-Sent` (unix nanos, stamped just before MAIL FROM); the sink reads headers
//!   only until `X-Bench-Sent` and streams the rest, so end-to-end latency is arrival at
//!   the sink − sent, on one clock. Without `--sink-listen` only submission is measured:
//!   with a `sink` as the target, that is the tool's own ceiling.
//!
//! # Layout
//! - `main`, [`Cli`]: the two sub-commands and their flags.
//! - `smtp`: line and reply I/O used by both sides, [`smtp::Mailbox`].
//! - `sink`: the counting server, [`sink::Arrivals`].
//! - `load`: the submitting workers, the warm-up and measured phases.
//! - `report`: percentiles, the table and the JSON object.
//!
//! A bench binary lives in one file (`bench/src/*.rs`); the modules above are inline.

use std::{net::SocketAddr, time::Duration};

use clap::{Parser, Subcommand};

use smtp::Mailbox;

#[derive(Debug, Parser)]
#[command(name = "relay-bench", about = "Load generator and counting sink for measuring an SMTP relay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Accept every message, store none, count them (until Ctrl-C).
    Sink(SinkArgs),
    /// Submit messages to a relay whose next hop is an in-process sink; report throughput and latency.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct SinkArgs {
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// Offer STARTTLS, with a self-signed certificate made at start.
    #[arg(long)]
    starttls: bool,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The relay under test.
    #[arg(long)]
    target: SocketAddr,
    /// Where the in-process sink listens: the relay's next hop. Without it only submission
    /// is measured (use this with a `sink` as the target to see the tool's own ceiling).
    #[arg(long)]
    sink_listen: Option<SocketAddr>,
    /// Use STARTTLS towards the target (any certificate is accepted) and offer it at the sink.
    #[arg(long)]
    starttls: bool,
    /// Messages to measure.
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// Message size in bytes, headers included.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Envelope and header sender.
    #[arg(long, default_value = "bench@example.org")]
    sender: Mailbox,
    /// Envelope and header recipient.
    #[arg(long, default_value = "user@example.net")]
    recipient: Mailbox,
    /// Messages sent (and waited for) before the measured ones, not counted.
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Deadline of each phase (warm-up, measured), e.g. `300s` or `5m`.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Sink(args) => sink::serve_until_interrupted(args).await,
        Command::Run(args) => load::run(args).await,
    }
}

/// Wall-clock time as unix nanoseconds: the one clock both the sender and the sink stamp with.
fn unix_nanos() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

/// TLS configurations: ring only, as everywhere in the workspace.
mod tls {
    use std::sync::Arc;

    use anyhow::Context;
    use rustls::{
        ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme,
        client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime},
    };
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    /// The sink's server side: a fresh self-signed certificate for every start.
    pub fn acceptor() -> anyhow::Result<TlsAcceptor> {
        let certified =
            rcgen::generate_simple_self_signed(vec![SINK_NAME.to_owned()]).context("make sink certificate")?;
        let chain = vec![certified.cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("sink TLS config")?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// The load generator's client side: the bench measures throughput, not trust, so any
    /// certificate is accepted (handshake signatures are still checked).
    pub fn connector() -> anyhow::Result<TlsConnector> {
        let provider = provider();
        let verifier = AnyCertificate { algorithms: provider.signature_verification_algorithms };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(TlsConnector::from(Arc::new(config)))
    }

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    #[derive(Debug)]
    struct AnyCertificate {
        algorithms: WebPkiSupportedAlgorithms,
    }

    // === impl AnyCertificate ===

    impl ServerCertVerifier for AnyCertificate {
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
            certificate: &CertificateDer<'_>,
            signature: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            certificate: &CertificateDer<'_>,
            signature: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    }

    /// Host name in the sink's certificate and greeting.
    pub const SINK_NAME: &str = "sink.bench.invalid";
}

/// SMTP line and reply I/O shared by the sink and the load generator.
mod smtp {
    use std::{fmt, str::FromStr};

    use anyhow::{Context, bail};
    use tokio::io::{self, AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

    /// A mailbox for MAIL FROM / RCPT TO and the headers: `local@domain`.
    #[derive(Debug, Clone)]
    pub struct Mailbox(String);

    /// One SMTP reply; `text` holds every line of a multi-line reply, newline-separated.
    #[derive(Debug)]
    pub struct Reply {
        pub code: u16,
        pub text: String,
    }

    /// Reads one line (up to [`MAX_LINE`] bytes) into `line`, CRLF included; 0 at end of stream.
    pub async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, line: &mut Vec<u8>) -> io::Result<usize> {
        line.clear();
        (&mut *reader).take(MAX_LINE).read_until(b'\n', line).await
    }

    /// Reads a whole (possibly multi-line) reply.
    pub async fn read_reply<R: AsyncBufRead + Unpin>(reader: &mut R, line: &mut Vec<u8>) -> anyhow::Result<Reply> {
        let mut text = String::new();
        loop {
            if read_line(reader, line).await? == 0 {
                bail!("connection closed by the server");
            }
            let code = line
                .get(..3)
                .and_then(|digits| std::str::from_utf8(digits).ok())
                .and_then(|digits| digits.parse::<u16>().ok())
                .with_context(|| format!("malformed reply {:?}", String::from_utf8_lossy(line)))?;
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(String::from_utf8_lossy(line).trim_end());
            if line.get(3) != Some(&b'-') {
                return Ok(Reply { code, text });
            }
        }
    }

    // === impl Mailbox ===

    impl FromStr for Mailbox {
        type Err = String;

        fn from_str(s: &str) -> Result<Self, String> {
            let Some((local, domain)) = s.split_once('@') else {
                return Err(format!("{s:?} is not local@domain"));
            };
            let forbidden = |b: u8| b.is_ascii_whitespace() || b.is_ascii_control() || b"<>".contains(&b);
            if local.is_empty() || domain.is_empty() || s.bytes().any(forbidden) {
                return Err(format!("{s:?} is not a plain local@domain mailbox"));
            }
            Ok(Self(s.to_owned()))
        }
    }

    impl fmt::Display for Mailbox {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    // === impl Reply ===

    impl Reply {
        /// 2xx.
        pub fn is_positive(&self) -> bool {
            (200..300).contains(&self.code)
        }

        /// 421: the server is closing the connection.
        pub fn is_closing(&self) -> bool {
            self.code == 421
        }
    }

    /// Longest line read in one piece; a longer one arrives in pieces (no bench peer sends one).
    const MAX_LINE: u64 = 64 * 1024;
}

/// The counting sink: accepts every message, keeps none, notes when each bench message arrived.
mod sink {
    use std::{
        net::SocketAddr,
        sync::{
            Arc, Mutex,
            atomic::{AtomicU64, Ordering},
        },
        time::Duration,
    };

    use anyhow::Context;
    use tokio::{
        io::{self, AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
        net::{TcpListener, TcpStream},
    };
    use tokio_rustls::TlsAcceptor;

    use crate::{SinkArgs, smtp::read_line, tls, unix_nanos};

    /// What the sink has received; shared by its connections and read by `run`.
    pub struct Arrivals {
        /// Per tracked bench id: end-to-end latency in ns, plus one; 0 until the id arrives.
        latency: Vec<AtomicU64>,
        /// Messages accepted (250 after DATA): tracked or not, duplicates included.
        pub messages: AtomicU64,
        /// Messages whose bench id had arrived before.
        pub duplicates: AtomicU64,
        /// Messages without bench headers or with an id this run did not send (e.g. bounces).
        pub untracked: AtomicU64,
        /// Unix nanos of the latest arrival.
        pub last_arrival: AtomicU64,
        /// Connections that ended in an I/O or TLS error (peer resets included).
        pub connection_errors: AtomicU64,
        /// The first few of those errors.
        pub first_errors: Mutex<Vec<String>>,
    }

    /// Runs a standalone sink until Ctrl-C, printing the count once a second while it changes.
    pub async fn serve_until_interrupted(args: SinkArgs) -> anyhow::Result<()> {
        let arrivals = start(args.listen, args.starttls, 0).await?;
        eprintln!("sink listening on {} (STARTTLS {})", args.listen, if args.starttls { "offered" } else { "off" });
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        let mut last = 0;
        loop {
            tokio::select! {
                interrupted = tokio::signal::ctrl_c() => {
                    interrupted.context("wait for Ctrl-C")?;
                    break;
                }
                _ = ticker.tick() => {
                    let now = arrivals.messages.load(Ordering::Relaxed);
                    if now != last {
                        eprintln!("{now} messages (+{}/s)", now - last);
                        last = now;
                    }
                }
            }
        }
        println!(
            "{} messages, {} connection errors",
            arrivals.messages.load(Ordering::Relaxed),
            arrivals.connection_errors.load(Ordering::Relaxed)
        );
        Ok(())
    }

    /// Binds `listen` and serves in the background; bench ids `0..tracked` are tracked.
    pub async fn start(listen: SocketAddr, starttls: bool, tracked: u64) -> anyhow::Result<Arc<Arrivals>> {
        let listener = TcpListener::bind(listen).await.with_context(|| format!("bind sink to {listen}"))?;
        let tls = if starttls { Some(tls::acceptor()?) } else { None };
        let arrivals = Arc::new(Arrivals::new(tracked)?);
        tokio::spawn(accept(listener, Arc::new(Sink { arrivals: arrivals.clone(), tls })));
        Ok(arrivals)
    }

    struct Sink {
        arrivals: Arc<Arrivals>,
        tls: Option<TlsAcceptor>,
    }

    /// How a plain-text session ended.
    enum Ending {
        /// QUIT or the peer closed.
        Closed,
        /// STARTTLS was accepted: the handshake comes next.
        StartTls,
    }

    /// Where a session is in the current mail transaction.
    #[derive(Clone, Copy, PartialEq)]
    enum Transaction {
        Idle,
        Mail,
        Recipients,
    }

    /// The bench headers found in a message.
    #[derive(Default)]
    struct Tag {
        id: Option<u64>,
        sent: Option<u64>,
    }

    // === impl Arrivals ===

    impl Arrivals {
        fn new(tracked: u64) -> anyhow::Result<Self> {
            let tracked = usize::try_from(tracked).context("too many messages for this platform")?;
            Ok(Self {
                latency: (0..tracked).map(|_| AtomicU64::new(0)).collect(),
                messages: AtomicU64::new(0),
                duplicates: AtomicU64::new(0),
                untracked: AtomicU64::new(0),
                last_arrival: AtomicU64::new(0),
                connection_errors: AtomicU64::new(0),
                first_errors: Mutex::new(Vec::new()),
            })
        }

        /// End-to-end latency of bench id `id` in ns, once it has arrived.
        pub fn latency(&self, id: u64) -> Option<u64> {
            let slot = self.latency.get(usize::try_from(id).ok()?)?;
            slot.load(Ordering::Acquire).checked_sub(1)
        }

        fn record(&self, tag: &Tag) {
            let now = unix_nanos();
            self.messages.fetch_add(1, Ordering::Relaxed);
            self.last_arrival.fetch_max(now, Ordering::Relaxed);
            let slot = tag.id.and_then(|id| usize::try_from(id).ok()).and_then(|id| self.latency.get(id));
            let (Some(slot), Some(sent)) = (slot, tag.sent) else {
                self.untracked.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let latency = now.saturating_sub(sent).saturating_add(1);
            // Release: whoever sees the slot set also sees `last_arrival` updated.
            if slot.compare_exchange(0, latency, Ordering::Release, Ordering::Relaxed).is_err() {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }

        fn connection_failed(&self, error: &anyhow::Error) {
            self.connection_errors.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.first_errors.lock()
                && first.len() < 5
            {
                first.push(format!("{error:#}"));
            }
        }
    }

    async fn accept(listener: TcpListener, sink: Arc<Sink>) {
        loop {
            match listener.accept().await {
                Ok((tcp, _peer)) => {
                    let sink = sink.clone();
                    tokio::spawn(async move {
                        if let Err(error) = connection(tcp, &sink).await {
                            sink.arrivals.connection_failed(&error);
                        }
                    });
                }
                Err(error) => {
                    // Out of descriptors, most likely: the listener lives on.
                    eprintln!("sink accept: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    async fn connection(tcp: TcpStream, sink: &Sink) -> anyhow::Result<()> {
        tcp.set_nodelay(true)?;
        let mut stream = BufReader::new(tcp);
        stream.write_all(GREETING).await?;
        let ending = session(&mut stream, &sink.arrivals, sink.tls.is_some()).await?;
        let (Ending::StartTls, Some(acceptor)) = (ending, &sink.tls) else {
            return Ok(());
        };
        let tls = acceptor.accept(stream.into_inner()).await.context("TLS handshake")?;
        session(&mut BufReader::new(tls), &sink.arrivals, false).await?;
        Ok(())
    }

    /// Serves commands until QUIT, the peer closes, or STARTTLS. Replies are batched and
    /// written once the client's pipelined commands are all read.
    async fn session<S>(stream: &mut BufReader<S>, arrivals: &Arrivals, offer_tls: bool) -> anyhow::Result<Ending>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut line = Vec::with_capacity(1024);
        let mut replies = Vec::with_capacity(1024);
        let mut transaction = Transaction::Idle;
        loop {
            if stream.buffer().is_empty() && !replies.is_empty() {
                send(stream, &mut replies).await?;
            }
            if read_line(stream, &mut line).await? == 0 {
                return Ok(Ending::Closed);
            }
            let verb = line.get(..4).map(<[u8]>::to_ascii_uppercase).unwrap_or_default();
            match verb.as_slice() {
                b"EHLO" => {
                    transaction = Transaction::Idle;
                    replies.extend_from_slice(if offer_tls { EHLO_WITH_TLS } else { EHLO });
                }
                b"HELO" => {
                    transaction = Transaction::Idle;
                    replies.extend_from_slice(b"250 sink.bench.invalid\r\n");
                }
                b"MAIL" if transaction == Transaction::Idle => {
                    transaction = Transaction::Mail;
                    replies.extend_from_slice(OK);
                }
                b"RCPT" if transaction != Transaction::Idle => {
                    transaction = Transaction::Recipients;
                    replies.extend_from_slice(OK);
                }
                b"DATA" if transaction == Transaction::Recipients => {
                    transaction = Transaction::Idle;
                    replies.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                    send(stream, &mut replies).await?;
                    let tag = receive_message(stream, &mut line).await?;
                    arrivals.record(&tag);
                    replies.extend_from_slice(b"250 2.0.0 Ok: discarded\r\n");
                }
                b"MAIL" | b"RCPT" | b"DATA" => replies.extend_from_slice(b"503 5.5.1 Bad sequence of commands\r\n"),
                b"RSET" => {
                    transaction = Transaction::Idle;
                    replies.extend_from_slice(OK);
                }
                b"NOOP" => replies.extend_from_slice(OK),
                b"QUIT" => {
                    replies.extend_from_slice(b"221 2.0.0 Bye\r\n");
                    send(stream, &mut replies).await?;
                    return Ok(Ending::Closed);
                }
                b"STAR" if offer_tls && line.to_ascii_uppercase().starts_with(b"STARTTLS") => {
                    replies.extend_from_slice(b"220 2.0.0 Ready to start TLS\r\n");
                    send(stream, &mut replies).await?;
                    // Anything pipelined after STARTTLS would be a plaintext injection: refuse.
                    anyhow::ensure!(stream.buffer().is_empty(), "commands pipelined after STARTTLS");
                    return Ok(Ending::StartTls);
                }
                _ => replies.extend_from_slice(b"502 5.5.2 Command not implemented\r\n"),
            }
        }
    }

    async fn send<W: AsyncWrite + Unpin>(stream: &mut W, replies: &mut Vec<u8>) -> io::Result<()> {
        stream.write_all(replies).await?;
        stream.flush().await?;
        replies.clear();
        Ok(())
    }

    /// Reads one message up to the lone dot: header lines until `X-Bench-Sent` (or the end
    /// of the header), then the rest without copying it anywhere.
    async fn receive_message<R: AsyncBufRead + Unpin>(stream: &mut R, line: &mut Vec<u8>) -> anyhow::Result<Tag> {
        let mut tag = Tag::default();
        loop {
            anyhow::ensure!(read_line(stream, line).await? > 0, "connection closed in DATA");
            if line.as_slice() == b".\r\n" {
                return Ok(tag);
            }
            if line.as_slice() == b"\r\n" {
                break;
            }
            if let Some(id) = header_value(line, b"x-bench-id:") {
                tag.id = Some(id);
            } else if let Some(sent) = header_value(line, b"x-bench-sent:") {
                tag.sent = Some(sent);
                break;
            }
        }
        skip_to_end_of_data(stream).await?;
        Ok(tag)
    }

    /// The number after `name` (lower case, colon included) if `line` is that header.
    fn header_value(line: &[u8], name: &[u8]) -> Option<u64> {
        let value =
            line.get(..name.len()).filter(|start| start.eq_ignore_ascii_case(name)).map(|_| &line[name.len()..])?;
        std::str::from_utf8(value).ok()?.trim().parse().ok()
    }

    /// Consumes the stream up to and including a line holding only ".", starting at the
    /// beginning of a line; scans the read buffer in place.
    async fn skip_to_end_of_data<R: AsyncBufRead + Unpin>(stream: &mut R) -> anyhow::Result<()> {
        // Bytes of ".\r\n" the current line has matched from its start; None: it cannot match.
        let mut matched = Some(0);
        loop {
            let buffer = stream.fill_buf().await?;
            anyhow::ensure!(!buffer.is_empty(), "connection closed in DATA");
            let mut at = 0;
            while at < buffer.len() {
                let Some(count) = matched else {
                    match buffer[at..].iter().position(|&b| b == b'\n') {
                        Some(newline) => {
                            at += newline + 1;
                            matched = Some(0);
                        }
                        None => at = buffer.len(),
                    }
                    continue;
                };
                let byte = buffer[at];
                at += 1;
                matched = match (count, byte) {
                    (2, b'\n') => {
                        stream.consume(at);
                        return Ok(());
                    }
                    (0, b'.') | (1, b'\r') => Some(count + 1),
                    (_, b'\n') => Some(0),
                    _ => None,
                };
            }
            let consumed = buffer.len();
            stream.consume(consumed);
        }
    }

    const GREETING: &[u8] = b"220 sink.bench.invalid ESMTP relay-bench\r\n";
    const EHLO: &[u8] = b"250-sink.bench.invalid\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n";
    const EHLO_WITH_TLS: &[u8] =
        b"250-sink.bench.invalid\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 104857600\r\n250 STARTTLS\r\n";
    const OK: &[u8] = b"250 2.0.0 Ok\r\n";

    #[cfg(test)]
    mod tests {
        use super::*;

        async fn skip(input: &[u8]) -> (anyhow::Result<()>, Vec<u8>) {
            let mut reader = BufReader::with_capacity(3, input);
            let result = skip_to_end_of_data(&mut reader).await;
            let mut rest = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut rest).await;
            (result, rest)
        }

        #[tokio::test]
        async fn skips_to_the_lone_dot_across_small_reads() {
            let (result, rest) = skip(b"body\r\n..stuffed\r\n.x\r\n\r\n.\r\nQUIT\r\n").await;
            assert!(result.is_ok());
            assert_eq!(rest, b"QUIT\r\n");
        }

        #[tokio::test]
        async fn a_lone_dot_right_after_the_header_ends_the_message() {
            let (result, rest) = skip(b".\r\nRSET\r\n").await;
            assert!(result.is_ok());
            assert_eq!(rest, b"RSET\r\n");
        }

        #[tokio::test]
        async fn end_of_stream_inside_data_is_an_error() {
            assert!(skip(b"body\r\n.\r").await.0.is_err());
        }

        #[test]
        fn reads_bench_headers_case_insensitively() {
            assert_eq!(header_value(b"x-bench-ID: 0000000042\r\n", b"x-bench-id:"), Some(42));
            assert_eq!(header_value(b"X-Bench-Sentinel: 1\r\n", b"x-bench-sent:"), None);
        }
    }
}

/// The load generator: workers that submit messages over reused connections, in phases.
mod load {
    use std::{
        io::Write as _,
        ops::Range,
        sync::{
            Arc,
            atomic::{AtomicBool, AtomicU64, Ordering},
        },
        time::{Duration, Instant},
    };

    use anyhow::{Context, bail};
    use rustls::pki_types::ServerName;
    use tokio::{
        io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
        net::TcpStream,
        task::JoinSet,
    };
    use tokio_rustls::TlsConnector;

    use crate::{
        RunArgs, report,
        sink::{self, Arrivals},
        smtp::{Reply, read_reply},
        tls, unix_nanos,
    };

    /// What one phase (warm-up or measured) produced.
    pub struct Phase {
        pub ids: Range<u64>,
        pub tally: Tally,
        /// From the first connection to the last worker done.
        pub submit_elapsed: Duration,
        /// From the first connection to the last arrival at the sink, if there is a sink.
        pub delivery_elapsed: Option<Duration>,
        /// Bench ids of this phase that arrived at the sink.
        pub delivered: u64,
        /// Their end-to-end latencies, ns.
        pub end_to_end: Vec<u64>,
        /// The deadline passed before every accepted message arrived.
        pub timed_out: bool,
    }

    /// What the workers counted.
    #[derive(Default)]
    pub struct Tally {
        /// End of DATA → 2xx reply, ns, per accepted message.
        pub submit: Vec<u64>,
        /// Messages that got a reply other than 2xx (354 to DATA aside).
        pub rejected: u64,
        /// Messages lost to a connection error or the deadline, outcome unknown.
        pub failed: u64,
        /// Connections that failed (each worker then reconnects).
        pub connection_errors: u64,
        /// The first few rejections and errors.
        pub samples: Vec<String>,
        /// The message the worker is sending now.
        in_flight: Option<u64>,
    }

    /// Runs the warm-up and the measured phase and prints the report.
    pub async fn run(args: RunArgs) -> anyhow::Result<()> {
        anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
        let total = args.warmup.checked_add(args.messages).context("too many messages")?;
        let arrivals = match args.sink_listen {
            Some(listen) => Some(sink::start(listen, args.starttls, total).await?),
            None => None,
        };
        let plan = Arc::new(Plan::new(&args, total)?);
        if args.warmup > 0 {
            let warmup = phase(&plan, 0..args.warmup, arrivals.as_deref(), &args).await;
            if warmup.timed_out {
                bail!("warm-up: {} of {} messages arrived before the deadline", warmup.delivered, args.warmup);
            }
        }
        let measured = phase(&plan, args.warmup..total, arrivals.as_deref(), &args).await;
        let summary = report::Summary::new(&args, &measured, arrivals.as_deref());
        if args.json {
            println!("{}", summary.json());
        } else {
            print!("{}", summary.table());
        }
        if measured.timed_out {
            bail!("deadline passed: {} of {} accepted messages arrived", measured.delivered, measured.accepted());
        }
        Ok(())
    }

    /// Everything the workers share, fixed for the run.
    struct Plan {
        target: SocketAddrName,
        tls: Option<TlsConnector>,
        ehlo: Vec<u8>,
        mail_from: Vec<u8>,
        rcpt_to: Vec<u8>,
        /// Header lines after the bench ones, the blank line included.
        headers: Vec<u8>,
        /// Body lines making every message `--size` bytes.
        filler: Vec<u8>,
        /// Makes Message-IDs unique across runs.
        run_tag: u64,
        /// Per bench id: the relay accepted it.
        accepted: Vec<AtomicBool>,
    }

    /// The target and the name presented in TLS (its IP address: no SNI).
    struct SocketAddrName {
        address: std::net::SocketAddr,
        server_name: ServerName<'static>,
    }

    /// The ids of one phase still to send.
    struct Claims {
        next: AtomicU64,
        end: u64,
    }

    enum Outcome {
        /// 2xx after the dot; the submit latency in ns.
        Accepted(u64),
        /// Any other reply; the connection stays usable.
        Rejected(Reply),
    }

    // === impl Phase ===

    impl Phase {
        pub fn accepted(&self) -> u64 {
            self.tally.submit.len() as u64
        }
    }

    // === impl Tally ===

    impl Tally {
        fn note(&mut self, sample: String) {
            if self.samples.len() < MAX_SAMPLES {
                self.samples.push(sample);
            }
        }

        fn merge(&mut self, other: Tally) {
            self.submit.extend(other.submit);
            self.rejected += other.rejected;
            self.failed += other.failed;
            self.connection_errors += other.connection_errors;
            for sample in other.samples {
                self.note(sample);
            }
        }
    }

    // === impl Plan ===

    impl Plan {
        fn new(args: &RunArgs, total: u64) -> anyhow::Result<Self> {
            let (sender, recipient) = (&args.sender, &args.recipient);
            let headers = format!(
                "From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: relay-bench\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            )
            .into_bytes();
            let mut plan = Self {
                target: SocketAddrName { address: args.target, server_name: ServerName::from(args.target.ip()) },
                tls: if args.starttls { Some(tls::connector()?) } else { None },
                ehlo: b"EHLO loadgen.bench.invalid\r\n".to_vec(),
                mail_from: format!("MAIL FROM:<{sender}> SIZE={}\r\n", args.size).into_bytes(),
                rcpt_to: format!("RCPT TO:<{recipient}>\r\n").into_bytes(),
                headers,
                filler: Vec::new(),
                run_tag: unix_nanos() / 1_000_000_000,
                accepted: (0..usize::try_from(total)?).map(|_| AtomicBool::new(false)).collect(),
            };
            let mut sample = Vec::new();
            plan.compose(&mut sample, 0, 0);
            plan.filler = filler(args.size.saturating_sub(sample.len() - END_OF_DATA.len()));
            Ok(plan)
        }

        /// The message for `id`, dot terminator included. Ids and timestamps are fixed-width
        /// (nanos have 19 digits until 2286), so every message has the same size.
        fn compose(&self, message: &mut Vec<u8>, id: u64, sent: u64) {
            message.clear();
            let _ = write!(
                message,
                "X-Bench-Id: {id:010}\r\nX-Bench-Sent: {sent:019}\r\nMessage-ID: <{id:010}.{}@loadgen.bench.invalid>\r\n",
                self.run_tag
            );
            message.extend_from_slice(&self.headers);
            message.extend_from_slice(&self.filler);
            message.extend_from_slice(END_OF_DATA);
        }

        fn mark_accepted(&self, id: u64) {
            if let Some(flag) = usize::try_from(id).ok().and_then(|id| self.accepted.get(id)) {
                flag.store(true, Ordering::Relaxed);
            }
        }

        fn is_accepted(&self, id: u64) -> bool {
            usize::try_from(id).ok().and_then(|id| self.accepted.get(id)).is_some_and(|f| f.load(Ordering::Relaxed))
        }
    }

    // === impl Claims ===

    impl Claims {
        fn claim(&self) -> Option<u64> {
            let id = self.next.fetch_add(1, Ordering::Relaxed);
            (id < self.end).then_some(id)
        }

        fn exhausted(&self) -> bool {
            self.next.load(Ordering::Relaxed) >= self.end
        }
    }

    async fn phase(plan: &Arc<Plan>, ids: Range<u64>, arrivals: Option<&Arrivals>, args: &RunArgs) -> Phase {
        let started = Instant::now();
        let started_unix = unix_nanos();
        let deadline = started + args.timeout;
        let claims = Arc::new(Claims { next: AtomicU64::new(ids.start), end: ids.end });
        let mut workers = JoinSet::new();
        for _ in 0..args.concurrency {
            workers.spawn(worker(plan.clone(), claims.clone(), deadline));
        }
        let mut tally = Tally::default();
        while let Some(joined) = workers.join_next().await {
            match joined {
                Ok(worker_tally) => tally.merge(worker_tally),
                Err(error) => tally.note(format!("worker ended abnormally: {error}")),
            }
        }
        let submit_elapsed = started.elapsed();
        let mut phase = Phase {
            ids,
            tally,
            submit_elapsed,
            delivery_elapsed: None,
            delivered: 0,
            end_to_end: Vec::new(),
            timed_out: false,
        };
        let Some(arrivals) = arrivals else {
            return phase;
        };
        phase.timed_out = !wait_for_delivery(plan, arrivals, &phase.ids, deadline).await;
        phase.end_to_end = phase.ids.clone().filter_map(|id| arrivals.latency(id)).collect();
        phase.delivered = phase.end_to_end.len() as u64;
        let last = arrivals.last_arrival.load(Ordering::Relaxed);
        phase.delivery_elapsed = (phase.delivered > 0).then(|| Duration::from_nanos(last.saturating_sub(started_unix)));
        phase
    }

    /// Waits until every accepted id of `ids` has arrived; false if the deadline passes first.
    /// Called once the workers are done, so the accepted flags no longer change.
    async fn wait_for_delivery(plan: &Plan, arrivals: &Arrivals, ids: &Range<u64>, deadline: Instant) -> bool {
        // Every id below `pending` is settled: not accepted, or arrived.
        let mut pending = ids.start;
        loop {
            while pending < ids.end && (!plan.is_accepted(pending) || arrivals.latency(pending).is_some()) {
                pending += 1;
            }
            if pending == ids.end {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends claimed messages until none are left, reconnecting after a connection error.
    async fn worker(plan: Arc<Plan>, claims: Arc<Claims>, deadline: Instant) -> Tally {
        let mut tally = Tally::default();
        let mut failures_in_a_row = 0;
        while !claims.exhausted() {
            let accepted_before = tally.submit.len();
            let result = tokio::time::timeout_at(deadline.into(), connection(&plan, &claims, &mut tally)).await;
            let error = match result {
                Ok(Ok(())) => break,
                Ok(Err(error)) => error,
                Err(_elapsed) => {
                    tally.failed += u64::from(tally.in_flight.take().is_some());
                    tally.note("deadline passed while sending".to_owned());
                    break;
                }
            };
            tally.failed += u64::from(tally.in_flight.take().is_some());
            tally.connection_errors += 1;
            tally.note(format!("connection: {error:#}"));
            failures_in_a_row = if tally.submit.len() > accepted_before { 1 } else { failures_in_a_row + 1 };
            if failures_in_a_row >= MAX_FAILURES_IN_A_ROW || Instant::now() >= deadline {
                tally.note(format!("worker gave up after {failures_in_a_row} failed connections in a row"));
                break;
            }
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
        tally
    }

    /// One connection: greeting, EHLO, STARTTLS + EHLO if configured, then transactions.
    async fn connection(plan: &Plan, claims: &Claims, tally: &mut Tally) -> anyhow::Result<()> {
        let tcp = TcpStream::connect(plan.target.address).await.context("connect")?;
        tcp.set_nodelay(true)?;
        let mut stream = BufReader::new(tcp);
        let mut line = Vec::with_capacity(512);
        expect(&mut stream, &mut line, None, 220).await.context("greeting")?;
        let capabilities = expect(&mut stream, &mut line, Some(plan.ehlo.as_slice()), 250).await.context("EHLO")?;
        let Some(connector) = &plan.tls else {
            return transactions(&mut stream, &mut line, plan, claims, tally, pipelining(&capabilities)).await;
        };
        expect(&mut stream, &mut line, Some(b"STARTTLS\r\n".as_slice()), 220).await.context("STARTTLS")?;
        let tls =
            connector.connect(plan.target.server_name.clone(), stream.into_inner()).await.context("TLS handshake")?;
        let mut stream = BufReader::new(tls);
        let capabilities =
            expect(&mut stream, &mut line, Some(plan.ehlo.as_slice()), 250).await.context("EHLO after STARTTLS")?;
        transactions(&mut stream, &mut line, plan, claims, tally, pipelining(&capabilities)).await
    }

    fn pipelining(capabilities: &Reply) -> bool {
        capabilities.text.lines().any(|line| line.get(4..).is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING")))
    }

    /// Sends `command` (if any) and requires `code` back.
    async fn expect<S>(
        stream: &mut BufReader<S>,
        line: &mut Vec<u8>,
        command: Option<&[u8]>,
        code: u16,
    ) -> anyhow::Result<Reply>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if let Some(command) = command {
            stream.write_all(command).await?;
            stream.flush().await?;
        }
        let reply = read_reply(stream, line).await?;
        if reply.code != code {
            bail!("expected {code}, got {}", reply.text);
        }
        Ok(reply)
    }

    async fn transactions<S>(
        stream: &mut BufReader<S>,
        line: &mut Vec<u8>,
        plan: &Plan,
        claims: &Claims,
        tally: &mut Tally,
        pipelining: bool,
    ) -> anyhow::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut message = Vec::with_capacity(plan.filler.len() + 1024);
        while let Some(id) = claims.claim() {
            tally.in_flight = Some(id);
            let outcome = transaction(stream, line, &mut message, plan, id, pipelining).await?;
            tally.in_flight = None;
            match outcome {
                Outcome::Accepted(submit) => {
                    plan.mark_accepted(id);
                    tally.submit.push(submit);
                }
                Outcome::Rejected(reply) => {
                    tally.rejected += 1;
                    tally.note(reply.text.clone());
                    if reply.is_closing() {
                        bail!("server is closing the connection");
                    }
                }
            }
        }
        stream.write_all(b"QUIT\r\n").await?;
        stream.flush().await?;
        // The server may close before or after its 221: either ends the connection.
        let _ = read_reply(stream, line).await;
        Ok(())
    }

    /// MAIL, RCPT, DATA (pipelined when offered), the message and the dot.
    async fn transaction<S>(
        stream: &mut BufReader<S>,
        line: &mut Vec<u8>,
        message: &mut Vec<u8>,
        plan: &Plan,
        id: u64,
        pipelining: bool,
    ) -> anyhow::Result<Outcome>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let sent = unix_nanos();
        let refusal = if pipelining {
            envelope_pipelined(stream, line, plan).await?
        } else {
            envelope_in_steps(stream, line, plan).await?
        };
        if let Some(refusal) = refusal {
            if !refusal.is_closing() {
                expect(stream, line, Some(b"RSET\r\n".as_slice()), 250).await.context("RSET")?;
            }
            return Ok(Outcome::Rejected(refusal));
        }
        plan.compose(message, id, sent);
        stream.write_all(message).await?;
        stream.flush().await?;
        let end_of_data = Instant::now();
        let reply = read_reply(stream, line).await?;
        let submit = u64::try_from(end_of_data.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Ok(if reply.is_positive() { Outcome::Accepted(submit) } else { Outcome::Rejected(reply) })
    }

    /// MAIL, RCPT and DATA in one write; the first refusal, if any (then no 354 came).
    async fn envelope_pipelined<S>(
        stream: &mut BufReader<S>,
        line: &mut Vec<u8>,
        plan: &Plan,
    ) -> anyhow::Result<Option<Reply>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut envelope = Vec::with_capacity(plan.mail_from.len() + plan.rcpt_to.len() + 6);
        envelope.extend_from_slice(&plan.mail_from);
        envelope.extend_from_slice(&plan.rcpt_to);
        envelope.extend_from_slice(b"DATA\r\n");
        stream.write_all(&envelope).await?;
        stream.flush().await?;
        let mail = read_reply(stream, line).await?;
        let rcpt = read_reply(stream, line).await?;
        let data = read_reply(stream, line).await?;
        if data.code != 354 {
            return Ok(Some([mail, rcpt].into_iter().find(|reply| !reply.is_positive()).unwrap_or(data)));
        }
        if let Some(refusal) = [mail, rcpt].into_iter().find(|reply| !reply.is_positive()) {
            // 354 despite a refused envelope: end the empty message, keep the refusal.
            stream.write_all(END_OF_DATA).await?;
            stream.flush().await?;
            read_reply(stream, line).await?;
            return Ok(Some(refusal));
        }
        Ok(None)
    }

    /// MAIL, RCPT and DATA one round trip each, for a server without PIPELINING.
    async fn envelope_in_steps<S>(
        stream: &mut BufReader<S>,
        line: &mut Vec<u8>,
        plan: &Plan,
    ) -> anyhow::Result<Option<Reply>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        for (command, code) in
            [(plan.mail_from.as_slice(), 250), (plan.rcpt_to.as_slice(), 250), (b"DATA\r\n".as_slice(), 354)]
        {
            stream.write_all(command).await?;
            stream.flush().await?;
            let reply = read_reply(stream, line).await?;
            if reply.code != code {
                return Ok(Some(reply));
            }
        }
        Ok(None)
    }

    /// `len` bytes of 76-character text lines (none starts with a dot), CRLF-terminated.
    fn filler(len: usize) -> Vec<u8> {
        if len < 2 {
            return Vec::new();
        }
        let mut body: Vec<u8> = (0..len)
            .map(|at| match at % 78 {
                76 => b'\r',
                77 => b'\n',
                column => b'a' + (column % 26) as u8,
            })
            .collect();
        body[len - 2..].copy_from_slice(b"\r\n");
        if len >= 3 && body[len - 3] == b'\r' {
            // Cut right after a CRLF plus one letter: no bare CR before the new line end.
            body[len - 3] = b'z';
        }
        body
    }

    const END_OF_DATA: &[u8] = b".\r\n";
    const MAX_SAMPLES: usize = 5;
    const MAX_FAILURES_IN_A_ROW: u32 = 50;
    const RECONNECT_DELAY: Duration = Duration::from_millis(100);

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn filler_has_the_exact_length_and_only_crlf_line_ends() {
            for len in [2, 3, 77, 78, 79, 80, 1000, 4000] {
                let body = filler(len);
                assert_eq!(body.len(), len);
                assert!(body.ends_with(b"\r\n"));
                for (at, &byte) in body.iter().enumerate() {
                    if byte == b'\r' {
                        assert_eq!(body.get(at + 1), Some(&b'\n'), "bare CR at {at} for {len}");
                    }
                    if byte == b'\n' {
                        assert_eq!(body[at - 1], b'\r');
                        assert_ne!(body.get(at + 1), Some(&b'.'));
                    }
                }
            }
        }
    }
}

/// Percentiles and the two output forms.
mod report {
    use std::{fmt::Write as _, sync::atomic::Ordering};

    use serde_json::{Value, json};

    use crate::{RunArgs, load::Phase, sink::Arrivals};

    /// The measured phase, ready to print.
    pub struct Summary {
        json: Value,
        table: String,
    }

    /// Nearest-rank percentiles, in ns.
    struct Percentiles {
        p50: u64,
        p90: u64,
        p99: u64,
        max: u64,
    }

    // === impl Summary ===

    impl Summary {
        pub fn new(args: &RunArgs, phase: &Phase, arrivals: Option<&Arrivals>) -> Self {
            let submit = Percentiles::of(phase.tally.submit.clone());
            let end_to_end = Percentiles::of(phase.end_to_end.clone());
            let accepted = phase.accepted();
            let submit_seconds = phase.submit_elapsed.as_secs_f64();
            let delivery_seconds = phase.delivery_elapsed.map(|elapsed| elapsed.as_secs_f64());
            let delivered_per_second = delivery_seconds.map(|seconds| rate(phase.delivered, seconds));
            let sink = arrivals.map(|arrivals| {
                let errors = arrivals.first_errors.lock().map(|errors| errors.clone()).unwrap_or_default();
                json!({
                    "messages": arrivals.messages.load(Ordering::Relaxed),
                    "duplicates": arrivals.duplicates.load(Ordering::Relaxed),
                    "untracked": arrivals.untracked.load(Ordering::Relaxed),
                    "connection_errors": arrivals.connection_errors.load(Ordering::Relaxed),
                    "connection_error_samples": errors,
                })
            });
            let json = json!({
                "target": args.target.to_string(),
                "starttls": args.starttls,
                "messages": phase.ids.end - phase.ids.start,
                "concurrency": args.concurrency,
                "size": args.size,
                "warmup": args.warmup,
                "accepted": accepted,
                "rejected": phase.tally.rejected,
                "failed": phase.tally.failed,
                "connection_errors": phase.tally.connection_errors,
                "error_samples": phase.tally.samples,
                "submit_seconds": submit_seconds,
                "accepted_per_second": rate(accepted, submit_seconds),
                "delivered": arrivals.map(|_| phase.delivered),
                "delivery_seconds": delivery_seconds,
                "delivered_per_second": delivered_per_second,
                "timed_out": phase.timed_out,
                "submit_latency_ms": submit.as_ref().map(Percentiles::json),
                "end_to_end_latency_ms": end_to_end.as_ref().map(Percentiles::json),
                "sink": sink,
            });
            let table = table(args, phase, submit.as_ref(), end_to_end.as_ref());
            Self { json, table }
        }

        pub fn json(&self) -> String {
            self.json.to_string()
        }

        pub fn table(&self) -> &str {
            &self.table
        }
    }

    fn table(args: &RunArgs, phase: &Phase, submit: Option<&Percentiles>, end_to_end: Option<&Percentiles>) -> String {
        let mut out = String::new();
        let tls = if args.starttls { "STARTTLS" } else { "plain" };
        let _ = writeln!(
            out,
            "relay-bench: {} messages of {} bytes over {} connections ({tls}) to {}",
            phase.ids.end - phase.ids.start,
            args.size,
            args.concurrency,
            args.target
        );
        let _ = writeln!(out, "{:<30}{:>10}{:>10}{:>12}", "", "messages", "seconds", "msgs/s");
        let submit_seconds = phase.submit_elapsed.as_secs_f64();
        let accepted = phase.accepted();
        let _ = writeln!(
            out,
            "{:<30}{accepted:>10}{submit_seconds:>10.3}{:>12.1}",
            "accepted by the relay",
            rate(accepted, submit_seconds)
        );
        if let Some(elapsed) = phase.delivery_elapsed {
            let seconds = elapsed.as_secs_f64();
            let _ = writeln!(
                out,
                "{:<30}{:>10}{seconds:>10.3}{:>12.1}",
                "delivered at the sink",
                phase.delivered,
                rate(phase.delivered, seconds)
            );
        }
        let tally = &phase.tally;
        let _ = writeln!(
            out,
            "errors: {} rejected, {} lost to connection errors, {} connection errors{}",
            tally.rejected,
            tally.failed,
            tally.connection_errors,
            if phase.timed_out { "; DEADLINE PASSED before all arrived" } else { "" }
        );
        for sample in &tally.samples {
            let _ = writeln!(out, "  {sample}");
        }
        let _ = writeln!(out, "{:<30}{:>10}{:>10}{:>10}{:>10}", "latency (ms)", "p50", "p90", "p99", "max");
        for (name, percentiles) in [("submit (end of DATA → 250)", submit), ("end to end (sent → sink)", end_to_end)]
        {
            let Some(p) = percentiles else { continue };
            let _ =
                writeln!(out, "{name:<30}{:>10.2}{:>10.2}{:>10.2}{:>10.2}", ms(p.p50), ms(p.p90), ms(p.p99), ms(p.max));
        }
        out
    }

    // === impl Percentiles ===

    impl Percentiles {
        fn of(mut samples: Vec<u64>) -> Option<Self> {
            samples.sort_unstable();
            let last = *samples.last()?;
            let rank = |q: f64| {
                let rank = (q * samples.len() as f64).ceil() as usize;
                samples[rank.clamp(1, samples.len()) - 1]
            };
            Some(Self { p50: rank(0.50), p90: rank(0.90), p99: rank(0.99), max: last })
        }

        fn json(&self) -> Value {
            json!({ "p50": ms(self.p50), "p90": ms(self.p90), "p99": ms(self.p99), "max": ms(self.max) })
        }
    }

    fn ms(nanos: u64) -> f64 {
        (nanos as f64 / 1e3).round() / 1e3
    }

    fn rate(count: u64, seconds: f64) -> f64 {
        if seconds > 0.0 { (count as f64 / seconds * 10.0).round() / 10.0 } else { 0.0 }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn percentiles_use_the_nearest_rank() {
            let p = Percentiles::of((1..=100).collect()).expect("samples");
            assert_eq!((p.p50, p.p90, p.p99, p.max), (50, 90, 99, 100));
            assert!(Percentiles::of(Vec::new()).is_none());
        }
    }
}
