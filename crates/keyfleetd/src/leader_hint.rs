//! Mapping openraft's routing and quorum errors to gRPC statuses with a leader hint.

use keyfleet_api::{ErrorReason, LEADER_API_METADATA, LEADER_ID_METADATA};
use keyfleet_raft::{NodeId, TypeConfig};
use openraft::error::ForwardToLeader;
use tonic::{Code, Status};

use crate::error_status::error_status;

/// Builds the `UNAVAILABLE` status a node returns when it is not the leader, with the leader's
/// id and API address in the metadata when this node has them.
pub(crate) fn not_leader(this_node: NodeId, forward: &ForwardToLeader<TypeConfig>) -> Status {
    let (Some(leader_id), Some(leader)) = (forward.leader_id, forward.leader_node.as_ref()) else {
        return error_status(
            Code::Unavailable,
            ErrorReason::NotLeader,
            format!(
                "node {this_node} is not the leader and knows no leader: an election is in \
                 progress or this node is cut off from its quorum; retry with the same request id"
            ),
            &[],
        );
    };

    let mut status = error_status(
        Code::Unavailable,
        ErrorReason::NotLeader,
        format!(
            "node {this_node} is not the leader; retry at the leader, node {leader_id} at {}",
            leader.api
        ),
        &[
            ("leader_id", leader_id.to_string()),
            ("leader_api", leader.api.clone()),
        ],
    );
    let metadata = status.metadata_mut();
    if let Ok(value) = leader_id.to_string().parse() {
        metadata.insert(LEADER_ID_METADATA, value);
    }
    if let Ok(value) = leader.api.parse() {
        metadata.insert(LEADER_API_METADATA, value);
    }
    status
}

/// Builds the status for a write or read that found no quorum within `timeout_ms`.
pub(crate) fn no_quorum(this_node: NodeId, what: &str, timeout_ms: u64) -> Status {
    error_status(
        Code::Unavailable,
        ErrorReason::NoQuorum,
        format!(
            "{what} on node {this_node} did not reach a quorum within {timeout_ms} ms: this node \
             may be on the minority side of a partition; its outcome is unknown, so retry with \
             the same request id"
        ),
        &[],
    )
}

/// Builds the status for a call that reached a Raft node that has stopped.
pub(crate) fn raft_stopped(this_node: NodeId) -> Status {
    error_status(
        Code::Unavailable,
        ErrorReason::NoQuorum,
        format!("Raft on node {this_node} has stopped; use another node"),
        &[],
    )
}
