//! End-to-end audit of a namespace's witness log, the logic behind `keyfleet audit`.

use keyfleet_bundle::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use keyfleet_bundle::{
    BundleError, Checkpoint, KeyDelta, TrustAnchors, ValidationBundle, VerifiedBundle, key_delta,
    log_origin,
};
use serde::Serialize;
use thiserror::Error;

use crate::client::{WitnessCallError, WitnessClient};

/// Default number of epochs to audit.
pub const DEFAULT_LIMIT: u64 = 50;

/// Options of an audit: the epoch range and the bundles to cross-check.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Number of epochs to audit, counting back from the newest (or from `before_epoch`).
    pub limit: u64,
    /// Audit only epochs below this one, to page back.
    pub before_epoch: Option<u64>,
    /// Bundles seen elsewhere, such as from the fleet, to cross-check against the log.
    pub seen_bundles: Vec<ValidationBundle>,
}

/// One audited epoch.
#[derive(Debug, Clone, Serialize)]
pub struct AuditedEpoch {
    /// The epoch.
    pub epoch: u64,
    /// SHA-256 of the artifact, hex.
    pub digest: String,
    /// When the witness signed, in Unix seconds.
    pub timestamp: u64,
    /// The fleet id the artifact names.
    pub fleet_id: String,
}

/// The result of an audit that passed every check.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// The namespace.
    pub namespace: String,
    /// Entries in the log's newest checkpoint.
    pub tree_size: u64,
    /// Root hash of the newest checkpoint, hex.
    pub root_hash: String,
    /// The audited epochs, oldest first.
    pub epochs: Vec<AuditedEpoch>,
    /// Key changes of the audited epochs, oldest first.
    pub deltas: Vec<KeyDelta>,
}

