//! `dsctl policy explain`: what an edge would do with one envelope, and why.

use clap::{Subcommand, ValueEnum};
use proto::{admin as pb, edge as edge_pb};
use serde::Serialize;

use super::Context;
use crate::output::{self, Format};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explain the decisions for mail from --from to --to through an edge: receive
    /// connector and permission, inbound Domain Security, route, outbound Domain
    /// Security, the certificate presented. Evaluated on the edge by the relay's own
    /// decision functions; no network, nothing sent. Any role.
    Explain(ExplainArgs),
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Envelope sender, e.g. kim@woodgrovebank.com; "<>" for the null sender.
    #[arg(long)]
    from: String,
    /// Envelope recipient, e.g. ted@contoso.com.
    #[arg(long)]
    to: String,
    /// The edge [default: the organization's only edge].
    #[arg(long)]
    edge: Option<String>,
    /// The connecting client's IP address [default: an internet client, 203.0.113.7].
    #[arg(long)]
    client_ip: Option<String>,
    /// The local ip:port the client connects to [default: every binding of the edge].
    #[arg(long)]
    binding: Option<String>,
    /// Which configuration to evaluate.
    #[arg(long = "config", value_enum, default_value_t = Config::Running)]
    config: Config,
}

/// `--config`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Config {
    /// The snapshot the edge runs now.
    Running,
    /// The directory's current configuration (what the edge will run after the next push).
    Current,
}

/// The explanation as printed with `-o json`.
#[derive(Serialize)]
struct ExplanationView {
    edge: String,
    config_version: u64,
    evaluated: &'static str,
    inbound: Vec<InboundView>,
    outbound: Option<OutboundView>,
}

#[derive(Serialize)]
struct InboundView {
    receive_connector: String,
    binding: String,
    domain_security: &'static str,
    entry: String,
    reason: String,
    plain_text: OutcomeView,
    with_partner_certificate: OutcomeView,
    permission: String,
    relay: String,
    relay_entry: String,
    certificate: Option<CertificateView>,
}

#[derive(Serialize)]
struct OutboundView {
    route: String,
    send_connector: String,
    routing: String,
    domain_security: &'static str,
    entry: String,
    reason: String,
    certificate: Option<CertificateView>,
    /// The policy source deliveries follow (Domain Security, DANE, MTA-STS, opportunistic TLS).
    tls_policy: String,
    tls_policy_detail: String,
}

#[derive(Serialize)]
struct OutcomeView {
    accepted: bool,
    domain_secured: bool,
    stage: String,
    reply: String,
}

#[derive(Serialize)]
struct CertificateView {
    thumbprint: String,
    names: Vec<String>,
    chosen_for: String,
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Explain(args) => explain(context, args).await,
    }
}

async fn explain(context: &mut Context, args: ExplainArgs) -> anyhow::Result<()> {
    let edge = match args.edge {
        Some(edge) => edge,
        None => only_edge(context).await?,
    };
    let request = pb::ExplainPolicyRequest {
        edge: edge.clone(),
        from: args.from,
        to: args.to,
        client_ip: args.client_ip.unwrap_or_default(),
        binding: args.binding.unwrap_or_default(),
        current_config: matches!(args.config, Config::Current),
    };
    let response = context.client.explain_policy(request).await?.into_inner();
    let explanation = response.explanation.unwrap_or_default();
    let evaluated = match args.config {
        Config::Running => "the configuration the edge runs",
        Config::Current => "the directory's current configuration",
    };
    let view = ExplanationView {
        edge,
        config_version: explanation.config_version,
        evaluated,
        inbound: explanation.inbound.into_iter().map(inbound_view).collect(),
        outbound: explanation.outbound.map(outbound_view),
    };
    match context.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&view)?),
        Format::Table => print!("{}", text(&view)),
    }
    Ok(())
}

/// The edge when none is named: the organization's only one.
pub(super) async fn only_edge(context: &mut Context) -> anyhow::Result<String> {
    let edges = context.client.list_edges(pb::ListEdgesRequest {}).await?.into_inner().edges;
    match edges.as_slice() {
        [only] => Ok(only.name.clone()),
        [] => anyhow::bail!("the organization has no edge yet; add one with dsctl edge add"),
        several => {
            let names: Vec<&str> = several.iter().map(|e| e.name.as_str()).collect();
            anyhow::bail!("name the edge with --edge (edges: {})", names.join(", "))
        }
    }
}

fn rule_word(rule: i32) -> &'static str {
    match edge_pb::DomainSecurityRule::try_from(rule) {
        Ok(edge_pb::DomainSecurityRule::Required) => "required",
        Ok(edge_pb::DomainSecurityRule::Malformed) => "malformed-sender",
        Ok(edge_pb::DomainSecurityRule::NotRequired) => "not-required",
        _ => "unknown",
    }
}

