use std::time::Duration;

use tonic::Code;
use tonic::Status;

/// Failure of a [`crate::FleetClient`] call, or of building a [`crate::LeaderRouter`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client was built without any node API endpoint.
    #[error("no node API endpoint given: pass at least one, such as http://127.0.0.1:7001")]
    NoEndpoints,

    /// An endpoint is not a valid URI.
    #[error("node API endpoint {endpoint:?} is invalid: {source}; use the form http://host:port")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// The tonic error.
        #[source]
        source: tonic::transport::Error,
    },

    /// A TLS certificate or key file could not be read.
    #[error("reading the TLS file {path} failed: {source}; check the path and its permissions")]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The retry policy has a zero duration or its bounds in the wrong order.
    #[error("invalid retry policy: {reason}")]
    InvalidPolicy {
        /// The invalid setting and its fix.
        reason: String,
    },

    /// A node returned `UNAVAILABLE` or could not be reached, and the call was not retried.
    #[error("node {endpoint} is unavailable: {message}; check that it is running")]
    Unavailable {
        /// The node API endpoint called.
        endpoint: String,
        /// The gRPC status message of the last attempt.
        message: String,
    },

    /// A node rejected the request as invalid. Retrying it unchanged fails again.
    #[error("node {endpoint} rejected the request as invalid: {message}")]
    InvalidArgument {
        /// The node API endpoint called.
        endpoint: String,
        /// The gRPC status message.
        message: String,
    },

    /// The operation did not succeed before the retry policy's deadline.
    #[error(
        "{operation} did not succeed within {deadline:?} ({attempts} attempts); last error from \
         {endpoint}: {last_message}; check that a majority of nodes is running, or raise the \
         deadline"
    )]
    DeadlineExceeded {
        /// Name of the operation, such as `write`.
        operation: &'static str,
        /// The retry policy's deadline.
        deadline: Duration,
        /// Number of RPCs sent.
        attempts: u32,
        /// The node API endpoint of the last attempt.
        endpoint: String,
        /// The gRPC status code of the last attempt.
        last_code: Code,
        /// The gRPC status message of the last attempt.
        last_message: String,
    },

    /// The request could not be encoded with postcard.
    #[error("failed to encode the {what} with postcard: {source}")]
    Encode {
        /// Name of the encoded type.
        what: &'static str,
        /// The postcard error.
        #[source]
        source: postcard::Error,
    },

    /// A node's response could not be decoded with postcard, which means the client and the node
    /// disagree on the payload types.
    #[error(
        "failed to decode the {what} from node {endpoint}: {source}; check that client and \
         node run the same keyfleet version"
    )]
    Decode {
        /// Name of the decoded type.
        what: &'static str,
        /// The node API endpoint that sent it.
        endpoint: String,
        /// The postcard error.
        #[source]
        source: postcard::Error,
    },

    /// A node returned a gRPC error that retrying does not fix.
    #[error("node {endpoint} failed the request with {code:?}: {message}")]
    Rpc {
        /// The node API endpoint called.
        endpoint: String,
        /// The gRPC status code.
        code: Code,
        /// The gRPC status message.
        message: String,
    },
}

impl ClientError {
    /// Wraps a gRPC status from `endpoint` that the client does not retry.
    pub(crate) fn from_status(endpoint: &str, status: &Status) -> Self {
        let endpoint = endpoint.to_owned();
        let message = status.message().to_owned();

        match status.code() {
            Code::Unavailable => Self::Unavailable { endpoint, message },
            Code::InvalidArgument => Self::InvalidArgument { endpoint, message },
            code => Self::Rpc {
                endpoint,
                code,
                message,
            },
        }
    }

    /// Returns the gRPC status code behind this error, if a node or the transport sent one.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Unavailable { .. } => Some(Code::Unavailable),
            Self::InvalidArgument { .. } => Some(Code::InvalidArgument),
            Self::DeadlineExceeded { last_code, .. } => Some(*last_code),
            Self::Rpc { code, .. } => Some(*code),
            Self::NoEndpoints
            | Self::InvalidEndpoint { .. }
            | Self::InvalidPolicy { .. }
            | Self::TlsFile { .. }
            | Self::Encode { .. }
            | Self::Decode { .. } => None,
        }
    }
}

/// Returns true when a failed RPC may succeed on another attempt, possibly on another node.
///
/// Every operation of the node API is safe to repeat: a write carries its request id, reads
/// change nothing, and membership changes set a target state. The vault API's calls are too,
/// because each one that changes state carries a request id.
pub(crate) fn is_retryable(status: &Status) -> bool {
    match status.code() {
        // Not the leader, no quorum, or no connection (tonic maps connect errors here).
        Code::Unavailable => true,
        // The client's RPC timeout expired (tonic reports `Cancelled`) or the server's did.
        Code::Cancelled | Code::DeadlineExceeded => true,
        // tonic reports a connection that broke mid-call as `Unknown`, or as `Internal` with an
        // "h2 protocol error" message.
        // NOTE: the `Internal` case matches tonic 0.14's message text, because the status does
        // not expose the h2 error type without a direct h2 dependency.
        Code::Unknown => true,
        Code::Internal => status.message().starts_with("h2 protocol error"),
        _ => false,
    }
}
