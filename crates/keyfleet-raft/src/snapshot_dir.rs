use std::fs::File;
use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::PoisonError;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::error::StoreError;
use crate::incoming_snapshot::IncomingSnapshot;
use crate::incoming_snapshot::IncomingSnapshotError;
use crate::temp_snapshot_file::TempSnapshotFile;
use crate::type_config::SnapshotMeta;

/// First characters of the name of a finished snapshot file.
const SNAPSHOT_PREFIX: &str = "snapshot-";

/// Last characters of the name of a finished snapshot file.
const SNAPSHOT_SUFFIX: &str = ".snap";

/// Last characters of the name of a snapshot file that is still being written.
const TEMP_SUFFIX: &str = ".tmp";

/// Sequence number that makes the names of files created by this process unique.
static NEXT_FILE_NUMBER: AtomicU64 = AtomicU64::new(0);

/// Directory of a state machine's snapshot files.
///
/// It contains the current snapshot's file, whose name the state machine records, and, while
/// a snapshot is built, received or installed, temporary `.tmp` files. Every other snapshot
/// file is removed once the snapshot that replaces it is durable. Clones share one lock that
/// orders the changes of the current snapshot with the removal and opening of files.
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    path: Arc<PathBuf>,
    files: Arc<Mutex<()>>,
}

impl SnapshotDir {
    /// Opens the directory at `path`, creating it if it does not exist. It syncs the parent
    /// directory, so a new directory survives a power loss with the snapshot files put in it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(|source| StoreError::CreateDirectory {
            path: path.to_owned(),
            source,
        })?;
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            File::open(parent)
                .and_then(|parent| parent.sync_all())
                .map_err(|source| snapshot_io(parent, source))?;
        }

        Ok(Self {
            path: Arc::new(path.to_owned()),
            files: Arc::new(Mutex::new(())),
        })
    }

    /// Returns the directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a temporary file for snapshot data of `total_len` bytes that a peer sends, after
    /// it checks that the file system has room for it and for its install.
    pub fn create_incoming(
        &self,
        total_len: u64,
    ) -> Result<IncomingSnapshot, IncomingSnapshotError> {
        IncomingSnapshot::create(self, total_len)
    }

    /// Locks the snapshot files, so that no other clone changes the current snapshot or removes
    /// or opens a snapshot file until the guard drops. Take it after the database lock.
    pub(crate) fn lock_files(&self) -> MutexGuard<'_, ()> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates a temporary file whose name starts with `purpose`. The file is removed when the
    /// returned guard drops, unless it is persisted.
    pub(crate) fn create_temp(&self, purpose: &str) -> Result<TempSnapshotFile, StoreError> {
        let path = self
            .path
            .join(format!("{purpose}-{}{TEMP_SUFFIX}", unique_suffix()));
        TempSnapshotFile::create(path)
    }

    /// Returns the path of the snapshot file `name`.
    pub(crate) fn file_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Syncs the directory, so that the renames and removals in it survive a power loss.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        File::open(self.path.as_path())
            .and_then(|dir| dir.sync_all())
            .map_err(|source| snapshot_io(&self.path, source))
    }

    /// Removes every finished snapshot file but `current`, and with `temporary` also every
    /// temporary file. Hold [`SnapshotDir::lock_files`] while it runs. Files of other names are
    /// left alone. Returns the number of files removed.
    pub(crate) fn remove_unreferenced(
        &self,
        current: Option<&str>,
        temporary: bool,
    ) -> Result<usize, StoreError> {
        let entries = std::fs::read_dir(self.path.as_path())
            .map_err(|source| snapshot_io(&self.path, source))?;
        let mut removed = 0;

        for entry in entries {
            let entry = entry.map_err(|source| snapshot_io(&self.path, source))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let finished = is_snapshot_file_name(name) && Some(name) != current;
            let stale_temp = temporary && name.ends_with(TEMP_SUFFIX);
            if finished || stale_temp {
                let path = entry.path();
                remove_file(&path)?;
                tracing::info!(path = %path.display(), "removed an unreferenced snapshot file");
                removed += 1;
            }
        }

        Ok(removed)
    }
}

/// Returns a new, unique name for the file of a snapshot with `meta`.
pub(crate) fn snapshot_file_name(meta: &SnapshotMeta) -> String {
    let index = meta.last_log_id.map_or(0, |log_id| log_id.index);

    format!(
        "{SNAPSHOT_PREFIX}{index:020}-{}{SNAPSHOT_SUFFIX}",
        unique_suffix()
    )
}

/// Tells whether `name` is the name of a finished snapshot file, with no path separator.
pub(crate) fn is_snapshot_file_name(name: &str) -> bool {
    name.starts_with(SNAPSHOT_PREFIX)
        && name.ends_with(SNAPSHOT_SUFFIX)
        && !name.contains(std::path::is_separator)
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let number = NEXT_FILE_NUMBER.fetch_add(1, Ordering::Relaxed);

    format!("{nanos:x}-{}-{number}", std::process::id())
}

/// Removes the file at `path`. A file that is already gone counts as removed.
pub(crate) fn remove_file(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(snapshot_io(path, source)),
    }
}

pub(crate) fn snapshot_io(path: &Path, source: io::Error) -> StoreError {
    StoreError::SnapshotIo {
        path: path.to_owned(),
        source,
    }
}
