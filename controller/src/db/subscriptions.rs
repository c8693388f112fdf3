//! One-time edge subscriptions: issued by an admin, redeemed once by the edge.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Result, SubscriptionRefusal};

/// Replaces any earlier subscription of the edge with a new one.
pub async fn issue(
    conn: &mut PgConnection,
    edge_id: Uuid,
    secret_sha256: &str,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO edge_subscriptions (edge_id, secret_sha256, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (edge_id) DO UPDATE SET secret_sha256 = $2, expires_at = $3, created_at = now(), used_at = NULL",
    )
    .bind(edge_id)
    .bind(secret_sha256)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The edge a subscription registered.
#[derive(Debug, Clone)]
pub struct Redeemed {
    /// Edge id.
    pub edge_id: Uuid,
    /// Edge FQDN.
    pub fqdn: String,
}

#[derive(sqlx::FromRow)]
struct PendingSubscription {
    edge_id: Uuid,
    fqdn: String,
    expected: String,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    registered: Option<String>,
}

/// Redeems the edge's subscription with `secret_sha256`, registering the
/// certificate. Every refusal changes nothing and says why.
pub async fn redeem(
    conn: &mut PgConnection,
    edge: &str,
    secret_sha256: &str,
    certificate_sha256: &str,
    certificate_pem: &str,
) -> Result<Redeemed> {
    let row: Option<PendingSubscription> = sqlx::query_as(
        "SELECT e.id AS edge_id, e.fqdn, s.secret_sha256 AS expected, s.expires_at, s.used_at,
                e.certificate_sha256 AS registered
         FROM edges e JOIN edge_subscriptions s ON s.edge_id = e.id
         WHERE e.name = $1 FOR UPDATE OF s, e",
    )
    .bind(edge)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(PendingSubscription { edge_id, fqdn, expected, expires_at, used_at, registered }) = row else {
        return Err(SubscriptionRefusal::Missing { edge: edge.to_owned() }.into());
    };
    if !constant_time_eq(expected.as_bytes(), secret_sha256.as_bytes()) {
        return Err(SubscriptionRefusal::WrongSecret.into());
    }
    if let Some(used_at) = used_at {
        return Err(SubscriptionRefusal::AlreadyUsed { edge: edge.to_owned(), at: used_at.to_rfc3339() }.into());
    }
    if expires_at <= Utc::now() {
        return Err(SubscriptionRefusal::Expired { edge: edge.to_owned(), at: expires_at.to_rfc3339() }.into());
    }
    if registered.is_some() {
        return Err(SubscriptionRefusal::AlreadySubscribed { edge: edge.to_owned() }.into());
    }
    let taken: Option<String> = sqlx::query_scalar("SELECT name FROM edges WHERE certificate_sha256 = $1")
        .bind(certificate_sha256)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(other) = taken {
        return Err(SubscriptionRefusal::CertificateTaken { other }.into());
    }
    sqlx::query("UPDATE edge_subscriptions SET used_at = now() WHERE edge_id = $1")
        .bind(edge_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE edges SET certificate_sha256 = $2, certificate_pem = $3, subscribed_at = now() WHERE id = $1")
        .bind(edge_id)
        .bind(certificate_sha256)
        .bind(certificate_pem)
        .execute(&mut *conn)
        .await?;
    Ok(Redeemed { edge_id, fqdn })
}

/// Fingerprint → edge name of every subscribed edge: the controller's direct trust.
pub async fn trusted_edges(conn: &mut PgConnection) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as("SELECT certificate_sha256, name FROM edges WHERE certificate_sha256 IS NOT NULL")
        .fetch_all(conn)
        .await?)
}

/// True when the named edge has a subscription that is neither used nor expired.
pub async fn outstanding(conn: &mut PgConnection, edge: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM edge_subscriptions s JOIN edges e ON e.id = s.edge_id
                        WHERE e.name = $1 AND s.used_at IS NULL AND s.expires_at > now())",
    )
    .bind(edge)
    .fetch_one(conn)
    .await?)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
