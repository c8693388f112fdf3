//! Delivering one due message: route each pending recipient (maildir, or a send
//! connector's next hops), one transaction per destination, connections reused
//! and capped per destination; permanent failures and expiry produce a DSN.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Instant, SystemTime},
};

use domainsec_model::{Domain, ProtocolLoggingLevel, Routing, SendConnector, SmartHostName};
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info, warn};

use super::{
    Due, Queue,
    spool::{Envelope, Outcome, Spool},
};
use crate::{
    apply::EdgeConfig,
    delivery::{
        dsn,
        maildir::{Maildir, MaildirError},
    },
    domain_security::{DomainSecurity, peer::PeerRole},
    protocol_log::{ProtocolLog, SessionLog, new_session_id},
    routing::{
        Route,
        dns::{MxResolver, NextHop, RouteError},
        route,
    },
    smtp::{
        address::Mailbox,
        credentials::Credentials,
        outbound::{AttemptError, ClientTimeouts, OutboundSession, RecipientResult},
    },
};

/// What one delivery attempt decided.
#[derive(Debug, Default)]
pub struct Report {
    /// Recipients that reached a final state, by index.
    pub outcomes: Vec<(usize, Outcome)>,
    /// The last temporary failure, for `dsctl queue list`.
    pub last_error: Option<String>,
}

/// The delivery side of the relay.
pub struct Delivery {
    config: watch::Receiver<Option<Arc<EdgeConfig>>>,
    resolver: MxResolver,
    credentials: Arc<Credentials>,
    maildir: Maildir,
    log: ProtocolLog,
    pool: Mutex<HashMap<PoolKey, Vec<(OutboundSession, Instant)>>>,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    security: Arc<DomainSecurity>,
}

/// Idle sessions are kept per send connector, next-hop address and, for Domain
/// Security, the partner domain and configuration version the session was verified
/// for (a new trusted root or CRL proxy means a new session and a new check).
type PoolKey = (String, SocketAddr, Option<(String, u64)>);

/// Recipients of one message that share a send connector and destination.
struct Group<'a> {
    connector: &'a SendConnector,
    domain: String,
    recipients: Vec<usize>,
}

impl Delivery {
    /// The delivery side: configuration, next-hop lookup, credentials, local maildir, Send log.
    pub fn new(
        config: watch::Receiver<Option<Arc<EdgeConfig>>>,
        resolver: MxResolver,
        credentials: Arc<Credentials>,
        maildir: Maildir,
        log: ProtocolLog,
        security: Arc<DomainSecurity>,
    ) -> Self {
        Self { config, resolver, credentials, maildir, log, pool: Mutex::default(), limits: Mutex::default(), security }
    }

    /// Attempts every pending recipient of `due` once.
    pub async fn deliver(&self, queue: &Queue, due: Due) -> Report {
        let mut report = Report::default();
        let Some(config) = self.config.borrow().clone() else {
            report.last_error = Some("the edge has no configuration yet".into());
            return report;
        };
        let envelope = due.envelope.clone();
        let message = match due.fresh {
            Some(message) => message,
            None => match read_body(queue.spool(), &envelope.id).await {
                Ok(message) => Arc::new(message),
                Err(error) => {
                    warn!(%error, "cannot read the queued message");
                    report.last_error = Some(format!("cannot read the queued message: {error}"));
                    return report;
                }
            },
        };
        let mut groups: BTreeMap<(String, String), Group<'_>> = BTreeMap::new();
        for &index in &due.pending {
            let Some(recipient) = envelope.recipients.get(index) else { continue };
            let Ok(domain) = Domain::parse(recipient.domain()) else {
                report
                    .outcomes
                    .push((index, Outcome::Failed("550 5.1.2 The recipient's domain is not a valid host name".into())));
                continue;
            };
            match route(&config, &domain) {
                Route::Local => {
                    let outcome = self.deliver_local(recipient, &message).await;
                    match outcome {
                        Ok(()) => report.outcomes.push((index, Outcome::Delivered)),
                        Err(LocalError::Permanent(text)) => report.outcomes.push((index, Outcome::Failed(text))),
                        Err(LocalError::Temporary(text)) => report.last_error = Some(text),
                    }
                }
                Route::Unroutable => report.outcomes.push((
                    index,
                    Outcome::Failed(format!("550 5.4.4 No send connector covers {domain}; unable to route")),
                )),
                Route::Connector(connector) => {
                    let key_domain = match connector.routing {
                        Routing::Dns => domain.to_string(),
                        Routing::SmartHosts(_) => String::new(),
                    };
                    groups
                        .entry((connector.name.to_string(), key_domain.clone()))
                        .or_insert_with(|| Group { connector, domain: key_domain, recipients: Vec::new() })
                        .recipients
                        .push(index);
                }
            }
        }
        for group in groups.into_values() {
            self.deliver_group(queue, &config, &envelope, &message, group, &mut report).await;
        }
        self.expire(queue, &envelope, &due.pending, &mut report);
        // Counted after expiry, so recipients that expired count as failed.
        let delivered = report.outcomes.iter().filter(|(_, o)| *o == Outcome::Delivered).count();
        let metrics = queue.metrics();
        metrics.add(&metrics.recipients_delivered, delivered as u64);
        metrics.add(&metrics.recipients_failed, (report.outcomes.len() - delivered) as u64);
        self.notify_sender(queue, &config, &envelope, &message, &report).await;
        report
    }

