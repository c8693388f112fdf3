//! What both DomainSec daemons (`domainsec-controller`, `domainsec-edge`) share, so
//! each exists once: the operations HTTP endpoint, signal handling, log set-up.
//!
//! # Layout
//! - [`http`]: `/metrics` (Prometheus text), `/healthz` (the process runs) and
//!   `/readyz` (it can do its job) on one plain-HTTP listener, no client
//!   certificate, so probes and load balancers can call it.
//! - [`exposition`]: the Prometheus text format written by convention.
//! - [`systemd`]: `READY=1` / `STOPPING=1` for `Type=notify` units.
//! - [`cancel_on_signal`], [`init_tracing`].

pub mod exposition;
pub mod http;
pub mod systemd;

use tokio_util::sync::CancellationToken;

/// How log lines are written (`--log-format`, or `DOMAINSEC_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event; colours only on a terminal.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields, span), for log shippers.
    Json,
}

/// The `--log-format` flag both daemons take (flattened into their command line).
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log line format on stderr; RUST_LOG filters what is logged (e.g. `info,edge::inbound=debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "DOMAINSEC_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// Every argument and subcommand of `command` (recursively) that has no help text, as
/// "path id" lines: the three command lines' tests assert there are none.
pub fn arguments_without_help(command: &clap::Command) -> Vec<String> {
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for argument in command.get_arguments() {
            let id = argument.get_id().as_str();
            let described = argument.get_help().is_some() || argument.get_long_help().is_some();
            if !described && !matches!(id, "help" | "version") {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in command.get_subcommands() {
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                missing.push(format!("{path} {} (the command)", sub.get_name()));
            }
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(command, command.get_name(), &mut missing);
    missing
}

/// Logs to stderr in `format` with `RUST_LOG` (else `default_filter`).
pub fn init_tracing(default_filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).init(),
    }
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C (SIGINT), and `immediately` on a second
/// one: the first asks for a clean stop (drain), the second for an end now.
pub async fn cancel_on_signal(shutdown: CancellationToken, immediately: CancellationToken) {
    if !next_signal().await {
        return;
    }
    tracing::info!("shutting down; a second signal stops at once");
    systemd::notify_stopping();
    shutdown.cancel();
    if next_signal().await {
        tracing::warn!("second signal: stopping without waiting");
    }
    immediately.cancel();
}

/// Waits for SIGTERM or SIGINT; false when signals cannot be listened for.
async fn next_signal() -> bool {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = terminate.recv() => true,
            result = tokio::signal::ctrl_c() => result.is_ok(),
        },
        Err(_) => tokio::signal::ctrl_c().await.is_ok(),
    }
}
