use std::fs;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::ExitStatus;
use std::process::Stdio;
use std::time::Duration;

use keyfleet_client::endpoint_uri;
use keyfleet_raft::NodeAddresses;
use keyfleet_raft::NodeId;
use keyfleet_testkit::SoftHsmLab;
use keyfleet_testkit::softhsm_module_path;
use tokio::time::Instant;

use super::free_port::free_local_address;
use super::raft_timing::RaftTiming;

/// The `[tls]` section of a node without TLS: the harness's default.
pub const PLAINTEXT_TLS_TOML: &str = "[tls]\ninsecure_plaintext = true\n";

/// Time a node gets to exit after SIGTERM.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(20);

/// One `keyfleetd` process: its configuration, data directory, SoftHSM2 token and log file,
/// which outlive the process so that it can be restarted on the same data and ports.
///
/// Dropping it kills the process.
#[derive(Debug)]
pub struct NodeProcess {
    id: NodeId,
    dir: PathBuf,
    softhsm_conf: PathBuf,
    pin_file: PathBuf,
    timing: RaftTiming,
    vault_toml: String,
    tls_toml: String,
    admin_token_file: PathBuf,
    raft_addr: SocketAddr,
    api_addr: SocketAddr,
    metrics_addr: SocketAddr,
    child: Option<Child>,
    starts: u32,
}

impl NodeProcess {
    /// Creates the node's token, PIN file, data directory and configuration under `root`. The
    /// process is not started.
    pub fn prepare(
        id: NodeId,
        root: &Path,
        lab: &SoftHsmLab,
        timing: RaftTiming,
        vault_toml: String,
        admin_token_file: &Path,
    ) -> Self {
        let pin = format!("pin-{id}-{:08x}", fastrand::u32(..));
        lab.create_token(&token_label(id), &pin);
        let pin_file = lab.write_secret_file(&format!("node-{id}.pin"), &pin);

        let dir = root.join(format!("node-{id}"));
        fs::create_dir_all(dir.join("data")).expect("create the node's data directory");

        let node = Self {
            id,
            dir,
            softhsm_conf: lab.conf_path().to_owned(),
            pin_file,
            timing,
            vault_toml,
            tls_toml: PLAINTEXT_TLS_TOML.to_owned(),
            admin_token_file: admin_token_file.to_owned(),
            raft_addr: free_local_address(),
            api_addr: free_local_address(),
            metrics_addr: free_local_address(),
            child: None,
            starts: 0,
        };

        node.write_config();
        node
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn addresses(&self) -> NodeAddresses {
        NodeAddresses::new(self.raft_addr.to_string(), self.api_addr.to_string())
    }

    /// Returns the node API URI, such as `http://127.0.0.1:40123`.
    pub fn api_endpoint(&self) -> String {
        endpoint_uri(&self.api_addr.to_string())
    }

    /// Returns the address of the node's Prometheus endpoint (`metrics_listen`).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("keyfleetd.log")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("keyfleetd.toml")
    }

    /// Number of times the process was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// Picks new ports and rewrites the configuration. Only valid before the node's addresses
    /// are in any membership.
    pub fn pick_new_ports(&mut self) {
        assert!(self.child.is_none(), "node {} is running", self.id);

        self.raft_addr = free_local_address();
        self.api_addr = free_local_address();
        self.metrics_addr = free_local_address();
        self.write_config();
    }

    /// Replaces the Raft timing in the configuration, for the next start.
    pub fn set_timing(&mut self, timing: RaftTiming) {
        assert!(self.child.is_none(), "node {} is running", self.id);

        self.timing = timing;
        self.write_config();
    }

    /// Replaces the `[tls]` section of the configuration, for the next start and the next
    /// `keyfleetd keys` or `certs` command.
    pub fn set_tls_toml(&mut self, toml: String) {
        self.tls_toml = toml;
        self.write_config();
    }

