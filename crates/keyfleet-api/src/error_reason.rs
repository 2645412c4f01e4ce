//! The `google.rpc.ErrorInfo` reasons of the vault API, shared by the server and the clients.

use std::fmt;

/// Domain of every `ErrorInfo` the vault API returns.
pub const ERROR_DOMAIN: &str = "keyfleet.v1";

/// `ErrorInfo` metadata key of the guesses a record has left, in decimal.
pub const GUESSES_LEFT_KEY: &str = "guesses_left";

/// Reason of a failed vault call, as sent in `ErrorInfo.reason`. `proto/keyfleet/v1/vault.proto`
/// lists the status code that goes with each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorReason {
    /// The KE3 did not verify: a wrong password, or a user with no record.
    WrongPassword,
    /// The record is locked after its last guess failed.
    Locked,
    /// The tenant token is missing, malformed, untrusted or wrongly signed.
    TokenInvalid,
    /// The tenant token has expired.
    TokenExpired,
    /// The tenant token names another user.
    TokenWrongUser,
    /// A request field is malformed or too large.
    InvalidArgument,
    /// The ticket has expired.
    TicketExpired,
    /// The ticket failed authentication, or belongs to another user or step.
    TicketInvalid,
    /// The record changed after the ticket was issued.
    TicketStale,
    /// This node is not the leader.
    NotLeader,
    /// The leader could not reach a quorum in time; the outcome is unknown.
    NoQuorum,
    /// The fleet is not initialized, or this node lacks the fleet keys.
    FleetNotReady,
    /// An HSM or storage failure on the node.
    Internal,
}

const ALL: [ErrorReason; 13] = [
    ErrorReason::WrongPassword,
    ErrorReason::Locked,
    ErrorReason::TokenInvalid,
    ErrorReason::TokenExpired,
    ErrorReason::TokenWrongUser,
    ErrorReason::InvalidArgument,
    ErrorReason::TicketExpired,
    ErrorReason::TicketInvalid,
    ErrorReason::TicketStale,
    ErrorReason::NotLeader,
    ErrorReason::NoQuorum,
    ErrorReason::FleetNotReady,
    ErrorReason::Internal,
];

impl ErrorReason {
    /// Returns the reason as sent on the wire, for example `"WRONG_PASSWORD"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WrongPassword => "WRONG_PASSWORD",
            Self::Locked => "LOCKED",
            Self::TokenInvalid => "TOKEN_INVALID",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::TokenWrongUser => "TOKEN_WRONG_USER",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::TicketExpired => "TICKET_EXPIRED",
            Self::TicketInvalid => "TICKET_INVALID",
            Self::TicketStale => "TICKET_STALE",
            Self::NotLeader => "NOT_LEADER",
            Self::NoQuorum => "NO_QUORUM",
            Self::FleetNotReady => "FLEET_NOT_READY",
            Self::Internal => "INTERNAL",
        }
    }

    /// Parses a wire reason; `None` for a reason this build does not know.
    pub fn parse(reason: &str) -> Option<Self> {
        ALL.into_iter().find(|known| known.as_str() == reason)
    }
}

impl fmt::Display for ErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_parses_back() {
        for reason in ALL {
            assert_eq!(ErrorReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(ErrorReason::parse("NO_SUCH_REASON"), None);
    }
}
