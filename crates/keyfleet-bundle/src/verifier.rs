//! Verification of validation bundles against pinned witness and operator keys.

use ed25519_dalek::{Signature, VerifyingKey};
use subtle::ConstantTimeEq;

use crate::artifact::{FleetKeyArtifact, artifact_digest};
use crate::bundle::ValidationBundle;
use crate::error::BundleError;
use crate::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use crate::note::{Checkpoint, NoteVerifier};
use crate::statement::{countersignature_message, log_origin};

/// The keys and namespace a client pins: nothing else about the fleet is configured.
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    /// The witness's note verifier key.
    pub witness: NoteVerifier,
    /// The operator's root key, the fleet signing key that counter-signs.
    pub operator: VerifyingKey,
    /// Log namespace of the fleet's artifacts.
    pub namespace: String,
}

/// A bundle that passed every check that needs no earlier state.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    /// The fleet key artifact.
    pub artifact: FleetKeyArtifact,
    /// The witness checkpoint right after this epoch's entry.
    pub checkpoint: Checkpoint,
    /// SHA-256 of the artifact.
    pub digest: [u8; 32],
    /// The bundle as received.
    pub bundle: ValidationBundle,
}

impl VerifiedBundle {
    /// Returns the epoch.
    pub fn epoch(&self) -> u64 {
        self.artifact.epoch
    }

    /// Checks that `server_public_key`, the OPAQUE server's static public key seen in a
    /// session, is the key this epoch names for the `opaque_server` role.
    pub fn check_opaque_server_key(&self, server_public_key: &[u8]) -> Result<(), BundleError> {
        let named = self
            .artifact
            .opaque_server_key()
            .and_then(|key| hex::decode(&key.public_key).ok())
            .unwrap_or_default();
        if !named.is_empty() && bool::from(named.ct_eq(server_public_key)) {
            Ok(())
        } else {
            Err(BundleError::OpaqueServerKeyMismatch {
                epoch: self.epoch(),
            })
        }
    }
}

impl TrustAnchors {
    /// Runs every check of one bundle that needs no earlier state: the witness key id, the
    /// artifact and its digest, the witness signature, the counter-signature, the
    /// checkpoint's signature and size, and the statement's inclusion in the log.
    pub fn verify(&self, bundle: &ValidationBundle) -> Result<VerifiedBundle, BundleError> {
        let expected_key_id = hex::encode(self.witness.key_id());
        if bundle.witness_key_id != expected_key_id {
            return Err(BundleError::UnknownWitnessKey {
                expected: expected_key_id,
                found: bundle.witness_key_id.clone(),
            });
        }

        let artifact = self.check_artifact(bundle)?;
        let digest = artifact_digest(bundle.artifact.as_bytes());
        let statement = bundle.statement(&self.namespace)?.to_bytes();

        let witness_signature = bundle.witness_signature_bytes()?;
        if !self.witness.verify_raw(&statement, &witness_signature) {
            return Err(BundleError::BadWitnessSignature);
        }
        self.check_countersignature(bundle, &witness_signature)?;

        let checkpoint = self.check_checkpoint(bundle)?;
        verify_inclusion(
            &leaf_hash(&statement),
            bundle.epoch - 1,
            checkpoint.size,
            &bundle.inclusion_hashes()?,
            &checkpoint.root,
        )
        .map_err(BundleError::NotIncluded)?;

        Ok(VerifiedBundle {
            artifact,
            checkpoint,
            digest,
            bundle: bundle.clone(),
        })
    }

    fn check_artifact(&self, bundle: &ValidationBundle) -> Result<FleetKeyArtifact, BundleError> {
        let computed = hex::encode(artifact_digest(bundle.artifact.as_bytes()));
        if computed != bundle.digest {
            return Err(BundleError::DigestMismatch {
                computed,
                stated: bundle.digest.clone(),
            });
        }
        let artifact = FleetKeyArtifact::from_canonical_bytes(bundle.artifact.as_bytes())?;
        if artifact.namespace != self.namespace {
            return Err(BundleError::NamespaceMismatch {
                expected: self.namespace.clone(),
                found: artifact.namespace,
            });
        }
        if artifact.epoch != bundle.epoch {
            return Err(BundleError::EpochMismatch {
                artifact: artifact.epoch,
                bundle: bundle.epoch,
            });
        }
        Ok(artifact)
    }

