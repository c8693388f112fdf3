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
use tokio_util::sync::CancellationToken;

use crate::{
    apply::EdgeConfig,
    certificates::CertificateStore,
    config::EdgeSettings,
    delivery::maildir::Maildir,
    domain_security::DomainSecurity,
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
        let security = Arc::new(DomainSecurity::new(data_dir, &settings.domain_security));
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
        });
        tokio::spawn(inbound.run(shutdown.clone()));
        tokio::spawn(queue.clone().run(delivery.clone(), shutdown.clone()));
        let idle = settings.queue.connection_idle;
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(idle.max(Duration::from_millis(500)));
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => delivery.close_idle(idle),
                }
            }
        });
        // Counters are kept across restarts: saved every second when they changed, and at shutdown.
        let (saver, stop) = (security.clone(), shutdown.clone());
        tokio::spawn(async move {
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
        Ok(Self { queue, metrics, receive_log, send_log, maildir, security })
    }
}

/// The exposition text: counters and gauges of the relay and of Domain Security.
fn prometheus_text(relay: &Relay) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (name, value) in relay.metrics.snapshot() {
        let metric = format!("domainsec_{}", name.replace('.', "_"));
        let kind = if name == "queue.length" { "gauge" } else { "counter" };
        let _ = writeln!(out, "# TYPE {metric} {kind}\n{metric} {value}");
    }
    let counts = relay.security.counters.counts();
    let help = [
        (
            "domainsec_domain_secured_messages_received_total",
            "Domain-Secured Messages Received",
            counts.messages_received,
        ),
        ("domainsec_domain_secured_messages_sent_total", "Domain-Secured Messages Sent", counts.messages_sent),
        (
            "domainsec_domain_secured_outbound_session_failures_total",
            "Domain-Secured Outbound Session Failures",
            counts.outbound_session_failures,
        ),
        (
            "domainsec_domain_secured_inbound_refusals_total",
            "Inbound Domain Security refusals",
            counts.inbound_refusals,
        ),
    ];
    for (metric, text, value) in help {
        let _ = writeln!(out, "# HELP {metric} {text}\n# TYPE {metric} counter\n{metric} {value}");
    }
    let _ = writeln!(out, "# TYPE domainsec_domain_secured_partner_messages_total counter");
    for (domain, partner) in &counts.partners {
        for (direction, value) in [("received", partner.received), ("sent", partner.sent)] {
            let _ = writeln!(
                out,
                "domainsec_domain_secured_partner_messages_total{{partner=\"{domain}\",direction=\"{direction}\"}} {value}"
            );
        }
    }
    let _ = writeln!(out, "# TYPE domainsec_domain_secured_failures_total counter");
    for (reason, value) in &counts.reasons {
        let _ = writeln!(out, "domainsec_domain_secured_failures_total{{reason=\"{reason}\"}} {value}");
    }
    let crl = relay.security.crls.stats();
    let _ = writeln!(out, "# TYPE domainsec_crl_fetches_total counter\ndomainsec_crl_fetches_total {}", crl.fetches);
    let _ = writeln!(
        out,
        "# TYPE domainsec_crl_fetch_failures_total counter\ndomainsec_crl_fetch_failures_total {}",
        crl.fetch_failures
    );
    let _ = writeln!(
        out,
        "# TYPE domainsec_crl_cache_hits_total counter\ndomainsec_crl_cache_hits_total {}",
        crl.cache_hits
    );
    out
}
