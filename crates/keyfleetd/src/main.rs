//! `keyfleetd --config PATH`: runs one keyfleet node until SIGTERM or SIGINT.
//! `keyfleetd keys ...`: runs one step of the offline fleet key ceremony (`keyfleetd::keys`).
//! `keyfleetd recover-quorum ...`: forces a new voter set offline after a lost quorum.

use std::path::PathBuf;
use std::process::ExitCode;

use keyfleetd::{NODE_LOG_FILTER, NodeConfig, RunningNode, init_logging};
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: keyfleetd --config PATH\n       \
    keyfleetd keys generate --config PATH\n       \
    keyfleetd keys transport-key --config PATH\n       \
    keyfleetd keys export --config PATH --recipient HEX --out FILE [--force]\n       \
    keyfleetd keys import --config PATH --in FILE\n       \
    keyfleetd recover-quorum --config PATH --voters ID[,ID...]\n       \
    keyfleetd certs init-ca|issue-node|issue-operator|fingerprint --config PATH ...\n\n\
    With --config alone, runs one keyfleet node. Every configuration key can be overridden with\n\
    an environment variable KEYFLEETD_<KEY>, with __ between table levels\n\
    (KEYFLEETD_RAFT__WRITE_TIMEOUT_MS). The keys commands move the fleet keys between nodes'\n\
    HSM tokens; `keyfleetd keys --help` describes them. The certs commands run the fleet\n\
    certificate authority; `keyfleetd certs --help` describes them. SIGHUP reloads the TLS\n\
    certificates and keys.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|first| first == "keys") {
        return keyfleetd::keys::main(&args[1..]);
    }
    if args.first().is_some_and(|first| first == "recover-quorum") {
        return keyfleetd::recover_quorum::main(&args[1..]);
    }
    if args.first().is_some_and(|first| first == "certs") {
        return keyfleetd::tls::certs::main(&args[1..]);
    }

    let path = match config_path(&args) {
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
    init_logging(config.log_format, NODE_LOG_FILTER);

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

fn config_path(args: &[String]) -> Result<PathBuf, String> {
    match args {
        [flag, path] if flag == "--config" => Ok(PathBuf::from(path)),
        [flag] if flag == "--help" || flag == "-h" => Err(String::new()),
        _ => Err("keyfleetd: expected --config PATH".to_owned()),
    }
}

async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut node = RunningNode::start(config).await?;

    let fatal = loop {
        tokio::select! {
            _ = terminate.recv() => {
                tracing::info!(signal = "SIGTERM", "shutdown requested");
                break None;
            }
            _ = interrupt.recv() => {
                tracing::info!(signal = "SIGINT", "shutdown requested");
                break None;
            }
            _ = hangup.recv() => {
                tracing::info!(signal = "SIGHUP", "TLS reload requested");
                node.reload_tls();
            }
            reason = node.raft_stopped() => break Some(reason),
        }
    };
    node.shutdown().await?;

    match fatal {
        None => Ok(()),
        Some(reason) => Err(anyhow::anyhow!("exiting because Raft stopped: {reason}")),
    }
}
