//! A running keyfleet node: HSM, Raft storage, the Raft service and the node API.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use keyfleet_api::node::node_server::NodeServer;
use keyfleet_api::vault::vault_server::VaultServer;
use keyfleet_hsm::{Exportability, Hsm, KeyKind, KeySpec, Pkcs11Hsm};
use keyfleet_raft::{Raft, open_node_storage};
use keyfleet_raft_net::{
    GrpcNetworkFactory, MAX_MESSAGE_BYTES, RaftServer, ServerError, TlsConfigCell, tls_incoming,
};
use keyfleet_vault::VaultConfig;
use rustls::ServerConfig;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::NodeConfig;
use crate::admin_token::AdminToken;
use crate::bundle_publisher::BundlePublisher;
use crate::health::HealthMonitor;
use crate::join::{CaFiles, JoinIssuer};
use crate::metrics::MetricsExporter;
use crate::replica::Replica;
use crate::service::NodeService;
use crate::tls::{NodeTls, TlsMode};
use crate::vault::{FleetCore, GuessLimits, MAX_VAULT_REQUEST_BYTES, VaultService};

/// Maximum wait for in-flight node API calls to finish at shutdown.
const API_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A started node. Dropping it without [`RunningNode::shutdown`] aborts its servers.
#[derive(Debug)]
pub struct RunningNode {
    node_id: u64,
    raft: Raft,
    hsm: Arc<Pkcs11Hsm>,
    background: Vec<JoinHandle<()>>,
    health: tonic_health::server::HealthReporter,
    health_monitor: JoinHandle<()>,
    metrics: Option<MetricsExporter>,
    stop_api: oneshot::Sender<()>,
    api_task: JoinHandle<Result<(), tonic::transport::Error>>,
    stop_raft: oneshot::Sender<()>,
    raft_task: JoinHandle<Result<(), ServerError>>,
    watcher: JoinHandle<String>,
    tls: Option<Arc<NodeTls>>,
}

impl RunningNode {
    /// Opens the HSM and the stores, starts Raft, both gRPC servers, the health monitor and the
    /// metrics endpoint.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Self> {
        let node_id = config.node_id;
        tracing::info!(node_id, data_dir = %config.data_dir.display(), "starting keyfleet node");

