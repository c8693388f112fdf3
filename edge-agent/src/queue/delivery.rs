//! Delivering one due message: route each pending recipient (maildir, or a send
//! connector's next hops), one transaction per destination, connections reused
//! and capped per destination; permanent failures and expiry produce a DSN.

mod partner_test;

use std::{
    collections::{BTreeMap, HashMap},
    io,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Instant, SystemTime},
};

use domainsec_model::{Domain, DomainPattern, ProtocolLoggingLevel, Routing, SendConnector, SmartHostName};
use tokio::sync::{Semaphore, watch};
use tracing::{debug, error, info, warn};

use super::{
    Due, Queue,
    spool::{Envelope, Failure, NoRandomness, Outcome, Spool},
};
use crate::{
    apply::EdgeConfig,
    delivery::{
        dsn,
        maildir::{Maildir, MaildirError},
    },
    domain_security::{
        DomainSecurity,
        dane::{self, DaneFailure, DaneRequirement},
        mta_sts,
        peer::PeerRole,
        policy::{HopRequirement, OutboundPolicy},
        refusal::SecurityFailure,
    },
    outbound::{AttemptError, ClientTimeouts, OutboundSession, RecipientResult},
    protocol_log::{ProtocolLog, SessionLog, new_session_id},
    routing::{
        Route,
        dns::{MxResolver, NextHop, RouteError},
        route,
    },
    smtp::{address::Mailbox, credentials::Credentials},
};

/// What one delivery attempt decided.
#[derive(Debug, Default)]
pub struct Report {
    /// Recipients that reached a final state, by index.
    pub outcomes: Vec<(usize, Outcome)>,
    /// The last temporary failure, for `dsctl queue list`.
    pub last_error: Option<String>,
    /// The body could not be read: once every recipient is final, the message's
    /// files go to the spool's `corrupt/` instead of being deleted.
    pub corrupt: bool,
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
        let fqdn = config.fqdn.to_string();
        let message = match body(queue, &fqdn, &due).await {
            Ok(message) => message,
            Err(report) => return report,
        };
        let mut groups: BTreeMap<(String, String), Group<'_>> = BTreeMap::new();
        for &index in &due.pending {
            let Some(recipient) = envelope.recipients.get(index) else { continue };
            let Ok(domain) = Domain::parse(recipient.domain()) else {
                report.outcomes.push((
                    index,
                    Outcome::Failed(Failure::new(550, "5.1.2", "The recipient's domain is not a valid host name")),
                ));
                continue;
            };
            match route(&config, &domain) {
                Route::Local => {
                    let outcome = self.deliver_local(recipient, &message).await;
                    match outcome {
                        Ok(()) => report.outcomes.push((index, Outcome::Delivered)),
                        Err(LocalError::Permanent(failure)) => report.outcomes.push((index, Outcome::Failed(failure))),
                        Err(LocalError::Temporary(text)) => report.last_error = Some(text),
                    }
                }
                Route::Unroutable => report.outcomes.push((
                    index,
                    Outcome::Failed(Failure::new(
                        550,
                        "5.4.4",
                        format!("No send connector covers {domain}; unable to route"),
                    )),
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
        settle(queue, &fqdn, &envelope, &message, &mut report).await;
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
                    Outcome::Failed(Failure::new(
                        500,
                        "4.4.7",
                        format!("Message expired after {}: {last}", humantime::format_duration(expiry)),
                    )),
                ));
            }
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
                Err(LocalError::Permanent(Failure::new(550, "5.1.3", format!("Cannot deliver locally: {reason}"))))
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
        let destination = format!("{}:{}", connector.name, group.domain);
        let Some(hops) = self.group_hops(queue, &destination, message, &group, report).await else { return };
        let recipients: Vec<&Mailbox> = group.recipients.iter().filter_map(|&i| envelope.recipients.get(i)).collect();
        let _permit = self
            .destination_limit(&destination, queue.settings().max_connections_per_destination)
            .acquire_owned()
            .await;
        let ehlo = connector.fqdn.as_ref().unwrap_or(&config.fqdn).to_string();
        let policy = self.security.outbound_policy(config, connector, &group.domain, &self.resolver).await;
        debug!(domain = %group.domain, source = %policy.source(), "outbound TLS policy");
        let attempt = GroupAttempt { config, group: &group, ehlo: &ehlo, policy: &policy };
        match self.try_hops(queue, &attempt, &hops, envelope.sender.as_ref(), &recipients, message).await {
            Ok((host, results)) => {
                queue.destination_result(&destination, true);
                self.record_results(queue, &attempt, &host, results, report);
            }
            Err(last_error) => {
                queue.metrics().add(&queue.metrics().deliveries_deferred, 1);
                queue.destination_result(&destination, false);
                report.last_error = Some(last_error);
            }
        }
    }

