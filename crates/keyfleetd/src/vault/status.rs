//! Statuses of the vault API: the ErrorInfo reasons in `proto/keyfleet/v1/vault.proto`.

use keyfleet_api::{ErrorReason, GUESSES_LEFT_KEY};
use keyfleet_raft::Rejection;
use keyfleet_vault::VaultError;
use tonic::{Code, Status};

use crate::error_status::error_status;

/// Maps an error of the OPAQUE core to a status. HSM and storage failures are logged here,
/// because the caller only learns that the node failed.
pub(super) fn vault_error(node_id: u64, error: VaultError) -> Status {
    match &error {
        VaultError::MalformedMessage { message, .. } => invalid_argument(message, &error),
        VaultError::InvalidUserId { .. } => invalid_argument("user_id", &error),
        VaultError::ClientCiphertextTooLarge { .. } => {
            invalid_argument("client_ciphertext", &error)
        }
        VaultError::WrongPassword => error_status(
            Code::PermissionDenied,
            ErrorReason::WrongPassword,
            error.to_string(),
            &[],
        ),
        VaultError::TicketExpired { .. } => ticket(ErrorReason::TicketExpired, &error),
        VaultError::TicketUserMismatch { .. } | VaultError::TicketInvalid { .. } => {
            ticket(ErrorReason::TicketInvalid, &error)
        }
        VaultError::TicketStale { .. } => ticket(ErrorReason::TicketStale, &error),
        _ => internal(node_id, &error),
    }
}

/// Builds the status of a field that is malformed or out of range.
pub(super) fn invalid_argument(field: &str, error: &dyn std::fmt::Display) -> Status {
    error_status(
        Code::InvalidArgument,
        ErrorReason::InvalidArgument,
        error.to_string(),
        &[("field", field.to_owned())],
    )
}

/// Builds the status of a command the state machine rejected.
pub(super) fn rejected(rejection: &Rejection) -> Status {
    invalid_argument("request", rejection)
}

/// Builds the status of a wrong password with `guesses_left`.
pub(super) fn wrong_password(guesses_left: u32) -> Status {
    error_status(
        Code::PermissionDenied,
        ErrorReason::WrongPassword,
        format!(
            "wrong password or unknown user: {guesses_left} {} left",
            if guesses_left == 1 {
                "guess"
            } else {
                "guesses"
            }
        ),
        &[(GUESSES_LEFT_KEY, guesses_left.to_string())],
    )
}

/// Builds the status of a locked record.
pub(super) fn locked() -> Status {
    error_status(
        Code::FailedPrecondition,
        ErrorReason::Locked,
        "the record is locked: its last guess failed and its backup was erased; register again",
        &[],
    )
}

/// Builds the status of a ticket that no longer matches the record.
pub(super) fn stale(what: &str) -> Status {
    error_status(
        Code::Aborted,
        ErrorReason::TicketStale,
        format!("{what}: the record changed after the ticket was issued; start again"),
        &[],
    )
}

/// Builds the status of a node that cannot serve the vault yet.
pub(super) fn fleet_not_ready(message: String) -> Status {
    error_status(Code::Unavailable, ErrorReason::FleetNotReady, message, &[])
}

/// Logs `error` and builds an `INTERNAL` status that names it.
pub(super) fn internal(node_id: u64, error: &dyn std::fmt::Display) -> Status {
    tracing::error!(node_id, error = %error, "vault call failed");

    error_status(
        Code::Internal,
        ErrorReason::Internal,
        format!("the vault node failed: {error}"),
        &[],
    )
}

fn ticket(reason: ErrorReason, error: &VaultError) -> Status {
    error_status(Code::Aborted, reason, error.to_string(), &[])
}
