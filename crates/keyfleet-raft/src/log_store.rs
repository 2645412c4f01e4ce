use std::fmt::Debug;
use std::io;
use std::ops::Bound;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Weak};

use openraft::LogState;
use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use redb::Database;
use redb::ReadableDatabase;
use redb::ReadableTable;
use redb::TableDefinition;

use crate::error::StoreError;
use crate::error::decode;
use crate::error::encode;
use crate::error::report;
use crate::redb_io::NamedValues;
use crate::redb_io::SharedDatabase;
use crate::redb_io::begin_buffered_write;
use crate::redb_io::begin_durable_write;
use crate::redb_io::copy_table;
use crate::redb_io::create_database;
use crate::redb_io::exclusive;
use crate::redb_io::get_value;
use crate::redb_io::put_value;
use crate::redb_io::remove_stale_rewrite;
use crate::redb_io::rewrite;
use crate::redb_io::run_blocking;
use crate::redb_io::run_read;
use crate::redb_io::share;
use crate::redb_io::shared;
use crate::redb_io::sync_database;
use crate::type_config::Entry;
use crate::type_config::LogId;
use crate::type_config::TypeConfig;
use crate::type_config::Vote;

/// Log entries by log index, each encoded with postcard.
const LOG: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("raft_log");

/// The vote, the committed log id and the last purged log id.
const LOG_META: NamedValues = TableDefinition::new("raft_log_meta");

const VOTE_KEY: &str = "vote";
const COMMITTED_KEY: &str = "committed";
const LAST_PURGED_KEY: &str = "last_purged_log_id";

/// Raft log store in a redb file: the vote, the committed log id and the log entries.
///
/// [`RaftLogStorage::append`] commits the entries without waiting for the disk, so they are
/// readable when it returns, and hands the flush callback to a flusher thread. That thread puts
/// every append that has queued up on disk with one durable commit, then reports each of them
/// flushed in order: concurrent writes share one fsync (group commit), and Raft replicates the
/// entries while they are being synced. Raft counts an entry towards a commit only after its
/// callback reports the flush. The vote, truncation and purge commit durably before they
/// return. The committed log id is saved without an fsync: it is only a hint for replaying the
/// log after a restart, and it reaches the disk with the next durable commit.
///
/// Clones share the database and serve as log readers, which read through redb's MVCC read
/// transactions.
///
/// Every purge rewrites the file (see [`purge_entries`]), so that the bytes of purged entries,
/// which may carry sealed blobs of erased records, do not linger in freed pages. The rewrite
/// replaces the database, so every other call shares it through a read lock.
#[derive(Debug, Clone)]
pub struct LogStore {
    db: SharedDatabase,
    path: Arc<PathBuf>,
    flushes: mpsc::Sender<IOFlushed<TypeConfig>>,
}

impl LogStore {
    /// Opens the log file at `path`, creating it if it does not exist, and starts its flusher
    /// thread, which ends when the last clone of the store is dropped.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        remove_stale_rewrite(path)?;
        let db = create_database(path)?;

        create_tables(&db)?;

        let db = share(db);
        let (flushes, pending) = mpsc::channel();
        let flusher_db = Arc::downgrade(&db);
        std::thread::Builder::new()
            .name("raft-log-flusher".to_owned())
            .spawn(move || run_flusher(&flusher_db, &pending))
            .map_err(StoreError::StartFlusher)?;

