//! OPAQUE recovery: the server side of KE1 (CredentialRequest), KE2 (CredentialResponse) and
//! KE3 (CredentialFinalization).
//!
//! The vault does not count guesses. The caller must count the guess in the replicated record
//! before calling [`Vault::recovery_start`] and pass the record state after counting, so that
//! every KE2 costs a guess whether or not KE3 ever arrives.

use keyfleet_hsm::SealContext;
use opaque_ke::{CredentialFinalization, CredentialRequest, ServerLogin, ServerLoginParameters};
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::limits::{check_message_len, check_user_id};
use crate::record::UNREGISTERED_OPRF_SALT;
use crate::static_dh::server_static_dh;
use crate::ticket_claims::TicketClaims;
use crate::vault::ticket_nonce;
use crate::{
    CLIENT_SECRET_PURPOSE, CREDENTIAL_FINALIZATION_LEN, CREDENTIAL_REQUEST_LEN, KE_CONTEXT,
    LoginTicket, RecordState, SESSION_KEY_LEN, SessionKey, StoredRecord, Suite, TicketKind, Vault,
    VaultError, client_identifiers, oprf_key,
};

const KE1: &str = "CredentialRequest (KE1)";
const KE3: &str = "CredentialFinalization (KE3)";

/// Output of recovery start. For an unknown user both fields have the same length as for a
/// known user.
#[derive(Debug)]
pub struct RecoveryStart {
    /// The serialized `CredentialResponse` (KE2) for the client.
    pub response: Vec<u8>,
    /// The ticket the client sends back with its KE3.
    pub ticket: LoginTicket,
}

/// A KE3 checked against its login ticket.
#[derive(Debug)]
pub struct LoginAttempt {
    /// The record state bound into the ticket: the version and guess count right after the
    /// guess of this login was counted.
    pub issued_at: RecordState,
    /// The OPAQUE session key when the KE3 verified; `None` for a wrong password or an unknown
    /// user.
    pub session_key: Option<SessionKey>,
}

/// A verified recovery.
#[derive(Debug)]
pub struct RecoveredSecret {
    /// The OPAQUE session key shared with the client.
    pub session_key: SessionKey,
    /// The stored client ciphertext, encrypted under a key derived from the session key as
    /// [`crate::open_recovered_secret`] expects.
    pub encrypted_secret: Vec<u8>,
    /// The record state bound into the ticket. The caller resets the guess count with
    /// `expected_version = issued_at.version` before it sends anything to the client, which
    /// makes the ticket single-use.
    pub issued_at: RecordState,
}

impl Vault {
    /// Builds the KE2 response to the client's KE1.
    ///
    /// `record` is the user's record after counting this guess, or `None` for an unknown user,
    /// who gets a KE2 built from opaque-ke's dummy record at the same cost.
    pub async fn recovery_start(
        &self,
        user: &str,
        request: &[u8],
        record: Option<&StoredRecord>,
    ) -> Result<RecoveryStart, VaultError> {
        check_user_id(user)?;
        check_message_len(KE1, request, CREDENTIAL_REQUEST_LEN)?;

        let request = CredentialRequest::<Suite>::deserialize(request).map_err(|error| {
            VaultError::MalformedMessage {
                message: KE1,
                reason: format!("{error:?}"),
            }
        })?;

        let oprf_salt = record.map_or(UNREGISTERED_OPRF_SALT, |record| record.oprf_salt);
        let key_material = oprf_key::derive(
            self.hsm.as_ref(),
            &self.config.oprf_seed_key,
            &oprf_key::credential_id(&oprf_salt, user),
        )
        .await?;
        let password_file = self
            .unseal_password_file(user, record.map(|record| &record.password_file))
            .await?;

        let parameters = self.login_parameters(user);
        let builder = ServerLogin::builder_with_key_material(
            &mut OsRng,
            self.setup.inner(),
            *key_material,
            password_file,
            request,
            parameters,
        )
        .map_err(|error| VaultError::MalformedMessage {
            message: KE1,
            reason: format!("{error:?}"),
        })?;
        let shared_secret = server_static_dh(builder.private_key(), builder.data());
        let result =
            builder
                .build(shared_secret)
                .map_err(|error| VaultError::MalformedMessage {
                    message: KE1,
                    reason: format!("{error:?}"),
                })?;

        let claims = TicketClaims {
            user: user.to_owned(),
            expires_at: self.ticket_expiry(),
            nonce: ticket_nonce(),
            record: record.map(|record| record.state).unwrap_or_default(),
            oprf_salt,
            server_state: Zeroizing::new(result.state.serialize().to_vec()),
        };
        let ticket = self.tickets().seal(TicketKind::Login, &claims).await?;

        Ok(RecoveryStart {
            response: result.message.serialize().to_vec(),
            ticket: LoginTicket::new(ticket),
        })
    }

