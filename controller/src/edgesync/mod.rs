//! EdgeSync: subscribing edges and keeping their configuration current over
//! one long-lived mutual-TLS gRPC stream each, with direct trust on both sides.
//!
//! # Layout
//! - [`identity`]: the controller's self-signed edge-port certificate.
//! - [`tls`]: TLS termination with the direct-trust verifiers.
//! - [`trust`]: the cache of subscribed edges' certificate hashes.
//! - [`changes`]: `LISTEN/NOTIFY` on the directory (versions, trust, forced syncs).
//! - [`snapshot`]: the configuration per version, cut per edge.
//! - [`service`]: the gRPC service and the per-edge stream.
//! - [`fleet`]: the streams this replica holds.
//! - [`status`]: batched recording of each edge's sync state.
//! - [`liveness`]: this replica's lease, so fleet status can tell a dead replica's
//!   edges from a live one's.

pub mod changes;
pub mod fleet;
pub mod identity;
pub mod liveness;
pub mod service;
pub mod snapshot;
pub mod status;
pub mod tls;
pub mod trust;

use domainsec_model::Fingerprint;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::{net::TcpListener, sync::watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::db;
pub use identity::ControllerIdentity;

/// Handles the admin API uses to reach the edge side.
#[derive(Clone)]
pub struct EdgeSyncHandle {
    /// Streams held by this replica.
    pub fleet: Arc<Fleet>,
    /// Subscribed edges' certificates.
    pub trusted: Arc<TrustedEdges>,
    /// Per-version configuration.
    pub cache: Arc<snapshot::SnapshotCache>,
}

pub use fleet::Fleet;
pub use trust::TrustedEdges;

/// Everything the edge port needs to start.
pub struct EdgePort {
    /// Bound listener.
    pub listener: TcpListener,
    /// The controller's direct-trust identity.
    pub identity: ControllerIdentity,
    /// This replica's name.
    pub controller_id: String,
    /// Opens sealed certificate tasks.
    pub seal: Arc<crate::seal::SealKey>,
}

/// Publishes the identity, starts following the directory and serves the edge
/// port until `shutdown`.
pub async fn start(
    pool: PgPool,
    port: EdgePort,
    shutdown: CancellationToken,
) -> anyhow::Result<(EdgeSyncHandle, tokio::task::JoinHandle<()>)> {
    let mut conn = pool.acquire().await?;
    db::organization::record_controller_certificate(
        &mut conn,
        port.identity.sha256.as_str(),
        "edge-sync",
        &port.identity.certificate_pem,
        chrono::DateTime::from_timestamp(port.identity.not_after.unix_timestamp(), 0).unwrap_or_default(),
    )
    .await?;
    drop(conn);
    let trusted = Arc::new(TrustedEdges::default());
    trusted.reload(&pool).await?;
    let fleet = Arc::new(Fleet::default());
    let cache = Arc::new(snapshot::SnapshotCache::default());
    let version: i64 =
        sqlx::query_scalar("SELECT config_version FROM organization WHERE id = 1").fetch_one(&pool).await?;
    let (versions_tx, versions) = watch::channel(u64::try_from(version).unwrap_or_default());
    tokio::spawn(changes::follow(pool.clone(), versions_tx, trusted.clone(), fleet.clone(), shutdown.clone()));
    let status = status::StatusWriter::start(pool.clone(), shutdown.clone());
    let edge_endpoint = port.listener.local_addr()?.to_string();
    let lease =
        liveness::start(pool.clone(), port.controller_id.clone(), edge_endpoint, fleet.clone(), shutdown.clone())
            .await?;
    let service = service::EdgeSyncService {
        pool,
        trusted: trusted.clone(),
        fleet: fleet.clone(),
        versions,
        cache: cache.clone(),
        status,
        controller_id: port.controller_id,
        seal: port.seal,
    };
    let (sync_config, enrollment_config) = tls::server_configs(&port.identity, trusted.clone())?;
    let (sender, receiver) = tokio::sync::mpsc::channel(128);
    tokio::spawn(tls::accept_loop(port.listener, sync_config, enrollment_config, sender, shutdown.clone()));
    info!(sha256 = %port.identity.sha256, "edge port serving");
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .add_service(
            proto::edge::edge_sync_server::EdgeSyncServer::new(service)
                .max_decoding_message_size(proto::edge::MAX_EDGE_MESSAGE_BYTES)
                .max_encoding_message_size(proto::edge::MAX_CONTROLLER_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(ReceiverStream::new(receiver), shutdown.cancelled_owned());
    let task = tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "edge port stopped");
        }
        let _ = lease.await;
    });
    Ok((EdgeSyncHandle { fleet, trusted, cache }, task))
}

/// Fingerprints of the controllers' current edge-port certificates.
pub async fn controller_fingerprints(pool: &PgPool) -> Result<Vec<String>, db::Error> {
    let pems: Vec<String> = sqlx::query_scalar(
        "SELECT certificate_pem FROM controller_certificates WHERE purpose = 'edge-sync' AND not_after > now()
         ORDER BY created_at",
    )
    .fetch_all(pool)
    .await?;
    Ok(pems.iter().filter_map(|p| pem::parse(p).ok()).map(|p| Fingerprint::of(p.contents()).to_string()).collect())
}
