//! The command line of `domainsec-edge`: its arguments and what each command does.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use edge::{Listeners, RunOptions, config::EdgeSettings, control::subscribe, store::DataDir};
use tokio_util::sync::CancellationToken;

/// The DomainSec edge agent.
#[derive(Debug, Parser)]
#[command(name = "domainsec-edge", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: domainsec_daemon::LogArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make this edge's key pair and register it with a one-time subscription file.
    Subscribe {
        /// The file `dsctl edge new-subscription` wrote.
        #[arg(long)]
        file: PathBuf,
        /// Where the edge keeps its key, trust and configuration.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Keep the configuration in sync with the controller (serving the stored one meanwhile).
    Run {
        /// The data dir `subscribe` wrote.
        #[arg(long)]
        data_dir: PathBuf,
        /// How often to report to the controller.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        heartbeat_interval: Duration,
        /// Local settings (DNS, limits, queue timing); every key has a default.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve Prometheus metrics (relay, queue, Domain Security counters, CRL cache) here.
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
    },
    /// Print the configuration version this edge runs.
    Status {
        /// The edge's data dir.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// Logs to stderr, `RUST_LOG` or `info`, colours only on a terminal.
pub fn init_tracing(cli: &Cli) {
    domainsec_daemon::init_tracing("info", cli.log.log_format);
}

/// Runs one command.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command;
    match command {
        Command::Subscribe { file, data_dir } => {
            let trust = subscribe::subscribe(&file, &DataDir::new(&data_dir)).await?;
            let (edge, fqdn, org) = (trust.edge, trust.fqdn, trust.organization);
            println!(
                "Subscribed edge {edge:?} ({fqdn}) to {org}. Next: domainsec-edge run --data-dir {}",
                data_dir.display()
            );
        }
        Command::Run { data_dir, heartbeat_interval, config, metrics_listen } => {
            let settings = EdgeSettings::load(config.as_deref())?;
            let metrics = match metrics_listen {
                Some(address) => Some(
                    tokio::net::TcpListener::bind(address)
                        .await
                        .with_context(|| format!("listen for metrics on {address}"))?,
                ),
                None => None,
            };
            let (shutdown, immediately) = (CancellationToken::new(), CancellationToken::new());
            tokio::spawn(domainsec_daemon::cancel_on_signal(shutdown.clone(), immediately.clone()));
            let options = RunOptions { data_dir, settings, heartbeat_interval };
            edge::run(options, Listeners { metrics }, shutdown, immediately).await?;
        }
        Command::Status { data_dir } => println!("{}", edge::status(&data_dir)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// Every flag and positional argument of every command says what it is for.
    #[test]
    fn every_argument_has_help() {
        let missing = domainsec_daemon::arguments_without_help(&super::Cli::command());
        assert!(missing.is_empty(), "{} arguments without help:\n{}", missing.len(), missing.join("\n"));
    }
}
