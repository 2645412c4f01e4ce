//! A snapshot built on one state machine and installed on another gives the same state, the
//! current snapshot survives a reopen, invalid data changes nothing, and no snapshot file but the
//! current one stays on disk.

mod common;

use common::apply;
use common::blank_entry;
use common::consume_guess;
use common::lock;
use common::log_id;
use common::membership_entry;
use common::normal_entry;
use common::publish_bundle;
use common::register;
use common::user;
use keyfleet_raft::SNAPSHOT_DIR_NAME;
use keyfleet_raft::SNAPSHOT_FORMAT_VERSION;
use keyfleet_raft::STATE_MACHINE_FILE_NAME;
use keyfleet_raft::SnapshotData;
use keyfleet_raft::StateMachineStore;
use keyfleet_raft::open_node_storage;
use openraft::RaftSnapshotBuilder;
use openraft::storage::RaftStateMachine;
use std::path::Path;
use std::path::PathBuf;

fn leader_entries() -> Vec<keyfleet_raft::Entry> {
    vec![
        blank_entry(1, 1),
        membership_entry(1, 2, &[1, 2, 3]),
        normal_entry(1, 3, register(1, "alice", 3)),
        normal_entry(1, 4, consume_guess(2, "alice")),
        normal_entry(1, 5, consume_guess(3, "alice")),
        normal_entry(1, 6, register(4, "bob", 10)),
        normal_entry(1, 7, lock(5, "bob")),
        normal_entry(1, 8, consume_guess(2, "alice")),
    ]
}

async fn leader_with_state(dir: &Path) -> StateMachineStore {
    let (_log_store, mut state_machine) = open_node_storage(dir).unwrap();
    apply(&mut state_machine, leader_entries()).await.unwrap();
    state_machine
}

/// Reads the whole snapshot data; the snapshots in these tests are small.
fn bytes_of(data: &SnapshotData) -> Vec<u8> {
    let len = usize::try_from(data.len()).unwrap();
    data.read_chunk(0, len).unwrap()
}

/// Returns the names of the files in the snapshot directory under `data_dir`, sorted.
fn snapshot_files(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join(SNAPSHOT_DIR_NAME))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Writes `bytes` to a new file under `dir` and opens it as snapshot data.
fn data_from_bytes(dir: &Path, name: &str, bytes: &[u8]) -> (PathBuf, SnapshotData) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let data = SnapshotData::open(&path).unwrap();
    (path, data)
}

#[tokio::test]
async fn snapshot_install_gives_identical_state() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = leader_with_state(leader_dir.path()).await;
    let (_follower_log, mut follower) = open_node_storage(follower_dir.path()).unwrap();

    let mut builder = leader.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.unwrap();
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 8)));
    assert_eq!(bytes_of(&snapshot.snapshot)[0], SNAPSHOT_FORMAT_VERSION);
    assert_eq!(
        snapshot.snapshot.validate().unwrap(),
        7,
        "2 users and 5 dedup entries"
    );

    follower
        .install_snapshot(&snapshot.meta, snapshot.snapshot.clone())
        .await
        .unwrap();

    let leader_image = leader.vault_image().await.unwrap();
    let follower_image = follower.vault_image().await.unwrap();
    assert_eq!(follower_image, leader_image);
    assert_eq!(follower_image.dedup.len(), 5);
    assert_eq!(follower_image.users.len(), 2);

    assert_eq!(
        follower.applied_state().await.unwrap(),
        leader.applied_state().await.unwrap()
    );

    let current = follower.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snapshot.meta);
    assert_eq!(bytes_of(&current.snapshot), bytes_of(&snapshot.snapshot));
    assert_eq!(snapshot_files(follower_dir.path()).len(), 1);
}

#[tokio::test]
async fn snapshot_install_carries_dedup_table() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = leader_with_state(leader_dir.path()).await;
    let (_follower_log, mut follower) = open_node_storage(follower_dir.path()).unwrap();

    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    follower
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();

    let retry = normal_entry(1, 9, consume_guess(3, "alice"));
    apply(&mut follower, vec![retry]).await.unwrap();

    let alice = follower.user(&user("alice")).await.unwrap().unwrap();
    assert_eq!(alice.guesses_used, 2, "a retry after install was counted");
}

