//! keyfleetd, the keyfleet node daemon, as a library: configuration, the node API service,
//! the node's lifecycle, the fleet key ceremony ([`keys`]), the online join ([`join`]) and the
//! fleet certificate authority ([`tls::certs`]). `src/main.rs` adds argument
//! parsing and signal handling.

mod admin_token;
mod bundle_publisher;
mod compactor;
mod config;
mod error_status;
mod health;
pub mod join;
pub mod keys;
mod leader_hint;
mod log_limiter;
mod logging;
mod member_addresses;
mod metrics;
mod node;
mod node_health;
mod operator;
pub mod recover_quorum;
mod replica;
mod serve;
mod service;
mod status;
pub mod tls;
mod vault;
mod watch;

pub use admin_token::{AdminToken, MIN_ADMIN_TOKEN_LEN};
pub use config::{
    ConfigError, ENV_PREFIX, LogFormat, NodeConfig, RaftSettings, TenantSettings, VaultSettings,
};
pub use logging::{NODE_LOG_FILTER, init_logging};
pub use node::RunningNode;
pub use serve::{NodeSignals, serve};
pub use service::NodeService;

// The chaos suite's broken build must never be a release: the feature breaks the guess budget
// on purpose.
#[cfg(all(feature = "broken-count-guess-after-answer", not(debug_assertions)))]
compile_error!(
    "the feature broken-count-guess-after-answer breaks the guess budget on purpose for the \
     chaos suite; build it only in a profile with debug assertions, such as dev or test, never \
     for release"
);
