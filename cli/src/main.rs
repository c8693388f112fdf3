//! `dsctl`: the DomainSec operator's command line.
//!
//! # Layout
//! - `commands/`: one module per noun (`transport-config`, `send-connector`, …).
//! - `client`: loading the credential bundle and connecting over mutual TLS.
//! - `output`: tables for people, JSON (`-o json`) for scripts.
//! - `words`: enumeration words and sizes on the command line.
//! - `exit`: the exit codes scripts rely on.

mod client;
mod commands;
mod exit;
mod output;
mod words;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", commands::describe(&error));
            exit::code(&error)
        }
    }
}
