//! Fault injection: the [`Nemesis`] trait that a cluster backend implements, the fault kinds,
//! and the timeline of what was done when.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::history::History;

/// A Raft node id.
type NodeId = u64;

#[derive(Debug, thiserror::Error)]
#[error("nemesis action {action} on node {node} failed: {reason}")]
pub struct NemesisError {
    pub action: &'static str,
    pub node: NodeId,
    pub reason: String,
}

/// The faults a cluster backend can inject into one node or one directed pair of nodes.
///
/// The process backend runs real `keyfleetd` processes and a [`crate::RaftProxy`]; the
/// container backend, [`crate::ContainerNemesis`], maps the same calls to `docker kill`,
/// `docker pause`, `docker network disconnect` and iptables rules in the containers' network
/// namespaces.
#[allow(async_fn_in_trait)]
pub trait Nemesis {
    /// Returns the ids of every node, running or not.
    fn nodes(&self) -> Vec<NodeId>;

    /// Returns the node that reports itself leader with the agreement of a majority, if any.
    async fn leader(&self) -> Option<NodeId>;

    /// Kills the node's process at once, as SIGKILL does.
    async fn kill(&mut self, node: NodeId) -> Result<(), NemesisError>;

    /// Starts a killed node again on its data directory.
    async fn restart(&mut self, node: NodeId) -> Result<(), NemesisError>;

    /// Freezes the node, as SIGSTOP does.
    async fn pause(&mut self, node: NodeId) -> Result<(), NemesisError>;

    /// Thaws a paused node.
    async fn resume(&mut self, node: NodeId) -> Result<(), NemesisError>;

    /// Drops everything `from` sends to `to` on the Raft port until the next heal.
    async fn cut(&mut self, from: NodeId, to: NodeId) -> Result<(), NemesisError>;

    /// Cuts `node` off from every other node in both directions until the next heal. A
    /// backend may override it to take the node off the network as a whole.
    async fn isolate(&mut self, node: NodeId) -> Result<(), NemesisError> {
        for other in self.nodes().into_iter().filter(|other| *other != node) {
            self.cut(node, other).await?;
            self.cut(other, node).await?;
        }
        Ok(())
    }

    /// Removes every network cut and isolation.
    async fn heal_network(&mut self) -> Result<(), NemesisError>;
}

/// A kind of fault the chaos run injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    KillFollower,
    KillLeader,
    /// Kills the leader and one follower of a three-node fleet, so no quorum is left.
    KillMajority,
    PauseFollower,
    PauseLeader,
    /// Cuts the leader from every other node in both directions.
    IsolateLeader,
    IsolateFollower,
    /// Splits the fleet into a majority and a minority that contains the leader.
    MajorityMinoritySplit,
    /// Drops what the followers send to the leader, while the leader's heartbeats still arrive.
    OneWayCutToLeader,
    /// Drops what the leader sends to one follower, while that follower's messages arrive.
    OneWayCutFromLeader,
    /// Kills the leader between a RecoveryStart and its RecoveryFinish; the workload runs it,
    /// because it needs a recovery in flight.
    KillLeaderMidRecovery,
}

impl Fault {
    /// Every fault kind, in a fixed order.
    pub const ALL: [Fault; 11] = [
        Fault::KillFollower,
        Fault::KillLeader,
        Fault::KillMajority,
        Fault::PauseFollower,
        Fault::PauseLeader,
        Fault::IsolateLeader,
        Fault::IsolateFollower,
        Fault::MajorityMinoritySplit,
        Fault::OneWayCutToLeader,
        Fault::OneWayCutFromLeader,
        Fault::KillLeaderMidRecovery,
    ];
}

/// One line of the fault timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Time on the history's clock, in nanoseconds.
    pub time_ns: u64,
    pub fault: Option<Fault>,
    pub action: String,
}

/// The faults injected and healed, on the history's clock. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct FaultTimeline {
    history: History,
    entries: Arc<Mutex<Vec<TimelineEntry>>>,
}

