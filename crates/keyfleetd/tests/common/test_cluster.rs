use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Duration;

use keyfleet_client::ClientError;
use keyfleet_client::ClientTls;
use keyfleet_client::FleetClient;
use keyfleet_client::LeaderRouter;
use keyfleet_client::RetryPolicy;
use keyfleet_client::StatusResponse;
use keyfleet_raft::NodeAddresses;
use keyfleet_raft::NodeId;
use keyfleet_testkit::SoftHsmLab;
use tempfile::TempDir;
use tokio::time::Instant;

use keyfleet_api::vault::GetStateRequest;
use keyfleet_api::vault::vault_client::VaultClient;
use keyfleet_token::TenantSigningKey;
use keyfleet_token::TokenClaims;
use tonic_types::StatusExt;

use super::WAIT;
use super::node_process::NodeProcess;
use super::node_process::toml_string;
use super::raft_timing::RaftTiming;
use super::test_policy;
use super::vault_options::FLEET_ID;
use super::vault_options::TENANT;
use super::vault_options::VaultOptions;

/// Number of times a first start may fail on a port that another process took.
const PORT_CLASH_RETRIES: u32 = 3;

/// Interval between two polls of node status.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Nodes 1 to N, each a real `keyfleetd` process with its own data directory and SoftHSM2
/// token, all under one temporary directory.
///
/// Dropping the cluster kills every process. If the test is panicking, it also prints each
/// node's log path and last lines, and keeps the temporary directory.
#[derive(Debug)]
pub struct TestCluster {
    nodes: BTreeMap<NodeId, NodeProcess>,
    status_client: FleetClient,
    tenant: TenantSigningKey,
    admin_token: String,
    client_tls: Option<ClientTls>,
    root: Option<TempDir>,
    _lab: SoftHsmLab,
}

impl TestCluster {
    /// Creates tokens, data directories and configurations for nodes `1..=count`, and starts
    /// none. SoftHSM lists tokens once when a process loads it, so every token exists before
    /// any node starts.
    pub fn prepare(count: u64, timing: RaftTiming) -> Self {
        Self::prepare_with_vault(count, timing, VaultOptions::default())
    }

    /// Like [`TestCluster::prepare`], with `vault` as every node's `[vault]` settings.
    pub fn prepare_with_vault(count: u64, timing: RaftTiming, vault: VaultOptions) -> Self {
        let root = tempfile::Builder::new()
            .prefix("keyfleetd-test-")
            .tempdir()
            .expect("create the test's temporary directory");
        let lab = SoftHsmLab::new();
        let tenant = TenantSigningKey::generate();
        let vault_toml = vault.to_toml(&tenant);
        let admin_token = format!("admin-{:032x}", fastrand::u128(..));
        let admin_token_file = lab.write_secret_file("admin-token", &admin_token);

        let nodes: BTreeMap<NodeId, NodeProcess> = (1..=count)
            .map(|id| {
                let node = NodeProcess::prepare(
                    id,
                    root.path(),
                    &lab,
                    timing,
                    vault_toml.clone(),
                    &admin_token_file,
                );
                (id, node)
            })
            .collect();

        let status_client = FleetClient::new([nodes[&1].api_endpoint()], status_policy())
            .expect("build the status client");

        Self {
            nodes,
            status_client,
            tenant,
            admin_token,
            client_tls: None,
            root: Some(root),
            _lab: lab,
        }
    }

    /// Prepares `count` nodes with the fleet keys shared among their tokens, starts them all as
    /// voters, waits for a leader and for the vault to serve. Returns the cluster and the
    /// leader's id.
    pub async fn launch_vault(
        count: u64,
        timing: RaftTiming,
        vault: VaultOptions,
    ) -> (Self, NodeId) {
        let mut cluster = Self::prepare_with_vault(count, timing, vault);
        cluster.share_fleet_keys();
        let ids: Vec<NodeId> = (1..=count).collect();

        for id in &ids {
            cluster.start(*id).await;
        }

        cluster.initialize(&ids).await;
        let leader = cluster.wait_for_leader(&ids).await;
        cluster.wait_for_vault(&ids).await;

        (cluster, leader)
    }

    /// Runs the key ceremony with `keyfleetd keys`: generates the fleet keys in node 1's token
    /// and imports them, wrapped, into every other node's token. The nodes must be stopped.
    pub fn share_fleet_keys(&self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        self.share_fleet_keys_among(&ids);
    }

