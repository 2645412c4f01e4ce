use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use keyfleet_api::node::AddLearnerRequest;
use keyfleet_api::node::ChangeMembershipRequest;
use keyfleet_api::node::CompleteJoinRequest;
use keyfleet_api::node::CompleteJoinResponse;
use keyfleet_api::node::CreateJoinTokenRequest;
use keyfleet_api::node::CreateJoinTokenResponse;
use keyfleet_api::node::InitializeRequest;
use keyfleet_api::node::JoinRequest;
use keyfleet_api::node::JoinResponse;
use keyfleet_api::node::Member;
use keyfleet_api::node::NodeSigningKey;
use keyfleet_api::node::PublishBundleRequest;
use keyfleet_api::node::PublishBundleResponse;
use keyfleet_api::node::ReadRecordRequest;
use keyfleet_api::node::RestoreSnapshotRequest;
use keyfleet_api::node::RestoreSnapshotResponse;
use keyfleet_api::node::SaveSnapshotRequest;
use keyfleet_api::node::StatusRequest;
use keyfleet_api::node::StatusResponse;
use keyfleet_api::node::TransferLeaderRequest;
use keyfleet_api::node::WriteRequest;
use keyfleet_api::node::node_client::NodeClient;
use keyfleet_raft::NodeAddresses;
use keyfleet_raft::NodeId;
use keyfleet_raft::Request;
use keyfleet_raft::Response;
use keyfleet_raft::UserId;
use keyfleet_raft::UserRecord;
use tonic::Status;
use tonic::transport::Channel;
use zeroize::Zeroizing;

use crate::client_error::ClientError;
use crate::client_tls::ClientTls;
use crate::endpoint::endpoint_uri;
use crate::leader_router::LeaderRouter;
use crate::operation::Operation;
use crate::retry_policy::RetryPolicy;

/// Largest snapshot message sent or received, the node API's own limit.
const MAX_SNAPSHOT_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Client of a keyfleet fleet's node API.
///
/// Cloning is cheap, and clones share the channels and the known leader.
#[derive(Clone)]
pub struct FleetClient {
    router: LeaderRouter,
    admin_token: Option<Arc<Zeroizing<String>>>,
}

/// Prints the router, and whether the client has an admin token, but not the token.
impl std::fmt::Debug for FleetClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetClient")
            .field("router", &self.router)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

impl FleetClient {
    /// Builds a client over node API endpoints such as `http://127.0.0.1:7001` (a bare
    /// `host:port` gets `http://`). No connection is made until the first call.
    pub fn new<I, S>(endpoints: I, policy: RetryPolicy) -> Result<Self, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let router = LeaderRouter::new(endpoints, policy)?;

