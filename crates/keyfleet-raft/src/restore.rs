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
    // An image without a fleet setup names no fleet, so it could come from any fleet: restore it
    // only where the cluster has no fleet setup either.
    if let Some(current) = tables.fleet()? {
        let image_fleet_id = image.fleet.as_ref().map(|fleet| fleet.fleet_id.as_str());
        if image_fleet_id != Some(current.fleet_id.as_str()) {
            return Ok(RestoreOutcome::FleetMismatch {
                current_fleet_id: current.fleet_id,
                image_fleet_id: image_fleet_id.unwrap_or_default().to_owned(),
            });
        }
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
    // The bundle only moves forward: clients reject an epoch older than one they have seen.
    if let Some(bundle) = &image.bundle {
        let current_epoch = tables.bundle()?.map_or(0, |current| current.epoch);
        if bundle.epoch > current_epoch {
            tables.put_bundle(bundle)?;
        }
    }

    Ok(RestoreOutcome::Restored {
        users: image.users.len() as u64,
        rolled_back: rolled_back.len() as u64,
    })
}

/// Returns the users, ordered by id, to whom the image would give guesses that the current
/// state does not. Three kinds of restored record count. The first is a registered record with
/// more guesses left than the current registered one. The second is a registered record of
/// another registration, which would bring back an older password file or an erased secret. The
/// third is a registered record where the current one is locked or deleted.
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
        UserStatus::Registered => {
            !same_registration(current, restored) || guesses_left(restored) > guesses_left(current)
        }
        UserStatus::Locked | UserStatus::Deleted => true,
    }
}

/// Tells whether both records come from one registration: each registration draws a new OPRF
/// salt and uploads a new password file.
fn same_registration(current: &UserRecord, restored: &UserRecord) -> bool {
    current.oprf_salt == restored.oprf_salt
        && current.password_file.as_bytes() == restored.password_file.as_bytes()
        && current.sealed_secret.as_bytes() == restored.sealed_secret.as_bytes()
}

