//! The workload: concurrent clients, one user each, that register, guess right and wrong,
//! burst concurrent guesses, delete and read state, recording every call in the history.

mod client;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::history::{History, Outcome, Phase};
use crate::nemesis::{Fault, FaultTimeline, Nemesis, NemesisError};
use crate::vault_driver::VaultDriver;
use client::Client;

/// Mints a tenant token for a user id.
pub type TokenSource = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Targets and load of a workload run.
#[derive(Clone)]
pub struct WorkloadConfig {
    /// Vault API endpoint of each node, such as `http://127.0.0.1:7201`.
    pub endpoints: BTreeMap<u64, String>,
    pub tenant: String,
    pub fleet_id: String,
    pub tokens: TokenSource,
    /// Number of concurrent clients, each with a user of its own.
    pub clients: u32,
    /// Prefix of every user id, so that runs against one fleet do not share users.
    pub user_prefix: String,
    /// `max_guesses` of each registration, drawn from this range.
    pub max_guesses: RangeInclusive<u32>,
    /// Concurrent RecoveryStarts in a burst on one user.
    pub burst: u32,
    /// Timeout of each call.
    pub rpc_timeout: Duration,
    pub seed: u64,
    /// The clients stop once this many operations were invoked.
    pub target_ops: usize,
}

impl std::fmt::Debug for WorkloadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadConfig")
            .field("endpoints", &self.endpoints)
            .field("clients", &self.clients)
            .field("seed", &self.seed)
            .field("target_ops", &self.target_ops)
            .finish_non_exhaustive()
    }
}

/// Operation counts by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkloadReport {
    pub ok: usize,
    pub fail: usize,
    pub unknown: usize,
}

impl WorkloadReport {
    /// Counts the completed operations of `history`, and every open one as unknown.
    pub fn from_history(history: &History) -> Self {
        let events = history.events();
        let mut report = Self::default();
        let completed: BTreeSet<u64> = events
            .iter()
            .filter(|event| event.phase == Phase::Complete)
            .map(|event| event.op_id)
            .collect();

        for event in &events {
            match (&event.phase, &event.outcome) {
                (Phase::Complete, Some(Outcome::Ok(_))) => report.ok += 1,
                (Phase::Complete, Some(Outcome::Fail { .. })) => report.fail += 1,
                (Phase::Complete, _) => report.unknown += 1,
                (Phase::Invoke, _) if !completed.contains(&event.op_id) => report.unknown += 1,
                (Phase::Invoke, _) => {}
            }
        }
        report
    }
}

/// The clients of one run and the history they write.
#[derive(Debug, Clone)]
pub struct Workload {
    config: WorkloadConfig,
    history: History,
    stop: Arc<AtomicBool>,
}

impl Workload {
    pub fn new(config: WorkloadConfig, history: History) -> Self {
        Self {
            config,
            history,
            stop: Arc::default(),
        }
    }

