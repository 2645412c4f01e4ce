//! Conversion of vault failures, as gRPC statuses with a `google.rpc.ErrorInfo` detail, into
//! [`SdkError`].

use std::collections::HashMap;

use keyfleet_api::{ERROR_DOMAIN, ErrorReason, GUESSES_LEFT_KEY};
use keyfleet_client::{ClientError, RouterError};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::SdkError;

/// `ErrorInfo` metadata key of the invalid field's name, sent with `INVALID_ARGUMENT`.
const FIELD_KEY: &str = "field";

/// Converts the failure of a routed vault call.
pub(crate) fn from_router_error(error: RouterError) -> SdkError {
    match error {
        RouterError::Channel(error) => from_channel_error(error),
        RouterError::Rejected {
            endpoint,
            attempts,
            status,
        } => from_status(&status, &endpoint, attempts),
        RouterError::DeadlineExceeded {
            operation,
            deadline,
            attempts,
            endpoint,
            status,
        } => SdkError::Unavailable {
            message: format!(
                "{operation} did not complete within {deadline:?}; last error from {endpoint}: \
                 {}",
                describe_status(&status)
            ),
            attempts,
        },
    }
}

/// Converts a status that `endpoint` returned after `attempts` RPCs.
pub(crate) fn from_status(status: &Status, endpoint: &str, attempts: u32) -> SdkError {
    match keyfleet_reason(status) {
        Some((reason, metadata)) => from_reason(reason, &metadata, status, attempts),
        None => from_code(status, endpoint, attempts),
    }
}

/// Returns the reason and metadata of the status's `ErrorInfo`, if it has one in the keyfleet
/// domain with a reason that this build can parse.
fn keyfleet_reason(status: &Status) -> Option<(ErrorReason, HashMap<String, String>)> {
    let info = status.get_details_error_info()?;
    if info.domain != ERROR_DOMAIN {
        return None;
    }

    let reason = ErrorReason::parse(&info.reason)?;
    Some((reason, info.metadata))
}

fn from_reason(
    reason: ErrorReason,
    metadata: &HashMap<String, String>,
    status: &Status,
    attempts: u32,
) -> SdkError {
    let message = status.message().to_owned();

    match reason {
        ErrorReason::WrongPassword => wrong_password(metadata),
        ErrorReason::Locked => SdkError::Locked,
        ErrorReason::TokenInvalid | ErrorReason::TokenExpired => SdkError::Unauthenticated {
            reason: reason.as_str().to_owned(),
            message,
        },
        ErrorReason::TokenWrongUser => SdkError::PermissionDenied { message },
        ErrorReason::InvalidArgument => SdkError::InvalidArgument {
            field: metadata.get(FIELD_KEY).cloned(),
            message,
        },
        ErrorReason::TicketExpired | ErrorReason::TicketInvalid | ErrorReason::TicketStale => {
            SdkError::TicketRejected {
                reason: reason.as_str().to_owned(),
                message,
            }
        }
        ErrorReason::NotLeader | ErrorReason::NoQuorum | ErrorReason::FleetNotReady => {
            SdkError::Unavailable {
                message: format!("{message} ({reason})"),
                attempts,
            }
        }
        ErrorReason::Internal => SdkError::Internal { message },
    }
}

fn wrong_password(metadata: &HashMap<String, String>) -> SdkError {
    let guesses_left = metadata
        .get(GUESSES_LEFT_KEY)
        .and_then(|value| value.trim().parse::<u32>().ok());

    match guesses_left {
        Some(guesses_left) => SdkError::WrongPassword { guesses_left },
        None => SdkError::Protocol {
            reason: format!(
                "the vault returned WRONG_PASSWORD without a valid {GUESSES_LEFT_KEY:?} value \
                 ({:?})",
                metadata.get(GUESSES_LEFT_KEY)
            ),
        },
    }
}

/// Maps a status without a keyfleet reason, such as one from a proxy or an older node, by its
/// gRPC code.
fn from_code(status: &Status, endpoint: &str, attempts: u32) -> SdkError {
    let message = status.message().to_owned();

    match status.code() {
        Code::Unauthenticated => SdkError::Unauthenticated {
            reason: "UNAUTHENTICATED".to_owned(),
            message,
        },
        Code::PermissionDenied => SdkError::PermissionDenied { message },
        Code::InvalidArgument => SdkError::InvalidArgument {
            field: None,
            message,
        },
        Code::Aborted => SdkError::TicketRejected {
            reason: "ABORTED".to_owned(),
            message,
        },
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            SdkError::Unavailable { message, attempts }
        }
        Code::Internal => SdkError::Internal { message },
        _ => SdkError::Transport {
            endpoint: endpoint.to_owned(),
            message: describe_status(status),
        },
    }
}

fn from_channel_error(error: ClientError) -> SdkError {
    let endpoint = match &error {
        ClientError::InvalidEndpoint { endpoint, .. } => endpoint.clone(),
        _ => String::new(),
    };

    SdkError::Transport {
        endpoint,
        message: error.to_string(),
    }
}

/// Formats a status as its message, with the keyfleet reason or else the gRPC code.
fn describe_status(status: &Status) -> String {
    match keyfleet_reason(status) {
        Some((reason, _)) => format!("{} ({reason})", status.message()),
        None => format!("{} ({:?})", status.message(), status.code()),
    }
}

#[cfg(test)]
#[path = "status_mapping_tests.rs"]
mod tests;
