//! Relay benchmark: a load generator and a counting SMTP sink that measure an SMTP relay
//! end to end on loopback: `run` (submits) → relay under test → the sink inside `run`.
//!
//! - `relay-bench sink --listen ADDR [--starttls]`: an ESMTP server that accepts every
//!   message, stores none and counts them, until Ctrl-C.
//! - `relay-bench run --target ADDR --sink-listen ADDR2 ...`: starts the same sink
//!   in-process, submits N messages over C reused connections and waits until the sink
//!   has seen every message the relay accepted. Every message carries `X-Bench-Id` and
//!   `X-Bench-Sent` (unix nanos, stamped just before MAIL FROM); the sink reads headers
//!   only until `X-Bench-Sent` and streams the rest, so end-to-end latency is arrival at
//!   the sink − sent, on one clock. Without `--sink-listen` only submission is measured:
//!   with a `sink` as the target, that is the tool's own ceiling.
//!
//! # Layout
//! - `main.rs`, [`Cli`]: the two sub-commands and their flags; `tls.rs`: rustls configs for both sides.
//! - `smtp`: line and reply I/O used by both sides, [`smtp::Mailbox`].
//! - `sink`: the counting server, [`sink::Arrivals`].
//! - `load`: the submitting workers, the warm-up and measured phases.
//! - `report`: percentiles, the table and the JSON object.

use std::{net::SocketAddr, time::Duration};

use clap::{Parser, Subcommand};
use smtp::Mailbox;

mod load;
mod report;
mod sink;
mod smtp;
mod tls;

#[derive(Debug, Parser)]
#[command(name = "relay-bench", about = "Load generator and counting sink for measuring an SMTP relay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Accept every message, store none, count them (until Ctrl-C).
    Sink(SinkArgs),
    /// Submit messages to a relay whose next hop is an in-process sink; report throughput and latency.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct SinkArgs {
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// Offer STARTTLS, with a self-signed certificate made at start.
    #[arg(long)]
    starttls: bool,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The relay under test.
    #[arg(long)]
    target: SocketAddr,
    /// Where the in-process sink listens: the relay's next hop. Without it only submission
    /// is measured (use this with a `sink` as the target to see the tool's own ceiling).
    #[arg(long)]
    sink_listen: Option<SocketAddr>,
    /// Use STARTTLS towards the target (any certificate is accepted) and offer it at the sink.
    #[arg(long)]
    starttls: bool,
    /// Messages to measure.
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// Message size in bytes, headers included.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Envelope and header sender.
    #[arg(long, default_value = "bench@example.org")]
    sender: Mailbox,
    /// Envelope and header recipient.
    #[arg(long, default_value = "user@example.net")]
    recipient: Mailbox,
    /// Messages sent (and waited for) before the measured ones, not counted.
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Deadline of each phase (warm-up, measured), e.g. `300s` or `5m`.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// How long a worker keeps reconnecting while every attempt fails (e.g. while the relay
    /// restarts), e.g. `5s` or `30s`.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    reconnect_window: Duration,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Sink(args) => sink::serve_until_interrupted(args).await,
        Command::Run(args) => load::run(args).await,
    }
}

/// Wall-clock time as unix nanoseconds: the one clock both the sender and the sink stamp with.
fn unix_nanos() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}
