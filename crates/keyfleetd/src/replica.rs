//! This node's Raft replica as the API services use it: writes and linearizable reads on the
//! leader, with openraft's errors mapped to gRPC statuses.

use std::time::Duration;

use keyfleet_api::ErrorReason;
use keyfleet_raft::{
    BundleRecord, Command, FleetRecord, NodeId, Raft, Request, RequestId, Response,
    StateMachineStore, TypeConfig, UserId, UserRecord,
};
use openraft::ReadPolicy;
use openraft::error::{ClientWriteError, LinearizableReadError, RaftError};
use tonic::{Code, Status};

use crate::error_status::error_status;
use crate::leader_hint::{no_quorum, not_leader, raft_stopped};

/// The Raft handle and state machine of this node, with the quorum timeout.
#[derive(Clone)]
pub(crate) struct Replica {
    pub(crate) node_id: NodeId,
    pub(crate) raft: Raft,
    pub(crate) state_machine: StateMachineStore,
    pub(crate) write_timeout: Duration,
}

/// Outcome and log index of a committed and applied write.
pub(crate) struct Written {
    pub(crate) response: Response,
    pub(crate) log_index: u64,
}

impl Replica {
    /// Proposes `request` and returns its outcome once a majority committed it and this node
    /// applied it.
    pub(crate) async fn write(&self, request: Request) -> Result<Written, Status> {
        let written = tokio::time::timeout(self.write_timeout, self.raft.client_write(request))
            .await
            .map_err(|_| no_quorum(self.node_id, "the write", self.timeout_ms()))?
            .map_err(|error| self.write_failed("the write", error))?;

        Ok(Written {
            response: written.data,
            log_index: written.log_id.index,
        })
    }

    /// Proposes `command` under `request_id` and returns its outcome, as [`Replica::write`].
    pub(crate) async fn run(
        &self,
        request_id: RequestId,
        command: Command,
    ) -> Result<Response, Status> {
        let request = Request {
            request_id,
            command,
        };

        Ok(self.write(request).await?.response)
    }

    /// Confirms with a ReadIndex round that this node is the leader and has applied every entry
    /// committed before the call.
    pub(crate) async fn linearize(&self) -> Result<(), Status> {
        let read = tokio::time::timeout(
            self.write_timeout,
            self.raft.ensure_linearizable(ReadPolicy::ReadIndex),
        )
        .await
        .map_err(|_| no_quorum(self.node_id, "the read", self.timeout_ms()))?;

        match read {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(forward))) => {
                Err(not_leader(self.node_id, &forward))
            }
            Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(error))) => {
                tracing::warn!(node_id = self.node_id, %error, "read rejected: no quorum");
                Err(no_quorum(self.node_id, "the read", self.timeout_ms()))
            }
            Err(RaftError::Fatal(fatal)) => {
                tracing::error!(node_id = self.node_id, error = %fatal, "Raft has stopped");
                Err(raft_stopped(self.node_id))
            }
        }
    }

    /// Reads `user`'s applied record on this node, without a ReadIndex round.
    pub(crate) async fn local_user(&self, user: &UserId) -> Result<Option<UserRecord>, Status> {
        self.state_machine.user(user).await.map_err(|error| {
            tracing::error!(node_id = self.node_id, %error, "reading the state machine failed");
            Status::internal(format!("reading the state machine failed: {error}"))
        })
    }

    /// Reads the applied fleet setup on this node.
    pub(crate) async fn local_fleet(&self) -> Result<Option<FleetRecord>, Status> {
        self.state_machine.fleet().await.map_err(|error| {
            tracing::error!(node_id = self.node_id, %error, "reading the state machine failed");
            Status::internal(format!("reading the state machine failed: {error}"))
        })
    }

    /// Reads the applied validation bundle on this node.
    pub(crate) async fn local_bundle(&self) -> Result<Option<BundleRecord>, Status> {
        self.state_machine.bundle().await.map_err(|error| {
            tracing::error!(node_id = self.node_id, %error, "reading the state machine failed");
            Status::internal(format!("reading the state machine failed: {error}"))
        })
    }

    /// Returns the epoch of the applied validation bundle, or 0 when none was published.
    pub(crate) async fn bundle_epoch(&self) -> Result<u64, Status> {
        Ok(self.local_bundle().await?.map_or(0, |bundle| bundle.epoch))
    }

    pub(crate) fn timeout_ms(&self) -> u64 {
        self.write_timeout.as_millis() as u64
    }

    /// Maps a failed write or membership change to a status, logging what was not routine.
    pub(crate) fn write_failed(
        &self,
        what: &str,
        error: RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
    ) -> Status {
        match error {
            RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
                not_leader(self.node_id, &forward)
            }
            RaftError::APIError(ClientWriteError::LogEntryDiscarded(forward)) => {
                tracing::warn!(node_id = self.node_id, what, leader = ?forward.leader_id, "proposal discarded by a leader change");
                error_status(
                    Code::Unavailable,
                    ErrorReason::NoQuorum,
                    format!(
                        "{what} was discarded by a leader change before it committed; its \
                         outcome is unknown, so retry with the same request id"
                    ),
                    &[],
                )
            }
            RaftError::APIError(other) => {
                tracing::warn!(node_id = self.node_id, what, error = %other, "request rejected");
                Status::failed_precondition(format!("{what} rejected: {other}"))
            }
            RaftError::Fatal(fatal) => {
                tracing::error!(node_id = self.node_id, what, error = %fatal, "Raft has stopped");
                raft_stopped(self.node_id)
            }
        }
    }
}
