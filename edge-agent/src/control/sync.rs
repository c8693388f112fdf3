//! The edge's side of EdgeSync: one stream to a controller, snapshots applied and
//! answered with ACK or NACK, heartbeats, and reconnection with backoff and jitter
//! across every endpoint it knows.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use proto::edge::{self as pb, controller_message, edge_message::Kind, edge_sync_client::EdgeSyncClient};
use ring::rand::SecureRandom as _;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::{
    operator,
    tls::{self, PinnedControllers},
};
use crate::{
    apply::{self, EdgeConfig},
    certificates::CertificateStore,
    identity::EdgeIdentity,
    relay::Relay,
    store::{ControllerTrust, DataDir},
};

/// Settings for `domainsec-edge run`.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// How often to send a heartbeat.
    pub heartbeat_interval: Duration,
    /// Upper bound of the reconnect delay.
    pub max_backoff: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self { heartbeat_interval: Duration::from_secs(30), max_backoff: Duration::from_secs(30) }
    }
}

/// The running edge: its identity, trust and the configuration it serves.
pub struct EdgeAgent {
    dir: DataDir,
    identity: EdgeIdentity,
    trust: ControllerTrust,
    pinned: Arc<PinnedControllers>,
    current: Option<pb::Snapshot>,
    config: watch::Sender<Option<Arc<EdgeConfig>>>,
    counters: HashMap<&'static str, u64>,
    settings: SyncSettings,
    certificates: CertificateStore,
    listening: Arc<Mutex<HashSet<SocketAddr>>>,
    relay: Option<Relay>,
    /// The partner observations the current stream's controller has (sent only when they change).
    reported_partners: Vec<pb::PartnerObservation>,
}

/// Why one stream ended.
enum StreamEnd {
    /// The edge is stopping.
    Shutdown,
    /// The stream broke; `connected` when it had got as far as the stream itself
    /// (the reconnect backoff starts over then).
    Lost { connected: bool, cause: SyncError },
}

/// Why a sync stream broke.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    /// No TLS connection to the controller.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The controller turned this edge away (TLS alert or PERMISSION_DENIED).
    #[error(
        "refused: {0}; the controller does not accept this edge: if it was removed, subscribe it again \
         with a new subscription file"
    )]
    NotAccepted(String),
    /// The first call failed otherwise.
    #[error("refused: {0}")]
    Refused(String),
    /// Our side of the stream closed (the controller went away mid-send).
    #[error("the stream closed")]
    Closed,
    /// The controller ended the stream.
    #[error("the controller closed the stream")]
    ClosedByController,
    /// The controller is stopping and released the stream: go to another replica now.
    #[error("the controller is stopping")]
    ControllerStopping,
    /// The stream failed with a gRPC status.
    #[error("{0}")]
    Status(String),
}

// === impl StreamEnd ===

impl StreamEnd {
    /// A stream that was up and then broke.
    fn after_connect(cause: SyncError) -> Self {
        Self::Lost { connected: true, cause }
    }
}

impl EdgeAgent {
    /// Loads identity, trust and the last good snapshot from the data dir. The
    /// edge serves that snapshot until a controller sends a newer one.
    pub fn load(dir: DataDir, settings: SyncSettings) -> anyhow::Result<Self> {
        let identity = EdgeIdentity::load(&dir)?;
        let trust = dir.load_trust()?;
        let pinned = Arc::new(PinnedControllers::new(trust.controller_sha256.iter().cloned()));
        let current = dir.load_snapshot()?;
        let config = match &current {
            Some(snapshot) => match apply::check(snapshot) {
                Ok(config) => {
                    info!(version = snapshot.version, "serving the configuration from the data dir");
                    Some(Arc::new(config))
                }
                Err(error) => {
                    warn!(%error, "the stored configuration no longer applies; waiting for the controller");
                    None
                }
            },
            None => None,
        };
        let (config, _) = watch::channel(config);
        let mut certificates = CertificateStore::new(dir.root());
        if let Some(config) = config.borrow().as_ref() {
            certificates.set_trusted_roots(config.trusted_roots.clone());
        }
        Ok(Self {
            dir,
            identity,
            trust,
            pinned,
            current,
            config,
            counters: HashMap::new(),
            settings,
            certificates,
            listening: Arc::default(),
            relay: None,
            reported_partners: Vec::new(),
        })
    }

