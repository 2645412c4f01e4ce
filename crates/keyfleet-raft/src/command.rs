use std::fmt;

use serde::Deserialize;
use serde::Serialize;

use crate::bundle_record::MAX_BUNDLE_JSON_LEN;
use crate::fleet::MAX_FLEET_ID_LEN;
use crate::image::VaultImage;
use crate::record::OPRF_SALT_LEN;
use crate::request_id::RequestId;
use crate::response::Rejection;
use crate::sealed_blob::MAX_SEALED_BLOB_LEN;
use crate::sealed_blob::SealedBlob;
use crate::user_id::UserId;

/// A vault command with the client's request id: the payload of a normal Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Id that makes retries of this request return the first outcome.
    pub request_id: RequestId,

    /// The change to make.
    pub command: Command,
}

/// A change to the vault. Its outcome is decided when the entry is applied, from the state the
/// state machine has at that log index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates or replaces the user's record, with no guesses used and status `Registered`.
    Register {
        /// Record version the registration was started at, 0 for no record. The command
        /// changes nothing unless the record still has it, so a registration ticket works once.
        /// `None` registers whatever the record's state.
        expected_version: Option<u64>,
        /// User to register.
        user: UserId,
        /// OPAQUE password file, sealed by the HSM.
        password_file: SealedBlob,
        /// The client's encrypted backup secret, sealed by the HSM.
        sealed_secret: SealedBlob,
        /// Number of password guesses allowed before the record must be locked; at least 1.
        max_guesses: u32,
        /// Salt of the record's OPRF key, drawn when the registration started.
        oprf_salt: [u8; OPRF_SALT_LEN],
    },

    /// Counts one password guess, if the record is registered and has a guess left.
    ConsumeGuess {
        /// User whose guess to count.
        user: UserId,
    },

    /// Sets the guess count back to zero after a verified recovery, if the record version is
    /// still `expected_version`.
    ResetGuesses {
        /// User whose count to reset.
        user: UserId,
        /// Version the API layer read before it verified the recovery.
        expected_version: u64,
    },

    /// Deletes the user's record, leaving a `Deleted` tombstone.
    Erase {
        /// User to delete.
        user: UserId,
    },

    /// Erases the password file and sealed secret and keeps a `Locked` tombstone.
    Lock {
        /// User to lock.
        user: UserId,
        /// Record version the lock decision was made at. The command changes nothing unless
        /// the record still has it. `None` locks whatever the record's state.
        expected_version: Option<u64>,
    },

    /// Sets the fleet-wide OPAQUE server setup and fleet metadata, once.
    InitFleet {
        /// Id of the fleet, at most [`MAX_FLEET_ID_LEN`] bytes.
        fleet_id: String,
        /// Creation time in seconds since the Unix epoch, stamped by the API layer.
        created_at_unix_secs: u64,
        /// OPAQUE server setup, sealed by the HSM.
        sealed_server_setup: SealedBlob,
    },

    /// Replaces the user records, and the fleet setup if the image has one, with those of a
    /// saved snapshot. Restored records get the command's log index as their version, and
    /// current records the image lacks become `Deleted` tombstones. The remembered requests stay
    /// as they are. Unless `allow_counter_rollback` is set, the command changes nothing when it
    /// would give any user more guesses than the current state does.
    Restore {
        /// The saved vault state; its `dedup` list is ignored.
        image: VaultImage,
        /// Restores even when a guess count would go down or a locked or deleted record would
        /// come back. Dangerous: it hands an attacker the guesses counted since the snapshot.
        allow_counter_rollback: bool,
    },

    /// Stores a new validation bundle of the fleet's public keys if its epoch is newer than the
    /// stored one's.
    PublishBundle {
        /// Fleet key epoch of the bundle, from 1.
        epoch: u64,
        /// The validation bundle as JSON, at most [`MAX_BUNDLE_JSON_LEN`] bytes.
        bundle_json: Vec<u8>,
    },
}

impl Command {
    /// Checks the bounds that the state machine enforces on every command.
    pub fn validate(&self) -> Result<(), Rejection> {
        match self {
            Command::Register {
                password_file,
                sealed_secret,
                max_guesses,
                ..
            } => {
                check_blob("password_file", password_file)?;
                check_blob("sealed_secret", sealed_secret)?;

                if *max_guesses == 0 {
                    return Err(Rejection::ZeroMaxGuesses);
                }

                Ok(())
            }

            Command::InitFleet {
                fleet_id,
                sealed_server_setup,
                ..
            } => {
                check_fleet_id(fleet_id)?;
                check_blob("sealed_server_setup", sealed_server_setup)
            }

            Command::Restore { image, .. } => {
                for (_, record) in &image.users {
                    check_blob("password_file", &record.password_file)?;
                    check_blob("sealed_secret", &record.sealed_secret)?;
                }
                if let Some(fleet) = &image.fleet {
                    check_fleet_id(&fleet.fleet_id)?;
                    check_blob("sealed_server_setup", &fleet.sealed_server_setup)?;
                }
                if let Some(bundle) = &image.bundle {
                    check_bundle_json(&bundle.bundle_json)?;
                }
                Ok(())
            }

            Command::PublishBundle { epoch, bundle_json } => {
                if *epoch == 0 {
                    return Err(Rejection::ZeroBundleEpoch);
                }
                check_bundle_json(bundle_json)
            }

            Command::ConsumeGuess { .. }
            | Command::ResetGuesses { .. }
            | Command::Erase { .. }
            | Command::Lock { .. } => Ok(()),
        }
    }

    /// Returns the command name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Register { .. } => "register",
            Command::ConsumeGuess { .. } => "consume_guess",
            Command::ResetGuesses { .. } => "reset_guesses",
            Command::Erase { .. } => "erase",
            Command::Lock { .. } => "lock",
            Command::InitFleet { .. } => "init_fleet",
            Command::Restore { .. } => "restore",
            Command::PublishBundle { .. } => "publish_bundle",
        }
    }
}

fn check_blob(field: &'static str, blob: &SealedBlob) -> Result<(), Rejection> {
    if blob.len() > MAX_SEALED_BLOB_LEN {
        return Err(Rejection::BlobTooLong {
            field: field.to_owned(),
            len: blob.len() as u64,
            max: MAX_SEALED_BLOB_LEN as u64,
        });
    }

    Ok(())
}

fn check_bundle_json(bundle_json: &[u8]) -> Result<(), Rejection> {
    if bundle_json.is_empty() || bundle_json.len() > MAX_BUNDLE_JSON_LEN {
        return Err(Rejection::BundleLength {
            len: bundle_json.len() as u64,
            max: MAX_BUNDLE_JSON_LEN as u64,
        });
    }
    Ok(())
}

fn check_fleet_id(fleet_id: &str) -> Result<(), Rejection> {
    if fleet_id.is_empty() {
        return Err(Rejection::EmptyFleetId);
    }

    if fleet_id.len() > MAX_FLEET_ID_LEN {
        return Err(Rejection::FleetIdTooLong {
            len: fleet_id.len() as u64,
            max: MAX_FLEET_ID_LEN as u64,
        });
    }

    Ok(())
}

/// Prints the request id and command name, without user ids or sealed bytes, because openraft
/// logs entries with `Display`.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.command.name(), self.request_id)
    }
}
