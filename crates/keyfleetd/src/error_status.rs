//! gRPC statuses with a `google.rpc.ErrorInfo` detail, which clients read to tell failures
//! apart without parsing messages.

use std::collections::HashMap;

use keyfleet_api::{ERROR_DOMAIN, ErrorReason};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Builds a status with `message` and an `ErrorInfo` of `reason` and `metadata`.
pub(crate) fn error_status(
    code: Code,
    reason: ErrorReason,
    message: impl Into<String>,
    metadata: &[(&str, String)],
) -> Status {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect();
    let details = ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, metadata);

    Status::with_error_details(code, message, details)
}
