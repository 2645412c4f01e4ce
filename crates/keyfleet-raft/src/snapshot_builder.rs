use std::io;

use openraft::RaftSnapshotBuilder;
use redb::Database;
use redb::ReadableDatabase;

use crate::error::StoreError;
use crate::error::report;
use crate::redb_io::SharedDatabase;
use crate::redb_io::begin_durable_write;
use crate::redb_io::run_blocking;
use crate::redb_io::shared;
use crate::redb_tables::read_image;
use crate::state_machine::read_applied_state;
use crate::state_machine::read_current_snapshot_meta;
use crate::state_machine::write_current_snapshot;
use crate::type_config::Snapshot;
use crate::type_config::SnapshotMeta;
use crate::type_config::TypeConfig;

/// Builds a snapshot of the state machine from one redb read transaction, so the snapshot is a
/// consistent view even while apply batches commit.
#[derive(Debug)]
pub struct SnapshotBuilder {
    db: SharedDatabase,
}

impl SnapshotBuilder {
    pub(crate) fn new(db: SharedDatabase) -> Self {
        Self { db }
    }
}

/// Reads the applied state and the vault tables, encodes them and stores the result as the
/// current snapshot.
fn build(db: &Database) -> Result<Snapshot, StoreError> {
    let (meta, image) = {
        let txn = db.begin_read()?;
        let (last_log_id, last_membership) = read_applied_state(&txn)?;
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
        };
        (meta, read_image(&txn)?)
    };

    let data = image.encode()?;
    save_if_newer(db, &meta, &data)?;

    Ok(Snapshot {
        meta,
        snapshot: data,
    })
}

/// Stores the snapshot as the current one unless the current one is newer, as after an install
/// that committed while this snapshot was being built.
fn save_if_newer(db: &Database, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StoreError> {
    let txn = begin_durable_write(db)?;

    if let Some(current) = read_current_snapshot_meta(&txn)?
        && current.last_log_id > meta.last_log_id
    {
        tracing::info!(
            current = %current,
            built = %meta,
            "kept the current snapshot because it is newer than the one just built"
        );
        return Ok(());
    }

    write_current_snapshot(&txn, meta, data)?;

    txn.commit()?;
    Ok(())
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let db = self.db.clone();

        let snapshot = run_blocking(move || build(&shared(&db)))
            .await
            .map_err(report("build snapshot"))?;

        tracing::info!(
            snapshot = %snapshot.meta,
            bytes = snapshot.snapshot.len(),
            "built snapshot"
        );
        Ok(snapshot)
    }
}
