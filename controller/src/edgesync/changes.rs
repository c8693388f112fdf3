//! Follows the directory: `LISTEN` for config versions, edge-trust changes and
//! forced syncs, with a periodic re-check so a missed notification or a dropped
//! database connection loses nothing.

use std::{sync::Arc, time::Duration};

use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{fleet::Fleet, trust::TrustedEdges};

/// Channel names the controller listens on.
pub const CONFIG_CHANNEL: &str = "domainsec_config";
/// Sent when the set of subscribed edges changes.
pub const EDGES_CHANNEL: &str = "domainsec_edges";
/// Payload: comma-separated edge names, or `*`.
pub const RESYNC_CHANNEL: &str = "domainsec_resync";
/// Payload: the edge that has certificate tasks waiting.
pub const TASKS_CHANNEL: &str = "domainsec_tasks";

/// Runs until `shutdown`, publishing the newest config version on `versions`.
pub async fn follow(
    pool: PgPool,
    versions: watch::Sender<u64>,
    trusted: Arc<TrustedEdges>,
    fleet: Arc<Fleet>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let result = listen(&pool, &versions, &trusted, &fleet, &shutdown).await;
        if shutdown.is_cancelled() {
            return;
        }
        if let Err(error) = result {
            warn!(%error, retry_in = ?backoff, "lost the directory's notifications; re-checking and reconnecting");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        // Capped low: after a database outage the edges must be in sync within seconds
        // of its return, and one reconnect attempt every 2 s costs nothing.
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn listen(
    pool: &PgPool,
    versions: &watch::Sender<u64>,
    trusted: &TrustedEdges,
    fleet: &Fleet,
    shutdown: &CancellationToken,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([CONFIG_CHANNEL, EDGES_CHANNEL, RESYNC_CHANNEL, TASKS_CHANNEL]).await?;
    // Anything that happened while we were not listening.
    recheck(pool, versions, trusted, fleet).await?;
    let mut periodic = tokio::time::interval(RECHECK_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = periodic.tick() => recheck(pool, versions, trusted, fleet).await?,
            notification = listener.recv() => {
                let notification = notification?;
                match notification.channel() {
                    CONFIG_CHANNEL => {
                        if let Ok(version) = notification.payload().parse::<u64>() {
                            publish(versions, version);
                        }
                    }
                    EDGES_CHANNEL => reload_trust(pool, trusted, fleet).await?,
                    TASKS_CHANNEL => fleet.notify_tasks(notification.payload()),
                    RESYNC_CHANNEL => {
                        let payload = notification.payload();
                        if payload == "*" {
                            fleet.resync(None);
                        } else {
                            let names: Vec<String> = payload.split(',').map(str::to_owned).collect();
                            fleet.resync(Some(&names));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn recheck(
    pool: &PgPool,
    versions: &watch::Sender<u64>,
    trusted: &TrustedEdges,
    fleet: &Fleet,
) -> Result<(), sqlx::Error> {
    let version: i64 =
        sqlx::query_scalar("SELECT config_version FROM organization WHERE id = 1").fetch_one(pool).await?;
    publish(versions, u64::try_from(version).unwrap_or_default());
    reload_trust(pool, trusted, fleet).await
}

async fn reload_trust(pool: &PgPool, trusted: &TrustedEdges, fleet: &Fleet) -> Result<(), sqlx::Error> {
    if let Err(error) = trusted.reload(pool).await {
        return Err(match error {
            crate::db::Error::Sqlx(error) => error,
            other => sqlx::Error::Protocol(other.to_string()),
        });
    }
    let names = trusted.edge_names();
    fleet.retain(|edge| names.iter().any(|n| n == edge));
    Ok(())
}

fn publish(versions: &watch::Sender<u64>, version: u64) {
    versions.send_if_modified(|current| {
        if version > *current {
            info!(version, "config version moved");
            *current = version;
            true
        } else {
            false
        }
    });
}

const RECHECK_INTERVAL: Duration = Duration::from_secs(5);
