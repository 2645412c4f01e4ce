use std::net::SocketAddr;
use std::sync::Arc;

use keyfleet_raft::Raft;
use keyfleet_raft::Snapshot;
use keyfleet_raft::SnapshotDir;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use tokio::sync::Semaphore;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;

use crate::node_identity::{certificate_names, node_name};
use crate::proto::RaftMessage;
use crate::proto::SnapshotChunk;
use crate::proto::raft_server;
use crate::service_error::ServiceError;
use crate::snapshot_receiver::receive_data;
use crate::snapshot_receiver::receive_header;
use crate::wire;

/// The `keyfleet.raft.v1.Raft` gRPC service: decodes each request and hands it to the local
/// Raft node.
///
/// It writes an incoming snapshot to a temporary file in the node's snapshot directory, and
/// receives one snapshot at a time, so incoming snapshots take the disk space of one at most.
#[derive(Clone)]
pub struct RaftService {
    raft: Raft,
    check_peer_identity: bool,
    snapshots: SnapshotDir,
    receiving: Arc<Semaphore>,
}

impl std::fmt::Debug for RaftService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftService").finish_non_exhaustive()
    }
}

impl RaftService {
    /// Creates the service for `raft`, which receives snapshots into `snapshots`, the
    /// directory of its state machine's snapshot files.
    pub fn new(raft: Raft, snapshots: SnapshotDir) -> Self {
        Self {
            raft,
            check_peer_identity: false,
            snapshots,
            receiving: Arc::new(Semaphore::new(1)),
        }
    }

    /// Creates the service for `raft` behind mutual TLS: every RPC must come over a connection
    /// whose client certificate names the node that the request names as its sender.
    pub fn with_peer_identity_check(raft: Raft, snapshots: SnapshotDir) -> Self {
        Self {
            check_peer_identity: true,
            ..Self::new(raft, snapshots)
        }
    }

    /// Checks that the connection's client certificate names node `claimed`. Without the check
    /// enabled, every caller passes.
    fn check_peer(&self, certs: Option<&PeerCerts>, claimed: u64) -> Result<(), ServiceError> {
        if !self.check_peer_identity {
            return Ok(());
        }
        let named = certs
            .and_then(|certs| certs.first())
            .is_some_and(|leaf| certificate_names(leaf, &node_name(claimed)));

        if named {
            Ok(())
        } else {
            Err(ServiceError::PeerIdentity { claimed })
        }
    }
}

/// The client certificate chain of a TLS connection, leaf first.
type PeerCerts = Arc<Vec<CertificateDer<'static>>>;

/// Returns the id of the node that cast `vote`: the leader or the candidate.
fn voter(vote: &keyfleet_raft::Vote) -> u64 {
    use openraft::vote::RaftLeaderId;

    *vote.leader_id().node_id()
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
        certs: Option<PeerCerts>,
        message: RaftMessage,
    ) -> Result<Response<RaftMessage>, ServiceError> {
        let request: openraft::raft::AppendEntriesRequest<keyfleet_raft::TypeConfig> =
            wire::decode(&message.postcard, "AppendEntriesRequest")
                .map_err(ServiceError::InvalidRequest)?;
        self.check_peer(certs.as_ref(), voter(&request.vote))?;

        let response = self
            .raft
            .append_entries(request)
            .await
            .map_err(ServiceError::RaftStopped)?;

        encode_response(&response, "AppendEntriesResponse")
    }

    async fn handle_vote(
        &self,
        certs: Option<PeerCerts>,
        message: RaftMessage,
        pre_vote: bool,
    ) -> Result<Response<RaftMessage>, ServiceError> {
        let request: openraft::raft::VoteRequest<keyfleet_raft::TypeConfig> =
            wire::decode(&message.postcard, "VoteRequest").map_err(ServiceError::InvalidRequest)?;
        self.check_peer(certs.as_ref(), voter(&request.vote))?;

        let result = if pre_vote {
            self.raft.pre_vote(request).await
        } else {
            self.raft.vote(request).await
        };
        let response = result.map_err(ServiceError::RaftStopped)?;

        encode_response(&response, "VoteResponse")
    }

    async fn handle_transfer_leader(
        &self,
        certs: Option<PeerCerts>,
        message: RaftMessage,
    ) -> Result<Response<RaftMessage>, ServiceError> {
        let request: openraft::raft::TransferLeaderRequest<keyfleet_raft::TypeConfig> =
            wire::decode(&message.postcard, "TransferLeaderRequest")
                .map_err(ServiceError::InvalidRequest)?;
        self.check_peer(certs.as_ref(), voter(request.from_leader()))?;

        tracing::info!(
            from = %request.from_leader(),
            to = request.to_node_id(),
            "leader hands leadership over"
        );
        let response = self
            .raft
            .handle_transfer_leader(request)
            .await
            .map_err(|fatal| ServiceError::RaftStopped(fatal.into()))?;

        encode_response(&response, "TransferLeaderResponse")
    }

    /// Checks the header and the sender, writes the data to a file and checks it, then hands it
    /// to Raft. The permit to receive is held until Raft has installed the snapshot, because the
    /// received file takes disk space until then.
    async fn handle_install_snapshot(
        &self,
        certs: Option<PeerCerts>,
        mut stream: Streaming<SnapshotChunk>,
    ) -> Result<Response<RaftMessage>, ServiceError> {
        let header = receive_header(&mut stream).await?;
        self.check_peer(certs.as_ref(), voter(&header.vote))?;
        let _permit = self
            .receiving
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::SnapshotBusy)?;

        tracing::info!(
            snapshot = %header.meta,
            bytes = header.total_len,
            "receiving snapshot"
        );
        let (data, records) = receive_data(&mut stream, header.total_len, &self.snapshots).await?;
        tracing::info!(
            snapshot = %header.meta,
            bytes = data.len(),
            records,
            "received snapshot"
        );

        let snapshot = Snapshot {
            meta: header.meta,
            snapshot: data,
        };
        let response = self
            .raft
            .install_full_snapshot(header.vote, snapshot)
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
        let certs = request.peer_certs();

        self.handle_append_entries(certs, request.into_inner())
            .await
            .map_err(|error| reject("append_entries", peer, &error))
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let peer = request.remote_addr();
        let certs = request.peer_certs();

        self.handle_vote(certs, request.into_inner(), false)
            .await
            .map_err(|error| reject("vote", peer, &error))
    }

    async fn pre_vote(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let peer = request.remote_addr();
        let certs = request.peer_certs();

        self.handle_vote(certs, request.into_inner(), true)
            .await
            .map_err(|error| reject("pre_vote", peer, &error))
    }

    async fn transfer_leader(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let peer = request.remote_addr();
        let certs = request.peer_certs();

        self.handle_transfer_leader(certs, request.into_inner())
            .await
            .map_err(|error| reject("transfer_leader", peer, &error))
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftMessage>, Status> {
        let peer = request.remote_addr();
        let certs = request.peer_certs();

        self.handle_install_snapshot(certs, request.into_inner())
            .await
            .map_err(|error| reject("install_snapshot", peer, &error))
    }
}
