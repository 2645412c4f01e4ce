use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use keyfleet_api::node::AddLearnerRequest;
use keyfleet_api::node::ChangeMembershipRequest;
use keyfleet_api::node::InitializeRequest;
use keyfleet_api::node::Member;
use keyfleet_api::node::ReadRecordRequest;
use keyfleet_api::node::StatusRequest;
use keyfleet_api::node::StatusResponse;
use keyfleet_api::node::WriteRequest;
use keyfleet_api::node::node_client::NodeClient;
use keyfleet_raft::NodeAddresses;
use keyfleet_raft::NodeId;
use keyfleet_raft::Request;
use keyfleet_raft::Response;
use keyfleet_raft::UserId;
use keyfleet_raft::UserRecord;
use tokio::time::Instant;
use tonic::Status;
use tonic::transport::Channel;

use crate::client_error::ClientError;
use crate::client_error::is_retryable;
use crate::endpoint::endpoint_uri;
use crate::leader_hint::LeaderHint;
use crate::node_channels::NodeChannels;
use crate::retry_policy::RetryPolicy;

/// Client of a keyfleet fleet's node API.
///
/// Cloning is cheap, and clones share the channels and the known leader.
#[derive(Debug, Clone)]
pub struct FleetClient {
    nodes: Arc<NodeChannels>,
    policy: RetryPolicy,
}

/// Node that an operation is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// The leader, found through hints and by trying the endpoints in turn.
    Leader,

    /// The first endpoint the client was built with, whatever its role.
    FirstEndpoint,
}

/// Name, request id and route of one operation, for routing and logs.
#[derive(Debug, Clone, Copy)]
struct Operation {
    name: &'static str,
    request_id: Option<keyfleet_raft::RequestId>,
    route: Route,
}

impl Operation {
    fn on_leader(name: &'static str) -> Self {
        Self {
            name,
            request_id: None,
            route: Route::Leader,
        }
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
        policy.validate()?;

        let endpoints = endpoints.into_iter().map(Into::into).collect();
        let nodes = NodeChannels::new(endpoints, policy.rpc_timeout)?;

        Ok(Self {
            nodes: Arc::new(nodes),
            policy,
        })
    }

    /// Returns the retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
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

        let operation = Operation {
            name: "write",
            request_id: Some(request.request_id),
            route: Route::Leader,
        };

        let (reply, endpoint) = self
            .call(operation, |mut client| {
                let request = WriteRequest {
                    request: payload.clone(),
                };
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
        let mut client = NodeClient::new(self.nodes.channel(&endpoint)?);

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

        let operation = Operation {
            name: "initialize",
            request_id: None,
            route: Route::FirstEndpoint,
        };

        self.call(operation, |mut client| {
            let request = InitializeRequest {
                members: members.clone(),
            };
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
                async move { client.change_membership(request).await }
            })
            .await?;

        Ok(reply.log_index)
    }

    /// Sends the RPC that `rpc` makes until it succeeds, fails with an error that a retry does
    /// not fix, or the policy's deadline passes. Returns the reply and the endpoint that sent
    /// it.
    async fn call<T, F, Fut>(
        &self,
        operation: Operation,
        mut rpc: F,
    ) -> Result<(T, String), ClientError>
    where
        F: FnMut(NodeClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let deadline = Instant::now() + self.policy.deadline;
        let mut attempts = 0u32;
        let mut retries = 0u32;
        let mut followed_hint = false;

        loop {
            let endpoint = self.pick_endpoint(operation.route);
            let client = NodeClient::new(self.nodes.channel(&endpoint)?);
            attempts += 1;

            let status = match tokio::time::timeout_at(deadline, rpc(client)).await {
                Ok(Ok(reply)) => {
                    self.remember_leader(operation.route, &endpoint);
                    return Ok((reply.into_inner(), endpoint));
                }
                Ok(Err(status)) => status,
                Err(_) => Status::deadline_exceeded("the client's deadline passed during the RPC"),
            };

            if !is_retryable(&status) {
                return Err(ClientError::from_status(&endpoint, &status));
            }

            // Follow a fresh hint at once, but back off before a second hop in a row, so two
            // nodes with stale hints cannot bounce the call between them without a pause.
            followed_hint = !followed_hint && self.follow_hint(operation.route, &endpoint, &status);

            let delay = if followed_hint {
                Duration::ZERO
            } else {
                retries += 1;
                self.policy.backoff(retries - 1)
            };

            if Instant::now() + delay >= deadline {
                return Err(self.deadline_exceeded(operation, attempts, endpoint, &status));
            }

            log_retry(operation, attempts, &endpoint, &status, delay);
            tokio::time::sleep(delay).await;
        }
    }

    fn pick_endpoint(&self, route: Route) -> String {
        match route {
            Route::Leader => self.nodes.target(),
            Route::FirstEndpoint => self.nodes.first().to_owned(),
        }
    }

    fn remember_leader(&self, route: Route, endpoint: &str) {
        if route == Route::Leader {
            self.nodes.set_leader(endpoint);
        }
    }

    /// Points later attempts at the leader that `status` names. Returns true if that is a
    /// different node than `endpoint`, which is then worth trying without a backoff.
    fn follow_hint(&self, route: Route, endpoint: &str, status: &Status) -> bool {
        if route != Route::Leader {
            return false;
        }

        match LeaderHint::from_status(status) {
            Some(hint) => {
                self.nodes.set_leader(&hint.api_endpoint);
                hint.api_endpoint != endpoint
            }
            None => {
                self.nodes.clear_leader();
                false
            }
        }
    }

    fn deadline_exceeded(
        &self,
        operation: Operation,
        attempts: u32,
        endpoint: String,
        status: &Status,
    ) -> ClientError {
        tracing::warn!(
            operation = operation.name,
            request_id = %display_request_id(operation),
            attempts,
            endpoint = %endpoint,
            code = ?status.code(),
            message = status.message(),
            deadline_ms = self.policy.deadline.as_millis() as u64,
            "giving up: the retry deadline passed"
        );

        ClientError::DeadlineExceeded {
            operation: operation.name,
            deadline: self.policy.deadline,
            attempts,
            endpoint,
            last_code: status.code(),
            last_message: status.message().to_owned(),
        }
    }
}

fn member(id: NodeId, addresses: &NodeAddresses) -> Member {
    Member {
        id,
        raft_addr: addresses.raft.clone(),
        api_addr: addresses.api.clone(),
    }
}

fn display_request_id(operation: Operation) -> String {
    operation
        .request_id
        .map(|id| id.to_string())
        .unwrap_or_default()
}

fn log_retry(operation: Operation, attempt: u32, endpoint: &str, status: &Status, delay: Duration) {
    tracing::info!(
        operation = operation.name,
        request_id = %display_request_id(operation),
        attempt,
        endpoint,
        code = ?status.code(),
        message = status.message(),
        delay_ms = delay.as_millis() as u64,
        "retrying"
    );
}
