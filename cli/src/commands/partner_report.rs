//! `dsctl partner report`: the fleet's view of each partner, as a table, JSON, or
//! RFC 8460 (SMTP TLS Reporting) aggregate reports.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::admin as pb;
use serde_json::{Value, json};

use super::{
    Context,
    partner::{ReportArgs, ReportFormat},
};
use crate::output::{self, Format};

pub async fn run(context: &mut Context, args: ReportArgs) -> anyhow::Result<()> {
    let request = pb::PartnerReportRequest {
        since_seconds: args.since.as_secs().max(1),
        domain: args.domain.clone().unwrap_or_default(),
        expiring_within_days: u32::try_from(args.expiring_within.as_secs().div_ceil(86_400)).unwrap_or(u32::MAX).max(1),
    };
    let report = context.client.partner_report(request).await?.into_inner();
    match (args.report_format, context.format) {
        (ReportFormat::Tlsrpt, _) => {
            let contact = match args.contact {
                Some(contact) => contact,
                None => default_contact(context).await?,
            };
            println!("{}", serde_json::to_string_pretty(&tls_reports(&report, &contact))?);
        }
        (ReportFormat::Report, Format::Json) => println!("{}", serde_json::to_string_pretty(&report_json(&report))?),
        (ReportFormat::Report, Format::Table) => print!("{}", table(&report)),
    }
    Ok(())
}

async fn default_contact(context: &mut Context) -> anyhow::Result<String> {
    let domains =
        context.client.list_accepted_domains(pb::ListAcceptedDomainsRequest {}).await?.into_inner().accepted_domains;
    match domains.iter().map(|d| d.domain.trim_start_matches("*.")).next() {
        Some(domain) => Ok(format!("postmaster@{domain}")),
        None => anyhow::bail!("no accepted domain to derive contact-info from: pass --contact ADDRESS"),
    }
}

