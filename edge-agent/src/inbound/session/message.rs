//! The message itself: DATA and BDAT, the content rules, the `Received:` header and
//! the Domain Secured mark, and the `250` that follows an fsynced spool file.

use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{info, warn};

use super::{Chunks, Flow, Session, Transaction};
use crate::{
    domain_security::mark,
    inbound::{
        budget::BodyBudget,
        connection::{Body, Connection},
    },
    protocol_log::Event,
    queue::spool::Envelope,
    smtp::reply::Reply,
};

impl Session {
    pub(super) async fn data<S: AsyncRead + AsyncWrite + Unpin>(&mut self, connection: &mut Connection<S>) -> Flow {
        if let Some(refusal) = self.transaction_refusal() {
            return self.refuse(connection, refusal);
        }
        if self.transaction.as_ref().is_some_and(|t| t.chunks.is_some()) {
            // RFC 3030 §2: DATA may not follow BDAT in one transaction.
            return self.refuse(connection, Reply::new(503, "5.5.1", "DATA not allowed after BDAT; send BDAT LAST"));
        }
        let reply = Reply::new(354, "", "Start mail input; end with <CRLF>.<CRLF>");
        self.send(connection, &Reply { status: "", ..reply });
        if connection.flush().await.is_err() {
            return Flow::Quit;
        }
        let limit = self.context.connector.max_message_size.bytes();
        let mut reservation = self.context.budget.reservation();
        let body = match connection.read_data(limit, self.context.limits.max_line_length, &mut reservation).await {
            Ok(body) => body,
            Err(_) => return Flow::Quit,
        };
        if let Some(refusal) = body_refusal(&body, limit, self.context.limits.max_line_length) {
            self.transaction = None;
            return self.refuse(connection, refusal);
        }
        // The reservation is held until the message is on disk and in the queue.
        let flow = self.accept(connection, body.bytes).await;
        drop(reservation);
        flow
    }

    pub(super) async fn bdat<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        connection: &mut Connection<S>,
        size: u64,
        last: bool,
    ) -> Flow {
        let limit = self.context.connector.max_message_size.bytes();
        let refusal = self.transaction_refusal();
        let mut discard = Vec::new();
        let budget = self.context.budget.clone();
        let refused = match (&refusal, self.transaction.as_mut()) {
            (None, Some(transaction)) => {
                let chunks = transaction.chunks.get_or_insert_with(|| Chunks {
                    bytes: Vec::new(),
                    received: 0,
                    broken: false,
                    reservation: budget.reservation(),
                });
                let within = match connection.read_chunk(size, &mut chunks.bytes, limit, &mut chunks.reservation).await
                {
                    Ok(within) => within,
                    Err(_) => return Flow::Quit,
                };
                chunks.received += size;
                chunks.broken |= !within;
                None
            }
            _ => {
                // RFC 3030: the chunk is read (and dropped) even when refused.
                let mut unlimited = BodyBudget::new(0).reservation();
                if connection.read_chunk(size, &mut discard, 0, &mut unlimited).await.is_err() {
                    return Flow::Quit;
                }
                refusal
            }
        };
        if let Some(refusal) = refused {
            return self.refuse(connection, refusal);
        }
        if !last {
            return self.reply(connection, Reply::new(250, "2.0.0", format!("{size} octets received")));
        }
        let Some(chunks) = self.transaction.as_mut().and_then(|t| t.chunks.take()) else {
            return self.refuse(connection, Reply::new(503, "5.5.1", "Need MAIL and RCPT before BDAT"));
        };
        if chunks.received > limit {
            self.transaction = None;
            return self.refuse(
                connection,
                Reply::new(552, "5.3.4", format!("Message size exceeds fixed maximum message size of {limit} bytes")),
            );
        }
        if chunks.broken {
            self.transaction = None;
            return self.reply(connection, insufficient_storage());
        }
        // BINARYMIME is not offered: chunks hold text, held to the same rules as DATA.
        let scanned = scan_text(&chunks.bytes, self.context.limits.max_line_length);
        if let Some(refusal) = body_refusal(&scanned, limit, self.context.limits.max_line_length) {
            self.transaction = None;
            return self.refuse(connection, refusal);
        }
        let Chunks { bytes, reservation, .. } = chunks;
        let flow = self.accept(connection, bytes).await;
        drop(reservation);
        flow
    }

    /// Spools the message and answers `250` only once it is on disk.
    pub(super) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        connection: &mut Connection<S>,
        body: Vec<u8>,
    ) -> Flow {
        let Some(transaction) = self.transaction.take() else {
            return self.refuse(connection, Reply::new(503, "5.5.1", "Need MAIL before DATA"));
        };
        let id = match crate::queue::spool::Spool::new_id() {
            Ok(id) => id,
            Err(error) => {
                tracing::error!(%error, "cannot make a queue id; answering 451");
                return self
                    .reply(connection, Reply::new(451, "4.3.0", "Cannot queue the message now; try again later"));
            }
        };
        let mut message = self.received_header(&id, &transaction);
        if let Some(secured) = &transaction.secured {
            message.extend_from_slice(
                mark::mark(&self.context.fqdn, &secured.domain, &secured.certificate_sha256).as_bytes(),
            );
        }
        // Nobody outside can forge the mark: any copy arriving with the message goes,
        // and so does every Authentication-Results claiming to be the organization's.
        let config = &self.context.config;
        let own = mark::OwnNames::new([self.context.fqdn.as_str(), config.fqdn.as_str()], &config.organization_domains);
        message.extend_from_slice(&mark::scrub(&body, &own));
        let secured_entry = transaction.secured.as_ref().map(|s| s.entry.clone());
        let envelope = Envelope {
            id: id.clone(),
            arrival: SystemTime::now(),
            sender: transaction.from,
            envelope_id: transaction.params.envelope_id,
            recipients: transaction.recipients,
            source: self.context.connector_id.clone(),
            client: Some(self.context.remote),
        };
        let recipients = envelope.recipients.len();
        match self.context.queue.submit(envelope, message).await {
            Ok(()) => {
                self.messages += 1;
                self.context.metrics.add(&self.context.metrics.messages_received, 1);
                if let Some(entry) = &secured_entry {
                    self.context.security.counters.received(entry);
                }
                info!(queue_id = %id, recipients, "message accepted");
                self.log.record(Event::Information, &id, "Message queued");
                self.reply(connection, Reply::new(250, "2.6.0", format!("<{id}> Queued mail for delivery")))
            }
            Err(error) => {
                warn!(%error, "cannot spool the message; answering 451");
                self.reply(connection, Reply::new(451, "4.3.0", "Cannot queue the message now; try again later"))
            }
        }
    }

    pub(super) fn received_header(&self, id: &str, transaction: &Transaction) -> Vec<u8> {
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let protocol = match (&self.tls, self.esmtp) {
            (Some(_), _) => "ESMTPS",
            (None, true) => "ESMTP",
            (None, false) => "SMTP",
        };
        let tls = self.tls.as_ref().map(|t| format!(" {}", t.received_comment())).unwrap_or_default();
        let recipient = match transaction.recipients.as_slice() {
            [only] => format!("\r\n\tfor <{only}>"),
            _ => String::new(),
        };
        let date =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc2822).unwrap_or_default();
        format!(
            "Received: from {} ([{}])\r\n\tby {} (DomainSec) with {protocol}{tls} id {id}{recipient};\r\n\t{date}\r\n",
            sanitize_helo(helo),
            self.context.remote.ip(),
            self.context.fqdn
        )
        .into_bytes()
    }
}