    /// A message past its expiry: every recipient still pending fails with the last error.
    fn expire(&self, queue: &Queue, envelope: &Envelope, pending: &[usize], report: &mut Report) {
        let expiry = queue.settings().message_expiry;
        let age = SystemTime::now().duration_since(envelope.arrival).unwrap_or_default();
        if age < expiry {
            return;
        }
        let last = report.last_error.clone().unwrap_or_else(|| "no delivery attempt succeeded".into());
        for &index in pending {
            if report.outcomes.iter().all(|(i, _)| *i != index) {
                report.outcomes.push((
                    index,
                    Outcome::Failed(format!(
                        "500 4.4.7 Message expired after {}: {last}",
                        humantime::format_duration(expiry)
                    )),
                ));
            }
        }
    }

    /// Sends a DSN for the recipients that failed in this attempt, unless the
    /// sender is null (RFC 5321 §6.1: never answer a bounce with a bounce).
    async fn notify_sender(
        &self,
        queue: &Queue,
        config: &EdgeConfig,
        envelope: &Envelope,
        message: &[u8],
        report: &Report,
    ) {
        let Some(sender) = &envelope.sender else { return };
        let failed: Vec<dsn::FailedRecipient> = report
            .outcomes
            .iter()
            .filter_map(|(index, outcome)| match outcome {
                Outcome::Failed(text) => Some((index, text)),
                Outcome::Delivered => None,
            })
            .filter_map(|(index, text)| {
                let recipient = envelope.recipients.get(*index)?;
                Some(dsn::FailedRecipient {
                    address: recipient.to_string(),
                    action: dsn::Action::Failed,
                    status: enhanced_status(text),
                    diagnostic: Some(text.clone()),
                    remote_mta: None,
                    last_attempt: Some(SystemTime::now()),
                })
            })
            .collect();
        if failed.is_empty() {
            return;
        }
        let sender_text = sender.to_string();
        let fqdn = config.fqdn.to_string();
        let report = dsn::DeliveryReport {
            reporting_mta: &fqdn,
            sender: &sender_text,
            envelope_id: envelope.envelope_id.as_deref(),
            arrival: envelope.arrival,
            recipients: &failed,
            original_message: message,
            message_id_domain: &fqdn,
        };
        let body = dsn::build(&report, SystemTime::now());
        let notification = Envelope {
            id: Spool::new_id(),
            arrival: SystemTime::now(),
            sender: None,
            envelope_id: None,
            recipients: vec![sender.clone()],
            source: "dsn".to_owned(),
            client: None,
        };
        let id = notification.id.clone();
        match queue.submit(notification, body).await {
            Ok(()) => {
                queue.metrics().add(&queue.metrics().dsns_sent, 1);
                info!(dsn = %id, recipients = failed.len(), "delivery status notification queued for the sender");
            }
            Err(error) => warn!(%error, "cannot queue the delivery status notification"),
        }
    }

    async fn deliver_local(&self, recipient: &Mailbox, message: &Arc<Vec<u8>>) -> Result<(), LocalError> {
        let (maildir, recipient_text, message) = (self.maildir.clone(), recipient.to_string(), message.clone());
        let delivered = tokio::task::spawn_blocking(move || maildir.deliver(&recipient_text, &message)).await;
        match delivered {
            Ok(Ok(path)) => {
                debug!(path = %path.display(), "delivered to the local maildir");
                Ok(())
            }
            Ok(Err(MaildirError::BadAddress { reason, .. })) => {
                Err(LocalError::Permanent(format!("550 5.1.3 Cannot deliver locally: {reason}")))
            }
            Ok(Err(error)) => Err(LocalError::Temporary(format!("451 4.3.0 Local delivery failed: {error}"))),
            Err(error) => Err(LocalError::Temporary(format!("451 4.3.0 Local delivery failed: {error}"))),
        }
    }

