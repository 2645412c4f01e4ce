use keyfleet_raft::IncomingSnapshotError;
use keyfleet_raft::TypeConfig;
use openraft::errors::RaftError;
use tonic::Status;

use crate::wire::WireError;

/// Failure while the server handles one Raft RPC.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    /// The request's bytes are not a valid openraft request.
    #[error("invalid request: {0}")]
    InvalidRequest(#[source] WireError),

    /// The `InstallSnapshot` stream is out of order or incomplete.
    #[error("invalid snapshot stream: {0}")]
    InvalidSnapshotStream(&'static str),

    /// The snapshot's length disagrees with its header or exceeds the limit.
    #[error("invalid snapshot: {0}")]
    InvalidSnapshotLength(String),

    /// The received snapshot data breaks the snapshot layout or its digest.
    #[error("invalid snapshot data: {0}")]
    InvalidSnapshotData(String),

    /// This node is receiving another snapshot. It receives one at a time, which bounds the
    /// disk space that incoming snapshots take.
    #[error("this node is receiving another snapshot; retry after it is installed")]
    SnapshotBusy,

    /// This node cannot store the snapshot: its disk is too full, or writing the file failed.
    #[error("this node cannot store the snapshot: {0}")]
    SnapshotStorage(String),

    /// The client's stream failed before it ended.
    #[error("snapshot stream failed: {0}")]
    StreamFailed(#[source] Status),

    /// The response could not be encoded.
    #[error("failed to encode the response: {0}")]
    EncodeResponse(#[source] WireError),

    /// The caller's TLS certificate does not name the node id its request claims, or the
    /// connection has no client certificate.
    #[error(
        "the caller's TLS client certificate does not name node {claimed}, the sender in its \
         request; issue the node a certificate with `keyfleetd certs issue-node --node-id \
         {claimed}`"
    )]
    PeerIdentity { claimed: u64 },

    /// The local Raft node has stopped or failed.
    #[error("Raft node stopped: {0}")]
    RaftStopped(#[source] RaftError<TypeConfig>),
}

impl ServiceError {
    /// Converts the error into the status returned to the client.
    ///
    /// A stopped node, and a node that cannot take a snapshot now, return `Unavailable`, which
    /// the client maps to openraft's `Unreachable` so the sender backs off.
    pub(crate) fn to_status(&self) -> Status {
        let message = self.to_string();

        match self {
            ServiceError::InvalidRequest(_)
            | ServiceError::InvalidSnapshotStream(_)
            | ServiceError::InvalidSnapshotLength(_) => Status::invalid_argument(message),
            // The data arrived whole but fails its own check, so the sender's file is damaged.
            ServiceError::InvalidSnapshotData(_) => Status::data_loss(message),
            ServiceError::StreamFailed(status) => Status::new(status.code(), message),
            ServiceError::EncodeResponse(_) => Status::internal(message),
            ServiceError::PeerIdentity { .. } => Status::permission_denied(message),
            ServiceError::RaftStopped(_)
            | ServiceError::SnapshotBusy
            | ServiceError::SnapshotStorage(_) => Status::unavailable(message),
        }
    }
}

impl From<IncomingSnapshotError> for ServiceError {
    fn from(error: IncomingSnapshotError) -> Self {
        match error {
            IncomingSnapshotError::TooLong { .. } | IncomingSnapshotError::TooShort { .. } => {
                ServiceError::InvalidSnapshotLength(error.to_string())
            }
            IncomingSnapshotError::Invalid(invalid) => {
                ServiceError::InvalidSnapshotData(invalid.to_string())
            }
            IncomingSnapshotError::NoSpace { .. }
            | IncomingSnapshotError::Io(_)
            | IncomingSnapshotError::Store(_) => ServiceError::SnapshotStorage(error.to_string()),
        }
    }
}
