//! Input limits, checked before any cryptographic work. Every OPAQUE message of [`Suite`] has
//! a fixed length, so the vault accepts exactly that length and nothing else.

use opaque_ke::generic_array::typenum::Unsigned;
use opaque_ke::{
    CredentialFinalizationLen, CredentialRequestLen, RegistrationRequestLen, RegistrationUploadLen,
    ServerRegistrationLen,
};

use crate::{Suite, VaultError};

/// Length of a `RegistrationRequest` (the blinded element): 32 bytes.
pub const REGISTRATION_REQUEST_LEN: usize = RegistrationRequestLen::<Suite>::USIZE;
/// Length of a `RegistrationUpload` (client public key, masking key, envelope): 192 bytes.
pub const REGISTRATION_UPLOAD_LEN: usize = RegistrationUploadLen::<Suite>::USIZE;
/// Length of a `CredentialRequest` (blinded element and KE1): 96 bytes.
pub const CREDENTIAL_REQUEST_LEN: usize = CredentialRequestLen::<Suite>::USIZE;
/// Length of a `CredentialFinalization` (KE3, the client MAC): 64 bytes.
pub const CREDENTIAL_FINALIZATION_LEN: usize = CredentialFinalizationLen::<Suite>::USIZE;
/// Length of a serialized password file (`ServerRegistration`): 192 bytes.
pub const PASSWORD_FILE_LEN: usize = ServerRegistrationLen::<Suite>::USIZE;

/// Maximum length of a user id in bytes of UTF-8, the same bound as the Raft record's user id.
pub const MAX_USER_ID_LEN: usize = 256;
/// Maximum length of the client's encrypted backup secret. A 256-bit key under an AEAD with a
/// header fits many times over.
pub const MAX_CLIENT_CIPHERTEXT_LEN: usize = 1024;
/// Maximum length of a ticket the vault accepts back. A login ticket for a user id of
/// [`MAX_USER_ID_LEN`] bytes is about 570 bytes.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_lengths_match_the_suite() {
        assert_eq!(REGISTRATION_REQUEST_LEN, 32);
        assert_eq!(REGISTRATION_UPLOAD_LEN, 192);
        assert_eq!(CREDENTIAL_REQUEST_LEN, 96);
        assert_eq!(CREDENTIAL_FINALIZATION_LEN, 64);
        assert_eq!(PASSWORD_FILE_LEN, 192);
    }
}
