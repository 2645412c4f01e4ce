use std::fmt;

use keyfleet_hsm::HsmError;

use crate::ConfigError;

/// A failed `keyfleetd keys` command. The message names the value at fault and the fix, and
/// never contains a PIN or key bytes.
#[derive(Debug)]
pub enum KeysError {
    /// Invalid arguments or configuration: exit status 2.
    Usage(String),
    /// Any other failure: exit status 1.
    Failed(String),
}

impl KeysError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// Returns the process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

impl fmt::Display for KeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(message) | Self::Failed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for KeysError {}

impl From<ConfigError> for KeysError {
    fn from(error: ConfigError) -> Self {
        Self::Usage(error.to_string())
    }
}

/// Errors that the configuration file or the PIN source can fix count as configuration errors.
impl From<HsmError> for KeysError {
    fn from(error: HsmError) -> Self {
        match error {
            HsmError::InvalidConfig { .. }
            | HsmError::InvalidUri { .. }
            | HsmError::ModuleNotFound { .. }
            | HsmError::TokenNotFound { .. }
            | HsmError::PinUnavailable { .. }
            | HsmError::PinRejected { .. } => Self::Usage(error.to_string()),
            other => Self::Failed(other.to_string()),
        }
    }
}
