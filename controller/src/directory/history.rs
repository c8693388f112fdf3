//! Configuration history: one audit entry with its differences, the whole
//! configuration as a document (export, at any recorded version), and applying a
//! document or an earlier version (rollback) as one audited change.

use domainsec_model::InvalidField;

use super::{Directory, Result, apply};
use crate::{
    authz::Admin,
    db::{
        self,
        audit::AuditEntry,
        change::{Audit, Change},
    },
    document::{ConfigDocument, Difference, differences},
};

/// An audit entry with what it changed.
#[derive(Debug, Clone)]
pub struct AuditDetail {
    /// The entry.
    pub entry: AuditEntry,
    /// Its before and after, compared.
    pub differences: Vec<Difference>,
}

/// What an apply or a rollback did, or would do.
#[derive(Debug, Clone)]
pub struct Applied {
    /// From the current configuration to the document's; empty: no changes.
    pub differences: Vec<Difference>,
    /// True when the change was written (not a dry run, and something differed).
    pub written: bool,
    /// The new version when written; the current one otherwise.
    pub config_version: u64,
    /// The change's audit entry when written.
    pub audit_id: Option<i64>,
}

impl Directory {
    /// One audit entry and its differences; any role may read the audit log.
    pub async fn audit_entry(&self, id: i64) -> Result<AuditDetail> {
        let entry = db::audit::fetch(&self.pool, id).await?;
        let null = serde_json::Value::Null;
        let differences = differences(entry.before.as_ref().unwrap_or(&null), entry.after.as_ref().unwrap_or(&null));
        Ok(AuditDetail { entry, differences })
    }

    /// The configuration now (`None`) or at a recorded version, with that version.
    pub async fn export_config(&self, version: Option<u64>) -> Result<(ConfigDocument, u64)> {
        if let Some(version) = version {
            return Ok((db::config_versions::fetch(&self.pool, version).await?, version));
        }
        // One consistent read: the document and the version it is at.
        let mut tx = self.pool.begin().await.map_err(db::Error::from)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db::Error::from)?;
        let version: i64 = sqlx::query_scalar("SELECT config_version FROM organization WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(db::Error::from)?
            .ok_or(db::Error::NoOrganization)?;
        let document = db::config_versions::current(&mut tx).await?;
        tx.commit().await.map_err(db::Error::from)?;
        Ok((document, super::version(version)))
    }

    /// Applies a configuration document (YAML or JSON) as one change, or with
    /// `dry_run` only says what would change. Org-admins only.
    pub async fn apply_config(&self, admin: &Admin, text: &str, dry_run: bool) -> Result<Applied> {
        admin.require_org_admin("apply a configuration document")?;
        let document = ConfigDocument::from_yaml(text)?;
        self.apply(admin, document, "config.apply", "configuration".to_owned(), dry_run).await
    }

    /// Applies the configuration of an earlier version as one new version.
    pub async fn rollback_config(&self, admin: &Admin, to_version: u64, dry_run: bool) -> Result<Applied> {
        admin.require_org_admin("roll the configuration back")?;
        let document = db::config_versions::fetch(&self.pool, to_version).await?;
        self.apply(admin, document, "config.rollback", format!("version {to_version}"), dry_run).await
    }

    /// Compares `target` with the directory under the change lock and writes the
    /// difference in one transaction: one version, one audit row. A dry run goes
    /// through every write (so every check the directory makes runs) and rolls back.
    async fn apply(
        &self,
        admin: &Admin,
        target: ConfigDocument,
        action: &'static str,
        audit_target: String,
        dry_run: bool,
    ) -> Result<Applied> {
        let mut tx = Change::begin(&self.pool).await?;
        let current = db::config_versions::current(tx.conn()).await?;
        if target.organization != current.organization {
            return Err(InvalidField::new(
                "organization",
                &target.organization,
                format!(
                    "this directory holds organization {:?}; a document from another organization is never applied",
                    current.organization
                ),
            )
            .into());
        }
        let (before, after) = (current.to_json(), target.to_json());
        let differences = differences(&before, &after);
        let unchanged = Applied { differences, written: false, config_version: tx.version(), audit_id: None };
        if unchanged.differences.is_empty() {
            return Ok(unchanged);
        }
        let removed_edges = apply::write(&mut tx, admin, &current, &target).await?;
        if dry_run {
            // Dropping the change rolls every write back.
            return Ok(unchanged);
        }
        let (config_version, audit_id) = tx
            .commit_audited(Audit {
                actor: &admin.name,
                actor_role: admin.role.as_str(),
                action,
                target: audit_target,
                before: Some(before),
                after: Some(after),
            })
            .await?;
        if let Some(side) = &self.edge_side {
            for name in &removed_edges {
                side.handle.trusted.forget_edge(name.as_str());
                side.handle.fleet.retain(|edge| edge != name.as_str());
            }
        }
        Ok(Applied { differences: unchanged.differences, written: true, config_version, audit_id: Some(audit_id) })
    }
}
