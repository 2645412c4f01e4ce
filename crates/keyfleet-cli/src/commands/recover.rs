use serde_json::json;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::vault_session::VaultSession;
use crate::cli::RecoverArgs;
use crate::cli_error::CliError;
use crate::output::print_outcome_or_secret;
use crate::password::read_password;
use crate::private_file::{check_output, write_private};

/// Runs `keyfleet recover`.
pub(super) async fn run(args: &RecoverArgs) -> Result<(), CliError> {
    let session = VaultSession::open(&args.vault, Some(&args.pins))?;

    // Checked before the call as well as at the write, so that an output file that cannot be
    // written does not cost a guess.
    if let Some(path) = &args.out {
        check_output(path, args.force)?;
    }

    let password = read_password(&args.password, false)?;
    let secret = session
        .client
        .recover(&session.token, &session.user, &password)
        .await?;
    session.report_bundle();

    if let Some(path) = &args.out {
        write_private(path, &secret, args.force)?;
    }

    print_outcome(args, &session.user, &secret)
}

fn print_outcome(args: &RecoverArgs, user: &str, secret: &[u8]) -> Result<(), CliError> {
    let fingerprint = hex::encode(Sha256::digest(secret));
    let secret_hex = args.print_hex.then(|| Zeroizing::new(hex::encode(secret)));

    let mut summary = format!(
        "recovered the secret of user {user} ({} bytes, SHA-256 {fingerprint})",
        secret.len()
    );
    if let Some(path) = &args.out {
        summary.push_str(&format!("; wrote it to {}", path.display()));
    }

    let value = json!({
        "user": user,
        "secret_len": secret.len(),
        "sha256": fingerprint,
        "out": args.out.as_ref().map(|path| path.display().to_string()),
        "secret_hex": secret_hex.as_ref().map(|hex| hex.as_str()),
    });
    print_outcome_or_secret(
        args.vault.connection.json,
        &summary,
        secret_hex.as_ref().map(|hex| hex.as_str()),
        &value,
    )
}
