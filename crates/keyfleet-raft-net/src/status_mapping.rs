//! Maps a failed gRPC call to the openraft network error that makes openraft react correctly.

use std::time::Duration;

use keyfleet_raft::NodeId;
use keyfleet_raft::TypeConfig;
use openraft::errors::NetworkError;
use openraft::errors::RPCError;
use openraft::errors::StreamingError;
use openraft::errors::Timeout;
use openraft::errors::Unreachable;
use openraft::network::RPCTypes;
use tonic::Code;
use tonic::Status;

/// Class of a failed call, which decides how openraft retries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The peer cannot be reached, or its Raft node has stopped: openraft backs off before it
    /// retries.
    Unreachable,

    /// The call passed its deadline.
    Timeout,

    /// Any other failure: openraft retries at once.
    Network,
}

/// Classifies a gRPC status.
///
/// tonic returns `Unavailable` when it cannot connect or the connection breaks, and the server
/// of this crate returns it when the peer's Raft node has stopped. Both cases need a backoff.
pub(crate) fn classify(status: &Status) -> FailureKind {
    match status.code() {
        Code::Unavailable => FailureKind::Unreachable,
        Code::DeadlineExceeded | Code::Cancelled => FailureKind::Timeout,
        _ => FailureKind::Network,
    }
}

/// The ids and deadline of one call, used to build openraft's [`Timeout`] error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallContext {
    pub(crate) rpc: RPCTypes,
    pub(crate) source: NodeId,
    pub(crate) target: NodeId,
    pub(crate) deadline: Duration,
}

impl CallContext {
    pub(crate) fn timeout(&self) -> Timeout<TypeConfig> {
        Timeout {
            action: self.rpc,
            id: self.source,
            target: self.target,
            timeout: self.deadline,
        }
    }

    /// Converts a gRPC status into the error of a request-response RPC.
    pub(crate) fn rpc_error(&self, status: &Status) -> RPCError<TypeConfig> {
        match classify(status) {
            FailureKind::Unreachable => RPCError::Unreachable(Unreachable::new(status)),
            FailureKind::Timeout => RPCError::Timeout(self.timeout()),
            FailureKind::Network => RPCError::Network(NetworkError::new(status)),
        }
    }

    /// Converts a gRPC status into the error of a snapshot transfer.
    pub(crate) fn streaming_error(&self, status: &Status) -> StreamingError<TypeConfig> {
        match classify(status) {
            FailureKind::Unreachable => StreamingError::Unreachable(Unreachable::new(status)),
            FailureKind::Timeout => StreamingError::Timeout(self.timeout()),
            FailureKind::Network => StreamingError::Network(NetworkError::new(status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_is_unreachable() {
        assert_eq!(
            classify(&Status::unavailable("connection refused")),
            FailureKind::Unreachable
        );
    }

    #[test]
    fn deadline_exceeded_is_timeout() {
        assert_eq!(
            classify(&Status::deadline_exceeded("too slow")),
            FailureKind::Timeout
        );
    }

    #[test]
    fn invalid_argument_is_network() {
        assert_eq!(
            classify(&Status::invalid_argument("bad bytes")),
            FailureKind::Network
        );
    }
}