    /// Verifies the client's KE3 against the ticket and returns the session key and the
    /// client ciphertext encrypted for the client.
    ///
    /// `record` is the user's current record. It must still have the version bound into the
    /// ticket, or the recovery fails with [`VaultError::TicketStale`].
    ///
    /// # Errors
    /// [`VaultError::WrongPassword`] when the KE3 MAC does not verify, which is always the case
    /// for an unknown user.
    pub async fn recovery_finish(
        &self,
        user: &str,
        ticket: &LoginTicket,
        finalization: &[u8],
        record: Option<&StoredRecord>,
    ) -> Result<RecoveredSecret, VaultError> {
        let attempt = self.recovery_verify(user, ticket, finalization).await?;
        let Some(session_key) = attempt.session_key else {
            return Err(VaultError::WrongPassword);
        };

        let record = check_unchanged(record, attempt.issued_at)?;
        let encrypted_secret = self
            .encrypt_recovered_secret(user, &session_key, record)
            .await?;

        Ok(RecoveredSecret {
            session_key,
            encrypted_secret,
            issued_at: attempt.issued_at,
        })
    }

    /// Opens the login ticket and verifies the client's KE3 against it, reading no record.
    ///
    /// A KE3 that does not verify is not an error here: the attempt then has no session key,
    /// and the caller decides whether the failed guess locks the record.
    ///
    /// # Errors
    /// A malformed KE3, and a ticket that is invalid, expired or for another user.
    pub async fn recovery_verify(
        &self,
        user: &str,
        ticket: &LoginTicket,
        finalization: &[u8],
    ) -> Result<LoginAttempt, VaultError> {
        check_user_id(user)?;
        check_message_len(KE3, finalization, CREDENTIAL_FINALIZATION_LEN)?;

        let now = self.clock.now_unix_secs();
        let claims = self
            .tickets()
            .open(TicketKind::Login, ticket.blob(), user, now)
            .await?;

        let finalization =
            CredentialFinalization::<Suite>::deserialize(finalization).map_err(|error| {
                VaultError::MalformedMessage {
                    message: KE3,
                    reason: format!("{error:?}"),
                }
            })?;
        let server_login =
            ServerLogin::<Suite>::deserialize(&claims.server_state).map_err(|error| {
                VaultError::TicketInvalid {
                    kind: TicketKind::Login,
                    reason: format!("its server state does not decode: {error:?}"),
                }
            })?;

        let session_key = server_login
            .finish(finalization, self.login_parameters(user))
            .ok()
            .map(|finished| SessionKey::new(session_key_bytes(&finished.session_key)));

        Ok(LoginAttempt {
            issued_at: claims.record,
            session_key,
        })
    }

    /// Unseals `record`'s client ciphertext and encrypts it under a key derived from
    /// `session_key`, as [`crate::open_recovered_secret`] expects.
    pub async fn encrypt_recovered_secret(
        &self,
        user: &str,
        session_key: &SessionKey,
        record: &StoredRecord,
    ) -> Result<Vec<u8>, VaultError> {
        let secret = self.unseal_client_secret(user, record).await?;

        Ok(keyfleet_protocol::seal_for_session(
            session_key.expose_secret(),
            user,
            secret.expose_secret(),
        ))
    }

    /// Checks that `request` is a well-formed KE1 for `user`, with no HSM call, so that the
    /// caller can reject it before it counts a guess.
    pub fn check_credential_request(user: &str, request: &[u8]) -> Result<(), VaultError> {
        check_user_id(user)?;
        check_message_len(KE1, request, CREDENTIAL_REQUEST_LEN)?;

        CredentialRequest::<Suite>::deserialize(request)
            .map(drop)
            .map_err(|error| VaultError::MalformedMessage {
                message: KE1,
                reason: format!("{error:?}"),
            })
    }

    fn login_parameters<'a>(&'a self, user: &'a str) -> ServerLoginParameters<'a, 'a> {
        ServerLoginParameters {
            context: Some(KE_CONTEXT),
            identifiers: client_identifiers(user, &self.config.fleet_id),
        }
    }

    async fn unseal_client_secret(
        &self,
        user: &str,
        record: &StoredRecord,
    ) -> Result<keyfleet_hsm::SecretBytes, VaultError> {
        let context = SealContext::new(CLIENT_SECRET_PURPOSE, user.as_bytes());

        self.hsm
            .unseal(&self.config.seal_key, &context, &record.sealed_secret)
            .await
            .map_err(VaultError::hsm("unseal of a client secret"))
    }
}

fn session_key_bytes(key: &[u8]) -> [u8; SESSION_KEY_LEN] {
    let mut bytes = [0u8; SESSION_KEY_LEN];
    bytes.copy_from_slice(key);
    bytes
}

/// Returns the record if it still has the version the ticket was issued at.
fn check_unchanged(
    record: Option<&StoredRecord>,
    issued_at: RecordState,
) -> Result<&StoredRecord, VaultError> {
    match record {
        Some(record) if record.state.version == issued_at.version => Ok(record),
        Some(record) => Err(VaultError::TicketStale {
            ticket_version: issued_at.version,
            record: format!("version {}", record.state.version),
        }),
        None => Err(VaultError::TicketStale {
            ticket_version: issued_at.version,
            record: "no record".to_owned(),
        }),
    }
}
