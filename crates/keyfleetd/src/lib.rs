//! keyfleetd, the keyfleet node daemon, as a library: configuration, the node API service and
//! the node's lifecycle. `src/main.rs` adds argument parsing, logging and signal handling.

mod config;
mod leader_hint;
mod node;
mod service;
mod status;
mod watch;

pub use config::{ConfigError, ENV_PREFIX, LogFormat, NodeConfig, RaftSettings};
pub use node::RunningNode;
pub use service::NodeService;
