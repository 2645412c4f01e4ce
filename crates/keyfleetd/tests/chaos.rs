//! The process-level chaos suite: three real `keyfleetd` processes on 127.0.0.1, each with its
//! own SoftHSM2 token, Raft traffic through a cutting proxy, a concurrent workload over the
//! vault API, and every fault kind of `keyfleet_chaos::Fault`. The checker then verifies the
//! recorded history together with the committed state read after the last heal.
//!
//! `KEYFLEET_CHAOS_SEED` replays a seed (the fault order, the fault targets and each client's
//! choices; timing still differs), and `KEYFLEET_CHAOS_OPS_PER_FAULT` sets the number of
//! operations each fault kind must see. A failed run keeps its folder under `target/tmp/chaos-runs/`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use keyfleet_chaos::{
    Fault, FaultSegments, FaultTimeline, History, KindSummary, Nemesis, NemesisError, RaftProxy,
    RunFolder, Verdict, Workload, WorkloadConfig, WorkloadReport, check, count_outcomes,
    seed_from_env, summary_table, time_to_serve,
};
use keyfleet_raft::{NodeAddresses, NodeId};

use common::{FLEET_ID, RaftTiming, TENANT, TestCluster, VaultOptions};

/// Operations each fault kind must see in the bounded run, unless
/// `KEYFLEET_CHAOS_OPS_PER_FAULT` sets another.
const DEFAULT_OPS_PER_FAULT: usize = 300;

/// Time each fault is held before it is healed.
const FAULT_HOLD: Duration = Duration::from_secs(4);

/// Upper bound of the wait for the fleet to serve after the last heal, and of the final reads.
const RECOVERY_WAIT: Duration = Duration::from_secs(60);

/// The process backend of the nemesis: SIGKILL and restart through the test harness,
/// SIGSTOP and SIGCONT with `kill`, and cuts in the Raft proxy.
struct ProcessNemesis<'a> {
    cluster: &'a mut TestCluster,
    proxy: RaftProxy,
    ids: Vec<NodeId>,
    paused: BTreeSet<NodeId>,
    killed: BTreeSet<NodeId>,
}

impl ProcessNemesis<'_> {
    fn signal(&self, node: NodeId, signal: &str, action: &'static str) -> Result<(), NemesisError> {
        let failed = |reason: String| NemesisError {
            action,
            node,
            reason,
        };
        let pid = self
            .cluster
            .pid(node)
            .ok_or_else(|| failed("the node is not running".to_owned()))?;

        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .map_err(|error| failed(format!("failed to run kill: {error}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(failed(format!("kill {signal} {pid} exited with {status}")))
        }
    }
}

impl Nemesis for ProcessNemesis<'_> {
    fn nodes(&self) -> Vec<NodeId> {
        self.ids.clone()
    }

    async fn leader(&self) -> Option<NodeId> {
        let mut named: BTreeMap<NodeId, usize> = BTreeMap::new();
        let mut leading = BTreeSet::new();

        for id in &self.ids {
            if self.paused.contains(id) || self.killed.contains(id) {
                continue;
            }
            let Ok(status) = self.cluster.status(*id).await else {
                continue;
            };
            *named.entry(status.leader_id).or_default() += 1;
            if status.state == "Leader" {
                leading.insert(*id);
            }
        }

        let majority = self.ids.len() / 2 + 1;
        named
            .into_iter()
            .find(|(leader, votes)| *votes >= majority && leading.contains(leader))
            .map(|(leader, _)| leader)
    }

    async fn kill(&mut self, node: NodeId) -> Result<(), NemesisError> {
        self.cluster.kill(node);
        self.paused.remove(&node);
        self.killed.insert(node);
        self.proxy.set_pid(node, None);
        Ok(())
    }

    async fn restart(&mut self, node: NodeId) -> Result<(), NemesisError> {
        self.cluster.restart(node).await;
        self.killed.remove(&node);
        self.proxy.set_pid(node, self.cluster.pid(node));
        Ok(())
    }

    async fn pause(&mut self, node: NodeId) -> Result<(), NemesisError> {
        self.signal(node, "-STOP", "pause")?;
        self.paused.insert(node);
        Ok(())
    }

    async fn resume(&mut self, node: NodeId) -> Result<(), NemesisError> {
        self.signal(node, "-CONT", "resume")?;
        self.paused.remove(&node);
        Ok(())
    }

    async fn cut(&mut self, from: NodeId, to: NodeId) -> Result<(), NemesisError> {
        self.proxy.cut(from, to);
        Ok(())
    }

    async fn heal_network(&mut self) -> Result<(), NemesisError> {
        self.proxy.heal();
        Ok(())
    }
}