    async fn deliver_group(
        &self,
        queue: &Queue,
        config: &EdgeConfig,
        envelope: &Envelope,
        message: &[u8],
        group: Group<'_>,
        report: &mut Report,
    ) {
        let connector = group.connector;
        let limit = connector.max_message_size.bytes();
        if message.len() as u64 > limit {
            let text =
                format!("552 5.3.4 Message is larger than send connector {} allows ({limit} bytes)", connector.name);
            report.outcomes.extend(group.recipients.iter().map(|&i| (i, Outcome::Failed(text.clone()))));
            return;
        }
        let destination = format!("{}:{}", connector.name, group.domain);
        if !queue.destination_ready(&destination) {
            report.last_error = Some(format!("{destination} is in retry backoff after earlier failures"));
            return;
        }
        let hops = match self.next_hops(connector, &group.domain).await {
            Ok(hops) => hops,
            Err(error) if error.is_permanent() => {
                let text = format!("550 {} {error}", error.enhanced_status());
                report.outcomes.extend(group.recipients.iter().map(|&i| (i, Outcome::Failed(text.clone()))));
                return;
            }
            Err(error) => {
                report.last_error = Some(format!("451 {} {error}", error.enhanced_status()));
                queue.destination_result(&destination, false);
                return;
            }
        };
        let recipients: Vec<&Mailbox> = group.recipients.iter().filter_map(|&i| envelope.recipients.get(i)).collect();
        let permit = self
            .destination_limit(&destination, queue.settings().max_connections_per_destination)
            .acquire_owned()
            .await;
        let ehlo = connector.fqdn.as_ref().unwrap_or(&config.fqdn).to_string();
        // Outbound Domain Security: the recipient's domain is on the send secure list and the
        // connector (DNS-routed, as the directory enforces) has Domain Security on.
        let secure = (connector.domain_secure_enabled
            && Domain::parse(&group.domain).is_ok_and(|d| config.transport.requires_secure_send(&d)))
        .then(|| group.domain.clone());
        let mut last_error = String::from("no next hop answered");
        let mut last_status = "4.4.1";
        for hop in &hops {
            for &address in &hop.addresses {
                let target = Target { connector, hop, address, ehlo: &ehlo, secure: secure.as_deref() };
                let mut session = match self.session(config, &target, queue).await {
                    Ok(session) => session,
                    Err(error) => {
                        debug!(%address, %error, "next hop failed");
                        if let (Some(domain), AttemptError::DomainSecurity { kind, reason, .. }) = (&secure, &error) {
                            warn!(%address, %domain, %reason, "Domain Security session failed");
                            self.security.counters.outbound_failure(domain, kind);
                        }
                        last_status = error.status();
                        last_error = format!("{} [{address}]: {error}", hop.host);
                        continue;
                    }
                };
                match session.send(envelope.sender.as_ref(), &recipients, message).await {
                    Ok(results) => {
                        queue.destination_result(&destination, true);
                        self.release(connector, address, secure.clone().map(|d| (d, config.version)), session);
                        let mut delivered = false;
                        for (&index, result) in group.recipients.iter().zip(results) {
                            match result {
                                RecipientResult::Delivered => {
                                    delivered = true;
                                    report.outcomes.push((index, Outcome::Delivered));
                                }
                                RecipientResult::Failed(text) => report.outcomes.push((index, Outcome::Failed(text))),
                                RecipientResult::Deferred(text) => {
                                    queue.metrics().add(&queue.metrics().deliveries_deferred, 1);
                                    report.last_error = Some(format!("{}: {text}", hop.host));
                                }
                            }
                        }
                        if let (Some(domain), true) = (&secure, delivered) {
                            self.security.counters.sent(domain);
                        }
                        drop(permit);
                        return;
                    }
                    Err(error) => {
                        debug!(%address, %error, "transaction failed");
                        last_status = error.status();
                        last_error = format!("{} [{address}]: {error}", hop.host);
                    }
                }
            }
        }
        drop(permit);
        queue.metrics().add(&queue.metrics().deliveries_deferred, 1);
        queue.destination_result(&destination, false);
        report.last_error = Some(format!("451 {last_status} {last_error}"));
    }

    async fn next_hops(&self, connector: &SendConnector, domain: &str) -> Result<Vec<NextHop>, RouteError> {
        match &connector.routing {
            Routing::Dns => self.resolver.resolve_domain(domain).await,
            Routing::SmartHosts(hosts) => {
                let mut hops = Vec::new();
                let mut last = None;
                for host in hosts {
                    let name = match host.host() {
                        SmartHostName::Name(name) => name.to_string(),
                        SmartHostName::Ip(ip) => ip.to_string(),
                    };
                    match self.resolver.resolve_host(&name, host.port()).await {
                        Ok(hop) => hops.push(hop),
                        Err(error) => last = Some(error),
                    }
                }
                match (hops.is_empty(), last) {
                    (true, Some(error)) => Err(error),
                    _ => Ok(hops),
                }
            }
        }
    }

