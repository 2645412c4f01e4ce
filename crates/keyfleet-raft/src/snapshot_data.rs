use std::fs::File;
use std::io;
use std::io::BufReader;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::snapshot_decoder::SnapshotDecoder;
use crate::snapshot_format::SnapshotFormatError;

/// Size of the buffer of a sequential read of snapshot data.
pub(crate) const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Raft snapshot data in a file, in the layout of [`crate::SNAPSHOT_FORMAT_VERSION`].
///
/// It keeps an open handle, so the data stays readable after a newer snapshot replaces the file
/// and its name is removed. Clones share the handle, and every read names its offset, so clones
/// read independently. Reads cover the first [`SnapshotData::len`] bytes of the file only.
#[derive(Debug, Clone)]
pub struct SnapshotData {
    file: Arc<File>,
    len: u64,
}

impl SnapshotData {
    /// Opens the snapshot data in the file at `path`, without checking it.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::from_file(File::open(path)?)
    }

    /// Wraps an open file, whose current length is the data's length.
    pub(crate) fn from_file(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();

        Ok(Self {
            file: Arc::new(file),
            len,
        })
    }

    /// Returns the length of the data in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Tells whether the data has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads at most `max_len` bytes starting at `offset`. It returns fewer bytes only at the
    /// end of the data, and an empty buffer at or past it. The buffer never has room for more than
    /// `max_len` bytes.
    pub fn read_chunk(&self, offset: u64, max_len: usize) -> io::Result<Vec<u8>> {
        let remaining = self.len.saturating_sub(offset);
        let len = usize::try_from(remaining).map_or(max_len, |remaining| remaining.min(max_len));
        let mut chunk = vec![0; len];

        self.file.read_exact_at(&mut chunk, offset)?;
        Ok(chunk)
    }

    /// Returns a sequential reader of the data from its first byte.
    pub fn reader(&self) -> SnapshotDataReader {
        SnapshotDataReader {
            file: self.file.clone(),
            offset: 0,
            end: self.len,
        }
    }

    /// Reads the whole data once and checks its layout, record order and digest. Returns the
    /// number of records.
    pub fn validate(&self) -> Result<u64, SnapshotFormatError> {
        let input = BufReader::with_capacity(READ_BUFFER_BYTES, self.reader());

        SnapshotDecoder::new(input)?.validate()
    }
}

/// Sequential reader of [`SnapshotData`], which reads at explicit offsets and so does not move
/// a cursor that other readers share.
#[derive(Debug)]
pub struct SnapshotDataReader {
    file: Arc<File>,
    offset: u64,
    end: u64,
}

impl Read for SnapshotDataReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let remaining = self.end.saturating_sub(self.offset);
        let len = usize::try_from(remaining).map_or(buffer.len(), |left| left.min(buffer.len()));
        if len == 0 {
            return Ok(0);
        }

        let read = self.file.read_at(&mut buffer[..len], self.offset)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the snapshot file is shorter than its recorded length",
            ));
        }
        self.offset += read as u64;
        Ok(read)
    }
}