    /// The next hops for a group, or `None` with the group's outcome recorded: too
    /// large for the connector, destination in backoff, or no route.
    async fn group_hops(
        &self,
        queue: &Queue,
        destination: &str,
        message: &[u8],
        group: &Group<'_>,
        report: &mut Report,
    ) -> Option<Vec<NextHop>> {
        let connector = group.connector;
        let fail_all = |report: &mut Report, failure: Failure| {
            report.outcomes.extend(group.recipients.iter().map(|&i| (i, Outcome::Failed(failure.clone()))));
        };
        let limit = connector.max_message_size.bytes();
        if message.len() as u64 > limit {
            let text = format!("Message is larger than send connector {} allows ({limit} bytes)", connector.name);
            fail_all(report, Failure::new(552, "5.3.4", text));
            return None;
        }
        if !queue.destination_ready(destination) {
            report.last_error = Some(format!("{destination} is in retry backoff after earlier failures"));
            return None;
        }
        match self.next_hops(connector, &group.domain).await {
            Ok(hops) => Some(hops),
            Err(error) if error.is_permanent() => {
                fail_all(report, Failure::new(550, error.enhanced_status(), &error));
                None
            }
            Err(error) => {
                report.last_error = Some(format!("451 {} {error}", error.enhanced_status()));
                queue.destination_result(destination, false);
                None
            }
        }
    }

    /// Each address of each hop in turn until one takes the transaction: the
    /// host and its per-recipient results, or the last failure as a `451` line.
    async fn try_hops(
        &self,
        queue: &Queue,
        attempt: &GroupAttempt<'_>,
        hops: &[NextHop],
        sender: Option<&Mailbox>,
        recipients: &[&Mailbox],
        message: &[u8],
    ) -> Result<(String, Vec<RecipientResult>), String> {
        let (connector, domain) = (attempt.group.connector, &attempt.group.domain);
        let mut last_error = String::from("no next hop answered");
        let mut last_status = "4.4.1";
        for hop in hops {
            let tlsa = self.security.tlsa(attempt.policy, &hop.host, &self.resolver).await;
            let requirement = attempt.policy.hop(&hop.host, tlsa.as_ref());
            if let HopRequirement::Skip { reason, kind } = &requirement {
                warn!(host = %hop.host, %domain, %reason, "next hop skipped by the domain's TLS policy");
                if let Ok(key) = DomainPattern::parse(domain) {
                    self.security.counters.published_failure(&key, kind);
                }
                (last_status, last_error) = ("4.7.5", reason.clone());
                continue;
            }
            for &address in &hop.addresses {
                let target = Target { connector, hop, address, ehlo: attempt.ehlo, domain, requirement: &requirement };
                let mut session = match self.session(attempt.config, &target, queue).await {
                    Ok(session) => session,
                    Err(error) => {
                        debug!(%address, %error, "next hop failed");
                        if let AttemptError::DomainSecurity(failure) = &error {
                            warn!(%address, %domain, reason = %failure, "TLS policy not met");
                            self.count_failure(&target, failure);
                        }
                        (last_status, last_error) = (error.status(), format!("{} [{address}]: {error}", hop.host));
                        continue;
                    }
                };
                match session.send(sender, recipients, message).await {
                    Ok(results) => {
                        let pool_key = target.pool_key(attempt.config.version);
                        self.release(connector, address, pool_key, session);
                        return Ok((hop.host.to_string(), results));
                    }
                    Err(error) => {
                        debug!(%address, %error, "transaction failed");
                        (last_status, last_error) = (error.status(), format!("{} [{address}]: {error}", hop.host));
                    }
                }
            }
        }
        Err(format!("451 {last_status} {last_error}"))
    }

    /// Counts a failed session: a Domain Security partner's under its list entry (the
    /// paper's counter), a DANE or MTA-STS domain's under the domain.
    fn count_failure(&self, target: &Target<'_>, failure: &SecurityFailure) {
        match target.requirement {
            HopRequirement::DomainSecurity { entry, .. } => {
                self.security.counters.outbound_failure(entry, failure.kind());
            }
            HopRequirement::Dane(_) | HopRequirement::MtaSts { .. } => {
                if let Ok(key) = DomainPattern::parse(target.domain) {
                    self.security.counters.published_failure(&key, failure.kind());
                }
            }
            HopRequirement::Opportunistic | HopRequirement::Skip { .. } => {}
        }
    }