    /// Sends `signal` (such as `HUP`) to the running process.
    pub fn send_signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("node is running");
        let pid = child.id().to_string();

        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("run kill");
        assert!(
            sent.success(),
            "kill -{signal} {pid} for node {} failed",
            self.id
        );
    }

    /// Runs `keyfleetd keys ARGS --config <this node's configuration>` to completion, and
    /// returns its output.
    pub fn run_keys_command(&self, args: &[&str]) -> std::process::Output {
        self.run_command("keys", args)
    }

    /// Runs `keyfleetd certs ARGS --config <this node's configuration>` to completion, and
    /// returns its output.
    pub fn run_certs_command(&self, args: &[&str]) -> std::process::Output {
        self.run_command("certs", args)
    }

    fn run_command(&self, group: &str, args: &[&str]) -> std::process::Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyfleetd"));
        command
            .arg(group)
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .env("SOFTHSM2_CONF", &self.softhsm_conf)
            .stdin(Stdio::null());

        command.output().unwrap_or_else(|error| {
            panic!(
                "failed to run keyfleetd {group} for node {}: {error}",
                self.id
            )
        })
    }

    /// Runs `keyfleetd recover-quorum --config <this node's configuration> --voters VOTERS` to
    /// completion, and returns its output.
    pub fn run_recover_quorum(&self, voters: &str) -> std::process::Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyfleetd"));
        command
            .arg("recover-quorum")
            .arg("--config")
            .arg(self.config_path())
            .args(["--voters", voters])
            .env("SOFTHSM2_CONF", &self.softhsm_conf)
            .stdin(Stdio::null());

        command.output().unwrap_or_else(|error| {
            panic!(
                "failed to run keyfleetd recover-quorum for node {}: {error}",
                self.id
            )
        })
    }

    /// Returns the directory of this node's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the node's Raft data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Starts `keyfleetd` with stdout and stderr appended to the log file.
    pub fn spawn(&mut self) {
        self.spawn_with(&[]);
    }

    /// Starts `keyfleetd join --fleet FLEET --token-file TOKEN_FILE`, which joins the node to
    /// a running fleet and then runs it, with output appended to the log file.
    pub fn spawn_join(&mut self, fleet: &str, token_file: &Path) {
        let token_file = token_file.to_str().expect("temporary paths are UTF-8");
        self.spawn_with(&["join", "--fleet", fleet, "--token-file", token_file]);
    }

    /// Starts `keyfleetd ARGS --config <this node's configuration>`.
    fn spawn_with(&mut self, args: &[&str]) {
        assert!(self.child.is_none(), "node {} is already running", self.id);
        self.starts += 1;

        let log = self.open_log_for_start();
        let stdout = log.try_clone().expect("clone the log file handle");

        let mut command = Command::new(env!("CARGO_BIN_EXE_keyfleetd"));
        command
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .env("SOFTHSM2_CONF", &self.softhsm_conf)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log);

        // Configuration comes from the file alone, whatever the test runner's environment has.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("KEYFLEETD_") {
                command.env_remove(name);
            }
        }

        let child = command.spawn().unwrap_or_else(|error| {
            panic!("failed to start keyfleetd for node {}: {error}", self.id)
        });
        self.child = Some(child);
    }

    /// Returns the exit status if the process has exited since it was started.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;

        child
            .try_wait()
            .unwrap_or_else(|error| panic!("failed to poll node {}: {error}", self.id))
    }

    /// Returns the process id while the process runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Forgets a process that has exited on its own, so that it can be started again.
    pub fn reap(&mut self) -> Option<ExitStatus> {
        let status = self.exit_status()?;
        self.child = None;
        Some(status)
    }

    /// Sends SIGKILL, like a power cut for the node's disk writes that are not yet synced.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };

        // An error here means the process has exited already, which is what kill wants.
        let _ = child.kill();
        child
            .wait()
            .unwrap_or_else(|error| panic!("failed to reap node {}: {error}", self.id));
    }

    /// Sends SIGTERM and waits up to [`SHUTDOWN_WAIT`] for a clean exit. Returns the exit
    /// status, or kills the process and panics if it did not exit in time.
    pub async fn terminate(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("node is running");
        let pid = child.id().to_string();

        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill -TERM");
        assert!(
            sent.success(),
            "kill -TERM {pid} for node {} failed",
            self.id
        );

        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.reap() {
                return status;
            }

            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        self.kill();
        panic!(
            "node {} did not exit within {SHUTDOWN_WAIT:?} of SIGTERM; log: {}",
            self.id,
            self.log_path().display()
        );
    }

    /// Returns the last `lines` lines of the log file.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let start = all.len().saturating_sub(lines);

        all[start..].join("\n")
    }

    /// Returns true if the log of the current or last start reports a port already in use.
    pub fn log_reports_port_in_use(&self) -> bool {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let marker = start_marker(self.starts);
        let last_start = text.rsplit(&marker).next().unwrap_or_default();

        last_start.contains("Address already in use") || last_start.contains("AddrInUse")
    }

    fn open_log_for_start(&self) -> File {
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the node's log file");

        writeln!(log, "{}", start_marker(self.starts)).expect("write to the node's log file");
        log
    }

    fn write_config(&self) {
        let data_dir = self.dir.join("data");
        let module = softhsm_module_path();

        let text = format!(
            "node_id = {}\n\
             data_dir = {}\n\
             admin_token_file = {}\n\
             raft_listen = \"{}\"\n\
             api_listen = \"{}\"\n\
             metrics_listen = \"{}\"\n\
             log_format = \"text\"\n\
             \n\
             {}\n\
             {}\n\
             {}\n\
             [hsm]\n\
             module = {}\n\
             token_label = \"{}\"\n\
             pin_file = {}\n",
            self.id,
            toml_string(&data_dir),
            toml_string(&self.admin_token_file),
            self.raft_addr,
            self.api_addr,
            self.metrics_addr,
            self.timing.to_toml(),
            self.vault_toml,
            self.tls_toml,
            toml_string(&module),
            token_label(self.id),
            toml_string(&self.pin_file),
        );

        fs::write(self.config_path(), text).expect("write the node's configuration");
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn token_label(id: NodeId) -> String {
    format!("node-{id}")
}

fn start_marker(start: u32) -> String {
    format!("===== keyfleetd test harness: start {start} =====")
}

pub fn toml_string(path: &Path) -> String {
    let text = path.to_str().expect("temporary paths are UTF-8");

    toml::Value::String(text.to_owned()).to_string()
}
