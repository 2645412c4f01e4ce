use crate::KsfParams;

/// Errors of the protocol's client-side helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A recovered secret could not be opened with the session key.
    #[error(
        "recovered secret failed authentication: it was changed in transit or the session key \
         or user id differs from the recovery's"
    )]
    RecoveredSecretInvalid,

    /// The KSF parameters are not valid Argon2 parameters.
    #[error("KSF parameters {params:?} are invalid: {reason}")]
    InvalidKsfParams {
        /// The rejected parameters.
        params: KsfParams,
        /// Argon2's reason.
        reason: String,
    },
}