    /// The configuration being served (the relay follows it; tests wait on it).
    pub fn config(&self) -> watch::Receiver<Option<Arc<EdgeConfig>>> {
        self.config.subscribe()
    }

    /// The addresses the relay listens on (shared with [`Relay::start`]), so a
    /// new snapshot's address check does not count them as taken.
    pub fn listening(&self) -> Arc<Mutex<HashSet<SocketAddr>>> {
        self.listening.clone()
    }

    /// Reports the relay's figures in heartbeats.
    pub fn attach_relay(&mut self, relay: Relay) {
        self.relay = Some(relay);
    }

    /// Runs until `shutdown`, reconnecting across the known endpoints.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut attempt: u32 = 0;
        let mut endpoint_index = 0usize;
        loop {
            let endpoints = self.trust.endpoints.clone();
            let Some(endpoint) = endpoints.get(endpoint_index % endpoints.len().max(1)).cloned() else {
                warn!("no controller endpoint is known; nothing to connect to");
                shutdown.cancelled().await;
                return;
            };
            let span = info_span!("sync", controller = %endpoint);
            match self.stream(&endpoint, &shutdown).instrument(span).await {
                StreamEnd::Shutdown => return,
                StreamEnd::Lost { connected, cause } => {
                    *self.counters.entry("edgesync.reconnects").or_default() += 1;
                    if connected {
                        attempt = 0;
                    }
                    // A stopping controller released us: another replica, if there is one, now.
                    let delay = if matches!(cause, SyncError::ControllerStopping) && endpoints.len() > 1 {
                        Duration::ZERO
                    } else {
                        backoff(attempt, self.settings.max_backoff)
                    };
                    let reason = if connected { format!("connected, then {cause}") } else { cause.to_string() };
                    warn!(%endpoint, %reason, retry_in = ?delay, "controller stream lost");
                    attempt = attempt.saturating_add(1);
                    endpoint_index = endpoint_index.wrapping_add(1);
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    async fn stream(&mut self, endpoint: &str, shutdown: &CancellationToken) -> StreamEnd {
        let channel = match tls::connect(endpoint, &self.identity, self.pinned.clone(), false).await {
            Ok(channel) => channel,
            Err(error) => {
                return StreamEnd::Lost { connected: false, cause: SyncError::Connect(error.to_string()) };
            }
        };
        let (sender, receiver) = mpsc::channel(8);
        self.reported_partners.clear();
        let hello = pb::Hello {
            applied_version: self.current.as_ref().map_or(0, |s| s.version),
            section_digests: self.current.as_ref().map(pb::section_digests).unwrap_or_default().into_iter().collect(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            certificates: self.certificates.inventory(),
        };
        let _ = sender.send(message(Kind::Hello(hello))).await;
        let mut client = EdgeSyncClient::new(channel)
            .max_decoding_message_size(pb::MAX_CONTROLLER_MESSAGE_BYTES)
            .max_encoding_message_size(pb::MAX_EDGE_MESSAGE_BYTES);
        let mut inbound = match client.sync(ReceiverStream::new(receiver)).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let detail = tls::error_chain(&status);
                let cause = if status.code() == tonic::Code::PermissionDenied || tls::is_alert(&status) {
                    SyncError::NotAccepted(detail)
                } else {
                    SyncError::Refused(detail)
                };
                return StreamEnd::Lost { connected: false, cause };
            }
        };
        info!("connected to the controller");
        let mut heartbeat = tokio::time::interval(self.settings.heartbeat_interval);
        heartbeat.tick().await;
        let mut connected = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return StreamEnd::Shutdown,
                _ = heartbeat.tick() => {
                    let beat = self.heartbeat();
                    if sender.send(message(Kind::Heartbeat(beat))).await.is_err() {
                        return StreamEnd::after_connect(SyncError::Closed);
                    }
                }
                received = inbound.message() => match received {
                    Ok(Some(pb::ControllerMessage { kind: Some(controller_message::Kind::Snapshot(snapshot)) })) => {
                        connected = true;
                        let answer = self.apply(snapshot);
                        if sender.send(message(answer)).await.is_err() {
                            return StreamEnd::after_connect(SyncError::Closed);
                        }
                    }
                    Ok(Some(pb::ControllerMessage { kind: Some(controller_message::Kind::CertificateTask(task)) })) => {
                        if operator::takes_long(&task) {
                            // Network work (partner test): in the background, so the
                            // stream keeps carrying snapshots and heartbeats meanwhile.
                            let running = self.config.borrow().clone();
                            let (relay, certificates, answers) = (self.relay.clone(), self.certificates.clone(), sender.clone());
                            tokio::spawn(async move {
                                let edge = operator::EdgeState { relay: relay.as_ref(), running, certificates: &certificates };
                                let mut result = operator::answer(edge, &task).await;
                                result.certificates = certificates.inventory();
                                let _ = answers.send(message(Kind::CertificateResult(result))).await;
                            });
                            continue;
                        }
                        let result = if operator::handles(&task) {
                            let running = self.config.borrow().clone();
                            let edge = operator::EdgeState { relay: self.relay.as_ref(), running, certificates: &self.certificates };
                            let mut result = operator::answer(edge, &task).await;
                            result.certificates = self.certificates.inventory();
                            result
                        } else {
                            let mut result = self.certificates.execute(&task);
                            self.check_revocation(&task, &mut result).await;
                            result
                        };
                        if sender.send(message(Kind::CertificateResult(result))).await.is_err() {
                            return StreamEnd::after_connect(SyncError::Closed);
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return StreamEnd::Lost { connected, cause: SyncError::ClosedByController },
                    Err(status) if status.metadata().contains_key(proto::edge::CONTROLLER_STOPPING_METADATA) => {
                        return StreamEnd::Lost { connected, cause: SyncError::ControllerStopping };
                    }
                    Err(status) => {
                        return StreamEnd::Lost { connected, cause: SyncError::Status(status.message().to_owned()) };
                    }
                },
            }
        }
    }

    /// `dsctl cert verify`: the relay's CRL cache replaces the placeholder step.
    async fn check_revocation(&self, task: &pb::CertificateTask, result: &mut pb::CertificateResult) {
        let Some(pb::certificate_task::Action::Verify(verify)) = &task.action else { return };
        let (Some(relay), Some(config)) = (&self.relay, self.config.borrow().clone()) else { return };
        let Some(chain) = self.certificates.chain(&verify.thumbprint) else { return };
        let Some(position) = result.steps.iter().position(|s| s == crate::certificates::verify::NOT_CHECKED) else {
            return;
        };
        let (lines, ok) = relay.security.revocation_report(&config, &chain).await;
        result.steps.splice(position..=position, lines);
        result.verified &= ok;
    }

    fn heartbeat(&mut self) -> pb::Heartbeat {
        let mut counters: HashMap<String, u64> = self.counters.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        if let Some(relay) = &self.relay {
            counters.extend(relay.metrics.snapshot().into_iter().map(|(k, v)| (k.to_owned(), v)));
            counters.extend(relay.security.counters.flat());
        }
        let current = self.relay.as_ref().map(|relay| partner_observations(&relay.security.counters.counts()));
        let partners = unreported(&mut self.reported_partners, current.unwrap_or_default());
        let beat = pb::Heartbeat {
            applied_version: self.current.as_ref().map_or(0, |s| s.version),
            counters,
            queue_length: self.relay.as_ref().map_or(0, |r| r.queue.len() as u64),
            partners,
        };
        fit_heartbeat(beat)
    }

    /// Checks, persists and takes a snapshot; returns the ACK or NACK to send.
    fn apply(&mut self, snapshot: pb::Snapshot) -> Kind {
        let version = snapshot.version;
        if let Some(reason) = rollback(self.current.as_ref().map(|current| current.version), version) {
            warn!(version, %reason, "refusing the snapshot");
            *self.counters.entry("edgesync.snapshots_refused").or_default() += 1;
            return Kind::Nack(pb::Nack { version, reason });
        }
        let listening = self.listening.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let config = match apply::check_with(&snapshot, &listening) {
            Ok(config) => config,
            Err(error) => {
                warn!(version, %error, "refusing the snapshot; keeping the last good configuration");
                *self.counters.entry("edgesync.snapshots_refused").or_default() += 1;
                return Kind::Nack(pb::Nack { version, reason: error.0 });
            }
        };
        if let Err(error) = self.dir.store_snapshot(&snapshot) {
            warn!(version, %error, "cannot persist the snapshot; keeping the last good configuration");
            return Kind::Nack(pb::Nack { version, reason: format!("edge cannot persist the configuration: {error}") });
        }
        self.update_trust(&snapshot);
        let digests = pb::section_digests(&snapshot);
        self.current = Some(snapshot);
        self.certificates.set_trusted_roots(config.trusted_roots.clone());
        self.config.send_replace(Some(Arc::new(config)));
        *self.counters.entry("edgesync.snapshots_applied").or_default() += 1;
        info!(version, "applied configuration");
        Kind::Ack(pb::Ack { version, section_digests: digests.into_iter().collect() })
    }

    /// Trusts exactly the controller certificates the snapshot lists (rotation
    /// adds the next certificate before a controller presents it).
    fn update_trust(&mut self, snapshot: &pb::Snapshot) {
        let fingerprints: Vec<String> =
            snapshot.controller_certificates.iter().filter_map(|pem| tls::pem_sha256(pem)).collect();
        if fingerprints.is_empty() || fingerprints == self.trust.controller_sha256 {
            return;
        }
        let mut trust = self.trust.clone();
        trust.controller_sha256 = fingerprints.clone();
        match self.dir.store_trust(&trust) {
            Ok(()) => {
                self.pinned.replace(fingerprints);
                self.trust = trust;
                debug!("controller certificates updated");
            }
            Err(error) => warn!(%error, "cannot persist controller certificates"),
        }
    }
}

/// A heartbeat within [`pb::MAX_EDGE_MESSAGE_BYTES`]: past a quarter of it (the
/// counters are capped far below that), the per-partner and per-reason rows go
/// and the totals stay, with an error in the log, so the stream never breaks on
/// its own heartbeat.
fn fit_heartbeat(mut beat: pb::Heartbeat) -> pb::Heartbeat {
    use prost::Message;
    let size = beat.encoded_len();
    if size <= HEARTBEAT_BUDGET_BYTES {
        return beat;
    }
    beat.counters.retain(|name, _| !is_breakdown(name));
    beat.partners.clear();
    tracing::error!(size, kept = beat.encoded_len(), "heartbeat too large; sending totals without per-partner rows");
    beat
}

/// `current` when it differs from what this stream already reported (then it becomes
/// the reported state), else nothing: an idle edge's heartbeat costs the controller no
/// write. A new stream starts from nothing reported.
fn unreported(
    reported: &mut Vec<pb::PartnerObservation>,
    current: Vec<pb::PartnerObservation>,
) -> Vec<pb::PartnerObservation> {
    if *reported == current {
        return Vec::new();
    }
    reported.clone_from(&current);
    current
}

/// The per-partner figures and certificates, as the heartbeat carries them.
fn partner_observations(counts: &crate::domain_security::counters::Counts) -> Vec<pb::PartnerObservation> {
    counts
        .partners
        .iter()
        .map(|(partner, figures)| pb::PartnerObservation {
            partner: partner.clone(),
            received: figures.received,
            sent: figures.sent,
            outbound_failures: figures.outbound_failures,
            inbound_refusals: figures.inbound_refusals,
            outbound_sessions: figures.outbound_sessions,
            reasons: figures.reasons.iter().map(|(reason, count)| (reason.clone(), *count)).collect(),
            certificates: figures
                .certificates
                .iter()
                .map(|(sha256, seen)| pb::SeenCertificate {
                    sha256: sha256.clone(),
                    subject: seen.subject.clone(),
                    issuer: seen.issuer.clone(),
                    not_after_unix: seen.not_after,
                    last_seen_unix: seen.last_seen,
                })
                .collect(),
        })
        .collect()
}

/// Per-partner and per-reason counter rows (totals keep their names).
fn is_breakdown(name: &str) -> bool {
    [
        "domain_secured.received.",
        "domain_secured.sent.",
        "domain_secured.outbound_failures.",
        "domain_secured.inbound_refusals.",
        "domain_secured.failure_reason.",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

/// The most a heartbeat may take of the edge's message limit.
const HEARTBEAT_BUDGET_BYTES: usize = pb::MAX_EDGE_MESSAGE_BYTES / 4;

fn message(kind: Kind) -> pb::EdgeMessage {
    pb::EdgeMessage { kind: Some(kind) }
}

/// "Full jitter" backoff: a random delay up to min(max, 1 s × 2^attempt), so a
/// controller restart does not bring every edge back in the same second.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    let ceiling = Duration::from_secs(1).saturating_mul(2u32.saturating_pow(attempt.min(16))).min(max);
    jittered(ceiling, |bytes| ring::rand::SystemRandom::new().fill(bytes))
}

/// Why a snapshot of `offered` version would roll back the edge running `runs`, if it
/// would. A replica whose view lags, or a directory restored from an old backup, must
/// not take the edge back in time; the same version again (a forced sync) is fine.
fn rollback(runs: Option<u64>, offered: u64) -> Option<String> {
    let runs = runs.filter(|runs| offered < *runs)?;
    Some(format!(
        "snapshot version {offered} is older than version {runs}, which this edge runs; keeping version {runs}"
    ))
}

/// A random share of `ceiling` (at least 50 ms), the randomness from `fill`.
/// Jitter needs no secrecy and the reconnect must go on, so a failed fill is no
/// error; but a zeroed buffer would make every delay the 50 ms floor, a reconnect
/// storm against a controller that is down. Without randomness the whole
/// ceiling is waited.
fn jittered(ceiling: Duration, fill: impl FnOnce(&mut [u8]) -> Result<(), ring::error::Unspecified>) -> Duration {
    let mut bytes = [0u8; 4];
    if fill(&mut bytes).is_err() {
        warn!("the system random number generator failed; reconnecting without jitter");
        return ceiling.max(Duration::from_millis(50));
    }
    let fraction = f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX);
    ceiling.mul_f64(fraction).max(Duration::from_millis(50))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_heartbeat_keeps_its_totals_and_drops_the_breakdown() {
        let mut counters: HashMap<String, u64> =
            (0..200_000).map(|n| (format!("domain_secured.inbound_refusals.p{n}.woodgrovebank.com"), 1)).collect();
        counters.insert("domain_secured.inbound_refusals".to_owned(), 200_000);
        let beat = pb::Heartbeat { applied_version: 3, counters, queue_length: 0, partners: Vec::new() };
        let fitted = fit_heartbeat(beat);
        assert!(prost::Message::encoded_len(&fitted) <= HEARTBEAT_BUDGET_BYTES);
        assert_eq!(fitted.counters.get("domain_secured.inbound_refusals"), Some(&200_000));
        assert_eq!(fitted.applied_version, 3);
        let small = pb::Heartbeat {
            applied_version: 1,
            counters: HashMap::from([("a".into(), 1)]),
            queue_length: 2,
            partners: Vec::new(),
        };
        assert_eq!(fit_heartbeat(small.clone()), small);
    }

    #[test]
    fn an_older_snapshot_is_refused_and_the_same_or_newer_one_taken() {
        assert_eq!(rollback(None, 1), None, "a first snapshot");
        assert_eq!(rollback(Some(7), 7), None, "the same version again (forced sync)");
        assert_eq!(rollback(Some(7), 8), None);
        assert_eq!(
            rollback(Some(7), 6).as_deref(),
            Some("snapshot version 6 is older than version 7, which this edge runs; keeping version 7")
        );
        assert!(rollback(Some(u64::MAX), 0).is_some());
    }

    #[test]
    fn backoff_grows_to_the_cap_and_stays_random() {
        let max = Duration::from_secs(30);
        for attempt in 0..20 {
            let ceiling = Duration::from_secs(1u64 << attempt.min(16)).min(max);
            let delay = backoff(attempt, max);
            assert!(delay <= ceiling, "attempt {attempt}: {delay:?} > {ceiling:?}");
        }
        let delays: std::collections::HashSet<u128> = (0..20).map(|_| backoff(5, max).as_micros()).collect();
        assert!(delays.len() > 10, "jitter spreads reconnects");
    }

    #[test]
    fn backoff_without_randomness_waits_the_whole_ceiling_not_the_floor() {
        let ceiling = Duration::from_secs(16);
        assert_eq!(jittered(ceiling, |_| Err(ring::error::Unspecified)), ceiling);
    }

    #[test]
    fn partner_observations_go_out_once_per_change_and_again_after_a_reset() {
        let observation =
            |received| pb::PartnerObservation { partner: "woodgrovebank.com".into(), received, ..Default::default() };
        let mut reported = Vec::new();
        assert_eq!(unreported(&mut reported, vec![observation(1)]).len(), 1, "first time: sent");
        assert!(unreported(&mut reported, vec![observation(1)]).is_empty(), "unchanged: nothing");
        assert_eq!(unreported(&mut reported, vec![observation(2)]), vec![observation(2)], "changed: sent");
        reported.clear(); // a new stream
        assert_eq!(unreported(&mut reported, vec![observation(2)]).len(), 1, "a new controller gets it again");
    }
}
