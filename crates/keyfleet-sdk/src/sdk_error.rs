use keyfleet_client::ClientError;

/// Failure of a [`crate::VaultClient`] call.
///
/// The variants that come from the vault follow the `ErrorInfo` reason it sent, as listed in
/// `proto/keyfleet/v1/vault.proto`. A status with no keyfleet `ErrorInfo` is mapped by its gRPC
/// code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// The password is wrong, or the user has no record (`WRONG_PASSWORD`).
    #[error(
        "wrong password, or no record for this user; {guesses_left} {} left before the record \
         is erased", if *guesses_left == 1 { "guess" } else { "guesses" }
    )]
    WrongPassword {
        /// Guesses the record has left before the vault erases it.
        guesses_left: u32,
    },

    /// The record is locked, because its last guess failed (`LOCKED`).
    #[error(
        "the record is locked after too many wrong passwords, and its secret is erased; \
         register again to store a new secret"
    )]
    Locked,

    /// The vault rejected the token (`TOKEN_INVALID`, `TOKEN_EXPIRED`).
    #[error("the vault rejected the token ({reason}): {message}")]
    Unauthenticated {
        /// The `ErrorInfo` reason, or `UNAUTHENTICATED` when the status carried none.
        reason: String,
        /// The vault's status message.
        message: String,
    },

    /// The token is not for this user (`TOKEN_WRONG_USER`).
    #[error("the vault denied the call: {message}")]
    PermissionDenied {
        /// The vault's status message.
        message: String,
    },

    /// A request field is malformed or too large, found by the SDK or the vault
    /// (`INVALID_ARGUMENT`).
    #[error("invalid {}: {message}", field.as_deref().unwrap_or("argument"))]
    InvalidArgument {
        /// Name of the field, when known.
        field: Option<String>,
        /// Description of the problem.
        message: String,
    },

    /// The vault rejected the ticket of a two-step exchange (`TICKET_EXPIRED`,
    /// `TICKET_INVALID`, `TICKET_STALE`). Starting the call again may succeed, and a new
    /// recovery costs a new guess.
    #[error("the vault rejected the exchange ({reason}): {message}; start the call again")]
    TicketRejected {
        /// The `ErrorInfo` reason, or `ABORTED` when the status carried none.
        reason: String,
        /// The vault's status message.
        message: String,
    },

    /// No node completed the call before the retry deadline: no leader, no quorum, the fleet is
    /// not ready, or no node could be reached.
    #[error(
        "the vault is unavailable after {attempts} attempts: {message}; check that a majority \
         of the fleet is running, or raise the deadline"
    )]
    Unavailable {
        /// The status message of the last attempt.
        message: String,
        /// Number of RPCs sent.
        attempts: u32,
    },

    /// An OPAQUE step or a message from the vault failed on the client, such as a malformed
    /// response or a recovered secret that fails authentication.
    #[error("protocol failure: {reason}; check that client and vault run the same protocol")]
    Protocol {
        /// What failed.
        reason: String,
    },

    /// The token cannot be read, so the SDK cannot tell its tenant and fleet.
    #[error("the token is malformed: {reason}; use a token minted by the tenant")]
    InvalidToken {
        /// The decoding error.
        reason: String,
    },

    /// A gRPC failure that carries no keyfleet reason, such as `UNIMPLEMENTED` from a node
    /// without the vault API, or an invalid leader address.
    #[error("call to {endpoint} failed: {message}")]
    Transport {
        /// The endpoint called.
        endpoint: String,
        /// The gRPC code and message, or the connection error.
        message: String,
    },

    /// An HSM or storage failure on the node (`INTERNAL`), or a failure inside the SDK.
    #[error("internal failure: {message}; the node logs the cause")]
    Internal {
        /// The status message.
        message: String,
    },

    /// The fleet's validation bundle failed a check: its digest, witness key or signature,
    /// counter-signature, checkpoint, log inclusion or consistency, epoch order, or the
    /// session's OPAQUE server key. [`keyfleet_bundle::BundleError::check`] names the check.
    #[error("the fleet's validation bundle failed the {check} check: {0}", check = .0.check())]
    Bundle(keyfleet_bundle::BundleError),

    /// The client pins trust anchors, but the fleet has published no validation bundle.
    #[error(
        "the fleet has no validation bundle, so its keys cannot be verified; the operator \
         publishes one with `keyfleet fleet publish-bundle`"
    )]
    BundleMissing,

    /// The endpoints or the retry policy given to [`crate::VaultClient::new`] are invalid.
    #[error(transparent)]
    Config(#[from] ClientError),
}