    /// What the host said to each recipient, into the report; a Domain Secured
    /// delivery counts as sent to the partner's list entry.
    fn record_results(
        &self,
        queue: &Queue,
        attempt: &GroupAttempt<'_>,
        host: &str,
        results: Vec<RecipientResult>,
        report: &mut Report,
    ) {
        let mut delivered = false;
        for (&index, result) in attempt.group.recipients.iter().zip(results) {
            match result {
                RecipientResult::Delivered => {
                    delivered = true;
                    report.outcomes.push((index, Outcome::Delivered));
                }
                RecipientResult::Failed(text) => {
                    report.outcomes.push((index, Outcome::Failed(Failure::from_reply_line(&text))));
                }
                RecipientResult::Deferred(text) => {
                    queue.metrics().add(&queue.metrics().deliveries_deferred, 1);
                    report.last_error = Some(format!("{host}: {text}"));
                }
            }
        }
        if let (OutboundPolicy::DomainSecurity { entry, .. }, true) = (attempt.policy, delivered) {
            self.security.counters.sent(entry);
        }
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
        let key = (target.connector.name.to_string(), target.address, target.pool_key(config.version));
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
        let mut session = OutboundSession::open(
            target.address,
            &target.hop.host,
            target.ehlo,
            certificate,
            target.tls_required(),
            timeouts,
            log,
        )
        .await
        .map_err(|error| target.name_source(error))?;
        if session.tls.is_some() {
            queue.metrics().add(&queue.metrics().tls_outbound, 1);
        }
        let chain = session.tls.as_ref().map(|t| t.peer_certificates.clone()).unwrap_or_default();
        let verdict = match target.requirement {
            HopRequirement::DomainSecurity { entry, domain } => {
                self.security.observe(entry, &chain);
                self.check_partner(config, &mut session, entry, domain, &chain).await
            }
            HopRequirement::Dane(requirement) => self.check_dane(&mut session, target, requirement, &chain),
            HopRequirement::MtaSts { enforce, listed } => {
                self.check_mta_sts(&mut session, target, *enforce, *listed, &chain)
            }
            HopRequirement::Opportunistic | HopRequirement::Skip { .. } => Ok(()),
        };
        if let Err(failure) = verdict {
            let error = AttemptError::secure(&mut session, failure);
            session.quit().await;
            return Err(error);
        }
        Ok(session)
    }

    /// The paper's check of a Domain Security partner's server certificate.
    async fn check_partner(
        &self,
        config: &EdgeConfig,
        session: &mut OutboundSession,
        entry: &DomainPattern,
        domain: &Domain,
        chain: &[Vec<u8>],
    ) -> Result<(), SecurityFailure> {
        let peer = self.security.check(config, chain, PeerRole::Server, domain.as_str()).await;
        let peer = peer.map_err(SecurityFailure::Peer)?;
        self.security.counters.outbound_session(entry);
        session.note(&format!("Domain Secured: {domain}; cert={}", peer.sha256));
        Ok(())
    }

    /// RFC 7672: the TLSA records authenticate the server (or, all unusable, only encrypt).
    fn check_dane(
        &self,
        session: &mut OutboundSession,
        target: &Target<'_>,
        requirement: &DaneRequirement,
        chain: &[Vec<u8>],
    ) -> Result<(), SecurityFailure> {
        let host = &target.hop.host;
        let note = match requirement {
            DaneRequirement::EncryptOnly => {
                format!("DANE: {host} has no usable TLSA record; encrypted, not authenticated")
            }
            DaneRequirement::Authenticate(records) => {
                let matched = dane::verify(chain, records, host, target.domain).map_err(|failure| {
                    let kind = match failure {
                        DaneFailure::NameMismatch { .. } => "dane.name-mismatch",
                        DaneFailure::Chain(_) => "dane.chain",
                        DaneFailure::NoCertificate | DaneFailure::NoMatch => "dane.no-match",
                    };
                    SecurityFailure::Published { reason: failure.to_string(), kind }
                })?;
                format!("DANE: {host} authenticated by TLSA {} (depth {})", matched.record, matched.depth)
            }
        };
        self.count_session(target.domain, "dane");
        session.note(&note);
        Ok(())
    }

