//! Proof that a joining node's HSM contains the fleet keys, bound to the leader's challenge.
//!
//! - Sealing key: the node seals the challenge under its fleet sealing key, with purpose
//!   [`SEAL_PROOF_PURPOSE`] and its node id as record id. The leader opens the blob with its own
//!   sealing key, and AES-GCM only opens it under the same key.
//! - OPRF seed: the node sends HMAC-SHA512 under its OPRF seed of [`oprf_proof_input`]. The
//!   input ends in 0x00, and every OPRF key derivation input ends in `"OprfKey" 0x01`, so the
//!   proof is never an OPRF key.

use keyfleet_hsm::{Hsm, HsmError, KeyLabel, SealContext, SealedBlob};
use keyfleet_raft::NodeId;
use subtle::ConstantTimeEq;

/// Seal purpose of the sealing-key proof. No vault record uses it.
pub(crate) const SEAL_PROOF_PURPOSE: &str = "keyfleet-join-proof";
/// Prefix of the OPRF seed proof's HMAC input.
const OPRF_PROOF_DOMAIN: &[u8] = b"keyfleet/join-proof/oprf-seed/v1";
/// Length of a challenge in bytes.
pub(crate) const CHALLENGE_LEN: usize = 32;

/// The two proofs a joining node sends with `CompleteJoin`.
#[derive(Debug, Clone)]
pub(crate) struct JoinProof {
    pub(crate) seal: SealedBlob,
    pub(crate) oprf_seed: [u8; 64],
}

/// Returns `"keyfleet/join-proof/oprf-seed/v1" ‖ node id (8 bytes, big-endian) ‖ challenge ‖
/// 0x00`.
fn oprf_proof_input(node_id: NodeId, challenge: &[u8; CHALLENGE_LEN]) -> Vec<u8> {
    let mut input = Vec::with_capacity(OPRF_PROOF_DOMAIN.len() + 8 + CHALLENGE_LEN + 1);
    input.extend_from_slice(OPRF_PROOF_DOMAIN);
    input.extend_from_slice(&node_id.to_be_bytes());
    input.extend_from_slice(challenge);
    input.push(0x00);
    input
}

fn record_id(node_id: NodeId) -> [u8; 8] {
    node_id.to_be_bytes()
}

/// Computes node `node_id`'s proofs for `challenge` with the fleet keys in `hsm`.
pub(crate) async fn prove(
    hsm: &dyn Hsm,
    seal: &KeyLabel,
    oprf_seed: &KeyLabel,
    node_id: NodeId,
    challenge: &[u8; CHALLENGE_LEN],
) -> Result<JoinProof, HsmError> {
    let record = record_id(node_id);
    let context = SealContext::new(SEAL_PROOF_PURPOSE, &record);
    let sealed = hsm.seal(seal, &context, challenge).await?;
    let mac = hsm
        .hmac_sha512(oprf_seed, &oprf_proof_input(node_id, challenge))
        .await?;

    Ok(JoinProof {
        seal: sealed,
        oprf_seed: *mac,
    })
}

/// The fleet key whose proof failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProofFailure {
    #[error("the sealing-key proof does not open under the fleet sealing key")]
    SealKey,
    #[error("the OPRF seed proof does not match the fleet OPRF seed")]
    OprfSeed,
}

/// Checks node `node_id`'s proofs for `challenge` against the fleet keys in `hsm`. Returns
/// `Ok(Err(_))` for a wrong proof and `Err(_)` when the HSM fails.
pub(crate) async fn verify(
    hsm: &dyn Hsm,
    seal: &KeyLabel,
    oprf_seed: &KeyLabel,
    node_id: NodeId,
    challenge: &[u8; CHALLENGE_LEN],
    proof: &JoinProof,
) -> Result<Result<(), ProofFailure>, HsmError> {
    let record = record_id(node_id);
    let context = SealContext::new(SEAL_PROOF_PURPOSE, &record);
    let seal_ok = match hsm.unseal(seal, &context, &proof.seal).await {
        Ok(plaintext) => plaintext.ct_eq(challenge.as_slice()),
        // A blob sealed under another label, or not a sealed blob at all, is a wrong proof too.
        Err(
            HsmError::UnsealFailed { .. }
            | HsmError::InvalidInput { .. }
            | HsmError::MalformedBlob { .. },
        ) => false,
        Err(error) => return Err(error),
    };
    if !seal_ok {
        return Ok(Err(ProofFailure::SealKey));
    }

    let expected = hsm
        .hmac_sha512(oprf_seed, &oprf_proof_input(node_id, challenge))
        .await?;
    if bool::from(expected.as_slice().ct_eq(proof.oprf_seed.as_slice())) {
        Ok(Ok(()))
    } else {
        Ok(Err(ProofFailure::OprfSeed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oprf_input_is_domain_separated() {
        let input = oprf_proof_input(4, &[9; CHALLENGE_LEN]);

        assert!(input.starts_with(OPRF_PROOF_DOMAIN));
        assert_eq!(input.len(), OPRF_PROOF_DOMAIN.len() + 8 + CHALLENGE_LEN + 1);
        assert_eq!(input.last(), Some(&0x00));
        assert_ne!(input, oprf_proof_input(5, &[9; CHALLENGE_LEN]));
    }
}
