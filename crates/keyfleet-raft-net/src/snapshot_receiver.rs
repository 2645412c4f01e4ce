use futures_util::Stream;
use futures_util::StreamExt;
use keyfleet_raft::Snapshot;
use keyfleet_raft::SnapshotMeta;
use keyfleet_raft::Vote;
use tonic::Status;

use crate::proto::SnapshotChunk;
use crate::proto::snapshot_chunk::Kind;
use crate::service_error::ServiceError;
use crate::wire;

/// Reads an `InstallSnapshot` stream: a header first, then data chunks in order, and returns
/// the leader's vote and the reassembled snapshot.
pub(crate) async fn receive_snapshot<S>(mut stream: S) -> Result<(Vote, Snapshot), ServiceError>
where
    S: Stream<Item = Result<SnapshotChunk, Status>> + Unpin,
{
    let (vote, meta) = match next_kind(&mut stream).await? {
        Some(Kind::Header(header)) => decode_header(&header.vote, &header.meta)?,
        Some(Kind::Data(_)) => {
            return Err(ServiceError::InvalidSnapshotStream(
                "the first message is data, expected the header",
            ));
        }
        None => return Err(ServiceError::InvalidSnapshotStream("the stream is empty")),
    };

    let mut data = Vec::new();

    while let Some(kind) = next_kind(&mut stream).await? {
        match kind {
            Kind::Data(chunk) => data.extend_from_slice(&chunk),
            Kind::Header(_) => {
                return Err(ServiceError::InvalidSnapshotStream(
                    "a second header follows the first",
                ));
            }
        }
    }

    let snapshot = Snapshot {
        meta,
        snapshot: data,
    };

    Ok((vote, snapshot))
}

/// Returns the next message's kind, or `None` at the end of the stream.
async fn next_kind<S>(stream: &mut S) -> Result<Option<Kind>, ServiceError>
where
    S: Stream<Item = Result<SnapshotChunk, Status>> + Unpin,
{
    let Some(item) = stream.next().await else {
        return Ok(None);
    };

    let chunk = item.map_err(ServiceError::StreamFailed)?;

    match chunk.kind {
        Some(kind) => Ok(Some(kind)),
        None => Err(ServiceError::InvalidSnapshotStream(
            "a message has neither header nor data",
        )),
    }
}

fn decode_header(vote: &[u8], meta: &[u8]) -> Result<(Vote, SnapshotMeta), ServiceError> {
    let vote = wire::decode(vote, "Vote").map_err(ServiceError::InvalidRequest)?;
    let meta = wire::decode(meta, "SnapshotMeta").map_err(ServiceError::InvalidRequest)?;

    Ok((vote, meta))
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;
    use crate::proto::SnapshotHeader;

    fn data(bytes: &[u8]) -> Result<SnapshotChunk, Status> {
        Ok(SnapshotChunk {
            kind: Some(Kind::Data(bytes.to_vec())),
        })
    }

    fn header() -> Result<SnapshotChunk, Status> {
        let vote = Vote::new(3, 1);
        let meta = SnapshotMeta::default();

        Ok(SnapshotChunk {
            kind: Some(Kind::Header(SnapshotHeader {
                vote: wire::encode(&vote, "Vote").expect("vote encodes"),
                meta: wire::encode(&meta, "SnapshotMeta").expect("meta encodes"),
            })),
        })
    }

    async fn receive(
        items: Vec<Result<SnapshotChunk, Status>>,
    ) -> Result<(Vote, Snapshot), ServiceError> {
        receive_snapshot(stream::iter(items)).await
    }

    #[tokio::test]
    async fn chunks_are_concatenated() {
        let (vote, snapshot) = receive(vec![header(), data(b"ab"), data(b"cd")])
            .await
            .expect("stream is valid");

        assert_eq!(vote, Vote::new(3, 1));
        assert_eq!(snapshot.snapshot, b"abcd".to_vec());
    }

    #[tokio::test]
    async fn empty_stream_is_rejected() {
        let result = receive(Vec::new()).await;

        assert!(matches!(
            result,
            Err(ServiceError::InvalidSnapshotStream(_))
        ));
    }

    #[tokio::test]
    async fn data_before_header_is_rejected() {
        let result = receive(vec![data(b"ab"), header()]).await;

        assert!(matches!(
            result,
            Err(ServiceError::InvalidSnapshotStream(_))
        ));
    }

    #[tokio::test]
    async fn second_header_is_rejected() {
        let result = receive(vec![header(), data(b"ab"), header()]).await;

        assert!(matches!(
            result,
            Err(ServiceError::InvalidSnapshotStream(_))
        ));
    }

    #[tokio::test]
    async fn stream_error_is_kept() {
        let result = receive(vec![header(), Err(Status::cancelled("client gone"))]).await;

        let status = result.expect_err("stream failed").to_status();
        assert_eq!(status.code(), tonic::Code::Cancelled);
    }

    #[tokio::test]
    async fn garbage_header_is_rejected() {
        let garbage = Ok(SnapshotChunk {
            kind: Some(Kind::Header(SnapshotHeader {
                vote: vec![0xff; 3],
                meta: Vec::new(),
            })),
        });

        let result = receive(vec![garbage]).await;

        assert!(matches!(result, Err(ServiceError::InvalidRequest(_))));
    }
}
