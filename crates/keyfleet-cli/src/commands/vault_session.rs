use std::time::Duration;

use keyfleet_client::RetryPolicy;
use keyfleet_sdk::VaultClient;
use zeroize::Zeroizing;

use crate::cli::{BundlePinArgs, VaultArgs};
use crate::cli_error::CliError;
use crate::private_file::read_secret_text;

/// Environment variable that contains the tenant token when `--token-file` is not given.
const TOKEN_ENV: &str = "KEYFLEET_TOKEN";

/// Largest token file the command reads, in bytes.
const MAX_TOKEN_FILE_LEN: usize = 16 * 1024;

/// The vault client, token and user of one vault command.
pub(super) struct VaultSession {
    pub(super) client: VaultClient,
    pub(super) token: Zeroizing<String>,
    pub(super) user: String,
}

impl VaultSession {
    /// Builds the client and reads the token, before any password prompt. With `pins`, the
    /// client verifies the fleet's validation bundle in its sessions.
    pub(super) fn open(args: &VaultArgs, pins: Option<&BundlePinArgs>) -> Result<Self, CliError> {
        let token = read_token(args)?;
        let policy = RetryPolicy {
            deadline: Duration::from_secs(args.connection.deadline_secs),
            ..RetryPolicy::default()
        };
        let endpoints = args.connection.endpoints.clone();
        let mut client = match args.connection.tls.client_tls()? {
            Some(tls) => VaultClient::with_tls(endpoints, policy, tls)?,
            None => VaultClient::new(endpoints, policy)?,
        };
        if let Some(pins) = pins
            && let (Some(witness_key), Some(operator_key)) = (&pins.witness_key, &pins.operator_key)
        {
            let anchors = super::fleet::parse_trust_anchors(
                witness_key,
                operator_key,
                &pins.bundle_namespace,
            )?;
            client = client.with_trust_anchors(anchors);
        }

        Ok(Self {
            client,
            token,
            user: args.user.clone(),
        })
    }
}

impl VaultSession {
    /// Prints, on stderr, the fleet key epoch the call was verified against, if any.
    pub(super) fn report_bundle(&self) {
        if let Some(bundle) = self.client.verified_bundle() {
            eprintln!(
                "verified fleet key epoch {} of fleet {} (digest {})",
                bundle.epoch(),
                bundle.artifact.fleet_id,
                hex::encode(bundle.digest)
            );
        }
    }
}

fn read_token(args: &VaultArgs) -> Result<Zeroizing<String>, CliError> {
    let token = match &args.token_file {
        Some(path) => read_secret_text(path, MAX_TOKEN_FILE_LEN)?,
        None => match std::env::var(TOKEN_ENV) {
            Ok(token) => Zeroizing::new(token),
            Err(_) => {
                return Err(CliError::Usage(format!(
                    "no tenant token: pass --token-file FILE or set {TOKEN_ENV}"
                )));
            }
        },
    };

    if token.trim().is_empty() {
        return Err(CliError::Usage(format!(
            "the tenant token is empty: pass --token-file FILE or set {TOKEN_ENV} to a token"
        )));
    }

    Ok(Zeroizing::new(token.trim().to_owned()))
}
