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
        self.described().into_iter().map(|(name, _, value)| (name, value)).collect()
    }

    /// Every figure with its name and what it counts (the exposition's `# HELP`);
    /// `queue.length` is the one gauge.
    pub fn described(&self) -> Vec<(&'static str, &'static str, u64)> {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("smtp.sessions_inbound", "Inbound SMTP sessions started", read(&self.sessions_inbound)),
            (
                "smtp.sessions_refused",
                "Inbound sessions refused (no connector, or a session cap)",
                read(&self.sessions_refused),
            ),
            ("smtp.tls_inbound", "Inbound TLS handshakes completed", read(&self.tls_inbound)),
            ("smtp.tls_outbound", "Outbound TLS handshakes completed", read(&self.tls_outbound)),
            ("smtp.messages_received", "Messages answered 250 (on disk)", read(&self.messages_received)),
            (
                "queue.recipients_delivered",
                "Recipients delivered (next hop or maildir)",
                read(&self.recipients_delivered),
            ),
            ("queue.recipients_failed", "Recipients failed for good", read(&self.recipients_failed)),
            ("queue.deliveries_deferred", "Delivery attempts that failed temporarily", read(&self.deliveries_deferred)),
            ("queue.dsns_sent", "DSNs generated", read(&self.dsns_sent)),
            (
                "queue.messages_corrupt",
                "Messages whose body could not be read, moved to corrupt/",
                read(&self.messages_corrupt),
            ),
            ("queue.length", "Messages in the queue now", read(&self.queue_length)),
        ]
    }
}
