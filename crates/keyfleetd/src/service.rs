//! The `keyfleet.node.v1.Node` gRPC service.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use keyfleet_api::ErrorReason;
use keyfleet_api::node::node_server::Node;
use keyfleet_api::node::{
    AddLearnerRequest, AddLearnerResponse, ChangeMembershipRequest, ChangeMembershipResponse,
    CompleteJoinRequest, CompleteJoinResponse, CreateJoinTokenRequest, CreateJoinTokenResponse,
    InitializeRequest, InitializeResponse, JoinRequest, JoinResponse, Member, PublishBundleRequest,
    PublishBundleResponse, ReadRecordRequest, ReadRecordResponse, RestoreSnapshotRequest,
    RestoreSnapshotResponse, SaveSnapshotRequest, SaveSnapshotResponse, StatusRequest,
    StatusResponse, TransferLeaderRequest, TransferLeaderResponse, WriteRequest, WriteResponse,
};
use keyfleet_raft::{NodeAddresses, NodeId, Request, TypeConfig, UserId};
use keyfleet_raft_net::{OPERATOR_NAME, certificate_names};
use openraft::ChangeMembers;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{InitializeError, RaftError};
use tonic::{Code, Response, Status};

use crate::admin_token::AdminToken;
use crate::bundle_publisher::BundlePublisher;
use crate::error_status::error_status;
use crate::join::JoinIssuer;
use crate::leader_hint::{no_quorum, raft_stopped};
use crate::log_limiter::LogLimiter;
use crate::member_addresses::check_addresses_unused;
use crate::node_health::HealthReceiver;
use crate::replica::Replica;

/// Serves the node API from one Raft node.
#[derive(Clone)]
pub struct NodeService {
    replica: Replica,
    learner_catch_up_timeout: Duration,
    admin_token: AdminToken,
    require_operator_cert: bool,
    rejected_calls: Arc<LogLimiter>,
    health: HealthReceiver,
    join: Arc<JoinIssuer>,
    publisher: Arc<BundlePublisher>,
}

/// Interval between two log lines about node API calls rejected for a missing admin token.
const REJECTED_CALL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Most log entries a learner may lag behind the leader and still be promoted to voter.
const MAX_PROMOTION_LAG: u64 = 100;

impl std::fmt::Debug for NodeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeService")
            .field("node_id", &self.replica.node_id)
            .finish_non_exhaustive()
    }
}

impl NodeService {
    pub(crate) fn new(
        replica: Replica,
        learner_catch_up_timeout: Duration,
        admin_token: AdminToken,
        health: HealthReceiver,
        require_operator_cert: bool,
        join: Arc<JoinIssuer>,
        publisher: Arc<BundlePublisher>,
    ) -> Self {
        Self {
            publisher,
            replica,
            learner_catch_up_timeout,
            admin_token,
            require_operator_cert,
            rejected_calls: Arc::new(LogLimiter::new(REJECTED_CALL_LOG_INTERVAL)),
            health,
            join,
        }
    }

    /// Checks the admin token and, on a node with TLS, the operator client certificate.
    fn authorize<T>(&self, request: &tonic::Request<T>) -> Result<(), Status> {
        let checked = self
            .admin_token
            .check(self.replica.node_id, request)
            .and_then(|()| self.check_operator_cert(request));

        if let Err(status) = &checked
            && let Some(suppressed) = self.rejected_calls.allow()
        {
            let peer = request.remote_addr().map(|addr| addr.to_string());
            tracing::warn!(node_id = self.replica.node_id, peer = ?peer, suppressed, reason = status.message(), "node API call rejected");
        }
        checked
    }

