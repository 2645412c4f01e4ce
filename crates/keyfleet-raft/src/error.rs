use std::io;
use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Failure of the redb log store or state machine.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be created or opened.
    #[error(
        "failed to open redb database {path}: {source}; check that no other process has it open and that it is a keyfleet database"
    )]
    Open {
        /// Path of the database file.
        path: PathBuf,
        /// Error from redb.
        source: redb::DatabaseError,
    },

    /// The data directory could not be created.
    #[error("failed to create data directory {path}: {source}; check its parent and permissions")]
    CreateDirectory {
        /// Path of the directory.
        path: PathBuf,
        /// Error from the file system.
        source: io::Error,
    },

    /// Rewriting a database file into a fresh one failed.
    #[error(
        "failed to rewrite {path} into a fresh file: {source}; check the free space and \
         permissions of its directory"
    )]
    Rewrite {
        /// Path of the database file.
        path: PathBuf,
        /// Error from the file system.
        source: io::Error,
    },

    /// Creating, writing, renaming, syncing or removing a snapshot file failed.
    #[error(
        "snapshot file operation failed on {path}: {source}; check the free space and \
         permissions of the data directory"
    )]
    SnapshotIo {
        /// Path of the file or directory.
        path: PathBuf,
        /// Error from the file system.
        source: io::Error,
    },

    /// Snapshot data breaks the snapshot layout or its digest.
    #[error("invalid snapshot data: {0}")]
    InvalidSnapshot(#[from] crate::snapshot_format::SnapshotFormatError),

    /// The state machine records a current snapshot file name that is not one this crate
    /// writes.
    #[error(
        "the recorded snapshot file name {0:?} is invalid; the state machine file is corrupt, \
         restore the node from a snapshot"
    )]
    InvalidSnapshotFileName(String),

    /// A redb transaction, table or commit failed.
    #[error("redb operation failed: {0}")]
    Redb(#[from] redb::Error),

    /// A value could not be encoded.
    #[error("failed to encode {value_name}: {source}")]
    Encode {
        /// Name of the value, such as "log entry".
        value_name: &'static str,
        /// Error from postcard.
        source: postcard::Error,
    },

    /// A stored value could not be decoded.
    #[error(
        "failed to decode {value_name}: {source}; the data is corrupt or was written by an incompatible keyfleet version"
    )]
    Decode {
        /// Name of the value, such as "log entry".
        value_name: &'static str,
        /// Error from postcard.
        source: postcard::Error,
    },

    /// A log entry is stored under a key that differs from its own log index.
    #[error(
        "log entry stored at index {key} has log index {entry_index}; the log file is corrupt, restore the node from a snapshot"
    )]
    LogIndexMismatch {
        /// Index used as the table key.
        key: u64,
        /// Index inside the decoded entry.
        entry_index: u64,
    },

    /// A user id stored in the vault tables breaks the user id bounds.
    #[error(
        "stored user id is invalid: {0}; the state machine file is corrupt, restore the node from a snapshot"
    )]
    InvalidStoredUserId(#[source] crate::user_id::InvalidUserId),

    /// The dedup index names a request id that the dedup table does not contain.
    #[error(
        "dedup index at log index {log_index} names a request that is not stored; the state machine file is corrupt, restore the node from a snapshot"
    )]
    MissingDedupEntry {
        /// Log index of the dangling index row.
        log_index: u64,
    },

    /// Snapshot data has no format version byte.
    #[error("snapshot data is empty: it must start with the format version byte")]
    EmptySnapshot,

    /// Snapshot data has a format version this build cannot read.
    #[error(
        "snapshot format version {found} is not supported, this build reads version {expected}: run the same keyfleet version on every node"
    )]
    UnsupportedSnapshotFormat {
        /// Version byte found in the data.
        found: u8,
        /// Version this build writes and reads.
        expected: u8,
    },

    /// The blocking task running the redb work panicked or was cancelled.
    #[error("redb task did not complete: {0}")]
    Task(#[from] tokio::task::JoinError),

    /// The thread that syncs appended log entries to disk could not be started.
    #[error("failed to start the Raft log flusher thread: {0}")]
    StartFlusher(#[source] io::Error),
}

macro_rules! impl_from_redb_error {
    ($($error:ty),* $(,)?) => {
        $(
            impl From<$error> for StoreError {
                fn from(error: $error) -> Self {
                    StoreError::Redb(redb::Error::from(error))
                }
            }
        )*
    };
}

impl_from_redb_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
);

impl From<StoreError> for io::Error {
    fn from(error: StoreError) -> Self {
        let kind = match &error {
            StoreError::Decode { .. }
            | StoreError::LogIndexMismatch { .. }
            | StoreError::InvalidStoredUserId(_)
            | StoreError::MissingDedupEntry { .. }
            | StoreError::EmptySnapshot
            | StoreError::UnsupportedSnapshotFormat { .. }
            | StoreError::InvalidSnapshotFileName(_) => io::ErrorKind::InvalidData,
            StoreError::InvalidSnapshot(error) if !error.is_io() => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        };

        io::Error::new(kind, error)
    }
}

/// Logs a failed storage operation and converts the error for openraft.
pub(crate) fn report(operation: &'static str) -> impl FnOnce(StoreError) -> io::Error {
    move |error| {
        tracing::error!(operation, error = %error, "raft storage operation failed");
        io::Error::from(error)
    }
}

/// Encodes a value with postcard.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    value_name: &'static str,
) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|source| StoreError::Encode { value_name, source })
}

/// Decodes a postcard value.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    value_name: &'static str,
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|source| StoreError::Decode { value_name, source })
}
