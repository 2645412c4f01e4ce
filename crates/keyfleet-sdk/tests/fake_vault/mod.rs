//! An in-process stand-in for the vault API: opaque-ke's own server over plain maps, with no
//! HSM, Raft or ticket sealing. It checks the SDK's wire format and routing, not the real
//! vault, whose end-to-end tests run against keyfleetd.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use keyfleet_api::vault::vault_server::{Vault, VaultServer};
use keyfleet_api::vault::*;
use keyfleet_api::{ERROR_DOMAIN, GUESSES_LEFT_KEY, LEADER_API_METADATA, LEADER_ID_METADATA};
use keyfleet_protocol::{KE_CONTEXT, Suite, client_identifiers};
use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha512;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub const TENANT: &str = "acme";
pub const FLEET: &str = "fleet-test";
pub const DEFAULT_MAX_GUESSES: u32 = 5;

/// One request the fake received: the method and the request message in `Debug` form.
pub type CallLog = Arc<Mutex<Vec<(&'static str, String)>>>;

struct Record {
    password_file: Vec<u8>,
    client_ciphertext: Vec<u8>,
    max_guesses: u32,
    guesses_used: u32,
}

struct Login {
    record_id: String,
    state: ServerLogin<Suite>,
}

#[derive(Default)]
struct State {
    records: HashMap<String, Record>,
    logins: HashMap<Vec<u8>, Login>,
    locked: Vec<String>,
    /// Methods whose next call fails with `UNAVAILABLE` and `NO_QUORUM`.
    fail_next: Vec<&'static str>,
}

/// The leader: a working fake vault.
#[derive(Clone)]
pub struct FakeLeader {
    setup: Arc<ServerSetup<Suite>>,
    state: Arc<Mutex<State>>,
    pub calls: CallLog,
}

/// A follower that sends every call to the leader at `leader_api`.
#[derive(Clone)]
pub struct FakeFollower {
    leader_api: String,
    pub calls: CallLog,
}

impl FakeLeader {
    pub fn new() -> Self {
        Self {
            setup: Arc::new(ServerSetup::new(&mut OsRng)),
            state: Arc::default(),
            calls: CallLog::default(),
        }
    }

    /// Makes the next call of `method` fail with `UNAVAILABLE` before it changes anything.
    pub fn fail_next(&self, method: &'static str) {
        self.state.lock().unwrap().fail_next.push(method);
    }

    pub fn calls_of(&self, method: &str) -> Vec<String> {
        calls_of(&self.calls, method)
    }

    fn begin(&self, method: &'static str, request: &impl std::fmt::Debug) -> Result<(), Status> {
        self.calls
            .lock()
            .unwrap()
            .push((method, format!("{request:?}")));

        let mut state = self.state.lock().unwrap();
        if let Some(index) = state.fail_next.iter().position(|m| *m == method) {
            state.fail_next.remove(index);
            return Err(error(Code::Unavailable, "NO_QUORUM", &[]));
        }
        Ok(())
    }
}

pub fn calls_of(log: &CallLog, method: &str) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(name, _)| *name == method)
        .map(|(_, request)| request.clone())
        .collect()
}

