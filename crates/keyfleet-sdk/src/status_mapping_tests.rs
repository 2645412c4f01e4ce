use std::collections::HashMap;
use std::time::Duration;

use tonic_types::{ErrorDetails, StatusExt};

use super::*;

const ENDPOINT: &str = "http://127.0.0.1:7201";

fn status_with(code: Code, reason: &str, metadata: &[(&str, &str)]) -> Status {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);

    Status::with_error_details(code, format!("message for {reason}"), details)
}

fn map(code: Code, reason: &str, metadata: &[(&str, &str)]) -> SdkError {
    from_status(&status_with(code, reason, metadata), ENDPOINT, 3)
}

#[test]
fn wrong_password_carries_guesses_left() {
    let error = map(
        Code::PermissionDenied,
        "WRONG_PASSWORD",
        &[("guesses_left", "4")],
    );

    assert!(
        matches!(error, SdkError::WrongPassword { guesses_left: 4 }),
        "{error:?}"
    );
}

#[test]
fn wrong_password_without_count_is_protocol() {
    for metadata in [&[][..], &[("guesses_left", "many")][..]] {
        let error = map(Code::PermissionDenied, "WRONG_PASSWORD", metadata);

        assert!(
            matches!(error, SdkError::Protocol { .. }),
            "{metadata:?}: {error:?}"
        );
    }
}

#[test]
fn locked_maps_to_locked() {
    let error = map(Code::FailedPrecondition, "LOCKED", &[]);

    assert!(matches!(error, SdkError::Locked), "{error:?}");
}

#[test]
fn token_reasons_map_to_unauthenticated() {
    for reason in ["TOKEN_INVALID", "TOKEN_EXPIRED"] {
        let error = map(Code::Unauthenticated, reason, &[]);

        match error {
            SdkError::Unauthenticated {
                reason: ref got,
                ref message,
            } => {
                assert_eq!(got, reason);
                assert_eq!(message, &format!("message for {reason}"));
            }
            other => panic!("{reason}: {other:?}"),
        }
    }
}

#[test]
fn wrong_user_maps_to_permission_denied() {
    let error = map(Code::PermissionDenied, "TOKEN_WRONG_USER", &[]);

    assert!(
        matches!(error, SdkError::PermissionDenied { ref message } if message == "message for TOKEN_WRONG_USER"),
        "{error:?}"
    );
}

#[test]
fn invalid_argument_carries_field() {
    let with_field = map(
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        &[("field", "max_guesses")],
    );
    let without_field = map(Code::InvalidArgument, "INVALID_ARGUMENT", &[]);

    assert!(
        matches!(with_field, SdkError::InvalidArgument { field: Some(ref field), .. } if field == "max_guesses"),
        "{with_field:?}"
    );
    assert!(
        matches!(without_field, SdkError::InvalidArgument { field: None, .. }),
        "{without_field:?}"
    );
}

#[test]
fn ticket_reasons_map_to_ticket_rejected() {
    for reason in ["TICKET_EXPIRED", "TICKET_INVALID", "TICKET_STALE"] {
        let error = map(Code::Aborted, reason, &[]);

        assert!(
            matches!(error, SdkError::TicketRejected { reason: ref got, .. } if got == reason),
            "{reason}: {error:?}"
        );
    }
}

#[test]
fn fleet_reasons_map_to_unavailable() {
    for reason in ["NOT_LEADER", "NO_QUORUM", "FLEET_NOT_READY"] {
        let error = map(Code::Unavailable, reason, &[]);

        match error {
            SdkError::Unavailable {
                ref message,
                attempts,
            } => {
                assert_eq!(attempts, 3, "{reason}");
                assert!(message.contains(reason), "{reason}: {message}");
            }
            other => panic!("{reason}: {other:?}"),
        }
    }
}

#[test]
fn internal_maps_to_internal() {
    let error = map(Code::Internal, "INTERNAL", &[]);

    assert!(
        matches!(error, SdkError::Internal { ref message } if message == "message for INTERNAL"),
        "{error:?}"
    );
}

