//! The node's view of the cluster, from openraft's metrics.

use keyfleet_api::node::{Member, StatusResponse};
use keyfleet_raft::{NodeAddresses, NodeId, Raft};
use openraft::async_runtime::WatchReceiver;

/// Builds a `StatusResponse` from the current Raft metrics.
pub(crate) fn status_of(raft: &Raft) -> StatusResponse {
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
    }
}

fn to_member(id: NodeId, addresses: NodeAddresses) -> Member {
    Member {
        id,
        raft_addr: addresses.raft,
        api_addr: addresses.api,
    }
}
