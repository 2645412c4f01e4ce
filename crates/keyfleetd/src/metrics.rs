//! Prometheus metrics: the text endpoint on `metrics_listen` and the gauges taken from Raft.
//!
//! The vault code and the health monitor record their counters and histograms through the
//! `metrics` facade with the names below. Without `metrics_listen` no recorder is installed,
//! and those calls do nothing.
//!
//! NOTE: the vault counters count outcomes as this node receives them from Raft. For a client
//! retry, the state machine returns the first outcome again from its dedup table, so the
//! retry is counted a second time.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use keyfleet_raft::{NodeId, Raft};
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use openraft::async_runtime::WatchReceiver;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

pub(crate) const RAFT_TERM: &str = "keyfleet_raft_term";
pub(crate) const RAFT_LEADER_ID: &str = "keyfleet_raft_leader_id";
pub(crate) const RAFT_LEADER_CHANGES: &str = "keyfleet_raft_leader_changes_total";
pub(crate) const RAFT_LAST_LOG_INDEX: &str = "keyfleet_raft_last_log_index";
pub(crate) const RAFT_COMMITTED_INDEX: &str = "keyfleet_raft_committed_index";
pub(crate) const RAFT_APPLIED_INDEX: &str = "keyfleet_raft_applied_index";
pub(crate) const RAFT_APPLY_LAG: &str = "keyfleet_raft_apply_lag_entries";
pub(crate) const RAFT_FAILURE_TOLERANCE: &str = "keyfleet_raft_failure_tolerance_voters";
pub(crate) const RAFT_SNAPSHOT_AGE: &str = "keyfleet_raft_snapshot_age_seconds";
pub(crate) const GUESSES_COUNTED: &str = "keyfleet_guesses_counted_total";
pub(crate) const LOCKOUTS: &str = "keyfleet_lockouts_total";
pub(crate) const RECOVERIES_SUCCEEDED: &str = "keyfleet_recoveries_succeeded_total";
pub(crate) const HSM_PROBE_DURATION: &str = "keyfleet_hsm_probe_duration_seconds";
pub(crate) const HSM_PROBE_ERRORS: &str = "keyfleet_hsm_probe_errors_total";
pub(crate) const READY: &str = "keyfleet_ready";

/// Interval between two updates of the gauges when Raft reports no change, so that the
/// snapshot age keeps growing.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

/// Histogram buckets of the HSM probe, in seconds: from a local SoftHSM2 call to a slow
/// network HSM.
const HSM_PROBE_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// The Prometheus endpoint and the task that copies Raft metrics into its gauges.
#[derive(Debug)]
pub(crate) struct MetricsExporter {
    endpoint: JoinHandle<()>,
    raft_gauges: JoinHandle<()>,
}

impl MetricsExporter {
    /// Installs the process-wide recorder and serves its text format on `listen`.
    ///
    /// Fails when `listen` cannot be bound, or when this process has a recorder already, which
    /// happens when a second node with `metrics_listen` starts in the same process.
    pub(crate) fn start(node_id: NodeId, listen: SocketAddr, raft: Raft) -> anyhow::Result<Self> {
        let (recorder, endpoint) = PrometheusBuilder::new()
            .with_http_listener(listen)
            .set_buckets_for_metric(
                Matcher::Full(HSM_PROBE_DURATION.to_owned()),
                HSM_PROBE_BUCKETS,
            )
            .context("setting the HSM probe histogram buckets")?
            .build()
            .with_context(|| format!("starting the metrics endpoint on {listen}"))?;
        metrics::set_global_recorder(recorder).map_err(|_| {
            anyhow::anyhow!("a metrics recorder is installed already in this process")
        })?;
        describe_all();

        let endpoint = tokio::spawn(async move {
            if let Err(error) = endpoint.await {
                tracing::error!(node_id, ?error, "metrics endpoint failed");
            }
        });
        let raft_gauges = tokio::spawn(record_raft_gauges(raft));
        tracing::info!(node_id, metrics_listen = %listen, "metrics endpoint started");

        Ok(Self {
            endpoint,
            raft_gauges,
        })
    }

    /// Stops the endpoint and the gauge updates.
    pub(crate) fn stop(self) {
        self.endpoint.abort();
        self.raft_gauges.abort();
    }
}

