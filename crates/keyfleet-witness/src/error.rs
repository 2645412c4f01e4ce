//! Typed errors of the witness.

use std::path::PathBuf;

use keyfleet_bundle::BundleError;
use thiserror::Error;

/// A witness failure.
#[derive(Debug, Error)]
pub enum WitnessError {
    /// The key file cannot be read, created or trusted.
    #[error("witness key file {path}: {reason}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The log database failed.
    #[error("witness log storage failed: {0}")]
    Storage(String),
    /// A request breaks a rule: a malformed artifact or field.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The artifact is not the next epoch, or its digest is already logged.
    #[error("{0}")]
    EpochRule(String),
    /// The submission lacks a valid signature by an operator key pinned for its namespace.
    #[error("{0}")]
    Unauthorized(String),
    /// No such namespace, epoch or tree size.
    #[error("{0}")]
    NotFound(String),
    /// The entry already has another counter-signature.
    #[error("epoch {epoch} of {namespace} already has a different counter-signature")]
    CountersignatureExists {
        /// Namespace.
        namespace: String,
        /// Epoch.
        epoch: u64,
    },
}

impl From<BundleError> for WitnessError {
    fn from(error: BundleError) -> Self {
        Self::Invalid(error.to_string())
    }
}

macro_rules! storage_from {
    ($($source:ty),*) => {
        $(impl From<$source> for WitnessError {
            fn from(error: $source) -> Self {
                Self::Storage(error.to_string())
            }
        })*
    };
}

storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

impl From<WitnessError> for tonic::Status {
    fn from(error: WitnessError) -> Self {
        let message = error.to_string();
        if !matches!(
            error,
            WitnessError::KeyFile { .. } | WitnessError::Storage(_)
        ) {
            tracing::warn!(error = %message, "witness rejected a request");
        }
        match error {
            WitnessError::Invalid(_) => Self::invalid_argument(message),
            WitnessError::EpochRule(_) => Self::failed_precondition(message),
            WitnessError::NotFound(_) => Self::not_found(message),
            WitnessError::Unauthorized(_) => Self::permission_denied(message),
            WitnessError::CountersignatureExists { .. } => Self::already_exists(message),
            WitnessError::KeyFile { .. } | WitnessError::Storage(_) => {
                tracing::error!(error = %message, "witness request failed");
                Self::internal("the witness failed to read or write its log; see its log")
            }
        }
    }
}
