//! The compose-level chaos suite: the workload runs against a three-node fleet started from
//! `docker-compose.yml` while [`ContainerNemesis`] kills, pauses, disconnects and cuts its
//! containers, one fault kind after another. Each kind is injected and healed until the
//! workload invoked `KEYFLEET_CHAOS_OPS_PER_FAULT` operations under it, and the time to serve
//! again is measured after every heal. The checker then verifies the whole history together
//! with the committed state read after the last heal.
//!
//! The test is ignored by default because it needs a running compose fleet: `deploy/compose-chaos`
//! builds the images, starts the fleet under its own project name, runs this test and removes
//! the fleet with its volumes. A failed run keeps its folder (seed, history, fault timeline,
//! verdict, per-kind summary and each container's log) and prints the replay command.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use keyfleet_chaos::{
    ComposeNode, ContainerNemesis, Fault, FaultSegments, FaultTimeline, History, RunFolder,
    Verdict, Workload, WorkloadConfig, check, count_outcomes, seed_from_env, summary_table,
    time_to_serve,
};

/// Time each fault is held before it is healed.
const FAULT_HOLD: Duration = Duration::from_secs(4);

/// Upper bound of the wait for the fleet to serve after a heal, and of the final reads. A
/// killed container restarts its whole entry point, so this is longer than for processes.
const RECOVERY_WAIT: Duration = Duration::from_secs(90);

/// Operations each fault kind must see, unless `KEYFLEET_CHAOS_OPS_PER_FAULT` sets another.
const DEFAULT_OPS_PER_FAULT: usize = 200;

/// Settings that `deploy/compose-chaos` passes through the environment.
struct Settings {
    project: String,
    first_api_port: u16,
    fleet_id: String,
    tenant: String,
    tenant_key: PathBuf,
    ops_per_fault: usize,
    runs_dir: PathBuf,
}

impl Settings {
    fn from_env() -> Self {
        let first_api_port = required("KEYFLEET_COMPOSE_API_PORT");
        Self {
            project: required("KEYFLEET_COMPOSE_PROJECT"),
            first_api_port: first_api_port.parse().unwrap_or_else(|error| {
                panic!("KEYFLEET_COMPOSE_API_PORT={first_api_port:?} is not a port: {error}")
            }),
            fleet_id: required("KEYFLEET_COMPOSE_FLEET_ID"),
            tenant: required("KEYFLEET_COMPOSE_TENANT"),
            tenant_key: required("KEYFLEET_COMPOSE_TENANT_KEY").into(),
            ops_per_fault: match std::env::var("KEYFLEET_CHAOS_OPS_PER_FAULT") {
                Ok(text) => text.trim().parse().unwrap_or_else(|error| {
                    panic!("KEYFLEET_CHAOS_OPS_PER_FAULT={text:?} is not a count: {error}")
                }),
                Err(_) => DEFAULT_OPS_PER_FAULT,
            },
            runs_dir: std::env::var_os("KEYFLEET_CHAOS_RUNS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos-runs")),
        }
    }

    fn nodes(&self) -> Vec<ComposeNode> {
        (1..=3)
            .map(|id: u16| ComposeNode {
                id: u64::from(id),
                service: format!("node-{id}"),
                api_endpoint: format!("http://127.0.0.1:{}", self.first_api_port + id - 1),
            })
            .collect()
    }
}

fn required(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run this test through deploy/compose-chaos"))
}

fn workload_config(settings: &Settings, seed: u64) -> WorkloadConfig {
    let pem = zeroize::Zeroizing::new(
        std::fs::read_to_string(&settings.tenant_key).unwrap_or_else(|error| {
            panic!(
                "failed to read the tenant key {}: {error}",
                settings.tenant_key.display()
            )
        }),
    );
    let key = keyfleet_token::TenantSigningKey::from_pkcs8_pem(&pem)
        .expect("the tenant key file is a PKCS#8 PEM Ed25519 key");
    let tenant = settings.tenant.clone();
    let fleet = settings.fleet_id.clone();
    let tokens = Arc::new(move |user: &str| {
        let issued_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs();
        let claims = keyfleet_token::TokenClaims {
            tenant: tenant.clone(),
            user: user.to_owned(),
            fleet: fleet.clone(),
            issued_at,
            expires_at: issued_at + 3000,
        };
        key.mint(&claims).expect("chaos claims are valid")
    });

    WorkloadConfig {
        endpoints: settings
            .nodes()
            .into_iter()
            .map(|node| (node.id, node.api_endpoint))
            .collect(),
        tenant: settings.tenant.clone(),
        fleet_id: settings.fleet_id.clone(),
        tokens,
        clients: 12,
        user_prefix: format!("compose-chaos-{seed}-"),
        max_guesses: 2..=4,
        burst: 3,
        rpc_timeout: Duration::from_secs(3),
        seed,
        target_ops: usize::MAX,
    }
}

