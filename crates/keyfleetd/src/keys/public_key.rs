//! Transport public keys as operators handle them: parsed from SEC1 bytes and shown by a short
//! fingerprint.

use keyfleet_hsm::{P256_POINT_LEN, TransportPublicKey};
use sha2::{Digest, Sha256};

use super::hex;

/// Parses an uncompressed SEC1 P-256 point. The error describes what is wrong with `point`.
pub(crate) fn parse_sec1(point: &[u8]) -> Result<TransportPublicKey, String> {
    if point.len() != P256_POINT_LEN || point[0] != 0x04 {
        return Err(format!(
            "expected a {P256_POINT_LEN}-byte uncompressed P-256 point starting with 04, got \
             {} bytes",
            point.len()
        ));
    }
    TransportPublicKey::from_sec1(point).map_err(|error| error.to_string())
}

/// Returns `sha256:` and the first 16 bytes of SHA-256 over the key's SEC1 point, in hex.
pub(crate) fn fingerprint(key: &TransportPublicKey) -> String {
    let digest = Sha256::digest(key.as_sec1());

    format!("sha256:{}", hex::encode(&digest[..16]))
}
