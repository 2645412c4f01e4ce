use std::net::Ipv4Addr;
use std::net::SocketAddr;
use std::sync::Arc;

use keyfleet_raft::NodeId;
use keyfleet_raft::Raft;
use keyfleet_raft::StateMachineStore;
use keyfleet_raft::open_node_storage;
use keyfleet_raft_net::GrpcNetworkFactory;
use keyfleet_raft_net::RaftServer;
use keyfleet_raft_net::ServerError;
use openraft::Config;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One Raft node with its redb stores and its Raft gRPC server.
pub struct TestNode {
    id: NodeId,
    addr: SocketAddr,
    data_dir: TempDir,
    running: Option<Running>,
}

/// The parts of a node that exist only while it runs.
struct Running {
    raft: Raft,
    state_machine: StateMachineStore,
    stop_server: oneshot::Sender<()>,
    server_task: JoinHandle<Result<(), ServerError>>,
}

impl TestNode {
    /// Starts node `id` on an ephemeral 127.0.0.1 port with a new data directory.
    pub async fn start(id: NodeId, config: Arc<Config>) -> Self {
        let data_dir = tempfile::tempdir().expect("create the node's data directory");
        let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));

        let (running, addr) = Running::start(id, config, &data_dir, any_port).await;

        Self {
            id,
            addr,
            data_dir,
            running: Some(running),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn raft(&self) -> &Raft {
        &self.running().raft
    }

    pub fn state_machine(&self) -> &StateMachineStore {
        &self.running().state_machine
    }

    fn running(&self) -> &Running {
        self.running
            .as_ref()
            .unwrap_or_else(|| panic!("node {} is stopped", self.id))
    }

    /// Shuts the Raft node down and stops its server, keeping its data directory.
    pub async fn stop(&mut self) {
        let running = self
            .running
            .take()
            .unwrap_or_else(|| panic!("node {} is already stopped", self.id));

        running.stop().await;
    }

    /// Starts the node again from its data directory, on the same address.
    pub async fn restart(&mut self, config: Arc<Config>) {
        assert!(self.running.is_none(), "node {} is still running", self.id);

        let (running, _) = Running::start(self.id, config, &self.data_dir, self.addr).await;
        self.running = Some(running);
    }
}

impl Running {
    async fn start(
        id: NodeId,
        config: Arc<Config>,
        data_dir: &TempDir,
        listen: SocketAddr,
    ) -> (Self, SocketAddr) {
        let (log_store, state_machine) =
            open_node_storage(data_dir.path()).expect("open the node's redb stores");

        let raft = Raft::new(
            id,
            config,
            GrpcNetworkFactory::new(id),
            log_store,
            state_machine.clone(),
        )
        .await
        .expect("create the Raft node");

        let server = RaftServer::bind(listen, raft.clone(), state_machine.snapshot_dir())
            .await
            .expect("bind the Raft gRPC server");
        let addr = server.local_addr();

        let (stop_server, stopped) = oneshot::channel::<()>();
        let server_task = tokio::spawn(server.serve_with_shutdown(async {
            let _ = stopped.await;
        }));

        let running = Self {
            raft,
            state_machine,
            stop_server,
            server_task,
        };

        (running, addr)
    }

    async fn stop(self) {
        self.raft.shutdown().await.expect("shut the Raft node down");

        let _ = self.stop_server.send(());
        self.server_task
            .await
            .expect("the server task does not panic")
            .expect("the server stops cleanly");
    }
}