    /// Like [`TestCluster::share_fleet_keys`], for node 1 and the nodes `ids` only. The other
    /// nodes' tokens get no fleet keys.
    pub fn share_fleet_keys_among(&self, ids: &[NodeId]) {
        let first = self.node(1);
        expect_success(
            first,
            &first.run_keys_command(&["generate"]),
            "keys generate",
        );

        let others = ids.iter().filter(|id| **id != 1).map(|id| self.node(*id));
        for node in others {
            let output = node.run_keys_command(&["transport-key"]);
            expect_success(node, &output, "keys transport-key");
            let recipient = String::from_utf8(output.stdout).expect("hex is UTF-8");

            let file = node.dir().join("fleet-keys.json");
            let file = file.to_str().expect("temporary paths are UTF-8");
            let export = ["export", "--recipient", recipient.trim(), "--out", file];
            expect_success(first, &first.run_keys_command(&export), "keys export");
            expect_success(
                node,
                &node.run_keys_command(&["import", "--in", file]),
                "keys import",
            );
        }
    }

    /// Imports the fleet keys of `source`'s node 1 into every node's token of this cluster,
    /// with `keyfleetd keys export` and `import`. The nodes must be stopped.
    pub fn import_fleet_keys_from(&self, source: &TestCluster) {
        let exporter = source.node(1);

        for node in self.nodes.values() {
            let output = node.run_keys_command(&["transport-key"]);
            expect_success(node, &output, "keys transport-key");
            let recipient = String::from_utf8(output.stdout).expect("hex is UTF-8");

            let file = node.dir().join("fleet-keys.json");
            let file = file.to_str().expect("temporary paths are UTF-8");
            let export = ["export", "--recipient", recipient.trim(), "--out", file];
            expect_success(exporter, &exporter.run_keys_command(&export), "keys export");
            expect_success(
                node,
                &node.run_keys_command(&["import", "--in", file]),
                "keys import",
            );
        }
    }

