//! Each attack on a validation bundle fails with its own error in the client's verifier.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer, SigningKey};
use keyfleet_bundle::merkle::{Hash, inclusion_proof, leaf_hash};
use keyfleet_bundle::{
    ARTIFACT_VERSION, BundleError, BundleVerifier, Checkpoint, FLEET_KEYS_NAMESPACE,
    FleetKeyArtifact, FleetPublicKey, KeyAlgorithm, KeyRole, NoteVerifier, QuorumRule,
    TrustAnchors, ValidationBundle, WitnessIdentity, WitnessStatement, artifact_digest,
    countersignature_message, encode_hashes, issue_bundle, log_origin,
};

const WITNESS_NAME: &str = "witness.test";

/// A witness log kept in memory, and the operator key that counter-signs.
struct Fleet {
    witness_key: SigningKey,
    operator_key: SigningKey,
    leaves: Vec<Hash>,
}

impl Fleet {
    fn new(witness_seed: u8) -> Self {
        Self {
            witness_key: SigningKey::from_bytes(&[witness_seed; 32]),
            operator_key: SigningKey::from_bytes(&[0x0f; 32]),
            leaves: Vec::new(),
        }
    }

    fn anchors(&self) -> TrustAnchors {
        TrustAnchors {
            witness: NoteVerifier::new(WITNESS_NAME, self.witness_key.verifying_key()).unwrap(),
            operator: self.operator_key.verifying_key(),
            namespace: FLEET_KEYS_NAMESPACE.into(),
        }
    }

    /// Witnesses the artifact of the next epoch with node key `node_fill` and counter-signs.
    fn publish(&mut self, node_fill: u8) -> ValidationBundle {
        let epoch = self.leaves.len() as u64 + 1;
        let bytes = artifact(epoch, node_fill).to_canonical_bytes().unwrap();
        let witness = WitnessIdentity {
            name: WITNESS_NAME,
            key: &self.witness_key,
        };
        let issued = issue_bundle(
            &witness,
            FLEET_KEYS_NAMESPACE,
            &bytes,
            1_790_000_000 + epoch,
            &self.leaves,
        )
        .unwrap();
        self.leaves.push(issued.leaf);
        let mut bundle = issued.bundle;
        countersign(&mut bundle, &self.operator_key);
        bundle
    }
}

fn artifact(epoch: u64, node_fill: u8) -> FleetKeyArtifact {
    let key = |role, id: &str, algorithm, fill: u8| FleetPublicKey {
        role,
        id: id.into(),
        algorithm,
        public_key: hex::encode([fill; 32]),
    };
    FleetKeyArtifact {
        version: ARTIFACT_VERSION,
        namespace: FLEET_KEYS_NAMESPACE.into(),
        fleet_id: "fleet-a".into(),
        epoch,
        created_at: 1_790_000_000,
        quorum: QuorumRule {
            voters: 1,
            majority: 1,
        },
        keys: vec![
            key(
                KeyRole::OpaqueServer,
                "opaque",
                KeyAlgorithm::Ristretto255,
                0x01,
            ),
            key(
                KeyRole::FleetSigning,
                "operator",
                KeyAlgorithm::Ed25519,
                0x02,
            ),
            key(
                KeyRole::NodeSigning,
                "node-1",
                KeyAlgorithm::Ed25519,
                node_fill,
            ),
        ],
    }
    .normalize()
    .unwrap()
}

fn countersign(bundle: &mut ValidationBundle, operator_key: &SigningKey) {
    let witness_signature = bundle.witness_signature_bytes().unwrap();
    let signature = operator_key.sign(&countersignature_message(&witness_signature));
    bundle.countersignature = BASE64.encode(signature.to_bytes());
}

#[test]
fn valid_bundle_is_accepted() {
    let mut fleet = Fleet::new(1);
    let bundle = fleet.publish(0x11);
    let mut verifier = BundleVerifier::new(fleet.anchors());
    let verified = verifier.accept(&bundle).unwrap();
    assert_eq!(verified.epoch(), 1);
    assert!(verified.check_opaque_server_key(&[0x01; 32]).is_ok());
}

