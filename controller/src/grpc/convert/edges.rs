//! Protobuf ↔ model conversion for edges, fleet status, certificates and trusted roots.

use domainsec_model::{DomainPattern, InvalidField, ObjectName, parse_set};
use proto::admin as pb;

use super::object_name;

/// Encodes a new subscription.
pub fn subscription(subscription: crate::directory::NewSubscription) -> pb::Subscription {
    pb::Subscription {
        organization: subscription.organization,
        edge: subscription.edge,
        fqdn: subscription.fqdn,
        endpoints: subscription.endpoints,
        controller_sha256: subscription.controller_sha256,
        secret: subscription.secret,
        expires_at: subscription.expires_at.to_rfc3339(),
    }
}

/// Encodes fleet status.
pub fn fleet_status(version: u64, entries: Vec<crate::directory::FleetEntry>) -> pb::FleetStatusResponse {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let number = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or_default();
    pb::FleetStatusResponse {
        current_version: version,
        edges: entries
            .into_iter()
            .map(|entry| {
                let state = entry.row.state;
                let horizon = chrono::Utc::now() + chrono::Duration::days(crate::directory::EXPIRY_WATCH_DAYS);
                pb::EdgeStatus {
                    certificate_not_after: time(entry.certificate_not_after),
                    certificate_expiring: entry.certificate_not_after.is_some_and(|t| t <= horizon),
                    name: entry.row.name,
                    fqdn: entry.row.fqdn,
                    state: if entry.row.subscribed { "subscribed" } else { "pending" }.to_owned(),
                    connected: entry.connected,
                    connected_since: if entry.connected { time(state.connected_since) } else { String::new() },
                    controller: if entry.connected { state.controller.unwrap_or_default() } else { String::new() },
                    version_sent: number(state.last_version_sent),
                    version_acked: number(state.last_version_acked),
                    nack_version: number(state.last_nack_version),
                    nack_reason: state.last_nack_reason.unwrap_or_default(),
                    last_heartbeat: time(state.last_heartbeat_at),
                    counters: state.counters.map(|c| c.0.into_iter().collect()).unwrap_or_default(),
                    queue_length: number(state.queue_length),
                    last_seen: time(state.last_seen_at),
                }
            })
            .collect(),
    }
}

/// Encodes a forced sync's results.
pub fn sync_results(version: u64, outcomes: Vec<(String, crate::directory::EdgeSyncOutcome)>) -> pb::SyncEdgesResponse {
    use crate::directory::EdgeSyncOutcome;
    pb::SyncEdgesResponse {
        version,
        results: outcomes
            .into_iter()
            .map(|(edge, outcome)| {
                let (outcome, version_acked, reason) = match outcome {
                    EdgeSyncOutcome::Acked(v) => ("acked", v, String::new()),
                    EdgeSyncOutcome::Nacked(v, reason) => ("nacked", v, reason),
                    EdgeSyncOutcome::NotConnected => ("not-connected", 0, String::new()),
                    EdgeSyncOutcome::Timeout => ("timeout", 0, String::new()),
                };
                pb::EdgeSyncResult { edge, outcome: outcome.to_owned(), version_acked, reason }
            })
            .collect(),
    }
}

/// Encodes sync tests.
pub fn sync_tests(version: u64, tests: Vec<crate::directory::EdgeSyncTest>) -> pb::TestEdgeSyncResponse {
    pb::TestEdgeSyncResponse {
        current_version: version,
        edges: tests
            .into_iter()
            .map(|t| pb::EdgeSyncTest {
                edge: t.edge,
                in_sync: t.in_sync,
                version_acked: t.version_acked,
                differing_sections: t.differing_sections,
                detail: t.detail,
            })
            .collect(),
    }
}

/// Parses optional edge names (`names[i]`); empty means all.
pub fn edge_names(names: &[String]) -> Result<Option<Vec<ObjectName>>, InvalidField> {
    if names.is_empty() {
        return Ok(None);
    }
    parse_set("names", names, true, ObjectName::parse).map(Some)
}

// --- certificates ---

