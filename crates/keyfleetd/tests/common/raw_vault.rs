//! A client of the vault API that sends each OPAQUE step by hand, so that tests can replay,
//! reorder, corrupt and interleave the steps. It encrypts nothing: the "client ciphertext" is
//! the test's secret as is, which the vault stores without opening.

use keyfleet_api::vault::vault_client::VaultClient;
use keyfleet_api::vault::{
    DeleteRequest, GetStateRequest, GetStateResponse, RecoveryFinishRequest, RecoveryStartRequest,
    RecoveryStartResponse, RegistrationFinishRequest, RegistrationStartRequest,
};
use keyfleet_vault::{KE_CONTEXT, KsfParams, Suite, client_identifiers, open_recovered_secret};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, RegistrationResponse,
};
use rand::RngCore;
use rand::rngs::OsRng;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::FLEET_ID;
use super::TENANT;

/// Cheap Argon2id parameters: the KSF runs only on the client, so the vault cannot tell.
pub const TEST_KSF: KsfParams = KsfParams {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};

/// One user's raw vault calls against one node.
#[derive(Debug, Clone)]
pub struct RawVault {
    client: VaultClient<Channel>,
    token: String,
    user: String,
}

/// The two messages of a recovery that a test can replay: the start reply and the client's
/// login state.
pub struct StartedLogin {
    pub state: ClientLogin<Suite>,
    pub reply: RecoveryStartResponse,
}

/// Reason, code and `guesses_left` of a failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub reason: String,
    pub guesses_left: Option<u32>,
    pub message: String,
}

impl Failure {
    pub fn from_status(status: &Status) -> Self {
        let info = status.get_details_error_info();
        let guesses_left = info
            .as_ref()
            .and_then(|info| info.metadata.get("guesses_left"))
            .map(|left| left.parse().expect("guesses_left is a number"));

        Self {
            code: status.code(),
            reason: info.map(|info| info.reason).unwrap_or_default(),
            guesses_left,
            message: status.message().to_owned(),
        }
    }
}

/// Returns 16 fresh random bytes.
pub fn random_request_id() -> Vec<u8> {
    let mut id = vec![0u8; 16];
    OsRng.fill_bytes(&mut id);
    id
}

/// Returns the vault's record id of `user`.
pub fn record_id(user: &str) -> String {
    keyfleet_token::record_id(TENANT, user)
}

impl RawVault {
    /// Connects to the node API endpoint `endpoint`, with `token` for `user`.
    pub async fn connect(endpoint: &str, token: String, user: &str) -> Self {
        let client = VaultClient::connect(endpoint.to_owned())
            .await
            .unwrap_or_else(|error| panic!("connect to {endpoint}: {error}"));

        Self {
            client,
            token,
            user: user.to_owned(),
        }
    }

    /// Returns the same client with another token.
    pub fn with_token(&self, token: String) -> Self {
        Self {
            token,
            ..self.clone()
        }
    }

    /// Wraps `message` in a request with the bearer token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let bearer = format!("Bearer {}", self.token)
            .parse()
            .expect("a token is ASCII");
        request.metadata_mut().insert("authorization", bearer);
        request
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// Registers with `password` and `secret`, and returns the RegistrationFinish request sent,
    /// for replays.
    pub async fn register(
        &self,
        password: &[u8],
        secret: &[u8],
        max_guesses: u32,
    ) -> Result<RegistrationFinishRequest, Failure> {
        let record = record_id(&self.user);
        let start = ClientRegistration::<Suite>::start(&mut OsRng, password).unwrap();
        let reply = self
            .client
            .clone()
            .registration_start(self.request(RegistrationStartRequest {
                user_id: self.user.clone(),
                registration_request: start.message.serialize().to_vec(),
            }))
            .await
            .map_err(|status| Failure::from_status(&status))?
            .into_inner();

        let ksf = TEST_KSF.argon2().unwrap();
        let response = RegistrationResponse::<Suite>::deserialize(&reply.registration_response)
            .expect("the vault sends a valid RegistrationResponse");
        let parameters = ClientRegistrationFinishParameters::new(
            client_identifiers(&record, FLEET_ID),
            Some(&ksf),
        );
        let finished = start
            .state
            .finish(&mut OsRng, password, response, parameters)
            .expect("registration finishes on the client");

        let finish = RegistrationFinishRequest {
            user_id: self.user.clone(),
            request_id: random_request_id(),
            ticket: reply.ticket,
            registration_upload: finished.message.serialize().to_vec(),
            client_ciphertext: secret.to_vec(),
            max_guesses,
        };
        self.send_registration_finish(finish.clone()).await?;
        Ok(finish)
    }