#[tokio::test]
async fn snapshot_install_replaces_existing_state() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = leader_with_state(leader_dir.path()).await;
    let (_follower_log, mut follower) = open_node_storage(follower_dir.path()).unwrap();

    let stale = vec![
        normal_entry(1, 1, register(90, "mallory", 3)),
        normal_entry(1, 2, register(91, "alice", 100)),
    ];
    apply(&mut follower, stale).await.unwrap();

    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    follower
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();

    assert_eq!(follower.user(&user("mallory")).await.unwrap(), None);

    let alice = follower.user(&user("alice")).await.unwrap().unwrap();
    assert_eq!(alice.max_guesses, 3);

    let image = follower.vault_image().await.unwrap();
    assert_eq!(image, leader.vault_image().await.unwrap());
}

#[tokio::test]
async fn current_snapshot_survives_reopen() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = leader_with_state(leader_dir.path()).await;

    let built = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();

    {
        let (_follower_log, mut follower) = open_node_storage(follower_dir.path()).unwrap();
        follower
            .install_snapshot(&built.meta, built.snapshot.clone())
            .await
            .unwrap();
    }
    drop(leader);

    let (_follower_log, mut follower) = open_node_storage(follower_dir.path()).unwrap();
    let current = follower.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, built.meta);
    assert_eq!(bytes_of(&current.snapshot), bytes_of(&built.snapshot));

    let (_leader_log, mut leader) = open_node_storage(leader_dir.path()).unwrap();
    let current = leader.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(
        current.meta, built.meta,
        "the built snapshot was not stored"
    );
}

#[tokio::test]
async fn snapshot_with_unknown_format_rejected() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = leader_with_state(leader_dir.path()).await;
    let (_follower_log, mut follower) = open_node_storage(follower_dir.path()).unwrap();
    apply(
        &mut follower,
        vec![normal_entry(1, 1, register(90, "carol", 3))],
    )
    .await
    .unwrap();
    let before = follower.vault_image().await.unwrap();

    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut bytes = bytes_of(&snapshot.snapshot);
    bytes[0] = SNAPSHOT_FORMAT_VERSION + 1;
    let (_, data) = data_from_bytes(leader_dir.path(), "unknown-format", &bytes);

    let result = follower.install_snapshot(&snapshot.meta, data).await;

    let error = result.expect_err("a snapshot of an unknown format was installed");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(follower.vault_image().await.unwrap(), before);
    assert_eq!(
        follower.applied_state().await.unwrap().0,
        Some(log_id(1, 1))
    );
    assert!(follower.get_current_snapshot().await.unwrap().is_none());
    assert_eq!(snapshot_files(follower_dir.path()), Vec::<String>::new());
    assert!(
        !follower_dir
            .path()
            .join(format!("{STATE_MACHINE_FILE_NAME}.install"))
            .exists(),
        "a failed install left its fresh state machine file"
    );
}

#[tokio::test]
async fn snapshot_carries_the_bundle() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = leader_with_state(leader_dir.path()).await;
    apply(
        &mut leader,
        vec![normal_entry(1, 9, publish_bundle(9, 4, b"{\"epoch\":4}"))],
    )
    .await
    .unwrap();
    let (follower_log, mut follower) = open_node_storage(follower_dir.path()).unwrap();

    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    follower
        .install_snapshot(&snapshot.meta, snapshot.snapshot.clone())
        .await
        .unwrap();

    let bundle = follower
        .bundle()
        .await
        .unwrap()
        .expect("the installed bundle");
    assert_eq!(bundle.epoch, 4);
    assert_eq!(bundle.bundle_json, b"{\"epoch\":4}");

    // The bundle survives a reopen of the follower's state machine file.
    drop(follower);
    drop(follower_log);
    let (_log, reopened) = open_node_storage(follower_dir.path()).unwrap();
    assert_eq!(
        reopened.bundle().await.unwrap().map(|bundle| bundle.epoch),
        Some(4)
    );
}

