//! A three-node fleet on 127.0.0.1 that the benchmark starts itself, set up the way
//! `scripts/demo` does: one SoftHSM2 token per node, the fleet keys shared by the key
//! ceremony of `keyfleetd keys`, then `Initialize` with all three nodes as voters.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use keyfleet_client::{FleetClient, RetryPolicy, endpoint_uri};
use keyfleet_raft::{NodeAddresses, NodeId};
use keyfleet_token::TenantSigningKey;
use rand::RngCore;
use rand::rngs::OsRng;
use tokio::time::Instant;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::BenchError;
use crate::node_process::{OwnedChild, free_local_address, resident_mib};
use crate::packages::ensure_installed;

/// Tenant id of the local fleet's tenant key.
pub(crate) const LOCAL_TENANT: &str = "bench";
/// Fleet id of the local fleet.
pub(crate) const LOCAL_FLEET: &str = "bench-fleet";

/// Health service name whose status is the node's readiness to serve the vault API.
const READINESS_SERVICE: &str = "keyfleet.v1.Vault";

/// Time the fleet gets to start, elect a leader and serve the vault API.
const START_WAIT: Duration = Duration::from_secs(120);

/// Places where Debian and other distributions install the SoftHSM2 PKCS#11 module.
const SOFTHSM_MODULES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];

/// Id of the node that [`LocalFleet::add_learner`] adds.
const LEARNER_ID: NodeId = 4;

/// Line that a node logs when it starts to install a snapshot from the leader. The line that
/// ends the install can still sit in the node's log buffer when `AddLearner` returns, and an
/// install that fails leaves `AddLearner` failing, so the start line is the one to match.
const SNAPSHOT_INSTALL_LOG: &str = "installing snapshot";

/// Catch-up of a new node: its id, the time it took and whether a snapshot was installed.
#[derive(Debug, Clone)]
pub(crate) struct LearnerCatchUp {
    /// Id of the new node.
    pub(crate) node: NodeId,
    /// Time from the start of its process until the leader had replicated the entry that added
    /// it, or the error of an `AddLearner` that failed, for example because the node did not
    /// catch up within the node's `raft.learner_catch_up_timeout_ms`.
    pub(crate) outcome: Result<Duration, String>,
    /// Whether it installed a snapshot, rather than receiving only log entries.
    pub(crate) by_snapshot: bool,
}

/// The `keyfleetd` processes and their files: three voters, and a learner once
/// [`LocalFleet::add_learner`] ran. Dropping it kills the processes.
#[derive(Debug)]
pub(crate) struct LocalFleet {
    keyfleetd: PathBuf,
    root: PathBuf,
    module: PathBuf,
    softhsm_conf: PathBuf,
    nodes: BTreeMap<NodeId, LocalNode>,
    tenant_key: TenantSigningKey,
    admin_token: String,
}

#[derive(Debug)]
struct LocalNode {
    dir: PathBuf,
    raft_addr: SocketAddr,
    api_addr: SocketAddr,
    process: Option<OwnedChild>,
}

impl LocalFleet {
    /// Creates the tokens, configurations and fleet keys under `dir`, starts the three nodes,
    /// initializes the cluster, and waits until every node is ready.
    pub(crate) async fn launch(keyfleetd: &Path, dir: &Path) -> Result<Self, BenchError> {
        ensure_installed("softhsm2-util", "softhsm2")?;
        let module = softhsm_module()?;
        create_dir(dir)?;

        let softhsm_conf = dir.join("softhsm2.conf");
        let token_dir = dir.join("tokens");
        create_dir(&token_dir)?;
        write_private(
            &softhsm_conf,
            &format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                token_dir.display()
            ),
        )?;

        let admin_token = random_hex(32);
        let admin_token_file = dir.join("admin-token");
        write_private(&admin_token_file, &admin_token)?;
        let tenant_key = TenantSigningKey::generate();

