//! What a store committed survives the process aborting right after the commit, with no
//! destructor run, so a commit that stayed in this process's memory would be lost here.
//!
//! NOTE: an abort keeps the kernel's page cache, so this test cannot tell an fsynced commit from
//! one that was only written to the file. It passes with `Durability::None` too (checked with
//! redb 5.0.0). Power-loss durability rests on `Durability::Immediate` in `redb_io.rs`.

mod common;

use std::process::Command;

use common::append;
use common::apply;
use common::consume_guess;
use common::log_id;
use common::normal_entry;
use common::register;
use common::user;
use keyfleet_raft::Vote;
use keyfleet_raft::open_node_storage;
use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;
use openraft::storage::RaftStateMachine;

/// Environment variable that makes [`crash_writer_child`] write to the named directory and abort.
const CHILD_DIR_VAR: &str = "KEYFLEET_RAFT_CRASH_CHILD_DIR";

/// Child process body: writes a vote, log entries and applied guesses, then aborts. Without
/// [`CHILD_DIR_VAR`] set, as in a normal test run, it returns at once.
#[test]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_VAR) else {
        return;
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    runtime.block_on(async {
        let (mut log_store, mut state_machine) = open_node_storage(dir.as_ref()).unwrap();
        let entries = vec![
            normal_entry(2, 1, register(1, "alice", 5)),
            normal_entry(2, 2, consume_guess(2, "alice")),
            normal_entry(2, 3, consume_guess(3, "alice")),
        ];

        log_store
            .save_vote(&Vote::new_committed(2, 1))
            .await
            .unwrap();
        append(&mut log_store, entries.clone()).await.unwrap();
        log_store.save_committed(Some(log_id(2, 3))).await.unwrap();
        apply(&mut state_machine, entries).await.unwrap();
    });

    std::process::abort();
}

#[tokio::test]
async fn abort_after_commit_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();

    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir.path())
        .status()
        .unwrap();
    assert!(!status.success(), "the child process did not abort");

    let (mut log_store, mut state_machine) = open_node_storage(dir.path()).unwrap();

    assert_eq!(
        log_store.read_vote().await.unwrap(),
        Some(Vote::new_committed(2, 1))
    );
    assert_eq!(
        log_store.read_committed().await.unwrap(),
        Some(log_id(2, 3))
    );
    assert_eq!(
        log_store.get_log_state().await.unwrap().last_log_id,
        Some(log_id(2, 3))
    );

    let (last_applied, _) = state_machine.applied_state().await.unwrap();
    assert_eq!(last_applied, Some(log_id(2, 3)));

    let alice = state_machine.user(&user("alice")).await.unwrap().unwrap();
    assert_eq!(
        alice.guesses_used, 2,
        "counted guesses were lost in the crash"
    );
}
