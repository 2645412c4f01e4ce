//! The fleet key ceremony, `keyfleetd keys ...`, run as real processes against real SoftHSM2
//! tokens. After the processes ran, the tests open the tokens themselves and check that they
//! share the fleet keys.
//!
//! SoftHSM lists tokens once per process, at `C_Initialize`, so each test creates all its
//! tokens first and opens PKCS#11 in the test process only at its end.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use keyfleet_hsm::{Hsm, HsmConfig, HsmError, KeyLabel, Pkcs11Hsm, SealContext};
use keyfleet_testkit::{SoftHsmLab, SoftHsmToken, softhsm_module_path};
use serde_json::Value;
use sha2::{Digest, Sha256};

const SEAL_LABEL: &str = "keyfleet-seal";
const OPRF_SEED_LABEL: &str = "keyfleet-oprf-seed";
/// HMAC input of the OPRF seed's check value, as the file format documents it.
const OPRF_CHECK_INPUT: &[u8] = b"keyfleet/key-check/oprf-seed/v1";

/// One node of a test fleet: its token, PIN source and configuration file. The processes it
/// runs are `keyfleetd keys` commands; no node is started.
struct TestNode {
    name: String,
    token: SoftHsmToken,
    config: PathBuf,
    /// Name of the PIN variable when the configuration uses `pin_env`.
    pin_env: Option<String>,
}

/// Exit status and output of one `keyfleetd` run.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl TestNode {
    /// Creates the token `name` and writes a configuration for it. Odd node numbers read the
    /// PIN from a file and even ones from an environment variable, so both sources are used.
    fn prepare(lab: &SoftHsmLab, number: u64) -> Self {
        Self::prepare_with_hsm_lines(lab, number, "")
    }

    /// Like [`TestNode::prepare`], with extra lines at the end of the `[hsm]` table.
    fn prepare_with_hsm_lines(lab: &SoftHsmLab, number: u64, extra: &str) -> Self {
        let name = format!("node-{number}");
        let pin = format!("pin-{number}-{:08x}", fastrand::u32(..));
        let token = lab.create_token(&name, &pin);

        let (pin_line, pin_env) = if number % 2 == 1 {
            let path = lab.write_secret_file(&format!("{name}.pin"), &pin);
            (format!("pin_file = {}", toml_path(&path)), None)
        } else {
            let variable = format!("KEYFLEET_TEST_PIN_{number}");
            (format!("pin_env = \"{variable}\""), Some(variable))
        };

        let dir = lab.root().join(&name);
        fs::create_dir_all(&dir).unwrap();
        let config = dir.join("keyfleetd.toml");
        let text = format!(
            "node_id = {number}\n\
             data_dir = {}\n\
             raft_listen = \"127.0.0.1:{}\"\n\
             api_listen = \"127.0.0.1:{}\"\n\
             \n\
             [hsm]\n\
             module = {}\n\
             token_label = \"{name}\"\n\
             {pin_line}\n\
             {extra}\n\
             \n\
             [vault]\n\
             fleet_id = \"keys-test-fleet\"\n",
            toml_path(&dir.join("data")),
            7100 + number,
            7200 + number,
            toml_path(&softhsm_module_path()),
        );
        fs::write(&config, text).unwrap();

        Self {
            name,
            token,
            config,
            pin_env,
        }
    }

    /// Runs `keyfleetd keys <args> --config <this node's file>` and checks that no PIN of the
    /// token appears in its output.
    fn keys(&self, lab: &SoftHsmLab, args: &[&str]) -> Run {
        let mut full = vec!["keys"];
        full.extend_from_slice(args);
        let config = self.config.to_str().unwrap();
        full.extend_from_slice(&["--config", config]);
        self.keyfleetd(lab, &full)
    }

    /// Runs `keyfleetd <args>` with this node's PIN variable and the lab's SoftHSM2 file.
    fn keyfleetd(&self, lab: &SoftHsmLab, args: &[&str]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyfleetd"));
        command
            .args(args)
            .env("SOFTHSM2_CONF", lab.conf_path())
            .env_remove("RUST_LOG");
        if let Some(variable) = &self.pin_env {
            command.env(variable, &self.token.user_pin);
        }
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("KEYFLEETD_") {
                command.env_remove(name);
            }
        }

        let output = command.output().expect("run keyfleetd");
        let run = Run {
            code: output.status.code().expect("keyfleetd exited, not killed"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        };
        for secret in [&self.token.user_pin, &self.token.so_pin] {
            assert!(
                !run.stdout.contains(secret.as_str()),
                "PIN in stdout: {run:?}"
            );
            assert!(
                !run.stderr.contains(secret.as_str()),
                "PIN in stderr: {run:?}"
            );
        }
        run
    }

    /// Runs `keys transport-key` and returns the public key it printed.
    fn transport_key(&self, lab: &SoftHsmLab) -> String {
        let run = self.keys(lab, &["transport-key"]).success();
        run.stdout.trim_end().to_owned()
    }

    /// Opens the token in this process. Call only after the lab's tokens all exist.
    async fn open(&self, lab: &SoftHsmLab) -> Pkcs11Hsm {
        lab.activate();
        let pin_file = lab.root().join(format!("{}.in-test.pin", self.name));
        if !pin_file.exists() {
            lab.write_secret_file(
                pin_file.file_name().unwrap().to_str().unwrap(),
                &self.token.user_pin,
            );
        }

        let mut config = HsmConfig::default();
        config.module = Some(softhsm_module_path());
        config.token_label = Some(self.name.clone());
        config.pin_file = Some(pin_file);
        Pkcs11Hsm::open(&config.resolve().unwrap()).await.unwrap()
    }
}

