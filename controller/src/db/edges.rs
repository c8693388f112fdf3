//! Edges: the organization's internet-facing relays.

use chrono::{DateTime, Utc};
use domainsec_model::{Domain, InvalidField, ObjectName};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Error, Result, is_unique_violation, parse_stored};

/// An edge as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Edge {
    /// Unique name, e.g. `mail1`.
    pub name: ObjectName,
    /// Internet FQDN: default certificate CN and EHLO name.
    pub fqdn: Domain,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// SHA-256 of its direct-trust certificate, once subscribed.
    pub certificate_sha256: Option<String>,
}

/// All edges by name.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Edge>> {
    let rows: Vec<(String, String, DateTime<Utc>, Option<String>)> =
        sqlx::query_as("SELECT name, fqdn, created_at, certificate_sha256 FROM edges ORDER BY name")
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|(name, fqdn, created_at, certificate_sha256)| {
            Ok(Edge {
                name: parse_stored("edge name", &name, ObjectName::parse)?,
                fqdn: parse_stored("edge fqdn", &fqdn, Domain::parse)?,
                created_at,
                certificate_sha256,
            })
        })
        .collect()
}

/// Records a new edge.
pub async fn insert(conn: &mut PgConnection, name: &ObjectName, fqdn: &Domain) -> Result<Edge> {
    let created_at: DateTime<Utc> =
        sqlx::query_scalar("INSERT INTO edges (id, name, fqdn) VALUES ($1, $2, $3) RETURNING created_at")
            .bind(Uuid::new_v4())
            .bind(name.as_str())
            .bind(fqdn.as_str())
            .fetch_one(conn)
            .await
            .map_err(|error| {
                if is_unique_violation(&error) {
                    Error::AlreadyExists { kind: "edge", name: name.to_string() }
                } else {
                    error.into()
                }
            })?;
    Ok(Edge { name: name.clone(), fqdn: fqdn.clone(), created_at, certificate_sha256: None })
}

/// Deletes an edge, its receive connectors and its place in send connectors' sources.
pub async fn delete(conn: &mut PgConnection, name: &ObjectName) -> Result<()> {
    let result = sqlx::query("DELETE FROM edges WHERE name = $1").bind(name.as_str()).execute(conn).await?;
    if result.rows_affected() == 0 {
        return Err(not_found(name));
    }
    Ok(())
}

/// The id of the named edge, or an error naming `field`.
pub async fn resolve(conn: &mut PgConnection, field: &str, name: &ObjectName) -> Result<Uuid> {
    sqlx::query_scalar("SELECT id FROM edges WHERE name = $1")
        .bind(name.as_str())
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| unknown(field, name))
}

/// The ids of the named edges in order; the first unknown one is named with its index.
pub async fn resolve_all(conn: &mut PgConnection, field: &str, names: &[ObjectName]) -> Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        ids.push(resolve(&mut *conn, &format!("{field}[{index}]"), name).await?);
    }
    Ok(ids)
}

/// Error for a reference to an edge that does not exist.
pub fn unknown(field: &str, name: &ObjectName) -> Error {
    Error::Invalid(InvalidField::new(field, name.as_str(), "no such edge; `dsctl edge list` shows the edges"))
}

fn not_found(name: &ObjectName) -> Error {
    Error::NotFound { kind: "edge", name: name.to_string() }
}
