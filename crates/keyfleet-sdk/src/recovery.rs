use keyfleet_api::vault::{
    RecoveryFinishRequest, RecoveryFinishResponse, RecoveryStartRequest, RecoveryStartResponse,
};
use keyfleet_client::Operation;
use keyfleet_protocol::{CREDENTIAL_FINALIZATION_LEN, Suite, open_recovered_secret};
use opaque_ke::ClientLogin;
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::backup_key::BackupKey;
use crate::bundle_check::check_server_key;
use crate::caller::Caller;
use crate::opaque_steps::{LoginKeys, LoginOutcome, finish_login, protocol_error};
use crate::registration::check_password;
use crate::request_id::RequestId;
use crate::{SdkError, VaultClient};

impl VaultClient {
    /// Recovers `user`'s secret with `password`. Each call costs one guess, which a successful
    /// recovery gives back together with all earlier ones.
    ///
    /// When the password is wrong, the client still completes the exchange with a random
    /// finalization, so that the vault counts the failed guess at once, and erases the record
    /// if it was the last one.
    ///
    /// # Errors
    /// - [`SdkError::WrongPassword`] with the guesses left, for a wrong password or a user with
    ///   no record.
    /// - [`SdkError::Locked`] after the last guess.
    /// - [`SdkError::Protocol`] when the recovered secret fails authentication.
    /// - The other [`SdkError`] variants for other vault failures.
    pub async fn recover(
        &self,
        token: &str,
        user: &str,
        password: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SdkError> {
        let caller = Caller::new(token, user)?;
        check_password(password)?;
        let password = Zeroizing::new(password.to_vec());
        self.verify_fleet_first().await?;

        let start = ClientLogin::<Suite>::start(&mut OsRng, &password)
            .map_err(|error| protocol_error("start the login", &error))?;
        let request = start.message.serialize().to_vec();
        let reply = self.recovery_start(&caller, request).await?;
        let bundle = self.bundle_for_epoch(reply.bundle_epoch).await?;

        let outcome = finish_login(
            start.state,
            password,
            &caller,
            reply.credential_response,
            self.ksf_params(),
        )
        .await?;

        match outcome {
            LoginOutcome::Verified(keys) => {
                // Checked before KE3 goes out, so an impostor fleet learns nothing more.
                check_server_key(bundle.as_ref(), &keys.server_public_key)?;
                self.open_secret(&caller, reply.ticket, &keys).await
            }
            LoginOutcome::Failed => Err(self.report_failed_guess(&caller, reply.ticket).await),
        }
    }

    /// Sends the real KE3 and decrypts the secret that the vault returns.
    async fn open_secret(
        &self,
        caller: &Caller,
        ticket: Vec<u8>,
        keys: &LoginKeys,
    ) -> Result<Zeroizing<Vec<u8>>, SdkError> {
        let reply = self
            .recovery_finish(caller, ticket, keys.finalization.clone())
            .await?;

        let client_ciphertext = open_recovered_secret(
            &keys.session_key,
            caller.record_id(),
            &reply.encrypted_secret,
        )
        .map_err(|error| SdkError::Protocol {
            reason: error.to_string(),
        })?;

        BackupKey::derive(&keys.export_key, caller.record_id()).open(&client_ciphertext)
    }

    /// Sends a random KE3 after a login that failed on the client, and returns the vault's
    /// verdict: normally `WrongPassword` or `Locked`.
    async fn report_failed_guess(&self, caller: &Caller, ticket: Vec<u8>) -> SdkError {
        tracing::debug!(
            record_id = caller.record_id(),
            "the login failed on the client; sending a random finalization so that the vault \
             counts the failed guess"
        );

        let mut finalization = vec![0u8; CREDENTIAL_FINALIZATION_LEN];
        OsRng.fill_bytes(&mut finalization);

        match self.recovery_finish(caller, ticket, finalization).await {
            Ok(_) => SdkError::Protocol {
                reason: "the vault accepted a finalization that the client did not compute"
                    .to_owned(),
            },
            Err(error) => error,
        }
    }

    async fn recovery_start(
        &self,
        caller: &Caller,
        credential_request: Vec<u8>,
    ) -> Result<RecoveryStartResponse, SdkError> {
        let request_id = RequestId::random();
        let message = RecoveryStartRequest {
            user_id: caller.user().to_owned(),
            request_id: request_id.to_vec(),
            credential_request,
        };

        let operation = Operation::on_leader("recovery_start").with_request_id(request_id);
        self.send(&operation, |mut client| {
            let request = caller.request(message.clone());
            async move { client.recovery_start(request).await }
        })
        .await
    }

    async fn recovery_finish(
        &self,
        caller: &Caller,
        ticket: Vec<u8>,
        credential_finalization: Vec<u8>,
    ) -> Result<RecoveryFinishResponse, SdkError> {
        let request_id = RequestId::random();
        let message = RecoveryFinishRequest {
            user_id: caller.user().to_owned(),
            request_id: request_id.to_vec(),
            ticket,
            credential_finalization,
        };

        let operation = Operation::on_leader("recovery_finish").with_request_id(request_id);
        self.send(&operation, |mut client| {
            let request = caller.request(message.clone());
            async move { client.recovery_finish(request).await }
        })
        .await
    }
}
