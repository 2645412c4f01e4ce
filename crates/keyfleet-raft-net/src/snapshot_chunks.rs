use crate::proto::SnapshotChunk;
use crate::proto::SnapshotHeader;
use crate::proto::snapshot_chunk::Kind;

/// Size of one snapshot data chunk: 1 MiB, well below the gRPC message limit of both ends.
pub(crate) const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// Iterator over the messages of an `InstallSnapshot` stream: the header, then the data in
/// chunks of at most `chunk_bytes`.
///
/// It copies one chunk at a time out of the snapshot data, so the stream keeps one copy of the snapshot
/// and not twice.
#[derive(Debug)]
pub(crate) struct SnapshotChunks {
    header: Option<SnapshotHeader>,
    data: Vec<u8>,
    offset: usize,
    chunk_bytes: usize,
}

impl SnapshotChunks {
    /// Creates the stream messages for `data`; `chunk_bytes` must be at least 1.
    pub(crate) fn new(header: SnapshotHeader, data: Vec<u8>, chunk_bytes: usize) -> Self {
        assert!(
            chunk_bytes > 0,
            "snapshot chunk size must be at least 1 byte"
        );

        Self {
            header: Some(header),
            data,
            offset: 0,
            chunk_bytes,
        }
    }
}

impl Iterator for SnapshotChunks {
    type Item = SnapshotChunk;

    fn next(&mut self) -> Option<SnapshotChunk> {
        if let Some(header) = self.header.take() {
            return Some(SnapshotChunk {
                kind: Some(Kind::Header(header)),
            });
        }

        if self.offset >= self.data.len() {
            return None;
        }

        let end = self.data.len().min(self.offset + self.chunk_bytes);
        let chunk = self.data[self.offset..end].to_vec();
        self.offset = end;

        Some(SnapshotChunk {
            kind: Some(Kind::Data(chunk)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SnapshotHeader {
        SnapshotHeader {
            vote: vec![1],
            meta: vec![2],
            total_len: 0,
        }
    }

    fn data_lengths(chunks: SnapshotChunks) -> Vec<usize> {
        chunks
            .skip(1)
            .map(|chunk| match chunk.kind {
                Some(Kind::Data(data)) => data.len(),
                other => panic!("expected a data chunk, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn header_comes_first() {
        let mut chunks = SnapshotChunks::new(header(), vec![0; 10], 4);

        let first = chunks.next().expect("stream is not empty");

        assert_eq!(first.kind, Some(Kind::Header(header())));
    }

    #[test]
    fn data_split_into_chunks() {
        let chunks = SnapshotChunks::new(header(), vec![0; 10], 4);

        assert_eq!(data_lengths(chunks), vec![4, 4, 2]);
    }

    #[test]
    fn empty_data_sends_header_only() {
        let chunks = SnapshotChunks::new(header(), Vec::new(), 4);

        assert_eq!(chunks.count(), 1);
    }

    #[test]
    fn chunks_reassemble_to_data() {
        let data: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let chunks = SnapshotChunks::new(header(), data.clone(), 64);

        let mut reassembled = Vec::new();
        for chunk in chunks.skip(1) {
            if let Some(Kind::Data(part)) = chunk.kind {
                reassembled.extend_from_slice(&part);
            }
        }

        assert_eq!(reassembled, data);
    }
}
