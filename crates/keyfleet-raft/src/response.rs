use serde::Deserialize;
use serde::Serialize;

use crate::record::OPRF_SALT_LEN;
use crate::user_id::UserId;

/// Outcome of applying one log entry, returned by `client_write` on the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The entry was a blank entry or a membership change, so no vault command ran.
    NoOp,

    /// The command broke a bound that the state machine enforces, and nothing changed.
    Rejected(Rejection),

    /// Outcome of `Register`.
    Register(RegisterOutcome),

    /// Outcome of `ConsumeGuess`.
    ConsumeGuess(GuessOutcome),

    /// Outcome of `ResetGuesses`.
    ResetGuesses(ResetOutcome),

    /// Outcome of `Erase`.
    Erase(EraseOutcome),

    /// Outcome of `Lock`.
    Lock(LockOutcome),

    /// Outcome of `InitFleet`.
    InitFleet(InitFleetOutcome),

    /// Outcome of `Restore`.
    Restore(RestoreOutcome),

    /// Outcome of `PublishBundle`.
    PublishBundle(PublishBundleOutcome),
}

/// Outcome of `PublishBundle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublishBundleOutcome {
    /// The bundle is now the current one.
    Published,

    /// The stored bundle has this epoch and the same bytes, so nothing changed.
    AlreadyPublished,

    /// The stored bundle's epoch is the same or newer, with other bytes, so nothing changed.
    NotNewer {
        /// Epoch of the stored bundle.
        current_epoch: u64,
    },
}

/// Bound that a command broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    /// `Register` asked for a policy of zero guesses.
    #[error("max_guesses is 0: register with a policy of at least 1 guess")]
    ZeroMaxGuesses,

    /// A sealed blob is longer than the maximum.
    #[error("{field} is {len} bytes long, over the maximum of {max} bytes: send a shorter blob")]
    BlobTooLong {
        /// Name of the command field.
        field: String,
        /// Length of the blob in bytes.
        len: u64,
        /// The maximum in bytes.
        max: u64,
    },

    /// `InitFleet` has an empty fleet id.
    #[error("fleet id is empty: send a non-empty fleet id")]
    EmptyFleetId,

    /// `InitFleet` has a fleet id longer than the maximum.
    #[error("fleet id is {len} bytes long, over the maximum of {max} bytes: send a shorter id")]
    FleetIdTooLong {
        /// Length of the fleet id in bytes.
        len: u64,
        /// The maximum in bytes.
        max: u64,
    },

    /// `PublishBundle` names epoch 0.
    #[error("the bundle's epoch is 0: fleet key epochs start at 1")]
    ZeroBundleEpoch,

    /// A validation bundle is empty or longer than the maximum.
    #[error("the validation bundle is {len} bytes long; it must be 1 to {max} bytes")]
    BundleLength {
        /// Length of the bundle in bytes.
        len: u64,
        /// The maximum in bytes.
        max: u64,
    },
}

/// Outcome of `Register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegisterOutcome {
    /// No record existed, and a new one was created.
    Created {
        /// Version of the new record.
        version: u64,
    },

    /// A registered or locked record existed and was replaced.
    Replaced {
        /// Version of the new record.
        version: u64,
    },

    /// The record's version is not the expected one, so nothing changed.
    VersionMismatch {
        /// Version the record has now, 0 when there is no record.
        current_version: u64,
    },
}

/// Outcome of `ConsumeGuess`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuessOutcome {
    /// The guess was counted, and at least one more guess is left.
    Counted {
        /// Guesses counted so far, this one included.
        guesses_used: u32,
        /// Guesses left after this one.
        guesses_left: u32,
        /// Version of the record after the count.
        version: u64,
        /// OPRF salt of the registration the guess was counted against.
        oprf_salt: [u8; OPRF_SALT_LEN],
    },

    /// The guess was counted and used the last allowed guess. If this guess fails, the API layer
    /// must send `Lock`.
    LastGuessCounted {
        /// Guesses counted so far, equal to the policy maximum.
        guesses_used: u32,
        /// Version of the record after the count.
        version: u64,
        /// OPRF salt of the registration the guess was counted against.
        oprf_salt: [u8; OPRF_SALT_LEN],
    },

    /// The record is locked, or has no guesses left, and the guess was not counted.
    Locked,

    /// No record exists for the user, or it was deleted.
    NotFound,
}

/// Outcome of `ResetGuesses`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResetOutcome {
    /// The guess count is zero again.
    Reset {
        /// Version of the record after the reset.
        version: u64,
    },

    /// The record changed after the API layer read it, so the count was not reset.
    VersionMismatch {
        /// Version the record has now.
        current_version: u64,
    },

    /// The record is locked.
    Locked,

    /// No record exists for the user.
    NotFound,
}

/// Outcome of `Erase`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EraseOutcome {
    /// The record was deleted.
    Erased,

    /// No record existed for the user.
    NotFound,
}

/// Outcome of `Lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockOutcome {
    /// The password file and sealed secret were erased, and the record is a tombstone now.
    Locked {
        /// Version of the tombstone.
        version: u64,
    },

    /// The record was already locked and did not change.
    AlreadyLocked {
        /// Version of the tombstone.
        version: u64,
    },

    /// No record exists for the user.
    NotFound,

    /// The record's version is not the expected one, so nothing changed.
    VersionMismatch {
        /// Version the record has now.
        current_version: u64,
    },
}

/// Outcome of `InitFleet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitFleetOutcome {
    /// The fleet setup was stored.
    Initialized,

    /// The fleet already has the same fleet id and server setup, so nothing changed.
    AlreadyInitialized,

    /// The fleet already has a different fleet id or server setup, which stays as it is.
    Conflict {
        /// Fleet id already stored.
        existing_fleet_id: String,
    },
}

/// Outcome of `Restore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreOutcome {
    /// The image replaced the vault state.
    Restored {
        /// Number of user records in the image.
        users: u64,
        /// Number of users whose guess count went down, or whose locked or deleted record came
        /// back, because `allow_counter_rollback` was set.
        rolled_back: u64,
    },

    /// The image would give some users more guesses than the current state, and
    /// `allow_counter_rollback` was not set, so nothing changed.
    CounterRollback {
        /// Number of users affected.
        users: u64,
        /// The first few users affected, ordered by user id.
        examples: Vec<UserId>,
    },

    /// The image belongs to another fleet than the current state, so nothing changed.
    FleetMismatch {
        /// Fleet id of the current state.
        current_fleet_id: String,
        /// Fleet id of the image.
        image_fleet_id: String,
    },
}
