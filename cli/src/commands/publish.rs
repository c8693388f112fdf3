//! `dsctl publish …`: the records other mail servers need to secure mail to this
//! organization — DANE TLSA (RFC 7672), MTA-STS (RFC 8461), TLS-RPT (RFC 8460) —
//! printed as zone-file lines (comments start with `;`), or JSON with `-o json`.

use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use proto::admin as pb;
use serde_json::json;

use super::Context;
use crate::output::Format;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// DANE TLSA records "3 1 1" (DANE-EE, SubjectPublicKeyInfo, SHA-256) for each
    /// edge's SMTP certificates, at each name senders reach the edge by: its FQDN and
    /// the FQDN of each receive connector open to the internet (no remote IP ranges).
    /// A certificate on the edge that is newer than its SMTP certificate, valid and not
    /// enabled yet gets its record too, marked "next": publish both, wait for the DNS
    /// TTL, then `dsctl cert enable` it (RFC 7671 section 8.1). The controller remembers
    /// what it printed; `cert enable` warns when a key matches none of it. Any role.
    Tlsa {
        /// Only this edge.
        #[arg(long)]
        edge: Option<String>,
        /// The port in the owner name (_PORT._tcp); senders use 25 for MX hosts.
        #[arg(long, default_value_t = 25)]
        port: u32,
    },
    /// The MTA-STS policy (mx: the host names of every edge with a receive connector
    /// open to the internet, as for TLSA) and the `_mta-sts` TXT record of each
    /// accepted domain. The controller stores the policy, with a new id whenever its
    /// text changes (run this again after edges or connectors change, and publish the
    /// new TXT records), and serves it on `domainsec-controller serve --mta-sts-listen`;
    /// point mta-sts.DOMAIN of each accepted domain there, with a certificate valid for
    /// those names. Org-admin.
    MtaSts {
        /// enforce: senders refuse MX hosts without valid TLS; testing: they deliver
        /// and report; none: withdraw the policy.
        #[arg(long, value_enum)]
        mode: MtaStsMode,
        /// How long senders cache the policy, e.g. 7d, 1d; at most 31557600 s (about a year).
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        max_age: Duration,
    },
    /// The TLS-RPT record (`_smtp._tls`) of each accepted domain: where senders send
    /// their daily reports on TLS to this organization (DANE and MTA-STS failures). Any role.
    TlsRpt {
        /// Where reports go: mailto:ADDRESS or https://URL (repeatable, or comma-separated).
        #[arg(long, required = true, value_delimiter = ',')]
        rua: Vec<String>,
    },
}

/// `--mode` of `publish mta-sts`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MtaStsMode {
    /// Senders refuse to deliver to an MX host without TLS valid for its name.
    Enforce,
    /// Senders deliver anyway and report failures (TLS-RPT).
    Testing,
    /// No policy: senders drop the one they cached.
    None,
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Tlsa { edge, port } => tlsa(context, edge.unwrap_or_default(), port).await,
        Command::MtaSts { mode, max_age } => mta_sts(context, mode, max_age).await,
        Command::TlsRpt { rua } => tls_rpt(context, rua).await,
    }
}

async fn tlsa(context: &mut Context, edge: String, port: u32) -> anyhow::Result<()> {
    let answer = context.client.publish_tlsa(pb::PublishTlsaRequest { edge, port }).await?.into_inner();
    if context.format == Format::Json {
        let records: Vec<_> = answer
            .records
            .iter()
            .map(|r| {
                json!({
                    "edge": r.edge,
                    "owner": r.owner,
                    "usage": 3, "selector": 1, "matching_type": 1,
                    "spki_sha256": r.spki_sha256,
                    "thumbprint": r.thumbprint,
                    "next": r.next,
                    "not_after": r.not_after,
                    "line": r.line,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({ "records": records, "notes": answer.notes }))?);
        return Ok(());
    }
    print!("{}", tlsa_zone(&answer));
    Ok(())
}

/// Zone-file lines, each certificate introduced by a comment.
fn tlsa_zone(answer: &pb::PublishTlsaResponse) -> String {
    let mut out = String::new();
    let mut last: Option<(&str, &str)> = None;
    for record in &answer.records {
        if last != Some((&record.edge, &record.thumbprint)) {
            let state = if record.next { "not enabled yet" } else { "enabled for SMTP" };
            out.push_str(&format!(
                "; edge {}: certificate {} ({state}, not after {})\n",
                record.edge, record.thumbprint, record.not_after
            ));
            last = Some((&record.edge, &record.thumbprint));
        }
        out.push_str(&record.line);
        if record.next {
            out.push_str(" ; next certificate, publish before enabling");
        }
        out.push('\n');
    }
    for note in &answer.notes {
        out.push_str(&format!("; {note}\n"));
    }
    out
}

async fn mta_sts(context: &mut Context, mode: MtaStsMode, max_age: Duration) -> anyhow::Result<()> {
    let mode = match mode {
        MtaStsMode::Enforce => "enforce",
        MtaStsMode::Testing => "testing",
        MtaStsMode::None => "none",
    };
    let request = pb::PublishMtaStsRequest { mode: mode.to_owned(), max_age_seconds: Some(max_age.as_secs()) };
    let answer = context.client.publish_mta_sts(request).await?.into_inner();
    if context.format == Format::Json {
        let value = json!({
            "mode": answer.mode,
            "max_age_seconds": answer.max_age_seconds,
            "id": answer.id,
            "changed": answer.changed,
            "published_at": answer.published_at,
            "mx": answer.mx,
            "records": txt_json(&answer.records),
            "policy": answer.policy,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let state = if answer.changed { "new" } else { "unchanged, id kept" };
    let mut out = format!("; MTA-STS policy id {} ({state}; published {})\n", answer.id, answer.published_at);
    out.push_str(&txt_lines(&answer.records));
    out.push_str(
        "; the policy, served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt by domainsec-controller serve \
         --mta-sts-listen:\n",
    );
    for line in answer.policy.lines() {
        out.push_str(&format!("; {line}\n"));
    }
    print!("{out}");
    Ok(())
}

async fn tls_rpt(context: &mut Context, rua: Vec<String>) -> anyhow::Result<()> {
    let answer = context.client.publish_tls_rpt(pb::PublishTlsRptRequest { rua }).await?.into_inner();
    if context.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&json!({ "records": txt_json(&answer.records) }))?);
        return Ok(());
    }
    print!("{}", txt_lines(&answer.records));
    Ok(())
}

fn txt_lines(records: &[pb::DnsRecord]) -> String {
    if records.is_empty() {
        return "; no accepted domain to publish for (dsctl accepted-domain add)\n".to_owned();
    }
    records.iter().map(|r| format!("{}\n", r.line)).collect()
}

fn txt_json(records: &[pb::DnsRecord]) -> Vec<serde_json::Value> {
    records.iter().map(|r| json!({ "domain": r.domain, "owner": r.owner, "line": r.line })).collect()
}
