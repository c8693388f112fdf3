//! Certificate tasks and the mirror of each edge's certificate store.

use chrono::{DateTime, Utc};
use proto::edge as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Result;
use crate::seal::SealKey;

/// A task as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Task {
    /// Id.
    pub id: Uuid,
    /// Edge name.
    pub edge: String,
    /// `new`, `request`, `import`, `enable`, `remove`.
    pub kind: String,
    /// `queued`, `done`, `failed`.
    pub state: String,
    /// Failure reason.
    pub error: Option<String>,
    /// PKCS#10 for a request.
    pub request_pem: Option<String>,
    /// Certificate made or changed.
    pub thumbprint: Option<String>,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The protobuf task, base64.
    pub params: serde_json::Value,
    /// Verify steps.
    pub steps: Vec<String>,
    /// Verify verdict.
    pub verified: Option<bool>,
}

const SELECT: &str = "SELECT t.id, e.name AS edge, t.kind, t.state, t.error, t.request_pem, t.thumbprint,
        t.requested_by, t.created_at, t.finished_at, t.params, t.steps, t.verified
    FROM certificate_tasks t JOIN edges e ON e.id = t.edge_id";

/// Queues a task for an edge and tells the controllers. With `seal`, the task is
/// stored encrypted (it carries a PFX) and erased once the edge has answered.
pub async fn queue(
    conn: &mut PgConnection,
    edge_id: Uuid,
    edge: &str,
    kind: &str,
    task: &pb::CertificateTask,
    requested_by: &str,
    seal: Option<&SealKey>,
) -> Result<Uuid> {
    use base64::Engine as _;
    let id: Uuid = task.id.parse().unwrap_or_else(|_| Uuid::new_v4());
    let bytes = prost::Message::encode_to_vec(task);
    let params = match seal {
        Some(seal) => {
            let sealed = seal.seal(&bytes).map_err(|e| super::Error::Seal(e.to_string()))?;
            serde_json::json!({ "sealed": base64::engine::general_purpose::STANDARD.encode(sealed) })
        }
        None => serde_json::json!({ "task": base64::engine::general_purpose::STANDARD.encode(bytes) }),
    };
    sqlx::query(
        "INSERT INTO certificate_tasks (id, edge_id, kind, params, state, requested_by)
         VALUES ($1, $2, $3, $4, 'queued', $5)",
    )
    .bind(id)
    .bind(edge_id)
    .bind(kind)
    .bind(params)
    .bind(requested_by)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify('domainsec_tasks', $1)").bind(edge).execute(conn).await?;
    Ok(id)
}

/// The queued tasks of an edge, oldest first, decoded (sealed ones opened).
pub async fn queued(pool: &PgPool, edge_id: Uuid, seal: &SealKey) -> Result<Vec<pb::CertificateTask>> {
    use base64::Engine as _;
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT params FROM certificate_tasks WHERE edge_id = $1 AND state = 'queued' ORDER BY created_at",
    )
    .bind(edge_id)
    .fetch_all(pool)
    .await?;
    let decode = |params: &serde_json::Value| -> Option<pb::CertificateTask> {
        let engine = base64::engine::general_purpose::STANDARD;
        let bytes = match (params.get("task"), params.get("sealed")) {
            (Some(task), _) => engine.decode(task.as_str()?).ok()?,
            (None, Some(sealed)) => seal.open(&engine.decode(sealed.as_str()?).ok()?).ok()?,
            _ => return None,
        };
        <pb::CertificateTask as prost::Message>::decode(bytes.as_slice()).ok()
    };
    Ok(rows.iter().filter_map(decode).collect())
}

/// Records an edge's answer to a task.
pub async fn finish(pool: &PgPool, edge_id: Uuid, result: &pb::CertificateResult) -> Result<()> {
    let Ok(id) = result.id.parse::<Uuid>() else { return Ok(()) };
    sqlx::query(
        "UPDATE certificate_tasks SET state = $3, error = NULLIF($4, ''), request_pem = NULLIF($5, ''),
             thumbprint = NULLIF($6, ''), steps = $7, verified = $8, finished_at = now(), result = $9,
             params = CASE WHEN params ? 'sealed' THEN jsonb_build_object('sealed', 'erased') ELSE params END
         WHERE id = $1 AND edge_id = $2 AND state = 'queued'",
    )
    .bind(id)
    .bind(edge_id)
    .bind(if result.ok { "done" } else { "failed" })
    .bind(&result.error)
    .bind(&result.request_pem)
    .bind(&result.thumbprint)
    .bind(&result.steps)
    .bind((!result.steps.is_empty()).then_some(result.verified))
    .bind(operator_answer(result))
    .execute(pool)
    .await?;
    Ok(())
}

