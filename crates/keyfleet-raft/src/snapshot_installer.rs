use std::fs::File;
use std::io;
use std::io::BufReader;
use std::io::BufWriter;
use std::io::Read;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use redb::Database;
use redb::ReadableDatabase;

use crate::current_snapshot::CurrentSnapshot;
use crate::current_snapshot::SNAPSHOT;
use crate::current_snapshot::read_current_snapshot;
use crate::current_snapshot::write_current_snapshot;
use crate::error::StoreError;
use crate::redb_io::SharedDatabase;
use crate::redb_io::begin_buffered_write;
use crate::redb_io::begin_durable_write;
use crate::redb_io::create_database;
use crate::redb_io::exclusive;
use crate::redb_tables::RedbTables;
use crate::snapshot_data::READ_BUFFER_BYTES;
use crate::snapshot_data::SnapshotData;
use crate::snapshot_decoder::SnapshotDecoder;
use crate::snapshot_dir::SnapshotDir;
use crate::snapshot_dir::remove_file;
use crate::snapshot_dir::snapshot_file_name;
use crate::snapshot_dir::snapshot_io;
use crate::state_machine::APPLIED;
use crate::state_machine::create_tables;
use crate::state_machine::read_last_compacted;
use crate::state_machine::record_compacted;
use crate::state_machine::record_erasure;
use crate::state_machine::write_applied_state;
use crate::temp_snapshot_file::TempSnapshotFile;
use crate::type_config::SnapshotMeta;

/// Bytes of snapshot data that one write transaction of an install inserts, which bounds what
/// redb holds for one uncommitted transaction.
const INSTALL_BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// The state machine file of a store, with the parts an install replaces.
pub(crate) struct InstallTarget<'a> {
    pub(crate) db: &'a SharedDatabase,
    pub(crate) path: &'a Path,
    pub(crate) snapshots: &'a SnapshotDir,
}

/// Replaces the state machine with the snapshot `data` of `meta`, and makes a copy of `data` the
/// current snapshot. Returns the number of records installed.
///
/// The records go into a fresh redb file next to the state machine file, in several
/// transactions, while one pass over `data` also copies it into a temporary snapshot file.
/// Invalid data fails the install before anything replaces the current state. The fresh file
/// gets the applied state and the current snapshot's record in a last durable transaction, and
/// then replaces the state machine file by a rename, as a compaction does. A crash before that
/// rename leaves the old state and temporary files that the next open removes, and a crash
/// after it leaves the new state.
pub(crate) fn install(
    target: &InstallTarget<'_>,
    meta: &SnapshotMeta,
    data: &SnapshotData,
) -> Result<u64, StoreError> {
    let fresh_path = install_path(target.path);
    remove_stale_install(target.path)?;
    let fresh = FreshDatabase {
        db: Some(create_database(&fresh_path)?),
        path: fresh_path,
    };
    create_tables(fresh.db())?;

    let copy = target.snapshots.create_temp("install")?;
    let records = load_records(fresh.db(), data, &copy)?;
    copy.sync()?;

    swap_in(target, meta, fresh, copy)?;
    Ok(records)
}

/// Inserts every record of `data` into `fresh` and copies the bytes read into `copy`.
fn load_records(
    fresh: &Database,
    data: &SnapshotData,
    copy: &TempSnapshotFile,
) -> Result<u64, StoreError> {
    let copying = CopyingReader {
        input: data.reader(),
        copy: BufWriter::with_capacity(READ_BUFFER_BYTES, copy.file()),
    };
    let mut decoder = SnapshotDecoder::new(BufReader::with_capacity(READ_BUFFER_BYTES, copying))?;
    let mut records = 0;

    loop {
        let txn = begin_buffered_write(fresh)?;
        let batch_start = decoder.position();
        let mut finished = false;
        {
            let mut tables = RedbTables::open(&txn)?;
            while decoder.position() - batch_start < INSTALL_BATCH_BYTES {
                let Some(item) = decoder.next_item()? else {
                    finished = true;
                    break;
                };
                tables.insert_item(&item)?;
                records += 1;
            }
        }
        txn.commit()?;

        if finished {
            break;
        }
    }

    let mut copying = decoder.into_inner().into_inner();
    copying
        .copy
        .flush()
        .map_err(|source| snapshot_io(copy.path(), source))?;
    Ok(records)
}

