//! The rule of the `Restore` command: replace the vault state with a saved image, but never
//! hand out guesses silently.

use crate::image::VaultImage;
use crate::record::OPRF_SALT_LEN;
use crate::record::UserRecord;
use crate::record::UserStatus;
use crate::response::RestoreOutcome;
use crate::user_id::UserId;
use crate::vault::VaultTables;

/// Maximum number of affected user ids a rejected restore returns.
const MAX_ROLLBACK_EXAMPLES: usize = 10;

/// Applies `Restore` at `log_index`; see [`crate::Command::Restore`].
pub(crate) fn restore<T: VaultTables>(
    tables: &mut T,
    log_index: u64,
    image: &VaultImage,
    allow_counter_rollback: bool,
) -> Result<RestoreOutcome, T::Error> {
    if let (Some(current), Some(restored)) = (tables.fleet()?, &image.fleet)
        && current.fleet_id != restored.fleet_id
    {
        return Ok(RestoreOutcome::FleetMismatch {
            current_fleet_id: current.fleet_id,
            image_fleet_id: restored.fleet_id.clone(),
        });
    }

    let rolled_back = find_rollbacks(tables, image)?;
    if !rolled_back.is_empty() && !allow_counter_rollback {
        return Ok(RestoreOutcome::CounterRollback {
            users: rolled_back.len() as u64,
            examples: rolled_back
                .into_iter()
                .take(MAX_ROLLBACK_EXAMPLES)
                .collect(),
        });
    }

    for user in tables.user_ids()? {
        let in_image = image.users.iter().any(|(id, _)| *id == user);
        if !in_image {
            tables.put_user(&user, &tombstone(log_index))?;
        }
    }
    // Versions restart at this entry's index, so that every ticket issued before the restore
    // names an older version and is stale.
    for (user, record) in &image.users {
        let mut record = record.clone();
        record.version = log_index;
        tables.put_user(user, &record)?;
    }
    if let Some(fleet) = &image.fleet {
        tables.put_fleet(fleet)?;
    }

    Ok(RestoreOutcome::Restored {
        users: image.users.len() as u64,
        rolled_back: rolled_back.len() as u64,
    })
}

/// Returns the users, ordered by id, to whom the image would give guesses that the current
/// state does not: a registered record with fewer guesses used than the current registered
/// record, or one where the current record is locked or deleted.
fn find_rollbacks<T: VaultTables>(tables: &T, image: &VaultImage) -> Result<Vec<UserId>, T::Error> {
    let mut users = Vec::new();

    for (user, restored) in &image.users {
        let Some(current) = tables.user(user)? else {
            continue;
        };
        if gives_guesses(&current, restored) {
            users.push(user.clone());
        }
    }
    users.sort();
    Ok(users)
}

fn gives_guesses(current: &UserRecord, restored: &UserRecord) -> bool {
    if restored.status != UserStatus::Registered {
        return false;
    }
    match current.status {
        UserStatus::Registered => restored.guesses_used < current.guesses_used,
        UserStatus::Locked | UserStatus::Deleted => true,
    }
}

fn tombstone(log_index: u64) -> UserRecord {
    UserRecord {
        password_file: Default::default(),
        sealed_secret: Default::default(),
        max_guesses: 0,
        guesses_used: 0,
        status: UserStatus::Deleted,
        oprf_salt: [0; OPRF_SALT_LEN],
        version: log_index,
    }
}
