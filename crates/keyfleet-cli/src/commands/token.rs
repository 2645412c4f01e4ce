use std::time::{SystemTime, UNIX_EPOCH};

use keyfleet_token::{TenantSigningKey, TokenClaims};

use crate::cli::{KeygenArgs, MintArgs};
use crate::cli_error::CliError;
use crate::output::print_line;
use crate::private_file::{read_secret_text, write_private};

/// Largest key file the command reads, in bytes.
const MAX_KEY_FILE_LEN: usize = 16 * 1024;

/// Runs `keyfleet token keygen`: writes a new signing key and prints its public key in hex.
pub(super) fn keygen(args: &KeygenArgs) -> Result<(), CliError> {
    let key = TenantSigningKey::generate();

    write_private(&args.out, key.to_pkcs8_pem().as_bytes(), args.force)?;
    print_line(&key.public_key().to_hex())
}

/// Runs `keyfleet token mint`: prints a token that expires `--ttl-secs` from now.
pub(super) fn mint(args: &MintArgs) -> Result<(), CliError> {
    let pem = read_secret_text(&args.key, MAX_KEY_FILE_LEN)?;
    let key = TenantSigningKey::from_pkcs8_pem(&pem)?;

    let claims = claims_for(args, unix_now()?)?;
    print_line(&key.mint(&claims)?)
}

fn claims_for(args: &MintArgs, now: u64) -> Result<TokenClaims, CliError> {
    let expires_at = now.checked_add(args.ttl_secs).ok_or_else(|| {
        CliError::InvalidInput(format!(
            "--ttl-secs {} is too large; use a lifetime of minutes",
            args.ttl_secs
        ))
    })?;

    Ok(TokenClaims {
        tenant: args.tenant.clone(),
        user: args.user.clone(),
        fleet: args.fleet.clone(),
        issued_at: now,
        expires_at,
    })
}

fn unix_now() -> Result<u64, CliError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .map_err(|_| {
            CliError::InvalidInput("the system clock is before 1970; set the clock".to_owned())
        })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;

    fn mint_args(key: PathBuf, ttl_secs: u64) -> MintArgs {
        MintArgs {
            key,
            tenant: "acme".to_owned(),
            user: "alice".to_owned(),
            fleet: "fleet-eu-1".to_owned(),
            ttl_secs,
        }
    }

    #[test]
    fn claims_expire_after_ttl() {
        let claims = claims_for(&mint_args(PathBuf::new(), 300), 1_700_000_000).unwrap();

        assert_eq!(claims.issued_at, 1_700_000_000);
        assert_eq!(claims.expires_at, 1_700_000_300);
        assert_eq!(claims.tenant, "acme");
        assert_eq!(claims.user, "alice");
        assert_eq!(claims.fleet, "fleet-eu-1");
    }

    #[test]
    fn overflowing_ttl_is_rejected() {
        let result = claims_for(&mint_args(PathBuf::new(), u64::MAX), 10);

        assert!(
            matches!(result, Err(CliError::InvalidInput(_))),
            "{result:?}"
        );
    }

    #[test]
    fn keygen_then_mint_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenant.pem");

        keygen(&KeygenArgs {
            out: path.clone(),
            force: false,
        })
        .unwrap();
        let pem = fs::read_to_string(&path).unwrap();
        let key = TenantSigningKey::from_pkcs8_pem(&pem).unwrap();
        let claims = claims_for(&mint_args(path, 60), unix_now().unwrap()).unwrap();
        let token = key.mint(&claims).unwrap();

        let peeked = keyfleet_token::peek_claims(&token).unwrap();
        assert_eq!(peeked, claims);
    }

    #[test]
    fn keygen_keeps_existing_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenant.pem");
        fs::write(&path, "old key").unwrap();

        let result = keygen(&KeygenArgs {
            out: path.clone(),
            force: false,
        });

        assert!(
            matches!(result, Err(CliError::OutputExists { .. })),
            "{result:?}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "old key");
    }
}
