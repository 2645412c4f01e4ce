//! A snapshot built on one state machine and installed on another gives the same state, and the
//! current snapshot survives a reopen.

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
use keyfleet_raft::SNAPSHOT_FORMAT_VERSION;
use keyfleet_raft::StateMachineStore;
use keyfleet_raft::open_node_storage;
use openraft::RaftSnapshotBuilder;
use openraft::storage::RaftStateMachine;

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

async fn leader_with_state(dir: &std::path::Path) -> StateMachineStore {
    let (_log_store, mut state_machine) = open_node_storage(dir).unwrap();
    apply(&mut state_machine, leader_entries()).await.unwrap();
    state_machine
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
    assert_eq!(snapshot.snapshot[0], SNAPSHOT_FORMAT_VERSION);

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
    assert_eq!(current.snapshot, snapshot.snapshot);
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
    assert_eq!(current.snapshot, built.snapshot);

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

    let mut snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    snapshot.snapshot[0] = SNAPSHOT_FORMAT_VERSION + 1;

    let result = follower
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await;

    let error = result.expect_err("a snapshot of an unknown format was installed");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(follower.vault_image().await.unwrap(), before);
    assert_eq!(
        follower.applied_state().await.unwrap().0,
        Some(log_id(1, 1))
    );
    assert!(follower.get_current_snapshot().await.unwrap().is_none());
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
