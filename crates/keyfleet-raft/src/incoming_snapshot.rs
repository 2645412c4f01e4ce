use std::fs::File;
use std::io::BufWriter;
use std::io::Write;

use crate::error::StoreError;
use crate::snapshot_data::SnapshotData;
use crate::snapshot_dir::SnapshotDir;
use crate::snapshot_format::SnapshotFormatError;

/// Size of the write buffer of an incoming snapshot.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Free space, in bytes, that a node keeps beyond what an incoming snapshot needs, so the Raft
/// log and the state machine can still write while the snapshot is received and installed. It
/// is small so that a node on a small file system can still catch up by a snapshot: a node
/// that cannot take one stays behind and no longer counts toward a quorum.
const FREE_SPACE_RESERVE_BYTES: u64 = 16 * 1024 * 1024;

/// Space that receiving and installing a snapshot takes at once, in multiples of the snapshot's
/// size: the received file, the install's copy that becomes the current snapshot, and the fresh
/// state machine file, which a test measured at 1.24 to 1.97 times the snapshot's size for
/// 20,000 to 1,000,000 users.
// NOTE: the state machine file's size was measured on one machine with redb 5.0.0; the Raft log
// also grows during an install, which only the reserve covers.
const DISK_COPIES: u64 = 4;

/// Failure to receive snapshot data from a peer.
#[derive(Debug, thiserror::Error)]
pub enum IncomingSnapshotError {
    /// The chunks add up to more bytes than announced.
    #[error("the snapshot data runs past the {expected} bytes the header announced")]
    TooLong {
        /// Length the header announced.
        expected: u64,
    },

    /// The data ended before the announced length.
    #[error("the snapshot stream ended after {received} of {expected} bytes")]
    TooShort {
        /// Bytes received.
        received: u64,
        /// Length the header announced.
        expected: u64,
    },

    /// The file system has too little free space for the snapshot and its install.
    #[error(
        "the data directory has {available} bytes free, but a snapshot of {total_len} bytes \
         needs {required}; free space on the data directory's file system"
    )]
    NoSpace {
        /// Announced snapshot length.
        total_len: u64,
        /// Bytes needed, including the reserve.
        required: u64,
        /// Bytes free for this process.
        available: u64,
    },

    /// The received data breaks the snapshot layout or its digest.
    #[error("invalid snapshot data: {0}")]
    Invalid(#[source] SnapshotFormatError),

    /// Writing or reading the temporary file failed.
    #[error(
        "writing the incoming snapshot to a temporary file failed: {0}; check the free space \
         and permissions of the data directory"
    )]
    Io(#[source] std::io::Error),

    /// Creating the temporary file failed.
    #[error("creating a file for the incoming snapshot failed: {0}")]
    Store(#[from] StoreError),
}

/// Snapshot data that a peer is sending, written to an unnamed temporary file in the snapshot
/// directory as it arrives.
///
/// The file loses its name right after it is created, so the file system frees its space when
/// the last handle closes. A crash in between leaves a `.tmp` file that the next open of the
/// state machine removes. Writes block on the file system.
#[derive(Debug)]
pub struct IncomingSnapshot {
    output: BufWriter<File>,
    expected: u64,
    received: u64,
}

impl IncomingSnapshot {
    pub(crate) fn create(dir: &SnapshotDir, total_len: u64) -> Result<Self, IncomingSnapshotError> {
        check_free_space(dir, total_len)?;
        let file = dir.create_temp("incoming")?.into_unlinked()?;

        Ok(Self {
            output: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
            expected: total_len,
            received: 0,
        })
    }

    /// Appends `chunk`, and rejects it if the data would then run past the announced length.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), IncomingSnapshotError> {
        let received = self.received + chunk.len() as u64;
        if received > self.expected {
            return Err(IncomingSnapshotError::TooLong {
                expected: self.expected,
            });
        }

        self.output.write_all(chunk).map_err(write_error)?;
        self.received = received;
        Ok(())
    }

    /// Checks that the data has the announced length, then reads it once to check its layout,
    /// record order and digest. Returns the data and its number of records.
    pub fn finish(self) -> Result<(SnapshotData, u64), IncomingSnapshotError> {
        if self.received != self.expected {
            return Err(IncomingSnapshotError::TooShort {
                received: self.received,
                expected: self.expected,
            });
        }

        let file = self
            .output
            .into_inner()
            .map_err(|error| write_error(error.into_error()))?;
        let data = SnapshotData::from_file(file).map_err(write_error)?;
        let records = data.validate().map_err(|error| match error {
            SnapshotFormatError::Io(source) => IncomingSnapshotError::Io(source),
            invalid => IncomingSnapshotError::Invalid(invalid),
        })?;

        Ok((data, records))
    }
}

fn write_error(source: std::io::Error) -> IncomingSnapshotError {
    IncomingSnapshotError::Io(source)
}

/// Rejects a snapshot of `total_len` bytes unless the directory's file system has room for
/// [`DISK_COPIES`] copies of it and the reserve.
fn check_free_space(dir: &SnapshotDir, total_len: u64) -> Result<(), IncomingSnapshotError> {
    let stats = rustix::fs::statvfs(dir.path()).map_err(|errno| {
        crate::snapshot_dir::snapshot_io(dir.path(), std::io::Error::from(errno))
    })?;

    check_space(total_len, stats.f_bavail.saturating_mul(stats.f_frsize))
}

fn check_space(total_len: u64, available: u64) -> Result<(), IncomingSnapshotError> {
    let required = total_len
        .saturating_mul(DISK_COPIES)
        .saturating_add(FREE_SPACE_RESERVE_BYTES);

    if available < required {
        return Err(IncomingSnapshotError::NoSpace {
            total_len,
            required,
            available,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn space_for_copies_and_reserve_passes() {
        let total_len = 100 * MIB;

        let result = check_space(
            total_len,
            DISK_COPIES * total_len + FREE_SPACE_RESERVE_BYTES,
        );

        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn one_byte_short_is_rejected() {
        let total_len = 100 * MIB;
        let required = DISK_COPIES * total_len + FREE_SPACE_RESERVE_BYTES;

        let result = check_space(total_len, required - 1);

        assert!(
            matches!(
                result,
                Err(IncomingSnapshotError::NoSpace { required: r, available, .. })
                    if r == required && available == required - 1
            ),
            "{result:?}"
        );
    }

    #[test]
    fn huge_length_does_not_overflow() {
        let result = check_space(u64::MAX, u64::MAX - 1);

        assert!(
            matches!(result, Err(IncomingSnapshotError::NoSpace { .. })),
            "{result:?}"
        );
    }
}
