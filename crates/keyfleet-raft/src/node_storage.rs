use std::path::Path;

use crate::error::StoreError;
use crate::log_store::LogStore;
use crate::state_machine::StateMachineStore;

/// Name of the Raft log file inside a node's data directory.
pub const LOG_FILE_NAME: &str = "raft-log.redb";

/// Name of the state machine file inside a node's data directory.
pub const STATE_MACHINE_FILE_NAME: &str = "state-machine.redb";

/// Name of the directory of snapshot files inside a node's data directory, which
/// [`crate::snapshot_dir_path`] derives from [`STATE_MACHINE_FILE_NAME`].
pub const SNAPSHOT_DIR_NAME: &str = "state-machine.snapshots";

/// Opens, or creates, the log store and the state machine of a node in `data_dir`.
pub fn open_node_storage(data_dir: &Path) -> Result<(LogStore, StateMachineStore), StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDirectory {
        path: data_dir.to_owned(),
        source,
    })?;

    let log_store = LogStore::open(&data_dir.join(LOG_FILE_NAME))?;
    let state_machine = StateMachineStore::open(&data_dir.join(STATE_MACHINE_FILE_NAME))?;

    Ok((log_store, state_machine))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_dir_name_matches_derived_path() {
        let derived = crate::snapshot_dir_path(Path::new(STATE_MACHINE_FILE_NAME));

        assert_eq!(derived, Path::new(SNAPSHOT_DIR_NAME));
    }
}
