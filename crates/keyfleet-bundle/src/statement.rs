//! The messages the witness and the operator sign.

/// First line of a witness statement, naming its format.
const STATEMENT_HEADER: &str = "keyfleet-witness-statement/v1";

/// Prefix of the message the operator signs, so that a counter-signature can never be taken
/// for a signature over anything else.
const COUNTERSIGNATURE_CONTEXT: &[u8] = b"keyfleet-countersignature/v1\n";

/// First line of the message an operator signs to submit an artifact to the witness.
const SUBMISSION_HEADER: &str = "keyfleet-witness-submission/v1";

/// The message the witness signs for one artifact: the namespace, the epoch, its own timestamp and
/// the artifact's SHA-256 digest. The statement is also the leaf of the witness log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessStatement {
    /// Log namespace.
    pub namespace: String,
    /// Epoch of the artifact.
    pub epoch: u64,
    /// When the witness signed, in Unix seconds.
    pub timestamp: u64,
    /// SHA-256 of the artifact's canonical bytes.
    pub digest: [u8; 32],
}

impl WitnessStatement {
    /// Returns the signed bytes: five newline-terminated lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "{STATEMENT_HEADER}\nnamespace {}\nepoch {}\ntimestamp {}\ndigest {}\n",
            self.namespace,
            self.epoch,
            self.timestamp,
            hex::encode(self.digest)
        )
        .into_bytes()
    }
}

/// Returns the message the operator's fleet signing key signs: a fixed context followed by
/// the witness's 64 signature bytes.
pub fn countersignature_message(witness_signature: &[u8]) -> Vec<u8> {
    let mut message = COUNTERSIGNATURE_CONTEXT.to_vec();
    message.extend_from_slice(witness_signature);
    message
}

/// Returns the message an operator key signs to ask the witness to log an artifact: a header
/// line, the namespace, the epoch and the artifact's SHA-256 digest, each newline-terminated.
/// The witness logs an artifact only with a valid signature by a key pinned for the namespace.
pub fn submission_message(namespace: &str, epoch: u64, digest: &[u8; 32]) -> Vec<u8> {
    format!(
        "{SUBMISSION_HEADER}\nnamespace {namespace}\nepoch {epoch}\ndigest {}\n",
        hex::encode(digest)
    )
    .into_bytes()
}

/// Returns the checkpoint origin of the log that `witness_name` keeps for `namespace`.
pub fn log_origin(witness_name: &str, namespace: &str) -> String {
    format!("{witness_name}/{namespace}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_bytes_are_fixed() {
        let statement = WitnessStatement {
            namespace: "keyfleet.fleet_keys.v1".into(),
            epoch: 2,
            timestamp: 1_790_000_000,
            digest: [0xab; 32],
        };
        let expected = format!(
            "keyfleet-witness-statement/v1\nnamespace keyfleet.fleet_keys.v1\nepoch 2\n\
             timestamp 1790000000\ndigest {}\n",
            "ab".repeat(32)
        );
        assert_eq!(statement.to_bytes(), expected.into_bytes());
    }

    #[test]
    fn submission_message_is_fixed() {
        let message = submission_message("keyfleet.fleet_keys.v1", 3, &[0x01; 32]);
        let expected = format!(
            "keyfleet-witness-submission/v1\nnamespace keyfleet.fleet_keys.v1\nepoch 3\n\
             digest {}\n",
            "01".repeat(32)
        );
        assert_eq!(message, expected.into_bytes());
    }

    #[test]
    fn countersignature_message_has_context() {
        let message = countersignature_message(&[7; 64]);
        assert!(message.starts_with(b"keyfleet-countersignature/v1\n"));
        assert_eq!(message.len(), 29 + 64);
    }
}