/// Starts three voters whose membership names the proxy's listeners as their Raft addresses.
/// Snapshots every 300 entries with no log kept behind them, so a node that was down catches
/// up through a snapshot install.
async fn launch_proxied_fleet() -> (TestCluster, RaftProxy, Vec<NodeId>) {
    let ids: Vec<NodeId> = vec![1, 2, 3];
    let timing = RaftTiming::with_snapshots_every(300);
    let mut cluster = TestCluster::prepare_with_vault(3, timing, VaultOptions::default());
    cluster.share_fleet_keys();
    for id in &ids {
        cluster.start(*id).await;
    }

    let targets: BTreeMap<NodeId, SocketAddr> = ids
        .iter()
        .map(|id| {
            let raft = cluster.addresses(*id).raft;
            (
                *id,
                raft.parse()
                    .expect("test Raft addresses are socket addresses"),
            )
        })
        .collect();
    let proxy = RaftProxy::start(&targets)
        .await
        .expect("start the Raft proxy");
    for id in &ids {
        proxy.set_pid(*id, cluster.pid(*id));
    }

    let members: BTreeMap<NodeId, NodeAddresses> = ids
        .iter()
        .map(|id| {
            let api = cluster.addresses(*id).api;
            (
                *id,
                NodeAddresses::new(proxy.listen_addr(*id).to_string(), api),
            )
        })
        .collect();
    if let Err(error) = cluster.client_for(&[1]).initialize(&members).await {
        panic!("Initialize failed: {error}\n{}", cluster.log_report());
    }
    cluster.wait_for_leader(&ids).await;
    cluster.wait_for_vault(&ids).await;

    (cluster, proxy, ids)
}

fn workload_config(cluster: &TestCluster, ids: &[NodeId], seed: u64) -> WorkloadConfig {
    let endpoints = ids
        .iter()
        .map(|id| (*id, cluster.api_endpoint(*id)))
        .collect();
    let pem = cluster.tenant_key().to_pkcs8_pem();
    let tenant = keyfleet_token::TenantSigningKey::from_pkcs8_pem(&pem)
        .expect("a PEM the key wrote parses back");
    let tokens = Arc::new(move |user: &str| {
        let issued_at = common::now_unix_secs();
        let claims = keyfleet_token::TokenClaims {
            tenant: TENANT.to_owned(),
            user: user.to_owned(),
            fleet: FLEET_ID.to_owned(),
            issued_at,
            expires_at: issued_at + 3000,
        };
        tenant.mint(&claims).expect("chaos claims are valid")
    });

    WorkloadConfig {
        endpoints,
        tenant: TENANT.to_owned(),
        fleet_id: FLEET_ID.to_owned(),
        tokens,
        clients: 12,
        user_prefix: format!("chaos-{seed}-"),
        max_guesses: 2..=4,
        burst: 3,
        rpc_timeout: Duration::from_secs(3),
        seed,
        target_ops: usize::MAX,
    }
}

/// Everything one run produced.
struct RunResult {
    seed: u64,
    verdict: Verdict,
    report: WorkloadReport,
    summaries: Vec<KindSummary>,
    folder: RunFolder,
    serve_again: Option<Duration>,
}

