//! Raw vault API calls for one user against one node, each step sent by hand and each error
//! classified as a sure failure or an unknown outcome.

use std::time::Duration;

use keyfleet_api::vault::vault_client::VaultClient;
use keyfleet_api::vault::{
    DeleteRequest, GetStateRequest, RecordState, RecoveryFinishRequest, RecoveryStartRequest,
    RegistrationFinishRequest, RegistrationStartRequest,
};
use keyfleet_protocol::{KE_CONTEXT, KsfParams, Suite, client_identifiers, open_recovered_secret};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, RegistrationResponse,
};
use rand::RngCore;
use rand::rngs::OsRng;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use zeroize::Zeroizing;

use crate::history::{OpValue, Outcome};

/// Cheap Argon2id parameters for the workload. The KSF runs only on the client, so the vault
/// cannot tell them from the protocol's 64 MiB, t = 3 parameters.
pub const TEST_KSF: KsfParams = KsfParams {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};

/// Failure reason of a call whose TCP connection could not be opened, so nothing was sent.
pub const CONNECT_FAILED: &str = "CONNECT_FAILED";

/// One user's vault calls against one node endpoint. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct VaultDriver {
    client: VaultClient<Channel>,
    endpoint: String,
    token: String,
    tenant: String,
    user: String,
    record_id: String,
    fleet_id: String,
    timeout: Duration,
}

/// A failed call: its outcome for the history, and the leader's endpoint when the node named
/// one.
#[derive(Debug, Clone)]
pub struct CallError {
    pub outcome: Outcome,
    pub leader_endpoint: Option<String>,
}

/// A RecoveryStart that returned a KE2: the client's login state and the ticket.
pub struct StartedLogin {
    state: ClientLogin<Suite>,
    credential_response: Vec<u8>,
    ticket: Vec<u8>,
}

/// A RecoveryFinish ready to send, with the session key that opens its reply.
pub struct PreparedFinish {
    ticket: Vec<u8>,
    credential_finalization: Vec<u8>,
    session_key: Option<Zeroizing<Vec<u8>>>,
}

impl PreparedFinish {
    /// Returns true when the KE2 verified with the password, so the KE3 is real.
    pub fn is_real(&self) -> bool {
        self.session_key.is_some()
    }
}

impl std::fmt::Debug for PreparedFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedFinish")
            .field("is_real", &self.is_real())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for StartedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedLogin").finish_non_exhaustive()
    }
}

impl VaultDriver {
    /// Builds a driver for `user` of `tenant` against `endpoint`, such as
    /// `http://127.0.0.1:7201`. It connects lazily, and every call times out after `timeout`.
    pub fn new(
        endpoint: &str,
        token: String,
        tenant: &str,
        user: &str,
        fleet_id: &str,
        timeout: Duration,
    ) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(endpoint.to_owned())?
            .connect_timeout(timeout)
            .timeout(timeout)
            .connect_lazy();

