//! The layout of Raft snapshot data: a stream of framed records that is written and read one
//! record at a time, so no side keeps the whole vault in memory.
//!
//! The layout, with big-endian integers:
//!
//! - one byte, [`SNAPSHOT_FORMAT_VERSION`];
//! - one frame per record: a tag byte, a `u32` payload length and the postcard payload. The
//!   fleet setup (tag 1) and the validation bundle (tag 2) come first, at most once each, then
//!   the user records (tag 3) by increasing user id, then the remembered requests (tag 4) by
//!   increasing log index;
//! - an end frame: tag 0, length 8 and the number of record frames as a `u64`;
//! - the SHA-256 digest of every byte before it.
//!
//! The digest detects truncation and corruption in transit or on disk. It is no signature.

use std::io;

use crate::bundle_record::BundleRecord;
use crate::dedup_entry::DedupEntry;
use crate::fleet::FleetRecord;
use crate::record::UserRecord;
use crate::user_id::UserId;

/// Version of the Raft snapshot data layout, stored as the first byte of every snapshot.
///
/// Raise it whenever the layout, or the encoding of a record type in it, changes. Version 3 was
/// a whole encoded [`crate::VaultImage`], which this build no longer accepts from Raft.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 4;

/// Maximum payload length of one frame, in bytes. It bounds what a reader allocates for one
/// record. The largest record, a user with two sealed blobs of 64 KiB, is far below it.
pub(crate) const MAX_FRAME_LEN: u32 = 1024 * 1024;

/// Length of a SHA-256 digest.
pub(crate) const DIGEST_LEN: usize = 32;

pub(crate) const TAG_END: u8 = 0;
pub(crate) const TAG_FLEET: u8 = 1;
pub(crate) const TAG_BUNDLE: u8 = 2;
pub(crate) const TAG_USER: u8 = 3;
pub(crate) const TAG_DEDUP: u8 = 4;

/// One record of snapshot data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SnapshotItem {
    Fleet(FleetRecord),
    Bundle(BundleRecord),
    User(UserId, UserRecord),
    Dedup(DedupEntry),
}

/// Snapshot data that breaks the layout, or a failure to read it.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFormatError {
    /// Reading or writing the data failed.
    #[error("snapshot data I/O failed: {0}")]
    Io(#[from] io::Error),

    /// The data has no bytes.
    #[error("snapshot data is empty: it must start with the format version byte")]
    Empty,

    /// The first byte names a layout this build does not read.
    #[error(
        "snapshot format version {found} is not supported, this build reads version {expected}: \
         run the same keyfleet version on every node"
    )]
    UnsupportedVersion {
        /// Version byte found in the data.
        found: u8,
        /// Version this build writes and reads.
        expected: u8,
    },

    /// The data ends before the end frame and the digest.
    #[error("snapshot data is truncated: it ends inside the {field} at byte {offset}")]
    Truncated {
        /// Part of the layout that is cut off.
        field: &'static str,
        /// Offset where the data ends.
        offset: u64,
    },

    /// A frame has a tag this build does not know.
    #[error("snapshot data has an unknown frame tag {tag} at byte {offset}")]
    UnknownTag {
        /// The tag byte.
        tag: u8,
        /// Offset of the frame.
        offset: u64,
    },

    /// A frame announces a payload longer than the maximum of 1 MiB, or an end frame of the
    /// wrong length.
    #[error("snapshot frame at byte {offset} has an invalid length of {len} bytes")]
    InvalidFrameLength {
        /// Announced payload length.
        len: u32,
        /// Offset of the frame.
        offset: u64,
    },

    /// Records are out of the order the layout fixes, or a single record repeats.
    #[error("snapshot data is out of order at byte {offset}: {reason}")]
    OutOfOrder {
        /// Ordering rule that the frame breaks.
        reason: &'static str,
        /// Offset of the frame.
        offset: u64,
    },

    /// A frame's payload does not decode as its record type.
    #[error("failed to decode the {record} at byte {offset}: {source}")]
    Decode {
        /// Record type of the frame.
        record: &'static str,
        /// Offset of the frame.
        offset: u64,
        /// Error from postcard.
        source: postcard::Error,
    },

    /// A record could not be encoded.
    #[error("failed to encode the {record}: {source}")]
    Encode {
        /// Record type of the frame.
        record: &'static str,
        /// Error from postcard.
        source: postcard::Error,
    },

    /// The end frame's record count differs from the frames read.
    #[error("snapshot end frame counts {announced} records, but the data has {found}")]
    CountMismatch {
        /// Count in the end frame.
        announced: u64,
        /// Record frames read.
        found: u64,
    },

    /// The digest does not match the bytes before it.
    #[error("snapshot data does not match its SHA-256 digest: it is corrupt")]
    DigestMismatch,

    /// Bytes follow the digest.
    #[error("snapshot data has bytes after its digest, at byte {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: u64,
    },
}

impl SnapshotFormatError {
    /// Tells whether the error is a failed read or write rather than invalid data.
    pub fn is_io(&self) -> bool {
        matches!(self, SnapshotFormatError::Io(_))
    }
}
