use std::path::{Path, PathBuf};
use std::time::Duration;

use keyfleet_token::TenantSigningKey;

use crate::bench_report::{BenchReport, MachineSummary, NodeSummary, SettingsSummary};
use crate::crypto_ceiling::measure_ceiling;
use crate::etcd_anchor::run_etcd_anchor;
use crate::fsync_probe::measure_fsync;
use crate::local_fleet::{LOCAL_FLEET, LOCAL_TENANT, LocalFleet};
use crate::targets::check_targets;
use crate::vault_workload::{FleetSummary, VaultWorkload};
use crate::{BenchConfig, BenchError, FleetTarget, RemoteFleet};

/// Runs of Argon2id at protocol version 1's parameters whose median the report gives.
const KSF_V1_RUNS: u32 = 3;

/// Runs the whole benchmark: the fsync probe, the crypto ceiling, the etcd anchor, then the
/// keyfleet workload. Every process it starts is stopped before it returns.
///
/// # Errors
/// [`BenchError`] when a setting is invalid or a part cannot be set up. Failed operations
/// during the timed phases are counted in the report instead.
pub async fn run(config: &BenchConfig) -> Result<BenchReport, BenchError> {
    config.validate()?;
    let temporary = match &config.work_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("keyfleet-bench-")
                .tempdir()
                .map_err(|error| {
                    BenchError::io(
                        "create a temporary directory in",
                        std::env::temp_dir(),
                        error,
                    )
                })?,
        ),
    };
    let work_dir: PathBuf = match (&config.work_dir, &temporary) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temporary)) => temporary.path().to_owned(),
        (None, None) => unreachable!("a temporary directory exists when no directory is set"),
    };
    std::fs::create_dir_all(&work_dir)
        .map_err(|error| BenchError::io("create", &work_dir, error))?;
    let load_at_start = load_average();

    tracing::info!(dir = %work_dir.display(), "measuring fsync latency");
    let fsync = measure_fsync(&work_dir, config.fsync_rounds)?;

    tracing::info!("measuring the crypto ceiling");
    let (crypto_phase, ksf) = (config.crypto_phase, config.client_ksf);
    let ksf_runs = if config.phase < Duration::from_secs(5) {
        1
    } else {
        KSF_V1_RUNS
    };
    let crypto_ceiling =
        tokio::task::spawn_blocking(move || measure_ceiling(crypto_phase, ksf, ksf_runs))
            .await
            .map_err(|error| BenchError::Protocol {
                step: "crypto ceiling",
                reason: format!("the measuring thread failed: {error}"),
            })??;

    let etcd = if config.etcd {
        tracing::info!("running the etcd anchor");
        let dir = work_dir.join("etcd");
        Some(run_etcd_anchor(&dir, config.concurrency, config.phase).await?)
    } else {
        None
    };

    let (fleet, nodes, fleet_name) = match &config.target {
        FleetTarget::Local { keyfleetd } => {
            let (fleet, nodes) = run_local(config, keyfleetd, &work_dir.join("fleet")).await?;
            (fleet, Some(nodes), "local, 3 nodes on 127.0.0.1".to_owned())
        }
        FleetTarget::Remote(remote) => {
            let fleet = run_remote(config, remote).await?;
            (fleet, None, remote.endpoints.join(","))
        }
    };

    let ksf = config.client_ksf;
    let mut report = BenchReport {
        machine: MachineSummary {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            load_at_start,
            load_at_end: load_average(),
            fsync,
        },
        settings: SettingsSummary {
            concurrency: config.concurrency,
            users: config.users,
            phase_secs: config.phase.as_secs_f64(),
            client_ksf: [ksf.memory_kib, ksf.iterations, ksf.parallelism],
            fleet: fleet_name,
        },
        crypto_ceiling,
        etcd,
        fleet,
        nodes,
        targets: Vec::new(),
    };
    report.targets = check_targets(&report);
    Ok(report)
}

async fn run_local(
    config: &BenchConfig,
    keyfleetd: &Path,
    dir: &Path,
) -> Result<(FleetSummary, NodeSummary), BenchError> {
    tracing::info!(dir = %dir.display(), "starting a local three-node fleet");
    let mut fleet = LocalFleet::launch(keyfleetd, dir).await?;
    let result = measure_local(config, &mut fleet).await;
    fleet.stop();
    result
}

async fn measure_local(
    config: &BenchConfig,
    fleet: &mut LocalFleet,
) -> Result<(FleetSummary, NodeSummary), BenchError> {
    let tenant_key = TenantSigningKey::from_pkcs8_pem(&fleet.tenant_key().to_pkcs8_pem())
        .expect("a key's own PEM encoding parses");
    let workload = VaultWorkload::new(
        fleet.endpoints(),
        tenant_key,
        LOCAL_TENANT,
        LOCAL_FLEET,
        config.client_ksf,
    )?;
    let summary = workload
        .run(config.users, config.concurrency, config.phase)
        .await?;

    let resident_mib = fleet.resident_mib();
    tracing::info!("restarting a follower");
    let (restarted_node, serving_after) = fleet.restart_follower().await?;
    tracing::info!("adding a learner");
    let learner = fleet.add_learner().await?;

    Ok((
        summary,
        NodeSummary {
            resident_mib,
            restarted_node,
            restart_serving_secs: serving_after.as_secs_f64(),
            learner: learner.node,
            learner_catch_up_secs: learner.outcome.as_ref().ok().map(Duration::as_secs_f64),
            learner_by_snapshot: learner.by_snapshot,
            learner_error: learner.outcome.err(),
        },
    ))
}

async fn run_remote(
    config: &BenchConfig,
    remote: &RemoteFleet,
) -> Result<FleetSummary, BenchError> {
    let pem = std::fs::read_to_string(&remote.tenant_key_file)
        .map_err(|error| BenchError::io("read the tenant key", &remote.tenant_key_file, error))?;
    let tenant_key =
        TenantSigningKey::from_pkcs8_pem(&pem).map_err(|error| BenchError::Config {
            setting: "tenant_key_file",
            reason: format!("{}: {error}", remote.tenant_key_file.display()),
        })?;
    let workload = VaultWorkload::new(
        remote.endpoints.clone(),
        tenant_key,
        &remote.tenant,
        &remote.fleet,
        config.client_ksf,
    )?;

    workload
        .run(config.users, config.concurrency, config.phase)
        .await
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}
