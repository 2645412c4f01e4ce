//! The node configuration: a TOML file, with any key overridden by an environment variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use keyfleet_hsm::HsmConfig;
use serde::Deserialize;

use crate::tls::TlsSettings;

/// Prefix of the environment variables that override configuration keys. A double underscore
/// separates table levels: `KEYFLEETD_RAFT__WRITE_TIMEOUT_MS` sets `raft.write_timeout_ms`.
///
/// The prefix differs from `KEYFLEET_`, which operators use for the HSM PIN variable, so that a
/// PIN variable is never read as configuration.
pub const ENV_PREFIX: &str = "KEYFLEETD_";

/// A node's configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's Raft id, 1 or more. Never reuse the id of a removed or wiped node.
    pub node_id: u64,
    /// Directory of the node's Raft log and state machine files.
    pub data_dir: PathBuf,
    /// Address of the internal Raft gRPC service.
    pub raft_listen: SocketAddr,
    /// Address of the node API gRPC service.
    pub api_listen: SocketAddr,
    /// Raft address that other nodes dial, when it differs from `raft_listen`.
    pub raft_advertise: Option<String>,
    /// Node API address that clients dial, when it differs from `api_listen`.
    pub api_advertise: Option<String>,
    /// Address of the Prometheus text endpoint, served over plain HTTP at any path. Without it
    /// the node serves no metrics. The endpoint has no authentication, so bind it to a
    /// loopback or internal address.
    pub metrics_listen: Option<SocketAddr>,
    /// File whose first line is the node API's admin token, at least 32 characters. Node API
    /// calls other than Status, Join and CompleteJoin must send it as `authorization: Bearer
    /// <token>`. A running node needs it; the `keyfleetd keys` commands do not.
    pub admin_token_file: Option<PathBuf>,
    /// Log line format on stderr.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Whether `api_listen` serves gRPC server reflection (`grpc.reflection.v1`), which lets
    /// tools such as grpcurl list the services and their message types.
    #[serde(default = "default_grpc_reflection")]
    pub grpc_reflection: bool,
    #[serde(default)]
    pub raft: RaftSettings,
    /// TLS of the Raft and API ports. A node does not start without TLS files or the explicit
    /// `insecure_plaintext = true`; the `keys` commands do not read the section.
    #[serde(default)]
    pub tls: TlsSettings,
    pub hsm: HsmConfig,
    pub vault: VaultSettings,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Raft timing and log compaction. Times are in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSettings {
    /// Interval between the leader's heartbeats.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Number of applied entries after which a new snapshot is built. Each snapshot writes every
    /// record, so its cost grows with the number of users, while the log it lets the node purge
    /// takes a few hundred bytes per entry.
    pub snapshot_after_logs: u64,
    /// Number of log entries kept behind the last snapshot, so slow followers can catch up
    /// without a snapshot transfer.
    pub max_in_snapshot_log_to_keep: u64,
    /// Time a write, a linearizable read or a membership change waits for a quorum before it
    /// fails as unavailable.
    pub write_timeout_ms: u64,
    /// Time the leader has to send and install one snapshot on a follower.
    pub snapshot_transfer_timeout_ms: u64,
    /// Time `AddLearner` waits for a new learner to replicate the log before it gives up.
    pub learner_catch_up_timeout_ms: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 250,
            election_timeout_min_ms: 1_000,
            election_timeout_max_ms: 2_000,
            snapshot_after_logs: 100_000,
            max_in_snapshot_log_to_keep: 1_000,
            write_timeout_ms: 5_000,
            snapshot_transfer_timeout_ms: 60_000,
            learner_catch_up_timeout_ms: 30_000,
        }
    }
}

/// The public vault API: the fleet, guess limits, tickets and trusted tenants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    /// Id of the fleet, the same on every node: the OPAQUE server identity and the audience
    /// (`aud`) of tenant tokens. At most 128 bytes.
    pub fleet_id: String,
    /// Most guesses a registration may ask for.
    #[serde(default = "default_max_guesses")]
    pub max_guesses_ceiling: u32,
    /// Guesses a registration gets when it requests 0. At most `max_guesses_ceiling`.
    #[serde(default = "default_max_guesses")]
    pub default_max_guesses: u32,
    /// Lifetime of registration and login tickets, in seconds.
    #[serde(default = "default_ticket_ttl_secs")]
    pub ticket_ttl_secs: u64,
    /// Maximum lifetime (`exp - iat`) of a tenant token, in seconds.
    #[serde(default = "default_token_max_lifetime_secs")]
    pub token_max_lifetime_secs: u64,
    /// Tenants whose tokens the vault accepts.
    #[serde(default)]
    pub tenants: Vec<TenantSettings>,
}

