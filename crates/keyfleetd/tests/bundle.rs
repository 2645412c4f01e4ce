//! Fleet key validation in a running fleet. Three keyfleetd processes with SoftHSM2 tokens
//! publish epochs through a real witness on 127.0.0.1 and store the bundle through Raft. The SDK
//! verifies it, follows a rotation, and rejects each forged bundle a node could serve.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::bundle_front::{BundleFront, ServedBundle};
use common::{RaftTiming, TestCluster, VaultOptions};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use keyfleet_api::vault::GetBundleRequest;
use keyfleet_api::vault::vault_client::VaultClient as GrpcVaultClient;
use keyfleet_bundle::{
    FLEET_KEYS_NAMESPACE, FleetKeyArtifact, KeyRole, NoteVerifier, TrustAnchors, ValidationBundle,
    countersignature_message,
};
use keyfleet_client::{NodeSigningKey, PublishBundleResponse};
use keyfleet_raft::NodeId;
use keyfleet_sdk::{BundleError, RecordStatus, SdkError, VaultClient};
use keyfleet_witness::{OperatorKeyBinding, OperatorKeys, WitnessClient, open_data_dir, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const PASSWORD: &[u8] = b"correct horse battery staple";
const BACKUP_KEY: [u8; 32] = [0x5a; 32];

/// A witness serving in this process until dropped.
struct RunningWitness {
    address: SocketAddr,
    verifier_key: String,
    _stop: oneshot::Sender<()>,
}

async fn start_witness(data_dir: &Path, operator: &VerifyingKey) -> RunningWitness {
    start_witness_pinning(data_dir, &[*operator]).await
}

/// Starts a witness that accepts submissions signed by any of `operators`.
async fn start_witness_pinning(data_dir: &Path, operators: &[VerifyingKey]) -> RunningWitness {
    let bindings: Vec<OperatorKeyBinding> = operators
        .iter()
        .map(|operator| {
            format!(
                "{FLEET_KEYS_NAMESPACE}={}",
                hex::encode(operator.as_bytes())
            )
            .parse()
            .unwrap()
        })
        .collect();
    let log = open_data_dir(data_dir, "witness.test").unwrap();
    let verifier_key = log.key().verifier().to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        serve(log, OperatorKeys::new(bindings), listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    RunningWitness {
        address,
        verifier_key,
        _stop: stop,
    }
}

/// Reads every node's HSM signing key from its Status.
async fn node_keys(cluster: &TestCluster, ids: &[NodeId]) -> Vec<NodeSigningKey> {
    let mut keys = Vec::new();
    for id in ids {
        let status = cluster.expect_status(*id).await;
        assert_eq!(status.signing_public_key.len(), 32, "node {id}");
        keys.push(NodeSigningKey {
            node_id: *id,
            public_key: status.signing_public_key,
        });
    }
    keys
}

fn verifying_key(keys: &[NodeSigningKey], id: NodeId) -> VerifyingKey {
    let key = keys.iter().find(|key| key.node_id == id).unwrap();
    VerifyingKey::from_bytes(&key.public_key.as_slice().try_into().unwrap()).unwrap()
}

fn anchors(witness: &RunningWitness, operator: &VerifyingKey) -> TrustAnchors {
    TrustAnchors {
        witness: NoteVerifier::parse(&witness.verifier_key).unwrap(),
        operator: *operator,
        namespace: FLEET_KEYS_NAMESPACE.into(),
    }
}

async fn publish(
    cluster: &TestCluster,
    witness: &RunningWitness,
    keys: &[NodeSigningKey],
) -> PublishBundleResponse {
    cluster
        .client()
        .publish_bundle(&witness.address.to_string(), FLEET_KEYS_NAMESPACE, keys)
        .await
        .unwrap_or_else(|error| panic!("publish failed: {error}\n{}", cluster.log_report()))
}

/// Returns the bundle that node `id`, the leader, serves, waiting until it serves `epoch`.
async fn bundle_on(cluster: &TestCluster, id: NodeId, epoch: u64) -> ValidationBundle {
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let mut client = GrpcVaultClient::new(cluster.api_channel(id));
        if let Ok(reply) = client.get_bundle(GetBundleRequest {}).await {
            let reply = reply.into_inner();
            if reply.epoch == epoch {
                return ValidationBundle::from_json(&reply.bundle).unwrap();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node {id} did not serve epoch {epoch}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Waits until node `id` has applied the bundle of `epoch`, as its status reports.
async fn wait_for_bundle_epoch(cluster: &TestCluster, id: NodeId, epoch: u64) {
    let deadline = std::time::Instant::now() + common::WAIT;
    while cluster.expect_status(id).await.bundle_epoch != epoch {
        assert!(
            std::time::Instant::now() < deadline,
            "node {id} did not apply epoch {epoch}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn sdk_client(cluster: &TestCluster, anchors: TrustAnchors) -> VaultClient {
    let endpoints: Vec<String> = [1, 2, 3]
        .iter()
        .map(|id| cluster.api_endpoint(*id))
        .collect();
    VaultClient::new(endpoints, common::test_policy())
        .unwrap()
        .with_ksf(common::raw_vault::TEST_KSF)
        .with_trust_anchors(anchors)
}

/// Asserts that `error` is the bundle check `check`.
fn assert_check(error: SdkError, check: &str) {
    match &error {
        SdkError::Bundle(bundle_error) => assert_eq!(bundle_error.check(), check, "{error}"),
        other => panic!("expected the {check} check to fail, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_publishes_and_client_follows_rotation() {
    let (mut cluster, leader) =
        TestCluster::launch_vault(3, RaftTiming::default(), VaultOptions::default()).await;
    let keys = node_keys(&cluster, &[1, 2, 3]).await;
    let operator = verifying_key(&keys, leader);
    let witness_dir = tempfile::tempdir().unwrap();
    let witness = start_witness(witness_dir.path(), &operator).await;
    let client = sdk_client(&cluster, anchors(&witness, &operator));
    let token = cluster.token("alice");

    let missing = client
        .register(&token, "alice", PASSWORD, &BACKUP_KEY, 3)
        .await
        .unwrap_err();
    assert!(matches!(missing, SdkError::BundleMissing), "{missing:?}");

    let first = publish(&cluster, &witness, &keys).await;
    assert_eq!(first.epoch, 1);
    assert_eq!(bundle_on(&cluster, leader, 1).await.to_json(), first.bundle);
    for id in [1, 2, 3] {
        wait_for_bundle_epoch(&cluster, id, 1).await;
    }

    // A follower could lag behind the newest epoch, so it sends bundle reads to the leader.
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let refused = GrpcVaultClient::new(cluster.api_channel(follower))
        .get_bundle(GetBundleRequest {})
        .await
        .unwrap_err();
    assert!(
        refused.message().contains(&format!("node {leader}")),
        "a follower names the leader: {refused}"
    );

    client
        .register(&token, "alice", PASSWORD, &BACKUP_KEY, 3)
        .await
        .expect("register with a verified bundle");

    // A client that pins another operator key fails the bundle check before its KE1 goes
    // out, so the failed check spends none of the user's guesses.
    let rogue_operator = SigningKey::from_bytes(&[0x44; 32]).verifying_key();
    let mispinned = sdk_client(&cluster, anchors(&witness, &rogue_operator));
    for _ in 0..4 {
        let error = mispinned
            .recover(&token, "alice", PASSWORD)
            .await
            .unwrap_err();
        assert_check(error, "counter-signature");
    }
    assert_eq!(
        client.state(&token, "alice").await.unwrap(),
        RecordStatus::Registered {
            max_guesses: 3,
            guesses_left: 3
        }
    );
    let verified = client.verified_bundle().expect("a verified bundle");
    assert_eq!(verified.epoch(), 1);
    let fleet_key = verified
        .artifact
        .keys_with_role(KeyRole::FleetSigning)
        .next()
        .unwrap();
    assert_eq!(fleet_key.public_key, hex::encode(operator.as_bytes()));
    assert_eq!(
        verified
            .artifact
            .keys_with_role(KeyRole::NodeSigning)
            .count(),
        3
    );

    // Rotation: the fleet publishes epoch 2 and the same client accepts it over the air.
    let second = publish(&cluster, &witness, &keys).await;
    assert_eq!(second.epoch, 2);
    let recovered = client
        .recover(&token, "alice", PASSWORD)
        .await
        .expect("recover after the rotation");
    assert_eq!(recovered.as_slice(), &BACKUP_KEY);
    assert_eq!(client.verified_bundle().unwrap().epoch(), 2);

    // A restarted follower keeps the bundle in its own state machine and serves it as leader.
    cluster.terminate(follower).await;
    cluster.restart(follower).await;
    wait_for_bundle_epoch(&cluster, follower, 2).await;
    cluster.client().transfer_leader(follower).await.unwrap();
    let bundle = bundle_on(&cluster, follower, 2).await;
    assert_eq!(bundle.to_json(), second.bundle);

    // Another leader's HSM does not hold the fleet signing key, so it cannot publish.
    let error = cluster
        .client()
        .publish_bundle(&witness.address.to_string(), FLEET_KEYS_NAMESPACE, &keys)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("not the fleet signing key of epoch 2"),
        "{error}"
    );
}

/// Logs `artifact` with the witness under `submitter`'s signature, without a counter-signature,
/// as a publication that stopped halfway leaves it.
async fn log_halfway(witness: &RunningWitness, submitter: &SigningKey, artifact: &[u8]) {
    let digest = keyfleet_bundle::artifact_digest(artifact);
    let epoch = FleetKeyArtifact::from_canonical_bytes(artifact)
        .unwrap()
        .epoch;
    let submission = keyfleet_bundle::submission_message(FLEET_KEYS_NAMESPACE, epoch, &digest);
    WitnessClient::connect_lazy(&witness.address.to_string(), FLEET_KEYS_NAMESPACE)
        .unwrap()
        .witness_artifact(artifact, &submitter.sign(&submission).to_bytes())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_completes_halfway_epoch() {
    let (cluster, leader) =
        TestCluster::launch_vault(3, RaftTiming::default(), VaultOptions::default()).await;
    let keys = node_keys(&cluster, &[1, 2, 3]).await;
    let operator = verifying_key(&keys, leader);
    let submitter = SigningKey::from_bytes(&[0x55; 32]);
    let witness_dir = tempfile::tempdir().unwrap();
    let witness =
        start_witness_pinning(witness_dir.path(), &[operator, submitter.verifying_key()]).await;
    let first = publish(&cluster, &witness, &keys).await;
    let first = ValidationBundle::from_json(&first.bundle).unwrap();

    // Epoch 2 logged with the fleet's current keys but never counter-signed: the next
    // publication adopts it.
    let mut artifact = FleetKeyArtifact::from_canonical_bytes(first.artifact.as_bytes()).unwrap();
    artifact.epoch = 2;
    artifact.created_at += 1;
    let halfway = artifact.to_canonical_bytes().unwrap();
    log_halfway(&witness, &submitter, &halfway).await;
    let second = publish(&cluster, &witness, &keys).await;
    assert_eq!(second.epoch, 2);
    let second = ValidationBundle::from_json(&second.bundle).unwrap();
    assert_eq!(second.artifact.as_bytes(), halfway.as_slice());
    assert!(!second.countersignature.is_empty());

    // Epoch 3 logged with a key the fleet does not have: the publication names both digests
    // and stores nothing.
    artifact.epoch = 3;
    artifact.keys[0].public_key = "cd".repeat(32);
    let foreign = artifact
        .clone()
        .normalize()
        .unwrap()
        .to_canonical_bytes()
        .unwrap();
    log_halfway(&witness, &submitter, &foreign).await;
    let error = cluster
        .client()
        .publish_bundle(&witness.address.to_string(), FLEET_KEYS_NAMESPACE, &keys)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("logged another artifact for epoch 3"),
        "{error}"
    );
    assert_eq!(cluster.expect_status(leader).await.bundle_epoch, 2);
}

/// Returns `bundle` changed by `edit`, as JSON.
fn edited(bundle: &ValidationBundle, edit: impl FnOnce(&mut ValidationBundle)) -> Vec<u8> {
    let mut bundle = bundle.clone();
    edit(&mut bundle);
    bundle.to_json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rejects_forged_bundles() {
    let (cluster, leader) =
        TestCluster::launch_vault(3, RaftTiming::default(), VaultOptions::default()).await;
    let keys = node_keys(&cluster, &[1, 2, 3]).await;
    let operator = verifying_key(&keys, leader);
    let witness_dir = tempfile::tempdir().unwrap();
    let witness = start_witness(witness_dir.path(), &operator).await;
    let mut epochs = Vec::new();
    for _ in 0..3 {
        let published = publish(&cluster, &witness, &keys).await;
        epochs.push(ValidationBundle::from_json(&published.bundle).unwrap());
    }
    let (first, second, third) = (&epochs[0], &epochs[1], &epochs[2]);

    let front = BundleFront::start(cluster.api_channel(leader)).await;
    let client_through_front = || {
        VaultClient::new([front.address.to_string()], common::test_policy())
            .unwrap()
            .with_ksf(common::raw_vault::TEST_KSF)
            .with_trust_anchors(anchors(&witness, &operator))
    };
    let serve = |epoch: u64, bundle: Vec<u8>| front.serve(Some(ServedBundle { epoch, bundle }));

    // Tampered artifact: a node key changed after the witness signed.
    let node_key = &third.artifact.split("\"public_key\":\"").nth(3).unwrap()[..64];
    serve(
        3,
        edited(third, |bundle| {
            bundle.artifact = bundle.artifact.replace(node_key, &"ab".repeat(32));
        }),
    );
    assert_check(
        client_through_front().refresh_bundle().await.unwrap_err(),
        "digest",
    );

    // Signed by a witness key the client does not pin.
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue_operator = SigningKey::from_bytes(&[0x33; 32]);
    let rogue = start_witness(rogue_dir.path(), &rogue_operator.verifying_key()).await;
    let submission = keyfleet_bundle::submission_message(
        FLEET_KEYS_NAMESPACE,
        1,
        &keyfleet_bundle::artifact_digest(first.artifact.as_bytes()),
    );
    let rogue_bundle =
        WitnessClient::connect_lazy(&rogue.address.to_string(), FLEET_KEYS_NAMESPACE)
            .unwrap()
            .witness_artifact(
                first.artifact.as_bytes(),
                &rogue_operator.sign(&submission).to_bytes(),
            )
            .await
            .unwrap();
    serve(1, rogue_bundle.to_json());
    assert_check(
        client_through_front().refresh_bundle().await.unwrap_err(),
        "witness-key",
    );

    // Missing and wrong counter-signatures.
    serve(3, edited(third, |bundle| bundle.countersignature.clear()));
    let error = client_through_front().refresh_bundle().await.unwrap_err();
    assert!(
        matches!(
            error,
            SdkError::Bundle(BundleError::MissingCountersignature)
        ),
        "{error:?}"
    );
    let forged = rogue_operator.sign(&countersignature_message(
        &third.witness_signature_bytes().unwrap(),
    ));
    serve(
        3,
        edited(third, |bundle| {
            bundle.countersignature = base64_encode(&forged.to_bytes());
        }),
    );
    let error = client_through_front().refresh_bundle().await.unwrap_err();
    assert!(
        matches!(error, SdkError::Bundle(BundleError::BadCountersignature)),
        "{error:?}"
    );

    // A log that dropped an entry: epoch 2 under the checkpoint of a three-entry log.
    serve(
        2,
        edited(second, |bundle| {
            bundle.checkpoint = third.checkpoint.clone();
            bundle.inclusion_proof = third.inclusion_proof.clone();
        }),
    );
    assert_check(
        client_through_front().refresh_bundle().await.unwrap_err(),
        "log-size",
    );

    // Replayed older epoch: a client that verified epoch 3 is offered epoch 1, both by
    // GetBundle and by a recovery that names epoch 1.
    front.serve(None);
    let client = client_through_front();
    assert_eq!(client.refresh_bundle().await.unwrap().epoch(), 3);
    serve(1, first.to_json());
    assert_check(client.refresh_bundle().await.unwrap_err(), "epoch-order");
    let token = cluster.token("bob");
    let error = client.recover(&token, "bob", PASSWORD).await.unwrap_err();
    assert_check(error, "epoch-order");
    assert_eq!(client.verified_bundle().unwrap().epoch(), 3);
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