    /// RFC 8461 §4: a listed MX host with a WebPKI certificate for its name; under
    /// `testing` a failure is reported and the message goes anyway.
    fn check_mta_sts(
        &self,
        session: &mut OutboundSession,
        target: &Target<'_>,
        enforce: bool,
        listed: bool,
        chain: &[Vec<u8>],
    ) -> Result<(), SecurityFailure> {
        let host = &target.hop.host;
        let verdict = match (listed, session.tls.is_some()) {
            (false, _) => Err(("mta-sts.mx-not-listed", format!("MX host {host} not in policy"))),
            (true, false) => Err(("mta-sts.starttls-not-offered", "STARTTLS not offered by the server".to_owned())),
            (true, true) => mta_sts::verify_mx_certificate(chain, host, self.security.mta_sts.roots())
                .map_err(|reason| ("mta-sts.certificate", reason)),
        };
        let (kind, reason) = match verdict {
            Ok(()) => {
                self.count_session(target.domain, "mta-sts");
                session.note(&format!("MTA-STS: {host} verified for {}", target.domain));
                return Ok(());
            }
            Err(failure) => failure,
        };
        if enforce {
            return Err(SecurityFailure::Published { reason: format!("MTA-STS: {reason}"), kind });
        }
        let kind = match kind {
            "mta-sts.mx-not-listed" => "mta-sts-testing.mx-not-listed",
            "mta-sts.starttls-not-offered" => "mta-sts-testing.starttls-not-offered",
            _ => "mta-sts-testing.certificate",
        };
        warn!(%host, domain = %target.domain, %reason, "MTA-STS testing policy would refuse this host; delivering");
        if let Ok(key) = DomainPattern::parse(target.domain) {
            self.security.counters.published_failure(&key, kind);
        }
        session.note(&format!("MTA-STS testing: {reason}; delivered as the policy is in testing mode"));
        Ok(())
    }

    fn count_session(&self, domain: &str, source: &'static str) {
        if let Ok(key) = DomainPattern::parse(domain) {
            self.security.counters.published_session(&key, source);
        }
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

    /// The outbound TLS policy mail to `domain` follows now, as (source, detail), looked
    /// up as a delivery would (`policy explain`, `partner test`); `None` when no send
    /// connector carries it.
    pub async fn describe_tls_policy(&self, config: &EdgeConfig, domain: &Domain) -> Option<(String, String)> {
        let Route::Connector(connector) = route(config, domain) else { return None };
        let policy = self.security.outbound_policy(config, connector, domain.as_str(), &self.resolver).await;
        Some((policy.source(), policy.detail()))
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
/// One group's delivery attempt: what every hop is tried with.
struct GroupAttempt<'a> {
    config: &'a EdgeConfig,
    group: &'a Group<'a>,
    ehlo: &'a str,
    policy: &'a OutboundPolicy,
}

struct Target<'a> {
    connector: &'a SendConnector,
    hop: &'a NextHop,
    address: SocketAddr,
    ehlo: &'a str,
    /// The recipient domain ("" for smart hosts).
    domain: &'a str,
    /// What this host must prove.
    requirement: &'a HopRequirement,
}

impl Target<'_> {
    /// STARTTLS is mandatory under Domain Security, DANE and an enforced MTA-STS policy.
    fn tls_required(&self) -> bool {
        match self.requirement {
            HopRequirement::DomainSecurity { .. } | HopRequirement::Dane(_) => true,
            HopRequirement::MtaSts { enforce, .. } => *enforce,
            HopRequirement::Opportunistic | HopRequirement::Skip { .. } => false,
        }
    }

    /// Sessions are pooled per what they were verified for: a session checked for one
    /// policy is never reused under another (nor an unchecked one under any).
    fn pool_key(&self, version: u64) -> Option<(String, u64)> {
        match self.requirement {
            HopRequirement::DomainSecurity { domain, .. } => Some((domain.to_string(), version)),
            // DANE-TA may have matched the recipient domain rather than the host: the
            // session is good for this domain only.
            // Keyed by the records too: a session checked under one TLSA RRset is not
            // reused after the records change (a rotation after a key compromise).
            HopRequirement::Dane(requirement) => {
                Some((format!("dane:{}:{}:{requirement:?}", self.hop.host, self.domain), version))
            }
            HopRequirement::MtaSts { enforce: true, .. } => Some((format!("mta-sts:{}", self.domain), version)),
            HopRequirement::MtaSts { enforce: false, .. }
            | HopRequirement::Opportunistic
            | HopRequirement::Skip { .. } => None,
        }
    }

