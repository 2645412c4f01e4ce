//! `keyfleet`: stores a backup secret in a keyfleet vault behind a password, recovers it, and
//! mints the tenant tokens that authorize those calls. `keyfleet --help` lists the commands
//! and the exit codes.

mod cli;
mod cli_error;
mod cli_witness;
mod commands;
mod exit_code;
mod output;
mod password;
mod private_file;
mod tls_args;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::Cli;
use crate::exit_code::Exit;

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("keyfleet: failed to start the async runtime: {error}");
            return Exit::Failure.into();
        }
    };

    match runtime.block_on(commands::run(cli.command)) {
        Ok(()) => Exit::Ok.into(),
        Err(error) => {
            eprintln!("keyfleet: {error}");
            error.exit().into()
        }
    }
}

/// Logs to stderr, at `error` unless `RUST_LOG` sets another filter, because every failure
/// is printed as a `keyfleet:` line anyway. The SDK logs its retries at `info`.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error"));

    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