/// An audit failure.
#[derive(Debug, Error)]
pub enum AuditError {
    /// The witness could not be reached or sent an unusable response.
    #[error(transparent)]
    Witness(#[from] WitnessCallError),
    /// A check failed.
    #[error("the {check} check failed at {}: {reason}", describe_epoch(*.epoch))]
    CheckFailed {
        /// The epoch; none when the newest checkpoint itself fails.
        epoch: Option<u64>,
        /// Short name of the check, such as `digest` or `consistency`.
        check: &'static str,
        /// What failed.
        reason: String,
    },
}

fn describe_epoch(epoch: Option<u64>) -> String {
    match epoch {
        Some(epoch) => format!("epoch {epoch}"),
        None => "the newest checkpoint".into(),
    }
}

fn failed(epoch: u64, check: &'static str, reason: impl Into<String>) -> AuditError {
    AuditError::CheckFailed {
        epoch: Some(epoch),
        check,
        reason: reason.into(),
    }
}

fn bundle_failed(epoch: u64, error: BundleError) -> AuditError {
    failed(epoch, error.check(), error.to_string())
}

/// Audits the log and stops at the first failed check.
///
/// For each epoch in range it fetches the entry and checks the digest, the witness signature,
/// the counter-signature and inclusion in the newest checkpoint. It also checks that the
/// newest checkpoint extends the entry's own. Then it cross-checks `seen_bundles`.
pub async fn audit(
    client: &mut WitnessClient,
    anchors: &TrustAnchors,
    options: &AuditOptions,
) -> Result<AuditReport, AuditError> {
    let latest = open_latest_checkpoint(client, anchors).await?;
    let newest = match options.before_epoch {
        Some(before) => before.saturating_sub(1).min(latest.size),
        None => latest.size,
    };
    let oldest = newest.saturating_sub(options.limit.max(1) - 1).max(1);
    // One epoch before the range is verified too, as the baseline of the first delta.
    let baseline = oldest.saturating_sub(1).max(1);

    let mut epochs = Vec::new();
    let mut deltas = Vec::new();
    let mut previous: Option<VerifiedBundle> = None;
    for epoch in baseline..=newest {
        let verified = audit_entry(client, anchors, &latest, epoch).await?;
        if epoch >= oldest {
            deltas.extend(key_delta(
                previous.as_ref().map(|bundle| &bundle.artifact),
                &verified.artifact,
            ));
            epochs.push(AuditedEpoch {
                epoch,
                digest: hex::encode(verified.digest),
                timestamp: verified.bundle.timestamp,
                fleet_id: verified.artifact.fleet_id.clone(),
            });
        }
        previous = Some(verified);
    }

    for seen in &options.seen_bundles {
        cross_check_seen_bundle(client, anchors, &latest, seen).await?;
    }

    Ok(AuditReport {
        namespace: anchors.namespace.clone(),
        tree_size: latest.size,
        root_hash: hex::encode(latest.root),
        epochs,
        deltas,
    })
}

async fn open_latest_checkpoint(
    client: &mut WitnessClient,
    anchors: &TrustAnchors,
) -> Result<Checkpoint, AuditError> {
    let note = client.checkpoint().await?;
    let checkpoint_failed = |reason: String| AuditError::CheckFailed {
        epoch: None,
        check: "checkpoint",
        reason,
    };
    let checkpoint = Checkpoint::open(&note, &anchors.witness)
        .map_err(|error| checkpoint_failed(error.to_string()))?;
    let origin = log_origin(anchors.witness.name(), &anchors.namespace);
    if checkpoint.origin != origin {
        return Err(checkpoint_failed(format!(
            "the origin is {:?}, expected {origin:?}",
            checkpoint.origin
        )));
    }
    Ok(checkpoint)
}

/// Fetches and checks one entry against the newest checkpoint.
async fn audit_entry(
    client: &mut WitnessClient,
    anchors: &TrustAnchors,
    latest: &Checkpoint,
    epoch: u64,
) -> Result<VerifiedBundle, AuditError> {
    let entry = client.entry(epoch, latest.size).await?;
    if entry.bundle.epoch != epoch {
        return Err(failed(
            epoch,
            "epoch-order",
            format!(
                "the log serves epoch {} as entry {epoch}; it dropped or replayed an entry",
                entry.bundle.epoch
            ),
        ));
    }
    let verified = anchors
        .verify(&entry.bundle)
        .map_err(|error| bundle_failed(epoch, error))?;

    let statement = entry
        .bundle
        .statement(&anchors.namespace)
        .map_err(|error| bundle_failed(epoch, error))?
        .to_bytes();
    verify_inclusion(
        &leaf_hash(&statement),
        epoch - 1,
        latest.size,
        &entry.inclusion_proof,
        &latest.root,
    )
    .map_err(|error| {
        failed(
            epoch,
            "inclusion",
            format!("not in the newest checkpoint: {error}"),
        )
    })?;

    check_consistency(client, &verified.checkpoint, latest, epoch).await?;
    Ok(verified)
}

/// Checks that the newest checkpoint extends `older`.
async fn check_consistency(
    client: &mut WitnessClient,
    older: &Checkpoint,
    latest: &Checkpoint,
    epoch: u64,
) -> Result<(), AuditError> {
    if older.size > latest.size {
        return Err(failed(
            epoch,
            "log-size",
            format!(
                "a checkpoint of {} entries was signed, but the newest has only {}; the log \
                 dropped entries or was rolled back",
                older.size, latest.size
            ),
        ));
    }
    let proof = if older.size == latest.size {
        Vec::new()
    } else {
        client.consistency_proof(older.size, latest.size).await?
    };
    verify_consistency(older.size, latest.size, &older.root, &latest.root, &proof).map_err(
        |error| {
            failed(
                epoch,
                "consistency",
                format!(
                    "the log at {} entries does not extend its checkpoint at {}: {error}",
                    latest.size, older.size
                ),
            )
        },
    )
}

/// Checks a bundle seen elsewhere: it must verify, and the log must hold the same artifact at
/// its epoch under a checkpoint that extends the bundle's.
async fn cross_check_seen_bundle(
    client: &mut WitnessClient,
    anchors: &TrustAnchors,
    latest: &Checkpoint,
    seen: &ValidationBundle,
) -> Result<(), AuditError> {
    let epoch = seen.epoch;
    let verified = anchors
        .verify(seen)
        .map_err(|error| bundle_failed(epoch, error))?;
    check_consistency(client, &verified.checkpoint, latest, epoch).await?;
    let entry = client.entry(epoch, latest.size).await?;
    if entry.bundle.digest != seen.digest {
        return Err(failed(
            epoch,
            "consistency",
            format!(
                "forked log: the log contains digest {} at epoch {epoch}, a seen bundle has {}",
                entry.bundle.digest, seen.digest
            ),
        ));
    }
    Ok(())
}
