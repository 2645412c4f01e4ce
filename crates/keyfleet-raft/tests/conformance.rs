//! openraft's storage conformance suite, run against the redb log store and state machine.

use keyfleet_raft::LogStore;
use keyfleet_raft::StateMachineStore;
use keyfleet_raft::TypeConfig;
use keyfleet_raft::open_node_storage;
use openraft::ErrorSubject;
use openraft::ErrorVerb;
use openraft::StorageError;
use openraft::testing::log::StoreBuilder;
use openraft::testing::log::Suite;
use tempfile::TempDir;

/// Builds a fresh store pair in its own temporary directory for every suite case.
struct TempDirStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for TempDirStoreBuilder {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().map_err(store_error)?;

        let (log_store, state_machine) =
            open_node_storage(dir.path()).map_err(|error| store_error(error.into()))?;

        Ok((dir, log_store, state_machine))
    }
}

fn store_error(error: std::io::Error) -> StorageError<TypeConfig> {
    StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Write, error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_suite_test_all() {
    let result = Suite::test_all(TempDirStoreBuilder).await;

    assert!(result.is_ok(), "conformance suite failed: {result:?}");
}
