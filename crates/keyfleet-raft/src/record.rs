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
}

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
