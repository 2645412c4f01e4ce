use std::net::SocketAddr;

use keyfleet_raft::Raft;
use serde::Serialize;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;

use crate::proto::RaftMessage;
use crate::proto::SnapshotChunk;
use crate::proto::raft_server;
use crate::service_error::ServiceError;
use crate::snapshot_receiver::receive_snapshot;
use crate::wire;

/// The `keyfleet.raft.v1.Raft` gRPC service: decodes each request and hands it to the local
/// Raft node.
#[derive(Clone)]
pub struct RaftService {
    raft: Raft,
}

impl std::fmt::Debug for RaftService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftService").finish_non_exhaustive()
    }
}

impl RaftService {
    /// Creates the service for `raft`.
    pub fn new(raft: Raft) -> Self {
        Self { raft }
    }
}

/// Logs a failed RPC with the peer's address and returns its status.
fn reject(rpc: &'static str, peer: Option<SocketAddr>, error: &ServiceError) -> Status {
    let status = error.to_status();

    tracing::warn!(
        rpc,
        peer = ?peer,
        code = ?status.code(),
        %error,
        "Raft RPC rejected"
    );

    status
}

fn encode_response<T: Serialize>(
    value: &T,
    value_name: &'static str,
) -> Result<Response<RaftMessage>, ServiceError> {
    let postcard = wire::encode(value, value_name).map_err(ServiceError::EncodeResponse)?;

    Ok(Response::new(RaftMessage { postcard }))
}

impl RaftService {
    async fn handle_append_entries(
        &self,
        message: RaftMessage,
    ) -> Result<Response<RaftMessage>, ServiceError> {
        let request = wire::decode(&message.postcard, "AppendEntriesRequest")
            .map_err(ServiceError::InvalidRequest)?;

        let response = self
            .raft
            .append_entries(request)
            .await
            .map_err(ServiceError::RaftStopped)?;

        encode_response(&response, "AppendEntriesResponse")
    }

    async fn handle_vote(
        &self,
        message: RaftMessage,
        pre_vote: bool,
    ) -> Result<Response<RaftMessage>, ServiceError> {
        let request =
            wire::decode(&message.postcard, "VoteRequest").map_err(ServiceError::InvalidRequest)?;

        let result = if pre_vote {
            self.raft.pre_vote(request).await
        } else {
            self.raft.vote(request).await
        };
        let response = result.map_err(ServiceError::RaftStopped)?;

        encode_response(&response, "VoteResponse")
    }

    async fn handle_install_snapshot(
        &self,
        stream: Streaming<SnapshotChunk>,
    ) -> Result<Response<RaftMessage>, ServiceError> {
        let (vote, snapshot) = receive_snapshot(stream).await?;

        tracing::info!(
            snapshot = %snapshot.meta,
            len = snapshot.snapshot.len(),
            "received snapshot"
        );

        let response = self
            .raft
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(|fatal| ServiceError::RaftStopped(fatal.into()))?;

        encode_response(&response, "SnapshotResponse")
    }
}

#[tonic::async_trait]
impl raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let peer = request.remote_addr();

        self.handle_append_entries(request.into_inner())
            .await
            .map_err(|error| reject("append_entries", peer, &error))
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let peer = request.remote_addr();

        self.handle_vote(request.into_inner(), false)
            .await
            .map_err(|error| reject("vote", peer, &error))
    }

    async fn pre_vote(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let peer = request.remote_addr();

        self.handle_vote(request.into_inner(), true)
            .await
            .map_err(|error| reject("pre_vote", peer, &error))
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftMessage>, Status> {
        let peer = request.remote_addr();

        self.handle_install_snapshot(request.into_inner())
            .await
            .map_err(|error| reject("install_snapshot", peer, &error))
    }
}
