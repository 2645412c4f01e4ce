//! Helpers for running redb work off the async runtime, with durable write transactions.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use redb::Database;
use redb::Durability;
use redb::Key;
use redb::ReadTransaction;
use redb::ReadableDatabase;
use redb::ReadableTable;
use redb::Table;
use redb::TableDefinition;
use redb::Value;
use redb::WriteTransaction;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;
use crate::error::decode;
use crate::error::encode;

/// Table of named values: a key string and a postcard-encoded value.
pub(crate) type NamedValues = TableDefinition<'static, &'static str, &'static [u8]>;

/// Runs blocking redb work on tokio's blocking thread pool.
///
/// redb's `begin_write` blocks while another write transaction is open, and commits wait for
/// fsync, so no redb write may run on an async worker thread. Each closure opens, uses and
/// commits its own transaction, so no transaction is held across an await.
pub(crate) async fn run_blocking<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await?
}

/// Runs a short read on the calling task when no rewrite holds the database, and on tokio's
/// blocking thread pool when one does.
///
/// A read transaction does not wait for writers, and a point read or a read of a few hundred
/// log entries takes microseconds when its pages are cached, which is less than the two thread
/// switches of [`run_blocking`]. A rewrite holds the database's write lock for a time that
/// grows with its size, so a read that finds the lock taken moves to the blocking pool rather
/// than stall an async worker thread.
///
/// NOTE: a read whose pages are in neither redb's cache nor the page cache still waits for the
/// disk on the calling thread.
pub(crate) async fn run_read<T, F>(db: &SharedDatabase, read: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
{
    let read = match read_if_unlocked(db, read) {
        Ok(result) => return result,
        Err(read) => read,
    };

    let db = db.clone();
    run_blocking(move || read(&shared(&db))).await
}

/// Runs `read` now unless a rewrite has locked the database, and otherwise returns `read`.
fn read_if_unlocked<T, F>(db: &SharedDatabase, read: F) -> Result<Result<T, StoreError>, F>
where
    F: FnOnce(&Database) -> Result<T, StoreError>,
{
    match db.try_read() {
        Ok(guard) => Ok(read(&guard)),
        Err(TryLockError::Poisoned(poisoned)) => Ok(read(&poisoned.into_inner())),
        Err(TryLockError::WouldBlock) => Err(read),
    }
}

/// A database that transactions share through a read lock, and that a rewrite, which replaces
/// it, takes through the write lock.
pub(crate) type SharedDatabase = Arc<RwLock<Database>>;

/// Wraps `db` for sharing.
pub(crate) fn share(db: Database) -> SharedDatabase {
    Arc::new(RwLock::new(db))
}

/// Locks the database for a call that shares it. A panic in another call cannot leave redb in
/// a torn state, so a poisoned lock is used as it is.
pub(crate) fn shared(db: &RwLock<Database>) -> RwLockReadGuard<'_, Database> {
    db.read().unwrap_or_else(PoisonError::into_inner)
}

/// Locks the database for a rewrite.
pub(crate) fn exclusive(db: &RwLock<Database>) -> RwLockWriteGuard<'_, Database> {
    db.write().unwrap_or_else(PoisonError::into_inner)
}

/// Page cache of each redb file, in bytes.
///
/// redb's default is 1 GiB, which a vault with many users fills, so a node's resident memory
/// would grow with the vault. Reads past the cache go to the file, and so usually to the
/// operating system's page cache, which does not count in the node's resident memory.
// NOTE: 32 MiB is not tuned by a measurement of read latency or resident memory.
pub(crate) const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Opens the database at `path` with a [`CACHE_BYTES`] cache, creating it if it does not exist.
pub(crate) fn create_database(path: &Path) -> Result<Database, StoreError> {
    Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Rewrites the database at `path` into a new file that holds only its live data, and puts the
/// new file in its place. No freed page of the old file, with the bytes of deleted values, then
/// stays in the data directory.
///
/// redb reuses freed pages but does not clear them, and a page it reuses keeps old bytes past
/// the new contents, so neither compaction nor more writes remove deleted values from the file.
/// `copy` copies every table from the old database into the new one. The new file is complete
/// and synced before it is renamed over `path`, so a crash leaves either file whole. A leftover
/// temporary file is removed when the store opens.
///
/// NOTE: the old file's disk blocks are freed by the file system, not overwritten, so a copy of
/// the raw disk may still hold them.
pub(crate) fn rewrite<F>(db: &mut Database, path: &Path, copy: F) -> Result<(), StoreError>
where
    F: FnOnce(&ReadTransaction, &WriteTransaction) -> Result<(), StoreError>,
{
    let temp = rewrite_path(path);
    remove_stale_rewrite(path)?;

    let fresh = create_database(&temp)?;
    {
        let from = db.begin_read()?;
        let to = begin_durable_write(&fresh)?;
        copy(&from, &to)?;
        to.commit()?;
    }

    let io_error = |source| StoreError::Rewrite {
        path: path.to_owned(),
        source,
    };
    std::fs::rename(&temp, path).map_err(io_error)?;
    // From here on `path` names the new file, so the store must use it even if the directory
    // sync below fails, or its writes would go to a file that no longer has a name.
    *db = fresh;

    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error)?;
    }
    Ok(())
}

/// Removes the temporary file of a rewrite that a crash interrupted.
pub(crate) fn remove_stale_rewrite(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(rewrite_path(path)) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Rewrite {
            path: path.to_owned(),
            source,
        }),
    }
}

fn rewrite_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".rewrite");
    PathBuf::from(name)
}

/// Copies every row of table `definition` from `from` to `to`.
pub(crate) fn copy_table<K, V>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    definition: TableDefinition<'static, K, V>,
) -> Result<(), StoreError>
where
    K: Key + 'static,
    V: Value + 'static,
{
    let source = from.open_table(definition)?;
    let mut target = to.open_table(definition)?;

    for row in source.iter()? {
        let (key, value) = row?;
        target.insert(key.value(), value.value())?;
    }

    Ok(())
}

/// Begins a write transaction whose commit returns only after the data is on disk.
pub(crate) fn begin_durable_write(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write()?;

    txn.set_durability(Durability::Immediate)?;

    Ok(txn)
}

/// Begins a write transaction whose commit is visible to later transactions at once but reaches
/// the disk only with the next durable commit of the same database. A crash before that commit
/// rolls the database back to the last durable commit, never to a torn state.
pub(crate) fn begin_buffered_write(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write()?;

    txn.set_durability(Durability::None)?;

    Ok(txn)
}

/// Commits an empty durable transaction, which puts every earlier buffered commit on disk.
pub(crate) fn sync_database(db: &Database) -> Result<(), StoreError> {
    begin_durable_write(db)?.commit()?;
    Ok(())
}

/// Reads and decodes the value stored under `key`.
pub(crate) fn get_value<T, R>(
    table: &R,
    key: &str,
    value_name: &'static str,
) -> Result<Option<T>, StoreError>
where
    T: DeserializeOwned,
    R: ReadableTable<&'static str, &'static [u8]>,
{
    let Some(guard) = table.get(key)? else {
        return Ok(None);
    };

    decode(guard.value(), value_name).map(Some)
}

/// Encodes `value` and stores it under `key`.
pub(crate) fn put_value<T: Serialize + ?Sized>(
    table: &mut Table<'_, &'static str, &'static [u8]>,
    key: &str,
    value: &T,
    value_name: &'static str,
) -> Result<(), StoreError> {
    let bytes = encode(value, value_name)?;

    table.insert(key, bytes.as_slice())?;

    Ok(())
}
