//! The offline fleet key ceremony, `keyfleetd keys ...`.
//!
//! Every node needs the same fleet sealing key and OPRF seed in its own HSM token. They are
//! generated once, in one token (`generate`). Each further node provisions its transport key
//! and prints its public half (`transport-key`). A node that has the fleet keys wraps them
//! for that public key into a file (`export`), and the new node unwraps them into its token and
//! proves with key check values that they equal the exporter's (`import`). The file format is
//! described in `file.rs`.
//!
//! The commands need no running node. Each reads the node's normal configuration file.

mod check;
mod command;
mod error;
mod export;
mod file;
mod generate;
pub(crate) mod hex;
mod import;
mod public_key;
mod token;
mod transport_key;

use std::process::ExitCode;

pub use command::KeysCommand;
pub use error::KeysError;
pub(crate) use export::wrap_fleet_keys;
pub(crate) use file::FleetKeyFile;
pub(crate) use import::import_keys;
pub(crate) use public_key::fingerprint;
pub(crate) use token::FleetToken;

/// Parses an uncompressed SEC1 P-256 transport public key. The error describes the fault.
pub(crate) fn parse_transport_key(
    point: &[u8],
) -> Result<keyfleet_hsm::TransportPublicKey, String> {
    public_key::parse_sec1(point)
}

use crate::{NodeConfig, init_logging};

/// Help text of `keyfleetd keys`.
pub const USAGE: &str = "\
usage: keyfleetd keys generate --config PATH
       keyfleetd keys transport-key --config PATH
       keyfleetd keys export --config PATH --recipient HEX --out FILE [--force]
       keyfleetd keys import --config PATH --in FILE

The offline ceremony that gives every node the same fleet keys (hsm.keys.seal and
hsm.keys.oprf_seed). Each command reads the node's configuration file and the HSM PIN from the
configured hsm.pin_env or hsm.pin_file.

  generate       On the first node: generates the fleet keys where their labels are free and
                 keeps existing keys that meet the policy.
  transport-key  On a new node: generates its transport key if missing and prints the public
                 key, in hexadecimal, on stdout.
  export         On a node with the fleet keys: wraps them for the transport public key HEX
                 and writes FILE (mode 0600). --force replaces an existing FILE. FILE reveals
                 no key, so any channel may carry it, but nothing in it proves who made it:
                 take it from a node you trust.
  import         On the new node: unwraps the keys from FILE and verifies their check values.
                 Importing the same file again changes nothing.

Exit status: 0 on success, 2 for invalid arguments or configuration, 1 for other failures.";

/// Default log filter of the ceremony: warnings and errors only, so that stdout and stderr carry
/// the commands' own output. `RUST_LOG` overrides it.
const KEYS_LOG_FILTER: &str = "warn,cryptoki::mechanism=off";

/// Runs `keyfleetd keys` with the arguments after `keys`, and returns the exit status.
pub fn main(args: &[String]) -> ExitCode {
    let command = match KeysCommand::parse(args) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("keyfleetd: {error}\n\n{USAGE}");
            return ExitCode::from(error.exit_code());
        }
    };

    match run(&command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("keyfleetd: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Loads the configuration, opens the token and runs `command` on it.
pub fn run(command: &KeysCommand) -> Result<(), KeysError> {
    let Some(path) = command.config_path() else {
        println!("{USAGE}");
        return Ok(());
    };
    let config = NodeConfig::load(path)?;
    init_logging(config.log_format, KEYS_LOG_FILTER);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            KeysError::failed(format!("failed to start the async runtime: {error}"))
        })?;
    runtime.block_on(async {
        let token = FleetToken::open(&config).await?;
        match command {
            KeysCommand::Generate { .. } => generate::generate(&token).await,
            KeysCommand::TransportKey { .. } => transport_key::transport_key(&token).await,
            KeysCommand::Export {
                recipient,
                out,
                force,
                ..
            } => export::export(&token, recipient, out, *force).await,
            KeysCommand::Import { input, .. } => import::import(&token, input).await,
            KeysCommand::Help => unreachable!("help has no configuration file"),
        }
    })
}
