//! The operator keys a witness pins per namespace: only a submission signed by one of them
//! can claim a namespace's next epoch.

use std::collections::BTreeMap;
use std::str::FromStr;

use ed25519_dalek::{Signature, VerifyingKey};
use keyfleet_bundle::{FleetKeyArtifact, artifact_digest, submission_message, validate_namespace};

use crate::error::WitnessError;

/// One `NAMESPACE=HEX` binding, as given to `keyfleet-witness serve --operator-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorKeyBinding {
    /// Log namespace.
    pub namespace: String,
    /// Operator's Ed25519 public key.
    pub key: VerifyingKey,
}

impl FromStr for OperatorKeyBinding {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (namespace, key_hex) = text.split_once('=').ok_or_else(|| {
            format!("operator key {text:?} must be NAMESPACE=HEX, such as keyfleet.fleet_keys.v1=<64 hex digits>")
        })?;
        validate_namespace(namespace)?;
        let key = hex::decode(key_hex.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
            .ok_or_else(|| {
                format!(
                    "operator key {key_hex:?} of {namespace} is not an Ed25519 public key in \
                     hex (64 digits); `keyfleet fleet keygen` prints one"
                )
            })?;
        Ok(Self {
            namespace: namespace.into(),
            key,
        })
    }
}

/// The pinned operator keys, by namespace. A namespace may have several keys, so that an
/// operator can move to a new key without a gap.
#[derive(Debug, Clone, Default)]
pub struct OperatorKeys {
    keys: BTreeMap<String, Vec<VerifyingKey>>,
}

impl OperatorKeys {
    /// Builds the set from bindings; a binding given twice counts once.
    pub fn new(bindings: impl IntoIterator<Item = OperatorKeyBinding>) -> Self {
        let mut keys: BTreeMap<String, Vec<VerifyingKey>> = BTreeMap::new();
        for binding in bindings {
            let namespace_keys = keys.entry(binding.namespace).or_default();
            if !namespace_keys.contains(&binding.key) {
                namespace_keys.push(binding.key);
            }
        }
        Self { keys }
    }

    /// Returns the number of namespaces with a pinned key.
    pub fn namespace_count(&self) -> usize {
        self.keys.len()
    }

    /// Checks that `signature` is a signature by a key pinned for `namespace` over the
    /// submission message of `artifact_bytes`.
    pub fn authorize(
        &self,
        namespace: &str,
        artifact_bytes: &[u8],
        signature: &[u8],
    ) -> Result<(), WitnessError> {
        let Some(keys) = self.keys.get(namespace) else {
            return Err(WitnessError::Unauthorized(format!(
                "the witness pins no operator key for {namespace}; start it with \
                 --operator-key {namespace}=<operator public key hex>"
            )));
        };
        let artifact = FleetKeyArtifact::from_canonical_bytes(artifact_bytes)
            .map_err(|error| WitnessError::Invalid(error.to_string()))?;
        let signature = Signature::from_slice(signature).map_err(|_| {
            WitnessError::Unauthorized(format!(
                "the submission for {namespace} must carry a 64-byte operator signature, got \
                 {} bytes",
                signature.len()
            ))
        })?;
        let message =
            submission_message(namespace, artifact.epoch, &artifact_digest(artifact_bytes));
        if keys
            .iter()
            .any(|key| key.verify_strict(&message, &signature).is_ok())
        {
            return Ok(());
        }
        Err(WitnessError::Unauthorized(format!(
            "the operator signature on epoch {} of {namespace} does not verify with any of the \
             {} operator keys pinned for it",
            artifact.epoch,
            keys.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_parses_namespace_and_key() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        let text = format!("keyfleet.fleet_keys.v1={}", hex::encode(key.as_bytes()));
        let binding: OperatorKeyBinding = text.parse().unwrap();
        assert_eq!(binding.namespace, "keyfleet.fleet_keys.v1");
        assert_eq!(binding.key, key);
    }

    #[test]
    fn binding_rejects_bad_text() {
        for text in [
            "keyfleet.fleet_keys.v1",
            "Bad Namespace=00",
            "keyfleet.fleet_keys.v1=zz",
            "keyfleet.fleet_keys.v1=0011",
        ] {
            assert!(text.parse::<OperatorKeyBinding>().is_err(), "{text}");
        }
    }
}