/// Commits the applied state and the current snapshot's record to `fresh`, renames the copy and
/// `fresh` into place, and removes the previous snapshot file.
fn swap_in(
    target: &InstallTarget<'_>,
    meta: &SnapshotMeta,
    mut fresh: FreshDatabase,
    copy: TempSnapshotFile,
) -> Result<(), StoreError> {
    let mut db = exclusive(target.db);
    let _files = target.snapshots.lock_files();
    let (compacted, previous) = {
        let txn = db.begin_read()?;
        let previous = read_current_snapshot(&txn.open_table(SNAPSHOT)?)?;
        (read_last_compacted(&txn.open_table(APPLIED)?)?, previous)
    };

    let installed = CurrentSnapshot {
        meta: meta.clone(),
        file_name: snapshot_file_name(meta),
    };
    let txn = begin_durable_write(fresh.db())?;
    write_applied_state(&txn, &meta.last_log_id, Some(&meta.last_membership))?;
    record_erasure(&txn, meta.last_log_id.map_or(0, |log_id| log_id.index))?;
    record_compacted(&txn, compacted)?;
    write_current_snapshot(&txn, &installed)?;
    txn.commit()?;

    let snapshot_path = target.snapshots.file_path(&installed.file_name);
    copy.persist(&snapshot_path)?;
    target.snapshots.sync()?;

    let rename_error = |source| StoreError::Rewrite {
        path: target.path.to_owned(),
        source,
    };
    if let Err(source) = std::fs::rename(&fresh.path, target.path) {
        remove_file(&snapshot_path)?;
        return Err(rename_error(source));
    }
    // From here on the state machine path names the fresh file, so the store must use it even
    // if a sync below fails.
    *db = fresh.take();
    if let Some(dir) = target.path.parent() {
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(rename_error)?;
    }

    if let Some(previous) = previous {
        remove_file(&target.snapshots.file_path(&previous.file_name))?;
    }
    Ok(())
}

/// Returns the path of the fresh file that an install builds next to the state machine file.
fn install_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".install");
    PathBuf::from(name)
}

/// Removes the fresh file of an install that a crash or an error interrupted.
pub(crate) fn remove_stale_install(path: &Path) -> Result<(), StoreError> {
    let fresh = install_path(path);

    std::fs::remove_file(&fresh).or_else(|error| match error.kind() {
        io::ErrorKind::NotFound => Ok(()),
        _ => Err(StoreError::Rewrite {
            path: fresh.clone(),
            source: error,
        }),
    })
}

/// The fresh database of an install, removed on drop unless it was swapped in.
struct FreshDatabase {
    db: Option<Database>,
    path: PathBuf,
}

impl FreshDatabase {
    fn db(&self) -> &Database {
        self.db
            .as_ref()
            .expect("the fresh database is present until it is swapped in")
    }

    fn take(&mut self) -> Database {
        self.db
            .take()
            .expect("the fresh database is swapped in once")
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let Some(db) = self.db.take() else {
            return;
        };
        drop(db);
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "failed to remove the fresh file of a failed snapshot install");
        }
    }
}

/// Reader that writes every byte it reads from `input` to `copy`.
struct CopyingReader<R, W> {
    input: R,
    copy: W,
}

impl<R: Read, W: Write> Read for CopyingReader<R, W> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.input.read(buffer)?;
        self.copy.write_all(&buffer[..read])?;
        Ok(read)
    }
}
