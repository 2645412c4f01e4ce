//! keyfleet's tenant tokens, which authorize vault calls for one user.
//!
//! The application that owns a user account (the tenant) mints a short-lived token for a
//! client. A token is a JWT (RFC 7519) in JWS compact serialization, signed with Ed25519
//! ("alg" "EdDSA", RFC 8037). Its header is `{"alg":"EdDSA","typ":"JWT"}`. Its claims are
//! "iss" (tenant id), "sub" (user id), "aud" (fleet id, a single string), and "iat" and
//! "exp" (integer Unix seconds). Any standard JWT library can mint one.
//!
//! [`TenantSigningKey::mint`] mints tokens, [`TokenVerifier::verify`] checks them on the
//! server, and [`peek_claims`] reads them on a client without checking the signature.
//!
//! ```
//! use keyfleet_token::{TenantSigningKey, TokenClaims, TokenVerifier};
//!
//! let key = TenantSigningKey::generate();
//! let token = key.mint(&TokenClaims {
//!     tenant: "acme".into(),
//!     user: "alice@example.com".into(),
//!     fleet: "fleet-eu-1".into(),
//!     issued_at: 1_700_000_000,
//!     expires_at: 1_700_000_300,
//! })?;
//!
//! let mut verifier = TokenVerifier::new("fleet-eu-1", 3600);
//! verifier.trust("acme", key.public_key())?;
//! let verified = verifier.verify(&token, 1_700_000_010)?;
//! assert_eq!(verified.user, "alice@example.com");
//! # Ok::<(), keyfleet_token::TokenError>(())
//! ```

mod claims;
mod error;
mod ids;
mod jws;
mod keys;
mod signature_cache;
mod verifier;

pub use claims::TokenClaims;
pub use error::TokenError;
pub use ids::{MAX_TENANT_ID_LEN, MAX_USER_ID_LEN, check_tenant_id, check_user_id, record_id};
pub use keys::{TenantPublicKey, TenantSigningKey};
pub use signature_cache::DEFAULT_SIGNATURE_CACHE_CAPACITY;
pub use verifier::{CLOCK_LEEWAY_SECS, TokenVerifier, VerifiedToken, peek_claims};

/// The maximum length of a token, in bytes. Longer tokens are rejected before decoding.
pub const MAX_TOKEN_LEN: usize = 4096;
