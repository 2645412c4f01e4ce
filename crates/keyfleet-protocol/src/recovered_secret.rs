//! Transport of the recovered client ciphertext under the session key.
//!
//! key = HKDF-SHA512(salt = none, IKM = session key, info = [`KEY_INFO`], L = 32). The output is
//! `nonce (12 random bytes) ‖ AES-256-GCM ciphertext ‖ tag (16 bytes)`, with the associated
//! data [`AAD_DOMAIN`] ‖ user id. A session key is used for one message only, but the nonce is
//! random all the same.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha512;
use zeroize::Zeroizing;

use crate::ProtocolError;

/// HKDF info of the transport key.
pub(crate) const KEY_INFO: &[u8] = b"keyfleet protocol 1 recovered secret key";
/// Prefix of the AES-GCM associated data, followed by the user id.
pub(crate) const AAD_DOMAIN: &[u8] = b"keyfleet protocol 1 recovered secret";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Encrypts `plaintext` for `user` under a key derived from `session_key`: the vault's side of
/// RecoveryFinish.
pub fn seal_for_session(session_key: &[u8], user: &str, plaintext: &[u8]) -> Vec<u8> {
    let cipher = transport_cipher(session_key);
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let aad = associated_data(user);

    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .expect("AES-GCM encrypts any plaintext under 64 GiB");

    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

/// Decrypts a recovered secret on the client, with the session key from
/// `ClientLogin::finish` and the user id of the recovery.
///
/// # Errors
/// [`ProtocolError::RecoveredSecretInvalid`] when the bytes were changed, or the session key or
/// user id differs from the recovery's.
pub fn open_recovered_secret(
    session_key: &[u8],
    user: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(ProtocolError::RecoveredSecretInvalid);
    }

    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let cipher = transport_cipher(session_key);
    let aad = associated_data(user);

    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| ProtocolError::RecoveredSecretInvalid)
}

fn transport_cipher(session_key: &[u8]) -> Aes256Gcm {
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha512>::new(None, session_key)
        .expand(KEY_INFO, key.as_mut())
        .expect("32 bytes is a valid HKDF-SHA512 output length");

    Aes256Gcm::new_from_slice(key.as_ref()).expect("the key is 32 bytes")
}

fn associated_data(user: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + user.len());
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(user.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open() {
        let sealed = seal_for_session(&[3; 64], "alice", b"backup key");

        let opened = open_recovered_secret(&[3; 64], "alice", &sealed).unwrap();

        assert_eq!(opened.as_slice(), b"backup key");
    }

    #[test]
    fn open_rejects_other_key_user_or_change() {
        let sealed = seal_for_session(&[3; 64], "alice", b"backup key");
        let mut changed = sealed.clone();
        changed[NONCE_LEN] ^= 1;

        let other_key = open_recovered_secret(&[4; 64], "alice", &sealed);
        let other_user = open_recovered_secret(&[3; 64], "bob", &sealed);
        let tampered = open_recovered_secret(&[3; 64], "alice", &changed);
        let truncated = open_recovered_secret(&[3; 64], "alice", &sealed[..10]);

        assert!(matches!(
            other_key,
            Err(ProtocolError::RecoveredSecretInvalid)
        ));
        assert!(matches!(
            other_user,
            Err(ProtocolError::RecoveredSecretInvalid)
        ));
        assert!(matches!(
            tampered,
            Err(ProtocolError::RecoveredSecretInvalid)
        ));
        assert!(matches!(
            truncated,
            Err(ProtocolError::RecoveredSecretInvalid)
        ));
    }
}
