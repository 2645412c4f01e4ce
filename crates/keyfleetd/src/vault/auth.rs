//! Authorization of vault calls by tenant tokens.

use keyfleet_api::ErrorReason;
use keyfleet_raft::UserId;
use keyfleet_token::TokenError;
use keyfleet_vault::{Clock, SystemClock};
use tonic::{Code, Request, Status};

use super::VaultService;
use crate::error_status::error_status;

/// Metadata key of the tenant token.
const AUTHORIZATION: &str = "authorization";

/// The verified caller of one vault call.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The record id, `<tenant>/<user>`: the key of the replicated record, the OPAQUE
    /// credential identifier and the client identity.
    pub(crate) record: UserId,
}

impl VaultService {
    /// Verifies the call's tenant token and checks that it names `user_id`.
    pub(super) fn authorize<T>(
        &self,
        request: &Request<T>,
        user_id: &str,
    ) -> Result<Caller, Status> {
        let token = bearer_token(request)?;
        let now = SystemClock.now_unix_secs();

        let verified = self.verifier.verify(token, now).map_err(|error| {
            if let Some(suppressed) = self.rejected_tokens.allow() {
                tracing::info!(node_id = self.replica.node_id, %error, suppressed, "tenant token rejected");
            }
            token_rejected(&error)
        })?;

        if verified.user != user_id {
            if let Some(suppressed) = self.rejected_tokens.allow() {
                tracing::info!(node_id = self.replica.node_id, tenant = %verified.tenant, suppressed, "tenant token for another user rejected");
            }
            return Err(error_status(
                Code::PermissionDenied,
                ErrorReason::TokenWrongUser,
                format!(
                    "the tenant token was minted for user {:?}, not for the call's user_id {user_id:?}: \
                     mint a token for {user_id:?}",
                    verified.user
                ),
                &[],
            ));
        }

        let record = keyfleet_token::record_id(&verified.tenant, &verified.user);
        let record = UserId::new(record).map_err(|error| {
            error_status(
                Code::InvalidArgument,
                ErrorReason::InvalidArgument,
                format!("user_id is invalid: {error}"),
                &[("field", "user_id".to_owned())],
            )
        })?;
        Ok(Caller { record })
    }
}

fn bearer_token<T>(request: &Request<T>) -> Result<&str, Status> {
    let missing = || {
        error_status(
            Code::Unauthenticated,
            ErrorReason::TokenInvalid,
            "the call has no tenant token: send the metadata `authorization: Bearer <token>`",
            &[],
        )
    };

    let value = request.metadata().get(AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;

    crate::admin_token::strip_bearer(value).ok_or_else(missing)
}

fn token_rejected(error: &TokenError) -> Status {
    let reason = if error.is_expired() {
        ErrorReason::TokenExpired
    } else {
        ErrorReason::TokenInvalid
    };

    error_status(
        Code::Unauthenticated,
        reason,
        format!("tenant token rejected: {error}"),
        &[],
    )
}
