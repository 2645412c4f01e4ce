//! The fleet key artifact: a canonical, versioned JSON document naming every public key of
//! one fleet epoch with its role and algorithm.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical::to_canonical_json;
use crate::error::ArtifactError;

/// Version of the artifact format this crate writes and reads.
pub const ARTIFACT_VERSION: u32 = 1;

/// Namespace of keyfleet's fleet key artifacts, the default log namespace.
pub const FLEET_KEYS_NAMESPACE: &str = "keyfleet.fleet_keys.v1";

/// Maximum namespace length, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 128;

/// The purpose of a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// The OPAQUE server's static public key (ristretto255).
    OpaqueServer,
    /// The operator's fleet signing key, which counter-signs the witness signature.
    FleetSigning,
    /// One node's own Ed25519 signing key.
    NodeSigning,
}

impl KeyRole {
    /// Returns the role's name as the artifact writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpaqueServer => "opaque_server",
            Self::FleetSigning => "fleet_signing",
            Self::NodeSigning => "node_signing",
        }
    }
}

/// Algorithm of a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAlgorithm {
    /// A ristretto255 group element, 32 bytes.
    Ristretto255,
    /// An Ed25519 public key, 32 bytes (RFC 8032).
    Ed25519,
}

/// One public key of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetPublicKey {
    /// The key's purpose.
    pub role: KeyRole,
    /// Name of the key within its role, such as `node-1`; unique per role.
    pub id: String,
    /// Key algorithm.
    pub algorithm: KeyAlgorithm,
    /// The public key, lowercase hex.
    pub public_key: String,
}

/// How many nodes the fleet has and how many must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumRule {
    /// Raft voters.
    pub voters: u32,
    /// Voters that make a majority.
    pub majority: u32,
}

/// The fleet key artifact of one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetKeyArtifact {
    /// Format version, [`ARTIFACT_VERSION`].
    pub version: u32,
    /// Log namespace, such as [`FLEET_KEYS_NAMESPACE`].
    pub namespace: String,
    /// The fleet id, the OPAQUE server identity.
    pub fleet_id: String,
    /// Epoch, from 1, one more than the previous artifact's.
    pub epoch: u64,
    /// Creation time, in Unix seconds.
    pub created_at: u64,
    /// Quorum rule of the fleet.
    pub quorum: QuorumRule,
    /// Public keys, sorted by role and id.
    pub keys: Vec<FleetPublicKey>,
}

impl FleetKeyArtifact {
    /// Sorts the keys and checks every rule of the format.
    pub fn normalize(mut self) -> Result<Self, ArtifactError> {
        self.keys
            .sort_by(|a, b| (a.role, a.id.as_str()).cmp(&(b.role, b.id.as_str())));
        self.validate()?;
        Ok(self)
    }

