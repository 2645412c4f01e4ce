//! The client's OPAQUE finish steps, which run the Argon2id KSF on a blocking thread so that
//! they do not stall the async runtime.

use keyfleet_protocol::{KE_CONTEXT, KsfParams, Suite, client_identifiers, client_ksf};
use opaque_ke::errors::ProtocolError;
use opaque_ke::{
    CipherSuite, ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, RegistrationResponse,
};
use rand::rngs::OsRng;
use zeroize::{Zeroize, Zeroizing};

use crate::SdkError;
use crate::caller::Caller;

type Ksf = <Suite as CipherSuite>::Ksf;

/// The client's output of a finished registration.
pub(crate) struct RegistrationOutput {
    /// The serialized `RegistrationUpload`.
    pub(crate) upload: Vec<u8>,
    /// The OPAQUE export key, which only a client with the password can derive.
    pub(crate) export_key: Zeroizing<Vec<u8>>,
    /// The server's static public key from the `RegistrationResponse`.
    pub(crate) server_public_key: Vec<u8>,
}

/// The client's output of a login whose KE2 verified.
pub(crate) struct LoginKeys {
    /// The serialized `CredentialFinalization` (KE3).
    pub(crate) finalization: Vec<u8>,
    pub(crate) session_key: Zeroizing<Vec<u8>>,
    pub(crate) export_key: Zeroizing<Vec<u8>>,
    /// The server's static public key that the KE2 was verified with.
    pub(crate) server_public_key: Vec<u8>,
}

/// Outcome of the client's login finish step.
pub(crate) enum LoginOutcome {
    /// The KE2 verified with this password.
    Verified(LoginKeys),
    /// The KE2 did not verify: a wrong password, or a user without a record.
    Failed,
}

/// Finishes the registration with the vault's `RegistrationResponse`.
pub(crate) async fn finish_registration(
    state: ClientRegistration<Suite>,
    password: Zeroizing<Vec<u8>>,
    caller: &Caller,
    response: Vec<u8>,
    ksf: Option<KsfParams>,
) -> Result<RegistrationOutput, SdkError> {
    let record_id = caller.record_id().to_owned();
    let fleet_id = caller.fleet_id().to_owned();

    run_blocking(move || {
        let ksf = build_ksf(ksf)?;
        let response = RegistrationResponse::<Suite>::deserialize(&response)
            .map_err(|error| protocol_error("decode the RegistrationResponse", &error))?;
        let parameters = ClientRegistrationFinishParameters::new(
            client_identifiers(&record_id, &fleet_id),
            Some(&ksf),
        );

        let mut result = state
            .finish(&mut OsRng, &password, response, parameters)
            .map_err(|error| protocol_error("finish the registration", &error))?;

        let export_key = Zeroizing::new(result.export_key.to_vec());
        result.export_key.zeroize();
        Ok(RegistrationOutput {
            upload: result.message.serialize().to_vec(),
            export_key,
            server_public_key: result.server_s_pk.serialize().to_vec(),
        })
    })
    .await
}

/// Finishes the login with the vault's `CredentialResponse` (KE2).
pub(crate) async fn finish_login(
    state: ClientLogin<Suite>,
    password: Zeroizing<Vec<u8>>,
    caller: &Caller,
    response: Vec<u8>,
    ksf: Option<KsfParams>,
) -> Result<LoginOutcome, SdkError> {
    let record_id = caller.record_id().to_owned();
    let fleet_id = caller.fleet_id().to_owned();

    run_blocking(move || {
        let ksf = build_ksf(ksf)?;
        let response = CredentialResponse::<Suite>::deserialize(&response)
            .map_err(|error| protocol_error("decode the CredentialResponse", &error))?;
        let parameters = ClientLoginFinishParameters::new(
            Some(KE_CONTEXT),
            client_identifiers(&record_id, &fleet_id),
            Some(&ksf),
        );

        match state.finish(&mut OsRng, &password, response, parameters) {
            Ok(mut result) => {
                let keys = LoginKeys {
                    finalization: result.message.serialize().to_vec(),
                    session_key: Zeroizing::new(result.session_key.to_vec()),
                    export_key: Zeroizing::new(result.export_key.to_vec()),
                    server_public_key: result.server_s_pk.serialize().to_vec(),
                };
                result.session_key.zeroize();
                result.export_key.zeroize();
                Ok(LoginOutcome::Verified(keys))
            }
            Err(ProtocolError::InvalidLoginError) => Ok(LoginOutcome::Failed),
            Err(error) => Err(protocol_error("finish the login", &error)),
        }
    })
    .await
}

/// Builds a [`SdkError::Protocol`] for an OPAQUE step that failed.
pub(crate) fn protocol_error(step: &str, error: &ProtocolError) -> SdkError {
    SdkError::Protocol {
        reason: format!("failed to {step}: {error:?}"),
    }
}

fn build_ksf(params: Option<KsfParams>) -> Result<Ksf, SdkError> {
    let Some(params) = params else {
        return Ok(client_ksf());
    };

    params.argon2().map_err(|error| SdkError::InvalidArgument {
        field: Some("ksf".to_owned()),
        message: error.to_string(),
    })
}

async fn run_blocking<T, F>(work: F) -> Result<T, SdkError>
where
    F: FnOnce() -> Result<T, SdkError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| SdkError::Internal {
            message: format!("the OPAQUE step on a blocking thread failed: {error}"),
        })?
}
