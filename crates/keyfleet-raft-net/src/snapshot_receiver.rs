use futures_util::Stream;
use futures_util::StreamExt;
use keyfleet_raft::IncomingSnapshotError;
use keyfleet_raft::SnapshotData;
use keyfleet_raft::SnapshotDir;
use keyfleet_raft::SnapshotMeta;
use keyfleet_raft::Vote;
use tonic::Status;

use crate::proto::SnapshotChunk;
use crate::proto::snapshot_chunk::Kind;
use crate::service_error::ServiceError;
use crate::wire;

/// Largest snapshot a node accepts, in bytes: 64 GiB.
///
/// The snapshot is written to a file as it arrives and installed in a streaming pass, so its
/// size does not bound the node's memory. The limit bounds the disk space that one stream may
/// claim, and the free-space check of [`SnapshotDir::create_incoming`] rejects a smaller
/// snapshot that the disk cannot hold.
pub const MAX_SNAPSHOT_BYTES: u64 = 64 << 30;

/// The header of an `InstallSnapshot` stream.
#[derive(Debug)]
pub(crate) struct IncomingHeader {
    /// The leader's vote.
    pub(crate) vote: Vote,
    /// The snapshot's metadata.
    pub(crate) meta: SnapshotMeta,
    /// Length of the snapshot data in bytes.
    pub(crate) total_len: u64,
}

/// Reads the first message of an `InstallSnapshot` stream, which must be the header, and checks
/// the snapshot's metadata against the vote and its length against [`MAX_SNAPSHOT_BYTES`].
pub(crate) async fn receive_header<S>(stream: &mut S) -> Result<IncomingHeader, ServiceError>
where
    S: Stream<Item = Result<SnapshotChunk, Status>> + Unpin,
{
    let header = match next_kind(stream).await? {
        Some(Kind::Header(header)) => header,
        Some(Kind::Data(_)) => {
            return Err(ServiceError::InvalidSnapshotStream(
                "the first message is data, expected the header",
            ));
        }
        None => return Err(ServiceError::InvalidSnapshotStream("the stream is empty")),
    };

    let (vote, meta) = decode_header(&header.vote, &header.meta)?;
    check_meta_against_vote(&vote, &meta)?;
    if header.total_len > MAX_SNAPSHOT_BYTES {
        return Err(ServiceError::InvalidSnapshotLength(format!(
            "{} bytes exceeds the limit of {MAX_SNAPSHOT_BYTES}",
            header.total_len
        )));
    }

    Ok(IncomingHeader {
        vote,
        meta,
        total_len: header.total_len,
    })
}

/// Reads the data chunks that follow the header into a temporary file in `snapshots`, and
/// returns the data and its number of records.
///
/// The data must add up to `total_len` bytes and pass a streaming check of its layout, record
/// order and digest. Data that fails is rejected here as invalid input, before it reaches Raft,
/// because a snapshot that fails to install stops the Raft node.
pub(crate) async fn receive_data<S>(
    stream: &mut S,
    total_len: u64,
    snapshots: &SnapshotDir,
) -> Result<(SnapshotData, u64), ServiceError>
where
    S: Stream<Item = Result<SnapshotChunk, Status>> + Unpin,
{
    let dir = snapshots.clone();
    let mut incoming = run_blocking(move || dir.create_incoming(total_len)).await?;

    while let Some(kind) = next_kind(stream).await? {
        let chunk = match kind {
            Kind::Data(chunk) => chunk,
            Kind::Header(_) => {
                return Err(ServiceError::InvalidSnapshotStream(
                    "a second header follows the first",
                ));
            }
        };
        incoming = run_blocking(move || {
            incoming.write(&chunk)?;
            Ok(incoming)
        })
        .await?;
    }

    run_blocking(move || incoming.finish()).await
}

