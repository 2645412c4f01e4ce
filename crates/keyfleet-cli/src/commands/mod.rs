//! The subcommands of `keyfleet`.

pub(crate) mod bench;
mod cluster;
mod delete;
mod recover;
mod register;
mod state;
mod token;
mod vault_session;

use crate::cli::{ClusterCommand, Command, TokenCommand};
use crate::cli_error::CliError;

/// Runs the parsed command.
pub(crate) async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Register(args) => register::run(&args).await,
        Command::Recover(args) => recover::run(&args).await,
        Command::Delete(args) => delete::run(&args).await,
        Command::State(args) => state::run(&args).await,
        Command::Token(TokenCommand::Keygen(args)) => token::keygen(&args),
        Command::Token(TokenCommand::Mint(args)) => token::mint(&args),
        Command::Cluster(ClusterCommand::Init(args)) => cluster::init(&args).await,
        Command::Cluster(ClusterCommand::Status(args)) => cluster::status(&args).await,
        Command::Cluster(ClusterCommand::WaitReady(args)) => cluster::wait_ready(&args).await,
        Command::Bench(args) => bench::run(&args).await,
    }
}
