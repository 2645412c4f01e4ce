//! The error type of every token, id and key operation.

/// The maximum number of characters of a caller-supplied value that an error message shows.
const MAX_SHOWN_CHARS: usize = 80;

/// Quotes a value from a token for an error message, escaping control characters and cutting
/// it to [`MAX_SHOWN_CHARS`] characters, so that a hostile token cannot flood or forge log lines.
pub(crate) fn shown(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_SHOWN_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

/// The reason a token, an id or a key was rejected.
///
/// Messages name the rejected value and the next step. They never contain the token itself
/// or its signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is not a well-formed compact JWS carrying the expected claims.
    #[error("malformed tenant token: {reason}. Mint a new token with the tenant's signing key")]
    Malformed { reason: String },

    /// The token is longer than [`crate::MAX_TOKEN_LEN`], so it was not decoded.
    #[error("tenant token is {len} bytes, longer than the maximum of {max} bytes")]
    TooLong { len: usize, max: usize },

    /// The header names an algorithm other than "EdDSA".
    #[error(
        "tenant token algorithm {} is not supported: tenant tokens must be signed with \"EdDSA\" (Ed25519)",
        shown(.alg)
    )]
    UnsupportedAlgorithm { alg: String },

    /// The "iss" claim names a tenant that the verifier does not trust.
    #[error(
        "tenant {} is not trusted by this fleet: add its public key to the fleet configuration",
        shown(.tenant)
    )]
    UnknownTenant { tenant: String },

    /// The signature does not verify under the issuing tenant's public key.
    #[error(
        "tenant token signature is invalid: mint the token with the signing key whose public key the fleet trusts for this tenant"
    )]
    BadSignature,

    /// The "aud" claim names another fleet.
    #[error(
        "tenant token is for fleet {}, but this is fleet {}: mint the token with \"aud\" set to {}",
        shown(.audience),
        shown(.expected),
        shown(.expected)
    )]
    WrongAudience { audience: String, expected: String },

    /// The token's "exp" is at or before the verifier's clock.
    #[error(
        "tenant token expired at {expires_at} (Unix seconds), it is now {now}: mint a new token"
    )]
    Expired { expires_at: u64, now: u64 },

    /// The token's "iat" is later than the verifier's clock plus the clock leeway.
    #[error(
        "tenant token was issued at {issued_at} (Unix seconds), later than now ({now}) plus the clock leeway: check the minting host's clock"
    )]
    NotYetValid { issued_at: u64, now: u64 },

    /// The token's "nbf" is later than the verifier's clock plus the clock leeway.
    #[error(
        "tenant token is not valid before {not_before} (Unix seconds), it is now {now}: retry after that time or mint a token without \"nbf\""
    )]
    NotBefore { not_before: u64, now: u64 },

    /// "exp" minus "iat" exceeds the verifier's maximum token lifetime.
    #[error(
        "tenant token lifetime is {lifetime} s, longer than this fleet's maximum of {max} s: mint a token with a shorter \"exp\""
    )]
    LifetimeTooLong { lifetime: u64, max: u64 },

    /// A tenant id breaks the rules of [`crate::check_tenant_id`].
    #[error("invalid tenant id: {reason}")]
    InvalidTenantId { reason: String },

    /// A user id breaks the rules of [`crate::check_user_id`].
    #[error("invalid user id: {reason}")]
    InvalidUserId { reason: String },

    /// A fleet id given to [`crate::TenantSigningKey::mint`] is empty or contains control
    /// characters.
    #[error("invalid fleet id: {reason}")]
    InvalidFleetId { reason: String },

    /// A signing or public key could not be parsed or is unusable.
    #[error("invalid key: {reason}")]
    InvalidKey { reason: String },

    /// [`crate::TokenVerifier::trust`] was called twice for one tenant with different keys.
    #[error(
        "tenant {} is already trusted with another public key: list each tenant once in the fleet configuration",
        shown(.tenant)
    )]
    TenantAlreadyTrusted { tenant: String },
}

impl TokenError {
    /// Returns whether the token was rejected only because its "exp" has passed, so that a
    /// client knows that minting a new token fixes the call.
    pub fn is_expired(&self) -> bool {
        matches!(self, TokenError::Expired { .. })
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        TokenError::Malformed {
            reason: reason.into(),
        }
    }
}