impl FaultTimeline {
    pub fn new(history: &History) -> Self {
        Self {
            history: history.clone(),
            entries: Arc::default(),
        }
    }

    pub fn record(&self, fault: Option<Fault>, action: String) {
        tracing::info!(?fault, action, "nemesis");
        let entry = TimelineEntry {
            time_ns: self.history.now_ns(),
            fault,
            action,
        };
        self.lock().push(entry);
    }

    pub fn entries(&self) -> Vec<TimelineEntry> {
        self.lock().clone()
    }

    /// Writes the timeline to `path` as JSON lines.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);

        for entry in self.entries() {
            serde_json::to_writer(&mut file, &entry)?;
            file.write_all(b"\n")?;
        }
        file.flush()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TimelineEntry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Injects `fault`, holds it for `hold`, and heals it: restarts killed nodes, resumes paused
/// ones and removes network cuts. `rng` picks the follower when the fault needs one.
///
/// [`Fault::KillLeaderMidRecovery`] needs a recovery in flight, so it is left to
/// [`crate::Workload::kill_leader_mid_recovery`]; here it only kills and restarts the leader.
pub async fn run_fault<N: Nemesis>(
    nemesis: &mut N,
    fault: Fault,
    hold: Duration,
    rng: &mut fastrand::Rng,
    timeline: &FaultTimeline,
) -> Result<(), NemesisError> {
    let nodes = nemesis.nodes();
    let leader = match nemesis.leader().await {
        Some(leader) => leader,
        None => nodes[rng.usize(..nodes.len())],
    };
    let followers: Vec<NodeId> = nodes.iter().copied().filter(|n| *n != leader).collect();
    let follower = followers[rng.usize(..followers.len())];

    let mut killed = Vec::new();
    let mut paused = Vec::new();
    match fault {
        Fault::KillFollower => killed.push(follower),
        Fault::KillLeader | Fault::KillLeaderMidRecovery => killed.push(leader),
        Fault::KillMajority => killed.extend([leader, follower]),
        Fault::PauseFollower => paused.push(follower),
        Fault::PauseLeader => paused.push(leader),
        Fault::IsolateLeader => nemesis.isolate(leader).await?,
        Fault::IsolateFollower => nemesis.isolate(follower).await?,
        Fault::MajorityMinoritySplit => {
            // The minority contains the leader and, in fleets of five or more, some followers;
            // the majority must elect a new leader. In a fleet of three the minority is the
            // leader alone.
            let extra = (nodes.len() - 1) / 2 - 1;
            let mut minority = vec![leader];
            minority.extend(followers.iter().take(extra));
            for inside in &minority {
                for outside in nodes.iter().filter(|node| !minority.contains(node)) {
                    nemesis.cut(*inside, *outside).await?;
                    nemesis.cut(*outside, *inside).await?;
                }
            }
        }
        Fault::OneWayCutToLeader => {
            for other in &followers {
                nemesis.cut(*other, leader).await?;
            }
        }
        Fault::OneWayCutFromLeader => nemesis.cut(leader, follower).await?,
    }

    for node in &killed {
        nemesis.kill(*node).await?;
    }
    for node in &paused {
        nemesis.pause(*node).await?;
    }
    timeline.record(
        Some(fault),
        format!("inject: leader {leader}, killed {killed:?}, paused {paused:?}"),
    );

    tokio::time::sleep(hold).await;

    heal(nemesis, &killed, &paused).await?;
    timeline.record(Some(fault), "heal".to_owned());
    Ok(())
}

/// Restarts `killed`, resumes `paused` and removes every network cut.
pub(crate) async fn heal<N: Nemesis>(
    nemesis: &mut N,
    killed: &[NodeId],
    paused: &[NodeId],
) -> Result<(), NemesisError> {
    nemesis.heal_network().await?;
    for node in paused {
        nemesis.resume(*node).await?;
    }
    for node in killed {
        nemesis.restart(*node).await?;
    }
    Ok(())
}