        Ok(Self {
            client: VaultClient::new(channel),
            endpoint: endpoint.to_owned(),
            token,
            tenant: tenant.to_owned(),
            user: user.to_owned(),
            record_id: keyfleet_token::record_id(tenant, user),
            fleet_id: fleet_id.to_owned(),
            timeout,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Returns a driver for the same user against another endpoint.
    pub fn with_endpoint(&self, endpoint: &str) -> Result<Self, tonic::transport::Error> {
        Self::new(
            endpoint,
            self.token.clone(),
            &self.tenant,
            &self.user,
            &self.fleet_id,
            self.timeout,
        )
    }

    /// Registers `password` with `secret`. A failed RegistrationStart is a sure failure,
    /// because only RegistrationFinish changes the record.
    pub async fn register(
        &self,
        password: &[u8],
        secret: &[u8],
        max_guesses: u32,
        request_id: &[u8],
    ) -> Result<(), CallError> {
        let start = ClientRegistration::<Suite>::start(&mut OsRng, password)
            .expect("a registration request always builds");
        let request = RegistrationStartRequest {
            user_id: self.user.clone(),
            registration_request: start.message.serialize().to_vec(),
        };
        let reply = self
            .send(request, |mut client, request| async move {
                client.registration_start(request).await
            })
            .await
            .map_err(|error| error.into_sure_failure())?;

        let response = RegistrationResponse::<Suite>::deserialize(&reply.registration_response)
            .map_err(|error| CallError::sure(format!("invalid RegistrationResponse: {error}")))?;
        let ksf = TEST_KSF.argon2().expect("TEST_KSF is valid");
        let parameters = ClientRegistrationFinishParameters::new(
            client_identifiers(&self.record_id, &self.fleet_id),
            Some(&ksf),
        );
        let finished = start
            .state
            .finish(&mut OsRng, password, response, parameters)
            .map_err(|error| CallError::sure(format!("client registration finish: {error}")))?;

        let finish = RegistrationFinishRequest {
            user_id: self.user.clone(),
            request_id: request_id.to_vec(),
            ticket: reply.ticket,
            registration_upload: finished.message.serialize().to_vec(),
            client_ciphertext: secret.to_vec(),
            max_guesses,
        };
        self.send(finish, |mut client, request| async move {
            client.registration_finish(request).await
        })
        .await
        .map(|_| ())
    }

    /// Sends RecoveryStart with a KE1 for `password`.
    pub async fn recovery_start(
        &self,
        password: &[u8],
        request_id: &[u8],
    ) -> Result<StartedLogin, CallError> {
        let start = ClientLogin::<Suite>::start(&mut OsRng, password)
            .expect("a credential request always builds");
        let request = RecoveryStartRequest {
            user_id: self.user.clone(),
            request_id: request_id.to_vec(),
            credential_request: start.message.serialize().to_vec(),
        };

        let reply = self
            .send(request, |mut client, request| async move {
                client.recovery_start(request).await
            })
            .await?;
        Ok(StartedLogin {
            state: start.state,
            credential_response: reply.credential_response,
            ticket: reply.ticket,
        })
    }

    /// Finishes the login with `password` on the client: the real KE3 when the KE2 verifies
    /// with the password, 64 random bytes otherwise.
    pub fn prepare_finish(&self, login: StartedLogin, password: &[u8]) -> PreparedFinish {
        let ksf = TEST_KSF.argon2().expect("TEST_KSF is valid");
        let parameters = ClientLoginFinishParameters::new(
            Some(KE_CONTEXT),
            client_identifiers(&self.record_id, &self.fleet_id),
            Some(&ksf),
        );
        let finished = CredentialResponse::<Suite>::deserialize(&login.credential_response)
            .ok()
            .and_then(|response| {
                login
                    .state
                    .finish(&mut OsRng, password, response, parameters)
                    .ok()
            });

        let (credential_finalization, session_key) = match finished {
            Some(finished) => (
                finished.message.serialize().to_vec(),
                Some(Zeroizing::new(finished.session_key.to_vec())),
            ),
            None => {
                let mut random = vec![0u8; 64];
                OsRng.fill_bytes(&mut random);
                (random, None)
            }
        };

        PreparedFinish {
            ticket: login.ticket,
            credential_finalization,
            session_key,
        }
    }

    /// Sends RecoveryFinish and returns the recovered secret. A retry may send the same
    /// `finish` again.
    pub async fn send_finish(
        &self,
        finish: &PreparedFinish,
        request_id: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let request = RecoveryFinishRequest {
            user_id: self.user.clone(),
            request_id: request_id.to_vec(),
            ticket: finish.ticket.clone(),
            credential_finalization: finish.credential_finalization.clone(),
        };
        let reply = self
            .send(request, |mut client, request| async move {
                client.recovery_finish(request).await
            })
            .await?;

        // A wrong KE3 that the vault accepted, and a secret that does not open, are recorded
        // as an empty secret, which the checker reports as one that no registration sent.
        let Some(session_key) = &finish.session_key else {
            return Ok(Vec::new());
        };
        let secret = open_recovered_secret(session_key, &self.record_id, &reply.encrypted_secret)
            .map(|secret| secret.to_vec())
            .unwrap_or_default();
        Ok(secret)
    }

    pub async fn delete(&self, request_id: &[u8]) -> Result<(), CallError> {
        let request = DeleteRequest {
            user_id: self.user.clone(),
            request_id: request_id.to_vec(),
        };

        self.send(request, |mut client, request| async move {
            client.delete(request).await
        })
        .await
        .map(|_| ())
    }

    /// Reads the record's state with GetState, which the leader serves after a ReadIndex
    /// round.
    pub async fn state(&self) -> Result<OpValue, CallError> {
        let request = GetStateRequest {
            user_id: self.user.clone(),
        };
        let reply = self
            .send(request, |mut client, request| async move {
                client.get_state(request).await
            })
            .await?;

        let state = match reply.state() {
            RecordState::NotRegistered => "not_registered",
            RecordState::Registered => "registered",
            RecordState::Locked => "locked",
            RecordState::Unspecified => "unspecified",
        };
        Ok(OpValue::State {
            state: state.to_owned(),
            max_guesses: reply.max_guesses,
            guesses_left: reply.guesses_left,
        })
    }

    /// Sends one unary call with the bearer token and the driver's timeout.
    async fn send<T, R, F, Fut>(&self, message: T, method: F) -> Result<R, CallError>
    where
        F: FnOnce(VaultClient<Channel>, tonic::Request<T>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let mut request = tonic::Request::new(message);
        let bearer = format!("Bearer {}", self.token)
            .parse()
            .expect("a tenant token is ASCII");
        request.metadata_mut().insert("authorization", bearer);

        let call = method(self.client.clone(), request);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(reply)) => Ok(reply.into_inner()),
            Ok(Err(status)) => Err(CallError::from_status(&status)),
            Err(_) => Err(CallError::unknown(format!(
                "timed out after {:?}",
                self.timeout
            ))),
        }
    }
}

