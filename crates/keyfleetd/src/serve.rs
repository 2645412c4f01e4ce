//! Runs a started node until SIGTERM or SIGINT, reloading TLS on SIGHUP.

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::RunningNode;

/// The signals a running node handles. Installed before the node starts, so that a signal
/// during start-up is handled too.
#[derive(Debug)]
pub struct NodeSignals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl NodeSignals {
    /// Installs the handlers of SIGTERM, SIGINT and SIGHUP.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }
}

impl NodeSignals {
    /// Waits for SIGTERM or SIGINT and returns the signal's name.
    pub async fn stop_requested(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// Serves `node` until SIGTERM, SIGINT or a fatal Raft error, then shuts it down. Returns an
/// error when Raft stopped on its own.
pub async fn serve(mut signals: NodeSignals, mut node: RunningNode) -> anyhow::Result<()> {
    let fatal = loop {
        tokio::select! {
            _ = signals.terminate.recv() => {
                tracing::info!(signal = "SIGTERM", "shutdown requested");
                break None;
            }
            _ = signals.interrupt.recv() => {
                tracing::info!(signal = "SIGINT", "shutdown requested");
                break None;
            }
            _ = signals.hangup.recv() => {
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
