//! `keyfleetd keys generate`: creates the fleet keys on the fleet's first node.

use keyfleet_hsm::{Hsm, Provisioned};

use super::check::oprf_check_value;
use super::{FleetToken, KeysError, hex};

/// Provisions the fleet sealing key and OPRF seed in `token`, and prints what it did per label.
pub(crate) async fn generate(token: &FleetToken) -> Result<(), KeysError> {
    let specs = [token.seal_spec(), token.oprf_seed_spec()];
    let mut outcomes = Vec::with_capacity(specs.len());

    for spec in &specs {
        let outcome = token.hsm().provision(spec).await?;
        let action = match outcome {
            Provisioned::Created => "generated a new",
            Provisioned::Existing => "kept the existing",
        };
        println!(
            "{}: {action} {} on token {:?}",
            spec.label,
            spec.kind,
            token.label()
        );
        outcomes.push(outcome);
    }

    let oprf_seed = &specs[1].label;
    let check = oprf_check_value(token.hsm(), oprf_seed).await?;
    println!("{oprf_seed}: check value {}", hex::encode(&check));

    if outcomes.contains(&Provisioned::Created) && outcomes.contains(&Provisioned::Existing) {
        eprintln!(
            "keyfleetd: warning: token {:?} had only one of the two fleet keys, and the other \
             was generated now. If this token already took part in a fleet, the new key \
             differs from the fleet's: delete it and run `keyfleetd keys import` instead.",
            token.label()
        );
    }
    Ok(())
}
