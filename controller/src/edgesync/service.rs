//! The `EdgeSync` gRPC service: subscription and the per-edge sync stream.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::Utc;
use proto::edge::{self as pb, edge_message::Kind, edge_sync_server::EdgeSync};
use sqlx::{PgPool, types::Json};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument, debug, info, info_span, warn};
use uuid::Uuid;

use super::{
    fleet::{Fleet, StreamHandle},
    snapshot::SnapshotCache,
    status::StatusWriter,
    tls::EdgePeer,
    trust::TrustedEdges,
};
use crate::db::{
    self,
    change::{Audit, Change},
    sync_state::SyncState,
};

/// Shared by every edge stream of this replica.
#[derive(Clone)]
pub struct EdgeSyncService {
    /// The directory.
    pub pool: PgPool,
    /// Subscribed edges' certificates.
    pub trusted: Arc<TrustedEdges>,
    /// Streams held here.
    pub fleet: Arc<Fleet>,
    /// The newest config version.
    pub versions: watch::Receiver<u64>,
    /// Per-version configuration.
    pub cache: Arc<SnapshotCache>,
    /// Sync state recorder.
    pub status: StatusWriter,
    /// This replica's name in fleet status.
    pub controller_id: String,
    /// Opens sealed certificate tasks (PFX imports).
    pub seal: Arc<crate::seal::SealKey>,
}

/// What the stream carries, boxed: a channel's slots are allocated 32 at a time
/// per edge, and an inline message would make an idle edge cost kilobytes.
type Outbound = Box<Result<pb::ControllerMessage, Status>>;

type SyncStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ControllerMessage, Status>> + Send>>;

#[tonic::async_trait]
impl EdgeSync for EdgeSyncService {
    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<pb::SubscribeResponse>, Status> {
        let peer = peer(&request)?;
        if !peer.enrollment {
            return Err(Status::failed_precondition("subscribe on the enrollment server name"));
        }
        let request = request.into_inner();
        let certificate_pem = pem(&peer.certificate);
        let secret_sha256 = domainsec_model::Fingerprint::of(request.secret.as_bytes());
        let mut change = Change::begin(&self.pool).await.map_err(Status::from)?;
        let redeemed = db::subscriptions::redeem(
            change.conn(),
            &request.edge,
            secret_sha256.as_str(),
            peer.sha256.as_str(),
            &certificate_pem,
        )
        .await
        .map_err(Status::from)?;
        change.edges_changed();
        let actor = format!("edge:{}", request.edge);
        change
            .commit(Audit {
                actor: &actor,
                actor_role: "edge",
                action: "edge.subscribe",
                target: request.edge.clone(),
                before: None,
                after: Some(serde_json::json!({ "certificate_sha256": peer.sha256.as_str() })),
            })
            .await
            .map_err(Status::from)?;
        if let Err(error) = self.trusted.reload(&self.pool).await {
            warn!(%error, "reload trusted edges after a subscription");
        }
        info!(edge = %request.edge, sha256 = %peer.sha256, remote = %peer.remote, "edge subscribed");
        let organization = db::organization::fetch(&self.pool).await.map_err(Status::from)?.name;
        let config = self.cache.at_least(&self.pool, 0).await.map_err(Status::from)?;
        let controller_certificates =
            config.snapshot_for(&request.edge).map(|s| s.controller_certificates).unwrap_or_default();
        Ok(Response::new(pb::SubscribeResponse {
            organization,
            edge: request.edge,
            fqdn: redeemed.fqdn,
            controller_certificates,
        }))
    }

    type SyncStream = SyncStream;

    async fn sync(&self, request: Request<Streaming<pb::EdgeMessage>>) -> Result<Response<Self::SyncStream>, Status> {
        let peer = peer(&request)?;
        if peer.enrollment {
            return Err(Status::failed_precondition("sync on the controller's name, not the enrollment name"));
        }
        // Re-checked per stream: the handshake verifier ran when the connection opened.
        let edge = self
            .trusted
            .edge_for(peer.sha256.as_str())
            .ok_or_else(|| Status::permission_denied("this certificate belongs to no subscribed edge"))?;
        // The stream's generation: its state writes win over any older stream's (this
        // replica's or another's), and lose to any newer one's.
        let (edge_id, generation): (Uuid, i64) = sqlx::query_as(
            "SELECT id, nextval('edge_stream_generation') FROM edges WHERE name = $1 AND certificate_sha256 = $2",
        )
        .bind(&edge)
        .bind(peer.sha256.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| Status::from(db::Error::from(e)))?
        .ok_or_else(|| Status::permission_denied("this certificate belongs to no subscribed edge"))?;
        let mut state = db::sync_state::load(&self.pool, edge_id).await.map_err(Status::from)?;
        state.stream_generation = Some(generation);
        let (sender, receiver) = mpsc::channel(OUTBOUND_BUFFER);
        let handle = self.fleet.register(&edge);
        let stream = EdgeStream {
            service: self.clone(),
            edge: edge.clone(),
            state,
            handle,
            sender,
            in_flight: None,
            sent_or_applied: 0,
            edge_runs: 0,
            force: false,
            tasks_sent: HashSet::new(),
        };
        let span = info_span!("sync", edge = %edge, remote = %peer.remote);
        tokio::spawn(stream.run(request.into_inner()).instrument(span));
        Ok(Response::new(Box::pin(tokio_stream::StreamExt::map(ReceiverStream::new(receiver), |message: Outbound| {
            *message
        }))))
    }
}

