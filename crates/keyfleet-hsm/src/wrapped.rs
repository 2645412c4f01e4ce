//! Keys in transit between tokens.
//!
//! The sender generates an ephemeral P-256 key pair in its token, derives a one-time AES-256
//! key-wrapping key with `CKM_ECDH1_DERIVE` against the recipient's transport public key, and
//! wraps the secret key with `CKM_AES_KEY_WRAP_PAD` (RFC 5649). The recipient derives the same
//! wrapping key from its transport private key and the ephemeral public point. Neither the
//! wrapping key nor the secret key leaves either token in the clear.
//!
//! ```text
//! magic "KFWK" | version u8 | key kind u8 | ephemeral P-256 point (65 bytes) | wrapped key
//! ```

use std::fmt;

use crate::{HsmError, KeyKind};

const MAGIC: &[u8; 4] = b"KFWK";
const VERSION: u8 = 1;
/// Length of an uncompressed SEC1 P-256 point: `0x04 ‖ x ‖ y`.
pub const P256_POINT_LEN: usize = 65;
const HEADER_LEN: usize = 6 + P256_POINT_LEN;
/// Shortest RFC 5649 output: one 8-byte integrity block and one 8-byte data block.
const MIN_WRAPPED_LEN: usize = 16;

/// A token's P-256 transport public key, as an uncompressed SEC1 point.
#[derive(Clone, PartialEq, Eq)]
pub struct TransportPublicKey([u8; P256_POINT_LEN]);

impl TransportPublicKey {
    pub fn from_sec1(point: &[u8]) -> Result<Self, HsmError> {
        let point: [u8; P256_POINT_LEN] = point
            .try_into()
            .ok()
            .filter(|p: &[u8; P256_POINT_LEN]| p[0] == 0x04)
            .ok_or_else(|| HsmError::MalformedWrappedKey {
                reason: format!(
                    "transport public key must be a {P256_POINT_LEN}-byte uncompressed \
                         P-256 point, got {} bytes",
                    point.len()
                ),
            })?;
        Ok(Self(point))
    }

    pub fn as_sec1(&self) -> &[u8; P256_POINT_LEN] {
        &self.0
    }
}

impl fmt::Debug for TransportPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransportPublicKey(")?;
        for byte in &self.0[1..9] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A secret key wrapped for one recipient token. Safe to send over any channel: only the
/// holder of the recipient's transport private key can unwrap it.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub(crate) kind: KeyKind,
    pub(crate) ephemeral: TransportPublicKey,
    pub(crate) wrapped: Vec<u8>,
}

impl WrappedKey {
    /// The kind of the wrapped key; the recipient must unwrap it into a spec of the same kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER_LEN + self.wrapped.len());
        bytes.extend_from_slice(MAGIC);
        bytes.push(VERSION);
        bytes.push(self.kind.code());
        bytes.extend_from_slice(self.ephemeral.as_sec1());
        bytes.extend_from_slice(&self.wrapped);
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HsmError> {
        let malformed = |reason: String| HsmError::MalformedWrappedKey { reason };

        if bytes.len() < HEADER_LEN + MIN_WRAPPED_LEN || &bytes[..4] != MAGIC {
            return Err(malformed("missing the \"KFWK\" header or too short".into()));
        }
        if bytes[4] != VERSION {
            return Err(malformed(format!(
                "format version {} is not supported; this build reads version {VERSION}",
                bytes[4]
            )));
        }

        let kind = KeyKind::from_code(bytes[5])
            .filter(|kind| kind.is_secret_key())
            .ok_or_else(|| malformed(format!("key kind code {} cannot be wrapped", bytes[5])))?;
        let ephemeral = TransportPublicKey::from_sec1(&bytes[6..HEADER_LEN])?;

        Ok(Self {
            kind,
            ephemeral,
            wrapped: bytes[HEADER_LEN..].to_vec(),
        })
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("kind", &self.kind)
            .field("ephemeral", &self.ephemeral)
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WrappedKey {
        let mut point = [3u8; P256_POINT_LEN];
        point[0] = 0x04;
        WrappedKey {
            kind: KeyKind::SealAes256,
            ephemeral: TransportPublicKey::from_sec1(&point).unwrap(),
            wrapped: vec![5; 40],
        }
    }

    #[test]
    fn bytes_round_trip() {
        let key = sample();

        let parsed = WrappedKey::from_bytes(&key.to_bytes()).unwrap();

        assert_eq!(parsed, key);
    }

    #[test]
    fn from_bytes_rejects_bad_input() {
        let good = sample().to_bytes();
        let mut signing_kind = good.clone();
        signing_kind[5] = KeyKind::SigningEd25519.code();
        let mut compressed_point = good.clone();
        compressed_point[6] = 0x02;

        let cases = [
            (good[..20].to_vec(), "too short"),
            (signing_kind, "cannot be wrapped"),
            (compressed_point, "uncompressed"),
        ];
        for (bytes, expected) in cases {
            let error = WrappedKey::from_bytes(&bytes).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
    }
}
