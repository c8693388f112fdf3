//! The outbound SMTP client send connectors use: EHLO (HELO fallback),
//! opportunistic STARTTLS, PIPELINING when offered, per-recipient results, and a
//! connection that can carry the next message. Every line goes to the Send
//! protocol log when the connector is verbose.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rustls::{pki_types::ServerName, sign::CertifiedKey};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::TcpStream,
};

mod tls;

use self::tls::client_config;
use crate::{
    domain_security::refusal::{Direction, SecurityFailure},
    protocol_log::{Event, SessionLog},
    smtp::{
        address::Mailbox,
        tls_info::{TlsInfo, log_certificate},
    },
};

/// What the next hop said to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientResult {
    /// Accepted (after the final DATA reply).
    Delivered,
    /// `4xx` or a transport failure: try again later.
    Deferred(String),
    /// `5xx`: give up and report to the sender.
    Failed(String),
}

/// A failure of the whole attempt with this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    /// TCP connect, I/O or timeout: try the next host, or later.
    #[error("{0}")]
    Transport(String),
    /// The host answered with a failure reply outside a transaction (greeting, EHLO, STARTTLS).
    #[error("{0}")]
    Refused(String),
    /// Domain Security could not be established (no STARTTLS, failed handshake,
    /// certificate not verified); its reply (4.7.4 or 4.7.5) is decided in
    /// [`SecurityFailure::reply`].
    #[error("{}", .0.reply(Direction::Outbound, false, "").lines.join(" "))]
    DomainSecurity(SecurityFailure),
}

impl AttemptError {
    /// The enhanced status for a queue entry that this error deferred.
    pub fn status(&self) -> &'static str {
        match self {
            Self::DomainSecurity(failure) => failure.outbound_status(),
            Self::Transport(_) | Self::Refused(_) => "4.4.1",
        }
    }

    /// A Domain Security failure, noted in the session's protocol log.
    pub fn secure(session: &mut OutboundSession, failure: SecurityFailure) -> Self {
        let error = Self::DomainSecurity(failure);
        session.note(&format!("{} {error}", error.status()));
        error
    }
}

/// Timeouts of the client.
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    /// Connect and each command reply.
    pub command: Duration,
    /// The reply after the message data.
    pub data: Duration,
}

/// An open session with a next hop, ready for `MAIL`.
pub struct OutboundSession {
    stream: Stream,
    input: Vec<u8>,
    log: SessionLog,
    extensions: Extensions,
    timeouts: ClientTimeouts,
    /// Negotiated TLS, if any.
    pub tls: Option<TlsInfo>,
    /// The address connected to.
    pub address: SocketAddr,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Only while the TCP stream moves into TLS, or after a failed handshake.
    Closed,
}

#[derive(Debug, Default, Clone, Copy)]
struct Extensions {
    pipelining: bool,
    starttls: bool,
    eight_bit: bool,
    size: Option<u64>,
}

/// One reply from the server.
#[derive(Debug, Clone)]
struct ServerReply {
    code: u16,
    text: String,
}

