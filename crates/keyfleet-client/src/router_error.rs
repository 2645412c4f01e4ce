use std::time::Duration;

use tonic::Status;

use crate::client_error::ClientError;

/// Failure of a call through a [`crate::LeaderRouter`]. The variants that a node caused keep
/// its whole gRPC status, details and metadata included, for callers that read them.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// No channel could be built for an endpoint, such as an invalid address in a leader hint.
    #[error(transparent)]
    Channel(ClientError),

    /// A node returned a status that retrying does not fix.
    #[error("node {endpoint} failed the request with {:?}: {}", status.code(), status.message())]
    Rejected {
        /// The endpoint that returned the status.
        endpoint: String,
        /// Number of RPCs sent, this one included.
        attempts: u32,
        /// The status as the node sent it.
        status: Box<Status>,
    },

    /// The call did not succeed before the retry policy's deadline.
    #[error(
        "{operation} did not succeed within {deadline:?} ({attempts} attempts); last error from \
         {endpoint}: {}; check that a majority of nodes is running, or raise the deadline",
        status.message()
    )]
    DeadlineExceeded {
        /// Name of the operation, such as `write`.
        operation: &'static str,
        /// The retry policy's deadline.
        deadline: Duration,
        /// Number of RPCs sent.
        attempts: u32,
        /// The endpoint of the last attempt.
        endpoint: String,
        /// The status of the last attempt.
        status: Box<Status>,
    },
}

impl RouterError {
    /// Returns the status of the last attempt, if a node or the transport sent one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Self::Channel(_) => None,
            Self::Rejected { status, .. } | Self::DeadlineExceeded { status, .. } => Some(status),
        }
    }
}

impl From<RouterError> for ClientError {
    fn from(error: RouterError) -> Self {
        match error {
            RouterError::Channel(error) => error,
            RouterError::Rejected {
                endpoint, status, ..
            } => ClientError::from_status(&endpoint, &status),
            RouterError::DeadlineExceeded {
                operation,
                deadline,
                attempts,
                endpoint,
                status,
            } => ClientError::DeadlineExceeded {
                operation,
                deadline,
                attempts,
                endpoint,
                last_code: status.code(),
                last_message: status.message().to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn rejected_converts_by_code() {
        let error = RouterError::Rejected {
            endpoint: "http://127.0.0.1:7001".to_owned(),
            attempts: 1,
            status: Box::new(Status::invalid_argument("bad user")),
        };

        let converted = ClientError::from(error);

        assert!(
            matches!(converted, ClientError::InvalidArgument { ref message, .. } if message == "bad user"),
            "{converted:?}"
        );
    }

    #[test]
    fn deadline_keeps_last_status() {
        let error = RouterError::DeadlineExceeded {
            operation: "write",
            deadline: Duration::from_secs(3),
            attempts: 7,
            endpoint: "http://127.0.0.1:7002".to_owned(),
            status: Box::new(Status::unavailable("no quorum")),
        };

        assert_eq!(error.status().map(Status::code), Some(Code::Unavailable));

        let converted = ClientError::from(error);

        assert_eq!(converted.code(), Some(Code::Unavailable));
        assert!(converted.to_string().contains("7 attempts"), "{converted}");
    }
}
