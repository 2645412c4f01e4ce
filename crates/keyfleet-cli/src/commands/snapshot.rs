//! `keyfleet snapshot`: save, verify and restore snapshot files.

use std::path::Path;

use keyfleet_raft::{SnapshotFile, UserStatus};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::cli::{SnapshotRestoreArgs, SnapshotSaveArgs, SnapshotVerifyArgs};
use crate::cli_error::CliError;
use crate::output::{count_of, print_result};
use crate::private_file::{check_output, write_private};

/// Largest snapshot file read, in bytes: the node API's message limit.
const MAX_SNAPSHOT_FILE_LEN: u64 = 64 * 1024 * 1024;

/// Runs `keyfleet snapshot save`.
pub(super) async fn save(args: &SnapshotSaveArgs) -> Result<(), CliError> {
    check_output(&args.out, args.force)?;
    let client = super::members::admin_client(&args.admin)?;
    let bytes = client.save_snapshot().await?;

    let file = decode(&args.out, &bytes)?;
    write_private(&args.out, &bytes, args.force)?;
    let (text, value) = describe(&file, &bytes);
    print_result(
        args.admin.endpoints.json,
        &format!("saved {}\n{text}", args.out.display()),
        &value,
    )
}

/// Runs `keyfleet snapshot verify`.
pub(super) fn verify(args: &SnapshotVerifyArgs) -> Result<(), CliError> {
    let bytes = read(&args.input)?;
    let file = decode(&args.input, &bytes)?;
    let (text, value) = describe(&file, &bytes);

    print_result(
        args.json,
        &format!("{} is valid\n{text}", args.input.display()),
        &value,
    )
}

/// Runs `keyfleet snapshot restore`.
pub(super) async fn restore(args: &SnapshotRestoreArgs) -> Result<(), CliError> {
    let bytes = read(&args.input)?;
    let file = decode(&args.input, &bytes)?;
    if args.allow_counter_rollback {
        eprintln!(
            "keyfleet: WARNING: --allow-counter-rollback lets this restore lower guess counts \
             and bring back locked or deleted records"
        );
    }
    let client = super::members::admin_client(&args.admin)?;
    let restored = client
        .restore_snapshot(&bytes, args.allow_counter_rollback)
        .await?;

    print_result(
        args.admin.endpoints.json,
        &format!(
            "restored {} from the snapshot at log index {} of fleet {:?}; {} had guess counts \
             rolled back; the restore is log index {}",
            count_of(restored.users, "user", "users"),
            file.last_log_index,
            file.fleet_id,
            count_of(restored.rolled_back, "user", "users"),
            restored.log_index
        ),
        &json!({
            "users": restored.users,
            "rolled_back": restored.rolled_back,
            "log_index": restored.log_index,
            "snapshot_last_log_index": file.last_log_index,
        }),
    )
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    let file_error = |source| CliError::File {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(file_error)?.len();
    if len > MAX_SNAPSHOT_FILE_LEN {
        return Err(CliError::InvalidInput(format!(
            "{} is {len} bytes, over the limit of {MAX_SNAPSHOT_FILE_LEN} bytes",
            path.display()
        )));
    }
    std::fs::read(path).map_err(file_error)
}

fn decode(path: &Path, bytes: &[u8]) -> Result<SnapshotFile, CliError> {
    SnapshotFile::decode(bytes).map_err(|source| CliError::Snapshot {
        path: path.to_owned(),
        source,
    })
}

/// Returns the header and record counts of `file`, as text and as JSON.
fn describe(file: &SnapshotFile, bytes: &[u8]) -> (String, Value) {
    let count = |status| {
        file.image
            .users
            .iter()
            .filter(|(_, record)| record.status == status)
            .count()
    };
    let (registered, locked, deleted) = (
        count(UserStatus::Registered),
        count(UserStatus::Locked),
        count(UserStatus::Deleted),
    );
    let file_sha256 = hex::encode(Sha256::digest(bytes));

    let text = format!(
        "fleet {:?}, last log index {} (term {}), saved at {} (Unix seconds)\n\
         records: {registered} registered, {locked} locked, {deleted} deleted\n\
         file SHA-256 {file_sha256}",
        file.fleet_id, file.last_log_index, file.last_log_term, file.created_at_unix_secs
    );
    let value = json!({
        "format_version": keyfleet_raft::SNAPSHOT_FILE_VERSION,
        "fleet_id": file.fleet_id,
        "last_log_index": file.last_log_index,
        "last_log_term": file.last_log_term,
        "created_at_unix_secs": file.created_at_unix_secs,
        "registered": registered,
        "locked": locked,
        "deleted": deleted,
        "file_sha256": file_sha256,
    });
    (text, value)
}
