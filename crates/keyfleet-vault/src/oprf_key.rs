//! Per-user OPRF key material, derived inside the HSM.
//!
//! opaque-ke 4.0.1 derives the OPRF key material of a credential identifier as
//! HKDF-Expand(PRK = OPRF seed, info = credential identifier ‖ "OprfKey", L = 32) with
//! SHA-512. With L no larger than one SHA-512 output, HKDF-Expand is the first L bytes of
//! HMAC-SHA512(PRK, info ‖ 0x01) (RFC 5869, section 2.3). The vault computes that HMAC with the
//! token's 64-byte HMAC-SHA512 secret as the PRK, so the OPRF seed never leaves the HSM, and
//! passes the result to opaque-ke's `*_with_key_material` functions.
//!
//! The credential identifier is the record's 16-byte OPRF salt followed by the record id (see
//! [`credential_id`]). The salt is fixed-length, so the pair is unambiguous, and each
//! registration draws a new salt, so an OPRF evaluation at RegistrationStart, which counts no
//! guess, uses a key unrelated to the one that guards the current record.

use keyfleet_hsm::{Hsm, KeyLabel};
use opaque_ke::generic_array::GenericArray;
use opaque_ke::generic_array::typenum::U32;
use zeroize::Zeroizing;

use crate::VaultError;

/// The info label that opaque-ke 4.0.1 appends to the credential identifier.
const OPRF_KEY_LABEL: &[u8] = b"OprfKey";
/// Length of the OPRF key material: one ristretto255 scalar.
const KEY_MATERIAL_LEN: usize = 32;

/// OPRF key material for one credential identifier, zeroized on drop.
pub(crate) type OprfKeyMaterial = Zeroizing<GenericArray<u8, U32>>;

/// Builds the OPAQUE credential identifier of `user`'s record with OPRF salt `salt`.
pub(crate) fn credential_id(salt: &[u8; crate::OPRF_SALT_LEN], user: &str) -> Vec<u8> {
    let mut id = Vec::with_capacity(salt.len() + user.len());
    id.extend_from_slice(salt);
    id.extend_from_slice(user.as_bytes());
    id
}

/// Builds the HMAC input for `credential_id`: the HKDF info followed by the block counter 1.
pub(crate) fn hmac_input(credential_id: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(credential_id.len() + OPRF_KEY_LABEL.len() + 1);
    input.extend_from_slice(credential_id);
    input.extend_from_slice(OPRF_KEY_LABEL);
    input.push(0x01);
    input
}

/// Truncates the HMAC-SHA512 output to the OPRF key material.
pub(crate) fn key_material_from_hmac(hmac: &[u8; 64]) -> OprfKeyMaterial {
    Zeroizing::new(GenericArray::clone_from_slice(&hmac[..KEY_MATERIAL_LEN]))
}

/// Derives the OPRF key material for `credential_id` with the token's HMAC secret `seed_key`.
pub(crate) async fn derive(
    hsm: &dyn Hsm,
    seed_key: &KeyLabel,
    credential_id: &[u8],
) -> Result<OprfKeyMaterial, VaultError> {
    let hmac = hsm
        .hmac_sha512(seed_key, &hmac_input(credential_id))
        .await
        .map_err(VaultError::hsm("HMAC-SHA512 for the OPRF key"))?;

    Ok(key_material_from_hmac(&hmac))
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, Mac};
    use opaque_ke::{ClientRegistration, ServerRegistration, ServerSetup};
    use rand::rngs::OsRng;
    use sha2::Sha512;

    use super::*;
    use crate::Suite;

    fn software_hmac(seed: &[u8], data: &[u8]) -> [u8; 64] {
        let mut mac = Hmac::<Sha512>::new_from_slice(seed).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Builds a setup whose OPRF seed is `seed`. The serialized setup starts with the seed.
    fn setup_with_seed(seed: &[u8; 64]) -> ServerSetup<Suite> {
        let mut bytes = ServerSetup::<Suite>::new(&mut OsRng).serialize();
        bytes[..64].copy_from_slice(seed);
        ServerSetup::deserialize(&bytes).unwrap()
    }

    #[test]
    fn hmac_derivation_matches_opaque_ke() {
        let seed = [0x5a; 64];
        let setup = setup_with_seed(&seed);
        let request = ClientRegistration::<Suite>::start(&mut OsRng, b"password")
            .unwrap()
            .message;

        for credential_id in [&b"alice"[..], b"", &[0xff; 256]] {
            let hmac = software_hmac(&seed, &hmac_input(credential_id));
            let material = key_material_from_hmac(&hmac);

            let ours =
                ServerRegistration::start_with_key_material(&setup, *material, request.clone())
                    .unwrap();
            let theirs = ServerRegistration::start(&setup, request.clone(), credential_id).unwrap();

            assert_eq!(
                ours.message.serialize(),
                theirs.message.serialize(),
                "credential id {credential_id:?}"
            );
        }
    }

    #[test]
    fn hmac_input_layout() {
        assert_eq!(hmac_input(b"bob"), b"bobOprfKey\x01");
    }
}