/// The content checks of DATA, for a message that arrived in BDAT chunks.
fn scan_text(message: &[u8], line_limit: usize) -> Body {
    let mut body = Body { received: message.len() as u64, ..Body::default() };
    let mut line_start = 0;
    for (index, &byte) in message.iter().enumerate() {
        match byte {
            0 => body.nul = true,
            b'\n' => {
                if index == 0 || message[index - 1] != b'\r' {
                    body.bare_line_ending = true;
                }
                if index + 1 - line_start > line_limit {
                    body.long_line = true;
                }
                line_start = index + 1;
            }
            b'\r' if message.get(index + 1) != Some(&b'\n') => body.bare_line_ending = true,
            _ => {}
        }
    }
    if message.len() - line_start > line_limit {
        body.long_line = true;
    }
    body
}

/// The edge's memory for incoming bodies is spoken for: a temporary refusal.
fn insufficient_storage() -> Reply {
    Reply::new(452, "4.3.1", "Insufficient system storage; try again later")
}

fn body_refusal(body: &Body, limit: u64, line_limit: usize) -> Option<Reply> {
    if body.received > limit {
        return Some(Reply::new(
            552,
            "5.3.4",
            format!("Message size exceeds fixed maximum message size of {limit} bytes"),
        ));
    }
    if body.over_budget {
        return Some(insufficient_storage());
    }
    if body.bare_line_ending {
        return Some(Reply::new(
            550,
            "5.6.0",
            "Message refused: bare CR or LF in the message text; lines must end with CRLF (RFC 5321 section 2.3.8)",
        ));
    }
    if body.nul {
        return Some(Reply::new(550, "5.6.0", "Message refused: NUL character in the message text"));
    }
    if body.long_line {
        return Some(Reply::new(
            550,
            "5.6.0",
            format!("Message refused: a text line is longer than {line_limit} octets (RFC 5321 section 4.5.3.1.6)"),
        ));
    }
    None
}

/// The HELO name goes into a header: keep it to printable ASCII without spaces.
fn sanitize_helo(helo: &str) -> String {
    helo.chars().filter(|c| c.is_ascii_graphic() && !matches!(c, '(' | ')' | ';')).take(255).collect()
}