/// One edge's stream: push when a newer version exists and nothing is in flight.
struct EdgeStream {
    service: EdgeSyncService,
    edge: String,
    state: SyncState,
    handle: StreamHandle,
    sender: mpsc::Sender<Outbound>,
    /// Version pushed and not yet answered, with its deadline.
    in_flight: Option<(u64, tokio::time::Instant)>,
    /// Newest version the edge has been sent or said it runs.
    sent_or_applied: u64,
    /// Newest version the edge said it runs (Hello, ACK): never pushed anything older.
    edge_runs: u64,
    /// Push the current version again even if the edge has it.
    force: bool,
    /// Certificate tasks sent on this stream (the edge answers a repeat the same way).
    tasks_sent: HashSet<String>,
}

impl EdgeStream {
    async fn run(mut self, mut inbound: Streaming<pb::EdgeMessage>) {
        let now = Utc::now();
        self.state.connected = true;
        self.state.connected_since = Some(now);
        self.state.last_seen_at = Some(now);
        self.state.controller = Some(self.service.controller_id.clone());
        self.service.status.update(&self.state);
        info!("edge connected");
        let mut versions = self.service.versions.clone();
        self.handle.tasks.notify_one();
        let reason = loop {
            if let Err(reason) = self.push_if_due().await {
                break reason;
            }
            let deadline = self.in_flight.map(|(_, deadline)| deadline);
            tokio::select! {
                () = self.handle.cancel.cancelled() => {
                    let _ = self.sender.send(Box::new(Err(Status::permission_denied("this edge was removed or reconnected elsewhere")))).await;
                    break "cut off";
                }
                changed = versions.changed() => if changed.is_err() {
                    let _ = self.sender.send(Box::new(Err(controller_stopping()))).await;
                    break "controller stopping";
                },
                () = self.handle.resync.notified() => self.force = true,
                () = self.handle.tasks.notified() => {
                    if let Err(reason) = self.send_tasks().await {
                        break reason;
                    }
                }
                () = sleep_until(deadline) => {
                    warn!(version = self.in_flight.map(|(v, _)| v), "no ACK in time; will push again");
                    self.in_flight = None;
                    self.force = true;
                }
                message = inbound.message() => match message {
                    Ok(Some(message)) => self.receive(message).await,
                    Ok(None) => break "edge closed the stream",
                    Err(status) => { debug!(%status, "stream error"); break "stream error" }
                },
            }
        };
        self.state.connected = false;
        self.state.last_seen_at = Some(Utc::now());
        self.service.status.update(&self.state);
        self.service.fleet.unregister(&self.edge, &self.handle);
        info!(reason, "edge disconnected");
    }

