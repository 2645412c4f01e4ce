//! Everything the stores wrote is still there after the stores are dropped and reopened from
//! the same directory.

mod common;

use std::collections::BTreeSet;

use common::append;
use common::apply;
use common::blank_entry;
use common::consume_guess;
use common::lock;
use common::log_id;
use common::membership_entry;
use common::normal_entry;
use common::register;
use common::request_id;
use common::user;
use keyfleet_raft::UserStatus;
use keyfleet_raft::Vote;
use keyfleet_raft::open_node_storage;
use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;
use openraft::storage::RaftStateMachine;

#[tokio::test]
async fn log_store_reopen_keeps_vote_log_and_committed() {
    let dir = tempfile::tempdir().unwrap();
    let vote = Vote::new_committed(3, 1);

    {
        let (mut log_store, _state_machine) = open_node_storage(dir.path()).unwrap();

        log_store.save_vote(&vote).await.unwrap();

        let entries = vec![
            blank_entry(1, 1),
            membership_entry(1, 2, &[1, 2, 3]),
            normal_entry(2, 3, register(1, "alice", 5)),
            normal_entry(2, 4, consume_guess(2, "alice")),
            normal_entry(3, 5, consume_guess(3, "alice")),
            normal_entry(3, 6, consume_guess(4, "alice")),
        ];
        append(&mut log_store, entries).await.unwrap();

        log_store.save_committed(Some(log_id(3, 5))).await.unwrap();
        log_store.truncate_after(Some(log_id(3, 5))).await.unwrap();
        log_store.purge(log_id(1, 2)).await.unwrap();
    }

    let (mut log_store, _state_machine) = open_node_storage(dir.path()).unwrap();

    assert_eq!(log_store.read_vote().await.unwrap(), Some(vote));
    assert_eq!(
        log_store.read_committed().await.unwrap(),
        Some(log_id(3, 5))
    );

    let state = log_store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 2)));
    assert_eq!(state.last_log_id, Some(log_id(3, 5)));

    let entries = log_store.try_get_log_entries(0..100).await.unwrap();
    let log_ids: Vec<_> = entries.iter().map(|entry| entry.log_id).collect();
    assert_eq!(log_ids, vec![log_id(2, 3), log_id(2, 4), log_id(3, 5)]);
    assert_eq!(
        entries[0],
        normal_entry(2, 3, register(1, "alice", 5)),
        "entry payload changed across reopen"
    );
}

#[tokio::test]
async fn log_store_reopen_after_purging_everything() {
    let dir = tempfile::tempdir().unwrap();

    {
        let (mut log_store, _state_machine) = open_node_storage(dir.path()).unwrap();
        append(&mut log_store, vec![blank_entry(1, 1), blank_entry(1, 2)])
            .await
            .unwrap();
        log_store.purge(log_id(1, 2)).await.unwrap();
    }

    let (mut log_store, _state_machine) = open_node_storage(dir.path()).unwrap();
    let state = log_store.get_log_state().await.unwrap();

    assert_eq!(state.last_purged_log_id, Some(log_id(1, 2)));
    assert_eq!(state.last_log_id, Some(log_id(1, 2)));
    assert!(log_store.try_get_log_entries(..).await.unwrap().is_empty());
}

#[tokio::test]
async fn state_machine_reopen_keeps_counters_and_dedup() {
    let dir = tempfile::tempdir().unwrap();
    let entries = vec![
        blank_entry(1, 1),
        membership_entry(1, 2, &[1, 2, 3]),
        normal_entry(1, 3, register(1, "alice", 3)),
        normal_entry(1, 4, consume_guess(2, "alice")),
        normal_entry(1, 5, consume_guess(3, "alice")),
        normal_entry(1, 6, register(4, "bob", 10)),
        normal_entry(1, 7, lock(5, "bob")),
    ];

    let image_before = {
        let (_log_store, mut state_machine) = open_node_storage(dir.path()).unwrap();
        apply(&mut state_machine, entries).await.unwrap();
        state_machine.vault_image().await.unwrap()
    };

    let (_log_store, mut state_machine) = open_node_storage(dir.path()).unwrap();

    let (last_applied, membership) = state_machine.applied_state().await.unwrap();
    assert_eq!(last_applied, Some(log_id(1, 7)));
    assert_eq!(*membership.log_id(), Some(log_id(1, 2)));
    assert_eq!(
        membership.voter_ids().collect::<BTreeSet<_>>(),
        BTreeSet::from([1, 2, 3])
    );

    let image_after = state_machine.vault_image().await.unwrap();
    assert_eq!(image_after, image_before);
    assert_eq!(image_after.dedup.len(), 5);

    let alice = state_machine.user(&user("alice")).await.unwrap().unwrap();
    assert_eq!(alice.guesses_used, 2);
    assert_eq!(alice.version, 5);

    let bob = state_machine.user(&user("bob")).await.unwrap().unwrap();
    assert_eq!(bob.status, UserStatus::Locked);
    assert!(bob.password_file.is_empty());
    assert!(bob.sealed_secret.is_empty());
}

#[tokio::test]
async fn state_machine_reopen_still_rejects_retry() {
    let dir = tempfile::tempdir().unwrap();

    {
        let (_log_store, mut state_machine) = open_node_storage(dir.path()).unwrap();
        let entries = vec![
            normal_entry(1, 1, register(1, "alice", 3)),
            normal_entry(1, 2, consume_guess(2, "alice")),
        ];
        apply(&mut state_machine, entries).await.unwrap();
    }

    let (_log_store, mut state_machine) = open_node_storage(dir.path()).unwrap();

    let retry = normal_entry(1, 3, consume_guess(2, "alice"));
    apply(&mut state_machine, vec![retry]).await.unwrap();

    let alice = state_machine.user(&user("alice")).await.unwrap().unwrap();
    assert_eq!(alice.guesses_used, 1, "a retried guess was counted twice");
    assert_eq!(alice.version, 2);

    let image = state_machine.vault_image().await.unwrap();
    let remembered: Vec<_> = image.dedup.iter().map(|entry| entry.request_id).collect();
    assert_eq!(remembered, vec![request_id(1), request_id(2)]);

    let (last_applied, _) = state_machine.applied_state().await.unwrap();
    assert_eq!(last_applied, Some(log_id(1, 3)));
}
