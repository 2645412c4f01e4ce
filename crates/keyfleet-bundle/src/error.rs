//! Typed errors of artifacts, notes, proofs and bundles.

use thiserror::Error;

/// A fleet key artifact that cannot be built or parsed.
#[derive(Debug, Error)]
pub enum ArtifactError {
    /// The bytes are not JSON of the artifact's shape.
    #[error("the fleet key artifact is not valid JSON of version 1: {0}")]
    Malformed(String),
    /// The JSON is valid but not in canonical form, so its digest would not be stable.
    #[error("the fleet key artifact is not canonical JSON: {0}")]
    NotCanonical(String),
    /// A field breaks a rule of the artifact.
    #[error("the fleet key artifact is invalid: {0}")]
    Invalid(String),
}

/// A Merkle proof that does not verify.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProofError {
    /// A leaf index or tree size outside the tree.
    #[error("index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index or old tree size.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The inclusion proof does not lead to the root.
    #[error("the inclusion proof does not match the tree's root hash")]
    InclusionMismatch,
    /// The consistency proof does not link the two roots.
    #[error("the consistency proof does not link the two tree heads")]
    ConsistencyMismatch,
}

/// A signed note or checkpoint that cannot be parsed or verified.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NoteError {
    /// The text is not a signed note or checkpoint.
    #[error("malformed signed note: {0}")]
    Malformed(String),
    /// A verifier key string is not `<name>+<hex key id>+<base64 key>`.
    #[error("malformed note verifier key {key:?}: {reason}")]
    MalformedVerifierKey {
        /// The key string as given.
        key: String,
        /// The reason it is invalid.
        reason: String,
    },
    /// No signature line carries the expected key name and key id.
    #[error("the note has no signature by the key {name} ({key_id})")]
    UnknownKey {
        /// Expected key name.
        name: String,
        /// Expected key id, in hex.
        key_id: String,
    },
    /// The signature by the expected key does not verify.
    #[error("the note's signature by {name} is invalid")]
    BadSignature {
        /// Key name.
        name: String,
    },
}

/// A validation bundle that fails a check. Each variant is one check, so that callers and
/// the audit command can name what failed.
#[derive(Debug, Error)]
pub enum BundleError {
    /// The bundle or its artifact cannot be decoded.
    #[error("malformed bundle: {0}")]
    Malformed(String),
    /// The artifact itself is invalid.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// The SHA-256 digest of the artifact differs from the digest the bundle states.
    #[error("digest mismatch: the artifact hashes to {computed}, the bundle states {stated}")]
    DigestMismatch {
        /// Digest of the artifact bytes, in hex.
        computed: String,
        /// Digest in the bundle, in hex.
        stated: String,
    },
    /// The artifact's epoch differs from the bundle's.
    #[error("epoch mismatch: the artifact names epoch {artifact}, the bundle epoch {bundle}")]
    EpochMismatch {
        /// Epoch in the artifact.
        artifact: u64,
        /// Epoch in the bundle.
        bundle: u64,
    },
    /// The artifact's namespace is not the pinned one.
    #[error("namespace mismatch: expected {expected:?}, the artifact names {found:?}")]
    NamespaceMismatch {
        /// Pinned namespace.
        expected: String,
        /// Namespace in the artifact.
        found: String,
    },
    /// The bundle names a witness key other than the pinned one.
    #[error("unknown witness key {found}: the pinned witness key is {expected}")]
    UnknownWitnessKey {
        /// Pinned key id, in hex.
        expected: String,
        /// Key id in the bundle, in hex.
        found: String,
    },
    /// The witness signature over the statement does not verify with the pinned key.
    #[error("the witness signature is invalid")]
    BadWitnessSignature,
    /// The bundle has no operator counter-signature.
    #[error("the operator counter-signature is missing")]
    MissingCountersignature,
    /// The counter-signature does not verify with the pinned operator key.
    #[error("the operator counter-signature is invalid")]
    BadCountersignature,
    /// The witness checkpoint cannot be parsed or its signature fails.
    #[error("invalid witness checkpoint: {0}")]
    BadCheckpoint(#[from] NoteError),
    /// The checkpoint belongs to another log.
    #[error("the checkpoint's origin is {found:?}, expected {expected:?}")]
    WrongOrigin {
        /// Expected origin line.
        expected: String,
        /// Origin line in the checkpoint.
        found: String,
    },
    /// The checkpoint's tree size is not the bundle's epoch, so the log has dropped or added
    /// entries.
    #[error(
        "the witness log has {size} entries at epoch {epoch}; it must have exactly one per epoch"
    )]
    LogSizeMismatch {
        /// Epoch of the bundle.
        epoch: u64,
        /// Tree size in the checkpoint.
        size: u64,
    },
    /// The statement is not in the witness log under the checkpoint.
    #[error("the witness statement is not included in the log: {0}")]
    NotIncluded(ProofError),
    /// The new checkpoint does not extend one seen before.
    #[error("the witness log is inconsistent with the one seen at epoch {seen_epoch}: {source}")]
    LogInconsistent {
        /// Epoch of the checkpoint seen before.
        seen_epoch: u64,
        /// The reason the proof failed.
        source: ProofError,
    },
    /// An epoch older than the newest one already accepted.
    #[error("stale epoch {epoch}: epoch {newest} was already accepted")]
    StaleEpoch {
        /// Epoch of the bundle.
        epoch: u64,
        /// Newest accepted epoch.
        newest: u64,
    },
    /// Two different artifacts for one epoch: the witness log is forked.
    #[error(
        "forked log: epoch {epoch} was accepted with digest {seen}, now offered with {offered}"
    )]
    ForkedEpoch {
        /// The epoch.
        epoch: u64,
        /// Digest accepted before, in hex.
        seen: String,
        /// Digest offered now, in hex.
        offered: String,
    },
    /// The OPAQUE server key used in a session is not the one the bundle names.
    #[error("the vault's OPAQUE server public key is not the one fleet epoch {epoch} names")]
    OpaqueServerKeyMismatch {
        /// Epoch of the bundle checked against.
        epoch: u64,
    },
}

impl BundleError {
    /// Returns a short stable name of the failed check, for exit messages and JSON output.
    pub fn check(&self) -> &'static str {
        match self {
            Self::Malformed(_) | Self::Artifact(_) => "artifact",
            Self::DigestMismatch { .. } => "digest",
            Self::EpochMismatch { .. } => "epoch",
            Self::NamespaceMismatch { .. } => "namespace",
            Self::UnknownWitnessKey { .. } => "witness-key",
            Self::BadWitnessSignature => "witness-signature",
            Self::MissingCountersignature | Self::BadCountersignature => "counter-signature",
            Self::BadCheckpoint(_) | Self::WrongOrigin { .. } => "checkpoint",
            Self::LogSizeMismatch { .. } => "log-size",
            Self::NotIncluded(_) => "inclusion",
            Self::LogInconsistent { .. } | Self::ForkedEpoch { .. } => "consistency",
            Self::StaleEpoch { .. } => "epoch-order",
            Self::OpaqueServerKeyMismatch { .. } => "opaque-server-key",
        }
    }
}
