//! Log output on stderr, in the format the configuration names.

use crate::LogFormat;

/// Default log filter of a running node, overridden by `RUST_LOG`. cryptoki 0.12 logs an ERROR
/// for every vendor mechanism it has no name for while listing a token's mechanisms, which is
/// noise here. openraft 0.10.0-alpha.37 warns on every failed heartbeat, ten times a second per
/// unreachable peer with the default timing. A peer that is down shows in the readiness check
/// and the replication metrics instead.
pub const NODE_LOG_FILTER: &str =
    "info,openraft=warn,openraft::core::heartbeat=error,cryptoki::mechanism=off";

/// Installs the global tracing subscriber, writing to stderr. `default_filter` applies unless
/// `RUST_LOG` is set.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    use std::io::IsTerminal;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
