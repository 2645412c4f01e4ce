use serde::Deserialize;
use serde::Serialize;

use crate::sealed_blob::SealedBlob;

/// State of a user record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserStatus {
    /// The record contains a password file and a sealed secret and accepts guesses.
    Registered,

    /// The password file and sealed secret were erased. The record stays as a tombstone so that
    /// a later recovery attempt learns that the user is locked, not unknown.
    Locked,

    /// The record was deleted. The tombstone keeps the version of the delete, so that a
    /// registration ticket issued before the delete cannot create the record again. The vault
    /// treats the user as unknown.
    Deleted,
}

/// Length of a record's OPRF salt.
pub const OPRF_SALT_LEN: usize = 16;

/// One user's vault record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// OPAQUE password file, sealed by the HSM. Empty once locked.
    pub password_file: SealedBlob,

    /// The client's encrypted backup secret, sealed by the HSM. Empty once locked.
    pub sealed_secret: SealedBlob,

    /// Number of password guesses the policy allows before the record must be locked.
    pub max_guesses: u32,

    /// Number of password guesses counted since registration or the last reset.
    pub guesses_used: u32,

    /// Whether the record is registered or locked.
    pub status: UserStatus,

    /// Salt of the record's OPRF key, drawn at registration. A new registration gets a new
    /// salt, so OPRF evaluations made for an earlier registration, or for a registration that
    /// never finished, say nothing about this one. All zeros in a deleted record.
    pub oprf_salt: [u8; OPRF_SALT_LEN],

    /// Log index of the command that last changed the record. It grows with every change and
    /// is never reused, even after an erase and a new registration of the same user id.
    pub version: u64,
}

impl UserRecord {
    /// Returns the number of guesses left before the record must be locked.
    pub fn guesses_left(&self) -> u32 {
        self.max_guesses.saturating_sub(self.guesses_used)
    }
}