        Ok(Self {
            router,
            admin_token: None,
        })
    }

    /// Like [`FleetClient::new`], but dials every node over TLS with `tls`. Admin calls to a
    /// node with TLS need `tls` to carry an operator client certificate.
    pub fn with_tls<I, S>(
        endpoints: I,
        policy: RetryPolicy,
        tls: ClientTls,
    ) -> Result<Self, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Ok(Self {
            router: LeaderRouter::with_tls(endpoints, policy, tls)?,
            admin_token: None,
        })
    }

    /// Sends `token` as `authorization: Bearer <token>` on every call but Status, as the node
    /// API requires.
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(Arc::new(Zeroizing::new(token.into())));
        self
    }

    /// Wraps `message` in a request with the admin token, when the client has one.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);

        if let Some(token) = &self.admin_token
            && let Ok(value) = format!("Bearer {}", token.as_str()).parse()
        {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// Returns the retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        self.router.policy()
    }

    /// Proposes `request` on the leader and returns its outcome and the log index of the entry
    /// that carried the last attempt.
    ///
    /// Every retry sends the same bytes, so the same request id: if an earlier attempt was
    /// committed but its response was lost, the leader returns that attempt's outcome and
    /// changes nothing. The retry is a log entry of its own, so its index is later.
    pub async fn write(&self, request: &Request) -> Result<(Response, u64), ClientError> {
        let payload = postcard::to_stdvec(request).map_err(|source| ClientError::Encode {
            what: "Request",
            source,
        })?;

        let operation = Operation::on_leader("write").with_request_id(request.request_id);

        let (reply, endpoint) = self
            .call(operation, |mut client| {
                let request = WriteRequest {
                    request: payload.clone(),
                };
                let request = self.request(request);
                async move { client.write(request).await }
            })
            .await?;

        let response =
            postcard::from_bytes(&reply.response).map_err(|source| ClientError::Decode {
                what: "Response",
                endpoint,
                source,
            })?;

        Ok((response, reply.log_index))
    }

    /// Reads `user`'s record on the leader. Returns `None` when the user has no record.
    pub async fn read_record(&self, user: &UserId) -> Result<Option<UserRecord>, ClientError> {
        let (reply, endpoint) = self
            .call(Operation::on_leader("read_record"), |mut client| {
                let request = ReadRecordRequest {
                    user: user.as_str().to_owned(),
                };
                let request = self.request(request);
                async move { client.read_record(request).await }
            })
            .await?;

        if reply.record.is_empty() {
            return Ok(None);
        }

        let record = postcard::from_bytes(&reply.record).map_err(|source| ClientError::Decode {
            what: "UserRecord",
            endpoint,
            source,
        })?;

        Ok(Some(record))
    }

    /// Returns the status of the node at `endpoint`, with one attempt and no retry.
    pub async fn status(&self, endpoint: &str) -> Result<StatusResponse, ClientError> {
        let endpoint = endpoint_uri(endpoint);
        let mut client = NodeClient::new(self.router.channel(&endpoint)?);

        match client.status(StatusRequest {}).await {
            Ok(reply) => Ok(reply.into_inner()),
            Err(status) => Err(ClientError::from_status(&endpoint, &status)),
        }
    }

    /// Initializes a new cluster with `members` as its voters, on the first endpoint the client
    /// was built with.
    ///
    /// NOTE: if an attempt initialized the node but its response was lost, the retry fails
    /// because the node is initialized already.
    pub async fn initialize(
        &self,
        members: &BTreeMap<NodeId, NodeAddresses>,
    ) -> Result<(), ClientError> {
        let members: Vec<Member> = members
            .iter()
            .map(|(id, addresses)| member(*id, addresses))
            .collect();

        let operation = Operation::on_first_endpoint("initialize");

        self.call(operation, |mut client| {
            let request = InitializeRequest {
                members: members.clone(),
            };
            let request = self.request(request);
            async move { client.initialize(request).await }
        })
        .await?;

        Ok(())
    }

    /// Adds node `id` as a learner and returns, once it has caught up, the log index of the
    /// membership entry that added it.
    pub async fn add_learner(
        &self,
        id: NodeId,
        addresses: &NodeAddresses,
    ) -> Result<u64, ClientError> {
        let (reply, _) = self
            .call(Operation::on_leader("add_learner"), |mut client| {
                let request = AddLearnerRequest {
                    member: Some(member(id, addresses)),
                };
                let request = self.request(request);
                async move { client.add_learner(request).await }
            })
            .await?;

        Ok(reply.log_index)
    }

    /// Sets the voters to `voters` and returns the log index of the final membership entry.
    /// With `retain`, removed voters stay as learners, and learners not named stay learners.
    pub async fn change_membership(
        &self,
        voters: &BTreeSet<NodeId>,
        retain: bool,
    ) -> Result<u64, ClientError> {
        let voters: Vec<NodeId> = voters.iter().copied().collect();

        let (reply, _) = self
            .call(Operation::on_leader("change_membership"), |mut client| {
                let request = ChangeMembershipRequest {
                    voters: voters.clone(),
                    retain,
                };
                let request = self.request(request);
                async move { client.change_membership(request).await }
            })
            .await?;

        Ok(reply.log_index)
    }

    /// Hands leadership to the voter `node_id` and returns the new leader's id once it leads.
    pub async fn transfer_leader(&self, node_id: NodeId) -> Result<NodeId, ClientError> {
        let (reply, _) = self
            .call(Operation::on_leader("transfer_leader"), |mut client| {
                let request = self.request(TransferLeaderRequest { node_id });
                async move { client.transfer_leader(request).await }
            })
            .await?;

        Ok(reply.leader_id)
    }

    /// Returns a snapshot file of the leader's applied state, which includes every write
    /// committed before the call.
    pub async fn save_snapshot(&self) -> Result<Vec<u8>, ClientError> {
        let (reply, _) = self
            .call(Operation::on_leader("save_snapshot"), |client| {
                let mut client = client.max_decoding_message_size(MAX_SNAPSHOT_MESSAGE_BYTES);
                let request = self.request(SaveSnapshotRequest {});
                async move { client.save_snapshot(request).await }
            })
            .await?;

        Ok(reply.snapshot_file)
    }

    /// Replaces the cluster's vault state with the snapshot file `snapshot_file`. Without
    /// `allow_counter_rollback`, a snapshot that would lower a guess count is rejected with
    /// FAILED_PRECONDITION.
    pub async fn restore_snapshot(
        &self,
        snapshot_file: &[u8],
        allow_counter_rollback: bool,
    ) -> Result<RestoreSnapshotResponse, ClientError> {
        let (reply, _) = self
            .call(Operation::on_leader("restore_snapshot"), |client| {
                let mut client = client.max_encoding_message_size(MAX_SNAPSHOT_MESSAGE_BYTES);
                let request = self.request(RestoreSnapshotRequest {
                    snapshot_file: snapshot_file.to_vec(),
                    allow_counter_rollback,
                });
                async move { client.restore_snapshot(request).await }
            })
            .await?;

        Ok(reply)
    }

    /// Creates a one-time join token on the leader for node `node_id`, valid only with the
    /// transport key `transport_public_key` (a SEC1 point) of its HSM. A `ttl_secs` of zero
    /// takes the leader's default lifetime. Admin call.
    pub async fn create_join_token(
        &self,
        node_id: NodeId,
        ttl_secs: u64,
        transport_public_key: &[u8],
    ) -> Result<CreateJoinTokenResponse, ClientError> {
        let (reply, _) = self
            .call(Operation::on_leader("create_join_token"), |mut client| {
                let request = self.request(CreateJoinTokenRequest {
                    node_id,
                    ttl_secs,
                    transport_public_key: transport_public_key.to_vec(),
                });
                async move { client.create_join_token(request).await }
            })
            .await?;

        Ok(reply)
    }

    /// Sends a joining node's `Join` to the leader and returns the join package. The join
    /// token in `request` authenticates the call.
    ///
    /// NOTE: the leader spends the token when it accepts the call, so a retry after a lost
    /// response fails with PERMISSION_DENIED and the operator creates a new token.
    pub async fn join(&self, request: &JoinRequest) -> Result<JoinResponse, ClientError> {
        let (reply, _) = self
            .call(Operation::on_leader("join"), |mut client| {
                let request = tonic::Request::new(request.clone());
                async move { client.join(request).await }
            })
            .await?;

        Ok(reply)
    }

    /// Sends a joining node's proof of the fleet keys to the leader, which adds the node as a
    /// learner and promotes it once it has caught up. Keep the policy's RPC timeout above the
    /// nodes' `raft.learner_catch_up_timeout_ms`.
    pub async fn complete_join(
        &self,
        request: &CompleteJoinRequest,
    ) -> Result<CompleteJoinResponse, ClientError> {
        let (reply, _) = self
            .call(Operation::on_leader("complete_join"), |mut client| {
                let request = tonic::Request::new(request.clone());
                async move { client.complete_join(request).await }
            })
            .await?;

        Ok(reply)
    }

    /// Has the leader publish the next fleet key epoch through the witness at `witness`, with
    /// `node_keys` as the voters' signing keys; see the `PublishBundle` RPC.
    pub async fn publish_bundle(
        &self,
        witness: &str,
        namespace: &str,
        node_keys: &[NodeSigningKey],
    ) -> Result<PublishBundleResponse, ClientError> {
        let (reply, _) = self
            .call(Operation::on_leader("publish_bundle"), |mut client| {
                let request = self.request(PublishBundleRequest {
                    witness: witness.to_owned(),
                    namespace: namespace.to_owned(),
                    node_keys: node_keys.to_vec(),
                });
                async move { client.publish_bundle(request).await }
            })
            .await?;

        Ok(reply)
    }

    /// Sends the node API RPC that `rpc` makes through the router, and converts its failure.
    async fn call<T, F, Fut>(
        &self,
        operation: Operation,
        mut rpc: F,
    ) -> Result<(T, String), ClientError>
    where
        F: FnMut(NodeClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let result = self
            .router
            .call_operation(&operation, |channel| rpc(NodeClient::new(channel)))
            .await;

        result.map_err(ClientError::from)
    }
}

fn member(id: NodeId, addresses: &NodeAddresses) -> Member {
    Member {
        id,
        raft_addr: addresses.raft.clone(),
        api_addr: addresses.api.clone(),
    }
}