fn report_json(report: &pb::PartnerReportResponse) -> Value {
    json!({
        "organization": report.organization,
        "start": rfc3339(report.start_unix),
        "end": rfc3339(report.end_unix),
        "partners": report.partners.iter().map(|p| json!({
            "partner": p.partner,
            "received": p.received,
            "sent": p.sent,
            "outbound_sessions": p.outbound_sessions,
            "outbound_failures": p.outbound_failures,
            "inbound_refusals": p.inbound_refusals,
            "reasons": p.reasons,
            "edges": p.edges,
            "certificates": p.certificates.iter().map(|c| json!({
                "sha256": c.sha256,
                "subject": c.subject,
                "issuer": c.issuer,
                "not_after": rfc3339(c.not_after_unix),
                "last_seen": rfc3339(c.last_seen_unix),
                "edges": c.edges,
                "expiring": c.expiring,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "edge_certificates": report.edge_certificates.iter().map(|c| json!({
            "edge": c.edge,
            "thumbprint": c.thumbprint,
            "subject": c.subject,
            "not_after": rfc3339(c.not_after_unix),
            "expiring": c.expiring,
        })).collect::<Vec<_>>(),
    })
}

/// One RFC 8460 aggregate report per partner: this organization's outbound sessions
/// to it (successes and failures by result type). A domain the edges reached under
/// DANE or MTA-STS (its `policy.*` or `outbound.dane.*` / `outbound.mta-sts*` rows) reports
/// `tlsa` or `sts`; Domain Security is neither, so a secure-list partner reports
/// `no-policy-found` with the list entry in `policy-string`.
fn tls_reports(report: &pb::PartnerReportResponse, contact: &str) -> Vec<Value> {
    report
        .partners
        .iter()
        .filter(|partner| !partner.partner.starts_with('('))
        .map(|partner| {
            let mut failures: std::collections::BTreeMap<&'static str, u64> = std::collections::BTreeMap::new();
            for (reason, count) in &partner.reasons {
                if let Some(outbound) = reason.strip_prefix("outbound.") {
                    *failures.entry(result_type(outbound)).or_default() += count;
                }
            }
            let domain = partner.partner.trim_start_matches("*.");
            let (policy_type, policy_string) = policy_of(partner);
            json!({
                "organization-name": report.organization,
                "date-range": { "start-datetime": rfc3339(report.start_unix), "end-datetime": rfc3339(report.end_unix) },
                "contact-info": contact,
                "report-id": format!("{}_{}@{}", rfc3339(report.start_unix), domain, report.organization),
                "policies": [{
                    "policy": {
                        "policy-type": policy_type,
                        "policy-string": [policy_string],
                        "policy-domain": domain,
                    },
                    "summary": {
                        "total-successful-session-count": partner.outbound_sessions,
                        "total-failure-session-count": partner.outbound_failures,
                    },
                    "failure-details": failures.iter().map(|(result_type, count)| json!({
                        "result-type": result_type,
                        "failed-session-count": count,
                    })).collect::<Vec<_>>(),
                }],
            })
        })
        .collect()
}

/// The RFC 8460 policy type of a partner row, and its policy string.
fn policy_of(partner: &pb::PartnerSummary) -> (&'static str, String) {
    let seen = |prefixes: &[&str]| partner.reasons.keys().any(|key| prefixes.iter().any(|p| key.starts_with(p)));
    if seen(&["policy.dane", "outbound.dane."]) {
        ("tlsa", format!("DANE (RFC 7672): TLSA records of the MX hosts of {}", partner.partner))
    } else if seen(&["policy.mta-sts", "outbound.mta-sts"]) {
        ("sts", format!("MTA-STS (RFC 8461) policy of {}", partner.partner))
    } else {
        ("no-policy-found", format!("Domain Security (mutual TLS): TLSSendDomainSecureList entry {}", partner.partner))
    }
}

/// RFC 8460 §4.3 result types for the edge's outbound failure reasons.
fn result_type(reason: &str) -> &'static str {
    match reason {
        "dane.starttls-not-offered" | "mta-sts.starttls-not-offered" | "mta-sts-testing.starttls-not-offered" => {
            "starttls-not-supported"
        }
        "dane.no-match" | "dane.chain" => "tlsa-invalid",
        "dane.lookup-failed" => "dnssec-invalid",
        "dane.name-mismatch" => "certificate-host-mismatch",
        "mta-sts.certificate" | "mta-sts-testing.certificate" => "sts-webpki-invalid",
        "starttls-not-offered" | "starttls-refused" => "starttls-not-supported",
        "name-mismatch" | "name-constrained" => "certificate-host-mismatch",
        "expired" => "certificate-expired",
        "not-trusted" => "certificate-not-trusted",
        _ => "validation-failure",
    }
}

fn table(report: &pb::PartnerReportResponse) -> String {
    let mut out = format!(
        "{}: partners from {} to {}\n",
        report.organization,
        rfc3339(report.start_unix),
        rfc3339(report.end_unix)
    );
    let rows: Vec<Vec<String>> = report
        .partners
        .iter()
        .map(|p| {
            let reasons: Vec<String> = p.reasons.iter().map(|(reason, count)| format!("{reason}={count}")).collect();
            vec![
                p.partner.clone(),
                p.received.to_string(),
                p.sent.to_string(),
                p.outbound_sessions.to_string(),
                p.outbound_failures.to_string(),
                p.inbound_refusals.to_string(),
                if reasons.is_empty() { "-".to_owned() } else { reasons.join(" ") },
            ]
        })
        .collect();
    out.push_str(&output::table(
        &["PARTNER", "RECEIVED", "SENT", "SESSIONS OUT", "FAILED OUT", "REFUSED IN", "REASONS"],
        rows,
    ));
    let certificates: Vec<Vec<String>> = report
        .partners
        .iter()
        .flat_map(|p| p.certificates.iter().map(move |c| (p, c)))
        .map(|(p, c)| {
            vec![
                p.partner.clone(),
                c.subject.clone(),
                c.issuer.clone(),
                format!("{}{}", rfc3339(c.not_after_unix), if c.expiring { "  EXPIRES SOON" } else { "" }),
                rfc3339(c.last_seen_unix),
                c.sha256.get(..16).unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    if !certificates.is_empty() {
        out.push_str("\nPartner certificates seen\n");
        out.push_str(&output::table(
            &["PARTNER", "SUBJECT", "ISSUER", "NOT AFTER", "LAST SEEN", "SHA-256"],
            certificates,
        ));
    }
    let own: Vec<Vec<String>> = report
        .edge_certificates
        .iter()
        .map(|c| {
            vec![
                c.edge.clone(),
                c.thumbprint.clone(),
                c.subject.clone(),
                format!("{}{}", rfc3339(c.not_after_unix), if c.expiring { "  EXPIRES SOON" } else { "" }),
            ]
        })
        .collect();
    if !own.is_empty() {
        out.push_str("\nThis organization's SMTP certificates\n");
        out.push_str(&output::table(&["EDGE", "THUMBPRINT", "SUBJECT", "NOT AFTER"], own));
    }
    out
}

fn rfc3339(unix: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(time.min(SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799)))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner(name: &str, reasons: &[(&str, u64)]) -> pb::PartnerSummary {
        pb::PartnerSummary {
            partner: name.into(),
            outbound_sessions: 2,
            outbound_failures: 1,
            reasons: reasons.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn tls_reports_name_the_policy_type_the_edges_used() {
        let report = pb::PartnerReportResponse {
            organization: "Contoso".into(),
            partners: vec![
                partner("ee.dane.test", &[("policy.dane", 2), ("outbound.dane.no-match", 1)]),
                partner("enforce.sts.test", &[("policy.mta-sts", 2), ("outbound.mta-sts.certificate", 1)]),
                partner("woodgrovebank.com", &[("outbound.revoked", 1)]),
            ],
            ..Default::default()
        };
        let reports = tls_reports(&report, "mailto:tlsrpt@contoso.com");
        let policy = |i: usize| reports[i]["policies"][0].clone();
        assert_eq!(policy(0)["policy"]["policy-type"], "tlsa");
        assert_eq!(policy(0)["failure-details"][0]["result-type"], "tlsa-invalid");
        assert_eq!(policy(1)["policy"]["policy-type"], "sts");
        assert_eq!(policy(1)["failure-details"][0]["result-type"], "sts-webpki-invalid");
        assert_eq!(policy(2)["policy"]["policy-type"], "no-policy-found");
        assert_eq!(policy(0)["summary"]["total-successful-session-count"], 2);
    }
}
