use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::Stream;
use futures_util::StreamExt;
use openraft::EntryPayload;
use openraft::OptionalSend;
use openraft::storage::ApplyResponder;
use openraft::storage::EntryResponder;
use openraft::storage::RaftStateMachine;
use redb::Database;
use redb::Durability;
use redb::ReadTransaction;
use redb::ReadableDatabase;
use redb::ReadableTable;
use redb::TableDefinition;
use redb::WriteTransaction;
use tokio::sync::watch;

use crate::bundle_record::BundleRecord;
use crate::current_snapshot::SNAPSHOT;
use crate::current_snapshot::read_current_snapshot;
use crate::current_snapshot::remove_current_snapshot;
use crate::current_snapshot::remove_legacy_snapshot;
use crate::error::StoreError;
use crate::error::report;
use crate::fleet::FleetRecord;
use crate::image::VaultImage;
use crate::record::UserRecord;
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
use crate::redb_tables::RedbTables;
use crate::redb_tables::copy_vault_tables;
use crate::redb_tables::read_bundle;
use crate::redb_tables::read_fleet;
use crate::redb_tables::read_image;
use crate::redb_tables::read_user;
use crate::response::EraseOutcome;
use crate::response::LockOutcome;
use crate::response::Response;
use crate::response::RestoreOutcome;
use crate::snapshot_builder::SnapshotBuilder;
use crate::snapshot_data::SnapshotData;
use crate::snapshot_dir::SnapshotDir;
use crate::snapshot_dir::snapshot_io;
use crate::snapshot_installer::InstallTarget;
use crate::snapshot_installer::install;
use crate::snapshot_installer::remove_stale_install;
use crate::type_config::Entry;
use crate::type_config::LogId;
use crate::type_config::Snapshot;
use crate::type_config::SnapshotMeta;
use crate::type_config::StoredMembership;
use crate::type_config::TypeConfig;
use crate::user_id::UserId;
use crate::vault::DEDUP_CAPACITY;
use crate::vault::apply_request;

/// The last applied log id and the last applied membership.
pub(crate) const APPLIED: NamedValues = TableDefinition::new("raft_applied");

const LAST_APPLIED_KEY: &str = "last_applied_log_id";
const LAST_MEMBERSHIP_KEY: &str = "last_membership";
/// Log index of the last applied erase or installed snapshot, kept so that a node that stopped
/// before it compacted past it does so after a restart.
const LAST_ERASURE_KEY: &str = "last_erasure_index";
/// Log index that the last finished compaction covered.
const LAST_COMPACTED_KEY: &str = "last_compacted_index";

/// Raft state machine in a redb file: the vault tables, the applied state and the record of the
/// current snapshot.
///
/// An apply batch writes every entry's changes, the last applied log id and the last membership
/// in one write transaction, and sends the entries' responses after that commit. That commit
/// waits for the disk only after `SYNC_AFTER_ENTRIES` entries since the last durable one.
/// Every applied entry is already committed, so durable in the Raft logs of a majority. A crash
/// that loses the last applied batches therefore rolls the file back to an earlier applied
/// state, and Raft applies the same entries again at restart. Snapshot builds and installs
/// commit durably, and the log is purged only up to a snapshot, so every entry past the durable
/// applied state is still in this node's log or comes again from the leader.
///
/// The current snapshot is a file in the snapshot directory next to this file (see
/// [`snapshot_dir_path`]), and this file records its metadata and name. A snapshot install
/// builds a fresh state machine file and renames it over this one, so a crash leaves either the
/// old state or the new one (see `snapshot_installer.rs`).
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    db: SharedDatabase,
    path: Arc<PathBuf>,
    snapshots: SnapshotDir,
    dedup_capacity: u64,
    erasures: Arc<watch::Sender<u64>>,
    fleet_changes: Arc<watch::Sender<u64>>,
    /// Entries applied since the last durable commit of an apply batch. Only the copy that Raft
    /// owns applies entries, so the count is not shared between clones.
    unsynced_entries: u64,
}

/// Number of applied entries after which an apply batch commits durably, which bounds the
/// entries that Raft applies again after a crash.
// NOTE: no benchmark has measured this value or the restart time it implies yet.
const SYNC_AFTER_ENTRIES: u64 = 1_000;

