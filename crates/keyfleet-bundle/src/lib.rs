//! Fleet key validation bundles.
//!
//! A fleet publishes its public keys per epoch in a canonical JSON artifact. An independent
//! witness signs a statement binding the namespace, epoch, its timestamp and the artifact's
//! SHA-256 digest, appends the statement to an RFC 9162 Merkle log and returns a signed C2SP
//! checkpoint with the proofs. The operator's fleet signing key counter-signs the witness
//! signature. A client pins only the witness and operator keys and checks all of it with
//! [`BundleVerifier`]. This crate has no HSM, Raft or network dependency.

mod artifact;
mod bundle;
mod canonical;
mod delta;
mod error;
mod issue;
pub mod merkle;
mod note;
mod statement;
mod verifier;

pub use artifact::{
    ARTIFACT_VERSION, FLEET_KEYS_NAMESPACE, FleetKeyArtifact, FleetPublicKey, KeyAlgorithm,
    KeyRole, MAX_NAMESPACE_LEN, QuorumRule, artifact_digest, validate_namespace,
};
pub use bundle::{MAX_BUNDLE_LEN, ValidationBundle, decode_hashes, encode_hashes};
pub use canonical::to_canonical_json;
pub use delta::{KeyChange, KeyDelta, key_delta};
pub use error::{ArtifactError, BundleError, NoteError, ProofError};
pub use issue::{IssuedBundle, WitnessIdentity, issue_bundle, sign_checkpoint};
pub use note::{Checkpoint, NoteVerifier, open_note, sign_note};
pub use statement::{WitnessStatement, countersignature_message, log_origin, submission_message};
pub use verifier::{BundleVerifier, TrustAnchors, VerifiedBundle};
