//! Accepted domains: the domains the organization receives mail for.

use chrono::{DateTime, Utc};
use domainsec_model::DomainPattern;
use sqlx::PgConnection;

use super::{Error, Result, is_unique_violation, parse_stored};

/// An accepted domain as stored.
#[derive(Debug, Clone)]
pub struct AcceptedDomain {
    /// The domain, or `*.domain` with its subdomains.
    pub domain: DomainPattern,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// All accepted domains, sorted.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<AcceptedDomain>> {
    let rows: Vec<(String, DateTime<Utc>)> =
        sqlx::query_as("SELECT domain, created_at FROM accepted_domains ORDER BY domain").fetch_all(conn).await?;
    rows.into_iter()
        .map(|(domain, created_at)| {
            Ok(AcceptedDomain { domain: parse_stored("accepted domain", &domain, DomainPattern::parse)?, created_at })
        })
        .collect()
}

/// Adds one; refuses a duplicate.
pub async fn insert(conn: &mut PgConnection, domain: &DomainPattern) -> Result<AcceptedDomain> {
    let created_at: DateTime<Utc> =
        sqlx::query_scalar("INSERT INTO accepted_domains (domain) VALUES ($1) RETURNING created_at")
            .bind(domain.to_string())
            .fetch_one(conn)
            .await
            .map_err(|error| {
                if is_unique_violation(&error) {
                    Error::AlreadyExists { kind: "accepted domain", name: domain.to_string() }
                } else {
                    error.into()
                }
            })?;
    Ok(AcceptedDomain { domain: domain.clone(), created_at })
}

/// Removes one; [`Error::NotFound`] if absent.
pub async fn delete(conn: &mut PgConnection, domain: &DomainPattern) -> Result<()> {
    let result =
        sqlx::query("DELETE FROM accepted_domains WHERE domain = $1").bind(domain.to_string()).execute(conn).await?;
    if result.rows_affected() == 0 {
        return Err(Error::NotFound { kind: "accepted domain", name: domain.to_string() });
    }
    Ok(())
}
