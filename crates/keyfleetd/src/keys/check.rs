//! Key check values: proof that two tokens hold the same fleet key, without revealing it.
//!
//! - Sealing key: a probe blob, sealed with [`Hsm::seal`] under [`SEAL_CHECK_PURPOSE`] and
//!   record id [`SEAL_CHECK_RECORD_ID`], whose plaintext is [`SEAL_CHECK_PLAINTEXT`]. A token
//!   whose key opens the probe to that plaintext has the same key, because AES-GCM
//!   authenticates the blob under the key.
//! - OPRF seed: the first [`OPRF_CHECK_LEN`] bytes of HMAC-SHA512 under the seed of
//!   [`OPRF_CHECK_INPUT`]. The vault's OPRF inputs end in `"OprfKey" 0x01`, and this input does
//!   not, so the check value is never an OPRF key.

use keyfleet_hsm::{Hsm, HsmError, KeyLabel, SealContext, SealedBlob};

/// Seal purpose of the sealing-key probe. No vault record uses it.
pub(crate) const SEAL_CHECK_PURPOSE: &str = "keyfleet-key-check";
/// Record id of the sealing-key probe.
pub(crate) const SEAL_CHECK_RECORD_ID: &[u8] = b"fleet-sealing-key";
/// Known plaintext of the sealing-key probe.
pub(crate) const SEAL_CHECK_PLAINTEXT: &[u8] = b"keyfleet fleet sealing key check, version 1";
/// HMAC input of the OPRF seed's check value.
pub(crate) const OPRF_CHECK_INPUT: &[u8] = b"keyfleet/key-check/oprf-seed/v1";
/// Length of the OPRF seed's check value in bytes.
pub(crate) const OPRF_CHECK_LEN: usize = 16;

/// Result of comparing a token's key with a check value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyCheck {
    /// The token's key matches the check value.
    Matches,
    /// The token has a key under the label, and it is a different key.
    Differs,
    /// The token has no secret key under the label.
    Missing,
}

fn probe_context() -> SealContext<'static> {
    SealContext::new(SEAL_CHECK_PURPOSE, SEAL_CHECK_RECORD_ID)
}

/// Seals the probe under the sealing key `label`.
pub(crate) async fn seal_check_value(
    hsm: &dyn Hsm,
    label: &KeyLabel,
) -> Result<SealedBlob, HsmError> {
    hsm.seal(label, &probe_context(), SEAL_CHECK_PLAINTEXT)
        .await
}

/// Computes the OPRF seed's check value under the HMAC key `label`.
pub(crate) async fn oprf_check_value(
    hsm: &dyn Hsm,
    label: &KeyLabel,
) -> Result<[u8; OPRF_CHECK_LEN], HsmError> {
    let mac = hsm.hmac_sha512(label, OPRF_CHECK_INPUT).await?;
    let mut check = [0u8; OPRF_CHECK_LEN];
    check.copy_from_slice(&mac[..OPRF_CHECK_LEN]);
    Ok(check)
}

/// Opens `probe` with the sealing key `label`.
pub(crate) async fn check_seal_key(
    hsm: &dyn Hsm,
    label: &KeyLabel,
    probe: &SealedBlob,
) -> Result<KeyCheck, HsmError> {
    match hsm.unseal(label, &probe_context(), probe).await {
        Ok(plaintext) if plaintext.ct_eq(SEAL_CHECK_PLAINTEXT) => Ok(KeyCheck::Matches),
        Ok(_) | Err(HsmError::UnsealFailed { .. }) => Ok(KeyCheck::Differs),
        Err(HsmError::KeyNotFound { .. }) => Ok(KeyCheck::Missing),
        Err(error) => Err(error),
    }
}

/// Compares the HMAC key `label` with the OPRF seed's check value `expected`.
pub(crate) async fn check_oprf_seed(
    hsm: &dyn Hsm,
    label: &KeyLabel,
    expected: &[u8; OPRF_CHECK_LEN],
) -> Result<KeyCheck, HsmError> {
    match oprf_check_value(hsm, label).await {
        Ok(actual) if &actual == expected => Ok(KeyCheck::Matches),
        Ok(_) => Ok(KeyCheck::Differs),
        Err(HsmError::KeyNotFound { .. }) => Ok(KeyCheck::Missing),
        Err(error) => Err(error),
    }
}
