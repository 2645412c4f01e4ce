use super::*;

pub(crate) fn sample_artifact(epoch: u64) -> FleetKeyArtifact {
    FleetKeyArtifact {
        version: ARTIFACT_VERSION,
        namespace: FLEET_KEYS_NAMESPACE.into(),
        fleet_id: "fleet-a".into(),
        epoch,
        created_at: 1_790_000_000,
        quorum: QuorumRule {
            voters: 3,
            majority: 2,
        },
        keys: vec![
            key(KeyRole::NodeSigning, "node-2", KeyAlgorithm::Ed25519, 0x22),
            key(
                KeyRole::OpaqueServer,
                "opaque",
                KeyAlgorithm::Ristretto255,
                0x01,
            ),
            key(KeyRole::NodeSigning, "node-1", KeyAlgorithm::Ed25519, 0x11),
            key(
                KeyRole::FleetSigning,
                "operator",
                KeyAlgorithm::Ed25519,
                0x02,
            ),
        ],
    }
}

fn key(role: KeyRole, id: &str, algorithm: KeyAlgorithm, fill: u8) -> FleetPublicKey {
    FleetPublicKey {
        role,
        id: id.into(),
        algorithm,
        public_key: hex::encode([fill; 32]),
    }
}

#[test]
fn canonical_bytes_are_stable() {
    let artifact = sample_artifact(1).normalize().unwrap();
    let bytes = artifact.to_canonical_bytes().unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with(r#"{"created_at":1790000000,"epoch":1,"fleet_id":"fleet-a","keys":[{"algorithm":"ristretto255","id":"opaque","#));
    assert!(!text.contains(' '));
    let again = FleetKeyArtifact::from_canonical_bytes(&bytes).unwrap();
    assert_eq!(again, artifact);
    assert_eq!(again.to_canonical_bytes().unwrap(), bytes);
}

#[test]
fn digest_is_pinned() {
    // Computed independently with Python's json.dumps(sort_keys=True, separators=(",", ":"))
    // and hashlib.sha256 over the same document; a change here breaks every published bundle.
    let bytes = sample_artifact(1)
        .normalize()
        .unwrap()
        .to_canonical_bytes()
        .unwrap();
    assert_eq!(bytes.len(), 718);
    assert_eq!(
        hex::encode(artifact_digest(&bytes)),
        "833b2dcf0accdb1c696c985bcb0f643eb4a3fc62499468f85aaacf10fbbb2c69"
    );
}

#[test]
fn normalize_sorts_keys_by_role() {
    let artifact = sample_artifact(1).normalize().unwrap();
    let order: Vec<&str> = artifact.keys.iter().map(|key| key.id.as_str()).collect();
    assert_eq!(order, ["opaque", "operator", "node-1", "node-2"]);
}

#[test]
fn parse_rejects_whitespace() {
    let bytes = sample_artifact(1)
        .normalize()
        .unwrap()
        .to_canonical_bytes()
        .unwrap();
    let mut spaced = b" ".to_vec();
    spaced.extend_from_slice(&bytes);
    let result = FleetKeyArtifact::from_canonical_bytes(&spaced);
    assert!(matches!(result, Err(ArtifactError::NotCanonical(_))));
}

#[test]
fn parse_rejects_unknown_fields() {
    let text = String::from_utf8(
        sample_artifact(1)
            .normalize()
            .unwrap()
            .to_canonical_bytes()
            .unwrap(),
    )
    .unwrap();
    let extended = text.replacen("{\"created_at\"", "{\"extra\":1,\"created_at\"", 1);
    let result = FleetKeyArtifact::from_canonical_bytes(extended.as_bytes());
    assert!(matches!(result, Err(ArtifactError::Malformed(_))));
}

#[test]
fn validate_rejects_bad_fields() {
    let mut no_opaque = sample_artifact(1);
    no_opaque
        .keys
        .retain(|key| key.role != KeyRole::OpaqueServer);
    assert!(no_opaque.normalize().is_err());

    let mut duplicate = sample_artifact(1);
    duplicate.keys.push(duplicate.keys[0].clone());
    assert!(duplicate.normalize().is_err());

    let mut wrong_algorithm = sample_artifact(1);
    wrong_algorithm.keys[1].algorithm = KeyAlgorithm::Ed25519;
    assert!(wrong_algorithm.normalize().is_err());

    let mut short_key = sample_artifact(1);
    short_key.keys[0].public_key = "abcd".into();
    assert!(short_key.normalize().is_err());

    let mut bad_quorum = sample_artifact(1);
    bad_quorum.quorum.majority = 1;
    assert!(bad_quorum.normalize().is_err());

    assert!(sample_artifact(0).normalize().is_err());

    let mut bad_namespace = sample_artifact(1);
    bad_namespace.namespace = "Fleet Keys".into();
    assert!(bad_namespace.normalize().is_err());
}