/// Parses a New-ExchangeCertificate request.
pub fn new_certificate(request: pb::NewCertificateRequest) -> Result<crate::directory::NewCertificate, InvalidField> {
    let subject = match request.subject_name.trim() {
        "" => None,
        text => {
            Some(domainsec_model::SubjectName::parse(text).map_err(|e| InvalidField::new("subject_name", text, e))?)
        }
    };
    let key_algorithm = key_algorithm(&request.key_algorithm)?;
    Ok(crate::directory::NewCertificate {
        edge: object_name("edge", &request.edge)?,
        subject,
        domain_names: parse_set("domain_names", &request.domain_names, false, DomainPattern::parse)?,
        include_accepted_domains: request.include_accepted_domains,
        friendly_name: request.friendly_name,
        generate_request: request.generate_request,
        key_algorithm,
        services: services(&request.services)?,
    })
}

/// Checks a key algorithm name.
pub fn key_algorithm(value: &str) -> Result<String, InvalidField> {
    let key_algorithm = match value {
        "" | "ecdsa-p256" => "ecdsa-p256",
        "ecdsa-p384" => "ecdsa-p384",
        "rsa2048" => "rsa2048",
        "rsa3072" => "rsa3072",
        other => {
            return Err(InvalidField::new(
                "key_algorithm",
                other,
                "expected ecdsa-p256, ecdsa-p384, rsa2048 or rsa3072",
            ));
        }
    };
    Ok(key_algorithm.to_owned())
}

/// Parses the services a certificate is enabled for (`smtp`).
pub fn services(values: &[String]) -> Result<Vec<String>, InvalidField> {
    parse_set("services", values, false, |value| match value.to_ascii_lowercase().as_str() {
        "smtp" => Ok("smtp".to_owned()),
        _ => Err("the only service is smtp"),
    })
}

/// Checks a thumbprint: 40 hex digits (SHA-1, spaces and colons allowed) or `pending:ID`.
pub fn thumbprint(value: &str) -> Result<String, InvalidField> {
    if let Some(id) = value.strip_prefix("pending:") {
        return uuid::Uuid::parse_str(id).map(|id| format!("pending:{id}")).map_err(|_| {
            InvalidField::new("thumbprint", value, "a pending request is named pending:ID (dsctl cert get)")
        });
    }
    let hex: String = value.chars().filter(|c| !matches!(c, ' ' | ':')).collect();
    if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(InvalidField::new(
            "thumbprint",
            value,
            "expected the 40 hex digits of the SHA-1 thumbprint (dsctl cert get)",
        ));
    }
    Ok(hex.to_ascii_uppercase())
}

/// Encodes a task.
pub fn certificate_task(task: &crate::db::certificates::Task) -> pb::CertificateTask {
    pb::CertificateTask {
        id: task.id.to_string(),
        edge: task.edge.clone(),
        kind: task.kind.clone(),
        state: task.state.clone(),
        error: task.error.clone().unwrap_or_default(),
        request_pem: task.request_pem.clone().unwrap_or_default(),
        thumbprint: task.thumbprint.clone().unwrap_or_default(),
        requested_by: task.requested_by.clone(),
        created_at: task.created_at.to_rfc3339(),
        finished_at: task.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        steps: task.steps.clone(),
        verified: task.verified.unwrap_or(false),
    }
}

/// Encodes a mirrored certificate.
pub fn edge_certificate(c: crate::db::certificates::EdgeCertificate) -> pb::EdgeCertificate {
    pb::EdgeCertificate {
        edge: c.edge,
        thumbprint: c.thumbprint,
        sha256: c.sha256,
        subject: c.subject,
        issuer: c.issuer,
        serial: c.serial,
        dns_names: c.dns_names,
        not_before: c.not_before,
        not_after: c.not_after,
        services: c.services,
        key_status: c.key_status,
        friendly_name: c.friendly_name,
        certificate_pem: c.certificate_pem,
    }
}

/// Encodes a trusted root.
pub fn trusted_root(root: &crate::db::trusted_roots::TrustedRoot, version: u64) -> pb::TrustedRoot {
    pb::TrustedRoot {
        sha256: root.sha256.clone(),
        subject: root.subject.clone(),
        edges: root.edges.clone().unwrap_or_default(),
        added_by: root.added_by.clone(),
        added_at: root.added_at.to_rfc3339(),
        config_version: version,
    }
}
