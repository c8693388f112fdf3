//! What the organization published: the TLSA records printed per edge, and the
//! MTA-STS policy the controller serves.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Error, Result};
use crate::publication::{
    mta_sts::{MaxAge, Mode},
    tlsa::SpkiSha256,
};

/// A TLSA record `publish tlsa` printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintedTlsa {
    /// `_25._tcp.mail1.contoso.com.`
    pub owner: String,
    /// The key hash.
    pub spki_sha256: SpkiSha256,
}

/// The stored MTA-STS policy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredPolicy {
    /// `enforce`, `testing` or `none`.
    pub mode: String,
    /// `max_age`.
    pub max_age_seconds: u64,
    /// The id in the `_mta-sts` TXT records.
    pub id: String,
    /// The policy file as served.
    pub text: String,
    /// Who published it.
    pub published_by: String,
    /// When.
    pub published_at: DateTime<Utc>,
}

/// Remembers that `records` were printed for an edge (now).
pub async fn record_tlsa(conn: &mut PgConnection, edge_id: Uuid, records: &[PrintedTlsa]) -> Result<()> {
    for record in records {
        sqlx::query(
            "INSERT INTO published_tlsa (edge_id, owner, spki_sha256) VALUES ($1, $2, $3)
             ON CONFLICT (edge_id, owner, spki_sha256) DO UPDATE SET printed_at = now()",
        )
        .bind(edge_id)
        .bind(&record.owner)
        .bind(record.spki_sha256.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The TLSA records printed for the named edge, by owner.
pub async fn printed_tlsa(pool: &PgPool, edge: &str) -> Result<Vec<PrintedTlsa>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.owner, p.spki_sha256 FROM published_tlsa p JOIN edges e ON e.id = p.edge_id
         WHERE e.name = $1 ORDER BY p.owner, p.printed_at",
    )
    .bind(edge)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(owner, hex)| {
            let spki_sha256 = SpkiSha256::from_stored(&hex).ok_or_else(|| Error::Corrupt {
                what: "published TLSA hash",
                value: hex.clone(),
                reason: "not 64 lower-case hex digits".to_owned(),
            })?;
            Ok(PrintedTlsa { owner, spki_sha256 })
        })
        .collect()
}

/// The stored MTA-STS policy, if one was published.
pub async fn mta_sts_policy(pool: &PgPool) -> Result<Option<StoredPolicy>> {
    let mut conn = pool.acquire().await?;
    fetch_policy(&mut conn, false).await
}

/// The stored policy; `lock` takes the row for a read-modify-write.
pub async fn fetch_policy(conn: &mut PgConnection, lock: bool) -> Result<Option<StoredPolicy>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row: Option<(String, i64, String, String, String, DateTime<Utc>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT mode, max_age_seconds, policy_id, policy_text, published_by, published_at
             FROM mta_sts_policy WHERE id = 1{lock}"
        )))
        .fetch_optional(conn)
        .await?;
    let Some((mode, max_age, id, text, published_by, published_at)) = row else { return Ok(None) };
    let corrupt = |what, value: String| Error::Corrupt { what, value, reason: "out of range".to_owned() };
    Mode::parse("mode", &mode).map_err(|_| corrupt("MTA-STS mode", mode.clone()))?;
    let max_age_seconds = u64::try_from(max_age)
        .ok()
        .filter(|s| MaxAge::parse("max_age", Some(*s)).is_ok())
        .ok_or_else(|| corrupt("MTA-STS max_age", max_age.to_string()))?;
    Ok(Some(StoredPolicy { mode, max_age_seconds, id, text, published_by, published_at }))
}

/// Stores the policy, replacing the one before.
pub async fn store_policy(conn: &mut PgConnection, policy: &StoredPolicy) -> Result<()> {
    sqlx::query(
        "INSERT INTO mta_sts_policy (id, mode, max_age_seconds, policy_id, policy_text, published_by, published_at)
         VALUES (1, $1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET mode = $1, max_age_seconds = $2, policy_id = $3, policy_text = $4,
             published_by = $5, published_at = $6",
    )
    .bind(&policy.mode)
    .bind(i64::try_from(policy.max_age_seconds).unwrap_or(i64::MAX))
    .bind(&policy.id)
    .bind(&policy.text)
    .bind(&policy.published_by)
    .bind(policy.published_at)
    .execute(conn)
    .await?;
    Ok(())
}
