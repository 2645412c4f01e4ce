use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use keyfleet_raft::NodeId;
use keyfleet_raft::Snapshot;
use keyfleet_raft::TypeConfig;
use keyfleet_raft::Vote;
use openraft::OptionalSend;
use openraft::errors::NetworkError;
use openraft::errors::RPCError;
use openraft::errors::ReplicationClosed;
use openraft::errors::StreamingError;
use openraft::errors::Unreachable;
use openraft::network::RPCOption;
use openraft::network::RPCTypes;
use openraft::network::v2::RaftNetworkV2;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::TransferLeaderRequest;
use openraft::raft::TransferLeaderResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use rustls::ClientConfig;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::Status;
use tonic::transport::Channel;

use crate::MAX_MESSAGE_BYTES;
use crate::peer_address::PeerAddressError;
use crate::proto::RaftMessage;
use crate::proto::SnapshotHeader;
use crate::proto::raft_client::RaftClient;
use crate::snapshot_chunks::ReadFailure;
use crate::snapshot_chunks::SNAPSHOT_CHUNK_BYTES;
use crate::snapshot_chunks::SnapshotChunks;
use crate::snapshot_chunks::snapshot_stream;
use crate::status_mapping::CallContext;
use crate::tls_config_cell::TlsConfigCell;
use crate::wire;

/// Request-response RPCs of the `keyfleet.raft.v1.Raft` service.
#[derive(Debug, Clone, Copy)]
enum UnaryRpc {
    AppendEntries,
    Vote,
    PreVote,
    TransferLeader,
}

impl UnaryRpc {
    fn rpc_type(self) -> RPCTypes {
        match self {
            UnaryRpc::AppendEntries => RPCTypes::AppendEntries,
            UnaryRpc::Vote | UnaryRpc::PreVote => RPCTypes::Vote,
            UnaryRpc::TransferLeader => RPCTypes::TransferLeader,
        }
    }

    fn name(self) -> &'static str {
        match self {
            UnaryRpc::AppendEntries => "append_entries",
            UnaryRpc::Vote => "vote",
            UnaryRpc::PreVote => "pre_vote",
            UnaryRpc::TransferLeader => "transfer_leader",
        }
    }
}

/// openraft network client for one peer: sends Raft RPCs to the peer's `keyfleet.raft.v1.Raft`
/// service.
///
/// The gRPC channel connects lazily on the first RPC and reconnects after a failure. Every RPC
/// ends at `RPCOption::soft_ttl()`: the client stops waiting then, and the deadline also travels
/// to the server in the `grpc-timeout` header.
#[derive(Debug)]
pub struct PeerClient {
    source: NodeId,
    target: NodeId,
    client: Result<RaftClient<Channel>, PeerAddressError>,
}

impl PeerClient {
    /// Creates a client from `source` to the node `target` at `addr` (`host:port`), without
    /// connecting.
    ///
    /// An invalid address is reported by every RPC as [`Unreachable`], because openraft's
    /// factory method cannot return an error.
    pub fn new(source: NodeId, target: NodeId, addr: &str) -> Self {
        Self::build(source, target, addr, None)
    }

    /// Like [`PeerClient::new`], but dials over mutual TLS with the configuration current in
    /// `tls`, and accepts only a server certificate that names `target`.
    pub fn with_tls(
        source: NodeId,
        target: NodeId,
        addr: &str,
        tls: Arc<TlsConfigCell<ClientConfig>>,
    ) -> Self {
        Self::build(source, target, addr, Some(tls))
    }

    fn build(
        source: NodeId,
        target: NodeId,
        addr: &str,
        tls: Option<Arc<TlsConfigCell<ClientConfig>>>,
    ) -> Self {
        let client = crate::peer_address::lazy_channel(target, addr, tls).map(|channel| {
            RaftClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
        });

        if let Err(error) = &client {
            tracing::error!(source, target, %error, "invalid Raft peer address");
        }

        Self {
            source,
            target,
            client,
        }
    }

    fn context(&self, rpc: RPCTypes, option: &RPCOption) -> CallContext {
        CallContext {
            rpc,
            source: self.source,
            target: self.target,
            deadline: option.soft_ttl(),
        }
    }

    fn grpc_client(&self) -> Result<RaftClient<Channel>, Unreachable<TypeConfig>> {
        match &self.client {
            Ok(client) => Ok(client.clone()),
            Err(error) => Err(Unreachable::new(error)),
        }
    }

