//! Starting the SMTP relay: the queue, the inbound server, delivery and the
//! protocol logs, all fed by the configuration the sync stream keeps current.

use std::{
    collections::HashSet,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::watch;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    apply::EdgeConfig,
    certificates::CertificateStore,
    config::EdgeSettings,
    delivery::maildir::Maildir,
    domain_security::{DomainSecurity, mta_sts::MtaSts},
    inbound::{Inbound, InboundParts},
    metrics::RelayMetrics,
    protocol_log::{LogKind, ProtocolLog},
    queue::{Queue, delivery::Delivery},
    routing::dns::MxResolver,
    smtp::credentials::Credentials,
};

/// A running relay: what the sync stream and the operator commands reach.
#[derive(Clone)]
pub struct Relay {
    /// The queue.
    pub queue: Queue,
    /// Counters.
    pub metrics: Arc<RelayMetrics>,
    /// Where the Receive protocol log is written.
    pub receive_log: PathBuf,
    /// Where the Send protocol log is written.
    pub send_log: PathBuf,
    /// Where local mail is delivered.
    pub maildir: PathBuf,
    /// Domain Security: CRL cache and counters.
    pub security: Arc<DomainSecurity>,
    /// Every session and delivery in flight, so a stop can wait for them.
    pub tasks: TaskTracker,
    /// The delivery side (routes, next hops, the SMTP client): `partner test` uses it.
    pub delivery: Arc<Delivery>,
    /// The edge's certificate store (the expiry watch reads its SMTP certificates).
    pub certificates: CertificateStore,
}

/// Why the relay cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The spool or a log directory cannot be opened.
    #[error("open {what}: {source}")]
    Io { what: &'static str, source: std::io::Error },
    /// The DNS settings are wrong.
    #[error(transparent)]
    Dns(#[from] crate::routing::dns::DnsConfigError),
    /// `mta_sts.extra_roots` cannot be used.
    #[error("mta_sts.extra_roots {path}: {reason}")]
    ExtraRoots {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl Relay {
    /// The relay's Prometheus exposition (its figures, Domain Security's counters,
    /// the CRL cache), rendered at each scrape.
    pub fn exposition(&self) -> domainsec_daemon::http::Render {
        let relay = self.clone();
        std::sync::Arc::new(move || prometheus_text(&relay))
    }

    /// Opens the spool (picking up every message it holds), and starts the
    /// listeners and the scheduler; they stop when `shutdown` is cancelled.
    pub fn start(
        data_dir: &std::path::Path,
        settings: &EdgeSettings,
        config: watch::Receiver<Option<Arc<EdgeConfig>>>,
        listening: Arc<Mutex<HashSet<SocketAddr>>>,
        shutdown: &CancellationToken,
    ) -> Result<Self, StartError> {
        let metrics = Arc::new(RelayMetrics::default());
        let tasks = TaskTracker::new();
        let queue = Queue::open(data_dir.join("queue"), settings.queue.clone(), metrics.clone())
            .map_err(|source| StartError::Io { what: "the queue", source })?;
        let resolver = MxResolver::new(settings.dns.clone())?;
        let credentials = Arc::new(Credentials::new(CertificateStore::new(data_dir)));
        let logs = data_dir.join("logs").join("protocol");
        let (receive_log, send_log) = (logs.join("receive"), logs.join("send"));
        let receive = ProtocolLog::open(receive_log.clone(), LogKind::Receive, settings.protocol_log.clone())
            .map_err(|source| StartError::Io { what: "the receive protocol log", source })?;
        let send = ProtocolLog::open(send_log.clone(), LogKind::Send, settings.protocol_log.clone())
            .map_err(|source| StartError::Io { what: "the send protocol log", source })?;
        let maildir = data_dir.join("maildir");
        let extra_roots = extra_roots(settings.mta_sts.extra_roots.as_deref())?;
        let mta_sts = MtaSts::new(data_dir, &extra_roots, settings.mta_sts.fetch_timeout);
        let security = Arc::new(DomainSecurity::new(data_dir, &settings.domain_security, mta_sts));
        let delivery = Arc::new(Delivery::new(
            config.clone(),
            resolver,
            credentials.clone(),
            Maildir::new(&maildir),
            send,
            security.clone(),
        ));
        let inbound = Inbound::new(InboundParts {
            config,
            queue: queue.clone(),
            metrics: metrics.clone(),
            limits: settings.limits,
            log: receive,
            credentials,
            listening,
            security: security.clone(),
            draining: shutdown.clone(),
            tasks: tasks.clone(),
        });
        tokio::spawn(inbound.run(shutdown.clone()));
        tokio::spawn(queue.clone().run(delivery.clone(), tasks.clone(), shutdown.clone()));
        let idle = settings.queue.connection_idle;
        let (stop, closer) = (shutdown.clone(), delivery.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(idle.max(Duration::from_millis(500)));
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => closer.close_idle(idle),
                }
            }
        });
        // Counters are kept across restarts: saved every second when they changed, and at shutdown.
        let (saver, stop) = (security.clone(), shutdown.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    () = stop.cancelled() => {
                        saver.counters.save();
                        return;
                    }
                    _ = tick.tick() => saver.counters.save(),
                }
            }
        });
        let certificates = CertificateStore::new(data_dir);
        Ok(Self { queue, metrics, receive_log, send_log, maildir, security, tasks, delivery, certificates })
    }
}

