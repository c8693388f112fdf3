//! Rotating the controller's edge-port certificate without cutting edges off:
//! stage the next certificate (edges learn to trust it through a snapshot), then
//! activate it only when every subscribed edge has ACKed that snapshot.

use sqlx::PgPool;

use crate::{
    bootstrap::BootstrapError,
    db::{
        self,
        change::{Audit, Change},
    },
    edgesync::ControllerIdentity,
    state_dir::StateDir,
};

/// Makes the next certificate and publishes it to edges. Returns the config
/// version that carries it.
pub async fn stage(pool: &PgPool, state: &StateDir) -> Result<u64, BootstrapError> {
    let organization = db::organization::fetch(pool).await?;
    let next = ControllerIdentity::load_or_create_at(&state.next_edge_sync(), &organization.name)
        .map_err(|e| BootstrapError::Usage(e.to_string()))?;
    let mut change = Change::begin(pool).await?;
    db::organization::record_controller_certificate(
        change.conn(),
        next.sha256.as_str(),
        "edge-sync",
        &next.certificate_pem,
        chrono::DateTime::from_timestamp(next.not_after.unix_timestamp(), 0).unwrap_or_default(),
    )
    .await?;
    let version = change
        .commit(Audit {
            actor: "domainsec-controller",
            actor_role: "org-admin",
            action: "controller-certificate.stage",
            target: next.sha256.to_string(),
            before: None,
            after: Some(serde_json::json!({ "sha256": next.sha256.as_str() })),
        })
        .await?;
    sqlx::query("UPDATE controller_certificates SET staged_version = $2 WHERE sha256 = $1")
        .bind(next.sha256.as_str())
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .execute(pool)
        .await
        .map_err(db::Error::from)?;
    Ok(version)
}

/// Swaps the staged certificate in, once every subscribed edge trusts it, and
/// stops publishing the old one. Controllers present it after their next restart.
pub async fn activate(pool: &PgPool, state: &StateDir) -> Result<String, BootstrapError> {
    let organization = db::organization::fetch(pool).await?;
    let paths = state.next_edge_sync();
    if !paths.0.exists() {
        return Err(BootstrapError::Usage(
            "no staged certificate; run `domainsec-controller rotate-edge-certificate stage` first".to_owned(),
        ));
    }
    let next = ControllerIdentity::load_or_create_at(&paths, &organization.name)
        .map_err(|e| BootstrapError::Usage(e.to_string()))?;
    let staged: Option<i64> =
        sqlx::query_scalar("SELECT staged_version FROM controller_certificates WHERE sha256 = $1")
            .bind(next.sha256.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db::Error::from)?
            .flatten();
    let staged = staged.ok_or_else(|| {
        BootstrapError::Usage("the staged certificate is not in the directory; stage it again".into())
    })?;
    let behind: Vec<String> = sqlx::query_scalar(
        "SELECT e.name FROM edges e LEFT JOIN edge_sync_state s ON s.edge_id = e.id
         WHERE e.certificate_sha256 IS NOT NULL AND COALESCE(s.last_version_acked, 0) < $1 ORDER BY e.name",
    )
    .bind(staged)
    .fetch_all(pool)
    .await
    .map_err(db::Error::from)?;
    if !behind.is_empty() {
        return Err(BootstrapError::Usage(format!(
            "edge(s) {} have not ACKed version {staged}, which carries the new certificate; they would be cut off. \
             Wait for them (dsctl edge test-sync) or remove them",
            behind.join(",")
        )));
    }
    let current = ControllerIdentity::load_or_create(state, &organization.name)
        .map_err(|e| BootstrapError::Usage(e.to_string()))?;
    let mut change = Change::begin(pool).await?;
    sqlx::query("DELETE FROM controller_certificates WHERE sha256 = $1 AND purpose = 'edge-sync'")
        .bind(current.sha256.as_str())
        .execute(&mut *change.conn())
        .await
        .map_err(db::Error::from)?;
    change
        .commit(Audit {
            actor: "domainsec-controller",
            actor_role: "org-admin",
            action: "controller-certificate.activate",
            target: next.sha256.to_string(),
            before: Some(serde_json::json!({ "sha256": current.sha256.as_str() })),
            after: Some(serde_json::json!({ "sha256": next.sha256.as_str() })),
        })
        .await?;
    state.promote_next_edge_sync()?;
    Ok(next.sha256.to_string())
}