impl OutboundSession {
    /// Connects, reads the greeting, says EHLO as `ehlo_name`, and upgrades with
    /// STARTTLS when offered (the certificate is recorded here and judged by the
    /// caller), presenting `client_certificate` if the server asks for one. With
    /// `require_tls` (Domain Security) a server without STARTTLS, or a failed
    /// handshake, ends the session: never a fallback to plain text.
    pub async fn open(
        address: SocketAddr,
        host: &str,
        ehlo_name: &str,
        client_certificate: Option<Arc<CertifiedKey>>,
        require_tls: bool,
        timeouts: ClientTimeouts,
        mut log: SessionLog,
    ) -> Result<Self, AttemptError> {
        let tcp = tokio::time::timeout(timeouts.command, TcpStream::connect(address))
            .await
            .map_err(|_| AttemptError::Transport(format!("connect to {address} timed out")))?
            .map_err(|e| AttemptError::Transport(format!("connect to {address}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        log.record(Event::Connect, "", "");
        let mut session = Self {
            stream: Stream::Plain(tcp),
            input: Vec::new(),
            log,
            extensions: Extensions::default(),
            timeouts,
            tls: None,
            address,
        };
        let greeting = session.read_reply(timeouts.command).await?;
        if greeting.code != 220 {
            return Err(AttemptError::Refused(format!("{} {}", greeting.code, greeting.text)));
        }
        session.hello(ehlo_name).await?;
        if session.extensions.starttls {
            session.command("STARTTLS").await?;
            let reply = session.read_reply(timeouts.command).await?;
            if reply.code == 220 {
                match session.upgrade(host, client_certificate).await {
                    Ok(()) => {}
                    Err(AttemptError::Transport(reason)) if require_tls => {
                        return Err(AttemptError::secure(&mut session, SecurityFailure::Handshake(reason)));
                    }
                    Err(error) => return Err(error),
                }
                session.hello(ehlo_name).await?;
            } else if require_tls {
                let answer = format!("{} {}", reply.code, reply.text.replace('\n', " "));
                let error = AttemptError::secure(&mut session, SecurityFailure::StartTlsRefused(answer));
                session.quit().await;
                return Err(error);
            }
        } else if require_tls {
            let error = AttemptError::secure(&mut session, SecurityFailure::StartTlsNotOffered);
            session.quit().await;
            return Err(error);
        }
        Ok(session)
    }

    /// Sends one message to `recipients`; one transaction, pipelined when offered.
    pub async fn send(
        &mut self,
        from: Option<&Mailbox>,
        recipients: &[&Mailbox],
        message: &[u8],
    ) -> Result<Vec<RecipientResult>, AttemptError> {
        let mut mail = format!("MAIL FROM:<{}>", from.map(ToString::to_string).unwrap_or_default());
        if self.extensions.size.is_some() {
            mail.push_str(&format!(" SIZE={}", message.len()));
        }
        if self.extensions.eight_bit && !message.is_ascii() {
            mail.push_str(" BODY=8BITMIME");
        }
        let mut commands = vec![mail];
        commands.extend(recipients.iter().map(|r| format!("RCPT TO:<{r}>")));
        commands.push("DATA".to_owned());
        let (replies, data_reply) = if self.extensions.pipelining {
            let mut replies = self.pipeline(&commands).await?;
            let data = replies.pop();
            (replies, data)
        } else {
            self.sequential(&commands).await?
        };
        let (mail_reply, rcpt_replies) =
            replies.split_first().ok_or_else(|| AttemptError::Transport("no reply to MAIL".into()))?;
        if mail_reply.code / 100 != 2 {
            if data_reply.as_ref().is_some_and(|r| r.code == 354) {
                self.abort_data().await?;
            }
            let result = classify(mail_reply);
            self.reset().await;
            return Ok(vec![result; recipients.len()]);
        }
        let mut results: Vec<RecipientResult> = rcpt_replies.iter().map(classify).collect();
        results.resize(recipients.len(), RecipientResult::Deferred("no reply to RCPT".into()));
        let accepted = results.contains(&RecipientResult::Delivered);
        match data_reply {
            // Every RCPT failed and DATA was not sent (no pipelining): nothing more to do.
            None if !accepted => {
                self.reset().await;
                return Ok(results);
            }
            None => return Err(AttemptError::Transport("no reply to DATA".into())),
            Some(reply) if reply.code == 354 && accepted => {}
            Some(reply) if reply.code == 354 => {
                self.abort_data().await?;
                return Ok(results);
            }
            Some(reply) => {
                let failure = classify(&reply);
                self.reset().await;
                return Ok(results
                    .into_iter()
                    .map(|r| if r == RecipientResult::Delivered { failure.clone() } else { r })
                    .collect());
            }
        }
        self.write(&stuff(message)).await?;
        self.log.record(Event::Sent, "(message data)", "");
        let reply = self.read_reply(self.timeouts.data).await?;
        let outcome = classify(&reply);
        Ok(results.into_iter().map(|r| if r == RecipientResult::Delivered { outcome.clone() } else { r }).collect())
    }

    /// Ends the session politely.
    pub async fn quit(mut self) {
        if self.command("QUIT").await.is_ok() {
            let _ = self.read_reply(Duration::from_secs(5)).await;
        }
        self.log.record(Event::Disconnect, "", "");
        let _ = match &mut self.stream {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
            Stream::Closed => Ok(()),
        };
    }

    /// Records why the session is being dropped (protocol log).
    pub fn note(&mut self, text: &str) {
        self.log.record(Event::Information, text, "");
    }

    async fn hello(&mut self, name: &str) -> Result<(), AttemptError> {
        self.command(&format!("EHLO {name}")).await?;
        let reply = self.read_reply(self.timeouts.command).await?;
        if reply.code == 250 {
            self.extensions = parse_extensions(&reply.text);
            return Ok(());
        }
        self.command(&format!("HELO {name}")).await?;
        let reply = self.read_reply(self.timeouts.command).await?;
        if reply.code != 250 {
            return Err(AttemptError::Refused(format!("{} {}", reply.code, reply.text)));
        }
        self.extensions = Extensions::default();
        Ok(())
    }

    async fn upgrade(&mut self, host: &str, client_certificate: Option<Arc<CertifiedKey>>) -> Result<(), AttemptError> {
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Closed) else {
            return Err(AttemptError::Transport("TLS already active".into()));
        };
        self.input.clear();
        let requested = Arc::new(AtomicBool::new(false));
        let config = client_config(client_certificate.clone(), requested.clone());
        let name = ServerName::try_from(host.to_owned())
            .or_else(|_| ServerName::try_from(self.address.ip().to_string()))
            .map_err(|e| AttemptError::Transport(format!("server name {host}: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let stream = tokio::time::timeout(self.timeouts.command, connector.connect(name, tcp))
            .await
            .map_err(|_| AttemptError::Transport("TLS handshake timed out".into()))?
            .map_err(|e| AttemptError::Transport(format!("TLS handshake failed: {e}")))?;
        let (_, state) = stream.get_ref();
        let info = TlsInfo::from_connection(state);
        if requested.load(Ordering::SeqCst) {
            let sent = client_certificate.as_ref().and_then(|c| c.cert.first().cloned());
            log_certificate(&mut self.log, "Sending certificate", sent.as_ref());
        } else {
            self.log.record(Event::Information, "", "Client certificate not requested");
        }
        log_certificate(&mut self.log, "Received certificate", state.peer_certificates().and_then(|c| c.first()));
        self.log.record(Event::Information, "", "TLS negotiation succeeded");
        self.tls = Some(info);
        self.stream = Stream::Tls(Box::new(stream));
        Ok(())
    }

    async fn pipeline(&mut self, commands: &[String]) -> Result<Vec<ServerReply>, AttemptError> {
        let mut batch = String::new();
        for command in commands {
            self.log.record(Event::Sent, command, "");
            batch.push_str(command);
            batch.push_str("\r\n");
        }
        self.write(batch.as_bytes()).await?;
        let mut replies = Vec::with_capacity(commands.len());
        for _ in commands {
            replies.push(self.read_reply(self.timeouts.command).await?);
        }
        Ok(replies)
    }

    /// MAIL, each RCPT and DATA one at a time: stops after a refused MAIL, and sends
    /// no DATA when every RCPT was refused. Returns the MAIL and RCPT replies, and the
    /// DATA reply if DATA was sent.
    async fn sequential(
        &mut self,
        commands: &[String],
    ) -> Result<(Vec<ServerReply>, Option<ServerReply>), AttemptError> {
        let Some((data, envelope)) = commands.split_last() else { return Ok((Vec::new(), None)) };
        let mut replies = Vec::with_capacity(envelope.len());
        for (index, command) in envelope.iter().enumerate() {
            self.command(command).await?;
            let reply = self.read_reply(self.timeouts.command).await?;
            let refused_mail = index == 0 && reply.code / 100 != 2;
            replies.push(reply);
            if refused_mail {
                return Ok((replies, None));
            }
        }
        if !replies.iter().skip(1).any(|r| r.code / 100 == 2) {
            return Ok((replies, None));
        }
        self.command(data).await?;
        let reply = self.read_reply(self.timeouts.command).await?;
        Ok((replies, Some(reply)))
    }

    /// After a `354` we cannot use: an empty message is not acceptable, so send
    /// the terminator and let the server's reply be ignored, then RSET.
    async fn abort_data(&mut self) -> Result<(), AttemptError> {
        self.write(b".\r\n").await?;
        let _ = self.read_reply(self.timeouts.data).await?;
        self.reset().await;
        Ok(())
    }

    async fn reset(&mut self) {
        if self.command("RSET").await.is_ok() {
            let _ = self.read_reply(self.timeouts.command).await;
        }
    }

    async fn command(&mut self, line: &str) -> Result<(), AttemptError> {
        self.log.record(Event::Sent, line, "");
        self.write(format!("{line}\r\n").as_bytes()).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), AttemptError> {
        let result = tokio::time::timeout(self.timeouts.data, async {
            match &mut self.stream {
                Stream::Plain(s) => write_all(s, bytes).await,
                Stream::Tls(s) => write_all(s.as_mut(), bytes).await,
                Stream::Closed => Err(closed()),
            }
        })
        .await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AttemptError::Transport(format!("write: {e}"))),
            Err(_) => Err(AttemptError::Transport("write timed out".into())),
        }
    }

    /// Reads one (possibly multi-line) reply.
    async fn read_reply(&mut self, timeout: Duration) -> Result<ServerReply, AttemptError> {
        let mut lines: Vec<String> = Vec::new();
        loop {
            let line = self.read_line(timeout).await?;
            self.log.record(Event::Received, &line, "");
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).filter(|c| (200..600).contains(c));
            let Some(code) = code else {
                return Err(AttemptError::Transport(format!("malformed reply {line:?}")));
            };
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or_default().to_owned());
            if last {
                return Ok(ServerReply { code, text: lines.join("\n") });
            }
            if lines.len() >= MAX_REPLY_LINES {
                // Reading on would take the rest as later replies: give the session up.
                return Err(AttemptError::Transport(format!("reply longer than {MAX_REPLY_LINES} lines")));
            }
        }
    }

    async fn read_line(&mut self, timeout: Duration) -> Result<String, AttemptError> {
        loop {
            if let Some(newline) = self.input.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.input.drain(..=newline).collect();
                let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned();
                return Ok(text);
            }
            if self.input.len() > MAX_REPLY_LINE {
                return Err(AttemptError::Transport("reply line too long".into()));
            }
            let mut buffer = [0u8; 4096];
            let read = tokio::time::timeout(timeout, async {
                match &mut self.stream {
                    Stream::Plain(s) => s.read(&mut buffer).await,
                    Stream::Tls(s) => s.read(&mut buffer).await,
                    Stream::Closed => Err(closed()),
                }
            })
            .await;
            match read {
                Err(_) => return Err(AttemptError::Transport("timed out waiting for a reply".into())),
                Ok(Ok(0)) => return Err(AttemptError::Transport("connection closed by the server".into())),
                Ok(Ok(n)) => self.input.extend_from_slice(&buffer[..n]),
                Ok(Err(e)) => return Err(AttemptError::Transport(format!("read: {e}"))),
            }
        }
    }
}

