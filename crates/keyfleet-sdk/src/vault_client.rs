use std::future::Future;

use keyfleet_api::vault::vault_client::VaultClient as GrpcVaultClient;
use keyfleet_api::vault::{DeleteRequest, GetStateRequest};
use keyfleet_client::{ClientTls, LeaderRouter, Operation, RetryPolicy};
use keyfleet_protocol::KsfParams;
use tonic::Status;
use tonic::transport::Channel;

use crate::bundle_check::BundleCheck;
use crate::caller::Caller;
use crate::request_id::RequestId;
use crate::status_mapping::from_router_error;
use crate::{RecordStatus, SdkError};

/// Client of a keyfleet fleet's vault API.
///
/// Each call goes to the leader, follows leader hints, and retries `UNAVAILABLE` and connection
/// errors with the [`RetryPolicy`]'s backoff until its deadline. Every retry resends the same
/// request, with the same request id, so the vault applies it once. Cloning is cheap, and
/// clones share the channels and the known leader.
#[derive(Debug, Clone)]
pub struct VaultClient {
    router: LeaderRouter,
    ksf: Option<KsfParams>,
    /// The pinned trust anchors and the newest verified bundle, when set.
    pub(crate) bundle_check: Option<BundleCheck>,
}

impl VaultClient {
    /// Builds a client over vault endpoints, as `host:port` or `http://` URIs. No connection is
    /// made until the first call.
    ///
    /// # Errors
    /// [`SdkError::Config`] when no endpoint is given, an endpoint is invalid, or the policy has
    /// a zero duration or its backoff bounds in the wrong order.
    pub fn new<I, S>(endpoints: I, policy: RetryPolicy) -> Result<Self, SdkError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let router = LeaderRouter::new(endpoints, policy)?;

        Ok(Self {
            router,
            ksf: None,
            bundle_check: None,
        })
    }

    /// Like [`VaultClient::new`], but dials every endpoint over TLS, trusting the CA in `tls`.
    /// Each node's certificate must name the host the client dials. The vault API needs no
    /// client certificate.
    ///
    /// # Errors
    /// As [`VaultClient::new`].
    pub fn with_tls<I, S>(
        endpoints: I,
        policy: RetryPolicy,
        tls: ClientTls,
    ) -> Result<Self, SdkError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let router = LeaderRouter::with_tls(endpoints, policy, tls)?;

        Ok(Self {
            router,
            ksf: None,
            bundle_check: None,
        })
    }

    /// Sets Argon2id parameters other than protocol version 1's, for tests only. A record
    /// registered with other parameters can only be recovered with the same ones.
    pub fn with_ksf(mut self, params: KsfParams) -> Self {
        self.ksf = Some(params);
        self
    }

    /// Returns the retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        self.router.policy()
    }

    /// Deletes `user`'s record. Returns false when the user had no record.
    pub async fn delete(&self, token: &str, user: &str) -> Result<bool, SdkError> {
        let caller = Caller::new(token, user)?;
        let request_id = RequestId::random();
        let message = DeleteRequest {
            user_id: caller.user().to_owned(),
            request_id: request_id.to_vec(),
        };

        let operation = Operation::on_leader("delete").with_request_id(request_id);
        let reply = self
            .send(&operation, |mut client| {
                let request = caller.request(message.clone());
                async move { client.delete(request).await }
            })
            .await?;

        Ok(reply.deleted)
    }

    /// Returns the state of `user`'s record and its guesses left, read on the leader.
    pub async fn state(&self, token: &str, user: &str) -> Result<RecordStatus, SdkError> {
        let caller = Caller::new(token, user)?;
        let message = GetStateRequest {
            user_id: caller.user().to_owned(),
        };

        let reply = self
            .send(&Operation::on_leader("get_state"), |mut client| {
                let request = caller.request(message.clone());
                async move { client.get_state(request).await }
            })
            .await?;

        RecordStatus::from_response(&reply)
    }

    /// Returns the KSF parameters set by [`VaultClient::with_ksf`], if any.
    pub(crate) fn ksf_params(&self) -> Option<KsfParams> {
        self.ksf
    }

    /// Sends the vault RPC that `rpc` makes through the router, and converts its failure.
    /// `rpc` runs once per attempt and must build the same request every time.
    pub(crate) async fn send<T, F, Fut>(
        &self,
        operation: &Operation,
        mut rpc: F,
    ) -> Result<T, SdkError>
    where
        F: FnMut(GrpcVaultClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let result = self
            .router
            .call_operation(operation, |channel| rpc(GrpcVaultClient::new(channel)))
            .await;

        result.map(|(reply, _)| reply).map_err(from_router_error)
    }
}
