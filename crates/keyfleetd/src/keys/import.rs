//! `keyfleetd keys import`: unwraps the fleet keys from a file into this node's token.
//!
//! The import runs in two phases so that a conflict changes nothing. First it compares every
//! key the token already has under the configured labels with the file's check values, and
//! stops if any differs. Then it unwraps the missing keys and checks each one again.

use std::path::Path;

use keyfleet_hsm::{Hsm, HsmError, KeyKind, KeySpec};

use super::check::{KeyCheck, check_oprf_seed, check_seal_key};
use super::file::{FileKey, FleetKeyFile};
use super::public_key::fingerprint;
use super::{FleetToken, KeysError, hex};

/// Imports the fleet keys in the file `input` into `token`, and prints what it did per label.
pub(crate) async fn import(token: &FleetToken, input: &Path) -> Result<(), KeysError> {
    let file = FleetKeyFile::read(input)?;

    import_keys(token, &file, &input.display().to_string()).await
}

/// Imports the fleet keys of `file` into `token`; `shown` names the file's source in messages.
pub(crate) async fn import_keys(
    token: &FleetToken,
    file: &FleetKeyFile,
    shown: &str,
) -> Result<(), KeysError> {
    let own = token.transport_public_key().await?;
    if own != file.recipient {
        return Err(KeysError::failed(format!(
            "{shown} was exported for the transport key with fingerprint {}, but token {:?} has \
             the transport key with fingerprint {}; export the fleet keys again with \
             --recipient set to the output of `keyfleetd keys transport-key` on this node",
            fingerprint(&file.recipient),
            token.label(),
            fingerprint(&own)
        )));
    }

    let seal = token.seal_spec();
    let oprf_seed = token.oprf_seed_spec();
    if seal.label != file.seal.label {
        return Err(KeysError::usage(format!(
            "hsm.keys.seal is {:?}, but the sealing key in {shown} is labeled {:?}; every \
             sealed blob names and authenticates its key label, so every node must use the \
             same one: set hsm.keys.seal = {:?}",
            seal.label.as_str(),
            file.seal.label.as_str(),
            file.seal.label.as_str()
        )));
    }

    let steps = [(&seal, &file.seal), (&oprf_seed, &file.oprf_seed)];
    let mut states = Vec::with_capacity(steps.len());
    for (spec, _) in steps {
        let state = check_key(token, file, spec).await?;
        match state {
            KeyCheck::Differs => return Err(conflict_error(token, spec, shown)),
            KeyCheck::Matches => token.require_fleet_key(spec).await?,
            KeyCheck::Missing => {}
        }
        states.push(state);
    }

    for ((spec, file_key), state) in steps.into_iter().zip(states) {
        let note = exporter_label_note(spec, file_key);
        if state == KeyCheck::Matches {
            println!(
                "{}: already present on token {:?}, check value matches{note}",
                spec.label,
                token.label()
            );
            continue;
        }

        unwrap(token, spec, file_key).await?;
        if check_key(token, file, spec).await? != KeyCheck::Matches {
            return Err(check_failed_error(token, spec, shown));
        }
        println!(
            "{}: imported and verified the {} on token {:?}{note}",
            spec.label,
            spec.kind,
            token.label()
        );
    }

    println!(
        "{}: check value {}",
        oprf_seed.label,
        hex::encode(&file.oprf_seed_check)
    );
    Ok(())
}

/// Compares the token's key under `spec`'s label with the file's check value for that key.
async fn check_key(
    token: &FleetToken,
    file: &FleetKeyFile,
    spec: &KeySpec,
) -> Result<KeyCheck, KeysError> {
    let hsm = token.hsm();
    let state = match spec.kind {
        KeyKind::SealAes256 => check_seal_key(hsm, &spec.label, &file.seal_check).await?,
        KeyKind::HmacSha512 => check_oprf_seed(hsm, &spec.label, &file.oprf_seed_check).await?,
        other => unreachable!("{other} is not a fleet key"),
    };
    Ok(state)
}

async fn unwrap(token: &FleetToken, spec: &KeySpec, file_key: &FileKey) -> Result<(), KeysError> {
    let transport = token.transport_spec().label;

    match token
        .hsm()
        .unwrap_key(&transport, &file_key.wrapped, spec)
        .await
    {
        Ok(()) => Ok(()),
        Err(error @ (HsmError::UnwrapFailed { .. } | HsmError::MalformedWrappedKey { .. })) => {
            Err(KeysError::failed(format!(
                "{error}; no key was stored under {:?}. Export a new file for this node's \
                 transport key and import it",
                spec.label.as_str()
            )))
        }
        Err(error) => Err(error.into()),
    }
}

fn conflict_error(token: &FleetToken, spec: &KeySpec, input: &str) -> KeysError {
    KeysError::failed(format!(
        "token {:?} already has a different key under {:?}: it does not match the {} in \
         {input}, so nothing was imported. If this token belongs to another fleet, configure a \
         fresh token. If the key is a leftover, delete it with `{}` and import again",
        token.label(),
        spec.label.as_str(),
        spec.kind,
        token.delete_command(spec.label.as_str())
    ))
}

/// Builds the error for a key that unwrapped but then failed its check. That means the file was
/// made with matching digest but mismatching check values, or a token is faulty.
fn check_failed_error(token: &FleetToken, spec: &KeySpec, input: &str) -> KeysError {
    tracing::error!(
        token = token.label(),
        label = %spec.label,
        file = input,
        "unwrapped fleet key failed its key check"
    );

    // NOTE: the Hsm trait has no way to delete a key, so the key that failed stays in the
    // token until the operator deletes it.
    KeysError::failed(format!(
        "KEY CHECK FAILED after unwrapping: the {} now stored under {:?} on token {:?} does \
         not match the check value in {input}. The file was altered after export or a token is \
         faulty, so do not start this node with this key. Delete it with `{}`, then export a \
         new file on a node whose keys are known good and import that",
        spec.kind,
        spec.label.as_str(),
        token.label(),
        token.delete_command(spec.label.as_str())
    ))
}

/// Returns a note for output when the exporter used a different label for the OPRF seed.
fn exporter_label_note(spec: &KeySpec, file_key: &FileKey) -> String {
    if spec.label == file_key.label {
        String::new()
    } else {
        format!(" (the exporter labels it {:?})", file_key.label.as_str())
    }
}
