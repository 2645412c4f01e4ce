//! Request ids of the vault's Raft commands, derived from the client's request id and payload.
//!
//! A retry with the same client request id and the same payload gets the same Raft request id,
//! so the state machine applies it once and returns the first outcome. The payload is part of
//! the derivation because a RecoveryStart that reused a request id with another KE1 would
//! otherwise have its OPRF evaluated on a new input without a new guess being counted.

use keyfleet_api::ErrorReason;
use keyfleet_raft::{RequestId, UserId};
use sha2::{Digest, Sha256};
use tonic::{Code, Status};

use crate::error_status::error_status;

/// Length of a client request id.
pub(crate) const CLIENT_REQUEST_ID_LEN: usize = 16;

const DOMAIN: &[u8] = b"keyfleet.v1 request id";

/// Derives the Raft request id of `operation` on `record` from the client's request id and the
/// payload fields.
pub(crate) fn derive(
    operation: &str,
    record: &UserId,
    client_request_id: &[u8],
    payload: &[&[u8]],
) -> Result<RequestId, Status> {
    if client_request_id.len() != CLIENT_REQUEST_ID_LEN {
        return Err(error_status(
            Code::InvalidArgument,
            ErrorReason::InvalidArgument,
            format!(
                "request_id is {} bytes long: send {CLIENT_REQUEST_ID_LEN} random bytes, the same \
                 on every retry",
                client_request_id.len()
            ),
            &[("field", "request_id".to_owned())],
        ));
    }

    let mut hash = Sha256::new();
    for part in [DOMAIN, operation.as_bytes(), record.as_str().as_bytes()]
        .into_iter()
        .chain([client_request_id])
        .chain(payload.iter().copied())
    {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }

    let digest = hash.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    Ok(RequestId::from_bytes(id))
}

/// Derives the request id of an internal command that has no client request id, so that every
/// path that sends it for the same record version sends the same id.
pub(crate) fn internal(operation: &str, record: &UserId, version: u64) -> RequestId {
    let client_id = version.to_be_bytes().repeat(2);

    derive(operation, record, &client_id, &[])
        .expect("two big-endian u64 values are 16 bytes, a valid request id")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> UserId {
        UserId::new("tenant/alice").unwrap()
    }

    #[test]
    fn same_inputs_same_id() {
        let first = derive("consume_guess", &record(), &[1; 16], &[b"ke1"]).unwrap();
        let again = derive("consume_guess", &record(), &[1; 16], &[b"ke1"]).unwrap();

        assert_eq!(first, again);
    }

    #[test]
    fn any_change_gives_another_id() {
        let base = derive("consume_guess", &record(), &[1; 16], &[b"ke1"]).unwrap();
        let other_user = UserId::new("tenant/bob").unwrap();

        let variants = [
            derive("reset_guesses", &record(), &[1; 16], &[b"ke1"]).unwrap(),
            derive("consume_guess", &other_user, &[1; 16], &[b"ke1"]).unwrap(),
            derive("consume_guess", &record(), &[2; 16], &[b"ke1"]).unwrap(),
            derive("consume_guess", &record(), &[1; 16], &[b"ke2"]).unwrap(),
            derive("consume_guess", &record(), &[1; 16], &[b"ke", b"1"]).unwrap(),
        ];

        for variant in variants {
            assert_ne!(variant, base);
        }
    }

    #[test]
    fn wrong_length_is_rejected() {
        let status = derive("erase", &record(), &[1; 15], &[]).unwrap_err();

        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("15 bytes"),
            "{}",
            status.message()
        );
    }
}