    /// Requires, when the node serves TLS, a client certificate that chains to the fleet CA
    /// (the handshake checked that) and names `operator.keyfleet.internal`.
    fn check_operator_cert<T>(&self, request: &tonic::Request<T>) -> Result<(), Status> {
        if !self.require_operator_cert {
            return Ok(());
        }
        let certs = request.peer_certs();
        let is_operator = certs
            .as_ref()
            .and_then(|certs| certs.first())
            .is_some_and(|leaf| certificate_names(leaf, OPERATOR_NAME));

        if is_operator {
            return Ok(());
        }
        Err(error_status(
            Code::Unauthenticated,
            ErrorReason::TokenInvalid,
            format!(
                "node {}'s node API admin calls need an operator client certificate from the \
                 fleet CA (`keyfleetd certs issue-operator`) next to the admin token",
                self.replica.node_id
            ),
            &[],
        ))
    }

    /// Waits until the leader has replicated its log up to `index` on `learner`.
    ///
    /// openraft's blocking `add_learner` returns as soon as the learner lags by less than
    /// `replication_lag_threshold` entries, which on a short log is at once, even for a learner
    /// that was never reached. This waits for the learner to acknowledge the entry that added it.
    async fn wait_for_replication(&self, learner: NodeId, index: u64) -> Result<(), Status> {
        let mut metrics = self.replica.raft.metrics();
        let caught_up = async {
            loop {
                if matched_index(&metrics.borrow_watched(), learner) >= Some(index) {
                    return true;
                }
                if metrics.changed().await.is_err() {
                    return false;
                }
            }
        };

        match tokio::time::timeout(self.learner_catch_up_timeout, caught_up).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(raft_stopped(self.replica.node_id)),
            Err(_) => {
                tracing::warn!(
                    node_id = self.replica.node_id,
                    learner,
                    index,
                    "learner did not catch up"
                );
                Err(Status::deadline_exceeded(format!(
                    "learner {learner} did not replicate log index {index} within {} ms: check \
                     that it runs and is reachable at its raft address. It stays a learner, and \
                     ChangeMembership rejects promoting it until it catches up",
                    self.learner_catch_up_timeout.as_millis()
                )))
            }
        }
    }

    /// Rejects a voter set that would promote a learner lagging behind the leader.
    fn check_promotions(&self, voters: &BTreeSet<NodeId>) -> Result<(), Status> {
        let metrics = self.replica.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        let current: BTreeSet<NodeId> = membership.voter_ids().collect();
        let last_index = metrics.last_log_index.unwrap_or(0);

        for id in voters.difference(&current) {
            let matched = matched_index(&metrics, *id);
            let lag = matched.map(|index| last_index.saturating_sub(index));
            if lag.is_none_or(|lag| lag > MAX_PROMOTION_LAG) {
                let reached = matched.map_or("nothing".to_owned(), |i| format!("log index {i}"));
                return Err(Status::failed_precondition(format!(
                    "node {id} has replicated {reached} of {last_index}; add it with AddLearner \
                     and promote it once it has caught up"
                )));
            }
        }
        Ok(())
    }

    /// Adds `id` as a learner and waits until it has replicated the entry that added it.
    /// Returns that entry's log index.
    async fn add_learner_and_wait(
        &self,
        id: NodeId,
        addresses: NodeAddresses,
    ) -> Result<u64, Status> {
        check_addresses_unused(&self.replica, id, &addresses).await?;
        tracing::info!(node_id = self.replica.node_id, learner = id, %addresses, "adding a learner");

        let written = tokio::time::timeout(
            self.replica.write_timeout,
            self.replica.raft.add_learner(id, addresses, true),
        )
        .await
        .map_err(|_| {
            no_quorum(
                self.replica.node_id,
                "adding the learner",
                self.replica.timeout_ms(),
            )
        })?
        .map_err(|error| self.replica.write_failed("adding the learner", error))?;
        self.wait_for_replication(id, written.log_id.index).await?;
        tracing::info!(
            node_id = self.replica.node_id,
            learner = id,
            "learner caught up"
        );
        Ok(written.log_id.index)
    }

    /// Sets the voters after checking that every new voter has caught up, and returns the log
    /// index of the final membership entry.
    async fn set_voters(&self, voters: BTreeSet<NodeId>, retain: bool) -> Result<u64, Status> {
        self.change_voters(
            voters.clone(),
            ChangeMembers::ReplaceAllVoters(voters),
            retain,
        )
        .await
    }

    /// Applies `change` after checking that each of `promoted` has caught up, and returns the
    /// log index of the final membership entry.
    async fn change_voters(
        &self,
        promoted: BTreeSet<NodeId>,
        change: ChangeMembers<NodeId, NodeAddresses>,
        retain: bool,
    ) -> Result<u64, Status> {
        self.check_promotions(&promoted)?;

        let change = self.replica.raft.change_membership(change, retain);
        let written = tokio::time::timeout(self.replica.write_timeout, change)
            .await
            .map_err(|_| {
                no_quorum(
                    self.replica.node_id,
                    "the membership change",
                    self.replica.timeout_ms(),
                )
            })?
            .map_err(|error| self.replica.write_failed("the membership change", error))?;
        let voters: BTreeSet<NodeId> = written
            .membership()
            .as_ref()
            .map(|membership| membership.voter_ids().collect())
            .unwrap_or_default();
        tracing::info!(
            node_id = self.replica.node_id,
            ?voters,
            log_index = written.log_id.index,
            "membership changed"
        );
        Ok(written.log_id.index)
    }

    /// Adds the node of a checked join as a learner, and promotes it once it has caught up.
    /// Returns the final membership entry's index and the voters.
    async fn admit(
        &self,
        id: NodeId,
        addresses: NodeAddresses,
    ) -> Result<(u64, BTreeSet<NodeId>), Status> {
        self.add_learner_and_wait(id, addresses).await?;

        // Adding one voter id, not replacing the whole set, keeps a voter that a concurrent
        // join added between this join's read of the membership and its change.
        let promoted = BTreeSet::from([id]);
        let change = ChangeMembers::AddVoterIds(promoted.clone());
        let log_index = self.change_voters(promoted, change, true).await?;
        let voters = self
            .replica
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .voter_ids()
            .collect();
        Ok((log_index, voters))
    }
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn write(
        &self,
        request: tonic::Request<WriteRequest>,
    ) -> Result<Response<WriteResponse>, Status> {
        self.authorize(&request)?;
        let request = decode_request(&request.into_inner().request)?;
        request.command.validate().map_err(|rejection| {
            Status::invalid_argument(format!("invalid command: {rejection:?}"))
        })?;

        let written = self.replica.write(request).await?;

        let response = postcard::to_allocvec(&written.response)
            .map_err(|error| Status::internal(format!("encoding the response failed: {error}")))?;
        Ok(Response::new(WriteResponse {
            response,
            log_index: written.log_index,
        }))
    }

    async fn read_record(
        &self,
        request: tonic::Request<ReadRecordRequest>,
    ) -> Result<Response<ReadRecordResponse>, Status> {
        self.authorize(&request)?;
        let user = UserId::new(request.into_inner().user)
            .map_err(|error| Status::invalid_argument(format!("invalid user id: {error}")))?;

        self.replica.linearize().await?;
        let record = self.replica.local_user(&user).await?;

        let record = match record {
            Some(record) => postcard::to_allocvec(&record).map_err(|error| {
                Status::internal(format!("encoding the record failed: {error}"))
            })?,
            None => Vec::new(),
        };
        let applied_index = self
            .replica
            .raft
            .metrics()
            .borrow_watched()
            .last_applied
            .map_or(0, |id| id.index);
        Ok(Response::new(ReadRecordResponse {
            record,
            applied_index,
        }))
    }

    async fn initialize(
        &self,
        request: tonic::Request<InitializeRequest>,
    ) -> Result<Response<InitializeResponse>, Status> {
        self.authorize(&request)?;
        let members = members_map(request.into_inner().members)?;
        tracing::info!(node_id = self.replica.node_id, members = ?members.keys().collect::<Vec<_>>(), "initializing the cluster");

        match self.replica.raft.initialize(members).await {
            Ok(()) => Ok(Response::new(InitializeResponse {})),
            Err(RaftError::APIError(InitializeError::NotAllowed(error))) => {
                tracing::warn!(node_id = self.replica.node_id, %error, "initialize rejected");
                Err(Status::failed_precondition(format!(
                    "node {} is already initialized or has a log ({error}); initialize only a new node, once",
                    self.replica.node_id
                )))
            }
            Err(RaftError::APIError(error)) => Err(Status::invalid_argument(error.to_string())),
            Err(RaftError::Fatal(_)) => Err(raft_stopped(self.replica.node_id)),
        }
    }

    async fn add_learner(
        &self,
        request: tonic::Request<AddLearnerRequest>,
    ) -> Result<Response<AddLearnerResponse>, Status> {
        self.authorize(&request)?;
        let member = request
            .into_inner()
            .member
            .ok_or_else(|| Status::invalid_argument("member is missing"))?;
        let (id, addresses) = member_entry(member)?;
        let log_index = self.add_learner_and_wait(id, addresses).await?;
        Ok(Response::new(AddLearnerResponse { log_index }))
    }

    async fn change_membership(
        &self,
        request: tonic::Request<ChangeMembershipRequest>,
    ) -> Result<Response<ChangeMembershipResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let voters: BTreeSet<NodeId> = request.voters.into_iter().collect();
        if voters.is_empty() {
            return Err(Status::invalid_argument(
                "voters is empty; a cluster needs at least one voter",
            ));
        }
        tracing::info!(
            node_id = self.replica.node_id,
            ?voters,
            retain = request.retain,
            "changing membership"
        );

        let log_index = self.set_voters(voters, request.retain).await?;
        Ok(Response::new(ChangeMembershipResponse { log_index }))
    }

    async fn status(
        &self,
        _request: tonic::Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let health = self.health.borrow().clone();
        let mut status = crate::status::status_of(&self.replica.raft, &health).await;
        // A node whose HSM or state machine fails to respond still reports the other fields.
        if let Ok(key) = self.publisher.signing_public_key().await {
            status.signing_public_key = key.to_vec();
        }
        if let Ok(epoch) = self.replica.bundle_epoch().await {
            status.bundle_epoch = epoch;
        }
        Ok(Response::new(status))
    }

    async fn publish_bundle(
        &self,
        request: tonic::Request<PublishBundleRequest>,
    ) -> Result<Response<PublishBundleResponse>, Status> {
        self.authorize(&request)?;
        let published = self.publisher.publish(request.into_inner()).await?;
        Ok(Response::new(published))
    }

    async fn transfer_leader(
        &self,
        request: tonic::Request<TransferLeaderRequest>,
    ) -> Result<Response<TransferLeaderResponse>, Status> {
        self.authorize(&request)?;
        let target = request.into_inner().node_id;
        let leader_id = crate::operator::transfer_leader(&self.replica, target).await?;
        Ok(Response::new(TransferLeaderResponse { leader_id }))
    }

    async fn save_snapshot(
        &self,
        request: tonic::Request<SaveSnapshotRequest>,
    ) -> Result<Response<SaveSnapshotResponse>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(
            crate::operator::save_snapshot(&self.replica).await?,
        ))
    }

    async fn restore_snapshot(
        &self,
        request: tonic::Request<RestoreSnapshotRequest>,
    ) -> Result<Response<RestoreSnapshotResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let restored = crate::operator::restore_snapshot(
            &self.replica,
            &request.snapshot_file,
            request.allow_counter_rollback,
        )
        .await?;
        Ok(Response::new(restored))
    }

    async fn create_join_token(
        &self,
        request: tonic::Request<CreateJoinTokenRequest>,
    ) -> Result<Response<CreateJoinTokenResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let created = self
            .join
            .create_token(
                &self.replica,
                request.node_id,
                request.ttl_secs,
                &request.transport_public_key,
            )
            .await?;
        Ok(Response::new(created))
    }

    async fn join(
        &self,
        request: tonic::Request<JoinRequest>,
    ) -> Result<Response<JoinResponse>, Status> {
        let package = self.join.join(&self.replica, request.into_inner()).await?;
        Ok(Response::new(package))
    }

    async fn complete_join(
        &self,
        request: tonic::Request<CompleteJoinRequest>,
    ) -> Result<Response<CompleteJoinResponse>, Status> {
        let request = request.into_inner();
        let node_id = request.node_id;
        let addresses = self
            .join
            .check_proof(
                &self.replica,
                node_id,
                &request.join_token,
                request.seal_proof,
                &request.oprf_seed_proof,
            )
            .await?;
        tracing::info!(
            node_id = self.replica.node_id,
            joining_node = node_id,
            "join proof accepted; adding the node"
        );

        // The token is spent now, so a client retry could only fail: report UNAVAILABLE as
        // ABORTED, which clients do not retry.
        let (log_index, voters) = self
            .admit(node_id, addresses)
            .await
            .map_err(|status| spent_token_status(node_id, status))?;
        Ok(Response::new(CompleteJoinResponse {
            log_index,
            voters: voters.into_iter().collect(),
        }))
    }
}

