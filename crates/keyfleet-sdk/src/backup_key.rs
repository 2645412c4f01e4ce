//! Client-side encryption of the backup secret under a key derived from the OPAQUE export key.
//!
//! key = HKDF-SHA512(salt = none, IKM = export key, info = [`KEY_INFO`], L = 32). The client
//! ciphertext is `nonce (12 random bytes) ‖ AES-256-GCM ciphertext ‖ tag (16 bytes)`, with the
//! associated data [`KEY_INFO`] ‖ record id. Only a client that knows the password can derive
//! the export key, so the vault stores this ciphertext without being able to open it.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha512;
use zeroize::Zeroizing;

use crate::SdkError;

/// HKDF info of the backup key, and the prefix of the associated data.
const KEY_INFO: &[u8] = b"keyfleet protocol 1 backup key";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Smallest backup secret the SDK stores, in bytes.
pub const MIN_SECRET_LEN: usize = 1;
/// Largest backup secret the SDK stores, in bytes. Its client ciphertext is 28 bytes longer,
/// well below the vault's limit of 1024 bytes.
pub const MAX_SECRET_LEN: usize = 512;

/// The AES-256-GCM key that encrypts one record's backup secret, zeroized on drop.
pub(crate) struct BackupKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    record_id: String,
}

impl BackupKey {
    /// Derives the backup key of `record_id` from the OPAQUE export key.
    pub(crate) fn derive(export_key: &[u8], record_id: &str) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha512>::new(None, export_key)
            .expand(KEY_INFO, key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA512 output length");

        Self {
            key,
            record_id: record_id.to_owned(),
        }
    }

    /// Encrypts `secret` into a client ciphertext.
    pub(crate) fn seal(&self, secret: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = self.associated_data();

        let ciphertext = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encrypts any plaintext under 64 GiB");

        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Decrypts a client ciphertext from [`BackupKey::seal`].
    ///
    /// # Errors
    /// [`SdkError::Protocol`] when the ciphertext is too short or fails authentication: it was
    /// changed, or it belongs to another record or password.
    pub(crate) fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SdkError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(SdkError::Protocol {
                reason: format!(
                    "the recovered backup ciphertext is {} bytes, shorter than a nonce and a tag",
                    sealed.len()
                ),
            });
        }

        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let aad = self.associated_data();
        let payload = Payload {
            msg: ciphertext,
            aad: &aad,
        };

        self.cipher()
            .decrypt(Nonce::from_slice(nonce), payload)
            .map(Zeroizing::new)
            .map_err(|_| SdkError::Protocol {
                reason: "the recovered backup ciphertext failed authentication under the key \
                         derived from the password"
                    .to_owned(),
            })
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(self.key.as_ref()).expect("the key is 32 bytes")
    }

    fn associated_data(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(KEY_INFO.len() + self.record_id.len());
        aad.extend_from_slice(KEY_INFO);
        aad.extend_from_slice(self.record_id.as_bytes());
        aad
    }
}

impl fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupKey")
            .field("key", &"[REDACTED]")
            .field("record_id", &self.record_id)
            .finish()
    }
}

/// Checks that `secret` is between [`MIN_SECRET_LEN`] and [`MAX_SECRET_LEN`] bytes long.
pub(crate) fn check_secret_len(secret: &[u8]) -> Result<(), SdkError> {
    if (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) {
        return Ok(());
    }

    Err(SdkError::InvalidArgument {
        field: Some("secret".to_owned()),
        message: format!(
            "the secret is {} bytes; store between {MIN_SECRET_LEN} and {MAX_SECRET_LEN} bytes",
            secret.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT_KEY: [u8; 64] = [7; 64];
    const RECORD: &str = "tenant-a/alice";

    #[test]
    fn seal_then_open() {
        let key = BackupKey::derive(&EXPORT_KEY, RECORD);

        let sealed = key.seal(b"backup key bytes");
        let opened = key.open(&sealed).unwrap();

        assert_eq!(opened.as_slice(), b"backup key bytes");
        assert_eq!(sealed.len(), NONCE_LEN + 16 + TAG_LEN);
    }

    #[test]
    fn nonce_differs_per_seal() {
        let key = BackupKey::derive(&EXPORT_KEY, RECORD);

        let first = key.seal(b"same secret");
        let second = key.seal(b"same secret");

        assert_ne!(first[..NONCE_LEN], second[..NONCE_LEN]);
        assert_ne!(first, second);
    }

    #[test]
    fn changed_byte_is_rejected() {
        let key = BackupKey::derive(&EXPORT_KEY, RECORD);
        let sealed = key.seal(b"backup key bytes");

        for index in [0, NONCE_LEN, sealed.len() - 1] {
            let mut changed = sealed.clone();
            changed[index] ^= 0x01;

            let result = key.open(&changed);

            assert!(
                matches!(result, Err(SdkError::Protocol { .. })),
                "byte {index} flipped: {result:?}"
            );
        }
    }

    #[test]
    fn other_export_key_is_rejected() {
        let sealed = BackupKey::derive(&EXPORT_KEY, RECORD).seal(b"backup key bytes");

        let result = BackupKey::derive(&[8; 64], RECORD).open(&sealed);

        assert!(
            matches!(result, Err(SdkError::Protocol { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn other_record_is_rejected() {
        let sealed = BackupKey::derive(&EXPORT_KEY, RECORD).seal(b"backup key bytes");

        let result = BackupKey::derive(&EXPORT_KEY, "tenant-a/bob").open(&sealed);

        assert!(
            matches!(result, Err(SdkError::Protocol { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn short_ciphertext_is_rejected() {
        let key = BackupKey::derive(&EXPORT_KEY, RECORD);

        for len in [0, NONCE_LEN, NONCE_LEN + TAG_LEN - 1] {
            let result = key.open(&vec![0; len]);

            assert!(
                matches!(result, Err(SdkError::Protocol { .. })),
                "{len} bytes: {result:?}"
            );
        }
    }

    #[test]
    fn empty_secret_round_trips_but_is_not_stored() {
        let key = BackupKey::derive(&EXPORT_KEY, RECORD);

        let opened = key.open(&key.seal(b"")).unwrap();

        assert!(opened.is_empty());
        assert!(check_secret_len(b"").is_err());
    }

    #[test]
    fn secret_length_bounds() {
        assert!(check_secret_len(&[1; MIN_SECRET_LEN]).is_ok());
        assert!(check_secret_len(&[1; MAX_SECRET_LEN]).is_ok());

        let error = check_secret_len(&[1; MAX_SECRET_LEN + 1]).unwrap_err();

        assert!(
            matches!(error, SdkError::InvalidArgument { field: Some(ref field), .. } if field == "secret"),
            "{error:?}"
        );
    }

    #[test]
    fn debug_hides_key() {
        let key = BackupKey::derive(&EXPORT_KEY, RECORD);

        let printed = format!("{key:?}");

        assert!(printed.contains("[REDACTED]"), "{printed}");
        assert!(!printed.contains("key: ["), "{printed}");
    }
}
