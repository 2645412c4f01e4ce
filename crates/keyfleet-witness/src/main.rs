//! `keyfleet-witness`: serves the witness API, or prints the witness's verifier key.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keyfleet_witness::{
    KEY_FILE, OperatorKeyBinding, OperatorKeys, WitnessKey, open_data_dir, serve,
};
use tracing_subscriber::EnvFilter;

/// The keyfleet witness: signs fleet key artifacts and keeps an append-only log of them.
#[derive(Debug, Parser)]
#[command(name = "keyfleet-witness", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the witness API until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7301", value_name = "ADDR")]
        listen: SocketAddr,
        /// Directory of the key file and the log; created on first use.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Key name, the first part of every checkpoint origin.
        #[arg(long, default_value = "keyfleet-witness", value_name = "NAME")]
        name: String,
        /// Pins an operator's Ed25519 public key (hex) to a namespace. Only submissions signed
        /// by a key pinned for their namespace are logged. Repeatable, also to pin several
        /// keys for one namespace. With none, every submission is rejected.
        #[arg(long = "operator-key", value_name = "NAMESPACE=HEX")]
        operator_keys: Vec<OperatorKeyBinding>,
    },
    /// Prints the verifier key clients pin, generating the key on first use.
    VerifierKey {
        /// Directory of the key file.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Key name.
        #[arg(long, default_value = "keyfleet-witness", value_name = "NAME")]
        name: String,
    },
}

fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let result = match Cli::parse().command {
        Command::Serve {
            listen,
            data_dir,
            name,
            operator_keys,
        } => run_server(listen, data_dir, name, OperatorKeys::new(operator_keys)),
        Command::VerifierKey { data_dir, name } => print_verifier_key(data_dir, &name),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keyfleet-witness: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_verifier_key(data_dir: PathBuf, name: &str) -> Result<(), String> {
    std::fs::create_dir_all(&data_dir)
        .map_err(|error| format!("cannot create {}: {error}", data_dir.display()))?;
    let key = WitnessKey::load_or_generate(name, &data_dir.join(KEY_FILE))
        .map_err(|error| error.to_string())?;
    println!("{}", key.verifier());
    Ok(())
}

fn run_server(
    listen: SocketAddr,
    data_dir: PathBuf,
    name: String,
    operator_keys: OperatorKeys,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("failed to start the async runtime: {error}"))?;
    runtime.block_on(async move {
        let log = open_data_dir(&data_dir, &name).map_err(|error| error.to_string())?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
        serve(log, operator_keys, listener, shutdown_signal())
            .await
            .map_err(|error| format!("the server failed: {error}"))?;
        tracing::info!("witness stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; stop the witness with SIGINT");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