impl CallError {
    /// Returns true when another node may serve the call: the node named another leader, is
    /// not ready, could not be reached, or the outcome is unknown.
    pub fn try_elsewhere(&self) -> bool {
        match &self.outcome {
            Outcome::Unknown { .. } => true,
            Outcome::Fail { reason, .. } => {
                matches!(
                    reason.as_str(),
                    "NOT_LEADER" | "FLEET_NOT_READY" | CONNECT_FAILED
                ) || reason.starts_with("registration start:")
            }
            Outcome::Ok(_) => false,
        }
    }

    /// Builds the error of a call that failed before its state-changing request was sent.
    fn sure(reason: String) -> Self {
        Self {
            outcome: Outcome::Fail {
                reason,
                guesses_left: None,
            },
            leader_endpoint: None,
        }
    }

    fn unknown(reason: String) -> Self {
        Self {
            outcome: Outcome::Unknown { reason },
            leader_endpoint: None,
        }
    }

    /// Classifies a status. Only statuses that the vault returns before it proposes a write,
    /// or that report the write's result, are sure failures. Transport errors, timeouts,
    /// `NO_QUORUM` and internal errors leave the outcome unknown.
    fn from_status(status: &Status) -> Self {
        let info = status.get_details_error_info();
        let reason = info
            .as_ref()
            .map(|info| info.reason.clone())
            .unwrap_or_default();
        let guesses_left = info
            .as_ref()
            .and_then(|info| info.metadata.get("guesses_left"))
            .and_then(|left| left.parse().ok());
        let leader_endpoint = status
            .metadata()
            .get(keyfleet_api::LEADER_API_METADATA)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.trim().is_empty())
            .map(|value| format!("http://{}", value.trim()));

        // tonic reports a failed TCP connect as UNAVAILABLE with this message, and sends
        // nothing in that case.
        let connect_failed = status.code() == Code::Unavailable
            && reason.is_empty()
            && status.message().contains("tcp connect error");
        if connect_failed {
            return Self {
                outcome: Outcome::Fail {
                    reason: CONNECT_FAILED.to_owned(),
                    guesses_left: None,
                },
                leader_endpoint,
            };
        }

        let sure = match status.code() {
            Code::Unavailable => matches!(reason.as_str(), "NOT_LEADER" | "FLEET_NOT_READY"),
            Code::Internal | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled => false,
            _ => !reason.is_empty(),
        };

        let outcome = if sure {
            Outcome::Fail {
                reason,
                guesses_left,
            }
        } else {
            Outcome::Unknown {
                reason: format!("{:?} {reason}: {}", status.code(), status.message()),
            }
        };
        Self {
            outcome,
            leader_endpoint,
        }
    }

    /// Turns the error of a call that changes nothing into a sure failure.
    fn into_sure_failure(self) -> Self {
        let outcome = match self.outcome {
            Outcome::Unknown { reason } => Outcome::Fail {
                reason: format!("registration start: {reason}"),
                guesses_left: None,
            },
            other => other,
        };
        Self { outcome, ..self }
    }
}
