//! OPAQUE registration: the server side of RegistrationRequest, RegistrationResponse and
//! RegistrationUpload.

use keyfleet_hsm::{SealContext, SealedBlob};
use opaque_ke::{RegistrationRequest, RegistrationUpload, ServerRegistration};
use zeroize::Zeroizing;

use crate::limits::{check_message_len, check_user_id};
use crate::ticket_claims::TicketClaims;
use crate::vault::ticket_nonce;
use crate::{
    CLIENT_SECRET_PURPOSE, MAX_CLIENT_CIPHERTEXT_LEN, OPRF_SALT_LEN, PASSWORD_FILE_PURPOSE,
    REGISTRATION_REQUEST_LEN, REGISTRATION_UPLOAD_LEN, RecordState, RegistrationTicket, Suite,
    TicketKind, Vault, VaultError, oprf_key,
};

/// Output of registration start.
#[derive(Debug)]
pub struct RegistrationStart {
    /// The serialized `RegistrationResponse` for the client.
    pub response: Vec<u8>,
    /// The ticket the client sends back with its `RegistrationUpload`.
    pub ticket: RegistrationTicket,
}

/// A finished registration, ready for `Command::Register`.
#[derive(Debug)]
pub struct RegisteredRecord {
    /// The OPAQUE password file, sealed with purpose [`PASSWORD_FILE_PURPOSE`] for the user.
    pub password_file: SealedBlob,
    /// The client ciphertext, sealed with purpose [`CLIENT_SECRET_PURPOSE`] for the user.
    pub sealed_secret: SealedBlob,
    /// The record's version and guess count when registration started, from the ticket.
    pub issued_at: RecordState,
    /// Salt of the new record's OPRF key, drawn at registration start.
    pub oprf_salt: [u8; OPRF_SALT_LEN],
}

impl Vault {
    /// Evaluates the OPRF on the client's `RegistrationRequest` with the user's OPRF key.
    ///
    /// `current` is the user's record state if the user has a record, and is bound into the
    /// ticket so that the caller can tell whether the record changed before finish.
    pub async fn registration_start(
        &self,
        user: &str,
        request: &[u8],
        current: Option<RecordState>,
    ) -> Result<RegistrationStart, VaultError> {
        check_user_id(user)?;
        check_message_len("RegistrationRequest", request, REGISTRATION_REQUEST_LEN)?;

        let request = RegistrationRequest::<Suite>::deserialize(request).map_err(|error| {
            VaultError::MalformedMessage {
                message: "RegistrationRequest",
                reason: format!("{error:?}"),
            }
        })?;

        let oprf_salt = new_oprf_salt();
        let key_material = oprf_key::derive(
            self.hsm.as_ref(),
            &self.config.oprf_seed_key,
            &oprf_key::credential_id(&oprf_salt, user),
        )
        .await?;
        let result =
            ServerRegistration::start_with_key_material(self.setup.inner(), *key_material, request)
                .map_err(|error| VaultError::MalformedMessage {
                    message: "RegistrationRequest",
                    reason: format!("{error:?}"),
                })?;

        let claims = TicketClaims {
            user: user.to_owned(),
            expires_at: self.ticket_expiry(),
            nonce: ticket_nonce(),
            record: current.unwrap_or_default(),
            oprf_salt,
            server_state: Zeroizing::new(Vec::new()),
        };
        let ticket = self
            .tickets()
            .seal(TicketKind::Registration, &claims)
            .await?;

        Ok(RegistrationStart {
            response: result.message.serialize().to_vec(),
            ticket: RegistrationTicket::new(ticket),
        })
    }

    /// Checks the ticket and the client's `RegistrationUpload`, and seals the password file
    /// and `client_ciphertext` for `user`.
    pub async fn registration_finish(
        &self,
        user: &str,
        ticket: &RegistrationTicket,
        upload: &[u8],
        client_ciphertext: &[u8],
    ) -> Result<RegisteredRecord, VaultError> {
        check_user_id(user)?;
        check_message_len("RegistrationUpload", upload, REGISTRATION_UPLOAD_LEN)?;
        if client_ciphertext.len() > MAX_CLIENT_CIPHERTEXT_LEN {
            return Err(VaultError::ClientCiphertextTooLarge {
                len: client_ciphertext.len(),
                max: MAX_CLIENT_CIPHERTEXT_LEN,
            });
        }

        let now = self.clock.now_unix_secs();
        let claims = self
            .tickets()
            .open(TicketKind::Registration, ticket.blob(), user, now)
            .await?;

        let upload = RegistrationUpload::<Suite>::deserialize(upload).map_err(|error| {
            VaultError::MalformedMessage {
                message: "RegistrationUpload",
                reason: format!("{error:?}"),
            }
        })?;
        let password_file = Zeroizing::new(ServerRegistration::finish(upload).serialize());

        let password_file = self
            .seal_for_user(PASSWORD_FILE_PURPOSE, user, &password_file)
            .await?;
        let sealed_secret = self
            .seal_for_user(CLIENT_SECRET_PURPOSE, user, client_ciphertext)
            .await?;

        Ok(RegisteredRecord {
            password_file,
            sealed_secret,
            issued_at: claims.record,
            oprf_salt: claims.oprf_salt,
        })
    }

    async fn seal_for_user(
        &self,
        purpose: &'static str,
        user: &str,
        plaintext: &[u8],
    ) -> Result<SealedBlob, VaultError> {
        let context = SealContext::new(purpose, user.as_bytes());

        self.hsm
            .seal(&self.config.seal_key, &context, plaintext)
            .await
            .map_err(VaultError::hsm("seal of a registration record"))
    }
}

/// Draws a new OPRF salt from the operating system's generator.
fn new_oprf_salt() -> [u8; OPRF_SALT_LEN] {
    let mut salt = [0u8; OPRF_SALT_LEN];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    salt
}
