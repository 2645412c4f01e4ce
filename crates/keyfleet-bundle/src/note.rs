//! C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures, and C2SP
//! checkpoints (https://c2sp.org/tlog-checkpoint) carried in them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::NoteError;
use crate::merkle::Hash;

/// Signature type byte of Ed25519 in signed notes.
const ED25519_ALGORITHM: u8 = 0x01;

/// Prefix of a signature line: an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// An Ed25519 note verifier: the key name, its 4-byte key id and the public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Creates the verifier of `key` under `name`, which must be non-empty and hold no
    /// whitespace or `+`.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        validate_key_name(name).map_err(|reason| NoteError::MalformedVerifierKey {
            key: name.into(),
            reason,
        })?;
        Ok(Self {
            name: name.into(),
            key_id: key_id(name, &key),
            key,
        })
    }

    /// Parses a verifier key string, `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let malformed = |reason: &str| NoteError::MalformedVerifierKey {
            key: text.into(),
            reason: reason.into(),
        };
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected <name>+<hex key id>+<base64 key>"));
        };
        let key_bytes = BASE64
            .decode(key_b64)
            .map_err(|_| malformed("the key is not base64"))?;
        let Some((&ED25519_ALGORITHM, raw_key)) = key_bytes.split_first() else {
            return Err(malformed("the key is not an Ed25519 key (type byte 0x01)"));
        };
        let raw_key: [u8; 32] = raw_key
            .try_into()
            .map_err(|_| malformed("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&raw_key)
            .map_err(|_| malformed("the key is not a valid Ed25519 point"))?;
        let verifier = Self::new(name, key)?;
        if hex::encode(verifier.key_id) != id_hex.to_ascii_lowercase() {
            return Err(malformed("the key id does not match the name and key"));
        }
        Ok(verifier)
    }

    /// Returns the key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the key id: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || key).
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// Returns the Ed25519 public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Verifies a raw Ed25519 signature over `message` with this key.
    pub fn verify_raw(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(message, &signature).is_ok()
    }
}

impl std::fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut key_bytes = vec![ED25519_ALGORITHM];
        key_bytes.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            BASE64.encode(key_bytes)
        )
    }
}

/// Signs `text` (which must end in a newline) as a signed note with one Ed25519 signature.
pub fn sign_note(text: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    if !text.ends_with('\n') || text.contains("\n\n") {
        return Err(NoteError::Malformed(
            "the note text must end with one newline and hold no blank line".into(),
        ));
    }
    let verifier = NoteVerifier::new(name, key.verifying_key())?;
    let signature = key.sign(text.as_bytes());
    let mut blob = verifier.key_id.to_vec();
    blob.extend_from_slice(&signature.to_bytes());
    Ok(format!(
        "{text}\n{SIGNATURE_PREFIX}{name} {}\n",
        BASE64.encode(blob)
    ))
}

/// Checks the signature of `verifier` on a signed note and returns the note's text.
pub fn open_note<'a>(note: &'a str, verifier: &NoteVerifier) -> Result<&'a str, NoteError> {
    let Some(split) = note.rfind("\n\n") else {
        return Err(NoteError::Malformed(
            "no blank line before the signatures".into(),
        ));
    };
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if !note.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the note must end with a newline".into(),
        ));
    }
    for line in signatures.lines() {
        let Some(rest) = line.strip_prefix(SIGNATURE_PREFIX) else {
            return Err(NoteError::Malformed(format!(
                "{line:?} is not a signature line"
            )));
        };
        let Some((name, blob_b64)) = rest.split_once(' ') else {
            return Err(NoteError::Malformed(format!("{line:?} has no signature")));
        };
        let blob = BASE64
            .decode(blob_b64)
            .map_err(|_| NoteError::Malformed(format!("{line:?} is not base64")))?;
        if name != verifier.name || blob.len() < 4 || blob[..4] != verifier.key_id {
            continue;
        }
        if !verifier.verify_raw(text.as_bytes(), &blob[4..]) {
            return Err(NoteError::BadSignature { name: name.into() });
        }
        return Ok(text);
    }
    Err(NoteError::UnknownKey {
        name: verifier.name.clone(),
        key_id: hex::encode(verifier.key_id),
    })
}

/// A C2SP checkpoint: the origin line, the tree size and the root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Unique name of the log.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Root hash of the tree of `size` leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// Returns the checkpoint's note text, three lines ending in newlines.
    pub fn to_note_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Signs the checkpoint as a note.
    pub fn sign(&self, name: &str, key: &SigningKey) -> Result<String, NoteError> {
        sign_note(&self.to_note_text(), name, key)
    }

    /// Verifies a signed checkpoint with `verifier` and parses it.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Self, NoteError> {
        let text = open_note(note, verifier)?;
        let mut lines = text.lines();
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::Malformed(
                "a checkpoint has an origin, a size and a root hash".into(),
            ));
        };
        let size_is_canonical = !size.is_empty()
            && size.bytes().all(|byte| byte.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size = size
            .parse::<u64>()
            .ok()
            .filter(|_| size_is_canonical)
            .ok_or_else(|| NoteError::Malformed(format!("tree size {size:?} is not a number")))?;
        let root: Hash = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| {
                NoteError::Malformed("the root hash is not 32 bytes of base64".into())
            })?;
        Ok(Self {
            origin: origin.into(),
            size,
            root,
        })
    }
}

fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519_ALGORITHM]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn validate_key_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err("a key name is non-empty and holds no whitespace or '+'".into());
    }
    Ok(())
}

#[cfg(test)]
#[path = "note_tests.rs"]
mod tests;
