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
    /// Version and guess count of the record.
    pub state: RecordState,
}
