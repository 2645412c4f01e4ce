//! `keyfleet audit` and `keyfleet fleet`: the witness log audit, publishing and bundle
//! verification.

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use keyfleet_bundle::{
    BundleVerifier, FleetKeyArtifact, KeyChange, KeyDelta, NoteVerifier, TrustAnchors,
    ValidationBundle, countersignature_message,
};
use keyfleet_witness::WitnessClient;
use keyfleet_witness::audit::{AuditError, AuditOptions, AuditReport, audit as run_audit};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli_error::CliError;
use crate::cli_witness::{AuditArgs, FleetKeygenArgs, PinnedKeyArgs, PublishArgs, VerifyArgs};
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
        Err(AuditError::Witness(error)) => return Err(error.into()),
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
    let canonical = artifact
        .normalize()
        .and_then(|artifact| artifact.to_canonical_bytes())
        .map_err(|error| CliError::InvalidInput(format!("{}: {error}", args.artifact.display())))?;
    check_output(&args.out, args.force)?;

    let mut client = WitnessClient::connect_lazy(&args.witness.witness, &args.witness.namespace)?;
    let bundle = client.witness_artifact(&canonical).await?;
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
    keyfleet_bundle::validate_namespace(namespace)
        .map_err(|reason| CliError::Usage(format!("--namespace: {reason}")))?;
    let witness = NoteVerifier::parse(&pinned.witness_key)
        .map_err(|error| CliError::Usage(format!("--witness-key: {error}")))?;
    let operator = hex::decode(pinned.operator_key.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--operator-key {:?} is not an Ed25519 public key in hex (64 digits); \
                 `keyfleet fleet keygen` prints it",
                pinned.operator_key
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