#[test]
fn every_reason_is_mapped() {
    let reasons = [
        (ErrorReason::WrongPassword, Code::PermissionDenied),
        (ErrorReason::Locked, Code::FailedPrecondition),
        (ErrorReason::TokenInvalid, Code::Unauthenticated),
        (ErrorReason::TokenExpired, Code::Unauthenticated),
        (ErrorReason::TokenWrongUser, Code::PermissionDenied),
        (ErrorReason::InvalidArgument, Code::InvalidArgument),
        (ErrorReason::TicketExpired, Code::Aborted),
        (ErrorReason::TicketInvalid, Code::Aborted),
        (ErrorReason::TicketStale, Code::Aborted),
        (ErrorReason::NotLeader, Code::Unavailable),
        (ErrorReason::NoQuorum, Code::Unavailable),
        (ErrorReason::FleetNotReady, Code::Unavailable),
        (ErrorReason::Internal, Code::Internal),
    ];

    for (reason, code) in reasons {
        let error = map(code, reason.as_str(), &[("guesses_left", "1")]);

        assert!(
            !matches!(
                error,
                SdkError::Transport { .. } | SdkError::Protocol { .. }
            ),
            "{reason}: {error:?}"
        );
    }
}

#[test]
fn unknown_reason_falls_back_to_code() {
    let error = map(Code::PermissionDenied, "SOME_NEW_REASON", &[]);

    assert!(
        matches!(error, SdkError::PermissionDenied { .. }),
        "{error:?}"
    );
}

#[test]
fn other_domain_is_ignored() {
    let details = ErrorDetails::with_error_info("LOCKED", "example.com", HashMap::new());
    let status = Status::with_error_details(Code::FailedPrecondition, "locked", details);

    let error = from_status(&status, ENDPOINT, 1);

    assert!(matches!(error, SdkError::Transport { .. }), "{error:?}");
}

#[test]
fn status_without_details_maps_by_code() {
    let cases = [
        (Status::unauthenticated("no token"), "Unauthenticated"),
        (Status::permission_denied("denied"), "PermissionDenied"),
        (Status::invalid_argument("bad"), "InvalidArgument"),
        (Status::aborted("aborted"), "TicketRejected"),
        (Status::unavailable("down"), "Unavailable"),
        (Status::internal("broken"), "Internal"),
        (Status::unimplemented("no vault"), "Transport"),
    ];

    for (status, expected) in cases {
        let error = from_status(&status, ENDPOINT, 1);
        let printed = format!("{error:?}");

        assert!(printed.starts_with(expected), "{expected}: {printed}");
    }
}

#[test]
fn unimplemented_names_endpoint() {
    let error = from_status(&Status::unimplemented("no vault"), ENDPOINT, 1);

    assert!(
        matches!(error, SdkError::Transport { ref endpoint, .. } if endpoint == ENDPOINT),
        "{error:?}"
    );
}

#[test]
fn deadline_exceeded_maps_to_unavailable() {
    let error = RouterError::DeadlineExceeded {
        operation: "recovery_start",
        deadline: Duration::from_secs(5),
        attempts: 9,
        endpoint: ENDPOINT.to_owned(),
        status: Box::new(status_with(Code::Unavailable, "NO_QUORUM", &[])),
    };

    match from_router_error(error) {
        SdkError::Unavailable { message, attempts } => {
            assert_eq!(attempts, 9);
            assert!(message.contains("recovery_start"), "{message}");
            assert!(message.contains("NO_QUORUM"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rejected_maps_its_status() {
    let error = RouterError::Rejected {
        endpoint: ENDPOINT.to_owned(),
        attempts: 2,
        status: Box::new(status_with(Code::FailedPrecondition, "LOCKED", &[])),
    };

    let mapped = from_router_error(error);

    assert!(matches!(mapped, SdkError::Locked), "{mapped:?}");
}

#[test]
fn error_info_round_trips_through_status() {
    let status = status_with(
        Code::PermissionDenied,
        "WRONG_PASSWORD",
        &[("guesses_left", "2")],
    );

    let info = status
        .get_details_error_info()
        .expect("ErrorInfo is present");

    assert_eq!(info.domain, ERROR_DOMAIN);
    assert_eq!(info.reason, "WRONG_PASSWORD");
}
