//! Questions whose answers must say whether DNSSEC validated them: the MX RRset and the
//! TLSA records DANE needs (RFC 7672 §2.1), and the MTA-STS TXT record.
//!
//! The edge does not validate signatures itself: it asks a validating resolver it trusts
//! and believes that resolver's AD bit (docs/decisions/0008-dnssec-by-a-trusted-resolver.md),
//! as Postfix does with `smtp_dns_support_level = dnssec`. Each query sets RD, AD
//! (RFC 6840 §5.7) and EDNS0's DO bit; UDP first, TCP when the answer is truncated. A
//! validating resolver answers SERVFAIL for bogus data (RFC 4035 §5.5): that is a failure
//! here, which DANE turns into a deferral.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use tracing::debug;

/// Whether the resolver validated the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// AD set: every RRset in the answer (or the proof of non-existence) validated.
    Secure,
    /// AD clear: unsigned, or outside every trust anchor.
    Insecure,
}

/// What the resolver said, with its DNSSEC status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidatedAnswer {
    /// Records of the asked type (other types, e.g. a CNAME on the way, are dropped).
    Found(Security, Vec<RData>),
    /// The name exists without records of the type (NODATA).
    NoRecords(Security),
    /// NXDOMAIN.
    NoSuchName(Security),
    /// SERVFAIL (a validating resolver's answer for bogus data), another error code,
    /// a timeout or an unreachable resolver.
    Failed(String),
}

/// A stub client of one trusted validating resolver.
#[derive(Debug, Clone)]
pub struct ValidatingStub {
    server: SocketAddr,
    timeout: Duration,
}

// === impl ValidatedAnswer ===

impl ValidatedAnswer {
    /// The DNSSEC status of a definite answer; `None` for a failure.
    pub fn security(&self) -> Option<Security> {
        match self {
            Self::Found(security, _) | Self::NoRecords(security) | Self::NoSuchName(security) => Some(*security),
            Self::Failed(_) => None,
        }
    }
}

// === impl ValidatingStub ===

impl ValidatingStub {
    /// A client of `server`; `timeout` bounds each try (one UDP try, then TCP if truncated).
    pub fn new(server: SocketAddr, timeout: Duration) -> Self {
        Self { server, timeout }
    }

    /// The resolver asked.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Asks for `name`/`record_type` (`name` without the trailing dot).
    pub async fn query(&self, name: &str, record_type: RecordType) -> ValidatedAnswer {
        let Ok(fqdn) = Name::from_ascii(format!("{}.", name.trim_end_matches('.'))) else {
            return ValidatedAnswer::Failed(format!("{name}: not a DNS name"));
        };
        let request = request(&fqdn, record_type);
        let response = match self.exchange(&request).await {
            Ok(response) => response,
            Err(reason) => {
                debug!(%name, %record_type, %reason, "validated DNS query failed");
                return ValidatedAnswer::Failed(reason);
            }
        };
        interpret(&request, &response, &fqdn, record_type)
    }

    async fn exchange(&self, request: &Message) -> Result<Message, String> {
        let bytes = request.to_vec().map_err(|e| format!("cannot encode the query: {e}"))?;
        let response = tokio::time::timeout(self.timeout, self.udp(&bytes))
            .await
            .map_err(|_| format!("no answer from {} within {:?}", self.server, self.timeout))??;
        if !response.metadata.truncation {
            return Ok(response);
        }
        tokio::time::timeout(self.timeout, self.tcp(&bytes))
            .await
            .map_err(|_| format!("no TCP answer from {} within {:?}", self.server, self.timeout))?
    }

