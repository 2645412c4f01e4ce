//! The container backend of the nemesis: a fleet started from `docker-compose.yml`, with every
//! fault injected through the docker CLI on this host.
//!
//! - kill and restart: `docker kill --signal KILL` and `docker start`;
//! - pause and resume: `docker pause` and `docker unpause` (the cgroup freezer);
//! - isolation: `docker network disconnect` from the fleet's network, and `docker network
//!   connect` with the aliases the container had, because connect gives a container only the
//!   aliases it is passed. Disconnecting also closes the node's published API port;
//! - cuts, including one-way cuts: an iptables rule in the receiving container's network
//!   namespace drops every packet from the sender's address. The image has no iptables, so the
//!   host's `iptables` runs inside the namespace through `nsenter`, which needs root. The host's
//!   own rules are not touched. Without root, `nsenter` or `iptables`, cuts fail and
//!   [`ContainerNemesis::supports_cuts`] returns false.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use keyfleet_api::node::StatusRequest;
use keyfleet_api::node::node_client::NodeClient;
use tokio::process::Command;
use tonic::transport::Endpoint;

use crate::nemesis::{Nemesis, NemesisError};

/// A Raft node id.
type NodeId = u64;

/// Timeout of each Status call of [`ContainerNemesis::leader`].
const STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// Tries of `docker pause` before a pause counts as failed, and the wait between them.
const PAUSE_ATTEMPTS: u32 = 5;
const PAUSE_RETRY_DELAY: Duration = Duration::from_millis(200);

/// One node of a compose fleet: its compose service and the API endpoint published on this
/// host.
#[derive(Debug, Clone)]
pub struct ComposeNode {
    pub id: NodeId,
    /// Compose service name, such as `node-1`.
    pub service: String,
    /// Published API endpoint, such as `http://127.0.0.1:7201`.
    pub api_endpoint: String,
}

/// A drop rule installed in a container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DropRule {
    /// The node whose network namespace contains the rule, which receives the dropped packets.
    receiver: NodeId,
    /// The container's process id when the rule was added. A restarted container has a new
    /// namespace without the rule.
    pid: u32,
    /// The sender's address on the fleet's network.
    source: String,
}

/// Faults in the containers of one compose project.
#[derive(Debug)]
pub struct ContainerNemesis {
    network: String,
    nodes: BTreeMap<NodeId, ComposeNode>,
    containers: BTreeMap<NodeId, String>,
    paused: BTreeSet<NodeId>,
    killed: BTreeSet<NodeId>,
    /// Aliases on the fleet's network of each disconnected node, given back on connect.
    disconnected: BTreeMap<NodeId, Vec<String>>,
    rules: BTreeSet<DropRule>,
}

impl ContainerNemesis {
    /// Finds the container of every node in compose project `project`, whose nodes share the
    /// network `<project>_fleet`.
    pub async fn connect(project: &str, nodes: Vec<ComposeNode>) -> Result<Self, NemesisError> {
        let mut containers = BTreeMap::new();
        for node in &nodes {
            let project_label = format!("label=com.docker.compose.project={project}");
            let service_label = format!("label=com.docker.compose.service={}", node.service);
            let found = docker(&[
                "ps",
                "-aq",
                "--filter",
                &project_label,
                "--filter",
                &service_label,
            ])
            .await
            .map_err(|reason| failed("find container", node.id, reason))?;
            let mut ids = found.lines();
            let (Some(container), None) = (ids.next(), ids.next()) else {
                let reason = format!(
                    "expected one container of service {} in compose project {project}, found \
                     {found:?}",
                    node.service
                );
                return Err(failed("find container", node.id, reason));
            };
            containers.insert(node.id, container.to_owned());
        }

        Ok(Self {
            network: format!("{project}_fleet"),
            nodes: nodes.into_iter().map(|node| (node.id, node)).collect(),
            containers,
            paused: BTreeSet::new(),
            killed: BTreeSet::new(),
            disconnected: BTreeMap::new(),
            rules: BTreeSet::new(),
        })
    }

    /// Removes every cut and isolation, resumes every paused node and starts every killed one.
    pub async fn heal_all(&mut self) -> Result<(), NemesisError> {
        self.heal_network().await?;
        for node in self.paused.clone() {
            self.resume(node).await?;
        }
        for node in self.killed.clone() {
            self.restart(node).await?;
        }
        Ok(())
    }

    /// Returns the container id of `node`.
    pub fn container(&self, node: NodeId) -> Option<&str> {
        self.containers.get(&node).map(String::as_str)
    }

