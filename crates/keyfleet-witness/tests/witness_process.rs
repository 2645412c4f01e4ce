//! The `keyfleet-witness` binary: serving on 127.0.0.1, keeping its log across a restart.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use keyfleet_bundle::{
    ARTIFACT_VERSION, FLEET_KEYS_NAMESPACE, FleetKeyArtifact, FleetPublicKey, KeyAlgorithm,
    KeyRole, QuorumRule, artifact_digest, submission_message,
};
use keyfleet_witness::WitnessClient;

/// A witness process, stopped with SIGKILL when dropped.
struct WitnessProcess(Child);

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The operator key the test witness pins for the fleet namespace.
fn operator_key() -> SigningKey {
    SigningKey::from_bytes(&[0x42; 32])
}

fn spawn_witness(data_dir: &Path, port: u16) -> WitnessProcess {
    let binding = format!(
        "{FLEET_KEYS_NAMESPACE}={}",
        hex::encode(operator_key().verifying_key().as_bytes())
    );
    let child = Command::new(env!("CARGO_BIN_EXE_keyfleet-witness"))
        .args([
            "serve",
            "--name",
            "witness.test",
            "--operator-key",
            &binding,
        ])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    WitnessProcess(child)
}

/// Polls the witness until it responds, for at most two minutes on a loaded machine.
async fn wait_ready(client: &mut WitnessClient) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match client.verifier_key().await {
            Ok(key) => return key,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the witness did not start: {error}"),
        }
    }
}

/// Returns `signer`'s signature over the submission message of `artifact`.
fn submission(signer: &SigningKey, artifact: &[u8]) -> Vec<u8> {
    let epoch = FleetKeyArtifact::from_canonical_bytes(artifact)
        .unwrap()
        .epoch;
    let message = submission_message(FLEET_KEYS_NAMESPACE, epoch, &artifact_digest(artifact));
    signer.sign(&message).to_bytes().to_vec()
}

/// Witnesses `artifact` with a submission signed by the pinned operator key.
async fn witness_signed(
    client: &mut WitnessClient,
    artifact: &[u8],
) -> Result<keyfleet_bundle::ValidationBundle, keyfleet_witness::WitnessCallError> {
    client
        .witness_artifact(artifact, &submission(&operator_key(), artifact))
        .await
}

fn artifact_bytes(epoch: u64) -> Vec<u8> {
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
                1,
            ),
            key(KeyRole::FleetSigning, "operator", KeyAlgorithm::Ed25519, 2),
            key(
                KeyRole::NodeSigning,
                "node-1",
                KeyAlgorithm::Ed25519,
                epoch as u8,
            ),
        ],
    }
    .normalize()
    .unwrap()
    .to_canonical_bytes()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn witness_keeps_log_across_restart() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let mut client = WitnessClient::connect_lazy(&endpoint, FLEET_KEYS_NAMESPACE).unwrap();

    let witness = spawn_witness(data.path(), port);
    let verifier_key = wait_ready(&mut client).await;
    witness_signed(&mut client, &artifact_bytes(1))
        .await
        .unwrap();
    witness_signed(&mut client, &artifact_bytes(2))
        .await
        .unwrap();
    let checkpoint = client.checkpoint().await.unwrap();
    // SIGKILL: every append was committed with fsync before the witness sent its response.
    drop(witness);

    let _witness = spawn_witness(data.path(), port);
    assert_eq!(wait_ready(&mut client).await, verifier_key);
    assert_eq!(client.checkpoint().await.unwrap(), checkpoint);
    let entry = client.entry(1, 0).await.unwrap();
    assert_eq!(entry.bundle.epoch, 1);
    assert_eq!(entry.tree_size, 2);

    let error = witness_signed(&mut client, &artifact_bytes(4))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("next artifact must have epoch 3"),
        "{error}"
    );
    let intruder = SigningKey::from_bytes(&[0x66; 32]);
    let error = client
        .witness_artifact(
            &artifact_bytes(3),
            &submission(&intruder, &artifact_bytes(3)),
        )
        .await
        .unwrap_err();
    let keyfleet_witness::WitnessCallError::Status { status, .. } = &error else {
        panic!("expected a status, got {error}");
    };
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{error}");

    let bundle = witness_signed(&mut client, &artifact_bytes(3))
        .await
        .unwrap();
    assert_eq!(bundle.epoch, 3);
}