#[tokio::test]
async fn corrupt_or_truncated_snapshot_changes_nothing() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = leader_with_state(leader_dir.path()).await;
    let (_follower_log, mut follower) = open_node_storage(follower_dir.path()).unwrap();
    apply(
        &mut follower,
        vec![normal_entry(1, 1, register(90, "carol", 3))],
    )
    .await
    .unwrap();
    let before = follower.vault_image().await.unwrap();
    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let bytes = bytes_of(&snapshot.snapshot);

    let mut flipped_last = bytes.clone();
    *flipped_last.last_mut().unwrap() ^= 0x01;
    let mut flipped_middle = bytes.clone();
    flipped_middle[bytes.len() / 2] ^= 0x01;
    let mut extended = bytes.clone();
    extended.push(0);
    let cases = [
        ("empty", Vec::new()),
        ("version only", bytes[..1].to_vec()),
        ("cut in a record", bytes[..bytes.len() / 2].to_vec()),
        ("cut in the digest", bytes[..bytes.len() - 1].to_vec()),
        ("flipped digest bit", flipped_last),
        ("flipped record bit", flipped_middle),
        ("trailing byte", extended),
    ];

    for (case, corrupt) in cases {
        let (path, data) = data_from_bytes(leader_dir.path(), "corrupt", &corrupt);
        assert!(data.validate().is_err(), "{case}: validation passed");

        let result = follower.install_snapshot(&snapshot.meta, data).await;

        let error = result.expect_err(case);
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::InvalidData,
            "{case}: {error}"
        );
        assert_eq!(follower.vault_image().await.unwrap(), before, "{case}");
        assert!(
            follower.get_current_snapshot().await.unwrap().is_none(),
            "{case}"
        );
        assert_eq!(
            snapshot_files(follower_dir.path()),
            Vec::<String>::new(),
            "{case}"
        );
        std::fs::remove_file(path).unwrap();
    }
}

#[tokio::test]
async fn newer_snapshot_removes_older_file() {
    let leader_dir = tempfile::tempdir().unwrap();
    let mut leader = leader_with_state(leader_dir.path()).await;

    let first = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let first_files = snapshot_files(leader_dir.path());
    apply(
        &mut leader,
        vec![normal_entry(1, 9, register(9, "dave", 3))],
    )
    .await
    .unwrap();
    let second = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let second_files = snapshot_files(leader_dir.path());

    assert_eq!(first_files.len(), 1, "{first_files:?}");
    assert_eq!(second_files.len(), 1, "{second_files:?}");
    assert_ne!(
        first_files, second_files,
        "the second build kept the first file"
    );
    assert_eq!(second.meta.last_log_id, Some(log_id(1, 9)));
    // The replaced snapshot's handle still reads its data after its file name is gone.
    assert_eq!(first.snapshot.validate().unwrap(), 7);

    let follower_dir = tempfile::tempdir().unwrap();
    let (_follower_log, mut follower) = open_node_storage(follower_dir.path()).unwrap();
    apply(&mut follower, leader_entries()).await.unwrap();
    follower
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let own_files = snapshot_files(follower_dir.path());
    follower
        .install_snapshot(&second.meta, second.snapshot.clone())
        .await
        .unwrap();
    let installed_files = snapshot_files(follower_dir.path());

    assert_eq!(own_files.len(), 1, "{own_files:?}");
    assert_eq!(installed_files.len(), 1, "{installed_files:?}");
    assert_ne!(
        own_files, installed_files,
        "the install kept the older file"
    );
}

#[tokio::test]
async fn open_removes_stale_snapshot_files() {
    let dir = tempfile::tempdir().unwrap();
    let built = {
        let mut leader = leader_with_state(dir.path()).await;
        leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap()
    };
    let current_files = snapshot_files(dir.path());
    let snapshot_dir = dir.path().join(SNAPSHOT_DIR_NAME);
    // What a crash can leave: a partial build, a partial receive, an older snapshot file, and
    // the fresh state machine file of an interrupted install.
    std::fs::write(snapshot_dir.join("build-1-2-3.tmp"), b"partial").unwrap();
    std::fs::write(snapshot_dir.join("incoming-1-2-3.tmp"), b"partial").unwrap();
    std::fs::write(
        snapshot_dir.join("snapshot-00000000000000000003-1-2-3.snap"),
        b"old",
    )
    .unwrap();
    std::fs::write(snapshot_dir.join("operator-notes.txt"), b"kept").unwrap();
    let install_file = dir
        .path()
        .join(format!("{STATE_MACHINE_FILE_NAME}.install"));
    std::fs::write(&install_file, b"partial").unwrap();

    let (_log, mut reopened) = open_node_storage(dir.path()).unwrap();

    let mut expected = current_files.clone();
    expected.push("operator-notes.txt".to_owned());
    expected.sort();
    assert_eq!(snapshot_files(dir.path()), expected);
    assert!(
        !install_file.exists(),
        "the interrupted install's file is still there"
    );
    let current = reopened.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, built.meta);
    assert_eq!(bytes_of(&current.snapshot), bytes_of(&built.snapshot));
}

