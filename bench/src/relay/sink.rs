//! The counting sink: accepts every message, keeps none, notes when each bench message arrived.

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
    let value = line.get(..name.len()).filter(|start| start.eq_ignore_ascii_case(name)).map(|_| &line[name.len()..])?;
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
