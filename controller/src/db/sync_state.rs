//! Per-edge EdgeSync state: written in batches by the controller holding the
//! edge's stream, read by fleet status from any replica.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, types::Json};
use uuid::Uuid;

use super::Result;

/// The state of one edge's sync, as stored.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct SyncState {
    /// Edge id.
    pub edge_id: Uuid,
    /// A stream is open.
    pub connected: bool,
    /// Since when.
    pub connected_since: Option<DateTime<Utc>>,
    /// The controller replica holding the stream.
    pub controller: Option<String>,
    /// Last message from the edge, or last flush while connected.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Last snapshot version sent.
    pub last_version_sent: Option<i64>,
    /// Last version the edge ACKed.
    pub last_version_acked: Option<i64>,
    /// When that ACK came.
    pub acked_at: Option<DateTime<Utc>>,
    /// Last version the edge refused.
    pub last_nack_version: Option<i64>,
    /// Why.
    pub last_nack_reason: Option<String>,
    /// When.
    pub nack_at: Option<DateTime<Utc>>,
    /// Last heartbeat.
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// Counters from the last heartbeat.
    pub counters: Json<BTreeMap<String, u64>>,
    /// Queue length from the last heartbeat.
    pub queue_length: Option<i64>,
    /// Digest per snapshot section of what the edge runs.
    pub section_digests: Json<BTreeMap<String, String>>,
    /// The edge agent's version.
    pub agent_version: Option<String>,
    /// The number the stream writing this state drew when it opened (one sequence
    /// for every replica): a write from an older stream than the row's is ignored.
    pub stream_generation: Option<i64>,
}

/// The stored state of an edge, or a fresh one.
pub async fn load(pool: &PgPool, edge_id: Uuid) -> Result<SyncState> {
    let row: Option<SyncState> =
        sqlx::query_as("SELECT * FROM edge_sync_state WHERE edge_id = $1").bind(edge_id).fetch_optional(pool).await?;
    Ok(row.unwrap_or(SyncState { edge_id, ..SyncState::default() }))
}

/// Upserts many states in one statement.
pub async fn store_all(pool: &PgPool, states: &[SyncState]) -> Result<()> {
    if states.is_empty() {
        return Ok(());
    }
    let column = |f: &dyn Fn(&SyncState) -> Option<String>| states.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO edge_sync_state (edge_id, connected, connected_since, controller, last_seen_at,
             last_version_sent, last_version_acked, acked_at, last_nack_version, last_nack_reason, nack_at,
             last_heartbeat_at, counters, queue_length, section_digests, agent_version, stream_generation)
         SELECT u.edge_id, u.connected, u.connected_since, u.controller, u.last_seen_at, u.sent, u.acked,
             u.acked_at, u.nack_version, u.nack_reason, u.nack_at, u.heartbeat_at, u.counters::jsonb,
             u.queue_length, u.digests::jsonb, u.agent_version, u.generation
         FROM UNNEST($1::uuid[], $2::bool[], $3::timestamptz[], $4::text[], $5::timestamptz[], $6::bigint[],
             $7::bigint[], $8::timestamptz[], $9::bigint[], $10::text[], $11::timestamptz[], $12::timestamptz[],
             $13::text[], $14::bigint[], $15::text[], $16::text[], $17::bigint[])
           AS u(edge_id, connected, connected_since, controller, last_seen_at, sent, acked, acked_at,
                nack_version, nack_reason, nack_at, heartbeat_at, counters, queue_length, digests, agent_version,
                generation)
         WHERE EXISTS (SELECT 1 FROM edges e WHERE e.id = u.edge_id)
         ON CONFLICT (edge_id) DO UPDATE SET connected = EXCLUDED.connected,
             connected_since = EXCLUDED.connected_since, controller = EXCLUDED.controller,
             last_seen_at = EXCLUDED.last_seen_at, last_version_sent = EXCLUDED.last_version_sent,
             last_version_acked = EXCLUDED.last_version_acked, acked_at = EXCLUDED.acked_at,
             last_nack_version = EXCLUDED.last_nack_version, last_nack_reason = EXCLUDED.last_nack_reason,
             nack_at = EXCLUDED.nack_at, last_heartbeat_at = EXCLUDED.last_heartbeat_at,
             counters = EXCLUDED.counters, queue_length = EXCLUDED.queue_length,
             section_digests = EXCLUDED.section_digests, agent_version = EXCLUDED.agent_version,
             stream_generation = EXCLUDED.stream_generation
         -- A stream that is not the newest (the edge has moved on, maybe to another replica)
         -- no longer speaks for the edge.
         WHERE edge_sync_state.stream_generation IS NULL
            OR EXCLUDED.stream_generation >= edge_sync_state.stream_generation",
    )
    .bind(states.iter().map(|s| s.edge_id).collect::<Vec<_>>())
    .bind(states.iter().map(|s| s.connected).collect::<Vec<_>>())
    .bind(states.iter().map(|s| s.connected_since).collect::<Vec<_>>())
    .bind(column(&|s| s.controller.clone()))
    .bind(states.iter().map(|s| s.last_seen_at).collect::<Vec<_>>())
    .bind(states.iter().map(|s| s.last_version_sent).collect::<Vec<_>>())
    .bind(states.iter().map(|s| s.last_version_acked).collect::<Vec<_>>())
    .bind(states.iter().map(|s| s.acked_at).collect::<Vec<_>>())
    .bind(states.iter().map(|s| s.last_nack_version).collect::<Vec<_>>())
    .bind(column(&|s| s.last_nack_reason.clone()))
    .bind(states.iter().map(|s| s.nack_at).collect::<Vec<_>>())
    .bind(states.iter().map(|s| s.last_heartbeat_at).collect::<Vec<_>>())
    .bind(column(&|s| serde_json::to_string(&s.counters.0).ok()))
    .bind(states.iter().map(|s| s.queue_length).collect::<Vec<_>>())
    .bind(column(&|s| serde_json::to_string(&s.section_digests.0).ok()))
    .bind(column(&|s| s.agent_version.clone()))
    .bind(states.iter().map(|s| s.stream_generation).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}