    /// Returns true when iptables rules can be added in the containers' network namespaces,
    /// which [`Nemesis::cut`] needs: it lists node 1's INPUT chain through `nsenter`.
    pub async fn supports_cuts(&self) -> bool {
        let Some(node) = self.nodes.keys().next().copied() else {
            return false;
        };
        match self.pid(node, "probe iptables").await {
            Ok(pid) => nsenter_iptables(pid, &["-S", "INPUT"]).await.is_ok(),
            Err(_) => false,
        }
    }

    /// Writes the output of `docker logs` for every node container to `dir/node-<id>.log`.
    pub async fn save_logs(&self, dir: &std::path::Path) -> std::io::Result<()> {
        for (node, container) in &self.containers {
            let output = Command::new("docker")
                .args(["logs", "--timestamps", container])
                .output()
                .await?;
            let mut log = output.stdout;
            log.extend_from_slice(&output.stderr);
            std::fs::write(dir.join(format!("node-{node}.log")), log)?;
        }
        Ok(())
    }

    async fn pid(&self, node: NodeId, action: &'static str) -> Result<u32, NemesisError> {
        let container = self.container_of(node, action)?;
        let text = docker(&["inspect", "--format", "{{.State.Pid}}", container])
            .await
            .map_err(|reason| failed(action, node, reason))?;
        match text.parse::<u32>() {
            Ok(pid) if pid > 0 => Ok(pid),
            _ => Err(failed(
                action,
                node,
                format!("the container is not running (pid {text:?})"),
            )),
        }
    }

    async fn address(&self, node: NodeId, action: &'static str) -> Result<String, NemesisError> {
        let container = self.container_of(node, action)?;
        let format = format!(
            "{{{{with index .NetworkSettings.Networks \"{}\"}}}}{{{{.IPAddress}}}}{{{{end}}}}",
            self.network
        );
        let address = docker(&["inspect", "--format", &format, container])
            .await
            .map_err(|reason| failed(action, node, reason))?;
        if address.is_empty() {
            let reason = format!("the container has no address on network {}", self.network);
            return Err(failed(action, node, reason));
        }
        Ok(address)
    }

