//! The witness's Ed25519 key, stored as a hex seed in a file only its owner can read.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ed25519_dalek::SigningKey;
use keyfleet_bundle::NoteVerifier;
use zeroize::Zeroizing;

use crate::error::WitnessError;

/// The witness's key name and signing key. Debug output shows only the verifier key.
pub struct WitnessKey {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessKey")
            .field("name", &self.name)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl WitnessKey {
    /// Creates a key from a name and a signing key.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, WitnessError> {
        NoteVerifier::new(name, key.verifying_key())
            .map_err(|error| WitnessError::Invalid(error.to_string()))?;
        Ok(Self {
            name: name.into(),
            key,
        })
    }

    /// Loads the key from `path`, or generates one and writes it with mode 0600 when the file
    /// does not exist. An existing file readable by group or others is rejected.
    pub fn load_or_generate(name: &str, path: &Path) -> Result<Self, WitnessError> {
        let key_error = |reason: String| WitnessError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        match fs::metadata(path) {
            Ok(metadata) => {
                if metadata.permissions().mode() & 0o077 != 0 {
                    return Err(key_error(
                        "is readable by group or others; run chmod 600 on it".into(),
                    ));
                }
                let text = Zeroizing::new(
                    fs::read_to_string(path).map_err(|error| key_error(error.to_string()))?,
                );
                let mut seed = Zeroizing::new([0u8; 32]);
                hex::decode_to_slice(text.trim(), seed.as_mut_slice()).map_err(|_| {
                    key_error("must hold one line of 64 hex digits, an Ed25519 seed".into())
                })?;
                Self::new(name, SigningKey::from_bytes(&seed))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate(&mut rand::rngs::OsRng);
                let text = Zeroizing::new(format!("{}\n", hex::encode(key.to_bytes())));
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|error| key_error(error.to_string()))?;
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|error| key_error(error.to_string()))?;
                tracing::info!(path = %path.display(), "generated a new witness key");
                Self::new(name, key)
            }
            Err(error) => Err(key_error(error.to_string())),
        }
    }

    /// Returns the key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Returns the note verifier key clients pin.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier::new(&self.name, self.key.verifying_key())
            .expect("the name was checked in new")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness.key");
        let first = WitnessKey::load_or_generate("w", &path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = WitnessKey::load_or_generate("w", &path).unwrap();
        assert_eq!(first.verifier(), second.verifier());
        assert!(!format!("{first:?}").contains(&hex::encode(first.key.to_bytes())));
    }

    #[test]
    fn key_file_readable_by_others_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness.key");
        WitnessKey::load_or_generate("w", &path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let result = WitnessKey::load_or_generate("w", &path);
        assert!(matches!(result, Err(WitnessError::KeyFile { .. })));
    }
}