    /// Returns the history that the clients write.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Returns the configuration of the run.
    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    /// Returns the flag that stops the clients after their current step.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Runs every client until the stop flag is set or `target_ops` operations were invoked.
    pub async fn run(&self) {
        let mut clients = JoinSet::new();

        for id in 0..self.config.clients {
            let user = format!("{}user-{id}", self.config.user_prefix);
            let mut client = self.client(id, &user, self.first_endpoint(id));
            let stop = self.stop.clone();
            let target = self.config.target_ops;
            let history = self.history.clone();

            clients.spawn(async move {
                while !stop.load(Ordering::SeqCst) && history.op_count() < target {
                    client.step().await;
                }
            });
        }

        while let Some(joined) = clients.join_next().await {
            if let Err(error) = joined {
                tracing::error!(%error, "a workload client panicked");
            }
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Returns true once the clients stopped.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Reads every user's state until the read succeeds or `timeout` passes. The checker needs
    /// these reads: they return the committed state after every fault is healed.
    pub async fn final_reads(&self, timeout: Duration) -> Result<(), String> {
        let users: BTreeSet<(u32, String)> = self
            .history
            .events()
            .into_iter()
            .map(|event| (event.client, event.user))
            .collect();
        let deadline = Instant::now() + timeout;
        let mut reads = JoinSet::new();

        for (id, user) in users {
            let mut client = self.client(id, &user, self.first_endpoint(id));
            reads.spawn(async move {
                while Instant::now() < deadline {
                    if client.read_state().await {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(format!(
                    "the final GetState of user {user} failed until the deadline"
                ))
            });
        }

        let mut failures = Vec::new();
        while let Some(joined) = reads.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(failure)) => failures.push(failure),
                Err(error) => failures.push(format!("a final read panicked: {error}")),
            }
        }

        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Registers a user of its own, starts a recovery with the right password, kills the
    /// leader after the KE2 arrived, finishes the recovery through the remaining nodes, and
    /// restarts the killed node. `index` keeps the users of repeated runs apart.
    pub async fn kill_leader_mid_recovery<N: Nemesis>(
        &self,
        nemesis: &mut N,
        timeline: &FaultTimeline,
        index: u32,
    ) -> Result<(), NemesisError> {
        let fault = Some(Fault::KillLeaderMidRecovery);
        let id = 10_000 + index;
        let user = format!("{}mid-recovery-{index}", self.config.user_prefix);
        let deadline = Instant::now() + Duration::from_secs(60);

        let Some(leader) = wait_for_leader(nemesis, deadline).await else {
            timeline.record(fault, "skipped: no leader within 60 s".to_owned());
            return Ok(());
        };
        let mut client = self.client(id, &user, self.config.endpoints[&leader].clone());

        while !client.is_registered() && Instant::now() < deadline {
            client.register().await;
        }
        let Some(finish) = client.start_right_guess(deadline).await else {
            timeline.record(
                fault,
                "skipped: RecoveryStart failed until the deadline".to_owned(),
            );
            return Ok(());
        };

        let leader = wait_for_leader(nemesis, deadline).await.unwrap_or(leader);
        nemesis.kill(leader).await?;
        timeline.record(
            fault,
            format!("inject: killed leader {leader} after RecoveryStart"),
        );

        let others: Vec<String> = self
            .config
            .endpoints
            .iter()
            .filter(|(node, _)| **node != leader)
            .map(|(_, endpoint)| endpoint.clone())
            .collect();
        client
            .finish_until_settled(&finish, &others, deadline)
            .await;

        nemesis.restart(leader).await?;
        timeline.record(fault, format!("heal: restarted node {leader}"));
        Ok(())
    }

    fn client(&self, id: u32, user: &str, endpoint: String) -> Client {
        let seed = self.config.seed ^ u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Client::new(&self.config, self.history.clone(), id, user, endpoint, seed)
    }

    fn first_endpoint(&self, id: u32) -> String {
        let endpoints: Vec<&String> = self.config.endpoints.values().collect();
        let index = usize::try_from(id).unwrap_or(0) % endpoints.len();
        endpoints[index].clone()
    }
}

async fn wait_for_leader<N: Nemesis>(nemesis: &N, deadline: Instant) -> Option<u64> {
    while Instant::now() < deadline {
        if let Some(leader) = nemesis.leader().await {
            return Some(leader);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Registers the probe user `user` until a registration succeeds, trying each endpoint in
/// turn, and returns how long that took, or `None` when none succeeded within `wait`.
pub async fn time_to_serve(
    config: &WorkloadConfig,
    user: &str,
    wait: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let endpoints: Vec<&String> = config.endpoints.values().collect();
    let mut attempt = 0;

    while started.elapsed() < wait {
        let endpoint = endpoints[attempt % endpoints.len()];
        attempt += 1;
        let driver = VaultDriver::new(
            endpoint,
            (config.tokens)(user),
            &config.tenant,
            user,
            &config.fleet_id,
            config.rpc_timeout,
        )
        .expect("workload endpoints are valid URIs");

        let registered = driver
            .register(
                b"probe password",
                b"probe secret",
                0,
                &fastrand::u128(..).to_le_bytes(),
            )
            .await;
        if registered.is_ok() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
