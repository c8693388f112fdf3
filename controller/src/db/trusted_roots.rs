//! Trusted roots pushed to edges.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{Error, Result, is_unique_violation};

/// A trusted root as stored.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct TrustedRoot {
    /// SHA-256 of the certificate.
    pub sha256: String,
    /// Its subject.
    pub subject: String,
    /// PEM.
    #[serde(skip)]
    pub certificate_pem: String,
    /// Only these edges; `None` for every edge.
    pub edges: Option<Vec<String>>,
    /// Who added it.
    pub added_by: String,
    /// When.
    pub added_at: DateTime<Utc>,
}

/// All trusted roots.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<TrustedRoot>> {
    Ok(sqlx::query_as(
        "SELECT sha256, subject, certificate_pem, edges, added_by, added_at FROM trusted_roots ORDER BY added_at",
    )
    .fetch_all(conn)
    .await?)
}

/// Adds one; a duplicate is refused.
pub async fn insert(conn: &mut PgConnection, root: &TrustedRoot) -> Result<()> {
    sqlx::query(
        "INSERT INTO trusted_roots (sha256, subject, certificate_pem, edges, added_by, added_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&root.sha256)
    .bind(&root.subject)
    .bind(&root.certificate_pem)
    .bind(&root.edges)
    .bind(&root.added_by)
    .bind(root.added_at)
    .execute(conn)
    .await
    .map_err(|error| {
        if is_unique_violation(&error) {
            Error::AlreadyExists { kind: "trusted root", name: root.sha256.clone() }
        } else {
            error.into()
        }
    })?;
    Ok(())
}

/// Removes one.
pub async fn delete(conn: &mut PgConnection, sha256: &str) -> Result<TrustedRoot> {
    sqlx::query_as(
        "DELETE FROM trusted_roots WHERE sha256 = $1
         RETURNING sha256, subject, certificate_pem, edges, added_by, added_at",
    )
    .bind(sha256)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| Error::NotFound { kind: "trusted root", name: sha256.to_owned() })
}

/// Changes which edges a root is pushed to (`None`: every edge).
pub async fn set_edges(conn: &mut PgConnection, sha256: &str, edges: Option<Vec<String>>) -> Result<()> {
    let result = sqlx::query("UPDATE trusted_roots SET edges = $2 WHERE sha256 = $1")
        .bind(sha256)
        .bind(edges)
        .execute(conn)
        .await?;
    if result.rows_affected() == 0 {
        return Err(Error::NotFound { kind: "trusted root", name: sha256.to_owned() });
    }
    Ok(())
}