impl Run {
    fn success(self) -> Self {
        assert_eq!(self.code, 0, "keyfleetd failed: {self:?}");
        self
    }

    fn failure(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit status {code}: {self:?}");
        assert!(
            self.stderr.contains("keyfleetd: "),
            "no error message: {self:?}"
        );
        self
    }
}

fn toml_path(path: &Path) -> String {
    toml::Value::String(path.to_str().unwrap().to_owned()).to_string()
}

fn label(text: &str) -> KeyLabel {
    KeyLabel::new(text).unwrap()
}

/// Generates the fleet keys on `source` and exports them for `target` into `file`.
fn export_for(lab: &SoftHsmLab, source: &TestNode, target: &TestNode, file: &Path) {
    source.keys(lab, &["generate"]).success();
    let recipient = target.transport_key(lab);
    source
        .keys(
            lab,
            &[
                "export",
                "--recipient",
                &recipient,
                "--out",
                file.to_str().unwrap(),
            ],
        )
        .success();
}

fn import(lab: &SoftHsmLab, node: &TestNode, file: &Path) -> Run {
    node.keys(lab, &["import", "--in", file.to_str().unwrap()])
}

/// Returns the fingerprint `keyfleetd` prints for a transport public key in hexadecimal.
fn fingerprint(public_key_hex: &str) -> String {
    let digest = Sha256::digest(decode_hex(public_key_hex));
    format!("sha256:{}", encode_hex(&digest[..16]))
}

fn decode_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, document: &Value) {
    fs::write(path, serde_json::to_string_pretty(document).unwrap()).unwrap();
}

/// Changes one hexadecimal digit of the string at `pointer`, `from_end` digits before its end.
fn flip_digit(document: &mut Value, pointer: &str, from_end: usize) {
    let text = document.pointer(pointer).unwrap().as_str().unwrap();
    let mut digits: Vec<char> = text.chars().collect();
    let index = digits.len() - 1 - from_end;
    digits[index] = if digits[index] == '0' { '1' } else { '0' };

    *document.pointer_mut(pointer).unwrap() = Value::String(digits.into_iter().collect());
}

