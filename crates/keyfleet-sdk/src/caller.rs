use std::fmt;

use tonic::metadata::{Ascii, MetadataValue};

use crate::SdkError;

/// Metadata key of the tenant token.
const AUTHORIZATION_METADATA: &str = "authorization";

/// The user that a vault call is for, with the ids that the SDK reads from its token. `Debug`
/// leaves out the token.
pub(crate) struct Caller {
    user: String,
    record_id: String,
    fleet_id: String,
    authorization: MetadataValue<Ascii>,
}

impl Caller {
    /// Checks `user` and reads the tenant and fleet ids from `token` without verifying it, which
    /// is the vault's job.
    ///
    /// # Errors
    /// [`SdkError::InvalidArgument`] for an invalid user id, and [`SdkError::InvalidToken`]
    /// for a token that cannot be decoded or sent as metadata.
    pub(crate) fn new(token: &str, user: &str) -> Result<Self, SdkError> {
        keyfleet_token::check_user_id(user).map_err(|error| SdkError::InvalidArgument {
            field: Some("user_id".to_owned()),
            message: error.to_string(),
        })?;

        let token = token.trim();
        let claims =
            keyfleet_token::peek_claims(token).map_err(|error| SdkError::InvalidToken {
                reason: error.to_string(),
            })?;

        Ok(Self {
            user: user.to_owned(),
            record_id: keyfleet_token::record_id(&claims.tenant, user),
            fleet_id: claims.fleet,
            authorization: bearer_value(token)?,
        })
    }

    /// Returns the user id that requests carry.
    pub(crate) fn user(&self) -> &str {
        &self.user
    }

    /// Returns the record id, `<tenant>/<user>`.
    pub(crate) fn record_id(&self) -> &str {
        &self.record_id
    }

    /// Returns the fleet id, from the token's audience.
    pub(crate) fn fleet_id(&self) -> &str {
        &self.fleet_id
    }

    /// Wraps `message` in a request that carries the token.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert(AUTHORIZATION_METADATA, self.authorization.clone());
        request
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("user", &self.user)
            .field("record_id", &self.record_id)
            .field("fleet_id", &self.fleet_id)
            .finish_non_exhaustive()
    }
}

fn bearer_value(token: &str) -> Result<MetadataValue<Ascii>, SdkError> {
    let mut value =
        MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| SdkError::InvalidToken {
            reason: "the token contains characters that gRPC metadata cannot carry".to_owned(),
        })?;

    // Marks the value so that HTTP/2 header compression never indexes it.
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use keyfleet_token::{TenantSigningKey, TokenClaims};

    use super::*;

    fn token_for(user: &str) -> String {
        let claims = TokenClaims {
            tenant: "acme".to_owned(),
            user: user.to_owned(),
            fleet: "fleet-eu-1".to_owned(),
            issued_at: 1_700_000_000,
            expires_at: 1_700_000_300,
        };

        TenantSigningKey::generate().mint(&claims).unwrap()
    }

    #[test]
    fn ids_come_from_token() {
        let caller = Caller::new(&token_for("alice"), "alice").unwrap();

        assert_eq!(caller.user(), "alice");
        assert_eq!(caller.record_id(), "acme/alice");
        assert_eq!(caller.fleet_id(), "fleet-eu-1");
    }

    #[test]
    fn request_carries_bearer_token() {
        let token = token_for("alice");
        let caller = Caller::new(&format!("{token}\n"), "alice").unwrap();

        let request = caller.request(());
        let value = request.metadata().get(AUTHORIZATION_METADATA).unwrap();

        assert_eq!(value.to_str().unwrap(), format!("Bearer {token}"));
        assert!(value.is_sensitive());
    }

    #[test]
    fn invalid_user_is_rejected() {
        for user in ["", "bad\nuser"] {
            let result = Caller::new(&token_for("alice"), user);

            assert!(
                matches!(result, Err(SdkError::InvalidArgument { field: Some(ref field), .. }) if field == "user_id"),
                "user {user:?}: {result:?}"
            );
        }
    }

    #[test]
    fn malformed_token_is_rejected() {
        for token in ["", "not-a-token", "a.b.c"] {
            let result = Caller::new(token, "alice");

            assert!(
                matches!(result, Err(SdkError::InvalidToken { .. })),
                "token {token:?}: {result:?}"
            );
        }
    }

    #[test]
    fn debug_omits_token() {
        let token = token_for("alice");
        let caller = Caller::new(&token, "alice").unwrap();

        let printed = format!("{caller:?}");

        assert!(printed.contains("acme/alice"), "{printed}");
        assert!(!printed.contains(&token), "{printed}");
        assert!(!printed.contains("Bearer"), "{printed}");
    }
}
