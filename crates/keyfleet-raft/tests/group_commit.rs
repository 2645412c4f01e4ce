//! The log store's appends are readable as soon as `append` returns, and the flusher thread
//! reports every append flushed, so appends that queue up share a sync without one being lost.

mod common;

use common::consume_guess;
use common::log_id;
use common::normal_entry;
use keyfleet_raft::TypeConfig;
use keyfleet_raft::open_node_storage;
use openraft::RaftLogReader;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;

/// Appends issued back to back, without waiting for their flush reports.
const APPENDS: u64 = 50;

#[tokio::test]
async fn queued_appends_all_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log_store, state_machine) = open_node_storage(dir.path()).unwrap();
    let mut reports = Vec::new();

    for index in 1..=APPENDS {
        let (sender, receiver) = TypeConfig::oneshot();
        let entry = normal_entry(1, index, consume_guess(index as u8, "alice"));
        log_store
            .append(vec![entry], IOFlushed::signal(sender))
            .await
            .unwrap();

        let read = log_store
            .try_get_log_entries(index..index + 1)
            .await
            .unwrap();
        assert_eq!(read.len(), 1, "entry {index} unreadable after append");
        reports.push(receiver);
    }

    for (index, report) in (1..).zip(reports) {
        let flushed = report.await.expect("the flusher dropped a report");
        assert!(flushed.is_ok(), "append {index} not flushed: {flushed:?}");
    }
    drop(log_store);
    drop(state_machine);

    let (mut log_store, _state_machine) = open_node_storage(dir.path()).unwrap();
    let state = log_store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(1, APPENDS)));
}