/// Recomputes the file's digest as the format documents it, so that a changed field passes
/// the digest and reaches the key checks.
fn recompute_digest(document: &mut Value) {
    let mut hasher = Sha256::new();
    hasher.update(b"keyfleet-fleet-keys/v1");
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u32).to_be_bytes());
        hasher.update(bytes);
    };

    field(&decode_hex(document["recipient"].as_str().unwrap()));
    for key in ["seal", "oprf_seed"] {
        let entry = &document[key];
        field(entry["label"].as_str().unwrap().as_bytes());
        field(entry["kind"].as_str().unwrap().as_bytes());
        field(&decode_hex(entry["wrapped"].as_str().unwrap()));
        field(&decode_hex(entry["check"].as_str().unwrap()));
    }
    let digest = encode_hex(&hasher.finalize());
    document["digest"] = Value::String(digest);
}

/// Asserts that a blob sealed on each token opens on the other, and that both compute the same
/// HMACs under the OPRF seed.
async fn assert_tokens_share_keys(first: &Pkcs11Hsm, second: &Pkcs11Hsm) {
    let seal = label(SEAL_LABEL);
    let oprf_seed = label(OPRF_SEED_LABEL);
    let context = SealContext::new("opaque-password-file", b"alice");

    let blob = first.seal(&seal, &context, b"record one").await.unwrap();
    let opened = second.unseal(&seal, &context, &blob).await.unwrap();
    assert_eq!(opened.expose_secret(), b"record one");

    let blob = second.seal(&seal, &context, b"record two").await.unwrap();
    let opened = first.unseal(&seal, &context, &blob).await.unwrap();
    assert_eq!(opened.expose_secret(), b"record two");

    let expected = first.hmac_sha512(&oprf_seed, b"alice").await.unwrap();
    let actual = second.hmac_sha512(&oprf_seed, b"alice").await.unwrap();
    assert_eq!(expected.as_slice(), actual.as_slice());
}

/// Asserts that `hsm` has no secret key under either fleet label.
async fn assert_no_fleet_keys(hsm: &Pkcs11Hsm) {
    let context = SealContext::new("opaque-password-file", b"alice");

    let sealed = hsm.seal(&label(SEAL_LABEL), &context, b"x").await;
    assert!(
        matches!(sealed, Err(HsmError::KeyNotFound { .. })),
        "{sealed:?}"
    );
    let mac = hsm.hmac_sha512(&label(OPRF_SEED_LABEL), b"x").await;
    assert!(matches!(mac, Err(HsmError::KeyNotFound { .. })), "{mac:?}");
}

