//! The organization row: its name, internal CA certificate and config version.

use sqlx::{PgConnection, PgPool};

use super::{Error, Result};

/// The organization as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Organization {
    /// Display name.
    pub name: String,
    /// PEM of the internal CA.
    pub ca_certificate_pem: String,
    /// Current config version.
    pub config_version: i64,
}

/// Creates the organization; refuses if one exists.
pub async fn create(conn: &mut PgConnection, name: &str, ca_certificate_pem: &str) -> Result<()> {
    if let Some(existing) = fetch_optional(&mut *conn).await? {
        return Err(Error::OrganizationExists(existing.name));
    }
    sqlx::query("INSERT INTO organization (id, name, ca_certificate_pem) VALUES (1, $1, $2)")
        .bind(name)
        .bind(ca_certificate_pem)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO transport_config (id) VALUES (1)").execute(&mut *conn).await?;
    Ok(())
}

/// The organization, or [`Error::NoOrganization`].
pub async fn fetch(pool: &PgPool) -> Result<Organization> {
    let mut conn = pool.acquire().await?;
    fetch_optional(&mut conn).await?.ok_or(Error::NoOrganization)
}

async fn fetch_optional(conn: &mut PgConnection) -> Result<Option<Organization>> {
    Ok(sqlx::query_as("SELECT name, ca_certificate_pem, config_version FROM organization WHERE id = 1")
        .fetch_optional(conn)
        .await?)
}

/// Records a certificate the controller presents.
pub async fn record_controller_certificate(
    conn: &mut PgConnection,
    sha256: &str,
    purpose: &str,
    certificate_pem: &str,
    not_after: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO controller_certificates (sha256, purpose, certificate_pem, not_after)
         VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(purpose)
    .bind(certificate_pem)
    .bind(not_after)
    .execute(conn)
    .await?;
    Ok(())
}
