use std::fs::File;
use std::fs::OpenOptions;
use std::path::Path;
use std::path::PathBuf;

use crate::error::StoreError;
use crate::snapshot_dir::remove_file;
use crate::snapshot_dir::snapshot_io;

/// A temporary snapshot file, removed on drop unless [`TempSnapshotFile::persist`] renamed it.
#[derive(Debug)]
pub(crate) struct TempSnapshotFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempSnapshotFile {
    /// Creates the file at `path`, which must not exist yet.
    pub(crate) fn create(path: PathBuf) -> Result<Self, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| snapshot_io(&path, source))?;

        Ok(Self {
            path,
            file,
            persisted: false,
        })
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the file's contents to disk.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        self.file
            .sync_all()
            .map_err(|source| snapshot_io(&self.path, source))
    }

    /// Renames the file to `path`. Sync the directory afterwards to make the rename durable.
    pub(crate) fn persist(mut self, path: &Path) -> Result<File, StoreError> {
        std::fs::rename(&self.path, path).map_err(|source| snapshot_io(&self.path, source))?;
        self.persisted = true;

        self.file
            .try_clone()
            .map_err(|source| snapshot_io(path, source))
    }

    /// Removes the file's name and returns the open file, whose space the file system frees
    /// when the last handle closes. A crash before the removal leaves a `.tmp` file that the
    /// next open of the state machine removes.
    pub(crate) fn into_unlinked(mut self) -> Result<File, StoreError> {
        remove_file(&self.path)?;
        self.persisted = true;

        self.file
            .try_clone()
            .map_err(|source| snapshot_io(&self.path, source))
    }
}

impl Drop for TempSnapshotFile {
    fn drop(&mut self) {
        if self.persisted {
            return;
        }
        if let Err(error) = remove_file(&self.path) {
            tracing::warn!(%error, "failed to remove a temporary snapshot file");
        }
    }
}
