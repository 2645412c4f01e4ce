//! The fleet's OPAQUE core on this node: loaded from the replicated fleet setup, and created by
//! the first leader of a new fleet.

use std::sync::Arc;
use std::time::Duration;

use keyfleet_hsm::{Hsm, SealedBlob};
use keyfleet_raft::{Command, InitFleetOutcome, Request, RequestId, Response};
use keyfleet_vault::{FleetSetup, SystemClock, Vault, VaultConfig};
use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use rand::RngCore;
use rand::rngs::OsRng;
use tokio::sync::{RwLock, watch};
use tonic::Status;

use super::status;
use crate::replica::Replica;

/// Wait after the first failed attempt to initialize the fleet. It doubles after each failure,
/// up to [`INIT_RETRY_MAX`], so that a leader without the fleet keys logs rarely.
const INIT_RETRY: Duration = Duration::from_secs(2);
const INIT_RETRY_MAX: Duration = Duration::from_secs(60);

/// The OPAQUE core of this node, loaded once the fleet setup is in the state machine, and
/// loaded again after a restore or a snapshot install, which may replace the setup.
pub(crate) struct FleetCore {
    replica: Replica,
    hsm: Arc<dyn Hsm>,
    config: VaultConfig,
    fleet_changes: watch::Receiver<u64>,
    /// The loaded core, with the `fleet_changes` value it was loaded at.
    vault: RwLock<Option<(u64, Arc<Vault>)>>,
}

impl std::fmt::Debug for FleetCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetCore")
            .field("fleet_id", &self.config.fleet_id)
            .finish_non_exhaustive()
    }
}

impl FleetCore {
    pub(crate) fn new(replica: Replica, hsm: Arc<dyn Hsm>, config: VaultConfig) -> Self {
        let fleet_changes = replica.state_machine.fleet_changes();
        Self {
            replica,
            hsm,
            config,
            fleet_changes,
            vault: RwLock::new(None),
        }
    }

    /// Returns the ticket lifetime.
    pub(crate) fn ticket_ttl(&self) -> Duration {
        Duration::from_secs(self.config.ticket_ttl_secs)
    }

    /// Returns the OPAQUE core, loading it from the applied fleet setup on first use and after
    /// the setup may have changed.
    pub(crate) async fn vault(&self) -> Result<Arc<Vault>, Status> {
        let generation = *self.fleet_changes.borrow();
        if let Some((loaded_at, vault)) = self.vault.read().await.as_ref()
            && *loaded_at == generation
        {
            return Ok(vault.clone());
        }

        let mut slot = self.vault.write().await;
        if let Some((loaded_at, vault)) = slot.as_ref()
            && *loaded_at == generation
        {
            return Ok(vault.clone());
        }
        let vault = self.load().await?;
        *slot = Some((generation, vault.clone()));
        Ok(vault)
    }

    async fn load(&self) -> Result<Arc<Vault>, Status> {
        let node_id = self.replica.node_id;
        let fleet_id = &self.config.fleet_id;

        let Some(fleet) = self.replica.local_fleet().await? else {
            return Err(status::fleet_not_ready(format!(
                "node {node_id} has no fleet setup yet: the fleet is initialized by its first \
                 leader once the cluster is initialized; retry shortly"
            )));
        };

        if &fleet.fleet_id != fleet_id {
            tracing::error!(node_id, configured = %fleet_id, stored = %fleet.fleet_id, "fleet id mismatch");
            return Err(status::fleet_not_ready(format!(
                "node {node_id} is configured for fleet {fleet_id:?}, but its cluster is fleet \
                 {:?}: fix vault.fleet_id in the node's configuration",
                fleet.fleet_id
            )));
        }

        let config = self.config.clone();
        let clock = Arc::new(SystemClock);
        let sealed_setup = SealedBlob::from_bytes(fleet.sealed_server_setup.as_bytes().to_vec())
            .map_err(|error| status::internal(node_id, &error))?;
        let vault = Vault::load(self.hsm.clone(), config, &sealed_setup, clock)
            .await
            .map_err(|error| {
                tracing::error!(node_id, %error, "cannot load the fleet's OPAQUE setup");
                status::fleet_not_ready(format!(
                    "node {node_id} cannot open the fleet's OPAQUE setup ({error}): its token \
                     must hold the fleet keys; import them with `keyfleetd keys import`"
                ))
            })?;

        tracing::info!(node_id, fleet_id = %fleet_id, "vault ready");
        Ok(Arc::new(vault))
    }

    /// Creates the fleet setup when this node leads a cluster that has none, and returns once
    /// the fleet has one. Runs for the life of the node.
    pub(crate) async fn initialize_when_leader(self: Arc<Self>) {
        let node_id = self.replica.node_id;
        let mut metrics = self.replica.raft.metrics();
        let mut retry = INIT_RETRY;

        loop {
            let leading = metrics.borrow_watched().state == ServerState::Leader;
            if leading {
                match self.initialize().await {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::warn!(node_id, error = %error.message(), retry_secs = retry.as_secs(), "fleet initialization failed; retrying");
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(INIT_RETRY_MAX);
                        continue;
                    }
                }
            } else if matches!(self.replica.local_fleet().await, Ok(Some(_))) {
                return;
            }

            if metrics.changed().await.is_err() {
                return;
            }
        }
    }

    /// Writes `InitFleet` with a new server setup unless the fleet has one.
    async fn initialize(&self) -> Result<(), Status> {
        let node_id = self.replica.node_id;
        let fleet_id = self.config.fleet_id.clone();

        self.replica.linearize().await?;
        if self.replica.local_fleet().await?.is_some() {
            return Ok(());
        }

        tracing::info!(node_id, fleet_id = %fleet_id, "initializing the fleet's OPAQUE setup");
        let sealed_server_setup = FleetSetup::generate()
            .seal(self.hsm.as_ref(), &self.config.seal_key, &fleet_id)
            .await
            .map_err(|error| {
                status::fleet_not_ready(format!(
                    "node {node_id} cannot seal a new fleet setup ({error}): generate or import \
                     the fleet keys with `keyfleetd keys`"
                ))
            })?;

        let request = Request {
            request_id: random_request_id(),
            command: Command::InitFleet {
                fleet_id: fleet_id.clone(),
                created_at_unix_secs: keyfleet_vault::Clock::now_unix_secs(&SystemClock),
                sealed_server_setup: keyfleet_raft::SealedBlob::new(
                    sealed_server_setup.into_bytes(),
                ),
            },
        };

        let written = self.replica.write(request).await?;
        match written.response {
            Response::InitFleet(InitFleetOutcome::Initialized) => {
                tracing::info!(node_id, fleet_id = %fleet_id, log_index = written.log_index, "fleet initialized");
            }
            Response::InitFleet(InitFleetOutcome::AlreadyInitialized) => {}
            Response::InitFleet(InitFleetOutcome::Conflict { existing_fleet_id }) => {
                if existing_fleet_id != fleet_id {
                    tracing::error!(node_id, configured = %fleet_id, stored = %existing_fleet_id, "the cluster belongs to another fleet");
                }
            }
            other => {
                tracing::error!(node_id, outcome = ?other, "unexpected InitFleet outcome");
            }
        }
        Ok(())
    }
}

fn random_request_id() -> RequestId {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    RequestId::from_bytes(bytes)
}