    /// Waits until every node in `ids` serves the vault API: a GetState call gets past the
    /// fleet setup, whatever else it returns.
    pub async fn wait_for_vault(&self, ids: &[NodeId]) {
        let deadline = Instant::now() + WAIT;
        let token = self.token("readiness-probe");

        for id in ids {
            loop {
                let channel = self.api_channel(*id);
                let Err(reason) = vault_ready(channel, &token).await else {
                    break;
                };

                assert!(
                    Instant::now() < deadline,
                    "node {id} did not serve the vault API within {WAIT:?}: {reason}\n{}",
                    self.log_report()
                );
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }

    /// Mints a tenant token for `user` that is valid for five minutes.
    pub fn token(&self, user: &str) -> String {
        self.token_with_lifetime(user, 0, 300)
    }

    /// Mints a tenant token for `user`, issued `age_secs` ago and valid for `lifetime_secs`.
    pub fn token_with_lifetime(&self, user: &str, age_secs: u64, lifetime_secs: u64) -> String {
        let issued_at = now_unix_secs() - age_secs;
        let claims = TokenClaims {
            tenant: TENANT.to_owned(),
            user: user.to_owned(),
            fleet: FLEET_ID.to_owned(),
            issued_at,
            expires_at: issued_at + lifetime_secs,
        };

        self.tenant.mint(&claims).expect("test claims are valid")
    }

    /// Wraps `message` in a node API request with the cluster's admin token.
    pub fn admin_request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let bearer = format!("Bearer {}", self.admin_token)
            .parse()
            .expect("the admin token is ASCII");
        request.metadata_mut().insert("authorization", bearer);
        request
    }

    /// Returns the tenant signing key the cluster trusts.
    pub fn tenant_key(&self) -> &TenantSigningKey {
        &self.tenant
    }

    /// Returns node `id`'s Raft data directory.
    pub fn data_dir(&self, id: NodeId) -> std::path::PathBuf {
        self.node(id).data_dir()
    }

    /// Prepares `count` nodes, starts the first `voters` of them, initializes those as the
    /// cluster, and waits for a leader. Returns the cluster and the leader's id.
    pub async fn launch(count: u64, voters: u64, timing: RaftTiming) -> (Self, NodeId) {
        let mut cluster = Self::prepare(count, timing);
        let voter_ids: Vec<NodeId> = (1..=voters).collect();

        for id in &voter_ids {
            cluster.start(*id).await;
        }

        cluster.initialize(&voter_ids).await;
        let leader = cluster.wait_for_leader(&voter_ids).await;

        (cluster, leader)
    }

    /// Starts node `id` and waits until it serves `Status`. On its first start, a port clash
    /// gets new ports and another try.
    pub async fn start(&mut self, id: NodeId) {
        for _ in 0..PORT_CLASH_RETRIES {
            self.node_mut(id).spawn();

            if self.wait_ready(id).await {
                return;
            }

            let node = self.node_mut(id);
            if node.starts() > 1 || !node.log_reports_port_in_use() {
                break;
            }

            node.pick_new_ports();
        }

        panic!("node {id} did not start\n{}", self.log_report());
    }

    /// Starts node `id` again on its data directory and ports, and waits until it serves
    /// `Status`.
    ///
    /// A restart that finds its port taken by another process is tried again after a pause,
    /// because the node's addresses are in the membership and cannot change.
    pub async fn restart(&mut self, id: NodeId) {
        assert!(!self.node(id).is_running(), "node {id} is still running");

        for _ in 0..PORT_CLASH_RETRIES {
            self.node_mut(id).spawn();

            if self.wait_ready(id).await {
                return;
            }
            if !self.node(id).log_reports_port_in_use() {
                break;
            }

            tokio::time::sleep(Duration::from_secs(1)).await;
        }

        panic!("node {id} did not restart\n{}", self.log_report());
    }

    /// Replaces node `id`'s Raft timing for its next start. The node must be stopped.
    pub fn set_timing(&mut self, id: NodeId, timing: RaftTiming) {
        self.node_mut(id).set_timing(timing);
    }

    /// Runs `keyfleetd recover-quorum --voters VOTERS` on the stopped node `id`.
    pub fn recover_quorum(&self, id: NodeId, voters: &str) -> std::process::Output {
        assert!(!self.node(id).is_running(), "node {id} is still running");
        self.node(id).run_recover_quorum(voters)
    }

    /// Returns node `id`'s process id while it runs.
    pub fn pid(&self, id: NodeId) -> Option<u32> {
        self.node(id).pid()
    }

    /// Returns the path of node `id`'s log file.
    pub fn log_path(&self, id: NodeId) -> std::path::PathBuf {
        self.node(id).log_path()
    }

    /// Kills node `id` with SIGKILL.
    pub fn kill(&mut self, id: NodeId) {
        self.node_mut(id).kill();
    }

    /// Stops node `id` with SIGTERM and checks that it exits with status 0.
    pub async fn terminate(&mut self, id: NodeId) {
        let status = self.node_mut(id).terminate().await;

        assert!(
            status.success(),
            "node {id} exited with {status} after SIGTERM, expected 0\n{}",
            self.log_report()
        );
    }

    /// Initializes the cluster with `voters` through the first of them.
    pub async fn initialize(&self, voters: &[NodeId]) {
        let members: BTreeMap<NodeId, NodeAddresses> = voters
            .iter()
            .map(|id| (*id, self.node(*id).addresses()))
            .collect();

        let client = self.client_for(&voters[..1]);

        if let Err(error) = client.initialize(&members).await {
            panic!(
                "Initialize {voters:?} failed: {error}\n{}",
                self.log_report()
            );
        }
    }

    /// Returns a client over every node's API endpoint, running or not.
    pub fn client(&self) -> FleetClient {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        self.client_for(&ids)
    }

    /// Returns a client over the API endpoints of `ids`, with [`test_policy`].
    pub fn client_for(&self, ids: &[NodeId]) -> FleetClient {
        self.client_with_policy(ids, test_policy())
    }

    pub fn client_with_policy(&self, ids: &[NodeId], policy: RetryPolicy) -> FleetClient {
        let endpoints: Vec<String> = ids.iter().map(|id| self.node(*id).api_endpoint()).collect();

        let client = match &self.client_tls {
            Some(tls) => FleetClient::with_tls(endpoints, policy, tls.clone()),
            None => FleetClient::new(endpoints, policy),
        };
        client
            .expect("build a client over test nodes")
            .with_admin_token(self.admin_token.clone())
    }

    /// Returns a lazily connected channel to node `id`'s API port, over TLS with the
    /// operator certificate once [`TestCluster::enable_tls`] ran.
    pub fn api_channel(&self, id: NodeId) -> tonic::transport::Channel {
        let endpoint = self.api_endpoint(id);
        let router = match &self.client_tls {
            Some(tls) => LeaderRouter::with_tls([endpoint.clone()], test_policy(), tls.clone()),
            None => LeaderRouter::new([endpoint.clone()], test_policy()),
        };
        router
            .expect("build a router over a test node")
            .channel(&endpoint)
            .expect("the test endpoint is valid")
    }

    /// Returns the directory of the cluster's shared files.
    pub fn root(&self) -> &std::path::Path {
        self.root
            .as_ref()
            .expect("the cluster has its directory")
            .path()
    }

    /// Returns the directory of node `id`'s files.
    pub fn node_dir(&self, id: NodeId) -> std::path::PathBuf {
        self.node(id).dir().to_owned()
    }

    /// Replaces node `id`'s `[tls]` section, for its next start and command.
    pub fn set_tls_toml(&mut self, id: NodeId, toml: String) {
        self.node_mut(id).set_tls_toml(toml);
    }

    /// Runs `keyfleetd keys ARGS` with node `id`'s configuration and returns its output.
    pub fn run_keys(&self, id: NodeId, args: &[&str]) -> std::process::Output {
        self.node(id).run_keys_command(args)
    }

    /// Runs `keyfleetd certs ARGS` with node `id`'s configuration and returns its output.
    pub fn run_certs(&self, id: NodeId, args: &[&str]) -> std::process::Output {
        self.node(id).run_certs_command(args)
    }

    /// Sends `signal` (such as `HUP`) to node `id`.
    pub fn send_signal(&self, id: NodeId, signal: &str) {
        self.node(id).send_signal(signal);
    }

    /// Starts node `id` without waiting for it to serve anything.
    pub fn spawn(&mut self, id: NodeId) {
        self.node_mut(id).spawn();
    }

    /// Starts node `id` with `keyfleetd join`, against the API addresses of the nodes `fleet`
    /// and with the join token in `token_file`, without waiting for anything.
    pub fn spawn_join(&mut self, id: NodeId, fleet: &[NodeId], token_file: &std::path::Path) {
        let fleet: Vec<String> = fleet
            .iter()
            .map(|member| self.addresses(*member).api)
            .collect();
        self.node_mut(id).spawn_join(&fleet.join(","), token_file);
    }

    /// Waits up to [`WAIT`] for node `id` to exit on its own, and returns its exit status.
    pub async fn wait_for_exit(&mut self, id: NodeId) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.node_mut(id).reap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} still runs after {WAIT:?}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Returns the whole log of node `id`.
    pub fn log_text(&self, id: NodeId) -> String {
        std::fs::read_to_string(self.node(id).log_path()).unwrap_or_default()
    }

