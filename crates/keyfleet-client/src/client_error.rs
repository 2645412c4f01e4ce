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

    /// The client's TLS settings (the CA certificate, or the client certificate and key) are
    /// invalid, such as a key that does not belong to the certificate.
    #[error(
        "the TLS settings for node {endpoint} are invalid: {source}; check that the CA \
         certificate is PEM, and that the client key is the PEM private key of the client \
         certificate"
    )]
    InvalidTls {
        /// The node API endpoint the settings were for.
        endpoint: String,
        /// The tonic error.
        #[source]
        source: tonic::transport::Error,
    },

    /// The TLS handshake with a node failed in a way that retrying does not fix, such as a
    /// node certificate from another CA, or TLS on one side only.
    #[error("the connection to node {endpoint} failed: {message}; {hint}")]
    Tls {
        /// The node API endpoint called.
        endpoint: String,
        /// The gRPC status code the transport reported.
        code: Code,
        /// The gRPC status message.
        message: String,
        /// The change that fixes the failure.
        hint: &'static str,
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

        if let Some(hint) = tls_failure_hint(status) {
            return Self::Tls {
                endpoint,
                code: status.code(),
                message,
                hint,
            };
        }
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
            Self::Rpc { code, .. } | Self::Tls { code, .. } => Some(*code),
            Self::NoEndpoints
            | Self::InvalidEndpoint { .. }
            | Self::InvalidTls { .. }
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
    if tls_failure_hint(status).is_some() {
        return false;
    }
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

/// Hint for a node that serves TLS to a client that dials plaintext.
const HINT_NODE_SERVES_TLS: &str = "the node serves TLS, so pass the fleet CA certificate \
     (the CLI's --ca-cert or KEYFLEET_CA_CERT)";
/// Hint for a node certificate that does not chain to the CA the client trusts.
const HINT_UNKNOWN_ISSUER: &str = "the node's certificate does not chain to the CA certificate \
     given; pass the fleet CA certificate that `keyfleetd certs init-ca` wrote (--ca-cert)";
/// Hint for a node certificate that does not name the address dialed.
const HINT_WRONG_NAME: &str = "the node's certificate does not name the host dialed; dial a \
     name or IP address that its certificate names (`keyfleetd certs issue-node --dns/--ip`)";
/// Hint for a node that serves plaintext to a client that dials TLS.
const HINT_NODE_PLAINTEXT: &str = "the node does not serve TLS; drop --ca-cert, or configure \
     TLS on the node";
/// Hint for a node that rejected the client's certificate during the handshake.
const HINT_ALERT: &str = "the node rejected the TLS handshake; check that the client \
     certificate (--client-cert) is from the fleet CA and has not expired";

/// Returns what to change when `status` reports a TLS failure that a retry cannot fix, such
/// as a certificate from another CA or TLS on one side only. The status message and its
/// source chain are searched for the error texts of rustls 0.23 and h2 0.4.
// NOTE: this matches error texts, because tonic's status does not expose the rustls or h2
// error types.
pub(crate) fn tls_failure_hint(status: &Status) -> Option<&'static str> {
    let mut text = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        text.push_str(": ");
        text.push_str(&error.to_string());
        source = error.source();
    }
    let has = |needle: &str| text.contains(needle);

    if status.code() == Code::Internal && has("frame with invalid size") {
        // A plaintext HTTP/2 client reads the TLS server's first record as a frame header,
        // whose length is far above the maximum frame size.
        Some(HINT_NODE_SERVES_TLS)
    } else if has("UnknownIssuer") || has("BadSignature") {
        Some(HINT_UNKNOWN_ISSUER)
    } else if has("NotValidForName") {
        Some(HINT_WRONG_NAME)
    } else if has("InvalidContentType") || has("corrupt message") {
        Some(HINT_NODE_PLAINTEXT)
    } else if has("received fatal alert") {
        Some(HINT_ALERT)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_permanent() {
        let cases = [
            Status::unavailable("invalid peer certificate: UnknownIssuer"),
            Status::unavailable("invalid peer certificate: NotValidForName"),
            Status::unavailable("received corrupt message of type InvalidContentType"),
            Status::internal(
                "h2 protocol error: http2 error: connection error detected: frame with invalid \
                 size",
            ),
        ];

        for status in cases {
            assert!(!is_retryable(&status), "{status:?}");
            let error = ClientError::from_status("http://127.0.0.1:1", &status);
            assert!(matches!(error, ClientError::Tls { .. }), "{error:?}");
        }
    }

    #[test]
    fn transient_failures_stay_retryable() {
        let cases = [
            Status::unavailable("tcp connect error: Connection refused (os error 111)"),
            Status::unknown("transport error"),
            Status::internal("h2 protocol error: error reading a body from connection"),
        ];

        for status in cases {
            assert!(is_retryable(&status), "{status:?}");
            assert!(tls_failure_hint(&status).is_none(), "{status:?}");
        }
    }
}
