//! Building a bundle on the witness's side: the statement, its signature, the checkpoint
//! and the proofs, given the leaves already in the log.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer, SigningKey};

use crate::artifact::{FleetKeyArtifact, artifact_digest};
use crate::bundle::{ValidationBundle, encode_hashes};
use crate::error::{BundleError, NoteError};
use crate::merkle::{Hash, consistency_proof, inclusion_proof, leaf_hash};
use crate::note::{Checkpoint, NoteVerifier};
use crate::statement::{WitnessStatement, log_origin};

/// A witness's identity: its key name and Ed25519 signing key.
#[derive(Debug)]
pub struct WitnessIdentity<'a> {
    /// Key name, also the first part of every log origin.
    pub name: &'a str,
    /// The signing key.
    pub key: &'a SigningKey,
}

/// A bundle the witness issued and the log leaf it appends.
#[derive(Debug, Clone)]
pub struct IssuedBundle {
    /// The bundle, still without the operator's counter-signature.
    pub bundle: ValidationBundle,
    /// Hash of the statement, the new leaf.
    pub leaf: Hash,
}

/// Signs `artifact_bytes` as the next entry of a log whose leaves are `leaves`.
///
/// The caller has checked the epoch rules; this checks that the artifact is canonical, in
/// `namespace`, and at epoch `leaves.len() + 1`.
pub fn issue_bundle(
    witness: &WitnessIdentity<'_>,
    namespace: &str,
    artifact_bytes: &[u8],
    timestamp: u64,
    leaves: &[Hash],
) -> Result<IssuedBundle, BundleError> {
    let artifact = FleetKeyArtifact::from_canonical_bytes(artifact_bytes)?;
    if artifact.namespace != namespace {
        return Err(BundleError::NamespaceMismatch {
            expected: namespace.into(),
            found: artifact.namespace,
        });
    }
    let epoch = leaves.len() as u64 + 1;
    if artifact.epoch != epoch {
        return Err(BundleError::EpochMismatch {
            artifact: artifact.epoch,
            bundle: epoch,
        });
    }

    let digest = artifact_digest(artifact_bytes);
    let statement = WitnessStatement {
        namespace: namespace.into(),
        epoch,
        timestamp,
        digest,
    }
    .to_bytes();
    let signature = witness.key.sign(&statement);
    let leaf = leaf_hash(&statement);

    let mut all_leaves = leaves.to_vec();
    all_leaves.push(leaf);
    let checkpoint = sign_checkpoint(witness, namespace, &all_leaves)?;
    let inclusion = inclusion_proof(all_leaves.len() - 1, &all_leaves)
        .expect("the new leaf is inside the tree");
    let consistency = match leaves.len() {
        0 => Vec::new(),
        old_size => consistency_proof(old_size, &all_leaves).expect("old size is inside the tree"),
    };
    let verifier = NoteVerifier::new(witness.name, witness.key.verifying_key())?;

    let bundle = ValidationBundle {
        artifact: String::from_utf8(artifact_bytes.to_vec())
            .map_err(|_| BundleError::Malformed("the artifact is not UTF-8".into()))?,
        epoch,
        digest: hex::encode(digest),
        timestamp,
        witness_key_id: hex::encode(verifier.key_id()),
        witness_signature: BASE64.encode(signature.to_bytes()),
        countersignature: String::new(),
        checkpoint,
        inclusion_proof: encode_hashes(&inclusion),
        consistency_proof: encode_hashes(&consistency),
    };
    Ok(IssuedBundle { bundle, leaf })
}

/// Signs the checkpoint of the log over `leaves`.
pub fn sign_checkpoint(
    witness: &WitnessIdentity<'_>,
    namespace: &str,
    leaves: &[Hash],
) -> Result<String, NoteError> {
    Checkpoint {
        origin: log_origin(witness.name, namespace),
        size: leaves.len() as u64,
        root: crate::merkle::root_hash(leaves),
    }
    .sign(witness.name, witness.key)
}
