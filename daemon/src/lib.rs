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

/// Cancels `shutdown` on SIGTERM or Ctrl-C (SIGINT), and `immediately` on a second
/// one: the first asks for a clean stop (drain), the second for an end now.
pub async fn cancel_on_signal(shutdown: CancellationToken, immediately: CancellationToken) {
    if !next_signal().await {
        return;
    }
    tracing::info!("shutting down; a second signal stops at once");
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
