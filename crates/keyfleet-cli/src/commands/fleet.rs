//! `keyfleet audit` and `keyfleet fleet`: the witness log audit, publishing and bundle
//! verification.

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use keyfleet_bundle::{
    BundleVerifier, FleetKeyArtifact, KeyChange, KeyDelta, NoteVerifier, TrustAnchors,
    ValidationBundle, artifact_digest, countersignature_message, submission_message,
};
use keyfleet_witness::WitnessCallError;
use keyfleet_witness::WitnessClient;
use keyfleet_witness::audit::{AuditError, AuditOptions, AuditReport, audit as run_audit};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli_error::CliError;
use crate::cli_witness::{
    AuditArgs, FleetKeygenArgs, PinnedKeyArgs, PublishArgs, PublishBundleArgs, VerifyArgs,
};
use crate::output::{print_line, print_result};
use crate::private_file::{check_output, read_secret_text, write_private};

/// Largest artifact or bundle file read, in bytes.
const MAX_INPUT_LEN: u64 = 64 * 1024;
/// Hex digits of a key shown in the delta table without `--key`.
const SHORT_KEY_LEN: usize = 16;

/// Runs `keyfleet audit`.
pub(super) async fn audit(args: &AuditArgs) -> Result<(), CliError> {
    let anchors = trust_anchors(&args.pinned, &args.witness.namespace)?;
    let mut seen_bundles = Vec::new();
    for path in &args.bundles {
        seen_bundles.push(read_bundle(path)?);
    }
    let options = AuditOptions {
        limit: args.limit,
        before_epoch: args.before_epoch,
        seen_bundles,
    };
    let mut client = WitnessClient::connect_lazy(&args.witness.witness, &args.witness.namespace)?;

    let report = match run_audit(&mut client, &anchors, &options).await {
        Ok(report) => report,
        Err(AuditError::Witness(error)) => return Err(audit_witness_error(error)),
        Err(error @ AuditError::CheckFailed { .. }) => {
            return Err(CliError::CheckFailed(format!("audit failed: {error}")));
        }
    };

    if args.json {
        let value = serde_json::to_value(&report)
            .map_err(|error| CliError::InvalidInput(error.to_string()))?;
        return print_line(&value.to_string());
    }
    print_line(&audit_text(&report, args.key))
}

/// Maps a failed witness call of the audit. A log that is gone fails the audit, because a
/// witness never removes entries, and a server without the witness service is unavailable.
fn audit_witness_error(error: WitnessCallError) -> CliError {
    if let WitnessCallError::Status { status, .. } = &error {
        match status.code() {
            tonic::Code::NotFound => {
                return CliError::CheckFailed(format!(
                    "audit failed: the witness has no log to check ({error}); a witness never \
                     removes entries, so a log that once held bundles must still be there"
                ));
            }
            tonic::Code::Unimplemented => {
                return CliError::NotReady(format!(
                    "{error}: the server at the --witness address is not a keyfleet witness"
                ));
            }
            _ => {}
        }
    }
    error.into()
}

fn audit_text(report: &AuditReport, whole_keys: bool) -> String {
    let mut text = format!(
        "witness log {}: {} entries, root hash {}\n",
        report.namespace, report.tree_size, report.root_hash
    );
    match (report.epochs.first(), report.epochs.last()) {
        (Some(first), Some(last)) => text.push_str(&format!(
            "verified epochs {} to {}: digest, witness signature, counter-signature, \
             inclusion, consistency\n",
            first.epoch, last.epoch
        )),
        _ => text.push_str("no epochs in range\n"),
    }
    text.push_str(&format!(
        "{:<6} {:<8} {:<14} {:<16} KEY\n",
        "EPOCH", "CHANGE", "ROLE", "ID"
    ));
    for delta in &report.deltas {
        text.push_str(&delta_row(delta, whole_keys));
    }
    text.trim_end().to_owned()
}

