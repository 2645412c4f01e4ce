//! `keyfleetd --config PATH`: runs one keyfleet node until SIGTERM or SIGINT.
//! `keyfleetd keys ...`: runs one step of the offline fleet key ceremony (`keyfleetd::keys`).
//! `keyfleetd recover-quorum ...`: forces a new voter set offline after a lost quorum.
//! `keyfleetd join ...`: joins a running fleet with a join token, then runs the node.

use std::path::PathBuf;
use std::process::ExitCode;

use keyfleetd::{NODE_LOG_FILTER, NodeConfig, NodeSignals, RunningNode, init_logging, serve};

const USAGE: &str = "usage: keyfleetd --config PATH\n       \
    keyfleetd keys generate --config PATH\n       \
    keyfleetd keys transport-key --config PATH\n       \
    keyfleetd keys export --config PATH --recipient HEX --out FILE [--force]\n       \
    keyfleetd keys import --config PATH --in FILE\n       \
    keyfleetd recover-quorum --config PATH --voters ID[,ID...]\n       \
    keyfleetd certs init-ca|issue-node|issue-operator|fingerprint --config PATH ...\n       \
    keyfleetd join --config PATH --fleet ADDR[,ADDR...] --token-file FILE\n\n\
    With --config alone, runs one keyfleet node. Every configuration key can be overridden with\n\
    an environment variable KEYFLEETD_<KEY>, with __ between table levels\n\
    (KEYFLEETD_RAFT__WRITE_TIMEOUT_MS). The keys commands move the fleet keys between nodes'\n\
    HSM tokens; `keyfleetd keys --help` describes them. The certs commands run the fleet\n\
    certificate authority; `keyfleetd certs --help` describes them. `keyfleetd join` adds a new\n\
    node to a running fleet with a join token, then runs it; `keyfleetd join --help` describes\n\
    it. SIGHUP reloads the TLS certificates and keys.";

fn main() -> ExitCode {
    limit_malloc_arenas();

    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|first| first == "keys") {
        return keyfleetd::keys::main(&args[1..]);
    }
    if args.first().is_some_and(|first| first == "recover-quorum") {
        return keyfleetd::recover_quorum::main(&args[1..]);
    }
    if args.first().is_some_and(|first| first == "certs") {
        return keyfleetd::tls::certs::main(&args[1..]);
    }
    if args.first().is_some_and(|first| first == "join") {
        return keyfleetd::join::main(&args[1..]);
    }

    let path = match config_path(&args) {
        Ok(path) => path,
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match NodeConfig::load(&path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("keyfleetd: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format, NODE_LOG_FILTER);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(config)),
        Err(error) => Err(anyhow::Error::new(error).context("starting the async runtime")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "keyfleetd failed");
            ExitCode::FAILURE
        }
    }
}

/// Malloc arenas glibc may create, unless `MALLOC_ARENA_MAX` is set in the environment.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 2;

/// Caps glibc's malloc arenas at [`MALLOC_ARENAS`].
///
/// glibc gives each thread that meets contention its own arena, up to 8 per core, and rarely
/// returns an arena's free pages to the system. Under load tokio's blocking pool grows to about
/// a hundred threads, and a node measured at 100,000 users held 182 MiB resident with the
/// default arenas and 146 MiB with 2 (`keyfleet bench`, 2 cores).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }

    // SAFETY: `mallopt` only sets an allocator parameter. It runs first in `main`, before this
    // process starts a thread or allocates from another one.
    #[allow(unsafe_code)]
    let accepted = unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
    if accepted == 0 {
        eprintln!("keyfleetd: mallopt(M_ARENA_MAX, {MALLOC_ARENAS}) failed; using glibc's default");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn config_path(args: &[String]) -> Result<PathBuf, String> {
    match args {
        [flag, path] if flag == "--config" => Ok(PathBuf::from(path)),
        [flag] if flag == "--help" || flag == "-h" => Err(String::new()),
        _ => Err("keyfleetd: expected --config PATH".to_owned()),
    }
}

async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let signals = NodeSignals::install()?;
    let node = RunningNode::start(config).await?;

    serve(signals, node).await
}
