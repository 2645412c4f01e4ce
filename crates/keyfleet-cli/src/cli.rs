//! The command line, parsed with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const DEFAULT_ENDPOINTS: &str = "127.0.0.1:7201,127.0.0.1:7202,127.0.0.1:7203";

const LONG_ABOUT: &str = "\
Stores a backup secret in a keyfleet vault behind a password, and recovers it.

The password is read from a prompt without echo, or from --password-file. The tenant token is \
read from --token-file or the environment variable KEYFLEET_TOKEN. Neither is ever taken from \
the command line, where other users of the machine could read it.";

const AFTER_LONG_HELP: &str = "\
Exit codes:
  0  success
  1  other failure
  2  usage error: a missing, conflicting or invalid option, or a file it names is missing
  3  wrong password, or no record for the user
  4  the record is locked after too many wrong passwords
  5  the vault is unavailable
  6  the token is invalid, expired, or not for this user, or the admin token is wrong
  7  an invalid argument, such as a secret of the wrong size
  8  status: the cluster has a quorum, but a voter is unreachable, not ready, or its HSM fails
  9  status: the cluster has no leader with a quorum
  10 the cluster rejected the change: a restore that would roll guess counts back, a
     membership change it cannot make now
  11 the snapshot file is invalid, corrupt, or of an unsupported version
  12 a fleet key check failed: `keyfleet audit` or `keyfleet fleet verify` names the check
     and the epoch
Status exits 0 when every voter is reachable and ready, and 5 when no node responds.";

/// The `keyfleet` command.
#[derive(Debug, Parser)]
#[command(name = "keyfleet", version, about, long_about = LONG_ABOUT)]
#[command(after_long_help = AFTER_LONG_HELP)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Stores a secret behind a password, replacing the user's earlier record.
    Register(RegisterArgs),
    /// Recovers the user's secret; each attempt costs one guess.
    Recover(RecoverArgs),
    /// Deletes the user's record.
    Delete(VaultArgs),
    /// Prints the state of the user's record and its guesses left.
    State(VaultArgs),
    /// Creates tenant signing keys and mints tenant tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Initializes a new cluster and shows the nodes' Raft status, through the node API.
    #[command(subcommand)]
    Cluster(ClusterCommand),

    /// Measures recovery throughput and latency next to etcd and the OPAQUE crypto ceiling.
    Bench(crate::commands::bench::BenchArgs),

    // Fleet key validation: the witness log audit and the operator's publishing commands.
    /// Verifies a fleet's witness log end to end and prints the key changes by epoch.
    Audit(crate::cli_witness::AuditArgs),
    /// Publishes and verifies fleet key epochs.
    #[command(subcommand)]
    Fleet(crate::cli_witness::FleetCommand),

    // ---- Operator commands ----
    /// Prints every node's role, term, log indexes, lag, last contact, readiness and HSM
    /// health, and the cluster's failure tolerance; the exit code sums it up.
    Status(EndpointArgs),
    /// Lists, adds and removes voters, and hands leadership to another voter.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Saves, checks and restores snapshot files of the vault state.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum MembersCommand {
    /// Lists the voters and learners in the membership of the leader, or else of the node with
    /// the highest term.
    List(EndpointArgs),
    /// Adds a node as a learner, waits until it has caught up, then makes it a voter.
    Add(MembersAddArgs),
    /// Approves a new node: creates a one-time join token for `keyfleetd join` on the leader.
    JoinToken(JoinTokenArgs),
    /// Removes a voter from the cluster. Learners that are not voters are removed too.
    Remove(MembersRemoveArgs),
    /// Hands leadership to another voter.
    TransferLeader(TransferLeaderArgs),
}

/// The nodes to call and the node API's admin token.
#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    #[command(flatten)]
    pub(crate) endpoints: EndpointArgs,

    /// File whose first line is the node API's admin token, the token in the nodes'
    /// admin_token_file.
    #[arg(long, env = "KEYFLEET_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub(crate) admin_token_file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct MembersAddArgs {
    #[command(flatten)]
    pub(crate) admin: AdminArgs,

    /// The new node, as ID=RAFT_ADDR,API_ADDR. It must run with an empty data directory and a
    /// node id never used in this cluster before.
    #[arg(long, value_name = "ID=RAFT,API")]
    pub(crate) node: String,
}

#[derive(Debug, Args)]
pub(crate) struct JoinTokenArgs {
    #[command(flatten)]
    pub(crate) admin: AdminArgs,

