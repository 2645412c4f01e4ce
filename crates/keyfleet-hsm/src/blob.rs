//! The sealed blob format.
//!
//! ```text
//! magic "KFSL" | version u8 | label length u8 | key label | IV (12 bytes) | ciphertext ‖ tag (16)
//! ```
//!
//! The associated data is never stored. It is rebuilt at unseal time from the caller's
//! [`SealContext`] and the blob's header, so a blob moved to another record, purpose or key
//! fails authentication instead of decrypting.

use std::fmt;

use crate::{HsmError, KeyLabel};

const MAGIC: &[u8; 4] = b"KFSL";
const AAD_DOMAIN: &[u8] = b"keyfleet/seal";

/// Version of the sealed blob format written by this build.
pub const BLOB_VERSION: u8 = 1;
/// Length of the AES-GCM IV, fresh from the token's random generator for every blob.
pub const IV_LEN: usize = 12;
/// Length of the AES-GCM authentication tag.
pub const TAG_LEN: usize = 16;
/// Largest plaintext that [`crate::Hsm::seal`] accepts.
pub const MAX_PLAINTEXT_LEN: usize = 1 << 20;

/// Context of a sealed value: its purpose and its owner. Both parts are bound into the AES-GCM
/// associated data, so a blob opens only under the context it was sealed for.
#[derive(Debug, Clone, Copy)]
pub struct SealContext<'a> {
    /// Purpose of the plaintext, for example `"opaque-password-file"`.
    pub purpose: &'a str,
    /// Id of the record the plaintext belongs to, for example a user id.
    pub record_id: &'a [u8],
}

impl<'a> SealContext<'a> {
    pub fn new(purpose: &'a str, record_id: &'a [u8]) -> Self {
        Self { purpose, record_id }
    }

    /// Builds the associated data for `version` and `key`: a domain tag followed by
    /// length-prefixed fields, so that no two distinct contexts encode alike.
    pub(crate) fn associated_data(&self, version: u8, key: &KeyLabel) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64 + self.purpose.len() + self.record_id.len());
        aad.extend_from_slice(AAD_DOMAIN);
        aad.push(version);
        push_prefixed(&mut aad, key.as_str().as_bytes());
        push_prefixed(&mut aad, self.purpose.as_bytes());
        push_prefixed(&mut aad, self.record_id);
        aad
    }
}

fn push_prefixed(out: &mut Vec<u8>, field: &[u8]) {
    let len = u32::try_from(field.len()).expect("sealed context fields are far below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

/// A value sealed with AES-256-GCM under a token key. Safe to store and replicate.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedBlob {
    bytes: Vec<u8>,
}

/// The parsed fields of a [`SealedBlob`], borrowed from it.
pub(crate) struct BlobParts<'a> {
    pub(crate) version: u8,
    pub(crate) key: KeyLabel,
    pub(crate) iv: &'a [u8],
    pub(crate) ciphertext: &'a [u8],
}

impl SealedBlob {
    pub(crate) fn assemble(key: &KeyLabel, iv: &[u8; IV_LEN], ciphertext: &[u8]) -> Self {
        let label = key.as_str().as_bytes();
        let mut bytes = Vec::with_capacity(6 + label.len() + IV_LEN + ciphertext.len());
        bytes.extend_from_slice(MAGIC);
        bytes.push(BLOB_VERSION);
        bytes.push(u8::try_from(label.len()).expect("key labels are at most 64 bytes"));
        bytes.extend_from_slice(label);
        bytes.extend_from_slice(iv);
        bytes.extend_from_slice(ciphertext);
        Self { bytes }
    }

    /// Parses stored bytes, checking the header but not the authentication tag.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, HsmError> {
        let blob = Self { bytes };
        blob.parts()?;
        Ok(blob)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Returns the label of the key this blob was sealed under.
    pub fn key_label(&self) -> KeyLabel {
        self.parts()
            .expect("a SealedBlob is parsed on construction")
            .key
    }

    pub(crate) fn parts(&self) -> Result<BlobParts<'_>, HsmError> {
        let malformed = |reason: String| HsmError::MalformedBlob { reason };
        let bytes = self.bytes.as_slice();

        if bytes.len() < 6 || &bytes[..4] != MAGIC {
            return Err(malformed("missing the \"KFSL\" header".into()));
        }

        let version = bytes[4];
        if version != BLOB_VERSION {
            return Err(malformed(format!(
                "format version {version} is not supported; this build reads version \
                 {BLOB_VERSION}"
            )));
        }

        let label_end = 6 + usize::from(bytes[5]);
        let iv_end = label_end + IV_LEN;
        if bytes.len() < iv_end + TAG_LEN {
            return Err(malformed(format!("{} bytes is too short", bytes.len())));
        }

        let label = std::str::from_utf8(&bytes[6..label_end])
            .map_err(|_| malformed("key label is not UTF-8".into()))?;
        let key = KeyLabel::new(label).map_err(|_| malformed("key label is invalid".into()))?;

        Ok(BlobParts {
            version,
            key,
            iv: &bytes[label_end..iv_end],
            ciphertext: &bytes[iv_end..],
        })
    }
}

impl fmt::Debug for SealedBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedBlob")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label() -> KeyLabel {
        KeyLabel::new("seal").unwrap()
    }

    #[test]
    fn assemble_then_parse() {
        let blob = SealedBlob::assemble(&label(), &[7; IV_LEN], &[9; 20]);

        let parsed = SealedBlob::from_bytes(blob.as_bytes().to_vec()).unwrap();
        let parts = parsed.parts().unwrap();

        assert_eq!(parts.version, BLOB_VERSION);
        assert_eq!(parts.key, label());
        assert_eq!(parts.iv, &[7; IV_LEN]);
        assert_eq!(parts.ciphertext, &[9; 20]);
    }

    #[test]
    fn parse_rejects_bad_headers() {
        let good = SealedBlob::assemble(&label(), &[7; IV_LEN], &[9; 20]).into_bytes();
        let mut wrong_magic = good.clone();
        wrong_magic[0] = b'X';
        let mut wrong_version = good.clone();
        wrong_version[4] = 9;
        let truncated = good[..good.len() - 10].to_vec();

        let cases = [
            (wrong_magic, "header"),
            (wrong_version, "version 9"),
            (truncated, "too short"),
            (Vec::new(), "header"),
        ];
        for (bytes, expected) in cases {
            let error = SealedBlob::from_bytes(bytes).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    #[test]
    fn aad_separates_fields() {
        let key = label();

        let a = SealContext::new("ab", b"c").associated_data(1, &key);
        let b = SealContext::new("a", b"bc").associated_data(1, &key);

        assert_ne!(a, b);
    }
}