    async fn push_if_due(&mut self) -> Result<(), &'static str> {
        let latest = *self.service.versions.borrow();
        if self.in_flight.is_some() || (latest <= self.sent_or_applied && !self.force) {
            return Ok(());
        }
        let config = match self.service.cache.at_least(&self.service.pool, latest).await {
            Ok(config) => config,
            Err(error) => {
                warn!(%error, "could not read the configuration; will retry");
                self.in_flight = Some((0, tokio::time::Instant::now() + RETRY_AFTER_ERROR));
                return Ok(());
            }
        };
        let Some(snapshot) = config.snapshot_for(&self.edge) else {
            return Err("edge no longer in the directory");
        };
        let version = snapshot.version;
        if version < self.edge_runs {
            // This replica's view lags what the edge already runs (it ACKed a newer version
            // through another replica), or the directory was restored from an older backup:
            // never push it back. The next version move pushes as usual.
            info!(
                version,
                edge_runs = self.edge_runs,
                "not pushing: the edge runs a newer version than the directory's"
            );
            self.force = false;
            return Ok(());
        }
        let message = pb::ControllerMessage { kind: Some(pb::controller_message::Kind::Snapshot(snapshot)) };
        if self.sender.send(Box::new(Ok(message))).await.is_err() {
            return Err("edge went away");
        }
        debug!(version, "pushed snapshot");
        crate::metrics::METRICS.pushed();
        self.in_flight = Some((version, tokio::time::Instant::now() + ACK_TIMEOUT));
        self.sent_or_applied = self.sent_or_applied.max(version);
        self.force = false;
        // Recorded with the edge's answer (or next heartbeat), not now: a push to
        // every edge must not also queue a state write per edge.
        self.state.last_version_sent = i64::try_from(version).ok();
        Ok(())
    }

    /// Sends the edge's queued certificate tasks not yet sent on this stream.
    async fn send_tasks(&mut self) -> Result<(), &'static str> {
        let tasks = match db::certificates::queued(&self.service.pool, self.state.edge_id, &self.service.seal).await {
            Ok(tasks) => tasks,
            Err(error) => {
                warn!(%error, "could not read certificate tasks");
                return Ok(());
            }
        };
        for task in tasks {
            if !self.tasks_sent.insert(task.id.clone()) {
                continue;
            }
            debug!(task = %task.id, "sending certificate task");
            let message = pb::ControllerMessage { kind: Some(pb::controller_message::Kind::CertificateTask(task)) };
            if self.sender.send(Box::new(Ok(message))).await.is_err() {
                return Err("edge went away");
            }
        }
        Ok(())
    }

    async fn record_certificates(&self, result: Option<&pb::CertificateResult>, inventory: &[pb::CertificateInfo]) {
        // The store first, so whoever sees the task finished sees its effect too.
        let pool = &self.service.pool;
        if let Err(error) = db::certificates::replace_inventory(pool, self.state.edge_id, inventory).await {
            warn!(%error, "could not record the edge's certificates");
        }
        if let Some(result) = result
            && let Err(error) = db::certificates::finish(pool, self.state.edge_id, result).await
        {
            warn!(%error, "could not record a certificate task result");
        }
    }

    async fn receive(&mut self, message: pb::EdgeMessage) {
        let now = Utc::now();
        self.state.last_seen_at = Some(now);
        match message.kind {
            Some(Kind::CertificateResult(result)) => {
                info!(task = %result.id, ok = result.ok, error = %result.error, "certificate task answered");
                self.record_certificates(Some(&result), &result.certificates).await;
            }
            Some(Kind::Hello(hello)) => {
                self.record_certificates(None, &hello.certificates).await;
                self.sent_or_applied = self.sent_or_applied.max(hello.applied_version);
                self.edge_runs = self.edge_runs.max(hello.applied_version);
                self.state.section_digests = Json(hello.section_digests.into_iter().collect());
                self.state.agent_version = Some(hello.agent_version);
                if hello.applied_version > 0 {
                    self.state.last_version_acked = i64::try_from(hello.applied_version).ok();
                }
            }
            Some(Kind::Ack(ack)) => {
                debug!(version = ack.version, "ACK");
                if let Some((version, deadline)) = self.in_flight
                    && version == ack.version
                {
                    let sent = deadline.checked_sub(ACK_TIMEOUT).unwrap_or(deadline);
                    crate::metrics::METRICS.acked(sent.elapsed());
                    self.in_flight = None;
                }
                self.edge_runs = self.edge_runs.max(ack.version);
                self.state.last_version_acked = i64::try_from(ack.version).ok();
                self.state.acked_at = Some(now);
                self.state.section_digests = Json(ack.section_digests.into_iter().collect());
            }
            Some(Kind::Nack(nack)) => {
                crate::metrics::METRICS.nacked();
                warn!(version = nack.version, reason = %nack.reason, "NACK: the edge keeps its last good configuration");
                if self.in_flight.is_some_and(|(v, _)| v == nack.version) {
                    self.in_flight = None;
                }
                self.state.last_nack_version = i64::try_from(nack.version).ok();
                self.state.last_nack_reason = Some(nack.reason);
                self.state.nack_at = Some(now);
            }
            Some(Kind::Heartbeat(heartbeat)) => {
                if let Err(error) =
                    db::partners::record(&self.service.pool, self.state.edge_id, &heartbeat.partners).await
                {
                    warn!(%error, "could not record the edge's partner observations");
                }
                self.state.last_heartbeat_at = Some(now);
                self.state.counters = Json(heartbeat.counters.into_iter().collect::<BTreeMap<_, _>>());
                self.state.queue_length = i64::try_from(heartbeat.queue_length).ok();
            }
            None => {}
        }
        self.service.status.update(&self.state);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn peer<T>(request: &Request<T>) -> Result<EdgePeer, Status> {
    request.extensions().get::<EdgePeer>().cloned().ok_or_else(|| Status::unauthenticated("no client certificate"))
}

fn pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

const OUTBOUND_BUFFER: usize = 4;
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(2);

/// The status a stopping controller ends each edge's stream with, so the edge goes to
/// another replica at once (see [`proto::edge::CONTROLLER_STOPPING_METADATA`]).
fn controller_stopping() -> Status {
    let mut status = Status::unavailable("the controller is stopping; connect to another replica");
    status
        .metadata_mut()
        .insert(proto::edge::CONTROLLER_STOPPING_METADATA, tonic::metadata::MetadataValue::from_static("1"));
    status
}