    /// Sends one request-response RPC and decodes the response.
    async fn call<Req, Resp>(
        &self,
        rpc: UnaryRpc,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let context = self.context(rpc.rpc_type(), option);
        let mut client = self.grpc_client()?;

        let payload = wire::encode(request, rpc.name()).map_err(|e| NetworkError::new(&e))?;
        let mut grpc_request = tonic::Request::new(RaftMessage { postcard: payload });
        grpc_request.set_timeout(context.deadline);

        let send = async {
            match rpc {
                UnaryRpc::AppendEntries => client.append_entries(grpc_request).await,
                UnaryRpc::Vote => client.vote(grpc_request).await,
                UnaryRpc::PreVote => client.pre_vote(grpc_request).await,
                UnaryRpc::TransferLeader => client.transfer_leader(grpc_request).await,
            }
        };

        let response = match tokio::time::timeout(context.deadline, send).await {
            Ok(Ok(response)) => response,
            Ok(Err(status)) => {
                self.log_failure(rpc.name(), &status);
                return Err(context.rpc_error(&status));
            }
            Err(_elapsed) => {
                self.log_timeout(rpc.name(), context.deadline);
                return Err(RPCError::Timeout(context.timeout()));
            }
        };

        let payload = response.into_inner().postcard;
        wire::decode(&payload, rpc.name()).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }

    /// Streams the snapshot from its file to the peer, one chunk at a time, and waits for the
    /// peer to install it.
    async fn send_snapshot(
        &self,
        vote: Vote,
        snapshot: Snapshot,
        context: CallContext,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.grpc_client()?;

        let total_len = snapshot.snapshot.len();
        let header = SnapshotHeader {
            vote: wire::encode(&vote, "Vote").map_err(|e| NetworkError::new(&e))?,
            meta: wire::encode(&snapshot.meta, "SnapshotMeta")
                .map_err(|e| NetworkError::new(&e))?,
            total_len,
        };
        let chunks = SnapshotChunks::new(snapshot.snapshot, SNAPSHOT_CHUNK_BYTES);
        let read_failure = ReadFailure::default();

        let mut grpc_request =
            tonic::Request::new(snapshot_stream(header, chunks, read_failure.clone()));
        grpc_request.set_timeout(context.deadline);

        tracing::info!(
            source = self.source,
            target = self.target,
            snapshot = %snapshot.meta,
            bytes = total_len,
            "sending snapshot"
        );
        let response =
            match tokio::time::timeout(context.deadline, client.install_snapshot(grpc_request))
                .await
            {
                Ok(Ok(response)) => response,
                Ok(Err(status)) if status.code() == tonic::Code::DataLoss => {
                    // The receiver got the whole data and it failed its check, so this node's
                    // snapshot file is damaged and a retry sends the same bytes.
                    tracing::warn!(
                        source = self.source,
                        target = self.target,
                        snapshot = %snapshot.meta,
                        message = status.message(),
                        "the target rejected this node's snapshot as invalid; restart this node \
                         to drop its snapshot file and build a new one"
                    );
                    return Err(context.streaming_error(&status));
                }
                Ok(Err(status)) => {
                    self.log_failure("install_snapshot", &status);
                    if let Some(error) = take_read_failure(&read_failure) {
                        return Err(self.read_failed(error));
                    }
                    return Err(context.streaming_error(&status));
                }
                Err(_elapsed) => {
                    self.log_timeout("install_snapshot", context.deadline);
                    return Err(StreamingError::Timeout(context.timeout()));
                }
            };
        tracing::info!(
            source = self.source,
            target = self.target,
            snapshot = %snapshot.meta,
            bytes = total_len,
            "sent snapshot"
        );

        let payload = response.into_inner().postcard;
        wire::decode(&payload, "SnapshotResponse").map_err(|e| NetworkError::new(&e).into())
    }

    /// Logs a failed read of the local snapshot file and converts it for openraft.
    fn read_failed(&self, error: std::io::Error) -> StreamingError<TypeConfig> {
        tracing::warn!(
            source = self.source,
            target = self.target,
            %error,
            "reading the snapshot file failed while sending it"
        );
        NetworkError::new(&error).into()
    }

    // openraft 0.10.0-alpha.37 logs failed heartbeats and replication RPCs itself, and retries
    // after a backoff, so these stay at debug level to keep a down peer from flooding the log.
    fn log_failure(&self, rpc: &'static str, status: &Status) {
        tracing::debug!(
            source = self.source,
            target = self.target,
            rpc,
            code = ?status.code(),
            message = status.message(),
            "Raft RPC failed"
        );
    }

    fn log_timeout(&self, rpc: &'static str, deadline: Duration) {
        tracing::debug!(
            source = self.source,
            target = self.target,
            rpc,
            deadline_ms = deadline.as_millis(),
            "Raft RPC timed out"
        );
    }
}

/// Takes the error that ended a snapshot stream early, if a read failed.
fn take_read_failure(failure: &ReadFailure) -> Option<std::io::Error> {
    failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = keyfleet_raft::SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(UnaryRpc::AppendEntries, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(UnaryRpc::Vote, &rpc, &option).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(UnaryRpc::PreVote, &rpc, &option).await
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(UnaryRpc::TransferLeader, &rpc, &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let context = self.context(RPCTypes::InstallSnapshot, &option);

        tokio::select! {
            closed = cancel => {
                tracing::debug!(source = self.source, target = self.target, %closed, "snapshot transfer canceled");
                Err(StreamingError::Closed(closed))
            }
            result = self.send_snapshot(vote, snapshot, context) => result,
        }
    }
}
