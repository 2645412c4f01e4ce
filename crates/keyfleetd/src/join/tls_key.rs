//! The joining node's TLS key: generated on the node, and only its public point sent to the
//! leader, which signs a certificate for it.

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData, SignatureAlgorithm};

/// Length of an uncompressed SEC1 P-256 point.
const POINT_LEN: usize = 65;

/// The public point of a node's P-256 TLS key, as rcgen signs it into a certificate.
#[derive(Debug, Clone)]
pub(crate) struct NodePublicKey {
    point: Vec<u8>,
}

impl NodePublicKey {
    /// Accepts a 65-byte uncompressed SEC1 point.
    // NOTE: this checks the encoding only, not that the point is on the curve. A point off the
    // curve yields a certificate that no TLS handshake can use, which harms only its requester.
    pub(crate) fn from_sec1(point: &[u8]) -> Result<Self, String> {
        if point.len() != POINT_LEN || point[0] != 0x04 {
            return Err(format!(
                "expected a {POINT_LEN}-byte uncompressed P-256 point starting with 04, got {} \
                 bytes",
                point.len()
            ));
        }
        Ok(Self {
            point: point.to_vec(),
        })
    }
}

impl PublicKeyData for NodePublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

/// Generates a P-256 key pair for the node's TLS certificate.
pub(crate) fn generate_tls_key() -> Result<KeyPair, rcgen::Error> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips() {
        let key = generate_tls_key().unwrap();

        let public = NodePublicKey::from_sec1(key.public_key_raw()).unwrap();

        assert_eq!(public.der_bytes(), key.public_key_raw());
        assert_eq!(
            public.subject_public_key_info(),
            key.subject_public_key_info()
        );
    }

    #[test]
    fn from_sec1_rejects_compressed_points() {
        let error = NodePublicKey::from_sec1(&[0x02; 33]).unwrap_err();

        assert!(error.contains("got 33 bytes"), "{error}");
    }
}