/// One trusted tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Tenant id, the `iss` of its tokens: 1 to 64 characters of `a-z0-9_-`.
    pub id: String,
    /// The tenant's Ed25519 public key: 64 hex characters, or a PEM `PUBLIC KEY` block.
    pub public_key: String,
}

fn default_grpc_reflection() -> bool {
    true
}

fn default_max_guesses() -> u32 {
    10
}

fn default_ticket_ttl_secs() -> u64 {
    keyfleet_vault::DEFAULT_TICKET_TTL_SECS
}

fn default_token_max_lifetime_secs() -> u64 {
    3_600
}

/// Errors in loading or checking the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} not found; pass an existing file with --config")]
    FileNotFound { path: PathBuf },

    #[error("invalid configuration in {path} or {ENV_PREFIX}* environment variables: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl NodeConfig {
    /// Reads `path`, applies `KEYFLEETD_*` overrides from the environment, and checks the
    /// result.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        if !path.is_file() {
            return Err(ConfigError::FileNotFound {
                path: path.to_owned(),
            });
        }

        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let config: Self = Figment::new()
            .merge(Toml::file(path))
            .merge(Env::prefixed(ENV_PREFIX).split("__"))
            .extract()
            .map_err(|error| invalid(error.to_string()))?;

        config.check().map_err(invalid)?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.node_id == 0 {
            return Err("node_id must be 1 or more: 0 means \"no node\" in status output".into());
        }
        let raft = &self.raft;
        if raft.heartbeat_interval_ms == 0 || raft.write_timeout_ms == 0 {
            return Err(
                "raft.heartbeat_interval_ms and raft.write_timeout_ms must be positive".into(),
            );
        }
        if raft.election_timeout_min_ms <= raft.heartbeat_interval_ms
            || raft.election_timeout_max_ms <= raft.election_timeout_min_ms
        {
            return Err(format!(
                "raft timings must satisfy heartbeat ({}) < election_timeout_min ({}) < \
                 election_timeout_max ({})",
                raft.heartbeat_interval_ms,
                raft.election_timeout_min_ms,
                raft.election_timeout_max_ms
            ));
        }
        self.check_vault()?;
        self.hsm
            .resolve()
            .map(drop)
            .map_err(|error| error.to_string())
    }

    fn check_vault(&self) -> Result<(), String> {
        let vault = &self.vault;
        if vault.fleet_id.is_empty() || vault.fleet_id.len() > keyfleet_raft::MAX_FLEET_ID_LEN {
            return Err(format!(
                "vault.fleet_id must be 1 to {} bytes long",
                keyfleet_raft::MAX_FLEET_ID_LEN
            ));
        }
        if vault.max_guesses_ceiling == 0
            || vault.default_max_guesses == 0
            || vault.default_max_guesses > vault.max_guesses_ceiling
        {
            return Err(format!(
                "vault guess limits must satisfy 1 <= default_max_guesses ({}) <= \
                 max_guesses_ceiling ({})",
                vault.default_max_guesses, vault.max_guesses_ceiling
            ));
        }
        if vault.ticket_ttl_secs == 0 || vault.token_max_lifetime_secs == 0 {
            return Err(
                "vault.ticket_ttl_secs and vault.token_max_lifetime_secs must be positive".into(),
            );
        }
        self.token_verifier().map(drop)
    }

    /// Builds the verifier of tenant tokens from `[vault]`.
    pub fn token_verifier(&self) -> Result<keyfleet_token::TokenVerifier, String> {
        let vault = &self.vault;
        let mut verifier = keyfleet_token::TokenVerifier::new(
            vault.fleet_id.clone(),
            vault.token_max_lifetime_secs,
        );

        for tenant in &vault.tenants {
            let key = keyfleet_token::TenantPublicKey::parse(&tenant.public_key)
                .map_err(|error| format!("vault.tenants {:?}: public_key: {error}", tenant.id))?;
            verifier
                .trust(&tenant.id, key)
                .map_err(|error| format!("vault.tenants {:?}: {error}", tenant.id))?;
        }
        Ok(verifier)
    }

    /// Returns the Raft address peers dial.
    pub fn raft_advertise(&self) -> String {
        self.raft_advertise
            .clone()
            .unwrap_or_else(|| self.raft_listen.to_string())
    }

    /// Returns the node API address clients dial.
    pub fn api_advertise(&self) -> String {
        self.api_advertise
            .clone()
            .unwrap_or_else(|| self.api_listen.to_string())
    }

    /// Builds and validates the openraft configuration.
    pub(crate) fn openraft_config(&self) -> Result<Arc<openraft::Config>, openraft::ConfigError> {
        let raft = &self.raft;
        let config = openraft::Config {
            cluster_name: "keyfleet".to_owned(),
            heartbeat_interval: raft.heartbeat_interval_ms,
            election_timeout_min: raft.election_timeout_min_ms,
            election_timeout_max: raft.election_timeout_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(raft.snapshot_after_logs),
            max_in_snapshot_log_to_keep: raft.max_in_snapshot_log_to_keep,
            install_snapshot_timeout: raft.snapshot_transfer_timeout_ms,
            enable_pre_vote: Some(true),
            ..openraft::Config::default()
        };
        config.validate().map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("node.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    const VALID: &str = r#"
        node_id = 2
        data_dir = "/var/lib/keyfleet"
        admin_token_file = "/run/secrets/keyfleet-admin-token"
        raft_listen = "127.0.0.1:7102"
        api_listen = "127.0.0.1:7202"
        [hsm]
        module = "/usr/lib/softhsm/libsofthsm2.so"
        token_label = "node-2"
        pin_env = "KEYFLEET_HSM_PIN"
        [tls]
        ca_cert = "/etc/keyfleet/fleet-ca.pem"
        cert = "/etc/keyfleet/node-2.pem"
        key = "/etc/keyfleet/node-2.key"
        [vault]
        fleet_id = "test-fleet"
    "#;

    #[test]
    fn load_valid_file() {
        let dir = tempfile::tempdir().unwrap();

        let config = NodeConfig::load(&write(dir.path(), VALID)).unwrap();

        assert_eq!(config.node_id, 2);
        assert_eq!(config.raft_advertise(), "127.0.0.1:7102");
        assert_eq!(config.log_format, LogFormat::Text);
        assert!(config.grpc_reflection);
        assert_eq!(config.raft.write_timeout_ms, 5_000);
        assert!(config.openraft_config().is_ok());
    }

    #[test]
    fn reflection_can_be_switched_off() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("grpc_reflection = false\nlog_format = \"json\"\n{VALID}");

        let config = NodeConfig::load(&write(dir.path(), &text)).unwrap();

        assert!(!config.grpc_reflection);
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn load_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                VALID.replace("node_id = 2", "node_id = 0"),
                "node_id must be 1 or more",
            ),
            (VALID.replace("[hsm]", "colour = 1\n[hsm]"), "unknown field"),
            (
                format!("{VALID}\n[raft]\nelection_timeout_min_ms = 10"),
                "raft timings must satisfy",
            ),
            (
                VALID.replace("pin_env", "pin"),
                "not accepted in the configuration file",
            ),
            (
                format!("{VALID}\ndefault_max_guesses = 11"),
                "default_max_guesses (11) <= max_guesses_ceiling (10)",
            ),
            (
                format!("{VALID}\n[[vault.tenants]]\nid = \"app\"\npublic_key = \"abcd\""),
                "vault.tenants \"app\": public_key",
            ),
        ];

        for (text, expected) in cases {
            let error = NodeConfig::load(&write(dir.path(), &text)).unwrap_err();
            assert!(error.to_string().contains(expected), "{expected}: {error}");
        }
    }

    #[test]
    fn example_configuration_loads() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/keyfleetd.example.toml");

        let config = NodeConfig::load(&path).unwrap();

        assert_eq!(config.node_id, 1);
        assert_eq!(config.raft.heartbeat_interval_ms, 250);
        assert_eq!(config.hsm.token_label.as_deref(), Some("keyfleet-node-1"));
    }

    #[test]
    fn missing_tls_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let text = VALID.replace("cert = \"/etc/keyfleet/node-2.pem\"", "");

        let config = NodeConfig::load(&write(dir.path(), &text)).unwrap();
        let error = config.tls.mode().unwrap_err();

        assert!(
            error.contains("[tls] needs ca_cert, cert and key"),
            "{error}"
        );
    }

    #[test]
    fn fleet_example_configurations_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/fleet");

        for id in 1..=3 {
            let config = NodeConfig::load(&dir.join(format!("node-{id}.toml"))).unwrap();

            assert_eq!(config.node_id, id);
            assert!(config.tls.mode().is_ok());
        }
    }

    #[test]
    fn load_reports_missing_file() {
        let error = NodeConfig::load(Path::new("/nonexistent/keyfleetd.toml")).unwrap_err();

        assert!(error.to_string().contains("not found"), "{error}");
    }
}
