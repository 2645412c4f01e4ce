//! The validation bundle: an artifact with the witness's signature and checkpoint and the
//! operator's counter-signature, as clients receive it and the witness log serves it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::error::BundleError;
use crate::merkle::Hash;
use crate::statement::WitnessStatement;

/// Longest encoded bundle accepted, in bytes.
pub const MAX_BUNDLE_LEN: usize = 64 * 1024;

/// A validation bundle. Binary fields are base64 (signatures, proof hashes) or hex (digest,
/// key id), so the bundle travels as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationBundle {
    /// The artifact's canonical JSON.
    pub artifact: String,
    /// Epoch of the artifact.
    pub epoch: u64,
    /// SHA-256 of `artifact`, hex.
    pub digest: String,
    /// When the witness signed, in Unix seconds.
    pub timestamp: u64,
    /// Signed-note key id of the witness key, hex.
    pub witness_key_id: String,
    /// The witness's Ed25519 signature over the statement, base64.
    pub witness_signature: String,
    /// The operator's Ed25519 signature over the counter-signature message, base64; empty
    /// until the operator has signed.
    #[serde(default)]
    pub countersignature: String,
    /// The witness's signed checkpoint of its log right after this epoch's entry.
    pub checkpoint: String,
    /// Inclusion proof of the statement, leaf `epoch - 1`, under `checkpoint`.
    pub inclusion_proof: Vec<String>,
    /// Consistency proof from the log at `epoch - 1` entries to `checkpoint`; empty at
    /// epoch 1.
    #[serde(default)]
    pub consistency_proof: Vec<String>,
}

impl ValidationBundle {
    /// Encodes the bundle as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a bundle of strings and integers always serializes")
    }

    /// Decodes a bundle from JSON of at most [`MAX_BUNDLE_LEN`] bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_LEN {
            return Err(BundleError::Malformed(format!(
                "the bundle is {} bytes, more than the limit of {MAX_BUNDLE_LEN}",
                bytes.len()
            )));
        }
        serde_json::from_slice(bytes).map_err(|error| BundleError::Malformed(error.to_string()))
    }

    /// Returns the statement the witness signed, given the namespace.
    pub fn statement(&self, namespace: &str) -> Result<WitnessStatement, BundleError> {
        Ok(WitnessStatement {
            namespace: namespace.into(),
            epoch: self.epoch,
            timestamp: self.timestamp,
            digest: decode_digest(&self.digest)?,
        })
    }

    /// Decodes the witness signature.
    pub fn witness_signature_bytes(&self) -> Result<Vec<u8>, BundleError> {
        decode_base64("witness_signature", &self.witness_signature)
    }

    /// Decodes the counter-signature; empty when missing.
    pub fn countersignature_bytes(&self) -> Result<Vec<u8>, BundleError> {
        decode_base64("countersignature", &self.countersignature)
    }

    /// Decodes the inclusion proof.
    pub fn inclusion_hashes(&self) -> Result<Vec<Hash>, BundleError> {
        decode_hashes("inclusion_proof", &self.inclusion_proof)
    }

    /// Decodes the consistency proof.
    pub fn consistency_hashes(&self) -> Result<Vec<Hash>, BundleError> {
        decode_hashes("consistency_proof", &self.consistency_proof)
    }
}

/// Encodes proof hashes as base64 strings.
pub fn encode_hashes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|hash| BASE64.encode(hash)).collect()
}

/// Decodes base64 proof hashes.
pub fn decode_hashes(field: &str, hashes: &[String]) -> Result<Vec<Hash>, BundleError> {
    hashes
        .iter()
        .map(|text| {
            decode_base64(field, text)?
                .try_into()
                .map_err(|_| BundleError::Malformed(format!("a hash in {field} is not 32 bytes")))
        })
        .collect()
}

fn decode_digest(text: &str) -> Result<[u8; 32], BundleError> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| BundleError::Malformed(format!("digest {text:?} is not 32 bytes of hex")))
}

fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, BundleError> {
    BASE64
        .decode(text)
        .map_err(|_| BundleError::Malformed(format!("{field} is not base64")))
}