    pub async fn send_registration_finish(
        &self,
        finish: RegistrationFinishRequest,
    ) -> Result<u32, Failure> {
        self.client
            .clone()
            .registration_finish(self.request(finish))
            .await
            .map(|reply| reply.into_inner().max_guesses)
            .map_err(|status| Failure::from_status(&status))
    }

    /// Sends RecoveryStart with a KE1 for `password` and a fresh request id.
    pub async fn start_login(&self, password: &[u8]) -> Result<StartedLogin, Failure> {
        let start = ClientLogin::<Suite>::start(&mut OsRng, password).unwrap();
        let request = RecoveryStartRequest {
            user_id: self.user.clone(),
            request_id: random_request_id(),
            credential_request: start.message.serialize().to_vec(),
        };

        let reply = self.send_recovery_start(request).await?;
        Ok(StartedLogin {
            state: start.state,
            reply,
        })
    }

    pub async fn send_recovery_start(
        &self,
        request: RecoveryStartRequest,
    ) -> Result<RecoveryStartResponse, Failure> {
        self.client
            .clone()
            .recovery_start(self.request(request))
            .await
            .map(|reply| reply.into_inner())
            .map_err(|status| Failure::from_status(&status))
    }

    /// Finishes the login on the client and builds the RecoveryFinish request: the real KE3
    /// when the password was right, 64 random bytes otherwise. Also returns the session key.
    pub fn finish_request(
        &self,
        login: StartedLogin,
        password: &[u8],
    ) -> (RecoveryFinishRequest, Option<Vec<u8>>) {
        let record = record_id(&self.user);
        let ksf = TEST_KSF.argon2().unwrap();
        let response = CredentialResponse::<Suite>::deserialize(&login.reply.credential_response)
            .expect("the vault sends a valid KE2");
        let parameters = ClientLoginFinishParameters::new(
            Some(KE_CONTEXT),
            client_identifiers(&record, FLEET_ID),
            Some(&ksf),
        );

        let (finalization, session_key) = match login
            .state
            .finish(&mut OsRng, password, response, parameters)
        {
            Ok(finished) => (
                finished.message.serialize().to_vec(),
                Some(finished.session_key.to_vec()),
            ),
            Err(_) => {
                let mut random = vec![0u8; 64];
                OsRng.fill_bytes(&mut random);
                (random, None)
            }
        };

        let request = RecoveryFinishRequest {
            user_id: self.user.clone(),
            request_id: random_request_id(),
            ticket: login.reply.ticket,
            credential_finalization: finalization,
        };
        (request, session_key)
    }

    /// Sends RecoveryFinish and returns the encrypted secret.
    pub async fn send_recovery_finish(
        &self,
        request: RecoveryFinishRequest,
    ) -> Result<Vec<u8>, Failure> {
        self.client
            .clone()
            .recovery_finish(self.request(request))
            .await
            .map(|reply| reply.into_inner().encrypted_secret)
            .map_err(|status| Failure::from_status(&status))
    }

    /// Runs a whole recovery with `password` and returns the secret.
    pub async fn recover(&self, password: &[u8]) -> Result<Vec<u8>, Failure> {
        let login = self.start_login(password).await?;
        let (request, session_key) = self.finish_request(login, password);
        let encrypted = self.send_recovery_finish(request).await?;

        let session_key = session_key.expect("the vault accepted a KE3 the client failed");
        let secret = open_recovered_secret(&session_key, &record_id(&self.user), &encrypted)
            .expect("the recovered secret opens with the session key");
        Ok(secret.to_vec())
    }

    pub async fn state(&self) -> Result<GetStateResponse, Failure> {
        self.client
            .clone()
            .get_state(self.request(GetStateRequest {
                user_id: self.user.clone(),
            }))
            .await
            .map(|reply| reply.into_inner())
            .map_err(|status| Failure::from_status(&status))
    }

    pub async fn delete(&self) -> Result<bool, Failure> {
        self.client
            .clone()
            .delete(self.request(DeleteRequest {
                user_id: self.user.clone(),
                request_id: random_request_id(),
            }))
            .await
            .map(|reply| reply.into_inner().deleted)
            .map_err(|status| Failure::from_status(&status))
    }
}