    /// Returns the canonical JSON encoding, whose SHA-256 is the artifact's digest.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, ArtifactError> {
        let value = serde_json::to_value(self)
            .map_err(|error| ArtifactError::Malformed(error.to_string()))?;
        to_canonical_json(&value)
    }

    /// Parses an artifact and rejects it unless `bytes` is its canonical encoding and it
    /// meets every rule.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, ArtifactError> {
        let artifact: Self = serde_json::from_slice(bytes)
            .map_err(|error| ArtifactError::Malformed(error.to_string()))?;
        artifact.validate()?;
        if artifact.to_canonical_bytes()? != bytes {
            return Err(ArtifactError::NotCanonical(
                "keys must be sorted, with no whitespace and keys listed by role and id".into(),
            ));
        }
        Ok(artifact)
    }

    /// Returns the public keys with `role`.
    pub fn keys_with_role(&self, role: KeyRole) -> impl Iterator<Item = &FleetPublicKey> {
        self.keys.iter().filter(move |key| key.role == role)
    }

    /// Returns the OPAQUE server public key, which [`Self::validate`] requires exactly once.
    pub fn opaque_server_key(&self) -> Option<&FleetPublicKey> {
        self.keys_with_role(KeyRole::OpaqueServer).next()
    }

    /// Checks every rule of the format.
    pub fn validate(&self) -> Result<(), ArtifactError> {
        if self.version != ARTIFACT_VERSION {
            return Err(invalid(format!(
                "version {} is not supported; this build reads version {ARTIFACT_VERSION}",
                self.version
            )));
        }
        validate_namespace(&self.namespace).map_err(invalid)?;
        if self.fleet_id.is_empty() || self.fleet_id.len() > 64 {
            return Err(invalid("fleet_id must be 1 to 64 bytes".into()));
        }
        if self.epoch == 0 {
            return Err(invalid("epoch must be at least 1".into()));
        }
        let QuorumRule { voters, majority } = self.quorum;
        if voters == 0 || majority != voters / 2 + 1 {
            return Err(invalid(format!(
                "quorum {majority} of {voters} is not a majority; use voters / 2 + 1"
            )));
        }
        self.validate_keys()
    }

    fn validate_keys(&self) -> Result<(), ArtifactError> {
        let mut seen = BTreeSet::new();
        for key in &self.keys {
            validate_key(key)?;
            if !seen.insert((key.role, key.id.as_str())) {
                return Err(invalid(format!(
                    "the key {} {:?} is listed twice",
                    key.role.as_str(),
                    key.id
                )));
            }
        }
        let sorted = self
            .keys
            .windows(2)
            .all(|pair| (pair[0].role, pair[0].id.as_str()) < (pair[1].role, pair[1].id.as_str()));
        if !sorted {
            return Err(invalid("keys must be sorted by role and id".into()));
        }
        if self.keys_with_role(KeyRole::OpaqueServer).count() != 1 {
            return Err(invalid("exactly one opaque_server key is required".into()));
        }
        if self.keys_with_role(KeyRole::FleetSigning).count() != 1 {
            return Err(invalid("exactly one fleet_signing key is required".into()));
        }
        Ok(())
    }
}

/// Returns the SHA-256 digest of artifact bytes.
pub fn artifact_digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Checks a log namespace: 1 to [`MAX_NAMESPACE_LEN`] bytes of `a-z`, `0-9`, `.`, `_`, `-`.
pub fn validate_namespace(namespace: &str) -> Result<(), String> {
    let allowed = |byte: u8| {
        byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'_' | b'-')
    };
    if namespace.is_empty()
        || namespace.len() > MAX_NAMESPACE_LEN
        || !namespace.bytes().all(allowed)
    {
        return Err(format!(
            "namespace {namespace:?} must be 1 to {MAX_NAMESPACE_LEN} characters of a-z, 0-9, '.', '_' and '-'"
        ));
    }
    Ok(())
}

fn validate_key(key: &FleetPublicKey) -> Result<(), ArtifactError> {
    if key.id.is_empty() || key.id.len() > 64 {
        return Err(invalid(format!(
            "key id {:?} must be 1 to 64 bytes",
            key.id
        )));
    }
    let expected_algorithm = match key.role {
        KeyRole::OpaqueServer => KeyAlgorithm::Ristretto255,
        KeyRole::FleetSigning | KeyRole::NodeSigning => KeyAlgorithm::Ed25519,
    };
    if key.algorithm != expected_algorithm {
        return Err(invalid(format!(
            "the {} key {:?} must use {expected_algorithm:?}",
            key.role.as_str(),
            key.id
        )));
    }
    let is_lower_hex = key
        .public_key
        .bytes()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if key.public_key.len() != 64 || !is_lower_hex {
        return Err(invalid(format!(
            "the public key of {} {:?} must be 32 bytes in lowercase hex",
            key.role.as_str(),
            key.id
        )));
    }
    Ok(())
}

fn invalid(reason: String) -> ArtifactError {
    ArtifactError::Invalid(reason)
}

#[cfg(test)]
#[path = "artifact_tests.rs"]
mod tests;
