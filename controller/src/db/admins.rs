//! Admin credentials issued by the internal CA.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::Result;

/// An admin credential as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminCredential {
    /// Who it was issued to.
    pub name: String,
    /// `org-admin`, `server-admin` or `view-only`.
    pub role: String,
    /// Edges a server-admin may manage.
    pub edges: Vec<String>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// Set once revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A credential to record.
pub struct NewAdminCredential<'a> {
    /// SHA-256 of the certificate.
    pub sha256: &'a str,
    /// Admin name.
    pub name: &'a str,
    /// Role word.
    pub role: &'a str,
    /// Edge scope of a server-admin.
    pub edges: &'a [String],
    /// Serial, hex.
    pub serial: &'a str,
    /// End of validity.
    pub not_after: DateTime<Utc>,
}

/// Records an issued credential.
pub async fn insert(conn: &mut PgConnection, credential: &NewAdminCredential<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO admin_credentials (sha256, name, role, edges, serial, not_after)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(credential.sha256)
    .bind(credential.name)
    .bind(credential.role)
    .bind(credential.edges)
    .bind(credential.serial)
    .bind(credential.not_after)
    .execute(conn)
    .await?;
    Ok(())
}

/// The credential with this certificate fingerprint, if any.
pub async fn find(pool: &PgPool, sha256: &str) -> Result<Option<AdminCredential>> {
    Ok(sqlx::query_as("SELECT name, role, edges, not_after, revoked_at FROM admin_credentials WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(pool)
        .await?)
}

/// An issued credential with its fingerprint, as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListedCredential {
    /// SHA-256 of the certificate.
    pub sha256: String,
    /// The credential.
    #[sqlx(flatten)]
    pub credential: AdminCredential,
}

/// Every issued credential, newest first.
pub async fn list(pool: &PgPool) -> Result<Vec<ListedCredential>> {
    Ok(sqlx::query_as(
        "SELECT sha256, name, role, edges, not_after, revoked_at FROM admin_credentials ORDER BY created_at DESC",
    )
    .fetch_all(pool)
    .await?)
}

/// Revokes every live credential of `name`; returns how many.
pub async fn revoke(pool: &PgPool, name: &str) -> Result<u64> {
    let result = sqlx::query("UPDATE admin_credentials SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(result.rows_affected())
}