impl StateMachineStore {
    /// Opens the state machine file at `path`, creating it if it does not exist, and remembers
    /// the last [`DEDUP_CAPACITY`] request ids.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_dedup_capacity(path, DEDUP_CAPACITY)
    }

    /// Opens the state machine file and remembers the last `dedup_capacity` request ids.
    ///
    /// Every node of a fleet must use the same capacity, or their states can diverge.
    ///
    /// It removes what a crash may have left: the temporary file of a rewrite or an install,
    /// temporary snapshot files, and snapshot files other than the current one.
    pub fn open_with_dedup_capacity(path: &Path, dedup_capacity: u64) -> Result<Self, StoreError> {
        // redb locks the file, so another process that has it open fails here before the
        // temporary files of its own rewrite or install are touched.
        let db = create_database(path)?;
        remove_stale_rewrite(path)?;
        remove_stale_install(path)?;

        create_tables(&db)?;
        remove_legacy_snapshot_data(&db)?;
        let snapshots = SnapshotDir::open(&snapshot_dir_path(path))?;
        drop_unreadable_snapshot(&db, &snapshots)?;
        remove_unreferenced_snapshots(&db, &snapshots, true)?;

        Ok(Self {
            db: share(db),
            path: Arc::new(path.to_owned()),
            snapshots,
            dedup_capacity,
            erasures: Arc::new(watch::Sender::new(0)),
            fleet_changes: Arc::new(watch::Sender::new(0)),
            unsynced_entries: 0,
        })
    }

    /// Rewrites the state machine file into a fresh one, so that the bytes of erased records and
    /// replaced snapshots do not linger in freed pages. Blocks every other call on this store
    /// while it runs, and its cost grows with the number of records.
    ///
    /// `covered` is the erase index that the whole round (snapshot, log purge and this rewrite)
    /// covers; it is recorded so that [`StateMachineStore::erasure_to_compact`] stops returning
    /// it.
    ///
    /// It also removes every snapshot file but the current one, so that no older snapshot with
    /// erased records stays on disk.
    pub async fn compact(&self, covered: u64) -> Result<(), StoreError> {
        let db = self.db.clone();
        let path = self.path.clone();
        let snapshots = self.snapshots.clone();

        run_blocking(move || {
            let mut db = exclusive(&db);

            rewrite(&mut db, &path, |from, to| {
                copy_table(from, to, APPLIED)?;
                copy_table(from, to, SNAPSHOT)?;
                copy_vault_tables(from, to)
            })?;

            let txn = begin_durable_write(&db)?;
            let compacted = read_last_compacted(&txn.open_table(APPLIED)?)?.max(covered);
            record_compacted(&txn, compacted)?;
            txn.commit()?;

            remove_unreferenced_snapshots(&db, &snapshots, false)
        })
        .await
    }

    /// Returns the directory of this store's snapshot files, where a node also receives the
    /// snapshots that peers send.
    pub fn snapshot_dir(&self) -> SnapshotDir {
        self.snapshots.clone()
    }

    /// Returns the index of an applied erase or installed snapshot that no finished compaction
    /// covers yet, or 0 when every one is covered. A node calls it at start, because it may have
    /// stopped between an erase and the compaction after it.
    pub async fn erasure_to_compact(&self) -> Result<u64, StoreError> {
        let db = self.db.clone();

        run_blocking(move || {
            let db = shared(&db);
            let txn = db.begin_read()?;
            let table = txn.open_table(APPLIED)?;
            let erased: Option<u64> = get_value(&table, LAST_ERASURE_KEY, "last erasure index")?;
            let compacted: Option<u64> =
                get_value(&table, LAST_COMPACTED_KEY, "last compacted index")?;

            let erased = erased.unwrap_or(0);
            Ok(if erased > compacted.unwrap_or(0) {
                erased
            } else {
                0
            })
        })
        .await
    }

    /// Returns a receiver of the log index of the last erase: an applied `Lock` that locked, an
    /// applied `Erase` that erased, or an installed snapshot. It is 0 before the first one since
    /// this store was opened. The node compacts its log and snapshot past that index.
    pub fn erasures(&self) -> watch::Receiver<u64> {
        self.erasures.subscribe()
    }

    /// Returns a receiver of the log index of the last applied `Restore` or installed snapshot,
    /// either of which may replace the fleet setup. It is 0 before the first one since this
    /// store was opened. A node reloads its OPAQUE setup when it changes.
    pub fn fleet_changes(&self) -> watch::Receiver<u64> {
        self.fleet_changes.subscribe()
    }

    /// Returns the applied record of `user`.
    pub async fn user(&self, user: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let user = user.clone();

        run_read(&self.db, move |db| read_user(&db.begin_read()?, &user)).await
    }

    /// Returns the applied fleet setup.
    pub async fn fleet(&self) -> Result<Option<FleetRecord>, StoreError> {
        run_read(&self.db, |db| read_fleet(&db.begin_read()?)).await
    }

    /// Returns the applied validation bundle.
    pub async fn bundle(&self) -> Result<Option<BundleRecord>, StoreError> {
        run_read(&self.db, |db| read_bundle(&db.begin_read()?)).await
    }

    /// Reads the last applied log id and the whole applied vault state, in one consistent read
    /// transaction.
    pub async fn applied_image(&self) -> Result<(Option<LogId>, VaultImage), StoreError> {
        let db = self.db.clone();

        run_blocking(move || {
            let db = shared(&db);
            let txn = db.begin_read()?;
            let (last_applied, _) = read_applied_state(&txn)?;
            Ok((last_applied, read_image(&txn)?))
        })
        .await
    }

    /// Reads the last applied log id and membership.
    pub async fn applied_membership(
        &self,
    ) -> Result<(Option<LogId>, StoredMembership), StoreError> {
        let db = self.db.clone();

        run_blocking(move || read_applied_state(&shared(&db).begin_read()?)).await
    }

    /// Reads the whole applied vault state, in one consistent read transaction.
    pub async fn vault_image(&self) -> Result<VaultImage, StoreError> {
        let db = self.db.clone();

        run_blocking(move || read_image(&shared(&db).begin_read()?)).await
    }
}

