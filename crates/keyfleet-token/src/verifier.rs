//! Token verification for the vault server, and unverified decoding for clients.

use std::collections::HashMap;

use crate::claims::{DecodedClaims, TokenClaims, decode_claims};
use crate::error::TokenError;
use crate::ids::{check_tenant_id, check_user_id};
use crate::jws::{check_signature, decode_compact};
use crate::keys::TenantPublicKey;
use crate::signature_cache::{DEFAULT_SIGNATURE_CACHE_CAPACITY, SignatureCache, token_digest};

/// The clock leeway in seconds: the time by which a token's "iat" or "nbf" may be ahead of the
/// verifier's clock, to allow for clock skew between the minting host and the fleet.
pub const CLOCK_LEEWAY_SECS: u64 = 60;

/// Verifies tenant tokens for one fleet.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    fleet_id: String,
    trusted: HashMap<String, TenantPublicKey>,
    max_lifetime_secs: u64,
    leeway_secs: u64,
    /// Tokens whose signature verified. Clones of the verifier share it.
    verified_signatures: SignatureCache,
}

/// The identity that a verified token authorizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The tenant id, from "iss".
    pub tenant: String,
    /// The user id, from "sub".
    pub user: String,
    /// The token's "exp", in Unix seconds.
    pub expires_at: u64,
}

impl TokenVerifier {
    /// Creates a verifier for tokens whose "aud" is `fleet_id` and whose "exp" is at most
    /// `max_lifetime_secs` after "iat". It trusts no tenant until [`Self::trust`] is called,
    /// its clock leeway is [`CLOCK_LEEWAY_SECS`], and it remembers the signatures of up to
    /// [`DEFAULT_SIGNATURE_CACHE_CAPACITY`] tokens.
    pub fn new(fleet_id: impl Into<String>, max_lifetime_secs: u64) -> Self {
        Self::with_signature_cache(
            fleet_id,
            max_lifetime_secs,
            DEFAULT_SIGNATURE_CACHE_CAPACITY,
        )
    }

    /// Creates a verifier like [`Self::new`] that remembers the signatures of up to `capacity`
    /// tokens, so a token sent again skips the Ed25519 verification. 0 turns the cache off.
    pub fn with_signature_cache(
        fleet_id: impl Into<String>,
        max_lifetime_secs: u64,
        capacity: usize,
    ) -> Self {
        TokenVerifier {
            fleet_id: fleet_id.into(),
            trusted: HashMap::new(),
            max_lifetime_secs,
            leeway_secs: CLOCK_LEEWAY_SECS,
            verified_signatures: SignatureCache::new(capacity),
        }
    }

    /// Trusts `key` for tokens whose "iss" is `tenant`.
    ///
    /// Each tenant has one key. Trusting the same key again is a no-op, and a different key
    /// for a trusted tenant is rejected with [`TokenError::TenantAlreadyTrusted`].
    pub fn trust(&mut self, tenant: &str, key: TenantPublicKey) -> Result<(), TokenError> {
        check_tenant_id(tenant)?;
        match self.trusted.get(tenant) {
            Some(existing) if *existing == key => Ok(()),
            Some(_) => Err(TokenError::TenantAlreadyTrusted {
                tenant: tenant.to_owned(),
            }),
            None => {
                self.trusted.insert(tenant.to_owned(), key);
                Ok(())
            }
        }
    }

    /// Verifies `token` at the time `now_unix_secs` and returns the tenant and user it
    /// authorizes.
    ///
    /// The checks run in this order: the length, the compact serialization and header, the
    /// claims' JSON types, a trusted "iss", the signature, then the remaining claims ("sub",
    /// "aud", "exp", "iat", "nbf" and the lifetime). So every error after
    /// [`TokenError::BadSignature`] in that order concerns a token that the tenant signed.
    pub fn verify(&self, token: &str, now_unix_secs: u64) -> Result<VerifiedToken, TokenError> {
        let jws = decode_compact(token)?;
        let DecodedClaims { claims, not_before } = decode_claims(&jws.payload)?;

        let key = self
            .trusted
            .get(&claims.tenant)
            .ok_or_else(|| TokenError::UnknownTenant {
                tenant: claims.tenant.clone(),
            })?;
        let digest = token_digest(key.verifying_key().as_bytes(), token);
        if !self.verified_signatures.contains(&digest) {
            check_signature(key.verifying_key(), &jws)?;
            self.verified_signatures
                .insert(digest, claims.expires_at, now_unix_secs);
        }

        check_user_id(&claims.user)?;
        if claims.fleet != self.fleet_id {
            return Err(TokenError::WrongAudience {
                audience: claims.fleet,
                expected: self.fleet_id.clone(),
            });
        }
        self.check_times(&claims, not_before, now_unix_secs)?;

        Ok(VerifiedToken {
            tenant: claims.tenant,
            user: claims.user,
            expires_at: claims.expires_at,
        })
    }

    fn check_times(
        &self,
        claims: &TokenClaims,
        not_before: Option<u64>,
        now: u64,
    ) -> Result<(), TokenError> {
        if claims.expires_at <= now {
            return Err(TokenError::Expired {
                expires_at: claims.expires_at,
                now,
            });
        }

        let latest_start = now.saturating_add(self.leeway_secs);
        if claims.issued_at > latest_start {
            return Err(TokenError::NotYetValid {
                issued_at: claims.issued_at,
                now,
            });
        }
        if let Some(not_before) = not_before
            && not_before > latest_start
        {
            return Err(TokenError::NotBefore { not_before, now });
        }

        if claims.expires_at <= claims.issued_at {
            return Err(TokenError::malformed(format!(
                "exp ({}) must be later than iat ({})",
                claims.expires_at, claims.issued_at
            )));
        }
        let lifetime = claims.expires_at - claims.issued_at;
        if lifetime > self.max_lifetime_secs {
            return Err(TokenError::LifetimeTooLong {
                lifetime,
                max: self.max_lifetime_secs,
            });
        }
        Ok(())
    }
}

/// Decodes the claims without checking the signature, for clients, which need the tenant and
/// fleet ids to build OPAQUE identifiers. Never use it to authorize anything.
///
/// It applies the same length, serialization, header and claim type checks as
/// [`TokenVerifier::verify`], and checks the tenant and user ids. It checks neither the
/// signature, the audience nor any time.
pub fn peek_claims(token: &str) -> Result<TokenClaims, TokenError> {
    let jws = decode_compact(token)?;
    let DecodedClaims { claims, .. } = decode_claims(&jws.payload)?;
    check_tenant_id(&claims.tenant)?;
    check_user_id(&claims.user)?;
    Ok(claims)
}
