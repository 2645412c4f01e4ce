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

/// Largest snapshot a node accepts, in bytes. The whole snapshot is held in memory while it is
/// received and installed, so this bounds what one peer can make a node allocate.
///
/// NOTE: an estimate sized for about 15,000 users with two 64 KiB blobs each; a chunked,
/// on-disk snapshot format would lift it.
pub const MAX_SNAPSHOT_BYTES: u64 = 2 << 30;

/// Reads an `InstallSnapshot` stream: a header first, then data chunks in order, and returns
/// the leader's vote and the reassembled snapshot.
///
/// The data must add up to the header's `total_len` and decode as a vault image. A snapshot
/// that fails either check is rejected here as invalid input, before it reaches Raft, because a
/// snapshot that fails to install stops the Raft node.
pub(crate) async fn receive_snapshot<S>(mut stream: S) -> Result<(Vote, Snapshot), ServiceError>
where
    S: Stream<Item = Result<SnapshotChunk, Status>> + Unpin,
{
    let (vote, meta, total_len) = match next_kind(&mut stream).await? {
        Some(Kind::Header(header)) => {
            let (vote, meta) = decode_header(&header.vote, &header.meta)?;
            (vote, meta, header.total_len)
        }
        Some(Kind::Data(_)) => {
            return Err(ServiceError::InvalidSnapshotStream(
                "the first message is data, expected the header",
            ));
        }
        None => return Err(ServiceError::InvalidSnapshotStream("the stream is empty")),
    };

    check_meta_against_vote(&vote, &meta)?;
    if total_len > MAX_SNAPSHOT_BYTES {
        return Err(ServiceError::InvalidSnapshotLength(format!(
            "{total_len} bytes exceeds the limit of {MAX_SNAPSHOT_BYTES}"
        )));
    }
    let mut data = Vec::with_capacity(total_len as usize);

    while let Some(kind) = next_kind(&mut stream).await? {
        match kind {
            Kind::Data(chunk) if (data.len() + chunk.len()) as u64 > total_len => {
                return Err(ServiceError::InvalidSnapshotLength(format!(
                    "data runs past the {total_len} bytes the header announced"
                )));
            }
            Kind::Data(chunk) => data.extend_from_slice(&chunk),
            Kind::Header(_) => {
                return Err(ServiceError::InvalidSnapshotStream(
                    "a second header follows the first",
                ));
            }
        }
    }

    if data.len() as u64 != total_len {
        return Err(ServiceError::InvalidSnapshotLength(format!(
            "the stream ended after {} of {total_len} bytes",
            data.len()
        )));
    }
    keyfleet_raft::VaultImage::decode(&data)
        .map_err(|error| ServiceError::InvalidSnapshotData(error.to_string()))?;

    let snapshot = Snapshot {
        meta,
        snapshot: data,
    };

    Ok((vote, snapshot))
}

