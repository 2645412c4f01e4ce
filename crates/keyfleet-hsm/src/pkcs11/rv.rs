//! Mapping of PKCS#11 return values to [`HsmError`].

use cryptoki::error::{Error, RvError};

use crate::HsmError;

/// Whether a return value means the session or a handle went stale, so that a new session,
/// a fresh login and a new key lookup may succeed where this call failed.
pub(super) fn is_transient(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::SessionClosed
            | RvError::SessionHandleInvalid
            | RvError::ObjectHandleInvalid
            | RvError::KeyHandleInvalid
            | RvError::UserNotLoggedIn
    )
}

/// The PKCS#11 return value inside `error`, if it came from the module.
pub(super) fn return_value(error: &Error) -> Option<RvError> {
    match error {
        Error::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

pub(super) fn device_error(operation: &'static str, token: &str, error: Error) -> HsmError {
    let (code, transient) = match return_value(&error) {
        Some(rv) => (format!("{rv:?}"), is_transient(rv)),
        None => (error.to_string(), false),
    };
    HsmError::Device {
        operation,
        token: token.to_owned(),
        code,
        transient,
    }
}
