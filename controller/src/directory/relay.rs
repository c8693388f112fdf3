//! Live commands on an edge's relay: its queue and its protocol logs. They ride
//! the task path (stored, NOTIFYed, delivered by whichever replica holds the
//! edge's stream) and the caller waits for the answer for a bounded time.

use std::time::Duration;

use domainsec_model::ObjectName;
use proto::edge as pb;

use super::{Directory, Error, Result};
use crate::{authz::Admin, db};

/// How long a caller waits for an edge to answer.
const ANSWER_WAIT: Duration = Duration::from_secs(15);

/// How long `partner test` waits: several hosts, each step capped at 10 s on the edge.
pub const PARTNER_TEST_WAIT: Duration = Duration::from_secs(60);

impl Directory {
    /// The messages in an edge's queue. They name senders and recipients: org-admins
    /// and the edge's server-admins only.
    pub async fn list_queue(&self, admin: &Admin, edge: &ObjectName) -> Result<Vec<pb::QueuedMessage>> {
        admin.require_edges("list a queue", [edge])?;
        let command = pb::QueueCommand::new(pb::QueueAction::List, "");
        let answer =
            self.ask(admin, edge, "queue-list", pb::certificate_task::Action::Queue(command), ANSWER_WAIT).await?;
        Ok(answer.queue)
    }

    /// Retries or deletes without a DSN (remove) one queued message.
    pub async fn change_queued(
        &self,
        admin: &Admin,
        edge: &ObjectName,
        action: pb::QueueAction,
        id: &str,
    ) -> Result<()> {
        let word = action.word();
        admin.require_edges(&format!("{word} a queued message"), [edge])?;
        let command = pb::QueueCommand::new(action, id);
        self.ask(admin, edge, &format!("queue-{word}"), pb::certificate_task::Action::Queue(command), ANSWER_WAIT)
            .await?;
        Ok(())
    }

    /// Protocol log records (they hold addresses: server-admins of the edge only).
    pub async fn protocol_log(
        &self,
        admin: &Admin,
        edge: &ObjectName,
        query: pb::ProtocolLogQuery,
    ) -> Result<Vec<String>> {
        admin.require_edges("read protocol logs", [edge])?;
        let action = pb::certificate_task::Action::ProtocolLog(query);
        let answer = self.ask(admin, edge, "protocol-log", action, ANSWER_WAIT).await?;
        Ok(answer.log_lines)
    }

    /// `dsctl policy explain`: the edge evaluates the question with the relay's own
    /// decision functions, against its running configuration or, with `current`,
    /// the directory's (sent along). Read-only: any role.
    pub async fn explain_policy(
        &self,
        admin: &Admin,
        edge: &ObjectName,
        mut question: pb::PolicyQuestion,
        current: bool,
    ) -> Result<pb::PolicyExplanation> {
        if current {
            let config = crate::edgesync::snapshot::OrgConfig::load(&self.pool).await?;
            let snapshot = config
                .snapshot_for(edge.as_str())
                .ok_or_else(|| db::Error::NotFound { kind: "edge", name: edge.to_string() })?;
            question.snapshot = Some(snapshot);
        }
        let answer = self
            .ask(admin, edge, "explain-policy", pb::certificate_task::Action::ExplainPolicy(question), ANSWER_WAIT)
            .await?;
        answer.explanation.ok_or_else(|| Error::EdgeRefused {
            edge: edge.to_string(),
            reason: "the edge answered without an explanation (is it older than this controller?)".to_owned(),
        })
    }

    /// `dsctl partner test`: the edge probes the partner as a Domain Secured delivery
    /// would (or checks a certificate it sent, `inbound`); no mail is sent. It opens
    /// connections from the edge: org-admins and the edge's server-admins only.
    pub async fn test_partner(
        &self,
        admin: &Admin,
        edge: &ObjectName,
        test: pb::PartnerTest,
    ) -> Result<pb::PartnerTestReport> {
        admin.require_edges("test a partner", [edge])?;
        let action = pb::certificate_task::Action::PartnerTest(test);
        let answer = self.ask(admin, edge, "partner-test", action, PARTNER_TEST_WAIT).await?;
        answer.partner_test.ok_or_else(|| Error::EdgeRefused {
            edge: edge.to_string(),
            reason: "the edge answered without a report (is it older than this controller?)".to_owned(),
        })
    }