#[test]
fn rotation_is_accepted_over_the_air() {
    let mut fleet = Fleet::new(1);
    let first = fleet.publish(0x11);
    let second = fleet.publish(0x12);
    let mut verifier = BundleVerifier::new(fleet.anchors());
    verifier.accept(&first).unwrap();
    let verified = verifier.accept(&second).unwrap();
    assert_eq!(verified.epoch(), 2);
    assert_eq!(verifier.newest().unwrap().epoch(), 2);
    // The same bundle again is not an error.
    assert!(verifier.accept(&second).is_ok());
}

#[test]
fn tampered_artifact_fails_digest() {
    let mut fleet = Fleet::new(1);
    let mut bundle = fleet.publish(0x11);
    bundle.artifact = bundle
        .artifact
        .replace(&hex::encode([0x11; 32]), &hex::encode([0x66; 32]));
    let result = fleet.anchors().verify(&bundle);
    assert!(
        matches!(result, Err(BundleError::DigestMismatch { .. })),
        "{result:?}"
    );
}

#[test]
fn tampered_artifact_and_digest_fail_witness_signature() {
    let mut fleet = Fleet::new(1);
    let mut bundle = fleet.publish(0x11);
    bundle.artifact = bundle
        .artifact
        .replace(&hex::encode([0x11; 32]), &hex::encode([0x66; 32]));
    bundle.digest = hex::encode(artifact_digest(bundle.artifact.as_bytes()));
    let result = fleet.anchors().verify(&bundle);
    assert!(
        matches!(result, Err(BundleError::BadWitnessSignature)),
        "{result:?}"
    );
}

#[test]
fn unknown_witness_key_is_rejected() {
    let mut rogue = Fleet::new(2);
    let bundle = rogue.publish(0x11);
    let pinned = Fleet::new(1).anchors();
    let result = pinned.verify(&bundle);
    assert!(
        matches!(result, Err(BundleError::UnknownWitnessKey { .. })),
        "{result:?}"
    );
}

#[test]
fn rogue_witness_claiming_pinned_key_id_fails_signature() {
    let mut rogue = Fleet::new(2);
    let mut bundle = rogue.publish(0x11);
    let pinned = Fleet::new(1).anchors();
    bundle.witness_key_id = hex::encode(pinned.witness.key_id());
    let result = pinned.verify(&bundle);
    assert!(
        matches!(result, Err(BundleError::BadWitnessSignature)),
        "{result:?}"
    );
}

#[test]
fn missing_countersignature_is_rejected() {
    let mut fleet = Fleet::new(1);
    let mut bundle = fleet.publish(0x11);
    bundle.countersignature.clear();
    let result = fleet.anchors().verify(&bundle);
    assert!(
        matches!(result, Err(BundleError::MissingCountersignature)),
        "{result:?}"
    );
}

#[test]
fn wrong_countersignature_is_rejected() {
    let mut fleet = Fleet::new(1);
    let mut bundle = fleet.publish(0x11);
    countersign(&mut bundle, &SigningKey::from_bytes(&[0x55; 32]));
    let result = fleet.anchors().verify(&bundle);
    assert!(
        matches!(result, Err(BundleError::BadCountersignature)),
        "{result:?}"
    );

    // The operator's signature over the raw witness signature, without the context, fails.
    let raw = bundle.witness_signature_bytes().unwrap();
    bundle.countersignature = BASE64.encode(fleet.operator_key.sign(&raw).to_bytes());
    let result = fleet.anchors().verify(&bundle);
    assert!(
        matches!(result, Err(BundleError::BadCountersignature)),
        "{result:?}"
    );
}

#[test]
fn forked_epoch_is_rejected() {
    // One witness key, two logs: the same epoch with two different artifacts.
    let mut log_a = Fleet::new(1);
    let mut log_b = Fleet::new(1);
    let seen = log_a.publish(0x11);
    let forked = log_b.publish(0x99);
    let mut verifier = BundleVerifier::new(log_a.anchors());
    verifier.accept(&seen).unwrap();
    let result = verifier.accept(&forked);
    assert!(
        matches!(result, Err(BundleError::ForkedEpoch { epoch: 1, .. })),
        "{result:?}"
    );
}

