//! One configuration change: a transaction that serialises with every other
//! change, bumps the organization's config version, writes its audit row and
//! records the version's whole configuration document.

use serde::Serialize;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::{Error, Result};
/// An open change. Dropping it without [`Change::commit`] rolls everything back.
pub struct Change {
    tx: Transaction<'static, Postgres>,
    version: i64,
    edges_changed: bool,
}

/// What the audit log records about a change.
pub struct Audit<'a> {
    /// Who made it: an admin's name, or `edge:NAME` for a subscription.
    pub actor: &'a str,
    /// The actor's role word (`org-admin`, …, or `edge`).
    pub actor_role: &'a str,
    /// Verb, e.g. `send-connector.set`.
    pub action: &'static str,
    /// The object, e.g. the connector's name.
    pub target: String,
    /// JSON of the object before; `None` when it did not exist.
    pub before: Option<serde_json::Value>,
    /// JSON of the object after; `None` when it was removed.
    pub after: Option<serde_json::Value>,
}

impl Change {
    /// Starts a change, taking the organization row lock so changes apply one at a time.
    pub async fn begin(pool: &PgPool) -> Result<Self> {
        let mut tx = pool.begin().await?;
        let version: Option<i64> =
            sqlx::query_scalar("SELECT config_version FROM organization WHERE id = 1 FOR UPDATE")
                .fetch_optional(&mut *tx)
                .await?;
        let Some(version) = version else {
            return Err(Error::NoOrganization);
        };
        Ok(Self { tx, version, edges_changed: false })
    }

    /// The transaction's connection, for the table modules.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The config version this change starts from (locked: no other change moves it).
    pub fn version(&self) -> u64 {
        u64::try_from(self.version).unwrap_or_default()
    }

    /// Marks that the set of trusted edge certificates changes, so every controller
    /// reloads it (and cuts off removed edges) when this change commits.
    pub fn edges_changed(&mut self) {
        self.edges_changed = true;
    }

    /// Bumps the version, writes the audit row, tells listening controllers, commits.
    /// Returns the new config version.
    pub async fn commit(self, audit: Audit<'_>) -> Result<u64> {
        Ok(self.commit_audited(audit).await?.0)
    }

    /// [`Change::commit`], returning the new config version and the audit row's id.
    pub async fn commit_audited(mut self, audit: Audit<'_>) -> Result<(u64, i64)> {
        let version: i64 = sqlx::query_scalar(
            "UPDATE organization SET config_version = config_version + 1 WHERE id = 1 RETURNING config_version",
        )
        .fetch_one(&mut *self.tx)
        .await?;
        let audit_id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_log (actor, actor_role, action, target, config_version, before, after)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(audit.actor)
        .bind(audit.actor_role)
        .bind(audit.action)
        .bind(&audit.target)
        .bind(version)
        .bind(audit.before)
        .bind(audit.after)
        .fetch_one(&mut *self.tx)
        .await?;
        // The version's whole configuration, for export and rollback.
        super::config_versions::record(&mut self.tx, version).await?;
        // Delivered on commit only; carries just the version (EdgeSync reads the rest).
        sqlx::query("SELECT pg_notify('domainsec_config', $1)")
            .bind(version.to_string())
            .execute(&mut *self.tx)
            .await?;
        if self.edges_changed {
            sqlx::query("SELECT pg_notify('domainsec_edges', '')").execute(&mut *self.tx).await?;
        }
        self.tx.commit().await?;
        Ok((u64::try_from(version).unwrap_or_default(), audit_id))
    }
}

/// JSON of a value for the audit log.
pub fn json<T: Serialize>(value: &T) -> Option<serde_json::Value> {
    serde_json::to_value(value).ok()
}
