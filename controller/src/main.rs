//! `domainsec-controller`: init the organization, issue admin credentials, serve.

mod command;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = command::Cli::parse();
    command::init_tracing(&cli);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command::execute(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
