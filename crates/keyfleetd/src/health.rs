//! gRPC health checking (`grpc.health.v1.Health`) on the API port.
//!
//! The empty service name is liveness: SERVING while the process runs. The service name
//! `keyfleet.v1.Vault` is readiness: SERVING only while this node can take part in vault calls,
//! as [`HealthMonitor`] decides.

use std::sync::Arc;
use std::time::Duration;

use keyfleet_api::vault::vault_server::SERVICE_NAME as VAULT_SERVICE;
use keyfleet_hsm::Hsm;
use keyfleet_raft::{NodeId, Raft};
use openraft::async_runtime::WatchReceiver;
use openraft::{Instant as _, ServerState};
use tokio::time::{Instant, MissedTickBehavior};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::metrics::{HSM_PROBE_DURATION, HSM_PROBE_ERRORS, READY};
use crate::node_health::{HealthSender, NodeHealth};
use crate::vault::FleetCore;

/// Interval between two readiness checks when Raft reports no change of term, leader, state or
/// membership. The apply lag and the last quorum contact change with every write, so they are
/// checked on this interval, not on every change: waking on every Raft metrics change cost a
/// node a large share of its CPU under load.
const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Minimum interval between two HSM probes, and between two attempts to load the fleet setup
/// while it is not loaded.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Time the HSM has to return one random byte before the probe counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Maximum number of committed entries that a ready node may have left to apply.
const MAX_APPLY_LAG: u64 = 10;

/// Follows Raft, the fleet setup and the HSM, and sets the readiness status of
/// `keyfleet.v1.Vault`.
pub(crate) struct HealthMonitor {
    node_id: NodeId,
    raft: Raft,
    core: Arc<FleetCore>,
    hsm: Arc<dyn Hsm>,
    reporter: HealthReporter,
    /// Maximum time without contact with a quorum (on the leader) or with the leader (on a
    /// follower) after which the node no longer counts the leader as known.
    leader_contact_timeout: Duration,
    /// Receiver of the latest results, for the node API's `Status`.
    shared: HealthSender,
}

/// Results of the slow checks, which run at most every [`PROBE_INTERVAL`].
struct ProbeResults {
    hsm: Result<(), String>,
    fleet: Result<(), String>,
    checked_at: Option<Instant>,
}

impl HealthMonitor {
    /// Creates the monitor. `leader_contact_timeout` is normally the maximum election timeout.
    pub(crate) fn new(
        node_id: NodeId,
        raft: Raft,
        core: Arc<FleetCore>,
        hsm: Arc<dyn Hsm>,
        reporter: HealthReporter,
        leader_contact_timeout: Duration,
        shared: HealthSender,
    ) -> Self {
        Self {
            node_id,
            raft,
            core,
            hsm,
            reporter,
            leader_contact_timeout,
            shared,
        }
    }

    /// Marks readiness NOT_SERVING. Call it before the health service starts serving.
    pub(crate) async fn mark_not_ready(reporter: &HealthReporter) {
        reporter
            .set_service_status(VAULT_SERVICE, ServingStatus::NotServing)
            .await;
    }

    /// Marks liveness and readiness NOT_SERVING, for a node that is stopping.
    pub(crate) async fn mark_stopping(reporter: &HealthReporter) {
        reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        Self::mark_not_ready(reporter).await;
    }

    /// Checks readiness on every change of term, leader, state or membership and every
    /// [`CHECK_INTERVAL`], and updates the status when it changes. Runs until it is aborted, or
    /// until Raft stops.
    pub(crate) async fn run(self) {
        let mut changes = self.raft.server_metrics();
        let mut interval = tokio::time::interval(CHECK_INTERVAL);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);

        let mut probes = ProbeResults {
            hsm: Err("the HSM was not probed yet".to_owned()),
            fleet: Err("the fleet setup was not loaded yet".to_owned()),
            checked_at: None,
        };
        let mut ready = false;
        metrics::gauge!(READY).set(0.0);

