//! The controller's own figures in Prometheus text format (`serve --metrics-listen`):
//! edges connected to this replica, snapshots pushed, ACKs and NACKs, and the time
//! from a push to its ACK.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use domainsec_daemon::exposition::Exposition;

use crate::edgesync::Fleet;

/// Counters shared by every stream of this process.
pub static METRICS: Metrics = Metrics::new();

/// Push and ACK counters with an ACK latency histogram.
#[derive(Debug)]
pub struct Metrics {
    pushes: AtomicU64,
    acks: AtomicU64,
    nacks: AtomicU64,
    latency_sum_micros: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
}

/// Upper bounds of the ACK latency buckets, in seconds.
const BUCKETS: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0];

impl Metrics {
    const fn new() -> Self {
        Self {
            pushes: AtomicU64::new(0),
            acks: AtomicU64::new(0),
            nacks: AtomicU64::new(0),
            latency_sum_micros: AtomicU64::new(0),
            latency_buckets: [const { AtomicU64::new(0) }; BUCKETS.len()],
        }
    }

    /// A snapshot was pushed.
    pub fn pushed(&self) {
        self.pushes.fetch_add(1, Ordering::Relaxed);
    }

    /// The push was ACKed after `latency`.
    pub fn acked(&self, latency: Duration) {
        self.acks.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
        let seconds = latency.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The push was refused.
    pub fn nacked(&self) {
        self.nacks.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, connected: usize) -> String {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let acks = read(&self.acks);
        let buckets: Vec<(f64, u64)> =
            BUCKETS.iter().zip(&self.latency_buckets).map(|(bound, bucket)| (*bound, read(bucket))).collect();
        let sum = read(&self.latency_sum_micros) as f64 / 1_000_000.0;
        Exposition::new()
            .gauge("domainsec_controller_connected_edges", "Edges with a sync stream to this replica", connected)
            .counter("domainsec_controller_pushes", "Snapshots pushed to edges", read(&self.pushes))
            .counter("domainsec_controller_acks", "Snapshots edges ACKed", acks)
            .counter("domainsec_controller_nacks", "Snapshots edges refused (NACK)", read(&self.nacks))
            .histogram("domainsec_controller_ack_latency_seconds", "Time from a push to its ACK", &buckets, sum, acks)
            .finish()
    }
}

/// [`METRICS`] with the replica's connected edges, rendered at each scrape.
pub fn render(fleet: Arc<Fleet>) -> domainsec_daemon::http::Render {
    Arc::new(move || METRICS.render(fleet.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_latency_lands_in_cumulative_buckets() {
        let metrics = Metrics::new();
        metrics.pushed();
        metrics.pushed();
        metrics.acked(Duration::from_millis(30));
        metrics.acked(Duration::from_millis(700));
        metrics.nacked();
        let text = metrics.render(3);
        for line in [
            "domainsec_controller_connected_edges 3",
            "domainsec_controller_pushes_total 2",
            "domainsec_controller_acks_total 2",
            "domainsec_controller_nacks_total 1",
            "domainsec_controller_ack_latency_seconds_bucket{le=\"0.01\"} 0",
            "domainsec_controller_ack_latency_seconds_bucket{le=\"0.05\"} 1",
            "domainsec_controller_ack_latency_seconds_bucket{le=\"1\"} 2",
            "domainsec_controller_ack_latency_seconds_bucket{le=\"+Inf\"} 2",
            "domainsec_controller_ack_latency_seconds_sum 0.73",
            "domainsec_controller_ack_latency_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in:\n{text}");
        }
        if let Some(verdict) = domainsec_daemon::exposition::promtool_check(&text) {
            assert_eq!(verdict, Ok(()), "promtool check metrics:\n{text}");
        }
    }
}