    fn check_countersignature(
        &self,
        bundle: &ValidationBundle,
        witness_signature: &[u8],
    ) -> Result<(), BundleError> {
        let countersignature = bundle.countersignature_bytes()?;
        if countersignature.is_empty() {
            return Err(BundleError::MissingCountersignature);
        }
        let signature = Signature::from_slice(&countersignature)
            .map_err(|_| BundleError::BadCountersignature)?;
        self.operator
            .verify_strict(&countersignature_message(witness_signature), &signature)
            .map_err(|_| BundleError::BadCountersignature)
    }

    fn check_checkpoint(&self, bundle: &ValidationBundle) -> Result<Checkpoint, BundleError> {
        let checkpoint = Checkpoint::open(&bundle.checkpoint, &self.witness)?;
        let expected_origin = log_origin(self.witness.name(), &self.namespace);
        if checkpoint.origin != expected_origin {
            return Err(BundleError::WrongOrigin {
                expected: expected_origin,
                found: checkpoint.origin,
            });
        }
        if checkpoint.size != bundle.epoch {
            return Err(BundleError::LogSizeMismatch {
                epoch: bundle.epoch,
                size: checkpoint.size,
            });
        }
        Ok(checkpoint)
    }
}

/// A client's bundle verifier: the pinned anchors and the newest epoch accepted so far.
///
/// A new epoch is accepted over the air when it verifies and is newer than the newest one;
/// an older epoch, or another artifact for the newest epoch, is rejected.
#[derive(Debug, Clone)]
pub struct BundleVerifier {
    anchors: TrustAnchors,
    newest: Option<VerifiedBundle>,
}

impl BundleVerifier {
    /// Creates a verifier that has seen no bundle yet.
    pub fn new(anchors: TrustAnchors) -> Self {
        Self {
            anchors,
            newest: None,
        }
    }

    /// Returns the pinned anchors.
    pub fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// Returns the newest accepted bundle.
    pub fn newest(&self) -> Option<&VerifiedBundle> {
        self.newest.as_ref()
    }

    /// Verifies `bundle` and, if it is newer than the newest accepted one, makes it the
    /// newest. Returns the verified bundle.
    pub fn accept(&mut self, bundle: &ValidationBundle) -> Result<&VerifiedBundle, BundleError> {
        let verified = self.anchors.verify(bundle)?;
        if let Some(newest) = &self.newest {
            check_order(newest, &verified)?;
        }
        Ok(self.newest.insert(verified))
    }
}

/// Checks that `offered` may follow `newest`: a newer epoch whose log extends the newest
/// one's, or the same artifact again.
fn check_order(newest: &VerifiedBundle, offered: &VerifiedBundle) -> Result<(), BundleError> {
    let (seen_epoch, epoch) = (newest.epoch(), offered.epoch());
    if epoch < seen_epoch {
        return Err(BundleError::StaleEpoch {
            epoch,
            newest: seen_epoch,
        });
    }
    if epoch == seen_epoch {
        if offered.digest != newest.digest || offered.checkpoint.root != newest.checkpoint.root {
            return Err(BundleError::ForkedEpoch {
                epoch,
                seen: hex::encode(newest.digest),
                offered: hex::encode(offered.digest),
            });
        }
        return Ok(());
    }
    // NOTE: a client that skipped epochs cannot check consistency offline, because the
    // bundle carries only the proof from the previous epoch; `keyfleet audit` checks it.
    if epoch == seen_epoch + 1 {
        verify_consistency(
            seen_epoch,
            epoch,
            &newest.checkpoint.root,
            &offered.checkpoint.root,
            &offered.bundle.consistency_hashes()?,
        )
        .map_err(|source| BundleError::LogInconsistent { seen_epoch, source })?;
    }
    Ok(())
}
