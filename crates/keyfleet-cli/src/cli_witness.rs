//! Options of the fleet key commands: `keyfleet audit` and `keyfleet fleet`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

const DEFAULT_WITNESS: &str = "127.0.0.1:7301";
const DEFAULT_NAMESPACE: &str = "keyfleet.fleet_keys.v1";

/// The witness to call and the namespace of the fleet's log.
#[derive(Debug, Args)]
pub(crate) struct WitnessArgs {
    /// Witness API address, as host:port or an http:// URI.
    #[arg(long, env = "KEYFLEET_WITNESS", default_value = DEFAULT_WITNESS, value_name = "ADDR")]
    pub(crate) witness: String,

    /// Log namespace of the fleet's key artifacts.
    #[arg(long, default_value = DEFAULT_NAMESPACE, value_name = "NS")]
    pub(crate) namespace: String,
}

/// The keys a verifier pins.
#[derive(Debug, Args)]
pub(crate) struct PinnedKeyArgs {
    /// The witness's note verifier key, <name>+<hex key id>+<base64 key>, as
    /// `keyfleet-witness verifier-key` prints it.
    #[arg(long, env = "KEYFLEET_WITNESS_KEY", value_name = "VKEY")]
    pub(crate) witness_key: String,

    /// The operator's root public key, the fleet signing key, in hex (32 bytes).
    #[arg(long, env = "KEYFLEET_OPERATOR_KEY", value_name = "HEX")]
    pub(crate) operator_key: String,
}

/// Options of `keyfleet audit`.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    pub(crate) witness: WitnessArgs,

    #[command(flatten)]
    pub(crate) pinned: PinnedKeyArgs,

    /// Number of epochs to verify, counting back from the newest.
    #[arg(
        long,
        default_value_t = 50,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=100_000)
    )]
    pub(crate) limit: u64,

    /// Verifies only epochs below EPOCH, to page back through a long log.
    #[arg(long, value_name = "EPOCH", value_parser = clap::value_parser!(u64).range(2..))]
    pub(crate) before_epoch: Option<u64>,

    /// Prints whole public keys in the delta table instead of their first 16 hex digits.
    #[arg(long)]
    pub(crate) key: bool,

    /// A bundle served by the fleet, as JSON, to cross-check against the log. Repeatable.
    #[arg(long = "bundle", value_name = "FILE")]
    pub(crate) bundles: Vec<PathBuf>,

    /// Prints one JSON object on stdout instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Operator commands for fleet key epochs.
#[derive(Debug, Subcommand)]
pub(crate) enum FleetCommand {
    /// Generates an operator key, the fleet signing key that counter-signs the witness, and
    /// prints its public key in hex.
    Keygen(FleetKeygenArgs),
    /// Publishes an artifact: the witness signs it, the operator key counter-signs, and the
    /// bundle is written to --out.
    Publish(PublishArgs),
    /// Verifies a bundle as a client does and prints its epoch and keys.
    Verify(VerifyArgs),
    /// Makes the running fleet publish its next key epoch: the leader builds the artifact
    /// from the fleet's real public keys, the witness logs it, the leader's HSM key
    /// counter-signs, and the bundle is stored in the replicated state.
    PublishBundle(PublishBundleArgs),
    /// Prints every voter's HSM-held Ed25519 public key, and marks the leader's, which the
    /// first `publish-bundle` makes the fleet signing key.
    NodeKeys(crate::cli::EndpointArgs),
}

/// Options of `keyfleet fleet publish-bundle`.
#[derive(Debug, Args)]
pub(crate) struct PublishBundleArgs {
    #[command(flatten)]
    pub(crate) admin: crate::cli::AdminArgs,

    #[command(flatten)]
    pub(crate) witness: WitnessArgs,

    /// Also writes the bundle to FILE, as JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,

    /// Overwrites an existing --out file.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Options of `keyfleet fleet keygen`.
#[derive(Debug, Args)]
pub(crate) struct FleetKeygenArgs {
    /// File to write the private key to, in hex, with mode 0600.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,

    /// Overwrites an existing key file.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Options of `keyfleet fleet publish`.
#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    #[command(flatten)]
    pub(crate) witness: WitnessArgs,

    /// The artifact as JSON in any layout; it is put in canonical form before signing.
    #[arg(long, value_name = "FILE")]
    pub(crate) artifact: PathBuf,

    /// The operator key file from `keyfleet fleet keygen`.
    #[arg(long, value_name = "FILE")]
    pub(crate) operator_key_file: PathBuf,

    /// File to write the bundle to, as JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,

    /// Overwrites an existing --out file.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Options of `keyfleet fleet verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) pinned: PinnedKeyArgs,

    /// Log namespace of the fleet's key artifacts.
    #[arg(long, default_value = DEFAULT_NAMESPACE, value_name = "NS")]
    pub(crate) namespace: String,

    /// Bundle files as JSON, verified in order as one client receives them: each must be
    /// newer than the last, or the same.
    #[arg(long = "bundle", value_name = "FILE", required = true)]
    pub(crate) bundles: Vec<PathBuf>,

    /// Prints one JSON object on stdout instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}
