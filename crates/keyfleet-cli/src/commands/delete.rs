use serde_json::json;

use super::vault_session::VaultSession;
use crate::cli::VaultArgs;
use crate::cli_error::CliError;
use crate::output::print_result;

/// Runs `keyfleet delete`.
pub(super) async fn run(args: &VaultArgs) -> Result<(), CliError> {
    let session = VaultSession::open(args, None)?;
    let deleted = session.client.delete(&session.token, &session.user).await?;

    let text = if deleted {
        format!("deleted the record of user {}", session.user)
    } else {
        format!("user {} had no record; nothing deleted", session.user)
    };
    let value = json!({ "user": session.user, "deleted": deleted });

    print_result(args.connection.json, &text, &value)
}
