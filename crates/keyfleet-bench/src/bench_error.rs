use std::path::PathBuf;
use std::time::Duration;

/// Failure that stops the benchmark. Failed operations inside a workload are counted in the
/// report instead.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid benchmark setting {setting}: {reason}")]
    Config {
        setting: &'static str,
        reason: String,
    },

    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("failed to run {program}: {reason}")]
    Command { program: String, reason: String },

    #[error("{what} did not happen within {waited:?}: {reason}")]
    Timeout {
        what: String,
        waited: Duration,
        reason: String,
    },

    #[error("etcd failed: {reason}")]
    Etcd { reason: String },

    #[error("the vault failed during set-up: {reason}")]
    Vault { reason: String },

    #[error("OPAQUE step {step} failed: {reason}")]
    Protocol { step: &'static str, reason: String },
}

impl BenchError {
    /// Builds an [`BenchError::Io`] for `action` on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
