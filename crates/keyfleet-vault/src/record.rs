use keyfleet_hsm::SealedBlob;

/// Version and guess count of a user's record, as the replicated state machine stores them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordState {
    /// Log index of the command that last changed the record. Every counted guess changes it.
    pub version: u64,
    /// Guesses counted since registration or the last reset.
    pub guesses_used: u32,
}

/// The parts of a registered user's record that recovery reads.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// The sealed OPAQUE password file from [`crate::RegisteredRecord::password_file`].
    pub password_file: SealedBlob,
    /// The sealed client ciphertext from [`crate::RegisteredRecord::sealed_secret`].
    pub sealed_secret: SealedBlob,
    /// Salt of the record's OPRF key, from [`crate::RegisteredRecord::oprf_salt`].
    pub oprf_salt: [u8; OPRF_SALT_LEN],
    /// Version and guess count of the record.
    pub state: RecordState,
}

/// Length of the OPRF salt that each registration draws.
pub const OPRF_SALT_LEN: usize = 16;

/// OPRF salt of a user with no record. No registration has it, because registrations draw
/// theirs at random, so evaluations for an unknown user say nothing about a later registration.
pub(crate) const UNREGISTERED_OPRF_SALT: [u8; OPRF_SALT_LEN] = [0; OPRF_SALT_LEN];