/// Runs the workload while each of `faults`, in a seeded order, gets a segment of at least
/// `ops_per_fault` operations, then heals, waits for the fleet to serve, reads every user's
/// final state and checks the history.
async fn run_chaos(name: &str, faults: &[Fault], ops_per_fault: usize) -> RunResult {
    let seed = seed_from_env();
    eprintln!("chaos run {name}: seed {seed} (replay with KEYFLEET_CHAOS_SEED={seed})");
    let folder = RunFolder::create(&runs_dir(), name, seed).expect("create the run folder");

    let (mut cluster, proxy, ids) = launch_proxied_fleet().await;
    let history = History::new();
    let timeline = FaultTimeline::new(&history);
    let config = workload_config(&cluster, &ids, seed);
    let workload = Workload::new(config.clone(), history.clone());

    let mut order = faults.to_vec();
    fastrand::Rng::with_seed(seed).shuffle(&mut order);

    let clients = workload.clone();
    let running = tokio::spawn(async move { clients.run().await });

    let mut nemesis = ProcessNemesis {
        cluster: &mut cluster,
        proxy: proxy.clone(),
        ids: ids.clone(),
        paused: BTreeSet::new(),
        killed: BTreeSet::new(),
    };
    let mut segments = FaultSegments::new(
        &mut nemesis,
        &workload,
        &timeline,
        seed,
        FAULT_HOLD,
        RECOVERY_WAIT,
    );
    let (mut summaries, failure) = segments.run_kinds(&order, ops_per_fault).await;
    if let Some(failure) = failure {
        panic!(
            "seed {seed}: {failure}\nreplay: KEYFLEET_CHAOS_SEED={seed}\n{}",
            cluster.log_report()
        );
    }

    let probe = format!("{}probe-final", config.user_prefix);
    let serve_again = time_to_serve(&config, &probe, RECOVERY_WAIT).await;
    timeline.record(
        None,
        format!("served again after the last heal: {serve_again:?}"),
    );
    workload.stop_flag().store(true, Ordering::SeqCst);
    running.await.expect("the workload task panicked");

    let final_reads = workload.final_reads(RECOVERY_WAIT).await;
    let verdict = match final_reads {
        Ok(()) => check(&history),
        Err(failure) => Verdict::Unknown {
            reasons: vec![failure],
        },
    };

    count_outcomes(&mut summaries, &history.events());
    eprint!("{}", summary_table(&summaries));
    let logs: Vec<(u64, PathBuf)> = ids.iter().map(|id| (*id, cluster.log_path(*id))).collect();
    folder
        .save(&history, &timeline, &verdict, &logs)
        .expect("save the run folder");
    let summary_json = serde_json::to_string_pretty(&summaries).expect("summaries serialize");
    std::fs::write(folder.path().join("summary.json"), summary_json).expect("save the summary");
    proxy.shutdown();

    RunResult {
        seed,
        verdict,
        report: WorkloadReport::from_history(&history),
        summaries,
        folder,
        serve_again,
    }
}

fn runs_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos-runs")
}

fn ops_per_fault_from_env() -> usize {
    match std::env::var("KEYFLEET_CHAOS_OPS_PER_FAULT") {
        Ok(text) => text.trim().parse().unwrap_or_else(|error| {
            panic!("KEYFLEET_CHAOS_OPS_PER_FAULT={text:?} is not a count: {error}")
        }),
        Err(_) => DEFAULT_OPS_PER_FAULT,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_all_faults_checker_passes() {
    let ops_per_fault = ops_per_fault_from_env();
    let result = run_chaos("all-faults", &Fault::ALL, ops_per_fault).await;
    let report = result.report;
    eprintln!(
        "seed {}: {} ok, {} failed, {} unknown operations; served again after the last heal \
         in {:?}",
        result.seed, report.ok, report.fail, report.unknown, result.serve_again
    );

    assert!(
        result.serve_again.is_some(),
        "seed {}: the fleet did not serve within {RECOVERY_WAIT:?} of the last heal; evidence in {}",
        result.seed,
        result.folder.path().display()
    );
    for summary in &result.summaries {
        assert!(
            summary.ops >= ops_per_fault,
            "seed {}: {:?} saw {} operations, fewer than {ops_per_fault}",
            result.seed,
            summary.fault,
            summary.ops
        );
    }
    match &result.verdict {
        Verdict::Valid { .. } => {}
        other => panic!(
            "seed {}: the checker did not pass: {other:#?}\nevidence in {}\nreplay: \
             KEYFLEET_CHAOS_SEED={} cargo nextest run -p keyfleetd --test chaos",
            result.seed,
            result.folder.path().display(),
            result.seed
        ),
    }

    result
        .folder
        .remove()
        .expect("remove the folder of a passed run");
}

/// Runs the suite against a fleet built with `broken-count-guess-after-answer`, whose
/// RecoveryStart sends the KE2 before it counts the guess, and checks that the checker reports
/// budget violations.
#[cfg(feature = "broken-count-guess-after-answer")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_broken_build_is_caught() {
    let faults = [
        Fault::IsolateLeader,
        Fault::PauseFollower,
        Fault::MajorityMinoritySplit,
    ];
    let result = run_chaos("broken-build", &faults, 200).await;

    let budget_violations = result
        .verdict
        .violations()
        .iter()
        .filter(|violation| violation.property == keyfleet_chaos::Property::GuessBudget)
        .count();
    assert!(
        budget_violations > 0,
        "seed {}: the checker found no guess budget violation in a build that counts guesses \
         after answering: {:#?}\nevidence in {}",
        result.seed,
        result.verdict,
        result.folder.path().display()
    );

    eprintln!(
        "seed {}: the checker caught {budget_violations} guess budget violations",
        result.seed
    );
    result
        .folder
        .remove()
        .expect("remove the folder of the run");
}
