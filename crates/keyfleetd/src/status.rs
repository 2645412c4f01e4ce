//! The node's view of the cluster, from openraft's metrics and the health monitor.

use keyfleet_api::node::{Member, ReplicationProgress, StatusResponse};
use keyfleet_raft::{NodeAddresses, NodeId, Raft};
use openraft::async_runtime::WatchReceiver;
use openraft::{Instant as _, ServerState};

use crate::node_health::NodeHealth;

/// Builds a `StatusResponse` from the current Raft metrics and `health`.
pub(crate) async fn status_of(raft: &Raft, health: &NodeHealth) -> StatusResponse {
    let metrics = raft.metrics().borrow_watched().clone();
    let membership = metrics.membership_config.membership();
    let member = |id: NodeId| {
        let addresses = membership.get_node(&id).cloned().unwrap_or_default();
        to_member(id, addresses)
    };

    let leader_id = metrics.current_leader.unwrap_or(0);
    let leader_api_addr = metrics
        .current_leader
        .and_then(|id| membership.get_node(&id))
        .map(|node| node.api.clone())
        .unwrap_or_default();

    let millis_since_leader_contact = if metrics.state == ServerState::Leader {
        metrics
            .last_quorum_acked
            .as_ref()
            .map(|at| at.elapsed().as_millis() as u64)
    } else {
        raft.with_raft_state(|state| {
            state
                .vote_last_modified()
                .map(|at| at.elapsed().as_millis() as u64)
        })
        .await
        .ok()
        .flatten()
    };

    StatusResponse {
        node_id: metrics.id,
        state: match metrics.running_state {
            Ok(()) => format!("{:?}", metrics.state),
            Err(_) => "Stopped".to_owned(),
        },
        current_term: metrics.current_term,
        leader_id,
        leader_api_addr,
        last_log_index: metrics.last_log_index.unwrap_or(0),
        committed_index: metrics.local_committed.map_or(0, |id| id.index),
        applied_index: metrics.last_applied.map_or(0, |id| id.index),
        snapshot_index: metrics.snapshot.map_or(0, |id| id.index),
        purged_index: metrics.purged.map_or(0, |id| id.index),
        voters: membership.voter_ids().map(member).collect(),
        learners: membership.learner_ids().map(member).collect(),
        ready: health.ready,
        readiness_reason: health.readiness_reason.clone(),
        hsm_healthy: health.hsm_error.is_none(),
        hsm_error: health.hsm_error.clone().unwrap_or_default(),
        millis_since_leader_contact,
        replication: replication_of(&metrics),
        // The node service fills these two from the HSM and the state machine.
        signing_public_key: Vec::new(),
        bundle_epoch: 0,
    }
}

/// Returns the leader's replication progress toward every other member, empty on other nodes.
fn replication_of(
    metrics: &openraft::RaftMetrics<keyfleet_raft::TypeConfig>,
) -> Vec<ReplicationProgress> {
    let Some(replication) = metrics.replication.as_ref() else {
        return Vec::new();
    };

    replication
        .iter()
        .map(|(id, matched)| {
            let millis_since_ack = metrics
                .heartbeat
                .as_ref()
                .and_then(|heartbeat| heartbeat.get(id).copied().flatten())
                .map(|at| at.elapsed().as_millis() as u64);
            ReplicationProgress {
                node_id: *id,
                matched_index: matched.as_ref().map(|log_id| log_id.index),
                millis_since_ack,
            }
        })
        .collect()
}

fn to_member(id: NodeId, addresses: NodeAddresses) -> Member {
    Member {
        id,
        raft_addr: addresses.raft,
        api_addr: addresses.api,
    }
}
