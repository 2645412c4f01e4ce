use keyfleet_api::vault::{GetStateResponse, RecordState};

use crate::SdkError;

/// State of a user's record, as [`crate::VaultClient::state`] returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordStatus {
    /// The user has no record.
    NotRegistered,
    /// The record contains a secret.
    Registered {
        /// Guesses allowed between two successful recoveries.
        max_guesses: u32,
        /// Guesses left before the vault erases the record.
        guesses_left: u32,
    },
    /// The record is locked after its last guess failed, and its secret is erased.
    Locked,
}

impl RecordStatus {
    /// Converts a `GetState` response.
    ///
    /// # Errors
    /// [`SdkError::Protocol`] when the state is unspecified or unknown to this build.
    pub(crate) fn from_response(response: &GetStateResponse) -> Result<Self, SdkError> {
        match RecordState::try_from(response.state) {
            Ok(RecordState::NotRegistered) => Ok(Self::NotRegistered),
            Ok(RecordState::Registered) => Ok(Self::Registered {
                max_guesses: response.max_guesses,
                guesses_left: response.guesses_left,
            }),
            Ok(RecordState::Locked) => Ok(Self::Locked),
            Ok(RecordState::Unspecified) | Err(_) => Err(SdkError::Protocol {
                reason: format!("the vault returned record state {}", response.state),
            }),
        }
    }
}

/// Outcome of a successful [`crate::VaultClient::register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// Guess limit the vault stored for the record, the fleet default if the call asked for 0.
    pub max_guesses: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(state: i32, max_guesses: u32, guesses_left: u32) -> GetStateResponse {
        GetStateResponse {
            state,
            max_guesses,
            guesses_left,
        }
    }

    #[test]
    fn registered_keeps_counts() {
        let status = RecordStatus::from_response(&response(RecordState::Registered as i32, 10, 7));

        assert_eq!(
            status.unwrap(),
            RecordStatus::Registered {
                max_guesses: 10,
                guesses_left: 7
            }
        );
    }

    #[test]
    fn not_registered_and_locked() {
        let not_registered =
            RecordStatus::from_response(&response(RecordState::NotRegistered as i32, 0, 0));
        let locked = RecordStatus::from_response(&response(RecordState::Locked as i32, 10, 0));

        assert_eq!(not_registered.unwrap(), RecordStatus::NotRegistered);
        assert_eq!(locked.unwrap(), RecordStatus::Locked);
    }

    #[test]
    fn unspecified_or_unknown_is_protocol_error() {
        for state in [RecordState::Unspecified as i32, 99] {
            let result = RecordStatus::from_response(&response(state, 0, 0));

            assert!(
                matches!(result, Err(SdkError::Protocol { .. })),
                "state {state}: {result:?}"
            );
        }
    }
}