    /// A pooled session to the target if one is idle, else a new one; for Domain
    /// Security a new session's server certificate is checked before it is used.
    async fn session(
        &self,
        config: &EdgeConfig,
        target: &Target<'_>,
        queue: &Queue,
    ) -> Result<OutboundSession, AttemptError> {
        let key =
            (target.connector.name.to_string(), target.address, target.secure.map(|d| (d.to_owned(), config.version)));
        let idle = queue.settings().connection_idle;
        loop {
            let pooled = self.pool.lock().unwrap_or_else(PoisonError::into_inner).get_mut(&key).and_then(Vec::pop);
            match pooled {
                Some((session, since)) if since.elapsed() < idle => return Ok(session),
                Some((session, _)) => drop(tokio::spawn(session.quit())),
                None => break,
            }
        }
        let log = match target.connector.protocol_logging_level {
            ProtocolLoggingLevel::Verbose => {
                let connector_id = target.connector.name.to_string();
                self.log.session(&connector_id, &new_session_id(), unspecified(target.address), target.address)
            }
            ProtocolLoggingLevel::None => SessionLog::disabled(),
        };
        let timeouts =
            ClientTimeouts { command: queue.settings().command_timeout, data: queue.settings().data_timeout };
        let certificate = self.credentials.certificate_for(target.ehlo).map(|c| c.certified);
        let require_tls = target.secure.is_some();
        let mut session = OutboundSession::open(
            target.address,
            &target.hop.host,
            target.ehlo,
            certificate,
            require_tls,
            timeouts,
            log,
        )
        .await?;
        if session.tls.is_some() {
            queue.metrics().add(&queue.metrics().tls_outbound, 1);
        }
        if let Some(domain) = target.secure {
            let chain = session.tls.as_ref().map(|t| t.peer_certificates.clone()).unwrap_or_default();
            match self.security.check(config, &chain, PeerRole::Server, domain).await {
                Ok(peer) => session.note(&format!("Domain Secured: {domain}; cert={}", peer.sha256)),
                Err(failure) => {
                    let reason = format!("Server certificate not verified: {failure}");
                    session.note(&format!("4.7.5 {reason}"));
                    session.quit().await;
                    return Err(AttemptError::DomainSecurity { status: "4.7.5", kind: failure.kind(), reason });
                }
            }
        }
        Ok(session)
    }

    fn release(
        &self,
        connector: &SendConnector,
        address: SocketAddr,
        secure: Option<(String, u64)>,
        session: OutboundSession,
    ) {
        let key = (connector.name.to_string(), address, secure);
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .push((session, Instant::now()));
    }

    fn destination_limit(&self, destination: &str, limit: usize) -> Arc<Semaphore> {
        self.limits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(destination.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(limit.max(1))))
            .clone()
    }

    /// Closes pooled connections idle longer than `idle` (run periodically).
    pub fn close_idle(&self, idle: std::time::Duration) {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        for sessions in pool.values_mut() {
            let (keep, expired): (Vec<_>, Vec<_>) = sessions.drain(..).partition(|(_, since)| since.elapsed() < idle);
            *sessions = keep;
            for (session, _) in expired {
                tokio::spawn(session.quit());
            }
        }
        pool.retain(|_, sessions| !sessions.is_empty());
    }
}

/// Where one delivery attempt goes.
struct Target<'a> {
    connector: &'a SendConnector,
    hop: &'a NextHop,
    address: SocketAddr,
    ehlo: &'a str,
    /// The partner domain when Domain Security applies.
    secure: Option<&'a str>,
}

enum LocalError {
    Permanent(String),
    Temporary(String),
}

async fn read_body(spool: &Spool, id: &str) -> std::io::Result<Vec<u8>> {
    let (spool, id) = (spool.clone(), id.to_owned());
    tokio::task::spawn_blocking(move || spool.read_message(&id)).await.map_err(std::io::Error::other)?
}

/// The enhanced status in a reply text (`550 5.1.1 ...` → `5.1.1`), else `5.0.0`.
fn enhanced_status(text: &str) -> String {
    text.split_whitespace()
        .nth(1)
        .filter(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map_or_else(
            || "5.0.0".to_owned(),
            |word| {
                // A final failure is reported as permanent (5.x.x) even when the last reply was
                // 4.x.x; expiry keeps its 4.4.7, as Postfix reports it.
                let mut status = word.to_owned();
                if status.starts_with('4') && !text.contains("4.4.7") {
                    status.replace_range(..1, "5");
                }
                status
            },
        )
}

/// The local endpoint is not known before connecting; the log shows the family's any-address.
fn unspecified(remote: SocketAddr) -> SocketAddr {
    match remote {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    }
}