/// The whole answer (an operator command's queue, log lines or explanation live
/// only here), without the certificate inventory every answer carries. Kept for
/// every task: deciding by which fields happen to be filled lost empty answers and
/// new kinds of answer.
fn operator_answer(result: &pb::CertificateResult) -> Option<Vec<u8>> {
    let answer = pb::CertificateResult { certificates: Vec::new(), ..result.clone() };
    Some(prost::Message::encode_to_vec(&answer))
}

/// The stored answer of a finished operator command.
pub async fn answer(pool: &PgPool, id: Uuid) -> Result<Option<pb::CertificateResult>> {
    let bytes: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT result FROM certificate_tasks WHERE id = $1").bind(id).fetch_optional(pool).await?;
    Ok(bytes.flatten().and_then(|b| <pb::CertificateResult as prost::Message>::decode(b.as_slice()).ok()))
}

/// Gives up on a task nobody answered, so it is not delivered later.
pub async fn abandon(pool: &PgPool, id: Uuid, reason: &str) -> Result<()> {
    sqlx::query(
        "UPDATE certificate_tasks SET state = 'failed', error = $2, finished_at = now()
         WHERE id = $1 AND state = 'queued'",
    )
    .bind(id)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// One task.
pub async fn task(pool: &PgPool, id: Uuid) -> Result<Option<Task>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE t.id = $1"))).bind(id).fetch_optional(pool).await?)
}

/// Replaces the mirror of an edge's store with what it reported. Every edge
/// reports its store when it connects: an unchanged store costs one read, not a
/// write, so a fleet reconnecting after a controller restart stays cheap.
pub async fn replace_inventory(pool: &PgPool, edge_id: Uuid, certificates: &[pb::CertificateInfo]) -> Result<()> {
    type Summary = (String, Vec<String>, String, String);
    let stored: Vec<Summary> = sqlx::query_as(
        "SELECT thumbprint, services, key_status, friendly_name FROM edge_certificates
         WHERE edge_id = $1 ORDER BY position",
    )
    .bind(edge_id)
    .fetch_all(pool)
    .await?;
    let reported: Vec<Summary> = certificates
        .iter()
        .map(|c| (c.thumbprint.clone(), c.services.clone(), c.key_status.clone(), c.friendly_name.clone()))
        .collect();
    if stored == reported {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM edge_certificates WHERE edge_id = $1").bind(edge_id).execute(&mut *tx).await?;
    for (position, c) in certificates.iter().enumerate() {
        sqlx::query(
            "INSERT INTO edge_certificates (edge_id, thumbprint, position, sha256, subject, issuer, serial, dns_names,
                 not_before, not_after, services, key_status, friendly_name, certificate_pem)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (edge_id, thumbprint) DO NOTHING",
        )
        .bind(edge_id)
        .bind(&c.thumbprint)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .bind(&c.sha256)
        .bind(&c.subject)
        .bind(&c.issuer)
        .bind(&c.serial)
        .bind(&c.dns_names)
        .bind(&c.not_before)
        .bind(&c.not_after)
        .bind(&c.services)
        .bind(&c.key_status)
        .bind(&c.friendly_name)
        .bind(&c.certificate_pem)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A mirrored certificate.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EdgeCertificate {
    /// Edge name.
    pub edge: String,
    /// SHA-1 thumbprint (or `pending:ID`).
    pub thumbprint: String,
    /// SHA-256.
    pub sha256: String,
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Serial.
    pub serial: String,
    /// SAN DNS names.
    pub dns_names: Vec<String>,
    /// Validity start.
    pub not_before: String,
    /// Validity end.
    pub not_after: String,
    /// Enabled services.
    pub services: Vec<String>,
    /// present, pending, missing.
    pub key_status: String,
    /// Friendly name.
    pub friendly_name: String,
    /// PEM.
    pub certificate_pem: String,
}

/// `(edge, not_after)` of every certificate enabled for SMTP: what the expiry watch
/// in `fleet status` reads (not the PEMs `list` carries).
pub async fn smtp_expiries(pool: &PgPool) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT e.name, c.not_after FROM edge_certificates c JOIN edges e ON e.id = c.edge_id
         WHERE 'smtp' = ANY(c.services)",
    )
    .fetch_all(pool)
    .await?)
}

/// Mirrored certificates, per edge in the edge's order.
pub async fn list(pool: &PgPool, edge: Option<&str>) -> Result<Vec<EdgeCertificate>> {
    Ok(sqlx::query_as(
        "SELECT e.name AS edge, c.thumbprint, c.sha256, c.subject, c.issuer, c.serial, c.dns_names, c.not_before,
             c.not_after, c.services, c.key_status, c.friendly_name, c.certificate_pem
         FROM edge_certificates c JOIN edges e ON e.id = c.edge_id
         WHERE ($1::text IS NULL OR e.name = $1) ORDER BY e.name, c.position",
    )
    .bind(edge)
    .fetch_all(pool)
    .await?)
}
