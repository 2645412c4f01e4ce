use keyfleet_sdk::RecordStatus;
use serde_json::{Value, json};

use super::vault_session::VaultSession;
use crate::cli::VaultArgs;
use crate::cli_error::CliError;
use crate::output::print_result;

/// Runs `keyfleet state`.
pub(super) async fn run(args: &VaultArgs) -> Result<(), CliError> {
    let session = VaultSession::open(args, None)?;
    let status = session.client.state(&session.token, &session.user).await?;

    print_result(
        args.connection.json,
        &describe(&session.user, status),
        &to_json(&session.user, status),
    )
}

fn describe(user: &str, status: RecordStatus) -> String {
    match status {
        RecordStatus::NotRegistered => format!("user {user}: not registered"),
        RecordStatus::Registered {
            max_guesses,
            guesses_left,
        } => format!("user {user}: registered, {guesses_left} of {max_guesses} guesses left"),
        RecordStatus::Locked => {
            format!("user {user}: locked after too many wrong passwords; register again")
        }
    }
}

fn to_json(user: &str, status: RecordStatus) -> Value {
    match status {
        RecordStatus::NotRegistered => json!({ "user": user, "state": "not_registered" }),
        RecordStatus::Registered {
            max_guesses,
            guesses_left,
        } => json!({
            "user": user,
            "state": "registered",
            "max_guesses": max_guesses,
            "guesses_left": guesses_left,
        }),
        RecordStatus::Locked => json!({ "user": user, "state": "locked" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_shows_guesses() {
        let status = RecordStatus::Registered {
            max_guesses: 10,
            guesses_left: 7,
        };

        assert_eq!(
            describe("alice", status),
            "user alice: registered, 7 of 10 guesses left"
        );
        assert_eq!(
            to_json("alice", status),
            json!({"user": "alice", "state": "registered", "max_guesses": 10, "guesses_left": 7})
        );
    }

    #[test]
    fn locked_and_not_registered() {
        assert_eq!(
            to_json("bob", RecordStatus::Locked),
            json!({"user": "bob", "state": "locked"})
        );
        assert_eq!(
            to_json("bob", RecordStatus::NotRegistered),
            json!({"user": "bob", "state": "not_registered"})
        );
        assert!(describe("bob", RecordStatus::Locked).contains("locked"));
    }
}