    async fn aliases(&self, node: NodeId) -> Result<Vec<String>, NemesisError> {
        let container = self.container_of(node, "isolate")?;
        let format = format!(
            "{{{{with index .NetworkSettings.Networks \"{}\"}}}}{{{{range .Aliases}}}}\
             {{{{println .}}}}{{{{end}}}}{{{{end}}}}",
            self.network
        );
        let text = docker(&["inspect", "--format", &format, container])
            .await
            .map_err(|reason| failed("isolate", node, reason))?;
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// Connects `node` to the fleet's network again with `aliases` and its service name.
    async fn reconnect(&self, node: NodeId, aliases: &[String]) -> Result<(), NemesisError> {
        let container = self.container_of(node, "reconnect")?;
        let service = self.nodes[&node].service.as_str();
        let mut args = vec!["network", "connect", "--alias", service];
        for alias in aliases.iter().map(String::as_str) {
            if alias != service {
                args.extend(["--alias", alias]);
            }
        }
        args.extend([self.network.as_str(), container]);
        docker(&args)
            .await
            .map_err(|reason| failed("reconnect", node, reason))?;
        Ok(())
    }

    async fn remove_rule(&self, rule: &DropRule) -> Result<(), NemesisError> {
        // A restarted container has a fresh namespace, so the rule went with the old one.
        match self.pid(rule.receiver, "heal cut").await {
            Ok(pid) if pid == rule.pid => {}
            _ => return Ok(()),
        }
        let args = ["-D", "INPUT", "-s", rule.source.as_str(), "-j", "DROP"];
        nsenter_iptables(rule.pid, &args)
            .await
            .map_err(|reason| failed("heal cut", rule.receiver, reason))?;
        Ok(())
    }

    fn container_of(&self, node: NodeId, action: &'static str) -> Result<&str, NemesisError> {
        self.container(node)
            .ok_or_else(|| failed(action, node, "not a node of this fleet".to_owned()))
    }

    async fn docker_on(
        &self,
        node: NodeId,
        action: &'static str,
        verb: &str,
    ) -> Result<(), NemesisError> {
        let container = self.container_of(node, action)?;
        docker(&[verb, container])
            .await
            .map(drop)
            .map_err(|reason| failed(action, node, reason))
    }

    async fn status_leader(&self, node: NodeId) -> Option<(NodeId, bool)> {
        let endpoint = Endpoint::from_shared(self.nodes[&node].api_endpoint.clone()).ok()?;
        let channel = endpoint
            .connect_timeout(STATUS_TIMEOUT)
            .timeout(STATUS_TIMEOUT)
            .connect()
            .await
            .ok()?;
        let status = NodeClient::new(channel)
            .status(StatusRequest {})
            .await
            .ok()?
            .into_inner();
        Some((status.leader_id, status.state == "Leader"))
    }
}

impl Nemesis for ContainerNemesis {
    fn nodes(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    async fn leader(&self) -> Option<NodeId> {
        let mut named: BTreeMap<NodeId, usize> = BTreeMap::new();
        let mut leading = BTreeSet::new();

        for node in self.nodes.keys() {
            if self.paused.contains(node) || self.killed.contains(node) {
                continue;
            }
            let Some((leader, is_leader)) = self.status_leader(*node).await else {
                continue;
            };
            *named.entry(leader).or_default() += 1;
            if is_leader {
                leading.insert(*node);
            }
        }

        let majority = self.nodes.len() / 2 + 1;
        named
            .into_iter()
            .find(|(leader, votes)| *votes >= majority && leading.contains(leader))
            .map(|(leader, _)| leader)
    }

    async fn kill(&mut self, node: NodeId) -> Result<(), NemesisError> {
        let container = self.container_of(node, "kill")?.to_owned();
        docker(&["kill", "--signal", "KILL", &container])
            .await
            .map_err(|reason| failed("kill", node, reason))?;
        self.paused.remove(&node);
        self.killed.insert(node);
        Ok(())
    }

    async fn restart(&mut self, node: NodeId) -> Result<(), NemesisError> {
        self.docker_on(node, "restart", "start").await?;
        self.killed.remove(&node);
        Ok(())
    }

    async fn pause(&mut self, node: NodeId) -> Result<(), NemesisError> {
        // The cgroup freezer gives up when a task stays in uninterruptible sleep, as one in
        // fsync can, and runc then thaws the container again. The container keeps running, so
        // another try is safe.
        let mut attempt = 1;
        loop {
            match self.docker_on(node, "pause", "pause").await {
                Ok(()) => break,
                Err(error) if attempt < PAUSE_ATTEMPTS => {
                    tracing::warn!(node, attempt, %error, "docker pause failed; trying again");
                    attempt += 1;
                    tokio::time::sleep(PAUSE_RETRY_DELAY).await;
                }
                Err(error) => return Err(error),
            }
        }

        self.paused.insert(node);
        Ok(())
    }

    async fn resume(&mut self, node: NodeId) -> Result<(), NemesisError> {
        self.docker_on(node, "resume", "unpause").await?;
        self.paused.remove(&node);
        Ok(())
    }

    async fn cut(&mut self, from: NodeId, to: NodeId) -> Result<(), NemesisError> {
        let source = self.address(from, "cut").await?;
        let pid = self.pid(to, "cut").await?;
        let rule = DropRule {
            receiver: to,
            pid,
            source,
        };
        if self.rules.contains(&rule) {
            return Ok(());
        }
        let args = ["-I", "INPUT", "-s", rule.source.as_str(), "-j", "DROP"];
        nsenter_iptables(pid, &args)
            .await
            .map_err(|reason| failed("cut", to, reason))?;
        self.rules.insert(rule);
        Ok(())
    }

    async fn isolate(&mut self, node: NodeId) -> Result<(), NemesisError> {
        if self.disconnected.contains_key(&node) {
            return Ok(());
        }
        let aliases = self.aliases(node).await?;
        let container = self.container_of(node, "isolate")?.to_owned();
        docker(&["network", "disconnect", &self.network, &container])
            .await
            .map_err(|reason| failed("isolate", node, reason))?;
        self.disconnected.insert(node, aliases);
        Ok(())
    }

    async fn heal_network(&mut self) -> Result<(), NemesisError> {
        for rule in std::mem::take(&mut self.rules) {
            self.remove_rule(&rule).await?;
        }
        for (node, aliases) in std::mem::take(&mut self.disconnected) {
            self.reconnect(node, &aliases).await?;
        }
        Ok(())
    }
}

fn failed(action: &'static str, node: NodeId, reason: String) -> NemesisError {
    NemesisError {
        action,
        node,
        reason,
    }
}

/// Runs `docker` with `args` and returns its trimmed standard output, or a message with its
/// standard error when it fails.
async fn docker(args: &[&str]) -> Result<String, String> {
    run("docker", args).await
}

/// Runs the host's `iptables` with `args` inside the network namespace of process `pid`.
async fn nsenter_iptables(pid: u32, args: &[&str]) -> Result<String, String> {
    let target = pid.to_string();
    let mut full = vec!["--target", target.as_str(), "--net", "iptables", "-w", "5"];
    full.extend_from_slice(args);
    run("nsenter", &full).await
}

async fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|error| format!("failed to run {program}: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "`{program} {}` exited with {}: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
