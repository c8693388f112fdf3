//! `domainsec-edge`: the DomainSec edge agent.
//!
//! Subscription, configuration sync and the SMTP relay arrive with the EdgeSync
//! issue; until then this binary only says so, so scripts fail loudly.

use clap::Parser;

/// The DomainSec edge agent (not yet functional: edge subscription and sync come next).
#[derive(Debug, Parser)]
#[command(name = "domainsec-edge", version)]
struct Cli {}

fn main() -> std::process::ExitCode {
    let _ = Cli::parse();
    eprintln!("domainsec-edge: edge subscription and sync are not implemented yet");
    std::process::ExitCode::from(2)
}