    async fn udp(&self, query: &[u8]) -> Result<Message, String> {
        let local: SocketAddr = match self.server {
            SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
        };
        let socket = UdpSocket::bind(local).await.map_err(|e| format!("cannot open a UDP socket: {e}"))?;
        socket.connect(self.server).await.map_err(|e| format!("{}: {e}", self.server))?;
        socket.send(query).await.map_err(|e| format!("{}: {e}", self.server))?;
        let mut buffer = vec![0u8; usize::from(MAX_UDP_PAYLOAD)];
        loop {
            // A connected socket only receives from the server; a reply to another query
            // id (a stale or forged datagram) is skipped, not believed.
            let length = socket.recv(&mut buffer).await.map_err(|e| format!("{}: {e}", self.server))?;
            let Some(slice) = buffer.get(..length) else { continue };
            match Message::from_vec(slice) {
                Ok(message) if message.metadata.id == query_id(query) => return Ok(message),
                // Garbage is skipped too: one stray datagram must not fail the query.
                Ok(_) | Err(_) => continue,
            }
        }
    }

    async fn tcp(&self, query: &[u8]) -> Result<Message, String> {
        let mut stream = TcpStream::connect(self.server).await.map_err(|e| format!("{}: {e}", self.server))?;
        let length = u16::try_from(query.len()).map_err(|_| "query too long".to_owned())?;
        let mut framed = length.to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        stream.write_all(&framed).await.map_err(|e| format!("{}: {e}", self.server))?;
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).await.map_err(|e| format!("{}: {e}", self.server))?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut answer).await.map_err(|e| format!("{}: {e}", self.server))?;
        let message = Message::from_vec(&answer).map_err(|e| format!("unreadable answer from {}: {e}", self.server))?;
        if message.metadata.id != query_id(query) {
            return Err(format!("{} answered another query", self.server));
        }
        Ok(message)
    }
}

/// A recursive query with AD and DO set.
fn request(name: &Name, record_type: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.id = rand_id();
    message.metadata.recursion_desired = true;
    message.metadata.authentic_data = true;
    message.add_query(Query::query(name.clone(), record_type));
    let mut edns = Edns::new();
    edns.set_max_payload(MAX_UDP_PAYLOAD);
    edns.set_dnssec_ok(true);
    message.set_edns(edns);
    message
}

/// Reads a response: only an answer to our question counts.
fn interpret(request: &Message, response: &Message, name: &Name, record_type: RecordType) -> ValidatedAnswer {
    if response.metadata.message_type != MessageType::Response
        || response.metadata.op_code != OpCode::Query
        || response.queries != request.queries
    {
        return ValidatedAnswer::Failed("the answer is not for the question asked".to_owned());
    }
    let security = if response.metadata.authentic_data { Security::Secure } else { Security::Insecure };
    match response.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return ValidatedAnswer::NoSuchName(security),
        ResponseCode::ServFail => {
            return ValidatedAnswer::Failed("SERVFAIL (DNSSEC validation failed, or the zone is unreachable)".into());
        }
        other => return ValidatedAnswer::Failed(format!("DNS error {other}")),
    }
    let records: Vec<RData> = response
        .answers
        .iter()
        .filter(|record| record.record_type() == record_type && names_equal(&record.name, name))
        .map(|record| record.data.clone())
        .collect();
    // A CNAME chain ends at another owner name: accept the records of the asked type
    // whatever their owner when no record sits at the asked name itself.
    let records = if records.is_empty() {
        response.answers.iter().filter(|r| r.record_type() == record_type).map(|r| r.data.clone()).collect()
    } else {
        records
    };
    if records.is_empty() { ValidatedAnswer::NoRecords(security) } else { ValidatedAnswer::Found(security, records) }
}

fn names_equal(a: &Name, b: &Name) -> bool {
    a.to_ascii().eq_ignore_ascii_case(&b.to_ascii())
}

fn query_id(query: &[u8]) -> u16 {
    match query {
        [high, low, ..] => u16::from_be_bytes([*high, *low]),
        _ => 0,
    }
}

/// A query id from the system's randomness (RFC 5452: unpredictable ids).
fn rand_id() -> u16 {
    let mut bytes = [0u8; 2];
    // Without randomness the id is 0: the answer is still matched by question and
    // source, and the resolver is a trusted local one.
    let _ = getrandom::fill(&mut bytes);
    u16::from_be_bytes(bytes)
}

/// EDNS0 payload size (DNS flag day 2020's 1232 bytes).
const MAX_UDP_PAYLOAD: u16 = 1232;
