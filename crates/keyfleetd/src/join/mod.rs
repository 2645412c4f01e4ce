//! The online join: a new node gets the fleet keys from the leader's HSM into its own, and
//! becomes a voter, after an operator approved it with a one-time join token.
//!
//! 1. The new node provisions its transport key (`keyfleetd keys transport-key`), and the
//!    operator creates a token on the leader for the node's id and that key (`keyfleet members
//!    join-token`). The leader wraps the fleet keys for no other key.
//! 2. The new node (`keyfleetd join`) provisions its transport key, generates its TLS key, and
//!    sends both public keys with the token in `Join`. The leader spends the token, wraps the
//!    fleet keys for the transport key (`keyfleetd keys export` does the same), issues the
//!    node certificate from the fleet CA, and returns both with a random challenge.
//! 3. The new node unwraps the keys into its HSM, checks their key check values, writes its
//!    certificate and key, starts, and sends `CompleteJoin` with proofs over the challenge made
//!    with both fleet keys.
//! 4. The leader checks the proofs with its own keys, adds the node as a learner, waits until
//!    it has caught up, and promotes it to voter. A node whose HSM did not unwrap the keys
//!    cannot make the proofs, and the membership stays as it was.

mod command;
mod issuer;
mod joiner;
mod proof;
mod tls_key;
mod tokens;

use std::process::ExitCode;

pub use command::JoinCommand;
pub(crate) use issuer::{CaFiles, JoinIssuer};

use crate::{NODE_LOG_FILTER, NodeConfig, init_logging};

/// Help text of `keyfleetd join`.
pub const USAGE: &str = "\
usage: keyfleetd join --config PATH --fleet ADDR[,ADDR...] --token-file FILE

Joins this node to a running fleet, then runs it as `keyfleetd --config PATH` would. Later
starts use `keyfleetd --config PATH`.

  --config PATH      The new node's configuration. Its node_id is the id the join token was
                     created for, and its data directory is empty. With TLS, tls.ca_cert is the
                     fleet CA certificate, and the node writes its new key to tls.key and the
                     certificate the fleet issues to tls.cert.
  --fleet ADDR,...   Node API addresses (host:port) of fleet members; the join goes to the
                     leader.
  --token-file FILE  File whose first line is the join token from `keyfleet members
                     join-token`. The token works once, on the leader that created it, until
                     it expires, and only for the transport key it was created for.

The node unwraps the fleet keys into its HSM token and checks their key check values before it
starts. The leader adds it as a learner only after it proves that its token holds the fleet
keys, and promotes it to voter once it has caught up.

Exit status: 0 after a clean shutdown, 2 for invalid arguments or configuration, 1 when the
join or the node failed.";

/// Runs `keyfleetd join` with the arguments after `join`, and returns the exit status.
pub fn main(args: &[String]) -> ExitCode {
    let command = match JoinCommand::parse(args) {
        Ok(Some(command)) => command,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("keyfleetd: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match NodeConfig::load(&command.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("keyfleetd: {error}");
            return ExitCode::from(2);
        }
    };
    let token = match command.read_token() {
        Ok(token) => token,
        Err(message) => {
            eprintln!("keyfleetd: {message}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format, NODE_LOG_FILTER);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(joiner::join_and_serve(config, command.fleet, token)),
        Err(error) => Err(anyhow::Error::new(error).context("starting the async runtime")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "keyfleetd join failed");
            eprintln!("keyfleetd: {error:#}");
            ExitCode::FAILURE
        }
    }
}
