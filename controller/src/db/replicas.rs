//! Controller replicas' leases: how fleet status tells an edge held by a live
//! replica from one recorded by a replica that died without a word.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::Result;

/// One replica's lease, as fleet status shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Replica {
    /// The replica's name (`--controller-id`).
    pub id: String,
    /// Its edge-port address.
    pub edge_endpoint: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last renewal.
    pub renewed_at: DateTime<Utc>,
    /// The lease: past this, the replica counts as gone.
    pub live_until: DateTime<Utc>,
    /// Edge streams it held at its last renewal.
    pub streams: i64,
    /// The lease is live now (in the database's clock).
    pub live: bool,
}

/// Records (or renews) `id`'s lease for `lease` from now, in the database's clock.
pub async fn renew(
    pool: &PgPool,
    id: &str,
    edge_endpoint: &str,
    started_at: DateTime<Utc>,
    lease: std::time::Duration,
    streams: usize,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO controller_replicas (id, edge_endpoint, started_at, renewed_at, live_until, streams)
         VALUES ($1, $2, $3, now(), now() + make_interval(secs => $4), $5)
         ON CONFLICT (id) DO UPDATE SET edge_endpoint = EXCLUDED.edge_endpoint,
             started_at = EXCLUDED.started_at, renewed_at = now(), live_until = EXCLUDED.live_until,
             streams = EXCLUDED.streams",
    )
    .bind(id)
    .bind(edge_endpoint)
    .bind(started_at)
    .bind(lease.as_secs_f64())
    .bind(i64::try_from(streams).unwrap_or(i64::MAX))
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends `id`'s lease now (a clean stop; its streams have written their ends).
pub async fn release(pool: &PgPool, id: &str) -> Result<()> {
    sqlx::query("UPDATE controller_replicas SET live_until = now(), streams = 0 WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Marks not connected the rows an earlier run of `id` left "connected": a replica
/// restarted under the same name holds none of those streams any more.
pub async fn disown_earlier_streams(pool: &PgPool, id: &str, started_at: DateTime<Utc>) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE edge_sync_state SET connected = false
         WHERE controller = $1 AND connected AND connected_since < $2",
    )
    .bind(id)
    .bind(started_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Every replica on record, newest renewal first.
pub async fn list(pool: &PgPool) -> Result<Vec<Replica>> {
    Ok(sqlx::query_as(
        "SELECT id, edge_endpoint, started_at, renewed_at, live_until, streams, live_until > now() AS live
         FROM controller_replicas ORDER BY renewed_at DESC",
    )
    .fetch_all(pool)
    .await?)
}

/// Forgets replicas whose lease ended more than `after` ago (renamed or retired ones).
pub async fn forget_expired(pool: &PgPool, after: std::time::Duration) -> Result<u64> {
    let done = sqlx::query("DELETE FROM controller_replicas WHERE live_until < now() - make_interval(secs => $1)")
        .bind(after.as_secs_f64())
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