/// Returns the path of the snapshot directory of the state machine file at `path`: the file's
/// path with the extension `snapshots`.
pub fn snapshot_dir_path(path: &Path) -> PathBuf {
    path.with_extension("snapshots")
}

/// Creates the tables that do not exist yet, so read transactions can open them.
pub(crate) fn create_tables(db: &Database) -> Result<(), StoreError> {
    let txn = begin_durable_write(db)?;

    txn.open_table(APPLIED)?;
    txn.open_table(SNAPSHOT)?;
    RedbTables::open(&txn)?;

    txn.commit()?;
    Ok(())
}

/// Reads the last applied log id and the last membership.
pub(crate) fn read_applied_state(
    txn: &ReadTransaction,
) -> Result<(Option<LogId>, StoredMembership), StoreError> {
    let table = txn.open_table(APPLIED)?;

    let last_applied: Option<Option<LogId>> =
        get_value(&table, LAST_APPLIED_KEY, "last applied log id")?;
    let membership = get_value(&table, LAST_MEMBERSHIP_KEY, "last membership")?;

    Ok((last_applied.flatten(), membership.unwrap_or_default()))
}

pub(crate) fn write_applied_state(
    txn: &WriteTransaction,
    last_applied: &Option<LogId>,
    membership: Option<&StoredMembership>,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(APPLIED)?;

    put_value(
        &mut table,
        LAST_APPLIED_KEY,
        last_applied,
        "last applied log id",
    )?;

    if let Some(membership) = membership {
        put_value(
            &mut table,
            LAST_MEMBERSHIP_KEY,
            membership,
            "last membership",
        )?;
    }

    Ok(())
}

/// Responses of one apply batch, and the log indexes of its last erasing command and of its last
/// restore.
struct AppliedBatch {
    responses: Vec<Response>,
    last_erasure: Option<u64>,
    last_restore: Option<u64>,
}