fn guesses_left(record: &UserRecord) -> u32 {
    record.max_guesses.saturating_sub(record.guesses_used)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::FleetRecord;
    use crate::memory_tables::MemoryTables;
    use crate::sealed_blob::SealedBlob;

    fn record(status: UserStatus, guesses_used: u32) -> UserRecord {
        UserRecord {
            password_file: SealedBlob::new(vec![1; 8]),
            sealed_secret: SealedBlob::new(vec![2; 8]),
            max_guesses: 5,
            guesses_used,
            status,
            oprf_salt: [7; OPRF_SALT_LEN],
            version: 3,
        }
    }

    fn id(name: &str) -> UserId {
        UserId::new(name).unwrap()
    }

    fn fleet(fleet_id: &str) -> FleetRecord {
        FleetRecord {
            fleet_id: fleet_id.to_owned(),
            created_at_unix_secs: 1,
            sealed_server_setup: SealedBlob::new(vec![9; 8]),
        }
    }

    fn image(users: Vec<(UserId, UserRecord)>) -> VaultImage {
        VaultImage {
            users,
            fleet: Some(fleet("f")),
            dedup: Vec::new(),
            bundle: None,
        }
    }

    #[test]
    fn empty_state_takes_image() {
        let mut tables = MemoryTables::default();
        let snapshot = image(vec![(id("t/a"), record(UserStatus::Registered, 2))]);

        let outcome = restore(&mut tables, 40, &snapshot, false).unwrap();

        assert_eq!(
            outcome,
            RestoreOutcome::Restored {
                users: 1,
                rolled_back: 0
            }
        );
        let restored = tables.user(&id("t/a")).unwrap().unwrap();
        assert_eq!(restored.guesses_used, 2);
        assert_eq!(restored.version, 40);
        assert_eq!(tables.fleet().unwrap(), Some(fleet("f")));
    }

    #[test]
    fn rollbacks_need_the_flag() {
        let cases = [
            (
                record(UserStatus::Registered, 3),
                record(UserStatus::Registered, 1),
            ),
            (
                record(UserStatus::Locked, 0),
                record(UserStatus::Registered, 4),
            ),
            (
                record(UserStatus::Deleted, 0),
                record(UserStatus::Registered, 0),
            ),
            // A higher limit gives guesses back even with more guesses used.
            (
                record(UserStatus::Registered, 1),
                UserRecord {
                    max_guesses: 10,
                    ..record(UserStatus::Registered, 2)
                },
            ),
            // Another registration: an older password file, or a secret erased since.
            (
                record(UserStatus::Registered, 0),
                UserRecord {
                    oprf_salt: [8; OPRF_SALT_LEN],
                    password_file: SealedBlob::new(vec![3; 8]),
                    sealed_secret: SealedBlob::new(vec![4; 8]),
                    ..record(UserStatus::Registered, 4)
                },
            ),
        ];

        for (current, restored) in cases {
            let mut tables = MemoryTables::default();
            tables.put_user(&id("t/a"), &current).unwrap();
            let snapshot = image(vec![(id("t/a"), restored.clone())]);

            let rejected = restore(&mut tables, 40, &snapshot, false).unwrap();
            assert_eq!(
                rejected,
                RestoreOutcome::CounterRollback {
                    users: 1,
                    examples: vec![id("t/a")]
                },
                "{current:?} -> {restored:?}"
            );
            assert_eq!(tables.user(&id("t/a")).unwrap(), Some(current.clone()));

            let allowed = restore(&mut tables, 41, &snapshot, true).unwrap();
            assert_eq!(
                allowed,
                RestoreOutcome::Restored {
                    users: 1,
                    rolled_back: 1
                }
            );
            assert_eq!(
                tables.user(&id("t/a")).unwrap().unwrap().guesses_used,
                restored.guesses_used
            );
        }
    }

    #[test]
    fn image_without_fleet_rejected() {
        let mut tables = MemoryTables::default();
        tables.put_fleet(&fleet("f")).unwrap();
        let snapshot = VaultImage {
            fleet: None,
            ..image(vec![(id("t/a"), record(UserStatus::Registered, 0))])
        };

        let outcome = restore(&mut tables, 40, &snapshot, true).unwrap();

        assert_eq!(
            outcome,
            RestoreOutcome::FleetMismatch {
                current_fleet_id: "f".to_owned(),
                image_fleet_id: String::new(),
            }
        );
        assert_eq!(tables.user(&id("t/a")).unwrap(), None);
    }

    #[test]
    fn higher_counts_are_no_rollback() {
        let mut tables = MemoryTables::default();
        tables
            .put_user(&id("t/a"), &record(UserStatus::Registered, 1))
            .unwrap();
        tables
            .put_user(&id("t/b"), &record(UserStatus::Registered, 0))
            .unwrap();
        let snapshot = image(vec![
            (id("t/a"), record(UserStatus::Registered, 1)),
            (id("t/b"), record(UserStatus::Locked, 0)),
        ]);

        let outcome = restore(&mut tables, 40, &snapshot, false).unwrap();

        assert_eq!(
            outcome,
            RestoreOutcome::Restored {
                users: 2,
                rolled_back: 0
            }
        );
    }

    #[test]
    fn absent_users_become_tombstones() {
        let mut tables = MemoryTables::default();
        tables
            .put_user(&id("t/gone"), &record(UserStatus::Registered, 0))
            .unwrap();

        restore(&mut tables, 40, &image(Vec::new()), false).unwrap();

        let gone = tables.user(&id("t/gone")).unwrap().unwrap();
        assert_eq!(gone.status, UserStatus::Deleted);
        assert!(gone.password_file.is_empty());
        assert_eq!(gone.version, 40);
    }

    #[test]
    fn other_fleet_is_rejected() {
        let mut tables = MemoryTables::default();
        tables.put_fleet(&fleet("other")).unwrap();
        tables
            .put_user(&id("t/a"), &record(UserStatus::Registered, 0))
            .unwrap();

        let outcome = restore(&mut tables, 40, &image(Vec::new()), false).unwrap();

        assert!(
            matches!(outcome, RestoreOutcome::FleetMismatch { .. }),
            "{outcome:?}"
        );
        assert_eq!(
            tables.user(&id("t/a")).unwrap().unwrap().status,
            UserStatus::Registered
        );
    }
}
