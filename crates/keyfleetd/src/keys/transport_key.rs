//! `keyfleetd keys transport-key`: prints the key that other nodes wrap fleet keys for.

use keyfleet_hsm::{Hsm, Provisioned};

use super::public_key::fingerprint;
use super::{FleetToken, KeysError, hex};

/// Provisions the transport key in `token` and prints its SEC1 public point on stdout, alone.
/// What was done goes to stderr.
pub(crate) async fn transport_key(token: &FleetToken) -> Result<(), KeysError> {
    let spec = token.transport_spec();
    let outcome = token.hsm().provision(&spec).await?;
    let public_key = token.transport_public_key().await?;

    let action = match outcome {
        Provisioned::Created => "generated a new",
        Provisioned::Existing => "kept the existing",
    };
    eprintln!(
        "{}: {action} {} on token {:?}, fingerprint {}",
        spec.label,
        spec.kind,
        token.label(),
        fingerprint(&public_key)
    );
    println!("{}", hex::encode(public_key.as_sec1()));
    Ok(())
}
