//! `dsctl partner test`: will a partner pass Domain Security, before it is trusted?

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use proto::{admin as pb, edge as edge_pb};
use serde::Serialize;

use super::Context;
use crate::{exit::Incomplete, output::Format};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Test DOMAIN as a Domain Security partner from an edge: the route a delivery
    /// would take, each next hop's STARTTLS with this edge's certificate, and the
    /// partner's certificate checked exactly as a delivery checks it; QUIT, no mail
    /// sent. With --inbound, check a certificate the partner sent against the
    /// receive rules instead. Exits 1 when the partner would fail.
    Test(TestArgs),
    /// Per partner across every edge: Domain-Secured messages in and out, sessions,
    /// failures by direction and reason, the certificates the partner presented; and
    /// certificates (partners' and the edges' own) that expire soon, flagged. Any role.
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The period, back from now, e.g. 24h, 7d (at most 30d, the retention).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub(super) since: std::time::Duration,
    /// Only this partner (its secure-list entry).
    #[arg(long)]
    pub(super) domain: Option<String>,
    /// Flag certificates that expire within this, e.g. 30d.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    pub(super) expiring_within: std::time::Duration,
    /// `report` (a table, or JSON with -o json) or `tlsrpt`: one RFC 8460 SMTP TLS
    /// Reporting aggregate report per partner domain (JSON, outbound sessions).
    #[arg(long = "format", value_enum, default_value_t = ReportFormat::Report)]
    pub(super) report_format: ReportFormat,
    /// With --format tlsrpt: the report's contact-info [default: postmaster@ the first accepted domain].
    #[arg(long)]
    pub(super) contact: Option<String>,
}

/// `--format` of `partner report`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum ReportFormat {
    /// The fleet-wide partner report.
    Report,
    /// RFC 8460 aggregate reports, one per partner domain.
    Tlsrpt,
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The partner's domain, e.g. woodgrovebank.com.
    domain: String,
    /// The edge to test from [default: the organization's only edge].
    #[arg(long)]
    edge: Option<String>,
    /// Check a certificate the partner sent (--certificate) as the receive side would.
    #[arg(long, requires = "certificate")]
    inbound: bool,
    /// With --inbound: the partner's certificate file (PEM, leaf first, or DER).
    #[arg(long, requires = "inbound")]
    certificate: Option<PathBuf>,
}

#[derive(Serialize)]
struct ReportView {
    edge: String,
    domain: String,
    direction: &'static str,
    passed: bool,
    reply: String,
    steps: Vec<String>,
    hosts: Vec<HostView>,
}

#[derive(Serialize)]
struct HostView {
    host: String,
    preference: u32,
    address: String,
    passed: bool,
    failure: String,
    reply: String,
    steps: Vec<String>,
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Test(args) => test(context, args).await,
        Command::Report(args) => super::partner_report::run(context, args).await,
    }
}

async fn test(context: &mut Context, args: TestArgs) -> anyhow::Result<()> {
    let edge = match args.edge {
        Some(edge) => edge,
        None => super::policy::only_edge(context).await?,
    };
    let certificate = match &args.certificate {
        Some(path) => std::fs::read(path).with_context(|| format!("read --certificate {}", path.display()))?,
        None => Vec::new(),
    };
    let request =
        pb::TestPartnerRequest { edge: edge.clone(), domain: args.domain, inbound: args.inbound, certificate };
    let wait = std::time::Duration::from_secs(60);
    let call = context.client.test_partner(crate::client::waiting(request, wait));
    let response = if context.format == Format::Table {
        crate::output::with_progress("testing the partner from the edge", wait, call).await?
    } else {
        call.await?
    };
    let report = response.into_inner().report.unwrap_or_default();
    let view = view(edge, args.inbound, report);
    match context.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&view)?),
        Format::Table => print!("{}", text(&view)),
    }
    if !view.passed {
        return Err(Incomplete::PartnerFails { domain: view.domain, reply: view.reply }.into());
    }
    Ok(())
}

fn view(edge: String, inbound: bool, report: edge_pb::PartnerTestReport) -> ReportView {
    ReportView {
        edge,
        domain: report.domain,
        direction: if inbound { "inbound" } else { "outbound" },
        passed: report.passed,
        reply: report.reply,
        steps: report.steps,
        hosts: report
            .hosts
            .into_iter()
            .map(|host| HostView {
                host: host.host,
                preference: host.preference,
                address: host.address,
                passed: host.passed,
                failure: host.failure,
                reply: host.reply,
                steps: host.steps,
            })
            .collect(),
    }
}

/// For people: the common steps, then each host's, then the verdict.
fn text(view: &ReportView) -> String {
    let mut out = format!("partner {} from edge {} ({})\n", view.domain, view.edge, view.direction);
    for step in &view.steps {
        out.push_str(&format!("  {step}\n"));
    }
    for host in &view.hosts {
        let verdict = if host.passed { "PASS".to_owned() } else { format!("FAIL ({})", host.failure) };
        out.push_str(&format!("{} [{}] preference {}: {verdict}\n", host.host, host.address, host.preference));
        for step in &host.steps {
            out.push_str(&format!("  {step}\n"));
        }
    }
    let verdict = if view.passed { "PASS" } else { "FAIL" };
    out.push_str(&format!("verdict: {verdict}: {}\n", view.reply));
    out
}