        let mut fleet = Self {
            keyfleetd: keyfleetd.to_owned(),
            root: dir.to_owned(),
            module: module.clone(),
            softhsm_conf,
            nodes: BTreeMap::new(),
            tenant_key,
            admin_token,
        };
        for id in 1..=3 {
            let node = fleet.prepare_node(id, dir, &module, &admin_token_file)?;
            fleet.nodes.insert(id, node);
        }
        fleet.run_keys(1, &["generate"])?;
        for id in [2, 3] {
            fleet.share_fleet_keys(id)?;
        }

        for id in 1..=3 {
            fleet.spawn(id)?;
        }
        fleet.initialize().await?;
        for id in 1..=3 {
            fleet.wait_serving(id, START_WAIT).await?;
        }

        Ok(fleet)
    }

    /// Returns the vault API endpoints of the three nodes.
    pub(crate) fn endpoints(&self) -> Vec<String> {
        self.nodes
            .values()
            .map(|node| endpoint_uri(&node.api_addr.to_string()))
            .collect()
    }

    /// Returns the tenant key that every node trusts.
    pub(crate) fn tenant_key(&self) -> &TenantSigningKey {
        &self.tenant_key
    }

    /// Returns each running node's resident set size in MiB.
    pub(crate) fn resident_mib(&self) -> BTreeMap<NodeId, f64> {
        self.nodes
            .iter()
            .filter_map(|(id, node)| {
                let pid = node.process.as_ref()?.pid()?;
                Some((*id, resident_mib(pid)?))
            })
            .collect()
    }

    /// Kills a follower with SIGKILL, starts it again on its data, and returns the node id and
    /// the time from the start of the process until its readiness is SERVING.
    pub(crate) async fn restart_follower(&mut self) -> Result<(NodeId, Duration), BenchError> {
        let leader = self.leader_id().await?;
        let follower = self
            .nodes
            .keys()
            .copied()
            .find(|id| *id != leader)
            .expect("a three-node fleet has a follower");

        if let Some(mut process) = self.node_mut(follower).process.take() {
            process.kill();
        }
        let started = std::time::Instant::now();
        self.spawn(follower)?;
        self.wait_serving(follower, START_WAIT).await?;

        Ok((follower, started.elapsed()))
    }

    /// Sets up a fourth node with its own token and the fleet keys, starts it, adds it as a
    /// learner, and returns how long it took from the start of its process until the leader had
    /// replicated the entry that added it. A failed `AddLearner` is part of the result. Only a
    /// failed setup is an error.
    pub(crate) async fn add_learner(&mut self) -> Result<LearnerCatchUp, BenchError> {
        let admin_token_file = self.root.join("admin-token");
        let node = self.prepare_node(LEARNER_ID, &self.root, &self.module, &admin_token_file)?;
        let addresses = NodeAddresses::new(node.raft_addr.to_string(), node.api_addr.to_string());
        let voters = self.endpoints();
        self.nodes.insert(LEARNER_ID, node);
        self.share_fleet_keys(LEARNER_ID)?;

        let started = std::time::Instant::now();
        self.spawn(LEARNER_ID)?;
        let added = self
            .admin_client(voters)?
            .add_learner(LEARNER_ID, &addresses)
            .await;
        let elapsed = started.elapsed();
        let outcome = match added {
            Ok(_) => Ok(elapsed),
            Err(error) => {
                tracing::warn!(node_id = LEARNER_ID, %error, "the new learner did not catch up");
                Err(format!(
                    "AddLearner of node {LEARNER_ID} failed after {:.1} s: {error}",
                    elapsed.as_secs_f64()
                ))
            }
        };

        let log = self.nodes[&LEARNER_ID].dir.join("keyfleetd.log");
        let log_text = std::fs::read_to_string(&log)
            .map_err(|error| BenchError::io("read the node log", &log, error))?;
        Ok(LearnerCatchUp {
            node: LEARNER_ID,
            outcome,
            by_snapshot: log_text.contains(SNAPSHOT_INSTALL_LOG),
        })
    }

    /// Kills every node.
    pub(crate) fn stop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut process) = node.process.take() {
                process.kill();
            }
        }
    }

    fn prepare_node(
        &self,
        id: NodeId,
        root: &Path,
        module: &Path,
        admin_token_file: &Path,
    ) -> Result<LocalNode, BenchError> {
        let dir = root.join(format!("node-{id}"));
        create_dir(&dir.join("data"))?;

        let pin = random_hex(12);
        let pin_file = dir.join("pin");
        write_private(&pin_file, &pin)?;
        let label = format!("keyfleet-bench-{id}");
        let so_pin = random_hex(12);
        let mut init = Command::new("softhsm2-util");
        init.env("SOFTHSM2_CONF", &self.softhsm_conf)
            .args(["--init-token", "--free", "--label", &label])
            .args(["--so-pin", &so_pin, "--pin", &pin]);
        run_to_end(init, "softhsm2-util --init-token")?;

        let node = LocalNode {
            dir,
            raft_addr: free_local_address()?,
            api_addr: free_local_address()?,
            process: None,
        };
        let config = format!(
            "node_id = {id}\n\
             data_dir = {data_dir}\n\
             admin_token_file = {admin_token_file}\n\
             raft_listen = \"{raft}\"\n\
             api_listen = \"{api}\"\n\
             log_format = \"text\"\n\
             \n\
             [raft]\n\
             heartbeat_interval_ms = 100\n\
             election_timeout_min_ms = 500\n\
             election_timeout_max_ms = 1000\n\
             \n\
             [tls]\n\
             insecure_plaintext = true\n\
             \n\
             [vault]\n\
             fleet_id = \"{LOCAL_FLEET}\"\n\
             \n\
             [[vault.tenants]]\n\
             id = \"{LOCAL_TENANT}\"\n\
             public_key = \"{public_key}\"\n\
             \n\
             [hsm]\n\
             module = {module}\n\
             token_label = \"{label}\"\n\
             pin_file = {pin_file}\n",
            data_dir = toml_path(&node.dir.join("data")),
            admin_token_file = toml_path(admin_token_file),
            raft = node.raft_addr,
            api = node.api_addr,
            public_key = self.tenant_key.public_key().to_hex(),
            module = toml_path(module),
            pin_file = toml_path(&pin_file),
        );
        write_private(&node.dir.join("keyfleetd.toml"), &config)?;

        Ok(node)
    }

    /// Exports the fleet keys from node 1's token, wrapped for node `id`'s transport key, and
    /// imports them into node `id`'s token.
    fn share_fleet_keys(&self, id: NodeId) -> Result<(), BenchError> {
        let recipient = self.run_keys(id, &["transport-key"])?;
        let file = self.nodes[&id].dir.join("fleet-keys.json");
        let file = file.to_string_lossy();
        self.run_keys(
            1,
            &["export", "--recipient", recipient.trim(), "--out", &file],
        )?;
        self.run_keys(id, &["import", "--in", &file])?;
        Ok(())
    }

    fn run_keys(&self, id: NodeId, args: &[&str]) -> Result<String, BenchError> {
        let mut command = Command::new(&self.keyfleetd);
        command
            .arg("keys")
            .args(args)
            .arg("--config")
            .arg(self.nodes[&id].dir.join("keyfleetd.toml"))
            .env("SOFTHSM2_CONF", &self.softhsm_conf);
        clear_node_overrides(&mut command);

        run_to_end(command, &format!("keyfleetd keys {}", args[0]))
    }

    fn spawn(&mut self, id: NodeId) -> Result<(), BenchError> {
        let node = &self.nodes[&id];
        let mut command = Command::new(&self.keyfleetd);
        command
            .arg("--config")
            .arg(node.dir.join("keyfleetd.toml"))
            .env("SOFTHSM2_CONF", &self.softhsm_conf);
        clear_node_overrides(&mut command);

        let log = node.dir.join("keyfleetd.log");
        let process = OwnedChild::spawn(format!("keyfleetd node {id}"), command, &log)?;
        self.node_mut(id).process = Some(process);
        Ok(())
    }

    async fn initialize(&self) -> Result<(), BenchError> {
        let members: BTreeMap<NodeId, NodeAddresses> = self
            .nodes
            .iter()
            .map(|(id, node)| {
                let addresses =
                    NodeAddresses::new(node.raft_addr.to_string(), node.api_addr.to_string());
                (*id, addresses)
            })
            .collect();
        let first = endpoint_uri(&self.nodes[&1].api_addr.to_string());
        let client = self.admin_client(vec![first])?;

        client
            .initialize(&members)
            .await
            .map_err(|error| BenchError::Vault {
                reason: format!("Initialize failed: {error}"),
            })
    }

    async fn leader_id(&self) -> Result<NodeId, BenchError> {
        let client = self.admin_client(self.endpoints())?;

        for endpoint in self.endpoints() {
            if let Ok(status) = client.status(&endpoint).await
                && status.leader_id != 0
            {
                return Ok(status.leader_id);
            }
        }
        Err(BenchError::Vault {
            reason: "no node reports a leader".to_owned(),
        })
    }

    fn admin_client(&self, endpoints: Vec<String>) -> Result<FleetClient, BenchError> {
        let policy = RetryPolicy {
            deadline: START_WAIT,
            ..RetryPolicy::default()
        };
        let client = FleetClient::new(endpoints, policy).map_err(|error| BenchError::Vault {
            reason: format!("failed to build the node API client: {error}"),
        })?;

        Ok(client.with_admin_token(self.admin_token.clone()))
    }

    /// Waits until node `id` reports its vault readiness as SERVING, checking that the process
    /// is still running.
    async fn wait_serving(&mut self, id: NodeId, wait: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + wait;
        let endpoint = endpoint_uri(&self.nodes[&id].api_addr.to_string());
        let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
            .map_err(|error| BenchError::Vault {
                reason: format!("invalid endpoint {endpoint}: {error}"),
            })?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .connect_lazy();
        let mut health = HealthClient::new(channel);

        loop {
            if let Some(process) = self.node_mut(id).process.as_mut() {
                process.check_running()?;
            }
            let request = HealthCheckRequest {
                service: READINESS_SERVICE.to_owned(),
            };
            let last = match health.check(request).await {
                Ok(reply) if reply.get_ref().status == ServingStatus::Serving as i32 => {
                    return Ok(());
                }
                Ok(reply) => format!("status {}", reply.get_ref().status),
                Err(status) => status.message().to_owned(),
            };
            if Instant::now() > deadline {
                return Err(BenchError::Timeout {
                    what: format!("readiness of node {id}"),
                    waited: wait,
                    reason: format!(
                        "last health check: {last}; see {}",
                        self.nodes[&id].dir.join("keyfleetd.log").display()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn node_mut(&mut self, id: NodeId) -> &mut LocalNode {
        self.nodes.get_mut(&id).expect("the node was set up")
    }
}

/// Removes `KEYFLEETD_*` variables, so that the configuration file alone sets up the node.
fn clear_node_overrides(command: &mut Command) {
    for (variable, _) in std::env::vars_os() {
        if variable.to_string_lossy().starts_with("KEYFLEETD_") {
            command.env_remove(variable);
        }
    }
}

/// Runs `command` to its end and returns its stdout, or an error with its stderr.
fn run_to_end(mut command: Command, name: &str) -> Result<String, BenchError> {
    let output = command.output().map_err(|error| BenchError::Command {
        program: name.to_owned(),
        reason: error.to_string(),
    })?;
    if !output.status.success() {
        return Err(BenchError::Command {
            program: name.to_owned(),
            reason: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }

    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn softhsm_module() -> Result<PathBuf, BenchError> {
    SOFTHSM_MODULES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .ok_or_else(|| BenchError::Command {
            program: "softhsm2".to_owned(),
            reason: format!("the PKCS#11 module is in none of {SOFTHSM_MODULES:?}"),
        })
}

fn create_dir(path: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(path).map_err(|error| BenchError::io("create", path, error))
}

/// Writes `contents` to a new file that only the owner can read.
fn write_private(path: &Path, contents: &str) -> Result<(), BenchError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| BenchError::io("create", path, error))?;

    file.write_all(contents.as_bytes())
        .map_err(|error| BenchError::io("write", path, error))
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buffer);
    hex::encode(buffer)
}

fn toml_path(path: &Path) -> String {
    format!("{:?}", path.to_string_lossy())
}
