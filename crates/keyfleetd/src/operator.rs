//! The operator calls of the node API: leadership transfer, snapshot save and restore.

use std::time::{SystemTime, UNIX_EPOCH};

use keyfleet_api::node::{RestoreSnapshotResponse, SaveSnapshotResponse};
use keyfleet_raft::{Command, NodeId, RequestId, Response, RestoreOutcome, SnapshotFile};
use openraft::async_runtime::WatchReceiver;
use rand::RngCore;
use rand::rngs::OsRng;
use tonic::Status;

use crate::leader_hint::raft_stopped;
use crate::replica::Replica;

/// Hands leadership to `target` and waits until it leads, for at most the write timeout.
pub(crate) async fn transfer_leader(replica: &Replica, target: NodeId) -> Result<NodeId, Status> {
    replica.linearize().await?;
    let node_id = replica.node_id;
    let is_voter = replica
        .raft
        .metrics()
        .borrow_watched()
        .membership_config
        .membership()
        .voter_ids()
        .any(|id| id == target);
    if !is_voter {
        return Err(Status::invalid_argument(format!(
            "node {target} is not a voter; transfer leadership to a voter"
        )));
    }
    if target == node_id {
        return Ok(node_id);
    }

    tracing::info!(node_id, target, "transferring leadership");
    replica
        .raft
        .trigger()
        .transfer_leader(target)
        .await
        .map_err(|_| raft_stopped(node_id))?;

    let mut metrics = replica.raft.metrics();
    let transferred = async {
        loop {
            let leader = metrics.borrow_watched().current_leader;
            if leader == Some(target) {
                return true;
            }
            if metrics.changed().await.is_err() {
                return false;
            }
        }
    };
    match tokio::time::timeout(replica.write_timeout, transferred).await {
        Ok(true) => Ok(target),
        Ok(false) => Err(raft_stopped(node_id)),
        Err(_) => {
            tracing::warn!(
                node_id,
                target,
                "leadership transfer did not finish in time"
            );
            Err(Status::deadline_exceeded(format!(
                "node {target} did not take over leadership within {} ms: check that it runs \
                 and has caught up, then retry",
                replica.timeout_ms()
            )))
        }
    }
}

/// Builds a snapshot file of the applied state after a ReadIndex round.
pub(crate) async fn save_snapshot(replica: &Replica) -> Result<SaveSnapshotResponse, Status> {
    replica.linearize().await?;
    let node_id = replica.node_id;
    let (last_applied, image) = replica
        .state_machine
        .applied_image()
        .await
        .map_err(|error| {
            tracing::error!(node_id, %error, "reading the state machine failed");
            Status::internal(format!("reading the state machine failed: {error}"))
        })?;

    let file = SnapshotFile {
        fleet_id: image
            .fleet
            .as_ref()
            .map(|fleet| fleet.fleet_id.clone())
            .unwrap_or_default(),
        last_log_term: last_applied.map_or(0, |log_id| log_id.leader_id.term),
        last_log_index: last_applied.map_or(0, |log_id| log_id.index),
        created_at_unix_secs: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs()),
        image,
    };
    let bytes = file
        .encode()
        .map_err(|error| Status::internal(format!("encoding the snapshot failed: {error}")))?;
    tracing::info!(
        node_id,
        last_log_index = file.last_log_index,
        users = file.image.users.len(),
        bytes = bytes.len(),
        "snapshot saved for an operator"
    );
    Ok(SaveSnapshotResponse {
        snapshot_file: bytes,
    })
}

/// Checks a snapshot file and writes `Restore` through Raft.
pub(crate) async fn restore_snapshot(
    replica: &Replica,
    bytes: &[u8],
    allow_counter_rollback: bool,
) -> Result<RestoreSnapshotResponse, Status> {
    let node_id = replica.node_id;
    let file = SnapshotFile::decode(bytes)
        .map_err(|error| Status::invalid_argument(format!("invalid snapshot file: {error}")))?;
    if allow_counter_rollback {
        tracing::warn!(
            node_id,
            snapshot_last_log_index = file.last_log_index,
            users = file.image.users.len(),
            "restoring a snapshot with counter rollback allowed: guess counts may go down"
        );
    }

    let command = Command::Restore {
        image: file.image,
        allow_counter_rollback,
    };
    let request = keyfleet_raft::Request {
        request_id: random_request_id(),
        command,
    };
    let written = replica.write(request).await?;

    match written.response {
        Response::Restore(RestoreOutcome::Restored { users, rolled_back }) => {
            if rolled_back > 0 {
                tracing::warn!(
                    node_id,
                    log_index = written.log_index,
                    users,
                    rolled_back,
                    "snapshot restored, and it lowered guess counts or brought back locked or \
                     deleted records"
                );
            } else {
                tracing::info!(
                    node_id,
                    log_index = written.log_index,
                    users,
                    "snapshot restored"
                );
            }
            Ok(RestoreSnapshotResponse {
                log_index: written.log_index,
                users,
                rolled_back,
            })
        }
        Response::Restore(RestoreOutcome::CounterRollback { users, examples }) => {
            tracing::warn!(
                node_id,
                users,
                "snapshot restore rejected: it would roll guess counts back"
            );
            let examples: Vec<&str> = examples.iter().map(|user| user.as_str()).collect();
            let users = match users {
                1 => "1 user".to_owned(),
                count => format!("{count} users"),
            };
            Err(Status::failed_precondition(format!(
                "the snapshot would give {users} more guesses than they have now (lower \
                 guess counts, or bring back locked or deleted records), for example {examples:?}; \
                 nothing changed. Restore a newer snapshot, or pass --allow-counter-rollback if \
                 you accept handing out those guesses"
            )))
        }
        Response::Restore(RestoreOutcome::FleetMismatch {
            current_fleet_id,
            image_fleet_id,
        }) => Err(Status::failed_precondition(format!(
            "the snapshot is of fleet {image_fleet_id:?} but this cluster is fleet \
             {current_fleet_id:?}; nothing changed. Restore it into a cluster of that fleet"
        ))),
        Response::Rejected(rejection) => Err(Status::invalid_argument(format!(
            "invalid snapshot data: {rejection}"
        ))),
        other => Err(Status::internal(format!(
            "unexpected outcome of Restore: {other:?}"
        ))),
    }
}

fn random_request_id() -> RequestId {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    RequestId::from_bytes(bytes)
}
