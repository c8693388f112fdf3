//! `domainsec-edge`: subscribe this edge, then run it ([`edge::run`] does the work;
//! `command` holds the command line).

mod command;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

fn main() -> ExitCode {
    let cli = command::Cli::parse();
    command::init_tracing(&cli);
    let result = tokio::runtime::Runtime::new()
        .context("start the async runtime")
        .and_then(|runtime| runtime.block_on(command::execute(cli)));
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
