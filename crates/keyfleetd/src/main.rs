//! `keyfleetd --config PATH`: runs one keyfleet node until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use keyfleetd::{LogFormat, NodeConfig, RunningNode};
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: keyfleetd --config PATH\n\n\
    Runs one keyfleet node. Every configuration key can be overridden with an environment\n\
    variable KEYFLEETD_<KEY>, with __ between table levels (KEYFLEETD_RAFT__WRITE_TIMEOUT_MS).";

fn main() -> ExitCode {
    let path = match config_path() {
        Ok(path) => path,
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match NodeConfig::load(&path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("keyfleetd: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(config)),
        Err(error) => Err(anyhow::Error::new(error).context("starting the async runtime")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "keyfleetd failed");
            ExitCode::FAILURE
        }
    }
}

fn config_path() -> Result<PathBuf, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, path] if flag == "--config" => Ok(PathBuf::from(path)),
        [flag] if flag == "--help" || flag == "-h" => Err(String::new()),
        _ => Err("keyfleetd: expected --config PATH".to_owned()),
    }
}

/// Default log filter, overridden by `RUST_LOG`. cryptoki 0.12 logs an ERROR for every vendor
/// mechanism it has no name for while listing a token's mechanisms, which is noise here.
const DEFAULT_LOG_FILTER: &str = "info,openraft=warn,cryptoki::mechanism=off";

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut node = RunningNode::start(config).await?;

    let fatal = tokio::select! {
        _ = terminate.recv() => {
            tracing::info!(signal = "SIGTERM", "shutdown requested");
            None
        }
        _ = interrupt.recv() => {
            tracing::info!(signal = "SIGINT", "shutdown requested");
            None
        }
        reason = node.raft_stopped() => Some(reason),
    };
    node.shutdown().await?;

    match fatal {
        None => Ok(()),
        Some(reason) => Err(anyhow::anyhow!("exiting because Raft stopped: {reason}")),
    }
}
