//! What edges report about their partners (heartbeats), kept for `dsctl partner
//! report` with a retention, and the report over a period.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use proto::edge as pb;
use sqlx::PgPool;
use uuid::Uuid;

use super::Result;

/// How long observations are kept.
pub const RETENTION_DAYS: i32 = 30;

/// One partner's figures over a period, summed over the edges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartnerFigures {
    /// Domain-Secured messages received.
    pub received: u64,
    /// Domain-Secured messages sent.
    pub sent: u64,
    /// Outbound sessions that failed Domain Security.
    pub outbound_failures: u64,
    /// Inbound transactions refused.
    pub inbound_refusals: u64,
    /// Outbound sessions that passed Domain Security.
    pub outbound_sessions: u64,
    /// Failures and refusals by reason.
    pub reasons: BTreeMap<String, u64>,
    /// The edges that saw the partner in the period.
    pub edges: Vec<String>,
}

/// A certificate a partner presented, as seen across the fleet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SeenCertificate {
    /// The secure-list entry.
    pub partner: String,
    /// SHA-256 of the certificate.
    pub sha256: String,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// Last seen by any edge.
    pub last_seen: DateTime<Utc>,
    /// The edges that saw it.
    pub edges: Vec<String>,
}

/// Records one heartbeat's observations of `edge_id` (the current hour's row is
/// replaced by the newer cumulative figures), and drops what is past the retention.
pub async fn record(pool: &PgPool, edge_id: Uuid, partners: &[pb::PartnerObservation]) -> Result<()> {
    if partners.is_empty() {
        return Ok(());
    }
    let partners = &bounded(partners);
    let mut tx = pool.begin().await?;
    let names: Vec<&str> = partners.iter().map(|p| p.partner.as_str()).collect();
    let figure = |f: fn(&pb::PartnerObservation) -> u64| -> Vec<i64> {
        partners.iter().map(|p| i64::try_from(f(p)).unwrap_or(i64::MAX)).collect()
    };
    let reasons: Vec<serde_json::Value> = partners
        .iter()
        .map(|p| serde_json::Value::Object(p.reasons.iter().map(|(k, v)| (k.clone(), (*v).into())).collect()))
        .collect();
    sqlx::query(
        "INSERT INTO partner_observations
             (edge_id, partner, hour, received, sent, outbound_failures, inbound_refusals, outbound_sessions, reasons)
         SELECT $1, partner, date_trunc('hour', now()), received, sent, outbound_failures, inbound_refusals,
                outbound_sessions, reasons
         FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::jsonb[])
              AS t(partner, received, sent, outbound_failures, inbound_refusals, outbound_sessions, reasons)
         ON CONFLICT (edge_id, partner, hour) DO UPDATE SET
             received = EXCLUDED.received, sent = EXCLUDED.sent, outbound_failures = EXCLUDED.outbound_failures,
             inbound_refusals = EXCLUDED.inbound_refusals, outbound_sessions = EXCLUDED.outbound_sessions,
             reasons = EXCLUDED.reasons",
    )
    .bind(edge_id)
    .bind(&names)
    .bind(figure(|p| p.received))
    .bind(figure(|p| p.sent))
    .bind(figure(|p| p.outbound_failures))
    .bind(figure(|p| p.inbound_refusals))
    .bind(figure(|p| p.outbound_sessions))
    .bind(&reasons)
    .execute(&mut *tx)
    .await?;
    let seen: Vec<(&str, &pb::SeenCertificate)> =
        partners.iter().flat_map(|p| p.certificates.iter().map(move |c| (p.partner.as_str(), c))).collect();
    if !seen.is_empty() {
        let time = |unix: i64| DateTime::from_timestamp(unix, 0).unwrap_or_default();
        sqlx::query(
            "INSERT INTO partner_certificates (edge_id, partner, sha256, subject, issuer, not_after, last_seen)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])
             ON CONFLICT (edge_id, partner, sha256) DO UPDATE SET last_seen = GREATEST(partner_certificates.last_seen, EXCLUDED.last_seen)",
        )
        .bind(edge_id)
        .bind(seen.iter().map(|(partner, _)| *partner).collect::<Vec<_>>())
        .bind(seen.iter().map(|(_, c)| c.sha256.as_str()).collect::<Vec<_>>())
        .bind(seen.iter().map(|(_, c)| c.subject.as_str()).collect::<Vec<_>>())
        .bind(seen.iter().map(|(_, c)| c.issuer.as_str()).collect::<Vec<_>>())
        .bind(seen.iter().map(|(_, c)| time(c.not_after_unix)).collect::<Vec<_>>())
        .bind(seen.iter().map(|(_, c)| time(c.last_seen_unix)).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM partner_observations WHERE edge_id = $1 AND hour < now() - make_interval(days => $2)")
        .bind(edge_id)
        .bind(RETENTION_DAYS)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM partner_certificates WHERE edge_id = $1 AND last_seen < now() - make_interval(days => $2)",
    )
    .bind(edge_id)
    .bind(RETENTION_DAYS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What one heartbeat may add, whatever an edge sends: an edge keeps at most 1,000
/// partner rows and 4 certificates each, so more is a broken or hostile edge and is cut
/// (the rest of the heartbeat still counts).
fn bounded(partners: &[pb::PartnerObservation]) -> Vec<pb::PartnerObservation> {
    if partners.len() > MAX_PARTNERS_PER_HEARTBEAT {
        tracing::warn!(
            sent = partners.len(),
            kept = MAX_PARTNERS_PER_HEARTBEAT,
            "heartbeat with too many partner rows"
        );
    }
    let cut = |text: &str, max: usize| text.chars().take(max).collect::<String>();
    partners
        .iter()
        .take(MAX_PARTNERS_PER_HEARTBEAT)
        .map(|partner| pb::PartnerObservation {
            partner: cut(&partner.partner, MAX_NAME),
            reasons: partner.reasons.iter().take(MAX_REASONS).map(|(k, v)| (cut(k, MAX_NAME), *v)).collect(),
            certificates: partner
                .certificates
                .iter()
                .take(MAX_CERTIFICATES)
                .map(|c| pb::SeenCertificate {
                    sha256: cut(&c.sha256, 64),
                    subject: cut(&c.subject, MAX_NAME * 4),
                    issuer: cut(&c.issuer, MAX_NAME * 4),
                    ..c.clone()
                })
                .collect(),
            ..partner.clone()
        })
        .collect()
}

const MAX_PARTNERS_PER_HEARTBEAT: usize = 1001;
const MAX_CERTIFICATES: usize = 4;
const MAX_REASONS: usize = 64;
const MAX_NAME: usize = 255;

/// Each partner's figures since `since` (at hour granularity), summed over the edges.
pub async fn figures(pool: &PgPool, since: DateTime<Utc>) -> Result<BTreeMap<String, PartnerFigures>> {
    type Row = (String, String, i64, i64, i64, i64, i64, serde_json::Value);
    // The newest row of each edge and partner: overall, or before the period.
    const NEWEST: &str = "SELECT DISTINCT ON (o.edge_id, o.partner) e.name, o.partner, o.received, o.sent,
                o.outbound_failures, o.inbound_refusals, o.outbound_sessions, o.reasons
         FROM partner_observations o JOIN edges e ON e.id = o.edge_id
         WHERE NOT $2 OR o.hour < date_trunc('hour', $1::timestamptz)
         ORDER BY o.edge_id, o.partner, o.hour DESC";
    let latest: Vec<Row> = sqlx::query_as(NEWEST).bind(since).bind(false).fetch_all(pool).await?;
    let base: Vec<Row> = sqlx::query_as(NEWEST).bind(since).bind(true).fetch_all(pool).await?;
    let base: BTreeMap<(String, String), Row> =
        base.into_iter().map(|row| ((row.0.clone(), row.1.clone()), row)).collect();
    let mut figures: BTreeMap<String, PartnerFigures> = BTreeMap::new();
    for row in latest {
        let before = base.get(&(row.0.clone(), row.1.clone()));
        let delta = |now: i64, then: Option<i64>| -> u64 {
            let now = u64::try_from(now).unwrap_or(0);
            match then.and_then(|then| u64::try_from(then).ok()) {
                // Figures that went down belong to a reset edge: all of them are new.
                Some(then) if then <= now => now - then,
                _ => now,
            }
        };
        let partner = figures.entry(row.1.clone()).or_default();
        partner.received += delta(row.2, before.map(|b| b.2));
        partner.sent += delta(row.3, before.map(|b| b.3));
        partner.outbound_failures += delta(row.4, before.map(|b| b.4));
        partner.inbound_refusals += delta(row.5, before.map(|b| b.5));
        partner.outbound_sessions += delta(row.6, before.map(|b| b.6));
        if let Some(reasons) = row.7.as_object() {
            for (reason, count) in reasons {
                let then = before.and_then(|b| b.7.get(reason)).and_then(serde_json::Value::as_i64);
                let added = delta(count.as_i64().unwrap_or(0), then);
                if added > 0 {
                    *partner.reasons.entry(reason.clone()).or_default() += added;
                }
            }
        }
        partner.edges.push(row.0);
    }
    Ok(figures)
}

/// The certificates partners presented since `since`, newest sighting first.
pub async fn certificates(pool: &PgPool, since: DateTime<Utc>) -> Result<Vec<SeenCertificate>> {
    Ok(sqlx::query_as(
        "SELECT c.partner, c.sha256, min(c.subject) AS subject, min(c.issuer) AS issuer, min(c.not_after) AS not_after,
                max(c.last_seen) AS last_seen, array_agg(DISTINCT e.name ORDER BY e.name) AS edges
         FROM partner_certificates c JOIN edges e ON e.id = c.edge_id
         WHERE c.last_seen >= $1
         GROUP BY c.partner, c.sha256
         ORDER BY c.partner, max(c.last_seen) DESC",
    )
    .bind(since)
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_cannot_add_more_than_an_edge_keeps() {
        let huge = "x".repeat(10_000);
        let flood: Vec<pb::PartnerObservation> = (0..5_000)
            .map(|n| pb::PartnerObservation {
                partner: format!("{huge}{n}"),
                reasons: (0..500).map(|r| (format!("reason-{r}"), 1)).collect(),
                certificates: (0..50)
                    .map(|c| pb::SeenCertificate {
                        subject: huge.clone(),
                        sha256: format!("{c}"),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        let kept = bounded(&flood);
        assert_eq!(kept.len(), MAX_PARTNERS_PER_HEARTBEAT);
        assert!(kept.iter().all(|p| p.partner.len() <= MAX_NAME && p.reasons.len() <= MAX_REASONS));
        assert!(kept.iter().all(|p| p.certificates.len() <= MAX_CERTIFICATES));
        assert!(kept[0].certificates.iter().all(|c| c.subject.len() <= MAX_NAME * 4));
    }
}
