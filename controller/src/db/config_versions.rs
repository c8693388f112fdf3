//! Configuration history: each config version's whole document, written by the
//! change that made the version (in its transaction), read back for export and
//! rollback. See docs/decisions/0007-configuration-history.md.

use domainsec_model::ObjectName;
use sqlx::{PgConnection, PgPool};

use super::{Error, Result, parse_stored_all};
use crate::{
    ca_certificate::CaCertificate,
    document::{ConfigDocument, EdgeEntry, TrustedRootEntry},
};

/// Why a version's document cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// Newer than the directory's current version.
    #[error("config version {version} does not exist yet; the current version is {current}")]
    Future { version: u64, current: u64 },
    /// Made before the directory kept configuration history (or version 0).
    #[error(
        "config version {version} was made before this directory kept configuration history; \
         the oldest version it can export or roll back to is {oldest}"
    )]
    BeforeHistory { version: u64, oldest: String },
}

/// The whole configuration as the directory holds it now, read on `conn` (in a
/// change's transaction, or a consistent read).
pub async fn current(conn: &mut PgConnection) -> Result<ConfigDocument> {
    let organization: String = sqlx::query_scalar("SELECT name FROM organization WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NoOrganization)?;
    let transport = super::transport::fetch(&mut *conn).await?;
    let accepted_domains = super::accepted_domains::list(&mut *conn).await?.into_iter().map(|d| d.domain).collect();
    let edges = super::edges::list(&mut *conn)
        .await?
        .into_iter()
        .map(|edge| EdgeEntry { name: edge.name, fqdn: edge.fqdn })
        .collect();
    let send_connectors = super::send_connectors::list(&mut *conn).await?.into_iter().map(|s| s.connector).collect();
    let receive_connectors =
        super::receive_connectors::list(&mut *conn, None).await?.into_iter().map(|s| s.connector).collect();
    let mut trusted_roots = Vec::new();
    for root in super::trusted_roots::list(&mut *conn).await? {
        let certificate = CaCertificate::parse("certificate_pem", root.certificate_pem.as_bytes())
            .map_err(|e| Error::Corrupt { what: "trusted root", value: root.sha256.clone(), reason: e.to_string() })?;
        let edges = root.edges.as_deref().map(|edges| parse_stored_all("edge name", edges, ObjectName::parse));
        trusted_roots.push(TrustedRootEntry { certificate, edges: edges.transpose()? });
    }
    let mut document = ConfigDocument {
        organization,
        transport,
        accepted_domains,
        edges,
        send_connectors,
        receive_connectors,
        trusted_roots,
    };
    document.canonicalize();
    Ok(document)
}

/// Records the current configuration as `version` (inside the change that made it).
pub async fn record(conn: &mut PgConnection, version: i64) -> Result<()> {
    let document = current(&mut *conn).await?;
    sqlx::query("INSERT INTO config_versions (version, document) VALUES ($1, $2)")
        .bind(version)
        .bind(document.to_json())
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the current version if it has no document yet: a directory upgraded
/// from a build without history starts it at the version it was at. Takes the
/// organization lock, so no change slips in between the read and the write.
pub async fn record_current_if_missing(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    let version: Option<i64> = sqlx::query_scalar("SELECT config_version FROM organization WHERE id = 1 FOR UPDATE")
        .fetch_optional(&mut *tx)
        .await?;
    let Some(version) = version else { return Ok(()) };
    let recorded: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM config_versions WHERE version = $1)")
        .bind(version)
        .fetch_one(&mut *tx)
        .await?;
    if !recorded {
        record(&mut tx, version).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The document of `version`, or why there is none.
pub async fn fetch(pool: &PgPool, version: u64) -> Result<ConfigDocument> {
    let mut conn = pool.acquire().await?;
    let current: i64 = sqlx::query_scalar("SELECT config_version FROM organization WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NoOrganization)?;
    let current = u64::try_from(current).unwrap_or_default();
    if version > current {
        return Err(Error::VersionUnavailable(Unavailable::Future { version, current }));
    }
    let stored: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT document FROM config_versions WHERE version = $1")
            .bind(i64::try_from(version).unwrap_or(i64::MAX))
            .fetch_optional(&mut *conn)
            .await?;
    let Some(stored) = stored else {
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT min(version) FROM config_versions").fetch_one(&mut *conn).await?;
        let oldest = oldest.map_or_else(|| "none yet (the next change records one)".to_owned(), |v| v.to_string());
        return Err(Error::VersionUnavailable(Unavailable::BeforeHistory { version, oldest }));
    };
    let text = stored.to_string();
    ConfigDocument::from_json(stored).map_err(|e| Error::Corrupt {
        what: "config version document",
        value: text.chars().take(80).collect(),
        reason: e.to_string(),
    })
}