        let admin_token_file = config.admin_token_file.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "admin_token_file is not set: a node needs a file whose first line is the node \
                 API's admin token, at least 32 random characters"
            )
        })?;
        let admin_token =
            AdminToken::read(admin_token_file).map_err(|message| anyhow::anyhow!(message))?;
        let tls = load_tls(&config)?;
        let hsm = Arc::new(open_hsm(&config).await?);
        let verifier = config
            .token_verifier()
            .map_err(|message| anyhow::anyhow!("invalid [vault] configuration: {message}"))?;
        let (log_store, state_machine) = open_node_storage(&config.data_dir)
            .with_context(|| format!("opening the stores in {}", config.data_dir.display()))?;
        let raft_config = config.openraft_config().context("invalid Raft timings")?;
        let network = match &tls {
            Some(tls) => GrpcNetworkFactory::with_tls(node_id, tls.raft_client()),
            None => GrpcNetworkFactory::new(node_id),
        };
        let raft = Raft::new(
            node_id,
            raft_config,
            network,
            log_store,
            state_machine.clone(),
        )
        .await
        .context("starting Raft")?;

        let snapshots = state_machine.snapshot_dir();
        let raft_server = match &tls {
            Some(tls) => {
                let tls = tls.raft_server();
                RaftServer::bind_tls(config.raft_listen, raft.clone(), snapshots, tls).await
            }
            None => RaftServer::bind(config.raft_listen, raft.clone(), snapshots).await,
        }
        .with_context(|| format!("binding the Raft service to {}", config.raft_listen))?;
        let (stop_raft, raft_stopped) = oneshot::channel::<()>();
        let raft_task = tokio::spawn(raft_server.serve_with_shutdown(signal(raft_stopped)));

        let replica = Replica {
            node_id,
            raft: raft.clone(),
            state_machine,
            write_timeout: Duration::from_millis(config.raft.write_timeout_ms),
        };
        let catch_up_timeout = Duration::from_millis(config.raft.learner_catch_up_timeout_ms);
        let (health_sender, health_receiver) =
            tokio::sync::watch::channel(crate::node_health::NodeHealth::default());
        let join_issuer = Arc::new(join_issuer(&config, hsm.clone(), tls.is_some()));
        let core = Arc::new(FleetCore::new(
            replica.clone(),
            hsm.clone(),
            vault_config(&config),
        ));
        let publisher = Arc::new(BundlePublisher::new(
            replica.clone(),
            core.clone(),
            hsm.clone(),
            config.hsm.keys.signing.clone(),
        ));
        let node_service = NodeService::new(
            replica.clone(),
            catch_up_timeout,
            admin_token,
            health_receiver,
            tls.is_some(),
            join_issuer,
            publisher,
        );
        let limits = GuessLimits {
            default_max_guesses: config.vault.default_max_guesses,
            max_guesses_ceiling: config.vault.max_guesses_ceiling,
        };
        let vault_service = VaultService::new(replica.clone(), core.clone(), verifier, limits);

        let metrics = match config.metrics_listen {
            Some(listen) => Some(MetricsExporter::start(node_id, listen, raft.clone())?),
            None => None,
        };

        let (health, health_server) = tonic_health::server::health_reporter();
        HealthMonitor::mark_not_ready(&health).await;
        let (stop_api, api_stopped) = oneshot::channel::<()>();
        let api_task = serve_api(
            config.api_listen,
            tls.as_ref().map(|tls| tls.api_server()),
            ApiServices {
                node: node_service,
                vault: vault_service,
                health: health_server,
                reflection: config.grpc_reflection,
            },
            signal(api_stopped),
        )
        .await?;
        let health_monitor = tokio::spawn(
            HealthMonitor::new(
                node_id,
                raft.clone(),
                core.clone(),
                hsm.clone(),
                health.clone(),
                Duration::from_millis(config.raft.election_timeout_max_ms),
                health_sender,
            )
            .run(),
        );

        let background = vec![
            tokio::spawn(core.initialize_when_leader()),
            tokio::spawn(crate::compactor::compact_after_erasures(
                node_id,
                raft.clone(),
                replica.state_machine.clone(),
            )),
        ];

        let watcher = tokio::spawn(crate::watch::log_raft_changes(node_id, raft.clone()));
        tracing::info!(
            node_id,
            raft_listen = %config.raft_listen,
            api_listen = %config.api_listen,
            metrics_listen = ?config.metrics_listen,
            tls = tls.is_some(),
            "keyfleet node started"
        );
        Ok(Self {
            node_id,
            raft,
            hsm,
            background,
            health,
            health_monitor,
            metrics,
            stop_api,
            api_task,
            stop_raft,
            raft_task,
            watcher,
            tls,
        })
    }

    /// Reads the TLS certificates and keys again, so that new connections use them. On an
    /// error the node keeps the current ones and logs the error. Without TLS it does nothing.
    pub fn reload_tls(&self) {
        let Some(tls) = &self.tls else {
            tracing::info!(node_id = self.node_id, "TLS is off; nothing to reload");
            return;
        };
        match tls.reload() {
            Ok(()) => tracing::info!(node_id = self.node_id, "TLS certificates and keys reloaded"),
            Err(error) => tracing::error!(
                node_id = self.node_id,
                %error,
                "TLS reload failed; the node keeps its current certificates"
            ),
        }
    }

    /// Waits until Raft stops with a fatal error, and returns that error.
    pub async fn raft_stopped(&mut self) -> String {
        match (&mut self.watcher).await {
            Ok(reason) => reason,
            Err(error) => format!("the Raft watcher task failed: {error}"),
        }
    }

    /// Stops accepting API calls, shuts Raft down (flushing its stores), then stops the Raft
    /// service.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let node_id = self.node_id;
        tracing::info!(node_id, "stopping keyfleet node");

        self.health_monitor.abort();
        HealthMonitor::mark_stopping(&self.health).await;
        let _ = self.stop_api.send(());
        match tokio::time::timeout(API_SHUTDOWN_GRACE, self.api_task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => {
                tracing::warn!(node_id, %error, "node API server failed while stopping")
            }
            Ok(Err(error)) => tracing::warn!(node_id, %error, "node API task failed"),
            Err(_) => tracing::warn!(
                node_id,
                "node API calls still running after the grace period"
            ),
        }

        for task in &self.background {
            task.abort();
        }
        if let Some(metrics) = self.metrics {
            metrics.stop();
        }
        self.raft.shutdown().await.context("shutting Raft down")?;
        self.watcher.abort();
        let _ = self.stop_raft.send(());
        match self.raft_task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(node_id, %error, "Raft server failed while stopping"),
            Err(error) => tracing::warn!(node_id, %error, "Raft server task failed"),
        }

        drop(self.hsm);
        tracing::info!(node_id, "keyfleet node stopped");
        Ok(())
    }
}

