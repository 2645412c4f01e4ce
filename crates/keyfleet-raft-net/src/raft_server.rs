use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use keyfleet_raft::Raft;
use keyfleet_raft::SnapshotDir;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::MAX_MESSAGE_BYTES;
use crate::proto::raft_server::RaftServer as GeneratedRaftServer;
use crate::raft_service::RaftService;
use crate::tls_config_cell::TlsConfigCell;
use crate::tls_incoming::tls_incoming;

/// Default time that [`RaftServer::serve_with_shutdown`] waits for open RPCs after the shutdown
/// signal.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Failure to start or run the Raft gRPC server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("failed to bind the Raft gRPC server to {addr}: {source}. Check that the port is free")]
    Bind {
        /// The requested listen address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },

    /// The bound socket has no local address.
    #[error("failed to read the local address of the Raft gRPC listener: {0}")]
    LocalAddr(#[source] std::io::Error),

    /// The server stopped with a transport error.
    #[error("Raft gRPC server on {addr} failed: {source}")]
    Serve {
        /// The listen address.
        addr: SocketAddr,
        /// tonic's error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// The Raft gRPC server of one node, bound to its listen address and not yet serving.
#[derive(Debug)]
pub struct RaftServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    service: RaftService,
    tls: Option<Arc<TlsConfigCell<ServerConfig>>>,
    shutdown_grace: Duration,
}

/// The tonic server future, whichever kind of connection it accepts.
type ServeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send + 'a>>;

impl RaftServer {
    /// Binds `addr` for the Raft service of `raft`, which receives snapshots into
    /// `snapshots`, the directory of its state machine's snapshot files. Port 0 binds an
    /// ephemeral port, which [`RaftServer::local_addr`] returns.
    pub async fn bind(
        addr: SocketAddr,
        raft: Raft,
        snapshots: SnapshotDir,
    ) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(ServerError::LocalAddr)?;

        Ok(Self {
            listener,
            local_addr,
            service: RaftService::new(raft, snapshots),
            tls: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        })
    }

    /// Binds `addr` for the Raft service of `raft` behind mutual TLS with the configuration
    /// current in `tls`. Each RPC must come from a peer whose certificate names the node that
    /// the request names as its sender.
    pub async fn bind_tls(
        addr: SocketAddr,
        raft: Raft,
        snapshots: SnapshotDir,
        tls: Arc<TlsConfigCell<ServerConfig>>,
    ) -> Result<Self, ServerError> {
        let mut server = Self::bind(addr, raft.clone(), snapshots.clone()).await?;
        server.service = RaftService::with_peer_identity_check(raft, snapshots);
        server.tls = Some(tls);
        Ok(server)
    }

    /// Returns the bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Sets how long the server waits for open RPCs after the shutdown signal.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Serves Raft RPCs until `shutdown` completes, then stops accepting connections and waits
    /// at most the shutdown grace for open RPCs.
    ///
    /// NOTE: after the grace this function returns, but tonic runs each connection in its own
    /// task, so an RPC still open then runs on until it ends or its `grpc-timeout` deadline
    /// passes.
    pub async fn serve_with_shutdown<F>(self, shutdown: F) -> Result<(), ServerError>
    where
        F: Future<Output = ()> + Send,
    {
        let addr = self.local_addr;
        let grace = self.shutdown_grace;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();

        let service = GeneratedRaftServer::new(self.service)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let stop = async {
            // An error means the sender was dropped, which also means stop.
            let _ = stop_rx.await;
        };
        let router = Server::builder().add_service(service);
        let tls = self.tls.is_some();
        // Nagle's algorithm would hold a response's last frames back until the peer's delayed
        // ACK, about 40 ms on Linux, so every accepted socket sets TCP_NODELAY, as
        // `tls_incoming` does for TLS.
        let mut server: ServeFuture<'_> =
            match self.tls {
                Some(config) => Box::pin(router.serve_with_incoming_shutdown(
                    tls_incoming(self.listener, config, "raft"),
                    stop,
                )),
                None => Box::pin(router.serve_with_incoming_shutdown(
                    TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                    stop,
                )),
            };

        tracing::info!(%addr, tls, "Raft gRPC server started");

        tokio::select! {
            result = &mut server => {
                return finish(addr, result);
            }
            () = shutdown => {}
        }

        tracing::info!(%addr, grace_ms = grace.as_millis(), "Raft gRPC server stopping");
        let _ = stop_tx.send(());

        match tokio::time::timeout(grace, server).await {
            Ok(result) => finish(addr, result),
            Err(_elapsed) => {
                tracing::warn!(
                    %addr,
                    grace_ms = grace.as_millis(),
                    "Raft gRPC server stopped before all open RPCs ended"
                );
                Ok(())
            }
        }
    }
}

fn finish(
    addr: SocketAddr,
    result: Result<(), tonic::transport::Error>,
) -> Result<(), ServerError> {
    match result {
        Ok(()) => {
            tracing::info!(%addr, "Raft gRPC server stopped");
            Ok(())
        }
        Err(source) => {
            tracing::error!(%addr, error = %source, "Raft gRPC server failed");
            Err(ServerError::Serve { addr, source })
        }
    }
}

/// Binds `addr` and serves the Raft RPCs of `raft`, which receives snapshots into `snapshots`,
/// until `shutdown` completes; see [`RaftServer::serve_with_shutdown`].
pub async fn serve_raft<F>(
    addr: SocketAddr,
    raft: Raft,
    snapshots: SnapshotDir,
    shutdown: F,
) -> Result<(), ServerError>
where
    F: Future<Output = ()> + Send,
{
    RaftServer::bind(addr, raft, snapshots)
        .await?
        .serve_with_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    use futures_util::StreamExt;
    use futures_util::stream;
    use keyfleet_raft::open_node_storage;

    use super::*;
    use crate::GrpcNetworkFactory;
    use crate::proto::SnapshotChunk;
    use crate::proto::SnapshotHeader;
    use crate::proto::raft_client::RaftClient;
    use crate::proto::snapshot_chunk::Kind;

    async fn single_node(dir: &std::path::Path) -> (Raft, keyfleet_raft::SnapshotDir) {
        let (log_store, state_machine) = open_node_storage(dir).expect("open the redb stores");
        let snapshots = state_machine.snapshot_dir();
        let config = openraft::Config::default()
            .validate()
            .expect("default config is valid");

        let raft = Raft::new(
            1,
            Arc::new(config),
            GrpcNetworkFactory::new(1),
            log_store,
            state_machine,
        )
        .await
        .expect("create the Raft node");
        (raft, snapshots)
    }

    /// Metadata of a snapshot up to log index 1, written in term 1 by node 1.
    fn snapshot_meta() -> keyfleet_raft::SnapshotMeta {
        keyfleet_raft::SnapshotMeta {
            last_log_id: Some(openraft::testing::log_id::<keyfleet_raft::TypeConfig>(
                1, 1, 1,
            )),
            ..keyfleet_raft::SnapshotMeta::default()
        }
    }

    /// Builds a snapshot stream that sends a valid header and then never ends.
    /// Serves `raft` on a free port with a 200 ms shutdown grace, until the returned sender
    /// fires or is dropped.
    async fn serve_until_stopped(
        raft: &Raft,
        snapshots: keyfleet_raft::SnapshotDir,
    ) -> (
        SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), ServerError>>,
    ) {
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let server = RaftServer::bind(listen, raft.clone(), snapshots)
            .await
            .expect("bind the server")
            .with_shutdown_grace(Duration::from_millis(200));
        let addr = server.local_addr();

        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server_task = tokio::spawn(server.serve_with_shutdown(async {
            let _ = stop_rx.await;
        }));
        (addr, stop_tx, server_task)
    }

    fn endless_snapshot_stream() -> impl futures_util::Stream<Item = SnapshotChunk> + Send {
        let header = SnapshotChunk {
            kind: Some(Kind::Header(SnapshotHeader {
                vote: crate::wire::encode(&keyfleet_raft::Vote::new(1, 1), "Vote")
                    .expect("vote encodes"),
                meta: crate::wire::encode(&snapshot_meta(), "SnapshotMeta").expect("meta encodes"),
                total_len: 1 << 20,
            })),
        };

        stream::iter([header]).chain(stream::pending())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_ends_despite_open_stream() {
        let dir = tempfile::tempdir().expect("create a data directory");
        let (raft, snapshots) = single_node(dir.path()).await;
        let (addr, stop_tx, server_task) = serve_until_stopped(&raft, snapshots).await;

        let mut client = RaftClient::connect(format!("http://{addr}"))
            .await
            .expect("connect to the server");
        let open_stream =
            tokio::spawn(async move { client.install_snapshot(endless_snapshot_stream()).await });

        // Give the stream time to reach the server before the shutdown starts.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = stop_tx.send(());

        let result = tokio::time::timeout(Duration::from_secs(30), server_task)
            .await
            .expect("the server stops after its grace period")
            .expect("the server task does not panic");

        assert!(result.is_ok(), "server failed: {result:?}");
        assert!(
            !open_stream.is_finished(),
            "the open stream ended on its own"
        );

        open_stream.abort();
        raft.shutdown().await.expect("shut the Raft node down");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_snapshot_stream_rejected() {
        let dir = tempfile::tempdir().expect("create a data directory");
        let (raft, snapshots) = single_node(dir.path()).await;
        let (addr, stop_tx, server_task) = serve_until_stopped(&raft, snapshots).await;
        let mut first = RaftClient::connect(format!("http://{addr}"))
            .await
            .expect("connect to the server");
        let mut second = first.clone();

        let open_stream =
            tokio::spawn(async move { first.install_snapshot(endless_snapshot_stream()).await });
        // Give the first stream time to reach the server and take the permit.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rejected = second
            .install_snapshot(endless_snapshot_stream())
            .await
            .expect_err("a second snapshot stream was accepted");

        assert_eq!(rejected.code(), tonic::Code::Unavailable, "{rejected:?}");
        assert!(
            rejected.message().contains("receiving another snapshot"),
            "{rejected:?}"
        );
        assert!(!open_stream.is_finished(), "the first stream ended");

        open_stream.abort();
        let _ = stop_tx.send(());
        let _ = server_task.await;
        raft.shutdown().await.expect("shut the Raft node down");
    }
}
