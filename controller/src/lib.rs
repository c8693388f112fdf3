//! The DomainSec controller: keeps the organization's configuration in PostgreSQL
//! (the role Active Directory plays in the white paper) and serves the admin gRPC
//! API that `dsctl` speaks.
//!
//! # Layout
//! - [`config`]: the `serve` configuration (TOML file + flags).
//! - [`bootstrap`]: `init` and `admin-cert issue`.
//! - [`pki`]: the organization's internal CA (rcgen).
//! - [`rotation`]: rotating the edge-port certificate without cutting edges off.
//! - [`seal`]: encryption at rest for PFX bundles on their way to edges.
//! - [`state_dir`]: private keys on the controller's disk, never in the database.
//! - [`ca_certificate`]: what a trusted root may be (one CA certificate).
//! - [`document`]: the whole configuration as one declarative document, and diffs.
//! - [`db`]: all SQL; each change one transaction with a version bump and an audit row.
//! - [`directory`]: the operations, authorised per [`authz`] role.
//! - [`grpc`]: the admin API over mutual TLS.
//! - [`edgesync`]: the edge port: subscription and EdgeSync with direct trust.
//! - [`metrics`]: Prometheus text on `--metrics-listen` (connected edges, pushes, ACK latency).
//! - [`publication`]: the organization's own TLSA, MTA-STS and TLS-RPT records (texts and rules).
//! - [`mta_sts_https`]: the MTA-STS policy over HTTPS on `--mta-sts-listen`.
//! - [`health`]: gRPC health on the admin port and, without a client certificate, on `--health-listen`.

pub mod authz;
pub mod bootstrap;
pub mod ca_certificate;
pub mod config;
pub mod db;
pub mod directory;
pub mod document;
pub mod edgesync;
pub mod grpc;
pub mod health;
pub mod metrics;
pub mod mta_sts_https;
pub mod pki;
pub mod publication;
pub mod rotation;
pub mod seal;
pub mod state_dir;
#[cfg(feature = "testing")]
pub mod testing;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{config::Config, state_dir::StateDir};

/// The controller's two listeners, bound by the caller (tests bind port 0).
pub struct Listeners {
    /// The admin API (dsctl).
    pub admin: TcpListener,
    /// The edge port (subscription and EdgeSync).
    pub edge: TcpListener,
    /// Prometheus metrics, `/healthz` and `/readyz`, when asked for.
    pub metrics: Option<TcpListener>,
    /// gRPC health in plain HTTP/2 (no client certificate), when asked for.
    pub health: Option<TcpListener>,
    /// The MTA-STS policy over HTTPS, with the operator's certificate, when asked for.
    pub mta_sts: Option<(TcpListener, std::sync::Arc<rustls::ServerConfig>)>,
}

/// Runs the controller on already bound listeners until `shutdown`.
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let pool = db::connect(&config.database_url, config.max_database_connections)
        .await
        .context("connect to the directory database")?;
    serve(pool, &config, listeners, shutdown).await
}

/// Serves with an existing, migrated pool (tests pass a per-test database here).
pub async fn serve(
    pool: sqlx::PgPool,
    config: &Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let state = StateDir::new(&config.state_dir);
    // Off the runtime's threads: a replica in this process may hold the lock while it
    // awaits the database.
    let creating = tokio::task::spawn_blocking({
        let state = state.clone();
        move || state.lock()
    })
    .await
    .context("lock the state dir")?
    .context("lock the state dir")?;
    let tls = bootstrap::admin_api_tls(&pool, &state, &config.admin_hostnames)
        .await
        .context("load the admin API's TLS credentials")?;
    let (organization, version) = directory::Directory::new(pool.clone()).organization().await?;
    db::config_versions::record_current_if_missing(&pool)
        .await
        .context("record the current config version in the configuration history")?;
    let identity = edgesync::ControllerIdentity::load_or_create(&state, &organization)
        .context("load the edge port's direct-trust certificate")?;
    tracing::info!(
        %organization,
        config_version = version,
        admin_listen = %listeners.admin.local_addr()?,
        edge_listen = %listeners.edge.local_addr()?,
        "controller starting"
    );
    let seal =
        std::sync::Arc::new(seal::SealKey::load_or_create(&state.seal_key()).context("load the PFX sealing key")?);
    drop(creating);
    let port = edgesync::EdgePort {
        listener: listeners.edge,
        identity,
        controller_id: config.controller_id.clone(),
        seal: seal.clone(),
    };
    // A stop is ordered: health reports NOT_SERVING first (`shutdown`), then the ports
    // close and the edges' streams are released (`stopping`); the health and metrics
    // listeners stay up until the end (`stopped`), so probes see the stop.
    let stopping = CancellationToken::new();
    let stopped = CancellationToken::new();
    let _stopped_on_return = stopped.clone().drop_guard();
    let health = health::Health::start(pool.clone(), stopping.clone()).await;
    tokio::spawn({
        let (health, stopping, stopped) = (health.clone(), stopping.clone(), stopped.clone());
        async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = stopped.cancelled() => {}
            }
            health.stop().await;
            stopping.cancel();
        }
    });
    if let Some(listener) = listeners.health {
        tracing::info!(address = %listener.local_addr()?, "serving gRPC health without client certificates");
        tokio::spawn(health.clone().serve_plain(listener, stopped.clone()));
    }
    let (handle, edge_task) = edgesync::start(pool.clone(), port, stopping.clone()).await?;
    if let Some(listener) = listeners.metrics {
        tracing::info!(address = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
        let endpoints = domainsec_daemon::http::Endpoints {
            metrics: metrics::render(handle.fleet.clone()),
            ready: domainsec_daemon::http::unless_stopping(db::readiness(pool.clone()), stopping.clone()),
        };
        tokio::spawn(domainsec_daemon::http::serve(listener, endpoints, stopped.clone()));
    }
    if let Some((listener, tls)) = listeners.mta_sts {
        mta_sts_https::announce(&listener);
        tokio::spawn(mta_sts_https::serve(listener, tls, pool.clone(), stopped.clone()));
    }
    let directory = directory::Directory::new(pool).with_edge_side(directory::EdgeSide {
        endpoints: config.edge_endpoints.clone(),
        handle,
        seal,
    });
    domainsec_daemon::systemd::notify_ready();
    grpc::serve_admin(directory, tls, health, listeners.admin, stopping).await.context("serve the admin API")?;
    let _ = edge_task.await;
    tracing::info!("controller stopped");
    Ok(())
}
