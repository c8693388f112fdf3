//! The DomainSec edge agent: subscribes to the organization's controller, keeps a
//! persisted copy of its configuration, and runs the SMTP relay.
//!
//! # Layout
//! - [`store`]: the data directory (identity, trust, last good snapshot).
//! - [`identity`]: the edge's own key pair and self-signed certificate.
//! - [`control`]: TLS with pinned controller certificates, subscription, sync.
//! - [`apply`]: checking a snapshot before taking it.
//! - [`certificates`]: the certificate store and the key work done on the edge.
//! - [`config`]: the edge's local settings (`edge.toml`).
//! - [`relay`]: the SMTP relay, built from [`smtp`] (protocol, inbound server,
//!   outbound client), [`queue`] (spool, scheduler, delivery), [`routing`]
//!   (send connector choice, MX lookup), [`delivery`] (maildir, DSNs) and
//!   [`protocol_log`]; [`metrics`] counts what it does.

pub mod apply;
pub mod certificates;
pub mod config;
pub mod control;
pub mod delivery;
pub mod domain_security;
pub mod explain;
pub mod identity;
pub mod inbound;
pub mod metrics;
pub mod outbound;
pub mod protocol_log;
pub mod queue;
pub mod relay;
pub mod routing;
pub mod smtp;
pub mod store;
pub mod x509;

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    config::EdgeSettings,
    control::sync::{EdgeAgent, SyncSettings},
    relay::Relay,
    store::DataDir,
};

/// What `domainsec-edge run` needs besides its listeners.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The data dir `subscribe` wrote.
    pub data_dir: PathBuf,
    /// Local settings (`edge.toml`).
    pub settings: EdgeSettings,
    /// How often to report to the controller.
    pub heartbeat_interval: Duration,
}

/// Sockets the caller bound before starting the edge (the relay binds its SMTP
/// listeners itself, following the configuration).
#[derive(Debug, Default)]
pub struct Listeners {
    /// The operations endpoint, when wanted: `/metrics`, `/healthz`, `/readyz`.
    pub metrics: Option<TcpListener>,
}

/// Runs the edge until `shutdown`: the SMTP relay on the stored configuration,
/// kept in sync with the controller, with metrics where a listener is given.
/// Then drains (see [`config::ShutdownSettings`]) until every session and delivery
/// has finished, the drain deadline passes, or `immediately` is cancelled.
pub async fn run(
    options: RunOptions,
    listeners: Listeners,
    shutdown: CancellationToken,
    immediately: CancellationToken,
) -> anyhow::Result<()> {
    let sync = SyncSettings { heartbeat_interval: options.heartbeat_interval, ..SyncSettings::default() };
    let mut agent = EdgeAgent::load(DataDir::new(&options.data_dir), sync)?;
    let relay = Relay::start(&options.data_dir, &options.settings, agent.config(), agent.listening(), &shutdown)
        .context("start the SMTP relay")?;
    let queued = relay.queue.len();
    if queued > 0 {
        tracing::info!(queued, "picked up queued messages from the spool");
    }
    // The operations endpoint outlives the drain (`/readyz` says "shutting down" during it).
    let stopped = CancellationToken::new();
    let _stopped_on_return = stopped.clone().drop_guard();
    if let Some(listener) = listeners.metrics {
        tracing::info!(address = ?listener.local_addr().ok(), "serving /metrics, /healthz and /readyz");
        let ready = readiness(agent.config(), agent.listening(), options.data_dir.join("queue").join("tmp"));
        let ready = domainsec_daemon::http::unless_stopping(ready, shutdown.clone());
        let endpoints = domainsec_daemon::http::Endpoints { metrics: relay.exposition(), ready };
        tokio::spawn(domainsec_daemon::http::serve(listener, endpoints, stopped.clone()));
    }
    let tasks = relay.tasks.clone();
    agent.attach_relay(relay);
    domainsec_daemon::systemd::notify_ready();
    agent.run(shutdown).await;
    drain(&tasks, options.settings.shutdown.drain_timeout, &immediately).await;
    Ok(())
}

/// Waits for the relay's sessions and deliveries (each records its outcome, so
/// nothing accepted downstream is sent again after a restart).
async fn drain(tasks: &tokio_util::task::TaskTracker, deadline: Duration, immediately: &CancellationToken) {
    tasks.close();
    let running = tasks.len();
    tracing::info!(running, deadline = %humantime::format_duration(deadline), "draining sessions and deliveries");
    let started = tokio::time::Instant::now();
    tokio::select! {
        () = tasks.wait() => tracing::info!(waited_ms = started.elapsed().as_millis() as u64, "drained"),
        () = tokio::time::sleep(deadline) => {
            tracing::warn!(left = tasks.len(), "drain deadline passed; stopping (the spool is safe)");
        }
        () = immediately.cancelled() => tracing::warn!(left = tasks.len(), "stopping without draining"),
    }
}

/// `domainsec-edge status`: which configuration version the edge runs.
pub fn status(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let dir = DataDir::new(data_dir);
    let trust = dir.load_trust()?;
    Ok(match dir.load_snapshot()? {
        Some(snapshot) => format!("edge {} runs configuration version {}", trust.edge, snapshot.version),
        None => format!("edge {} has no configuration yet", trust.edge),
    })
}

/// `/readyz` for the edge: a configuration loaded, every receive connector's
/// binding listening, the spool writable. The answer names what is missing in
/// general words, never an address or a name from the configuration.
fn readiness(
    config: tokio::sync::watch::Receiver<Option<std::sync::Arc<apply::EdgeConfig>>>,
    listening: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<std::net::SocketAddr>>>,
    spool_tmp: PathBuf,
) -> domainsec_daemon::http::Ready {
    std::sync::Arc::new(move || {
        let config = config.borrow().clone();
        let listening = listening.lock().map(|set| set.clone()).unwrap_or_default();
        let probe = spool_tmp.join(".readyz");
        Box::pin(async move {
            let config = config.ok_or("no configuration yet")?;
            let bindings = config.receive_connectors.iter().flat_map(|c| &c.bindings);
            if bindings.map(|b| b.socket_addr()).any(|address| !listening.contains(&address)) {
                return Err("a receive connector is not listening yet".to_owned());
            }
            tokio::task::spawn_blocking(move || {
                std::fs::write(&probe, b"ready").and_then(|()| std::fs::remove_file(&probe))
            })
            .await
            .map_err(|_| "the spool check did not finish".to_owned())?
            .map_err(|_| "the spool is not writable".to_owned())
        })
    })
}
