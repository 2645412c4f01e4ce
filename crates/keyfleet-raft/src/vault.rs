//! The vault rules: how each command changes the vault tables and what outcome it returns.
//!
//! The rules are deterministic and depend only on the tables, the request and the log index, so
//! every node that applies the same log reaches the same state.

use zeroize::Zeroize;

use crate::bundle_record::BundleRecord;
use crate::command::Command;
use crate::command::Request;
use crate::dedup_entry::DedupEntry;
use crate::fleet::FleetRecord;
use crate::record::UserRecord;
use crate::record::UserStatus;
use crate::request_id::RequestId;
use crate::response::EraseOutcome;
use crate::response::GuessOutcome;
use crate::response::InitFleetOutcome;
use crate::response::LockOutcome;
use crate::response::PublishBundleOutcome;
use crate::response::RegisterOutcome;
use crate::response::ResetOutcome;
use crate::response::Response;
use crate::user_id::UserId;

/// Number of request ids the state machine remembers, counted by log index.
///
/// Every node of a fleet must use the same value, because a retry that arrives after its id was
/// evicted runs again, and nodes with different values would then reach different states.
pub const DEDUP_CAPACITY: u64 = 100_000;

/// Storage of the vault state, as the rules in [`apply_request`] need it.
pub trait VaultTables {
    /// Error the storage returns.
    type Error;

    /// Returns the user's record.
    fn user(&self, user: &UserId) -> Result<Option<UserRecord>, Self::Error>;

    /// Inserts or replaces the user's record.
    fn put_user(&mut self, user: &UserId, record: &UserRecord) -> Result<(), Self::Error>;

    /// Returns the ids of every user with a record, tombstones included.
    fn user_ids(&self) -> Result<Vec<UserId>, Self::Error>;

    /// Returns the fleet setup.
    fn fleet(&self) -> Result<Option<FleetRecord>, Self::Error>;

    /// Stores the fleet setup.
    fn put_fleet(&mut self, fleet: &FleetRecord) -> Result<(), Self::Error>;

    /// Returns the current validation bundle.
    fn bundle(&self) -> Result<Option<BundleRecord>, Self::Error>;

    /// Stores the current validation bundle.
    fn put_bundle(&mut self, bundle: &BundleRecord) -> Result<(), Self::Error>;

    /// Returns the remembered outcome of a request.
    fn dedup_response(&self, request_id: &RequestId) -> Result<Option<Response>, Self::Error>;

    /// Remembers a request's outcome.
    fn insert_dedup_entry(&mut self, entry: &DedupEntry) -> Result<(), Self::Error>;

    /// Returns the number of remembered requests.
    fn dedup_len(&self) -> Result<u64, Self::Error>;

    /// Forgets the request with the lowest log index and returns its id.
    fn remove_oldest_dedup_entry(&mut self) -> Result<Option<RequestId>, Self::Error>;
}

/// Applies `request`, which sits at `log_index` in the Raft log, and returns its outcome.
///
/// A request whose id is remembered returns its first outcome and changes nothing. Otherwise the
/// command runs, its outcome is remembered, and the oldest remembered ids are evicted until at
/// most `dedup_capacity` remain.
pub fn apply_request<T: VaultTables>(
    tables: &mut T,
    log_index: u64,
    request: &Request,
    dedup_capacity: u64,
) -> Result<Response, T::Error> {
    if let Some(first) = tables.dedup_response(&request.request_id)? {
        return Ok(first);
    }

    let response = match request.command.validate() {
        Ok(()) => run_command(tables, log_index, &request.command)?,
        Err(rejection) => Response::Rejected(rejection),
    };

    let entry = DedupEntry {
        request_id: request.request_id,
        log_index,
        response: response.clone(),
    };
    tables.insert_dedup_entry(&entry)?;

    while tables.dedup_len()? > dedup_capacity {
        tables.remove_oldest_dedup_entry()?;
    }

    Ok(response)
}

