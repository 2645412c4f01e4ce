use keyfleet_hsm::HsmError;

use crate::TicketKind;

/// Errors from the OPAQUE server core.
///
/// No message contains a password file, a ticket's contents, a session key or a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// An OPAQUE message from the client has the wrong length or does not decode.
    #[error(
        "{message} is malformed: {reason}; send the message as opaque-ke 4.0.1 serializes it \
         for keyfleet protocol version 1"
    )]
    MalformedMessage {
        /// Name of the message, for example `"CredentialRequest (KE1)"`.
        message: &'static str,
        /// Reason the message was rejected.
        reason: String,
    },

    /// The user id is empty or too long.
    #[error("user id is {len} bytes long; send a user id of 1 to {max} bytes")]
    InvalidUserId {
        /// Length of the rejected id in bytes.
        len: usize,
        /// The maximum length in bytes.
        max: usize,
    },

    /// The client's encrypted backup secret is too large.
    #[error("client ciphertext is {len} bytes long, over the maximum of {max} bytes")]
    ClientCiphertextTooLarge {
        /// Length of the rejected ciphertext in bytes.
        len: usize,
        /// The maximum length in bytes.
        max: usize,
    },

    /// The KE3 MAC did not verify. The same error is returned for an unknown user.
    #[error("password verification failed: wrong password or unknown user")]
    WrongPassword,

    /// The ticket's expiry time has passed.
    #[error(
        "{kind} expired at {expires_at} (Unix seconds) and it is now {now}; start the exchange \
         again"
    )]
    TicketExpired {
        /// Kind of the expired ticket.
        kind: TicketKind,
        /// Expiry time in seconds since the Unix epoch.
        expires_at: u64,
        /// Time of the check in seconds since the Unix epoch.
        now: u64,
    },

    /// The ticket is authentic but was issued for another user.
    #[error("{kind} was issued for another user; send the ticket from this user's start step")]
    TicketUserMismatch {
        /// Kind of the ticket sent.
        kind: TicketKind,
    },

    /// The ticket failed authentication or does not decode.
    #[error(
        "{kind} is invalid: {reason}; send the ticket unchanged, to the fleet and step that \
         issued it"
    )]
    TicketInvalid {
        /// Kind of the ticket expected.
        kind: TicketKind,
        /// What failed.
        reason: String,
    },

    /// The user's record changed between the start and finish steps of a recovery.
    #[error(
        "login ticket was issued at record version {ticket_version}, but the record is now at \
         {record}; start the recovery again"
    )]
    TicketStale {
        /// Record version bound into the ticket.
        ticket_version: u64,
        /// The current record version, or "no record" when it was erased.
        record: String,
    },

    /// A value read from the vault's own storage does not decode after unsealing.
    #[error("stored {value} does not decode: {reason}; the record was written by another build")]
    CorruptStoredValue {
        /// Name of the stored value, for example `"password file"`.
        value: &'static str,
        /// What failed.
        reason: String,
    },

    /// An HSM operation failed.
    #[error("HSM {operation} failed: {source}")]
    Hsm {
        /// The HSM operation that failed, for example `"unseal of a password file"`.
        operation: &'static str,
        /// The HSM's error.
        #[source]
        source: HsmError,
    },
}

impl VaultError {
    /// Wraps an HSM error from `operation`.
    pub(crate) fn hsm(operation: &'static str) -> impl FnOnce(HsmError) -> Self {
        move |source| Self::Hsm { operation, source }
    }
}