/// Rejects a snapshot whose last log id is missing or comes from a leader newer than the
/// sender's vote. No correct leader sends one, and openraft 0.10.0-alpha.37 asserts against it
/// while installing, which would stop the Raft node.
fn check_meta_against_vote(vote: &Vote, meta: &SnapshotMeta) -> Result<(), ServiceError> {
    use openraft::vote::RaftLeaderId;

    let Some(last) = meta.last_log_id.as_ref() else {
        return Err(ServiceError::InvalidSnapshotStream(
            "the snapshot has no last log id",
        ));
    };
    let sender = vote.leader_id().to_committed();
    // Leader ids may be only partially ordered, so anything but "not newer" is rejected.
    let not_newer = matches!(
        last.committed_leader_id().partial_cmp(&sender),
        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
    );
    if !not_newer {
        return Err(ServiceError::InvalidSnapshotStream(
            "the snapshot's last log id is newer than the sender's vote",
        ));
    }
    Ok(())
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

    /// Metadata of a snapshot up to log index 5, written in term 3 by node 1.
    fn meta() -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(openraft::testing::log_id::<keyfleet_raft::TypeConfig>(
                3, 1, 5,
            )),
            ..SnapshotMeta::default()
        }
    }

    fn header_with(
        vote: Vote,
        meta: SnapshotMeta,
        total_len: u64,
    ) -> Result<SnapshotChunk, Status> {
        Ok(SnapshotChunk {
            kind: Some(Kind::Header(SnapshotHeader {
                vote: wire::encode(&vote, "Vote").expect("vote encodes"),
                meta: wire::encode(&meta, "SnapshotMeta").expect("meta encodes"),
                total_len,
            })),
        })
    }

    fn header_of_len(total_len: u64) -> Result<SnapshotChunk, Status> {
        let vote = Vote::new(3, 1);
        let meta = meta();

        Ok(SnapshotChunk {
            kind: Some(Kind::Header(SnapshotHeader {
                vote: wire::encode(&vote, "Vote").expect("vote encodes"),
                meta: wire::encode(&meta, "SnapshotMeta").expect("meta encodes"),
                total_len,
            })),
        })
    }

    fn header() -> Result<SnapshotChunk, Status> {
        header_of_len(image().len() as u64)
    }

    /// Returns a valid snapshot: the encoding of an empty vault image.
    fn image() -> Vec<u8> {
        keyfleet_raft::VaultImage::default()
            .encode()
            .expect("an empty image encodes")
    }

    async fn receive(
        items: Vec<Result<SnapshotChunk, Status>>,
    ) -> Result<(Vote, Snapshot), ServiceError> {
        receive_snapshot(stream::iter(items)).await
    }

    #[tokio::test]
    async fn chunks_are_concatenated() {
        let image = image();
        let (first, rest) = image.split_at(1);

        let (vote, snapshot) = receive(vec![header(), data(first), data(rest)])
            .await
            .expect("stream is valid");

        assert_eq!(vote, Vote::new(3, 1));
        assert_eq!(snapshot.snapshot, image);
    }

    #[tokio::test]
    async fn truncated_stream_is_rejected() {
        let image = image();
        let header = header_of_len(image.len() as u64 + 8);

        let result = receive(vec![header, data(&image)]).await;

        let error = result.expect_err("data ends early");
        assert!(error.to_string().contains("ended after"), "{error}");
    }

    #[tokio::test]
    async fn overlong_stream_is_rejected() {
        let image = image();

        let result = receive(vec![header(), data(&image), data(b"x")]).await;

        let error = result.expect_err("data runs past the header");
        assert!(error.to_string().contains("runs past"), "{error}");
    }

    #[tokio::test]
    async fn huge_announced_length_is_rejected() {
        let result = receive(vec![header_of_len(MAX_SNAPSHOT_BYTES + 1)]).await;

        let error = result.expect_err("length over the limit");
        assert!(error.to_string().contains("exceeds the limit"), "{error}");
    }

    #[tokio::test]
    async fn snapshot_newer_than_vote_is_rejected() {
        let len = image().len() as u64;
        let newer = SnapshotMeta {
            last_log_id: Some(openraft::testing::log_id::<keyfleet_raft::TypeConfig>(
                4, 1, 5,
            )),
            ..SnapshotMeta::default()
        };

        let newer_term = receive(vec![
            header_with(Vote::new(3, 1), newer, len),
            data(&image()),
        ])
        .await;
        let no_last = receive(vec![
            header_with(Vote::new(3, 1), SnapshotMeta::default(), len),
            data(&image()),
        ])
        .await;

        let newer_term = newer_term.expect_err("log id newer than the vote");
        let no_last = no_last.expect_err("no last log id");
        assert!(
            newer_term
                .to_string()
                .contains("newer than the sender's vote"),
            "{newer_term}"
        );
        assert!(no_last.to_string().contains("no last log id"), "{no_last}");
    }

    #[tokio::test]
    async fn undecodable_data_is_rejected() {
        let result = receive(vec![header_of_len(4), data(b"abcd")]).await;

        let error = result.expect_err("not a vault image");
        assert!(
            matches!(error, ServiceError::InvalidSnapshotData(_)),
            "{error:?}"
        );
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
        let result = receive(vec![header(), data(&image()[..1]), header()]).await;

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
                total_len: 0,
            })),
        });

        let result = receive(vec![garbage]).await;

        assert!(matches!(result, Err(ServiceError::InvalidRequest(_))));
    }
}
