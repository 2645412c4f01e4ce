//! Tenant, user and fleet id rules, and the vault record id built from them.

use crate::error::{TokenError, shown};

/// The maximum length of a tenant id, in bytes.
pub const MAX_TENANT_ID_LEN: usize = 64;

/// The maximum length of a user id, in bytes of UTF-8.
pub const MAX_USER_ID_LEN: usize = 191;

/// Checks a tenant id: 1 to [`MAX_TENANT_ID_LEN`] characters of `[a-z0-9_-]`, starting with
/// `[a-z0-9]`.
///
/// The rules keep tenant ids safe in record ids, file names and log lines, and they exclude
/// '/', which separates the tenant from the user in [`record_id`].
pub fn check_tenant_id(tenant: &str) -> Result<(), TokenError> {
    let invalid = |reason: String| Err(TokenError::InvalidTenantId { reason });

    if tenant.is_empty() {
        return invalid("the tenant id is empty: use 1 to 64 characters of [a-z0-9_-]".into());
    }
    if tenant.len() > MAX_TENANT_ID_LEN {
        return invalid(format!(
            "tenant id {} is {} bytes, longer than the maximum of {MAX_TENANT_ID_LEN}",
            shown(tenant),
            tenant.len()
        ));
    }

    let first = tenant.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return invalid(format!(
            "tenant id {} must start with a character of [a-z0-9]",
            shown(tenant)
        ));
    }

    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if let Some(bad) = tenant.chars().find(|&c| !allowed(c)) {
        return invalid(format!(
            "tenant id {} contains {bad:?}, which is not in [a-z0-9_-]",
            shown(tenant)
        ));
    }
    Ok(())
}

/// Checks a user id: 1 to [`MAX_USER_ID_LEN`] bytes of UTF-8 with no control characters
/// (Unicode general category Cc, which includes tab, newline and DEL).
pub fn check_user_id(user: &str) -> Result<(), TokenError> {
    let invalid = |reason: String| Err(TokenError::InvalidUserId { reason });

    if user.is_empty() {
        return invalid("the user id is empty: use 1 to 191 bytes of UTF-8".into());
    }
    if user.len() > MAX_USER_ID_LEN {
        return invalid(format!(
            "user id {} is {} bytes, longer than the maximum of {MAX_USER_ID_LEN}",
            shown(user),
            user.len()
        ));
    }
    if let Some(bad) = user.chars().find(|c| c.is_control()) {
        return invalid(format!(
            "user id {} contains the control character {bad:?}",
            shown(user)
        ));
    }
    Ok(())
}

/// Checks the fleet id that a token is minted for: not empty and free of control characters.
pub(crate) fn check_fleet_id(fleet: &str) -> Result<(), TokenError> {
    let invalid = |reason: String| Err(TokenError::InvalidFleetId { reason });

    if fleet.is_empty() {
        return invalid("the fleet id is empty: set \"aud\" to the id of the target fleet".into());
    }
    if let Some(bad) = fleet.chars().find(|c| c.is_control()) {
        return invalid(format!(
            "fleet id {} contains the control character {bad:?}",
            shown(fleet)
        ));
    }
    Ok(())
}

/// Builds the vault's record id of a user: `"<tenant>/<user>"`.
///
/// For ids that pass [`check_tenant_id`] and [`check_user_id`] the result is at most
/// 64 + 1 + 191 = 256 bytes, and the first '/' always ends the tenant id. The function does
/// not check the ids itself.
pub fn record_id(tenant: &str, user: &str) -> String {
    format!("{tenant}/{user}")
}