/// Runs blocking file work of an incoming snapshot on tokio's blocking thread pool.
async fn run_blocking<T, F>(work: F) -> Result<T, ServiceError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, IncomingSnapshotError> + Send + 'static,
{
    let result = tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ServiceError::SnapshotStorage(error.to_string()))?;

    result.map_err(ServiceError::from)
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
    use openraft::RaftSnapshotBuilder;
    use openraft::storage::RaftStateMachine;

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
        header_with(Vote::new(3, 1), meta(), total_len)
    }

    /// A valid snapshot, built by a state machine with an empty vault, and the directory that
    /// receives it.
    struct Fixture {
        snapshot: Vec<u8>,
        receiver: SnapshotDir,
        _dirs: (tempfile::TempDir, tempfile::TempDir),
    }

    async fn fixture() -> Fixture {
        let source = tempfile::tempdir().expect("create a directory");
        let target = tempfile::tempdir().expect("create a directory");
        let (_log, mut state_machine) =
            keyfleet_raft::open_node_storage(source.path()).expect("open the stores");
        let built = state_machine
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("an empty vault builds");
        let len = usize::try_from(built.snapshot.len()).expect("a small snapshot");

        Fixture {
            snapshot: built
                .snapshot
                .read_chunk(0, len)
                .expect("read the snapshot"),
            receiver: SnapshotDir::open(target.path()).expect("open the directory"),
            _dirs: (source, target),
        }
    }

    impl Fixture {
        fn header(&self) -> Result<SnapshotChunk, Status> {
            header_of_len(self.snapshot.len() as u64)
        }

        async fn receive(
            &self,
            items: Vec<Result<SnapshotChunk, Status>>,
        ) -> Result<(IncomingHeader, SnapshotData), ServiceError> {
            let mut stream = stream::iter(items);
            let header = receive_header(&mut stream).await?;
            let (data, _) = receive_data(&mut stream, header.total_len, &self.receiver).await?;
            Ok((header, data))
        }

        /// Returns the files left in the receiving directory.
        fn leftover_files(&self) -> Vec<std::path::PathBuf> {
            std::fs::read_dir(self.receiver.path())
                .expect("read the directory")
                .map(|entry| entry.expect("a directory entry").path())
                .collect()
        }
    }

    #[tokio::test]
    async fn chunks_are_concatenated() {
        let fixture = fixture().await;
        let (first, rest) = fixture.snapshot.split_at(1);

        let (header, received) = fixture
            .receive(vec![fixture.header(), data(first), data(rest)])
            .await
            .expect("stream is valid");

        assert_eq!(header.vote, Vote::new(3, 1));
        let len = usize::try_from(received.len()).expect("a small snapshot");
        assert_eq!(received.read_chunk(0, len).expect("read"), fixture.snapshot);
        assert_eq!(fixture.leftover_files(), Vec::<std::path::PathBuf>::new());
    }

    #[tokio::test]
    async fn truncated_stream_is_rejected() {
        let fixture = fixture().await;
        let header = header_of_len(fixture.snapshot.len() as u64 + 8);

        let result = fixture.receive(vec![header, data(&fixture.snapshot)]).await;

        let error = result.expect_err("data ends early");
        assert!(error.to_string().contains("ended after"), "{error}");
        assert_eq!(fixture.leftover_files(), Vec::<std::path::PathBuf>::new());
    }

    #[tokio::test]
    async fn truncated_data_is_rejected() {
        let fixture = fixture().await;
        let cut = &fixture.snapshot[..fixture.snapshot.len() - 1];

        let result = fixture
            .receive(vec![header_of_len(cut.len() as u64), data(cut)])
            .await;

        let error = result.expect_err("the digest is cut off");
        assert!(
            matches!(error, ServiceError::InvalidSnapshotData(_)),
            "{error:?}"
        );
        assert_eq!(fixture.leftover_files(), Vec::<std::path::PathBuf>::new());
    }

    #[tokio::test]
    async fn corrupt_data_is_rejected() {
        let fixture = fixture().await;

        for index in 0..fixture.snapshot.len() {
            let mut corrupt = fixture.snapshot.clone();
            corrupt[index] ^= 0x01;

            let result = fixture
                .receive(vec![fixture.header(), data(&corrupt)])
                .await;

            let error = result.expect_err("a flipped bit passed");
            assert!(
                matches!(error, ServiceError::InvalidSnapshotData(_)),
                "byte {index}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn overlong_stream_is_rejected() {
        let fixture = fixture().await;

        let result = fixture
            .receive(vec![fixture.header(), data(&fixture.snapshot), data(b"x")])
            .await;

        let error = result.expect_err("data runs past the header");
        assert!(error.to_string().contains("runs past"), "{error}");
    }

    #[tokio::test]
    async fn huge_announced_length_is_rejected() {
        let fixture = fixture().await;

        let result = fixture
            .receive(vec![header_of_len(MAX_SNAPSHOT_BYTES + 1)])
            .await;

        let error = result.expect_err("length over the limit");
        assert!(error.to_string().contains("exceeds the limit"), "{error}");
    }

    #[test]
    fn no_space_backs_the_sender_off() {
        let error = ServiceError::from(IncomingSnapshotError::NoSpace {
            total_len: 1,
            required: 3,
            available: 2,
        });

        assert!(
            matches!(error, ServiceError::SnapshotStorage(_)),
            "{error:?}"
        );
        assert_eq!(error.to_status().code(), tonic::Code::Unavailable);
    }

    #[tokio::test]
    async fn snapshot_newer_than_vote_is_rejected() {
        let fixture = fixture().await;
        let len = fixture.snapshot.len() as u64;
        let newer = SnapshotMeta {
            last_log_id: Some(openraft::testing::log_id::<keyfleet_raft::TypeConfig>(
                4, 1, 5,
            )),
            ..SnapshotMeta::default()
        };

        let newer_term = fixture
            .receive(vec![
                header_with(Vote::new(3, 1), newer, len),
                data(&fixture.snapshot),
            ])
            .await;
        let no_last = fixture
            .receive(vec![
                header_with(Vote::new(3, 1), SnapshotMeta::default(), len),
                data(&fixture.snapshot),
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
        let fixture = fixture().await;

        let result = fixture.receive(vec![header_of_len(4), data(b"abcd")]).await;

        let error = result.expect_err("not snapshot data");
        assert!(
            matches!(error, ServiceError::InvalidSnapshotData(_)),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn empty_stream_is_rejected() {
        let fixture = fixture().await;

        let result = fixture.receive(Vec::new()).await;

        assert!(matches!(
            result,
            Err(ServiceError::InvalidSnapshotStream(_))
        ));
    }

    #[tokio::test]
    async fn data_before_header_is_rejected() {
        let fixture = fixture().await;

        let result = fixture.receive(vec![data(b"ab"), fixture.header()]).await;

        assert!(matches!(
            result,
            Err(ServiceError::InvalidSnapshotStream(_))
        ));
    }

    #[tokio::test]
    async fn second_header_is_rejected() {
        let fixture = fixture().await;

        let result = fixture
            .receive(vec![
                fixture.header(),
                data(&fixture.snapshot[..1]),
                fixture.header(),
            ])
            .await;

        assert!(matches!(
            result,
            Err(ServiceError::InvalidSnapshotStream(_))
        ));
    }

    #[tokio::test]
    async fn stream_error_is_kept() {
        let fixture = fixture().await;

        let result = fixture
            .receive(vec![
                fixture.header(),
                Err(Status::cancelled("client gone")),
            ])
            .await;

        let status = result.expect_err("stream failed").to_status();
        assert_eq!(status.code(), tonic::Code::Cancelled);
    }

    #[tokio::test]
    async fn garbage_header_is_rejected() {
        let fixture = fixture().await;
        let garbage = Ok(SnapshotChunk {
            kind: Some(Kind::Header(SnapshotHeader {
                vote: vec![0xff; 3],
                meta: Vec::new(),
                total_len: 0,
            })),
        });

        let result = fixture.receive(vec![garbage]).await;

        assert!(matches!(result, Err(ServiceError::InvalidRequest(_))));
    }
}
