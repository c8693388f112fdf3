//! One inbound SMTP session: the RFC 5321 state machine over a [`Connection`],
//! run once in plain text and, after STARTTLS, again over TLS with a fresh state.

use std::{net::SocketAddr, sync::Arc};

use domainsec_model::{DomainPattern, ReceiveConnector};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, warn};

use super::budget::{BodyBudget, Reservation};
use super::connection::{Connection, Line, ReadError};
use crate::{
    apply::EdgeConfig,
    config::SessionLimits,
    domain_security::{
        DomainSecurity,
        policy::{self, InboundRequirement},
    },
    metrics::RelayMetrics,
    protocol_log::{Event, SessionLog},
    queue::Queue,
    smtp::{
        address::Mailbox,
        command::{Command, MailParams},
        reply::Reply,
        tls_info::TlsInfo,
    },
};

mod message;
mod partner;

/// Everything a session needs, fixed when the client connects (a configuration
/// change applies to the next session).
pub struct SessionContext {
    /// The configuration in force at connect time.
    pub config: Arc<EdgeConfig>,
    /// The receive connector serving this client.
    pub connector: ReceiveConnector,
    /// `edge\connector`, as the protocol log shows it.
    pub connector_id: String,
    /// The name in the banner and EHLO reply.
    pub fqdn: String,
    /// Present when STARTTLS is offered.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Limits.
    pub limits: SessionLimits,
    /// Where accepted mail goes.
    pub queue: Queue,
    /// Counters.
    pub metrics: Arc<RelayMetrics>,
    /// Partner certificate checks and counters.
    pub security: Arc<DomainSecurity>,
    /// Memory for bodies being received, shared by every session.
    pub budget: Arc<BodyBudget>,
    /// Cancelled when the edge stops: a session waiting for a command (not in the
    /// middle of BDAT) answers `421 4.3.2` and closes.
    pub draining: tokio_util::sync::CancellationToken,
    /// Our address.
    pub local: SocketAddr,
    /// The client's address.
    pub remote: SocketAddr,
}

/// What the command loop asks the caller to do next.
pub enum Next {
    /// Upgrade this connection to TLS and serve again.
    StartTls,
    /// Close the connection.
    Close,
}

/// Session state that survives across commands.
pub struct Session {
    context: Arc<SessionContext>,
    log: SessionLog,
    helo: Option<String>,
    esmtp: bool,
    transaction: Option<Transaction>,
    tls: Option<TlsInfo>,
    errors: u32,
    messages: u32,
}

/// A mail transaction in progress.
struct Transaction {
    from: Option<Mailbox>,
    params: MailParams,
    recipients: Vec<Mailbox>,
    /// BDAT chunks so far.
    chunks: Option<Chunks>,
    /// Set when the sender's domain is on the receive secure list and its partner verified.
    secured: Option<Secured>,
}

/// A message arriving in BDAT chunks.
struct Chunks {
    bytes: Vec<u8>,
    /// Octets received, kept or not.
    received: u64,
    /// A chunk did not fit the size limit or the memory budget.
    broken: bool,
    /// Its share of the edge's memory budget for bodies.
    reservation: Reservation,
}

/// A transaction from a verified partner (Domain Secured).
struct Secured {
    /// The receive-list entry that required it (the counters' key).
    entry: DomainPattern,
    domain: String,
    certificate_sha256: String,
}

enum Flow {
    Continue,
    StartTls,
    Quit,
}

impl Session {
    /// A new session; nothing is sent yet.
    pub fn new(context: Arc<SessionContext>, log: SessionLog) -> Self {
        Self { context, log, helo: None, esmtp: false, transaction: None, tls: None, errors: 0, messages: 0 }
    }

    /// The protocol log of this session.
    pub fn log(&mut self) -> &mut SessionLog {
        &mut self.log
    }