#[tokio::test]
async fn ceremony_shares_fleet_keys() {
    let lab = SoftHsmLab::new();
    let first = TestNode::prepare(&lab, 1);
    let second = TestNode::prepare(&lab, 2);
    let file = lab.root().join("fleet-keys.json");

    let generated = first.keys(&lab, &["generate"]).success();
    let again = first.keys(&lab, &["generate"]).success();
    let recipient = second.transport_key(&lab);
    let exported = first
        .keys(
            &lab,
            &[
                "export",
                "--recipient",
                &recipient,
                "--out",
                file.to_str().unwrap(),
            ],
        )
        .success();
    let imported = import(&lab, &second, &file).success();

    assert!(
        generated.stdout.contains(&format!(
            "{SEAL_LABEL}: generated a new AES-256 sealing key"
        )),
        "{generated:?}"
    );
    assert!(
        generated.stdout.contains(&format!(
            "{OPRF_SEED_LABEL}: generated a new HMAC-SHA512 secret"
        )),
        "{generated:?}"
    );
    assert!(
        again
            .stdout
            .contains(&format!("{SEAL_LABEL}: kept the existing")),
        "{again:?}"
    );
    assert!(
        again
            .stdout
            .contains(&format!("{OPRF_SEED_LABEL}: kept the existing")),
        "{again:?}"
    );

    assert_eq!(recipient.len(), 130, "{recipient}");
    assert!(recipient.starts_with("04"), "{recipient}");
    assert!(
        recipient
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{recipient}"
    );
    assert_eq!(
        second.transport_key(&lab),
        recipient,
        "a second transport-key run must keep the key"
    );

    assert!(
        exported.stdout.contains(&fingerprint(&recipient)),
        "{exported:?}"
    );
    assert!(
        imported.stdout.contains(&format!(
            "{SEAL_LABEL}: imported and verified the AES-256 sealing key"
        )),
        "{imported:?}"
    );
    assert!(
        imported.stdout.contains(&format!(
            "{OPRF_SEED_LABEL}: imported and verified the HMAC-SHA512 secret"
        )),
        "{imported:?}"
    );

    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "file mode {mode:o}");
    let document = read_json(&file);
    assert_eq!(document["format"], "keyfleet-fleet-keys");
    assert_eq!(document["version"], 1);
    assert_eq!(document["recipient"], recipient.as_str());
    assert_eq!(document["seal"]["label"], SEAL_LABEL);
    assert_eq!(document["seal"]["kind"], "seal-aes256");
    assert_eq!(document["oprf_seed"]["label"], OPRF_SEED_LABEL);
    assert_eq!(document["oprf_seed"]["kind"], "hmac-sha512");

    let first_hsm = first.open(&lab).await;
    let second_hsm = second.open(&lab).await;
    assert_tokens_share_keys(&first_hsm, &second_hsm).await;

    let mac = second_hsm
        .hmac_sha512(&label(OPRF_SEED_LABEL), OPRF_CHECK_INPUT)
        .await
        .unwrap();
    assert_eq!(
        document["oprf_seed"]["check"],
        encode_hex(&mac[..16]).as_str(),
        "the check value is the documented HMAC prefix"
    );
}

#[tokio::test]
async fn import_twice_is_idempotent() {
    let lab = SoftHsmLab::new();
    let first = TestNode::prepare(&lab, 1);
    let second = TestNode::prepare(&lab, 2);
    let file = lab.root().join("fleet-keys.json");
    export_for(&lab, &first, &second, &file);

    import(&lab, &second, &file).success();
    let again = import(&lab, &second, &file).success();

    for key in [SEAL_LABEL, OPRF_SEED_LABEL] {
        assert!(
            again
                .stdout
                .contains(&format!("{key}: already present on token \"node-2\"")),
            "{again:?}"
        );
    }
    let first_hsm = first.open(&lab).await;
    let second_hsm = second.open(&lab).await;
    assert_tokens_share_keys(&first_hsm, &second_hsm).await;
}

#[tokio::test]
async fn import_rejects_other_recipient() {
    let lab = SoftHsmLab::new();
    let first = TestNode::prepare(&lab, 1);
    let second = TestNode::prepare(&lab, 2);
    let third = TestNode::prepare(&lab, 3);
    let file = lab.root().join("for-node-2.json");
    export_for(&lab, &first, &second, &file);
    let second_key = second.transport_key(&lab);
    let third_key = third.transport_key(&lab);

    let rejected = import(&lab, &third, &file).failure(1);

    assert!(
        rejected.stderr.contains(&fingerprint(&second_key)),
        "names the file's recipient: {rejected:?}"
    );
    assert!(
        rejected.stderr.contains(&fingerprint(&third_key)),
        "names this token's key: {rejected:?}"
    );
    assert!(
        rejected.stderr.contains("keyfleetd keys transport-key"),
        "{rejected:?}"
    );
    assert_no_fleet_keys(&third.open(&lab).await).await;
}

