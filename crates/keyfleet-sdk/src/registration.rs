use keyfleet_api::vault::{
    RegistrationFinishRequest, RegistrationStartRequest, RegistrationStartResponse,
};
use keyfleet_client::Operation;
use keyfleet_protocol::Suite;
use opaque_ke::ClientRegistration;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::backup_key::{BackupKey, check_secret_len};
use crate::bundle_check::check_server_key;
use crate::caller::Caller;
use crate::opaque_steps::{RegistrationOutput, finish_registration, protocol_error};
use crate::request_id::RequestId;
use crate::{Registration, SdkError, VaultClient};

impl VaultClient {
    /// Stores `secret` (1 to 512 bytes) behind `password` for `user`, replacing any earlier
    /// record of the user. `max_guesses` is the number of wrong passwords the record allows
    /// between two successful recoveries; 0 requests the fleet's default.
    ///
    /// The secret is encrypted on the client under a key derived from the OPAQUE export key,
    /// so the vault cannot read it.
    ///
    /// # Errors
    /// - [`SdkError::InvalidArgument`] for an invalid user id, an empty password or a secret of
    ///   the wrong size, before any call.
    /// - [`SdkError::TicketRejected`] with `TICKET_STALE` when the record changed during the
    ///   registration.
    /// - The other [`SdkError`] variants for other vault failures.
    pub async fn register(
        &self,
        token: &str,
        user: &str,
        password: &[u8],
        secret: &[u8],
        max_guesses: u32,
    ) -> Result<Registration, SdkError> {
        let caller = Caller::new(token, user)?;
        check_password(password)?;
        check_secret_len(secret)?;
        let password = Zeroizing::new(password.to_vec());
        self.verify_fleet_first().await?;

        let start = ClientRegistration::<Suite>::start(&mut OsRng, &password)
            .map_err(|error| protocol_error("start the registration", &error))?;
        let request = start.message.serialize().to_vec();
        let reply = self.registration_start(&caller, request).await?;
        let bundle = self.bundle_for_epoch(reply.bundle_epoch).await?;

        let output = finish_registration(
            start.state,
            password,
            &caller,
            reply.registration_response,
            self.ksf_params(),
        )
        .await?;
        // The upload's envelope binds the server key, so check it before sending anything.
        check_server_key(bundle.as_ref(), &output.server_public_key)?;

        let upload = Upload {
            ticket: reply.ticket,
            client_ciphertext: BackupKey::derive(&output.export_key, caller.record_id())
                .seal(secret),
            output,
            max_guesses,
        };
        self.registration_finish(&caller, upload).await
    }

    async fn registration_start(
        &self,
        caller: &Caller,
        registration_request: Vec<u8>,
    ) -> Result<RegistrationStartResponse, SdkError> {
        let message = RegistrationStartRequest {
            user_id: caller.user().to_owned(),
            registration_request,
        };

        self.send(&Operation::on_leader("registration_start"), |mut client| {
            let request = caller.request(message.clone());
            async move { client.registration_start(request).await }
        })
        .await
    }

    async fn registration_finish(
        &self,
        caller: &Caller,
        upload: Upload,
    ) -> Result<Registration, SdkError> {
        let request_id = RequestId::random();
        let message = RegistrationFinishRequest {
            user_id: caller.user().to_owned(),
            request_id: request_id.to_vec(),
            ticket: upload.ticket,
            registration_upload: upload.output.upload,
            client_ciphertext: upload.client_ciphertext,
            max_guesses: upload.max_guesses,
        };

        let operation = Operation::on_leader("registration_finish").with_request_id(request_id);
        let reply = self
            .send(&operation, |mut client| {
                let request = caller.request(message.clone());
                async move { client.registration_finish(request).await }
            })
            .await?;

        Ok(Registration {
            max_guesses: reply.max_guesses,
        })
    }
}

/// The parts of a `RegistrationFinish` request.
struct Upload {
    ticket: Vec<u8>,
    output: RegistrationOutput,
    client_ciphertext: Vec<u8>,
    max_guesses: u32,
}

/// Rejects an empty password before any call.
pub(crate) fn check_password(password: &[u8]) -> Result<(), SdkError> {
    if password.is_empty() {
        return Err(SdkError::InvalidArgument {
            field: Some("password".to_owned()),
            message: "the password is empty; enter a password".to_owned(),
        });
    }

    Ok(())
}
