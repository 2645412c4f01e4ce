//! The record of the current snapshot in the state machine's redb file: its metadata and the
//! name of its file in the snapshot directory.

use redb::ReadableTable;
use redb::TableDefinition;
use redb::WriteTransaction;

use crate::error::StoreError;
use crate::redb_io::NamedValues;
use crate::redb_io::get_value;
use crate::redb_io::put_value;
use crate::snapshot_dir::is_snapshot_file_name;
use crate::type_config::SnapshotMeta;

/// The current snapshot: its metadata and its file name.
pub(crate) const SNAPSHOT: NamedValues = TableDefinition::new("raft_snapshot");

const META_KEY: &str = "meta";
const FILE_KEY: &str = "file";
/// Key under which earlier builds stored the whole snapshot data in the table.
const LEGACY_DATA_KEY: &str = "data";

/// The current snapshot's metadata and file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CurrentSnapshot {
    pub(crate) meta: SnapshotMeta,
    pub(crate) file_name: String,
}

/// Reads the current snapshot's record from `table`.
pub(crate) fn read_current_snapshot<T>(table: &T) -> Result<Option<CurrentSnapshot>, StoreError>
where
    T: ReadableTable<&'static str, &'static [u8]>,
{
    let meta: Option<SnapshotMeta> = get_value(table, META_KEY, "snapshot meta")?;
    let file_name: Option<String> = get_value(table, FILE_KEY, "snapshot file name")?;

    let (Some(meta), Some(file_name)) = (meta, file_name) else {
        return Ok(None);
    };
    if !is_snapshot_file_name(&file_name) {
        return Err(StoreError::InvalidSnapshotFileName(file_name));
    }
    Ok(Some(CurrentSnapshot { meta, file_name }))
}

/// Records `current` as the current snapshot.
pub(crate) fn write_current_snapshot(
    txn: &WriteTransaction,
    current: &CurrentSnapshot,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(SNAPSHOT)?;

    put_value(&mut table, META_KEY, &current.meta, "snapshot meta")?;
    put_value(
        &mut table,
        FILE_KEY,
        &current.file_name,
        "snapshot file name",
    )
}

/// Removes the current snapshot's record, so that the store has no current snapshot.
pub(crate) fn remove_current_snapshot(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut table = txn.open_table(SNAPSHOT)?;

    table.remove(META_KEY)?;
    table.remove(FILE_KEY)?;
    Ok(())
}

/// Removes a current snapshot that an earlier build stored as one value in the table, and
/// returns whether there was one. Raft builds a new snapshot when it needs one.
pub(crate) fn remove_legacy_snapshot(txn: &WriteTransaction) -> Result<bool, StoreError> {
    let mut table = txn.open_table(SNAPSHOT)?;

    let data = table.remove(LEGACY_DATA_KEY)?.is_some();
    if data && table.get(FILE_KEY)?.is_none() {
        table.remove(META_KEY)?;
    }
    Ok(data)
}
