use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use crate::BenchError;
use crate::etcd_proto::StatusRequest;
use crate::etcd_proto::maintenance_client::MaintenanceClient;
use crate::node_process::{OwnedChild, free_local_address};
use crate::packages::ensure_installed;

/// Debian package that provides the `etcd` server.
const ETCD_PACKAGE: &str = "etcd-server";

/// Time the members get to elect a leader after they start.
const START_WAIT: Duration = Duration::from_secs(60);

/// A three-member etcd cluster on 127.0.0.1, all members on the same disk, each with its data
/// directory under one parent directory. Dropping it kills the members.
#[derive(Debug)]
pub(crate) struct EtcdCluster {
    members: Vec<EtcdMember>,
}

#[derive(Debug)]
struct EtcdMember {
    client_url: String,
    process: OwnedChild,
}

impl EtcdCluster {
    /// Installs etcd-server when `etcd` is missing, starts three members under `dir`, and
    /// waits until they have a leader.
    pub(crate) async fn start(dir: &Path) -> Result<Self, BenchError> {
        let etcd = ensure_installed("etcd", ETCD_PACKAGE)?;
        std::fs::create_dir_all(dir).map_err(|error| BenchError::io("create", dir, error))?;
        let mut peers = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..3 {
            peers.push(format!("http://{}", free_local_address()?));
            clients.push(format!("http://{}", free_local_address()?));
        }
        let initial_cluster = peers
            .iter()
            .enumerate()
            .map(|(index, peer)| format!("member-{}={peer}", index + 1))
            .collect::<Vec<_>>()
            .join(",");

        let mut members = Vec::new();
        for (index, (peer, client)) in peers.iter().zip(&clients).enumerate() {
            let name = format!("member-{}", index + 1);
            let data_dir = dir.join(&name);
            let mut command = Command::new(&etcd);
            command
                .args(["--name", &name])
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--listen-peer-urls", peer])
                .args(["--initial-advertise-peer-urls", peer])
                .args(["--listen-client-urls", client])
                .args(["--advertise-client-urls", client])
                .args(["--initial-cluster", &initial_cluster])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "keyfleet-bench"])
                .args(["--logger", "zap", "--log-level", "warn"]);
            // Only the flags above configure the members.
            for (variable, _) in std::env::vars_os() {
                if variable.to_string_lossy().starts_with("ETCD") {
                    command.env_remove(variable);
                }
            }

            let log = dir.join(format!("{name}.log"));
            let process = OwnedChild::spawn(format!("etcd {name}"), command, &log)?;
            members.push(EtcdMember {
                client_url: client.clone(),
                process,
            });
        }

        let cluster = Self { members };
        cluster.wait_for_leader().await?;
        Ok(cluster)
    }

    /// Returns the client URL of the current leader.
    pub(crate) async fn leader_url(&self) -> Result<String, BenchError> {
        for member in &self.members {
            let Ok(status) = member_status(&member.client_url).await else {
                continue;
            };
            let Some(header) = status.header else {
                continue;
            };
            if status.leader != 0 && header.member_id == status.leader {
                return Ok(member.client_url.clone());
            }
        }

        Err(BenchError::Etcd {
            reason: "no member reports itself as the leader".to_owned(),
        })
    }

    /// Kills every member.
    pub(crate) fn stop(&mut self) {
        for member in &mut self.members {
            member.process.kill();
        }
    }

    async fn wait_for_leader(&self) -> Result<(), BenchError> {
        let deadline = Instant::now() + START_WAIT;
        loop {
            let error = match self.leader_url().await {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            if Instant::now() > deadline {
                return Err(BenchError::Timeout {
                    what: "etcd leader election".to_owned(),
                    waited: START_WAIT,
                    reason: format!("{error}; see the member logs"),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Opens a channel to an etcd client URL.
pub(crate) fn etcd_channel(url: &str) -> Result<Channel, BenchError> {
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|error| BenchError::Etcd {
        reason: format!("invalid client URL {url}: {error}"),
    })?;

    Ok(endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .connect_lazy())
}

async fn member_status(url: &str) -> Result<crate::etcd_proto::StatusResponse, BenchError> {
    let mut client = MaintenanceClient::new(etcd_channel(url)?);
    let reply = client
        .status(StatusRequest {})
        .await
        .map_err(|status| BenchError::Etcd {
            reason: format!("Status on {url} failed: {}", status.message()),
        })?;

    Ok(reply.into_inner())
}