/// Applies `entries` in one transaction, committed durably when `durable` is set or an entry
/// erased blobs, and returns one response per entry.
fn apply_batch(
    db: &Database,
    entries: Vec<Entry>,
    dedup_capacity: u64,
    durable: bool,
) -> Result<AppliedBatch, StoreError> {
    let mut txn = if durable {
        begin_durable_write(db)?
    } else {
        begin_buffered_write(db)?
    };
    let mut responses = Vec::with_capacity(entries.len());
    let mut last_membership = None;
    let mut last_applied = None;
    let mut last_erasure = None;
    let mut last_restore = None;

    {
        let mut tables = RedbTables::open(&txn)?;

        for entry in entries {
            let response = match entry.payload {
                EntryPayload::Blank => Response::NoOp,
                EntryPayload::Normal(request) => {
                    apply_request(&mut tables, entry.log_id.index, &request, dedup_capacity)?
                }
                EntryPayload::Membership(membership) => {
                    last_membership = Some(StoredMembership::new(Some(entry.log_id), membership));
                    Response::NoOp
                }
            };

            if erases_blobs(&response) {
                last_erasure = Some(entry.log_id.index);
            }
            if matches!(response, Response::Restore(RestoreOutcome::Restored { .. })) {
                last_restore = Some(entry.log_id.index);
            }
            responses.push(response);
            last_applied = Some(entry.log_id);
        }
    }

    write_applied_state(&txn, &last_applied, last_membership.as_ref())?;
    if let Some(index) = last_erasure {
        record_erasure(&txn, index)?;
    }

    // An erase is committed durably even when `durable` is false. A node that lost a
    // buffered erase would restart with the record's blobs in its state machine, and without
    // a quorum it could not apply the erase again, so the blobs would stay on its disk.
    if last_erasure.is_some() {
        txn.set_durability(Durability::Immediate)?;
    }
    txn.commit()?;
    Ok(AppliedBatch {
        responses,
        last_erasure,
        last_restore,
    })
}

/// Returns true for the outcomes that removed a record's sealed blobs from the tables. A retry
/// served from the dedup table returns the same outcome, which is harmless: it only requests
/// one more compaction.
fn erases_blobs(response: &Response) -> bool {
    matches!(
        response,
        Response::Lock(LockOutcome::Locked { .. })
            | Response::Erase(EraseOutcome::Erased)
            | Response::Restore(RestoreOutcome::Restored { .. })
    )
}

/// Records `index` as the last erase, for [`StateMachineStore::erasure_to_compact`].
pub(crate) fn record_erasure(txn: &WriteTransaction, index: u64) -> Result<(), StoreError> {
    let mut table = txn.open_table(APPLIED)?;

    put_value(&mut table, LAST_ERASURE_KEY, &index, "last erasure index")
}

/// Reads the log index that the last finished compaction covered, 0 before the first.
pub(crate) fn read_last_compacted<T>(applied: &T) -> Result<u64, StoreError>
where
    T: ReadableTable<&'static str, &'static [u8]>,
{
    let compacted: Option<u64> = get_value(applied, LAST_COMPACTED_KEY, "last compacted index")?;

    Ok(compacted.unwrap_or(0))
}

/// Records `index` as the log index that the last finished compaction covered.
pub(crate) fn record_compacted(txn: &WriteTransaction, index: u64) -> Result<(), StoreError> {
    let mut table = txn.open_table(APPLIED)?;

    put_value(
        &mut table,
        LAST_COMPACTED_KEY,
        &index,
        "last compacted index",
    )
}

/// Removes a current snapshot that an earlier build stored inside the state machine file.
fn remove_legacy_snapshot_data(db: &Database) -> Result<(), StoreError> {
    let txn = begin_durable_write(db)?;

    if remove_legacy_snapshot(&txn)? {
        tracing::info!("removed a snapshot stored in the state machine file by an earlier build");
    }
    txn.commit()?;
    Ok(())
}

/// Drops the current snapshot when its file is missing or fails its check, so that the node
/// starts without it. openraft builds a new snapshot at start when the log is purged past the
/// applied state, and otherwise when its policy or a compaction triggers one.
fn drop_unreadable_snapshot(db: &Database, snapshots: &SnapshotDir) -> Result<(), StoreError> {
    let current = {
        let txn = db.begin_read()?;
        read_current_snapshot(&txn.open_table(SNAPSHOT)?)?
    };
    let Some(current) = current else {
        return Ok(());
    };

    let path = snapshots.file_path(&current.file_name);
    let problem = match SnapshotData::open(&path) {
        Ok(data) => data.validate().err().map(|error| error.to_string()),
        Err(error) => Some(error.to_string()),
    };
    let Some(problem) = problem else {
        return Ok(());
    };

    tracing::error!(
        path = %path.display(),
        snapshot = %current.meta,
        error = %problem,
        "the current snapshot file is unreadable; dropping it, a new snapshot will be built"
    );
    let txn = begin_durable_write(db)?;
    remove_current_snapshot(&txn)?;
    txn.commit()?;
    Ok(())
}