        Ok(Self {
            db,
            path: Arc::new(path.to_owned()),
            flushes,
        })
    }

    async fn read_meta<T>(
        &self,
        key: &'static str,
        value_name: &'static str,
    ) -> Result<Option<T>, StoreError>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let db = self.db.clone();

        run_blocking(move || {
            let db = shared(&db);
            let txn = db.begin_read()?;
            let table = txn.open_table(LOG_META)?;
            get_value(&table, key, value_name)
        })
        .await
    }

    async fn write_meta<T>(
        &self,
        key: &'static str,
        value: T,
        value_name: &'static str,
        durable: bool,
    ) -> Result<(), StoreError>
    where
        T: serde::Serialize + Send + 'static,
    {
        let db = self.db.clone();

        run_blocking(move || {
            let db = shared(&db);
            let txn = if durable {
                begin_durable_write(&db)?
            } else {
                begin_buffered_write(&db)?
            };
            {
                let mut table = txn.open_table(LOG_META)?;
                put_value(&mut table, key, &value, value_name)?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }
}

impl LogStore {
    /// Reads the vote, the last log id and the entries after index `after`, for an offline
    /// tool that runs while no Raft node has the store open.
    pub(crate) async fn read_offline(
        &self,
        after: u64,
    ) -> Result<(Option<Vote>, Option<LogId>, Vec<Entry>), StoreError> {
        let vote = self.read_meta(VOTE_KEY, "vote").await?;
        let db = self.db.clone();

        let (state, entries) = run_blocking(move || {
            let db = shared(&db);
            let state = read_log_state(&db)?;
            let entries = read_entries(&db, (Bound::Excluded(after), Bound::Unbounded))?;
            Ok((state, entries))
        })
        .await?;
        Ok((vote, state.last_log_id, entries))
    }

    /// Stores `vote` and then appends `entry`, each durably, for an offline tool that runs
    /// while no Raft node has the store open.
    pub(crate) async fn append_offline(&self, vote: Vote, entry: Entry) -> Result<(), StoreError> {
        self.write_meta(VOTE_KEY, vote, "vote", true).await?;

        let row = (entry.log_id.index, encode(&entry, "log entry")?);
        let db = self.db.clone();
        run_blocking(move || {
            let db = shared(&db);
            append_entries(&db, vec![row])?;
            sync_database(&db)
        })
        .await
    }
}

/// Runs the flusher thread: waits for an append's callback, takes every other callback that has
/// queued up meanwhile, syncs the database once and reports the result to each callback in
/// order. Ends when every sender is gone or the database is dropped.
fn run_flusher(
    db: &Weak<std::sync::RwLock<Database>>,
    pending: &mpsc::Receiver<IOFlushed<TypeConfig>>,
) {
    while let Ok(first) = pending.recv() {
        let mut callbacks = vec![first];
        callbacks.extend(pending.try_iter());

        let result = match db.upgrade() {
            Some(db) => sync_database(&shared(&db)),
            None => return,
        };
        if let Err(error) = &result {
            tracing::error!(%error, appends = callbacks.len(), "syncing the Raft log failed");
        }

        for callback in callbacks {
            let outcome = match &result {
                Ok(()) => Ok(()),
                Err(error) => Err(io::Error::other(format!("sync the Raft log: {error}"))),
            };
            callback.io_completed(outcome);
        }
    }
}

/// Creates the tables that do not exist yet, so read transactions can open them.
fn create_tables(db: &Database) -> Result<(), StoreError> {
    let txn = begin_durable_write(db)?;

    txn.open_table(LOG)?;
    txn.open_table(LOG_META)?;

    txn.commit()?;
    Ok(())
}

fn read_entries(db: &Database, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<Entry>, StoreError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(LOG)?;
    let mut entries = Vec::new();

    for row in table.range(range)? {
        let (key, value) = row?;
        let entry: Entry = decode(value.value(), "log entry")?;

        if entry.log_id.index != key.value() {
            return Err(StoreError::LogIndexMismatch {
                key: key.value(),
                entry_index: entry.log_id.index,
            });
        }

        entries.push(entry);
    }

    Ok(entries)
}

fn read_log_state(db: &Database) -> Result<LogState<TypeConfig>, StoreError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(LOG_META)?;
    let log = txn.open_table(LOG)?;

    let last_purged_log_id: Option<LogId> =
        get_value(&meta, LAST_PURGED_KEY, "last purged log id")?;

    let last_entry_log_id = match log.last()? {
        Some((_, value)) => Some(decode::<Entry>(value.value(), "log entry")?.log_id),
        None => None,
    };

    Ok(LogState {
        last_log_id: last_entry_log_id.or(last_purged_log_id),
        last_purged_log_id,
    })
}

/// Commits `rows` to the log without waiting for the disk; a later durable commit syncs them.
fn append_entries(db: &Database, rows: Vec<(u64, Vec<u8>)>) -> Result<(), StoreError> {
    let txn = begin_buffered_write(db)?;
    {
        let mut log = txn.open_table(LOG)?;
        for (index, bytes) in &rows {
            log.insert(index, bytes.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Deletes the entries after `last_kept`, or every entry if it is `None`.
fn truncate_entries(db: &Database, last_kept: Option<u64>) -> Result<(), StoreError> {
    let first_deleted = match last_kept {
        Some(index) => Bound::Excluded(index),
        None => Bound::Unbounded,
    };

    let txn = begin_durable_write(db)?;
    {
        let mut log = txn.open_table(LOG)?;
        log.retain_in((first_deleted, Bound::Unbounded), |_, _| false)?;
    }
    txn.commit()?;
    Ok(())
}

/// Records `last_purged` and deletes the entries up to it, in one transaction, then rewrites the
/// file, so that purged entries do not linger in freed pages.
fn purge_entries(db: &mut Database, path: &Path, last_purged: LogId) -> Result<(), StoreError> {
    let txn = begin_durable_write(db)?;
    {
        let mut meta = txn.open_table(LOG_META)?;
        put_value(
            &mut meta,
            LAST_PURGED_KEY,
            &last_purged,
            "last purged log id",
        )?;

        let mut log = txn.open_table(LOG)?;
        log.retain_in(..=last_purged.index, |_, _| false)?;
    }
    txn.commit()?;

    rewrite(db, path, |from, to| {
        copy_table(from, to, LOG)?;
        copy_table(from, to, LOG_META)
    })
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB>(&mut self, range: RB) -> Result<Vec<Entry>, io::Error>
    where
        RB: RangeBounds<u64> + Clone + Debug + OptionalSend,
    {
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        run_read(&self.db, move |db| read_entries(db, bounds))
            .await
            .map_err(report("read log entries"))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.read_meta(VOTE_KEY, "vote")
            .await
            .map_err(report("read vote"))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let db = self.db.clone();

        run_blocking(move || read_log_state(&shared(&db)))
            .await
            .map_err(report("read log state"))
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.write_meta(VOTE_KEY, *vote, "vote", true)
            .await
            .map_err(report("save vote"))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.write_meta(COMMITTED_KEY, committed, "committed log id", false)
            .await
            .map_err(report("save committed log id"))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        let committed: Option<Option<LogId>> = self
            .read_meta(COMMITTED_KEY, "committed log id")
            .await
            .map_err(report("read committed log id"))?;

        Ok(committed.flatten())
    }

    /// Commits all entries in one transaction without waiting for the disk, so they are readable
    /// when this returns, and queues `callback` for the flusher thread, which calls it once the
    /// entries are on disk.
    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let rows = entries
            .into_iter()
            .map(|entry| Ok((entry.log_id.index, encode(&entry, "log entry")?)))
            .collect::<Result<Vec<_>, StoreError>>()
            .map_err(report("encode log entries"))?;

        let db = self.db.clone();
        let result = run_blocking(move || append_entries(&shared(&db), rows))
            .await
            .map_err(report("append log entries"));

        if let Err(error) = result {
            callback.io_completed(Err(io::Error::new(error.kind(), error.to_string())));
            return Err(error);
        }

        if let Err(mpsc::SendError(callback)) = self.flushes.send(callback) {
            let message = "the Raft log flusher thread has stopped";
            tracing::error!("{message}");
            callback.io_completed(Err(io::Error::other(message)));
            return Err(io::Error::other(message));
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        tracing::debug!(last_kept = ?last_log_id, "truncating raft log");

        let last_kept = last_log_id.map(|log_id| log_id.index);
        let db = self.db.clone();

        run_blocking(move || truncate_entries(&shared(&db), last_kept))
            .await
            .map_err(report("truncate log"))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        tracing::debug!(last_purged = %log_id, "purging raft log");

        let db = self.db.clone();
        let path = self.path.clone();

        run_blocking(move || purge_entries(&mut exclusive(&db), &path, log_id))
            .await
            .map_err(report("purge log"))
    }
}
