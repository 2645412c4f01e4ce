//! The subcommands of `keyfleet`.

pub(crate) mod bench;
mod cluster;
mod delete;
mod fleet;
mod fleet_status;
mod members;
mod recover;
mod register;
mod snapshot;
mod state;
mod token;
mod vault_session;

use crate::cli::{ClusterCommand, Command, MembersCommand, SnapshotCommand, TokenCommand};
use crate::cli_error::CliError;
use crate::cli_witness::FleetCommand;

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
        Command::Status(args) => fleet_status::run(&args).await,
        Command::Members(MembersCommand::List(args)) => members::list(&args).await,
        Command::Members(MembersCommand::Add(args)) => members::add(&args).await,
        Command::Members(MembersCommand::JoinToken(args)) => members::join_token(&args).await,
        Command::Members(MembersCommand::Remove(args)) => members::remove(&args).await,
        Command::Members(MembersCommand::TransferLeader(args)) => {
            members::transfer_leader(&args).await
        }
        Command::Snapshot(SnapshotCommand::Save(args)) => snapshot::save(&args).await,
        Command::Snapshot(SnapshotCommand::Verify(args)) => snapshot::verify(&args),
        Command::Snapshot(SnapshotCommand::Restore(args)) => snapshot::restore(&args).await,
        Command::Bench(args) => bench::run(&args).await,
        Command::Audit(args) => fleet::audit(&args).await,
        Command::Fleet(FleetCommand::Keygen(args)) => fleet::keygen(&args),
        Command::Fleet(FleetCommand::Publish(args)) => fleet::publish(&args).await,
        Command::Fleet(FleetCommand::Verify(args)) => fleet::verify(&args),
        Command::Fleet(FleetCommand::PublishBundle(args)) => fleet::publish_bundle(&args).await,
        Command::Fleet(FleetCommand::NodeKeys(args)) => fleet::node_keys(&args).await,
    }
}
