//! The relay's counters and gauges, shared by sessions, the queue and the sync
//! stream (which reports them in each heartbeat).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters since the edge started, and current gauges.
#[derive(Debug, Default)]
pub struct RelayMetrics {
    /// Inbound SMTP sessions started.
    pub sessions_inbound: AtomicU64,
    /// Inbound sessions refused (no connector for the address, or a session cap).
    pub sessions_refused: AtomicU64,
    /// Inbound TLS handshakes completed.
    pub tls_inbound: AtomicU64,
    /// Outbound TLS handshakes completed.
    pub tls_outbound: AtomicU64,
    /// Messages answered `250` (on disk).
    pub messages_received: AtomicU64,
    /// Recipients delivered (next hop or maildir).
    pub recipients_delivered: AtomicU64,
    /// Recipients failed for good.
    pub recipients_failed: AtomicU64,
    /// Delivery attempts that failed temporarily.
    pub deliveries_deferred: AtomicU64,
    /// DSNs generated.
    pub dsns_sent: AtomicU64,
    /// Messages whose body could not be read, moved to the spool's `corrupt/`.
    pub messages_corrupt: AtomicU64,
    /// Messages in the queue now (gauge).
    pub queue_length: AtomicU64,
}

impl RelayMetrics {
    /// Adds to a counter.
    pub fn add(&self, counter: &AtomicU64, value: u64) {
        let _ = self;
        counter.fetch_add(value, Ordering::Relaxed);
    }

    /// Every figure by name, for heartbeats and tests.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("smtp.sessions_inbound", read(&self.sessions_inbound)),
            ("smtp.sessions_refused", read(&self.sessions_refused)),
            ("smtp.tls_inbound", read(&self.tls_inbound)),
            ("smtp.tls_outbound", read(&self.tls_outbound)),
            ("smtp.messages_received", read(&self.messages_received)),
            ("queue.recipients_delivered", read(&self.recipients_delivered)),
            ("queue.recipients_failed", read(&self.recipients_failed)),
            ("queue.deliveries_deferred", read(&self.deliveries_deferred)),
            ("queue.dsns_sent", read(&self.dsns_sent)),
            ("queue.messages_corrupt", read(&self.messages_corrupt)),
            ("queue.length", read(&self.queue_length)),
        ]
    }
}

/// Serves the relay's figures in Prometheus text format on `listener` (any path)
/// until `shutdown`: `domainsec-edge run --metrics-listen 127.0.0.1:9325`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    relay: crate::relay::Relay,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let relay = relay.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_request| {
                let body = prometheus_text(&relay);
                async move {
                    hyper::Response::builder()
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}

/// The exposition text: counters and gauges of the relay and of Domain Security.
pub fn prometheus_text(relay: &crate::relay::Relay) -> String {
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
