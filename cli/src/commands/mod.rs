//! The commands, one module per noun, mirroring the paper's cmdlets.

mod accepted_domain;
mod audit;
mod cert;
mod config;
mod counters;
mod edge;
mod fleet;
mod partner;
mod partner_report;
mod policy;
mod protocol_log;
mod publish;
mod queue;
mod receive_connector;
mod send_connector;
mod transport_config;
mod trusted_root;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{client, output::Format};

/// dsctl: configure DomainSec (Domain Security for mail between partner organizations).
#[derive(Debug, Parser)]
#[command(name = "dsctl", version)]
pub struct Cli {
    /// Admin credential bundle written by `domainsec-controller init` or `admin-cert issue`.
    #[arg(long, env = "DSCTL_CREDENTIALS", global = true)]
    credentials: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table", global = true)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Organization-wide transport settings (Set-TransportConfig).
    #[command(subcommand)]
    TransportConfig(transport_config::Command),
    /// Domains the organization accepts mail for.
    #[command(subcommand)]
    AcceptedDomain(accepted_domain::Command),
    /// Outbound routes (New-/Set-/Get-SendConnector).
    #[command(subcommand)]
    SendConnector(send_connector::Command),
    /// Inbound listeners of an edge (New-/Set-/Get-ReceiveConnector).
    #[command(subcommand)]
    ReceiveConnector(receive_connector::Command),
    /// The organization's edge servers.
    #[command(subcommand)]
    Edge(edge::Command),
    /// Edge certificates (New-/Import-/Enable-/Get-/Remove-ExchangeCertificate).
    #[command(subcommand)]
    Cert(cert::Command),
    /// CA certificates the organization trusts (private roots, cross-certificates).
    #[command(subcommand)]
    TrustedRoot(trusted_root::Command),
    /// The edges' sync state and counters.
    #[command(subcommand)]
    Fleet(fleet::Command),
    /// One edge's Domain Security counters (the paper's three, by partner and reason).
    Counters(counters::CountersArgs),
    /// An edge's relay queue (Get-Queue, Retry-Queue, Remove-Message).
    #[command(subcommand)]
    Queue(queue::Command),
    /// An edge's Send or Receive protocol log (verbose connectors).
    ProtocolLog(protocol_log::ProtocolLogArgs),
    /// Test a partner before trusting it (partner test), or report on every partner (partner report).
    #[command(subcommand)]
    Partner(partner::Command),
    /// What an edge would do with one envelope, and why (policy explain).
    #[command(subcommand)]
    Policy(policy::Command),
    /// Records others need to secure mail to this organization: DANE TLSA, MTA-STS, TLS-RPT.
    #[command(subcommand)]
    Publish(publish::Command),
    /// Recent configuration changes, newest first; `audit show ID` for one change's differences.
    Audit(audit::AuditArgs),
    /// The whole configuration as one document: export, apply (--dry-run), rollback to a version.
    #[command(subcommand)]
    Config(config::Command),
    /// Show who the credential belongs to and what it may do.
    Whoami,
    /// Print a shell completion script, e.g. `dsctl completions bash > /etc/bash_completion.d/dsctl`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What every command needs.
pub struct Context {
    /// Connected admin client.
    pub client: client::Client,
    /// Chosen output format.
    pub format: Format,
}

/// Connects and runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory as _;
        // Into a buffer first: clap_complete panics on a write error (a closed pipe).
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "dsctl", &mut script);
        return std::io::Write::write_all(&mut std::io::stdout().lock(), &script)
            .map_err(|error| anyhow::anyhow!("write the completion script: {error}"));
    }
    let credentials = cli.credentials.ok_or_else(|| {
        anyhow::anyhow!(
            "no credentials: pass --credentials FILE or set DSCTL_CREDENTIALS (the file `domainsec-controller init --out-admin` wrote)"
        )
    })?;
    let client = client::connect(&credentials).await?;
    let mut context = Context { client, format: cli.format };
    match cli.command {
        Command::TransportConfig(command) => transport_config::run(&mut context, command).await,
        Command::AcceptedDomain(command) => accepted_domain::run(&mut context, command).await,
        Command::SendConnector(command) => send_connector::run(&mut context, command).await,
        Command::ReceiveConnector(command) => receive_connector::run(&mut context, command).await,
        Command::Edge(command) => edge::run(&mut context, command).await,
        Command::Cert(command) => cert::run(&mut context, command).await,
        Command::TrustedRoot(command) => trusted_root::run(&mut context, command).await,
        Command::Fleet(command) => fleet::run(&mut context, command).await,
        Command::Counters(args) => counters::run(&mut context, args).await,
        Command::Queue(command) => queue::run(&mut context, command).await,
        Command::ProtocolLog(args) => protocol_log::run(&mut context, args).await,
        Command::Policy(command) => policy::run(&mut context, command).await,
        Command::Partner(command) => partner::run(&mut context, command).await,
        Command::Publish(command) => publish::run(&mut context, command).await,
        Command::Audit(args) => audit::run(&mut context, args).await,
        Command::Config(command) => config::run(&mut context, command).await,
        Command::Whoami => audit::whoami(&mut context).await,
        Command::Completions { .. } => Ok(()),
    }
}

/// An error for the terminal: gRPC statuses as `CODE: message`, with a hint.
pub fn describe(error: &anyhow::Error) -> String {
    let Some(status) = error.downcast_ref::<tonic::Status>() else {
        return format!("{error:#}");
    };
    let code = code_name(status.code());
    let hint = match status.code() {
        tonic::Code::PermissionDenied => "\nhint: ask an org-admin for a credential with that role",
        tonic::Code::Unauthenticated => {
            "\nhint: the controller does not accept this credential; ask an org-admin for a new one"
        }
        tonic::Code::Unavailable if is_about_an_edge(status) => "",
        tonic::Code::Unavailable => "\nhint: is `domainsec-controller serve` running and reachable?",
        _ => "",
    };
    format!("{code}: {}{hint}", status.message())
}

/// An `UNAVAILABLE` about an edge (the controller answered): no hint about
/// reaching the controller.
pub fn is_about_an_edge(status: &tonic::Status) -> bool {
    status.metadata().get(proto::admin::ERROR_KIND_METADATA).and_then(|value| value.to_str().ok())
        == Some(proto::admin::ERROR_KIND_EDGE_UNAVAILABLE)
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// `a,b` → list; a single empty value (`''`) → empty list, which clears.
pub fn list_value(values: Vec<String>) -> Vec<String> {
    if values.len() == 1 && values[0].is_empty() { Vec::new() } else { values }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_that_is_unavailable_gets_no_hint_about_the_controller() {
        let mut edge = tonic::Status::unavailable("edge mail1 is not connected");
        edge.metadata_mut().insert(
            proto::admin::ERROR_KIND_METADATA,
            tonic::metadata::MetadataValue::from_static(proto::admin::ERROR_KIND_EDGE_UNAVAILABLE),
        );
        assert_eq!(describe(&anyhow::Error::new(edge)), "UNAVAILABLE: edge mail1 is not connected");
        // The same words without the metadata are about the controller.
        let controller = tonic::Status::unavailable("edge of the network");
        assert!(describe(&anyhow::Error::new(controller)).contains("hint: is `domainsec-controller serve` running"));
    }
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory as _;

    /// Every flag and positional argument of every command says what it is for.
    #[test]
    fn every_argument_has_help() {
        let missing = domainsec_daemon::arguments_without_help(&super::Cli::command());
        assert!(missing.is_empty(), "{} arguments without help:\n{}", missing.len(), missing.join("\n"));
    }
}
