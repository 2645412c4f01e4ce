use std::path::PathBuf;
use std::time::Duration;

use keyfleet_protocol::KsfParams;

use crate::BenchError;

/// Largest number of concurrent clients the benchmark accepts.
pub const MAX_CONCURRENCY: usize = 1024;

/// Settings of one benchmark run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The fleet to measure.
    pub target: FleetTarget,
    /// Number of concurrent clients, each running one operation at a time (a closed loop).
    pub concurrency: usize,
    /// Number of users registered before the recovery phases.
    pub users: usize,
    /// Length of each timed phase: right-password recoveries, wrong-password recoveries, etcd
    /// increments.
    pub phase: Duration,
    /// Time budget of the crypto ceiling measurement.
    pub crypto_phase: Duration,
    /// Number of 4 KiB write and fdatasync rounds of the fsync probe.
    pub fsync_rounds: u32,
    /// Whether to run the etcd anchor.
    pub etcd: bool,
    /// Argon2id parameters of the benchmark's clients, as the crate documentation explains.
    pub client_ksf: KsfParams,
    /// Directory for the local fleet, etcd and the fsync probe. Unset, the benchmark makes a
    /// temporary directory.
    pub work_dir: Option<PathBuf>,
}

/// The source of the fleet: started locally or given by endpoints.
#[derive(Debug, Clone)]
pub enum FleetTarget {
    /// Start three `keyfleetd` processes on 127.0.0.1, each with its own SoftHSM2 token.
    Local {
        /// The `keyfleetd` binary.
        keyfleetd: PathBuf,
    },
    /// Call a running fleet.
    Remote(RemoteFleet),
}

/// A running fleet and the tenant key it trusts.
#[derive(Debug, Clone)]
pub struct RemoteFleet {
    /// Vault API addresses, as `host:port` or `http://` URIs.
    pub endpoints: Vec<String>,
    /// PKCS#8 PEM file of a tenant signing key that the fleet trusts.
    pub tenant_key_file: PathBuf,
    /// The tenant id of that key.
    pub tenant: String,
    /// The fleet id, the tokens' audience.
    pub fleet: String,
}

impl BenchConfig {
    /// Argon2id parameters the benchmark's clients use by default: the smallest that
    /// Argon2 accepts, so that the client's cost stays far below the vault's.
    pub const CHEAP_CLIENT_KSF: KsfParams = KsfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    /// Returns the settings of the smoke mode: a few users and phases of about a second, enough
    /// to check that every part runs end to end.
    pub fn smoke(target: FleetTarget) -> Self {
        Self {
            target,
            concurrency: 4,
            users: 8,
            phase: Duration::from_secs(1),
            crypto_phase: Duration::from_millis(500),
            fsync_rounds: 20,
            etcd: true,
            client_ksf: Self::CHEAP_CLIENT_KSF,
            work_dir: None,
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`BenchError::Config`] naming the first invalid setting.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(BenchError::Config {
                setting: "concurrency",
                reason: format!(
                    "{} is out of range; use 1 to {MAX_CONCURRENCY}",
                    self.concurrency
                ),
            });
        }
        if self.users < self.concurrency {
            return Err(BenchError::Config {
                setting: "users",
                reason: format!(
                    "{} is below the concurrency {}; every client needs a user of its own",
                    self.users, self.concurrency
                ),
            });
        }
        if self.phase.is_zero() || self.crypto_phase.is_zero() {
            return Err(BenchError::Config {
                setting: "phase",
                reason: "a phase lasts zero time; give it at least one second".to_owned(),
            });
        }
        if self.fsync_rounds == 0 {
            return Err(BenchError::Config {
                setting: "fsync_rounds",
                reason: "0 rounds measure nothing; use at least 1".to_owned(),
            });
        }
        if let FleetTarget::Remote(remote) = &self.target
            && remote.endpoints.is_empty()
        {
            return Err(BenchError::Config {
                setting: "endpoints",
                reason: "no endpoint given; list the fleet's vault API addresses".to_owned(),
            });
        }
        self.client_ksf
            .argon2()
            .map_err(|error| BenchError::Config {
                setting: "client_ksf",
                reason: error.to_string(),
            })?;

        Ok(())
    }
}