/// Returns the last log index the leader has seen `node` replicate; `None` on a follower or for a node
/// the leader has not reached.
fn matched_index(metrics: &openraft::RaftMetrics<TypeConfig>, node: NodeId) -> Option<u64> {
    let replication = metrics.replication.as_ref()?;
    replication
        .get(&node)
        .copied()
        .flatten()
        .map(|log_id| log_id.index)
}

fn members_map(members: Vec<Member>) -> Result<BTreeMap<NodeId, NodeAddresses>, Status> {
    if members.is_empty() {
        return Err(Status::invalid_argument("members is empty"));
    }
    let mut map = BTreeMap::new();
    for member in members {
        let (id, addresses) = member_entry(member)?;
        if map.insert(id, addresses).is_some() {
            return Err(Status::invalid_argument(format!(
                "node id {id} appears twice"
            )));
        }
    }
    Ok(map)
}

fn member_entry(member: Member) -> Result<(NodeId, NodeAddresses), Status> {
    if member.id == 0 {
        return Err(Status::invalid_argument(
            "node id 0 is reserved; ids start at 1",
        ));
    }
    if member.raft_addr.is_empty() || member.api_addr.is_empty() {
        return Err(Status::invalid_argument(format!(
            "node {} needs both raft_addr and api_addr",
            member.id
        )));
    }
    Ok((
        member.id,
        NodeAddresses::new(member.raft_addr, member.api_addr),
    ))
}

/// Decodes a postcard `Request`, rejecting bytes left over after it.
fn decode_request(bytes: &[u8]) -> Result<Request, Status> {
    let invalid = |reason: String| {
        Status::invalid_argument(format!("request is not a valid postcard Request: {reason}"))
    };

    let (request, rest) =
        postcard::take_from_bytes::<Request>(bytes).map_err(|error| invalid(error.to_string()))?;
    if !rest.is_empty() {
        return Err(invalid(format!("{} bytes follow the request", rest.len())));
    }
    Ok(request)
}

/// Turns a failure after a spent join token into one that clients do not retry, and names the
/// way forward.
fn spent_token_status(node_id: NodeId, status: Status) -> Status {
    let code = match status.code() {
        Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded => Code::Aborted,
        code => code,
    };
    tracing::warn!(
        joining_node = node_id,
        reason = status.message(),
        "join failed after its proof was accepted"
    );
    Status::new(
        code,
        format!(
            "{}. Node {node_id} proved its fleet keys but was not made a voter; check `keyfleet \
             members list`: promote it with `keyfleet members add` once it runs, or remove it",
            status.message()
        ),
    )
}
