//! RegistrationStart and RegistrationFinish.

use keyfleet_api::vault::{
    RegistrationFinishRequest, RegistrationFinishResponse, RegistrationStartRequest,
    RegistrationStartResponse,
};
use keyfleet_raft::{Command, RegisterOutcome, Response};
use keyfleet_vault::{RecordState, RegistrationTicket};
use tonic::Status;

use super::auth::Caller;
use super::{VaultService, request_id, status};

impl VaultService {
    pub(super) async fn start_registration(
        &self,
        caller: &Caller,
        request: RegistrationStartRequest,
    ) -> Result<RegistrationStartResponse, Status> {
        let node_id = self.replica.node_id;
        let vault = self.core.vault().await?;

        self.replica.linearize().await?;
        let current = self
            .replica
            .local_user(&caller.record)
            .await?
            .map(|record| RecordState {
                version: record.version,
                guesses_used: record.guesses_used,
            });

        let start = vault
            .registration_start(
                caller.record.as_str(),
                &request.registration_request,
                current,
            )
            .await
            .map_err(|error| status::vault_error(node_id, error))?;

        Ok(RegistrationStartResponse {
            registration_response: start.response,
            ticket: start.ticket.as_bytes().to_vec(),
            default_max_guesses: self.limits.default_max_guesses,
            max_guesses_ceiling: self.limits.max_guesses_ceiling,
            bundle_epoch: self.replica.bundle_epoch().await?,
        })
    }

    pub(super) async fn finish_registration(
        &self,
        caller: &Caller,
        request: RegistrationFinishRequest,
    ) -> Result<RegistrationFinishResponse, Status> {
        let node_id = self.replica.node_id;
        let max_guesses = self.max_guesses(request.max_guesses)?;
        let request_id = request_id::derive(
            "register",
            &caller.record,
            &request.request_id,
            &[
                &request.ticket,
                &request.registration_upload,
                &request.client_ciphertext,
                &max_guesses.to_be_bytes(),
            ],
        )?;

        let vault = self.core.vault().await?;
        let ticket = RegistrationTicket::from_bytes(request.ticket)
            .map_err(|error| status::vault_error(node_id, error))?;
        let registered = vault
            .registration_finish(
                caller.record.as_str(),
                &ticket,
                &request.registration_upload,
                &request.client_ciphertext,
            )
            .await
            .map_err(|error| status::vault_error(node_id, error))?;

        let command = Command::Register {
            expected_version: Some(registered.issued_at.version),
            user: caller.record.clone(),
            password_file: keyfleet_raft::SealedBlob::new(registered.password_file.into_bytes()),
            sealed_secret: keyfleet_raft::SealedBlob::new(registered.sealed_secret.into_bytes()),
            max_guesses,
            oprf_salt: registered.oprf_salt,
        };
        let response = self.replica.run(request_id, command).await?;
        match response {
            Response::Register(
                RegisterOutcome::Created { version } | RegisterOutcome::Replaced { version },
            ) => {
                tracing::info!(node_id, user = %caller.record, version, max_guesses, "user registered");
                Ok(RegistrationFinishResponse { max_guesses })
            }
            Response::Register(RegisterOutcome::VersionMismatch { .. }) => {
                Err(status::stale("registration ticket"))
            }
            Response::Rejected(rejection) => Err(status::rejected(&rejection)),
            other => Err(status::internal(
                node_id,
                &format!("Register returned an unexpected outcome: {other:?}"),
            )),
        }
    }

    /// Resolves the requested guess limit: 0 is the fleet default, and more than the ceiling
    /// is rejected.
    fn max_guesses(&self, requested: u32) -> Result<u32, Status> {
        let limits = self.limits;

        match requested {
            0 => Ok(limits.default_max_guesses),
            n if n <= limits.max_guesses_ceiling => Ok(n),
            n => Err(status::invalid_argument(
                "max_guesses",
                &format!(
                    "max_guesses {n} is over the fleet's ceiling of {}: ask for at most that, or \
                     0 for the default of {}",
                    limits.max_guesses_ceiling, limits.default_max_guesses
                ),
            )),
        }
    }
}