    /// `dsctl partner report`: what the edges observed of each partner since `since`,
    /// the certificates partners presented, and the edges' own SMTP certificates, each
    /// flagged when it expires before `expiry_horizon`. Read-only: any role.
    pub async fn partner_report(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        domain: Option<&str>,
        expiry_horizon: chrono::DateTime<chrono::Utc>,
    ) -> Result<proto::admin::PartnerReportResponse> {
        use proto::admin as admin_pb;
        let (organization, _) = self.organization().await?;
        let figures = db::partners::figures(&self.pool, since).await?;
        let seen = db::partners::certificates(&self.pool, since).await?;
        let wanted = |partner: &str| domain.is_none_or(|domain| domain.eq_ignore_ascii_case(partner));
        let mut partners: std::collections::BTreeMap<String, admin_pb::PartnerSummary> = figures
            .into_iter()
            .filter(|(partner, _)| wanted(partner))
            .map(|(partner, f)| {
                let summary = admin_pb::PartnerSummary {
                    partner: partner.clone(),
                    received: f.received,
                    sent: f.sent,
                    outbound_failures: f.outbound_failures,
                    inbound_refusals: f.inbound_refusals,
                    outbound_sessions: f.outbound_sessions,
                    reasons: f.reasons.into_iter().collect(),
                    edges: f.edges,
                    certificates: Vec::new(),
                };
                (partner, summary)
            })
            .collect();
        for certificate in seen.into_iter().filter(|c| wanted(&c.partner)) {
            let summary = partners.entry(certificate.partner.clone()).or_insert_with(|| admin_pb::PartnerSummary {
                partner: certificate.partner.clone(),
                ..Default::default()
            });
            summary.certificates.push(admin_pb::PartnerCertificate {
                sha256: certificate.sha256,
                subject: certificate.subject,
                issuer: certificate.issuer,
                not_after_unix: certificate.not_after.timestamp(),
                last_seen_unix: certificate.last_seen.timestamp(),
                edges: certificate.edges,
                expiring: certificate.not_after <= expiry_horizon,
            });
        }
        let edge_certificates = db::certificates::list(&self.pool, None)
            .await?
            .into_iter()
            .filter(|c| c.services.iter().any(|s| s == "smtp"))
            .filter_map(|c| {
                let not_after = chrono::DateTime::parse_from_rfc3339(&c.not_after).ok()?.with_timezone(&chrono::Utc);
                Some(admin_pb::OwnCertificate {
                    edge: c.edge,
                    thumbprint: c.thumbprint,
                    subject: c.subject,
                    not_after_unix: not_after.timestamp(),
                    expiring: not_after <= expiry_horizon,
                })
            })
            .collect();
        Ok(admin_pb::PartnerReportResponse {
            organization,
            start_unix: since.timestamp(),
            end_unix: chrono::Utc::now().timestamp(),
            partners: partners.into_values().collect(),
            edge_certificates,
        })
    }

    /// Queues `action` for `edge` and waits up to `wait` for its answer.
    async fn ask(
        &self,
        admin: &Admin,
        edge: &ObjectName,
        kind: &str,
        action: pb::certificate_task::Action,
        wait: Duration,
    ) -> Result<pb::CertificateResult> {
        let task = self.queue_task(admin, edge, kind, action).await?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut poll = tokio::time::interval(Duration::from_millis(50));
        loop {
            poll.tick().await;
            let current = db::certificates::task(&self.pool, task.id).await?;
            match current {
                Some(done) if done.state == "done" => {
                    return Ok(db::certificates::answer(&self.pool, task.id).await?.unwrap_or_default());
                }
                Some(failed) if failed.state == "failed" => {
                    let reason = failed.error.unwrap_or_else(|| "failed".to_owned());
                    return Err(Error::EdgeRefused { edge: edge.to_string(), reason });
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    let reason = format!("no answer within {} s", wait.as_secs());
                    db::certificates::abandon(&self.pool, task.id, &reason).await?;
                    return Err(Error::EdgeUnavailable { edge: edge.to_string(), seconds: wait.as_secs() });
                }
                _ => {}
            }
        }
    }
}