#[tokio::test]
async fn import_rejects_damaged_file() {
    let lab = SoftHsmLab::new();
    let first = TestNode::prepare(&lab, 1);
    let second = TestNode::prepare(&lab, 2);
    let file = lab.root().join("fleet-keys.json");
    export_for(&lab, &first, &second, &file);
    let good = read_json(&file);

    let damaged = lab.root().join("damaged.json");
    for pointer in [
        "/seal/wrapped",
        "/seal/check",
        "/oprf_seed/wrapped",
        "/oprf_seed/check",
        "/recipient",
        "/digest",
    ] {
        let mut document = good.clone();
        flip_digit(&mut document, pointer, 0);
        write_json(&damaged, &document);

        let rejected = import(&lab, &second, &damaged).failure(1);

        assert!(
            rejected.stderr.contains("is damaged")
                || rejected.stderr.contains("not a valid fleet key file"),
            "{pointer}: {rejected:?}"
        );
    }

    let mut unknown_version = good.clone();
    unknown_version["version"] = Value::from(2);
    write_json(&damaged, &unknown_version);
    let rejected = import(&lab, &second, &damaged).failure(1);
    assert!(
        rejected.stderr.contains("version 2"),
        "unknown version: {rejected:?}"
    );

    assert_no_fleet_keys(&second.open(&lab).await).await;
}

#[tokio::test]
async fn import_rejects_forged_check_values() {
    let lab = SoftHsmLab::new();
    let first = TestNode::prepare(&lab, 1);
    let second = TestNode::prepare(&lab, 2);
    let file = lab.root().join("fleet-keys.json");
    export_for(&lab, &first, &second, &file);
    let good = read_json(&file);
    let forged = lab.root().join("forged.json");

    let mut bad_wrapping = good.clone();
    flip_digit(&mut bad_wrapping, "/seal/wrapped", 0);
    recompute_digest(&mut bad_wrapping);
    write_json(&forged, &bad_wrapping);
    let unwrap_failed = import(&lab, &second, &forged).failure(1);
    assert!(
        unwrap_failed
            .stderr
            .contains(&format!("no key was stored under \"{SEAL_LABEL}\"")),
        "{unwrap_failed:?}"
    );

    let mut bad_check = good.clone();
    flip_digit(&mut bad_check, "/seal/check", 0);
    recompute_digest(&mut bad_check);
    write_json(&forged, &bad_check);
    let check_failed = import(&lab, &second, &forged).failure(1);
    assert!(
        check_failed.stderr.contains("KEY CHECK FAILED"),
        "{check_failed:?}"
    );
    assert!(
        check_failed
            .stderr
            .contains("--delete-object --type secrkey --label keyfleet-seal"),
        "names the fix: {check_failed:?}"
    );

    // The fix the message names removes the key, and the genuine file then imports.
    lab.pkcs11_tool(
        &second.token,
        &[
            "--delete-object",
            "--type",
            "secrkey",
            "--label",
            SEAL_LABEL,
        ],
    );
    import(&lab, &second, &file).success();
    let first_hsm = first.open(&lab).await;
    let second_hsm = second.open(&lab).await;
    assert_tokens_share_keys(&first_hsm, &second_hsm).await;
}

#[tokio::test]
async fn import_of_other_fleet_changes_nothing() {
    let lab = SoftHsmLab::new();
    let first = TestNode::prepare(&lab, 1);
    let second = TestNode::prepare(&lab, 2);
    let other_fleet = TestNode::prepare(&lab, 3);
    let file = lab.root().join("fleet-keys.json");
    let other_file = lab.root().join("other-fleet-keys.json");
    export_for(&lab, &first, &second, &file);
    import(&lab, &second, &file).success();
    export_for(&lab, &other_fleet, &second, &other_file);

    let rejected = import(&lab, &second, &other_file).failure(1);

    assert!(
        rejected.stderr.contains("already has a different key"),
        "{rejected:?}"
    );
    assert!(
        rejected.stderr.contains("nothing was imported"),
        "{rejected:?}"
    );
    let first_hsm = first.open(&lab).await;
    let second_hsm = second.open(&lab).await;
    assert_tokens_share_keys(&first_hsm, &second_hsm).await;
}