    /// Returns the node API's admin token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Returns the TLS settings of the cluster's clients, once TLS is on.
    pub fn client_tls(&self) -> Option<&ClientTls> {
        self.client_tls.as_ref()
    }

    /// Switches every node and every client of the cluster to TLS, with the fleet CA's files
    /// under the cluster's directory. Node 1's token must hold the fleet keys (see
    /// [`TestCluster::share_fleet_keys`]) and every node must be stopped.
    ///
    /// It runs `keyfleetd certs init-ca` with node 1's configuration, issues each node's
    /// certificate (naming 127.0.0.1) and an operator certificate, and sets the clients to
    /// trust the CA and present the operator certificate.
    pub fn enable_tls(&mut self) {
        self.enable_tls_except(&[]);
    }

    /// Like [`TestCluster::enable_tls`], but issues no certificate for the nodes `without`,
    /// which get theirs by joining. Their `[tls]` sections name the same files.
    pub fn enable_tls_except(&mut self, without: &[NodeId]) {
        let paths = FleetTlsPaths::new(self.root());
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();

        for id in &ids {
            let toml = paths.node_tls_toml(&self.node_dir(*id));
            self.node_mut(*id).set_tls_toml(toml);
        }
        expect_success(
            self.node(1),
            &self.run_certs(1, &["init-ca"]),
            "certs init-ca",
        );

        for id in ids.iter().filter(|id| !without.contains(id)) {
            let dir = self.node_dir(*id);
            let id_text = id.to_string();
            let cert = path_text(&dir.join("node.pem"));
            let key = path_text(&dir.join("node.key"));
            let args = [
                "issue-node",
                "--node-id",
                &id_text,
                "--ip",
                "127.0.0.1",
                "--cert-out",
                &cert,
                "--key-out",
                &key,
            ];
            expect_success(self.node(1), &self.run_certs(1, &args), "certs issue-node");
        }

        let operator_cert = path_text(&paths.operator_cert);
        let operator_key = path_text(&paths.operator_key);
        let args = [
            "issue-operator",
            "--name",
            "test-operator",
            "--cert-out",
            &operator_cert,
            "--key-out",
            &operator_key,
        ];
        expect_success(
            self.node(1),
            &self.run_certs(1, &args),
            "certs issue-operator",
        );

        let tls = ClientTls::from_files(
            &paths.ca_cert,
            Some((&paths.operator_cert, &paths.operator_key)),
        )
        .expect("read the test CA and operator certificate");
        self.status_client =
            FleetClient::with_tls([self.node(1).api_endpoint()], status_policy(), tls.clone())
                .expect("build the status client");
        self.client_tls = Some(tls);
    }

