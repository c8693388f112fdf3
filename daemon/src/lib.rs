//! What both DomainSec daemons (`domainsec-controller`, `domainsec-edge`) share, so
//! each exists once: the operations HTTP endpoint, signal handling, log set-up.
//!
//! # Layout
//! - [`http`]: `/metrics` (Prometheus text), `/healthz` (the process runs) and
//!   `/readyz` (it can do its job) on one plain-HTTP listener, no client
//!   certificate, so probes and load balancers can call it.
//! - [`exposition`]: the Prometheus text format written by convention.
//! - [`cancel_on_signal`], [`init_tracing`].

pub mod exposition;
pub mod http;

use tokio_util::sync::CancellationToken;

/// Logs to stderr with `RUST_LOG` (else `default_filter`), colours only on a terminal.
pub fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C (SIGINT).
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        },
        Err(_) => drop(tokio::signal::ctrl_c().await),
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