/// Builds a status with a keyfleet `ErrorInfo`.
pub fn error(code: Code, reason: &str, metadata: &[(&str, &str)]) -> Status {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();

    Status::with_error_details(
        code,
        format!("fake vault: {reason}"),
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// Checks the bearer token and returns the record id of `user_id`.
fn authorize<T>(request: &Request<T>, user_id: &str) -> Result<String, Status> {
    let header = request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| error(Code::Unauthenticated, "TOKEN_INVALID", &[]))?;
    let claims = keyfleet_token::peek_claims(header)
        .map_err(|_| error(Code::Unauthenticated, "TOKEN_INVALID", &[]))?;

    if claims.user != user_id {
        return Err(error(Code::PermissionDenied, "TOKEN_WRONG_USER", &[]));
    }
    Ok(keyfleet_token::record_id(TENANT, user_id))
}

fn login_parameters(record_id: &str) -> ServerLoginParameters<'_, '_> {
    ServerLoginParameters {
        context: Some(KE_CONTEXT),
        identifiers: client_identifiers(record_id, FLEET),
    }
}

fn invalid(field: &str) -> Status {
    error(
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        &[("field", field)],
    )
}

/// Encrypts the client ciphertext under the session key, as `RecoveryFinishResponse`
/// documents.
fn seal_for_session(session_key: &[u8], record_id: &str, plaintext: &[u8]) -> Vec<u8> {
    let mut key = [0u8; 32];
    Hkdf::<Sha512>::new(None, session_key)
        .expand(b"keyfleet protocol 1 recovered secret key", &mut key)
        .unwrap();
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let mut aad = b"keyfleet protocol 1 recovered secret".to_vec();
    aad.extend_from_slice(record_id.as_bytes());

    let ciphertext = Aes256Gcm::new_from_slice(&key)
        .unwrap()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .unwrap();
    [nonce.to_vec(), ciphertext].concat()
}

#[tonic::async_trait]
impl Vault for FakeLeader {
    async fn registration_start(
        &self,
        request: Request<RegistrationStartRequest>,
    ) -> Result<Response<RegistrationStartResponse>, Status> {
        self.begin("registration_start", request.get_ref())?;
        let record_id = authorize(&request, &request.get_ref().user_id)?;
        let message =
            RegistrationRequest::<Suite>::deserialize(&request.get_ref().registration_request)
                .map_err(|_| invalid("registration_request"))?;

        let start = ServerRegistration::start(&self.setup, message, record_id.as_bytes())
            .map_err(|_| invalid("registration_request"))?;

        Ok(Response::new(RegistrationStartResponse {
            registration_response: start.message.serialize().to_vec(),
            ticket: record_id.into_bytes(),
            default_max_guesses: DEFAULT_MAX_GUESSES,
            max_guesses_ceiling: 100,
            bundle_epoch: 0,
        }))
    }

    async fn registration_finish(
        &self,
        request: Request<RegistrationFinishRequest>,
    ) -> Result<Response<RegistrationFinishResponse>, Status> {
        self.begin("registration_finish", request.get_ref())?;
        let record_id = authorize(&request, &request.get_ref().user_id)?;
        let message = request.get_ref();
        if message.ticket != record_id.as_bytes() {
            return Err(error(Code::Aborted, "TICKET_INVALID", &[]));
        }
        let upload = RegistrationUpload::<Suite>::deserialize(&message.registration_upload)
            .map_err(|_| invalid("registration_upload"))?;

        let max_guesses = match message.max_guesses {
            0 => DEFAULT_MAX_GUESSES,
            n => n,
        };
        let record = Record {
            password_file: ServerRegistration::finish(upload).serialize().to_vec(),
            client_ciphertext: message.client_ciphertext.clone(),
            max_guesses,
            guesses_used: 0,
        };
        let mut state = self.state.lock().unwrap();
        state.locked.retain(|id| *id != record_id);
        state.records.insert(record_id, record);

        Ok(Response::new(RegistrationFinishResponse { max_guesses }))
    }

    async fn recovery_start(
        &self,
        request: Request<RecoveryStartRequest>,
    ) -> Result<Response<RecoveryStartResponse>, Status> {
        self.begin("recovery_start", request.get_ref())?;
        let record_id = authorize(&request, &request.get_ref().user_id)?;
        let message =
            CredentialRequest::<Suite>::deserialize(&request.get_ref().credential_request)
                .map_err(|_| invalid("credential_request"))?;

        let mut state = self.state.lock().unwrap();
        if state.locked.contains(&record_id) {
            return Err(error(Code::FailedPrecondition, "LOCKED", &[]));
        }
        let password_file = match state.records.get_mut(&record_id) {
            Some(record) => {
                record.guesses_used += 1;
                Some(ServerRegistration::<Suite>::deserialize(&record.password_file).unwrap())
            }
            None => None,
        };

        let start = ServerLogin::start(
            &mut OsRng,
            &self.setup,
            password_file,
            message,
            record_id.as_bytes(),
            login_parameters(&record_id),
        )
        .map_err(|_| invalid("credential_request"))?;

        let mut ticket = vec![0u8; 16];
        OsRng.fill_bytes(&mut ticket);
        let login = Login {
            record_id,
            state: start.state,
        };
        state.logins.insert(ticket.clone(), login);

        Ok(Response::new(RecoveryStartResponse {
            credential_response: start.message.serialize().to_vec(),
            ticket,
            bundle_epoch: 0,
        }))
    }

    async fn recovery_finish(
        &self,
        request: Request<RecoveryFinishRequest>,
    ) -> Result<Response<RecoveryFinishResponse>, Status> {
        self.begin("recovery_finish", request.get_ref())?;
        let record_id = authorize(&request, &request.get_ref().user_id)?;
        let message = request.get_ref();
        if message.credential_finalization.len() != keyfleet_protocol::CREDENTIAL_FINALIZATION_LEN {
            return Err(invalid("credential_finalization"));
        }

        let mut state = self.state.lock().unwrap();
        let login = state
            .logins
            .remove(&message.ticket)
            .filter(|login| login.record_id == record_id)
            .ok_or_else(|| error(Code::Aborted, "TICKET_INVALID", &[]))?;

        let verified =
            CredentialFinalization::<Suite>::deserialize(&message.credential_finalization)
                .ok()
                .and_then(|ke3| login.state.finish(ke3, login_parameters(&record_id)).ok());

        match verified {
            Some(finished) => {
                let record = state.records.get_mut(&record_id).unwrap();
                record.guesses_used = 0;
                let encrypted_secret =
                    seal_for_session(&finished.session_key, &record_id, &record.client_ciphertext);
                Ok(Response::new(RecoveryFinishResponse { encrypted_secret }))
            }
            None => Err(failed_guess(&mut state, &record_id)),
        }
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        self.begin("delete", request.get_ref())?;
        let record_id = authorize(&request, &request.get_ref().user_id)?;

        let deleted = self
            .state
            .lock()
            .unwrap()
            .records
            .remove(&record_id)
            .is_some();
        Ok(Response::new(DeleteResponse { deleted }))
    }

    async fn get_state(
        &self,
        request: Request<GetStateRequest>,
    ) -> Result<Response<GetStateResponse>, Status> {
        self.begin("get_state", request.get_ref())?;
        let record_id = authorize(&request, &request.get_ref().user_id)?;

        let state = self.state.lock().unwrap();
        let response = match state.records.get(&record_id) {
            Some(record) => GetStateResponse {
                state: RecordState::Registered as i32,
                max_guesses: record.max_guesses,
                guesses_left: record.max_guesses - record.guesses_used,
            },
            None if state.locked.contains(&record_id) => GetStateResponse {
                state: RecordState::Locked as i32,
                ..GetStateResponse::default()
            },
            None => GetStateResponse {
                state: RecordState::NotRegistered as i32,
                ..GetStateResponse::default()
            },
        };
        Ok(Response::new(response))
    }

    async fn get_bundle(
        &self,
        _request: Request<GetBundleRequest>,
    ) -> Result<Response<GetBundleResponse>, Status> {
        Err(Status::not_found("the fake vault has no validation bundle"))
    }
}

/// Returns `WRONG_PASSWORD`, or erases the record and returns `LOCKED` on its last guess.
fn failed_guess(state: &mut State, record_id: &str) -> Status {
    let Some(record) = state.records.get(record_id) else {
        return error(
            Code::PermissionDenied,
            "WRONG_PASSWORD",
            &[(GUESSES_LEFT_KEY, "0")],
        );
    };

    let guesses_left = record.max_guesses - record.guesses_used;
    if guesses_left > 0 {
        return error(
            Code::PermissionDenied,
            "WRONG_PASSWORD",
            &[(GUESSES_LEFT_KEY, &guesses_left.to_string())],
        );
    }

    state.records.remove(record_id);
    state.locked.push(record_id.to_owned());
    error(Code::FailedPrecondition, "LOCKED", &[])
}

impl FakeFollower {
    pub fn new(leader_api: SocketAddr) -> Self {
        Self {
            leader_api: leader_api.to_string(),
            calls: CallLog::default(),
        }
    }

    fn redirect<T: std::fmt::Debug>(&self, method: &'static str, request: &T) -> Status {
        self.calls
            .lock()
            .unwrap()
            .push((method, format!("{request:?}")));

        let mut metadata = MetadataMap::new();
        metadata.insert(LEADER_ID_METADATA, "1".parse().unwrap());
        metadata.insert(LEADER_API_METADATA, self.leader_api.parse().unwrap());
        let details = ErrorDetails::with_error_info("NOT_LEADER", ERROR_DOMAIN, HashMap::new());

        Status::with_error_details_and_metadata(
            Code::Unavailable,
            "fake vault: not the leader",
            details,
            metadata,
        )
    }
}

#[tonic::async_trait]
impl Vault for FakeFollower {
    async fn registration_start(
        &self,
        request: Request<RegistrationStartRequest>,
    ) -> Result<Response<RegistrationStartResponse>, Status> {
        Err(self.redirect("registration_start", request.get_ref()))
    }

    async fn registration_finish(
        &self,
        request: Request<RegistrationFinishRequest>,
    ) -> Result<Response<RegistrationFinishResponse>, Status> {
        Err(self.redirect("registration_finish", request.get_ref()))
    }

    async fn recovery_start(
        &self,
        request: Request<RecoveryStartRequest>,
    ) -> Result<Response<RecoveryStartResponse>, Status> {
        Err(self.redirect("recovery_start", request.get_ref()))
    }

    async fn recovery_finish(
        &self,
        request: Request<RecoveryFinishRequest>,
    ) -> Result<Response<RecoveryFinishResponse>, Status> {
        Err(self.redirect("recovery_finish", request.get_ref()))
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        Err(self.redirect("delete", request.get_ref()))
    }

    async fn get_state(
        &self,
        request: Request<GetStateRequest>,
    ) -> Result<Response<GetStateResponse>, Status> {
        Err(self.redirect("get_state", request.get_ref()))
    }

    async fn get_bundle(
        &self,
        _request: Request<GetBundleRequest>,
    ) -> Result<Response<GetBundleResponse>, Status> {
        Err(Status::not_found("the fake vault has no validation bundle"))
    }
}

/// Serves `service` on a free port of 127.0.0.1 and returns its address.
pub async fn serve<S: Vault>(service: S) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();

    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(VaultServer::new(service))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    address
}