fn inbound_view(inbound: edge_pb::InboundExplanation) -> InboundView {
    InboundView {
        receive_connector: inbound.connector,
        binding: inbound.binding,
        domain_security: rule_word(inbound.rule),
        entry: inbound.entry,
        reason: inbound.reason,
        plain_text: outcome_view(inbound.plain_text.unwrap_or_default()),
        with_partner_certificate: outcome_view(inbound.with_partner_certificate.unwrap_or_default()),
        permission: inbound.permission,
        relay: inbound.relay,
        relay_entry: inbound.relay_entry,
        certificate: inbound.certificate.map(certificate_view),
    }
}

fn outbound_view(outbound: edge_pb::OutboundExplanation) -> OutboundView {
    OutboundView {
        route: outbound.route,
        send_connector: outbound.send_connector,
        routing: outbound.routing,
        domain_security: rule_word(outbound.rule),
        entry: outbound.entry,
        reason: outbound.reason,
        certificate: outbound.certificate.map(certificate_view),
        tls_policy: outbound.tls_policy,
        tls_policy_detail: outbound.tls_policy_detail,
    }
}

fn outcome_view(outcome: edge_pb::PolicyOutcome) -> OutcomeView {
    OutcomeView {
        accepted: outcome.accepted,
        domain_secured: outcome.domain_secured,
        stage: outcome.stage,
        reply: outcome.reply,
    }
}

fn certificate_view(certificate: edge_pb::PresentedCertificate) -> CertificateView {
    CertificateView { thumbprint: certificate.thumbprint, names: certificate.names, chosen_for: certificate.chosen_for }
}

/// The explanation for people: one block per direction, `key  value` lines.
fn text(view: &ExplanationView) -> String {
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut push = |key: &str, value: String| lines.push((key.to_owned(), value));
    push("edge", format!("{} (configuration version {}, {})", view.edge, view.config_version, view.evaluated));
    if view.inbound.is_empty() {
        push("inbound", "no receive connector of this edge takes this client: the connection is refused".to_owned());
    }
    for inbound in &view.inbound {
        push("receive connector", format!("{} on {}", inbound.receive_connector, inbound.binding));
        push(
            "inbound DS",
            rule_text(inbound.domain_security, &inbound.entry, &inbound.reason, "TLSReceiveDomainSecureList"),
        );
        push("  over plain text", outcome_text(&inbound.plain_text));
        if inbound.domain_security == "required" {
            push("  with a partner cert", outcome_text(&inbound.with_partner_certificate));
        }
        let permission = if inbound.permission.is_empty() {
            "none grants this sender".to_owned()
        } else {
            inbound.permission.clone()
        };
        push("  permission", permission);
        let relay = match inbound.relay.as_str() {
            "organization-servers" => "any domain (exchange-servers)".to_owned(),
            "accepted-domain" => format!("accepted domain {}", inbound.relay_entry),
            _ => "refused: not an accepted domain (no open relay)".to_owned(),
        };
        push("  recipient", relay);
        push("  STARTTLS cert", certificate_text(inbound.certificate.as_ref()));
    }
    match &view.outbound {
        None => push("outbound", "the recipient's domain is not a valid domain name".to_owned()),
        Some(outbound) => {
            let route = match outbound.route.as_str() {
                "local" => "local delivery (accepted domain)".to_owned(),
                "connector" => format!("send connector {} ({})", outbound.send_connector, outbound.routing),
                _ => "unroutable: no send connector covers the domain (5.4.4)".to_owned(),
            };
            push("route", route);
            if outbound.route == "connector" {
                push(
                    "outbound DS",
                    rule_text(outbound.domain_security, &outbound.entry, &outbound.reason, "TLSSendDomainSecureList"),
                );
                push("  client cert", certificate_text(outbound.certificate.as_ref()));
                if !outbound.tls_policy.is_empty() {
                    push("outbound TLS", format!("{} ({})", outbound.tls_policy, outbound.tls_policy_detail));
                }
            }
        }
    }
    let width = lines.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    lines.iter().map(|(key, value)| format!("{key:<width$}  {value}\n")).collect()
}

fn rule_text(rule: &str, entry: &str, reason: &str, list: &str) -> String {
    match rule {
        "required" => format!(
            "required: entry {entry} of {list}; mutual TLS, Domain Secured when the partner's certificate passes"
        ),
        "malformed-sender" => format!("refused: the sender's domain is not a valid name under entry {entry} of {list}"),
        _ => format!("not required: {reason}"),
    }
}

fn outcome_text(outcome: &OutcomeView) -> String {
    match (outcome.accepted, outcome.domain_secured) {
        (true, true) => "accepted, Domain Secured".to_owned(),
        (true, false) => "accepted".to_owned(),
        (false, _) => format!("refused at {}: {}", outcome.stage, outcome.reply),
    }
}

fn certificate_text(certificate: Option<&CertificateView>) -> String {
    match certificate {
        Some(certificate) => {
            format!(
                "{} ({}) chosen for {}",
                certificate.thumbprint,
                output::join(&certificate.names),
                certificate.chosen_for
            )
        }
        None => "none enabled for SMTP: STARTTLS is not offered".to_owned(),
    }
}
