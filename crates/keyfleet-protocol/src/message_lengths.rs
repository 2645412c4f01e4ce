//! Lengths of the OPAQUE messages of [`Suite`]. Each is fixed, so the vault accepts exactly
//! that length and nothing else.

use opaque_ke::generic_array::typenum::Unsigned;
use opaque_ke::{
    CredentialFinalizationLen, CredentialRequestLen, RegistrationRequestLen, RegistrationUploadLen,
    ServerRegistrationLen,
};

use crate::Suite;

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