/// Returns true for the fault kinds that need [`ContainerNemesis`]'s iptables cuts.
fn needs_cuts(fault: Fault) -> bool {
    matches!(
        fault,
        Fault::MajorityMinoritySplit | Fault::OneWayCutToLeader | Fault::OneWayCutFromLeader
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a running compose fleet: run deploy/compose-chaos"]
async fn compose_chaos_checker_passes() {
    let settings = Settings::from_env();
    let seed = seed_from_env();
    eprintln!(
        "compose chaos run: seed {seed} (replay with KEYFLEET_CHAOS_SEED={seed} \
         deploy/compose-chaos --no-build)"
    );
    let folder =
        RunFolder::create(&settings.runs_dir, "compose", seed).expect("create the run folder");

    let mut nemesis = ContainerNemesis::connect(&settings.project, settings.nodes())
        .await
        .expect("find the fleet's containers");
    let cuts = nemesis.supports_cuts().await;
    let mut faults: Vec<Fault> = Fault::ALL
        .into_iter()
        .filter(|fault| cuts || !needs_cuts(*fault))
        .collect();
    if !cuts {
        eprintln!(
            "compose chaos run: the majority/minority split and the one-way cuts are skipped: \
             they need root, nsenter and iptables on this host to add rules inside the \
             containers' network namespaces"
        );
    }

    let history = History::new();
    let timeline = FaultTimeline::new(&history);
    let config = workload_config(&settings, seed);
    let workload = Workload::new(config.clone(), history.clone());
    let clients = workload.clone();
    let running = tokio::spawn(async move { clients.run().await });

    fastrand::Rng::with_seed(seed).shuffle(&mut faults);
    let mut segments = FaultSegments::new(
        &mut nemesis,
        &workload,
        &timeline,
        seed,
        FAULT_HOLD,
        RECOVERY_WAIT,
    );
    let (mut summaries, failure) = segments.run_kinds(&faults, settings.ops_per_fault).await;
    let mut failures: Vec<String> = failure.into_iter().collect();

    if let Err(error) = nemesis.heal_all().await {
        failures.push(format!("healing every fault failed: {error}"));
    }
    let probe = format!("{}probe-final", config.user_prefix);
    let serve_again = time_to_serve(&config, &probe, RECOVERY_WAIT).await;
    timeline.record(
        None,
        format!("served again after the last heal: {serve_again:?}"),
    );
    workload.stop_flag().store(true, Ordering::SeqCst);
    running.await.expect("the workload task panicked");

    let verdict = match workload.final_reads(RECOVERY_WAIT).await {
        Ok(()) => check(&history),
        Err(failure) => Verdict::Unknown {
            reasons: vec![failure],
        },
    };

    count_outcomes(&mut summaries, &history.events());
    eprint!("{}", summary_table(&summaries));
    nemesis
        .save_logs(folder.path())
        .await
        .expect("save the containers' logs");
    folder
        .save(&history, &timeline, &verdict, &[])
        .expect("save the run folder");
    let summary_json = serde_json::to_string_pretty(&summaries).expect("summaries serialize");
    std::fs::write(folder.path().join("summary.json"), summary_json).expect("save the summary");

    let evidence = folder.path().display();
    let replay = format!("KEYFLEET_CHAOS_SEED={seed} deploy/compose-chaos --no-build");
    eprintln!(
        "seed {seed}: {} operations; served again after the last heal in {serve_again:?}",
        history.op_count()
    );
    assert!(
        failures.is_empty(),
        "seed {seed}: {}\nevidence in {evidence}\nreplay: {replay}",
        failures.join("; ")
    );
    assert!(
        serve_again.is_some(),
        "seed {seed}: the fleet did not serve within {RECOVERY_WAIT:?} of the last heal; \
         evidence in {evidence}\nreplay: {replay}"
    );
    for summary in &summaries {
        assert!(
            summary.ops >= settings.ops_per_fault,
            "seed {seed}: {:?} saw {} operations, fewer than {}",
            summary.fault,
            summary.ops,
            settings.ops_per_fault
        );
    }
    match &verdict {
        Verdict::Valid { .. } => {}
        other => panic!(
            "seed {seed}: the checker did not pass: {other:#?}\nevidence in {evidence}\n\
             replay: {replay}"
        ),
    }
    folder.remove().expect("remove the folder of a passed run");
}
