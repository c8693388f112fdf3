//! `domainsec-edge`: subscribe this edge, then run it.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use edge::{
    config::EdgeSettings,
    control::{
        subscribe,
        sync::{EdgeAgent, SyncSettings},
    },
    relay::Relay,
    store::DataDir,
};
use tokio_util::sync::CancellationToken;

/// The DomainSec edge agent.
#[derive(Debug, Parser)]
#[command(name = "domainsec-edge", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// Print the configuration version this edge runs.
    Status {
        /// The edge's data dir.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Subscribe { file, data_dir } => {
            let trust = subscribe::subscribe(&file, &DataDir::new(&data_dir)).await?;
            println!(
                "Subscribed edge {:?} ({}) to {}. Next: domainsec-edge run --data-dir {}",
                trust.edge,
                trust.fqdn,
                trust.organization,
                data_dir.display()
            );
            Ok(())
        }
        Command::Run { data_dir, heartbeat_interval, config, metrics_listen } => {
            let edge_settings = EdgeSettings::load(config.as_deref())?;
            let settings = SyncSettings { heartbeat_interval, ..SyncSettings::default() };
            let mut agent = EdgeAgent::load(DataDir::new(&data_dir), settings)?;
            let shutdown = CancellationToken::new();
            let relay = Relay::start(&data_dir, &edge_settings, agent.config(), agent.listening(), &shutdown)
                .context("start the SMTP relay")?;
            let queued = relay.queue.len();
            if queued > 0 {
                tracing::info!(queued, "picked up queued messages from the spool");
            }
            if let Some(address) = metrics_listen {
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("listen for metrics on {address}"))?;
                tracing::info!(%address, "serving Prometheus metrics");
                tokio::spawn(edge::metrics::serve(listener, relay.clone(), shutdown.clone()));
            }
            agent.attach_relay(relay);
            let signal = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                signal.cancel();
            });
            agent.run(shutdown).await;
            Ok(())
        }
        Command::Status { data_dir } => {
            let dir = DataDir::new(data_dir);
            let trust = dir.load_trust()?;
            match dir.load_snapshot()? {
                Some(snapshot) => println!("edge {} runs configuration version {}", trust.edge, snapshot.version),
                None => println!("edge {} has no configuration yet", trust.edge),
            }
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