/// Describes every metric and registers the counters at 0, so that the page lists each name
/// from the start.
fn describe_all() {
    let gauges = [
        (RAFT_TERM, Unit::Count, "Current Raft term."),
        (
            RAFT_LEADER_ID,
            Unit::Count,
            "Node id of the leader this node knows, 0 when it knows none.",
        ),
        (
            RAFT_LAST_LOG_INDEX,
            Unit::Count,
            "Index of the last entry in this node's log.",
        ),
        (
            RAFT_COMMITTED_INDEX,
            Unit::Count,
            "Last log index this node knows as committed.",
        ),
        (
            RAFT_APPLIED_INDEX,
            Unit::Count,
            "Last log index applied to this node's state machine.",
        ),
        (
            RAFT_APPLY_LAG,
            Unit::Count,
            "Committed entries this node has not applied yet.",
        ),
        (
            RAFT_FAILURE_TOLERANCE,
            Unit::Count,
            "Voters the cluster can lose and keep a majority: voters minus majority.",
        ),
        (
            RAFT_SNAPSHOT_AGE,
            Unit::Seconds,
            "Time since this node saw its snapshot index change, or since it started.",
        ),
        (
            READY,
            Unit::Count,
            "1 while the keyfleet.v1.Vault health status is SERVING, else 0.",
        ),
    ];
    for (name, unit, help) in gauges {
        describe_gauge!(name, unit, help);
    }

    let counters = [
        (
            RAFT_LEADER_CHANGES,
            "Leaders this node has seen elected, one per term and leader.",
        ),
        (
            GUESSES_COUNTED,
            "Guesses that a committed ConsumeGuess counted, on this node's RecoveryStart calls.",
        ),
        (
            LOCKOUTS,
            "Lock commands from this node that locked a record.",
        ),
        (
            RECOVERIES_SUCCEEDED,
            "RecoveryFinish calls on this node that returned the secret.",
        ),
        (
            HSM_PROBE_ERRORS,
            "HSM health probes that failed or timed out.",
        ),
    ];
    for (name, help) in counters {
        describe_counter!(name, Unit::Count, help);
        counter!(name).increment(0);
    }

    describe_histogram!(
        HSM_PROBE_DURATION,
        Unit::Seconds,
        "Duration of the HSM health probe, a 1-byte random number request."
    );
}

/// The Raft values behind the gauges, read from one metrics update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RaftValues {
    term: u64,
    leader: Option<NodeId>,
    last_log_index: u64,
    committed_index: u64,
    applied_index: u64,
    snapshot_index: Option<u64>,
    voters: usize,
}

impl RaftValues {
    fn read(raft: &Raft) -> Self {
        let metrics = raft.metrics();
        let metrics = metrics.borrow_watched();

        Self {
            term: metrics.current_term,
            leader: metrics.current_leader,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            committed_index: metrics.local_committed.map_or(0, |id| id.index),
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
            snapshot_index: metrics.snapshot.map(|id| id.index),
            voters: metrics.membership_config.membership().voter_ids().count(),
        }
    }
}

/// Copies the Raft metrics into the gauges on every change of term, leader, state or membership
/// and every [`GAUGE_INTERVAL`]. Returns when Raft stops.
async fn record_raft_gauges(raft: Raft) {
    let mut changes = raft.server_metrics();
    let mut interval = tokio::time::interval(GAUGE_INTERVAL);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);

    let mut counted_leader: Option<(u64, NodeId)> = None;
    let mut snapshot_index = None;
    let mut snapshot_changed_at = Instant::now();

    loop {
        let values = RaftValues::read(&raft);

        if let Some(leader) = values.leader
            && counted_leader != Some((values.term, leader))
        {
            counter!(RAFT_LEADER_CHANGES).increment(1);
            counted_leader = Some((values.term, leader));
        }
        if values.snapshot_index != snapshot_index {
            snapshot_index = values.snapshot_index;
            snapshot_changed_at = Instant::now();
        }

        let majority = values.voters / 2 + 1;
        gauge!(RAFT_TERM).set(values.term as f64);
        gauge!(RAFT_LEADER_ID).set(values.leader.unwrap_or(0) as f64);
        gauge!(RAFT_LAST_LOG_INDEX).set(values.last_log_index as f64);
        gauge!(RAFT_COMMITTED_INDEX).set(values.committed_index as f64);
        gauge!(RAFT_APPLIED_INDEX).set(values.applied_index as f64);
        gauge!(RAFT_APPLY_LAG)
            .set(values.committed_index.saturating_sub(values.applied_index) as f64);
        gauge!(RAFT_FAILURE_TOLERANCE).set(values.voters.saturating_sub(majority) as f64);
        gauge!(RAFT_SNAPSHOT_AGE).set(snapshot_changed_at.elapsed().as_secs_f64());

        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = interval.tick() => {}
        }
    }
}