fn run_command<T: VaultTables>(
    tables: &mut T,
    log_index: u64,
    command: &Command,
) -> Result<Response, T::Error> {
    let response = match command {
        Command::Register {
            expected_version,
            user,
            password_file,
            sealed_secret,
            max_guesses,
            oprf_salt,
        } => {
            let current_version = tables.user(user)?.map_or(0, |record| record.version);
            if expected_version.is_some_and(|expected| expected != current_version) {
                let outcome = RegisterOutcome::VersionMismatch { current_version };
                return Ok(Response::Register(outcome));
            }

            let record = UserRecord {
                password_file: password_file.clone(),
                sealed_secret: sealed_secret.clone(),
                max_guesses: *max_guesses,
                guesses_used: 0,
                status: UserStatus::Registered,
                oprf_salt: *oprf_salt,
                version: log_index,
            };
            Response::Register(register(tables, user, &record)?)
        }

        Command::ConsumeGuess { user } => {
            Response::ConsumeGuess(consume_guess(tables, log_index, user)?)
        }

        Command::ResetGuesses {
            user,
            expected_version,
        } => Response::ResetGuesses(reset_guesses(tables, log_index, user, *expected_version)?),

        Command::Erase { user } => Response::Erase(erase(tables, log_index, user)?),

        Command::Lock {
            user,
            expected_version,
        } => Response::Lock(lock(tables, log_index, user, *expected_version)?),

        Command::InitFleet {
            fleet_id,
            created_at_unix_secs,
            sealed_server_setup,
        } => {
            let fleet = FleetRecord {
                fleet_id: fleet_id.clone(),
                created_at_unix_secs: *created_at_unix_secs,
                sealed_server_setup: sealed_server_setup.clone(),
            };
            Response::InitFleet(init_fleet(tables, &fleet)?)
        }

        Command::PublishBundle { epoch, bundle_json } => {
            let bundle = BundleRecord {
                epoch: *epoch,
                bundle_json: bundle_json.clone(),
            };
            Response::PublishBundle(publish_bundle(tables, &bundle)?)
        }

        Command::Restore {
            image,
            allow_counter_rollback,
        } => Response::Restore(crate::restore::restore(
            tables,
            log_index,
            image,
            *allow_counter_rollback,
        )?),
    };

    Ok(response)
}

fn register<T: VaultTables>(
    tables: &mut T,
    user: &UserId,
    record: &UserRecord,
) -> Result<RegisterOutcome, T::Error> {
    let existed = tables
        .user(user)?
        .is_some_and(|record| record.status != UserStatus::Deleted);

    tables.put_user(user, record)?;

    let version = record.version;
    if existed {
        Ok(RegisterOutcome::Replaced { version })
    } else {
        Ok(RegisterOutcome::Created { version })
    }
}

fn consume_guess<T: VaultTables>(
    tables: &mut T,
    log_index: u64,
    user: &UserId,
) -> Result<GuessOutcome, T::Error> {
    let Some(mut record) = live_record(tables, user)? else {
        return Ok(GuessOutcome::NotFound);
    };

    if record.status == UserStatus::Locked || record.guesses_left() == 0 {
        return Ok(GuessOutcome::Locked);
    }

    record.guesses_used += 1;
    record.version = log_index;
    tables.put_user(user, &record)?;

    let outcome = match record.guesses_left() {
        0 => GuessOutcome::LastGuessCounted {
            guesses_used: record.guesses_used,
            version: record.version,
            oprf_salt: record.oprf_salt,
        },
        guesses_left => GuessOutcome::Counted {
            guesses_used: record.guesses_used,
            guesses_left,
            version: record.version,
            oprf_salt: record.oprf_salt,
        },
    };
    Ok(outcome)
}

fn reset_guesses<T: VaultTables>(
    tables: &mut T,
    log_index: u64,
    user: &UserId,
    expected_version: u64,
) -> Result<ResetOutcome, T::Error> {
    let Some(mut record) = live_record(tables, user)? else {
        return Ok(ResetOutcome::NotFound);
    };

    if record.status == UserStatus::Locked {
        return Ok(ResetOutcome::Locked);
    }

    if record.version != expected_version {
        return Ok(ResetOutcome::VersionMismatch {
            current_version: record.version,
        });
    }

    record.guesses_used = 0;
    record.version = log_index;
    tables.put_user(user, &record)?;

    Ok(ResetOutcome::Reset {
        version: record.version,
    })
}

