//! Input limits, checked before any cryptographic work. Every OPAQUE message has a fixed
//! length (`keyfleet_protocol`'s message lengths), so the vault accepts exactly that length.

use crate::VaultError;

/// Maximum length of a user id in bytes of UTF-8, the same bound as the Raft record's user id.
pub const MAX_USER_ID_LEN: usize = 256;
/// Maximum length of the client's encrypted backup secret. A 256-bit key under an AEAD with a
/// header fits many times over.
pub const MAX_CLIENT_CIPHERTEXT_LEN: usize = 1024;
/// Maximum length of a ticket the vault accepts back. A login ticket for a user id of
/// [`MAX_USER_ID_LEN`] bytes is about 590 bytes.
pub const MAX_TICKET_LEN: usize = 1024;

/// Checks that the OPAQUE message `message` is exactly `expected` bytes long.
pub(crate) fn check_message_len(
    message: &'static str,
    bytes: &[u8],
    expected: usize,
) -> Result<(), VaultError> {
    if bytes.len() == expected {
        return Ok(());
    }

    Err(VaultError::MalformedMessage {
        message,
        reason: format!("expected {expected} bytes, got {}", bytes.len()),
    })
}

/// Checks that `user` is a non-empty id of at most [`MAX_USER_ID_LEN`] bytes.
pub(crate) fn check_user_id(user: &str) -> Result<(), VaultError> {
    if user.is_empty() || user.len() > MAX_USER_ID_LEN {
        return Err(VaultError::InvalidUserId {
            len: user.len(),
            max: MAX_USER_ID_LEN,
        });
    }

    Ok(())
}