        loop {
            if probes
                .checked_at
                .is_none_or(|at| at.elapsed() >= PROBE_INTERVAL)
            {
                let hsm = self.probe_hsm().await;
                self.log_hsm_change(&probes.hsm, &hsm, probes.checked_at.is_none());
                probes.hsm = hsm;
                if probes.fleet.is_err() {
                    probes.fleet = self.load_fleet().await;
                }
                probes.checked_at = Some(Instant::now());
            }

            let readiness = match self.check_raft().await {
                Ok(()) => probes.hsm.clone().and(probes.fleet.clone()),
                Err(reason) => Err(reason),
            };
            if readiness.is_ok() != ready {
                ready = readiness.is_ok();
                self.report(&readiness).await;
            }
            self.shared.send_replace(NodeHealth {
                ready,
                readiness_reason: readiness.err().unwrap_or_default(),
                hsm_error: probes.hsm.clone().err(),
            });

            let stopped = tokio::select! {
                changed = changes.changed() => changed.is_err(),
                _ = interval.tick() => false,
            };
            if stopped {
                self.report(&Err("Raft has stopped".to_owned())).await;
                return;
            }
        }
    }

    /// Sets the readiness status and logs the transition with its reason.
    async fn report(&self, readiness: &Result<(), String>) {
        let node_id = self.node_id;
        let (status, gauge) = match readiness {
            Ok(()) => {
                tracing::info!(
                    node_id,
                    ready = true,
                    reason = "all checks passed",
                    "readiness changed"
                );
                (ServingStatus::Serving, 1.0)
            }
            Err(reason) => {
                tracing::info!(node_id, ready = false, reason = %reason, "readiness changed");
                (ServingStatus::NotServing, 0.0)
            }
        };
        self.reporter
            .set_service_status(VAULT_SERVICE, status)
            .await;
        metrics::gauge!(READY).set(gauge);
    }

    /// Checks that Raft runs, that this node is a voter, that it has recent contact with a
    /// leader and that it has applied the entries it has seen committed.
    async fn check_raft(&self) -> Result<(), String> {
        let (leader, state, voter, learner, quorum_acked, lag) = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow_watched();
            if let Err(fatal) = &metrics.running_state {
                return Err(format!("Raft stopped with a fatal error: {fatal}"));
            }
            let membership = metrics.membership_config.membership();
            let committed = metrics.local_committed.map_or(0, |id| id.index);
            let applied = metrics.last_applied.map_or(0, |id| id.index);
            (
                metrics.current_leader,
                metrics.state,
                membership.voter_ids().any(|id| id == self.node_id),
                membership.learner_ids().any(|id| id == self.node_id),
                metrics.last_quorum_acked.as_ref().map(|at| at.elapsed()),
                committed.saturating_sub(applied),
            )
        };

        if !voter {
            return Err(if learner {
                "this node is a learner, not a voter".to_owned()
            } else {
                "this node is not a member of the cluster".to_owned()
            });
        }
        let Some(leader) = leader else {
            return Err("this node knows no leader".to_owned());
        };

        let contact = if state == ServerState::Leader {
            quorum_acked
        } else {
            self.raft
                .with_raft_state(|state| state.vote_last_modified().map(|at| at.elapsed()))
                .await
                .map_err(|fatal| format!("Raft stopped with a fatal error: {fatal}"))?
        };
        match contact {
            Some(elapsed) if elapsed <= self.leader_contact_timeout => {}
            Some(elapsed) if state == ServerState::Leader => {
                return Err(format!(
                    "this node leads, but no quorum acknowledged it for {} ms",
                    elapsed.as_millis()
                ));
            }
            Some(elapsed) => {
                return Err(format!(
                    "no contact with leader {leader} for {} ms",
                    elapsed.as_millis()
                ));
            }
            None => return Err(format!("no contact with leader {leader} yet")),
        }

        if lag > MAX_APPLY_LAG {
            return Err(format!(
                "{lag} committed entries are not applied yet, more than {MAX_APPLY_LAG}"
            ));
        }
        Ok(())
    }

    /// Requests one random byte from the HSM, and records the latency or the error.
    async fn probe_hsm(&self) -> Result<(), String> {
        let started = Instant::now();
        let outcome = tokio::time::timeout(PROBE_TIMEOUT, self.hsm.random_bytes(1)).await;
        metrics::histogram!(HSM_PROBE_DURATION).record(started.elapsed().as_secs_f64());

        let error = match outcome {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) => format!("the HSM probe failed: {error}"),
            Err(_) => format!(
                "the HSM probe timed out after {} ms",
                PROBE_TIMEOUT.as_millis()
            ),
        };
        metrics::counter!(HSM_PROBE_ERRORS).increment(1);
        Err(error)
    }

    /// Logs when the HSM probe starts or stops failing, rather than on every probe.
    fn log_hsm_change(&self, before: &Result<(), String>, now: &Result<(), String>, first: bool) {
        let node_id = self.node_id;
        match (before, now) {
            (Ok(()), Err(error)) => tracing::warn!(node_id, %error, "HSM probe failed"),
            (Err(_), Err(error)) if first => tracing::warn!(node_id, %error, "HSM probe failed"),
            (Err(_), Ok(())) if !first => tracing::info!(node_id, "HSM probe succeeded again"),
            _ => {}
        }
    }

    /// Loads the fleet's OPAQUE setup, which the vault needs for every call.
    async fn load_fleet(&self) -> Result<(), String> {
        self.core
            .vault()
            .await
            .map(drop)
            .map_err(|status| format!("the vault is not ready: {}", status.message()))
    }
}