fn delta_row(delta: &KeyDelta, whole_keys: bool) -> String {
    let shorten = |key: &Option<String>| {
        let key = key.as_deref().unwrap_or("-");
        if whole_keys || key.len() <= SHORT_KEY_LEN {
            key.to_owned()
        } else {
            format!("{}...", &key[..SHORT_KEY_LEN])
        }
    };
    let (change, key) = match delta.change {
        KeyChange::Added => ("added", shorten(&delta.new_key)),
        KeyChange::Removed => ("removed", shorten(&delta.old_key)),
        KeyChange::Changed => (
            "changed",
            format!("{} -> {}", shorten(&delta.old_key), shorten(&delta.new_key)),
        ),
    };
    format!(
        "{:<6} {:<8} {:<14} {:<16} {key}\n",
        delta.epoch,
        change,
        delta.role.as_str(),
        delta.id
    )
}

/// Runs `keyfleet fleet keygen`.
pub(super) fn keygen(args: &FleetKeygenArgs) -> Result<(), CliError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let text = Zeroizing::new(format!("{}\n", hex::encode(key.to_bytes())));
    write_private(&args.out, text.as_bytes(), args.force)?;
    print_line(&hex::encode(key.verifying_key().as_bytes()))
}

/// Runs `keyfleet fleet publish`.
pub(super) async fn publish(args: &PublishArgs) -> Result<(), CliError> {
    let operator = read_operator_key(&args.operator_key_file)?;
    let artifact: FleetKeyArtifact = serde_json::from_slice(&read_limited(&args.artifact)?)
        .map_err(|error| {
            CliError::InvalidInput(format!(
                "{} is not a fleet key artifact: {error}",
                args.artifact.display()
            ))
        })?;
    let artifact = artifact
        .normalize()
        .map_err(|error| CliError::InvalidInput(format!("{}: {error}", args.artifact.display())))?;
    let canonical = artifact
        .to_canonical_bytes()
        .map_err(|error| CliError::InvalidInput(format!("{}: {error}", args.artifact.display())))?;
    check_output(&args.out, args.force)?;

    let submission = submission_message(
        &args.witness.namespace,
        artifact.epoch,
        &artifact_digest(&canonical),
    );
    let operator_signature = operator.sign(&submission);
    let mut client = WitnessClient::connect_lazy(&args.witness.witness, &args.witness.namespace)?;
    let bundle = client
        .witness_artifact(&canonical, &operator_signature.to_bytes())
        .await?;
    let witness_signature = bundle
        .witness_signature_bytes()
        .map_err(|error| CliError::CheckFailed(error.to_string()))?;
    let countersignature = operator.sign(&countersignature_message(&witness_signature));
    let bundle = client
        .add_countersignature(bundle.epoch, &countersignature.to_bytes())
        .await?;

    std::fs::write(&args.out, bundle.to_json()).map_err(|source| CliError::File {
        action: "write",
        path: args.out.clone(),
        source,
    })?;
    print_line(&format!(
        "published epoch {} with digest {}; bundle written to {}",
        bundle.epoch,
        bundle.digest,
        args.out.display()
    ))
}

/// Runs `keyfleet fleet publish-bundle`.
pub(super) async fn publish_bundle(args: &PublishBundleArgs) -> Result<(), CliError> {
    if let Some(out) = &args.out {
        check_output(out, args.force)?;
    }
    let client = super::members::admin_client(&args.admin)?;
    let (_, node_keys) = super::members::voter_signing_keys(&client, &args.admin.endpoints).await?;
    let published = client
        .publish_bundle(&args.witness.witness, &args.witness.namespace, &node_keys)
        .await?;
    let bundle = ValidationBundle::from_json(&published.bundle)
        .map_err(|error| CliError::CheckFailed(format!("the fleet returned {error}")))?;

    if let Some(out) = &args.out {
        std::fs::write(out, &published.bundle).map_err(|source| CliError::File {
            action: "write",
            path: out.clone(),
            source,
        })?;
    }
    let text = format!(
        "published fleet key epoch {} with digest {} at log index {}",
        published.epoch, bundle.digest, published.log_index
    );
    let value = json!({
        "epoch": published.epoch,
        "digest": bundle.digest,
        "log_index": published.log_index,
        "out": args.out.as_ref().map(|path| path.display().to_string()),
    });
    print_result(args.admin.endpoints.json, &text, &value)
}