    /// Id of the node that may join with the token: an id never used in this cluster.
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) node_id: u64,

    /// The new node's transport public key, in hexadecimal, as `keyfleetd keys transport-key`
    /// prints it on that node. The leader wraps the fleet keys only for this key.
    #[arg(long, value_name = "HEX")]
    pub(crate) transport_key: String,

    /// Lifetime of the token in seconds, at most 86400.
    #[arg(
        long,
        default_value_t = 600,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub(crate) ttl_secs: u64,

    /// Writes the token to this new file (mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct MembersRemoveArgs {
    #[command(flatten)]
    pub(crate) admin: AdminArgs,

    /// Id of the voter to remove. Never start it again under this id.
    #[arg(long, value_name = "ID")]
    pub(crate) id: u64,

    /// Allows leaving fewer than three voters, which tolerate no failure.
    #[arg(long)]
    pub(crate) allow_fewer_than_three_voters: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TransferLeaderArgs {
    #[command(flatten)]
    pub(crate) admin: AdminArgs,

    /// Id of the voter that should lead.
    #[arg(long, value_name = "ID")]
    pub(crate) to: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SnapshotCommand {
    /// Saves the leader's vault state, with every committed write, to a snapshot file.
    Save(SnapshotSaveArgs),
    /// Checks a snapshot file's layout and SHA-256 digest, decodes it fully and prints its
    /// header.
    Verify(SnapshotVerifyArgs),
    /// Replaces the cluster's vault state with a snapshot file's.
    Restore(SnapshotRestoreArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SnapshotSaveArgs {
    #[command(flatten)]
    pub(crate) admin: AdminArgs,

    /// File to write the snapshot to, with mode 0600.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,

    /// Overwrites an existing --out file.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SnapshotVerifyArgs {
    /// The snapshot file.
    #[arg(long = "in", value_name = "FILE")]
    pub(crate) input: PathBuf,

    /// Prints one JSON object on stdout instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SnapshotRestoreArgs {
    #[command(flatten)]
    pub(crate) admin: AdminArgs,

    /// The snapshot file.
    #[arg(long = "in", value_name = "FILE")]
    pub(crate) input: PathBuf,

    /// DANGEROUS: restores even when guess counts would go down, or locked or deleted records
    /// would come back, which hands out the guesses counted since the snapshot was saved.
    #[arg(long)]
    pub(crate) allow_counter_rollback: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Initializes a new cluster with its voters, once, on the first endpoint.
    Init(ClusterInitArgs),
    /// Prints every node's role, term, leader and log indexes.
    Status(EndpointArgs),
    /// Waits until a node reports a leader.
    WaitReady(EndpointArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ClusterInitArgs {
    #[command(flatten)]
    pub(crate) endpoints: EndpointArgs,

    /// File whose first line is the node API's admin token, the token in the nodes'
    /// admin_token_file.
    #[arg(long, env = "KEYFLEET_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub(crate) admin_token_file: PathBuf,

    /// A voter, as ID=RAFT_ADDR,API_ADDR (for example 1=127.0.0.1:7101,127.0.0.1:7201).
    /// Repeat it for every voter; every voter must be running.
    #[arg(long = "member", value_name = "ID=RAFT,API", required = true)]
    pub(crate) members: Vec<String>,
}

/// The nodes to call, the time budget and the output format, shared by every command that
/// calls the fleet.
#[derive(Debug, Args)]
pub(crate) struct EndpointArgs {
    /// Node API addresses, as host:port or http:// URIs, separated by commas. Every node serves
    /// the vault API on the same address.
    #[arg(
        long,
        env = "KEYFLEET_ENDPOINTS",
        value_delimiter = ',',
        default_value = DEFAULT_ENDPOINTS,
        value_name = "A,B,C",
        value_parser = parse_endpoint
    )]
    pub(crate) endpoints: Vec<String>,

    /// Time budget of the call, retries included, in seconds.
    #[arg(
        long,
        default_value_t = 30,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub(crate) deadline_secs: u64,

    /// Prints one JSON object on stdout instead of text.
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) tls: crate::tls_args::TlsArgs,
}

/// Options of every vault command.
#[derive(Debug, Args)]
pub(crate) struct VaultArgs {
    #[command(flatten)]
    pub(crate) connection: EndpointArgs,

    /// User id within the tenant; it must match the token's subject.
    #[arg(long, value_name = "ID")]
    pub(crate) user: String,

    /// File with the tenant token. Without it, the token comes from KEYFLEET_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
}

/// Trust anchors of the commands that send password-derived messages: register and recover.
#[derive(Debug, Args)]
pub(crate) struct BundlePinArgs {
    /// Pins the witness's note verifier key. With --operator-key, the command verifies the
    /// fleet's validation bundle before the session starts, so a mismatch spends no guess, and
    /// checks the vault's OPAQUE server key against it before the upload or the KE3 goes out.
    #[arg(
        long,
        env = "KEYFLEET_WITNESS_KEY",
        value_name = "VKEY",
        requires = "operator_key"
    )]
    pub(crate) witness_key: Option<String>,

    /// Pins the operator's root public key, the fleet signing key, in hex; see --witness-key.
    #[arg(
        long,
        env = "KEYFLEET_OPERATOR_KEY",
        value_name = "HEX",
        requires = "witness_key"
    )]
    pub(crate) operator_key: Option<String>,

    /// Log namespace of the fleet's key artifacts, for --witness-key and --operator-key.
    #[arg(long, default_value = "keyfleet.fleet_keys.v1", value_name = "NS")]
    pub(crate) bundle_namespace: String,
}

