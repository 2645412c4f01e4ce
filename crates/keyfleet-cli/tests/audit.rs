//! `keyfleet audit` and `keyfleet fleet` against a real witness on 127.0.0.1: publishing,
//! the delta table, and each attack detected by both the audit and the client verifier.

#[path = "support/tampering_witness.rs"]
mod tampering_witness;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;

use ed25519_dalek::{Signer, SigningKey};
use keyfleet_witness::{
    KEY_FILE, OperatorKeyBinding, OperatorKeys, WitnessClient, open_data_dir, serve,
};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use tampering_witness::{Tamper, TamperingFront};

const NS: &str = "keyfleet.fleet_keys.v1";
const WITNESS_NAME: &str = "witness.test";

/// A real witness serving in this process until dropped.
struct RunningWitness {
    address: SocketAddr,
    verifier_key: String,
    _stop: oneshot::Sender<()>,
}

/// Starts a witness that pins `operator`'s key for the fleet namespace.
async fn start_witness(data_dir: &Path, operator: &Operator) -> RunningWitness {
    let binding: OperatorKeyBinding = format!("{NS}={}", operator.public_hex).parse().unwrap();
    let operator_keys = OperatorKeys::new([binding]);
    let log = open_data_dir(data_dir, WITNESS_NAME).unwrap();
    let verifier_key = log.key().verifier().to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        serve(log, operator_keys, listener, async {
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

/// A test directory with an operator key.
struct Operator {
    dir: TempDir,
    key_file: PathBuf,
    public_hex: String,
}

async fn new_operator() -> Operator {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("operator.key");
    let output = keyfleet(&["fleet", "keygen", "--out", key_file.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let public_hex = stdout(&output).trim().to_owned();
    assert_eq!(public_hex.len(), 64);
    Operator {
        dir,
        key_file,
        public_hex,
    }
}

/// Returns `operator`'s signature over the submission message of `canonical`.
fn submission_for(operator: &Operator, canonical: &[u8]) -> Vec<u8> {
    let seed = std::fs::read_to_string(&operator.key_file).unwrap();
    let key = SigningKey::from_bytes(&hex::decode(seed.trim()).unwrap().try_into().unwrap());
    let epoch = serde_json::from_slice::<Value>(canonical).unwrap()["epoch"]
        .as_u64()
        .unwrap();
    let message = keyfleet_bundle::submission_message(
        NS,
        epoch,
        &keyfleet_bundle::artifact_digest(canonical),
    );
    key.sign(&message).to_bytes().to_vec()
}

async fn keyfleet(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_keyfleet"))
        .args(args)
        .env_remove("KEYFLEET_WITNESS")
        .env_remove("KEYFLEET_WITNESS_KEY")
        .env_remove("KEYFLEET_OPERATOR_KEY")
        .output()
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes an artifact with the given node keys, in a deliberately unsorted layout.
fn write_artifact(operator: &Operator, name: &str, epoch: u64, nodes: &[(&str, u8)]) -> PathBuf {
    let mut keys = vec![
        json!({"role": "fleet_signing", "id": "operator", "algorithm": "ed25519",
               "public_key": operator.public_hex}),
        json!({"role": "opaque_server", "id": "opaque", "algorithm": "ristretto255",
               "public_key": hex::encode([0x01; 32])}),
    ];
    for (id, fill) in nodes {
        keys.push(
            json!({"role": "node_signing", "id": id, "algorithm": "ed25519",
                         "public_key": hex::encode([*fill; 32])}),
        );
    }
    let voters = nodes.len() as u32;
    let artifact = json!({
        "version": 1, "namespace": NS, "fleet_id": "fleet-a", "epoch": epoch,
        "created_at": 1_790_000_000u64 + epoch,
        "quorum": {"voters": voters, "majority": voters / 2 + 1},
        "keys": keys,
    });
    let path = operator.dir.path().join(format!("{name}.artifact.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&artifact).unwrap()).unwrap();
    path
}

async fn publish(
    operator: &Operator,
    witness: SocketAddr,
    name: &str,
    epoch: u64,
    nodes: &[(&str, u8)],
) -> PathBuf {
    let artifact = write_artifact(operator, name, epoch, nodes);
    let out = operator.dir.path().join(format!("{name}.bundle.json"));
    let output = keyfleet(&[
        "fleet",
        "publish",
        "--witness",
        &witness.to_string(),
        "--artifact",
        artifact.to_str().unwrap(),
        "--operator-key-file",
        operator.key_file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(&format!("published epoch {epoch}")));
    out
}

async fn audit(
    witness: SocketAddr,
    verifier_key: &str,
    operator: &Operator,
    extra: &[&str],
) -> Output {
    let address = witness.to_string();
    let mut args = vec![
        "audit",
        "--witness",
        &address,
        "--witness-key",
        verifier_key,
        "--operator-key",
        &operator.public_hex,
    ];
    args.extend_from_slice(extra);
    keyfleet(&args).await
}

async fn verify_bundles(verifier_key: &str, operator: &Operator, bundles: &[&Path]) -> Output {
    let mut args = vec![
        "fleet".to_owned(),
        "verify".into(),
        "--witness-key".into(),
        verifier_key.into(),
        "--operator-key".into(),
        operator.public_hex.clone(),
    ];
    for bundle in bundles {
        args.push("--bundle".into());
        args.push(bundle.to_str().unwrap().into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    keyfleet(&args).await
}

/// Asserts exit status 8 and that the message names `check` and `epoch`.
fn assert_check_failed(output: &Output, check: &str, epoch: &str) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(12), "{message}");
    assert!(
        message.contains(&format!("the {check} check failed")),
        "{message}"
    );
    assert!(message.contains(epoch), "{message}");
}

/// Starts a witness and publishes two counter-signed epochs: epoch 1 with node-1 and node-2,
/// and epoch 2 with node-1 changed, node-2 removed and node-3 added.
async fn two_epochs() -> (TempDir, RunningWitness, Operator, PathBuf, PathBuf) {
    let data = tempfile::tempdir().unwrap();
    let operator = new_operator().await;
    let witness = start_witness(data.path(), &operator).await;
    let first = publish(
        &operator,
        witness.address,
        "e1",
        1,
        &[("node-1", 0x11), ("node-2", 0x22)],
    )
    .await;
    let second = publish(
        &operator,
        witness.address,
        "e2",
        2,
        &[("node-1", 0x12), ("node-3", 0x33)],
    )
    .await;
    (data, witness, operator, first, second)
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_prints_delta_table() {
    let (_data, witness, operator, _, _) = two_epochs().await;
    let output = audit(witness.address, &witness.verifier_key, &operator, &[]).await;
    let text = stdout(&output);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(text.contains("2 entries"), "{text}");
    assert!(text.contains("verified epochs 1 to 2"), "{text}");
    assert!(
        text.contains("1      added    opaque_server  opaque"),
        "{text}"
    );
    assert!(
        text.contains("2      changed  node_signing   node-1"),
        "{text}"
    );
    assert!(
        text.contains("2      removed  node_signing   node-2"),
        "{text}"
    );
    assert!(
        text.contains("2      added    node_signing   node-3"),
        "{text}"
    );
    assert!(!text.contains(&hex::encode([0x33; 32])), "{text}");

    let output = audit(
        witness.address,
        &witness.verifier_key,
        &operator,
        &["--key"],
    )
    .await;
    assert!(stdout(&output).contains(&hex::encode([0x33; 32])));
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_pages_with_limit_and_before_epoch() {
    let (_data, witness, operator, _, _) = two_epochs().await;
    let output = audit(
        witness.address,
        &witness.verifier_key,
        &operator,
        &["--json", "--limit", "1"],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["tree_size"], 2);
    assert_eq!(report["epochs"].as_array().unwrap().len(), 1);
    assert_eq!(report["epochs"][0]["epoch"], 2);
    assert_eq!(report["deltas"].as_array().unwrap().len(), 3);

    let output = audit(
        witness.address,
        &witness.verifier_key,
        &operator,
        &["--json", "--before-epoch", "2"],
    )
    .await;
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["epochs"].as_array().unwrap().len(), 1);
    assert_eq!(report["epochs"][0]["epoch"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_accepts_rotation_without_reconfiguration() {
    let (_data, witness, operator, first, second) = two_epochs().await;
    let output = verify_bundles(&witness.verifier_key, &operator, &[&first, &second]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("verified epoch 2 of fleet fleet-a"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_artifact_is_detected() {
    let (_data, witness, operator, _, second) = two_epochs().await;
    let front = TamperingFront::start(witness.address).await;
    front.set(Tamper::EditArtifact {
        epoch: 2,
        from: hex::encode([0x33; 32]),
        to: hex::encode([0x66; 32]),
    });
    let output = audit(front.address, &witness.verifier_key, &operator, &[]).await;
    assert_check_failed(&output, "digest", "epoch 2");

    let text = std::fs::read_to_string(&second).unwrap();
    std::fs::write(
        &second,
        text.replace(&hex::encode([0x33; 32]), &hex::encode([0x66; 32])),
    )
    .unwrap();
    let output = verify_bundles(&witness.verifier_key, &operator, &[&second]).await;
    assert_check_failed(&output, "digest", "epoch 2");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_witness_key_is_detected() {
    let (_data, witness, operator, _, _) = two_epochs().await;
    let rogue_data = tempfile::tempdir().unwrap();
    let rogue = start_witness(rogue_data.path(), &operator).await;
    let rogue_bundle = publish(&operator, rogue.address, "rogue", 1, &[("node-1", 0x11)]).await;

    // The audit pins the real witness, but the witness it reaches signs with another key.
    let output = audit(rogue.address, &witness.verifier_key, &operator, &[]).await;
    assert_check_failed(&output, "checkpoint", "the newest checkpoint");

    // A bundle from the rogue witness, cross-checked against the real log.
    let bundle = rogue_bundle.to_str().unwrap();
    let output = audit(
        witness.address,
        &witness.verifier_key,
        &operator,
        &["--bundle", bundle],
    )
    .await;
    assert_check_failed(&output, "witness-key", "epoch 1");

    let output = verify_bundles(&witness.verifier_key, &operator, &[&rogue_bundle]).await;
    assert_check_failed(&output, "witness-key", "epoch 1");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_countersignature_is_detected() {
    let (data, witness, operator, _, _) = two_epochs().await;
    let artifact = write_artifact(&operator, "e3", 3, &[("node-1", 0x13)]);
    let canonical = serde_json::from_slice::<keyfleet_bundle::FleetKeyArtifact>(
        &std::fs::read(artifact).unwrap(),
    )
    .unwrap()
    .normalize()
    .unwrap()
    .to_canonical_bytes()
    .unwrap();
    let submission = submission_for(&operator, &canonical);
    let mut client = WitnessClient::connect_lazy(&witness.address.to_string(), NS).unwrap();
    let unsigned = client
        .witness_artifact(&canonical, &submission)
        .await
        .unwrap();

    let output = audit(witness.address, &witness.verifier_key, &operator, &[]).await;
    assert_check_failed(&output, "counter-signature", "epoch 3");

    let path = data.path().join("unsigned.bundle.json");
    std::fs::write(&path, unsigned.to_json()).unwrap();
    let output = verify_bundles(&witness.verifier_key, &operator, &[&path]).await;
    assert_check_failed(&output, "counter-signature", "epoch 3");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_countersignature_is_detected() {
    let (_data, witness, operator, _, second) = two_epochs().await;
    let bundle =
        keyfleet_bundle::ValidationBundle::from_json(&std::fs::read(&second).unwrap()).unwrap();
    let rogue = SigningKey::from_bytes(&[0x55; 32]).sign(
        &keyfleet_bundle::countersignature_message(&bundle.witness_signature_bytes().unwrap()),
    );
    let front = TamperingFront::start(witness.address).await;
    front.set(Tamper::ReplaceCountersignature {
        epoch: 2,
        signature: rogue.to_bytes().to_vec(),
    });
    let output = audit(front.address, &witness.verifier_key, &operator, &[]).await;
    assert_check_failed(&output, "counter-signature", "epoch 2");

    let mut forged = bundle.clone();
    forged.countersignature =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, rogue.to_bytes());
    std::fs::write(&second, forged.to_json()).unwrap();
    let output = verify_bundles(&witness.verifier_key, &operator, &[&second]).await;
    assert_check_failed(&output, "counter-signature", "epoch 2");
}

#[tokio::test(flavor = "multi_thread")]
async fn forked_log_is_detected() {
    let (_data, witness, operator, _, second) = two_epochs().await;
    // A second log signed with the same witness key contains other artifacts for epochs 1 and
    // 2.
    let fork_data = tempfile::tempdir().unwrap();
    std::fs::copy(_data.path().join(KEY_FILE), fork_data.path().join(KEY_FILE)).unwrap();
    let fork = start_witness(fork_data.path(), &operator).await;
    assert_eq!(fork.verifier_key, witness.verifier_key);
    publish(&operator, fork.address, "fork1", 1, &[("node-1", 0x91)]).await;
    let forked_second = publish(&operator, fork.address, "fork2", 2, &[("node-1", 0x92)]).await;

    // Alone, the fork is self-consistent; the bundle the fleet served from the real log
    // exposes it.
    let output = audit(fork.address, &witness.verifier_key, &operator, &[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let bundle = second.to_str().unwrap();
    let output = audit(
        fork.address,
        &witness.verifier_key,
        &operator,
        &["--bundle", bundle],
    )
    .await;
    assert_check_failed(&output, "consistency", "epoch 2");

    let output = verify_bundles(&witness.verifier_key, &operator, &[&second, &forked_second]).await;
    assert_check_failed(&output, "consistency", "epoch 2");
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_older_epoch_is_detected() {
    let (_data, witness, operator, first, second) = two_epochs().await;
    let front = TamperingFront::start(witness.address).await;
    front.set(Tamper::ReplayEntry { epoch: 2, older: 1 });
    let output = audit(front.address, &witness.verifier_key, &operator, &[]).await;
    assert_check_failed(&output, "epoch-order", "epoch 2");

    let output = verify_bundles(&witness.verifier_key, &operator, &[&second, &first]).await;
    assert_check_failed(&output, "epoch-order", "epoch 1");
}

#[tokio::test(flavor = "multi_thread")]
async fn log_dropping_an_entry_is_detected() {
    let data = tempfile::tempdir().unwrap();
    let operator = new_operator().await;
    let witness = start_witness(data.path(), &operator).await;
    publish(&operator, witness.address, "e1", 1, &[("node-1", 0x11)]).await;
    let mut client = WitnessClient::connect_lazy(&witness.address.to_string(), NS).unwrap();
    let checkpoint_at_one = client.checkpoint().await.unwrap();
    let second = publish(&operator, witness.address, "e2", 2, &[("node-1", 0x12)]).await;
    publish(&operator, witness.address, "e3", 3, &[("node-1", 0x13)]).await;

    // The front hides entry 2 and shifts the later ones down.
    let front = TamperingFront::start(witness.address).await;
    front.set(Tamper::DropEntry { epoch: 2 });
    let output = audit(front.address, &witness.verifier_key, &operator, &[]).await;
    assert_check_failed(&output, "epoch-order", "epoch 2");

    // The front serves the log as it was before epoch 2; the fleet's epoch 2 bundle exposes
    // it.
    front.set(Tamper::Rollback {
        checkpoint: checkpoint_at_one,
        size: 1,
    });
    let bundle = second.to_str().unwrap();
    let output = audit(
        front.address,
        &witness.verifier_key,
        &operator,
        &["--bundle", bundle],
    )
    .await;
    assert_check_failed(&output, "log-size", "epoch 2");
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_rejects_bad_pinned_keys() {
    let operator = new_operator().await;
    let output = audit("127.0.0.1:9".parse().unwrap(), "not-a-key", &operator, &[]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--witness-key"));
}

#[tokio::test(flavor = "multi_thread")]
async fn witness_rejects_unpinned_operator() {
    let (_data, witness, operator, _, _) = two_epochs().await;
    let intruder = new_operator().await;
    let artifact = write_artifact(&intruder, "intruder", 3, &[("node-1", 0x77)]);
    let out = intruder.dir.path().join("intruder.bundle.json");
    let address = witness.address.to_string();
    let output = keyfleet(&[
        "fleet",
        "publish",
        "--witness",
        &address,
        "--artifact",
        artifact.to_str().unwrap(),
        "--operator-key-file",
        intruder.key_file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(6), "{message}");
    assert!(message.contains("does not verify"), "{message}");
    assert!(!out.exists());

    // The log still ends at epoch 2, so the operator's epoch 3 is still free.
    let mut client = WitnessClient::connect_lazy(&address, NS).unwrap();
    let error = client.entry(3, 0).await.unwrap_err();
    assert!(error.to_string().contains("not in a tree of 2"), "{error}");
    publish(&operator, witness.address, "e3", 3, &[("node-1", 0x13)]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn witness_rejects_unsigned_submission() {
    let (_data, witness, operator, _, _) = two_epochs().await;
    let artifact = write_artifact(&operator, "e3", 3, &[("node-1", 0x13)]);
    let canonical = serde_json::from_slice::<keyfleet_bundle::FleetKeyArtifact>(
        &std::fs::read(artifact).unwrap(),
    )
    .unwrap()
    .normalize()
    .unwrap()
    .to_canonical_bytes()
    .unwrap();
    let mut client = WitnessClient::connect_lazy(&witness.address.to_string(), NS).unwrap();
    let error = client.witness_artifact(&canonical, &[]).await.unwrap_err();
    assert!(
        error.to_string().contains("64-byte operator signature"),
        "{error}"
    );

    // A signature for epoch 3 does not authorize another artifact.
    let submission = submission_for(&operator, &canonical);
    let other = String::from_utf8(canonical.clone())
        .unwrap()
        .replace(&hex::encode([0x13; 32]), &hex::encode([0x14; 32]))
        .into_bytes();
    let error = client
        .witness_artifact(&other, &submission)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("does not verify"), "{error}");
}
