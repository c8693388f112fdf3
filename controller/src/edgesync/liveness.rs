//! This replica's lease in the directory ([`crate::db::replicas`]): renewed every
//! few seconds while the edge port serves, released at a clean stop. Fleet status
//! trusts a "connected" row only while its replica's lease is live, so the edges of
//! a replica killed outright show as not connected within [`LEASE`], not after the
//! 120 s staleness rule.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Fleet;
use crate::db::replicas;

/// How long a renewal keeps the replica alive in fleet status.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often the lease is renewed: three chances before it runs out.
pub const RENEW_EVERY: Duration = Duration::from_secs(3);
/// Replicas whose lease ended this long ago are dropped from the record.
const FORGET_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// Takes the lease (and disowns the streams an earlier run under the same name left
/// "connected"), then renews it until `shutdown` and releases it.
pub async fn start(
    pool: PgPool,
    controller_id: String,
    edge_endpoint: String,
    fleet: Arc<Fleet>,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, crate::db::Error> {
    let started_at = Utc::now();
    replicas::renew(&pool, &controller_id, &edge_endpoint, started_at, LEASE, 0).await?;
    let disowned = replicas::disown_earlier_streams(&pool, &controller_id, started_at).await?;
    if disowned > 0 {
        info!(disowned, "an earlier run of this replica left edges recorded as connected; marked not connected");
    }
    if let Err(error) = replicas::forget_expired(&pool, FORGET_AFTER).await {
        warn!(%error, "could not forget long-gone replicas");
    }
    Ok(tokio::spawn(async move {
        let mut renew = tokio::time::interval(RENEW_EVERY);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = renew.tick() => {
                    if let Err(error) =
                        replicas::renew(&pool, &controller_id, &edge_endpoint, started_at, LEASE, fleet.len()).await
                    {
                        warn!(%error, "could not renew this replica's lease; fleet status will show its edges as not connected until it is renewed");
                    }
                }
            }
        }
        if let Err(error) = replicas::release(&pool, &controller_id).await {
            warn!(%error, "could not release this replica's lease; it runs out by itself");
        }
    }))
}
