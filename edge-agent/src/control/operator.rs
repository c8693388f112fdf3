//! Operator commands that reach the edge as tasks: the relay's queue
//! (list, retry, remove), its protocol logs and `policy explain`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use domainsec_model::Domain;
use proto::edge::{self as pb, certificate_task::Action};

use crate::{
    apply::{self, EdgeConfig},
    certificates::CertificateStore,
    explain,
    protocol_log::{LogKind, LogQuery, query},
    relay::Relay,
};

/// What the operator commands read.
pub struct EdgeState<'a> {
    /// The relay, when it runs.
    pub relay: Option<&'a Relay>,
    /// The configuration being served.
    pub running: Option<std::sync::Arc<EdgeConfig>>,
    /// The edge's certificates (the SMTP one is part of an explanation).
    pub certificates: &'a CertificateStore,
}

/// True for the tasks this module answers (the certificate store answers the rest).
pub fn handles(task: &pb::CertificateTask) -> bool {
    matches!(
        task.action,
        Some(Action::Queue(_) | Action::ProtocolLog(_) | Action::ExplainPolicy(_) | Action::PartnerTest(_))
    )
}

/// True for the commands that wait on the network (`partner test`, and `policy explain`,
/// which looks up DANE and MTA-STS records): the caller runs them in the background.
pub fn takes_long(task: &pb::CertificateTask) -> bool {
    matches!(task.action, Some(Action::PartnerTest(_) | Action::ExplainPolicy(_)))
}

/// Runs one operator command against the relay.
pub async fn answer(edge: EdgeState<'_>, task: &pb::CertificateTask) -> pb::CertificateResult {
    let outcome = match (edge.relay, &task.action) {
        (None, _) => Err("the SMTP relay is not running on this edge".to_owned()),
        (Some(relay), Some(Action::PartnerTest(test))) => partner_test(relay, edge.running.as_deref(), test).await,
        (Some(relay), Some(Action::ExplainPolicy(question))) => {
            explain_policy(relay, edge.running.as_deref(), edge.certificates, question).await
        }
        (Some(relay), Some(Action::Queue(command))) => queue(relay, command),
        (Some(relay), Some(Action::ProtocolLog(log_query))) => protocol_log(relay, log_query).await,
        (Some(_), _) => Err("not an operator command".to_owned()),
    };
    let mut result = outcome.unwrap_or_else(|error| pb::CertificateResult { error, ..Default::default() });
    result.id = task.id.clone();
    result.ok = result.error.is_empty();
    result
}

fn queue(relay: &Relay, command: &pb::QueueCommand) -> Result<pb::CertificateResult, String> {
    let id = &command.message_id;
    match command.kind() {
        pb::QueueAction::List => Ok(pb::CertificateResult {
            queue: relay.queue.list().into_iter().map(to_proto).collect(),
            ..Default::default()
        }),
        pb::QueueAction::Retry if relay.queue.retry(id) => Ok(pb::CertificateResult::default()),
        pb::QueueAction::Retry => Err(no_message(id)),
        pb::QueueAction::Remove => match relay.queue.remove(id) {
            Ok(true) => Ok(pb::CertificateResult::default()),
            Ok(false) => Err(no_message(id)),
            Err(error) => Err(format!("cannot remove {id}: {error}")),
        },
        pb::QueueAction::Unspecified => {
            Err("queue command without an action: the controller is older than this edge; upgrade it".to_owned())
        }
    }
}

async fn protocol_log(relay: &Relay, request: &pb::ProtocolLogQuery) -> Result<pb::CertificateResult, String> {
    let (dir, kind) = match request.kind() {
        pb::ProtocolLogKind::Send => (relay.send_log.clone(), LogKind::Send),
        pb::ProtocolLogKind::Receive => (relay.receive_log.clone(), LogKind::Receive),
        pb::ProtocolLogKind::Unspecified => {
            return Err(
                "protocol log query without a log kind: the controller is older than this edge; upgrade it".to_owned()
            );
        }
    };
    let log_query = LogQuery {
        connector: (!request.connector.is_empty()).then(|| request.connector.clone()),
        session: (!request.session.is_empty()).then(|| request.session.clone()),
        since: u64::try_from(request.since_unix_seconds)
            .ok()
            .filter(|s| *s > 0)
            .map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        limit: usize::try_from(request.limit).unwrap_or(200).clamp(1, 5000),
    };
    let lines = tokio::task::spawn_blocking(move || query(&dir, kind, &log_query))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot read the protocol log: {e}"))?;
    Ok(pb::CertificateResult { log_lines: lines, ..Default::default() })
}

/// `dsctl policy explain`: against the snapshot sent along (`--config current`) or
/// the one this edge runs.
async fn explain_policy(
    relay: &Relay,
    running: Option<&EdgeConfig>,
    certificates: &CertificateStore,
    request: &pb::PolicyQuestion,
) -> Result<pb::CertificateResult, String> {
    let question = explain::question(request).map_err(|error| error.to_string())?;
    let sent;
    let config = match &request.snapshot {
        Some(snapshot) => {
            sent = apply::check(snapshot).map_err(|error| format!("the directory's configuration: {error}"))?;
            &sent
        }
        None => running.ok_or("this edge has no configuration yet")?,
    };
    let temporary = relay.security.settings.temporary_refusals;
    let explanation = explain::explain(config, &certificates.smtp_certificates(), temporary, &question);
    let mut explanation: pb::PolicyExplanation = explanation.into();
    let domain = question.to.rsplit_once('@').and_then(|(_, domain)| Domain::parse(domain).ok());
    if let (Some(outbound), Some(domain)) = (explanation.outbound.as_mut(), domain)
        && let Some((source, detail)) = relay.delivery.describe_tls_policy(config, &domain).await
    {
        outbound.tls_policy = source;
        outbound.tls_policy_detail = detail;
    }
    Ok(pb::CertificateResult { explanation: Some(explanation), ..Default::default() })
}

/// `dsctl partner test`: the outbound probe, or a certificate checked inbound.
async fn partner_test(
    relay: &Relay,
    running: Option<&EdgeConfig>,
    test: &pb::PartnerTest,
) -> Result<pb::CertificateResult, String> {
    let config = running.ok_or("this edge has no configuration yet")?;
    let report = if test.inbound {
        relay.delivery.test_inbound_certificate(config, &test.certificates, &test.domain).await
    } else {
        relay.delivery.test_partner(config, relay.queue.settings(), &test.domain).await
    };
    Ok(pb::CertificateResult { partner_test: Some(report), ..Default::default() })
}

fn to_proto(message: crate::queue::QueuedMessage) -> pb::QueuedMessage {
    let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    pb::QueuedMessage {
        id: message.id,
        sender: message.sender,
        pending: message.pending,
        size: message.size,
        arrival_unix_seconds: unix(message.arrival),
        attempts: message.attempts,
        next_attempt_in_seconds: message.next_attempt_in.as_secs(),
        last_error: message.last_error.unwrap_or_default(),
    }
}

fn no_message(id: &str) -> String {
    format!("no queued message {id} on this edge (dsctl queue list shows what is queued)")
}
