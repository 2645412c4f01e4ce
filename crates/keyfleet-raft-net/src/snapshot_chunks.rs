use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;

use futures_util::Stream;
use futures_util::StreamExt;
use futures_util::stream;
use keyfleet_raft::SnapshotData;

use crate::proto::SnapshotChunk;
use crate::proto::SnapshotHeader;
use crate::proto::snapshot_chunk::Kind;

/// Size of one snapshot data chunk: 1 MiB, well below the gRPC message limit of both ends.
pub(crate) const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// Reader of snapshot data in chunks of at most `chunk_bytes`, read from the file one at a time,
/// so a sender keeps one chunk in memory and not the whole snapshot.
#[derive(Debug)]
pub(crate) struct SnapshotChunks {
    data: SnapshotData,
    offset: u64,
    chunk_bytes: usize,
}

impl SnapshotChunks {
    /// Creates the reader for `data`; `chunk_bytes` must be at least 1.
    pub(crate) fn new(data: SnapshotData, chunk_bytes: usize) -> Self {
        assert!(
            chunk_bytes > 0,
            "snapshot chunk size must be at least 1 byte"
        );

        Self {
            data,
            offset: 0,
            chunk_bytes,
        }
    }

    /// Reads the next chunk, or returns `None` at the end of the data. Blocks on the file.
    pub(crate) fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.offset >= self.data.len() {
            return Ok(None);
        }

        let chunk = self.data.read_chunk(self.offset, self.chunk_bytes)?;
        self.offset += chunk.len() as u64;
        Ok(Some(chunk))
    }
}

/// Slot for the error that ended a snapshot stream early, which the sender reports in place of
/// the receiver's complaint about the short stream.
pub(crate) type ReadFailure = Arc<Mutex<Option<io::Error>>>;

/// Returns the messages of an `InstallSnapshot` stream: the header, then the data chunks, each
/// read on tokio's blocking thread pool when the transport requests it. A failed read ends the
/// stream and is stored in `failure`.
pub(crate) fn snapshot_stream(
    header: SnapshotHeader,
    chunks: SnapshotChunks,
    failure: ReadFailure,
) -> impl Stream<Item = SnapshotChunk> + Send + 'static {
    let header = stream::once(async move {
        SnapshotChunk {
            kind: Some(Kind::Header(header)),
        }
    });

    let data = stream::unfold(Some(chunks), move |chunks| {
        let failure = failure.clone();
        async move {
            let mut chunks = chunks?;
            let read = tokio::task::spawn_blocking(move || {
                let chunk = chunks.next_chunk();
                (chunks, chunk)
            })
            .await;

            let error = match read {
                Ok((chunks, Ok(Some(chunk)))) => {
                    let message = SnapshotChunk {
                        kind: Some(Kind::Data(chunk)),
                    };
                    return Some((message, Some(chunks)));
                }
                Ok((_, Ok(None))) => return None,
                Ok((_, Err(error))) => error,
                Err(join_error) => io::Error::other(join_error),
            };
            *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
            None
        }
    });

    header.chain(data)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn header() -> SnapshotHeader {
        SnapshotHeader {
            vote: vec![1],
            meta: vec![2],
            total_len: 0,
        }
    }

    fn data_in(dir: &Path, bytes: &[u8]) -> SnapshotData {
        let path = dir.join("data");
        std::fs::write(&path, bytes).expect("write the test data");
        SnapshotData::open(&path).expect("open the test data")
    }

    fn read_all(mut chunks: SnapshotChunks) -> Vec<Vec<u8>> {
        let mut read = Vec::new();
        while let Some(chunk) = chunks.next_chunk().expect("the test data is readable") {
            read.push(chunk);
        }
        read
    }

    #[test]
    fn data_split_into_chunks() {
        let dir = tempfile::tempdir().expect("create a directory");
        let chunks = SnapshotChunks::new(data_in(dir.path(), &[0; 10]), 4);

        let lengths: Vec<usize> = read_all(chunks).iter().map(Vec::len).collect();

        assert_eq!(lengths, vec![4, 4, 2]);
    }

    #[test]
    fn empty_data_has_no_chunks() {
        let dir = tempfile::tempdir().expect("create a directory");
        let chunks = SnapshotChunks::new(data_in(dir.path(), &[]), 4);

        assert!(read_all(chunks).is_empty());
    }

    #[test]
    fn chunks_never_buffer_more_than_the_chunk_size() {
        let dir = tempfile::tempdir().expect("create a directory");
        let bytes: Vec<u8> = (0..=255).cycle().take(3 * 1024 * 1024 + 17).collect();
        let chunk_bytes = 64 * 1024;
        let chunks = SnapshotChunks::new(data_in(dir.path(), &bytes), chunk_bytes);

        let read = read_all(chunks);

        assert_eq!(read.len(), bytes.len().div_ceil(chunk_bytes));
        for (index, chunk) in read.iter().enumerate() {
            assert!(
                chunk.capacity() <= chunk_bytes,
                "chunk {index} holds {} bytes, over {chunk_bytes}",
                chunk.capacity()
            );
        }
        assert_eq!(read.concat(), bytes);
    }

    #[tokio::test]
    async fn stream_sends_header_first_then_data() {
        let dir = tempfile::tempdir().expect("create a directory");
        let bytes: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let chunks = SnapshotChunks::new(data_in(dir.path(), &bytes), 64);
        let failure = ReadFailure::default();

        let messages: Vec<SnapshotChunk> = snapshot_stream(header(), chunks, failure.clone())
            .collect()
            .await;

        assert_eq!(messages[0].kind, Some(Kind::Header(header())));
        let mut reassembled = Vec::new();
        for message in &messages[1..] {
            match &message.kind {
                Some(Kind::Data(part)) => reassembled.extend_from_slice(part),
                other => panic!("expected a data chunk, got {other:?}"),
            }
        }
        assert_eq!(reassembled, bytes);
        assert!(failure.lock().unwrap().is_none());
    }
}