#[test]
fn forked_history_fails_consistency() {
    let mut log_a = Fleet::new(1);
    let mut log_b = Fleet::new(1);
    let seen = log_a.publish(0x11);
    log_b.publish(0x99);
    let next_on_fork = log_b.publish(0x12);
    let mut verifier = BundleVerifier::new(log_a.anchors());
    verifier.accept(&seen).unwrap();
    let result = verifier.accept(&next_on_fork);
    assert!(
        matches!(
            result,
            Err(BundleError::LogInconsistent { seen_epoch: 1, .. })
        ),
        "{result:?}"
    );
}

#[test]
fn replayed_older_epoch_is_rejected() {
    let mut fleet = Fleet::new(1);
    let old = fleet.publish(0x11);
    let new = fleet.publish(0x12);
    let mut verifier = BundleVerifier::new(fleet.anchors());
    verifier.accept(&new).unwrap();
    let result = verifier.accept(&old);
    assert!(
        matches!(
            result,
            Err(BundleError::StaleEpoch {
                epoch: 1,
                newest: 2
            })
        ),
        "{result:?}"
    );
    assert_eq!(verifier.newest().unwrap().epoch(), 2);
}

#[test]
fn log_dropping_an_entry_is_rejected() {
    // The witness drops epoch 2 from its log and signs epoch 3 as its second leaf.
    let mut fleet = Fleet::new(1);
    let first = fleet.publish(0x11);
    let bytes = artifact(3, 0x13).to_canonical_bytes().unwrap();
    let statement = WitnessStatement {
        namespace: FLEET_KEYS_NAMESPACE.into(),
        epoch: 3,
        timestamp: 1_790_000_003,
        digest: artifact_digest(&bytes),
    }
    .to_bytes();
    let signature = fleet.witness_key.sign(&statement);
    let leaves = vec![fleet.leaves[0], leaf_hash(&statement)];
    let checkpoint = Checkpoint {
        origin: log_origin(WITNESS_NAME, FLEET_KEYS_NAMESPACE),
        size: 2,
        root: keyfleet_bundle::merkle::root_hash(&leaves),
    }
    .sign(WITNESS_NAME, &fleet.witness_key)
    .unwrap();
    let mut bundle = ValidationBundle {
        artifact: String::from_utf8(bytes.clone()).unwrap(),
        epoch: 3,
        digest: hex::encode(artifact_digest(&bytes)),
        timestamp: 1_790_000_003,
        witness_key_id: first.witness_key_id.clone(),
        witness_signature: BASE64.encode(signature.to_bytes()),
        countersignature: String::new(),
        checkpoint,
        inclusion_proof: encode_hashes(&inclusion_proof(1, &leaves).unwrap()),
        consistency_proof: Vec::new(),
    };
    countersign(&mut bundle, &fleet.operator_key);

    let mut verifier = BundleVerifier::new(fleet.anchors());
    verifier.accept(&first).unwrap();
    let result = verifier.accept(&bundle);
    assert!(
        matches!(
            result,
            Err(BundleError::LogSizeMismatch { epoch: 3, size: 2 })
        ),
        "{result:?}"
    );
}

#[test]
fn statement_outside_log_fails_inclusion() {
    let mut fleet = Fleet::new(1);
    fleet.publish(0x11);
    let mut bundle = fleet.publish(0x12);
    bundle.inclusion_proof.reverse();
    bundle.inclusion_proof[0] = BASE64.encode([0u8; 32]);
    let result = fleet.anchors().verify(&bundle);
    assert!(
        matches!(result, Err(BundleError::NotIncluded(_))),
        "{result:?}"
    );
}

#[test]
fn wrong_opaque_server_key_is_rejected() {
    let mut fleet = Fleet::new(1);
    let bundle = fleet.publish(0x11);
    let verified = fleet.anchors().verify(&bundle).unwrap();
    let result = verified.check_opaque_server_key(&[0x02; 32]);
    assert!(
        matches!(
            result,
            Err(BundleError::OpaqueServerKeyMismatch { epoch: 1 })
        ),
        "{result:?}"
    );
}

#[test]
fn other_namespace_is_rejected() {
    let mut fleet = Fleet::new(1);
    let bundle = fleet.publish(0x11);
    let mut anchors = fleet.anchors();
    anchors.namespace = "other.ns".into();
    let result = anchors.verify(&bundle);
    assert!(
        matches!(result, Err(BundleError::NamespaceMismatch { .. })),
        "{result:?}"
    );
}
