use std::fs;

use keyfleet_sdk::MAX_SECRET_LEN;
use rand::RngCore;
use rand::rngs::OsRng;
use serde_json::json;
use zeroize::Zeroizing;

use super::vault_session::VaultSession;
use crate::cli::RegisterArgs;
use crate::cli_error::CliError;
use crate::output::print_outcome_or_secret;
use crate::password::read_password;
use crate::private_file::{read_secret, write_private};

/// Length of a secret made by `--generate-secret`, in bytes.
const GENERATED_SECRET_LEN: usize = 32;

/// Runs `keyfleet register`.
pub(super) async fn run(args: &RegisterArgs) -> Result<(), CliError> {
    check_generated_secret_output(args)?;
    let session = VaultSession::open(&args.vault, Some(&args.pins))?;
    let secret = read_or_generate_secret(args)?;
    let password = read_password(&args.password, true)?;

    // The secret file is written before the call, so that a registered secret is never lost
    // to a failed write, and removed again when the call fails.
    if let Some(path) = &args.secret_out {
        write_private(path, &secret, args.force)?;
    }

    let result = session
        .client
        .register(
            &session.token,
            &session.user,
            &password,
            &secret,
            args.max_guesses,
        )
        .await;

    let registration = match result {
        Ok(registration) => registration,
        Err(error) => {
            if let Some(path) = &args.secret_out {
                let _ = fs::remove_file(path);
            }
            return Err(error.into());
        }
    };
    session.report_bundle();

    print_outcome(args, &session.user, registration.max_guesses, &secret)
}

fn check_generated_secret_output(args: &RegisterArgs) -> Result<(), CliError> {
    let has_output = args.secret_out.is_some() || args.print_secret;

    if args.generate_secret && !has_output {
        return Err(CliError::Usage(
            "--generate-secret needs --secret-out FILE or --print-secret, or the secret is lost"
                .to_owned(),
        ));
    }
    if !args.generate_secret && has_output {
        return Err(CliError::Usage(
            "--secret-out and --print-secret apply only to --generate-secret; the secret of \
             --secret-file is already in that file"
                .to_owned(),
        ));
    }

    Ok(())
}

fn read_or_generate_secret(args: &RegisterArgs) -> Result<Zeroizing<Vec<u8>>, CliError> {
    match &args.secret_file {
        Some(path) => read_secret(path, MAX_SECRET_LEN),
        None => {
            let mut secret = Zeroizing::new(vec![0u8; GENERATED_SECRET_LEN]);
            OsRng.fill_bytes(&mut secret);
            Ok(secret)
        }
    }
}

fn print_outcome(
    args: &RegisterArgs,
    user: &str,
    max_guesses: u32,
    secret: &[u8],
) -> Result<(), CliError> {
    let secret_hex = args
        .print_secret
        .then(|| Zeroizing::new(hex::encode(secret)));

    let noun = if max_guesses == 1 { "guess" } else { "guesses" };
    let mut summary = format!("registered user {user} with {max_guesses} {noun} allowed");
    if let Some(path) = &args.secret_out {
        summary.push_str(&format!("; wrote the secret to {}", path.display()));
    }

    let value = json!({
        "user": user,
        "max_guesses": max_guesses,
        "secret_out": args.secret_out.as_ref().map(|path| path.display().to_string()),
        "secret_hex": secret_hex.as_ref().map(|hex| hex.as_str()),
    });
    print_outcome_or_secret(
        args.vault.connection.json,
        &summary,
        secret_hex.as_ref().map(|hex| hex.as_str()),
        &value,
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn register_args(extra: &[&str]) -> RegisterArgs {
        let args = ["keyfleet", "register", "--user", "alice"];
        let cli = Cli::try_parse_from(args.iter().chain(extra)).unwrap();

        match cli.command {
            Command::Register(args) => args,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn generated_secret_needs_an_output() {
        let args = register_args(&["--generate-secret"]);

        let result = check_generated_secret_output(&args);

        assert!(matches!(result, Err(CliError::Usage(_))), "{result:?}");
    }

    #[test]
    fn secret_outputs_need_generate() {
        for extra in [&["--secret-out", "copy.bin"][..], &["--print-secret"][..]] {
            let mut all = vec!["--secret-file", "secret.bin"];
            all.extend_from_slice(extra);

            let result = check_generated_secret_output(&register_args(&all));

            assert!(
                matches!(result, Err(CliError::Usage(_))),
                "{extra:?}: {result:?}"
            );
        }
    }

    #[test]
    fn generated_secret_with_output_is_accepted() {
        for extra in [&["--secret-out", "copy.bin"][..], &["--print-secret"][..]] {
            let mut all = vec!["--generate-secret"];
            all.extend_from_slice(extra);

            let result = check_generated_secret_output(&register_args(&all));

            assert!(result.is_ok(), "{extra:?}: {result:?}");
        }
    }

    #[test]
    fn generated_secret_is_random() {
        let args = register_args(&["--generate-secret", "--print-secret"]);

        let first = read_or_generate_secret(&args).unwrap();
        let second = read_or_generate_secret(&args).unwrap();

        assert_eq!(first.len(), GENERATED_SECRET_LEN);
        assert_ne!(*first, *second);
    }
}