    /// The TLS acceptor configuration when STARTTLS is offered.
    pub fn tls_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.context.tls.clone()
    }

    /// Queues the greeting.
    pub fn greet<S: AsyncRead + AsyncWrite + Unpin>(&mut self, connection: &mut Connection<S>) {
        let reply = Reply::plain(220, vec![format!("{} DomainSec ESMTP ready", self.context.fqdn)]);
        self.send(connection, &reply);
    }

    /// Queues a reply and logs it.
    pub fn send<S: AsyncRead + AsyncWrite + Unpin>(&mut self, connection: &mut Connection<S>, reply: &Reply) {
        if self.log.is_enabled() {
            for line in reply.to_wire().lines() {
                self.log.record(Event::Sent, line, "");
            }
        }
        connection.reply(reply);
    }

    /// The edge is stopping: `421 4.3.2` to the next command, then close (RFC 5321
    /// §3.8). A transaction in DATA finished before this; one in BDAT finishes first.
    async fn close_for_shutdown<S: AsyncRead + AsyncWrite + Unpin>(&mut self, connection: &mut Connection<S>) -> Next {
        let reply = Reply::new(421, "4.3.2", format!("{} Service shutting down; try again later", self.context.fqdn));
        self.send(connection, &reply);
        let _ = connection.flush().await;
        self.log.record(Event::Information, "", "Shutting down");
        Next::Close
    }

    /// True while a message is arriving in BDAT chunks (it is allowed to finish).
    fn in_bdat(&self) -> bool {
        self.transaction.as_ref().is_some_and(|t| t.chunks.is_some())
    }

    /// After the TLS handshake: RFC 3207 §4.2 — forget everything learned before.
    pub fn start_tls(&mut self, info: TlsInfo) {
        self.helo = None;
        self.esmtp = false;
        self.transaction = None;
        self.tls = Some(info);
    }

    /// Serves commands until QUIT, STARTTLS, an error limit, a timeout or disconnect.
    pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&mut self, connection: &mut Connection<S>) -> Next {
        loop {
            let draining = self.context.draining.clone();
            let read = tokio::select! {
                biased;
                () = draining.cancelled(), if !self.in_bdat() => return self.close_for_shutdown(connection).await,
                read = connection.read_command(COMMAND_LINE_LIMIT) => read,
            };
            let line = match read {
                Ok(line) => line,
                Err(ReadError::Timeout) => {
                    let reply = Reply::new(421, "4.4.2", format!("{} Timeout; closing connection", self.context.fqdn));
                    self.send(connection, &reply);
                    let _ = connection.flush().await;
                    self.log.record(Event::Information, "", "Timeout");
                    return Next::Close;
                }
                Err(error) => {
                    debug!(%error, "session ended");
                    return Next::Close;
                }
            };
            let flow = match line {
                Line::TooLong => {
                    self.log.record(Event::Received, "(line over 512 octets)", "");
                    self.refuse(connection, Reply::new(500, "5.5.2", "Line too long; RFC 5321 allows 512 octets"))
                }
                Line::BareLf => {
                    self.log.record(Event::Received, "(line ending in bare LF)", "");
                    self.refuse(connection, Reply::new(500, "5.5.2", "Command lines must end with CRLF"))
                }
                Line::Command(bytes) => self.command(connection, &bytes).await,
            };
            match flow {
                Flow::Continue if self.errors >= self.context.limits.max_errors => {
                    let reply = Reply::new(421, "4.7.0", "Too many errors; closing connection");
                    self.send(connection, &reply);
                    let _ = connection.flush().await;
                    return Next::Close;
                }
                Flow::Continue => {}
                Flow::StartTls => {
                    let _ = connection.flush().await;
                    let dropped = connection.discard_buffered();
                    if dropped > 0 {
                        warn!(dropped, "discarded plain-text input pipelined after STARTTLS");
                    }
                    return Next::StartTls;
                }
                Flow::Quit => {
                    let _ = connection.flush().await;
                    return Next::Close;
                }
            }
        }
    }

    async fn command<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        connection: &mut Connection<S>,
        line: &[u8],
    ) -> Flow {
        if self.log.is_enabled() {
            self.log.record(Event::Received, &String::from_utf8_lossy(line), "");
        }
        let command = match Command::parse(line) {
            Ok(command) => command,
            Err(error) => return self.refuse(connection, error.reply()),
        };
        match command {
            Command::Ehlo(name) => self.hello(connection, name, true),
            Command::Helo(name) => self.hello(connection, name, false),
            Command::Mail { from, params } => self.mail(connection, from, params).await,
            Command::Rcpt { to } => self.rcpt(connection, to),
            Command::Data => self.data(connection).await,
            Command::Bdat { size, last } => self.bdat(connection, size, last).await,
            Command::Rset => {
                self.transaction = None;
                self.reply(connection, Reply::new(250, "2.0.0", "Resetting"))
            }
            Command::Noop => self.reply(connection, Reply::new(250, "2.0.0", "OK")),
            Command::Quit => {
                let reply =
                    Reply::new(221, "2.0.0", format!("{} Service closing transmission channel", self.context.fqdn));
                self.send(connection, &reply);
                Flow::Quit
            }
            Command::Vrfy => self.reply(
                connection,
                Reply::new(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"),
            ),
            Command::Expn => self.refuse(connection, Reply::new(502, "5.5.1", "EXPN is not available")),
            Command::Help => self.reply(connection, Reply::new(214, "2.0.0", "See RFC 5321")),
            Command::Auth => self.refuse(connection, Reply::new(502, "5.5.1", "AUTH is not offered on this connector")),
            Command::StartTls => self.start_tls_command(connection),
        }
    }

    fn hello<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        connection: &mut Connection<S>,
        name: String,
        esmtp: bool,
    ) -> Flow {
        self.transaction = None;
        self.helo = Some(name);
        self.esmtp = esmtp;
        let greeting = format!("{} Hello [{}]", self.context.fqdn, self.context.remote.ip());
        if !esmtp {
            return self.reply(connection, Reply::plain(250, vec![greeting]));
        }
        let mut lines = vec![
            greeting,
            format!("SIZE {}", self.context.connector.max_message_size.bytes()),
            "PIPELINING".to_owned(),
            "8BITMIME".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            "CHUNKING".to_owned(),
        ];
        if self.context.tls.is_some() && self.tls.is_none() {
            lines.push("STARTTLS".to_owned());
        }
        self.reply(connection, Reply::plain(250, lines))
    }

    async fn mail<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        connection: &mut Connection<S>,
        from: Option<Mailbox>,
        params: MailParams,
    ) -> Flow {
        if self.helo.is_none() {
            return self.refuse(connection, Reply::new(503, "5.5.1", "Send EHLO or HELO first"));
        }
        if self.transaction.is_some() {
            return self.refuse(connection, Reply::new(503, "5.5.1", "Sender already specified"));
        }
        let limit = self.context.connector.max_message_size.bytes();
        if params.size.is_some_and(|size| size > limit) {
            return self.refuse(
                connection,
                Reply::new(552, "5.3.4", format!("Message size exceeds fixed maximum message size of {limit} bytes")),
            );
        }
        let secured = match self.inbound_requirement(from.as_ref()) {
            InboundRequirement::NotRequired => None,
            InboundRequirement::Malformed { entry } => {
                let refusal = self.refuse_malformed(&entry);
                return self.refuse(connection, refusal);
            }
            InboundRequirement::Required { entry, domain } => match self.verify_partner(&entry, &domain).await {
                Ok(secured) => Some(secured),
                Err(refusal) => return self.refuse(connection, refusal),
            },
        };
        if !self.may_submit(secured.is_some()) {
            return self.refuse(
                connection,
                Reply::new(530, "5.7.1", "Client was not authenticated; this connector accepts no anonymous mail"),
            );
        }
        let shown = from.as_ref().map(ToString::to_string).unwrap_or_default();
        self.transaction = Some(Transaction { from, params, recipients: Vec::new(), chunks: None, secured });
        self.reply(connection, Reply::new(250, "2.1.0", format!("<{shown}> Sender OK")))
    }

    fn rcpt<S: AsyncRead + AsyncWrite + Unpin>(&mut self, connection: &mut Connection<S>, to: Mailbox) -> Flow {
        let max_recipients = self.context.limits.max_recipients;
        let may_relay = self.may_relay_to(&to);
        let Some(transaction) = self.transaction.as_mut() else {
            return self.refuse(connection, Reply::new(503, "5.5.1", "Need MAIL before RCPT"));
        };
        if transaction.recipients.len() >= max_recipients {
            return self.reply(
                connection,
                Reply::new(452, "4.5.3", format!("Too many recipients; at most {max_recipients} per message")),
            );
        }
        if !may_relay {
            return self.refuse(connection, Reply::new(550, "5.7.1", format!("<{to}> Unable to relay")));
        }
        let shown = to.to_string();
        transaction.recipients.push(to);
        self.reply(connection, Reply::new(250, "2.1.5", format!("<{shown}> Recipient OK")))
    }

    fn transaction_refusal(&self) -> Option<Reply> {
        match &self.transaction {
            None => Some(Reply::new(503, "5.5.1", "Need MAIL and RCPT before DATA")),
            Some(transaction) if transaction.recipients.is_empty() => {
                Some(Reply::new(554, "5.5.1", "No valid recipients"))
            }
            Some(_) => None,
        }
    }

    fn start_tls_command<S: AsyncRead + AsyncWrite + Unpin>(&mut self, connection: &mut Connection<S>) -> Flow {
        if self.tls.is_some() {
            return self.refuse(connection, Reply::new(503, "5.5.1", "TLS is already active"));
        }
        if self.context.tls.is_none() {
            return self.refuse(connection, Reply::new(502, "5.5.1", "STARTTLS is not offered on this connector"));
        }
        self.send(connection, &Reply::new(220, "2.0.0", "SMTP server ready"));
        Flow::StartTls
    }

    /// Who may submit ([`policy::submit_permission`]).
    fn may_submit(&self, partner: bool) -> bool {
        policy::submit_permission(&self.context.connector, partner).is_some()
    }

    /// Never an open relay ([`policy::relay_permission`]).
    fn may_relay_to(&self, recipient: &Mailbox) -> bool {
        let permission = policy::relay_permission(&self.context.config, &self.context.connector, recipient.domain());
        permission != policy::RelayPermission::Refused
    }

    fn reply<S: AsyncRead + AsyncWrite + Unpin>(&mut self, connection: &mut Connection<S>, reply: Reply) -> Flow {
        self.send(connection, &reply);
        Flow::Continue
    }

    fn refuse<S: AsyncRead + AsyncWrite + Unpin>(&mut self, connection: &mut Connection<S>, reply: Reply) -> Flow {
        self.errors += 1;
        self.send(connection, &reply);
        Flow::Continue
    }
}

/// The longest command line RFC 5321 §4.5.3.1.4 allows, CRLF included.
const COMMAND_LINE_LIMIT: usize = 512;