const MAX_REPLY_LINES: usize = 100;
const MAX_REPLY_LINE: usize = 4096;

async fn write_all<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "the connection was closed after a failed TLS handshake")
}

fn classify(reply: &ServerReply) -> RecipientResult {
    let text = format!("{} {}", reply.code, reply.text.replace('\n', " "));
    match reply.code / 100 {
        2 => RecipientResult::Delivered,
        5 => RecipientResult::Failed(text),
        _ => RecipientResult::Deferred(text),
    }
}

fn parse_extensions(text: &str) -> Extensions {
    let mut extensions = Extensions::default();
    for line in text.lines().skip(1) {
        let mut words = line.split_whitespace();
        match words.next().map(str::to_ascii_uppercase).as_deref() {
            Some("PIPELINING") => extensions.pipelining = true,
            Some("STARTTLS") => extensions.starttls = true,
            Some("8BITMIME") => extensions.eight_bit = true,
            Some("SIZE") => extensions.size = Some(words.next().and_then(|w| w.parse().ok()).unwrap_or(0)),
            _ => {}
        }
    }
    extensions
}

/// Dot-stuffs a message and appends the terminator; a message without a final
/// CRLF gets one (RFC 5321 §4.5.2).
fn stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut line_start = true;
    for &byte in message {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        line_start = byte == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(stuff(b"a\r\n.b\r\n..c\r\n"), b"a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(stuff(b".x"), b"..x\r\n.\r\n");
    }

    #[test]
    fn ehlo_keywords_are_read() {
        let extensions = parse_extensions("mx Hello\nPIPELINING\nSIZE 1000\nSTARTTLS\n8BITMIME");
        assert!(extensions.pipelining && extensions.starttls && extensions.eight_bit);
        assert_eq!(extensions.size, Some(1000));
    }
}