#[tokio::test]
async fn compact_removes_unreferenced_snapshot_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = leader_with_state(dir.path()).await;
    leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let current_files = snapshot_files(dir.path());
    let stray = dir
        .path()
        .join(SNAPSHOT_DIR_NAME)
        .join("snapshot-00000000000000000002-1-2-3.snap");
    std::fs::write(&stray, b"older snapshot with erased records").unwrap();

    leader.compact(8).await.unwrap();

    assert_eq!(snapshot_files(dir.path()), current_files);
    assert_eq!(leader.erasure_to_compact().await.unwrap(), 0);
    assert!(leader.get_current_snapshot().await.unwrap().is_some());
}

#[tokio::test]
async fn snapshot_stored_in_redb_is_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(leader_with_state(dir.path()).await);
    {
        // An earlier build kept the current snapshot's metadata and data in this table.
        let db = redb::Database::open(dir.path().join(STATE_MACHINE_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let definition: redb::TableDefinition<&str, &[u8]> =
                redb::TableDefinition::new("raft_snapshot");
            let mut table = txn.open_table(definition).unwrap();
            let meta = keyfleet_raft::SnapshotMeta {
                last_log_id: Some(log_id(1, 8)),
                ..keyfleet_raft::SnapshotMeta::default()
            };
            let meta = postcard::to_stdvec(&meta).unwrap();
            table.insert("meta", meta.as_slice()).unwrap();
            table.insert("data", [3u8, 0, 0, 0].as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }

    let (_log, mut reopened) = open_node_storage(dir.path()).unwrap();

    assert!(reopened.get_current_snapshot().await.unwrap().is_none());
    assert_eq!(
        reopened.applied_state().await.unwrap().0,
        Some(log_id(1, 8)),
        "the applied state was lost with the snapshot"
    );
    let built = reopened
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(built.meta.last_log_id, Some(log_id(1, 8)));
}

/// Builds a snapshot in `dir`, lets `damage` change its file, reopens the store and returns
/// whether it has a current snapshot and the files left in the snapshot directory.
async fn reopen_after_damage(damage: impl FnOnce(&Path)) -> (bool, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut leader = leader_with_state(dir.path()).await;
        leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    }
    let files = snapshot_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    damage(&dir.path().join(SNAPSHOT_DIR_NAME).join(&files[0]));

    let (_log, mut reopened) = open_node_storage(dir.path()).unwrap();

    let current = reopened.get_current_snapshot().await.unwrap();
    (current.is_some(), snapshot_files(dir.path()))
}

#[tokio::test]
async fn open_drops_missing_snapshot_file() {
    let (has_current, files) =
        reopen_after_damage(|file| std::fs::remove_file(file).unwrap()).await;

    assert!(!has_current, "a snapshot without its file is still current");
    assert!(files.is_empty(), "{files:?}");
}

#[tokio::test]
async fn open_drops_damaged_snapshot_file() {
    let (has_current, files) = reopen_after_damage(|file| {
        let mut bytes = std::fs::read(file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(file, bytes).unwrap();
    })
    .await;

    assert!(!has_current, "a damaged snapshot is still current");
    assert!(files.is_empty(), "{files:?}");
}

#[tokio::test]
async fn open_drops_truncated_snapshot_file() {
    let (has_current, files) = reopen_after_damage(|file| {
        let length = std::fs::metadata(file).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .unwrap()
            .set_len(length / 2)
            .unwrap();
    })
    .await;

    assert!(!has_current, "a truncated snapshot is still current");
    assert!(files.is_empty(), "{files:?}");
}
