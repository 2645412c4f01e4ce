//! The public vault API, `keyfleet.v1.Vault`: OPAQUE registration and guess-limited recovery
//! over this node's HSM and the replicated records.
//!
//! Every guess is a Raft write: RecoveryStart commits `ConsumeGuess` on a majority before it
//! builds the KE2 that lets a client test a password. RecoveryFinish resets the count only
//! through `ResetGuesses` at the record version bound into the login ticket, so each ticket
//! works once. Writes run on the leader; other nodes return `UNAVAILABLE` with a leader hint.

mod auth;
mod fleet_core;
mod lockout;
mod records;
mod recovery;
mod registration;
mod request_id;
mod status;

use std::sync::Arc;

use keyfleet_api::vault::vault_server::Vault;
use keyfleet_api::vault::{
    DeleteRequest, DeleteResponse, GetBundleRequest, GetBundleResponse, GetStateRequest,
    GetStateResponse, RecoveryFinishRequest, RecoveryFinishResponse, RecoveryStartRequest,
    RecoveryStartResponse, RegistrationFinishRequest, RegistrationFinishResponse,
    RegistrationStartRequest, RegistrationStartResponse,
};
use keyfleet_token::TokenVerifier;
use openraft::async_runtime::WatchReceiver;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::log_limiter::LogLimiter;
pub(crate) use fleet_core::FleetCore;
use lockout::Lockouts;

use crate::replica::Replica;

/// Largest vault API request the node decodes, in bytes. The largest valid request, a
/// RegistrationFinish with a 1024-byte ticket and a 1024-byte ciphertext, is under 2.5 KiB.
pub(crate) const MAX_VAULT_REQUEST_BYTES: usize = 8 * 1024;

/// Guess limits of the fleet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuessLimits {
    /// Guesses a registration gets when it requests 0.
    pub(crate) default_max_guesses: u32,
    /// Most guesses a registration may ask for.
    pub(crate) max_guesses_ceiling: u32,
}

/// Serves `keyfleet.v1.Vault` from one node. Cloning is cheap.
#[derive(Clone)]
pub(crate) struct VaultService {
    replica: Replica,
    core: Arc<FleetCore>,
    verifier: Arc<TokenVerifier>,
    limits: GuessLimits,
    lockouts: Lockouts,
    /// Limit on the log lines of rejected tokens and of guesses for unknown users, which any
    /// caller can repeat at will.
    rejected_tokens: Arc<LogLimiter>,
    unknown_user_guesses: Arc<LogLimiter>,
}

/// Interval between two log lines of one kind of event that callers can repeat at will.
const REPEATED_EVENT_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

impl std::fmt::Debug for VaultService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultService")
            .field("node_id", &self.replica.node_id)
            .finish_non_exhaustive()
    }
}

impl VaultService {
    /// Returns the span of one vault call, so that its log lines carry the node id, the Raft
    /// term at the call's start and the client's request id (empty for calls without one).
    fn call_span(&self, rpc: &'static str, request_id: &[u8]) -> tracing::Span {
        let term = self.replica.raft.metrics().borrow_watched().current_term;
        tracing::info_span!(
            "vault_call",
            rpc,
            node_id = self.replica.node_id,
            term,
            request_id = %crate::keys::hex::encode(request_id)
        )
    }

    pub(crate) fn new(
        replica: Replica,
        core: Arc<FleetCore>,
        verifier: TokenVerifier,
        limits: GuessLimits,
    ) -> Self {
        let lockouts = Lockouts::new(replica.clone(), core.ticket_ttl());
        #[cfg(feature = "broken-count-guess-after-answer")]
        tracing::error!(
            node_id = replica.node_id,
            "this keyfleetd build has the test-only feature broken-count-guess-after-answer: \
             RecoveryStart answers before the guess is counted, so the guess budget does not \
             hold; never run it with real records"
        );

        Self {
            replica,
            core,
            verifier: Arc::new(verifier),
            limits,
            lockouts,
            rejected_tokens: Arc::new(LogLimiter::new(REPEATED_EVENT_LOG_INTERVAL)),
            unknown_user_guesses: Arc::new(LogLimiter::new(REPEATED_EVENT_LOG_INTERVAL)),
        }
    }
}

#[tonic::async_trait]
impl Vault for VaultService {
    async fn registration_start(
        &self,
        request: Request<RegistrationStartRequest>,
    ) -> Result<Response<RegistrationStartResponse>, Status> {
        let caller = self.authorize(&request, &request.get_ref().user_id)?;

        let span = self.call_span("registration_start", &[]);
        self.start_registration(&caller, request.into_inner())
            .instrument(span)
            .await
            .map(Response::new)
    }

    async fn registration_finish(
        &self,
        request: Request<RegistrationFinishRequest>,
    ) -> Result<Response<RegistrationFinishResponse>, Status> {
        let caller = self.authorize(&request, &request.get_ref().user_id)?;

        let span = self.call_span("registration_finish", &request.get_ref().request_id);
        self.finish_registration(&caller, request.into_inner())
            .instrument(span)
            .await
            .map(Response::new)
    }

    async fn recovery_start(
        &self,
        request: Request<RecoveryStartRequest>,
    ) -> Result<Response<RecoveryStartResponse>, Status> {
        let caller = self.authorize(&request, &request.get_ref().user_id)?;

        let span = self.call_span("recovery_start", &request.get_ref().request_id);
        self.start_recovery(&caller, request.into_inner())
            .instrument(span)
            .await
            .map(Response::new)
    }

    async fn recovery_finish(
        &self,
        request: Request<RecoveryFinishRequest>,
    ) -> Result<Response<RecoveryFinishResponse>, Status> {
        let caller = self.authorize(&request, &request.get_ref().user_id)?;

        let span = self.call_span("recovery_finish", &request.get_ref().request_id);
        self.finish_recovery(&caller, request.into_inner())
            .instrument(span)
            .await
            .map(Response::new)
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let caller = self.authorize(&request, &request.get_ref().user_id)?;

        let span = self.call_span("delete", &request.get_ref().request_id);
        self.delete_record(&caller, request.into_inner())
            .instrument(span)
            .await
            .map(Response::new)
    }

    async fn get_state(
        &self,
        request: Request<GetStateRequest>,
    ) -> Result<Response<GetStateResponse>, Status> {
        let caller = self.authorize(&request, &request.get_ref().user_id)?;

        let span = self.call_span("get_state", &[]);
        self.record_state(&caller)
            .instrument(span)
            .await
            .map(Response::new)
    }

    async fn get_bundle(
        &self,
        _request: Request<GetBundleRequest>,
    ) -> Result<Response<GetBundleResponse>, Status> {
        // A lagging follower would serve an older epoch, which a client that has seen a newer
        // one rejects, so the bundle is read at the leader's commit index.
        self.replica.linearize().await?;
        let Some(bundle) = self.replica.local_bundle().await? else {
            return Err(Status::not_found(format!(
                "node {} has no validation bundle: the operator has not published a fleet key \
                 epoch yet (`keyfleet fleet publish-bundle`)",
                self.replica.node_id
            )));
        };
        Ok(Response::new(GetBundleResponse {
            epoch: bundle.epoch,
            bundle: bundle.bundle_json,
        }))
    }
}