/// One row of fleet status.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FleetRow {
    /// Edge name.
    pub name: String,
    /// Edge FQDN.
    pub fqdn: String,
    /// Subscribed yet.
    pub subscribed: bool,
    /// Sync state; `None` fields when the edge never connected.
    #[sqlx(flatten)]
    pub state: FleetState,
}

/// The sync columns of a fleet row.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct FleetState {
    /// A stream is open (as last written).
    pub connected: Option<bool>,
    /// Since when.
    pub connected_since: Option<DateTime<Utc>>,
    /// Which controller.
    pub controller: Option<String>,
    /// Last sign of life.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Version sent.
    pub last_version_sent: Option<i64>,
    /// Version ACKed.
    pub last_version_acked: Option<i64>,
    /// When.
    pub acked_at: Option<DateTime<Utc>>,
    /// Version NACKed.
    pub last_nack_version: Option<i64>,
    /// Why.
    pub last_nack_reason: Option<String>,
    /// When.
    pub nack_at: Option<DateTime<Utc>>,
    /// Last heartbeat.
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// Counters.
    pub counters: Option<Json<BTreeMap<String, u64>>>,
    /// Queue length.
    pub queue_length: Option<i64>,
    /// Section digests.
    pub section_digests: Option<Json<BTreeMap<String, String>>>,
    /// The replica recorded as holding the stream holds a live lease
    /// ([`super::replicas`]); false when it died without writing the disconnection.
    pub holder_live: Option<bool>,
}

/// Every edge with its sync state, by name.
pub async fn fleet(pool: &PgPool) -> Result<Vec<FleetRow>> {
    Ok(sqlx::query_as(
        "SELECT e.name, e.fqdn, e.certificate_sha256 IS NOT NULL AS subscribed, s.connected, s.connected_since,
             s.controller, s.last_seen_at, s.last_version_sent, s.last_version_acked, s.acked_at,
             s.last_nack_version, s.last_nack_reason, s.nack_at, s.last_heartbeat_at, s.counters,
             s.queue_length, s.section_digests, r.live_until > now() AS holder_live
         FROM edges e LEFT JOIN edge_sync_state s ON s.edge_id = e.id
             LEFT JOIN controller_replicas r ON r.id = s.controller
         ORDER BY e.name",
    )
    .fetch_all(pool)
    .await?)
}
