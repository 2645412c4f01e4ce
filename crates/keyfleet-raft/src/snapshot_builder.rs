use std::io;
use std::io::BufWriter;
use std::io::Write;

use openraft::RaftSnapshotBuilder;
use redb::Database;
use redb::ReadableDatabase;

use crate::current_snapshot::CurrentSnapshot;
use crate::current_snapshot::SNAPSHOT;
use crate::current_snapshot::read_current_snapshot;
use crate::current_snapshot::write_current_snapshot;
use crate::error::StoreError;
use crate::error::report;
use crate::redb_io::SharedDatabase;
use crate::redb_io::begin_durable_write;
use crate::redb_io::run_blocking;
use crate::redb_io::shared;
use crate::redb_tables::encode_vault_tables;
use crate::snapshot_data::SnapshotData;
use crate::snapshot_dir::SnapshotDir;
use crate::snapshot_dir::snapshot_file_name;
use crate::snapshot_dir::snapshot_io;
use crate::snapshot_encoder::SnapshotEncoder;
use crate::state_machine::read_applied_state;
use crate::temp_snapshot_file::TempSnapshotFile;
use crate::type_config::Snapshot;
use crate::type_config::SnapshotMeta;
use crate::type_config::TypeConfig;

/// Size of the write buffer of a snapshot build.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Builds a snapshot of the state machine from one redb read transaction, so the snapshot is a
/// consistent view even while apply batches commit.
///
/// The build streams the vault tables row by row into a temporary file in the snapshot
/// directory, syncs it and renames it, so its memory use does not grow with the vault.
#[derive(Debug)]
pub struct SnapshotBuilder {
    db: SharedDatabase,
    snapshots: SnapshotDir,
}

impl SnapshotBuilder {
    pub(crate) fn new(db: SharedDatabase, snapshots: SnapshotDir) -> Self {
        Self { db, snapshots }
    }
}

/// Writes the applied state and the vault tables to a new snapshot file and records it as the
/// current snapshot, unless the current one is newer.
fn build(db: &Database, snapshots: &SnapshotDir) -> Result<Snapshot, StoreError> {
    let temp = snapshots.create_temp("build")?;

    let meta = {
        let txn = db.begin_read()?;
        let (last_log_id, last_membership) = read_applied_state(&txn)?;
        let output = BufWriter::with_capacity(WRITE_BUFFER_BYTES, temp.file());
        let mut encoder = SnapshotEncoder::new(output)?;

        encode_vault_tables(&txn, &mut encoder)?;
        let (mut output, _) = encoder.finish()?;
        output
            .flush()
            .map_err(|source| snapshot_io(snapshots.path(), source))?;

        SnapshotMeta {
            last_log_id,
            last_membership,
        }
    };
    temp.sync()?;

    let file = save_if_newer(db, snapshots, &meta, temp)?;
    let data =
        SnapshotData::from_file(file).map_err(|source| snapshot_io(snapshots.path(), source))?;

    Ok(Snapshot {
        meta,
        snapshot: data,
    })
}

/// Renames the built file and records it as the current snapshot, unless the current one is
/// newer, as after an install that committed while this snapshot was being built. The file of
/// the snapshot that is no longer current is removed after the commit. Returns the built file,
/// which stays readable even when it was not kept.
fn save_if_newer(
    db: &Database,
    snapshots: &SnapshotDir,
    meta: &SnapshotMeta,
    temp: TempSnapshotFile,
) -> Result<std::fs::File, StoreError> {
    let _files = snapshots.lock_files();
    let txn = begin_durable_write(db)?;
    let current = read_current_snapshot(&txn.open_table(SNAPSHOT)?)?;

    if let Some(current) = &current
        && current.meta.last_log_id > meta.last_log_id
    {
        tracing::info!(
            current = %current.meta,
            built = %meta,
            "kept the current snapshot because it is newer than the one just built"
        );
        return temp.into_unlinked();
    }

    let built = CurrentSnapshot {
        meta: meta.clone(),
        file_name: snapshot_file_name(meta),
    };
    let path = snapshots.file_path(&built.file_name);
    let file = temp.persist(&path)?;
    snapshots.sync()?;

    write_current_snapshot(&txn, &built)?;
    if let Err(error) = txn.commit() {
        crate::snapshot_dir::remove_file(&path)?;
        return Err(error.into());
    }

    if let Some(previous) = current {
        crate::snapshot_dir::remove_file(&snapshots.file_path(&previous.file_name))?;
    }
    Ok(file)
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let db = self.db.clone();
        let snapshots = self.snapshots.clone();

        tracing::info!("building snapshot");
        let snapshot = run_blocking(move || build(&shared(&db), &snapshots))
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

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;

    use super::*;
    use crate::redb_io::create_database;
    use crate::state_machine::create_tables;

    fn meta_at(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(openraft::testing::log_id::<TypeConfig>(1, 1, index)),
            ..SnapshotMeta::default()
        }
    }

    fn current(db: &Database) -> Option<CurrentSnapshot> {
        let txn = db.begin_read().unwrap();
        read_current_snapshot(&txn.open_table(SNAPSHOT).unwrap()).unwrap()
    }

    fn file_names(snapshots: &SnapshotDir) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(snapshots.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn older_build_keeps_newer_current() {
        let dir = tempfile::tempdir().unwrap();
        let db = create_database(&dir.path().join("state-machine.redb")).unwrap();
        create_tables(&db).unwrap();
        let snapshots = SnapshotDir::open(&dir.path().join("snapshots")).unwrap();
        let newer = snapshots.create_temp("build").unwrap();
        save_if_newer(&db, &snapshots, &meta_at(10), newer).unwrap();
        let kept = current(&db).unwrap();

        let older = snapshots.create_temp("build").unwrap();
        save_if_newer(&db, &snapshots, &meta_at(5), older).unwrap();

        assert_eq!(current(&db), Some(kept.clone()));
        assert_eq!(file_names(&snapshots), vec![kept.file_name.clone()]);

        let newest = snapshots.create_temp("build").unwrap();
        save_if_newer(&db, &snapshots, &meta_at(12), newest).unwrap();
        let replaced = current(&db).unwrap();

        assert_eq!(replaced.meta, meta_at(12));
        assert_eq!(file_names(&snapshots), vec![replaced.file_name]);
    }
}
