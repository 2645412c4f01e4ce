use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tonic::Status;
use tonic::transport::Channel;

use crate::client_error::ClientError;
use crate::client_error::is_retryable;
use crate::client_tls::ClientTls;
use crate::leader_hint::LeaderHint;
use crate::node_channels::NodeChannels;
use crate::operation::Operation;
use crate::operation::Route;
use crate::retry_policy::RetryPolicy;
use crate::router_error::RouterError;

/// Sends RPCs of any tonic client to a fleet's leader: follows the leader hints of nodes that
/// are not the leader, and retries `UNAVAILABLE` and connection errors with jittered backoff
/// until the [`RetryPolicy`] deadline.
///
/// Cloning is cheap, and clones share the channels and the known leader.
#[derive(Debug, Clone)]
pub struct LeaderRouter {
    nodes: Arc<NodeChannels>,
    policy: RetryPolicy,
}

impl LeaderRouter {
    /// Builds a router over endpoints such as `http://127.0.0.1:7001` (a bare `host:port` gets
    /// `http://`). No connection is made until the first call.
    pub fn new<I, S>(endpoints: I, policy: RetryPolicy) -> Result<Self, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::build(endpoints, policy, None)
    }

    /// Like [`LeaderRouter::new`], but dials every node over TLS with `tls`; a bare
    /// `host:port` or an `http://` endpoint is dialed as `https://`.
    pub fn with_tls<I, S>(
        endpoints: I,
        policy: RetryPolicy,
        tls: ClientTls,
    ) -> Result<Self, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::build(endpoints, policy, Some(tls))
    }

    fn build<I, S>(
        endpoints: I,
        policy: RetryPolicy,
        tls: Option<ClientTls>,
    ) -> Result<Self, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        policy.validate()?;

        let endpoints = endpoints.into_iter().map(Into::into).collect();
        let nodes = NodeChannels::new(endpoints, policy.rpc_timeout, tls)?;

        Ok(Self {
            nodes: Arc::new(nodes),
            policy,
        })
    }

    /// Returns the retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Returns the shared channel to `endpoint`, created on first use, for a call that needs
    /// one node and no routing.
    pub fn channel(&self, endpoint: &str) -> Result<Channel, ClientError> {
        self.nodes.channel(endpoint)
    }

    /// Sends the RPC that `rpc` makes on the leader, as [`LeaderRouter::call_operation`] does.
    pub async fn call<T, F, Fut>(
        &self,
        name: &'static str,
        rpc: F,
    ) -> Result<(T, String), RouterError>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call_operation(&Operation::on_leader(name), rpc).await
    }

    /// Sends the RPC that `rpc` makes until it succeeds, fails with an error that a retry does
    /// not fix, or the policy's deadline passes. Returns the reply and the endpoint that sent
    /// it.
    ///
    /// `rpc` runs once per attempt, with the channel of the node to try. To make a retry safe,
    /// it must build the same request every time, request id included.
    pub async fn call_operation<T, F, Fut>(
        &self,
        operation: &Operation,
        mut rpc: F,
    ) -> Result<(T, String), RouterError>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let deadline = Instant::now() + self.policy.deadline;
        let mut attempts = 0u32;
        let mut retries = 0u32;
        let mut followed_hint = false;

        loop {
            let endpoint = self.pick_endpoint(operation.route());
            let channel = self
                .nodes
                .channel(&endpoint)
                .map_err(RouterError::Channel)?;
            attempts += 1;

            let status = match tokio::time::timeout_at(deadline, rpc(channel)).await {
                Ok(Ok(reply)) => {
                    self.remember_leader(operation.route(), &endpoint);
                    return Ok((reply.into_inner(), endpoint));
                }
                Ok(Err(status)) => status,
                Err(_) => Status::deadline_exceeded("the client's deadline passed during the RPC"),
            };

            if !is_retryable(&status) {
                return Err(RouterError::Rejected {
                    endpoint,
                    attempts,
                    status: Box::new(status),
                });
            }

            // Follow a fresh hint at once, but back off before a second hop in a row, so two
            // nodes with stale hints cannot bounce the call between them without a pause.
            followed_hint =
                !followed_hint && self.follow_hint(operation.route(), &endpoint, &status);

            let delay = if followed_hint {
                Duration::ZERO
            } else {
                retries += 1;
                self.policy.backoff(retries - 1)
            };

            if Instant::now() + delay >= deadline {
                return Err(self.deadline_exceeded(operation, attempts, endpoint, status));
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
        operation: &Operation,
        attempts: u32,
        endpoint: String,
        status: Status,
    ) -> RouterError {
        tracing::warn!(
            operation = operation.name(),
            request_id = operation.request_id().unwrap_or_default(),
            attempts,
            endpoint = %endpoint,
            code = ?status.code(),
            message = status.message(),
            deadline_ms = self.policy.deadline.as_millis() as u64,
            "giving up: the retry deadline passed"
        );

        RouterError::DeadlineExceeded {
            operation: operation.name(),
            deadline: self.policy.deadline,
            attempts,
            endpoint,
            status: Box::new(status),
        }
    }
}

fn log_retry(
    operation: &Operation,
    attempt: u32,
    endpoint: &str,
    status: &Status,
    delay: Duration,
) {
    tracing::info!(
        operation = operation.name(),
        request_id = operation.request_id().unwrap_or_default(),
        attempt,
        endpoint,
        code = ?status.code(),
        message = status.message(),
        delay_ms = delay.as_millis() as u64,
        "retrying"
    );
}
