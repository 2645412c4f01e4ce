//! The client side of a recovery, step by step, so that the benchmark can time RecoveryStart,
//! the call that commits a guess, apart from RecoveryFinish. It follows the same steps as
//! `keyfleet_sdk::VaultClient::recover`.

use std::fmt;
use std::time::{Duration, Instant};

use keyfleet_api::vault::vault_client::VaultClient as GrpcVaultClient;
use keyfleet_api::vault::{RecoveryFinishRequest, RecoveryStartRequest, RecoveryStartResponse};
use keyfleet_api::{ERROR_DOMAIN, ErrorReason, GUESSES_LEFT_KEY};
use keyfleet_client::{LeaderRouter, Operation, RouterError};
use keyfleet_protocol::{
    CREDENTIAL_FINALIZATION_LEN, KE_CONTEXT, Suite, client_identifiers, open_recovered_secret,
};
use opaque_ke::{ClientLogin, ClientLoginFinishParameters, CredentialResponse};
use rand::RngCore;
use rand::rngs::OsRng;
use tonic::metadata::{Ascii, MetadataValue};
use tonic_types::StatusExt;
use zeroize::Zeroizing;

/// One user's credentials as the benchmark's clients hold them. `Debug` leaves out the token
/// and the password.
#[derive(Clone)]
pub(crate) struct BenchUser {
    pub(crate) user: String,
    pub(crate) record_id: String,
    pub(crate) fleet_id: String,
    pub(crate) token: Zeroizing<String>,
    pub(crate) password: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for BenchUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BenchUser")
            .field("user", &self.user)
            .field("record_id", &self.record_id)
            .finish_non_exhaustive()
    }
}

/// Latencies of the two calls of one recovery.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepTimes {
    pub(crate) start: Duration,
    pub(crate) finish: Duration,
}

/// Result of a recovery that the client expected to fail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FailedGuess {
    pub(crate) times: StepTimes,
    pub(crate) guesses_left: u32,
}

/// Runs a recovery with the right password and checks that the returned secret decrypts
/// under the session key.
pub(crate) async fn recover(
    router: &LeaderRouter,
    user: &BenchUser,
    ksf: &<Suite as opaque_ke::CipherSuite>::Ksf,
) -> Result<StepTimes, String> {
    let login = ClientLogin::<Suite>::start(&mut OsRng, &user.password)
        .map_err(|error| format!("failed to start the login: {error:?}"))?;

    let started = Instant::now();
    let reply = recovery_start(router, user, login.message.serialize().to_vec()).await?;
    let start = started.elapsed();

    let response = CredentialResponse::<Suite>::deserialize(&reply.credential_response)
        .map_err(|error| format!("failed to decode the KE2: {error:?}"))?;
    let parameters = ClientLoginFinishParameters::new(
        Some(KE_CONTEXT),
        client_identifiers(&user.record_id, &user.fleet_id),
        Some(ksf),
    );
    let finished = login
        .state
        .finish(&mut OsRng, &user.password, response, parameters)
        .map_err(|error| format!("the KE2 did not verify with the right password: {error:?}"))?;

    let started = Instant::now();
    let finalization = finished.message.serialize().to_vec();
    let encrypted = recovery_finish(router, user, reply.ticket, finalization)
        .await
        .map_err(|error| error.to_string())?;
    let finish = started.elapsed();

    open_recovered_secret(&finished.session_key, &user.record_id, &encrypted)
        .map_err(|error| format!("the recovered secret does not decrypt: {error}"))?;

    Ok(StepTimes { start, finish })
}

/// Runs a recovery with a wrong password: RecoveryStart, then a random KE3, which the vault
/// must reject with `WRONG_PASSWORD`. The client skips its KSF, because the KE3 it sends
/// does not depend on the KE2.
pub(crate) async fn guess_wrong(
    router: &LeaderRouter,
    user: &BenchUser,
) -> Result<FailedGuess, String> {
    let login = ClientLogin::<Suite>::start(&mut OsRng, b"not the password")
        .map_err(|error| format!("failed to start the login: {error:?}"))?;

    let started = Instant::now();
    let reply = recovery_start(router, user, login.message.serialize().to_vec()).await?;
    let start = started.elapsed();

    let mut finalization = vec![0u8; CREDENTIAL_FINALIZATION_LEN];
    OsRng.fill_bytes(&mut finalization);

    let started = Instant::now();
    let outcome = recovery_finish(router, user, reply.ticket, finalization).await;
    let finish = started.elapsed();

    match outcome {
        Ok(_) => Err("the vault accepted a random KE3".to_owned()),
        Err(error) => {
            let guesses_left = wrong_password_guesses_left(&error)
                .ok_or_else(|| format!("expected WRONG_PASSWORD for a random KE3, got: {error}"))?;
            Ok(FailedGuess {
                times: StepTimes { start, finish },
                guesses_left,
            })
        }
    }
}

async fn recovery_start(
    router: &LeaderRouter,
    user: &BenchUser,
    credential_request: Vec<u8>,
) -> Result<RecoveryStartResponse, String> {
    let request_id = random_request_id();
    let message = RecoveryStartRequest {
        user_id: user.user.clone(),
        request_id: request_id.to_vec(),
        credential_request,
    };
    let authorization = bearer(&user.token)?;
    let operation = Operation::on_leader("recovery_start").with_request_id(hex::encode(request_id));

    let (reply, _) = router
        .call_operation(&operation, |channel| {
            let mut client = GrpcVaultClient::new(channel);
            let request = with_token(message.clone(), &authorization);
            async move { client.recovery_start(request).await }
        })
        .await
        .map_err(|error| error.to_string())?;
    Ok(reply)
}

async fn recovery_finish(
    router: &LeaderRouter,
    user: &BenchUser,
    ticket: Vec<u8>,
    credential_finalization: Vec<u8>,
) -> Result<Vec<u8>, RouterError> {
    let request_id = random_request_id();
    let message = RecoveryFinishRequest {
        user_id: user.user.clone(),
        request_id: request_id.to_vec(),
        ticket,
        credential_finalization,
    };
    let authorization = bearer(&user.token).expect("the token passed RecoveryStart");
    let operation =
        Operation::on_leader("recovery_finish").with_request_id(hex::encode(request_id));

    let (reply, _) = router
        .call_operation(&operation, |channel| {
            let mut client = GrpcVaultClient::new(channel);
            let request = with_token(message.clone(), &authorization);
            async move { client.recovery_finish(request).await }
        })
        .await?;
    Ok(reply.encrypted_secret)
}

/// Returns the guesses left that a `WRONG_PASSWORD` error carries, or `None` for any other
/// error.
fn wrong_password_guesses_left(error: &RouterError) -> Option<u32> {
    let info = error.status()?.get_details_error_info()?;
    if info.domain != ERROR_DOMAIN || info.reason != ErrorReason::WrongPassword.as_str() {
        return None;
    }
    info.metadata.get(GUESSES_LEFT_KEY)?.parse().ok()
}

fn random_request_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    id
}

fn bearer(token: &str) -> Result<MetadataValue<Ascii>, String> {
    format!("Bearer {token}")
        .parse()
        .map_err(|_| "the tenant token is not ASCII".to_owned())
}

fn with_token<T>(message: T, authorization: &MetadataValue<Ascii>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.clone());
    request
}