/// Loads the TLS files that `[tls]` names, or returns `None` after a warning when the
/// configuration chooses plaintext.
fn load_tls(config: &NodeConfig) -> anyhow::Result<Option<Arc<NodeTls>>> {
    let mode = config
        .tls
        .mode()
        .map_err(|message| anyhow::anyhow!("invalid [tls] configuration: {message}"))?;

    match mode {
        TlsMode::Plaintext => {
            tracing::warn!(
                node_id = config.node_id,
                "TLS is OFF (tls.insecure_plaintext = true): any host that reaches the Raft \
                 port can vote and append entries, and API traffic is unencrypted. Use this \
                 only for tests and local demos"
            );
            Ok(None)
        }
        TlsMode::Tls { raft, api } => {
            let tls = NodeTls::load(config.node_id, raft, api).context("loading the TLS files")?;
            Ok(Some(Arc::new(tls)))
        }
    }
}

async fn signal(stopped: oneshot::Receiver<()>) {
    let _ = stopped.await;
}

/// Opens the token, provisions the node's own keys and runs the start-up self-test.
///
/// The fleet-wide keys (sealing key and OPRF seed) are not provisioned here: they are generated
/// once for the fleet and reach every node wrapped, by the `keyfleetd keys` ceremony. A node
/// without them serves the vault API as `FLEET_NOT_READY`.
async fn open_hsm(config: &NodeConfig) -> anyhow::Result<Pkcs11Hsm> {
    let settings = config.hsm.resolve()?;
    let hsm = Pkcs11Hsm::open(&settings).await?;

    let specs = [
        KeySpec::new(
            settings.keys.transport.clone(),
            KeyKind::TransportP256,
            Exportability::Never,
        ),
        KeySpec::new(
            settings.keys.signing.clone(),
            KeyKind::SigningEd25519,
            Exportability::Never,
        ),
    ];
    for spec in &specs {
        let outcome = hsm.provision(spec).await?;
        tracing::info!(node_id = config.node_id, label = %spec.label, ?outcome, "node key ready");
    }
    hsm.self_test(&specs).await?;
    Ok(hsm)
}

/// Builds the leader's side of the online join. With TLS, joins get certificates from the
/// fleet CA in `tls.ca_cert` and `tls.ca_key_sealed`.
fn join_issuer(config: &NodeConfig, hsm: Arc<Pkcs11Hsm>, tls: bool) -> JoinIssuer {
    let ca = match (tls, &config.tls.ca_cert) {
        (true, Some(ca_cert)) => Some(CaFiles {
            ca_cert: ca_cert.clone(),
            ca_key_sealed: config.tls.ca_key_sealed.clone(),
        }),
        _ => None,
    };
    JoinIssuer::new(
        hsm,
        config.hsm.keys.seal.clone(),
        config.hsm.keys.oprf_seed.clone(),
        config.vault.fleet_id.clone(),
        ca,
    )
}

/// Builds the OPAQUE core's configuration from `[vault]` and the key labels of `[hsm.keys]`.
fn vault_config(config: &NodeConfig) -> VaultConfig {
    let keys = &config.hsm.keys;
    let mut vault = VaultConfig::new(
        config.vault.fleet_id.clone(),
        keys.seal.clone(),
        keys.oprf_seed.clone(),
    );
    vault.ticket_ttl_secs = config.vault.ticket_ttl_secs;
    vault
}

/// The gRPC services on `api_listen`.
struct ApiServices<H> {
    node: NodeService,
    vault: VaultService,
    health: H,
    /// Whether to serve gRPC server reflection.
    reflection: bool,
}

/// Serves the node API, the vault API and gRPC health checking on `listen`, over TLS when
/// `tls` is set.
async fn serve_api<H>(
    listen: std::net::SocketAddr,
    tls: Option<Arc<TlsConfigCell<ServerConfig>>>,
    services: ApiServices<H>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<JoinHandle<Result<(), tonic::transport::Error>>>
where
    H: tonic::codegen::Service<
            tonic::codegen::http::Request<tonic::body::Body>,
            Response = tonic::codegen::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    H::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the node API to {listen}"))?;
    let node_server = NodeServer::new(services.node)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let vault_server =
        VaultServer::new(services.vault).max_decoding_message_size(MAX_VAULT_REQUEST_BYTES);
    let reflection = if services.reflection {
        let server = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(keyfleet_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("building the gRPC reflection service")?;
        Some(server)
    } else {
        None
    };

    let router = tonic::transport::Server::builder()
        .add_service(node_server)
        .add_service(vault_server)
        .add_service(services.health)
        .add_optional_service(reflection);

    Ok(match tls {
        Some(config) => tokio::spawn(
            router.serve_with_incoming_shutdown(tls_incoming(listener, config, "api"), shutdown),
        ),
        // Without TCP_NODELAY, Nagle's algorithm delays a response's last frames until the
        // client's delayed ACK, which adds about 40 ms to a call on Linux.
        None => tokio::spawn(router.serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )),
    })
}
