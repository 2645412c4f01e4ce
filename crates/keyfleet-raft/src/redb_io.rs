//! Helpers for running redb work off the async runtime, with durable write transactions.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use redb::CompactionMode;
use redb::Database;
use redb::Durability;
use redb::ReadableTable;
use redb::Table;
use redb::TableDefinition;
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

/// A database that transactions share through a read lock, and that compaction, which needs
/// the only handle on it, takes through the write lock.
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

/// Locks the database for compaction.
pub(crate) fn exclusive(db: &RwLock<Database>) -> RwLockWriteGuard<'_, Database> {
    db.write().unwrap_or_else(PoisonError::into_inner)
}

/// Compacts the file with [`CompactionMode::Maximum`]: it moves the live pages to the start of
/// the file, packs partly filled pages and truncates the rest, which overwrites or cuts off the
/// pages that held deleted values.
///
/// NOTE: redb 5.0.0 does not document that compaction overwrites every freed byte. The vault
/// tests scan every node's files for an erased record's sealed blobs after compaction and find
/// none, which is evidence, not a promise from redb.
pub(crate) fn compact(db: &mut Database) -> Result<(), StoreError> {
    db.compact(CompactionMode::Maximum)
        .map(drop)
        .map_err(|source| StoreError::Compact { source })
}

/// Begins a write transaction whose commit returns only after the data is on disk.
pub(crate) fn begin_durable_write(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write()?;

    txn.set_durability(Durability::Immediate)?;

    Ok(txn)
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