    /// A TLS failure under DANE or MTA-STS says so ("DANE: STARTTLS not offered …").
    fn name_source(&self, error: AttemptError) -> AttemptError {
        let source = match self.requirement {
            HopRequirement::Dane(_) => "DANE",
            HopRequirement::MtaSts { .. } => "MTA-STS",
            _ => return error,
        };
        match error {
            AttemptError::DomainSecurity(failure) => {
                let kind = match &failure {
                    SecurityFailure::StartTlsNotOffered | SecurityFailure::StartTlsRefused(_) => "starttls",
                    _ => "handshake",
                };
                let kind = match (source, kind) {
                    ("DANE", "starttls") => "dane.starttls-not-offered",
                    ("DANE", _) => "dane.handshake",
                    (_, "starttls") => "mta-sts.starttls-not-offered",
                    _ => "mta-sts.handshake",
                };
                AttemptError::DomainSecurity(SecurityFailure::Published {
                    reason: format!("{source}: {failure}"),
                    kind,
                })
            }
            other => other,
        }
    }
}

enum LocalError {
    Permanent(Failure),
    Temporary(String),
}

/// Why a DSN could not be queued.
#[derive(Debug, thiserror::Error)]
enum DsnError {
    /// No queue id could be made for it.
    #[error(transparent)]
    NoId(#[from] NoRandomness),
    /// The spool did not take it.
    #[error("the spool did not take it: {0}")]
    Spool(#[from] io::Error),
}

/// The message body: kept in memory since it arrived, or read back from the spool.
///
/// A body that cannot be read is what a mail operator would call a corrupt queue
/// file (Postfix moves those to its `corrupt` queue). Retrying it for the whole
/// expiry time helps nobody when it is gone (`NotFound`) or garbled
/// (`InvalidData`, `UnexpectedEof`): those fail every pending recipient at once.
/// Any other I/O error may pass (permissions, a full or remounted disk), so it is
/// retried with the usual backoff, for at most [`UNREADABLE_ATTEMPTS`] attempts
/// and never past the message's expiry. When it fails for good, the sender gets
/// a DSN saying the body was unreadable, and only once that DSN is queued do
/// the message's files move to the spool's `corrupt/` (not deleted: the operator
/// may still recover them), counted in `queue.messages_corrupt`.
async fn body(queue: &Queue, fqdn: &str, due: &Due) -> Result<Arc<Vec<u8>>, Report> {
    if let Some(message) = &due.fresh {
        return Ok(message.clone());
    }
    let error = match read_body(queue.spool(), &due.envelope.id).await {
        Ok(message) => return Ok(Arc::new(message)),
        Err(error) => error,
    };
    let id = &due.envelope.id;
    let attempts = due.attempts + 1;
    let age = SystemTime::now().duration_since(due.envelope.arrival).unwrap_or_default();
    let gone_or_garbled =
        matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof);
    if !gone_or_garbled && attempts < UNREADABLE_ATTEMPTS && age < queue.settings().message_expiry {
        warn!(%error, attempts, "cannot read the queued message; trying again later");
        let last_error = format!("451 4.3.0 Cannot read the queued message: {error}");
        return Err(Report { last_error: Some(last_error), ..Report::default() });
    }
    error!(queue_id = %id, %error, attempts, "message body unreadable; moving it to corrupt/ and telling the sender");
    let failure = Failure::new(
        550,
        "5.3.0",
        format!("Message body unreadable in the queue of {fqdn}; moved to corrupt/ as {id}, not delivered"),
    );
    let last_error = Some(failure.text().to_owned());
    let outcomes = due.pending.iter().map(|&index| (index, Outcome::Failed(failure.clone()))).collect();
    let mut report = Report { outcomes, last_error, corrupt: true };
    settle(queue, fqdn, &due.envelope, &[], &mut report).await;
    Err(report)
}

/// Makes this attempt's failures final only once the sender's DSN is safely
/// queued, then counts the outcomes. When the DSN cannot be queued the failures
/// are taken out of the report: those recipients stay pending and the next
/// attempt fails them again and retries the DSN (a sender may get a report
/// twice, after a crash; never none). Deliveries are final either way.
async fn settle(queue: &Queue, fqdn: &str, envelope: &Envelope, message: &[u8], report: &mut Report) {
    if let Err(error) = notify_sender(queue, fqdn, envelope, message, report).await {
        error!(
            queue_id = %envelope.id,
            %error,
            "cannot queue the delivery status notification; the failed recipients stay queued and are retried"
        );
        report.outcomes.retain(|(_, outcome)| *outcome == Outcome::Delivered);
        report.last_error = Some(format!("451 4.3.0 Cannot queue the delivery status notification: {error}"));
    }
    // Counted after expiry, so recipients that expired count as failed.
    let delivered = report.outcomes.iter().filter(|(_, o)| *o == Outcome::Delivered).count();
    let metrics = queue.metrics();
    metrics.add(&metrics.recipients_delivered, delivered as u64);
    metrics.add(&metrics.recipients_failed, (report.outcomes.len() - delivered) as u64);
}

/// Queues a DSN for the recipients that failed in this attempt, unless the
/// sender is null (RFC 5321 §6.1: never answer a bounce with a bounce).
async fn notify_sender(
    queue: &Queue,
    fqdn: &str,
    envelope: &Envelope,
    message: &[u8],
    report: &Report,
) -> Result<(), DsnError> {
    let Some(sender) = &envelope.sender else { return Ok(()) };
    let failed: Vec<dsn::FailedRecipient> = report
        .outcomes
        .iter()
        .filter_map(|(index, outcome)| match outcome {
            Outcome::Failed(failure) => Some((index, failure)),
            Outcome::Delivered => None,
        })
        .filter_map(|(index, failure)| {
            let recipient = envelope.recipients.get(*index)?;
            Some(dsn::FailedRecipient {
                address: recipient.to_string(),
                action: dsn::Action::Failed,
                status: final_status(failure),
                diagnostic: Some(failure.text().to_owned()),
                remote_mta: None,
                last_attempt: Some(SystemTime::now()),
            })
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let sender_text = sender.to_string();
    let report = dsn::DeliveryReport {
        reporting_mta: fqdn,
        sender: &sender_text,
        envelope_id: envelope.envelope_id.as_deref(),
        arrival: envelope.arrival,
        recipients: &failed,
        original_message: message,
        message_id_domain: fqdn,
    };
    let body = dsn::build(&report, SystemTime::now());
    let notification = Envelope {
        id: Spool::new_id()?,
        arrival: SystemTime::now(),
        sender: None,
        envelope_id: None,
        recipients: vec![sender.clone()],
        source: "dsn".to_owned(),
        client: None,
    };
    let id = notification.id.clone();
    queue.submit(notification, body).await?;
    queue.metrics().add(&queue.metrics().dsns_sent, 1);
    info!(dsn = %id, recipients = failed.len(), "delivery status notification queued for the sender");
    Ok(())
}

async fn read_body(spool: &Spool, id: &str) -> std::io::Result<Vec<u8>> {
    let (spool, id) = (spool.clone(), id.to_owned());
    tokio::task::spawn_blocking(move || spool.read_message(&id)).await.map_err(std::io::Error::other)?
}

/// The status a DSN reports for a final failure: permanent (5.x.x) even when the
/// last reply was 4.x.x, except an expiry, which keeps its 4.4.7 as Postfix
/// reports it.
fn final_status(failure: &Failure) -> String {
    let status = failure.status();
    match status.strip_prefix('4') {
        Some(rest) if status != "4.4.7" => format!("5{rest}"),
        _ => status.to_owned(),
    }
}

/// The local endpoint is not known before connecting; the log shows the family's any-address.
fn unspecified(remote: SocketAddr) -> SocketAddr {
    match remote {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    }
}

/// Attempts after which a body that cannot be read for a reason that may pass
/// (anything but "gone" or "garbled") is given up on.
const UNREADABLE_ATTEMPTS: u32 = 5;

#[cfg(test)]
mod tests {
    use std::{fs, path::Path, sync::atomic::Ordering, time::Duration};

    use super::*;
    use crate::{config::QueueSettings, metrics::RelayMetrics};

    const FQDN: &str = "mail1.contoso.com";
    const BODY: &[u8] = b"Subject: hi\r\n\r\nbody\r\n";
    const SENDER: &str = "kim@woodgrovebank.com";

    #[tokio::test]
    async fn a_failure_stays_queued_until_its_dsn_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let queue = open_queue(dir.path(), settings());
        let id = submit(&queue, Some(SENDER)).await;
        break_spool(dir.path());

        let attempt = due(&queue, &id);
        let mut report = report_of([
            (0, Outcome::Delivered),
            (1, Outcome::Failed(Failure::from_reply_line("550 5.1.1 User unknown"))),
        ]);
        settle(&queue, FQDN, &attempt.envelope, BODY, &mut report).await;
        queue.finish(&id, report).await;

        assert_eq!(queue.len(), 1, "no DSN, and the original stays queued");
        assert_eq!(queue.list()[0].pending, ["ann@contoso.com"]);
        let state = fs::read_to_string(dir.path().join("state").join(&id)).unwrap();
        assert_eq!(state, "delivered 0\n", "the failure is not recorded as final");
        assert_eq!(counter(&queue, |m| &m.dsns_sent), 0);
        assert_eq!(counter(&queue, |m| &m.recipients_failed), 0, "not failed yet");
        assert_eq!(counter(&queue, |m| &m.recipients_delivered), 1);

        // The next attempt fails the recipient again, and now its DSN is queued first.
        repair_spool(dir.path());
        let attempt = due(&queue, &id);
        assert_eq!(attempt.pending, [1]);
        let mut report = report_of([(1, Outcome::Failed(Failure::from_reply_line("550 5.1.1 User unknown")))]);
        settle(&queue, FQDN, &attempt.envelope, BODY, &mut report).await;
        queue.finish(&id, report).await;

        let queued = queue.list();
        assert_eq!(queued.len(), 1, "only the DSN is left");
        assert_eq!((queued[0].sender.as_str(), queued[0].pending.as_slice()), ("", [SENDER.to_owned()].as_slice()));
        assert!(!dir.path().join("msg").join(&id).exists(), "the original is finished");
        assert_eq!(counter(&queue, |m| &m.dsns_sent), 1);
        assert_eq!(counter(&queue, |m| &m.recipients_failed), 1);
    }

    #[tokio::test]
    async fn a_failure_for_the_null_sender_is_final_at_once_even_when_the_spool_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let queue = open_queue(dir.path(), settings());
        let id = submit(&queue, None).await;
        break_spool(dir.path());

        let attempt = due(&queue, &id);
        let failed = Outcome::Failed(Failure::from_reply_line("550 5.1.1 User unknown"));
        let mut report = report_of([(0, failed.clone()), (1, failed)]);
        settle(&queue, FQDN, &attempt.envelope, BODY, &mut report).await;
        queue.finish(&id, report).await;

        assert!(queue.is_empty(), "no DSN is owed, so nothing waits for one");
        assert_eq!(counter(&queue, |m| &m.recipients_failed), 2);
    }

    #[tokio::test]
    async fn a_garbled_body_moves_to_corrupt_and_its_sender_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, id) = recovered_queue(dir.path(), settings());
        // Valid at start-up, garbled since (no envelope terminator any more).
        fs::write(dir.path().join("msg").join(&id), b"garbage").unwrap();