/// The exposition text: the relay's counters and queue gauge, the paper's three
/// Domain Security counters (names map 1:1 to the paper's), their breakdowns by
/// partner (secure-list entry) and reason, and the CRL cache.
fn prometheus_text(relay: &Relay) -> String {
    let mut page = domainsec_daemon::exposition::Exposition::new();
    for (name, help, value) in relay.metrics.described() {
        let metric = format!("domainsec_{}", name.replace('.', "_"));
        if name == "queue.length" {
            page.gauge(&metric, help, value);
        } else {
            page.counter(&metric, help, value);
        }
    }
    let counts = relay.security.counters.counts();
    page.counter(
        "domainsec_domain_secured_messages_received",
        "Domain-Secured Messages Received",
        counts.messages_received,
    )
    .counter("domainsec_domain_secured_messages_sent", "Domain-Secured Messages Sent", counts.messages_sent)
    .counter(
        "domainsec_domain_secured_outbound_session_failures",
        "Domain-Secured Outbound Session Failures",
        counts.outbound_session_failures,
    )
    .counter(
        "domainsec_domain_secured_inbound_refusals",
        "Inbound Domain Security refusals",
        counts.inbound_refusals,
    );
    let partners = counts.partners.iter().flat_map(|(partner, figures)| {
        [("received", figures.received), ("sent", figures.sent)]
            .map(|(direction, value)| ([("partner", partner.as_str()), ("direction", direction)], value))
    });
    page.counter_family(
        "domainsec_domain_secured_partner_messages",
        "Domain Secured messages by partner (secure-list entry) and direction",
        partners,
    );
    let reasons = counts.reasons.iter().map(|(reason, value)| ([("reason", reason.as_str())], *value));
    page.counter_family(
        "domainsec_domain_secured_failures",
        "Domain Security failures and refusals by reason",
        reasons,
    );
    // The expiry watch: the soonest end of validity of this edge's SMTP certificates
    // and of each partner's certificates seen (alert on `... - time() < 30 * 86400`).
    let own = relay.certificates.smtp_certificates().iter().map(|c| unix_seconds(c.not_after)).min();
    page.gauge_family(
        "domainsec_certificate_expiry_timestamp_seconds",
        "End of validity of the soonest-expiring SMTP certificate of this edge (Unix seconds)",
        own.map(|not_after| (Vec::<(&str, &str)>::new(), not_after)),
    );
    let partners = counts.partners.iter().filter_map(|(partner, figures)| {
        let soonest = figures.certificates.values().map(|seen| seen.not_after).min()?;
        Some(([("partner", partner.as_str())], soonest))
    });
    page.gauge_family(
        "domainsec_partner_certificate_expiry_timestamp_seconds",
        "End of validity of the soonest-expiring certificate each partner (secure-list entry) presented (Unix seconds)",
        partners,
    );
    let crl = relay.security.crls.stats();
    page.counter("domainsec_crl_fetches", "CRL downloads that succeeded", crl.fetches)
        .counter(
            "domainsec_crl_fetch_failures",
            "CRL downloads that failed (or were not signed by their issuer)",
            crl.fetch_failures,
        )
        .counter("domainsec_crl_cache_hits", "CRL lookups answered from the cache", crl.cache_hits);
    page.finish()
}

fn unix_seconds(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The CA certificates of `mta_sts.extra_roots` (none when unset).
fn extra_roots(path: Option<&std::path::Path>) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, StartError> {
    let Some(path) = path else { return Ok(Vec::new()) };
    let error = |reason: String| StartError::ExtraRoots { path: path.display().to_string(), reason };
    let text = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let blocks = pem::parse_many(&text).map_err(|e| error(format!("not PEM: {e}")))?;
    let roots: Vec<_> = blocks
        .into_iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(|block| rustls::pki_types::CertificateDer::from(block.into_contents()))
        .collect();
    if roots.is_empty() {
        return Err(error("no CERTIFICATE block".into()));
    }
    Ok(roots)
}