/// Runs `keyfleet fleet node-keys`.
pub(super) async fn node_keys(args: &crate::cli::EndpointArgs) -> Result<(), CliError> {
    let client = super::cluster::client(args)?;
    let (leader_id, keys) = super::members::voter_signing_keys(&client, args).await?;
    let mut lines = vec![format!("{:<5} {:<8} SIGNING KEY", "NODE", "ROLE")];
    let mut values = Vec::new();
    for key in &keys {
        let role = if key.node_id == leader_id {
            "leader"
        } else {
            "voter"
        };
        let key_hex = hex::encode(&key.public_key);
        lines.push(format!("{:<5} {role:<8} {key_hex}", key.node_id));
        values.push(json!({"node_id": key.node_id, "role": role, "signing_key": key_hex}));
    }
    print_result(args.json, &lines.join("\n"), &json!({ "nodes": values }))
}

/// Runs `keyfleet fleet verify`.
pub(super) fn verify(args: &VerifyArgs) -> Result<(), CliError> {
    let mut verifier = BundleVerifier::new(trust_anchors(&args.pinned, &args.namespace)?);
    let mut lines = Vec::new();
    for path in &args.bundles {
        let bundle = read_bundle(path)?;
        let verified = verifier.accept(&bundle).map_err(|error| {
            CliError::CheckFailed(format!(
                "bundle {} rejected: the {} check failed at epoch {}: {error}",
                path.display(),
                error.check(),
                bundle.epoch
            ))
        })?;
        lines.push(format!(
            "verified epoch {} of fleet {} ({} keys, digest {})",
            verified.epoch(),
            verified.artifact.fleet_id,
            verified.artifact.keys.len(),
            hex::encode(verified.digest)
        ));
    }
    let newest = verifier
        .newest()
        .expect("clap requires at least one bundle, and each was accepted");
    let value = json!({
        "epoch": newest.epoch(),
        "fleet_id": newest.artifact.fleet_id,
        "digest": hex::encode(newest.digest),
        "keys": newest.artifact.keys,
    });
    print_result(args.json, &lines.join("\n"), &value)
}

fn trust_anchors(pinned: &PinnedKeyArgs, namespace: &str) -> Result<TrustAnchors, CliError> {
    parse_trust_anchors(&pinned.witness_key, &pinned.operator_key, namespace)
}

/// Parses the pinned witness verifier key and operator key, as the options give them.
pub(super) fn parse_trust_anchors(
    witness_key: &str,
    operator_key: &str,
    namespace: &str,
) -> Result<TrustAnchors, CliError> {
    keyfleet_bundle::validate_namespace(namespace).map_err(|reason| {
        CliError::Usage(format!("namespace {namespace:?} is invalid: {reason}"))
    })?;
    let witness = NoteVerifier::parse(witness_key)
        .map_err(|error| CliError::Usage(format!("--witness-key: {error}")))?;
    let operator = hex::decode(operator_key.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--operator-key {operator_key:?} is not an Ed25519 public key in hex (64 \
                 digits); `keyfleet fleet keygen` prints it"
            ))
        })?;
    Ok(TrustAnchors {
        witness,
        operator,
        namespace: namespace.into(),
    })
}

fn read_operator_key(path: &Path) -> Result<SigningKey, CliError> {
    let text = read_secret_text(path, 1024)?;
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut_slice()).map_err(|_| {
        CliError::InvalidInput(format!(
            "{} must hold an Ed25519 seed as 64 hex digits; create one with `keyfleet fleet keygen`",
            path.display()
        ))
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

fn read_bundle(path: &Path) -> Result<ValidationBundle, CliError> {
    ValidationBundle::from_json(&read_limited(path)?)
        .map_err(|error| CliError::InvalidInput(format!("{}: {error}", path.display())))
}

fn read_limited(path: &Path) -> Result<Vec<u8>, CliError> {
    let file_error = |source| CliError::File {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let length = std::fs::metadata(path).map_err(file_error)?.len();
    if length > MAX_INPUT_LEN {
        return Err(CliError::InvalidInput(format!(
            "{} is {length} bytes, more than the limit of {MAX_INPUT_LEN}",
            path.display()
        )));
    }
    std::fs::read(path).map_err(file_error)
}