#[tokio::test]
async fn export_without_fleet_keys_fails() {
    let lab = SoftHsmLab::new();
    let first = TestNode::prepare(&lab, 1);
    let second = TestNode::prepare(&lab, 2);
    let file = lab.root().join("fleet-keys.json");
    let recipient = second.transport_key(&lab);

    let rejected = first
        .keys(
            &lab,
            &[
                "export",
                "--recipient",
                &recipient,
                "--out",
                file.to_str().unwrap(),
            ],
        )
        .failure(1);

    assert!(
        rejected
            .stderr
            .contains(&format!("fleet key \"{SEAL_LABEL}\"")),
        "{rejected:?}"
    );
    assert!(rejected.stderr.contains("not found"), "{rejected:?}");
    assert!(
        rejected.stderr.contains("keyfleetd keys generate"),
        "{rejected:?}"
    );
    assert!(!file.exists(), "no file is written");
    assert_no_fleet_keys(&first.open(&lab).await).await;
}

#[tokio::test]
async fn export_keeps_existing_file() {
    let lab = SoftHsmLab::new();
    let first = TestNode::prepare(&lab, 1);
    let second = TestNode::prepare(&lab, 2);
    let file = lab.root().join("fleet-keys.json");
    fs::write(&file, "keep me").unwrap();
    first.keys(&lab, &["generate"]).success();
    let recipient = second.transport_key(&lab);
    let out = file.to_str().unwrap();

    let kept = first
        .keys(&lab, &["export", "--recipient", &recipient, "--out", out])
        .failure(1);
    assert!(kept.stderr.contains("--force"), "{kept:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "keep me");

    first
        .keys(
            &lab,
            &["export", "--recipient", &recipient, "--out", out, "--force"],
        )
        .success();
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "file mode {mode:o}");
    import(&lab, &second, &file).success();
}

#[tokio::test]
async fn import_requires_same_seal_label() {
    let lab = SoftHsmLab::new();
    let first = TestNode::prepare(&lab, 1);
    let second =
        TestNode::prepare_with_hsm_lines(&lab, 2, "[hsm.keys]\nseal = \"other-seal-label\"");
    let file = lab.root().join("fleet-keys.json");
    export_for(&lab, &first, &second, &file);

    let rejected = import(&lab, &second, &file).failure(2);

    assert!(
        rejected
            .stderr
            .contains(&format!("set hsm.keys.seal = \"{SEAL_LABEL}\"")),
        "{rejected:?}"
    );
    assert_no_fleet_keys(&second.open(&lab).await).await;
}

#[test]
fn usage_errors_exit_2() {
    let lab = SoftHsmLab::new();
    let node = TestNode::prepare(&lab, 1);
    let config = node.config.to_str().unwrap();
    let missing = lab.root().join("absent.toml");
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["keys"], "expected a subcommand"),
        (
            vec!["keys", "rotate", "--config", config],
            "unknown subcommand",
        ),
        (
            vec![
                "keys",
                "export",
                "--config",
                config,
                "--recipient",
                "04zz",
                "--out",
                "x",
            ],
            "--recipient is not a transport public key",
        ),
        (
            vec!["keys", "generate", "--config", missing.to_str().unwrap()],
            "not found",
        ),
        (vec!["--config"], "expected --config PATH"),
    ];

    for (args, expected) in cases {
        let run = node.keyfleetd(&lab, &args).failure(2);
        assert!(run.stderr.contains(expected), "{args:?}: {run:?}");
    }

    let help = node.keyfleetd(&lab, &["keys", "--help"]).success();
    assert!(help.stdout.contains("keyfleetd keys import"), "{help:?}");
}

#[test]
fn wrong_pin_is_not_printed() {
    let lab = SoftHsmLab::new();
    let node = TestNode::prepare(&lab, 2);
    let wrong = TestNode {
        name: node.name.clone(),
        token: SoftHsmToken {
            user_pin: "wrong-pin-4711".into(),
            ..node.token.clone()
        },
        config: node.config.clone(),
        pin_env: node.pin_env.clone(),
    };

    let rejected = wrong.keys(&lab, &["generate"]).failure(2);

    assert!(rejected.stderr.contains("PIN rejected"), "{rejected:?}");
}