/// Password source options.
#[derive(Debug, Args)]
pub(crate) struct PasswordArgs {
    /// File whose first line is the password. Without it, the password is prompted for.
    #[arg(long, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("secret_source").required(true).args(["secret_file", "generate_secret"])))]
pub(crate) struct RegisterArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,

    #[command(flatten)]
    pub(crate) pins: BundlePinArgs,

    #[command(flatten)]
    pub(crate) password: PasswordArgs,

    /// File whose bytes are the secret to store, 1 to 512 bytes.
    #[arg(long, value_name = "FILE")]
    pub(crate) secret_file: Option<PathBuf>,

    /// Generates a random 32-byte secret; needs --secret-out or --print-secret.
    #[arg(long)]
    pub(crate) generate_secret: bool,

    /// Writes the generated secret to FILE, with mode 0600.
    #[arg(long, value_name = "FILE")]
    pub(crate) secret_out: Option<PathBuf>,

    /// Prints the generated secret in hex on stdout.
    #[arg(long)]
    pub(crate) print_secret: bool,

    /// Overwrites an existing --secret-out file.
    #[arg(long)]
    pub(crate) force: bool,

    /// Password attempts allowed between two successful recoveries; a failed last attempt
    /// erases the record. 0 uses the fleet default.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) max_guesses: u32,
}

#[derive(Debug, Args)]
pub(crate) struct RecoverArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,

    #[command(flatten)]
    pub(crate) pins: BundlePinArgs,

    #[command(flatten)]
    pub(crate) password: PasswordArgs,

    /// Writes the recovered secret to FILE, with mode 0600.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,

    /// Prints the recovered secret in hex on stdout.
    #[arg(long)]
    pub(crate) print_hex: bool,

    /// Overwrites an existing --out file.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Generates a tenant signing key, writes it as PKCS#8 PEM, and prints the public key.
    Keygen(KeygenArgs),
    /// Mints a tenant token and prints it on stdout.
    Mint(MintArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// File to write the private key to, with mode 0600.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,

    /// Overwrites an existing key file.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MintArgs {
    /// PKCS#8 PEM file of the tenant signing key.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,

    /// Tenant id, the token's issuer.
    #[arg(long, value_name = "T")]
    pub(crate) tenant: String,

    /// User id, the token's subject.
    #[arg(long, value_name = "U")]
    pub(crate) user: String,

    /// Fleet id, the token's audience.
    #[arg(long, value_name = "F")]
    pub(crate) fleet: String,

    /// Lifetime of the token, in seconds.
    #[arg(
        long,
        default_value_t = 300,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub(crate) ttl_secs: u64,
}

/// Checks one `--endpoints` value: `host:port`, or an `http://` or `https://` URI with a port.
fn parse_endpoint(value: &str) -> Result<String, String> {
    let (scheme, authority) = match value.split_once("://") {
        Some((scheme @ ("http" | "https"), rest)) => (Some(scheme), rest),
        Some((scheme, _)) => {
            return Err(format!(
                "{value:?} has the scheme {scheme:?}; use host:port, http:// or https://"
            ));
        }
        None => (None, value),
    };
    let authority = authority.trim_end_matches('/');

    let Some((host, port)) = authority.rsplit_once(':') else {
        return Err(format!(
            "{value:?} has no port; write host:port, such as 127.0.0.1:7201"
        ));
    };
    if host.is_empty() || authority.contains('/') {
        return Err(format!(
            "{value:?} is not host:port, such as 127.0.0.1:7201"
        ));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => {}
        _ => {
            return Err(format!(
                "{value:?} has the port {port:?}; use a port from 1 to 65535"
            ));
        }
    }

    Ok(match scheme {
        Some(scheme) => format!("{scheme}://{authority}"),
        None => authority.to_owned(),
    })
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
