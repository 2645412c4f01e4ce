//! `keyfleetd keys export`: wraps the fleet keys for another node's transport key.

use std::path::Path;

use keyfleet_hsm::{Hsm, HsmError, KeyLabel, TransportPublicKey};

use super::check::{oprf_check_value, seal_check_value};
use super::file::{FileKey, FleetKeyFile, exists_error};
use super::public_key::fingerprint;
use super::{FleetToken, KeysError, hex};

/// Wraps the sealing key and OPRF seed of `token` for `recipient` and writes them, with their
/// check values, to `out`. An existing `out` is replaced only when `force` is true.
pub(crate) async fn export(
    token: &FleetToken,
    recipient: &TransportPublicKey,
    out: &Path,
    force: bool,
) -> Result<(), KeysError> {
    // Checked early so that an operator learns of it before any HSM work; the final write
    // checks again.
    if !force && out.symlink_metadata().is_ok() {
        return Err(exists_error(out));
    }

    let seal = token.seal_spec();
    let oprf_seed = token.oprf_seed_spec();
    token.require_fleet_key(&seal).await?;
    token.require_fleet_key(&oprf_seed).await?;

    let file = wrap_fleet_keys(token.hsm(), &seal.label, &oprf_seed.label, recipient).await?;
    file.write(out, force)?;

    println!(
        "wrote {} for the transport key with fingerprint {}",
        out.display(),
        fingerprint(recipient)
    );
    println!("{}: wrapped {}", seal.label, seal.kind);
    println!(
        "{}: wrapped {}, check value {}",
        oprf_seed.label,
        oprf_seed.kind,
        hex::encode(&file.oprf_seed_check)
    );
    Ok(())
}

/// Wraps the sealing key `seal` and the OPRF seed `oprf_seed` of `hsm` for `recipient`, with
/// their check values. The caller checks first that both keys exist.
pub(crate) async fn wrap_fleet_keys(
    hsm: &dyn Hsm,
    seal: &KeyLabel,
    oprf_seed: &KeyLabel,
    recipient: &TransportPublicKey,
) -> Result<FleetKeyFile, HsmError> {
    Ok(FleetKeyFile {
        recipient: recipient.clone(),
        seal: FileKey {
            label: seal.clone(),
            wrapped: hsm.wrap_key(seal, recipient).await?,
        },
        seal_check: seal_check_value(hsm, seal).await?,
        oprf_seed: FileKey {
            label: oprf_seed.clone(),
            wrapped: hsm.wrap_key(oprf_seed, recipient).await?,
        },
        oprf_seed_check: oprf_check_value(hsm, oprf_seed).await?,
    })
}