        let attempt = due(&queue, &id);
        let report = body(&queue, FQDN, &attempt).await.expect_err("the body cannot be read");
        queue.finish(&id, report).await;

        assert_eq!(fs::read(dir.path().join("corrupt").join(&id)).unwrap(), b"garbage", "kept for the operator");
        assert!(!dir.path().join("msg").join(&id).exists());
        assert_sender_told(&queue, &id);
        assert_eq!(counter(&queue, |m| &m.messages_corrupt), 1);
        assert_eq!(counter(&queue, |m| &m.recipients_failed), 2);
    }

    #[tokio::test]
    async fn a_vanished_body_leaves_the_queue_on_the_first_attempt_with_a_dsn() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, id) = recovered_queue(dir.path(), settings());
        fs::remove_file(dir.path().join("msg").join(&id)).unwrap();

        let attempt = due(&queue, &id);
        let report = body(&queue, FQDN, &attempt).await.expect_err("the body is gone");
        queue.finish(&id, report).await;

        assert_sender_told(&queue, &id);
        assert_eq!(counter(&queue, |m| &m.messages_corrupt), 1);
    }

    #[tokio::test]
    async fn a_body_unreadable_for_a_reason_that_may_pass_is_retried_then_moved_to_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, id) = recovered_queue(dir.path(), settings());
        // A directory where the file was: reading fails, but not as "gone" or "garbled".
        let path = dir.path().join("msg").join(&id);
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();

        for attempt in 1..UNREADABLE_ATTEMPTS {
            let due = due(&queue, &id);
            let report = body(&queue, FQDN, &due).await.expect_err("the body cannot be read");
            assert!(report.outcomes.is_empty(), "attempt {attempt}: retried, not failed");
            assert!(report.last_error.as_deref().is_some_and(|e| e.starts_with("451 4.3.0")), "{report:?}");
            queue.finish(&id, report).await;
            assert_eq!(queue.list()[0].pending.len(), 2);
        }
        let due = due(&queue, &id);
        let report = body(&queue, FQDN, &due).await.expect_err("the body cannot be read");
        queue.finish(&id, report).await;

        assert!(dir.path().join("corrupt").join(&id).exists());
        assert_sender_told(&queue, &id);
    }

    #[tokio::test]
    async fn an_expired_message_with_an_unreadable_body_is_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, id) = recovered_queue(dir.path(), QueueSettings { message_expiry: Duration::ZERO, ..settings() });
        let path = dir.path().join("msg").join(&id);
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();

        let due = due(&queue, &id);
        let report = body(&queue, FQDN, &due).await.expect_err("the body cannot be read");
        queue.finish(&id, report).await;

        assert_sender_told(&queue, &id);
    }

    #[tokio::test]
    async fn an_unreadable_body_whose_dsn_cannot_be_queued_stays_in_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, id) = recovered_queue(dir.path(), settings());
        fs::write(dir.path().join("msg").join(&id), b"garbage").unwrap();
        break_spool(dir.path());

        let due = due(&queue, &id);
        let report = body(&queue, FQDN, &due).await.expect_err("the body cannot be read");
        queue.finish(&id, report).await;

        assert_eq!(queue.list()[0].id, id, "kept until its sender can be told");
        assert!(dir.path().join("msg").join(&id).exists());
        assert_eq!(counter(&queue, |m| &m.messages_corrupt), 0);
    }

    /// The queue holds only the DSN for `id`'s sender, saying the body was unreadable.
    fn assert_sender_told(queue: &Queue, id: &str) {
        let queued = queue.list();
        assert_eq!(queued.len(), 1, "only the DSN is queued: {queued:?}");
        assert_eq!((queued[0].sender.as_str(), queued[0].pending.as_slice()), ("", [SENDER.to_owned()].as_slice()));
        let dsn = String::from_utf8(queue.spool().read_message(&queued[0].id).unwrap()).unwrap();
        assert!(dsn.contains("unreadable") && dsn.contains(id), "{dsn}");
        assert_eq!(counter(queue, |m| &m.dsns_sent), 1);
    }

    fn settings() -> QueueSettings {
        QueueSettings { retry_initial: Duration::ZERO, ..QueueSettings::default() }
    }

    fn open_queue(root: &Path, settings: QueueSettings) -> Queue {
        Queue::open(root, settings, Arc::new(RelayMetrics::default())).unwrap()
    }

    fn envelope(sender: Option<&str>) -> Envelope {
        Envelope {
            id: Spool::new_id().unwrap(),
            arrival: SystemTime::now(),
            sender: sender.map(|s| Mailbox::parse(s).unwrap()),
            envelope_id: None,
            recipients: vec![Mailbox::parse("ted@contoso.com").unwrap(), Mailbox::parse("ann@contoso.com").unwrap()],
            source: "mail1\\Inet".into(),
            client: None,
        }
    }

    async fn submit(queue: &Queue, sender: Option<&str>) -> String {
        let envelope = envelope(sender);
        let id = envelope.id.clone();
        queue.submit(envelope, BODY.to_vec()).await.unwrap();
        id
    }

    /// A queue that found one message in the spool at start-up (its body is on disk only).
    fn recovered_queue(root: &Path, settings: QueueSettings) -> (Queue, String) {
        let envelope = envelope(Some(SENDER));
        Spool::open(root).unwrap().store(&envelope, BODY).unwrap();
        (open_queue(root, settings), envelope.id)
    }

    /// The spool stops taking new files: `tmp/` becomes a plain file.
    fn break_spool(root: &Path) {
        fs::remove_dir_all(root.join("tmp")).unwrap();
        fs::write(root.join("tmp"), b"").unwrap();
    }

    fn repair_spool(root: &Path) {
        fs::remove_file(root.join("tmp")).unwrap();
        fs::create_dir(root.join("tmp")).unwrap();
    }

    /// Picks `id` for an attempt, as the scheduler does.
    fn due(queue: &Queue, id: &str) -> Due {
        let (due, _) = queue.take_due(usize::MAX);
        due.into_iter().find(|d| d.envelope.id == id).expect("the message is due")
    }

    fn report_of<const N: usize>(outcomes: [(usize, Outcome); N]) -> Report {
        Report { outcomes: outcomes.into(), ..Report::default() }
    }

    fn counter(queue: &Queue, which: impl Fn(&RelayMetrics) -> &std::sync::atomic::AtomicU64) -> u64 {
        which(queue.metrics()).load(Ordering::Relaxed)
    }
}