    pub fn addresses(&self, id: NodeId) -> NodeAddresses {
        self.node(id).addresses()
    }

    pub fn api_endpoint(&self, id: NodeId) -> String {
        self.node(id).api_endpoint()
    }

    /// Returns the address of node `id`'s Prometheus endpoint.
    pub fn metrics_addr(&self, id: NodeId) -> std::net::SocketAddr {
        self.node(id).metrics_addr()
    }

    /// Returns node `id`'s status, with one attempt.
    pub async fn status(&self, id: NodeId) -> Result<StatusResponse, ClientError> {
        self.status_client
            .status(&self.node(id).api_endpoint())
            .await
    }

    /// Returns node `id`'s status, or panics with the log report.
    pub async fn expect_status(&self, id: NodeId) -> StatusResponse {
        match self.status(id).await {
            Ok(status) => status,
            Err(error) => panic!("Status of node {id} failed: {error}\n{}", self.log_report()),
        }
    }

    /// Waits until every node in `ids` names the same leader, that leader is in `ids`, and it
    /// reports itself as `Leader`. Returns the leader's id.
    pub async fn wait_for_leader(&self, ids: &[NodeId]) -> NodeId {
        let deadline = Instant::now() + WAIT;
        let mut last_views = String::new();

        while Instant::now() < deadline {
            match self.agreed_leader(ids).await {
                Ok(leader) => return leader,
                Err(views) => last_views = views,
            }

            tokio::time::sleep(POLL_INTERVAL).await;
        }

        panic!(
            "nodes {ids:?} did not agree on a leader within {WAIT:?}; last views:\n{last_views}\n{}",
            self.log_report()
        );
    }

    /// Waits until `condition` holds for node `id`'s status, and returns that status.
    /// `description` names the condition in the failure message.
    pub async fn wait_for_status<F>(
        &self,
        id: NodeId,
        description: &str,
        condition: F,
    ) -> StatusResponse
    where
        F: Fn(&StatusResponse) -> bool,
    {
        let deadline = Instant::now() + WAIT;
        let mut last = String::from("no status yet");

        while Instant::now() < deadline {
            match self.status(id).await {
                Ok(status) if condition(&status) => return status,
                Ok(status) => last = format!("{status:?}"),
                Err(error) => last = error.to_string(),
            }

            tokio::time::sleep(POLL_INTERVAL).await;
        }

        panic!(
            "node {id}: {description} did not happen within {WAIT:?}; last status: {last}\n{}",
            self.log_report()
        );
    }

    /// Waits until node `id` has applied log index `index`.
    pub async fn wait_for_applied(&self, id: NodeId, index: u64) -> StatusResponse {
        let description = format!("applied_index reaching {index}");

        self.wait_for_status(id, &description, |status| status.applied_index >= index)
            .await
    }

    /// Returns each node's log path and its last lines.
    pub fn log_report(&self) -> String {
        let mut report = String::new();

        for node in self.nodes.values() {
            let _ = writeln!(
                report,
                "--- node {} log: {} (last lines below)\n{}",
                node.id(),
                node.log_path().display(),
                node.log_tail(40)
            );
        }

        report
    }

    async fn agreed_leader(&self, ids: &[NodeId]) -> Result<NodeId, String> {
        let mut views = String::new();
        let mut leaders = BTreeSet::new();
        let mut leader_states = BTreeMap::new();

        for id in ids {
            match self.status(*id).await {
                Ok(status) => {
                    let _ = writeln!(
                        views,
                        "node {id}: state {}, term {}, leader {}",
                        status.state, status.current_term, status.leader_id
                    );
                    leaders.insert(status.leader_id);
                    leader_states.insert(*id, status.state);
                }
                Err(error) => {
                    let _ = writeln!(views, "node {id}: {error}");
                    leaders.insert(0);
                }
            }
        }

        let single = leaders.len() == 1;
        let leader = leaders.into_iter().next().unwrap_or(0);
        let leads = leader_states
            .get(&leader)
            .is_some_and(|state| state == "Leader");

        if single && leader != 0 && leads {
            Ok(leader)
        } else {
            Err(views)
        }
    }

