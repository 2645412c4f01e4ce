//! `keyfleet bench`: the benchmark of `keyfleet-bench`, on a local fleet or a running one.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use keyfleet_bench::{BenchConfig, FleetTarget, RemoteFleet};

use crate::cli_error::CliError;
use crate::output::print_line;

/// Options of `keyfleet bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Runs a few seconds with 4 clients and 8 users, to check that every part works. Its
    /// numbers are too short-lived to compare.
    #[arg(long)]
    pub(crate) smoke: bool,

    /// Concurrent clients, each with one operation in flight.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub(crate) concurrency: usize,

    /// Users registered before the recovery phases, at least as many as the clients.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub(crate) users: usize,

    /// Length of each timed phase (right-password recoveries, wrong-password recoveries,
    /// etcd increments), in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) phase_secs: u64,

    /// Time budget of the crypto ceiling measurement, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) crypto_secs: u64,

    /// Rounds of the fsync probe (a 4 KiB write and fdatasync each).
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub(crate) fsync_rounds: u32,

    /// Skips the etcd anchor.
    #[arg(long)]
    pub(crate) no_etcd: bool,

    /// Directory for the fleet's and etcd's data and the fsync probe; a new temporary
    /// directory when unset. Use a fresh directory on the disk under test.
    #[arg(long, value_name = "DIR")]
    pub(crate) work_dir: Option<PathBuf>,

    /// The keyfleetd binary for the local fleet; by default the one next to this keyfleet.
    #[arg(long, value_name = "FILE", conflicts_with = "endpoints")]
    pub(crate) keyfleetd: Option<PathBuf>,

    /// Vault API addresses of a running fleet to measure instead of a local one, separated by
    /// commas. Needs --tenant-key, --tenant and --fleet.
    #[arg(long, value_delimiter = ',', value_name = "A,B,C", requires_all = ["tenant_key", "tenant", "fleet"])]
    pub(crate) endpoints: Option<Vec<String>>,

    /// PKCS#8 PEM file of a tenant signing key that the running fleet trusts.
    #[arg(long, value_name = "FILE", requires = "endpoints")]
    pub(crate) tenant_key: Option<PathBuf>,

    /// Tenant id of --tenant-key.
    #[arg(long, value_name = "T", requires = "endpoints")]
    pub(crate) tenant: Option<String>,

    /// Fleet id of the running fleet.
    #[arg(long, value_name = "F", requires = "endpoints")]
    pub(crate) fleet: Option<String>,

    /// Prints one JSON object on stdout instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Runs the benchmark and prints its report.
pub(crate) async fn run(args: &BenchArgs) -> Result<(), CliError> {
    let config = config(args)?;
    let report = keyfleet_bench::run(&config).await?;

    if args.json {
        let json = serde_json::to_string(&report).map_err(|error| {
            CliError::InvalidInput(format!("failed to encode the report: {error}"))
        })?;
        print_line(&json)
    } else {
        print_line(&report.to_string())
    }
}

fn config(args: &BenchArgs) -> Result<BenchConfig, CliError> {
    let target = target(args)?;
    if args.smoke {
        let mut config = BenchConfig::smoke(target);
        config.etcd = !args.no_etcd;
        config.work_dir.clone_from(&args.work_dir);
        return Ok(config);
    }

    Ok(BenchConfig {
        target,
        concurrency: args.concurrency,
        users: args.users,
        phase: Duration::from_secs(args.phase_secs),
        crypto_phase: Duration::from_secs(args.crypto_secs),
        fsync_rounds: args.fsync_rounds,
        etcd: !args.no_etcd,
        client_ksf: BenchConfig::CHEAP_CLIENT_KSF,
        work_dir: args.work_dir.clone(),
    })
}

fn target(args: &BenchArgs) -> Result<FleetTarget, CliError> {
    if let Some(endpoints) = &args.endpoints {
        // clap's `requires_all` guarantees the three options.
        let (Some(tenant_key), Some(tenant), Some(fleet)) =
            (&args.tenant_key, &args.tenant, &args.fleet)
        else {
            return Err(CliError::Usage(
                "--endpoints needs --tenant-key, --tenant and --fleet".to_owned(),
            ));
        };
        return Ok(FleetTarget::Remote(RemoteFleet {
            endpoints: endpoints.clone(),
            tenant_key_file: tenant_key.clone(),
            tenant: tenant.clone(),
            fleet: fleet.clone(),
        }));
    }

    let keyfleetd = match &args.keyfleetd {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|error| {
                CliError::Usage(format!(
                    "failed to find this program's path ({error}); pass --keyfleetd FILE"
                ))
            })?
            .with_file_name("keyfleetd"),
    };
    if !keyfleetd.is_file() {
        return Err(CliError::Usage(format!(
            "keyfleetd not found at {}; build it with `cargo build -p keyfleetd` or pass --keyfleetd FILE",
            keyfleetd.display()
        )));
    }
    Ok(FleetTarget::Local { keyfleetd })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn bench_args(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        let all = ["keyfleet", "bench"]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::try_parse_from(all)?.command {
            Command::Bench(args) => Ok(args),
            other => panic!("parsed {other:?}, expected the bench command"),
        }
    }

    #[test]
    fn remote_fleet_needs_tenant_key() {
        let error = bench_args(&["--endpoints", "127.0.0.1:7201"]).unwrap_err();

        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn remote_fleet_builds_target() {
        let args = bench_args(&[
            "--endpoints",
            "127.0.0.1:7201,127.0.0.1:7202",
            "--tenant-key",
            "tenant.pem",
            "--tenant",
            "app",
            "--fleet",
            "fleet-1",
        ])
        .unwrap();

        let config = config(&args).unwrap();

        let FleetTarget::Remote(remote) = config.target else {
            panic!("expected a remote fleet");
        };
        assert_eq!(remote.endpoints, ["127.0.0.1:7201", "127.0.0.1:7202"]);
        assert_eq!(remote.tenant, "app");
        assert_eq!(remote.fleet, "fleet-1");
        assert_eq!(config.concurrency, 64);
    }

    #[test]
    fn missing_keyfleetd_is_usage_error() {
        let args = bench_args(&["--keyfleetd", "/nonexistent/keyfleetd"]).unwrap();

        let error = config(&args).unwrap_err();

        assert!(matches!(error, CliError::Usage(_)), "{error}");
        assert!(
            error.to_string().contains("/nonexistent/keyfleetd"),
            "{error}"
        );
    }

    #[test]
    fn smoke_keeps_no_etcd() {
        let args = bench_args(&[
            "--smoke",
            "--no-etcd",
            "--endpoints",
            "127.0.0.1:7201",
            "--tenant-key",
            "k.pem",
            "--tenant",
            "app",
            "--fleet",
            "f",
        ])
        .unwrap();

        let config = config(&args).unwrap();

        assert!(!config.etcd);
        assert_eq!(
            config.users,
            BenchConfig::smoke(config.target.clone()).users
        );
    }
}