/// Replaces the record with a `Deleted` tombstone at `log_index`.
///
/// NOTE: tombstones are never removed, so a vault keeps one small record (the user id and a few
/// integers) for every user id ever deleted.
fn erase<T: VaultTables>(
    tables: &mut T,
    log_index: u64,
    user: &UserId,
) -> Result<EraseOutcome, T::Error> {
    if live_record(tables, user)?.is_none() {
        return Ok(EraseOutcome::NotFound);
    }

    let tombstone = UserRecord {
        password_file: Default::default(),
        sealed_secret: Default::default(),
        max_guesses: 0,
        guesses_used: 0,
        status: UserStatus::Deleted,
        oprf_salt: [0; crate::record::OPRF_SALT_LEN],
        version: log_index,
    };
    tables.put_user(user, &tombstone)?;

    Ok(EraseOutcome::Erased)
}

/// Returns the user's record unless there is none or it is a `Deleted` tombstone.
fn live_record<T: VaultTables>(tables: &T, user: &UserId) -> Result<Option<UserRecord>, T::Error> {
    let record = tables.user(user)?;

    Ok(record.filter(|record| record.status != UserStatus::Deleted))
}

fn lock<T: VaultTables>(
    tables: &mut T,
    log_index: u64,
    user: &UserId,
    expected_version: Option<u64>,
) -> Result<LockOutcome, T::Error> {
    let Some(mut record) = live_record(tables, user)? else {
        return Ok(LockOutcome::NotFound);
    };

    if expected_version.is_some_and(|expected| expected != record.version) {
        return Ok(LockOutcome::VersionMismatch {
            current_version: record.version,
        });
    }

    if record.status == UserStatus::Locked {
        return Ok(LockOutcome::AlreadyLocked {
            version: record.version,
        });
    }

    // Zeroizing a blob also empties it. Copies stay in the Raft log entry of the `Register`
    // until the log is purged, and in the current snapshot until the next one is built. So the
    // state machine reports every applied lock and erase (`StateMachineStore::erasures`), and
    // the node compacts at once.
    record.password_file.zeroize();
    record.sealed_secret.zeroize();
    record.status = UserStatus::Locked;
    record.version = log_index;
    tables.put_user(user, &record)?;

    Ok(LockOutcome::Locked {
        version: record.version,
    })
}

/// Stores the fleet setup unless one exists. A second `InitFleet` with the same fleet id and
/// server setup succeeds without change, whatever its creation time, so the first creation time
/// stays.
fn init_fleet<T: VaultTables>(
    tables: &mut T,
    fleet: &FleetRecord,
) -> Result<InitFleetOutcome, T::Error> {
    let Some(existing) = tables.fleet()? else {
        tables.put_fleet(fleet)?;
        return Ok(InitFleetOutcome::Initialized);
    };

    let identical = existing.fleet_id == fleet.fleet_id
        && existing.sealed_server_setup == fleet.sealed_server_setup;

    if identical {
        Ok(InitFleetOutcome::AlreadyInitialized)
    } else {
        Ok(InitFleetOutcome::Conflict {
            existing_fleet_id: existing.fleet_id,
        })
    }
}

/// Stores `bundle` if its epoch is newer than the stored bundle's, so the bundle a node serves
/// never goes back to an older epoch, which clients reject.
fn publish_bundle<T: VaultTables>(
    tables: &mut T,
    bundle: &BundleRecord,
) -> Result<PublishBundleOutcome, T::Error> {
    match tables.bundle()? {
        Some(current) if current == *bundle => Ok(PublishBundleOutcome::AlreadyPublished),
        Some(current) if current.epoch >= bundle.epoch => Ok(PublishBundleOutcome::NotNewer {
            current_epoch: current.epoch,
        }),
        _ => {
            tables.put_bundle(bundle)?;
            Ok(PublishBundleOutcome::Published)
        }
    }
}