    /// Polls `Status` until node `id` responds. Returns false if the process exits first or
    /// [`WAIT`] passes.
    ///
    /// The status must name node `id`: another node that took the same port in a clash responds
    /// too, and counting it would leave the cluster a node short.
    async fn wait_ready(&mut self, id: NodeId) -> bool {
        let deadline = Instant::now() + WAIT;

        while Instant::now() < deadline {
            if self
                .status(id)
                .await
                .is_ok_and(|status| status.node_id == id)
            {
                return true;
            }

            if let Some(status) = self.node_mut(id).reap() {
                eprintln!("node {id} exited with {status} before it served Status");
                return false;
            }

            tokio::time::sleep(POLL_INTERVAL).await;
        }

        false
    }

    fn node(&self, id: NodeId) -> &NodeProcess {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("the cluster has no node {id}"))
    }

    fn node_mut(&mut self, id: NodeId) -> &mut NodeProcess {
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("the cluster has no node {id}"))
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            node.kill();
        }

        if !std::thread::panicking() {
            return;
        }

        eprintln!("test failed; node logs:\n{}", self.log_report());

        if let Some(root) = self.root.take() {
            let kept_dir = root.keep();
            eprintln!("kept the test directory {}", kept_dir.display());
        }
    }
}

fn expect_success(node: &NodeProcess, output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "keyfleetd {what} failed for node {}: {}\nstdout: {}\nstderr: {}",
        node.id(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

pub fn now_unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// Returns `Ok` once the node at `endpoint` responds to GetState with anything but
/// `FLEET_NOT_READY` or a transport error. A follower returns `NOT_LEADER`, which it checks
/// after it has loaded the fleet setup.
async fn vault_ready(channel: tonic::transport::Channel, token: &str) -> Result<(), String> {
    let mut client = VaultClient::new(channel);
    let mut request = tonic::Request::new(GetStateRequest {
        user_id: "readiness-probe".to_owned(),
    });
    let bearer = format!("Bearer {token}").parse().expect("a token is ASCII");
    request.metadata_mut().insert("authorization", bearer);

    let Err(status) = client.get_state(request).await else {
        return Ok(());
    };

    let reason = status.get_details_error_info().map(|info| info.reason);
    match reason.as_deref() {
        Some("FLEET_NOT_READY") | None => Err(format!("{:?}: {}", status.code(), status.message())),
        Some(_) => Ok(()),
    }
}

/// The fleet CA files of a test cluster.
#[derive(Debug, Clone)]
pub struct FleetTlsPaths {
    pub ca_cert: std::path::PathBuf,
    pub ca_key_sealed: std::path::PathBuf,
    pub operator_cert: std::path::PathBuf,
    pub operator_key: std::path::PathBuf,
}

impl FleetTlsPaths {
    /// Names the files of a CA under `root`.
    pub fn new(root: &std::path::Path) -> Self {
        Self {
            ca_cert: root.join("fleet-ca.pem"),
            ca_key_sealed: root.join("fleet-ca.key.sealed"),
            operator_cert: root.join("operator.pem"),
            operator_key: root.join("operator.key"),
        }
    }

    /// Returns a `[tls]` section with this CA and the node files `node.pem` and `node.key` in
    /// `node_dir`.
    pub fn node_tls_toml(&self, node_dir: &std::path::Path) -> String {
        format!(
            "[tls]\nca_cert = {}\nca_key_sealed = {}\ncert = {}\nkey = {}\n",
            toml_string(&self.ca_cert),
            toml_string(&self.ca_key_sealed),
            toml_string(&node_dir.join("node.pem")),
            toml_string(&node_dir.join("node.key")),
        )
    }
}

fn path_text(path: &std::path::Path) -> String {
    path.to_str().expect("temporary paths are UTF-8").to_owned()
}

/// Status calls are single attempts, so only the RPC timeout of this policy matters.
fn status_policy() -> RetryPolicy {
    RetryPolicy {
        rpc_timeout: Duration::from_secs(2),
        ..RetryPolicy::default()
    }
}
