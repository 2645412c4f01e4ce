//! The witness log's epoch rules, counter-signatures and durability across restarts.

use ed25519_dalek::{Signer, SigningKey};
use keyfleet_bundle::{
    ARTIFACT_VERSION, FLEET_KEYS_NAMESPACE, FleetKeyArtifact, FleetPublicKey, KeyAlgorithm,
    KeyRole, NoteVerifier, QuorumRule, TrustAnchors, countersignature_message,
};
use keyfleet_witness::{WitnessError, WitnessKey, WitnessLog};

const NS: &str = FLEET_KEYS_NAMESPACE;

fn operator_key() -> SigningKey {
    SigningKey::from_bytes(&[0x0f; 32])
}

fn artifact_bytes(epoch: u64, node_fill: u8) -> Vec<u8> {
    let key = |role, id: &str, algorithm, public_key: String| FleetPublicKey {
        role,
        id: id.into(),
        algorithm,
        public_key,
    };
    FleetKeyArtifact {
        version: ARTIFACT_VERSION,
        namespace: NS.into(),
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
                hex::encode([1; 32]),
            ),
            key(
                KeyRole::FleetSigning,
                "operator",
                KeyAlgorithm::Ed25519,
                hex::encode(operator_key().verifying_key().as_bytes()),
            ),
            key(
                KeyRole::NodeSigning,
                "node-1",
                KeyAlgorithm::Ed25519,
                hex::encode([node_fill; 32]),
            ),
        ],
    }
    .normalize()
    .unwrap()
    .to_canonical_bytes()
    .unwrap()
}

fn open(dir: &std::path::Path) -> WitnessLog {
    let key = WitnessKey::load_or_generate("witness.test", &dir.join("witness.key")).unwrap();
    WitnessLog::open(&dir.join("log.redb"), key).unwrap()
}

fn countersign(log: &WitnessLog, epoch: u64) {
    let (bundle, _, _) = log.entry(NS, epoch, 0).unwrap();
    let signature = operator_key().sign(&countersignature_message(
        &bundle.witness_signature_bytes().unwrap(),
    ));
    log.add_countersignature(NS, epoch, &signature.to_bytes())
        .unwrap();
}

fn anchors(log: &WitnessLog) -> TrustAnchors {
    TrustAnchors {
        witness: NoteVerifier::parse(&log.key().verifier().to_string()).unwrap(),
        operator: operator_key().verifying_key(),
        namespace: NS.into(),
    }
}

#[test]
fn log_appends_consecutive_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    for epoch in 1..=3 {
        let bundle = log
            .witness(NS, &artifact_bytes(epoch, epoch as u8), 100 + epoch)
            .unwrap();
        assert_eq!(bundle.epoch, epoch);
        countersign(&log, epoch);
        let (stored, _, _) = log.entry(NS, epoch, 0).unwrap();
        anchors(&log).verify(&stored).unwrap();
    }
}

#[test]
fn log_rejects_skipped_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.witness(NS, &artifact_bytes(1, 1), 100).unwrap();
    let result = log.witness(NS, &artifact_bytes(3, 3), 101);
    assert!(
        matches!(result, Err(WitnessError::EpochRule(_))),
        "{result:?}"
    );
}

#[test]
fn log_rejects_second_artifact_for_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.witness(NS, &artifact_bytes(1, 1), 100).unwrap();
    let result = log.witness(NS, &artifact_bytes(1, 9), 101);
    assert!(
        matches!(result, Err(WitnessError::EpochRule(_))),
        "{result:?}"
    );
    let (stored, _, _) = log.entry(NS, 1, 0).unwrap();
    assert_eq!(stored.artifact.as_bytes(), artifact_bytes(1, 1));
}

#[test]
fn log_rejects_logged_digest_at_later_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.witness(NS, &artifact_bytes(1, 1), 100).unwrap();
    log.witness(NS, &artifact_bytes(2, 2), 101).unwrap();
    let result = log.witness(NS, &artifact_bytes(1, 1), 102);
    assert!(
        matches!(result, Err(WitnessError::EpochRule(_))),
        "{result:?}"
    );
}

#[test]
fn log_returns_newest_entry_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let first = log.witness(NS, &artifact_bytes(1, 1), 100).unwrap();
    let retry = log.witness(NS, &artifact_bytes(1, 1), 200).unwrap();
    assert_eq!(first, retry);
}

#[test]
fn log_rejects_bad_countersignature() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let bundle = log.witness(NS, &artifact_bytes(1, 1), 100).unwrap();
    let rogue = SigningKey::from_bytes(&[0x55; 32]).sign(&countersignature_message(
        &bundle.witness_signature_bytes().unwrap(),
    ));
    let result = log.add_countersignature(NS, 1, &rogue.to_bytes());
    assert!(
        matches!(result, Err(WitnessError::Invalid(_))),
        "{result:?}"
    );

    countersign(&log, 1);
    let other = operator_key().sign(b"something else");
    let result = log.add_countersignature(NS, 1, &other.to_bytes());
    assert!(
        matches!(
            result,
            Err(WitnessError::CountersignatureExists { epoch: 1, .. })
        ),
        "{result:?}"
    );
}

#[test]
fn log_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (checkpoint, verifier) = {
        let log = open(dir.path());
        log.witness(NS, &artifact_bytes(1, 1), 100).unwrap();
        countersign(&log, 1);
        log.witness(NS, &artifact_bytes(2, 2), 101).unwrap();
        (log.checkpoint(NS).unwrap(), log.key().verifier())
    };

    let log = open(dir.path());
    assert_eq!(log.key().verifier(), verifier);
    assert_eq!(log.checkpoint(NS).unwrap(), checkpoint);
    let (stored, _, size) = log.entry(NS, 1, 0).unwrap();
    assert_eq!(size, 2);
    anchors(&log).verify(&stored).unwrap();
    let bundle = log.witness(NS, &artifact_bytes(3, 3), 102).unwrap();
    assert_eq!(bundle.epoch, 3);
    let result = log.witness(NS, &artifact_bytes(2, 9), 103);
    assert!(
        matches!(result, Err(WitnessError::EpochRule(_))),
        "{result:?}"
    );
}

#[test]
fn log_keeps_namespaces_apart() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.witness(NS, &artifact_bytes(1, 1), 100).unwrap();
    let result = log.witness("other.ns", &artifact_bytes(1, 1), 100);
    assert!(
        matches!(result, Err(WitnessError::Invalid(_))),
        "{result:?}"
    );
    assert!(matches!(
        log.checkpoint("other.ns"),
        Err(WitnessError::NotFound(_))
    ));
}