/// Removes every snapshot file but the current one, and with `temporary` also the temporary
/// files, which only a crash leaves behind when no other call on the store runs.
fn remove_unreferenced_snapshots(
    db: &Database,
    snapshots: &SnapshotDir,
    temporary: bool,
) -> Result<(), StoreError> {
    let _files = snapshots.lock_files();
    let txn = db.begin_read()?;
    let current = read_current_snapshot(&txn.open_table(SNAPSHOT)?)?;

    snapshots.remove_unreferenced(
        current.as_ref().map(|current| current.file_name.as_str()),
        temporary,
    )?;
    Ok(())
}

/// Opens the current snapshot's file.
fn open_current_snapshot(
    db: &Database,
    snapshots: &SnapshotDir,
) -> Result<Option<Snapshot>, StoreError> {
    let _files = snapshots.lock_files();
    let txn = db.begin_read()?;
    let Some(current) = read_current_snapshot(&txn.open_table(SNAPSHOT)?)? else {
        return Ok(None);
    };

    let path = snapshots.file_path(&current.file_name);
    let data = SnapshotData::open(&path).map_err(|source| snapshot_io(&path, source))?;

    // NOTE: the file is checked at open, not here, because a check reads the whole file and
    // openraft calls this on the state machine worker, which would stop applying meanwhile. A
    // file damaged while the node runs is sent as it is, each receiver rejects it, and the
    // sender logs the rejection until a restart drops the file.
    Ok(Some(Snapshot {
        meta: current.meta,
        snapshot: data,
    }))
}

fn send_responses(responders: Vec<Option<ApplyResponder<TypeConfig>>>, responses: Vec<Response>) {
    for (responder, response) in responders.into_iter().zip(responses) {
        if let Some(responder) = responder {
            responder.send(response);
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let db = self.db.clone();

        run_blocking(move || read_applied_state(&shared(&db).begin_read()?))
            .await
            .map_err(report("read applied state"))
    }

    /// Collects the batch, applies it in one transaction and then sends every response, so a
    /// client sees an outcome only after the state machine contains it. Every entry is committed,
    /// so durable in the Raft logs of a majority, before it reaches this call.
    async fn apply<Strm>(&mut self, mut stream: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut entries = Vec::new();
        let mut responders = Vec::new();

        while let Some(item) = stream.next().await {
            let (entry, responder) = item?;
            entries.push(entry);
            responders.push(responder);
        }

        if entries.is_empty() {
            return Ok(());
        }

        let db = self.db.clone();
        let dedup_capacity = self.dedup_capacity;
        self.unsynced_entries += entries.len() as u64;
        let durable = self.unsynced_entries >= SYNC_AFTER_ENTRIES;
        let applied =
            run_blocking(move || apply_batch(&shared(&db), entries, dedup_capacity, durable))
                .await
                .map_err(report("apply log entries"))?;
        if durable || applied.last_erasure.is_some() {
            self.unsynced_entries = 0;
        }

        if let Some(index) = applied.last_erasure {
            self.erasures.send_replace(index);
        }
        if let Some(index) = applied.last_restore {
            self.fleet_changes.send_replace(index);
        }
        send_responses(responders, applied.responses);
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<SnapshotBuilder> {
        Some(self.get_snapshot_builder().await)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder::new(self.db.clone(), self.snapshots.clone())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        tracing::info!(snapshot = %meta, bytes = snapshot.len(), "installing snapshot");

        let db = self.db.clone();
        let path = self.path.clone();
        let snapshots = self.snapshots.clone();
        let installed = meta.clone();
        let records = run_blocking(move || {
            let target = InstallTarget {
                db: &db,
                path: &path,
                snapshots: &snapshots,
            };
            install(&target, &installed, &snapshot)
        })
        .await
        .map_err(report("install snapshot"))?;
        tracing::info!(snapshot = %meta, records, "installed snapshot");

        // The replaced tables may have held blobs that the snapshot no longer has, for example
        // those of a record locked while this node was down, so compact as after an erase.
        let installed_index = meta.last_log_id.map_or(0, |log_id| log_id.index);
        self.erasures.send_replace(installed_index);
        self.fleet_changes.send_replace(installed_index);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let db = self.db.clone();

        let snapshots = self.snapshots.clone();

        run_blocking(move || open_current_snapshot(&shared(&db), &snapshots))
            .await
            .map_err(report("read current snapshot"))
    }
}
