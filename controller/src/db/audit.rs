//! Reading the audit log.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::Result;

/// One audit row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When the change committed.
    pub at: DateTime<Utc>,
    /// Admin name.
    pub actor: String,
    /// Admin role word.
    pub actor_role: String,
    /// Verb.
    pub action: String,
    /// Object.
    pub target: String,
    /// Config version the change produced.
    pub config_version: i64,
    /// JSON before.
    pub before: Option<serde_json::Value>,
    /// JSON after.
    pub after: Option<serde_json::Value>,
}

/// The newest `limit` entries, newest first.
pub async fn list(pool: &PgPool, limit: i64) -> Result<Vec<AuditEntry>> {
    Ok(sqlx::query_as(
        "SELECT id, at, actor, actor_role, action, target, config_version, before, after
         FROM audit_log ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// One entry by its id.
pub async fn fetch(pool: &PgPool, id: i64) -> Result<AuditEntry> {
    sqlx::query_as(
        "SELECT id, at, actor, actor_role, action, target, config_version, before, after
         FROM audit_log WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| super::Error::NotFound { kind: "audit entry", name: id.to_string() })
}
